//! Offline verification of a log directory: the hash chain across rotated
//! files, the signed checkpoints, and the first bad record if any.
//!
//! What each kind of tampering looks like to the verifier:
//!
//! | tampering | first finding |
//! |---|---|
//! | a record edited | [`TamperKind::Modified`] at that record (its hash no longer matches) |
//! | a record edited and re-hashed | [`TamperKind::LinkBroken`] at that record (the next one does not link to it) |
//! | records deleted | [`TamperKind::Deleted`] at the record after the gap |
//! | a record inserted | [`TamperKind::Inserted`] at the inserted record |
//! | records swapped or moved | [`TamperKind::Reordered`] at the first out-of-place record |
//! | records cut from the end | [`TamperKind::Truncated`] (the last checkpoint covers more records) |
//! | the chain rewritten from some point | [`TamperKind::CheckpointMismatch`] |
//! | a checkpoint forged or edited | [`TamperKind::BadCheckpoint`] |
//!
//! An incomplete last line of the newest file is what a crash leaves; it is
//! reported in [`VerifyReport::torn_tail`], not as tampering (the writer
//! cuts it on the next open). Truncation after the last checkpoint cannot
//! be detected by anyone holding only the log; ship checkpoints off the
//! host to narrow that window.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use etdi_core::Digest;

use crate::checkpoint::{Checkpoint, CheckpointVerifier};
use crate::record::{GENESIS, ParsedRecord, parse_record};
use crate::sink::file::{checkpoints_path, list_log_files};

/// What kind of damage the verifier found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TamperKind {
    /// The line is not a record.
    Malformed {
        /// Why.
        detail: String,
    },
    /// The record's content does not match its own hash.
    Modified,
    /// The record is self-consistent but the next record's `prev` is not its
    /// hash: it (or the next record's link) was altered and re-hashed.
    LinkBroken,
    /// Records are missing before this one.
    Deleted {
        /// First missing sequence number.
        first_missing: u64,
        /// How many are missing.
        count: u64,
    },
    /// This record does not belong to the chain at this place: a copy of
    /// an earlier record or a forged one.
    Inserted,
    /// This record is out of order; the expected one appears later.
    Reordered {
        /// The sequence number expected here.
        expected: u64,
    },
    /// The last checkpoint covers more records than the log holds.
    Truncated {
        /// Records the checkpoint covers.
        checkpoint_count: u64,
        /// Records present.
        records: u64,
    },
    /// The record a checkpoint points at has a different hash: the chain was
    /// rewritten at or before this record and after the previous matching
    /// checkpoint.
    CheckpointMismatch {
        /// Count of the checkpoint that disagrees.
        checkpoint_count: u64,
        /// The last earlier checkpoint that matched (0 if none).
        last_good_count: u64,
    },
    /// A checkpoint is malformed, out of order, or its signature fails.
    BadCheckpoint {
        /// 1-based line in the checkpoint file.
        line: usize,
        /// Why.
        detail: String,
    },
    /// A file's name does not match the first record in it.
    Misnamed {
        /// The number in the file name.
        named: u64,
        /// The first record's sequence number.
        first_seq: u64,
    },
    /// The log does not start at record 0 (files removed from the front)
    /// and the verifier was not told to accept a pruned start.
    MissingStart {
        /// Sequence number of the first record present.
        first_seq: u64,
    },
    /// An incomplete line that is not at the end of the newest file.
    IncompleteLine,
}

/// Where the first bad record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub kind: TamperKind,
    /// The file (the checkpoint file for checkpoint problems).
    pub file: PathBuf,
    /// 1-based line number (0 for "end of log").
    pub line: usize,
    /// The record's sequence number, when it could be read.
    pub seq: Option<u64>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        match &self.kind {
            TamperKind::Malformed { detail } => write!(f, "not a record: {detail}"),
            TamperKind::Modified => f.write_str("record content does not match its hash"),
            TamperKind::LinkBroken => {
                f.write_str("the next record does not link to this one (altered and re-hashed)")
            }
            TamperKind::Deleted {
                first_missing,
                count,
            } => write!(f, "{count} record(s) missing from seq {first_missing}"),
            TamperKind::Inserted => f.write_str("record inserted into the chain"),
            TamperKind::Reordered { expected } => {
                write!(f, "record out of order (expected seq {expected} here)")
            }
            TamperKind::Truncated {
                checkpoint_count,
                records,
            } => write!(
                f,
                "log truncated: {records} records, last checkpoint covers {checkpoint_count}"
            ),
            TamperKind::CheckpointMismatch {
                checkpoint_count,
                last_good_count,
            } => write!(
                f,
                "chain rewritten between record {last_good_count} and {checkpoint_count} (checkpoint head differs)"
            ),
            TamperKind::BadCheckpoint { line, detail } => {
                write!(f, "checkpoint on line {line} is invalid: {detail}")
            }
            TamperKind::Misnamed { named, first_seq } => {
                write!(f, "file named for seq {named} starts with seq {first_seq}")
            }
            TamperKind::MissingStart { first_seq } => {
                write!(f, "log starts at seq {first_seq}, not 0")
            }
            TamperKind::IncompleteLine => f.write_str("incomplete line inside the log"),
        }
    }
}

