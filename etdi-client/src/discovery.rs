//! Verified discovery: turns a `tools/list` result into a [`ToolCatalog`]
//! of tools the client may show and call.
//!
//! For each advertised tool, in order: rebuild the definition from what was
//! advertised (PROTOCOL §2), verify its attestation against the trusted
//! issuers and the revocation list (§5.2), decide whether an unverified tool
//! is usable under the policy, run the rug-pull engine against the server's
//! pins, ask the [`Approver`] when a new approval is needed, and record the
//! result in the approval store. Every error on the way leaves the tool
//! unusable (fail closed).
//!
//! A call to a name that is not in the catalog as usable is refused locally
//! with the PROTOCOL §10 error shape ([`CallRefused`]).
//!
//! Issuers are trusted either with static keys (through
//! [`Discovery::verifier_mut`]) or, for attestations issued by an OAuth
//! authorization server (§5.3), with the keys of its published JWKS
//! ([`Discovery::trust_oauth_issuer`]). The JWKS keys are obtained at each
//! round of [`Discovery::discover_async`] through etdi-auth's JWKS cache
//! ([`etdi_auth::IssuerJwks`]): TTL from `Cache-Control`, at most one
//! refresh per cooldown on an unknown `kid`, bounded grace while the IdP is
//! unreachable. A tool whose issuer's keys cannot be obtained fails
//! verification and is never usable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use etdi_audit::event as audit;
use etdi_auth::{IssuerJwks, TokenError};
use etdi_core::{
    AuditEvent, DenyReason, Digest, SecurityLevel, SecurityPolicy, ServerId, Timestamp,
    ToolDefinition, VerificationFailure, VerificationStatus,
};
use etdi_crypto::advertised;
use etdi_crypto::attestation::{AttestationVerifier, DigestedDefinition, ProviderScope};
use etdi_crypto::jws;
use etdi_crypto::trust::KeyRing;
use etdi_crypto::{Algorithm, UnixTime};
use serde_json::{Map, Value, json};

use crate::approval::{Approval, ApprovalStore, Signer, StoreError};
use crate::approver::{ApprovalDecision, ApprovalRequest, Approver, DenyAll};
use crate::rugpull::{self, Assessment, Observed, Verdict};

/// What happens to tools that are not usable because of their attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedHandling {
    /// Leave them out of the visible list.
    Hide,
    /// Keep them visible, marked, but refuse calls.
    Flag,
}

/// Why a tool is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The advertised tool cannot be read as an ETDI definition.
    Malformed(String),
    /// Its attestation failed, or it is unsigned where signatures are required.
    NotVerified(String),
    /// It needs an approval and the approver refused.
    NotApproved(String),
    /// The rug-pull engine blocked it (integrity violation).
    Blocked(String),
    /// The approval store failed.
    StoreFailure(String),
}

impl Refusal {
    fn detail(&self) -> &str {
        match self {
            Self::Malformed(s)
            | Self::NotVerified(s)
            | Self::NotApproved(s)
            | Self::Blocked(s)
            | Self::StoreFailure(s) => s,
        }
    }
}

/// One advertised tool after discovery.
#[derive(Debug, Clone)]
pub struct DiscoveredTool {
    /// The MCP name it was advertised under.
    pub name: String,
    /// The advertised MCP `Tool` object, as received.
    pub advertised: Map<String, Value>,
    /// The rebuilt definition (`None` if malformed).
    pub definition: Option<ToolDefinition>,
    /// Its digest.
    pub digest: Option<Digest>,
    /// How its attestation verified.
    pub verification: VerificationStatus,
    /// The rug-pull engine's assessment (`None` if it never got that far).
    pub assessment: Option<Assessment>,
    /// The pin in force after discovery, when usable.
    pub approval: Option<Approval>,
    /// `None` when usable; otherwise why not.
    pub refusal: Option<Refusal>,
    /// Whether the tool appears in [`ToolCatalog::visible`].
    pub visible: bool,
}

impl DiscoveredTool {
    /// True when the tool may be called.
    pub fn is_usable(&self) -> bool {
        self.refusal.is_none()
    }
}

