//! `SecureServer`: an rmcp `ServerHandler` that puts the ETDI pipeline in
//! front of tools, either registered with the builder or served by an
//! existing rmcp handler that it wraps unchanged.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use etdi_core::{
    DenyReason, EventKind, Outcome, Permission, Principal, PrincipalRef, SecurityPolicy, ServerId,
    ToolDefinition, ToolId, ToolRef,
};
use etdi_policy::{Authorizer, CallRequest, PolicyDocument, PolicyEngine};
use rmcp::model::*;
use rmcp::service::{MaybeSendFuture, NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use crate::audit::{self, step};
use crate::error::{BuildError, classify, deny_error};
use crate::limits::Limits;
use crate::remote::{RemoteCaller, RemoteServer};
use crate::stages::{AuditRecorder, TokenVerifier};
use crate::tool::{CallInfo, EtdiTool, ToolSet};
use crate::wire::{self, SigningMode};
use etdi_core::AuthMethod;
use etdi_crypto::attestation::AttestationSigner;
use etdi_crypto::chain::{ChainError, ChainVerifier};
use etdi_crypto::replay::{MemoryNonceStore, NonceStore};
use etdi_crypto::request::{ReceivedCall, RequestError, RequestVerifier};
use etdi_crypto::{SigningKey, UnixTime};

/// The principal the HTTP layer authenticated, stored in the request's
/// extensions for the pipeline. Shared: the pipeline and the tool see the
/// token cache's copy.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

/// Bearer-token authentication for the Streamable HTTP transport
/// (docs/PROTOCOL.md §11).
#[derive(Clone)]
pub struct BearerAuth {
    /// Verifies tokens (etdi-auth's resource server, audience included).
    pub verifier: Arc<dyn TokenVerifier>,
    /// This resource's id (RFC 8707 / RFC 9728 `resource`), e.g.
    /// `https://tools.example.com/mcp`.
    pub resource: String,
    /// Authorization servers named in the RFC 9728 document.
    pub authorization_servers: Vec<String>,
    /// Scopes listed as supported in the RFC 9728 document.
    pub scopes_supported: Vec<String>,
    /// Scopes every request needs; a token without one gets `403
    /// insufficient_scope` naming the missing ones.
    pub required_scopes: Vec<String>,
    /// Over HTTPS with client certificates (see [`crate::tls`]): accept a
    /// verified client certificate without a token as authentication, its
    /// identity (SAN URI / SPIFFE ID, SAN DNS, CN) being the principal.
    /// Such a principal has no scopes; give it permissions through roles
    /// assigned to its subject in the policy document.
    pub accept_client_certificates: bool,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("resource", &self.resource)
            .field("authorization_servers", &self.authorization_servers)
            .field("required_scopes", &self.required_scopes)
            .finish_non_exhaustive()
    }
}

/// One advertised tool.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) def: Arc<ToolDefinition>,
    /// How audit events name the tool, with its definition digest.
    pub(crate) audit_ref: Arc<ToolRef>,
    /// What `tools/list` shows, re-signed before its attestation expires.
    advertised: std::sync::RwLock<Advertised>,
}

/// A tool as advertised, with the time its attestation is due for
/// re-signing.
#[derive(Debug)]
struct Advertised {
    tool: Tool,
    /// Unix seconds from which the attestation is re-signed; `None` when it
    /// never expires (or there is none).
    refresh_at: Option<u64>,
}

impl Advertised {
    /// `def` as an MCP tool, attested at `now` when a signer is given.
    /// An attestation that expires is re-signed once half of its validity
    /// has passed, so a client never receives one about to lapse.
    fn new(
        def: &ToolDefinition,
        attestation: Option<&(AttestationSigner, Arc<SigningKey>)>,
        now: UnixTime,
    ) -> Result<Self, BuildError> {
        let name = def.name.to_string();
        let signed = match attestation {
            Some((signer, key)) => Some(
                signer
                    .sign(key, def, now)
                    .map_err(|_| BuildError::Attestation { tool: name.clone() })?,
            ),
            None => None,
        };
        let tool = wire::to_mcp_tool(def, signed.as_deref()).map_err(|e| BuildError::Tool {
            tool: name,
            message: e.to_string(),
        })?;
        let refresh_at = attestation
            .and_then(|(signer, _)| signer.validity())
            .map(|v| now.as_secs().saturating_add(v / 2));
        Ok(Advertised { tool, refresh_at })
    }
}

/// Everything the pipeline needs, shared by every session of the server.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) audience: ServerId,
    /// The audience's text, as audit events name the server.
    pub(crate) audit_server: Arc<str>,
    pub(crate) policy: SecurityPolicy,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) tools: HashMap<String, Registered>,
    pub(crate) order: Vec<String>,
    pub(crate) local_identity: Option<Arc<Principal>>,
    pub(crate) bearer: Option<BearerAuth>,
    pub(crate) request_verifier: Option<RequestVerifier>,
    pub(crate) chain_verifier: Option<ChainVerifier>,
    pub(crate) nonces: Arc<dyn NonceStore>,
    pub(crate) audit: Arc<dyn AuditRecorder>,
    pub(crate) limits: Limits,
    pub(crate) signing: SigningMode,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) jwks: etdi_crypto::JwkSet,
    pub(crate) granularity: audit::AuditGranularity,
    /// Signs attestations again as they near expiry.
    attestation: Option<(AttestationSigner, Arc<SigningKey>)>,
}

