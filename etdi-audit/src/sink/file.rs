//! JSON-lines file sink with size/time rotation, the hash chain, signed
//! checkpoints and crash repair.
//!
//! Layout of a log directory with prefix `audit`:
//!
//! ```text
//! audit-00000000000000000000.jsonl   records 0 ..
//! audit-00000000000000052311.jsonl   records 52311 .. (name = first seq)
//! audit.checkpoints.jsonl            signed checkpoints, one per line
//! ```
//!
//! In [`Format::Native`] each line is a chained record ([`crate::record`]);
//! the chain runs across rotated files. In OCSF or ECS each line is the
//! mapped event without chain fields (for shippers such as Filebeat), and
//! files are numbered by line count.
//!
//! Crash safety: bytes reach the file in order, so a crash can only leave
//! the last line incomplete. On open, anything after the last newline of
//! the newest file is cut (and fsynced), and a `log_repaired` event saying
//! what was cut becomes the first record written. A complete last line
//! that is not a valid record is not a crash artefact; the sink refuses to
//! open ([`OpenError::CorruptTail`]) rather than silently continue the chain
//! from a forged head.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use etdi_core::{AuditEvent, Digest, EventKind, Outcome};

use super::Sink;
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::error::{OpenError, SinkError};
use crate::event::{EventBuilder, new_event_id};
use crate::format::Format;
use crate::record::{EncodedEvent, GENESIS, parse_record, record_hash, write_record_line};

/// Default size at which a file is rotated: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default records between checkpoints.
pub const DEFAULT_CHECKPOINT_RECORDS: u64 = 10_000;
/// Default longest time between checkpoints (when records were added).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

type CheckpointHook = Box<dyn FnMut(&Checkpoint) + Send>;

/// Configures and opens a [`FileSink`].
pub struct FileSinkBuilder {
    dir: PathBuf,
    prefix: String,
    format: Format,
    max_bytes: u64,
    max_age: Option<Duration>,
    signer: Option<Arc<dyn CheckpointSigner>>,
    checkpoint_records: u64,
    checkpoint_interval: Duration,
    on_checkpoint: Option<CheckpointHook>,
    buffer: usize,
}

impl FileSinkBuilder {
    /// File prefix (default `audit`); letters, digits, `_` and `.` only.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Output format (default [`Format::Native`], the only verifiable one).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Rotate when a file would grow past `bytes` (default 64 MiB).
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// Rotate a non-empty file once it has been open for `age`.
    pub fn max_file_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Sign checkpoints with `signer` (native format only).
    pub fn checkpoint_signer(mut self, signer: Arc<dyn CheckpointSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Take a checkpoint after this many new records (default 10 000) ...
    pub fn checkpoint_every_records(mut self, n: u64) -> Self {
        self.checkpoint_records = n.max(1);
        self
    }

    /// ... or after this much time with new records (default 60 s).
    pub fn checkpoint_interval(mut self, d: Duration) -> Self {
        self.checkpoint_interval = d;
        self
    }

    /// Called with each checkpoint after it is durable, e.g. to ship it off
    /// the host (a local attacker who can truncate the log can also delete
    /// the latest local checkpoints).
    pub fn on_checkpoint(mut self, hook: impl FnMut(&Checkpoint) + Send + 'static) -> Self {
        self.on_checkpoint = Some(Box::new(hook));
        self
    }

    /// Write buffer size (default 256 KiB).
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer = bytes.max(4096);
        self
    }

    /// Opens the log: creates the directory, repairs a torn tail, and
    /// recovers the chain head.
    pub fn open(self) -> Result<FileSink, OpenError> {
        FileSink::open(self)
    }
}

struct Checkpoints {
    path: PathBuf,
    file: File,
    signer: Arc<dyn CheckpointSigner>,
    every_records: u64,
    interval: Duration,
    last_count: u64,
    last_time: SystemTime,
    hook: Option<CheckpointHook>,
}