/// The result of one discovery round.
#[derive(Debug, Clone, Default)]
pub struct ToolCatalog {
    tools: Vec<DiscoveredTool>,
    events: Vec<AuditEvent>,
}

impl ToolCatalog {
    /// Every advertised tool, usable or not.
    pub fn all(&self) -> &[DiscoveredTool] {
        &self.tools
    }

    /// Tools to show to the model: usable ones, plus refused ones when the
    /// handling is [`UnverifiedHandling::Flag`].
    pub fn visible(&self) -> impl Iterator<Item = &DiscoveredTool> {
        self.tools.iter().filter(|t| t.visible)
    }

    /// Tools that may be called.
    pub fn usable(&self) -> impl Iterator<Item = &DiscoveredTool> {
        self.tools.iter().filter(|t| t.is_usable())
    }

    /// The tool advertised as `name`, if any.
    pub fn get(&self, name: &str) -> Option<&DiscoveredTool> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Audit events of this round (discovery, verification, approvals, rug
    /// pulls), for the caller's audit log.
    pub fn events(&self) -> &[AuditEvent] {
        &self.events
    }

    /// Refuses, locally, a call to a tool that was never listed, or listed
    /// and not usable; returns the tool otherwise.
    pub fn check_call(&self, name: &str) -> Result<&DiscoveredTool, CallRefused> {
        let Some(tool) = self.get(name) else {
            return Err(CallRefused::new(DenyReason::UnknownTool {
                name: name.into(),
            }));
        };
        match (&tool.refusal, &tool.definition) {
            (None, Some(_)) => Ok(tool),
            (Some(r), Some(def)) => Err(CallRefused::new(DenyReason::ToolNotVerified {
                tool: def.id.clone(),
                detail: r.detail().to_owned(),
            })),
            // Without a definition there is no tool id to name: the tool is,
            // for ETDI, unknown.
            _ => Err(CallRefused::new(DenyReason::UnknownTool {
                name: name.into(),
            })),
        }
    }
}

/// A call refused on the client, in the PROTOCOL §10 error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct CallRefused {
    /// Every reason; never empty.
    pub reasons: Vec<DenyReason>,
}

impl CallRefused {
    fn new(reason: DenyReason) -> Self {
        CallRefused {
            reasons: vec![reason],
        }
    }

    /// The JSON-RPC error code of the first reason (§10).
    pub fn code(&self) -> i64 {
        match self.reasons.first().map(DenyReason::code) {
            Some("unknown_tool") => -32602,
            Some("tool_not_verified") => -32015,
            Some("missing_permissions" | "privilege_escalation" | "policy_denied") => -32010,
            Some("unauthenticated") => -32011,
            Some("request_signature_required" | "invalid_request_signature") => -32012,
            Some("replay") => -32013,
            Some(
                "call_depth_exceeded"
                | "call_cycle"
                | "caller_not_allowed"
                | "caller_blocked"
                | "callee_not_allowed"
                | "callee_blocked",
            ) => -32014,
            _ => -32603,
        }
    }

    /// `ETDI: <reason>; <reason>`.
    pub fn message(&self) -> String {
        let parts: Vec<String> = self.reasons.iter().map(ToString::to_string).collect();
        format!("ETDI: {}", parts.join("; "))
    }

    /// The `data` member: `{"etdi": "etdi/1", "reasons": [...]}`.
    pub fn data(&self) -> Value {
        json!({"etdi": etdi_core::PROTOCOL_VERSION, "reasons": self.reasons})
    }

    /// The whole JSON-RPC `error` object.
    pub fn to_json_rpc_error(&self) -> Value {
        json!({"code": self.code(), "message": self.message(), "data": self.data()})
    }
}

/// Discovery for one server: trust configuration, policy, pins, approver.
pub struct Discovery {
    server: ServerId,
    verifier: AttestationVerifier,
    policy: SecurityPolicy,
    unverified: UnverifiedHandling,
    store: Arc<dyn ApprovalStore>,
    approver: Arc<dyn Approver>,
    /// OAuth issuers (§5.3) whose keys come from their JWKS, by `iss`.
    oauth: HashMap<String, OAuthIssuer>,
}

