//! A client that signs its tool calls (PROTOCOL §6) and calls a
//! `SecureServer` over Streamable HTTP: first by hand with etdi-crypto's
//! `RequestSigner` on a plain MCP client, then through etdi-client's
//! `SecureClient`, which verifies and approves the server's tools and
//! signs every call the server requires to be signed. A client without a
//! key is stopped locally, before anything is sent.

use std::sync::Arc;

use etdi_client::{
    AutoApproveRule, Discovery, MemoryApprovalStore, RequestSigning, RuleApprover, SecureClient,
};
use etdi_core::{
    CallChain, Outcome as EventOutcome, Permission, ProviderId, SecurityLevel, SecurityPolicy,
    ServerId,
};
use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
use etdi_crypto::request::{CallToSign, RequestSigner, RequestVerifier};
use etdi_crypto::trust::{IssuerKeys, KeyRing};
use etdi_crypto::{Algorithm, UnixTime};
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::schemars::JsonSchema;
use etdi_server::{EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;
use serde_json::json;

use crate::narrative::{Context, Narrative, Outcome};
use crate::support::{
    TokenIssuer, claim, client_outcome, decode_jws, http_client, http_config, key, loopback,
    outcome, params, signature_meta, spawn_http,
};

/// The client id the agent authenticates and signs as.
const AGENT: &str = "report-agent";
const PROVIDER: &str = "com.example.reports";

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct SummaryArgs {
    /// The report to summarise.
    report: String,
}

/// Runs the example.
pub async fn run(n: Narrative) -> Outcome {
    let (listener, url) = loopback().await?;
    let idp = TokenIssuer::new("https://idp.example.com")?;
    let provider_key = key(Algorithm::ES256)?;
    let agent_key = key(Algorithm::ES256)?;
    let audit = Arc::new(MemoryAudit::new());

    n.section("1. A server that requires every tools/call to be signed");
    let mut policy = SecurityPolicy::new(SecurityLevel::Enhanced);
    policy.require_request_signing = true;
    let mut registered = IssuerKeys::new();
    registered.add(AGENT, agent_key.verifying_key().clone());
    let server = SecureServer::builder("reports")
        .audience(url.clone())
        .policy(policy)
        .provider(PROVIDER, "Example Reports")
        .attestation(AttestationSigner::new(PROVIDER), provider_key.clone())
        .audit(audit.clone())
        .bearer_auth(idp.bearer(&url, &["reports:read"])?)
        .request_verifier(RequestVerifier::new(url.clone(), registered))
        .tool(
            EtdiTool::new("summarise_report", "1.0.0")
                .description("Summarises a report")
                .permissions(["reports:read"])
                .handler(|a: SummaryArgs, ctx: ToolContext| async move {
                    format!(
                        "summary of {} (request signed by {})",
                        a.report,
                        ctx.info().signed_by.as_deref().unwrap_or("nobody")
                    )
                }),
        )
        .build()
        .context("building the server")?;
    spawn_http(server, listener);
    n.say(format!(
        "server on {url}; it knows `{AGENT}`'s public key ({})",
        agent_key.kid()
    ));
    let token = idp.token(&url, AGENT, "reports:read")?;

    n.section("2. Signing by hand: etdi-crypto's RequestSigner on a plain MCP client");
    let args = json!({"report": "q3-sales"});
    let signature = RequestSigner::new(AGENT)
        .sign(
            &agent_key,
            &CallToSign {
                audience: &url,
                tool: "summarise_report",
                arguments: args.as_object(),
                chain: &CallChain::new(),
            },
            UnixTime::now(),
        )
        .context("signing the request")?;
    let (header, claims) = decode_jws(&signature)?;
    n.say(format!(
        "header: alg {}, typ {}, kid {}",
        claim(&header, "alg"),
        claim(&header, "typ"),
        claim(&header, "kid")
    ));
    n.say(format!(
        "claims: iss {}, aud {}, mcp_method {}, tool {}, args_digest {}, chain_digest {}",
        claim(&claims, "iss"),
        claim(&claims, "aud"),
        claim(&claims, "mcp_method"),
        claim(&claims, "tool"),
        claim(&claims, "args_digest"),
        claim(&claims, "chain_digest")
    ));
    let lifetime = claim(&claims, "exp")
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(claim(&claims, "iat").as_u64().unwrap_or(0));
    n.check_eq(
        "the signature is an ES256 etdi-req+jwt binding tool, audience and a 60 s lifetime",
        (
            claim(&header, "alg").as_str(),
            claim(&header, "typ").as_str(),
            claim(&claims, "tool").as_str(),
            claim(&claims, "aud").as_str(),
            lifetime,
        ),
        (
            Some("ES256"),
            Some("etdi-req+jwt"),
            Some("summarise_report"),
            Some(url.as_str()),
            60,
        ),
    );
    let digest = etdi_crypto::request::args_digest(args.as_object()).context("digest")?;
    n.check_eq(
        "args_digest is the §3 digest (SHA-256 of the RFC 8785 form) of the arguments",
        claim(&claims, "args_digest").as_str(),
        Some(digest.to_string().as_str()),
    );
    n.say("sent in params._meta[\"dev.etdi/request-signature\"]");
    let plain = http_client(&url, &token).await?;
    let r = plain
        .call_tool(params(
            "summarise_report",
            &args,
            Some(signature_meta(&signature)),
        ))
        .await;
    n.expect(
        "call signed by hand",
        outcome(&r),
        format!("ok: summary of q3-sales (request signed by {AGENT})"),
    );
    plain.cancel().await.context("closing the session")?;

    n.section("3. Signing with etdi-client: SecureClient verifies, approves and signs");
    let discovery = || -> Result<Discovery, crate::Failure> {
        let mut verifier = AttestationVerifier::new();
        verifier.trust_issuer(
            PROVIDER,
            [provider_key.verifying_key().clone()]
                .into_iter()
                .collect::<KeyRing>(),
            ProviderScope::only([PROVIDER]).context("provider id")?,
        );
        let rules = RuleApprover::new().rule(AutoApproveRule::new(
            "reports-readers",
            ProviderId::parse(PROVIDER).context("provider id")?,
            [Permission::parse("reports:read").context("permission")?],
        ));
        Ok(Discovery::new(
            ServerId::parse(&url).context("server id")?,
            verifier,
            Arc::new(MemoryApprovalStore::new()),
        )
        .approver(Arc::new(rules)))
    };
    let client = SecureClient::connect(
        StreamableHttpClientTransport::from_config(http_config(&url, &token)),
        discovery()?,
    )
    .await
    .context("connecting the secure client")?
    .with_request_signing(RequestSigning {
        signer: RequestSigner::new(AGENT),
        key: agent_key.clone(),
    });
    let catalog = client.catalog().await.context("discovery")?;
    match catalog.get("summarise_report") {
        Some(t) => {
            n.check(
                "summarise_report: attestation verified and approved by rule:reports-readers",
                t.verification.is_verified()
                    && t.is_usable()
                    && t.approval.as_ref().map(|a| a.approved_by.as_str())
                        == Some("rule:reports-readers"),
                format_args!("{:?} / {:?}", t.verification, t.refusal),
            );
        }
        None => n.fail("summarise_report was listed", "not in the catalog"),
    }
    let r = client
        .call_tool(
            "summarise_report",
            json!({"report": "q4-forecast"}).as_object().cloned(),
        )
        .await;
    n.expect(
        "SecureClient call (signed because the server announces requestSigning: required)",
        client_outcome(&r),
        format!("ok: summary of q4-forecast (request signed by {AGENT})"),
    );
    client.close().await.context("closing the secure client")?;

    n.section("4. A client without a signing key is stopped before sending");
    let keyless = SecureClient::connect(
        StreamableHttpClientTransport::from_config(http_config(&url, &token)),
        discovery()?,
    )
    .await
    .context("connecting the keyless client")?;
    let r = keyless
        .call_tool(
            "summarise_report",
            json!({"report": "q3-sales"}).as_object().cloned(),
        )
        .await;
    n.expect(
        "keyless call",
        client_outcome(&r),
        "refused locally -32012 request_signature_required",
    );
    keyless
        .close()
        .await
        .context("closing the keyless client")?;

    let signed_ok = audit
        .for_step(step::REQUEST_SIGNATURE)
        .iter()
        .filter(|e| e.outcome == EventOutcome::Success)
        .count();
    let refused = audit
        .for_step(step::REQUEST_SIGNATURE)
        .iter()
        .filter(|e| e.outcome == EventOutcome::Denied)
        .count();
    n.check_eq(
        "the server audited two verified signatures and no refusal (the keyless call never left the client)",
        (signed_ok, refused),
        (2, 0),
    );
    Ok(())
}
