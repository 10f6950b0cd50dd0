//! The verifying MCP client on `rmcp`: lists and verifies tools, re-verifies
//! after `notifications/tools/list_changed`, refuses calls to tools that are
//! not listed and approved, signs requests where the server or the policy
//! requires it, and extends and signs the call chain on tool-to-tool calls.
//!
//! Transport-independent: connect it over stdio, a child process or
//! Streamable HTTP (see [`crate::http`] for bearer tokens there).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use etdi_core::{CallChain, Hop, ServerId, Timestamp, ToolId};
use etdi_crypto::chain::{HopSigner, HopToSign};
use etdi_crypto::request::{CallToSign, RequestSigner};
use etdi_crypto::{SigningKey, UnixTime, advertised};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, RequestMetaObject, Tool};
use rmcp::service::{NotificationContext, RoleClient, RunningService, ServiceExt};
use rmcp::{ClientHandler, ServiceError};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::discovery::{CallRefused, Discovery, ToolCatalog};

/// Key under `capabilities.experimental` announcing ETDI (PROTOCOL §1).
pub const CAPABILITY: &str = "dev.etdi";

/// The client's `rmcp` handler: marks the catalog stale when the server
/// says its tool list changed, so the next use re-verifies.
#[derive(Debug, Clone, Default)]
pub struct EtdiHandler {
    stale: Arc<AtomicBool>,
}

impl ClientHandler for EtdiHandler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.stale.store(true, Ordering::SeqCst);
    }
}

/// Keys and identity for signing requests (PROTOCOL §6).
#[derive(Debug, Clone)]
pub struct RequestSigning {
    /// The signer (its issuer is the client id the server knows).
    pub signer: RequestSigner,
    /// The key.
    pub key: Arc<SigningKey>,
}

/// What a tool running on a server needs to call onward with the chain
/// extended by a hop it signs (PROTOCOL §7).
#[derive(Debug, Clone, Copy)]
pub struct OnwardCall<'a> {
    /// The hop tokens this server received, outermost first (empty for a
    /// direct call).
    pub received: &'a [String],
    /// Their decoded, verified chain.
    pub chain: &'a CallChain,
    /// This server's id (its audience), as in its hops.
    pub server: &'a ServerId,
    /// This server's hop signer.
    pub hop_signer: &'a HopSigner,
    /// The key it signs hops with.
    pub key: &'a SigningKey,
    /// The tool making the onward call.
    pub tool: &'a ToolId,
    /// The principal that tool runs for.
    pub principal: &'a str,
    /// The permissions that principal holds here.
    pub scope: &'a BTreeSet<String>,
}

/// Why a call through [`SecureClient`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Refused locally (PROTOCOL §10 shape).
    #[error(transparent)]
    Refused(#[from] CallRefused),
    /// The server or the transport failed (a server-side ETDI refusal
    /// arrives here as `ServiceError::McpError` with its §10 data).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Signing the request or the hop failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// Discovery could not run.
    #[error("discovery failed: {0}")]
    Discovery(String),
}

/// How the server asks for request signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SigningMode {
    Required,
    PerTool,
    Optional,
}

/// A connected, verifying MCP client.
pub struct SecureClient {
    service: RunningService<RoleClient, EtdiHandler>,
    discovery: Arc<Discovery>,
    catalog: Mutex<Option<Arc<ToolCatalog>>>,
    stale: Arc<AtomicBool>,
    signing: Option<RequestSigning>,
    require_signing: bool,
}

impl std::fmt::Debug for SecureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureClient")
            .field("discovery", &self.discovery)
            .finish_non_exhaustive()
    }
}