/// An OAuth authorization server trusted to issue attestations.
struct OAuthIssuer {
    jwks: Arc<IssuerJwks>,
    providers: ProviderScope,
}

/// The verification keys of one discovery round.
#[derive(Default)]
pub(crate) struct RoundKeys {
    /// The static verifier plus the OAuth issuers with the JWKS keys the
    /// round's attestations name, accepting the §5.3 `typ` values; `None`
    /// when no OAuth issuer is configured.
    oauth_verifier: Option<AttestationVerifier>,
    /// Attestations whose issuer's keys could not be obtained, with why.
    unavailable: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("server", &self.server)
            .field("policy", &self.policy.security_level)
            .field("unverified", &self.unverified)
            .field("oauth_issuers", &self.oauth.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery for `server` with the default policy (Enhanced), the given
    /// attestation verifier and store, and the deny-all approver.
    pub fn new(
        server: ServerId,
        verifier: AttestationVerifier,
        store: Arc<dyn ApprovalStore>,
    ) -> Self {
        let policy = SecurityPolicy::default();
        Discovery {
            server,
            verifier,
            unverified: default_handling(&policy),
            policy,
            store,
            approver: Arc::new(DenyAll),
            oauth: HashMap::new(),
        }
    }

    /// Trusts attestations issued by an OAuth authorization server (§5.3)
    /// for the providers in `providers`, verified with the keys of the
    /// issuer's JWKS (found as its [`etdi_auth::IssuerConfig`] says: OIDC
    /// discovery / RFC 8414, or a configured `jwks_uri`). Its attestations
    /// may use `typ` `etdi-tool+jwt`, `at+jwt` or `JWT`, and `scope` instead
    /// of `permissions`.
    ///
    /// The keys are looked up at each [`Discovery::discover_async`] round
    /// through `jwks`'s cache; [`Discovery::discover`], which cannot wait
    /// for the network, finds no key for this issuer and fails its
    /// attestations. Replaces earlier trust in the same issuer, static or
    /// OAuth, for attestations naming it as `iss`.
    #[must_use]
    pub fn trust_oauth_issuer(mut self, jwks: Arc<IssuerJwks>, providers: ProviderScope) -> Self {
        self.verifier.distrust_issuer(jwks.issuer());
        self.oauth
            .insert(jwks.issuer().to_owned(), OAuthIssuer { jwks, providers });
        self
    }

    /// Sets the policy; unverified tools are hidden at Strict (or when the
    /// policy filters `tools/list`) and flagged otherwise, unless
    /// [`Discovery::unverified`] is called afterwards.
    #[must_use]
    pub fn policy(mut self, policy: SecurityPolicy) -> Self {
        self.unverified = default_handling(&policy);
        self.policy = policy;
        self
    }

    /// Sets the handling of unusable tools explicitly.
    #[must_use]
    pub fn unverified(mut self, handling: UnverifiedHandling) -> Self {
        self.unverified = handling;
        self
    }

    /// Sets the approver.
    #[must_use]
    pub fn approver(mut self, approver: Arc<dyn Approver>) -> Self {
        self.approver = approver;
        self
    }

    /// The server this discovery is for.
    pub fn server(&self) -> &ServerId {
        &self.server
    }

    /// Whether the policy requires signed requests.
    pub fn policy_requires_request_signing(&self) -> bool {
        self.policy.require_request_signing
    }

    /// The attestation verifier, for trust and revocation updates.
    pub fn verifier_mut(&mut self) -> &mut AttestationVerifier {
        &mut self.verifier
    }

    /// Processes a `tools/list` result (each element an MCP `Tool` object)
    /// at the current time.
    pub fn discover(&self, tools: &[Map<String, Value>]) -> ToolCatalog {
        self.discover_at(tools, Timestamp::from(SystemTime::now()))
    }

    /// Processes a `tools/list` result at the current time, first obtaining
    /// the keys of the OAuth issuers the attestations name from their JWKS
    /// (see [`Discovery::trust_oauth_issuer`]). The approver and the store
    /// run on the calling task, as in [`Discovery::discover`]; with one that
    /// blocks, prefer [`crate::SecureClient`], which runs them off the async
    /// workers.
    pub async fn discover_async(&self, tools: &[Map<String, Value>]) -> ToolCatalog {
        self.discover_async_at(tools, Timestamp::from(SystemTime::now()))
            .await
    }

    /// [`Discovery::discover_async`] at `now`.
    pub async fn discover_async_at(
        &self,
        tools: &[Map<String, Value>],
        now: Timestamp,
    ) -> ToolCatalog {
        let keys = self.round_keys(tools).await;
        self.discover_with(tools, now, &keys)
    }

    /// Processes a `tools/list` result at `now`.
    pub fn discover_at(&self, tools: &[Map<String, Value>], now: Timestamp) -> ToolCatalog {
        self.discover_with(tools, now, &RoundKeys::default())
    }

    /// Obtains, through the OAuth issuers' JWKS caches, the key of every
    /// attestation in `tools` that names an OAuth issuer, and builds the
    /// round's verifier with them.
    pub(crate) async fn round_keys(&self, tools: &[Map<String, Value>]) -> RoundKeys {
        if self.oauth.is_empty() {
            return RoundKeys::default();
        }
        let mut rings: HashMap<&str, KeyRing> = HashMap::new();
        let mut unavailable = HashMap::new();
        // One lookup per (issuer, kid, alg): a listing repeating a `kid`
        // costs one lookup, and unknown ones are rate-limited by the cache.
        // The value is why the issuer's keys could not be obtained, if so.
        let mut asked: HashMap<(&str, Option<String>, Algorithm), Option<String>> = HashMap::new();
        for tool in tools {
            let Ok(Some(token)) = advertised::attestation_of(tool) else {
                continue;
            };
            let Ok(def) = advertised::definition_from_tool(tool) else {
                continue;
            };
            // Routing only: the JWS and its claims are verified afterwards.
            let Some(iss) = claimed_issuer(token, &def) else {
                continue;
            };
            let Some((iss, issuer)) = self.oauth.get_key_value(iss.as_str()) else {
                continue;
            };
            let Ok(header) = jws::peek_header(token) else {
                continue;
            };
            let kid = header.kid().map(str::to_owned);
            let lookup = (iss.as_str(), kid.clone(), header.alg());
            let why = match asked.get(&lookup) {
                Some(why) => why.clone(),
                None => {
                    let why = match issuer.jwks.key_for(kid.as_deref(), header.alg()).await {
                        Ok(key) => {
                            rings.entry(iss.as_str()).or_default().insert(key);
                            None
                        }
                        Err(e @ TokenError::Unavailable { .. }) => {
                            Some(format!("no key from the issuer's JWKS: {e}"))
                        }
                        // Unknown `kid` or a key of another algorithm: the
                        // key is simply not trusted, and verification says so.
                        Err(_) => None,
                    };
                    asked.insert(lookup, why.clone());
                    why
                }
            };
            if let Some(why) = why {
                unavailable.insert(token.to_owned(), (kid.unwrap_or_default(), why));
            }
        }
        let mut verifier = self.verifier.clone().accept_oauth_attestations(true);
        for (iss, issuer) in &self.oauth {
            let ring = rings.remove(iss.as_str()).unwrap_or_default();
            verifier.trust_issuer(iss.clone(), ring, issuer.providers.clone());
        }
        RoundKeys {
            oauth_verifier: Some(verifier),
            unavailable,
        }
    }

    /// Processes a `tools/list` result at `now` with the round's keys.
    pub(crate) fn discover_with(
        &self,
        tools: &[Map<String, Value>],
        now: Timestamp,
        keys: &RoundKeys,
    ) -> ToolCatalog {
        let mut catalog = ToolCatalog::default();
        let unix = UnixTime::from_secs(u64::try_from(now.unix_seconds()).unwrap_or(0));
        // One read of the pins per round; updated locally as approvals land.
        let mut pins = self.store.list_server(&self.server, now);
        for tool in tools {
            let entry = self.one(tool, now, unix, keys, &mut pins, &mut catalog.events);
            catalog.tools.push(entry);
        }
        // MCP names are unique per server; a listing that repeats one could
        // make a call reach a different tool than the one verified, so every
        // tool under a repeated name is refused.
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for t in &catalog.tools {
            *seen.entry(t.name.clone()).or_default() += 1;
        }
        for t in &mut catalog.tools {
            if seen.get(&t.name).copied().unwrap_or(0) > 1 {
                t.refusal = Some(Refusal::Malformed(format!(
                    "the tool name `{}` is listed more than once",
                    t.name
                )));
                t.visible = self.unverified == UnverifiedHandling::Flag;
            }
        }
        catalog
    }

    fn one(
        &self,
        tool: &Map<String, Value>,
        now: Timestamp,
        unix: UnixTime,
        keys: &RoundKeys,
        pins: &mut Result<Vec<Approval>, StoreError>,
        events: &mut Vec<AuditEvent>,
    ) -> DiscoveredTool {
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut out = DiscoveredTool {
            name,
            advertised: tool.clone(),
            definition: None,
            digest: None,
            verification: VerificationStatus::Unsigned,
            assessment: None,
            approval: None,
            refusal: None,
            visible: false,
        };
        let server = self.server.as_str();
        let malformed = |out: &mut DiscoveredTool, detail: String| {
            out.verification = VerificationStatus::Failed {
                failure: VerificationFailure::Malformed {
                    detail: detail.clone(),
                },
            };
            out.refusal = Some(Refusal::Malformed(detail));
            out.visible = self.unverified == UnverifiedHandling::Flag;
        };
        let def = match advertised::definition_from_tool(tool) {
            Ok(d) => d,
            Err(e) => {
                malformed(&mut out, e.to_string());
                return out;
            }
        };
        // The digest is computed once: for verification, pinning and
        // approvals alike.
        let digested = match DigestedDefinition::new(def) {
            Ok(d) => d,
            Err(e) => {
                malformed(&mut out, e.to_string());
                return out;
            }
        };
        let (def, digest) = (digested.definition(), digested.digest());
        let tref = audit::tool_ref(def);
        events.push(audit::tool_discovered(tref.clone(), server).build());
        let mut unavailable = None;
        out.verification = match advertised::attestation_of(tool) {
            Ok(Some(token)) => match keys.unavailable.get(token) {
                // Fail closed: no key could be obtained for this `kid`.
                Some((kid, why)) => {
                    unavailable = Some(why.clone());
                    VerificationStatus::Failed {
                        failure: VerificationFailure::UnknownKey {
                            key_id: kid.clone(),
                        },
                    }
                }
                None => self
                    .verifier_for(token, def, keys)
                    .verify_digested_status(token, &digested, unix),
            },
            Ok(None) => VerificationStatus::Unsigned,
            Err(e) => VerificationStatus::Failed {
                failure: VerificationFailure::Malformed {
                    detail: e.to_string(),
                },
            },
        };
        events.push(
            audit::tool_verification(tref.clone(), &out.verification)
                .server(server)
                .build(),
        );
        out.digest = Some(digest);
        out.definition = Some(def.clone());

        let signatures_required =
            self.policy.require_tool_signatures || def.security.require_signature;
        let signer = match &out.verification {
            VerificationStatus::Verified { issuer, key_id } => Some(Signer {
                issuer: issuer.clone(),
                key_id: key_id.clone(),
            }),
            VerificationStatus::Failed { failure } => {
                // A failing attestation is a forgery or tamper signal at
                // every level, never "just unsigned".
                let detail = match &unavailable {
                    Some(why) => format!("{failure}: {why}"),
                    None => failure.to_string(),
                };
                out.refusal = Some(Refusal::NotVerified(detail));
                out.visible = self.unverified == UnverifiedHandling::Flag;
                return out;
            }
            VerificationStatus::Unsigned if signatures_required => {
                out.refusal = Some(Refusal::NotVerified(
                    "the tool carries no attestation and signatures are required".into(),
                ));
                out.visible = self.unverified == UnverifiedHandling::Flag;
                return out;
            }
            VerificationStatus::Unsigned => None,
        };

        let current_pins = match pins {
            Ok(p) => p,
            Err(e) => {
                out.refusal = Some(Refusal::StoreFailure(e.to_string()));
                out.visible = self.unverified == UnverifiedHandling::Flag;
                return out;
            }
        };
        let observed = Observed {
            server: &self.server,
            definition: def,
            digest,
            signer: signer.as_ref(),
        };
        let assessment = rugpull::assess(&observed, current_pins);
        let summary = || {
            assessment
                .changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut new_pin: Option<(String, Option<Timestamp>)> = None;
        match assessment.verdict {
            Verdict::Approved => out.approval = assessment.previous.clone(),
            Verdict::AutoUpgrade => {
                let keep_expiry = assessment.previous.as_ref().and_then(|p| p.expires_at);
                new_pin = Some(("auto:version-bump".into(), keep_expiry));
            }
            Verdict::Blocked => {
                if let Some(prev) = &assessment.previous {
                    events.push(
                        audit::rug_pull_detected(tref.clone(), &prev.digest, &digest)
                            .server(server)
                            .reason(summary())
                            .build(),
                    );
                }
                out.refusal = Some(Refusal::Blocked(summary()));
            }
            Verdict::NeedsApproval => {
                if let Some(prev) = &assessment.previous {
                    events.push(
                        audit::rug_pull_detected(tref.clone(), &prev.digest, &digest)
                            .server(server)
                            .reason(summary())
                            .build(),
                    );
                }
                let request = ApprovalRequest {
                    server: &self.server,
                    definition: def,
                    verification: &out.verification,
                    assessment: &assessment,
                };
                match self.approver.decide(&request) {
                    ApprovalDecision::Approve { by, expires_at } => {
                        new_pin = Some((by, expires_at));
                    }
                    ApprovalDecision::Deny { reason } => {
                        out.refusal = Some(Refusal::NotApproved(reason));
                    }
                }
            }
        }
        if let Some((by, expires_at)) = new_pin {
            match self.record(def, signer, by, now, expires_at) {
                Ok(pin) => {
                    events.push(
                        audit::tool_approved(tref)
                            .server(server)
                            .detail("approved_by", pin.approved_by.as_str())
                            .build(),
                    );
                    crate::approval::upsert(current_pins, pin.clone());
                    out.approval = Some(pin);
                }
                Err(e) => out.refusal = Some(Refusal::StoreFailure(e.to_string())),
            }
        }
        out.assessment = Some(assessment);
        out.visible = out.refusal.is_none() || self.unverified == UnverifiedHandling::Flag;
        out
    }

    /// The verifier for `token`: the round's OAuth verifier when its
    /// (unverified) `iss` is an OAuth issuer, the static one otherwise.
    fn verifier_for<'a>(
        &'a self,
        token: &str,
        def: &ToolDefinition,
        keys: &'a RoundKeys,
    ) -> &'a AttestationVerifier {
        match &keys.oauth_verifier {
            Some(v) if claimed_issuer(token, def).is_some_and(|i| self.oauth.contains_key(&i)) => v,
            _ => &self.verifier,
        }
    }

    fn record(
        &self,
        def: &ToolDefinition,
        signer: Option<Signer>,
        by: String,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<Approval, StoreError> {
        let mut pin = Approval::new(self.server.clone(), def.clone(), signer, by, now)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        pin.expires_at = expires_at;
        self.store.put(pin.clone())?;
        Ok(pin)
    }
}

/// The `iss` of an attestation, read WITHOUT verifying its signature, to
/// pick the keys it must verify against. The strict parse and header checks
/// of etdi-crypto run first (a verifier that trusts no issuer stops at the
/// key lookup and names the claimed issuer), so routing reads `iss` exactly
/// as the verification that follows does.
fn claimed_issuer(token: &str, def: &ToolDefinition) -> Option<String> {
    let router = AttestationVerifier::new().accept_oauth_attestations(true);
    match router.verify_detailed(token, def, UnixTime::from_secs(0)) {
        Err(VerificationFailure::UntrustedIssuer { issuer }) => Some(issuer),
        _ => None,
    }
}

fn default_handling(policy: &SecurityPolicy) -> UnverifiedHandling {
    if policy.security_level == SecurityLevel::Strict || policy.filter_tools_list {
        UnverifiedHandling::Hide
    } else {
        UnverifiedHandling::Flag
    }
}
