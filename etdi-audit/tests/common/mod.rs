//! Helpers shared by the integration tests: building a small signed log
//! and editing its files the way an attacker would.
#![allow(dead_code)]
// Test code: a panic is a test failure, which is what these assertions want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use etdi_audit::sink::FileSink;
use etdi_audit::sink::file::list_log_files;
use etdi_audit::{AuditLog, Durability, HmacCheckpointKey, event};
use etdi_core::canonical::canonical_json;
use etdi_core::{Digest, EventKind, Outcome};
use serde_json::Value;

pub fn key() -> HmacCheckpointKey {
    HmacCheckpointKey::new("test-key", vec![42u8; 32])
}

/// Writes `n` events into `dir` with small files (rotation) and a
/// checkpoint every 10 records; returns after shutdown.
pub fn write_log(dir: &Path, n: u64) {
    let sink = FileSink::builder(dir)
        .max_file_bytes(4 * 1024)
        .checkpoint_signer(Arc::new(key()))
        .checkpoint_every_records(10)
        .open()
        .unwrap();
    let log = AuditLog::builder()
        .sink(sink)
        .durability(Durability::GroupCommit {
            interval: std::time::Duration::from_millis(1),
        })
        .build()
        .unwrap();
    for i in 0..n {
        log.log_durable(
            event::EventBuilder::new(EventKind::ToolInvocationRequested, Outcome::Info)
                .reason(format!("event {i}"))
                .detail("n", i),
        )
        .unwrap();
    }
    log.shutdown().unwrap();
}

pub fn files(dir: &Path) -> Vec<PathBuf> {
    list_log_files(dir, "audit")
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

pub fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    fs::write(path, text).unwrap();
}

pub fn seq_of(line: &str) -> u64 {
    let v: Value = serde_json::from_str(line).unwrap();
    v["seq"].as_u64().unwrap()
}

/// Recomputes a record line's hash after an edit (what an attacker who
/// knows the format does).
pub fn rehash(mut v: Value) -> String {
    let obj = v.as_object_mut().unwrap();
    obj.remove("hash");
    let h = Digest::of(&canonical_json(&v).unwrap());
    v.as_object_mut()
        .unwrap()
        .insert("hash".into(), h.to_string().into());
    String::from_utf8(canonical_json(&v).unwrap()).unwrap()
}

pub fn hash_of(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["hash"].as_str().unwrap().to_owned()
}

/// Newline-terminated lines only (a torn tail is left out).
pub fn complete_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let end = text.rfind('\n').map_or(0, |i| i + 1);
    text[..end].lines().map(str::to_owned).collect()
}

/// All complete records as (file, line index, text), in log order.
pub fn all_records(dir: &Path) -> Vec<(PathBuf, usize, String)> {
    let mut out = Vec::new();
    for f in files(dir) {
        for (i, l) in complete_lines(&f).into_iter().enumerate() {
            out.push((f.clone(), i, l));
        }
    }
    out
}

/// Event details as recorded, in log order.
pub fn events(dir: &Path) -> Vec<Value> {
    all_records(dir)
        .into_iter()
        .map(|(_, _, l)| serde_json::from_str::<Value>(&l).unwrap()["event"].clone())
        .collect()
}
