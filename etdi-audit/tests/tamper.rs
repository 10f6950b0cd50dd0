//! Tamper evidence: every kind of tampering is reported at the first bad
//! record, across rotated files; torn tails are repaired, not flagged.
// Test code: a panic is a test failure, which is what these assertions want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, HmacCheckpointKey, OpenError, TamperKind, Verifier, VerifyError};
use serde_json::Value;

fn verify(dir: &std::path::Path) -> Result<etdi_audit::VerifyReport, VerifyError> {
    let k = key();
    Verifier::new(dir).checkpoint_verifier(&k).verify()
}

fn finding(dir: &std::path::Path) -> etdi_audit::Finding {
    match verify(dir) {
        Err(VerifyError::Tampered(f)) => f,
        other => panic!("expected tampering, got {other:?}"),
    }
}

#[test]
fn an_intact_rotated_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 60);
    let r = verify(dir.path()).unwrap();
    assert_eq!(r.records, 60);
    assert!(r.files > 3, "expected rotation, got {} files", r.files);
    assert!(r.signatures_checked);
    assert!(r.checkpoints >= 6);
    assert_eq!(r.last_checkpoint_count, 60);
    assert_eq!(r.unanchored, 0);
    assert_eq!(r.torn_tail, None);
    // Every file is named for its first record.
    for f in files(dir.path()) {
        let first = read_lines(&f)[0].clone();
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(name, format!("audit-{:020}.jsonl", seq_of(&first)));
    }
}

#[test]
fn modification_is_reported_at_the_modified_record() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    let seq = seq_of(&lines[2]);
    lines[2] = lines[2].replace("event ", "EVENT ");
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::Modified);
    assert_eq!((found.file, found.line, found.seq), (f, 3, Some(seq)));
}

#[test]
fn modification_with_a_recomputed_hash_breaks_the_link() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    let seq = seq_of(&lines[1]);
    let mut v: Value = serde_json::from_str(&lines[1]).unwrap();
    v["event"]["outcome"] = "success".into();
    lines[1] = rehash(v);
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::LinkBroken);
    assert_eq!((found.file, found.line, found.seq), (f, 2, Some(seq)));
}

#[test]
fn deletion_is_reported_at_the_record_after_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[2].clone();
    let mut lines = read_lines(&f);
    let gone = seq_of(&lines[1]);
    lines.remove(1);
    lines.remove(1);
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(
        found.kind,
        TamperKind::Deleted {
            first_missing: gone,
            count: 2
        }
    );
    assert_eq!((found.file, found.line, found.seq), (f, 2, Some(gone + 2)));
}

#[test]
fn deleting_a_whole_rotated_file_is_a_deletion() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let fs_ = files(dir.path());
    let first_gone = seq_of(&read_lines(&fs_[1])[0]);
    let n_gone = read_lines(&fs_[1]).len() as u64;
    fs::remove_file(&fs_[1]).unwrap();
    let found = finding(dir.path());
    assert_eq!(
        found.kind,
        TamperKind::Deleted {
            first_missing: first_gone,
            count: n_gone
        }
    );
    assert_eq!((found.file.clone(), found.line), (fs_[2].clone(), 1));
}

#[test]
fn an_inserted_copy_is_reported_at_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    let copy = lines[0].clone();
    lines.insert(3, copy);
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::Inserted);
    assert_eq!((found.file, found.line), (f, 4));
}

#[test]
fn an_inserted_forged_record_is_reported_at_the_forgery() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    // A forged record that links correctly to its predecessor and claims
    // the next sequence number: only the genuine successor exposes it.
    let mut forged: Value = serde_json::from_str(&lines[2]).unwrap();
    forged["prev"] = hash_of(&lines[1]).into();
    forged["event"]["reason"] = "forged".into();
    lines.insert(2, rehash(forged));
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::Inserted);
    assert_eq!((found.file, found.line), (f, 3));

    // A forged record with a made-up sequence number in the middle.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    let mut forged: Value = serde_json::from_str(&lines[2]).unwrap();
    forged["seq"] = 100_000.into();
    lines.insert(2, rehash(forged));
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::Inserted);
    assert_eq!((found.file, found.line), (f, 3));
}

#[test]
fn reordering_is_reported_at_the_first_out_of_place_record() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    let expected = seq_of(&lines[1]);
    lines.swap(1, 2);
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::Reordered { expected });
    assert_eq!((found.file, found.line), (f, 2));

    // Moving a record further down.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let f = files(dir.path())[1].clone();
    let mut lines = read_lines(&f);
    let expected = seq_of(&lines[0]);
    let moved = lines.remove(0);
    lines.insert(3, moved);
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert_eq!(found.kind, TamperKind::Reordered { expected });
    assert_eq!((found.file, found.line), (f, 1));
}

#[test]
fn truncation_is_detected_against_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let last = files(dir.path()).last().unwrap().clone();
    let mut lines = read_lines(&last);
    lines.truncate(lines.len() - 2);
    write_lines(&last, &lines);
    let found = finding(dir.path());
    assert_eq!(
        found.kind,
        TamperKind::Truncated {
            checkpoint_count: 40,
            records: 38
        }
    );

    // Removing the newest files entirely is truncation too.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let all = files(dir.path());
    let kept: u64 = all[..2].iter().map(|f| read_lines(f).len() as u64).sum();
    for f in &all[2..] {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(
        finding(dir.path()).kind,
        TamperKind::Truncated {
            checkpoint_count: 40,
            records: kept
        }
    );

    // And the writer refuses to continue a truncated log.
    let err = FileSink::builder(dir.path())
        .checkpoint_signer(Arc::new(key()))
        .open()
        .err()
        .unwrap();
    assert!(matches!(err, OpenError::BehindCheckpoint { .. }), "{err}");
}

