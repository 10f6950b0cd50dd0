//! Standard output sink: one line per event, for container log collectors.

use std::io::{self, Write};

use super::Sink;
use crate::error::SinkError;
use crate::format::Format;
use crate::record::EncodedEvent;

/// Writes each event as one line to standard output.
///
/// Output is buffered and flushed at every flush/sync point of the
/// durability policy; "sync" for a pipe means "handed to the reader".
pub struct StdoutSink {
    format: Format,
    out: io::BufWriter<io::Stdout>,
    line: Vec<u8>,
}

impl StdoutSink {
    /// A stdout sink with `format`.
    pub fn new(format: Format) -> Self {
        StdoutSink {
            format,
            out: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            line: Vec::with_capacity(1024),
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError> {
        self.line.clear();
        self.format.render(event, &mut self.line);
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(|e| SinkError::io("stdout", "write", &e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(|e| SinkError::io("stdout", "flush", &e))
    }
}
