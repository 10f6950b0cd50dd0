//! Crash-safe persistence of a key set in one directory.
//!
//! # Layout
//!
//! ```text
//! keys/
//!   manifest-00000000000000000007.json   the current generation
//!   manifest-00000000000000000006.json   the previous one, kept as a fallback
//!   key-<kid>.pem                        one private key per file, mode 0600
//!   .tmp-*                               leftovers of an interrupted write
//! ```
//!
//! # Why a crash leaves the old or the new state
//!
//! Every file is written to a fresh temporary name, fsynced, moved into place
//! (`rename` for key files, `link` for manifests so that two writers can never
//! overwrite each other's generation), and then the directory is fsynced so
//! the new name itself is durable. Key files are named by their RFC 7638
//! thumbprint, so a name always means the same key. A commit writes the new
//! key files first and the new manifest last; the manifest's appearance is the
//! commit point. Loading takes the newest manifest whose every key file is
//! present, parses and has the thumbprint its name claims; if the newest is
//! unreadable (a torn or hand-damaged file, a missing key) the previous
//! generation is used. Temporary files and unreferenced key files are removed
//! after a commit; a crash during that clean-up leaves only garbage that the
//! next commit removes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `format` of a manifest this crate writes and reads.
pub const MANIFEST_FORMAT: &str = "etdi-keystore/1";
const MANIFEST_PREFIX: &str = "manifest-";
const MANIFEST_SUFFIX: &str = ".json";
const KEY_PREFIX: &str = "key-";
const KEY_SUFFIX: &str = ".pem";
const TMP_PREFIX: &str = ".tmp-";
/// Largest manifest or key file read back, in bytes; a file beyond this is
/// treated as damaged, not read into memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why the key directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("key store: cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Manifests exist but none of them describes a complete, valid key set.
    #[error("key store {path}: no usable generation: {detail}")]
    Corrupt {
        /// The directory.
        path: PathBuf,
        /// What was wrong with the newest generation.
        detail: String,
    },
    /// Another writer committed the same generation first.
    #[error("key store {path}: generation {generation} was written concurrently")]
    Conflict {
        /// The directory.
        path: PathBuf,
        /// The generation both writers tried to create.
        generation: u64,
    },
    /// The directory holds no committed key store (no manifest), or is not
    /// a directory.
    #[error("key store {path}: no key store here (no manifest)")]
    NotFound {
        /// The directory.
        path: PathBuf,
    },
    /// A key file is present and well-formed but cannot be opened with the
    /// configured passphrase (or needs one and none was given).
    #[error("key store: cannot decrypt key `{kid}`: wrong or missing passphrase")]
    Decrypt {
        /// The key id.
        kid: String,
    },
}

/// One key as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestKey {
    /// RFC 7638 thumbprint; also names the key file.
    pub kid: String,
    /// JOSE algorithm the key signs with.
    pub alg: String,
    /// When the key was generated (seconds since the epoch).
    pub created: u64,
    /// When the key stopped being the active one, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<u64>,
}

/// The commit record of one generation of the key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Increases by one with every commit.
    pub generation: u64,
    /// The kid of the active signing key; one of `keys`.
    pub active: String,
    /// Every key in this generation, active and retired.
    pub keys: Vec<ManifestKey>,
}

/// Why one key file could not be used; decides between "this generation is
/// incomplete, fall back" and "stop".
#[derive(Debug)]
pub(crate) enum BlobError {
    /// Missing, torn or not the key its name claims: the generation is
    /// incomplete.
    Damaged(String),
    /// A well-formed file that the passphrase does not open: stop, falling
    /// back would only hide the misconfiguration.
    Decrypt,
}

/// A generation read back from disk.
#[derive(Debug)]
pub(crate) struct Loaded<T> {
    pub manifest: Manifest,
    pub keys: Vec<(ManifestKey, T)>,
    /// Newer generations that were skipped, with why.
    pub skipped: Vec<(u64, String)>,
}

/// A directory holding a key set.
#[derive(Debug)]
pub(crate) struct KeyDir {
    path: PathBuf,
    #[cfg(test)]
    faults: Option<faults::Faults>,
}

