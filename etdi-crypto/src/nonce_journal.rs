//! A restart-safe [`NonceStore`] for one node: the in-memory store backed
//! by an append-only journal file, so replay protection survives a crash or
//! a restart on the same state directory with no external service.
//!
//! Every accepted nonce is appended to the journal (a 40-byte record: the
//! hashed `(iss, jti)` and its `keep_until`) **before** the check returns,
//! so a request that was accepted, and perhaps executed, is in the file
//! before any answer can leave the process. On open, the live records
//! (`keep_until` after now) are loaded back and the file is rewritten with
//! only those (temporary file, fsync, rename, directory fsync); it is
//! compacted the same way while running once it holds twice the store's
//! capacity, so its size is bounded by the call rate times the validity
//! window. A torn last record (a crash mid-write) is dropped.
//!
//! Durability: an appended record is in the operating system's cache when
//! the check returns, which survives the process being killed (SIGKILL,
//! OOM, panic) but not a power loss or kernel crash before the kernel
//! writes it back (seconds). docs/THREAT_MODEL.md says why that is the
//! default and what to use where power loss matters (a shared store with
//! synchronous persistence).
//!
//! Failures fail closed: a journal that cannot be written refuses the
//! request ([`ReplayError::Unavailable`], naming the file), and a journal
//! that cannot be read refuses to open.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::clock::UnixTime;
use crate::replay::{Key, MemoryNonceStore, NonceStore, ReplayError, hash_key};

/// The first bytes of a journal: format name and version.
const MAGIC: &[u8; 16] = b"etdi-nonces/1\n\0\0";
/// One record: 32-byte key hash, 8-byte big-endian `keep_until` seconds.
const RECORD: usize = 40;
/// Largest journal read on open (a journal is compacted long before this).
const MAX_JOURNAL_BYTES: u64 = 1 << 32;

/// Why a journal could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file operation failed.
    #[error("nonce journal {path}: {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a nonce journal, or holds more than it can.
    #[error("nonce journal {path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, for operators.
        detail: String,
    },
}

/// A [`NonceStore`] that remembers its nonces across restarts (see the
/// module documentation).
#[derive(Debug)]
pub struct JournalNonceStore {
    memory: MemoryNonceStore,
    journal: Mutex<Journal>,
}

#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
    /// Records in the file.
    records: usize,
}