/// An rmcp server handler with ETDI in front of its tools.
///
/// `H` is the handler that runs the tools: [`ToolSet`] for tools registered
/// with [`SecureServerBuilder::build`], or any rmcp `ServerHandler` given to
/// [`SecureServerBuilder::wrap`]. Everything that is not `tools/*` or
/// `initialize` is passed to `H` unchanged.
pub struct SecureServer<H = ToolSet> {
    pub(crate) shared: Arc<Shared>,
    handler: Arc<H>,
}

impl<H> Clone for SecureServer<H> {
    fn clone(&self) -> Self {
        SecureServer {
            shared: self.shared.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<H> std::fmt::Debug for SecureServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureServer")
            .field("name", &self.shared.name)
            .field("audience", &self.shared.audience)
            .field("tools", &self.shared.order)
            .finish_non_exhaustive()
    }
}

impl SecureServer<ToolSet> {
    /// Starts configuring a server called `name`.
    pub fn builder(name: impl Into<String>) -> SecureServerBuilder {
        SecureServerBuilder::new(name.into())
    }
}

impl<H> SecureServer<H> {
    /// The audience (server id) request signatures and hops must name.
    pub fn audience(&self) -> &str {
        self.shared.audience.as_str()
    }

    /// The server-wide policy in force.
    pub fn policy(&self) -> &SecurityPolicy {
        &self.shared.policy
    }

    /// The bearer authentication configured for HTTP, if any.
    pub fn bearer(&self) -> Option<&BearerAuth> {
        self.shared.bearer.as_ref()
    }

