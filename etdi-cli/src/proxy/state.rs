//! The gateway's state directory: an exclusive lock (one gateway per
//! directory), generated keys, and durable file replacement.
//!
//! Files are replaced atomically: written to a fresh temporary file in the
//! same directory, `fsync`ed, renamed into place, and the directory is
//! `fsync`ed, so after a crash either the old or the new content is there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
use rustix::fs::{FlockOperation, flock};

/// The held lock on a state directory; released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Creates `dir` (mode 0700) if needed and takes its exclusive lock.
pub fn lock(dir: &Path) -> Result<StateLock, String> {
    create_dir(dir)?;
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        format!(
            "another etdi proxy is using the state directory {} (its lock file is held)",
            dir.display()
        )
    })?;
    Ok(StateLock { _file: file })
}

/// Creates a directory and its parents, new ones with mode 0700.
pub fn create_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))
}

/// Replaces `path` with `bytes` durably (see the module docs); the file gets
/// `mode`.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    // A temporary file left by a crashed run of this process id is stale.
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("cannot write", e))?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("cannot write", e));
    }
    drop(f);
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io("cannot replace", e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the directory of", e))
}

/// The private key at `path` (PKCS#8 PEM), generated with `alg` and stored
/// (mode 0600) when the file does not exist yet.
pub fn key(path: &Path, alg: Algorithm) -> Result<SigningKey, String> {
    match fs::read_to_string(path) {
        Ok(pem) => SigningKey::from_pkcs8_pem(CryptoProvider::get_default(), &pem, alg)
            .map_err(|e| format!("{} is not a PKCS#8 {alg} private key: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(CryptoProvider::get_default(), alg)
                .map_err(|e| format!("cannot generate a {alg} key: {e}"))?;
            let pem = key
                .to_pkcs8_pem()
                .map_err(|e| format!("cannot encode the generated key: {e}"))?;
            write_atomically(path, pem.as_bytes(), 0o600)?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Where the gateway keeps each of its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Upstream tool pins.
    pub pins: PathBuf,
    /// The generated attestation key (when none is configured).
    pub attestation_key: PathBuf,
    /// The audit log's checkpoint key.
    pub audit_key: PathBuf,
}

impl Paths {
    /// The files in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Paths {
            pins: state_dir.join("pins.json"),
            attestation_key: state_dir.join("attestation-key.pem"),
            audit_key: state_dir.join("audit-checkpoint-key.pem"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_generated_key_is_reused_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let a = key(&path, Algorithm::ES256).unwrap();
        let b = key(&path, Algorithm::ES256).unwrap();
        assert_eq!(a.kid(), b.kid());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_state_directory_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let e = lock(dir.path()).unwrap_err();
        assert!(e.contains("another etdi proxy"), "{e}");
        drop(held);
        lock(dir.path()).unwrap();
    }
}