/// The JSON-lines file sink. See the module docs.
pub struct FileSink {
    name: String,
    dir: PathBuf,
    prefix: String,
    format: Format,
    max_bytes: u64,
    max_age: Option<Duration>,
    buffer: usize,
    file: BufWriter<File>,
    path: PathBuf,
    size: u64,
    opened_at: SystemTime,
    chained: bool,
    next_seq: u64,
    head: Digest,
    unsynced: bool,
    checkpoints: Option<Checkpoints>,
    notices: Vec<AuditEvent>,
    /// Ids of notices already in this file (written during repair).
    self_recorded: Vec<String>,
    line: Vec<u8>,
}

/// The path of the file whose first record is `first`.
pub fn log_file_path(dir: &Path, prefix: &str, first: u64) -> PathBuf {
    dir.join(format!("{prefix}-{first:020}.jsonl"))
}

/// The checkpoint file of a log.
pub fn checkpoints_path(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(format!("{prefix}.checkpoints.jsonl"))
}

/// The log's files, ordered by the number in their name.
pub fn list_log_files(dir: &Path, prefix: &str) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_suffix(".jsonl"))
            .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok());
        if let Some(n) = number {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// fsyncs a directory so that a file created or renamed in it survives a
/// power loss.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a tail repair cut.
struct Cut {
    offset: u64,
    bytes: u64,
    digest: Digest,
}

/// Splits `bytes` into the complete lines and an incomplete last line.
fn split_torn(bytes: &[u8]) -> (usize, Option<Cut>) {
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = bytes.get(keep..).unwrap_or_default();
    if torn.is_empty() {
        return (keep, None);
    }
    (
        keep,
        Some(Cut {
            offset: keep as u64,
            bytes: torn.len() as u64,
            digest: Digest::of(torn),
        }),
    )
}

/// Replaces `path` with `contents` atomically: temporary file, fsync,
/// rename, fsync of the directory. A crash leaves either the old or the
/// new file, never a mix.
fn replace_file(dir: &Path, path: &Path, contents: &[u8]) -> Result<(), OpenError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".repair");
    let tmp = PathBuf::from(tmp_name);
    let mut f = File::create(&tmp).map_err(|e| OpenError::io("create", &tmp, e))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|e| OpenError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| OpenError::io("rename repaired file to", path, e))?;
    sync_dir(dir).map_err(|e| OpenError::io("sync directory", dir, e))
}

fn repaired_event(path: &Path, what: &str, cut: &Cut) -> AuditEvent {
    EventBuilder::new(EventKind::LogRepaired, Outcome::Info)
        .reason_code("torn_tail")
        .reason(format!(
            "cut an incomplete last line of {} bytes from the {what} file (crash while writing)",
            cut.bytes
        ))
        .detail("file", path.display().to_string())
        .detail("offset", cut.offset)
        .detail("cut_bytes", cut.bytes)
        .detail("cut_sha256", cut.digest.to_string())
        .build()
}

/// The last line of `bytes` (which ends with `\n` or is empty) and its
/// 1-based line number.
fn last_line(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let body = bytes.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line_no = body.iter().filter(|&&b| b == b'\n').count() + 1;
    body.get(start..).map(|l| (line_no, l))
}

fn open_append(path: &Path) -> Result<File, OpenError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| OpenError::io("open", path, e))
}

