//! `etdi-demo-server`: a SecureServer over stdio with two demo tools, used
//! by the interop tests to let unmodified MCP clients (the Python SDK)
//! drive a real ETDI server process. Not a production server: its
//! attestation key is generated at start-up and its audit log is stderr.
//!
//! `etdi-demo-server` (stdio): environment `ETDI_DEMO_SCOPES` —
//! space-separated scopes of the local identity (default `demo:read`, so
//! `echo` is allowed and `write` denied) — and `ETDI_DEMO_ATTESTATION_KEY`,
//! the path of an ES256 PKCS#8 PEM key to attest the tools with (default: a
//! fresh key nobody trusts).
//!
//! `etdi-demo-server http`: Streamable HTTP on 127.0.0.1 (a free port),
//! printing `{"url": ...}` on stdout once listening; the URL is also its
//! audience. It trusts bearer tokens of `ETDI_DEMO_ISSUER` with the static
//! JWKS `ETDI_DEMO_JWKS`, and call-chain hops signed by the server
//! `ETDI_DEMO_HOP_ISSUER` with the public JWK `ETDI_DEMO_HOP_JWK`. Tools:
//! `echo` (reports the chain it saw), `write` (needs `demo:write`) and
//! `guarded` (refuses the caller `com.a/relay`). Audit events are JSON
//! lines on stderr. It stops when stdin closes.

use std::process::ExitCode;
use std::sync::Arc;

use etdi_core::{AuditEvent, AuthMethod, Principal, SecurityPolicy};
use etdi_crypto::attestation::AttestationSigner;
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
use etdi_server::schemars::JsonSchema;
use etdi_server::stages::{AuditRecorder, StageError};
use etdi_server::{EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;

/// Writes each audit event as one JSON line on stderr (stdout carries the
/// protocol). A write failure is an audit failure, so the call is denied.
struct StderrAudit;

#[async_trait::async_trait]
impl AuditRecorder for StderrAudit {
    async fn record(&self, event: AuditEvent) -> Result<(), StageError> {
        use std::io::Write;
        let line = serde_json::to_string(&event).map_err(|e| StageError::new(e.to_string()))?;
        writeln!(std::io::stderr().lock(), "{line}").map_err(|e| StageError::new(e.to_string()))
    }
}

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct TextArgs {
    /// The text.
    text: String,
}

fn build() -> Result<SecureServer, String> {
    let scopes = std::env::var("ETDI_DEMO_SCOPES").unwrap_or_else(|_| "demo:read".into());
    // A client that pins the provider's key passes it in; otherwise the
    // key is generated and its attestations verify for nobody.
    let key = match std::env::var_os("ETDI_DEMO_ATTESTATION_KEY") {
        Some(path) => {
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                format!("ETDI_DEMO_ATTESTATION_KEY {}: {e}", path.to_string_lossy())
            })?;
            SigningKey::from_pkcs8_pem(CryptoProvider::get_default(), &pem, Algorithm::ES256)
                .map_err(|e| format!("ETDI_DEMO_ATTESTATION_KEY: {e}"))?
        }
        None => SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)
            .map_err(|e| e.to_string())?,
    };
    SecureServer::builder("etdi-demo-server")
        .audience("urn:etdi:demo-server")
        .policy(SecurityPolicy::default())
        .provider("com.example", "Example Corp")
        .attestation(AttestationSigner::new("com.example"), Arc::new(key))
        .audit(Arc::new(StderrAudit))
        .local_identity(
            Principal::new("local-operator", AuthMethod::Local)
                .with_scopes(scopes.split_whitespace()),
        )
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .description("Echoes the text back")
                .permissions(["demo:read"])
                .handler(|a: TextArgs, _ctx: ToolContext| async move { a.text }),
        )
        .tool(
            EtdiTool::new("write", "1.0.0")
                .description("Pretends to write the text somewhere")
                .permissions(["demo:write"])
                .handler(
                    |a: TextArgs, _ctx: ToolContext| async move { format!("wrote {}", a.text) },
                ),
        )
        .build()
        .map_err(|e| e.to_string())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// Server B of the cross-process chain test.
