//! An MCP client that behaves like the ones people run (the official Python
//! and TypeScript SDKs, desktop hosts): one kept-alive HTTP/1.1 connection
//! per client, `initialize` once, then `tools/call` after `tools/call` on
//! the same session, every answer a `text/event-stream` read to its end.
//! rmcp's own default client opens a new connection per request, which hid
//! a 40 ms delayed-ACK stall on every reply from the project's benches; this
//! one measures what users feel. Shared by the etdi-server and etdi-cli
//! benches (`#[path]` include).

use std::time::{Duration, Instant};

use criterion::Criterion;

use serde_json::{Value, json};

/// The protocol revision sent in `initialize` and in each later request's
/// `MCP-Protocol-Version` header.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// One MCP client session over one kept-alive connection.
pub struct Session {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    session: Option<String>,
    next_id: u64,
}

impl Session {
    /// Connects, initializes and sends `notifications/initialized`.
    pub async fn open(url: &str, token: Option<String>) -> Session {
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(300))
            .build()
            .expect("reqwest client");
        let mut s = Session {
            http,
            url: url.to_owned(),
            token,
            session: None,
            next_id: 1,
        };
        let init = json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "etdi-bench-keepalive", "version": "0"}});
        let (session, answer) = s.request("initialize", init).await;
        assert!(
            answer.get("result").is_some(),
            "initialize failed: {answer}"
        );
        s.session = session;
        let (status, _) = s
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert!(status.is_success(), "notifications/initialized: {status}");
        s
    }

    async fn post(&self, body: Value) -> (reqwest::StatusCode, reqwest::Response) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .body(body.to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = &self.session {
            req = req.header("mcp-session-id", id);
        }
        let resp = req.send().await.expect("request sent");
        (resp.status(), resp)
    }

    /// Sends a request and reads its answer to the end (the body is read
    /// whole, so the connection goes back to the pool and is reused).
    /// Returns the session id header and the JSON-RPC response.
    async fn request(&mut self, method: &str, params: Value) -> (Option<String>, Value) {
        let id = self.next_id;
        self.next_id += 1;
        let (status, resp) = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.expect("answer read to its end");
        assert!(
            status.is_success(),
            "{method}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        (session, answer(&body, id))
    }

    /// Calls `tool`; fails the bench on any error.
    pub async fn call(&mut self, tool: &str, arguments: &Value) -> Value {
        let (_, answer) = self
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        let result = answer
            .get("result")
            .unwrap_or_else(|| panic!("tools/call {tool} failed: {answer}"));
        assert_ne!(
            result.get("isError"),
            Some(&Value::Bool(true)),
            "tools/call {tool}: {result}"
        );
        result.clone()
    }
}

/// The JSON-RPC response with `id` in an SSE stream or a JSON body.
fn answer(body: &[u8], id: u64) -> Value {
    let text = std::str::from_utf8(body).expect("UTF-8 answer");
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").and_then(Value::as_u64) == Some(id))
        .unwrap_or_else(|| panic!("no answer with id {id} in: {text}"))
}

/// Sequential latencies of `n` calls on one session.
pub async fn sequential(s: &mut Session, tool: &str, args: &Value, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.call(tool, args).await;
        out.push(t.elapsed());
    }
    out
}

/// Calls per second with every session calling `per` times at once, each
/// session on its own task; the sessions are handed back for the next round.
pub async fn concurrent(
    sessions: Vec<Session>,
    tool: &str,
    args: &Value,
    per: usize,
) -> (Vec<Session>, f64) {
    let calls = sessions.len() * per;
    let t = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            let tool = tool.to_owned();
            let args = args.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    s.call(&tool, &args).await;
                }
                s
            })
        })
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    for t in tasks {
        back.push(t.await.expect("client task"));
    }
    (back, calls as f64 / t.elapsed().as_secs_f64())
}

/// The `p`-quantile of `sorted`.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One server under comparison: a session for sequential calls and the
/// sessions that call at once.
pub struct Target {
    /// The name in the tables.
    pub name: &'static str,
    one: Session,
    many: Vec<Session>,
}

impl Target {
    /// Opens `clients + 1` sessions on `url`.
    pub async fn open(
        name: &'static str,
        url: &str,
        token: Option<String>,
        clients: usize,
    ) -> Target {
        let one = Session::open(url, token.clone()).await;
        let mut many = Vec::with_capacity(clients);
        for _ in 0..clients {
            many.push(Session::open(url, token.clone()).await);
        }
        Target { name, one, many }
    }
}

/// How many interleaved rounds, and the calls of each.
pub struct Rounds {
    /// Rounds.
    pub rounds: usize,
    /// Sequential calls on one session per round and target.
    pub sequential: usize,
    /// Calls of each concurrent session per round and target.
    pub per_client: usize,
}

/// A criterion group `group` with one function per target: the mean of
/// sequential calls of `tool` on its one session.
pub fn criterion_group(
    c: &mut Criterion,
    group: &str,
    rt: &tokio::runtime::Runtime,
    targets: &mut [Target],
    tool: &str,
    args: &Value,
) {
    let mut g = c.benchmark_group(group);
    for t in targets.iter_mut() {
        let one = &mut t.one;
        g.bench_function(t.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        one.call(tool, args).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

/// Runs `r.rounds` interleaved rounds over `targets` (the first is the
/// reference): in each, every target makes its sequential calls, then its
/// sessions call at once. Ratios are taken within a round; the table
/// printed gives p50 and p99 over all rounds and the median ratios.
pub fn compare(
    rt: &tokio::runtime::Runtime,
    targets: &mut [Target],
    tool: &str,
    args: &Value,
    r: &Rounds,
) {
    let n = targets.len();
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut p50_ratio: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut tput: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut tput_ratio: Vec<Vec<f64>> = vec![Vec::new(); n];
    for _ in 0..r.rounds {
        let mut round_p50 = Vec::with_capacity(n);
        let mut round_tput = Vec::with_capacity(n);
        for (i, t) in targets.iter_mut().enumerate() {
            let mut l = rt.block_on(sequential(&mut t.one, tool, args, r.sequential));
            l.sort();
            round_p50.push(pct(&l, 0.5).as_secs_f64());
            lat[i].extend(l);
            let (back, calls_per_s) = rt.block_on(concurrent(
                std::mem::take(&mut t.many),
                tool,
                args,
                r.per_client,
            ));
            t.many = back;
            round_tput.push(calls_per_s);
        }
        for i in 0..n {
            p50_ratio[i].push(round_p50[i] / round_p50[0]);
            tput[i].push(round_tput[i]);
            tput_ratio[i].push(round_tput[i] / round_tput[0]);
        }
    }
    println!(
        "{:<12} {:>9} {:>9} {:>11} {:>11} {:>14}",
        "target", "p50 us", "p99 us", "p50 ratio", "calls/s", "calls/s ratio"
    );
    for (i, t) in targets.iter().enumerate() {
        lat[i].sort();
        println!(
            "{:<12} {:>9.1} {:>9.1} {:>11.3} {:>11.0} {:>14.3}",
            t.name,
            pct(&lat[i], 0.5).as_secs_f64() * 1e6,
            pct(&lat[i], 0.99).as_secs_f64() * 1e6,
            median(&mut p50_ratio[i]),
            median(&mut tput[i]),
            median(&mut tput_ratio[i]),
        );
    }
}
