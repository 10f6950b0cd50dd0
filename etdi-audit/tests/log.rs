//! The queue and writer: backpressure, lossy mode, durability acks,
//! sticky failures, fan-out and formats.
// Test code: a panic is a test failure, which is what these assertions want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use etdi_audit::sink::{FanOut, MemorySink, Sink};
use etdi_audit::{
    AuditError, AuditLog, Durability, EncodedEvent, Format, Overflow, SinkError, event,
};
use etdi_core::{AuthMethod, EventKind, Outcome, Principal};
use serde_json::Value;

/// Shared view of what a [`ProbeSink`] saw.
#[derive(Default)]
struct Probe {
    written: Vec<String>,
    /// Number of events written when the last sync happened.
    synced: usize,
    syncs: u64,
}

/// A sink that can be slow, fail on a given write, and records syncs.
struct ProbeSink {
    probe: Arc<Mutex<Probe>>,
    delay: Duration,
    fail_at: Option<usize>,
    gate: Option<Arc<Barrier>>,
}

impl ProbeSink {
    fn new(delay: Duration) -> (Self, Arc<Mutex<Probe>>) {
        let probe = Arc::new(Mutex::new(Probe::default()));
        (
            ProbeSink {
                probe: probe.clone(),
                delay,
                fail_at: None,
                gate: None,
            },
            probe,
        )
    }
}

impl Sink for ProbeSink {
    fn name(&self) -> &str {
        "probe"
    }
    fn write(&mut self, e: &EncodedEvent) -> Result<(), SinkError> {
        if let Some(g) = self.gate.take() {
            g.wait();
        }
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut p = self.probe.lock().unwrap();
        if self.fail_at == Some(p.written.len()) {
            return Err(SinkError::new("probe", "disk on fire"));
        }
        p.written.push(e.event().id.clone());
        Ok(())
    }
    fn sync(&mut self) -> Result<(), SinkError> {
        let mut p = self.probe.lock().unwrap();
        p.synced = p.written.len();
        p.syncs += 1;
        Ok(())
    }
}

fn ev(i: u64) -> event::EventBuilder {
    event::EventBuilder::new(EventKind::ToolInvocationRequested, Outcome::Info).detail("n", i)
}

