//! Fan-out: one sink that writes every event to several.
//!
//! An event counts as written only when every inner sink took it; the
//! first inner error fails the whole write, so a broken SIEM forwarder is
//! never hidden behind a working file.

use std::time::SystemTime;

use etdi_core::AuditEvent;

use super::Sink;
use crate::error::SinkError;
use crate::record::EncodedEvent;

/// Writes to every inner sink, in order.
#[derive(Default)]
pub struct FanOut {
    sinks: Vec<Box<dyn Sink>>,
}

impl FanOut {
    /// An empty fan-out.
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Adds a sink (builder style).
    pub fn with(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Adds a sink.
    pub fn push(&mut self, sink: Box<dyn Sink>) {
        self.sinks.push(sink);
    }

    /// Number of inner sinks.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// True if there are no inner sinks.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    fn each(
        &mut self,
        mut f: impl FnMut(&mut Box<dyn Sink>) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        self.sinks.iter_mut().try_for_each(&mut f)
    }
}

impl Sink for FanOut {
    fn name(&self) -> &str {
        "fan-out"
    }

    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError> {
        self.each(|s| s.write(event))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.each(|s| s.flush())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.each(|s| s.sync())
    }

    fn tick(&mut self, now: SystemTime) -> Result<(), SinkError> {
        self.each(|s| s.tick(now))
    }

    fn close(&mut self) -> Result<(), SinkError> {
        // Close every sink even if one fails, then report the first error.
        let mut first = None;
        for s in &mut self.sinks {
            if let Err(e) = s.close() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn take_notices(&mut self) -> Vec<AuditEvent> {
        self.sinks
            .iter_mut()
            .flat_map(|s| s.take_notices())
            .collect()
    }
}
