//! `etdi proxy` as real clients meet it: the release `etdi` binary in front
//! of a plain rmcp upstream (the `echo` tool over Streamable HTTP, accepting
//! with TCP_NODELAY), against the same upstream called directly by the same
//! client. The client is the kept-alive one of etdi-server's benches
//! (`support/keepalive.rs`: one connection per client, `initialize`, then
//! calls, SSE answers read to the end). Sequential latency on one session
//! and throughput with 16 sessions at once, in interleaved rounds; ratios
//! against `direct` are taken within each round and their medians printed.
//! The gateway runs at security level `enhanced` with its audit log on, as
//! shipped.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::Criterion;
use serde_json::{Value, json};

#[path = "../../etdi-server/benches/support/fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "../../etdi-server/benches/support/keepalive.rs"]
mod keepalive;

const ISSUER: &str = "https://issuer.bench";
const RESOURCE: &str = "http://127.0.0.1/mcp";

/// The gateway process; killed when dropped.
struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(dir: &std::path::Path, upstream: &str, issuer: &fixture::Issuer) -> Gateway {
    let jwk: Value = serde_json::from_str(&issuer.key.verifying_key().to_jwk().to_json()).unwrap();
    std::fs::write(dir.join("jwks.json"), json!({"keys": [jwk]}).to_string()).unwrap();
    let config = format!(
        r#"name = "bench-gateway"
state_dir = "state"
audit_dir = "audit"

[upstream]
url = "{upstream}"

[downstream]
listen = "127.0.0.1:0"
resource = "{RESOURCE}"

[[downstream.issuers]]
issuer = "{ISSUER}"
jwks_file = "jwks.json"
algorithms = ["ES256"]

[provider]
id = "com.example"
name = "Example Corp"

[policy]
security_level = "enhanced"

[tools.echo]
version = "1.0.0"
permissions = ["demo:read"]
"#
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_etdi"))
        .args(["--json", "proxy", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the etdi binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let event: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("etdi proxy did not start ({e}): {line:?}"));
    let url = event["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url in {event}"))
        .to_owned();
    Gateway { child, url }
}

fn main() {
    const CLIENTS: usize = 16;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let issuer = fixture::Issuer::generate();
    let dir = tempfile::tempdir().unwrap();
    let upstream = rt.block_on(fixture::start_plain(false));
    let gateway = start_gateway(dir.path(), &upstream, &issuer);
    let args = json!({"text": "benchmark"});
    let token = issuer.token(RESOURCE);
    let mut targets: Vec<keepalive::Target> = rt.block_on(async {
        vec![
            keepalive::Target::open("direct", &upstream, None, CLIENTS).await,
            keepalive::Target::open("proxy", &gateway.url, Some(token), CLIENTS).await,
        ]
    });
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    keepalive::criterion_group(&mut c, "proxy_tools_call", &rt, &mut targets, "echo", &args);
    let rounds = keepalive::Rounds {
        rounds: 7,
        sequential: 200,
        per_client: 50,
    };
    println!();
    println!(
        "etdi proxy (enhanced, audit on) in front of a plain rmcp upstream, kept-alive MCP clients with SSE answers ({} interleaved rounds: {} sequential calls on one session, then {CLIENTS} sessions x {} calls at once)",
        rounds.rounds, rounds.sequential, rounds.per_client
    );
    keepalive::compare(&rt, &mut targets, "echo", &args, &rounds);
    println!(
        "(target: the proxy's sequential p50 under 2 ms; ratios are the median of per-round ratios against direct)"
    );
    drop(targets);
    drop(gateway);
    rt.shutdown_timeout(Duration::from_secs(1));
}
