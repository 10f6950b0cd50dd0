//! Reading audit logs: record lines (`record::parse_record`), checkpoint
//! lines (`Checkpoint::parse`), and the offline `Verifier` over a log
//! directory with the fixture's checkpoint key.
//!
//! Input: the log file's bytes, optionally followed by a NUL byte and the
//! checkpoint file's bytes. Both are written to a scratch directory that
//! the verifier reads.
//!
//! Invariants: no panic; a record's `hash_ok` agrees with the writer's own
//! hash function over the canonical event (the generic canonical form and
//! the hand-written one cannot drift apart); a record re-serialised parses
//! back the same, and so does a checkpoint unless it cannot be verified
//! either; and a log verifies only if each of
//! its records is the fixture's record at that position (nothing altered,
//! inserted, reordered or forged; records may only be missing from the end
//! past the last checkpoint).

use std::fs;
use std::path::{Path, PathBuf};

use etdi_audit::Verifier;
use etdi_audit::record::{parse_record, record_hash, write_record_line};
use etdi_audit::{Checkpoint, VerifyError};
use etdi_core::canonical::canonical_value;

use super::seed;
use crate::fixture::{AUDIT_PREFIX, fixture};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "audit_log",
    about: "audit log records, checkpoints and the offline Verifier",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, DICTIONARY],
};

const DICTIONARY: &[&[u8]] = &[
    b"\n",
    b"\x00",
    b"\"event\"",
    b"\"hash\"",
    b"\"prev\"",
    b"\"seq\"",
    b"\"v\"",
    b"\"sha256:",
    b"0000000000000000000000000000000000000000000000000000000000000000",
    b"\"count\"",
    b"\"head\"",
    b"\"log\"",
    b"\"kid\"",
    b"\"alg\"",
    b"\"sig\"",
    b"\"time\"",
    b"\"HS256\"",
    b"\"audit\"",
    b"\"kind\"",
    b"\"outcome\"",
    b"\"details\"",
];

/// Where the scratch directory of this process lives: memory-backed
/// `/dev/shm` when there is one (rewriting a file on a disk file system
/// costs milliseconds, which would make this target a hundred times slower
/// than the others), the system temporary directory otherwise.
fn scratch_path() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("etdi-fuzz-audit-{}", std::process::id()))
}

/// Removes the scratch directory, if this process left one.
pub fn cleanup() {
    let _ = fs::remove_dir_all(scratch_path());
}

fn write(path: &Path, bytes: Option<&[u8]>) {
    let result = match bytes {
        Some(b) => fs::write(path, b),
        None => match fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    if let Err(e) = result {
        panic!("fuzz harness: {}: {e}", path.display());
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let (log, checkpoints) = match data.iter().position(|&b| b == 0) {
        Some(i) => (data.get(..i).unwrap_or_default(), data.get(i + 1..)),
        None => (data, None),
    };

    for line in log.split(|&b| b == b'\n') {
        check_record_line(line);
    }
    for line in checkpoints.unwrap_or_default().split(|&b| b == b'\n') {
        if let Ok(cp) = Checkpoint::parse(line) {
            let again = cp
                .to_line()
                .ok()
                .and_then(|l| Checkpoint::parse(l.strip_suffix(b"\n").unwrap_or(&l)).ok());
            // The parser accepts integers the canonical form cannot carry
            // (beyond 2^53); such a checkpoint cannot be written back, and
            // then it must not verify either (etdi-audit's
            // tests/fuzz_regressions.rs).
            if again.as_ref() != Some(&cp) {
                assert!(
                    cp.verify(&f.audit.key).is_err(),
                    "a checkpoint that does not round-trip verified: {cp:?}"
                );
            }
        }
    }

    // The directory lives only while the verifier reads it, so that no
    // driver (libFuzzer never returns to us) leaves it behind.
    let dir = scratch_path();
    if let Err(e) = fs::create_dir_all(&dir) {
        panic!("fuzz harness: {}: {e}", dir.display());
    }
    write(
        &dir.join(format!("{AUDIT_PREFIX}-{:020}.jsonl", 0)),
        Some(log),
    );
    write(
        &dir.join(format!("{AUDIT_PREFIX}.checkpoints.jsonl")),
        checkpoints,
    );
    let verdict = Verifier::new(&dir)
        .checkpoint_verifier(&f.audit.key)
        .verify();
    cleanup();
    match verdict {
        Ok(report) => {
            // Every complete line must be the fixture's record at its seq.
            let lines: Vec<&[u8]> = log
                .split_inclusive(|&b| b == b'\n')
                .filter_map(|l| l.strip_suffix(b"\n"))
                .collect();
            assert_eq!(
                report.records,
                lines.len() as u64,
                "the report counts {} records in {} complete lines",
                report.records,
                lines.len()
            );
            for (i, line) in lines.iter().enumerate() {
                let r = parse_record(line).unwrap_or_else(|e| {
                    panic!("a verified log has a line that is not a record: {e}")
                });
                assert_eq!(r.seq, i as u64, "a verified log's records are out of order");
                assert_eq!(
                    f.audit.hashes.get(i),
                    Some(&r.hash),
                    "a verified log has a record the fixture did not write (seq {i})"
                );
                assert!(r.hash_ok);
            }
        }
        Err(VerifyError::Io { path, source }) => {
            panic!("fuzz harness: verifier I/O on {}: {source}", path.display())
        }
        Err(_) => {}
    }
}

fn check_record_line(line: &[u8]) {
    let Ok(r) = parse_record(line) else {
        return;
    };
    let Ok(canonical_event) = canonical_value(&r.event) else {
        return;
    };
    assert_eq!(
        record_hash(r.seq, &r.prev, &canonical_event) == r.hash,
        r.hash_ok,
        "parse_record's hash check and record_hash disagree"
    );
    let mut rebuilt = Vec::new();
    write_record_line(&mut rebuilt, r.seq, &r.prev, &r.hash, &canonical_event);
    let again = parse_record(rebuilt.strip_suffix(b"\n").unwrap_or(&rebuilt))
        .unwrap_or_else(|e| panic!("a rebuilt record does not parse: {e}"));
    assert_eq!(
        (again.seq, again.prev, again.hash, again.hash_ok),
        (r.seq, r.prev, r.hash, r.hash_ok),
        "a record does not round-trip"
    );
}

/// The fixture's log with and without checkpoints, and cut short.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let a = &fixture().audit;
    let with_checkpoints = |log: &[u8]| {
        let mut v = log.to_vec();
        v.push(0);
        v.extend_from_slice(&a.checkpoints);
        v
    };
    let lines: Vec<&[u8]> = a.log.split_inclusive(|&b| b == b'\n').collect();
    let first_three: Vec<u8> = lines
        .iter()
        .take(3)
        .flat_map(|l| l.iter().copied())
        .collect();
    let mut torn = a.log.clone();
    torn.extend_from_slice(b"{\"event\":{\"id\":");
    vec![
        seed("log-with-checkpoints", with_checkpoints(&a.log)),
        seed("log-only", a.log.clone()),
        seed(
            "first-three-with-checkpoints",
            with_checkpoints(&first_three),
        ),
        seed("torn-tail", with_checkpoints(&torn)),
    ]
}
