//! The approval store as a JSON file, safe across crashes and across
//! processes.
//!
//! Format (`etdi-approvals/1`), mode 0600:
//!
//! ```json
//! {"format": "etdi-approvals/1",
//!  "approvals": [{"server": "...", "provider": "...", "tool": "...", "name": "...",
//!                 "version": "1.0.0", "digest": "sha256:...", "permissions": ["file:read"],
//!                 "signer": {"issuer": "...", "key_id": "..."},
//!                 "approved_by": "alice", "approved_at": "2026-11-24T05:00:00Z",
//!                 "expires_at": "2027-11-24T05:00:00Z", "definition": { ... }}]}
//! ```
//!
//! Every operation runs under an exclusive `flock` on `<file>.lock` (a file
//! that is never replaced, so all processes lock the same inode) and does
//! read-modify-write under it, so two processes approving at once both land.
//! A write goes to a fresh temporary file in the same directory, is
//! `fsync`ed, the current file is renamed to `<file>.bak`, the temporary file
//! is renamed over `<file>`, and the directory is `fsync`ed. At every instant
//! either `<file>` or `<file>.bak` holds a complete, valid state, so a reader
//! that finds `<file>` missing or damaged (a crash mid-write, a truncation by
//! a non-atomic copy) loads `<file>.bak`: the last good state. When both are
//! unreadable the store refuses to load rather than start empty, because an
//! empty store would turn every rug pull into a "first seen" tool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use etdi_core::{ServerId, Timestamp};
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use crate::approval::{Approval, ApprovalKey, ApprovalStore, StoreError, upsert};

/// The `format` member of the file.
pub const FORMAT: &str = "etdi-approvals/1";

/// Largest store file read, so a hostile file cannot exhaust memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    format: String,
    approvals: Vec<Approval>,
}

