//! The seed's `SecurityPolicy` example, expressed with etdi's types:
//!
//! ```python
//! policy = SecurityPolicy(security_level=SecurityLevel.HIGH, require_tool_signatures=True,
//!                         enable_call_chain_validation=True, max_call_depth=5, audit_all_calls=True)
//! server = SecureServer(name="my-super-secure-server", security_policy=policy)
//! @server.tool("my_secure_tool", permissions=["data:read", "user:profile:view"],
//!              etdi_require_signature=True, etdi_max_call_depth=3)
//! async def my_secure_tool_impl(param: str):
//!     return f"Processed {param} securely"
//! ```
//!
//! The policy is built in code and, identically, from a TOML policy file;
//! printed with the level defaults it implies; served over Streamable HTTP
//! with bearer tokens and a hash-chained audit log in a temporary
//! directory; and exercised with one allowed call (alice, through
//! etdi-client) and one denied call (bob, who lacks `user:profile:view`).

use std::sync::Arc;

use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, Verifier};
use etdi_client::{
    AutoApproveRule, Discovery, MemoryApprovalStore, RequestSigning, RuleApprover, SecureClient,
};
use etdi_core::{
    AuditEvent, CallChain, Outcome as EventOutcome, Permission, ProviderId, SecurityLevel,
    SecurityPolicy, ServerId,
};
use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
use etdi_crypto::request::{CallToSign, RequestSigner, RequestVerifier};
use etdi_crypto::trust::{IssuerKeys, KeyRing};
use etdi_crypto::{Algorithm, UnixTime, advertised};
use etdi_policy::{PolicyDocument, PolicyEngine};
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::schemars::JsonSchema;
use etdi_server::{EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::narrative::{Context, Failure, Narrative, Outcome};
use crate::support::{
    TokenIssuer, claim, client_outcome, http_client, http_config, key, loopback, outcome, params,
    refusal_message, signature_meta, spawn_http,
};

const PROVIDER: &str = "com.example";
const TOOL: &str = "my_secure_tool";

/// The same policy as an operator's policy file (etdi-policy, PROTOCOL §9.1).
const POLICY_TOML: &str = r#"
security_level = "high"
require_tool_signatures = true
enable_call_chain_validation = true
max_call_depth = 5
audit_all_calls = true
"#;

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct ToolArgs {
    /// What to process.
    param: String,
}

/// The seed's policy, written in code.
pub fn seed_policy() -> SecurityPolicy {
    // "high" is accepted as an alias of Strict: the strictest level rather
    // than a weaker guess.
    let mut policy = SecurityPolicy::new(SecurityLevel::Strict);
    policy.require_tool_signatures = true;
    policy.enable_call_chain_validation = true;
    policy.max_call_depth = 5;
    policy.audit_all_calls = true;
    policy
}

/// Reads every event of the native audit files in `dir`.
fn audit_events(dir: &std::path::Path) -> Result<Vec<AuditEvent>, Failure> {
    let mut events = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .context("listing the audit directory")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).context("reading an audit file")?;
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).context("parsing an audit record")?;
            let event: AuditEvent = serde_json::from_value(claim(&record, "event").clone())
                .context("parsing an audit event")?;
            events.push(event);
        }
    }
    Ok(events)
}

