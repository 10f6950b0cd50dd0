//! Shared helpers for the etdi-server integration tests: servers with a
//! known tool set, in-process MCP clients, and audit assertions.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(dead_code)]

pub mod load_server;
pub mod sockets;

use std::sync::Arc;

use etdi_core::{AuthMethod, EventKind, Principal, SecurityLevel, SecurityPolicy};
use etdi_server::audit::MemoryAudit;
use etdi_server::rmcp::model::{CallToolRequestParams, JsonObject, RequestMetaObject};
use etdi_server::rmcp::service::RunningService;
use etdi_server::rmcp::{RoleClient, ServiceExt};
use etdi_server::{EtdiTool, SecureServer, SecureServerBuilder, ToolContext};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// Text to echo.
    pub text: String,
}

/// A builder with the demo tools: `echo` (needs `demo:read`) and `write`
/// (needs `demo:write`), provider `com.example`.
pub fn demo_builder(policy: SecurityPolicy, audit: Arc<MemoryAudit>) -> SecureServerBuilder {
    SecureServer::builder("demo-server")
        .audience("https://demo.example/mcp")
        .policy(policy)
        .provider("com.example", "Example Corp")
        .audit(audit)
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .description("Echoes text")
                .permissions(["demo:read"])
                .handler(|a: EchoArgs, _ctx: ToolContext| async move { a.text }),
        )
        .tool(
            EtdiTool::new("write", "1.0.0")
                .description("Pretends to write")
                .permissions(["demo:write"])
                .handler(
                    |a: EchoArgs, _ctx: ToolContext| async move { format!("wrote {}", a.text) },
                ),
        )
}

/// Basic policy without client-side signature requirement, so a server
/// without an attestation signer builds.
pub fn basic() -> SecurityPolicy {
    let mut p = SecurityPolicy::new(SecurityLevel::Basic);
    p.audit_all_calls = true;
    p
}

pub fn alice(scopes: &[&str]) -> Principal {
    Principal::new("alice", AuthMethod::Local).with_scopes(scopes.iter().copied())
}

pub type Client = RunningService<RoleClient, ()>;

/// Connects an in-process MCP client to `server` over a duplex pipe (the
/// same framing as stdio).
pub async fn connect<H: etdi_server::rmcp::ServerHandler>(server: SecureServer<H>) -> Client {
    let (c, s) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(s).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(c).await.expect("client connects")
}

pub fn args(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        _ => panic!("arguments must be an object"),
    }
}

pub fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned()).with_arguments(args(arguments))
}

pub fn call_with_meta(name: &str, arguments: Value, meta: Value) -> CallToolRequestParams {
    let mut p = call(name, arguments);
    let mut m = RequestMetaObject::new();
    if let Value::Object(o) = meta {
        m.0.0.extend(o);
    }
    p.meta = Some(m);
    p
}

/// The JSON-RPC error of a refused call.
pub async fn refused(
    client: &Client,
    params: CallToolRequestParams,
) -> etdi_server::rmcp::ErrorData {
    match client.call_tool(params).await {
        Err(etdi_server::rmcp::ServiceError::McpError(e)) => e,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

pub fn reason_codes(e: &etdi_server::rmcp::ErrorData) -> Vec<String> {
    e.data
        .as_ref()
        .and_then(|d| d.get("reasons"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("code").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that `audit` holds a denied event of `kind` for `step` whose
/// reason codes include `code`.
pub fn assert_denied_event(audit: &MemoryAudit, step: &str, kind: EventKind, code: &str) {
    let events = audit.for_step(step);
    assert!(
        events.iter().any(|e| e.kind == kind
            && e.outcome == etdi_core::Outcome::Denied
            && e.reason_codes.iter().any(|c| c == code)),
        "no denied {kind} event with reason {code} at step {step}; events: {:#?}",
        audit.events()
    );
}

pub fn sample_meta_ok() -> Value {
    json!({})
}

// ---- real etdi-crypto keys and signers -------------------------------------

use etdi_core::CallChain;
use etdi_crypto::attestation::AttestationSigner;
use etdi_crypto::chain::{ChainVerifier, HopSigner, HopToSign};
use etdi_crypto::request::{CallToSign, RequestSigner, RequestVerifier};
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime};

pub const AUDIENCE: &str = "https://demo.example/mcp";
pub const UPSTREAM: &str = "https://upstream.example/mcp";

pub fn es256() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap())
}

/// Keys of one test world: the provider's attestation key, the client's
/// request-signing key (issuer `alice`), and an upstream server's hop key.
pub struct Keys {
    pub provider: Arc<SigningKey>,
    pub client: Arc<SigningKey>,
    pub upstream: Arc<SigningKey>,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            provider: es256(),
            client: es256(),
            upstream: es256(),
        }
    }

    pub fn request_verifier(&self) -> RequestVerifier {
        let mut issuers = IssuerKeys::new();
        issuers.add("alice", self.client.verifying_key().clone());
        RequestVerifier::new(AUDIENCE, issuers)
    }

    pub fn chain_verifier(&self) -> ChainVerifier {
        let mut issuers = IssuerKeys::new();
        issuers.add(UPSTREAM, self.upstream.verifying_key().clone());
        ChainVerifier::new(AUDIENCE, issuers)
    }

    /// A builder with attestations, request and chain verification.
    pub fn secure_builder(
        &self,
        policy: SecurityPolicy,
        audit: Arc<MemoryAudit>,
    ) -> SecureServerBuilder {
        demo_builder(policy, audit)
            .attestation(AttestationSigner::new("com.example"), self.provider.clone())
            .request_verifier(self.request_verifier())
            .chain_verifier(self.chain_verifier())
    }

    /// Signs a call to `tool` with `arguments` for `chain`.
    pub fn sign(&self, tool: &str, arguments: &Value, chain: &CallChain) -> String {
        RequestSigner::new("alice")
            .sign(
                &self.client,
                &CallToSign {
                    audience: AUDIENCE,
                    tool,
                    arguments: arguments.as_object(),
                    chain,
                },
                UnixTime::now(),
            )
            .unwrap()
    }

    /// One hop from the upstream server's tool `caller`, run for
    /// `principal` holding `scope`, calling this server.
    pub fn hop(&self, caller: &str, principal: &str, scope: &[&str]) -> (Vec<String>, CallChain) {
        let scope: std::collections::BTreeSet<String> =
            scope.iter().map(|s| s.to_string()).collect();
        let tool = etdi_core::ToolId::parse(caller).unwrap();
        let jws = HopSigner::new(etdi_core::ServerId::parse(UPSTREAM).unwrap())
            .append(
                &self.upstream,
                &Vec::<String>::new(),
                &HopToSign {
                    tool: &tool,
                    principal,
                    scope: &scope,
                    audience: AUDIENCE,
                },
                UnixTime::now(),
            )
            .unwrap();
        let mut chain = CallChain::new();
        chain
            .push(etdi_core::Hop {
                server: etdi_core::ServerId::parse(UPSTREAM).unwrap(),
                tool,
                principal: principal.to_owned(),
            })
            .unwrap();
        (vec![jws], chain)
    }
}

