//! Runs every example and checks its verdict (every expected outcome
//! happened, which is what makes the example binary exit 0) and the key
//! lines of its narrative.
//!
//! The examples' code lives in the library (`etdi_examples::NAME::run`);
//! the binaries under `examples/` are two-line `main`s around it. Calling
//! the library here means the test always runs the current code: a test
//! that ran `target/debug/examples/NAME` could pick up a stale binary when
//! only this test target is rebuilt (`cargo test --test examples`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;

use etdi_examples::{Failure, Narrative, Outcome, run_captured};

/// Runs an example, fails with its whole narrative if any expected
/// outcome did not happen, and checks that each of `expected` begins some
/// line of the narrative.
async fn run_and_check<F, Fut>(run: F, expected: &[&str])
where
    F: FnOnce(Narrative) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let (narrative, verdict) = run_captured(run).await;
    let lines = narrative.lines();
    if let Err(why) = verdict {
        panic!("{why}\n--- narrative ---\n{}", lines.join("\n"));
    }
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "no line begins with {want:?}\n--- narrative ---\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_providers() {
    run_and_check(
        etdi_examples::oauth_providers::run,
        &[
            "[ok] Auth0: issuer and JWKS URL follow the provider's pattern",
            "[ok] Okta: issuer and JWKS URL follow the provider's pattern",
            "[ok] Entra ID: issuer and JWKS URL follow the provider's pattern",
            "[ok] Keycloak: issuer and JWKS URL follow the provider's pattern",
            "[ok] generic OIDC: issuer and JWKS URL follow the provider's pattern",
            "     scopes from    scp",
            "     roles from     realm_access.roles, resource_access.tools.roles",
            "[ok] Okta: accepted; subject 00u1abcd, scopes {\"demo:read\"}, roles {\"Everyone\", \"analysts\"}",
            "[ok] Keycloak: accepted; subject f:1234:alice",
            "[ok] Auth0: an ES256 token (Auth0 signs RS256 only): algorithm `ES256` is not allowed",
            "[ok] Entra ID: a v1.0 token (the v2.0 preset does not trust the v1 issuer): issuer `https://sts.windows.net/",
            "[ok] generic OIDC: a token that expired five minutes ago: token expired at",
            "[ok] Keycloak preset: token verified; alice with scope demo:read, roles analyst and tool-user",
            "[ok] ... with one JWKS fetch and no discovery",
            "[ok] generic OIDC preset: token verified after discovery",
            "[ok] ... which read the realm's openid-configuration once, then the JWKS",
            "[ok] a token signed by a key the issuer does not publish is refused: unknown key",
            "[ok] MCP call with the token: ok: alice via BearerJwt with roles analyst,tool-user",
            "[ok] MCP request with the forged token: HTTP 401 invalid_token",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_signing_client() {
    run_and_check(
        etdi_examples::request_signing_client::run,
        &[
            "[ok] the signature is an ES256 etdi-req+jwt binding tool, audience and a 60 s lifetime",
            "[ok] args_digest is the §3 digest",
            "[ok] call signed by hand: ok: summary of q3-sales (request signed by report-agent)",
            "[ok] summarise_report: attestation verified and approved by rule:reports-readers",
            "[ok] SecureClient call (signed because the server announces requestSigning: required): ok: summary of q4-forecast (request signed by report-agent)",
            "[ok] keyless call: refused locally -32012 request_signature_required",
            "[ok] the server audited two verified signatures and no refusal",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_signing_server() {
    run_and_check(
        etdi_examples::request_signing_server::run,
        &[
            "[ok] the server announces requestSigning: per-tool",
            "[ok] unsigned get_balance (plain MCP clients keep working): ok: balance of ACME-001: 1200",
            "[ok] signed transfer_funds: ok: transferred 10 to ACME-001 (signed by treasury-agent)",
            "[ok] unsigned transfer_funds: refused -32012 request_signature_required",
            "[ok] tampered call (signed for 10, sent with 10000): refused -32012 invalid_request_signature",
            "   message: ETDI: request signature: request signature rejected: signed `args_digest` does not match the request",
            "[ok] one changed character in the signature: refused -32012 invalid_request_signature",
            "[ok] a signature made for another server: refused -32012 invalid_request_signature",
            "[ok] a signature by a key not registered for the caller: refused -32012 invalid_request_signature",
            "[ok] the first signed transfer sent again (replay): refused -32013 replay",
            "[ok] request_signature step: four invalid_request_signature denials",
            "[ok] replay step: replay",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comprehensive_request_signing() {
    let mut expected = Vec::new();
    for alg in ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"] {
        expected.push(format!(
            "[ok] {alg}: signature verified (header alg \"{alg}\", typ \"etdi-req+jwt\")"
        ));
        for what in [
            "changed argument refused",
            "signature moved to another tool refused",
            "one changed signature character refused",
            "signature by an unregistered key refused",
            "replay refused by the nonce store",
        ] {
            expected.push(format!("[ok] {alg}: {what}"));
        }
    }
    expected.extend(
        [
            "[ok] accepted 89 s after signing (60 s lifetime + 30 s skew)",
            "[ok] refused as stale 90 s after signing",
            "[ok] rotated: the new active key differs from the old one",
            "[ok] the published JWKS holds both keys during the overlap",
            "[ok] 5 min after rotation: an old-key signature still verifies",
            "[ok] after a restart the store has the same active key and one retired key",
            "[ok] 10 min + 1 s after rotation: an old-key signature is refused",
            "[ok] ... also by a verifier still holding the key ring fetched during the overlap",
            "[ok] the JWKS publishes only the new key",
        ]
        .map(str::to_owned),
    );
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    run_and_check(etdi_examples::comprehensive_request_signing::run, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_server_config() {
    run_and_check(
        etdi_examples::secure_server_config::run,
        &[
            "[ok] the policy file `security_level = \"high\"` gives the same policy as the code",
            "     \"security_level\": \"strict\",",
            "     \"max_call_depth\": 5,",
            "[ok] not written, so the Strict defaults apply: request signing required, tools/list filtered",
            "[ok] effective call depth is min(policy 5, tool 3) = 3; signatures and audit required",
            "[ok] alice calls my_secure_tool (verified, approved, signed): ok: Processed quarterly-report securely",
            "[ok] Strict filters tools/list: bob is not shown my_secure_tool",
            "[ok] bob calls it anyway (signed): refused -32010 missing_permissions",
            "[ok] the refusal names the missing permission",
            "[ok] alice's call audited as invoked successfully",
            "[ok] bob's call audited as denied: missing_permissions",
            "[ok] the hash chain verifies and covers every event written",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_chain() {
    run_and_check(
        etdi_examples::call_chain::run,
        &[
            "[ok] alice -> A.relay -> B.echo: com.b/echo got \"hi\" for server-a; chain [com.a/relay@alice]; hops signed [ES256/etdi-hop+jwt]",
            "[ok] alice -> A.relay -> B.bounce -> A.whoami: com.a/whoami got \"hi\" for server-b; chain [com.a/relay@alice, com.b/bounce@server-a]",
            "[ok] alice -> A.relay -> B.bounce -> A.shallow (depth 3, limit 2): refused -32014 call_depth_exceeded",
            "[ok] A.relay -> B.guarded (blocked caller): refused -32014 caller_blocked",
            "[ok] A.relay -> B.bounce -> A.relay (cycle): refused -32014 call_cycle",
            "[ok] A.relay -> B.write for alice, who may not write (A's token could): refused -32010 privilege_escalation",
            "[ok] server A: call_depth_exceeded at the call_chain step",
            "[ok] server B: caller_blocked at the call_chain step",
            "[ok] server B: privilege_escalation at the authorize step",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rug_pull_protection() {
    run_and_check(
        etdi_examples::rug_pull_protection::run,
        &[
            "[ok] first sight: the person approves it",
            "[ok] blocked: version_reuse, description_changed; the person is not asked",
            "[ok] a rug_pull_detected audit event is emitted",
            "[ok] call (refused before sending): refused locally -32015 tool_not_verified",
            "[ok] blocked: version_reuse, permission_escalation; the person is not asked",
            "[ok] re-approval: description_changed, version_upgrade; the person is asked and approves",
            "[ok] the pin moved to 1.1.0 with the new digest",
            "[ok] a pure version bump advances the pin without asking",
            "[ok] pinned version: 1.1.1",
        ],
    )
    .await;
}

/// The verdict is what decides the exit status: one failed check, a run
/// that stopped early, or a run that checked nothing is a failure.
#[tokio::test]
async fn a_missed_outcome_fails_the_verdict() {
    let (_, v) = run_captured(|n: Narrative| async move {
        n.check("this happened", true, "");
        n.expect("this did not", "refused -32010 x", "ok: y");
        Ok(())
    })
    .await;
    let why = v.unwrap_err();
    assert!(
        why.contains("1 of 2 checks failed")
            && why.contains("[FAILED] this did not: ok: y (got refused -32010 x)"),
        "{why}"
    );

    let (_, v) = run_captured(|n: Narrative| async move {
        n.check("fine so far", true, "");
        Err(Failure::new("server did not start"))
    })
    .await;
    assert_eq!(v.unwrap_err(), "stopped early: server did not start");

    let (_, v) = run_captured(|_n: Narrative| async move { Ok(()) }).await;
    assert_eq!(v.unwrap_err(), "no outcome was checked");

    let (_, v) = run_captured(|n: Narrative| async move {
        n.check_eq("two is two", 2, 2);
        Ok(())
    })
    .await;
    assert_eq!(v, Ok(1));
}
