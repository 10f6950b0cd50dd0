//! Tool-to-tool calls across servers: a tool running here calls a tool on
//! another ETDI server with the call chain extended by a hop this server
//! signs (docs/PROTOCOL.md §7), so the callee enforces the chain rules.
//!
//! The onward call authenticates with this server's own token for the
//! remote server: a received token is never passed through (§11).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use etdi_core::{Hop, Permission, ServerId};
use etdi_crypto::chain::{HopSigner, HopToSign};
use etdi_crypto::request::{CallToSign, RequestSigner};
use etdi_crypto::{SigningKey, UnixTime};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

use crate::tool::CallInfo;
use crate::wire;

/// Supplies this server's access token for a remote server (for example
/// from an OAuth client-credentials grant in etdi-auth).
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A current access token.
    async fn token(&self) -> Result<String, String>;
}

/// A fixed token (tests, or tokens managed outside the process).
#[derive(Clone)]
pub struct StaticToken(pub String);

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(..)")
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// A remote ETDI server reachable over Streamable HTTP.
#[derive(Clone)]
pub struct RemoteServer {
    /// The MCP endpoint URL.
    pub url: String,
    /// Its audience (server id), which the hop and request signature name.
    pub audience: String,
    /// This server's token for it, if it requires one.
    pub token: Option<Arc<dyn TokenSource>>,
}

impl std::fmt::Debug for RemoteServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteServer")
            .field("url", &self.url)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Why an onward call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No remote servers (or no hop signer) are configured.
    #[error("this server is not configured to call other servers")]
    NotConfigured,
    /// The named server is not configured.
    #[error("no remote server named `{0}` is configured")]
    UnknownServer(String),
    /// The chain could not be extended (too long) or signed.
    #[error("could not extend the call chain: {0}")]
    Chain(String),
    /// Connecting or talking MCP failed.
    #[error("remote call failed: {0}")]
    Transport(String),
    /// The remote server refused the call with a JSON-RPC error (an ETDI
    /// denial has its §10 code and data).
    #[error("remote server refused the call: {0:?}")]
    Refused(rmcp::ErrorData),
}

/// Makes onward calls for the tools of one server.
pub struct RemoteCaller {
    audience: ServerId,
    servers: HashMap<String, RemoteServer>,
    key: Arc<SigningKey>,
    hops: HopSigner,
    requests: Option<RequestSigner>,
}

impl std::fmt::Debug for RemoteCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCaller")
            .field("audience", &self.audience)
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl RemoteCaller {
    pub(crate) fn new(
        audience: ServerId,
        servers: HashMap<String, RemoteServer>,
        key: Arc<SigningKey>,
        request_issuer: Option<String>,
    ) -> Self {
        RemoteCaller {
            hops: HopSigner::new(audience.clone()),
            audience,
            servers,
            key,
            requests: request_issuer.map(RequestSigner::new),
        }
    }

    pub(crate) async fn call(
        &self,
        info: &CallInfo,
        server: &str,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, RemoteError> {
        let remote = self
            .servers
            .get(server)
            .ok_or_else(|| RemoteError::UnknownServer(server.to_owned()))?;
        let chain_err = |e: String| RemoteError::Chain(e);

        // The hop records the rights the principal holds here, so the next
        // server can refuse what this principal could not do itself.
        let scope: BTreeSet<String> = info
            .principal
            .scopes
            .iter()
            .filter(|s| Permission::parse(s).is_ok())
            .cloned()
            .collect();
        let now = UnixTime::now();
        let hop = HopToSign {
            tool: &info.tool.id,
            principal: &info.principal.subject,
            scope: &scope,
            audience: &remote.audience,
        };
        let jws = self
            .hops
            .append(&self.key, &info.hop_jws, &hop, now)
            .map_err(|e| chain_err(e.to_string()))?;
        let mut hop_list = info.hop_jws.clone();
        hop_list.push(jws);
        let chain = info
            .chain
            .extended(Hop {
                server: self.audience.clone(),
                tool: info.tool.id.clone(),
                principal: info.principal.subject.clone(),
            })
            .map_err(|e| chain_err(e.to_string()))?;

        let mut meta = RequestMetaObject::new();
        meta.0.0.insert(
            wire::META_CALL_CHAIN.into(),
            Value::Array(hop_list.into_iter().map(Value::from).collect()),
        );
        if let Some(signer) = &self.requests {
            let call = CallToSign {
                audience: &remote.audience,
                tool,
                arguments: Some(&arguments),
                chain: &chain,
            };
            let sig = signer
                .sign(&self.key, &call, now)
                .map_err(|e| chain_err(e.to_string()))?;
            meta.0
                .0
                .insert(wire::META_REQUEST_SIGNATURE.into(), Value::from(sig));
        }

        let mut config = StreamableHttpClientTransportConfig::with_uri(remote.url.clone());
        if let Some(t) = &remote.token {
            config = config.auth_header(t.token().await.map_err(RemoteError::Transport)?);
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        let client = ().serve(transport).await.map_err(|e| RemoteError::Transport(e.to_string()))?;
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        params.meta = Some(meta);
        let result = client.call_tool(params).await;
        // Closing is best effort; the call's result is what matters.
        let _ = client.cancel().await;
        match result {
            Ok(r) => Ok(r),
            Err(rmcp::ServiceError::McpError(e)) => Err(RemoteError::Refused(e)),
            Err(e) => Err(RemoteError::Transport(e.to_string())),
        }
    }
}