/// An [`ApprovalStore`] in one JSON file.
#[derive(Debug, Clone)]
pub struct FileApprovalStore {
    path: PathBuf,
    lock_path: PathBuf,
    backup_path: PathBuf,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Why one candidate file could not be loaded.
enum LoadError {
    Missing,
    Bad(String),
}

impl FileApprovalStore {
    /// A store at `path` (created on the first write). The directory must
    /// exist; `<path>.lock`, `<path>.bak` and temporary files live beside it.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let store = FileApprovalStore {
            lock_path: with_suffix(&path, ".lock"),
            backup_path: with_suffix(&path, ".bak"),
            path,
        };
        // Fail at open, not at first use, when the store is unreadable.
        let _guard = store.lock()?;
        store.load()?;
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<File, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock_path)
            .map_err(io_err("opening the lock file"))?;
        // Blocks until the other holder (thread or process) is done; every
        // holder keeps the lock only for one read-modify-write, never while
        // waiting for a person.
        flock(&file, FlockOperation::LockExclusive).map_err(|e| StoreError::Io {
            context: "locking the store".into(),
            source: e.into(),
        })?;
        // Dropping the file closes it, which releases the lock.
        Ok(file)
    }

    fn read_one(path: &Path) -> Result<Vec<Approval>, LoadError> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
            Err(e) => return Err(LoadError::Bad(e.to_string())),
        };
        let mut text = String::new();
        Read::by_ref(&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| LoadError::Bad(e.to_string()))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(LoadError::Bad("file too large".into()));
        }
        let value =
            etdi_core::canonical::parse_json(&text).map_err(|e| LoadError::Bad(e.to_string()))?;
        let form: FileForm =
            serde_json::from_value(value).map_err(|e| LoadError::Bad(e.to_string()))?;
        if form.format != FORMAT {
            return Err(LoadError::Bad(format!(
                "unknown format `{}`, expected `{FORMAT}`",
                form.format
            )));
        }
        for a in &form.approvals {
            a.check_consistent()
                .map_err(|e| LoadError::Bad(e.to_string()))?;
        }
        Ok(form.approvals)
    }

    /// Loads the current state; call with the lock held.
    fn load(&self) -> Result<Vec<Approval>, StoreError> {
        match Self::read_one(&self.path) {
            Ok(list) => Ok(list),
            Err(main) => match Self::read_one(&self.backup_path) {
                // The file is missing (a crash between the two renames) or
                // damaged (a truncation): the backup is the last good state.
                Ok(list) => Ok(list),
                Err(LoadError::Missing) => match main {
                    LoadError::Missing => Ok(Vec::new()),
                    LoadError::Bad(why) => Err(StoreError::Corrupt(format!(
                        "{} is unreadable ({why}) and there is no backup",
                        self.path.display()
                    ))),
                },
                Err(LoadError::Bad(bak)) => match main {
                    // No main file but a bad backup: a crash between the two
                    // renames cannot cause that, so refuse.
                    LoadError::Missing => Err(StoreError::Corrupt(format!(
                        "{} is missing and its backup is unreadable ({bak})",
                        self.path.display()
                    ))),
                    LoadError::Bad(why) => Err(StoreError::Corrupt(format!(
                        "{} is unreadable ({why}) and so is its backup ({bak})",
                        self.path.display()
                    ))),
                },
            },
        }
    }

    /// Writes `list` crash-safely; call with the lock held.
    fn save(&self, list: &[Approval]) -> Result<(), StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let form = FileForm {
            format: FORMAT.into(),
            approvals: list.to_vec(),
        };
        let mut bytes = serde_json::to_vec_pretty(&form)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialise the store: {e}")))?;
        bytes.push(b'\n');
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = with_suffix(
            &self.path,
            &format!(
                ".tmp.{}.{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        );
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err("creating a temporary file"))?;
            f.write_all(&bytes).map_err(io_err("writing the store"))?;
            f.sync_all().map_err(io_err("syncing the store"))?;
            drop(f);
            // Keep the current file as the backup only if it is good: a
            // damaged file must never replace the good backup, or a crash
            // before the next rename would leave nothing loadable.
            if Self::read_one(&self.path).is_ok() {
                fs::rename(&self.path, &self.backup_path)
                    .map_err(io_err("keeping the previous state"))?;
            }
            fs::rename(&tmp, &self.path).map_err(io_err("replacing the store"))?;
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("syncing the store directory"))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes temporary files left by crashed writers (best effort).
    fn sweep_temporaries(&self) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut prefix = name.to_os_string();
        prefix.push(".tmp.");
        let prefix = prefix.to_string_lossy().into_owned();
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    fn modify<T>(&self, f: impl FnOnce(&mut Vec<Approval>) -> T) -> Result<T, StoreError> {
        self.modify_if(|list| (f(list), true))
    }

    /// [`Self::modify`] for a change that may find nothing to do: `f`
    /// says whether it changed the list, and an unchanged list is not
    /// written back (a revocation that matched nothing leaves the file,
    /// its inode and its modification time as they were).
    fn modify_if<T>(
        &self,
        f: impl FnOnce(&mut Vec<Approval>) -> (T, bool),
    ) -> Result<T, StoreError> {
        let _guard = self.lock()?;
        let mut list = self.load()?;
        let (out, changed) = f(&mut list);
        if changed {
            // Under the lock no other writer can be mid-write, so any
            // temporary file present is a crashed writer's leftover.
            self.sweep_temporaries();
            self.save(&list)?;
        }
        Ok(out)
    }

    fn read(&self) -> Result<Vec<Approval>, StoreError> {
        let _guard = self.lock()?;
        self.load()
    }
}

impl ApprovalStore for FileApprovalStore {
    fn get(&self, key: &ApprovalKey, now: Timestamp) -> Result<Option<Approval>, StoreError> {
        Ok(self
            .read()?
            .into_iter()
            .find(|a| &a.key == key && !a.is_expired(now)))
    }

    fn list_server(&self, server: &ServerId, now: Timestamp) -> Result<Vec<Approval>, StoreError> {
        Ok(self
            .read()?
            .into_iter()
            .filter(|a| &a.key.server == server && !a.is_expired(now))
            .collect())
    }

    fn list_all(&self) -> Result<Vec<Approval>, StoreError> {
        self.read()
    }

    fn put(&self, approval: Approval) -> Result<(), StoreError> {
        approval.check_consistent()?;
        self.modify(|list| upsert(list, approval))
    }

    fn revoke(&self, key: &ApprovalKey) -> Result<bool, StoreError> {
        self.modify_if(|list| {
            let before = list.len();
            list.retain(|a| &a.key != key);
            let removed = list.len() != before;
            (removed, removed)
        })
    }

    fn revoke_matching(
        &self,
        matches: &dyn Fn(&Approval) -> bool,
    ) -> Result<Vec<Approval>, StoreError> {
        self.modify_if(|list| {
            let gone = crate::approval::take_matching(list, matches);
            let changed = !gone.is_empty();
            (gone, changed)
        })
    }
}