impl KeyDir {
    /// Opens (creating, mode 0700) the directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(path).map_err(|source| StoreError::Io {
            op: "create directory",
            path: path.to_owned(),
            source,
        })?;
        Ok(KeyDir {
            path: path.to_owned(),
            #[cfg(test)]
            faults: None,
        })
    }

    /// Opens an existing directory, creating nothing.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(KeyDir {
                path: path.to_owned(),
                #[cfg(test)]
                faults: None,
            }),
            Ok(_) => Err(StoreError::NotFound {
                path: path.to_owned(),
            }),
            Err(source) => Err(StoreError::Io {
                op: "open",
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the newest complete generation, or `None` for a directory that
    /// has never been committed to. `parse` turns one key file into a key and
    /// checks it is the key the manifest names.
    pub fn load<T>(
        &self,
        parse: impl Fn(&ManifestKey, &[u8]) -> Result<T, BlobError>,
    ) -> Result<Option<Loaded<T>>, StoreError> {
        let mut gens = self.generations()?;
        gens.sort_unstable_by(|a, b| b.cmp(a));
        if gens.is_empty() {
            return Ok(None);
        }
        let mut skipped = Vec::new();
        for generation in gens {
            match self.load_generation(generation, &parse) {
                Ok((manifest, keys)) => {
                    return Ok(Some(Loaded {
                        manifest,
                        keys,
                        skipped,
                    }));
                }
                Err(GenError::Stop(e)) => return Err(e),
                Err(GenError::Skip(why)) => skipped.push((generation, why)),
            }
        }
        let detail = skipped
            .first()
            .map(|(g, why)| format!("generation {g}: {why}"))
            .unwrap_or_default();
        Err(StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        })
    }

    fn load_generation<T>(
        &self,
        generation: u64,
        parse: &impl Fn(&ManifestKey, &[u8]) -> Result<T, BlobError>,
    ) -> Result<(Manifest, Vec<(ManifestKey, T)>), GenError> {
        let name = manifest_name(generation);
        let bytes = self.read_small(&name).map_err(GenError::Skip)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| GenError::Skip(format!("{name}: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(GenError::Skip(format!(
                "{name}: unknown format `{}`",
                manifest.format
            )));
        }
        if manifest.generation != generation {
            return Err(GenError::Skip(format!(
                "{name}: records generation {}",
                manifest.generation
            )));
        }
        if !manifest.keys.iter().any(|k| k.kid == manifest.active) {
            return Err(GenError::Skip(format!(
                "{name}: active key is not in the key list"
            )));
        }
        let mut keys = Vec::with_capacity(manifest.keys.len());
        for entry in &manifest.keys {
            if !is_safe_kid(&entry.kid) {
                return Err(GenError::Skip(format!("{name}: unusable key id")));
            }
            if keys
                .iter()
                .any(|(k, _): &(ManifestKey, T)| k.kid == entry.kid)
            {
                return Err(GenError::Skip(format!("{name}: key listed twice")));
            }
            let file = key_name(&entry.kid);
            let blob = self.read_small(&file).map_err(GenError::Skip)?;
            match parse(entry, &blob) {
                Ok(k) => keys.push((entry.clone(), k)),
                Err(BlobError::Damaged(why)) => {
                    return Err(GenError::Skip(format!("{file}: {why}")));
                }
                Err(BlobError::Decrypt) => {
                    return Err(GenError::Stop(StoreError::Decrypt {
                        kid: entry.kid.clone(),
                    }));
                }
            }
        }
        Ok((manifest, keys))
    }

    /// Makes `manifest` the current generation. `blobs` are the key files it
    /// needs that may not be on disk yet, as `(kid, file contents)`.
    pub fn commit(&self, manifest: &Manifest, blobs: &[(&str, &[u8])]) -> Result<(), StoreError> {
        for (kid, bytes) in blobs {
            if !is_safe_kid(kid) {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: "key id cannot name a file".into(),
                });
            }
            let tmp = self.write_temp(&key_name(kid), bytes)?;
            self.step()?;
            let to = self.path.join(key_name(kid));
            fs::rename(&tmp, &to).map_err(|source| StoreError::Io {
                op: "rename",
                path: to,
                source,
            })?;
        }
        if !blobs.is_empty() {
            self.sync_dir()?;
        }
        let text = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        let name = manifest_name(manifest.generation);
        let tmp = self.write_temp(&name, &text)?;
        self.step()?;
        let to = self.path.join(&name);
        // `link` fails if the generation exists: a concurrent writer is
        // detected instead of silently overwritten.
        if let Err(source) = fs::hard_link(&tmp, &to) {
            let _ = fs::remove_file(&tmp);
            return Err(if source.kind() == io::ErrorKind::AlreadyExists {
                StoreError::Conflict {
                    path: self.path.clone(),
                    generation: manifest.generation,
                }
            } else {
                StoreError::Io {
                    op: "link",
                    path: to,
                    source,
                }
            });
        }
        self.step()?;
        self.sync_dir()?;
        // Committed. Clean-up failures leave only garbage for next time.
        self.step()?;
        let _ = fs::remove_file(&tmp);
        self.collect_garbage(manifest)?;
        Ok(())
    }

    /// Removes temporary files, manifests older than the previous generation
    /// and key files that neither the current nor the previous generation
    /// names.
    fn collect_garbage(&self, current: &Manifest) -> Result<(), StoreError> {
        let prev = current.generation.checked_sub(1);
        let mut keep: Vec<String> = current.keys.iter().map(|k| k.kid.clone()).collect();
        if let Some(p) = prev
            && let Ok(bytes) = self.read_small(&manifest_name(p))
            && let Ok(m) = serde_json::from_slice::<Manifest>(&bytes)
        {
            keep.extend(m.keys.into_iter().map(|k| k.kid));
        }
        for name in self.list()? {
            let remove = if name.starts_with(TMP_PREFIX) {
                true
            } else if let Some(g) = parse_manifest_name(&name) {
                g + 1 < current.generation
            } else if let Some(kid) = parse_key_name(&name) {
                !keep.iter().any(|k| k == kid)
            } else {
                false
            };
            if remove {
                self.step()?;
                let _ = fs::remove_file(self.path.join(&name));
            }
        }
        Ok(())
    }

    /// Writes `bytes` to a new temporary file (mode 0600) and fsyncs it.
    fn write_temp(&self, final_name: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let tmp = self
            .path
            .join(format!("{TMP_PREFIX}{final_name}.{}", unique_suffix()));
        let io_err = |op, source| StoreError::Io {
            op,
            path: tmp.clone(),
            source,
        };
        self.step()?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io_err("create", e))?;
        self.write_step(&mut f, bytes)
            .map_err(|e| io_err("write", e))?;
        self.step()?;
        f.sync_all().map_err(|e| io_err("fsync", e))?;
        Ok(tmp)
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        self.step()?;
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::Io {
                op: "fsync directory",
                path: self.path.clone(),
                source,
            })
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>, String> {
        let path = self.path.join(name);
        let meta = fs::metadata(&path).map_err(|e| format!("{name}: {e}"))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!("{name}: larger than {MAX_FILE_BYTES} bytes"));
        }
        fs::read(&path).map_err(|e| format!("{name}: {e}"))
    }

    fn list(&self) -> Result<Vec<String>, StoreError> {
        let rd = fs::read_dir(&self.path).map_err(|source| StoreError::Io {
            op: "list",
            path: self.path.clone(),
            source,
        })?;
        Ok(rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    fn generations(&self) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .list()?
            .iter()
            .filter_map(|n| parse_manifest_name(n))
            .collect())
    }

    /// Writes `bytes`; under fault injection a crash here writes only half.
    fn write_step(&self, f: &mut File, bytes: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(faults) = &self.faults
            && faults.hit()
        {
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            f.write_all(half)?;
            return Err(io::Error::other("injected crash during write"));
        }
        f.write_all(bytes)
    }

    /// A point where a crash can happen; fault injection stops here.
    fn step(&self) -> Result<(), StoreError> {
        #[cfg(test)]
        if let Some(faults) = &self.faults
            && faults.hit()
        {
            return Err(StoreError::Io {
                op: "continue (injected crash)",
                path: self.path.clone(),
                source: io::Error::other("injected crash"),
            });
        }
        Ok(())
    }
}

