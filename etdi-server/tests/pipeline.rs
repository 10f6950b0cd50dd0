//! The tools/list wire format and the tools/call pipeline over an
//! in-process MCP connection (rmcp client, stdio framing), with the local
//! identity as the caller.
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
use etdi_core::{EventKind, Outcome, ToolDefinition};
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::wire;
use serde_json::{Value, json};

#[tokio::test]
async fn list_carries_etdi_meta_and_initialize_announces_etdi() {
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;

    let info = client.peer_info().expect("initialize result");
    let cap = info
        .capabilities
        .experimental
        .as_ref()
        .and_then(|e| e.get(wire::CAPABILITY))
        .expect("dev.etdi capability");
    assert_eq!(cap["version"], "etdi/1");
    assert_eq!(cap["audience"], "https://demo.example/mcp");
    assert_eq!(cap["requestSigning"], "optional");

    let tools = client.list_tools(None).await.unwrap().tools;
    assert_eq!(tools.len(), 2);
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    let meta = echo.meta.as_ref().unwrap();
    assert_eq!(
        meta.0[wire::META_TOOL],
        json!({"id": "com.example/echo", "version": "1.0.0",
               "provider": {"id": "com.example", "name": "Example Corp"},
               "permissions": ["demo:read"]})
    );
    // The schema is the typed argument's schemars schema.
    assert_eq!(echo.input_schema["properties"]["text"]["type"], "string");
    // What was advertised rebuilds to a valid definition.
    let def: ToolDefinition = wire::from_mcp_tool(echo).unwrap();
    assert_eq!(def.name.as_str(), "echo");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn allowed_call_runs_and_is_audited() {
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let r = client
        .call_tool(call("echo", json!({"text": "hi"})))
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "hi");
    let auth = audit.for_step(step::AUTHORIZE);
    assert!(
        auth.iter()
            .any(|e| e.kind == EventKind::AuthorizationSucceeded && e.outcome == Outcome::Success)
    );
    let done = audit.for_step(step::INVOKE);
    assert!(
        done.iter()
            .any(|e| e.kind == EventKind::ToolInvocationCompleted && e.outcome == Outcome::Success)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_permission_is_32010_naming_it() {
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let e = refused(&client, call("write", json!({"text": "x"}))).await;
    assert_eq!(e.code.0, -32010);
    assert!(e.message.contains("demo:write"), "{}", e.message);
    assert_eq!(
        e.data.unwrap(),
        json!({"etdi": "etdi/1", "reasons": [{"code": "missing_permissions", "missing": ["demo:write"]}]})
    );
    assert_denied_event(
        &audit,
        step::AUTHORIZE,
        EventKind::AuthorizationFailed,
        "missing_permissions",
    );
    // The tool never ran.
    assert!(audit.for_step(step::INVOKE).is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_tool_and_no_identity_are_refused() {
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&[]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let e = refused(&client, call("nope", json!({}))).await;
    assert_eq!(e.code.0, -32602);
    assert_eq!(reason_codes(&e), ["unknown_tool"]);
    client.cancel().await.unwrap();

    // No local identity and no HTTP layer: nobody is authenticated.
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone()).build().unwrap();
    let client = connect(server).await;
    let e = refused(&client, call("echo", json!({"text": "x"}))).await;
    assert_eq!(e.code.0, -32011);
    assert_eq!(reason_codes(&e), ["unauthenticated"]);
    assert_denied_event(
        &audit,
        step::AUTHENTICATE,
        EventKind::AuthenticationFailed,
        "unauthenticated",
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn strict_filters_the_list_to_callable_tools() {
    let audit = Arc::new(MemoryAudit::new());
    let mut policy = etdi_core::SecurityPolicy::new(etdi_core::SecurityLevel::Strict);
    // Strict also requires signatures; this test is about filtering only.
    policy.require_tool_signatures = false;
    policy.require_request_signing = false;
    let server = demo_builder(policy, audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let names: Vec<String> = client
        .list_tools(None)
        .await
        .unwrap()
        .tools
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["echo"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn oversized_arguments_and_bad_chain_meta_are_refused() {
    let audit = Arc::new(MemoryAudit::new());
    let limits = etdi_server::Limits {
        max_argument_bytes: 64,
        max_chain_hops: 2,
        ..Default::default()
    };
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .limits(limits)
        .build()
        .unwrap();
    let client = connect(server).await;
    let e = refused(&client, call("echo", json!({"text": "x".repeat(100)}))).await;
    assert_eq!(e.code.0, -32602);
    assert!(e.message.contains("limit"), "{}", e.message);

    let e = refused(
        &client,
        call_with_meta(
            "echo",
            json!({"text": "x"}),
            json!({wire::META_CALL_CHAIN: ["a", "b", "c"]}),
        ),
    )
    .await;
    assert_eq!(e.code.0, -32014);
    assert_eq!(reason_codes(&e), ["call_depth_exceeded"]);
    assert_denied_event(
        &audit,
        step::CALL_CHAIN,
        EventKind::PolicyViolation,
        "call_depth_exceeded",
    );
    client.cancel().await.unwrap();
}

#[test]
fn invalid_configurations_fail_at_build() {
    let audit = Arc::new(MemoryAudit::new());
    // Enhanced requires tool signatures: no signer, no server.
    let e = demo_builder(etdi_core::SecurityPolicy::default(), audit.clone())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("attestation signer"), "{e}");
    // Strict requires request signing: no verifier, no server.
    let mut p = etdi_core::SecurityPolicy::new(etdi_core::SecurityLevel::Strict);
    p.require_tool_signatures = false;
    let e = demo_builder(p, audit.clone()).build().unwrap_err();
    assert!(e.to_string().contains("request verifier"), "{e}");
    // A bad permission names the field.
    let e = demo_builder(basic(), audit.clone())
        .tool(
            EtdiTool::new("bad", "1.0.0")
                .permissions(["not a permission"])
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("permissions[0]"), "{e}");
    // No audit recorder.
    let e = etdi_server::SecureServer::builder("x")
        .policy(basic())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("audit"), "{e}");
    let _ = Value::Null;
}

use etdi_server::EtdiTool;

#[tokio::test]
async fn decisions_reach_an_etdi_audit_log() {
    use etdi_audit::sink::memory::MemorySink;
    let (sink, records) = MemorySink::new(etdi_audit::Format::Native);
    let log = Arc::new(etdi_audit::AuditLog::builder().sink(sink).build().unwrap());
    let server = etdi_server::SecureServer::builder("demo-server")
        .policy(basic())
        .provider("com.example", "Example Corp")
        .audit(log.clone())
        .local_identity(alice(&["demo:read"]))
        .tool(
            EtdiTool::new("write", "1.0.0")
                .permissions(["demo:write"])
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .build()
        .unwrap();
    let client = connect(server).await;
    let e = refused(&client, call("write", json!({"text": "x"}))).await;
    assert_eq!(e.code.0, -32010);
    log.flush().unwrap();
    let events = records.events();
    let denied = events
        .iter()
        .find(|e| e.kind == EventKind::AuthorizationFailed)
        .expect("authorization_failed event in the etdi-audit log");
    assert_eq!(denied.reason_codes, ["missing_permissions"]);
    assert_eq!(denied.principal.as_ref().unwrap().subject, "alice");
    assert_eq!(
        denied.tool.as_ref().unwrap().id.as_str(),
        "com.example/write"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn per_call_granularity_records_one_event_listing_every_step() {
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .audit_granularity(etdi_server::audit::AuditGranularity::PerCall)
        .build()
        .unwrap();
    let client = connect(server).await;
    client
        .call_tool(call("echo", json!({"text": "hi"})))
        .await
        .unwrap();
    let events = audit.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.kind, EventKind::ToolInvocationCompleted);
    assert_eq!(e.details["steps"], json!(["authenticate", "authorize"]));
    assert_eq!(e.details["rule"], "scope:demo:read");
    // Denials still get the event of the step that denied.
    let _ = refused(&client, call("write", json!({"text": "x"}))).await;
    assert_denied_event(
        &audit,
        step::AUTHORIZE,
        EventKind::AuthorizationFailed,
        "missing_permissions",
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn malformed_etdi_meta_is_refused_as_a_bad_signature() {
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let e = refused(
        &client,
        call_with_meta(
            "echo",
            json!({"text": "x"}),
            json!({wire::META_CALL_CHAIN: "not-a-list"}),
        ),
    )
    .await;
    assert_eq!(e.code.0, -32012);
    assert!(e.message.contains("malformed call chain"), "{}", e.message);
    assert_denied_event(
        &audit,
        step::CALL_CHAIN,
        EventKind::PolicyViolation,
        "invalid_request_signature",
    );
    let e = refused(
        &client,
        call_with_meta(
            "echo",
            json!({"text": "x"}),
            json!({wire::META_REQUEST_SIGNATURE: 42}),
        ),
    )
    .await;
    assert_eq!(e.code.0, -32012);
    assert_denied_event(
        &audit,
        step::REQUEST_SIGNATURE,
        EventKind::AuthenticationFailed,
        "invalid_request_signature",
    );
    client.cancel().await.unwrap();
}

/// An attestation that expires is signed again once half of its validity
/// has passed: a long-running server never advertises one that has lapsed,
/// and each one it serves verifies at the time it is served.
#[tokio::test]
async fn expiring_attestations_are_re_signed_before_they_lapse() {
    use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
    use etdi_crypto::trust::KeyRing;
    use etdi_crypto::{UnixTime, jws};

    let key = es256();
    let audit = Arc::new(MemoryAudit::new());
    let server = demo_builder(basic(), audit)
        .local_identity(alice(&["demo:read"]))
        .attestation(
            AttestationSigner::new("com.example").with_validity(2),
            key.clone(),
        )
        .build()
        .unwrap();
    let client = connect(server.clone()).await;
    let mut ring = KeyRing::new();
    ring.insert(key.verifying_key().clone());
    let mut verifier = AttestationVerifier::new().with_skew(0);
    verifier.trust_issuer("com.example", ring, ProviderScope::Any);

    // The attestation of `echo` in a fresh tools/list, checked as a client
    // would check it now, with its `exp`.
    let listed = || async {
        let tools = client.list_tools(None).await.unwrap().tools;
        let echo = tools.into_iter().find(|t| t.name == "echo").unwrap();
        let token = echo.meta.as_ref().unwrap().0[wire::META_ATTESTATION]
            .as_str()
            .unwrap()
            .to_owned();
        let def: ToolDefinition = wire::from_mcp_tool(&echo).unwrap();
        let status = verifier.verify(&token, &def, UnixTime::now());
        assert!(status.is_verified(), "{status:?}");
        let (_, payload) = jws::peek_unverified(&token).unwrap();
        let claims: Value = serde_json::from_slice(&payload).unwrap();
        let exp = claims["exp"].as_u64().unwrap();
        assert_eq!(exp, claims["iat"].as_u64().unwrap() + 2);
        (token, exp)
    };

    let (first, first_exp) = listed().await;
    // Within the first half of the validity the same attestation is served
    // (signing on every list would cost a signature per tool per list).
    let (again, _) = listed().await;
    if UnixTime::now().as_secs() < first_exp - 1 {
        assert_eq!(again, first);
    }
    // After the first one has expired, the list carries a new one that
    // verifies now.
    while UnixTime::now().as_secs() <= first_exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (second, second_exp) = listed().await;
    assert_ne!(second, first);
    assert!(second_exp > first_exp);
    // `advertised_tools` (what the CLI and the HTTP layer show) is fresh too.
    let shown = server.advertised_tools();
    let echo = shown.iter().find(|t| t.name == "echo").unwrap();
    assert_eq!(
        echo.meta.as_ref().unwrap().0[wire::META_ATTESTATION],
        Value::from(second)
    );
    client.cancel().await.unwrap();
}