#[test]
fn a_slow_sink_makes_producers_wait_and_nothing_is_lost() {
    let (sink, probe) = ProbeSink::new(Duration::from_micros(300));
    let log = AuditLog::builder().sink(sink).capacity(4).build().unwrap();
    let producers = 4;
    let per = 150u64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..producers {
            s.spawn(|| {
                for i in 0..per {
                    log.log(ev(i)).unwrap();
                }
            });
        }
    });
    let produce_time = start.elapsed();
    let stats = log.stats();
    log.shutdown().unwrap();
    let sent = producers * per;
    assert_eq!(probe.lock().unwrap().written.len() as u64, sent);
    assert_eq!(stats.enqueued, sent);
    assert_eq!(stats.dropped, 0);
    assert!(stats.producer_waits > 0, "{stats:?}");
    // The producers could not run ahead of the sink by more than the queue
    // (plus the batch being written): they were held back.
    assert!(
        produce_time >= Duration::from_micros(300) * (sent as u32 - 16),
        "{produce_time:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_producers_wait_without_blocking_and_nothing_is_lost() {
    let (sink, probe) = ProbeSink::new(Duration::from_micros(200));
    let log = AuditLog::builder().sink(sink).capacity(4).build().unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                if i % 10 == 0 {
                    log.log_durable_async(ev(t * 1000 + i)).await.unwrap();
                } else {
                    log.log_async(ev(t * 1000 + i)).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    log.flush_async().await.unwrap();
    let stats = log.stats();
    assert_eq!(probe.lock().unwrap().written.len(), 400);
    assert!(stats.producer_waits > 0);
    assert_eq!(stats.written, 400);
}

#[test]
fn lossy_mode_drops_and_records_how_many() {
    let (sink, probe) = ProbeSink::new(Duration::from_millis(2));
    let (mem, records) = MemorySink::new(Format::Native);
    let log = AuditLog::builder()
        .sink(FanOut::new().with(sink).with(mem))
        .capacity(2)
        .overflow(Overflow::DropNewest)
        .build()
        .unwrap();
    let mut dropped = 0u64;
    for i in 0..200 {
        match log.log(ev(i)) {
            Ok(()) => {}
            Err(AuditError::Dropped) => dropped += 1,
            Err(e) => panic!("{e}"),
        }
    }
    log.shutdown().unwrap();
    assert!(dropped > 0);
    let evs = records.events();
    let notices: u64 = evs
        .iter()
        .filter(|e| e.kind == EventKind::EventsDropped)
        .map(|e| e.details["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(notices, dropped);
    let kept = evs
        .iter()
        .filter(|e| e.kind == EventKind::ToolInvocationRequested)
        .count() as u64;
    assert_eq!(kept + dropped, 200);
    assert_eq!(probe.lock().unwrap().written.len(), evs.len());
}

#[test]
fn durable_callers_are_released_only_after_their_batch_is_synced() {
    let (sink, probe) = ProbeSink::new(Duration::ZERO);
    let log = AuditLog::builder()
        .sink(sink)
        .durability(Durability::GroupCommit {
            interval: Duration::from_secs(3600),
        })
        .build()
        .unwrap();
    let bad = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (log, probe, bad) = (&log, &probe, &bad);
            s.spawn(move || {
                for i in 0..100 {
                    let e = ev(t * 1000 + i).id(format!("{t}-{i}"));
                    log.log_durable(e).unwrap();
                    let p = probe.lock().unwrap();
                    let pos = p.written.iter().position(|id| *id == format!("{t}-{i}"));
                    if pos.is_none_or(|pos| pos >= p.synced) {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(bad.load(Ordering::Relaxed), 0);
    let p = probe.lock().unwrap();
    // Concurrent callers shared syncs (group commit), yet an interval of an
    // hour never delayed them.
    assert!(p.syncs <= 800, "{}", p.syncs);
    drop(p);
    log.shutdown().unwrap();
}

#[test]
fn non_durable_events_are_synced_within_the_interval() {
    let (sink, probe) = ProbeSink::new(Duration::ZERO);
    let log = AuditLog::builder()
        .sink(sink)
        .durability(Durability::GroupCommit {
            interval: Duration::from_millis(20),
        })
        .build()
        .unwrap();
    log.log(ev(1)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while probe.lock().unwrap().synced < 1 {
        assert!(Instant::now() < deadline, "never synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    log.shutdown().unwrap();
}

#[test]
fn every_event_durability_syncs_each_event() {
    let (sink, probe) = ProbeSink::new(Duration::ZERO);
    let log = AuditLog::builder()
        .sink(sink)
        .durability(Durability::EveryEvent)
        .build()
        .unwrap();
    for i in 0..20 {
        log.log(ev(i)).unwrap();
    }
    log.flush().unwrap();
    assert!(probe.lock().unwrap().syncs >= 20);
    log.shutdown().unwrap();
}

#[test]
fn no_durability_never_syncs_but_acknowledges_after_handoff() {
    let (sink, probe) = ProbeSink::new(Duration::ZERO);
    let log = AuditLog::builder()
        .sink(sink)
        .durability(Durability::None)
        .build()
        .unwrap();
    for i in 0..20 {
        log.log_durable(ev(i)).unwrap();
    }
    assert_eq!(probe.lock().unwrap().written.len(), 20);
    assert_eq!(probe.lock().unwrap().syncs, 0);
    log.shutdown().unwrap();
}

#[test]
fn a_failing_sink_stops_the_log_loudly() {
    let (mut sink, _probe) = ProbeSink::new(Duration::ZERO);
    sink.fail_at = Some(3);
    let log = AuditLog::builder().sink(sink).build().unwrap();
    for i in 0..3 {
        log.log_durable(ev(i)).unwrap();
    }
    assert!(matches!(log.log_durable(ev(3)), Err(AuditError::Failed(_))));
    assert!(matches!(log.log(ev(4)), Err(AuditError::Failed(_))));
    assert!(matches!(log.shutdown(), Err(AuditError::Failed(_))));
}

#[test]
fn try_log_and_timeouts_never_wait_past_their_bound() {
    let (mut sink, probe) = ProbeSink::new(Duration::ZERO);
    let gate = Arc::new(Barrier::new(2));
    sink.gate = Some(gate.clone());
    let log = AuditLog::builder().sink(sink).capacity(2).build().unwrap();
    // The writer takes the first event and blocks on the gate; two more
    // fill the queue.
    log.log(ev(0)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    log.log(ev(1)).unwrap();
    log.log(ev(2)).unwrap();
    assert_eq!(log.try_log(ev(3)), Err(AuditError::Full));
    let t = Instant::now();
    assert_eq!(
        log.log_timeout(ev(3), Duration::from_millis(50)),
        Err(AuditError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    gate.wait();
    log.log_timeout(ev(3), Duration::from_secs(5)).unwrap();
    log.log_durable_timeout(ev(4), Duration::from_secs(5))
        .unwrap();
    assert_eq!(probe.lock().unwrap().written.len(), 5);
    log.shutdown().unwrap();
    assert_eq!(log.log(ev(5)), Err(AuditError::Closed));
}

#[test]
fn every_sink_gets_every_event_in_its_format() {
    let (native, n) = MemorySink::new(Format::Native);
    let (ocsf, o) = MemorySink::new(Format::Ocsf);
    let (ecs, e) = MemorySink::new(Format::Ecs);
    let log = AuditLog::builder()
        .sink(native)
        .sink(ocsf)
        .sink(ecs)
        .trace_id_source(|| Some("4bf92f3577b34da6a3ce929d0e0e4736".into()))
        .build()
        .unwrap();
    let alice = Principal::new("alice", AuthMethod::BearerJwt);
    log.log(event::authentication_succeeded(&alice)).unwrap();
    log.log(event::authentication_failed("expired", "token expired"))
        .unwrap();
    log.log(event::authorization(&etdi_core::Decision::allow("r")))
        .unwrap();
    log.log(event::replay_detected("nonce")).unwrap();
    log.shutdown().unwrap();
    assert_eq!((n.len(), o.len(), e.len()), (4, 4, 4));
    let native: Vec<Value> = n
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = native.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.len() == 36));
    assert_eq!(native[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let classes: Vec<u64> = o
        .lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["class_uid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(classes, vec![3002, 3002, 3003, 6003]);
    let ocsf_ids: Vec<String> = o
        .lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ocsf_ids, ids);
    let ecs0: Value = serde_json::from_str(&e.lines()[0]).unwrap();
    assert_eq!(ecs0["event"]["id"], ids[0]);
    assert_eq!(ecs0["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn oversized_events_are_refused_to_the_caller() {
    let (mem, records) = MemorySink::new(Format::Native);
    let log = AuditLog::builder().sink(mem).build().unwrap();
    let big = "x".repeat(etdi_audit::record::MAX_EVENT_BYTES);
    assert!(matches!(
        log.log(ev(0).detail("blob", big)),
        Err(AuditError::TooLarge { .. })
    ));
    log.shutdown().unwrap();
    assert!(records.is_empty());
}
