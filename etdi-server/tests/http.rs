//! Streamable HTTP with OAuth bearer tokens (docs/PROTOCOL.md §11): the
//! HTTP-layer denials with their challenges and audit events, the RFC 9728
//! document, and a full MCP session through rmcp's HTTP client. Tokens come
//! from a local issuer verified by etdi-auth against its JWKS.
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
use etdi_server::audit::{MemoryAudit, step};
use serde_json::{Value, json};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

struct Fixture {
    url: String,
    resource: String,
    issuer: LocalIssuer,
    audit: Arc<MemoryAudit>,
}

async fn start(required_scopes: &[&str]) -> Fixture {
    let (listener, base) = loopback().await;
    let resource = format!("{base}/mcp");
    let issuer = LocalIssuer::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .audience(resource.clone())
        .bearer_auth(bearer(
            issuer.verifier(&resource),
            &resource,
            required_scopes,
        ))
        .build()
        .unwrap();
    spawn_http(server, listener);
    Fixture {
        url: resource.clone(),
        resource,
        issuer,
        audit,
    }
}

async fn post_init(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn no_token_gets_401_with_resource_metadata() {
    let f = start(&[]).await;
    let r = post_init(&f.url, None).await;
    assert_eq!(r.status(), 401);
    let meta_url = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        f.url.trim_end_matches("/mcp")
    );
    assert_eq!(
        www_authenticate(&r),
        format!("Bearer resource_metadata=\"{meta_url}\"")
    );
    assert_denied_event(
        &f.audit,
        step::HTTP_AUTH,
        EventKind::AuthenticationFailed,
        "unauthenticated",
    );

    // The document the challenge points at.
    let doc: Value = reqwest::get(&meta_url).await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], f.resource);
    assert_eq!(doc["authorization_servers"], json!(["https://issuer.test"]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    let root: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource",
        f.url.trim_end_matches("/mcp")
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(root, doc);
}

#[tokio::test]
async fn bad_and_misaddressed_tokens_get_invalid_token() {
    let f = start(&[]).await;
    // Signed by another issuer key.
    let forged = LocalIssuer::new().token(&f.resource, "mallory", "demo:read");
    let r = post_init(&f.url, Some(&forged)).await;
    assert_eq!(r.status(), 401);
    let c = www_authenticate(&r);
    assert!(c.starts_with("Bearer error=\"invalid_token\""), "{c}");
    assert!(c.contains("resource_metadata="), "{c}");
    // A good signature for another audience (RFC 8707).
    let other = f
        .issuer
        .token("https://other.example/mcp", "alice", "demo:read");
    let r = post_init(&f.url, Some(&other)).await;
    assert_eq!(r.status(), 401);
    assert!(www_authenticate(&r).contains("invalid_token"));
    // Garbage.
    let r = post_init(&f.url, Some("not-a-jwt")).await;
    assert_eq!(r.status(), 401);
    assert_denied_event(
        &f.audit,
        step::HTTP_AUTH,
        EventKind::AuthenticationFailed,
        "unauthenticated",
    );
    // A token in the query string is refused, not used.
    let good = f.issuer.token(&f.resource, "alice", "demo:read");
    let r = reqwest::Client::new()
        .post(format!("{}?access_token={good}", f.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn missing_scope_gets_403_naming_it() {
    let f = start(&["mcp:tools"]).await;
    let token = f.issuer.token(&f.resource, "alice", "demo:read");
    let r = post_init(&f.url, Some(&token)).await;
    assert_eq!(r.status(), 403);
    let c = www_authenticate(&r);
    assert!(c.starts_with("Bearer error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"mcp:tools\""), "{c}");
    assert!(c.contains("resource_metadata="), "{c}");
    assert_denied_event(
        &f.audit,
        step::HTTP_AUTH,
        EventKind::AuthorizationFailed,
        "unauthenticated",
    );
    // With the scope, initialize goes through.
    let token = f.issuer.token(&f.resource, "alice", "demo:read mcp:tools");
    assert_eq!(post_init(&f.url, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn an_mcp_session_over_http_lists_calls_and_is_denied_by_policy() {
    let f = start(&[]).await;
    let token = f.issuer.token(&f.resource, "alice", "demo:read");
    let client = http_client(&f.url, &token).await;
    let tools = client.list_tools(None).await.unwrap().tools;
    assert!(tools.iter().all(|t| {
        t.meta
            .as_ref()
            .is_some_and(|m| m.0.contains_key("dev.etdi/tool"))
    }));
    let r = client
        .call_tool(call("echo", json!({"text": "over http"})))
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "over http");
    let e = refused(&client, call("write", json!({"text": "x"}))).await;
    assert_eq!(e.code.0, -32010);
    assert_eq!(reason_codes(&e), ["missing_permissions"]);
    // The principal of the events is the token's subject.
    let denied = f.audit.for_step(step::AUTHORIZE);
    assert!(denied.iter().any(|e| e.principal.as_ref().is_some_and(
        |p| p.subject == "alice" && p.issuer.as_deref() == Some("https://issuer.test")
    )));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn session_count_is_bounded() {
    let (listener, base) = loopback().await;
    let resource = format!("{base}/mcp");
    let issuer = LocalIssuer::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit)
        .audience(resource.clone())
        .bearer_auth(bearer(issuer.verifier(&resource), &resource, &[]))
        .limits(etdi_server::Limits {
            max_sessions: 1,
            ..Default::default()
        })
        .build()
        .unwrap();
    spawn_http(server, listener);
    let token = issuer.token(&resource, "alice", "demo:read");
    assert_eq!(post_init(&resource, Some(&token)).await.status(), 200);
    assert_eq!(post_init(&resource, Some(&token)).await.status(), 503);
}

#[tokio::test]
async fn the_server_publishes_its_attestation_key_and_announces_it() {
    let (listener, base) = loopback().await;
    let resource = format!("{base}/mcp");
    let issuer = LocalIssuer::new();
    let keys = Keys::new();
    let jwks_uri = format!("{base}/.well-known/etdi/jwks.json");
    let server = keys
        .secure_builder(
            etdi_core::SecurityPolicy::default(),
            Arc::new(MemoryAudit::new()),
        )
        .audience(resource.clone())
        .jwks_uri(jwks_uri.clone())
        .bearer_auth(bearer(issuer.verifier(&resource), &resource, &[]))
        .build()
        .unwrap();
    spawn_http(server, listener);
    let jwks: Value = reqwest::get(&jwks_uri).await.unwrap().json().await.unwrap();
    let kid = keys.provider.kid().to_string();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str()),
        "{jwks}"
    );
    let token = issuer.token(&resource, "alice", "demo:read");
    let client = http_client(&resource, &token).await;
    let cap = &client
        .peer_info()
        .unwrap()
        .capabilities
        .experimental
        .clone()
        .unwrap()["dev.etdi"];
    assert_eq!(cap["jwksUri"], jwks_uri.as_str());
    assert_eq!(cap["audience"], resource.as_str());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tool_scope_challenge_names_the_missing_permission_and_is_audited() {
    let (listener, base) = loopback().await;
    let resource = format!("{base}/mcp");
    let issuer = LocalIssuer::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .audience(resource.clone())
        .bearer_auth(bearer(issuer.verifier(&resource), &resource, &[]))
        .build()
        .unwrap();
    let options = etdi_server::http::HttpOptions {
        tool_scope_challenge: true,
        ..Default::default()
    };
    let app = etdi_server::http::router(server, options).unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(etdi_server::listener::TcpAccept::new(listener), app).await;
    });

    // A token without demo:write calls `write`: 403 before any MCP work,
    // naming the permission as the scope to ask for.
    let token = issuer.token(&resource, "alice", "demo:read");
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write","arguments":{"text":"x"}}}"#;
    let r = reqwest::Client::new()
        .post(&resource)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let c = www_authenticate(&r);
    assert!(c.starts_with("Bearer error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"demo:write\""), "{c}");
    assert!(
        c.contains("error_description=\"the tool needs permission(s): demo:write\""),
        "{c}"
    );
    let denied = audit.for_step(step::AUTHORIZE);
    let e = denied
        .iter()
        .find(|e| e.request_id.as_deref() == Some("7"))
        .expect("the scope challenge is audited");
    assert_eq!(e.kind, EventKind::AuthorizationFailed);
    assert_eq!(e.reason_codes, ["missing_permissions"]);
    assert_eq!(e.tool.as_ref().unwrap().name.as_deref(), Some("write"));
    assert_eq!(e.principal.as_ref().unwrap().subject, "alice");

    // Tools the token covers, and every other method, pass untouched; with
    // the scope, `write` runs.
    let client = http_client(&resource, &token).await;
    let r = client
        .call_tool(call("echo", json!({"text": "still fine"})))
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "still fine");
    client.cancel().await.unwrap();
    let token = issuer.token(&resource, "alice", "demo:read demo:write");
    let client = http_client(&resource, &token).await;
    client
        .call_tool(call("write", json!({"text": "x"})))
        .await
        .unwrap();
    client.cancel().await.unwrap();
}

/// `max_concurrent_requests` bounds the authenticated requests in flight:
/// with a limit of 2 two calls run at once (they meet at a barrier inside
/// the tool), with a limit of 1 they take turns.
#[tokio::test]
async fn concurrent_requests_are_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[derive(Default)]
    struct Inside {
        now: AtomicUsize,
        max: AtomicUsize,
    }

    async fn serve(
        limit: usize,
        barrier: Option<Arc<tokio::sync::Barrier>>,
    ) -> (String, Arc<Inside>, LocalIssuer) {
        let (listener, base) = loopback().await;
        let resource = format!("{base}/mcp");
        let issuer = LocalIssuer::new();
        let inside = Arc::new(Inside::default());
        let seen = inside.clone();
        let server = etdi_server::SecureServer::builder("limits")
            .audience(resource.clone())
            .policy(basic())
            .provider("com.example", "Example Corp")
            .audit(Arc::new(MemoryAudit::new()))
            .bearer_auth(bearer(issuer.verifier(&resource), &resource, &[]))
            .limits(etdi_server::Limits {
                max_concurrent_requests: limit,
                ..Default::default()
            })
            .tool(
                etdi_server::EtdiTool::new("echo", "1.0.0")
                    .permissions(["demo:read"])
                    .handler(move |a: EchoArgs, _c: etdi_server::ToolContext| {
                        let seen = seen.clone();
                        let barrier = barrier.clone();
                        async move {
                            let n = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
                            seen.max.fetch_max(n, Ordering::SeqCst);
                            match barrier {
                                Some(b) => {
                                    b.wait().await;
                                }
                                None => tokio::time::sleep(Duration::from_millis(100)).await,
                            }
                            seen.now.fetch_sub(1, Ordering::SeqCst);
                            a.text
                        }
                    }),
            )
            .build()
            .unwrap();
        spawn_http(server, listener);
        (resource, inside, issuer)
    }

    async fn two_calls(url: &str, issuer: &LocalIssuer) {
        let token = issuer.token(url, "alice", "demo:read");
        let a = http_client(url, &token).await;
        let b = http_client(url, &token).await;
        let (ra, rb) = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(
                a.call_tool(call("echo", json!({"text": "a"}))),
                b.call_tool(call("echo", json!({"text": "b"}))),
            )
        })
        .await
        .expect("both calls finish");
        assert_ne!(ra.unwrap().is_error, Some(true));
        assert_ne!(rb.unwrap().is_error, Some(true));
    }

    let (url, inside, issuer) = serve(2, Some(Arc::new(tokio::sync::Barrier::new(2)))).await;
    two_calls(&url, &issuer).await;
    assert_eq!(inside.max.load(Ordering::SeqCst), 2);

    let (url, inside, issuer) = serve(1, None).await;
    two_calls(&url, &issuer).await;
    assert_eq!(inside.max.load(Ordering::SeqCst), 1);
}

/// `serve_http` accepts every connection with `TCP_NODELAY`: without it a
/// kept-alive client waits about 40 ms (delayed ACK) on every SSE reply.
/// The option is read on the server's own socket (see common/sockets.rs).
#[tokio::test]
async fn serve_http_accepts_connections_with_tcp_nodelay() {
    let (listener, base) = loopback().await;
    let resource = format!("{base}/mcp");
    let issuer = LocalIssuer::new();
    let server = demo_builder(basic(), Arc::new(MemoryAudit::new()))
        .audience(resource.clone())
        .bearer_auth(bearer(issuer.verifier(&resource), &resource, &[]))
        .build()
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(etdi_server::http::serve_http(
        server,
        listener,
        etdi_server::http::HttpOptions::default(),
    ));
    for _ in 0..3 {
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let peer = client.local_addr().unwrap();
        assert!(
            sockets::server_nodelay(std::process::id(), peer).await,
            "serve_http accepted {peer} without TCP_NODELAY"
        );
    }
}
