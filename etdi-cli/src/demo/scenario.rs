//! The networked scenario: start the token issuer and the tool server on
//! 127.0.0.1, connect the agent (an etdi-client `SecureClient`), and run
//! each step against them, checking the exact outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, TamperKind, Verifier, VerifyError, VerifyReport};
use etdi_auth::{AccessToken, ClientAuth, ClientCredentials, ClientSecret, HttpClient};
use etdi_client::approval::ApprovalStore;
use etdi_client::{
    AutoApproveRule, Change, ClientError, Discovery, FileApprovalStore, Refusal, RequestSigning,
    RuleApprover, SecureClient, ToolCatalog, Verdict,
};
use etdi_core::{
    CallChain, DenyReason, Hop, Permission, ProviderId, ServerId, Timestamp, ToolId,
    VerificationStatus,
};
use etdi_crypto::attestation::{AttestationVerifier, ProviderScope};
use etdi_crypto::chain::HopSigner;
use etdi_crypto::chain::HopToSign;
use etdi_crypto::replay::MemoryNonceStore;
use etdi_crypto::request::{CallToSign, RequestSigner};
use etdi_crypto::trust::KeyRing;
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime, advertised};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::issuer::{self, RegisteredClient};
use super::report::{Outcome, Pass, Report, STEPS};
use super::server::{
    self, DEMO_FILE, DEMO_FILE_TEXT, POISONED_DESCRIPTION, PROVIDER, READ_MAX_DEPTH, ServerConfig,
};

/// Longest wait for any one network exchange.
pub const NET_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's OAuth client id, also the issuer of its request signatures.
const AGENT: &str = "demo-agent";
/// Two agent servers whose tools relay calls (step 4); they sign hops.
const PLANNER: &str = "urn:etdi:demo:planner";
const RESEARCHER: &str = "urn:etdi:demo:researcher";
const PLAN_TOOL: &str = "com.example.agents/plan";
const RESEARCH_TOOL: &str = "com.example.agents/research";
/// The approval rule the agent uses.
const RULE: &str = "demo-files";

/// Waits for `fut` at most [`NET_TIMEOUT`]; `what` names the wait.
async fn within<F: Future>(what: &str, fut: F) -> Result<F::Output, String> {
    tokio::time::timeout(NET_TIMEOUT, fut)
        .await
        .map_err(|_| format!("{what}: no answer within {} s", NET_TIMEOUT.as_secs()))
}

fn es256(what: &str) -> Result<Arc<SigningKey>, String> {
    SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)
        .map(Arc::new)
        .map_err(|e| format!("generating the {what} key: {e}"))
}

async fn bind(what: &str) -> Result<(TcpListener, std::net::SocketAddr), String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1 for the {what}: {e} (the demo needs one free loopback port for it)")
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the {what}'s listening address: {e}"))?;
    Ok((listener, addr))
}

fn spawn_app(listener: TcpListener, app: axum::Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The runtime stops the servers when the demo ends; an accept error
        // before that shows up as a failed step, not here. The issuer is
        // accepted like the tool server (TCP_NODELAY), as in production.
        let _ = axum::serve(etdi_server::listener::TcpAccept::new(listener), app).await;
    })
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    CryptoProvider::get_default()
        .fill_random(&mut buf)
        .map_err(|e| format!("random secret: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn audit_log(dir: &Path, key: &Arc<SigningKey>) -> Result<Arc<AuditLog>, String> {
    let sink = FileSink::builder(dir)
        .checkpoint_signer(key.clone())
        .open()
        .map_err(|e| format!("opening the audit log in {}: {e}", dir.display()))?;
    AuditLog::builder()
        .sink(sink)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("starting the audit log: {e}"))
}

/// Every event of the file log in `dir`, oldest first.
fn read_events(dir: &Path) -> Result<Vec<Value>, String> {
    let files = etdi_audit::sink::file::list_log_files(dir, "audit")
        .map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for (_, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let record = etdi_audit::record::parse_record(line)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            out.push(record.event);
        }
    }
    Ok(out)
}

fn text_of(event: &Value, pointer: &str) -> String {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn has_reason(event: &Value, code: &str) -> bool {
    event
        .get("reason_codes")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|c| c.as_str() == Some(code)))
}

/// The text of a tool result, or why there is none.
fn result_text(result: &CallToolResult) -> Result<String, String> {
    if result.is_error == Some(true) {
        return Err(format!("the tool reported an error: {:?}", result.content));
    }
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .ok_or_else(|| "the tool answered without text".to_owned())
}

