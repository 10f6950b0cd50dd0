//! Tool-to-tool calls across two servers (PROTOCOL §7). A client calls
//! `relay` on server A; A's tool calls a tool on server B with the call
//! chain extended by a hop A signs; B's `bounce` can call back into A with
//! a second hop B signs. Each server verifies every hop and enforces the
//! chain rules: the depth limit, blocked callers, cycles, and the
//! intersection of rights along the chain.

use std::sync::Arc;

use etdi_core::{EventKind, Outcome as EventOutcome, SecurityLevel, SecurityPolicy};
use etdi_crypto::Algorithm;
use etdi_crypto::chain::ChainVerifier;
use etdi_crypto::jws::peek_header;
use etdi_crypto::trust::IssuerKeys;
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::remote::RemoteError;
use etdi_server::schemars::JsonSchema;
use etdi_server::{EtdiTool, RemoteServer, SecureServer, StaticToken, ToolContext};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::narrative::{Context, Narrative, Outcome};
use crate::support::{TokenIssuer, http_client, key, loopback, params, spawn_http, text_of};

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct RouteArgs {
    /// The tools to call next, one per server, alternating between the
    /// two servers.
    path: Vec<String>,
    /// Text handed to the last tool.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct TextArgs {
    /// Some text.
    text: String,
}

/// Calls the first tool of `path` on the remote server `remote`, handing
/// it the rest of the path; reports its answer or its §10 refusal.
async fn forward(remote: &'static str, a: RouteArgs, ctx: ToolContext) -> String {
    let Some((next, rest)) = a.path.split_first() else {
        return "nothing to forward".into();
    };
    let mut args = Map::new();
    args.insert("text".into(), Value::from(a.text));
    if !rest.is_empty() {
        args.insert("path".into(), json!(rest));
    }
    match ctx.call_remote(remote, next, args).await {
        Ok(r) => text_of(&r),
        Err(RemoteError::Refused(e)) => {
            format!("refused {}: {}", crate::support::refusal_of(&e), e.message)
        }
        Err(other) => format!("failed: {other}"),
    }
}

/// What a leaf tool saw: the caller, the chain (tool@principal per hop)
/// and how each hop was signed.
fn describe(tool: &str, text: &str, ctx: &ToolContext) -> String {
    let hops: Vec<String> = ctx
        .chain()
        .hops()
        .iter()
        .map(|h| format!("{}@{}", h.tool, h.principal))
        .collect();
    let signed: Vec<String> = ctx
        .info()
        .hop_jws
        .iter()
        .map(|j| match peek_header(j) {
            Ok(h) => format!("{}/{}", h.alg(), h.typ().unwrap_or("?")),
            Err(_) => "unreadable".into(),
        })
        .collect();
    format!(
        "{tool} got {text:?} for {}; chain [{}]; hops signed [{}]",
        ctx.principal().subject,
        hops.join(", "),
        signed.join(", ")
    )
}

fn policy() -> SecurityPolicy {
    let mut p = SecurityPolicy::new(SecurityLevel::Basic);
    p.audit_all_calls = true;
    p
}