#[test]
fn a_rewritten_chain_is_caught_by_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    // Rewrite everything from record 15 on, re-linking each record: the
    // chain is self-consistent, only the checkpoints can tell.
    let mut prev: Option<String> = None;
    for f in files(dir.path()) {
        let mut lines = read_lines(&f);
        for l in lines.iter_mut() {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            if seq >= 15 {
                if seq == 15 {
                    v["event"]["reason"] = "rewritten".into();
                }
                v["prev"] = prev.clone().unwrap().into();
                *l = rehash(v);
            }
            prev = Some(hash_of(l));
        }
        write_lines(&f, &lines);
    }
    let found = finding(dir.path());
    assert_eq!(
        found.kind,
        TamperKind::CheckpointMismatch {
            checkpoint_count: 20,
            last_good_count: 10
        }
    );
    assert_eq!(found.seq, Some(19));
}

#[test]
fn forged_or_edited_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    let cp = dir.path().join("audit.checkpoints.jsonl");
    let original = read_lines(&cp);
    let mut lines = original.clone();
    lines[1] = lines[1].replace("\"count\":20", "\"count\":21");
    write_lines(&cp, &lines);
    let found = finding(dir.path());
    assert!(
        matches!(found.kind, TamperKind::BadCheckpoint { line: 2, .. }),
        "{found}"
    );

    // A checkpoint signed with another key.
    write_lines(&cp, &original);
    let other = HmacCheckpointKey::new("test-key", vec![1u8; 32]);
    let err = Verifier::new(dir.path())
        .checkpoint_verifier(&other)
        .verify()
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Tampered(etdi_audit::Finding {
                kind: TamperKind::BadCheckpoint { line: 1, .. },
                ..
            })
        ),
        "{err}"
    );
    // Without a verifier, counts and heads are still checked.
    let r = Verifier::new(dir.path()).verify().unwrap();
    assert!(!r.signatures_checked);
}

#[test]
fn a_pruned_start_needs_explicit_consent() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let first = files(dir.path())[0].clone();
    let n = read_lines(&first).len() as u64;
    fs::remove_file(&first).unwrap();
    assert_eq!(
        finding(dir.path()).kind,
        TamperKind::MissingStart { first_seq: n }
    );
    let k = key();
    let r = Verifier::new(dir.path())
        .checkpoint_verifier(&k)
        .allow_pruned_start()
        .verify()
        .unwrap();
    assert_eq!((r.first_seq, r.records), (n, 40 - n));
}

#[test]
fn a_malformed_line_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20);
    let f = files(dir.path())[0].clone();
    let mut lines = read_lines(&f);
    lines[1] = "{\"not\":\"a record\"}".into();
    write_lines(&f, &lines);
    let found = finding(dir.path());
    assert!(matches!(found.kind, TamperKind::Malformed { .. }));
    assert_eq!(found.line, 2);
}

#[test]
fn a_torn_tail_is_reported_then_repaired_with_a_recorded_event() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20);
    let last = files(dir.path()).last().unwrap().clone();
    let before = fs::metadata(&last).unwrap().len();
    let torn = b"{\"event\":{\"id\":\"half-writ";
    let mut bytes = fs::read(&last).unwrap();
    bytes.extend_from_slice(torn);
    fs::write(&last, &bytes).unwrap();

    // The verifier accepts the chain up to the tail and says what is torn.
    let r = verify(dir.path()).unwrap();
    assert_eq!(r.records, 20);
    let tail = r.torn_tail.unwrap();
    assert_eq!((tail.offset, tail.bytes), (before, torn.len() as u64));

    // Opening cuts it and records a `log_repaired` event first.
    let log = AuditLog::builder()
        .sink(
            FileSink::builder(dir.path())
                .checkpoint_signer(Arc::new(key()))
                .open()
                .unwrap(),
        )
        .build()
        .unwrap();
    log.log_durable(etdi_audit::event::replay_detected("after repair"))
        .unwrap();
    log.shutdown().unwrap();
    let r = verify(dir.path()).unwrap();
    assert_eq!((r.records, r.torn_tail), (22, None));
    let evs = events(dir.path());
    assert_eq!(evs[20]["kind"], "log_repaired");
    assert_eq!(evs[20]["details"]["cut_bytes"], torn.len() as u64);
    assert_eq!(evs[20]["details"]["offset"], before);
    assert_eq!(evs[21]["kind"], "replay_detected");
}

#[test]
fn a_complete_but_invalid_last_line_is_not_silently_repaired() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let last = files(dir.path()).last().unwrap().clone();
    let mut lines = read_lines(&last);
    let n = lines.len();
    lines[n - 1] = lines[n - 1].replace("event ", "EVENT ");
    write_lines(&last, &lines);
    let err = FileSink::builder(dir.path()).open().err().unwrap();
    assert!(
        matches!(err, OpenError::CorruptTail { line, .. } if line == n),
        "{err}"
    );
}

#[test]
fn reopening_continues_the_chain_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 25);
    write_log(dir.path(), 25);
    let r = verify(dir.path()).unwrap();
    assert_eq!(r.records, 50);
    assert_eq!(r.last_checkpoint_count, 50);
}

#[test]
fn files_rotate_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::builder()
        .sink(
            FileSink::builder(dir.path())
                .max_file_age(std::time::Duration::from_millis(100))
                .open()
                .unwrap(),
        )
        .build()
        .unwrap();
    for i in 0..3u64 {
        log.log_durable(etdi_audit::event::key_rotated(None, &format!("k{i}")))
            .unwrap();
        // The writer checks age at least every 500 ms.
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    log.shutdown().unwrap();
    assert!(files(dir.path()).len() >= 3);
    assert_eq!(Verifier::new(dir.path()).verify().unwrap().records, 3);
}