/// Runs the example.
pub async fn run(n: Narrative) -> Outcome {
    n.section("1. The seed's SecurityPolicy");
    let policy = seed_policy();
    let from_file =
        PolicyDocument::from_toml(POLICY_TOML, "policy.toml").context("parsing the policy file")?;
    n.check_eq(
        "the policy file `security_level = \"high\"` gives the same policy as the code",
        &from_file.security,
        &policy,
    );
    let printed = serde_json::to_string_pretty(&policy).context("printing the policy")?;
    for line in printed.lines() {
        n.say(line);
    }
    n.check_eq(
        "not written, so the Strict defaults apply: request signing required, tools/list filtered",
        (
            policy.security_level,
            policy.require_request_signing,
            policy.filter_tools_list,
        ),
        (SecurityLevel::Strict, true, true),
    );

    n.section("2. The server: my-super-secure-server with my_secure_tool");
    let (listener, url) = loopback().await?;
    let idp = TokenIssuer::new("https://idp.example.com")?;
    let provider_key = key(Algorithm::ES256)?;
    let alice_key = key(Algorithm::ES256)?;
    let bob_key = key(Algorithm::ES256)?;
    let audit_dir = tempfile::tempdir().context("creating the audit directory")?;
    let audit = Arc::new(
        AuditLog::builder()
            .sink(
                FileSink::builder(audit_dir.path())
                    .open()
                    .context("opening the audit files")?,
            )
            .build()
            .context("starting the audit log")?,
    );
    let mut registered = IssuerKeys::new();
    registered.add("alice", alice_key.verifying_key().clone());
    registered.add("bob", bob_key.verifying_key().clone());
    let server = SecureServer::builder("my-super-secure-server")
        .audience(url.clone())
        .policy(policy.clone())
        .provider(PROVIDER, "Example Corp")
        .attestation(AttestationSigner::new(PROVIDER), provider_key.clone())
        .audit(audit.clone())
        .bearer_auth(idp.bearer(&url, &["data:read", "user:profile:view"])?)
        .request_verifier(RequestVerifier::new(url.clone(), registered))
        .tool(
            EtdiTool::new(TOOL, "1.0.0")
                .description("Processes a parameter securely")
                .permissions(["data:read", "user:profile:view"])
                .require_signature(true) // etdi_require_signature=True
                .max_call_depth(3) // etdi_max_call_depth=3
                .handler(|a: ToolArgs, _ctx: ToolContext| async move {
                    format!("Processed {} securely", a.param)
                }),
        )
        .build()
        .context("building the server")?;

    // What the policy engine makes of the tool: per-tool settings only
    // tighten the server's policy.
    let definitions = server
        .advertised_tools()
        .iter()
        .map(|t| match serde_json::to_value(t) {
            Ok(Value::Object(m)) => advertised::definition_from_tool(&m).context("definition"),
            _ => Err(Failure::new("an advertised tool is not a JSON object")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let engine = PolicyEngine::builder(ServerId::parse(&url).context("server id")?)
        .policy(policy.clone())
        .tools(definitions.iter())
        .build()
        .context("building the policy engine")?;
    let tool_id = definitions
        .first()
        .map(|d| d.id.clone())
        .context("the server advertises no tool")?;
    let effective = engine
        .effective_security(&tool_id)
        .context("no settings for the tool")?;
    n.say(format!(
        "tool `{tool_id}` needs data:read and user:profile:view"
    ));
    n.say(format!("effective settings: {effective:?}"));
    n.check_eq(
        "effective call depth is min(policy 5, tool 3) = 3; signatures and audit required",
        (
            effective.max_call_depth,
            effective.require_signature,
            effective.require_request_signing,
            effective.audit_all_calls,
        ),
        (3, true, true, true),
    );
    spawn_http(server, listener);
    n.say(format!("listening on {url}"));

    n.section("3. An allowed call: alice (data:read user:profile:view) through etdi-client");
    let mut verifier = AttestationVerifier::new();
    verifier.trust_issuer(
        PROVIDER,
        [provider_key.verifying_key().clone()]
            .into_iter()
            .collect::<KeyRing>(),
        ProviderScope::only([PROVIDER]).context("provider id")?,
    );
    let discovery = Discovery::new(
        ServerId::parse(&url).context("server id")?,
        verifier,
        Arc::new(MemoryApprovalStore::new()),
    )
    .policy(policy.clone())
    .approver(Arc::new(RuleApprover::new().rule(AutoApproveRule::new(
        "example-data",
        ProviderId::parse(PROVIDER).context("provider id")?,
        [
            Permission::parse("data:read").context("permission")?,
            Permission::parse("user:profile:view").context("permission")?,
        ],
    ))));
    let alice_token = idp.token(&url, "alice", "data:read user:profile:view")?;
    let alice = SecureClient::connect(
        StreamableHttpClientTransport::from_config(http_config(&url, &alice_token)),
        discovery,
    )
    .await
    .context("connecting alice's client")?
    .with_request_signing(RequestSigning {
        signer: RequestSigner::new("alice"),
        key: alice_key.clone(),
    });
    let r = alice
        .call_tool(
            TOOL,
            json!({"param": "quarterly-report"}).as_object().cloned(),
        )
        .await;
    n.expect(
        "alice calls my_secure_tool (verified, approved, signed)",
        client_outcome(&r),
        "ok: Processed quarterly-report securely",
    );
    alice.close().await.context("closing alice's client")?;

    n.section("4. A denied call: bob (data:read only)");
    let bob_token = idp.token(&url, "bob", "data:read")?;
    let bob = http_client(&url, &bob_token).await?;
    let listed = bob.list_all_tools().await.context("tools/list")?;
    n.check_eq(
        "Strict filters tools/list: bob is not shown my_secure_tool",
        listed.len(),
        0,
    );
    let args = json!({"param": "quarterly-report"});
    let signature = RequestSigner::new("bob")
        .sign(
            &bob_key,
            &CallToSign {
                audience: &url,
                tool: TOOL,
                arguments: args.as_object(),
                chain: &CallChain::new(),
            },
            UnixTime::now(),
        )
        .context("signing bob's request")?;
    let r = bob
        .call_tool(params(TOOL, &args, Some(signature_meta(&signature))))
        .await;
    n.expect(
        "bob calls it anyway (signed)",
        outcome(&r),
        "refused -32010 missing_permissions",
    );
    n.check_eq(
        "the refusal names the missing permission",
        refusal_message(&r),
        Some("ETDI: permission denied: missing permission(s): user:profile:view".to_owned()),
    );
    bob.cancel().await.context("closing bob's session")?;

    n.section("5. The audit log (audit_all_calls) recorded both, hash-chained");
    audit
        .flush_async()
        .await
        .context("flushing the audit log")?;
    let events = audit_events(audit_dir.path())?;
    let step_of = |e: &AuditEvent| {
        e.details
            .get("step")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let who = |e: &AuditEvent| e.principal.as_ref().map(|p| p.subject.clone());
    let allowed = events.iter().any(|e| {
        step_of(e) == "invoke"
            && e.outcome == EventOutcome::Success
            && who(e).as_deref() == Some("alice")
    });
    let denied = events.iter().any(|e| {
        step_of(e) == "authorize"
            && e.outcome == EventOutcome::Denied
            && who(e).as_deref() == Some("bob")
            && e.reason_codes.iter().any(|c| c == "missing_permissions")
    });
    n.check(
        "alice's call audited as invoked successfully",
        allowed,
        "no such event",
    );
    n.check(
        "bob's call audited as denied: missing_permissions",
        denied,
        "no such event",
    );
    audit.shutdown().context("closing the audit log")?;
    let report = Verifier::new(audit_dir.path())
        .verify()
        .context("verifying the audit chain")?;
    n.check_eq(
        "the hash chain verifies and covers every event written",
        report.records,
        u64::try_from(events.len()).unwrap_or(u64::MAX),
    );
    n.say(format!(
        "{} records, head {}",
        report.records,
        report
            .head
            .map(|h| h.to_string())
            .unwrap_or_else(|| "none".into())
    ));
    audit_dir.close().context("removing the audit directory")?;
    Ok(())
}