/// Runs the example.
pub async fn run(n: Narrative) -> Outcome {
    let idp = TokenIssuer::new("https://idp.example.com")?;
    let (listener_a, url_a) = loopback().await?;
    let (listener_b, url_b) = loopback().await?;
    let hop_key_a = key(Algorithm::ES256)?;
    let hop_key_b = key(Algorithm::ES256)?;
    let audit_a = Arc::new(MemoryAudit::new());
    let audit_b = Arc::new(MemoryAudit::new());
    let scopes = ["demo:read", "demo:write"];

    n.section("1. Two servers that trust each other's hop keys");
    // Each server verifies every hop of a chain it receives against the
    // key trusted for that hop's server, its own included.
    let mut hops_trusted = IssuerKeys::new();
    hops_trusted.add(url_a.clone(), hop_key_a.verifying_key().clone());
    hops_trusted.add(url_b.clone(), hop_key_b.verifying_key().clone());

    let a = SecureServer::builder("server-a")
        .audience(url_a.clone())
        .policy(policy())
        .provider("com.a", "A Corp")
        .audit(audit_a.clone())
        .bearer_auth(idp.bearer(&url_a, &scopes)?)
        .chain_verifier(ChainVerifier::new(url_a.clone(), hops_trusted.clone()))
        .hop_key(hop_key_a.clone())
        .remote(
            "b",
            RemoteServer {
                url: url_b.clone(),
                audience: url_b.clone(),
                // A's own token for B: never the caller's token (§11).
                token: Some(Arc::new(StaticToken(idp.token(
                    &url_b,
                    "server-a",
                    "demo:read demo:write",
                )?))),
            },
        )
        .tool(
            EtdiTool::new("relay", "1.0.0")
                .description("Calls a tool on server B")
                .permissions(["demo:read"])
                .handler(|a: RouteArgs, ctx: ToolContext| forward("b", a, ctx)),
        )
        .tool(
            EtdiTool::new("whoami", "1.0.0")
                .description("Reports the chain it was called through")
                .permissions(["demo:read"])
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    describe("com.a/whoami", &a.text, &ctx)
                }),
        )
        .tool(
            EtdiTool::new("shallow", "1.0.0")
                .description("Accepts chains of at most two calls")
                .permissions(["demo:read"])
                .max_call_depth(2)
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    describe("com.a/shallow", &a.text, &ctx)
                }),
        )
        .build()
        .context("building server A")?;

    let b = SecureServer::builder("server-b")
        .audience(url_b.clone())
        .policy(policy())
        .provider("com.b", "B Corp")
        .audit(audit_b.clone())
        .bearer_auth(idp.bearer(&url_b, &scopes)?)
        .chain_verifier(ChainVerifier::new(url_b.clone(), hops_trusted))
        .hop_key(hop_key_b.clone())
        .remote(
            "a",
            RemoteServer {
                url: url_a.clone(),
                audience: url_a.clone(),
                token: Some(Arc::new(StaticToken(idp.token(
                    &url_a,
                    "server-b",
                    "demo:read demo:write",
                )?))),
            },
        )
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .description("Reports the chain it was called through")
                .permissions(["demo:read"])
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    describe("com.b/echo", &a.text, &ctx)
                }),
        )
        .tool(
            EtdiTool::new("bounce", "1.0.0")
                .description("Calls a tool on server A")
                .permissions(["demo:read"])
                .handler(|a: RouteArgs, ctx: ToolContext| forward("a", a, ctx)),
        )
        .tool(
            EtdiTool::new("guarded", "1.0.0")
                .description("May not be called by A's relay")
                .permissions(["demo:read"])
                .blocked_callers(["com.a/relay"])
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    describe("com.b/guarded", &a.text, &ctx)
                }),
        )
        .tool(
            EtdiTool::new("write", "1.0.0")
                .description("Needs demo:write")
                .permissions(["demo:write"])
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    describe("com.b/write", &a.text, &ctx)
                }),
        )
        .build()
        .context("building server B")?;
    spawn_http(a, listener_a);
    spawn_http(b, listener_b);
    n.say(format!(
        "server A {url_a}: relay, whoami, shallow (max depth 2)"
    ));
    n.say(format!(
        "server B {url_b}: echo, bounce, guarded (blocks com.a/relay), write (needs demo:write)"
    ));
    n.say("alice may read (demo:read); A's and B's own tokens for each other may read and write");

    let alice = idp.token(&url_a, "alice", "demo:read")?;
    let client = http_client(&url_a, &alice).await?;
    let relay = |path: &[&str]| {
        let args = json!({"path": path, "text": "hi"});
        let client = &client;
        async move { client.call_tool(params("relay", &args, None)).await }
    };

    n.section("2. The chain is extended and signed at every server");
    let r = relay(&["echo"]).await.context("calling relay")?;
    n.expect(
        "alice -> A.relay -> B.echo",
        text_of(&r),
        "com.b/echo got \"hi\" for server-a; chain [com.a/relay@alice]; hops signed [ES256/etdi-hop+jwt]",
    );
    let r = relay(&["bounce", "whoami"])
        .await
        .context("calling relay")?;
    n.expect(
        "alice -> A.relay -> B.bounce -> A.whoami",
        text_of(&r),
        "com.a/whoami got \"hi\" for server-b; chain [com.a/relay@alice, com.b/bounce@server-a]; \
         hops signed [ES256/etdi-hop+jwt, ES256/etdi-hop+jwt]",
    );

    n.section("3. Chain rules enforced by the receiving server");
    let r = relay(&["bounce", "shallow"])
        .await
        .context("calling relay")?;
    n.expect(
        "alice -> A.relay -> B.bounce -> A.shallow (depth 3, limit 2)",
        text_of(&r),
        "refused -32014 call_depth_exceeded: ETDI: call chain rejected: call chain depth 3 exceeds the limit of 2",
    );
    let r = relay(&["guarded"]).await.context("calling relay")?;
    n.expect(
        "A.relay -> B.guarded (blocked caller)",
        text_of(&r),
        "refused -32014 caller_blocked: ETDI: call chain rejected: `com.a/relay` is blocked from calling `com.b/guarded`",
    );
    let r = relay(&["bounce", "relay", "echo"])
        .await
        .context("calling relay")?;
    n.expect(
        "A.relay -> B.bounce -> A.relay (cycle)",
        text_of(&r),
        "refused -32014 call_cycle: ETDI: call chain rejected: call chain revisits tool `com.a/relay`",
    );
    let r = relay(&["write"]).await.context("calling relay")?;
    n.expect(
        "A.relay -> B.write for alice, who may not write (A's token could)",
        text_of(&r),
        "refused -32010 privilege_escalation: ETDI: permission denied: privilege escalation: \
         chain principal `alice` does not hold demo:write",
    );
    client.cancel().await.context("closing the session")?;

    n.section("4. Each refusal is in the refusing server's audit log");
    let denied = |audit: &MemoryAudit, step: &str, kind: EventKind, code: &str| {
        audit.for_step(step).iter().any(|e| {
            e.kind == kind
                && e.outcome == EventOutcome::Denied
                && e.reason_codes.iter().any(|c| c == code)
        })
    };
    n.check(
        "server A: call_depth_exceeded at the call_chain step",
        denied(
            &audit_a,
            step::CALL_CHAIN,
            EventKind::PolicyViolation,
            "call_depth_exceeded",
        ),
        "no such event",
    );
    n.check(
        "server A: call_cycle at the call_chain step",
        denied(
            &audit_a,
            step::CALL_CHAIN,
            EventKind::PolicyViolation,
            "call_cycle",
        ),
        "no such event",
    );
    n.check(
        "server B: caller_blocked at the call_chain step",
        denied(
            &audit_b,
            step::CALL_CHAIN,
            EventKind::PolicyViolation,
            "caller_blocked",
        ),
        "no such event",
    );
    n.check(
        "server B: privilege_escalation at the authorize step",
        denied(
            &audit_b,
            step::AUTHORIZE,
            EventKind::AuthorizationFailed,
            "privilege_escalation",
        ),
        "no such event",
    );
    Ok(())
}