async fn serve_http() -> Result<(), String> {
    use etdi_crypto::chain::ChainVerifier;
    use etdi_crypto::trust::IssuerKeys;
    use etdi_crypto::{Jwk, VerifyingKey};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/mcp");

    let jwks: serde_json::Value = serde_json::from_str(&env("ETDI_DEMO_JWKS")?)
        .map_err(|e| format!("ETDI_DEMO_JWKS: {e}"))?;
    let tokens = etdi_auth::TokenVerifier::builder()
        .issuer(
            etdi_auth::IssuerConfig::new(env("ETDI_DEMO_ISSUER")?)
                .audience(url.clone())
                .static_jwks(jwks),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let hop_jwk = Jwk::from_json(&env("ETDI_DEMO_HOP_JWK")?).map_err(|e| e.to_string())?;
    let hop_key = VerifyingKey::from_jwk(CryptoProvider::get_default(), &hop_jwk, None)
        .map_err(|e| e.to_string())?;
    let mut hop_issuers = IssuerKeys::new();
    hop_issuers.add(env("ETDI_DEMO_HOP_ISSUER")?, hop_key);

    let mut policy = SecurityPolicy::new(etdi_core::SecurityLevel::Basic);
    policy.audit_all_calls = true;
    let server = SecureServer::builder("etdi-demo-server-b")
        .audience(url.clone())
        .policy(policy)
        .provider("com.b", "B Corp")
        .audit(Arc::new(StderrAudit))
        .bearer_auth(etdi_server::BearerAuth {
            verifier: Arc::new(tokens),
            resource: url.clone(),
            authorization_servers: vec![env("ETDI_DEMO_ISSUER")?],
            scopes_supported: vec!["demo:read".into(), "demo:write".into()],
            required_scopes: vec![],
            accept_client_certificates: false,
        })
        .chain_verifier(ChainVerifier::new(url.clone(), hop_issuers))
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .permissions(["demo:read"])
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    let hops: Vec<String> = ctx
                        .chain()
                        .hops()
                        .iter()
                        .map(|h| format!("{}|{}|{}", h.server, h.tool, h.principal))
                        .collect();
                    format!(
                        "{} via [{}] for {}",
                        a.text,
                        hops.join(";"),
                        ctx.principal().subject
                    )
                }),
        )
        .tool(
            EtdiTool::new("write", "1.0.0")
                .permissions(["demo:write"])
                .handler(|a: TextArgs, _ctx: ToolContext| async move { a.text }),
        )
        .tool(
            EtdiTool::new("guarded", "1.0.0")
                .permissions(["demo:read"])
                .blocked_callers(["com.a/relay"])
                .handler(|a: TextArgs, _ctx: ToolContext| async move { a.text }),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let app = etdi_server::http::router(server, etdi_server::http::HttpOptions::default())
        .map_err(|e| e.to_string())?;
    println!("{}", serde_json::json!({ "url": url }));
    // The parent closes stdin to stop this server (a parent that dies does
    // the same), so no server outlives its test.
    let stdin_closed = async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        r = etdi_server::listener::serve(
            etdi_server::listener::TcpAccept::new(listener),
            app,
            etdi_server::listener::ConnectionLimits::default(),
            std::future::pending(),
        ) => r.map_err(|e| e.to_string()),
        () = stdin_closed => Ok(()),
    }
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etdi-demo-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if std::env::args().nth(1).as_deref() == Some("http") {
        rt.block_on(serve_http())
    } else {
        match build() {
            Ok(server) => rt
                .block_on(etdi_server::serve_stdio(server))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etdi-demo-server: {e}");
            ExitCode::FAILURE
        }
    }
}
