//! Where events go: the [`Sink`] trait and its implementations.
//!
//! Sinks run on the log's writer thread only, so they need `Send` but not
//! `Sync`, and may block: the queue in front of them absorbs bursts and
//! pushes back on producers when a sink is slow.

pub mod fanout;
pub mod file;
pub mod memory;
pub mod stdout;
pub mod tracing_bridge;

use std::time::SystemTime;

use etdi_core::AuditEvent;

use crate::error::SinkError;
use crate::record::EncodedEvent;

pub use fanout::FanOut;
pub use file::{FileSink, FileSinkBuilder};
pub use memory::{MemoryRecords, MemorySink};
pub use stdout::StdoutSink;
pub use tracing_bridge::TracingSink;

/// A destination for audit events.
///
/// The writer calls `write` for each event in order, then `flush`/`sync`
/// as the durability policy requires. A sink returns an error rather than
/// skip an event; the log then stops accepting events (errors are sticky).
pub trait Sink: Send {
    /// A short name for error messages.
    fn name(&self) -> &str;

    /// Writes one event (it may stay buffered until `flush`).
    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError>;

    /// Hands buffered output to the operating system (survives a crash of
    /// this process, not of the machine).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Makes everything written so far durable (fsync or equivalent).
    fn sync(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    /// Called by the writer at least once a second and when idle: time
    /// based rotation and checkpoints happen here.
    fn tick(&mut self, _now: SystemTime) -> Result<(), SinkError> {
        Ok(())
    }

    /// Final sync and cleanup at shutdown.
    fn close(&mut self) -> Result<(), SinkError> {
        self.sync()
    }

    /// Events the sink wants recorded about itself (e.g. `log_repaired`
    /// after cutting a torn tail). The log writes them through every sink
    /// when it starts, before any caller's event.
    fn take_notices(&mut self) -> Vec<AuditEvent> {
        Vec::new()
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError> {
        (**self).write(event)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn sync(&mut self) -> Result<(), SinkError> {
        (**self).sync()
    }
    fn tick(&mut self, now: SystemTime) -> Result<(), SinkError> {
        (**self).tick(now)
    }
    fn close(&mut self) -> Result<(), SinkError> {
        (**self).close()
    }
    fn take_notices(&mut self) -> Vec<AuditEvent> {
        (**self).take_notices()
    }
}
