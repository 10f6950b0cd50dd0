//! Pieces the examples share: keys, a token issuer whose tokens etdi-auth
//! verifies against its JWKS, servers on loopback, an MCP client over
//! Streamable HTTP, and readable summaries of call outcomes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use etdi_crypto::jws::{JwsHeader, sign as jws_sign};
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime};
use etdi_server::rmcp::model::{CallToolRequestParams, CallToolResult, RequestMetaObject};
use etdi_server::rmcp::service::RunningService;
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use etdi_server::rmcp::{ErrorData, RoleClient, ServiceError, ServiceExt};
use etdi_server::{BearerAuth, SecureServer};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::narrative::{Context, Failure};

/// A fresh key for `alg` from the default crypto provider.
pub fn key(alg: Algorithm) -> Result<Arc<SigningKey>, Failure> {
    let key = SigningKey::generate(CryptoProvider::get_default(), alg)
        .context(&format!("generating an {alg} key"))?;
    Ok(Arc::new(key))
}

/// The public JWK of `key` as JSON.
pub fn public_jwk(key: &SigningKey) -> Result<Value, Failure> {
    serde_json::to_value(key.verifying_key().to_jwk()).context("encoding a JWK")
}

/// An OAuth issuer standing in for the organisation's IdP: it mints RFC
/// 9068 JWT access tokens (ES256), and a verifier trusts it through its
/// JWKS given as a fixed document. (`oauth_providers` runs a real issuer on
/// loopback with discovery and a JWKS endpoint instead.)
pub struct TokenIssuer {
    /// `iss` of its tokens.
    pub iss: String,
    key: Arc<SigningKey>,
}

impl TokenIssuer {
    /// An issuer called `iss` with a fresh ES256 key.
    pub fn new(iss: impl Into<String>) -> Result<Self, Failure> {
        Ok(TokenIssuer {
            iss: iss.into(),
            key: key(Algorithm::ES256)?,
        })
    }

    /// Its JWKS document.
    pub fn jwks(&self) -> Result<Value, Failure> {
        Ok(json!({"keys": [public_jwk(&self.key)?]}))
    }

    /// An access token for `aud` naming `sub` (also its client id) with
    /// the space-separated `scope`, valid for five minutes.
    pub fn token(&self, aud: &str, sub: &str, scope: &str) -> Result<String, Failure> {
        static N: AtomicU64 = AtomicU64::new(0);
        let now = UnixTime::now().as_secs();
        let claims = json!({
            "iss": self.iss, "sub": sub, "aud": aud, "client_id": sub,
            "iat": now, "exp": now + 300, "scope": scope,
            "jti": format!("{sub}-{now}-{}", N.fetch_add(1, Ordering::Relaxed)),
        });
        let header = JwsHeader::new(Algorithm::ES256)
            .with_kid(self.key.kid().to_string())
            .with_typ("at+jwt");
        jws_sign(&self.key, &header, claims.to_string().as_bytes()).context("signing a token")
    }

    /// etdi-auth's verifier for tokens of this issuer addressed to `aud`.
    pub fn verifier(&self, aud: &str) -> Result<etdi_auth::TokenVerifier, Failure> {
        etdi_auth::TokenVerifier::builder()
            .issuer(
                etdi_auth::IssuerConfig::new(self.iss.clone())
                    .audience(aud)
                    .require_at_jwt(true)
                    .static_jwks(self.jwks()?),
            )
            .build()
            .context("building the token verifier")
    }

    /// Bearer authentication for a server whose resource id is `resource`.
    pub fn bearer(&self, resource: &str, scopes: &[&str]) -> Result<BearerAuth, Failure> {
        Ok(BearerAuth {
            verifier: Arc::new(self.verifier(resource)?),
            resource: resource.to_owned(),
            authorization_servers: vec![self.iss.clone()],
            scopes_supported: scopes.iter().map(|s| (*s).to_owned()).collect(),
            required_scopes: Vec::new(),
            accept_client_certificates: false,
        })
    }
}

/// Binds 127.0.0.1 on a free port; returns the listener and the MCP
/// endpoint URL on it (`http://127.0.0.1:PORT/mcp`).
pub async fn loopback() -> Result<(TcpListener, String), Failure> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    Ok((listener, format!("http://{addr}/mcp")))
}

/// Serves `server` over Streamable HTTP on `listener` in the background
/// until the runtime ends.
pub fn spawn_http<H>(server: SecureServer<H>, listener: TcpListener)
where
    H: etdi_server::rmcp::ServerHandler + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let options = etdi_server::http::HttpOptions::default();
        if let Err(e) = etdi_server::http::serve_http(server, listener, options).await {
            eprintln!("server stopped: {e}");
        }
    });
}

