//! Tool-to-tool calls across servers: server A's tool calls server B's tool
//! over Streamable HTTP on loopback, with A extending and signing the call
//! chain and B enforcing it: B sees the hop, refuses a blocked caller, and
//! refuses what the original principal could not do (intersection of
//! rights). B runs once in this test process and once as a separate
//! process (`etdi-demo-server http`), whose audit lines are checked too.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::*;
use etdi_core::EventKind;
use etdi_crypto::chain::ChainVerifier;
use etdi_crypto::trust::IssuerKeys;
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::remote::RemoteError;
use etdi_server::{EtdiTool, RemoteServer, SecureServer, StaticToken, ToolContext};
use serde::Deserialize;
use serde_json::json;

const A_AUD: &str = "https://a.example/mcp";

#[derive(Deserialize, schemars::JsonSchema)]
struct RelayArgs {
    tool: String,
    text: String,
}

async fn relay(a: RelayArgs, ctx: ToolContext) -> String {
    let args = json!({"text": a.text})
        .as_object()
        .cloned()
        .unwrap_or_default();
    match ctx.call_remote("b", &a.tool, args).await {
        Ok(r) => r
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default(),
        Err(RemoteError::Refused(e)) => {
            format!("refused {} {}", e.code.0, reason_codes(&e).join(","))
        }
        Err(other) => format!("failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_sees_and_enforces_the_chain_a_signed() {
    let a_hop_key = es256();

    // Server B over HTTP: trusts A's hop key for A's audience.
    let (listener, base) = loopback().await;
    let b_resource = format!("{base}/mcp");
    let issuer = LocalIssuer::new();
    let b_audit = Arc::new(MemoryAudit::new());
    let mut hop_issuers = IssuerKeys::new();
    hop_issuers.add(A_AUD, a_hop_key.verifying_key().clone());
    let b = SecureServer::builder("server-b")
        .audience(b_resource.clone())
        .policy(basic())
        .provider("com.b", "B Corp")
        .audit(b_audit.clone())
        .bearer_auth(bearer(issuer.verifier(&b_resource), &b_resource, &[]))
        .chain_verifier(ChainVerifier::new(b_resource.clone(), hop_issuers))
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .permissions(["demo:read"])
                .handler(|a: EchoArgs, ctx: ToolContext| async move {
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
                .handler(|a: EchoArgs, _c: ToolContext| async move { a.text }),
        )
        .tool(
            EtdiTool::new("guarded", "1.0.0")
                .permissions(["demo:read"])
                .blocked_callers(["com.a/relay"])
                .handler(|a: EchoArgs, _c: ToolContext| async move { a.text }),
        )
        .build()
        .unwrap();
    spawn_http(b, listener);

    // Server A (stdio framing, in process): alice may only read. A's own
    // token for B is broader (read and write): the chain must stop A from
    // lending alice rights she does not have.
    let a_audit = Arc::new(MemoryAudit::new());
    let a = SecureServer::builder("server-a")
        .audience(A_AUD)
        .policy(basic())
        .provider("com.a", "A Corp")
        .audit(a_audit)
        .local_identity(alice(&["demo:read"]))
        .hop_key(a_hop_key)
        .remote(
            "b",
            RemoteServer {
                url: b_resource.clone(),
                audience: b_resource.clone(),
                token: Some(Arc::new(StaticToken(issuer.token(
                    &b_resource,
                    "server-a",
                    "demo:read demo:write",
                )))),
            },
        )
        .tool(
            EtdiTool::new("relay", "1.0.0")
                .permissions(["demo:read"])
                .handler(relay),
        )
        .build()
        .unwrap();
    let client = connect(a).await;

    let out =
        |r: etdi_server::rmcp::model::CallToolResult| r.content[0].as_text().unwrap().text.clone();

    // Allowed: B ran the tool and saw the hop A signed.
    let r = client
        .call_tool(call("relay", json!({"tool": "echo", "text": "hi"})))
        .await
        .unwrap();
    assert_eq!(
        out(r),
        format!("hi via [{A_AUD}|com.a/relay|alice] for server-a")
    );

    // B refuses a caller its tool blocks.
    let r = client
        .call_tool(call("relay", json!({"tool": "guarded", "text": "x"})))
        .await
        .unwrap();
    assert_eq!(out(r), "refused -32014 caller_blocked");
    assert_denied_event(
        &b_audit,
        step::CALL_CHAIN,
        EventKind::PolicyViolation,
        "caller_blocked",
    );

    // B refuses what alice could not do herself, although A's token could.
    let r = client
        .call_tool(call("relay", json!({"tool": "write", "text": "x"})))
        .await
        .unwrap();
    assert_eq!(out(r), "refused -32010 privilege_escalation");
    assert_denied_event(
        &b_audit,
        step::AUTHORIZE,
        EventKind::AuthorizationFailed,
        "privilege_escalation",
    );
    client.cancel().await.unwrap();
}

#[test]
fn remote_servers_need_a_hop_key() {
    let e = SecureServer::builder("a")
        .policy(basic())
        .provider("com.a", "A Corp")
        .audit(Arc::new(MemoryAudit::new()))
        .remote(
            "b",
            RemoteServer {
                url: "http://127.0.0.1:1/mcp".into(),
                audience: "https://b.example/mcp".into(),
                token: None,
            },
        )
        .tool(EtdiTool::new("relay", "1.0.0").handler(relay))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("hop key"), "{e}");
}

/// B as its own OS process; closing its stdin stops it.
struct ProcessB {
    child: std::process::Child,
    url: String,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for ProcessB {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_b(issuer: &LocalIssuer, a_hop_key: &etdi_crypto::SigningKey) -> ProcessB {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_etdi-demo-server"))
        .arg("http")
        .env("ETDI_DEMO_ISSUER", &issuer.iss)
        .env("ETDI_DEMO_JWKS", issuer.jwks().to_string())
        .env("ETDI_DEMO_HOP_ISSUER", A_AUD)
        .env(
            "ETDI_DEMO_HOP_JWK",
            a_hop_key.verifying_key().to_jwk().to_json(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = stderr.clone();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    // Bounded: a server that never announces itself fails the test.
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(out).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("server B announced its URL within 20 s");
    let v: serde_json::Value = serde_json::from_str(first.trim()).unwrap_or_else(|e| {
        panic!(
            "server B said {first:?}: {e}; stderr: {:?}",
            stderr.lock().unwrap()
        )
    });
    ProcessB {
        url: v["url"].as_str().unwrap().to_owned(),
        child,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_in_another_process_enforces_the_chain() {
    let a_hop_key = es256();
    let issuer = LocalIssuer::new();
    let b = spawn_b(&issuer, &a_hop_key);

    let a = SecureServer::builder("server-a")
        .audience(A_AUD)
        .policy(basic())
        .provider("com.a", "A Corp")
        .audit(Arc::new(MemoryAudit::new()))
        .local_identity(alice(&["demo:read"]))
        .hop_key(a_hop_key)
        .remote(
            "b",
            RemoteServer {
                url: b.url.clone(),
                audience: b.url.clone(),
                token: Some(Arc::new(StaticToken(issuer.token(
                    &b.url,
                    "server-a",
                    "demo:read demo:write",
                )))),
            },
        )
        .tool(
            EtdiTool::new("relay", "1.0.0")
                .permissions(["demo:read"])
                .handler(relay),
        )
        .build()
        .unwrap();
    let client = connect(a).await;
    let text =
        |r: etdi_server::rmcp::model::CallToolResult| r.content[0].as_text().unwrap().text.clone();

    let r = client
        .call_tool(call("relay", json!({"tool": "echo", "text": "hi"})))
        .await
        .unwrap();
    assert_eq!(
        text(r),
        format!("hi via [{A_AUD}|com.a/relay|alice] for server-a")
    );
    let r = client
        .call_tool(call("relay", json!({"tool": "guarded", "text": "x"})))
        .await
        .unwrap();
    assert_eq!(text(r), "refused -32014 caller_blocked");
    let r = client
        .call_tool(call("relay", json!({"tool": "write", "text": "x"})))
        .await
        .unwrap();
    assert_eq!(text(r), "refused -32010 privilege_escalation");
    client.cancel().await.unwrap();

    // B's own audit log (JSON lines on its stderr) recorded both denials.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let has = |code: &str, kind: &str| {
        b.stderr.lock().unwrap().iter().any(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
                e["kind"] == kind
                    && e["outcome"] == "denied"
                    && e["reason_codes"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c == code))
            })
        })
    };
    while !(has("caller_blocked", "policy_violation")
        && has("privilege_escalation", "authorization_failed"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "B's audit lines lack the denials: {:?}",
            b.stderr.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
