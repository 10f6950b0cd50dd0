//! A `SecureServer` that requires request signing for one tool
//! (`transfer_funds`) and not for another (`get_balance`): plain MCP
//! clients keep working where no signature is required, a signed call is
//! accepted, and an unsigned, tampered, forged, misaddressed or replayed
//! call is refused with the PROTOCOL §10 error (-32012 / -32013), each
//! refusal audited at its pipeline step.

use std::sync::Arc;

use etdi_core::{CallChain, Outcome as EventOutcome};
use etdi_crypto::Algorithm;
use etdi_crypto::attestation::AttestationSigner;
use etdi_crypto::request::{CallToSign, RequestSigner, RequestVerifier};
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{SigningKey, UnixTime};
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::schemars::JsonSchema;
use etdi_server::{EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::narrative::{Context, Narrative, Outcome};
use crate::support::{
    TokenIssuer, claim, http_client, key, loopback, outcome, params, refusal_message,
    signature_meta, spawn_http,
};

/// The client id the treasury agent authenticates and signs as.
const AGENT: &str = "treasury-agent";

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct TransferArgs {
    /// Recipient account.
    to: String,
    /// Amount in cents.
    amount: u64,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct BalanceArgs {
    /// Account.
    account: String,
}

fn sign(
    key: &SigningKey,
    audience: &str,
    tool: &str,
    arguments: &Value,
) -> Result<String, crate::Failure> {
    RequestSigner::new(AGENT)
        .sign(
            key,
            &CallToSign {
                audience,
                tool,
                arguments: arguments.as_object(),
                chain: &CallChain::new(),
            },
            UnixTime::now(),
        )
        .context("signing the request")
}

/// Runs the example.
pub async fn run(n: Narrative) -> Outcome {
    let (listener, url) = loopback().await?;
    let idp = TokenIssuer::new("https://idp.example.com")?;
    let provider_key = key(Algorithm::ES256)?;
    let agent_key = key(Algorithm::ES256)?;
    let audit = Arc::new(MemoryAudit::new());

    n.section("1. The server: `transfer_funds` requires signed requests, `get_balance` does not");
    let mut registered = IssuerKeys::new();
    registered.add(AGENT, agent_key.verifying_key().clone());
    let server = SecureServer::builder("payments")
        .audience(url.clone())
        .provider("com.example.payments", "Example Payments")
        .attestation(
            AttestationSigner::new("com.example.payments"),
            provider_key.clone(),
        )
        .audit(audit.clone())
        .bearer_auth(idp.bearer(&url, &["payments:read", "payments:transfer"])?)
        .request_verifier(RequestVerifier::new(url.clone(), registered))
        .tool(
            EtdiTool::new("get_balance", "1.0.0")
                .description("Returns an account's balance")
                .permissions(["payments:read"])
                .handler(|a: BalanceArgs, _ctx: ToolContext| async move {
                    format!("balance of {}: 1200", a.account)
                }),
        )
        .tool(
            EtdiTool::new("transfer_funds", "1.0.0")
                .description("Transfers money to another account")
                .permissions(["payments:transfer"])
                .require_request_signing(true)
                .handler(|a: TransferArgs, ctx: ToolContext| async move {
                    format!(
                        "transferred {} to {} (signed by {})",
                        a.amount,
                        a.to,
                        ctx.info().signed_by.as_deref().unwrap_or("nobody")
                    )
                }),
        )
        .build()
        .context("building the server")?;
    spawn_http(server, listener);
    n.say(format!(
        "listening on {url}; the client `{AGENT}`'s ES256 key is registered"
    ));

    let token = idp.token(&url, AGENT, "payments:read payments:transfer")?;
    let client = http_client(&url, &token).await?;
    let capability = client
        .peer_info()
        .and_then(|i| i.capabilities.experimental.clone())
        .and_then(|e| e.get("dev.etdi").cloned())
        .map(Value::Object)
        .unwrap_or(Value::Null);
    n.say(format!("initialize announces dev.etdi = {capability}"));
    n.check_eq(
        "the server announces requestSigning: per-tool",
        claim(&capability, "requestSigning").clone(),
        json!("per-tool"),
    );
    let tools = client.list_all_tools().await.context("tools/list")?;
    let flag = tools
        .iter()
        .find(|t| t.name == "transfer_funds")
        .and_then(|t| t.meta.as_ref())
        .and_then(|m| m.0.get("dev.etdi/tool"))
        .map(|t| claim(claim(t, "security"), "requireRequestSigning").clone());
    n.check_eq(
        "tools/list marks transfer_funds with security.requireRequestSigning",
        flag,
        Some(json!(true)),
    );

    n.section("2. Calls");
    let balance = json!({"account": "ACME-001"});
    let r = client
        .call_tool(params("get_balance", &balance, None))
        .await;
    n.expect(
        "unsigned get_balance (plain MCP clients keep working)",
        outcome(&r),
        "ok: balance of ACME-001: 1200",
    );

    let transfer = json!({"to": "ACME-001", "amount": 10});
    let signed = sign(&agent_key, &url, "transfer_funds", &transfer)?;
    let r = client
        .call_tool(params(
            "transfer_funds",
            &transfer,
            Some(signature_meta(&signed)),
        ))
        .await;
    n.expect(
        "signed transfer_funds",
        outcome(&r),
        format!("ok: transferred 10 to ACME-001 (signed by {AGENT})"),
    );

    let r = client
        .call_tool(params("transfer_funds", &transfer, None))
        .await;
    n.expect(
        "unsigned transfer_funds",
        outcome(&r),
        "refused -32012 request_signature_required",
    );
    n.say(format!(
        "message: {}",
        refusal_message(&r).unwrap_or_default()
    ));

    let fresh = sign(&agent_key, &url, "transfer_funds", &transfer)?;
    let inflated = json!({"to": "ACME-001", "amount": 10_000});
    let r = client
        .call_tool(params(
            "transfer_funds",
            &inflated,
            Some(signature_meta(&fresh)),
        ))
        .await;
    n.expect(
        "tampered call (signed for 10, sent with 10000)",
        outcome(&r),
        "refused -32012 invalid_request_signature",
    );
    n.say(format!(
        "message: {}",
        refusal_message(&r).unwrap_or_default()
    ));

    let forged = crate::support::flip_char(&fresh, crate::support::middle_of_signature(&fresh));
    let r = client
        .call_tool(params(
            "transfer_funds",
            &transfer,
            Some(signature_meta(&forged)),
        ))
        .await;
    n.expect(
        "one changed character in the signature",
        outcome(&r),
        "refused -32012 invalid_request_signature",
    );

    let elsewhere = sign(
        &agent_key,
        "https://other-bank.example/mcp",
        "transfer_funds",
        &transfer,
    )?;
    let r = client
        .call_tool(params(
            "transfer_funds",
            &transfer,
            Some(signature_meta(&elsewhere)),
        ))
        .await;
    n.expect(
        "a signature made for another server",
        outcome(&r),
        "refused -32012 invalid_request_signature",
    );

    let intruder = key(Algorithm::ES256)?;
    let unknown = sign(&intruder, &url, "transfer_funds", &transfer)?;
    let r = client
        .call_tool(params(
            "transfer_funds",
            &transfer,
            Some(signature_meta(&unknown)),
        ))
        .await;
    n.expect(
        "a signature by a key not registered for the caller",
        outcome(&r),
        "refused -32012 invalid_request_signature",
    );

    let r = client
        .call_tool(params(
            "transfer_funds",
            &transfer,
            Some(signature_meta(&signed)),
        ))
        .await;
    n.expect(
        "the first signed transfer sent again (replay)",
        outcome(&r),
        "refused -32013 replay",
    );
    client.cancel().await.context("closing the session")?;

    n.section("3. The audit log recorded each refusal at its step");
    let denied = |step: &str, code: &str| {
        audit
            .for_step(step)
            .iter()
            .any(|e| e.outcome == EventOutcome::Denied && e.reason_codes.iter().any(|c| c == code))
    };
    let counted = |step: &str, code: &str| {
        audit
            .for_step(step)
            .iter()
            .filter(|e| {
                e.outcome == EventOutcome::Denied && e.reason_codes.iter().any(|c| c == code)
            })
            .count()
    };
    n.check(
        "request_signature step: request_signature_required",
        denied(step::REQUEST_SIGNATURE, "request_signature_required"),
        "no such event",
    );
    n.check_eq(
        "request_signature step: four invalid_request_signature denials",
        counted(step::REQUEST_SIGNATURE, "invalid_request_signature"),
        4,
    );
    n.check(
        "replay step: replay",
        denied(step::REPLAY, "replay"),
        "no such event",
    );
    Ok(())
}
