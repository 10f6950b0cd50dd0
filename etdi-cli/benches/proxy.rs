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
use std::time::{Duration, Instant};

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
    const ROUNDS: usize = 7;
    const SEQ_PER_ROUND: usize = 200;
    const PER_CLIENT: usize = 50;
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
    let targets = [
        ("direct", upstream.clone(), None),
        ("proxy", gateway.url.clone(), Some(token)),
    ];
    let mut sessions: Vec<(keepalive::Session, Vec<keepalive::Session>)> = rt.block_on(async {
        let mut out = Vec::new();
        for (_, url, token) in &targets {
            let one = keepalive::Session::open(url, token.clone()).await;
            let mut many = Vec::with_capacity(CLIENTS);
            for _ in 0..CLIENTS {
                many.push(keepalive::Session::open(url, token.clone()).await);
            }
            out.push((one, many));
        }
        out
    });

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        let mut g = c.benchmark_group("proxy_tools_call");
        for ((name, _, _), (one, _)) in targets.iter().zip(sessions.iter_mut()) {
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            one.call("echo", &args).await;
                        }
                        start.elapsed()
                    })
                })
            });
        }
        g.finish();
    }

    let n = targets.len();
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut p50_ratio: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut tput: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut tput_ratio: Vec<Vec<f64>> = vec![Vec::new(); n];
    for _ in 0..ROUNDS {
        let mut round_p50 = Vec::with_capacity(n);
        let mut round_tput = Vec::with_capacity(n);
        for (i, (one, many)) in sessions.iter_mut().enumerate() {
            let mut l = rt.block_on(keepalive::sequential(one, "echo", &args, SEQ_PER_ROUND));
            l.sort();
            round_p50.push(keepalive::pct(&l, 0.5).as_secs_f64());
            lat[i].extend(l);
            let (back, calls_per_s) = rt.block_on(keepalive::concurrent(
                std::mem::take(many),
                "echo",
                &args,
                PER_CLIENT,
            ));
            *many = back;
            round_tput.push(calls_per_s);
        }
        for i in 0..n {
            p50_ratio[i].push(round_p50[i] / round_p50[0]);
            tput[i].push(round_tput[i]);
            tput_ratio[i].push(round_tput[i] / round_tput[0]);
        }
    }
    println!();
    println!(
        "etdi proxy (enhanced, audit on) in front of a plain rmcp upstream, kept-alive MCP clients with SSE answers ({ROUNDS} interleaved rounds: {SEQ_PER_ROUND} sequential calls on one session, then {CLIENTS} sessions x {PER_CLIENT} calls at once)"
    );
    println!(
        "{:<8} {:>9} {:>9} {:>11} {:>9} {:>14}",
        "target", "p50 us", "p99 us", "p50 ratio", "calls/s", "calls/s ratio"
    );
    for (i, (name, _, _)) in targets.iter().enumerate() {
        lat[i].sort();
        println!(
            "{:<8} {:>9.1} {:>9.1} {:>11.3} {:>9.0} {:>14.3}",
            name,
            keepalive::pct(&lat[i], 0.5).as_secs_f64() * 1e6,
            keepalive::pct(&lat[i], 0.99).as_secs_f64() * 1e6,
            keepalive::median(&mut p50_ratio[i]),
            keepalive::median(&mut tput[i]),
            keepalive::median(&mut tput_ratio[i]),
        );
    }
    println!(
        "(target: the proxy's sequential p50 under 2 ms; ratios are the median of per-round ratios against direct)"
    );
    drop(sessions);
    drop(gateway);
    rt.shutdown_timeout(Duration::from_secs(1));
}
