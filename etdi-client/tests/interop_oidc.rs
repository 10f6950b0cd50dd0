//! End to end with a real OAuth authorization server: npm `oidc-provider`
//! (interop/node/oidc-server.mjs) issues RFC 9068 JWT access tokens by the
//! client-credentials grant; the SecureClient gets them through etdi-auth's
//! `ClientCredentials`, steps up once on `403 insufficient_scope`, verifies
//! the SecureServer's attested tools over Streamable HTTP and calls one.
//!
//! Needs Node and `npm ci` in interop/node (`cargo xtask ci` does both), so
//! it runs only with `--features interop`; without the peer it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use etdi_auth::{ClientAuth, ClientCredentials, ClientSecret};
use etdi_client::http::{BearerClient, BearerTokenSource, ClientCredentialsSource};
use etdi_client::{AutoApproveRule, Discovery, MemoryApprovalStore, RuleApprover, SecureClient};
use etdi_core::{Permission, ProviderId, SecurityLevel, SecurityPolicy, ServerId};
use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
use etdi_crypto::trust::KeyRing;
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use etdi_server::{BearerAuth, EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;
use serde_json::{Value, json};

const SECRET: &str = "etdi-client-interop-secret";
/// One of the resource indicators oidc-server.mjs knows (RS256 JWTs).
const RESOURCE: &str = "https://rs256.mcp.test/mcp";

struct Oidc {
    child: Child,
    issuer: String,
}

impl Drop for Oidc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_oidc() -> Oidc {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/node");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "interop/node/node_modules is missing: run `npm ci` there (cargo xtask ci does)"
    );
    let mut child = Command::new("node")
        .arg("oidc-server.mjs")
        .current_dir(&dir)
        .env("ETDI_CLIENT_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is required for this test");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("oidc-provider said {line:?}: {e}"));
    let _ = child.stdin.as_mut().map(|s| s.flush());
    Oidc {
        issuer: v["issuer"].as_str().unwrap().to_owned(),
        child,
    }
}

/// Counts scope step-ups of the real token source.
struct Counting {
    inner: ClientCredentialsSource,
    step_ups: AtomicUsize,
}

#[async_trait::async_trait]
impl BearerTokenSource for Counting {
    async fn token(&self) -> Result<String, String> {
        self.inner.token().await
    }
    async fn token_with_scope(&self, scope: &str) -> Result<String, String> {
        self.step_ups.fetch_add(1, Ordering::SeqCst);
        self.inner.token_with_scope(scope).await
    }
    async fn invalidate(&self) {
        self.inner.invalidate().await;
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// Text to echo.
    text: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_client_over_http_with_oidc_provider_tokens() {
    let oidc = start_oidc();
    let provider_key =
        Arc::new(SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap());
    let verifier = etdi_auth::TokenVerifier::builder()
        .issuer(etdi_auth::IssuerConfig::new(oidc.issuer.clone()).audience(RESOURCE))
        .build()
        .unwrap();
    let server = SecureServer::builder("oidc-demo")
        .audience(RESOURCE)
        .policy(SecurityPolicy::new(SecurityLevel::Enhanced))
        .provider("com.example", "Example Corp")
        .attestation(AttestationSigner::new("com.example"), provider_key.clone())
        .audit(Arc::new(etdi_server::audit::MemoryAudit::new()))
        .bearer_auth(BearerAuth {
            verifier: Arc::new(verifier),
            resource: RESOURCE.into(),
            authorization_servers: vec![oidc.issuer.clone()],
            scopes_supported: vec!["tools:read".into(), "tools:call".into()],
            // The first token has only tools:read: the 403 names tools:call.
            required_scopes: vec!["tools:call".into()],
            accept_client_certificates: false,
        })
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .permissions(["tools:read"])
                .handler(|a: EchoArgs, _c: ToolContext| async move { a.text }),
        )
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(etdi_server::http::serve_http(
        server,
        listener,
        etdi_server::http::HttpOptions::default(),
    ));

    let token_endpoint = format!("{}/token", oidc.issuer);
    let tokens = ClientCredentialsSource::new(["tools:read"], move |scopes| {
        Ok(ClientCredentials::new(
            token_endpoint.clone(),
            "etdi-basic",
            ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
        )?
        .scopes(scopes.to_vec())
        .resource(RESOURCE))
    })
    .unwrap();
    let tokens = Arc::new(Counting {
        inner: tokens,
        step_ups: AtomicUsize::new(0),
    });
    let transport = StreamableHttpClientTransport::with_client(
        BearerClient::new(reqwest::Client::new(), tokens.clone()),
        StreamableHttpClientTransportConfig::with_uri(url),
    );

    let mut attestations = AttestationVerifier::new();
    attestations.trust_issuer(
        "com.example",
        [provider_key.verifying_key().clone()]
            .into_iter()
            .collect::<KeyRing>(),
        ProviderScope::only(["com.example"]).unwrap(),
    );
    let discovery = Discovery::new(
        ServerId::parse(RESOURCE).unwrap(),
        attestations,
        Arc::new(MemoryApprovalStore::new()),
    )
    .approver(Arc::new(RuleApprover::new().rule(AutoApproveRule::new(
        "example",
        ProviderId::parse("com.example").unwrap(),
        [Permission::parse("tools:*").unwrap()],
    ))));
    let client = SecureClient::connect(transport, discovery).await.unwrap();
    let catalog = client.catalog().await.unwrap();
    assert!(catalog.get("echo").unwrap().verification.is_verified());
    let out = client
        .call_tool("echo", json!({"text": "oidc"}).as_object().cloned())
        .await
        .unwrap();
    assert_eq!(out.content[0].as_text().unwrap().text, "oidc");
    // Exactly one step-up, to the scope the server's 403 named.
    assert_eq!(tokens.step_ups.load(Ordering::SeqCst), 1);
}
