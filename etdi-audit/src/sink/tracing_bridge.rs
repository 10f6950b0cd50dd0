//! A bridge to `tracing`: each audit event becomes a tracing event with
//! target `etdi_audit`, so an application's existing subscriber (and its
//! exporters) sees the audit trail too.
//!
//! This is a convenience copy, not a durable record: a subscriber may
//! filter or drop events, so pair it with a file sink where loss matters.

use etdi_core::Outcome;

use super::Sink;
use crate::error::SinkError;
use crate::format::Format;
use crate::record::EncodedEvent;

/// Emits each event through `tracing` at INFO (success, info) or WARN
/// (denied, failure), with fields `audit_id`, `audit_kind`,
/// `audit_outcome` and the rendered event as `audit_record`.
pub struct TracingSink {
    format: Format,
    line: Vec<u8>,
}

impl TracingSink {
    /// A bridge rendering `audit.record` with `format`.
    pub fn new(format: Format) -> Self {
        TracingSink {
            format,
            line: Vec::with_capacity(1024),
        }
    }
}

impl Sink for TracingSink {
    fn name(&self) -> &str {
        "tracing"
    }

    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError> {
        self.line.clear();
        self.format.render(event, &mut self.line);
        let record = String::from_utf8_lossy(&self.line);
        let e = event.event();
        let kind = e.kind.as_str();
        let reason = e.reason.as_deref().unwrap_or("");
        match e.outcome {
            Outcome::Denied | Outcome::Failure => tracing::warn!(
                target: "etdi_audit",
                audit_id = %e.id,
                audit_kind = kind,
                audit_outcome = ?e.outcome,
                audit_record = %record,
                "{kind} {reason}"
            ),
            Outcome::Success | Outcome::Info => tracing::info!(
                target: "etdi_audit",
                audit_id = %e.id,
                audit_kind = kind,
                audit_outcome = ?e.outcome,
                audit_record = %record,
                "{kind} {reason}"
            ),
        }
        Ok(())
    }
}
