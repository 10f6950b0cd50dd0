//! The cost of ETDI over Streamable HTTP on loopback, measured in one run
//! against a plain rmcp server serving the same tool:
//!
//! * `plain`: rmcp `StreamableHttpService`, no authentication;
//! * `secure`: SecureServer with bearer-token verification (etdi-auth, ES256
//!   JWT), policy decision (etdi-policy) and audit (etdi-audit file log,
//!   group commit) with one event per step (the default);
//! * `secure/call`: the same with one audit event per allowed call listing
//!   the steps (`AuditGranularity::PerCall`);
//! * `secure+es256`: `secure/call` with every request signed (ES256) and
//!   verified, replay store included. Signatures are made before timing,
//!   as a client would sign off the server's critical path.
//!
//! * `secure/call+verify`: `secure/call` (unsigned calls) whose tool runs
//!   one ES256 verification (of the next message of a pool of signed
//!   messages, as each signed request carries its own signature): the cost
//!   of one verify inside the server, where it shares the machine with HTTP,
//!   JSON and the audit log;
//! * `secure/call+sig`: the signed requests sent to `secure/call`, which
//!   verifies none (the cost of carrying a signature);
//! * `secure/noaudit`, `secure/json/noaudit`: no audit sink;
//! * `plain/json`, `secure/json`, `secure/json/call`: the same servers
//!   stateless with `application/json` answers, driven over kept-alive
//!   connections.
//!
//! The signing overhead is `secure+es256` against `secure/call`, printed
//! beside the latency of one verify run in a tool (`secure/call+verify`).
//!
//! Criterion measures the mean per call; a second pass prints p50/p99
//! latency, the added latency against `plain`, and throughput with 8
//! concurrent callers. Kept short (well under a minute) for the all-crate
//! bench run.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use etdi_core::{AuthMethod, CallChain, Principal, SecurityLevel, SecurityPolicy};
use etdi_crypto::request::{CallToSign, RequestSigner, RequestVerifier};
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime};
use etdi_server::rmcp::model::{CallToolRequestParams, JsonObject, RequestMetaObject};
use etdi_server::rmcp::service::RunningService;
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use etdi_server::rmcp::{RoleClient, ServiceExt};
use etdi_server::{BearerAuth, EtdiTool, SecureServer, ToolContext, wire};
use serde_json::{Value, json};

#[path = "support/fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "support/keepalive.rs"]
mod keepalive;
use fixture::{EchoArgs, Issuer, echo, listen, start_plain};

type Client = RunningService<RoleClient, ()>;

/// How a secure server of the bench treats request signatures.
#[derive(Clone, Copy)]
enum Sig<'a> {
    /// Signatures not required, none verified.
    Off,
    /// Every call must be signed by this key (ES256).
    Required(&'a SigningKey),
    /// No signatures, but the tool itself runs one ES256 verification (of
    /// the next message of a pool): what one verify costs inside the server,
    /// between HTTP, JSON and the audit log (the control for
    /// `secure+es256`).
    InTool,
}

/// The key and the signed messages of [`Sig::InTool`] and of the hot-loop
/// reference. ECDSA verification time depends on the signature (public
/// scalars, variable-time multiplication), so one fixed signature would
/// time different work than the signed requests, each of which carries its
/// own: the control and the reference go round a pool instead.
struct VerifyPool {
    key: etdi_crypto::VerifyingKey,
    signed: Vec<(Vec<u8>, Vec<u8>)>,
    next: std::sync::atomic::AtomicUsize,
    /// How long each in-tool verify took, measured inside the tool.
    in_tool: std::sync::Mutex<Vec<f64>>,
}