/// An incomplete last line, as a crash leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file.
    pub file: PathBuf,
    /// Byte offset where the incomplete line starts.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Files read.
    pub files: usize,
    /// Valid records.
    pub records: u64,
    /// Sequence number of the first record (0 unless pruned).
    pub first_seq: u64,
    /// Hash of the last record ([`GENESIS`] if none).
    pub head: Option<Digest>,
    /// Checkpoints read.
    pub checkpoints: usize,
    /// True if checkpoint signatures were checked (a verifier was given).
    pub signatures_checked: bool,
    /// Records covered by the last checkpoint.
    pub last_checkpoint_count: u64,
    /// Records after the last checkpoint (not protected against truncation).
    pub unanchored: u64,
    /// An incomplete last line, if any.
    pub torn_tail: Option<TornTail>,
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The log is damaged; this is the first bad record.
    #[error("audit log tampered: {0}")]
    Tampered(Finding),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Verifies the log in a directory. Build with [`Verifier::new`].
pub struct Verifier<'a> {
    dir: PathBuf,
    prefix: String,
    checkpoint_verifier: Option<&'a dyn CheckpointVerifier>,
    allow_pruned_start: bool,
}

struct Line {
    number: usize,
    parsed: Result<ParsedRecord, String>,
}

struct Cursor {
    expected: u64,
    head: Digest,
    /// Location of the last accepted record.
    last: Option<(PathBuf, usize, u64)>,
    /// `prev` of the last accepted record.
    last_prev: Digest,
    started: bool,
}