    /// The public keys of this server (attestation key, hop key) as a JWK
    /// Set: what the HTTP transport serves at `/.well-known/etdi/jwks.json`
    /// (announce it with [`SecureServerBuilder::jwks_uri`]). Clients never
    /// trust these keys because the server publishes them; they may pin
    /// them on first use (docs/PROTOCOL.md §1).
    pub fn jwks(&self) -> &etdi_crypto::JwkSet {
        &self.shared.jwks
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// The audit recorder (the HTTP layer records its own events in it).
    pub(crate) fn audit_recorder(&self) -> &Arc<dyn AuditRecorder> {
        &self.shared.audit
    }

    /// The advertised `Tool` of every tool, in registration order, with its
    /// `_meta` (as an unfiltered `tools/list` shows it).
    pub fn advertised_tools(&self) -> Vec<Tool> {
        self.shared
            .order
            .iter()
            .filter_map(|n| self.shared.tools.get(n).map(|r| self.shared.advertised(r)))
            .collect()
    }
}

/// Configures a [`SecureServer`]; every invalid combination fails in
/// [`SecureServerBuilder::build`] or [`SecureServerBuilder::wrap`].
pub struct SecureServerBuilder {
    name: String,
    version: String,
    audience: Option<String>,
    policy: Option<SecurityPolicy>,
    document: Option<PolicyDocument>,
    provider: Option<Map<String, Value>>,
    tools: Vec<EtdiTool>,
    attestation: Option<(AttestationSigner, Arc<SigningKey>)>,
    audit: Option<Arc<dyn AuditRecorder>>,
    local_identity: Option<Principal>,
    bearer: Option<BearerAuth>,
    request_verifier: Option<RequestVerifier>,
    chain_verifier: Option<ChainVerifier>,
    onward_key: Option<Arc<SigningKey>>,
    onward_issuer: Option<String>,
    nonces: Option<Arc<dyn NonceStore>>,
    remotes: HashMap<String, RemoteServer>,
    limits: Limits,
    jwks_uri: Option<String>,
    granularity: audit::AuditGranularity,
}

impl std::fmt::Debug for SecureServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureServerBuilder")
            .field("name", &self.name)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl SecureServerBuilder {
    fn new(name: String) -> Self {
        SecureServerBuilder {
            name,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            audience: None,
            policy: None,
            document: None,
            provider: None,
            tools: Vec::new(),
            attestation: None,
            audit: None,
            local_identity: None,
            bearer: None,
            request_verifier: None,
            chain_verifier: None,
            onward_key: None,
            onward_issuer: None,
            nonces: None,
            remotes: HashMap::new(),
            limits: Limits::default(),
            jwks_uri: None,
            granularity: audit::AuditGranularity::default(),
        }
    }

    /// The implementation version reported in `initialize`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The server id that request signatures and hops must name (§1
    /// `audience`); defaults to the server name. Over HTTP use the
    /// endpoint's canonical URL.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The server-wide security policy (default: `Enhanced`).
    pub fn policy(mut self, policy: SecurityPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// A full policy document (roles, assignments, per-tool rules). Its
    /// `security` is used unless [`SecureServerBuilder::policy`] is set too.
    pub fn policy_document(mut self, document: PolicyDocument) -> Self {
        self.document = Some(document);
        self
    }

    /// The default provider of the registered tools.
    pub fn provider(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        let mut p = Map::new();
        p.insert("id".into(), Value::from(id.into()));
        p.insert("name".into(), Value::from(name.into()));
        self.provider = Some(p);
        self
    }

    /// Registers a tool (for [`SecureServerBuilder::build`]).
    pub fn tool(mut self, tool: EtdiTool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Signs the attestation of every advertised tool with `key` (the
    /// provider's key) when the server is built.
    pub fn attestation(mut self, signer: AttestationSigner, key: Arc<SigningKey>) -> Self {
        self.attestation = Some((signer, key));
        self
    }

    /// Where audit events go (required).
    pub fn audit(mut self, recorder: Arc<dyn AuditRecorder>) -> Self {
        self.audit = Some(recorder);
        self
    }

    /// The identity of every caller on a local transport (stdio), where the
    /// operator who starts the process is the caller.
    pub fn local_identity(mut self, principal: Principal) -> Self {
        self.local_identity = Some(principal);
        self
    }

    /// Bearer-token authentication for the HTTP transport.
    pub fn bearer_auth(mut self, auth: BearerAuth) -> Self {
        self.bearer = Some(auth);
        self
    }

    /// Verifies request signatures (required when the policy or a tool
    /// requires signing).
    pub fn request_verifier(mut self, verifier: RequestVerifier) -> Self {
        self.request_verifier = Some(verifier);
        self
    }

    /// Verifies incoming call chains; without one, calls that carry a chain
    /// are refused.
    pub fn chain_verifier(mut self, verifier: ChainVerifier) -> Self {
        self.chain_verifier = Some(verifier);
        self
    }

    /// The key this server signs hops with when its tools call other ETDI
    /// servers (remote servers trust it for this server's audience).
    pub fn hop_key(mut self, key: Arc<SigningKey>) -> Self {
        self.onward_key = Some(key);
        self
    }

    /// Also sign onward requests (§6), as `issuer` (the client id this
    /// server authenticates with at the remote servers), with the hop key.
    pub fn sign_onward_requests(mut self, issuer: impl Into<String>) -> Self {
        self.onward_issuer = Some(issuer.into());
        self
    }

    /// The replay store (default: an in-memory store sized for 100 signed
    /// requests per second over the longest validity window).
    pub fn nonce_store(mut self, store: Arc<dyn NonceStore>) -> Self {
        self.nonces = Some(store);
        self
    }

    /// A remote ETDI server that tools may call through
    /// [`crate::ToolContext::call_remote`], under the name `name`.
    pub fn remote(mut self, name: impl Into<String>, server: RemoteServer) -> Self {
        self.remotes.insert(name.into(), server);
        self
    }

    /// Request and resource bounds.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How allowed calls are audited (default: one event per step).
    pub fn audit_granularity(mut self, granularity: audit::AuditGranularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Publishes `jwksUri` in the ETDI capability.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Builds a server running the registered tools.
    pub fn build(mut self) -> Result<SecureServer<ToolSet>, BuildError> {
        let tools = std::mem::take(&mut self.tools);
        let mut defs = Vec::with_capacity(tools.len());
        for t in &tools {
            if !t.has_handler() {
                return Err(BuildError::Tool {
                    tool: t.name.clone(),
                    message: "no handler".into(),
                });
            }
            let def = t
                .definition(self.provider.as_ref())
                .map_err(|message| BuildError::Tool {
                    tool: t.name.clone(),
                    message,
                })?;
            defs.push(def);
        }
        let remote = self.remote_caller()?;
        let handler = ToolSet::new(&tools, remote);
        self.finish(defs, handler)
    }

    /// Builds a server in front of an existing rmcp handler. `tools` gives
    /// the ETDI fields (id, version, provider, permissions, call-chain
    /// rules, security overrides) of each handler tool to expose, by MCP
    /// name; the MCP fields (description, schemas, annotations) are the
    /// handler's own, taken from its `get_tool` (which rmcp's
    /// `#[tool_handler]` implements). Handler tools without an entry are
    /// neither listed nor callable: ETDI cannot authorize a tool it has no
    /// definition for.
    pub fn wrap<H: ServerHandler>(
        self,
        handler: H,
        tools: Vec<EtdiTool>,
    ) -> Result<SecureServer<H>, BuildError> {
        if !self.tools.is_empty() {
            return Err(BuildError::Config(
                "tools registered with `tool()` cannot be combined with `wrap()`".into(),
            ));
        }
        let mut defs = Vec::with_capacity(tools.len());
        for t in &tools {
            let err = |message: String| BuildError::Tool {
                tool: t.name.clone(),
                message,
            };
            if t.has_handler() {
                return Err(err(
                    "a wrapped tool runs in the wrapped handler; give it no handler here".into(),
                ));
            }
            let inner = handler.get_tool(&t.name).ok_or_else(|| {
                err("the wrapped handler does not describe this tool (its `get_tool` returned None)"
                    .into())
            })?;
            let fields = t.definition(self.provider.as_ref()).map_err(err)?;
            let def = wire::merge_definition(&inner, wire::etdi_fields(&fields))
                .map_err(|e| err(e.to_string()))?;
            defs.push(def);
        }
        self.finish(defs, handler)
    }

    fn remote_caller(&self) -> Result<Option<Arc<RemoteCaller>>, BuildError> {
        if self.remotes.is_empty() {
            return Ok(None);
        }
        let Some(key) = self.onward_key.clone() else {
            return Err(BuildError::Config(
                "remote servers are configured but no hop key: onward calls must carry a signed chain"
                    .into(),
            ));
        };
        let audience = self.audience.clone().unwrap_or_else(|| self.name.clone());
        let audience =
            ServerId::parse(&audience).map_err(|e| BuildError::Config(format!("audience: {e}")))?;
        Ok(Some(Arc::new(RemoteCaller::new(
            audience,
            self.remotes.clone(),
            key,
            self.onward_issuer.clone(),
        ))))
    }

    fn finish<H>(
        self,
        defs: Vec<ToolDefinition>,
        handler: H,
    ) -> Result<SecureServer<H>, BuildError> {
        self.limits.validate().map_err(BuildError::Config)?;
        let audience_text = self.audience.clone().unwrap_or_else(|| self.name.clone());
        let audience = ServerId::parse(&audience_text)
            .map_err(|e| BuildError::Config(format!("audience: {e}")))?;
        let audit = self.audit.clone().ok_or_else(|| {
            BuildError::Config("no audit recorder: every decision must be recorded".into())
        })?;
        let mut document = self.document.clone().unwrap_or_default();
        if let Some(p) = &self.policy {
            document.security = p.clone();
        }
        let policy = document.security.clone();

        if policy.require_tool_signatures && self.attestation.is_none() {
            return Err(BuildError::Config(format!(
                "the `{}` policy requires tool signatures but no attestation signer is configured",
                policy.security_level
            )));
        }

        let engine = PolicyEngine::builder(audience.clone())
            .document(document)
            .tools(defs.iter())
            .build()
            .map_err(|e| BuildError::Policy(e.to_string()))?;

        let any_tool_requires = defs.iter().any(|d| {
            engine
                .effective_security(&d.id)
                .is_some_and(|s| s.require_request_signing)
        });
        let signing = if policy.require_request_signing {
            SigningMode::Required
        } else if any_tool_requires {
            SigningMode::PerTool
        } else {
            SigningMode::Optional
        };
        if signing != SigningMode::Optional && self.request_verifier.is_none() {
            return Err(BuildError::Config(
                "request signing is required (by the policy or a tool) but no request verifier is configured"
                    .into(),
            ));
        }

        let mut tools = HashMap::with_capacity(defs.len());
        let mut order = Vec::with_capacity(defs.len());
        let mut ids = BTreeSet::new();
        for def in defs {
            let name = def.name.to_string();
            if tools.contains_key(&name) {
                return Err(BuildError::DuplicateTool(name));
            }
            if !ids.insert(def.id.clone()) {
                return Err(BuildError::Tool {
                    tool: name,
                    message: format!("tool id `{}` is used twice", def.id),
                });
            }
            let digest = def.digest().map_err(|e| BuildError::Tool {
                tool: name.clone(),
                message: e.to_string(),
            })?;
            let advertised = Advertised::new(&def, self.attestation.as_ref(), UnixTime::now())?;
            order.push(name.clone());
            tools.insert(
                name,
                Registered {
                    audit_ref: audit::tool_ref(&def, digest),
                    def: Arc::new(def),
                    advertised: std::sync::RwLock::new(advertised),
                },
            );
        }

        // Sized for 100 signed requests per second over the longest
        // validity window of §8.2 (360 s): 36,000 entries, at most ~6 MiB.
        let nonces = self.nonces.clone().unwrap_or_else(|| {
            Arc::new(MemoryNonceStore::new(MemoryNonceStore::capacity_for(
                100, 360,
            )))
        });
        let mut jwks = etdi_crypto::JwkSet::default();
        let keys = self
            .attestation
            .as_ref()
            .map(|(_, k)| k)
            .into_iter()
            .chain(self.onward_key.as_ref());
        for key in keys {
            let jwk = key.verifying_key().to_jwk();
            if !jwks.keys.contains(&jwk) {
                jwks.keys.push(jwk);
            }
        }
        let shared = Shared {
            name: self.name,
            version: self.version,
            audit_server: audience.as_str().into(),
            audience,
            policy,
            authorizer: Arc::new(engine),
            tools,
            order,
            local_identity: self.local_identity.map(Arc::new),
            bearer: self.bearer,
            request_verifier: self.request_verifier,
            chain_verifier: self.chain_verifier,
            nonces,
            audit,
            limits: self.limits,
            signing,
            jwks_uri: self.jwks_uri,
            jwks,
            granularity: self.granularity,
            attestation: self.attestation,
        };
        Ok(SecureServer {
            shared: Arc::new(shared),
            handler: Arc::new(handler),
        })
    }
}

/// A verified chain as the policy engine needs it.
#[derive(Debug, Default)]
struct VerifiedHops {
    chain: etdi_core::CallChain,
    hop_principals: Vec<Principal>,
}

impl From<&etdi_crypto::chain::VerifiedChain> for VerifiedHops {
    fn from(v: &etdi_crypto::chain::VerifiedChain) -> Self {
        VerifiedHops {
            chain: v.call_chain().clone(),
            // A hop principal carries only what the hop signed: its subject
            // and the permissions it held there.
            hop_principals: v
                .hops()
                .iter()
                .map(|h| {
                    Principal::new(h.hop.principal.clone(), AuthMethod::Anonymous)
                        .with_scopes(h.scope.iter().cloned())
                })
                .collect(),
        }
    }
}

fn request_reason(e: &RequestError) -> DenyReason {
    if e.reason_code() == "replay" {
        DenyReason::Replay {
            detail: e.to_string(),
        }
    } else {
        DenyReason::InvalidRequestSignature {
            detail: e.to_string(),
        }
    }
}

fn chain_reason(e: &ChainError) -> DenyReason {
    if let ChainError::TooLong { len } = e {
        return DenyReason::CallDepthExceeded {
            depth: u32::try_from(len.saturating_add(1)).unwrap_or(u32::MAX),
            max: etdi_core::tool::MAX_CALL_DEPTH,
        };
    }
    if e.reason_code() == "replay" {
        DenyReason::Replay {
            detail: e.to_string(),
        }
    } else {
        DenyReason::InvalidRequestSignature {
            detail: e.to_string(),
        }
    }
}

/// True for reasons that belong to the call-chain step.
fn is_chain_reason(r: &DenyReason) -> bool {
    classify(r).0 == crate::error::CODE_CALL_CHAIN
}

/// The per-call state the pipeline carries from step to step.
struct Call<'a> {
    request_id: String,
    principal: Option<&'a Principal>,
    /// How this call's events name the caller: built by the first event,
    /// shared by the rest (a call that records nothing builds nothing).
    principal_ref: std::sync::OnceLock<Arc<PrincipalRef>>,
    tool: Option<&'a Arc<ToolRef>>,
    audit_all: bool,
    /// Steps passed so far, for [`audit::AuditGranularity::PerCall`].
    passed: std::sync::Mutex<Vec<&'static str>>,
}

impl Shared {
    /// The tool as advertised now: its attestation is signed again once
    /// half of its validity has passed. If signing fails, the previous
    /// attestation is served (a client rejects it once it expires, which
    /// fails closed) and the failure is logged; the next list retries.
    fn advertised(&self, r: &Registered) -> Tool {
        let now = UnixTime::now();
        {
            let a = r.advertised.read().unwrap_or_else(|p| p.into_inner());
            if a.refresh_at.is_none_or(|t| now.as_secs() < t) {
                return a.tool.clone();
            }
        }
        let mut a = r.advertised.write().unwrap_or_else(|p| p.into_inner());
        // Another caller may have re-signed while this one waited.
        if a.refresh_at.is_some_and(|t| now.as_secs() >= t) {
            match Advertised::new(&r.def, self.attestation.as_ref(), now) {
                Ok(fresh) => *a = fresh,
                Err(e) => tracing::error!(
                    tool = %r.def.name,
                    error = %e,
                    "could not re-sign the tool attestation; serving the previous one until it expires"
                ),
            }
        }
        a.tool.clone()
    }

    /// Records one step's event. A recorder failure is returned as an
    /// internal reason so that the caller denies.
    async fn record(
        &self,
        call: &Call<'_>,
        kind: EventKind,
        outcome: Outcome,
        step: &str,
        reasons: &[DenyReason],
    ) -> Result<(), DenyReason> {
        self.record_with(call, kind, outcome, step, reasons, Map::new())
            .await
    }

    /// [`Shared::record`] with extra `details`.
    async fn record_with(
        &self,
        call: &Call<'_>,
        kind: EventKind,
        outcome: Outcome,
        step: &str,
        reasons: &[DenyReason],
        details: Map<String, Value>,
    ) -> Result<(), DenyReason> {
        let subject = audit::Subject {
            server: &self.audit_server,
            request_id: &call.request_id,
            principal: call
                .principal
                .map(|p| call.principal_ref.get_or_init(|| audit::principal_ref(p))),
            tool: call.tool,
        };
        let mut e = audit::event(kind, outcome, step, &subject, reasons);
        e.details.extend(details);
        self.audit.record(e).await.map_err(|e| {
            tracing::error!(error = %e, "audit recorder failed; denying the call");
            DenyReason::Internal {
                detail: format!("audit recorder failed: {e}"),
            }
        })
    }

    /// Records an allowed step when the policy audits allowed calls.
    async fn record_ok(
        &self,
        call: &Call<'_>,
        kind: EventKind,
        step: &'static str,
    ) -> Result<(), DenyReason> {
        if !call.audit_all {
            return Ok(());
        }
        if self.granularity == audit::AuditGranularity::PerCall {
            call.passed
                .lock()
                .map_err(|_| DenyReason::Internal {
                    detail: "audit step list poisoned".into(),
                })?
                .push(step);
            return Ok(());
        }
        self.record(call, kind, Outcome::Success, step, &[]).await
    }

    /// Records a denial and turns it into the JSON-RPC error. If even the
    /// denial cannot be recorded, the call is still denied, but with the
    /// internal error only: an unrecorded answer must not tell the caller
    /// anything (which check failed, which tools exist) that the operator
    /// cannot see in the log.
    async fn deny(
        &self,
        call: &Call<'_>,
        kind: EventKind,
        step: &str,
        reasons: Vec<DenyReason>,
    ) -> McpError {
        if let Err(r) = self
            .record(call, kind, Outcome::Denied, step, &reasons)
            .await
        {
            tracing::error!(reason = %r, "denial could not be audited");
            return deny_error(&[r]);
        }
        deny_error(&reasons)
    }

    /// The HTTP layer's per-tool scope check (MCP scope challenge): the
    /// permissions `principal` lacks for the tool named `name`, if any.
    /// The denial is audited here, at the authorization step, exactly as
    /// the pipeline would record it. `None` when the tool is unknown or
    /// nothing is missing; the pipeline still decides every call.
    pub(crate) async fn scope_challenge(
        &self,
        principal: &Principal,
        name: &str,
        request_id: &str,
    ) -> Option<Vec<Permission>> {
        let reg = self.tools.get(name)?;
        let decision = self
            .authorizer
            .decide(&CallRequest::direct(principal, &reg.def.id));
        let missing = decision.reasons().iter().find_map(|r| match r {
            DenyReason::MissingPermissions { missing } => Some(missing.clone()),
            _ => None,
        })?;
        let call = Call {
            request_id: request_id.to_owned(),
            principal: Some(principal),
            principal_ref: std::sync::OnceLock::new(),
            tool: Some(&reg.audit_ref),
            audit_all: true,
            passed: std::sync::Mutex::new(Vec::new()),
        };
        let reasons = [DenyReason::MissingPermissions {
            missing: missing.clone(),
        }];
        if let Err(r) = self
            .record(
                &call,
                EventKind::AuthorizationFailed,
                Outcome::Denied,
                step::AUTHORIZE,
                &reasons,
            )
            .await
        {
            tracing::error!(reason = %r, "scope challenge could not be audited");
        }
        Some(missing)
    }

    fn principal_of(&self, ctx: &RequestContext<RoleServer>) -> Option<Arc<Principal>> {
        if let Some(parts) = ctx.extensions.get::<http::request::Parts>() {
            // Over HTTP only the auth layer's verdict counts; a configured
            // local identity must never stand in for a network caller.
            return parts.extensions.get::<Authenticated>().map(|a| a.0.clone());
        }
        self.local_identity.clone()
    }
}

/// True when `value` serialises to at most `limit` bytes. Counting stops
/// at the limit, so an oversized value costs no more than the limit.
fn fits(value: &impl serde::Serialize, limit: usize) -> bool {
    struct Counter {
        left: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.left.checked_sub(buf.len()) {
                Some(left) => {
                    self.left = left;
                    Ok(buf.len())
                }
                None => Err(std::io::Error::other("over the limit")),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Counter { left: limit }, value).is_ok()
}

/// The ETDI members of `params._meta`: the request signature and the hops.
type EtdiMeta = (Option<String>, Vec<String>);

/// Reads the ETDI members of `params._meta`, bounded by the limits; an
/// error names the pipeline step it belongs to.
fn etdi_meta(
    ctx: &RequestContext<RoleServer>,
    limits: &Limits,
) -> Result<EtdiMeta, (DenyReason, &'static str)> {
    let meta = &ctx.meta.0.0;
    // A hop is a signature too: a malformed chain is reported like a
    // malformed request signature (§10 -32012), at the call-chain step.
    let bad_chain = |detail: &str| {
        (
            DenyReason::InvalidRequestSignature {
                detail: format!("malformed call chain: {detail}"),
            },
            step::CALL_CHAIN,
        )
    };
    let sig = match meta.get(wire::META_REQUEST_SIGNATURE) {
        None => None,
        Some(Value::String(s)) if s.len() <= limits.max_signature_bytes => Some(s.clone()),
        Some(_) => {
            return Err((
                DenyReason::InvalidRequestSignature {
                    detail: format!(
                        "`{}` must be a compact JWS of at most {} bytes",
                        wire::META_REQUEST_SIGNATURE,
                        limits.max_signature_bytes
                    ),
                },
                step::REQUEST_SIGNATURE,
            ));
        }
    };
    let hops = match meta.get(wire::META_CALL_CHAIN) {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > limits.max_chain_hops {
                let depth = u32::try_from(items.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                let max = u32::try_from(limits.max_chain_hops)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                return Err((
                    DenyReason::CallDepthExceeded { depth, max },
                    step::CALL_CHAIN,
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if s.len() <= limits.max_hop_bytes => out.push(s.clone()),
                    _ => {
                        return Err(bad_chain(
                            "hops must be compact JWS strings within the size limit",
                        ));
                    }
                }
            }
            out
        }
        Some(_) => {
            return Err(bad_chain("not an array"));
        }
    };
    Ok((sig, hops))
}

impl<H: ServerHandler> SecureServer<H> {
    fn etdi_info(&self, mut info: ServerConfig) -> ServerConfig {
        let s = &self.shared;
        if info.capabilities.tools.is_none() {
            info.capabilities.tools = Some(ToolsCapability::default());
        }
        info.capabilities
            .experimental
            .get_or_insert_with(Default::default)
            .insert(
                wire::CAPABILITY.into(),
                wire::capability(s.audience.as_str(), s.signing, s.jwks_uri.as_deref()),
            );
        info.server_info = Implementation::new(s.name.clone(), s.version.clone());
        info
    }

    /// The `tools/call` pipeline: authenticate, request signature, replay,
    /// call chain, authorization, invoke, audit the outcome.
    async fn guarded_call(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let s = &*self.shared;
        let mut call = Call {
            request_id: context.id.to_string(),
            principal: None,
            principal_ref: std::sync::OnceLock::new(),
            tool: None,
            audit_all: s.policy.audit_all_calls,
            passed: std::sync::Mutex::new(Vec::new()),
        };

        // 1. Authenticate.
        let Some(principal) = s.principal_of(&context) else {
            return Err(s
                .deny(
                    &call,
                    EventKind::AuthenticationFailed,
                    step::AUTHENTICATE,
                    vec![DenyReason::Unauthenticated {
                        detail: "no credentials were presented".into(),
                    }],
                )
                .await);
        };
        call.principal = Some(&principal);
        let Some(reg) = s.tools.get(request.name.as_ref()) else {
            return Err(s
                .deny(
                    &call,
                    EventKind::AuthorizationFailed,
                    step::AUTHORIZE,
                    vec![DenyReason::UnknownTool {
                        name: request.name.chars().take(128).collect(),
                    }],
                )
                .await);
        };
        call.tool = Some(&reg.audit_ref);
        let Some(security) = s.authorizer.effective_security(&reg.def.id) else {
            return Err(s
                .deny(
                    &call,
                    EventKind::AuthorizationFailed,
                    step::AUTHORIZE,
                    vec![DenyReason::Internal {
                        detail: "tool missing from the policy engine".into(),
                    }],
                )
                .await);
        };
        call.audit_all = security.audit_all_calls;
        if let Err(r) = s
            .record_ok(
                &call,
                EventKind::AuthenticationSucceeded,
                step::AUTHENTICATE,
            )
            .await
        {
            return Err(deny_error(&[r]));
        }

        // Bounds before any work that grows with the input.
        let too_large = request
            .arguments
            .as_ref()
            .is_some_and(|a| !fits(a, s.limits.max_argument_bytes));
        if too_large {
            let _ = s
                .record(
                    &call,
                    EventKind::ToolInvocationCompleted,
                    Outcome::Failure,
                    step::INVOKE,
                    &[],
                )
                .await;
            return Err(McpError::invalid_params(
                format!(
                    "arguments are larger than the limit of {} bytes",
                    s.limits.max_argument_bytes
                ),
                None,
            ));
        }
        let (sig, hops) = match etdi_meta(&context, &s.limits) {
            Ok(v) => v,
            Err((r, step)) => {
                let kind = if step == step::CALL_CHAIN {
                    EventKind::PolicyViolation
                } else {
                    EventKind::AuthenticationFailed
                };
                return Err(s.deny(&call, kind, step, vec![r]).await);
            }
        };

        // The hops are verified first: the request signature binds the
        // digest of the decoded chain, which only a verified chain yields
        // (etdi-crypto releases it once the last hop's nonce is recorded).
        let now = UnixTime::now();
        let chain: VerifiedHops = if hops.is_empty() {
            VerifiedHops::default()
        } else {
            let Some(verifier) = &s.chain_verifier else {
                return Err(s
                    .deny(
                        &call,
                        EventKind::PolicyViolation,
                        step::CALL_CHAIN,
                        vec![DenyReason::Internal {
                            detail:
                                "this server accepts no call chains (no chain verifier configured)"
                                    .into(),
                        }],
                    )
                    .await);
            };
            let pending = match verifier.verify(&hops, now) {
                Ok(p) => p,
                Err(e) => {
                    let r = chain_reason(&e);
                    return Err(s
                        .deny(&call, EventKind::PolicyViolation, step::CALL_CHAIN, vec![r])
                        .await);
                }
            };
            match pending.record(&*s.nonces).await {
                Ok(v) => VerifiedHops::from(&v),
                Err(e) => {
                    let r = chain_reason(&e);
                    return Err(s
                        .deny(&call, EventKind::ReplayDetected, step::REPLAY, vec![r])
                        .await);
                }
            }
        };

        // 2. Request signature.
        let pending_sig = match (&sig, &s.request_verifier) {
            (Some(jws), Some(verifier)) => {
                let mut received = ReceivedCall::tools_call(
                    reg.def.name.as_str(),
                    request.arguments.as_ref(),
                    &chain.chain,
                );
                received = received.with_principal(&principal);
                match verifier.verify(jws, &received, now) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        let r = request_reason(&e);
                        let (kind, step) = if matches!(r, DenyReason::Replay { .. }) {
                            (EventKind::ReplayDetected, step::REPLAY)
                        } else {
                            (EventKind::AuthenticationFailed, step::REQUEST_SIGNATURE)
                        };
                        return Err(s.deny(&call, kind, step, vec![r]).await);
                    }
                }
            }
            (None, _) if security.require_request_signing => {
                return Err(s
                    .deny(
                        &call,
                        EventKind::AuthenticationFailed,
                        step::REQUEST_SIGNATURE,
                        vec![DenyReason::RequestSignatureRequired],
                    )
                    .await);
            }
            // A signature sent to a server that verifies none is ignored:
            // the call is treated, and authorized, as unsigned.
            (Some(_), None) | (None, _) => None,
        };
        if pending_sig.is_some()
            && let Err(r) = s
                .record_ok(
                    &call,
                    EventKind::AuthenticationSucceeded,
                    step::REQUEST_SIGNATURE,
                )
                .await
        {
            return Err(deny_error(&[r]));
        }

        // 3. Replay: the request's nonce (the chain's last hop was
        // recorded above).
        let signed_by = match pending_sig {
            Some(p) => match p.record(&*s.nonces).await {
                Ok(v) => {
                    if let Err(r) = s
                        .record_ok(&call, EventKind::AuthenticationSucceeded, step::REPLAY)
                        .await
                    {
                        return Err(deny_error(&[r]));
                    }
                    Some(v.issuer().to_owned())
                }
                Err(e) => {
                    return Err(s
                        .deny(
                            &call,
                            EventKind::ReplayDetected,
                            step::REPLAY,
                            vec![request_reason(&e)],
                        )
                        .await);
                }
            },
            None => None,
        };

        // 4. Call chain and 5. authorization: one decision, reported as
        // two steps so each has its own audit event.
        let req =
            CallRequest::chained(&principal, &reg.def.id, &chain.chain, &chain.hop_principals)
                .signed(signed_by.is_some());
        let decision = s.authorizer.decide(&req);
        let reasons = decision.reasons().to_vec();
        let (chain_reasons, other): (Vec<DenyReason>, Vec<DenyReason>) =
            reasons.into_iter().partition(is_chain_reason);
        if !chain_reasons.is_empty() {
            let mut all = chain_reasons;
            all.extend(other);
            return Err(s
                .deny(&call, EventKind::PolicyViolation, step::CALL_CHAIN, all)
                .await);
        }
        if chain.chain.depth() > 0
            && let Err(r) = s
                .record_ok(&call, EventKind::AuthorizationSucceeded, step::CALL_CHAIN)
                .await
        {
            return Err(deny_error(&[r]));
        }
        let rule = match decision {
            etdi_core::Decision::Allow { rule } => rule,
            etdi_core::Decision::Deny { .. } => {
                return Err(s
                    .deny(
                        &call,
                        EventKind::AuthorizationFailed,
                        step::AUTHORIZE,
                        other,
                    )
                    .await);
            }
        };
        if let Err(r) = s
            .record_ok(&call, EventKind::AuthorizationSucceeded, step::AUTHORIZE)
            .await
        {
            return Err(deny_error(&[r]));
        }

        // 6. Invoke, with what the pipeline established.
        let info = Arc::new(CallInfo {
            principal: principal.clone(),
            tool: reg.def.clone(),
            chain: chain.chain.clone(),
            hop_jws: hops,
            hop_principals: chain.hop_principals.clone(),
            signed_by,
            request_id: call.request_id.clone(),
        });
        context.extensions.insert(info);
        let result = self.handler.call_tool(request, context).await;

        // 7. Audit the outcome. An outcome that cannot be recorded is not
        // returned: the caller gets an internal-error denial instead.
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        };
        let recorded = if outcome == Outcome::Success && !call.audit_all {
            Ok(())
        } else {
            let mut details = Map::new();
            if s.granularity == audit::AuditGranularity::PerCall && call.audit_all {
                let steps = call
                    .passed
                    .lock()
                    .map(|p| p.iter().map(|s| Value::from(*s)).collect::<Vec<_>>())
                    .unwrap_or_default();
                details.insert("steps".into(), Value::Array(steps));
                details.insert("rule".into(), Value::from(rule.clone()));
            }
            s.record_with(
                &call,
                EventKind::ToolInvocationCompleted,
                outcome,
                step::INVOKE,
                &[],
                details,
            )
            .await
        };
        match recorded {
            Ok(()) => result,
            Err(r) => Err(deny_error(&[r])),
        }
    }
}

// Logging and resource subscriptions are deprecated in rmcp but still
// forwarded, so a wrapped handler keeps every behaviour it had.
#[allow(deprecated)]
impl<H: ServerHandler> ServerHandler for SecureServer<H> {
    fn get_info(&self) -> ServerConfig {
        self.etdi_info(self.handler.get_info())
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let result = self.handler.initialize(request, context).await?;
        Ok(self.etdi_info(result))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let s = &*self.shared;
        let visible: Option<BTreeSet<ToolId>> = if s.policy.filter_tools_list {
            // Filtering is on: an unidentified caller sees nothing.
            Some(match s.principal_of(&context) {
                Some(p) => s.authorizer.visible_tools(&p).into_iter().collect(),
                None => BTreeSet::new(),
            })
        } else {
            None
        };
        let tools = s
            .order
            .iter()
            .filter_map(|n| s.tools.get(n))
            .filter(|r| visible.as_ref().is_none_or(|v| v.contains(&r.def.id)))
            .map(|r| s.advertised(r))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared
            .tools
            .get(name)
            .map(|r| self.shared.advertised(r))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.guarded_call(request, context).await
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.handler.supported_protocol_versions()
    }

    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.ping(context)
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.complete(request, context)
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.set_level(request, context)
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + MaybeSendFuture + '_ {
        self.handler.get_prompt(request, context)
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.list_prompts(request, context)
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.list_resources(request, context)
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + MaybeSendFuture + '_
    {
        self.handler.list_resource_templates(request, context)
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + MaybeSendFuture + '_ {
        self.handler.read_resource(request, context)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.handler.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.listen(context)
    }

    #[allow(deprecated)]
    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.subscribe(request, context)
    }

    #[allow(deprecated)]
    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.unsubscribe(request, context)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.handler.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.handler.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.handler.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.handler.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.handler.on_custom_notification(notification, context)
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.get_task(request, context)
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.handler.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + MaybeSendFuture + '_ {
        self.handler.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + MaybeSendFuture + '_
    {
        self.handler.read_resource_directory(request, context)
    }
}