enum GenError {
    Skip(String),
    Stop(StoreError),
}

fn manifest_name(generation: u64) -> String {
    format!("{MANIFEST_PREFIX}{generation:020}{MANIFEST_SUFFIX}")
}

fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(MANIFEST_PREFIX)?
        .strip_suffix(MANIFEST_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn key_name(kid: &str) -> String {
    format!("{KEY_PREFIX}{kid}{KEY_SUFFIX}")
}

fn parse_key_name(name: &str) -> Option<&str> {
    name.strip_prefix(KEY_PREFIX)?.strip_suffix(KEY_SUFFIX)
}

/// A kid read from a manifest names a file: only base64url characters, so it
/// can never contain a path separator or `..`.
fn is_safe_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Distinct per call within the process and across processes.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos}", std::process::id())
}

#[cfg(test)]
pub(crate) mod faults {
    //! Crash injection for the store's tests.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Crashes at the `crash_at`-th step (0-based) and at every step after,
    /// as a dead process would do nothing more.
    #[derive(Debug, Clone)]
    pub struct Faults {
        crash_at: usize,
        seen: Arc<AtomicUsize>,
    }

    impl Faults {
        pub fn new(crash_at: usize) -> Self {
            Faults {
                crash_at,
                seen: Arc::new(AtomicUsize::new(0)),
            }
        }

