//! Load and fault tests of the SecureServer as a separate process
//! (`etdi-load-server`) over Streamable HTTP on 127.0.0.1, driven by the
//! real verifying client (etdi-client `SecureClient`: verified discovery,
//! approvals, ES256 request signatures, bearer tokens).
//!
//! * `load`: 64 concurrent clients make 20,000 signed calls; no call may
//!   fail, the audit log must hold exactly one allowed outcome event per
//!   call (matched by caller and JSON-RPC request id) and verify with its
//!   signed checkpoints, and the server's peak RSS (VmHWM) must stay under
//!   a generous bound. Prints throughput, p50/p99 latency and peak RSS.
//! * `sigkill_during_load`: the server acknowledges a call only after its
//!   audit event is fsynced; it is killed with SIGKILL while 64 clients
//!   call it, then restarted on the same directories. The log must verify
//!   up to its tail, a torn tail must be repaired and recorded, the keys
//!   and the client's approval store must load, and no acknowledged call
//!   may be missing from the log.
//!
//! Both are bounded in calls and guarded by deadlines (a hang fails the
//! test); nothing asserts on time. They run one after the other so that
//! their figures do not disturb each other.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etdi_audit::Verifier;
use etdi_audit::sink::file::list_log_files;
use etdi_client::http::{BearerClient, StaticBearer};
use etdi_client::{
    ApprovalStore, Approver, AutoApproveRule, ClientError, DenyAll, Discovery, FileApprovalStore,
    MemoryApprovalStore, RequestSigning, RuleApprover, SecureClient,
};
use etdi_core::{Permission, ProviderId, ServerId};
use etdi_crypto::attestation::{AttestationVerifier, ProviderScope};
use etdi_crypto::request::RequestSigner;
use etdi_crypto::trust::KeyRing;
use etdi_server::rmcp::ServiceError;
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::rmcp::transport::common::client_side_sse::ExponentialBackoff;
use etdi_server::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

mod common;
use common::load_server::{AUDIENCE, CLIENT_ID, Server, World, cpu_secs, verifying_key};

/// Runs the tests one at a time (their figures would disturb each other).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How the client's transport resumes a broken response stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// rmcp's default: reconnect with exponential backoff, without limit.
    Default,
    /// Give up after two quick attempts. A dead server's in-memory session
    /// cannot be resumed, and with the default a call in flight when the
    /// server died never returns (it keeps reconnecting: 1 s, 2 s, 4 s ...).
    Bounded,
}

/// A verifying, signing client of `subject`, trusting the provider key the
/// server announced (a test stand-in for the key an operator configures).
async fn connect(
    world: &World,
    server: &Server,
    subject: &str,
    store: Arc<dyn ApprovalStore>,
    approver: Arc<dyn Approver>,
    resume: Resume,
) -> SecureClient {
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.url.clone());
    if resume == Resume::Bounded {
        let mut backoff = ExponentialBackoff::default();
        backoff.max_times = Some(2);
        backoff.base_duration = Duration::from_millis(100);
        config.retry_config = Arc::new(backoff);
    }
    let transport = StreamableHttpClientTransport::with_client(
        BearerClient::new(
            world.http.clone(),
            Arc::new(StaticBearer(world.token(subject))),
        ),
        config,
    );
    let mut attestations = AttestationVerifier::new();
    attestations.trust_issuer(
        "com.example",
        [verifying_key(&server.provider_jwk)]
            .into_iter()
            .collect::<KeyRing>(),
        ProviderScope::only(["com.example"]).unwrap(),
    );
    let discovery =
        Discovery::new(ServerId::parse(AUDIENCE).unwrap(), attestations, store).approver(approver);
    SecureClient::connect(transport, discovery)
        .await
        .unwrap_or_else(|e| panic!("{subject} connects: {e}"))
        .with_request_signing(RequestSigning {
            signer: RequestSigner::new(CLIENT_ID),
            key: world.client_key.clone(),
        })
}

/// Approves `com.example` tools that need at most `demo:read`.
fn rule_approver() -> Arc<dyn Approver> {
    Arc::new(RuleApprover::new().rule(AutoApproveRule::new(
        "load-test",
        ProviderId::parse("com.example").unwrap(),
        [Permission::parse("demo:read").unwrap()],
    )))
}