// ---- HTTP: a local token issuer and a loopback server ----------------------

use etdi_crypto::jws::{JwsHeader, sign as jws_sign};

/// A local OAuth issuer for tests that do not need a real authorization
/// server: it signs RFC 9068 JWT access tokens (ES256), and etdi-auth's
/// verifier checks them against its JWKS. (tests/python_client.rs uses the
/// real oidc-provider instead.)
pub struct LocalIssuer {
    pub iss: String,
    key: Arc<SigningKey>,
}

impl LocalIssuer {
    pub fn new() -> Self {
        LocalIssuer {
            iss: "https://issuer.test".into(),
            key: es256(),
        }
    }

    pub fn jwks(&self) -> Value {
        let jwk: Value =
            serde_json::from_str(&self.key.verifying_key().to_jwk().to_json()).unwrap();
        json!({"keys": [jwk]})
    }

    pub fn token(&self, aud: &str, sub: &str, scope: &str) -> String {
        let now = UnixTime::now().as_secs();
        let claims = json!({
            "iss": self.iss, "sub": sub, "aud": aud, "client_id": sub,
            "iat": now, "exp": now + 300, "jti": format!("jti-{sub}-{now}-{}", rand_suffix()),
            "scope": scope,
        });
        let header = JwsHeader::new(Algorithm::ES256)
            .with_kid(self.key.kid().to_string())
            .with_typ("at+jwt");
        jws_sign(&self.key, &header, claims.to_string().as_bytes()).unwrap()
    }

    pub fn verifier(&self, audience: &str) -> etdi_auth::TokenVerifier {
        etdi_auth::TokenVerifier::builder()
            .issuer(
                etdi_auth::IssuerConfig::new(self.iss.clone())
                    .audience(audience)
                    .static_jwks(self.jwks()),
            )
            .build()
            .unwrap()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Binds 127.0.0.1:0 and returns the listener and its base URL.
pub async fn loopback() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// Serves `server` on `listener` in the background.
pub fn spawn_http<H>(server: SecureServer<H>, listener: tokio::net::TcpListener)
where
    H: etdi_server::rmcp::ServerHandler + Send + Sync + 'static,
{
    let app = etdi_server::http::router(server, etdi_server::http::HttpOptions::default()).unwrap();
    tokio::spawn(async move {
        let _ = axum_serve(listener, app).await;
    });
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(etdi_server::listener::TcpAccept::new(listener), app).await
}

pub fn bearer(
    verifier: etdi_auth::TokenVerifier,
    resource: &str,
    required: &[&str],
) -> etdi_server::BearerAuth {
    etdi_server::BearerAuth {
        verifier: Arc::new(verifier),
        resource: resource.to_owned(),
        authorization_servers: vec!["https://issuer.test".into()],
        scopes_supported: vec!["demo:read".into(), "demo:write".into(), "mcp:tools".into()],
        required_scopes: required.iter().map(|s| s.to_string()).collect(),
        accept_client_certificates: false,
    }
}

/// An rmcp client over Streamable HTTP with `token`.
pub async fn http_client(url: &str, token: &str) -> Client {
    use etdi_server::rmcp::transport::StreamableHttpClientTransport;
    use etdi_server::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("HTTP client connects")
}