impl VerifyPool {
    fn new(key: &SigningKey) -> Self {
        let signed = (0..256u32)
            .map(|i| {
                // About the length of a signed request's signing input.
                let msg = format!("etdi benchmark message {i:04} {}", "x".repeat(360)).into_bytes();
                let sig = key.sign(&msg).unwrap();
                (msg, sig)
            })
            .collect();
        VerifyPool {
            key: key.verifying_key().clone(),
            signed,
            next: std::sync::atomic::AtomicUsize::new(0),
            in_tool: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Verifies the next message of the pool; returns how long it took.
    fn verify_next(&self) -> Duration {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (msg, sig) = &self.signed[i % self.signed.len()];
        let t = Instant::now();
        self.key.verify(msg, sig).unwrap();
        t.elapsed()
    }
}

static IN_TOOL: std::sync::OnceLock<VerifyPool> = std::sync::OnceLock::new();

async fn start_secure(
    issuer: &Issuer,
    signing: Sig<'_>,
    granularity: etdi_server::audit::AuditGranularity,
    audit_dir: &std::path::Path,
    json: bool,
) -> String {
    let sink = etdi_audit::sink::FileSink::builder(audit_dir)
        .open()
        .unwrap();
    // A server logs a few events per request at a steady rate: let the
    // writer gather them (AuditLogBuilder::linger).
    let log = etdi_audit::AuditLog::builder()
        .sink(sink)
        .linger(Duration::from_millis(1))
        .build()
        .unwrap();
    start_secure_with(issuer, signing, granularity, Arc::new(log), json).await
}

async fn start_secure_with(
    issuer: &Issuer,
    signing: Sig<'_>,
    granularity: etdi_server::audit::AuditGranularity,
    audit: Arc<dyn etdi_server::stages::AuditRecorder>,
    json: bool,
) -> String {
    let (l, url) = listen().await;
    let signing_in_tool = matches!(signing, Sig::InTool);
    let mut policy = SecurityPolicy::new(SecurityLevel::Enhanced);
    policy.require_tool_signatures = false;
    let mut b = SecureServer::builder("bench")
        .audience(url.clone())
        .policy(policy.clone())
        .provider("com.example", "Example Corp")
        .audit(audit)
        .audit_granularity(granularity)
        .bearer_auth(BearerAuth {
            verifier: Arc::new(issuer.verifier(&url)),
            resource: url.clone(),
            authorization_servers: vec!["https://issuer.bench".into()],
            scopes_supported: vec!["demo:read".into()],
            required_scopes: vec![],
            accept_client_certificates: false,
        })
        .tool(
            EtdiTool::new("echo", "1.0.0")
                .permissions(["demo:read"])
                .handler(move |a: EchoArgs, _c: ToolContext| async move {
                    if signing_in_tool {
                        let pool = IN_TOOL.get().unwrap();
                        let took = pool.verify_next();
                        pool.in_tool.lock().unwrap().push(took.as_secs_f64() * 1e6);
                    }
                    echo(&a.text)
                }),
        );
    if let Sig::Required(key) = signing {
        let mut issuers = IssuerKeys::new();
        issuers.add("alice", key.verifying_key().clone());
        let mut p = policy;
        p.require_request_signing = true;
        b = b
            .policy(p)
            .request_verifier(RequestVerifier::new(url.clone(), issuers));
    }
    let server = b.build().unwrap();
    // `json`: no sessions and `application/json` answers. rmcp's default
    // client opens a new TCP connection for every call, which both servers
    // of a pair pay alike; the JSON pair is driven by a pooling client
    // (`connect_pooled`), so the per-call cost of ETDI is measured against
    // a smaller common base.
    let options = etdi_server::http::HttpOptions {
        sessions: !json,
        json_response: json,
        ..etdi_server::http::HttpOptions::default()
    };
    let app = etdi_server::http::router(server, options).unwrap();
    tokio::spawn(async move { axum::serve(etdi_server::listener::TcpAccept::new(l), app).await });
    url
}

async fn connect(url: &str, token: Option<String>) -> Client {
    connect_with(url, token, false).await
}

/// [`connect`] with a pooling HTTP client. rmcp's default client keeps no
/// idle connections (an SSE answer it stops reading mid-stream would stall
/// the next request on the same connection), so it opens one TCP
/// connection per call; JSON answers are read to the end, so the pair
/// served with them can keep connections alive.
async fn connect_pooled(url: &str, token: Option<String>) -> Client {
    connect_with(url, token, true).await
}

async fn connect_with(url: &str, token: Option<String>, pooled: bool) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(t) = token {
        config = config.auth_header(t);
    }
    let transport = if pooled {
        StreamableHttpClientTransport::with_client(reqwest::Client::new(), config)
    } else {
        StreamableHttpClientTransport::from_config(config)
    };
    ().serve(transport).await.unwrap()
}

fn args() -> JsonObject {
    json!({"text": "benchmark"}).as_object().unwrap().clone()
}

/// `n` requests, signed for `url` when `key` is given.
fn requests(n: u64, url: &str, key: Option<&SigningKey>) -> Vec<CallToolRequestParams> {
    let a = args();
    let chain = CallChain::new();
    (0..n)
        .map(|_| {
            let mut p = CallToolRequestParams::new("echo").with_arguments(a.clone());
            if let Some(key) = key {
                let sig = RequestSigner::new("alice")
                    .sign(
                        key,
                        &CallToSign {
                            audience: url,
                            tool: "echo",
                            arguments: Some(&a),
                            chain: &chain,
                        },
                        UnixTime::now(),
                    )
                    .unwrap();
                let mut m = RequestMetaObject::new();
                m.0.0
                    .insert(wire::META_REQUEST_SIGNATURE.into(), Value::from(sig));
                p.meta = Some(m);
            }
            p
        })
        .collect()
}

struct Variant {
    name: &'static str,
    url: String,
    client: Client,
    key: Option<Arc<SigningKey>>,
}

impl Variant {
    async fn run(&self, reqs: Vec<CallToolRequestParams>) -> Vec<Duration> {
        let mut out = Vec::with_capacity(reqs.len());
        for p in reqs {
            let t = Instant::now();
            let r = self.client.call_tool(p).await.unwrap();
            out.push(t.elapsed());
            assert_ne!(r.is_error, Some(true));
        }
        out
    }

