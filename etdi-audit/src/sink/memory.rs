//! In-memory sink for tests: keeps every event and its rendered line.

use std::sync::{Arc, Mutex, MutexGuard};

use etdi_core::AuditEvent;

use super::Sink;
use crate::error::SinkError;
use crate::format::Format;
use crate::record::EncodedEvent;

#[derive(Default)]
struct Store {
    events: Vec<AuditEvent>,
    lines: Vec<String>,
    syncs: u64,
}

/// Keeps events in memory; read them through the [`MemoryRecords`] handle.
pub struct MemorySink {
    format: Format,
    store: Arc<Mutex<Store>>,
}

/// A handle to what a [`MemorySink`] received; cheap to clone.
#[derive(Clone)]
pub struct MemoryRecords {
    store: Arc<Mutex<Store>>,
}

impl MemorySink {
    /// A sink rendering with `format`, and the handle to read it.
    pub fn new(format: Format) -> (Self, MemoryRecords) {
        let store = Arc::new(Mutex::new(Store::default()));
        (
            MemorySink {
                format,
                store: store.clone(),
            },
            MemoryRecords { store },
        )
    }
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding this lock cannot leave the vectors half-updated
    // in a way that matters for a test sink, so a poisoned lock is reused.
    store.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryRecords {
    /// Every event received, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        lock(&self.store).events.clone()
    }

    /// Every rendered line (without newline), in order.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.store).lines.clone()
    }

    /// Number of events received.
    pub fn len(&self) -> usize {
        lock(&self.store).events.len()
    }

    /// True if nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times the writer asked for durability.
    pub fn syncs(&self) -> u64 {
        lock(&self.store).syncs
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError> {
        let mut line = Vec::new();
        self.format.render(event, &mut line);
        let mut s = lock(&self.store);
        s.events.push(event.event().clone());
        s.lines.push(String::from_utf8_lossy(&line).into_owned());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        lock(&self.store).syncs += 1;
        Ok(())
    }
}
