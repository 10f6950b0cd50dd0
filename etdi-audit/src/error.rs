//! Errors of the audit log, its sinks and its verifier.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Why a sink could not write, flush or sync.
///
/// Sink errors are sticky: once a sink fails, the log refuses further events
/// with [`AuditError::Failed`] instead of pretending to record them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit sink `{sink}` failed: {message}")]
pub struct SinkError {
    sink: String,
    message: String,
}

impl SinkError {
    /// A sink error with a message for people.
    pub fn new(sink: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError {
            sink: sink.into(),
            message: message.into(),
        }
    }

    /// An I/O error while doing `what` (e.g. "append to audit-0.jsonl").
    pub fn io(sink: impl Into<String>, what: impl fmt::Display, err: &io::Error) -> Self {
        SinkError::new(sink, format!("{what}: {err}"))
    }

    /// The sink that failed.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why an event was not (or not yet known to be) recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log was shut down; nothing more is accepted.
    #[error("the audit log is closed")]
    Closed,
    /// A sink failed earlier; the log accepts nothing more until it is
    /// rebuilt. Events acknowledged before the failure are unaffected.
    #[error("the audit log stopped after a sink failure: {0}")]
    Failed(Arc<SinkError>),
    /// Lossy mode only: the queue was full and this event was dropped. The
    /// log records an `events_dropped` event with the count.
    #[error("audit queue full: event dropped (lossy mode)")]
    Dropped,
    /// `try_log` only: the queue is full and the caller asked not to wait.
    #[error("audit queue full")]
    Full,
    /// The caller's deadline passed while waiting for queue space or
    /// durability. A timed-out event that was already queued is still
    /// written; only the acknowledgement is missing.
    #[error("timed out waiting for the audit log")]
    Timeout,
    /// The event's canonical form is larger than the log accepts.
    #[error("audit event is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the canonical event.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The event could not be serialised.
    #[error("audit event cannot be encoded: {0}")]
    Encode(String),
}

/// Why a log could not be opened or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The last complete record of the log is not a valid record. A crash
    /// cannot cause this (a crash only leaves an incomplete last line, which
    /// is repaired); it means the file was edited. Run `verify` to find the
    /// first bad record.
    #[error("audit log {path} ends with an invalid record at line {line}: {detail}")]
    CorruptTail {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The last checkpoint covers more records than the log holds: records
    /// that were durable when the checkpoint was signed are gone.
    #[error(
        "audit log {path} holds {records} records but its last checkpoint covers {checkpoint_count}: the log was truncated"
    )]
    BehindCheckpoint {
        /// The log directory.
        path: String,
        /// Records present.
        records: u64,
        /// Records the last checkpoint covers.
        checkpoint_count: u64,
    },
    /// The configuration is inconsistent.
    #[error("invalid audit configuration: {0}")]
    Config(String),
    /// A sink failed while writing the startup events.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl OpenError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: io::Error) -> Self {
        OpenError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}