impl SecureClient {
    /// Connects over `transport` (any `rmcp` client transport) and runs
    /// discovery once.
    pub async fn connect<T, E, A>(transport: T, discovery: Discovery) -> Result<Self, ClientError>
    where
        T: rmcp::transport::IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let handler = EtdiHandler::default();
        let stale = handler.stale.clone();
        let service = handler
            .serve(transport)
            .await
            .map_err(|e| ClientError::Discovery(format!("connecting: {e}")))?;
        let client = SecureClient {
            service,
            discovery: Arc::new(discovery),
            catalog: Mutex::new(None),
            stale,
            signing: None,
            require_signing: false,
        };
        client.refresh().await?;
        Ok(client)
    }

    /// Signs requests with these keys where the server announces
    /// `requestSigning: "required"`, the tool sets
    /// `security.requireRequestSigning`, the policy requires request signing,
    /// or [`SecureClient::always_sign`] is set. Without keys such calls are
    /// refused locally (`request_signature_required`).
    #[must_use]
    pub fn with_request_signing(mut self, signing: RequestSigning) -> Self {
        self.signing = Some(signing);
        self
    }

    /// Signs every request, whatever the server announces (the client-side
    /// policy's `require_request_signing`).
    #[must_use]
    pub fn always_sign(mut self, on: bool) -> Self {
        self.require_signing = on;
        self
    }

    /// The underlying `rmcp` service (for everything that is not a tool).
    pub fn service(&self) -> &RunningService<RoleClient, EtdiHandler> {
        &self.service
    }

    /// Lists the server's tools and runs verified discovery on them.
    pub async fn refresh(&self) -> Result<Arc<ToolCatalog>, ClientError> {
        // Clear first: a notification arriving during the listing marks the
        // new catalog stale again.
        self.stale.store(false, Ordering::SeqCst);
        let tools = self.service.peer().list_all_tools().await?;
        let listed: Vec<Map<String, Value>> = tools
            .iter()
            .filter_map(|t| match serde_json::to_value(t) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            })
            .collect();
        let discovery = self.discovery.clone();
        // Keys of OAuth attestation issuers come from their JWKS (async).
        let keys = discovery.round_keys(&listed).await;
        // The approver may prompt a person and the store does file I/O: keep
        // both off the async workers.
        let catalog = tokio::task::spawn_blocking(move || {
            discovery.discover_with(&listed, Timestamp::from(SystemTime::now()), &keys)
        })
        .await
        .map_err(|e| ClientError::Discovery(e.to_string()))?;
        let catalog = Arc::new(catalog);
        *self.catalog.lock().await = Some(catalog.clone());
        Ok(catalog)
    }

    /// The current catalog, re-verified first if the server announced a
    /// change since the last discovery.
    pub async fn catalog(&self) -> Result<Arc<ToolCatalog>, ClientError> {
        let current = self.catalog.lock().await.clone();
        match current {
            Some(c) if !self.stale.load(Ordering::SeqCst) => Ok(c),
            _ => self.refresh().await,
        }
    }

    /// The tools to show a model: only usable (verified where required and
    /// approved) ones, as MCP `Tool`s. Flagged tools stay out, because a
    /// poisoned description does its harm by being read; user interfaces
    /// find them in [`ToolCatalog::visible`].
    pub async fn tools(&self) -> Result<Vec<Tool>, ClientError> {
        let catalog = self.catalog().await?;
        Ok(catalog
            .usable()
            .filter_map(|t| serde_json::from_value(Value::Object(t.advertised.clone())).ok())
            .collect())
    }

    /// Calls a tool directly.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, ClientError> {
        self.call(name, arguments, None).await
    }

    /// Calls a tool on behalf of a tool running on a server, with the call
    /// chain extended by a hop that server signs.
    pub async fn call_tool_onward(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        onward: &OnwardCall<'_>,
    ) -> Result<CallToolResult, ClientError> {
        self.call(name, arguments, Some(onward)).await
    }

    fn signing_mode(&self) -> (SigningMode, Option<String>) {
        let Some(info) = self.service.peer().peer_info() else {
            return (SigningMode::Optional, None);
        };
        let Some(cap) = info
            .capabilities
            .experimental
            .as_ref()
            .and_then(|e| e.get(CAPABILITY))
        else {
            return (SigningMode::Optional, None);
        };
        let mode = match cap.get("requestSigning").and_then(Value::as_str) {
            Some("required") => SigningMode::Required,
            Some("per-tool") => SigningMode::PerTool,
            _ => SigningMode::Optional,
        };
        let audience = cap
            .get("audience")
            .and_then(Value::as_str)
            .map(str::to_owned);
        (mode, audience)
    }

    async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        onward: Option<&OnwardCall<'_>>,
    ) -> Result<CallToolResult, ClientError> {
        let catalog = self.catalog().await?;
        let tool = catalog.check_call(name)?;
        let tool_requires = tool
            .definition
            .as_ref()
            .is_some_and(|d| d.security.require_request_signing);
        let (mode, audience) = self.signing_mode();
        let must_sign = self.require_signing
            || tool_requires
            || mode == SigningMode::Required
            || self.discovery.policy_requires_request_signing();
        let now = UnixTime::now();
        let audience = audience.unwrap_or_else(|| self.discovery.server().as_str().to_owned());

        let mut meta = RequestMetaObject::new();
        let mut chain = CallChain::new();
        if let Some(o) = onward {
            let hop = HopToSign {
                tool: o.tool,
                principal: o.principal,
                scope: o.scope,
                audience: &audience,
            };
            let token = o
                .hop_signer
                .append(o.key, o.received, &hop, now)
                .map_err(|e| ClientError::Signing(e.to_string()))?;
            chain = o
                .chain
                .extended(Hop {
                    server: o.server.clone(),
                    tool: o.tool.clone(),
                    principal: o.principal.to_owned(),
                })
                .map_err(|e| ClientError::Signing(e.to_string()))?;
            let mut hops: Vec<Value> = o.received.iter().cloned().map(Value::from).collect();
            hops.push(Value::from(token));
            meta.0
                .0
                .insert(advertised::META_CALL_CHAIN.into(), Value::Array(hops));
        }
        // Sign only where asked: a server that does not expect signatures may
        // not know this client's key.
        match (&self.signing, must_sign) {
            (Some(s), true) => {
                let call = CallToSign {
                    audience: &audience,
                    tool: name,
                    arguments: arguments.as_ref(),
                    chain: &chain,
                };
                let sig = s
                    .signer
                    .sign(&s.key, &call, now)
                    .map_err(|e| ClientError::Signing(e.to_string()))?;
                meta.0
                    .0
                    .insert(advertised::META_REQUEST_SIGNATURE.into(), Value::from(sig));
            }
            (None, true) => {
                return Err(ClientError::Refused(CallRefused {
                    reasons: vec![etdi_core::DenyReason::RequestSignatureRequired],
                }));
            }
            (_, false) => {}
        }
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Some(a) = arguments {
            params = params.with_arguments(a);
        }
        if !meta.0.0.is_empty() {
            params.meta = Some(meta);
        }
        Ok(self.service.peer().call_tool(params).await?)
    }

    /// Closes the session.
    pub async fn close(self) -> Result<(), ClientError> {
        self.service
            .cancel()
            .await
            .map(|_| ())
            .map_err(|e| ClientError::Discovery(format!("closing: {e}")))
    }
}