/// A plain MCP client (rmcp) session.
pub type McpClient = RunningService<RoleClient, ()>;

/// Connects a plain MCP client to `url` with the bearer `token`.
pub async fn http_client(url: &str, token: &str) -> Result<McpClient, Failure> {
    ().serve(StreamableHttpClientTransport::from_config(http_config(
        url, token,
    )))
    .await
    .context(&format!("connecting to {url}"))
}

/// `tools/call` parameters with `arguments` and, if given, `_meta`.
pub fn params(
    name: &str,
    arguments: &Value,
    meta: Option<Map<String, Value>>,
) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(a) = arguments {
        p = p.with_arguments(a.clone());
    }
    if let Some(meta) = meta {
        let mut m = RequestMetaObject::new();
        m.0.0.extend(meta);
        p.meta = Some(m);
    }
    p
}

/// The `_meta` carrying a request signature.
pub fn signature_meta(token: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        etdi_crypto::advertised::META_REQUEST_SIGNATURE.into(),
        Value::from(token),
    );
    m
}

/// The text of a tool result (its first text content).
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// `CODE reason,reason` of an ETDI refusal (PROTOCOL §10).
pub fn refusal_of(e: &ErrorData) -> String {
    let reasons: Vec<&str> = e
        .data
        .as_ref()
        .and_then(|d| d.get("reasons"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("code").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    format!("{} {}", e.code.0, reasons.join(","))
}

/// A call's outcome in one line: `ok: TEXT` for a result, `refused CODE
/// REASONS` for an ETDI refusal, `error: ...` otherwise.
pub fn outcome(result: &Result<CallToolResult, ServiceError>) -> String {
    match result {
        Ok(r) => format!("ok: {}", text_of(r)),
        Err(ServiceError::McpError(e)) => format!("refused {}", refusal_of(e)),
        Err(e) => format!("error: {e}"),
    }
}

/// The message of a refusal, for the narrative.
pub fn refusal_message(result: &Result<CallToolResult, ServiceError>) -> Option<String> {
    match result {
        Err(ServiceError::McpError(e)) => Some(e.message.to_string()),
        _ => None,
    }
}

/// Header and claims of a compact JWS, decoded WITHOUT verification, for
/// showing what was signed.
pub fn decode_jws(token: &str) -> Result<(Value, Value), Failure> {
    let mut parts = token.split('.');
    let mut part = |what: &str| -> Result<Value, Failure> {
        let text = parts.next().context(&format!("JWS has no {what}"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .context(&format!("JWS {what} is not base64url"))?;
        serde_json::from_slice(&bytes).context(&format!("JWS {what} is not JSON"))
    };
    let header = part("header")?;
    let claims = part("payload")?;
    Ok((header, claims))
}

/// `text` with the character at `at` (counted in bytes, ASCII only)
/// replaced by a different base64url character: a one-character forgery.
pub fn flip_char(text: &str, at: usize) -> String {
    text.char_indices()
        .map(|(i, c)| {
            if i == at {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect()
}

/// The index of the middle of a compact JWS's signature part.
pub fn middle_of_signature(token: &str) -> usize {
    let start = token.rfind('.').map_or(0, |i| i + 1);
    start + (token.len().saturating_sub(start)) / 2
}

/// [`outcome`] for a call through etdi-client's `SecureClient`: a local
/// refusal (never sent) reads `refused locally CODE REASONS`.
pub fn client_outcome(result: &Result<CallToolResult, etdi_client::ClientError>) -> String {
    use etdi_client::ClientError;
    match result {
        Ok(r) => format!("ok: {}", text_of(r)),
        Err(ClientError::Refused(c)) => {
            let reasons: Vec<&str> = c.reasons.iter().map(etdi_core::DenyReason::code).collect();
            format!("refused locally {} {}", c.code(), reasons.join(","))
        }
        Err(ClientError::Service(ServiceError::McpError(e))) => {
            format!("refused {}", refusal_of(e))
        }
        Err(e) => format!("error: {e}"),
    }
}

/// The Streamable HTTP client configuration for `url` with the bearer
/// `token` (`StreamableHttpClientTransport::from_config` makes the
/// transport for etdi-client's `SecureClient::connect`).
pub fn http_config(url: &str, token: &str) -> StreamableHttpClientTransportConfig {
    StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned())
}

/// Member `name` of a JSON object (`null` when absent or not an object).
pub fn claim<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

/// Sets member `name` of a JSON object (does nothing to a non-object).
pub fn set_claim(value: &mut Value, name: &str, to: Value) {
    if let Some(m) = value.as_object_mut() {
        m.insert(name.to_owned(), to);
    }
}
