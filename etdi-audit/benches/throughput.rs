//! Audit log throughput with the hash chain on: buffered (one producer,
//! no fsync) and with group-commit durability (many concurrent producers
//! each waiting for its event to be fsynced). A reference in the same run
//! writes the same events as plain JSON lines without queue or chain, so
//! the printed ratio shows what the chain and the queue cost.
//!
//! Targets (issue 6): >= 400,000 events/s buffered, >= 50,000 events/s with
//! group commit.
// Test code: a panic is a test failure, which is what these assertions want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, Durability, event};
use etdi_core::{AuthMethod, Principal, ToolId, ToolRef};

static RESULTS: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

fn record(name: &'static str, events: u64, elapsed: Duration) {
    let rate = events as f64 / elapsed.as_secs_f64();
    if let Ok(mut r) = RESULTS.lock() {
        match r.iter_mut().find(|(n, _)| *n == name) {
            Some((_, best)) => *best = best.max(rate),
            None => r.push((name, rate)),
        }
    }
}

fn sample_event(i: u64) -> event::EventBuilder {
    let tool = ToolRef {
        id: ToolId::parse("com.example.files/read").unwrap(),
        name: Some("read".into()),
        version: None,
        digest: None,
    };
    let p = Principal::new("alice@example.com", AuthMethod::BearerJwt);
    event::authorization(&etdi_core::Decision::allow("scope:file:read"))
        .principal(&p)
        .tool(tool)
        .server("files.example.com")
        .request_id(i.to_string())
}

fn buffered(c: &mut Criterion) {
    const N: u64 = 100_000;
    let mut g = c.benchmark_group("audit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(N));

    g.bench_function("reference_plain_jsonl", |b| {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("plain.jsonl")).unwrap();
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, f);
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..N {
                    let mut e = sample_event(i).build();
                    e.id = etdi_audit::event::new_event_id();
                    serde_json::to_writer(&mut w, &e).unwrap();
                    w.write_all(b"\n").unwrap();
                }
                w.flush().unwrap();
            }
            let el = start.elapsed();
            record("reference: plain JSON lines, no queue/chain", N * iters, el);
            el
        });
    });

    g.bench_function("buffered_hash_chain", |b| {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::builder()
            .sink(FileSink::builder(dir.path()).open().unwrap())
            .durability(Durability::None)
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..N {
                    log.log(sample_event(i)).unwrap();
                }
                log.flush().unwrap();
            }
            let el = start.elapsed();
            record("buffered, hash chain, 1 producer", N * iters, el);
            el
        });
        log.shutdown().unwrap();
    });
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    const TASKS: u64 = 512;
    const PER_TASK: u64 = 40;
    const N: u64 = TASKS * PER_TASK;
    let mut g = c.benchmark_group("audit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(N));
    g.bench_function("group_commit_durable_512_producers", |b| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::builder()
            .sink(FileSink::builder(dir.path()).open().unwrap())
            .durability(Durability::GroupCommit {
                interval: Duration::from_millis(5),
            })
            .capacity(8192)
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(async {
                    let mut tasks = Vec::new();
                    for t in 0..TASKS {
                        let log = log.clone();
                        tasks.push(tokio::spawn(async move {
                            for i in 0..PER_TASK {
                                log.log_durable_async(sample_event(t * PER_TASK + i))
                                    .await
                                    .unwrap();
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
            }
            let el = start.elapsed();
            record(
                "group commit, every event fsynced before ack, 512 producers",
                N * iters,
                el,
            );
            el
        });
        let stats = log.stats();
        println!(
            "group commit: {} events in {} fsync rounds ({:.0} events per fsync)",
            stats.written,
            stats.syncs,
            stats.written as f64 / stats.syncs.max(1) as f64
        );
        log.shutdown().unwrap();
    });
    g.finish();
}

fn report(_: &mut Criterion) {
    let results = RESULTS.lock().map(|r| r.clone()).unwrap_or_default();
    let reference = results
        .iter()
        .find(|(n, _)| n.starts_with("reference"))
        .map(|(_, r)| *r);
    println!("\netdi-audit throughput (best sample):");
    for (name, rate) in &results {
        match reference {
            Some(base) if !name.starts_with("reference") => println!(
                "  {name}: {rate:>12.0} events/s ({:.2}x the plain-JSON reference)",
                rate / base
            ),
            _ => println!("  {name}: {rate:>12.0} events/s"),
        }
    }
}

criterion_group!(benches, buffered, group_commit, report);
criterion_main!(benches);
