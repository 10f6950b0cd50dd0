//! `etdi proxy`: an ETDI gateway in front of an existing MCP server written
//! in any language.
//!
//! The upstream (a child process over stdio, or a Streamable HTTP URL) is
//! reached through an rmcp client. Downstream clients reach the gateway over
//! Streamable HTTP (optionally HTTPS / mutual TLS) with OAuth bearer tokens.
//! In between:
//!
//! * etdi-server's `SecureServer` wraps a forwarding handler
//!   ([`gateway::Forwarder`]): it authenticates (etdi-auth), authorizes per
//!   tool (etdi-policy: the policy file and the per-tool permissions of the
//!   configuration), audits every step (etdi-audit file sink) and attests
//!   every advertised tool with the gateway's key;
//! * the forwarder pins each upstream tool on first sight ([`pins`]) and
//!   re-checks the upstream's `tools/list` before every forwarded call and
//!   on `notifications/tools/list_changed`; any change blocks the tool
//!   (calls get -32015 `tool_not_verified`) and is audited;
//! * only the tool name and arguments travel upstream; the downstream bearer
//!   token never does.
//!
//! SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests
//! finish (bounded), stops the upstream, and shuts the audit log down
//! (drained, fsynced, final signed checkpoint) before the process exits 0.
//!
//! The configuration format is documented in [`config`] and in
//! `notes/proxy.md`.

mod config;
mod gateway;
mod pins;
mod state;
mod upstream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, event};
use etdi_crypto::Algorithm;
use etdi_crypto::attestation::AttestationSigner;
use etdi_server::{BearerAuth, EtdiTool, SecureServer};
use tokio::sync::Notify;

use config::Config;
use gateway::{Exposed, Forwarder, STEP_PIN_CHECK};
use pins::{Observation, PinStore};
use upstream::Upstream;

/// Arguments of `etdi proxy`.
#[derive(clap::Args)]
pub struct ProxyArgs {
    /// Path of the gateway's TOML configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Re-approve TOOL: forget its pin (and any block) and pin what the
    /// upstream offers now. If that differs from what was advertised
    /// before, raise the tool's `version` in the configuration first.
    /// Repeatable.
    #[arg(long = "repin", value_name = "TOOL")]
    pub repin: Vec<String>,
}

