//! `etdi-load-server`: a SecureServer over Streamable HTTP on 127.0.0.1
//! with everything on disk, for the load and fault tests
//! (`tests/load_fault.rs`). Not a production server: it has one demo tool
//! and takes its configuration from the environment.
//!
//! What it runs: bearer tokens (etdi-auth, static JWKS), the `Strict`
//! policy (attested tools, request signing required, every call audited,
//! filtered `tools/list`), request signatures verified against one client
//! key, and the audit log in `<state>/audit` (etdi-audit file sink, hash
//! chain, checkpoints signed with the audit key). The provider's
//! attestation key and the audit checkpoint key are kept by etdi-crypto's
//! `KeyManager` in `<state>/keys/provider` and `<state>/keys/audit`, so a
//! restart on the same state directory serves with the same keys.
//!
//! Environment:
//!
//! * `ETDI_LOAD_STATE`: the state directory (created if missing);
//! * `ETDI_LOAD_AUDIENCE`: the server id and OAuth resource (tokens and
//!   request signatures must name it), independent of the port so that a
//!   restarted server keeps its identity;
//! * `ETDI_LOAD_ISSUER`, `ETDI_LOAD_JWKS`: the token issuer and its JWKS;
//! * `ETDI_LOAD_SIGNER`, `ETDI_LOAD_SIGNER_JWK`: the request signer's
//!   issuer (the OAuth client id of the callers) and its public JWK;
//! * `ETDI_LOAD_DURABLE=1`: acknowledge a call only once its audit events
//!   are fsynced (etdi-audit `log_durable`, group commit), instead of once
//!   they are queued (the library's default adapter);
//! * `ETDI_LOAD_GRANULARITY`: `step` (default, one event per pipeline step)
//!   or `call` (one event per allowed call);
//! * `ETDI_LOAD_MAX_CONNECTIONS`, `ETDI_LOAD_HEADER_TIMEOUT_MS`: the
//!   connection bounds (`etdi_server::listener::ConnectionLimits`; default
//!   the library's).
//!
//! Tool `echo` (needs `demo:read`) answers with a JSON object holding the
//! JSON-RPC request id and the caller as the pipeline saw them, so a
//! client can match each acknowledged call with its audit event. Tool
//! `amount` answers with the integer it read (`{"amount": n}`), so the
//! attack suite can compare what was signed with what a handler reads.
//!
//! Replay protection survives restarts: the nonces of accepted signed
//! requests are journalled in `<state>/nonces`
//! (etdi-crypto `JournalNonceStore`).
//!
//! Once listening it prints one JSON line on stdout: `url`, `audience`,
//! the public JWKs of both keys and `records_at_open` (records the audit
//! log held when opened). Closing stdin stops it gracefully: the audit log
//! is drained, synced and checkpointed, and a last line `{"stopped": ..}`
//! with the log's counters is printed before it exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use etdi_audit::AuditLog;
use etdi_audit::sink::FileSink;
use etdi_core::{SecurityLevel, SecurityPolicy};
use etdi_crypto::attestation::AttestationSigner;
use etdi_crypto::manager::{KeyManager, KeyManagerConfig, StoreOptions};
use etdi_crypto::request::RequestVerifier;
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{Algorithm, CryptoProvider, Jwk, SigningKey, UnixTime, VerifyingKey};
use etdi_server::audit::AuditGranularity;
use etdi_server::schemars::JsonSchema;
use etdi_server::stages::{AuditRecorder, DurableAudit};
use etdi_server::{BearerAuth, EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct AmountArgs {
    /// An amount, read as an exact integer.
    amount: u64,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct TextArgs {
    /// The text.
    text: String,
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// The key in `dir`, created on the first start and loaded afterwards.
fn managed_key(dir: PathBuf, now: UnixTime) -> Result<SigningKey, String> {
    let keys = KeyManager::open(
        CryptoProvider::get_default(),
        &dir,
        KeyManagerConfig::new(Algorithm::ES256),
        StoreOptions::new(),
        now,
    )
    .map_err(|e| format!("key store {}: {e}", dir.display()))?;
    Ok(keys.active().clone())
}

fn jwk_value(key: &SigningKey) -> Result<Value, String> {
    serde_json::from_str(&key.verifying_key().to_jwk().to_json()).map_err(|e| e.to_string())
}

async fn serve() -> Result<(), String> {
    let state = PathBuf::from(env("ETDI_LOAD_STATE")?);
    let audience = env("ETDI_LOAD_AUDIENCE")?;
    let issuer = env("ETDI_LOAD_ISSUER")?;
    let durable = std::env::var("ETDI_LOAD_DURABLE").is_ok_and(|v| v == "1");
    let granularity = match std::env::var("ETDI_LOAD_GRANULARITY").as_deref() {
        Ok("call") => AuditGranularity::PerCall,
        Ok("step") | Err(_) => AuditGranularity::PerStep,
        Ok(other) => return Err(format!("ETDI_LOAD_GRANULARITY `{other}`: use step or call")),
    };
    let provider = CryptoProvider::get_default();
    let now = UnixTime::now();
    let attestation_key = managed_key(state.join("keys").join("provider"), now)?;
    let audit_key = managed_key(state.join("keys").join("audit"), now)?;

    let sink = FileSink::builder(state.join("audit"))
        .checkpoint_signer(Arc::new(audit_key.clone()))
        .checkpoint_every_records(1000)
        .open()
        .map_err(|e| format!("audit log: {e}"))?;
    let records_at_open = sink.record_count();
    let log = Arc::new(
        AuditLog::builder()
            .sink(sink)
            .linger(std::time::Duration::from_millis(1))
            .build()
            .map_err(|e| format!("audit log: {e}"))?,
    );
    let recorder: Arc<dyn AuditRecorder> = if durable {
        Arc::new(DurableAudit((*log).clone()))
    } else {
        log.clone()
    };

    let jwks: Value = serde_json::from_str(&env("ETDI_LOAD_JWKS")?)
        .map_err(|e| format!("ETDI_LOAD_JWKS: {e}"))?;
    let tokens = etdi_auth::TokenVerifier::builder()
        .issuer(
            etdi_auth::IssuerConfig::new(issuer.clone())
                .audience(audience.clone())
                .static_jwks(jwks),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let signer_jwk = Jwk::from_json(&env("ETDI_LOAD_SIGNER_JWK")?).map_err(|e| e.to_string())?;
    let signer_key =
        VerifyingKey::from_jwk(provider, &signer_jwk, None).map_err(|e| e.to_string())?;
    let mut signers = IssuerKeys::new();
    signers.add(env("ETDI_LOAD_SIGNER")?, signer_key);

    let nonces = etdi_crypto::nonce_journal::JournalNonceStore::open(
        state.join("nonces"),
        etdi_crypto::replay::MemoryNonceStore::capacity_for(100, 360),
        now,
    )
    .map_err(|e| e.to_string())?;
    let server = SecureServer::builder("etdi-load-server")
        .nonce_store(Arc::new(nonces))
        .audience(audience.clone())
        .policy(SecurityPolicy::new(SecurityLevel::Strict))
        .provider("com.example", "Example Corp")
        .attestation(
            AttestationSigner::new("com.example"),
            Arc::new(attestation_key.clone()),
        )
        .audit(recorder)
        .audit_granularity(granularity)
        .bearer_auth(BearerAuth {
            verifier: Arc::new(tokens),
            resource: audience.clone(),
            authorization_servers: vec![issuer],
            scopes_supported: vec!["demo:read".into()],
            required_scopes: vec![],
            accept_client_certificates: false,
        })
        .request_verifier(RequestVerifier::new(audience.clone(), signers))
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .description("Echoes the text with the request id and caller")
                .permissions(["demo:read"])
                .handler(|a: TextArgs, ctx: ToolContext| async move {
                    json!({
                        "request_id": ctx.info().request_id,
                        "subject": ctx.principal().subject,
                        "text": a.text,
                    })
                    .to_string()
                }),
        )
        .tool(
            EtdiTool::new("amount", "1.0.0")
                .description("Answers with the amount it read")
                .permissions(["demo:read"])
                .handler(|a: AmountArgs, _ctx: ToolContext| async move {
                    json!({ "amount": a.amount }).to_string()
                }),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let mut connections = etdi_server::listener::ConnectionLimits::default();
    if let Ok(n) = std::env::var("ETDI_LOAD_MAX_CONNECTIONS") {
        connections = connections.max_connections(
            n.parse()
                .map_err(|e| format!("ETDI_LOAD_MAX_CONNECTIONS: {e}"))?,
        );
    }
    if let Ok(ms) = std::env::var("ETDI_LOAD_HEADER_TIMEOUT_MS") {
        let ms: u64 = ms
            .parse()
            .map_err(|e| format!("ETDI_LOAD_HEADER_TIMEOUT_MS: {e}"))?;
        connections = connections.header_read_timeout(std::time::Duration::from_millis(ms));
    }
    let app = etdi_server::http::router(server, etdi_server::http::HttpOptions::default())
        .map_err(|e| e.to_string())?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({
            "url": format!("http://{addr}/mcp"),
            "audience": audience,
            "provider_jwk": jwk_value(&attestation_key)?,
            "audit_jwk": jwk_value(&audit_key)?,
            "records_at_open": records_at_open,
            "durable": durable,
        })
    );

    // The parent closes stdin to stop this server (a parent that dies does
    // the same), so no server outlives its test.
    let stdin_closed = async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        r = etdi_server::listener::serve(
            etdi_server::listener::TcpAccept::new(listener),
            app,
            connections,
            std::future::pending(),
        ) => r.map_err(|e| e.to_string())?,
        () = stdin_closed => {}
    }
    // Every call answered so far had its events queued (or, durable, synced)
    // before the answer; shutdown writes and syncs the rest and signs a
    // final checkpoint.
    log.shutdown()
        .map_err(|e| format!("audit log shutdown: {e}"))?;
    let stats = log.stats();
    println!(
        "{}",
        json!({
            "stopped": true,
            "written": stats.written,
            "syncs": stats.syncs,
            "producer_waits": stats.producer_waits,
        })
    );
    Ok(())
}

fn main() -> ExitCode {
    // One thread serves (the crate's tokio has no multi-thread runtime);
    // the audit writer has its own OS thread.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etdi-load-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(serve());
    // Session tasks still hold the server; they need not finish.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etdi-load-server: {e}");
            ExitCode::FAILURE
        }
    }
}
