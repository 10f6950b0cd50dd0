//! The official Python MCP SDK (PyPI `mcp`, pinned in
//! interop/python/requirements.txt), unmodified, against SecureServer over
//! stdio (the `etdi-demo-server` process) and over Streamable HTTP with a
//! real access token from oidc-provider (interop/node/oidc-server.mjs).
//!
//! Needs `ETDI_PYTHON` (the virtualenv interpreter `cargo xtask ci`
//! creates) and `node` with interop/node's modules installed. A missing
//! peer fails the test: it is never skipped.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use etdi_core::EventKind;
use etdi_server::audit::{MemoryAudit, step};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    let py = std::env::var("ETDI_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ETDI_PYTHON is not set: point it at the interpreter of a virtualenv with \
             interop/python/requirements.txt installed (cargo xtask ci does this)"
        )
    });
    assert!(Path::new(&py).exists(), "ETDI_PYTHON={py} does not exist");
    py
}

/// Runs the checker with `args` and returns the JSON it printed.
fn run_checker(args: &[&str]) -> Value {
    let script = repo().join("interop/python/mcp_client_check.py");
    let mut child = Command::new(python())
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    // Bounded: a hung client must not hang the test run.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Python MCP client did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed: {stderr}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad output {e}: {stdout}\n{stderr}"))
}

/// What every run must show: ETDI `_meta` on both tools, the capability,
/// the allowed call's result, and the documented §10 error for the denial.
fn assert_etdi_session(out: &Value, expect_attestation: bool) {
    assert_eq!(out["capability"]["version"], "etdi/1", "{out}");
    let tools = out["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2, "{out}");
    for t in tools {
        let etdi = &t["_meta"]["dev.etdi/tool"];
        assert_eq!(etdi["provider"]["id"], "com.example", "{t}");
        assert!(
            etdi["id"].as_str().unwrap().starts_with("com.example/"),
            "{t}"
        );
        if expect_attestation {
            let a = t["_meta"]["dev.etdi/attestation"].as_str().unwrap();
            assert_eq!(a.split('.').count(), 3, "compact JWS: {a}");
        }
    }
    assert_eq!(out["allowed"]["isError"], false, "{out}");
    assert_eq!(out["allowed"]["text"][0], "hello from python", "{out}");
    let denied = &out["denied"];
    assert_eq!(denied["code"], -32010, "{out}");
    assert!(
        denied["message"].as_str().unwrap().contains("demo:write"),
        "{out}"
    );
    assert_eq!(denied["data"]["etdi"], "etdi/1");
    assert_eq!(denied["data"]["reasons"][0]["code"], "missing_permissions");
    assert_eq!(denied["data"]["reasons"][0]["missing"][0], "demo:write");
}

#[test]
fn python_sdk_over_stdio() {
    let server = env!("CARGO_BIN_EXE_etdi-demo-server");
    let out = run_checker(&["stdio", server]);
    assert_etdi_session(&out, true);
}

/// The oidc-provider process; closing its stdin stops it.
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

const SECRET: &str = "etdi-server-interop-secret";
const RESOURCE: &str = "https://rs256.mcp.test/mcp";

fn start_oidc() -> Oidc {
    let dir = repo().join("interop/node");
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
    // Bounded: a provider that never starts fails the test.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("oidc-provider started within 30 s");
    let v: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("oidc-provider said {line:?}: {e}"));
    let _ = child.stdin.as_mut().map(|s| s.flush());
    Oidc {
        issuer: v["issuer"].as_str().unwrap().to_owned(),
        child,
    }
}

async fn client_credentials(issuer: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("etdi-basic", Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "tools:read tools:call"),
            ("resource", RESOURCE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {r}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_streamable_http_with_an_oidc_provider_token() {
    let _ = python();
    let oidc = start_oidc();
    let token = client_credentials(&oidc.issuer).await;

    let (listener, base) = loopback().await;
    let verifier = etdi_auth::TokenVerifier::builder()
        .issuer(etdi_auth::IssuerConfig::new(oidc.issuer.clone()).audience(RESOURCE))
        .build()
        .unwrap();
    let audit = Arc::new(MemoryAudit::new());
    let keys = Keys::new();
    // The token's scopes are `tools:read tools:call`: `echo` needs
    // tools:read, `write` needs a permission the client was never granted.
    let server = etdi_server::SecureServer::builder("http-demo")
        .audience(RESOURCE)
        .provider("com.example", "Example Corp")
        .attestation(
            etdi_crypto::attestation::AttestationSigner::new("com.example"),
            keys.provider.clone(),
        )
        .audit(audit.clone())
        .bearer_auth(etdi_server::BearerAuth {
            verifier: Arc::new(verifier),
            resource: RESOURCE.into(),
            authorization_servers: vec![oidc.issuer.clone()],
            scopes_supported: vec!["tools:read".into(), "tools:call".into()],
            required_scopes: vec!["tools:call".into()],
            accept_client_certificates: false,
        })
        .tool(
            etdi_server::EtdiTool::new("echo", "1.0.0")
                .permissions(["tools:read"])
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .tool(
            etdi_server::EtdiTool::new("write", "1.0.0")
                .permissions(["demo:write"])
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .build()
        .unwrap();
    spawn_http(server, listener);

    let url = format!("{base}/mcp");
    let out = tokio::task::spawn_blocking(move || run_checker(&["http", &url, &token]))
        .await
        .unwrap();
    assert_etdi_session(&out, true);
    // The denial was audited with the oidc-provider client as principal.
    let denied = audit.for_step(step::AUTHORIZE);
    assert!(
        denied
            .iter()
            .any(|e| e.kind == EventKind::AuthorizationFailed
                && e.principal.as_ref().and_then(|p| p.client_id.as_deref()) == Some("etdi-basic"))
    );
}