impl JournalNonceStore {
    /// Opens (or creates) the journal at `path`, holding at most `capacity`
    /// live nonces (see [`MemoryNonceStore::capacity_for`]), and loads the
    /// nonces still live at `now`.
    pub fn open(
        path: impl Into<PathBuf>,
        capacity: usize,
        now: UnixTime,
    ) -> Result<Self, JournalError> {
        let path = path.into();
        let memory = MemoryNonceStore::new(capacity);
        let mut live: Vec<(Key, u64)> = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                for (key, until) in read_records(&path, f)? {
                    if until <= now.as_secs() {
                        continue;
                    }
                    match memory.insert_key(key, until, now) {
                        Ok(()) => live.push((key, until)),
                        // The same nonce twice (never written so, but
                        // harmless): keep the first.
                        Err(ReplayError::Replayed) => {}
                        Err(e) => {
                            return Err(JournalError::Invalid {
                                path,
                                detail: format!(
                                    "cannot load its live nonces ({e}); raise the capacity"
                                ),
                            });
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(JournalError::Io {
                    op: "open",
                    path,
                    source,
                });
            }
        }
        let file = rewrite(&path, &live)?;
        Ok(JournalNonceStore {
            memory,
            journal: Mutex::new(Journal {
                path,
                file,
                records: live.len(),
            }),
        })
    }

    /// Live nonces held (as [`MemoryNonceStore::len`]).
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// True when no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }

    /// The synchronous form of [`NonceStore::check_and_insert`] (it waits
    /// only for a write to the OS cache, and for a compaction now and then).
    pub fn check_and_insert_now(
        &self,
        issuer: &str,
        jti: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ReplayError> {
        // One lock around decide-and-append, so the file holds the nonces
        // in the order they were accepted and a compaction sees every one.
        let mut journal = self.journal.lock().map_err(|_| ReplayError::Unavailable {
            reason: "nonce journal lock poisoned".into(),
        })?;
        let key = hash_key(issuer, jti);
        self.memory.insert_key(key, keep_until.as_secs(), now)?;
        let unavailable =
            |what: &str, path: &Path, e: &dyn std::fmt::Display| ReplayError::Unavailable {
                reason: format!("nonce journal {}: {what}: {e}", path.display()),
            };
        let mut rec = [0u8; RECORD];
        rec[..32].copy_from_slice(&key);
        rec[32..].copy_from_slice(&keep_until.as_secs().to_be_bytes());
        // The nonce is already taken in memory: if the write fails the
        // request is refused, and the nonce stays used (fail closed).
        journal
            .file
            .write_all(&rec)
            .map_err(|e| unavailable("append", &journal.path, &e))?;
        journal.records += 1;
        if journal.records >= self.memory.capacity().max(1024).saturating_mul(2) {
            let live = self
                .memory
                .live_entries(now)
                .ok_or_else(|| ReplayError::Unavailable {
                    reason: "replay store lock poisoned".into(),
                })?;
            let file = rewrite(&journal.path, &live)
                .map_err(|e| unavailable("compaction", &journal.path, &e))?;
            journal.file = file;
            journal.records = live.len();
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl NonceStore for JournalNonceStore {
    async fn check_and_insert(
        &self,
        issuer: &str,
        jti: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ReplayError> {
        self.check_and_insert_now(issuer, jti, keep_until, now)
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The complete records of a journal file; a torn last record is dropped.
fn read_records(path: &Path, f: File) -> Result<Vec<(Key, u64)>, JournalError> {
    let mut bytes = Vec::new();
    f.take(MAX_JOURNAL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    if bytes.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(JournalError::Invalid {
            path: path.to_owned(),
            detail: format!("larger than {MAX_JOURNAL_BYTES} bytes"),
        });
    }
    let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(JournalError::Invalid {
            path: path.to_owned(),
            detail: "not an etdi nonce journal (bad header)".into(),
        });
    };
    Ok(body
        .chunks_exact(RECORD)
        .map(|rec| {
            let (k, t) = rec.split_at(32);
            let mut key = [0u8; 32];
            key.copy_from_slice(k);
            let mut until = [0u8; 8];
            until.copy_from_slice(t);
            (key, u64::from_be_bytes(until))
        })
        .collect())
}

/// Replaces the journal with one holding `live` (temporary file, fsync,
/// rename, directory fsync) and returns it open for appending.
fn rewrite(path: &Path, live: &[(Key, u64)]) -> Result<File, JournalError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "nonces".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut bytes = Vec::with_capacity(MAGIC.len() + live.len() * RECORD);
    bytes.extend_from_slice(MAGIC);
    for (key, until) in live {
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&until.to_be_bytes());
    }
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io("rename", path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io("open for append", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    #[test]
    fn a_nonce_stays_used_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let s = JournalNonceStore::open(&path, 100, t(1000)).unwrap();
        s.check_and_insert_now("iss", "a", t(1100), t(1000))
            .unwrap();
        s.check_and_insert_now("iss", "b", t(1010), t(1000))
            .unwrap();
        drop(s);
        let s = JournalNonceStore::open(&path, 100, t(1005)).unwrap();
        assert_eq!(
            s.check_and_insert_now("iss", "a", t(1100), t(1005)),
            Err(ReplayError::Replayed)
        );
        assert_eq!(
            s.check_and_insert_now("iss", "b", t(1010), t(1005)),
            Err(ReplayError::Replayed)
        );
        s.check_and_insert_now("iss", "c", t(1100), t(1005))
            .unwrap();
        drop(s);
        // Expired entries are dropped on open; the file keeps only live ones.
        let s = JournalNonceStore::open(&path, 100, t(1050)).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            fs::metadata(&path).unwrap().len() as usize,
            MAGIC.len() + 2 * RECORD
        );
        s.check_and_insert_now("iss", "b", t(1100), t(1050))
            .unwrap();
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_a_foreign_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let s = JournalNonceStore::open(&path, 100, t(1000)).unwrap();
        s.check_and_insert_now("iss", "a", t(1100), t(1000))
            .unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7u8; 17]).unwrap();
        drop(f);
        let s = JournalNonceStore::open(&path, 100, t(1000)).unwrap();
        assert_eq!(s.len(), 1);
        drop(s);
        fs::write(&path, b"{\"not\": \"a journal\"}").unwrap();
        let e = JournalNonceStore::open(&path, 100, t(1000)).unwrap_err();
        assert!(e.to_string().contains("bad header"), "{e}");
    }

    #[test]
    fn the_journal_is_compacted_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let s = JournalNonceStore::open(&path, 100, t(1000)).unwrap();
        // 3000 accepts, each live for 5 s: far more records than live ones.
        for i in 0..3000u64 {
            let now = t(1000 + i / 10);
            s.check_and_insert_now("iss", &i.to_string(), t(1005 + i / 10), now)
                .unwrap_or_else(|e| panic!("{i}: {e}"));
        }
        let len = fs::metadata(&path).unwrap().len() as usize;
        assert!(len <= MAGIC.len() + 2048 * RECORD, "{len}");
        drop(s);
        let s = JournalNonceStore::open(&path, 100, t(1299)).unwrap();
        assert_eq!(
            s.check_and_insert_now("iss", "2999", t(1305), t(1299)),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn an_unwritable_journal_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let s = JournalNonceStore::open(&path, 10, t(1000)).unwrap();
        // Swap the open file for a read-only handle: appends fail.
        s.journal.lock().unwrap().file = File::open(&path).unwrap();
        let e = s
            .check_and_insert_now("iss", "a", t(1100), t(1000))
            .unwrap_err();
        assert!(matches!(e, ReplayError::Unavailable { .. }), "{e}");
        // The nonce stays used.
        assert_eq!(
            s.check_and_insert_now("iss", "a", t(1100), t(1000)),
            Err(ReplayError::Replayed)
        );
    }
}