    /// The requests for `tasks` concurrent callers doing `per` calls each
    /// (signed here, before any measurement, as a client signs off the
    /// server's critical path).
    fn batches(&self, tasks: u64, per: u64) -> Vec<Vec<CallToolRequestParams>> {
        (0..tasks)
            .map(|_| requests(per, &self.url, self.key.as_deref()))
            .collect()
    }

    /// Calls per second for these batches, one concurrent caller each.
    async fn throughput(&self, batches: Vec<Vec<CallToolRequestParams>>) -> f64 {
        let calls: usize = batches.iter().map(Vec::len).sum();
        let t = Instant::now();
        let mut handles = Vec::new();
        for batch in batches {
            let peer = self.client.peer().clone();
            handles.push(tokio::spawn(async move {
                for p in batch {
                    peer.call_tool(p).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        calls as f64 / t.elapsed().as_secs_f64()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time of every thread of this process (client, server and audit
/// writer), in seconds, from the nanosecond run-time counters in
/// `/proc/self/task/*/schedstat`.
fn process_cpu_seconds() -> f64 {
    let mut ns: u64 = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = t.unwrap().path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let provider = CryptoProvider::get_default();
    let issuer = Issuer {
        key: SigningKey::generate(provider, Algorithm::ES256).unwrap(),
    };
    let client_key = Arc::new(SigningKey::generate(provider, Algorithm::ES256).unwrap());
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let dir3 = tempfile::tempdir().unwrap();
    let dir4 = tempfile::tempdir().unwrap();
    let dir5 = tempfile::tempdir().unwrap();
    let dir6 = tempfile::tempdir().unwrap();
    IN_TOOL.set(VerifyPool::new(&client_key)).ok().unwrap();
    use etdi_server::audit::AuditGranularity::{PerCall, PerStep};
    let variants: Vec<Variant> = rt.block_on(async {
        let plain = start_plain(false).await;
        let secure = start_secure(&issuer, Sig::Off, PerStep, dir1.path(), false).await;
        let per_call = start_secure(&issuer, Sig::Off, PerCall, dir3.path(), false).await;
        let signed = start_secure(
            &issuer,
            Sig::Required(&client_key),
            PerCall,
            dir2.path(),
            false,
        )
        .await;
        let in_tool = start_secure(&issuer, Sig::InTool, PerCall, dir6.path(), false).await;
        let unaudited = start_secure_with(
            &issuer,
            Sig::Off,
            PerCall,
            Arc::new(etdi_server::audit::NoAudit),
            false,
        )
        .await;
        let plain_json = start_plain(true).await;
        let secure_json = start_secure(&issuer, Sig::Off, PerStep, dir4.path(), true).await;
        let secure_json_call = start_secure(&issuer, Sig::Off, PerCall, dir5.path(), true).await;
        let secure_json_noaudit = start_secure_with(
            &issuer,
            Sig::Off,
            PerCall,
            Arc::new(etdi_server::audit::NoAudit),
            true,
        )
        .await;
        vec![
            Variant {
                name: "plain",
                client: connect(&plain, None).await,
                url: plain,
                key: None,
            },
            Variant {
                name: "secure",
                client: connect(&secure, Some(issuer.token(&secure))).await,
                url: secure,
                key: None,
            },
            Variant {
                name: "secure/call",
                client: connect(&per_call, Some(issuer.token(&per_call))).await,
                url: per_call.clone(),
                key: None,
            },
            Variant {
                name: "secure+es256",
                client: connect(&signed, Some(issuer.token(&signed))).await,
                url: signed,
                key: Some(client_key.clone()),
            },
            // The signed requests of `secure+es256` sent to `secure/call`,
            // which verifies no signatures: the cost of carrying them
            // (a bigger body, `_meta` parsing) without the verification.
            Variant {
                name: "secure/call+sig",
                client: connect(&per_call, Some(issuer.token(&per_call))).await,
                url: per_call.clone(),
                key: Some(client_key.clone()),
            },
            // Unsigned calls whose tool runs one ES256 verify: the same
            // verify as `secure+es256`, without the request-signing code.
            Variant {
                name: "secure/call+verify",
                client: connect(&in_tool, Some(issuer.token(&in_tool))).await,
                url: in_tool,
                key: None,
            },
            Variant {
                name: "secure/noaudit",
                client: connect(&unaudited, Some(issuer.token(&unaudited))).await,
                url: unaudited,
                key: None,
            },
            // The same pair as `plain`/`secure`, served statelessly with
            // JSON answers over kept-alive connections.
            Variant {
                name: "plain/json",
                client: connect_pooled(&plain_json, None).await,
                url: plain_json,
                key: None,
            },
            Variant {
                name: "secure/json",
                client: connect_pooled(&secure_json, Some(issuer.token(&secure_json))).await,
                url: secure_json,
                key: None,
            },
            Variant {
                name: "secure/json/call",
                client: connect_pooled(&secure_json_call, Some(issuer.token(&secure_json_call)))
                    .await,
                url: secure_json_call,
                key: None,
            },
            Variant {
                name: "secure/json/noaudit",
                client: connect_pooled(
                    &secure_json_noaudit,
                    Some(issuer.token(&secure_json_noaudit)),
                )
                .await,
                url: secure_json_noaudit,
                key: None,
            },
        ]
    });
    // For profiling one variant against another (`perf record`):
    // ETDI_BENCH_VARIANTS=plain,secure+es256 keeps only those, in that order
    // (the first is the reference of the ratio column).
    let variants: Vec<Variant> = match std::env::var("ETDI_BENCH_VARIANTS") {
        Ok(list) => {
            let mut all = variants;
            list.split(',')
                .filter_map(|name| {
                    let i = all.iter().position(|v| v.name == name)?;
                    Some(all.remove(i))
                })
                .collect()
        }
        Err(_) => variants,
    };
    let _ = Principal::new("unused", AuthMethod::Local);

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        let mut g = c.benchmark_group("http_tools_call");
        for v in &variants {
            g.bench_function(v.name, |b| {
                b.iter_custom(|iters| {
                    let reqs = requests(iters, &v.url, v.key.as_deref());
                    rt.block_on(async {
                        let t = Instant::now();
                        for p in reqs {
                            v.client.call_tool(p).await.unwrap();
                        }
                        t.elapsed()
                    })
                })
            });
        }
        g.finish();
    }

    // Latency distribution and throughput, all variants in this run. The
    // machine is shared and noisy, so the variants are interleaved: each
    // round measures every variant back to back, a throughput ratio is taken
    // within its round, and the median over rounds is reported. CPU time per
    // call (the whole process: client and server) is reported beside it
    // because it barely depends on what else the machine is doing.
    const ROUNDS: usize = 9;
    const LAT_PER_ROUND: u64 = 200;
    const TASKS: u64 = 8;
    const PER_TASK: u64 = 100;
    let n = variants.len();
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut tputs: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); n];
    for _ in 0..ROUNDS {
        let mut round = Vec::with_capacity(n);
        for (i, v) in variants.iter().enumerate() {
            let reqs = requests(LAT_PER_ROUND, &v.url, v.key.as_deref());
            lat[i].extend(rt.block_on(v.run(reqs)));
            let batches = v.batches(TASKS, PER_TASK);
            let c0 = process_cpu_seconds();
            let t = rt.block_on(v.throughput(batches));
            let c1 = process_cpu_seconds();
            cpu[i].push((c1 - c0) * 1e6 / (TASKS * PER_TASK) as f64);
            round.push(t);
        }
        for i in 0..n {
            tputs[i].push(round[i]);
            ratios[i].push(round[i] / round[0]);
        }
    }
    // Per-round throughputs, before the medians below sort them.
    let per_round = tputs.clone();
    for l in &mut lat {
        l.sort();
    }
    let p50_0 = pct(&lat[0], 0.5);
    let p99_0 = pct(&lat[0], 0.99);
    println!();
    println!(
        "etdi-server over Streamable HTTP (loopback; {ROUNDS} interleaved rounds of {LAT_PER_ROUND} sequential calls and {TASKS}x{PER_TASK} concurrent calls per variant)"
    );
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>11}",
        "variant", "p50 us", "p99 us", "+p50 us", "+p99 us", "calls/s", "ratio(med)", "cpu us/call"
    );
    for (i, v) in variants.iter().enumerate() {
        let p50 = pct(&lat[i], 0.5);
        let p99 = pct(&lat[i], 0.99);
        println!(
            "{:<15} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>12.3} {:>11.1}",
            v.name,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            (p50.as_secs_f64() - p50_0.as_secs_f64()) * 1e6,
            (p99.as_secs_f64() - p99_0.as_secs_f64()) * 1e6,
            median(&mut tputs[i]),
            median(&mut ratios[i]),
            median(&mut cpu[i]),
        );
    }
    let by_name = |name: &str| variants.iter().position(|v| v.name == name);
    if let (Some(s), Some(p)) = (by_name("secure/json"), by_name("plain/json")) {
        let mut r: Vec<f64> = per_round[s]
            .iter()
            .zip(&per_round[p])
            .map(|(a, b)| a / b)
            .collect();
        println!(
            "secure/json against plain/json: throughput ratio {:.3} (median of per-round ratios), +p50 {:.1} us",
            median(&mut r),
            (pct(&lat[s], 0.5).as_secs_f64() - pct(&lat[p], 0.5).as_secs_f64()) * 1e6
        );
    }
    if let (Some(signed), Some(unsigned)) = (by_name("secure+es256"), by_name("secure/call")) {
        let signing = pct(&lat[signed], 0.5).as_secs_f64() - pct(&lat[unsigned], 0.5).as_secs_f64();
        println!(
            "request signing adds {:.1} us at p50 (secure+es256 against secure/call)",
            signing * 1e6
        );
        if let Some(control) = by_name("secure/call+verify") {
            let in_tool =
                pct(&lat[control], 0.5).as_secs_f64() - pct(&lat[unsigned], 0.5).as_secs_f64();
            println!(
                "one ES256 verify run inside the tool adds {:.1} us at p50 (secure/call+verify against secure/call); request signing adds {:.1} us beyond it",
                in_tool * 1e6,
                (signing - in_tool) * 1e6
            );
        }
    }
    // One ES256 verification on this machine, for the target "added p50 at
    // most one ES256 verify + 20 us": the median over the pool (the same
    // signatures the control verifies), in a hot loop.
    let pool = IN_TOOL.get().unwrap();
    let mut hot: Vec<f64> = (0..1024)
        .map(|_| pool.verify_next().as_secs_f64() * 1e6)
        .collect();
    println!(
        "one ES256 verify: {:.1} us (median of {} over a pool of {} signatures, hot loop)",
        median(&mut hot),
        hot.len(),
        pool.signed.len()
    );
    let mut in_tool = pool.in_tool.lock().unwrap().clone();
    if !in_tool.is_empty() {
        println!(
            "one ES256 verify timed inside the tool (secure/call+verify): {:.1} us (median of {})",
            median(&mut in_tool),
            in_tool.len()
        );
    }
    // The same verify with the caches cold: 8 MiB are written before each
    // verify (not timed) to push the curve tables out of L1/L2.
    let mut scratch = vec![0u8; 8 << 20];
    let mut cold = Vec::with_capacity(200);
    for i in 0..200u32 {
        for b in scratch.iter_mut().step_by(64) {
            *b = b.wrapping_add(i as u8);
        }
        cold.push(pool.verify_next().as_secs_f64() * 1e6);
    }
    std::hint::black_box(&scratch);
    println!(
        "one ES256 verify with cold caches: {:.1} us (median of 200)",
        median(&mut cold)
    );
    drop(variants);
    keepalive(&rt, &mut c, &issuer);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// What real clients do: one kept-alive connection per client, `initialize`
/// once, then calls on the session, every answer an SSE stream read to its
/// end (`support/keepalive.rs`). Sequential latency on one session and
/// throughput with 16 sessions calling at once, for the plain rmcp server
/// and SecureServer, both accepting with `TCP_NODELAY`; interleaved rounds,
/// ratios against `plain` taken within each round, medians reported. The
/// rows above (rmcp's own client, a new connection per call) are the
/// second view.
fn keepalive(rt: &tokio::runtime::Runtime, c: &mut Criterion, issuer: &Issuer) {
    use etdi_server::audit::AuditGranularity::{PerCall, PerStep};
    const CLIENTS: usize = 16;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let args = json!({"text": "benchmark"});
    let mut targets: Vec<keepalive::Target> = rt.block_on(async {
        let plain = start_plain(false).await;
        let secure = start_secure(issuer, Sig::Off, PerStep, dirs[0].path(), false).await;
        let per_call = start_secure(issuer, Sig::Off, PerCall, dirs[1].path(), false).await;
        vec![
            keepalive::Target::open("plain", &plain, None, CLIENTS).await,
            keepalive::Target::open("secure", &secure, Some(issuer.token(&secure)), CLIENTS).await,
            keepalive::Target::open(
                "secure/call",
                &per_call,
                Some(issuer.token(&per_call)),
                CLIENTS,
            )
            .await,
        ]
    });
    keepalive::criterion_group(c, "keepalive_tools_call", rt, &mut targets, "echo", &args);
    let rounds = keepalive::Rounds {
        rounds: 7,
        sequential: 200,
        per_client: 50,
    };
    println!();
    println!(
        "kept-alive MCP clients with SSE answers ({} interleaved rounds: {} sequential calls on one session, then {CLIENTS} sessions x {} calls at once; every server accepts with TCP_NODELAY)",
        rounds.rounds, rounds.sequential, rounds.per_client
    );
    keepalive::compare(rt, &mut targets, "echo", &args, &rounds);
    println!(
        "(p50 ratio: a variant's sequential p50 over plain's, median of per-round ratios; target for secure: at most 1.5)"
    );
}