        pub fn hit(&self) -> bool {
            self.seen.fetch_add(1, Ordering::SeqCst) >= self.crash_at
        }
    }
}

#[cfg(test)]
impl KeyDir {
    pub(crate) fn with_faults(mut self, faults: faults::Faults) -> Self {
        self.faults = Some(faults);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(generation: u64, kids: &[&str]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            generation,
            active: kids[0].into(),
            keys: kids
                .iter()
                .map(|k| ManifestKey {
                    kid: (*k).into(),
                    alg: "ES256".into(),
                    created: 1,
                    retired: None,
                })
                .collect(),
        }
    }

    /// A blob is "valid" when it reads `key <kid>` exactly.
    fn parse(entry: &ManifestKey, blob: &[u8]) -> Result<String, BlobError> {
        let want = format!("key {}", entry.kid);
        if blob == want.as_bytes() {
            Ok(entry.kid.clone())
        } else {
            Err(BlobError::Damaged("content".into()))
        }
    }

    fn kids(dir: &KeyDir) -> Option<Vec<String>> {
        dir.load(parse)
            .unwrap()
            .map(|l| l.keys.into_iter().map(|(_, k)| k).collect())
    }

    fn commit(dir: &KeyDir, m: &Manifest, new: &[&str]) -> Result<(), StoreError> {
        let blobs: Vec<(String, Vec<u8>)> = new
            .iter()
            .map(|k| ((*k).to_string(), format!("key {k}").into_bytes()))
            .collect();
        let refs: Vec<(&str, &[u8])> = blobs
            .iter()
            .map(|(k, b)| (k.as_str(), b.as_slice()))
            .collect();
        dir.commit(m, &refs)
    }

    #[test]
    fn every_crash_point_leaves_old_or_new() {
        let tmp = tempfile::tempdir().unwrap();
        let mut crash_at = 0;
        loop {
            let path = tmp.path().join(format!("run{crash_at}"));
            let dir = KeyDir::open(&path).unwrap();
            commit(&dir, &manifest(1, &["A"]), &["A"]).unwrap();
            commit(&dir, &manifest(2, &["B", "A"]), &["B"]).unwrap();
            let faults = faults::Faults::new(crash_at);
            let crashing = KeyDir::open(&path).unwrap().with_faults(faults.clone());
            let result = commit(&crashing, &manifest(3, &["C", "B"]), &["C"]);
            let after = kids(&KeyDir::open(&path).unwrap()).unwrap();
            let old = vec!["B".to_string(), "A".to_string()];
            let new = vec!["C".to_string(), "B".to_string()];
            assert!(
                after == old || after == new,
                "crash at {crash_at}: {after:?}"
            );
            if result.is_ok() {
                assert_eq!(after, new);
                // Garbage of earlier generations is gone after a clean run.
                let names = KeyDir::open(&path).unwrap().list().unwrap();
                assert!(
                    !names.iter().any(|n| n.starts_with(TMP_PREFIX)),
                    "{names:?}"
                );
                // Generation 1 is gone; A stays while generation 2 (the
                // fallback) names it.
                assert!(!names.contains(&manifest_name(1)), "{names:?}");
                assert!(names.contains(&"key-A.pem".to_string()), "{names:?}");
                assert!(crash_at > 5);
                break;
            }
            // The next commit after a crash succeeds and cleans up.
            let dir = KeyDir::open(&path).unwrap();
            let g = dir.load(parse).unwrap().unwrap().manifest.generation;
            commit(&dir, &manifest(g + 1, &["D", "C"]), &["D", "C"]).unwrap();
            assert_eq!(kids(&dir).unwrap(), vec!["D".to_string(), "C".to_string()]);
            let names = dir.list().unwrap();
            assert!(
                !names.iter().any(|n| n.starts_with(TMP_PREFIX)),
                "{names:?}"
            );
            crash_at += 1;
            assert!(crash_at < 100);
        }
    }

