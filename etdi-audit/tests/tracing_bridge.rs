//! The `tracing` bridge sink and the default trace id (the current span).
//! In its own test binary because it installs a global subscriber.
// Test code: a panic is a test failure, which is what these assertions want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use etdi_audit::sink::{MemorySink, TracingSink};
use etdi_audit::{AuditLog, Format, event};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A minimal subscriber: numbers spans, tracks the entered one per thread,
/// and keeps the fields of events with target `etdi_audit`.
#[derive(Default)]
struct Capture {
    next: AtomicU64,
    events: Mutex<Vec<(tracing::Level, String)>>,
    meta: Mutex<std::collections::HashMap<u64, &'static Metadata<'static>>>,
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?};", field.name(), value));
    }
}

impl Subscriber for &'static Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 0x1000;
        self.meta.lock().unwrap().insert(id, a.metadata());
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        if e.metadata().target() == "etdi_audit" {
            let mut f = Fields(String::new());
            e.record(&mut f);
            self.events
                .lock()
                .unwrap()
                .push((*e.metadata().level(), f.0));
        }
    }
    fn enter(&self, id: &Id) {
        STACK.with(|s| s.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, _: &Id) {
        STACK.with(|s| s.borrow_mut().pop());
    }
    fn current_span(&self) -> tracing_core::span::Current {
        let top = STACK.with(|s| s.borrow().last().copied());
        let meta = top.and_then(|id| self.meta.lock().unwrap().get(&id).copied());
        match (top, meta) {
            (Some(id), Some(m)) => tracing_core::span::Current::new(Id::from_u64(id), m),
            _ => tracing_core::span::Current::none(),
        }
    }
}

#[test]
fn events_reach_tracing_and_carry_the_current_span_id() {
    let capture: &'static Capture = Box::leak(Box::default());
    tracing::subscriber::set_global_default(capture).unwrap();

    let (mem, records) = MemorySink::new(Format::Native);
    let log = AuditLog::builder()
        .sink(TracingSink::new(Format::Ecs))
        .sink(mem)
        .build()
        .unwrap();
    let span = tracing::info_span!("request");
    let id = {
        let _g = span.enter();
        log.log(event::replay_detected("nonce reused")).unwrap();
        span.id().unwrap().into_u64()
    };
    log.log(event::key_rotated(None, "k2")).unwrap();
    log.shutdown().unwrap();

    let evs = records.events();
    assert_eq!(evs[0].trace_id, Some(format!("{id:016x}")));
    assert_eq!(evs[1].trace_id, None);

    let seen = capture.events.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, tracing::Level::WARN);
    assert!(
        seen[0].1.contains("audit_kind=\"replay_detected\""),
        "{}",
        seen[0].1
    );
    assert!(
        seen[0].1.contains("audit_record={\"@timestamp\""),
        "{}",
        seen[0].1
    );
    assert_eq!(seen[1].0, tracing::Level::INFO);
}