impl<'a> Verifier<'a> {
    /// A verifier for the log with prefix `audit` in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Verifier {
            dir: dir.into(),
            prefix: "audit".to_owned(),
            checkpoint_verifier: None,
            allow_pruned_start: false,
        }
    }

    /// The log's file prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Checks checkpoint signatures with `v`. Without one, checkpoint counts
    /// and heads are still compared but a forger could write checkpoints
    /// too; the report says whether signatures were checked.
    pub fn checkpoint_verifier(mut self, v: &'a dyn CheckpointVerifier) -> Self {
        self.checkpoint_verifier = Some(v);
        self
    }

    /// Accepts a log whose oldest files were removed by retention: the
    /// first record present starts the chain.
    pub fn allow_pruned_start(mut self) -> Self {
        self.allow_pruned_start = true;
        self
    }

    /// Runs the verification.
    pub fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VerifyError::Io { path, source }
        };
        let tampered = |kind, file: &Path, line, seq| {
            VerifyError::Tampered(Finding {
                kind,
                file: file.to_path_buf(),
                line,
                seq,
            })
        };
        let mut report = VerifyReport {
            signatures_checked: self.checkpoint_verifier.is_some(),
            ..VerifyReport::default()
        };

        // Checkpoints first: the record walk checks each one as it passes
        // the record it points at.
        let cp_path = checkpoints_path(&self.dir, &self.prefix);
        let mut checkpoints: BTreeMap<u64, (Digest, usize)> = BTreeMap::new();
        let mut last_cp_count = 0u64;
        if cp_path.exists() {
            let bytes = fs::read(&cp_path).map_err(io(&cp_path))?;
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let body = bytes.get(..complete).unwrap_or_default();
            for (i, text) in body.split_inclusive(|&b| b == b'\n').enumerate() {
                let text = text.strip_suffix(b"\n").unwrap_or(text);
                let line = i + 1;
                let bad = |detail: String| {
                    tampered(
                        TamperKind::BadCheckpoint { line, detail },
                        &cp_path,
                        line,
                        None,
                    )
                };
                let cp = Checkpoint::parse(text).map_err(bad)?;
                if cp.log != self.prefix {
                    return Err(bad(format!("belongs to log `{}`", cp.log)));
                }
                if let Some(v) = self.checkpoint_verifier {
                    cp.verify(v).map_err(|e| bad(e.to_string()))?;
                }
                if cp.count < last_cp_count || cp.count == 0 {
                    return Err(bad("count goes backwards".to_owned()));
                }
                if let Some((h, _)) = checkpoints.get(&cp.count)
                    && *h != cp.head
                {
                    return Err(bad("two checkpoints disagree on one head".to_owned()));
                }
                last_cp_count = cp.count;
                checkpoints.insert(cp.count, (cp.head, line));
                report.checkpoints += 1;
            }
        }
        report.last_checkpoint_count = last_cp_count;

        let files = list_log_files(&self.dir, &self.prefix).map_err(io(&self.dir))?;
        report.files = files.len();
        let mut cur = Cursor {
            expected: 0,
            head: GENESIS,
            last: None,
            last_prev: GENESIS,
            started: false,
        };
        let mut last_good_cp = 0u64;
        for (index, (named, path)) in files.iter().enumerate() {
            let bytes = fs::read(path).map_err(io(path))?;
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if complete < bytes.len() {
                if index + 1 == files.len() {
                    report.torn_tail = Some(TornTail {
                        file: path.clone(),
                        offset: complete as u64,
                        bytes: (bytes.len() - complete) as u64,
                    });
                } else {
                    let line = bytes
                        .get(..complete)
                        .unwrap_or_default()
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1;
                    return Err(tampered(TamperKind::IncompleteLine, path, line, None));
                }
            }
            let body = bytes.get(..complete).unwrap_or_default();
            let lines: Vec<Line> = body
                .split_inclusive(|&b| b == b'\n')
                .enumerate()
                .map(|(i, l)| {
                    let bytes = l.strip_suffix(b"\n").unwrap_or(l);
                    Line {
                        number: i + 1,
                        parsed: parse_record(bytes),
                    }
                })
                .collect();
            for (pos, line) in lines.iter().enumerate() {
                let rec = match &line.parsed {
                    Ok(r) => r,
                    Err(detail) => {
                        return Err(tampered(
                            TamperKind::Malformed {
                                detail: detail.clone(),
                            },
                            path,
                            line.number,
                            None,
                        ));
                    }
                };
                let at = |kind| tampered(kind, path, line.number, Some(rec.seq));
                if !rec.hash_ok {
                    return Err(at(TamperKind::Modified));
                }
                if !cur.started {
                    cur.started = true;
                    if rec.seq != 0 || rec.prev != GENESIS {
                        if !self.allow_pruned_start {
                            return Err(at(TamperKind::MissingStart { first_seq: rec.seq }));
                        }
                        cur.expected = rec.seq;
                        cur.head = rec.prev;
                        report.first_seq = rec.seq;
                    }
                }
                if rec.seq == cur.expected {
                    if rec.prev != cur.head {
                        // The previous record is self-consistent but this one
                        // does not link to it: report the earlier of the two.
                        return Err(match &cur.last {
                            Some((file, l, seq)) => {
                                tampered(TamperKind::LinkBroken, file, *l, Some(*seq))
                            }
                            None => at(TamperKind::LinkBroken),
                        });
                    }
                } else if rec.seq > cur.expected {
                    let later = lines
                        .iter()
                        .skip(pos + 1)
                        .position(|l| l.parsed.as_ref().is_ok_and(|r| r.seq == cur.expected));
                    // A genuine record that is merely out of place still has
                    // a successor linking to it; a forged one has none.
                    let referenced = lines
                        .iter()
                        .any(|l| l.parsed.as_ref().is_ok_and(|r| r.prev == rec.hash));
                    return Err(at(match later {
                        Some(_) if !referenced => TamperKind::Inserted,
                        Some(_) => TamperKind::Reordered {
                            expected: cur.expected,
                        },
                        None => TamperKind::Deleted {
                            first_missing: cur.expected,
                            count: rec.seq - cur.expected,
                        },
                    }));
                } else {
                    // An earlier sequence number again. If it claims the same
                    // place as the last accepted record, one of the two is an
                    // interloper: the one the chain does not continue from.
                    let twin = rec.seq + 1 == cur.expected && rec.prev == cur.last_prev;
                    let next_from_this = lines.get(pos + 1).is_some_and(|l| {
                        l.parsed
                            .as_ref()
                            .is_ok_and(|r| r.seq == cur.expected && r.prev == rec.hash)
                    });
                    if twin
                        && rec.hash != cur.head
                        && next_from_this
                        && let Some((file, l, seq)) = &cur.last
                    {
                        return Err(tampered(TamperKind::Inserted, file, *l, Some(*seq)));
                    }
                    return Err(at(TamperKind::Inserted));
                }
                // Accepted. A file is named for its first record; checked
                // after the chain so that a moved record reads as reordering.
                if pos == 0 && rec.seq != *named {
                    return Err(at(TamperKind::Misnamed {
                        named: *named,
                        first_seq: rec.seq,
                    }));
                }
                if let Some((cp_head, _)) = checkpoints.get(&(rec.seq + 1)) {
                    if *cp_head != rec.hash {
                        return Err(at(TamperKind::CheckpointMismatch {
                            checkpoint_count: rec.seq + 1,
                            last_good_count: last_good_cp,
                        }));
                    }
                    last_good_cp = rec.seq + 1;
                }
                cur.last_prev = rec.prev;
                cur.head = rec.hash;
                cur.expected = rec.seq + 1;
                cur.last = Some((path.clone(), line.number, rec.seq));
                report.records += 1;
            }
        }
        if last_cp_count > cur.expected {
            let file = files
                .last()
                .map_or_else(|| self.dir.clone(), |(_, p)| p.clone());
            return Err(tampered(
                TamperKind::Truncated {
                    checkpoint_count: last_cp_count,
                    records: cur.expected,
                },
                &file,
                0,
                None,
            ));
        }
        report.head = cur.started.then_some(cur.head);
        report.unanchored = cur.expected.saturating_sub(last_cp_count);
        Ok(report)
    }
}