    #[test]
    fn damaged_newest_generation_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::open(tmp.path()).unwrap();
        assert!(kids(&dir).is_none());
        commit(&dir, &manifest(1, &["A"]), &["A"]).unwrap();
        commit(&dir, &manifest(2, &["B", "A"]), &["B"]).unwrap();
        let p = tmp.path();

        // Manifest pointing at a missing key file.
        fs::remove_file(p.join("key-B.pem")).unwrap();
        let l = dir.load(parse).unwrap().unwrap();
        assert_eq!(l.manifest.generation, 1);
        assert_eq!(l.skipped.len(), 1);
        fs::write(p.join("key-B.pem"), "key B").unwrap();

        // A torn key file (half written).
        fs::write(p.join("key-B.pem"), "key").unwrap();
        assert_eq!(kids(&dir).unwrap(), vec!["A".to_string()]);
        fs::write(p.join("key-B.pem"), "key B").unwrap();

        // A torn manifest.
        let m2 = p.join(manifest_name(2));
        let text = fs::read(&m2).unwrap();
        fs::write(&m2, &text[..text.len() / 2]).unwrap();
        assert_eq!(kids(&dir).unwrap(), vec!["A".to_string()]);
        fs::write(&m2, &text).unwrap();

        // Leftover temporaries and stray files are ignored.
        fs::write(p.join(".tmp-manifest-x"), "{").unwrap();
        fs::write(p.join("manifest-9.json"), "{").unwrap();
        fs::write(p.join("notes.txt"), "hello").unwrap();
        assert_eq!(kids(&dir).unwrap(), vec!["B".to_string(), "A".to_string()]);

        // Manifest whose active key is not listed, and one claiming another
        // generation number.
        let mut bad = manifest(3, &["B"]);
        bad.active = "Z".into();
        fs::write(p.join(manifest_name(3)), serde_json::to_vec(&bad).unwrap()).unwrap();
        fs::write(
            p.join(manifest_name(4)),
            serde_json::to_vec(&manifest(7, &["B"])).unwrap(),
        )
        .unwrap();
        assert_eq!(dir.load(parse).unwrap().unwrap().manifest.generation, 2);

        // Nothing usable at all is an error, never an empty key set.
        for g in 1..=4 {
            let _ = fs::remove_file(p.join(manifest_name(g)));
        }
        fs::write(p.join(manifest_name(5)), "{}").unwrap();
        assert!(matches!(dir.load(parse), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn unsafe_kids_never_name_files() {
        assert!(is_safe_kid("abc-_09XY"));
        for bad in ["", "../x", "a/b", "a.b", "a b", &"a".repeat(129)] {
            assert!(!is_safe_kid(bad), "{bad}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::open(tmp.path()).unwrap();
        let m = manifest(1, &["../evil"]);
        assert!(commit(&dir, &m, &["../evil"]).is_err());
        fs::write(
            tmp.path().join(manifest_name(1)),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        assert!(matches!(dir.load(parse), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn concurrent_generation_is_a_conflict() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::open(tmp.path()).unwrap();
        commit(&dir, &manifest(1, &["A"]), &["A"]).unwrap();
        assert!(matches!(
            commit(&dir, &manifest(1, &["B"]), &["B"]),
            Err(StoreError::Conflict { generation: 1, .. })
        ));
        assert_eq!(kids(&dir).unwrap(), vec!["A".to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ks");
        let dir = KeyDir::open(&path).unwrap();
        commit(&dir, &manifest(1, &["A"]), &["A"]).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);
        assert_eq!(mode(&path.join("key-A.pem")), 0o600);
        assert_eq!(mode(&path.join(manifest_name(1))), 0o600);
    }
}