/// One acknowledged call: the caller and the JSON-RPC request id.
type CallKey = (String, String);

/// Calls `echo` once and checks the answer; the key identifies the call in
/// the audit log.
async fn echo(client: &SecureClient, subject: &str, n: usize) -> Result<CallKey, ClientError> {
    let text = format!("{subject}#{n}");
    let r = client
        .call_tool("echo", json!({ "text": text }).as_object().cloned())
        .await?;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let v: Value = serde_json::from_str(&r.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(v["subject"], subject);
    assert_eq!(v["text"], text);
    Ok((
        subject.to_owned(),
        v["request_id"].as_str().unwrap().to_owned(),
    ))
}

/// What the audit log holds, read record by record (after the Verifier
/// has checked the chain).
#[derive(Default, Debug)]
struct LogContents {
    records: u64,
    /// Allowed calls: `tool_invocation_completed` / success, by key.
    allowed: BTreeMap<CallKey, usize>,
    /// Events by `kind/outcome`.
    by_kind: BTreeMap<String, u64>,
    /// `log_repaired` events.
    repairs: Vec<Value>,
}

fn read_log(dir: &Path) -> LogContents {
    let mut out = LogContents::default();
    for (_, path) in list_log_files(dir, "audit").unwrap() {
        let bytes = std::fs::read(&path).unwrap();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            // The Verifier has checked every record's hash and link; this
            // pass only reads what they say.
            let mut rec: Value = serde_json::from_slice(line).unwrap();
            out.records += 1;
            let e = rec["event"].take();
            let kind = e["kind"].as_str().unwrap_or_default().to_owned();
            let outcome = e["outcome"].as_str().unwrap_or_default().to_owned();
            *out.by_kind.entry(format!("{kind}/{outcome}")).or_default() += 1;
            if kind == "log_repaired" {
                out.repairs.push(e.clone());
            }
            if kind == "tool_invocation_completed" && outcome == "success" {
                let key = (
                    e["principal"]["subject"].as_str().unwrap().to_owned(),
                    e["request_id"].as_str().unwrap().to_owned(),
                );
                *out.allowed.entry(key).or_default() += 1;
            }
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const LOAD_CLIENTS: usize = 64;
const LOAD_CALLS: usize = 20_000;
/// A generous bound on the server's peak RSS; the figure is printed.
const RSS_BOUND_KIB: u64 = 512 * 1024;

#[test]
fn load() {
    let _serial = serial();
    let test_started = Instant::now();
    let rt = runtime();
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    let store: Arc<dyn ApprovalStore> = Arc::new(MemoryApprovalStore::new());

    let (acked, latencies, errors, elapsed) = rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..LOAD_CLIENTS {
            let subject = format!("load-{i:02}");
            clients.push((
                connect(
                    &world,
                    &server,
                    &subject,
                    store.clone(),
                    rule_approver(),
                    Resume::Default,
                )
                .await,
                subject,
            ));
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, (client, subject)) in clients.into_iter().enumerate() {
            // 20,000 = 64 x 312 + 32: the first 32 clients make one more.
            let n = LOAD_CALLS / LOAD_CLIENTS + usize::from(i < LOAD_CALLS % LOAD_CLIENTS);
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::with_capacity(n);
                let mut lat = Vec::with_capacity(n);
                let mut errors = Vec::new();
                for k in 0..n {
                    let t = Instant::now();
                    match tokio::time::timeout(Duration::from_secs(60), echo(&client, &subject, k))
                        .await
                    {
                        Ok(Ok(key)) => {
                            lat.push(t.elapsed());
                            acked.push(key);
                        }
                        Ok(Err(e)) => errors.push(format!("{subject} call {k}: {e}")),
                        Err(_) => errors.push(format!("{subject} call {k}: no answer in 60 s")),
                    }
                }
                client.close().await.unwrap();
                (acked, lat, errors)
            }));
        }
        let mut acked = Vec::new();
        let mut latencies = Vec::new();
        let mut errors = Vec::new();
        for t in tasks {
            let (a, l, e) = t.await.unwrap();
            acked.extend(a);
            latencies.extend(l);
            errors.extend(e);
        }
        (acked, latencies, errors, started.elapsed())
    });
    let peak_rss = server.peak_rss_kib();
    let server_cpu = server.cpu_secs();
    let test_cpu = cpu_secs("/proc/self/stat");
    let audit_jwk = server.audit_jwk.clone();
    let stopped = server.stop();
    let verify_started = Instant::now();

    let mut latencies = latencies;
    latencies.sort();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let throughput = acked.len() as f64 / elapsed.as_secs_f64();
    println!(
        "load: {} clients, {} signed calls in {:.1} s: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, \
         errors {}, server peak RSS {:.1} MiB, CPU so far: server {:.1} s, clients {:.1} s; \
         audit {}",
        LOAD_CLIENTS,
        acked.len(),
        elapsed.as_secs_f64(),
        throughput,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        errors.len(),
        peak_rss as f64 / 1024.0,
        server_cpu,
        test_cpu,
        stopped,
    );
    assert!(
        errors.is_empty(),
        "{} calls failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(acked.len(), LOAD_CALLS);

    // The log verifies, its last signed checkpoint covers every record,
    // and it holds exactly one allowed outcome per acknowledged call.
    let audit_dir = state.path().join("audit");
    let audit_key = verifying_key(&audit_jwk);
    let report = Verifier::new(&audit_dir)
        .checkpoint_verifier(&audit_key)
        .verify()
        .unwrap();
    let log = read_log(&audit_dir);
    println!(
        "load: audit log {} records in {} file(s), {} checkpoints (signatures checked), \
         events {:?}; verified and read in {:.1} s; whole test {:.1} s",
        report.records,
        report.files,
        report.checkpoints,
        log.by_kind,
        verify_started.elapsed().as_secs_f64(),
        test_started.elapsed().as_secs_f64(),
    );
    assert!(report.signatures_checked && report.torn_tail.is_none());
    assert_eq!(report.last_checkpoint_count, report.records);
    assert_eq!(log.records, report.records);
    let acked_set: BTreeSet<CallKey> = acked.iter().cloned().collect();
    assert_eq!(
        acked_set.len(),
        LOAD_CALLS,
        "request ids are unique per caller"
    );
    assert_eq!(
        log.allowed.values().sum::<usize>(),
        LOAD_CALLS,
        "one allowed outcome event per call"
    );
    assert!(log.allowed.values().all(|&n| n == 1));
    assert_eq!(
        log.allowed.keys().cloned().collect::<BTreeSet<_>>(),
        acked_set
    );
    // Per step: authenticate, request signature and replay
    // (authentication_succeeded), authorize, and the outcome; nothing else,
    // nothing denied.
    let n = LOAD_CALLS as u64;
    let expected: BTreeMap<String, u64> = [
        ("authentication_succeeded/success", 3 * n),
        ("authorization_succeeded/success", n),
        ("tool_invocation_completed/success", n),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(log.by_kind, expected);

    assert!(
        peak_rss < RSS_BOUND_KIB,
        "server peak RSS {peak_rss} KiB is over the bound of {RSS_BOUND_KIB} KiB"
    );
}

const FAULT_CLIENTS: usize = 64;
/// Each client's most calls (the kill comes long before).
const FAULT_MAX_PER_CLIENT: usize = 1_000;
/// Acknowledged calls before the kill.
const KILL_AFTER: usize = 4_000;

#[test]
fn sigkill_during_load() {
    let _serial = serial();
    let rt = runtime();
    let world = World::new();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let audit_dir = state.join("audit");
    let approvals = tmp.path().join("approvals.json");
    let server = Server::start(&world, &state, true, "call");
    assert_eq!(server.records_at_open, 0);
    let (provider_jwk, audit_jwk) = (server.provider_jwk.clone(), server.audit_jwk.clone());

    let (acked, acked_at_kill, errors, server_errors) = rt.block_on(async {
        // The user approves the tool once (a rule here); the pin goes to
        // the approval store file.
        let store = Arc::new(FileApprovalStore::open(&approvals).unwrap());
        let first = connect(
            &world,
            &server,
            "fault-setup",
            store.clone(),
            rule_approver(),
            Resume::Bounded,
        )
        .await;
        assert!(
            first
                .catalog()
                .await
                .unwrap()
                .get("echo")
                .unwrap()
                .is_usable()
        );
        first.close().await.unwrap();
        // One approval per tool the server serves (`echo` and `amount`).
        assert_eq!(store.list_all().unwrap().len(), 2);

        // The load clients approve nothing themselves: they can call only
        // because the stored approval matches what the server serves.
        let mut clients = Vec::new();
        for i in 0..FAULT_CLIENTS {
            let subject = format!("fault-{i:02}");
            let store: Arc<dyn ApprovalStore> = store.clone();
            clients.push((
                connect(
                    &world,
                    &server,
                    &subject,
                    store,
                    Arc::new(DenyAll),
                    Resume::Bounded,
                )
                .await,
                subject,
            ));
        }
        let count = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (client, subject) in clients {
            let count = count.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut error = None;
                for k in 0..FAULT_MAX_PER_CLIENT {
                    match tokio::time::timeout(Duration::from_secs(60), echo(&client, &subject, k))
                        .await
                    {
                        Ok(Ok(key)) => {
                            acked.push(key);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Err(e)) => {
                            let denied =
                                matches!(&e, ClientError::Service(ServiceError::McpError(_)));
                            error = Some((format!("{subject} call {k}: {e}"), denied));
                            break;
                        }
                        Err(_) => {
                            error = Some((format!("{subject} call {k}: no answer in 60 s"), false));
                            break;
                        }
                    }
                }
                // The session is gone with the server; closing is moot.
                drop(client);
                (acked, error)
            }));
        }
        // Kill once enough calls were acknowledged (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(300);
        while count.load(Ordering::SeqCst) < KILL_AFTER {
            assert!(
                Instant::now() < deadline,
                "only {} calls acknowledged in 300 s",
                count.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let acked_at_kill = count.load(Ordering::SeqCst);
        let to_kill = started.elapsed();
        server.kill();
        let killed = Instant::now();

        let mut acked = Vec::new();
        let mut errors = Vec::new();
        let mut server_errors = Vec::new();
        for t in tasks {
            let (a, e) = t.await.unwrap();
            acked.extend(a);
            match e {
                Some((msg, true)) => server_errors.push(msg),
                Some((msg, false)) => errors.push(msg),
                None => {}
            }
        }
        eprintln!(
            "fault: {acked_at_kill} calls acknowledged in {:.1} s ({:.0} calls/s durable); \
             all clients saw the kill within {:.1} s; first error: {:?}",
            to_kill.as_secs_f64(),
            acked_at_kill as f64 / to_kill.as_secs_f64(),
            killed.elapsed().as_secs_f64(),
            errors
                .first()
                .map(|e| e.chars().take(120).collect::<String>())
        );
        (acked, acked_at_kill, errors, server_errors)
    });
    // Every client was still calling when the server died, and no call was
    // refused by the server: the errors are the kill's.
    assert!(
        server_errors.is_empty(),
        "server refusals: {server_errors:?}"
    );
    assert_eq!(
        errors.len(),
        FAULT_CLIENTS,
        "every client lost the server: {errors:?}"
    );
    let acked_set: BTreeSet<CallKey> = acked.iter().cloned().collect();
    assert_eq!(
        acked_set.len(),
        acked.len(),
        "request ids are unique per caller"
    );

    // The log as the kill left it verifies up to its tail.
    let audit_key = verifying_key(&audit_jwk);
    let after_kill = Verifier::new(&audit_dir)
        .checkpoint_verifier(&audit_key)
        .verify()
        .unwrap_or_else(|e| panic!("log after SIGKILL: {e}"));
    let natural_torn_tail = after_kill.torn_tail.is_some();
    // A kill between two write(2) calls leaves whole lines; a short write
    // cut by the kill (or a power loss) leaves a partial one. Make sure the
    // repair path runs: if the kill left none, add the start of a record.
    let injected: &[u8] = b"{\"event\":{\"id\":\"0193-torn-by-the-fault-test\",\"kind\":\"tool_inv";
    if !natural_torn_tail {
        let (_, newest) = list_log_files(&audit_dir, "audit").unwrap().pop().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(newest)
            .unwrap();
        f.write_all(injected).unwrap();
        f.sync_all().unwrap();
    }
    let torn = Verifier::new(&audit_dir)
        .checkpoint_verifier(&audit_key)
        .verify()
        .unwrap();
    let torn_bytes = torn.torn_tail.as_ref().map(|t| t.bytes).unwrap();

    // Restart on the same directories: the log is repaired and the keys
    // are the ones persisted before the kill.
    let server = Server::start(&world, &state, true, "call");
    assert_eq!(
        server.provider_jwk, provider_jwk,
        "attestation key reloaded"
    );
    assert_eq!(server.audit_jwk, audit_jwk, "audit key reloaded");
    assert_eq!(
        server.records_at_open,
        after_kill.records + 1,
        "records + repair record"
    );

    // The approval file written before the kill loads, and a fresh client
    // that approves nothing finds the restarted server's tool approved:
    // same definition, same signer.
    let store = Arc::new(FileApprovalStore::open(&approvals).unwrap());
    let pins = store.list_all().unwrap();
    assert_eq!(pins.len(), 2, "one approval per tool");
    assert!(pins.iter().all(|p| p.key.server.as_str() == AUDIENCE));
    let after_key = rt.block_on(async {
        let store: Arc<dyn ApprovalStore> = store.clone();
        let client = connect(
            &world,
            &server,
            "fault-after",
            store,
            Arc::new(DenyAll),
            Resume::Bounded,
        )
        .await;
        let catalog = client.catalog().await.unwrap();
        let tool = catalog.get("echo").unwrap();
        assert!(tool.is_usable(), "{:?}", tool.refusal);
        let echo_pin = pins.iter().find(|p| p.name.as_str() == "echo").unwrap();
        assert_eq!(tool.digest, Some(echo_pin.digest));
        let key = echo(&client, "fault-after", 0).await.unwrap();
        client.close().await.unwrap();
        key
    });
    let stopped = server.stop();

    // The whole log verifies with its signed checkpoints, the repair is
    // recorded, and every acknowledged call is in it.
    let report = Verifier::new(&audit_dir)
        .checkpoint_verifier(&audit_key)
        .verify()
        .unwrap();
    assert!(report.torn_tail.is_none() && report.signatures_checked);
    assert_eq!(report.last_checkpoint_count, report.records);
    let log = read_log(&audit_dir);
    let repair = log
        .repairs
        .iter()
        .find(|e| e["reason_codes"] == json!(["torn_tail"]))
        .unwrap_or_else(|| panic!("no torn_tail repair recorded: {:?}", log.repairs));
    assert_eq!(repair["details"]["cut_bytes"], json!(torn_bytes));
    let missing: Vec<&CallKey> = acked_set
        .iter()
        .filter(|k| !log.allowed.contains_key(*k))
        .collect();
    let found = acked_set.len() - missing.len();
    let unacked_logged = log
        .allowed
        .keys()
        .filter(|k| !acked_set.contains(*k) && **k != after_key)
        .count();
    println!(
        "fault: {} clients, SIGKILL after {} acknowledged calls ({} acknowledged in all); \
         after restart {} of {} found in the audit log, {} missing; {} logged but never \
         acknowledged (in flight at the kill); torn tail: {} ({} bytes cut, repair recorded); \
         log after kill {} records, final {} records, {} checkpoints; keys and approval \
         store reloaded; restarted server {}",
        FAULT_CLIENTS,
        acked_at_kill,
        acked_set.len(),
        found,
        acked_set.len(),
        missing.len(),
        unacked_logged,
        if natural_torn_tail {
            "left by the kill"
        } else {
            "injected after the kill"
        },
        torn_bytes,
        after_kill.records,
        report.records,
        report.checkpoints,
        stopped,
    );
    assert!(
        missing.is_empty(),
        "acknowledged calls missing from the audit log: {missing:?}"
    );
    assert!(acked_set.len() >= KILL_AFTER);
    assert!(log.allowed.contains_key(&after_key));
    assert!(log.allowed.values().all(|&n| n == 1));
}
