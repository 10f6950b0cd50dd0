//! `etdi audit verify|tail`: the hash-chained audit log that etdi-audit
//! writes (docs/PROTOCOL.md §12).
//!
//! `verify` is etdi-audit's `Verifier`; `tail` only reads and shows records
//! (it flags a record whose hash does not match, but proves nothing: use
//! `verify` for that).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use etdi_audit::record::parse_record;
use etdi_audit::sink::file::list_log_files;
use etdi_audit::{TamperKind, Verifier, VerifyError};
use serde_json::{Value, json};

use super::files::show;
use super::keyfile::{key_set, load_verifying_keys};
use super::{AlgArg, emit, json_line, line, refused};

/// `etdi audit` subcommands.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain and checkpoints of an audit log; exits 1 naming
    /// the first bad record when the chain is broken.
    Verify(VerifyArgs),
    /// Print the last records of an audit log, and with --follow the new
    /// ones as they are written.
    Tail(TailArgs),
}

/// Arguments of `etdi audit verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The audit log directory.
    #[arg(long)]
    dir: PathBuf,
    /// Public key that signs the checkpoints (SPKI PEM, JWK or JWKS).
    /// Without it checkpoint signatures are not checked.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Algorithm of a PEM RSA key.
    #[arg(long, value_enum, requires = "key")]
    alg: Option<AlgArg>,
    /// The log's file prefix.
    #[arg(long, default_value = "audit")]
    prefix: String,
    /// Accept a log whose oldest files were removed by retention.
    #[arg(long)]
    allow_pruned_start: bool,
}

/// Arguments of `etdi audit tail`.
#[derive(clap::Args)]
pub struct TailArgs {
    /// The audit log directory.
    #[arg(long)]
    dir: PathBuf,
    /// How many of the last records to print.
    #[arg(short = 'n', long = "lines", default_value_t = 10)]
    lines: usize,
    /// Keep printing records as they are appended (stop with Ctrl-C).
    #[arg(long, short = 'f')]
    follow: bool,
    /// The log's file prefix.
    #[arg(long, default_value = "audit")]
    prefix: String,
}

/// Runs an `etdi audit` subcommand.
pub fn run(command: &AuditCommand, json: bool) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Verify(args) => verify(args, json),
        AuditCommand::Tail(args) => tail(args, json),
    }
}

fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", show(dir))),
        Err(e) => Err(format!("cannot read audit directory {}: {e}", show(dir))),
    }
}

/// A stable snake_case name for each kind of damage, for scripts.
fn kind_code(kind: &TamperKind) -> &'static str {
    match kind {
        TamperKind::Malformed { .. } => "malformed",
        TamperKind::Modified => "modified",
        TamperKind::LinkBroken => "link_broken",
        TamperKind::Deleted { .. } => "deleted",
        TamperKind::Inserted => "inserted",
        TamperKind::Reordered { .. } => "reordered",
        TamperKind::Truncated { .. } => "truncated",
        TamperKind::CheckpointMismatch { .. } => "checkpoint_mismatch",
        TamperKind::BadCheckpoint { .. } => "bad_checkpoint",
        TamperKind::Misnamed { .. } => "misnamed",
        TamperKind::MissingStart { .. } => "missing_start",
        TamperKind::IncompleteLine => "incomplete_line",
        _ => "tampered",
    }
}

