//! Each pipeline step's denial with real etdi-crypto signatures, asserting
//! the JSON-RPC error of docs/PROTOCOL.md §10 and the matching audit event.
//! (HTTP-layer denials — no token, bad token, missing scope — are in
//! tests/http.rs.)
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
use etdi_core::{CallChain, EventKind, SecurityLevel, SecurityPolicy};
use etdi_crypto::UnixTime;
use etdi_crypto::attestation::{AttestationVerifier, ProviderScope};
use etdi_crypto::trust::KeyRing;
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::wire;
use serde_json::json;

fn enhanced() -> SecurityPolicy {
    SecurityPolicy::new(SecurityLevel::Enhanced)
}

#[tokio::test]
async fn advertised_tools_carry_attestations_that_verify() {
    let keys = Keys::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = keys
        .secure_builder(enhanced(), audit)
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let tools = client.list_tools(None).await.unwrap().tools;
    let mut ring = KeyRing::new();
    ring.insert(keys.provider.verifying_key().clone());
    let mut verifier = AttestationVerifier::new();
    verifier.trust_issuer(
        "com.example",
        ring,
        ProviderScope::only(["com.example"]).unwrap(),
    );
    for tool in &tools {
        let v = serde_json::to_value(tool).unwrap();
        let status = verifier.verify_tool(v.as_object().unwrap(), UnixTime::now());
        assert!(status.is_verified(), "{}: {status:?}", tool.name);
        // A description changed after signing no longer verifies.
        let mut changed = v.clone();
        changed["description"] = json!("Now also exfiltrates files");
        let status = verifier.verify_tool(changed.as_object().unwrap(), UnixTime::now());
        assert!(!status.is_verified());
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn signed_call_is_accepted_and_replay_refused() {
    let keys = Keys::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = keys
        .secure_builder(enhanced(), audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let a = json!({"text": "hi"});
    let sig = keys.sign("echo", &a, &CallChain::new());
    let params = call_with_meta(
        "echo",
        a.clone(),
        json!({wire::META_REQUEST_SIGNATURE: sig}),
    );
    let r = client.call_tool(params.clone()).await.unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "hi");
    assert!(
        audit
            .for_step(step::REQUEST_SIGNATURE)
            .iter()
            .any(|e| e.kind == EventKind::AuthenticationSucceeded)
    );

    // The same signed request again.
    let e = refused(&client, params).await;
    assert_eq!(e.code.0, -32013, "{e:?}");
    assert_eq!(reason_codes(&e), ["replay"]);
    assert_denied_event(&audit, step::REPLAY, EventKind::ReplayDetected, "replay");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_and_bad_signatures_are_refused() {
    let keys = Keys::new();
    let audit = Arc::new(MemoryAudit::new());
    let mut policy = enhanced();
    policy.require_request_signing = true;
    let server = keys
        .secure_builder(policy, audit.clone())
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;

    // Unsigned where signing is required.
    let e = refused(&client, call("echo", json!({"text": "hi"}))).await;
    assert_eq!(e.code.0, -32012);
    assert_eq!(reason_codes(&e), ["request_signature_required"]);
    assert_denied_event(
        &audit,
        step::REQUEST_SIGNATURE,
        EventKind::AuthenticationFailed,
        "request_signature_required",
    );

    // Signed over other arguments than those sent.
    let sig = keys.sign("echo", &json!({"text": "harmless"}), &CallChain::new());
    let e = refused(
        &client,
        call_with_meta(
            "echo",
            json!({"text": "tampered"}),
            json!({wire::META_REQUEST_SIGNATURE: sig}),
        ),
    )
    .await;
    assert_eq!(e.code.0, -32012);
    assert_eq!(reason_codes(&e), ["invalid_request_signature"]);
    assert!(e.message.contains("args_digest"), "{}", e.message);

    // Signed by a key the server does not know for `alice`.
    let other = Keys::new();
    let a = json!({"text": "hi"});
    let sig = other.sign("echo", &a, &CallChain::new());
    let e = refused(
        &client,
        call_with_meta("echo", a, json!({wire::META_REQUEST_SIGNATURE: sig})),
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

#[tokio::test]
async fn per_tool_signing_requirement_only_tightens() {
    let keys = Keys::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = keys
        .secure_builder(enhanced(), audit.clone())
        .tool(
            etdi_server::EtdiTool::new("sensitive", "1.0.0")
                .require_request_signing(true)
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .local_identity(alice(&["demo:read"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let cap = client
        .peer_info()
        .unwrap()
        .capabilities
        .experimental
        .clone()
        .unwrap();
    assert_eq!(cap[wire::CAPABILITY]["requestSigning"], "per-tool");
    // Unsigned calls still work for tools that do not require signing.
    assert!(
        client
            .call_tool(call("echo", json!({"text": "x"})))
            .await
            .is_ok()
    );
    let e = refused(&client, call("sensitive", json!({"text": "x"}))).await;
    assert_eq!(reason_codes(&e), ["request_signature_required"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn chain_depth_blocked_caller_and_escalation_are_refused() {
    let keys = Keys::new();
    let audit = Arc::new(MemoryAudit::new());
    let server = keys
        .secure_builder(enhanced(), audit.clone())
        .tool(
            etdi_server::EtdiTool::new("shallow", "1.0.0")
                .max_call_depth(1)
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .tool(
            etdi_server::EtdiTool::new("guarded", "1.0.0")
                .blocked_callers(["com.upstream/evil"])
                .handler(|a: EchoArgs, _c: etdi_server::ToolContext| async move { a.text }),
        )
        .local_identity(alice(&["demo:read", "demo:write"]))
        .build()
        .unwrap();
    let client = connect(server).await;
    let a = json!({"text": "x"});

    // An allowed chained call: the upstream hop's principal holds demo:read.
    let (hops, _) = keys.hop("com.upstream/summarise", "alice", &["demo:read"]);
    let r = client
        .call_tool(call_with_meta(
            "echo",
            a.clone(),
            json!({wire::META_CALL_CHAIN: hops}),
        ))
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "x");

    // Depth: a chained call has depth 2, `shallow` accepts 1.
    let (hops, _) = keys.hop("com.upstream/summarise", "alice", &["demo:read"]);
    let e = refused(
        &client,
        call_with_meta("shallow", a.clone(), json!({wire::META_CALL_CHAIN: hops})),
    )
    .await;
    assert_eq!(e.code.0, -32014);
    assert_eq!(reason_codes(&e), ["call_depth_exceeded"]);
    assert!(e.message.contains("limit of 1"), "{}", e.message);
    assert_denied_event(
        &audit,
        step::CALL_CHAIN,
        EventKind::PolicyViolation,
        "call_depth_exceeded",
    );

    // Blocked caller.
    let (hops, _) = keys.hop("com.upstream/evil", "alice", &["demo:read"]);
    let e = refused(
        &client,
        call_with_meta("guarded", a.clone(), json!({wire::META_CALL_CHAIN: hops})),
    )
    .await;
    assert_eq!(e.code.0, -32014);
    assert_eq!(reason_codes(&e), ["caller_blocked"]);
    assert_denied_event(
        &audit,
        step::CALL_CHAIN,
        EventKind::PolicyViolation,
        "caller_blocked",
    );

    // Privilege escalation: the caller holds demo:write, the chain's
    // original principal (bob) does not.
    let (hops, _) = keys.hop("com.upstream/summarise", "bob", &["demo:read"]);
    let e = refused(
        &client,
        call_with_meta("write", a.clone(), json!({wire::META_CALL_CHAIN: hops})),
    )
    .await;
    assert_eq!(e.code.0, -32010);
    assert_eq!(reason_codes(&e), ["privilege_escalation"]);
    assert_denied_event(
        &audit,
        step::AUTHORIZE,
        EventKind::AuthorizationFailed,
        "privilege_escalation",
    );

    // A replayed hop (same chain token twice).
    let (hops, _) = keys.hop("com.upstream/summarise", "alice", &["demo:read"]);
    let params = call_with_meta("echo", a.clone(), json!({wire::META_CALL_CHAIN: hops}));
    client.call_tool(params.clone()).await.unwrap();
    let e = refused(&client, params).await;
    assert_eq!(e.code.0, -32013);
    assert_denied_event(&audit, step::REPLAY, EventKind::ReplayDetected, "replay");

    // A hop signed by an untrusted server.
    let stranger = Keys::new();
    let (hops, _) = stranger.hop("com.upstream/summarise", "alice", &["demo:read"]);
    let e = refused(
        &client,
        call_with_meta("echo", a, json!({wire::META_CALL_CHAIN: hops})),
    )
    .await;
    assert_eq!(e.code.0, -32012);
    assert_eq!(reason_codes(&e), ["invalid_request_signature"]);
    client.cancel().await.unwrap();
}