impl FileSink {
    /// Starts configuring a file sink writing into `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FileSinkBuilder {
        FileSinkBuilder {
            dir: dir.into(),
            prefix: "audit".to_owned(),
            format: Format::Native,
            max_bytes: DEFAULT_MAX_FILE_BYTES,
            max_age: None,
            signer: None,
            checkpoint_records: DEFAULT_CHECKPOINT_RECORDS,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            on_checkpoint: None,
            buffer: 256 * 1024,
        }
    }

    fn open(b: FileSinkBuilder) -> Result<FileSink, OpenError> {
        if b.prefix.is_empty()
            || !b
                .prefix
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            return Err(OpenError::Config(format!(
                "file prefix `{}` must be non-empty ASCII letters, digits, `_` or `.`",
                b.prefix
            )));
        }
        let chained = b.format == Format::Native;
        if b.signer.is_some() && !chained {
            return Err(OpenError::Config(
                "checkpoints need the native (chained) format".to_owned(),
            ));
        }
        let dir = b.dir.clone();
        let dir_existed = dir.is_dir();
        fs::create_dir_all(&dir).map_err(|e| OpenError::io("create directory", &dir, e))?;
        if !dir_existed && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(|e| OpenError::io("sync directory", parent, e))?;
        }
        let files = list_log_files(&dir, &b.prefix).map_err(|e| OpenError::io("list", &dir, e))?;

        // Recover the chain head from the complete lines only; a torn last
        // line (what a crash leaves) is handled below.
        let (path, next_seq, head, torn) = match files.last() {
            None => {
                let path = log_file_path(&dir, &b.prefix, 0);
                open_append(&path)?;
                sync_dir(&dir).map_err(|e| OpenError::io("sync directory", &dir, e))?;
                (path, 0, GENESIS, None)
            }
            Some((first, last_path)) => {
                let mut bytes =
                    fs::read(last_path).map_err(|e| OpenError::io("read", last_path, e))?;
                let (keep, cut) = split_torn(&bytes);
                bytes.truncate(keep);
                let (next, head) = if chained {
                    Self::recover_head(&files, &bytes)?
                } else {
                    let lines = bytes.iter().filter(|&&c| c == b'\n').count() as u64;
                    (first.saturating_add(lines), GENESIS)
                };
                (last_path.clone(), next, head, cut.map(|c| (c, bytes)))
            }
        };

        let mut sink = FileSink {
            name: format!("file:{}", dir.join(&b.prefix).display()),
            dir: dir.clone(),
            prefix: b.prefix.clone(),
            format: b.format,
            max_bytes: b.max_bytes,
            max_age: b.max_age,
            buffer: b.buffer,
            // Replaced below once the file is repaired; an in-memory sink
            // of the right type keeps the struct complete until then.
            file: BufWriter::with_capacity(b.buffer, open_append(&path)?),
            path: path.clone(),
            size: 0,
            opened_at: SystemTime::now(),
            chained,
            next_seq,
            head,
            unsynced: false,
            checkpoints: None,
            notices: Vec::new(),
            self_recorded: Vec::new(),
            line: Vec::with_capacity(1024),
        };

        if let Some((cut, mut kept)) = torn {
            // The repair record replaces the torn bytes in one atomic file
            // replacement, so a crash during repair can never cut bytes
            // without recording that it did.
            let notice = sink.own_notice(repaired_event(&path, "log", &cut))?;
            let line = sink.encode_line(&notice)?;
            kept.extend_from_slice(&line);
            replace_file(&dir, &path, &kept)?;
        }
        let file = open_append(&path)?;
        sink.size = file
            .metadata()
            .map_err(|e| OpenError::io("stat", &path, e))?
            .len();
        sink.file = BufWriter::with_capacity(b.buffer, file);

        if let Some(signer) = b.signer {
            let cp_path = checkpoints_path(&dir, &b.prefix);
            let existed = cp_path.exists();
            let file = open_append(&cp_path)?;
            if !existed {
                sync_dir(&dir).map_err(|e| OpenError::io("sync directory", &dir, e))?;
            }
            let bytes = fs::read(&cp_path).map_err(|e| OpenError::io("read", &cp_path, e))?;
            let (keep, cut) = split_torn(&bytes);
            if let Some(cut) = cut {
                // Record first, cut second: a crash in between repeats the
                // repair (and its record) on the next open.
                let notice = sink.own_notice(repaired_event(&cp_path, "checkpoint", &cut))?;
                let line = sink.encode_line(&notice)?;
                sink.append_now(&line)?;
                file.set_len(keep as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| OpenError::io("truncate torn tail of", &cp_path, e))?;
            }
            let last_count = match last_line(bytes.get(..keep).unwrap_or_default()) {
                None => 0,
                Some((line, text)) => {
                    Checkpoint::parse(text)
                        .map_err(|detail| OpenError::CorruptTail {
                            path: cp_path.display().to_string(),
                            line,
                            detail,
                        })?
                        .count
                }
            };
            if last_count > sink.next_seq {
                return Err(OpenError::BehindCheckpoint {
                    path: dir.display().to_string(),
                    records: sink.next_seq,
                    checkpoint_count: last_count,
                });
            }
            sink.checkpoints = Some(Checkpoints {
                path: cp_path,
                file,
                signer,
                every_records: b.checkpoint_records,
                interval: b.checkpoint_interval,
                last_count,
                last_time: SystemTime::now(),
                hook: b.on_checkpoint,
            });
        }
        Ok(sink)
    }

    /// Gives a notice this sink records itself an id, and remembers it so
    /// that the copy the log sends to every sink is not written twice here.
    fn own_notice(&mut self, mut event: AuditEvent) -> Result<EncodedEvent, OpenError> {
        event.id = new_event_id();
        self.self_recorded.push(event.id.clone());
        self.notices.push(event.clone());
        EncodedEvent::new(event).map_err(|e| OpenError::Config(e.to_string()))
    }

    /// The line for `event` at the current chain position; advances the
    /// chain.
    fn encode_line(&mut self, event: &EncodedEvent) -> Result<Vec<u8>, OpenError> {
        let mut line = Vec::new();
        if self.chained {
            let hash = record_hash(self.next_seq, &self.head, event.canonical_json());
            write_record_line(
                &mut line,
                self.next_seq,
                &self.head,
                &hash,
                event.canonical_json(),
            );
            self.head = hash;
        } else {
            self.format.render(event, &mut line);
            line.push(b'\n');
        }
        self.next_seq += 1;
        Ok(line)
    }

    /// Appends and fsyncs one line outside the normal write path (repair).
    fn append_now(&mut self, line: &[u8]) -> Result<(), OpenError> {
        self.file
            .write_all(line)
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.get_ref().sync_data())
            .map_err(|e| OpenError::io("append repair record to", &self.path, e))?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Finds the last record (in the newest non-empty file) and checks it.
    fn recover_head(files: &[(u64, PathBuf)], newest: &[u8]) -> Result<(u64, Digest), OpenError> {
        let mut older;
        let mut contents = newest;
        for (i, (first, path)) in files.iter().enumerate().rev() {
            if i + 1 != files.len() {
                older = fs::read(path).map_err(|e| OpenError::io("read", path, e))?;
                contents = &older;
            }
            match last_line(contents) {
                Some((line, text)) => {
                    let corrupt = |detail: String| OpenError::CorruptTail {
                        path: path.display().to_string(),
                        line,
                        detail,
                    };
                    let rec = parse_record(text).map_err(corrupt)?;
                    if !rec.hash_ok {
                        return Err(corrupt("content does not match its hash".to_owned()));
                    }
                    return Ok((rec.seq.saturating_add(1), rec.hash));
                }
                None if i == 0 => return Ok((*first, GENESIS)),
                None => continue,
            }
        }
        Ok((0, GENESIS))
    }

    /// Records written so far (the next record's `seq`).
    pub fn record_count(&self) -> u64 {
        self.next_seq
    }

    /// Hash of the last record written ([`GENESIS`] if none).
    pub fn head(&self) -> Digest {
        self.head
    }

    /// The file currently appended to.
    pub fn current_path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: &std::io::Error) -> SinkError {
        SinkError::io(
            self.name.clone(),
            format!("{what} {}", self.path.display()),
            e,
        )
    }

    fn sync_file(&mut self) -> Result<(), SinkError> {
        if !self.unsynced {
            return Ok(());
        }
        self.file.flush().map_err(|e| self.err("flush", &e))?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| self.err("fdatasync", &e))?;
        self.unsynced = false;
        Ok(())
    }

    fn rotate(&mut self, now: SystemTime) -> Result<(), SinkError> {
        self.sync_file()?;
        let path = log_file_path(&self.dir, &self.prefix, self.next_seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                SinkError::io(self.name.clone(), format!("create {}", path.display()), &e)
            })?;
        sync_dir(&self.dir).map_err(|e| {
            SinkError::io(
                self.name.clone(),
                format!("sync {}", self.dir.display()),
                &e,
            )
        })?;
        self.file = BufWriter::with_capacity(self.buffer, file);
        self.path = path;
        self.size = 0;
        self.opened_at = now;
        Ok(())
    }

    fn too_old(&self, now: SystemTime) -> bool {
        self.max_age.is_some_and(|age| {
            now.duration_since(self.opened_at)
                .is_ok_and(|elapsed| elapsed >= age)
        })
    }

    /// Signs and appends a checkpoint of everything written; the log file
    /// is synced first so a checkpoint never covers a record a crash could
    /// lose.
    fn checkpoint(&mut self, now: SystemTime) -> Result<(), SinkError> {
        if self
            .checkpoints
            .as_ref()
            .is_none_or(|c| c.last_count >= self.next_seq)
        {
            return Ok(());
        }
        self.sync_file()?;
        let name = self.name.clone();
        let (count, head, prefix) = (self.next_seq, self.head, self.prefix.clone());
        let Some(cp) = self.checkpoints.as_mut() else {
            return Ok(());
        };
        let checkpoint = Checkpoint::sign(cp.signer.as_ref(), &prefix, count, head, now.into())
            .map_err(|e| SinkError::new(name.clone(), e.to_string()))?;
        let line = checkpoint
            .to_line()
            .map_err(|e| SinkError::new(name.clone(), e.to_string()))?;
        cp.file
            .write_all(&line)
            .and_then(|()| cp.file.sync_data())
            .map_err(|e| SinkError::io(name, format!("append to {}", cp.path.display()), &e))?;
        cp.last_count = count;
        cp.last_time = now;
        if let Some(hook) = cp.hook.as_mut() {
            hook(&checkpoint);
        }
        Ok(())
    }

    fn checkpoint_due(&self, now: SystemTime) -> bool {
        self.checkpoints.as_ref().is_some_and(|c| {
            let new = self.next_seq.saturating_sub(c.last_count);
            new >= c.every_records
                || (new > 0
                    && now
                        .duration_since(c.last_time)
                        .is_ok_and(|d| d >= c.interval))
        })
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, event: &EncodedEvent) -> Result<(), SinkError> {
        if !self.self_recorded.is_empty() {
            let id = &event.event().id;
            if let Some(i) = self.self_recorded.iter().position(|r| r == id) {
                self.self_recorded.swap_remove(i);
                return Ok(());
            }
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let hash = if self.chained {
            let hash = record_hash(self.next_seq, &self.head, event.canonical_json());
            write_record_line(
                &mut line,
                self.next_seq,
                &self.head,
                &hash,
                event.canonical_json(),
            );
            hash
        } else {
            self.format.render(event, &mut line);
            line.push(b'\n');
            GENESIS
        };
        let len = line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate(SystemTime::now())?;
        }
        let written = self.file.write_all(&line);
        self.line = line;
        written.map_err(|e| self.err("append to", &e))?;
        self.size += len;
        self.next_seq += 1;
        self.head = hash;
        self.unsynced = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.file.flush().map_err(|e| self.err("flush", &e))
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.sync_file()?;
        let now = SystemTime::now();
        if self.checkpoint_due(now) {
            self.checkpoint(now)?;
        }
        Ok(())
    }

    fn tick(&mut self, now: SystemTime) -> Result<(), SinkError> {
        if self.size > 0 && self.too_old(now) {
            self.rotate(now)?;
        }
        if self.checkpoint_due(now) {
            self.checkpoint(now)?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.sync_file()?;
        self.checkpoint(SystemTime::now())
    }

    fn take_notices(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.notices)
    }
}
