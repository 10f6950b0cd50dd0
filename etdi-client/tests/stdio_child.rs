//! End to end over real stdio: the client spawns `etdi-demo-server` (a
//! SecureServer binary) as a child process, verifies and pins its attested
//! tools against the provider key it was given, calls an allowed tool, and
//! gets the server's ETDI refusal for a denied one. The child's audit lines
//! (stderr) must show both decisions.
//!
//! The binary is built by `cargo test --workspace` (and `cargo xtask ci`);
//! running this file alone needs `cargo build -p etdi-server --bin
//! etdi-demo-server` first, and the test says so instead of skipping.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use etdi_client::{
    AutoApproveRule, ClientError, Discovery, MemoryApprovalStore, RuleApprover, SecureClient,
};
use etdi_core::{Permission, ProviderId, SecurityLevel, SecurityPolicy, ServerId};
use etdi_crypto::attestation::{AttestationVerifier, ProviderScope};
use etdi_crypto::trust::KeyRing;
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
use serde_json::json;
use tokio::io::AsyncReadExt;

/// Integration tests run from `target/<profile>/deps`; workspace binaries
/// sit one level up.
fn demo_server() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("etdi-demo-server");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p etdi-server --bin etdi-demo-server` \
         (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

#[tokio::test]
async fn real_stdio_child_verified_pinned_called_and_refused() {
    let provider_key =
        SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("provider.pem");
    std::fs::write(&key_path, provider_key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();

    let mut child = tokio::process::Command::new(demo_server())
        .env("ETDI_DEMO_ATTESTATION_KEY", &key_path)
        .env("ETDI_DEMO_SCOPES", "demo:read")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();

    let mut verifier = AttestationVerifier::new();
    verifier.trust_issuer(
        "com.example",
        [provider_key.verifying_key().clone()]
            .into_iter()
            .collect::<KeyRing>(),
        ProviderScope::only(["com.example"]).unwrap(),
    );
    let approver = RuleApprover::new().rule(AutoApproveRule::new(
        "demo",
        ProviderId::parse("com.example").unwrap(),
        [Permission::parse("demo:*").unwrap()],
    ));
    let discovery = Discovery::new(
        ServerId::parse("urn:etdi:demo-server").unwrap(),
        verifier,
        Arc::new(MemoryApprovalStore::new()),
    )
    // Enhanced, like the server: attestations required, request signing not.
    .policy(SecurityPolicy::new(SecurityLevel::Enhanced))
    .approver(Arc::new(approver));

    let client = SecureClient::connect((stdout, stdin), discovery)
        .await
        .unwrap();
    let catalog = client.catalog().await.unwrap();
    let echo = catalog.get("echo").unwrap();
    assert!(echo.verification.is_verified(), "{:?}", echo.verification);
    assert!(echo.is_usable(), "{:?}", echo.refusal);

    let out = client
        .call_tool("echo", json!({"text": "over stdio"}).as_object().cloned())
        .await
        .unwrap();
    assert_eq!(out.content[0].as_text().unwrap().text, "over stdio");

    // `write` needs demo:write, which the child's local identity lacks: the
    // server refuses with the §10 error naming the permission.
    let e = client
        .call_tool("write", json!({"text": "x"}).as_object().cloned())
        .await
        .unwrap_err();
    let ClientError::Service(etdi_server::rmcp::ServiceError::McpError(err)) = &e else {
        panic!("expected the server's refusal, got {e:?}")
    };
    assert_eq!(err.code.0, -32010);
    let reasons = &err.data.as_ref().unwrap()["reasons"];
    assert_eq!(reasons[0]["code"], "missing_permissions");
    assert_eq!(reasons[0]["missing"], json!(["demo:write"]));

    client.close().await.unwrap();
    let _ = child.wait().await;
    let mut audit = String::new();
    stderr.read_to_string(&mut audit).await.unwrap();
    let kinds: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["kind"].as_str().map(str::to_owned))
        .collect();
    assert!(
        kinds.iter().any(|k| k == "authorization_failed"),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k == "tool_invocation_completed"),
        "{kinds:?}"
    );
}
