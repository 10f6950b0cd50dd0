//! `etdi demo`: the networked demonstration of what ETDI enforces.
//!
//! One command, no set-up, nothing beyond loopback: it starts an OAuth token
//! issuer ([`issuer`]) and an etdi-server `SecureServer` with two signed
//! tools over Streamable HTTP ([`server`]) on 127.0.0.1, connects an
//! etdi-client agent that verifies and approves the tools, and then walks
//! through a signed call, a missing scope, an over-long call chain, a
//! replay, a rug pull and the audit log ([`scenario`]). Each step checks the
//! exact outcome (error code and reason), and the command exits 0 only if
//! every step behaved as expected. Keys, approval file and audit logs live
//! in a private temporary directory that is removed at the end.

mod issuer;
mod report;
mod scenario;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use report::Report;
use serde_json::json;

/// Longest the whole demo may take before it gives up.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A private temporary directory, removed (with its contents) on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let mut last = String::new();
        for attempt in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(attempt);
            let path = base.join(format!(
                "etdi-demo-{}-{nanos:08x}{attempt}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(WorkDir(path)),
                Err(e) => last = format!("{}: {e}", path.display()),
            }
        }
        Err(format!("cannot create a temporary directory: {last}"))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("etdi demo: could not remove {}: {e}", self.0.display());
        }
    }
}

/// Runs the demo and returns the process exit code.
pub fn run(json_out: bool) -> ExitCode {
    let mut report = Report::new(json_out);
    let environment = match run_in(&mut report) {
        Ok(env) => env,
        Err(e) => {
            // Every step that did not run is reported as failed.
            report.fill_remaining(&e);
            json!({"error": e})
        }
    };
    report.finish(environment);
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Sets up and runs the scenario, each within [`OVERALL_TIMEOUT`]; `Err`
/// when the environment could not start or the scenario did not finish.
async fn scenario_with_deadline(
    dir: &Path,
    report: &mut Report,
) -> Result<serde_json::Value, String> {
    let world = match tokio::time::timeout(OVERALL_TIMEOUT, scenario::setup(dir)).await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("starting the demo took too long".to_owned()),
    };
    report.preamble(&format!(
        "ETDI demo: an AI agent, a tool server and an OAuth token issuer, all started on\n\
         this machine and talking over 127.0.0.1 only.\n\
         \x20 token issuer  {}  (OAuth metadata, JWKS, client-credentials tokens, ES256)\n\
         \x20 tool server   {}  (read_file and write_file, signed by com.example)\n\
         \x20 agent         demo-agent; its approval file and both audit logs are in\n\
         \x20               {} (deleted at the end)\n",
        world.issuer_url,
        world.server_url,
        dir.display()
    ));
    let env = world.environment();
    if tokio::time::timeout(OVERALL_TIMEOUT, scenario::run(&world, report))
        .await
        .is_err()
    {
        return Err(format!(
            "the demo did not finish within {} s",
            OVERALL_TIMEOUT.as_secs()
        ));
    }
    Ok(env)
}

/// Runs the demo in a fresh runtime and working directory; `Err` when it
/// could not start or finish.
fn run_in(report: &mut Report) -> Result<serde_json::Value, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    // The signal handlers are in place before the directory exists, so an
    // interrupt at any moment still removes it.
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        let _runtime = rt.enter();
        let handler = |kind: SignalKind| {
            signal(kind).map_err(|e| format!("cannot install a signal handler: {e}"))
        };
        (
            handler(SignalKind::interrupt())?,
            handler(SignalKind::terminate())?,
        )
    };
    let dir = WorkDir::create()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = scenario_with_deadline(dir.path(), report) => r,
            _ = interrupt.recv() => Err("interrupted".to_owned()),
            _ = terminate.recv() => Err("terminated".to_owned()),
        }
    });
    // Stop the servers (and with them the audit logs' writers) before the
    // directory goes.
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(dir);
    result
}
