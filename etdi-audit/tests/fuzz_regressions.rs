//! Inputs found by the fuzz targets in `fuzz/` (target `audit_log`), kept
//! as ordinary tests so they run without the fuzz harness.
// Test code: a panic is a test failure, which is what these assertions want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;

use common::*;
use etdi_audit::{Checkpoint, TamperKind, Verifier, VerifyError};
use serde_json::Value;

/// Found by the stable smoke run of `audit_log`: `Checkpoint::parse`
/// accepts an integer that the canonical form cannot carry exactly
/// (`18446744073709551615` is beyond 2^53), so the checkpoint cannot be
/// written back byte for byte. Such a checkpoint must never verify, and
/// the log verifier must report it, for each numeric field.
#[test]
fn a_checkpoint_with_an_integer_beyond_the_canonical_range_never_verifies() {
    for field in ["v", "count"] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 20);
        let path = dir.path().join("audit.checkpoints.jsonl");
        let text = fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let last = lines.len() - 1;
        let mut cp: Value = serde_json::from_str(&lines[last]).unwrap();
        cp[field] = Value::from(u64::MAX);
        lines[last] = serde_json::to_string(&cp).unwrap();
        fs::write(&path, lines.join("\n") + "\n").unwrap();

        // An unknown version is refused when parsed; a count beyond the
        // canonical range parses but never verifies.
        match Checkpoint::parse(lines[last].as_bytes()) {
            Ok(parsed) => {
                assert_eq!(
                    field,
                    "count",
                    "a checkpoint of version {} parsed",
                    u64::MAX
                );
                assert!(parsed.verify(&key()).is_err(), "{field}: it verified");
            }
            Err(e) => {
                assert_eq!(field, "v", "{field}: {e}");
                assert!(e.contains("unsupported checkpoint version"), "{e}");
            }
        }

        let k = key();
        match Verifier::new(dir.path()).checkpoint_verifier(&k).verify() {
            Err(VerifyError::Tampered(f)) => {
                assert!(
                    matches!(f.kind, TamperKind::BadCheckpoint { line, .. } if line == last + 1),
                    "{field}: {f}"
                );
            }
            other => panic!("{field}: expected a bad checkpoint, got {other:?}"),
        }
    }
}