/// Runs the gateway until SIGTERM or Ctrl-C.
pub fn run(args: &ProxyArgs, json: bool) -> Result<ExitCode, String> {
    // Everything is checked before anything is written.
    let config = config::load(&args.config).map_err(|e| e.0)?;
    for tool in &args.repin {
        if config.tool_settings(tool).is_none() {
            return Err(format!(
                "--repin {tool}: {} neither configures nor exposes a tool `{tool}`",
                args.config.display()
            ));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = rt.block_on(serve(config, json, &args.repin));
    // Sessions still open downstream do not hold the exit up for long.
    rt.shutdown_timeout(Duration::from_secs(5));
    result.map(|()| ExitCode::SUCCESS)
}

/// Prints one status line on stdout: JSON with `--json`, text otherwise.
/// A closed stdout is not a reason to stop (or panic) a gateway.
fn status(json: bool, value: serde_json::Value, text: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // Tool names and errors come from the upstream: escaped for the
    // terminal (crate::terminal).
    let _ = if json {
        writeln!(out, "{}", crate::terminal::json(&value.to_string()))
    } else {
        writeln!(out, "etdi proxy: {}", crate::terminal::text(&text))
    };
    let _ = out.flush();
}

/// Tells the operator something on stderr (never panics, unlike
/// `eprintln!` on a closed stderr).
pub(crate) fn warn(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = text.to_string();
    let _ = writeln!(
        std::io::stderr().lock(),
        "etdi proxy: {}",
        crate::terminal::text(&text)
    );
}

/// SIGTERM and SIGINT, registered before the gateway starts serving so that
/// neither can kill it without the orderly shutdown.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e: std::io::Error| format!("cannot install the signal handlers: {e}");
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

async fn serve(mut config: Config, json: bool, repin: &[String]) -> Result<(), String> {
    let signals = Signals::new()?;
    let _lock = state::lock(&config.state_dir)?;
    state::create_dir(&config.audit_dir)?;
    let paths = state::Paths::new(&config.state_dir);
    let attestation_key = match config.signing.key.take() {
        Some(k) => k,
        None => state::key(&paths.attestation_key, config.signing.algorithm)?,
    };
    let audit_key = state::key(&paths.audit_key, Algorithm::ES256)?;
    let sink = FileSink::builder(&config.audit_dir)
        .checkpoint_signer(Arc::new(audit_key))
        .open()
        .map_err(|e| {
            format!(
                "cannot open the audit log in {}: {e}",
                config.audit_dir.display()
            )
        })?;
    let audit = AuditLog::builder()
        .sink(sink)
        // A gateway logs a few events per call at a steady rate.
        .linger(std::time::Duration::from_millis(1))
        .build()
        .map_err(|e| format!("cannot start the audit log: {e}"))?;

    let prepared = Prepared {
        json,
        signals,
        attestation_key,
        paths,
        audit: &audit,
        repin,
    };
    let served = serve_with(config, prepared).await;

    // Whatever happened, drain and sync the audit log and write its final
    // checkpoint before exiting.
    let log = audit.clone();
    let closed = tokio::task::spawn_blocking(move || log.shutdown())
        .await
        .map_err(|e| format!("the audit log did not shut down: {e}"))
        .and_then(|r| r.map_err(|e| format!("the audit log did not shut down cleanly: {e}")));
    let stats = audit.stats();
    match (served, closed) {
        (Ok(signal), Ok(())) => {
            status(
                json,
                serde_json::json!({"event": "stopped", "signal": signal, "audit_records": stats.written}),
                format!(
                    "stopped on {signal}; {} audit records written and synced",
                    stats.written
                ),
            );
            Ok(())
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// What `serve` prepared before the upstream is started.
struct Prepared<'a> {
    json: bool,
    signals: Signals,
    attestation_key: etdi_crypto::SigningKey,
    paths: state::Paths,
    audit: &'a AuditLog,
    repin: &'a [String],
}

/// Starts the upstream, serves until a signal, and stops the upstream
/// (whatever happened). Returns the signal's name.
async fn serve_with(config: Config, prepared: Prepared<'_>) -> Result<&'static str, String> {
    let mut pins = PinStore::open(&prepared.paths.pins)?;
    // An operator's re-approval: forget the pin, pin again on first sight.
    let mut repinned = Vec::new();
    for tool in prepared.repin {
        if let Some(old) = pins.remove(tool)? {
            repinned.push((tool.clone(), old.digest));
        }
    }
    let changed = Arc::new(Notify::new());
    let upstream = Arc::new(
        Upstream::connect(&config.upstream, config.upstream_timeout, changed.clone()).await?,
    );
    let result = serve_connected(
        &config,
        prepared,
        pins,
        &repinned,
        upstream.clone(),
        changed,
    )
    .await;
    upstream.shutdown().await;
    result
}

/// Pins the upstream's tools, builds the secure server in front of them and
/// serves it until a signal.
async fn serve_connected(
    config: &Config,
    prepared: Prepared<'_>,
    mut pins: PinStore,
    repinned: &[(String, etdi_core::Digest)],
    upstream: Arc<Upstream>,
    changed: Arc<Notify>,
) -> Result<&'static str, String> {
    let Prepared {
        json,
        mut signals,
        attestation_key,
        audit,
        ..
    } = prepared;
    let Config {
        file,
        name,
        downstream,
        provider,
        signing,
        policy,
        ..
    } = config;
    let resource = downstream.resource.clone();
    let exposed = pin_at_start(config, &upstream, &mut pins, audit).await?;
    for (tool, previous) in repinned {
        let Some(e) = exposed.get(tool) else {
            continue;
        };
        let pinned = pins.get(tool).map(|p| p.digest.to_string());
        let record = event::tool_approved(etdi_core::ToolRef {
            id: e.settings.id.clone(),
            name: Some(tool.clone()),
            version: Some(e.settings.version.clone()),
            digest: None,
        })
        .server(resource.clone())
        .detail("step", STEP_PIN_CHECK)
        .detail("repinned", true)
        .detail("previous_digest", previous.to_string())
        .detail("pinned_digest", pinned.unwrap_or_default());
        audit
            .log_durable_async(record)
            .await
            .map_err(|e| format!("audit log: {e}"))?;
    }
    let blocked: Vec<String> = exposed
        .keys()
        .filter(|n| pins.is_blocked(n))
        .cloned()
        .collect();

    let mut tools = Vec::with_capacity(exposed.len());
    for (tool_name, e) in &exposed {
        let mut t = EtdiTool::new(tool_name.clone(), e.settings.version.to_string())
            .id(e.settings.id.as_str())
            .permissions(e.settings.permissions.iter().map(ToString::to_string));
        if let Some(d) = e.settings.max_call_depth {
            t = t.max_call_depth(d);
        }
        tools.push(t);
    }
    let names: Vec<String> = exposed.keys().cloned().collect();
    let forwarder = Forwarder::new(upstream, pins, exposed, audit.clone(), resource.clone());

    let origin = resource
        .split_once("://")
        .and_then(|(scheme, rest)| {
            let host = rest.split('/').next()?;
            Some(format!("{scheme}://{host}"))
        })
        .unwrap_or_else(|| resource.clone());
    let server = SecureServer::builder(name.clone())
        .audience(resource.clone())
        .provider(provider.0.clone(), provider.1.clone())
        .policy_document(policy.clone())
        .attestation(
            AttestationSigner::new(signing.issuer.clone()),
            Arc::new(attestation_key),
        )
        .audit(Arc::new(audit.clone()))
        .jwks_uri(format!("{origin}/.well-known/etdi/jwks.json"))
        .bearer_auth(BearerAuth {
            verifier: downstream.verifier.clone(),
            resource: resource.clone(),
            authorization_servers: downstream
                .issuers
                .iter()
                .map(|i| i.issuer.clone())
                .collect(),
            scopes_supported: downstream.scopes_supported.clone(),
            required_scopes: downstream.required_scopes.clone(),
            accept_client_certificates: downstream
                .tls
                .as_ref()
                .is_some_and(|t| t.accept_client_certificates),
        })
        .wrap(forwarder.clone(), tools)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    check_versions(&server, &forwarder)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let options = etdi_server::http::HttpOptions {
        path: downstream.path.clone(),
        allowed_hosts: downstream.allowed_hosts.clone(),
        allowed_origins: downstream.allowed_origins.clone(),
        ..Default::default()
    };
    let connections = options.connections;
    let app = etdi_server::http::router(server, options)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let tcp = tokio::net::TcpListener::bind(downstream.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", downstream.listen))?;
    let local = tcp
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;

    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let graceful = async move {
        let _ = stopped.wait_for(|v| *v).await;
    };
    let scheme = if downstream.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut serving = match &downstream.tls {
        None => tokio::spawn(async move {
            etdi_server::listener::serve(
                etdi_server::listener::TcpAccept::new(tcp),
                app,
                connections,
                graceful,
            )
            .await
            .map_err(|e| e.to_string())
        }),
        Some(tls) => {
            let listener = etdi_server::tls::TlsListener::new(
                tcp,
                tls.server.clone(),
                etdi_server::tls::TlsLimits::default(),
            )
            .map_err(|e| format!("cannot serve TLS: {e}"))?;
            tokio::spawn(async move {
                etdi_server::listener::serve(listener, app, connections, graceful)
                    .await
                    .map_err(|e| e.to_string())
            })
        }
    };

    // The upstream may announce a change between calls.
    let watcher = {
        let f = forwarder.clone();
        tokio::spawn(async move {
            loop {
                changed.notified().await;
                if let Err(e) = f.recheck().await {
                    warn(format_args!(
                        "warning: re-checking the upstream's tools failed: {e}"
                    ));
                }
            }
        })
    };

    let url = format!("{scheme}://{local}{}", downstream.path);
    status(
        json,
        serde_json::json!({
            "event": "listening", "url": url, "resource": resource,
            "tools": names, "blocked": blocked,
        }),
        format!(
            "listening on {url} for {resource}; tools: {}{}",
            names.join(", "),
            if blocked.is_empty() {
                String::new()
            } else {
                format!("; blocked (changed since pinned): {}", blocked.join(", "))
            }
        ),
    );

    let outcome = tokio::select! {
        signal = signals.recv() => Ok(signal),
        ended = &mut serving => Err(match ended {
            Ok(Ok(())) => "the HTTP server stopped unexpectedly".to_owned(),
            Ok(Err(e)) => format!("the HTTP server failed: {e}"),
            Err(e) => format!("the HTTP server task failed: {e}"),
        }),
    };
    // Stop accepting; let requests in flight finish within the grace time.
    let _ = stop.send(true);
    if tokio::time::timeout(downstream.shutdown_grace, &mut serving)
        .await
        .is_err()
    {
        serving.abort();
    }
    watcher.abort();
    outcome
}

/// Records what the gateway advertises for each tool, refusing a changed
/// definition whose version was not raised (downstream ETDI clients would
/// block it as a rug pull).
async fn check_versions<H>(server: &SecureServer<H>, forwarder: &Forwarder) -> Result<(), String> {
    let mut pins = forwarder.pins().lock().await;
    for tool in server.advertised_tools() {
        let def = etdi_server::wire::from_mcp_tool(&tool)
            .map_err(|e| format!("tool `{}`: {e}", tool.name))?;
        let digest = def
            .digest()
            .map_err(|e| format!("tool `{}`: {e}", tool.name))?;
        pins.advertise(def.name.as_str(), &def.version, digest)?;
    }
    Ok(())
}

/// Lists the upstream's tools, pins what is new, blocks what changed, and
/// returns the tools to expose, each with its pinned form.
async fn pin_at_start(
    config: &Config,
    upstream: &Upstream,
    pins: &mut PinStore,
    audit: &AuditLog,
) -> Result<BTreeMap<String, Exposed>, String> {
    let server = config.downstream.resource.clone();
    let listed = upstream.list_tools().await?;
    let mut exposed = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for tool in &listed {
        let tool_name = tool.name.to_string();
        let Some(settings) = config.tool_settings(&tool_name) else {
            continue;
        };
        let tool_ref = etdi_core::ToolRef {
            id: settings.id.clone(),
            name: Some(tool_name.clone()),
            version: Some(settings.version.clone()),
            digest: None,
        };
        let (observation, persist_error) = pins.observe(&tool_name, tool)?;
        if let Some(e) = persist_error {
            return Err(e);
        }
        let e = match &observation {
            Observation::Pinned { digest } => Some(
                event::tool_discovered(tool_ref, server.clone())
                    .detail("step", STEP_PIN_CHECK)
                    .detail("pinned_digest", digest.to_string()),
            ),
            Observation::Blocked {
                pinned,
                observed,
                changed,
                new: true,
            } => Some(
                event::rug_pull_detected(tool_ref, pinned, observed)
                    .server(server.clone())
                    .detail("step", STEP_PIN_CHECK)
                    .detail("changed", changed.clone()),
            ),
            _ => None,
        };
        if let Some(e) = e {
            audit
                .log_durable_async(e)
                .await
                .map_err(|e| format!("audit log: {e}"))?;
        }
        names.push(tool_name.clone());
        exposed.insert(tool_name, settings);
    }
    // Pinned tools the upstream does not list now stay advertised (with
    // their pinned definition); calls to them are refused while they are
    // missing. A configured tool never seen is a configuration error.
    for tool_name in config.tools.keys() {
        if exposed.contains_key(tool_name) {
            continue;
        }
        if pins.get(tool_name).is_none() {
            return Err(format!(
                "{}: the upstream does not offer the tool `{tool_name}` configured in [tools.{tool_name}] (it offers: {})",
                config.file.display(),
                names.join(", ")
            ));
        }
        if let Some(settings) = config.tool_settings(tool_name) {
            exposed.insert(tool_name.clone(), settings);
        }
    }
    let mut out = BTreeMap::new();
    for (tool_name, settings) in exposed {
        let Some(pin) = pins.get(&tool_name) else {
            continue;
        };
        let tool: rmcp::model::Tool =
            serde_json::from_value(serde_json::Value::Object(pin.tool.clone()))
                .map_err(|e| format!("the pinned tool `{tool_name}` is not an MCP tool: {e}"))?;
        out.insert(tool_name, Exposed { settings, tool });
    }
    Ok(out)
}
