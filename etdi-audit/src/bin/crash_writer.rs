//! Test helper for `tests/crash.rs`: writes audit events into a log
//! directory from several threads and prints `ACK <n>` after each event
//! acknowledged as durable, until it is killed (or a time bound passes).
//!
//! Usage: `etdi-audit-crash-writer <dir> <first-n> <durability>` where
//! durability is `group` or `every`. Prints `READY` once the log is open.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, Durability, HmacCheckpointKey, event};
use etdi_core::{EventKind, Outcome};

/// The checkpoint key the crash test verifies with.
const KEY: [u8; 32] = [7u8; 32];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(first), Some(mode)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: etdi-audit-crash-writer <dir> <first-n> <group|every>");
        std::process::exit(2);
    };
    let first: u64 = first.parse().unwrap_or(0);
    let durability = match mode.as_str() {
        "every" => Durability::EveryEvent,
        _ => Durability::GroupCommit {
            interval: Duration::from_millis(2),
        },
    };
    let sink = FileSink::builder(dir)
        .max_file_bytes(16 * 1024)
        .checkpoint_signer(Arc::new(HmacCheckpointKey::new("crash", KEY.to_vec())))
        .checkpoint_every_records(40)
        .open();
    let log = match sink.map(|s| AuditLog::builder().sink(s).durability(durability).build()) {
        Ok(Ok(log)) => log,
        Ok(Err(e)) => fail(&e),
        Err(e) => fail(&e),
    };
    println!("READY");
    let next = AtomicU64::new(first);
    let bound = Instant::now() + Duration::from_secs(20);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (log, next) = (&log, &next);
            s.spawn(move || {
                while Instant::now() < bound {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let e =
                        event::EventBuilder::new(EventKind::ToolInvocationRequested, Outcome::Info)
                            .detail("n", n)
                            .detail("thread", t);
                    // Every third event is logged without waiting, so the
                    // log also holds unacknowledged events when killed.
                    let result = if n % 3 == 0 {
                        log.log(e)
                    } else {
                        log.log_durable(e).map(|()| {
                            // One write per line: a pipe keeps it whole.
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "ACK {n}");
                            let _ = out.flush();
                        })
                    };
                    if let Err(e) = result {
                        fail(&e);
                    }
                }
            });
        }
    });
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("crash writer: {e}");
    std::process::exit(3);
}