fn verify(args: &VerifyArgs, json: bool) -> Result<ExitCode, String> {
    check_dir(&args.dir)?;
    let keys = args
        .key
        .as_deref()
        .map(|k| load_verifying_keys(k, args.alg.map(|a| a.0)).map(key_set))
        .transpose()?;
    let mut verifier = Verifier::new(&args.dir).prefix(&args.prefix);
    if let Some(keys) = &keys {
        verifier = verifier.checkpoint_verifier(keys);
    }
    if args.allow_pruned_start {
        verifier = verifier.allow_pruned_start();
    }
    match verifier.verify() {
        Ok(report) => {
            if report.files == 0 && report.checkpoints == 0 {
                return Err(format!(
                    "{} holds no audit log ({}-*.jsonl)",
                    show(&args.dir),
                    args.prefix
                ));
            }
            let head = report
                .head
                .map_or_else(|| "none".to_owned(), |h| h.to_string());
            let torn = report
                .torn_tail
                .as_ref()
                .map(|t| json!({"file": show(&t.file), "offset": t.offset, "bytes": t.bytes}));
            let mut text = format!(
                "intact: {} records (from seq {}) in {} file(s), head {head}\ncheckpoints: {} read, signatures {}, the last covers {} records; {} record(s) after it are not protected against truncation",
                report.records,
                report.first_seq,
                report.files,
                report.checkpoints,
                if report.signatures_checked {
                    "checked"
                } else {
                    "NOT checked (give --key)"
                },
                report.last_checkpoint_count,
                report.unanchored,
            );
            if let Some(t) = &report.torn_tail {
                text.push_str(&format!(
                    "\ntorn tail: {} bytes at offset {} of {} (an interrupted write; cut on the next open)",
                    t.bytes,
                    t.offset,
                    show(&t.file)
                ));
            }
            emit(
                json,
                &json!({
                    "intact": true,
                    "records": report.records,
                    "first_seq": report.first_seq,
                    "files": report.files,
                    "head": report.head,
                    "checkpoints": report.checkpoints,
                    "signatures_checked": report.signatures_checked,
                    "last_checkpoint_count": report.last_checkpoint_count,
                    "unanchored": report.unanchored,
                    "torn_tail": torn,
                }),
                &text,
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(VerifyError::Tampered(finding)) => {
            emit(
                json,
                &json!({
                    "intact": false,
                    "first_bad": {
                        "file": show(&finding.file),
                        "line": finding.line,
                        "seq": finding.seq,
                        "kind": kind_code(&finding.kind),
                        "detail": finding.to_string(),
                    },
                }),
                &format!(
                    "broken: first bad record{}: {finding}",
                    finding
                        .seq
                        .map(|s| format!(" (seq {s})"))
                        .unwrap_or_default()
                ),
            );
            Ok(refused())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Prints one line of a log file; returns false when standard output is
/// gone (the reader quit), which ends `--follow`.
fn print_record(file: &Path, number: usize, text: &[u8], json: bool) -> bool {
    match parse_record(text) {
        Ok(r) => {
            if json {
                json_line(&json!({"seq": r.seq, "hash_ok": r.hash_ok, "event": r.event}))
            } else {
                // Every value in the line comes from the record, which
                // callers wrote (a token's `sub`, a tool id): each stays on
                // its line with its control characters shown escaped.
                let one = |v: Option<&Value>, absent: &'static str| {
                    crate::terminal::one_line(v.and_then(Value::as_str).unwrap_or(absent))
                        .into_owned()
                };
                let field = |name: &str| one(r.event.get(name), "");
                let principal = one(r.event.pointer("/principal/subject"), "-");
                let tool = one(r.event.pointer("/tool/id"), "-");
                let mut s = format!(
                    "{:>6} {} {} {} principal={principal} tool={tool}",
                    r.seq,
                    field("time"),
                    field("kind"),
                    field("outcome"),
                );
                let reason = field("reason");
                if !reason.is_empty() {
                    s.push_str(&format!(" reason={reason:?}"));
                }
                if !r.hash_ok {
                    s.push_str("  [HASH MISMATCH: run `etdi audit verify`]");
                }
                line(&s)
            }
        }
        Err(e) => {
            let where_ = format!("{}:{number}", show(file));
            if json {
                json_line(&json!({"file": where_, "error": format!("not a record: {e}")}))
            } else {
                line(&format!("{where_}: not a record: {e}"))
            }
        }
    }
}

/// Complete lines of `bytes` (each without its `\n`) with their 1-based
/// numbers, and the length of the complete part.
fn complete_lines(bytes: &[u8], first_number: usize) -> (Vec<(usize, &[u8])>, usize) {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let body = bytes.get(..complete).unwrap_or_default();
    let lines = body
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (first_number + i, l.strip_suffix(b"\n").unwrap_or(l)))
        .collect();
    (lines, complete)
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", show(path)))
}

fn tail(args: &TailArgs, json: bool) -> Result<ExitCode, String> {
    check_dir(&args.dir)?;
    let files = list_log_files(&args.dir, &args.prefix)
        .map_err(|e| format!("cannot list {}: {e}", show(&args.dir)))?;
    if files.is_empty() && !args.follow {
        return Err(format!(
            "{} holds no audit log ({}-*.jsonl)",
            show(&args.dir),
            args.prefix
        ));
    }
    // The last `lines` complete records, walking back through the files.
    let mut picked: Vec<(PathBuf, usize, Vec<u8>)> = Vec::new();
    let mut position: Option<(PathBuf, u64, usize)> = None;
    for (i, (_, path)) in files.iter().enumerate().rev() {
        let bytes = read_file(path)?;
        let (lines, complete) = complete_lines(&bytes, 1);
        if i + 1 == files.len() {
            position = Some((path.clone(), complete as u64, lines.len()));
        }
        let need = args.lines.saturating_sub(picked.len());
        let start = lines.len().saturating_sub(need);
        let mut chunk: Vec<(PathBuf, usize, Vec<u8>)> = lines
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(|(n, l)| (path.clone(), *n, l.to_vec()))
            .collect();
        chunk.append(&mut picked);
        picked = chunk;
        if picked.len() >= args.lines {
            break;
        }
    }
    for (path, number, text) in &picked {
        if !print_record(path, *number, text, json) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    follow(args, json, position)
}

/// Polls the newest file for appended lines and moves on when the log
/// rotates to a new file. Runs until standard output closes or the process
/// is interrupted.
fn follow(
    args: &TailArgs,
    json: bool,
    mut position: Option<(PathBuf, u64, usize)>,
) -> Result<ExitCode, String> {
    loop {
        let files = list_log_files(&args.dir, &args.prefix)
            .map_err(|e| format!("cannot list {}: {e}", show(&args.dir)))?;
        let (path, offset, lines_seen) = match &position {
            Some(p) => p.clone(),
            None => match files.first() {
                Some((_, first)) => (first.clone(), 0, 0),
                None => {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            },
        };
        let mut appended = Vec::new();
        let mut file =
            File::open(&path).map_err(|e| format!("cannot read {}: {e}", show(&path)))?;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_to_end(&mut appended))
            .map_err(|e| format!("cannot read {}: {e}", show(&path)))?;
        let (lines, complete) = complete_lines(&appended, lines_seen + 1);
        for (number, text) in &lines {
            if !print_record(&path, *number, text, json) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        let offset = offset + complete as u64;
        let newer = files
            .iter()
            .map(|(_, p)| p)
            .skip_while(|p| **p != path)
            .nth(1);
        position = match newer {
            // The writer moved on: this file is finished once drained.
            Some(next) if lines.is_empty() && complete == appended.len() => {
                Some((next.clone(), 0, 0))
            }
            _ => Some((path, offset, lines_seen + lines.len())),
        };
        if lines.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