/// A server refusal: JSON-RPC code, message and the `data.reasons`.
struct Refused {
    code: i32,
    message: String,
    reasons: Vec<Value>,
}

fn server_refusal(result: Result<CallToolResult, ClientError>) -> Result<Refused, String> {
    match result {
        Err(ClientError::Service(rmcp::ServiceError::McpError(e))) => Ok(Refused {
            code: e.code.0,
            message: e.message.to_string(),
            reasons: e
                .data
                .as_ref()
                .and_then(|d| d.get("reasons"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        }),
        Err(other) => Err(format!("failed, but not with a server refusal: {other}")),
        Ok(r) => Err(format!(
            "the call was allowed (answer: {})",
            result_text(&r).unwrap_or_else(|e| e)
        )),
    }
}

fn args(value: Value) -> Option<JsonObject> {
    match value {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

fn short(digest: &impl std::fmt::Display) -> String {
    let s = digest.to_string();
    s.chars().take(19).collect::<String>() + "…"
}

/// Everything the steps share.
pub struct World {
    /// The issuer's URL.
    pub issuer_url: String,
    /// The tool server's URL (and audience).
    pub server_url: String,
    server_id: ServerId,
    rug_pulled: Arc<std::sync::atomic::AtomicBool>,
    server_audit: Arc<AuditLog>,
    server_audit_dir: PathBuf,
    server_audit_key: Arc<SigningKey>,
    client_audit: Arc<AuditLog>,
    client_audit_dir: PathBuf,
    client_audit_key: Arc<SigningKey>,
    approvals: PathBuf,
    work_dir: PathBuf,
    provider_key: Arc<SigningKey>,
    client_key: Arc<SigningKey>,
    planner_key: Arc<SigningKey>,
    researcher_key: Arc<SigningKey>,
    full_token: AccessToken,
    read_token: AccessToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the issuer and the tool server and obtains the agent's tokens.
pub async fn setup(dir: &Path) -> Result<World, String> {
    let provider_key = es256("provider attestation")?;
    let client_key = es256("agent request-signing")?;
    let issuer_key = es256("token issuer")?;
    let planner_key = es256("planner hop")?;
    let researcher_key = es256("researcher hop")?;
    let server_audit_key = es256("server audit checkpoint")?;
    let client_audit_key = es256("agent audit checkpoint")?;

    let (issuer_listener, issuer_addr) = bind("token issuer").await?;
    let (server_listener, server_addr) = bind("tool server").await?;
    let issuer_url = format!("http://{issuer_addr}");
    let server_url = format!("http://{server_addr}/mcp");
    let server_id =
        ServerId::parse(&server_url).map_err(|e| format!("server id {server_url}: {e}"))?;

    let secret = random_hex(32)?;
    let mut tasks = vec![spawn_app(
        issuer_listener,
        issuer::router(
            issuer_url.clone(),
            issuer_key,
            RegisteredClient {
                id: AGENT.into(),
                secret: secret.clone(),
                scopes: ["files:read", "files:write"].map(String::from).into(),
            },
            server_url.clone(),
        ),
    )];

    // The resource server finds the issuer's keys through discovery.
    let tokens = etdi_auth::TokenVerifier::builder()
        .issuer(
            etdi_auth::IssuerConfig::new(issuer_url.clone())
                .audience(server_url.clone())
                .require_at_jwt(true),
        )
        .build()
        .map_err(|e| format!("token verifier: {e}"))?;
    within("fetching the issuer's metadata and keys", tokens.warm_up())
        .await?
        .map_err(|e| {
            format!(
                "fetching the issuer's metadata and keys: {e} (the demo talks only to \
                 127.0.0.1; is the loopback interface up?)"
            )
        })?;

    let server_audit_dir = dir.join("server-audit");
    let client_audit_dir = dir.join("agent-audit");
    let server_audit = audit_log(&server_audit_dir, &server_audit_key)?;
    let client_audit = audit_log(&client_audit_dir, &client_audit_key)?;

    let cfg = ServerConfig {
        url: server_url.clone(),
        issuer: issuer_url.clone(),
        tokens: Arc::new(tokens),
        provider_key: provider_key.clone(),
        request_keys: vec![(AGENT.into(), client_key.verifying_key().clone())],
        hop_keys: vec![
            (PLANNER.into(), planner_key.verifying_key().clone()),
            (RESEARCHER.into(), researcher_key.verifying_key().clone()),
        ],
        nonces: Arc::new(MemoryNonceStore::new(MemoryNonceStore::capacity_for(
            100, 360,
        ))),
        audit: server_audit.clone(),
    };
    let tool_server = server::tool_server(&cfg)?;
    tasks.push(spawn_app(server_listener, tool_server.app));

    // The agent's tokens, with the client-credentials grant after RFC 8414
    // discovery of the token endpoint.
    let http = HttpClient::new().map_err(|e| format!("HTTP client: {e}"))?;
    let token = |scopes: &'static [&'static str]| {
        let (http, issuer_url, server_url, secret) = (
            http.clone(),
            issuer_url.clone(),
            server_url.clone(),
            secret.clone(),
        );
        async move {
            let what = format!("obtaining a token for scope {}", scopes.join(" "));
            let client = within(
                &what,
                ClientCredentials::discover(
                    &http,
                    &issuer_url,
                    AGENT,
                    ClientAuth::SecretPost(ClientSecret::new(secret)),
                ),
            )
            .await?
            .map_err(|e| format!("{what}: {e}"))?
            .scopes(scopes.iter().copied())
            .resource(server_url);
            within(&what, client.access_token())
                .await?
                .map_err(|e| format!("{what}: {e}"))
        }
    };
    let full_token = token(&["files:read", "files:write"]).await?;
    let read_token = token(&["files:read"]).await?;

    Ok(World {
        issuer_url,
        server_url,
        server_id,
        rug_pulled: tool_server.rug_pulled,
        server_audit,
        server_audit_dir,
        server_audit_key,
        client_audit,
        client_audit_dir,
        client_audit_key,
        approvals: dir.join("approvals.json"),
        work_dir: dir.to_owned(),
        provider_key,
        client_key,
        planner_key,
        researcher_key,
        full_token,
        read_token,
        tasks,
    })
}

/// The scope a token was granted, for the report.
fn scope_of(token: &AccessToken) -> String {
    token.scope().unwrap_or("?").to_owned()
}

impl World {
    /// The agent's discovery: it trusts the provider's key for the
    /// provider's tools, pins approvals in a file, and auto-approves that
    /// provider's tools that need at most `files:*`.
    fn discovery(&self) -> Result<Discovery, String> {
        let mut verifier = AttestationVerifier::new();
        verifier.trust_issuer(
            PROVIDER,
            [self.provider_key.verifying_key().clone()]
                .into_iter()
                .collect::<KeyRing>(),
            ProviderScope::only([PROVIDER]).map_err(|e| e.to_string())?,
        );
        let store = FileApprovalStore::open(&self.approvals)
            .map_err(|e| format!("approval file {}: {e}", self.approvals.display()))?;
        let rule = AutoApproveRule::new(
            RULE,
            ProviderId::parse(PROVIDER).map_err(|e| e.to_string())?,
            [Permission::parse("files:*").map_err(|e| e.to_string())?],
        );
        Ok(
            Discovery::new(self.server_id.clone(), verifier, Arc::new(store))
                .policy(server::policy())
                .approver(Arc::new(RuleApprover::new().rule(rule))),
        )
    }

    /// Connects the agent with `token`; discovery runs on connect, and its
    /// events go to the agent's audit log.
    async fn connect(
        &self,
        token: &AccessToken,
    ) -> Result<(SecureClient, Arc<ToolCatalog>), String> {
        // After the rug-pull switch the other build of the server answers,
        // which does not know this session: the transport starts a new one
        // on the 404 (as the MCP spec asks), said here rather than assumed.
        let config = StreamableHttpClientTransportConfig::with_uri(self.server_url.clone())
            .auth_header(token.secret().to_owned())
            .reinit_on_expired_session(true);
        let transport = StreamableHttpClientTransport::from_config(config);
        let client = within(
            "connecting the agent to the tool server",
            SecureClient::connect(transport, self.discovery()?),
        )
        .await?
        .map_err(|e| format!("connecting the agent to the tool server: {e}"))?
        .with_request_signing(RequestSigning {
            signer: RequestSigner::new(AGENT),
            key: self.client_key.clone(),
        });
        let catalog = within("listing the tools", client.catalog())
            .await?
            .map_err(|e| format!("listing the tools: {e}"))?;
        self.record_discovery(&catalog).await?;
        Ok((client, catalog))
    }

    /// Writes a discovery round's events (verifications, approvals, rug
    /// pulls) to the agent's audit log.
    async fn record_discovery(&self, catalog: &ToolCatalog) -> Result<(), String> {
        for event in catalog.events() {
            within(
                "writing the agent's audit log",
                self.client_audit.log_async(event.clone()),
            )
            .await?
            .map_err(|e| format!("agent audit log: {e}"))?;
        }
        Ok(())
    }

    /// The server's audit events so far.
    async fn server_events(&self) -> Result<Vec<Value>, String> {
        within("flushing the audit log", self.server_audit.flush_async())
            .await?
            .map_err(|e| format!("flushing the audit log: {e}"))?;
        read_events(&self.server_audit_dir)
    }

    /// A description of the environment for the report.
    pub fn environment(&self) -> Value {
        json!({
            "issuer": self.issuer_url,
            "server": self.server_url,
            "work_dir": self.work_dir.display().to_string(),
            "full_token_scope": scope_of(&self.full_token),
            "read_only_token_scope": scope_of(&self.read_token),
        })
    }
}

/// Runs every step, in order, into `report`.
pub async fn run(world: &World, report: &mut Report) {
    let [discover, signed, scope, depth, replay, rug, audit] = &STEPS;

    let full = world.connect(&world.full_token).await;
    report.step(
        discover,
        match &full {
            Ok((_, catalog)) => step_discover(world, catalog),
            Err(e) => Err(e.clone()),
        },
    );
    let reader = world.connect(&world.read_token).await;
    let (full, reader) = match (full, reader) {
        (Ok((f, _)), Ok((r, _))) => (f, r),
        (Err(e), _) | (_, Err(e)) => {
            report.fill_remaining(&format!("the agent could not connect: {e}"));
            return;
        }
    };

    report.step(signed, step_signed_call(world, &full).await);
    report.step(scope, step_missing_scope(world, &reader).await);
    report.step(depth, step_call_depth(world, &reader).await);
    report.step(replay, step_replay(world, &full).await);
    report.step(rug, step_rug_pull(world, &full).await);
    let _ = within("closing the agent's sessions", async {
        let _ = full.close().await;
        let _ = reader.close().await;
    })
    .await;
    report.step(audit, step_audit(world).await);
}

fn step_discover(world: &World, catalog: &ToolCatalog) -> Outcome {
    let names: BTreeSet<&str> = catalog.all().iter().map(|t| t.name.as_str()).collect();
    if names != BTreeSet::from(["read_file", "write_file"]) {
        return Err(format!("the server listed {names:?}"));
    }
    let mut listed = Vec::new();
    let mut details = Vec::new();
    for tool in catalog.all() {
        let key_id = match &tool.verification {
            VerificationStatus::Verified { issuer, key_id } if issuer == PROVIDER => key_id,
            other => return Err(format!("{}: attestation {other:?}", tool.name)),
        };
        if let Some(r) = &tool.refusal {
            return Err(format!("{} is not usable: {r:?}", tool.name));
        }
        let approved_by = tool.approval.as_ref().map(|a| a.approved_by.as_str());
        if approved_by != Some(&format!("rule:{RULE}")) {
            return Err(format!("{} approved by {approved_by:?}", tool.name));
        }
        let digest = tool
            .digest
            .ok_or_else(|| format!("{} has no digest", tool.name))?;
        listed.push(format!("{} ({})", tool.name, short(&digest)));
        details.push(json!({"tool": tool.name, "digest": digest.to_string(), "signed_by": PROVIDER, "key_id": key_id, "approved_by": approved_by}));
    }
    // The pins are in the approval file, not only in memory.
    let store = FileApprovalStore::open(&world.approvals).map_err(|e| e.to_string())?;
    let pins = store
        .list_server(
            &world.server_id,
            Timestamp::from(std::time::SystemTime::now()),
        )
        .map_err(|e| format!("reading the approval file: {e}"))?;
    let pinned: BTreeSet<String> = pins.iter().map(|p| p.digest.to_string()).collect();
    let expected: BTreeSet<String> = catalog
        .all()
        .iter()
        .filter_map(|t| t.digest.map(|d| d.to_string()))
        .collect();
    if pinned != expected {
        return Err(format!(
            "the approval file pins {pinned:?}, expected {expected:?}"
        ));
    }
    Ok(Pass {
        story: "The agent asked the server for its tools. Each came signed by its provider, \
                com.example; the agent checked both signatures (ES256) against the provider key \
                it trusts, approved the tools under its rule for that provider, and pinned each \
                tool's digest in its approval file, so it will notice if a tool ever changes."
            .into(),
        observed: format!(
            "{} verified (issuer {PROVIDER}) and approved by rule:{RULE}; {} pins in {}",
            listed.join(" and "),
            pins.len(),
            world
                .approvals
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        details: json!({"tools": details, "pins": pins.len()}),
    })
}

async fn step_signed_call(world: &World, full: &SecureClient) -> Outcome {
    let before = world.server_events().await?.len();
    let result = within(
        "calling read_file",
        full.call_tool("read_file", args(json!({"path": DEMO_FILE}))),
    )
    .await?
    .map_err(|e| format!("the call was refused: {e}"))?;
    let text = result_text(&result)?;
    if text != DEMO_FILE_TEXT {
        return Err(format!("unexpected answer {text:?}"));
    }
    let events = world.server_events().await?;
    let passed: Vec<String> = events
        .iter()
        .skip(before)
        .filter(|e| text_of(e, "/tool/name") == "read_file" && text_of(e, "/outcome") == "success")
        .map(|e| text_of(e, "/details/step"))
        .collect();
    for needed in [
        "authenticate",
        "request_signature",
        "replay",
        "authorize",
        "invoke",
    ] {
        if !passed.iter().any(|s| s == needed) {
            return Err(format!(
                "the audit log has no successful `{needed}` step for this call (steps: {passed:?})"
            ));
        }
    }
    let signer = events
        .iter()
        .skip(before)
        .find(|e| text_of(e, "/details/step") == "request_signature")
        .map(|e| text_of(e, "/principal/subject"))
        .unwrap_or_default();
    Ok(Pass {
        story: format!(
            "With a token for \"{}\", the agent called read_file and signed the request with its \
             own ES256 key. The server verified the token, the signature, that the request was \
             new and that the token grants files:read, then ran the tool: a caller who proves who \
             it is and asks for what it may do gets through.",
            scope_of(&world.full_token)
        ),
        observed: format!(
            "answer \"{text}\"; audit log: {} passed for {signer}",
            passed.join(", ")
        ),
        details: json!({"answer": text, "audited_steps": passed, "principal": signer}),
    })
}

async fn step_missing_scope(world: &World, reader: &SecureClient) -> Outcome {
    let result = within(
        "calling write_file",
        reader.call_tool(
            "write_file",
            args(json!({"path": DEMO_FILE, "text": "Q3 report: deleted."})),
        ),
    )
    .await?;
    let refused = server_refusal(result)?;
    let expected = json!([{"code": "missing_permissions", "missing": ["files:write"]}]);
    if refused.code != -32010 || Value::Array(refused.reasons.clone()) != expected {
        return Err(format!(
            "error {} {:?} with reasons {:?}",
            refused.code, refused.message, refused.reasons
        ));
    }
    Ok(Pass {
        story: format!(
            "The agent switched to a read-only token (scope \"{}\") and asked the server to run \
             write_file. The server refused before running anything and named the missing \
             permission, files:write: a token allows only what it names, so a leaked or \
             delegated read-only token cannot change data.",
            scope_of(&world.read_token)
        ),
        observed: format!("error {} \"{}\"", refused.code, refused.message),
        details: json!({"code": refused.code, "message": refused.message, "reasons": refused.reasons}),
    })
}

async fn step_call_depth(world: &World, reader: &SecureClient) -> Outcome {
    let parse = |s: &str| ServerId::parse(s).map_err(|e| e.to_string());
    let (planner, researcher) = (parse(PLANNER)?, parse(RESEARCHER)?);
    let tool = |s: &str| ToolId::parse(s).map_err(|e| e.to_string());
    let (plan, research) = (tool(PLAN_TOOL)?, tool(RESEARCH_TOOL)?);
    let scope: BTreeSet<String> = BTreeSet::from(["files:read".to_owned()]);
    let researcher_signer = HopSigner::new(researcher.clone());
    let read = || args(json!({"path": DEMO_FILE}));

    // One relay: the researcher's tool calls read_file for the agent.
    let none: Vec<String> = Vec::new();
    let empty = CallChain::new();
    let one = etdi_client::OnwardCall {
        received: &none,
        chain: &empty,
        server: &researcher,
        hop_signer: &researcher_signer,
        key: &world.researcher_key,
        tool: &research,
        principal: AGENT,
        scope: &scope,
    };
    let allowed = within(
        "calling read_file through one relay",
        reader.call_tool_onward("read_file", read(), &one),
    )
    .await?
    .map_err(|e| format!("the call through one relay was refused: {e}"))?;
    result_text(&allowed).map_err(|e| format!("through one relay: {e}"))?;

    // Two relays: the planner's tool asked the researcher's, which calls
    // read_file; each server signed its hop.
    let first_hop = HopSigner::new(planner.clone())
        .append(
            &world.planner_key,
            &none,
            &HopToSign {
                tool: &plan,
                principal: AGENT,
                scope: &scope,
                audience: RESEARCHER,
            },
            UnixTime::now(),
        )
        .map_err(|e| format!("signing the planner's hop: {e}"))?;
    let received = vec![first_hop];
    let chain = empty
        .extended(Hop {
            server: planner,
            tool: plan,
            principal: AGENT.to_owned(),
        })
        .map_err(|e| e.to_string())?;
    let two = etdi_client::OnwardCall {
        received: &received,
        chain: &chain,
        ..one
    };
    let result = within(
        "calling read_file through two relays",
        reader.call_tool_onward("read_file", read(), &two),
    )
    .await?;
    let refused = server_refusal(result).map_err(|e| format!("through two relays: {e}"))?;
    let expected = json!([{"code": "call_depth_exceeded", "depth": READ_MAX_DEPTH + 1, "max": READ_MAX_DEPTH}]);
    if refused.code != -32014 || Value::Array(refused.reasons.clone()) != expected {
        return Err(format!(
            "through two relays: error {} {:?} with reasons {:?}",
            refused.code, refused.message, refused.reasons
        ));
    }
    Ok(Pass {
        story: format!(
            "read_file accepts a call relayed by at most one other tool (max call depth \
             {READ_MAX_DEPTH}). A call relayed by the researcher agent's tool was served; the \
             same call relayed through the planner and then the researcher (each hop signed by \
             its server) was refused, so a request cannot be laundered through a long chain of \
             tools."
        ),
        observed: format!(
            "one relay: answered; two relays: error {} \"{}\"",
            refused.code, refused.message
        ),
        details: json!({"one_relay": "allowed", "two_relays": {"code": refused.code, "message": refused.message, "reasons": refused.reasons}}),
    })
}

async fn step_replay(world: &World, full: &SecureClient) -> Outcome {
    let arguments = args(json!({"path": DEMO_FILE}));
    let signature = RequestSigner::new(AGENT)
        .sign(
            &world.client_key,
            &CallToSign {
                audience: &world.server_url,
                tool: "read_file",
                arguments: arguments.as_ref(),
                chain: &CallChain::new(),
            },
            UnixTime::now(),
        )
        .map_err(|e| format!("signing: {e}"))?;
    let mut meta = RequestMetaObject::new();
    meta.0.0.insert(
        advertised::META_REQUEST_SIGNATURE.into(),
        Value::from(signature),
    );
    let mut params = CallToolRequestParams::new("read_file");
    if let Some(a) = arguments {
        params = params.with_arguments(a);
    }
    params.meta = Some(meta);
    let peer = full.service().peer();

    let first = within("sending the signed request", peer.call_tool(params.clone()))
        .await?
        .map_err(|e| format!("the first request was refused: {e}"))?;
    let text = result_text(&first)?;
    let second = within("sending it again", peer.call_tool(params))
        .await?
        .map_err(ClientError::from);
    let refused = server_refusal(second).map_err(|e| format!("the replay {e}"))?;
    let code = refused
        .reasons
        .first()
        .and_then(|r| r.get("code"))
        .and_then(Value::as_str);
    if refused.code != -32013 || code != Some("replay") || refused.reasons.len() != 1 {
        return Err(format!(
            "the replay got error {} {:?} with reasons {:?}",
            refused.code, refused.message, refused.reasons
        ));
    }
    Ok(Pass {
        story: "The agent signed one read_file request and the demo sent that same signed request \
                twice, as an attacker who captured it on the network would. The first copy was \
                served; the second was refused as a replay, because the server remembers every \
                signature's one-time nonce until the signature expires."
            .into(),
        observed: format!(
            "first: answered \"{text}\"; second: error {} \"{}\"",
            refused.code, refused.message
        ),
        details: json!({"first": "answered", "second": {"code": refused.code, "message": refused.message, "reasons": refused.reasons}}),
    })
}

async fn step_rug_pull(world: &World, client: &SecureClient) -> Outcome {
    let before = world.server_events().await?.len();
    world.rug_pulled.store(true, Ordering::SeqCst);
    // The agent re-lists, as it does whenever the server announces that its
    // tools changed, and logs what discovery found.
    let catalog = within("re-listing the tools", client.refresh())
        .await?
        .map_err(|e| format!("re-listing the tools: {e}"))?;
    world.record_discovery(&catalog).await?;
    rug_pull_checks(world, client, &catalog, before).await
}

async fn rug_pull_checks(
    world: &World,
    client: &SecureClient,
    catalog: &ToolCatalog,
    before: usize,
) -> Outcome {
    let tool = catalog
        .get("read_file")
        .ok_or("read_file is no longer listed")?;
    let description = tool
        .advertised
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if description != POISONED_DESCRIPTION {
        return Err("the server did not change the description".into());
    }
    if !tool.verification.is_verified() {
        return Err(format!(
            "the changed tool's signature did not verify ({:?}); the demo needs a validly signed change",
            tool.verification
        ));
    }
    let verdict = tool.assessment.as_ref().map(|a| a.verdict);
    if verdict != Some(Verdict::Blocked) || !matches!(tool.refusal, Some(Refusal::Blocked(_))) {
        return Err(format!(
            "read_file was not blocked: verdict {verdict:?}, refusal {:?}",
            tool.refusal
        ));
    }
    let reuse = tool
        .assessment
        .iter()
        .flat_map(|a| &a.changes)
        .find_map(|c| match c {
            Change::VersionReuse {
                version,
                pinned,
                now,
            } => Some((version.to_string(), *pinned, *now)),
            _ => None,
        });
    let Some((version, pinned, now)) = reuse else {
        return Err("the assessment does not report version reuse".into());
    };
    let shown: Vec<String> = within("tools shown to the model", client.tools())
        .await?
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    if shown != ["write_file"] {
        return Err(format!("the model would still see {shown:?}"));
    }
    let refused = match within(
        "calling read_file",
        client.call_tool("read_file", args(json!({"path": DEMO_FILE}))),
    )
    .await?
    {
        Err(ClientError::Refused(r)) => r,
        Err(other) => return Err(format!("the call failed, but not locally: {other}")),
        Ok(r) => {
            return Err(format!(
                "the call went through: {}",
                result_text(&r).unwrap_or_else(|e| e)
            ));
        }
    };
    if refused.code() != -32015
        || !matches!(
            refused.reasons.as_slice(),
            [DenyReason::ToolNotVerified { .. }]
        )
    {
        return Err(format!(
            "refused with {}: {}",
            refused.code(),
            refused.message()
        ));
    }
    // The refusal happened in the agent: the server saw no call to read_file.
    let reached = world
        .server_events()
        .await?
        .iter()
        .skip(before)
        .any(|e| text_of(e, "/tool/name") == "read_file");
    if reached {
        return Err("the server's audit log shows a read_file call after the change".into());
    }
    Ok(Pass {
        story: "The server started advertising read_file with a new description that tells the \
                model to leak ~/.ssh/id_rsa, still as version 1.0.0 and still validly signed. \
                When the agent re-listed the tools it found the digest no longer matched its pin \
                for that version, blocked the tool, kept the poisoned text away from the model, \
                and refused the call itself, so nothing reached the server; a changed tool must \
                come as a new version and be approved again."
            .into(),
        observed: format!(
            "version {version}: pinned {} now {}; tools shown to the model: {}; call refused \
             locally with error {} \"{}\"",
            short(&pinned),
            short(&now),
            shown.join(", "),
            refused.code(),
            refused.message()
        ),
        details: json!({
            "verdict": "blocked", "version": version, "pinned": pinned.to_string(),
            "now": now.to_string(), "shown_to_model": shown,
            "code": refused.code(), "message": refused.message(), "reached_server": false,
        }),
    })
}

/// Stops `log` (final checkpoint) and verifies its directory.
async fn close_and_verify(
    log: &Arc<AuditLog>,
    dir: &Path,
    key: &Arc<SigningKey>,
) -> Result<(VerifyReport, Vec<Value>), String> {
    let log = log.clone();
    within(
        "closing the audit log",
        tokio::task::spawn_blocking(move || log.shutdown()),
    )
    .await?
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("closing the audit log: {e}"))?;
    let report = Verifier::new(dir)
        .checkpoint_verifier(key.verifying_key())
        .verify()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if !report.signatures_checked
        || report.checkpoints == 0
        || report.unanchored != 0
        || report.torn_tail.is_some()
    {
        return Err(format!(
            "{}: incomplete verification: {report:?}",
            dir.display()
        ));
    }
    let events = read_events(dir)?;
    if u64::try_from(events.len()).ok() != Some(report.records) {
        return Err(format!(
            "{}: {} events read, the verifier counted {}",
            dir.display(),
            events.len(),
            report.records
        ));
    }
    Ok((report, events))
}

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(text_of(e, "/kind")).or_insert(0) += 1;
    }
    out
}

fn show_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Edits one record in a copy of the log and checks the verifier finds it.
fn tamper_copy(world: &World) -> Result<String, String> {
    let copy = world.work_dir.join("tampered-audit");
    std::fs::create_dir(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    let mut edited = None;
    let entries = std::fs::read_dir(&world.server_audit_dir).map_err(|e| e.to_string())?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if edited.is_none() && line.contains("\"replay_detected\"") {
                let changed = line.replace("\"outcome\":\"denied\"", "\"outcome\":\"success\"");
                if changed != line {
                    edited = Some(name.to_string_lossy().into_owned());
                }
                out.push_str(&changed);
            } else {
                out.push_str(line);
            }
        }
        std::fs::write(copy.join(name), out).map_err(|e| e.to_string())?;
    }
    if edited.is_none() {
        return Err("no replay denial found to edit in the copy".into());
    }
    match Verifier::new(&copy)
        .checkpoint_verifier(world.server_audit_key.verifying_key())
        .verify()
    {
        Err(VerifyError::Tampered(f)) if f.kind == TamperKind::Modified => Ok(format!(
            "record {} (line {}) reported as modified",
            f.seq.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
            f.line
        )),
        Err(e) => Err(format!(
            "the edited copy failed to verify for another reason: {e}"
        )),
        Ok(r) => Err(format!("the edited copy verified: {r:?}")),
    }
}

async fn step_audit(world: &World) -> Outcome {
    let (server_report, server_events) = close_and_verify(
        &world.server_audit,
        &world.server_audit_dir,
        &world.server_audit_key,
    )
    .await?;
    let (client_report, client_events) = close_and_verify(
        &world.client_audit,
        &world.client_audit_dir,
        &world.client_audit_key,
    )
    .await?;
    // Each denial of the demo is in the log exactly once, with its reason.
    let denials = |code: &str| {
        server_events
            .iter()
            .filter(|e| text_of(e, "/outcome") == "denied" && has_reason(e, code))
            .count()
    };
    for (code, kind) in [
        ("missing_permissions", "authorization_failed"),
        ("call_depth_exceeded", "policy_violation"),
        ("replay", "replay_detected"),
    ] {
        let n = denials(code);
        let of_kind = server_events
            .iter()
            .filter(|e| text_of(e, "/kind") == kind && has_reason(e, code))
            .count();
        if n != 1 || of_kind != 1 {
            return Err(format!(
                "the server's log has {n} denial(s) for {code} ({of_kind} as {kind}); expected exactly one"
            ));
        }
    }
    let rug_pulls = client_events
        .iter()
        .filter(|e| text_of(e, "/kind") == "rug_pull_detected")
        .count();
    if rug_pulls != 1 {
        return Err(format!(
            "the agent's log has {rug_pulls} rug_pull_detected events, expected 1"
        ));
    }
    let tampered = tamper_copy(world)?;
    let server_counts = counts(&server_events);
    let client_counts = counts(&client_events);
    Ok(Pass {
        story: format!(
            "Every decision above is in the server's audit log ({} records), and the rug pull \
             is in the agent's ({} records). Each record carries the hash of the one before and \
             the logs end in signed checkpoints; the verifier recomputed both chains and found \
             them intact, and when one record was edited in a copy (a replay denial rewritten \
             as a success) it found that too.",
            server_report.records, client_report.records
        ),
        observed: format!(
            "server log intact: {} records, {} signed checkpoint(s) ({}); agent log intact: {} \
             records ({}); tampered copy: {tampered}",
            server_report.records,
            server_report.checkpoints,
            show_counts(&server_counts),
            client_report.records,
            show_counts(&client_counts),
        ),
        details: json!({
            "server": {"records": server_report.records, "checkpoints": server_report.checkpoints, "events": server_counts},
            "agent": {"records": client_report.records, "checkpoints": client_report.checkpoints, "events": client_counts},
            "tampered_copy": tampered,
        }),
    })
}
