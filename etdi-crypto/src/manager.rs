//! The key manager: one active signing key, plus retired keys that still
//! verify for a configured overlap window after a rotation (docs/PROTOCOL.md
//! §8.1), optionally persisted crash-safely in a directory.
//!
//! Rotation happens on demand ([`KeyManager::rotate`]) or by age
//! ([`KeyManager::rotate_if_due`]). A persisted manager changes its
//! in-memory state only after the new state is committed to disk, so a
//! failed write leaves both as they were.
//!
//! Every method that depends on time takes `now`, so tests and simulations
//! move time without sleeping.
//!
//! ```
//! use etdi_crypto::{Algorithm, CryptoProvider, UnixTime};
//! use etdi_crypto::manager::{KeyManager, KeyManagerConfig};
//!
//! let config = KeyManagerConfig::new(Algorithm::ES256).with_overlap_secs(3600);
//! let t0 = UnixTime::from_secs(1_700_000_000);
//! let mut keys = KeyManager::generate(CryptoProvider::get_default(), config, t0)?;
//! let old = keys.active().kid().clone();
//! keys.rotate(t0.plus(10))?;
//! // The old key still verifies during the overlap, then leaves the JWKS.
//! assert!(keys.verification_keys(t0.plus(20)).get(old.as_str(), t0.plus(20)).is_some());
//! assert_eq!(keys.jwks(t0.plus(20)).keys.len(), 2);
//! assert_eq!(keys.jwks(t0.plus(10 + 3600)).keys.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use zeroize::Zeroizing;

use crate::alg::{Algorithm, RsaKeySize};
use crate::clock::UnixTime;
use crate::error::KeyError;
use crate::jwk::JwkSet;
use crate::key::SigningKey;
use crate::provider::CryptoProvider;
use crate::store::{self, BlobError, KeyDir, Manifest, ManifestKey};
// Named in `ManagerError::Store`; exported so callers can match on it.
pub use crate::store::StoreError;
use crate::trust::KeyRing;

/// Default rotation overlap: one day, longer than any cache of a JWKS
/// should live.
pub const DEFAULT_OVERLAP_SECS: u64 = 24 * 3600;
/// Default age after which [`KeyManager::rotate_if_due`] rotates: 90 days.
pub const DEFAULT_ROTATE_AFTER_SECS: u64 = 90 * 24 * 3600;

/// How keys are made and rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyManagerConfig {
    algorithm: Algorithm,
    rsa_size: RsaKeySize,
    overlap_secs: u64,
    rotate_after_secs: Option<u64>,
}

impl KeyManagerConfig {
    /// Keys for `algorithm`, one day of overlap, rotation after 90 days.
    pub fn new(algorithm: Algorithm) -> Self {
        KeyManagerConfig {
            algorithm,
            rsa_size: RsaKeySize::default(),
            overlap_secs: DEFAULT_OVERLAP_SECS,
            rotate_after_secs: Some(DEFAULT_ROTATE_AFTER_SECS),
        }
    }

    /// How long a retired key keeps verifying.
    #[must_use]
    pub fn with_overlap_secs(mut self, secs: u64) -> Self {
        self.overlap_secs = secs;
        self
    }

    /// Age at which the active key is due for rotation; `None` rotates only
    /// on demand.
    #[must_use]
    pub fn with_rotate_after_secs(mut self, secs: Option<u64>) -> Self {
        self.rotate_after_secs = secs;
        self
    }

    /// Modulus size of generated RSA keys.
    #[must_use]
    pub fn with_rsa_size(mut self, size: RsaKeySize) -> Self {
        self.rsa_size = size;
        self
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The overlap window in seconds.
    pub fn overlap_secs(&self) -> u64 {
        self.overlap_secs
    }
}

/// Options of a persisted key store.
#[derive(Clone)]
pub struct StoreOptions {
    passphrase: Option<Zeroizing<String>>,
    kdf_log_n: u8,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            passphrase: None,
            kdf_log_n: crate::store_crypt::DEFAULT_LOG_N,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("encrypted", &self.passphrase.is_some())
            .finish()
    }
}

impl StoreOptions {
    /// Plain PKCS#8 PEM key files, protected by file mode 0600 only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encrypts key files at rest with `passphrase` (PKCS#8 PBES2: scrypt
    /// and AES-256-CBC). Loading then needs the same passphrase.
    #[must_use]
    pub fn with_passphrase(mut self, passphrase: impl Into<String>) -> Self {
        self.passphrase = Some(Zeroizing::new(passphrase.into()));
        self
    }

    /// The scrypt cost `log2(N)` for keys written from now on (default 15;
    /// clamped to 10..=20). Lower values only make sense in tests.
    #[must_use]
    pub fn with_kdf_cost(mut self, log_n: u8) -> Self {
        self.kdf_log_n = log_n.clamp(10, 20);
        self
    }
}

/// Why the key manager could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// Reading or writing the key directory failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Generating or encoding a key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The directory holds keys for another algorithm than configured.
    #[error("the key store holds {found} keys, but {configured} is configured")]
    AlgorithmChanged {
        /// Algorithm of the stored active key.
        found: Algorithm,
        /// Algorithm in the configuration.
        configured: Algorithm,
    },
}

/// A key with its life-cycle dates.
#[derive(Debug, Clone)]
pub struct ManagedKey {
    key: SigningKey,
    created: UnixTime,
    retired: Option<UnixTime>,
}

impl ManagedKey {
    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// When it was generated.
    pub fn created(&self) -> UnixTime {
        self.created
    }

    /// When it stopped being the active key, if it has.
    pub fn retired(&self) -> Option<UnixTime> {
        self.retired
    }
}

/// A key file to write: `(kid, contents)`.
type KeyFile = (String, Zeroizing<Vec<u8>>);

struct Persist {
    dir: KeyDir,
    generation: u64,
    options: StoreOptions,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist")
            .field("dir", &self.dir.path())
            .field("generation", &self.generation)
            .field("options", &self.options)
            .finish()
    }
}

/// The active signing key and the retired keys still in their overlap.
#[derive(Debug)]
pub struct KeyManager {
    provider: &'static CryptoProvider,
    config: KeyManagerConfig,
    active: ManagedKey,
    retired: Vec<ManagedKey>,
    persist: Option<Persist>,
    skipped: Vec<(u64, String)>,
}

impl KeyManager {
    /// A manager holding keys in memory only, starting with a fresh key.
    pub fn generate(
        provider: &'static CryptoProvider,
        config: KeyManagerConfig,
        now: UnixTime,
    ) -> Result<Self, ManagerError> {
        let key = new_key(provider, &config)?;
        Ok(KeyManager {
            provider,
            config,
            active: ManagedKey {
                key,
                created: now,
                retired: None,
            },
            retired: Vec::new(),
            persist: None,
            skipped: Vec::new(),
        })
    }

    /// Opens the key store in `dir`, creating it (with a fresh key) if it
    /// has never been written. After a crash the store holds the state
    /// before or after the interrupted write, never a mix.
    pub fn open(
        provider: &'static CryptoProvider,
        dir: &Path,
        config: KeyManagerConfig,
        options: StoreOptions,
        now: UnixTime,
    ) -> Result<Self, ManagerError> {
        Self::open_dir(provider, KeyDir::open(dir)?, config, options, now)
    }

    fn open_dir(
        provider: &'static CryptoProvider,
        dir: KeyDir,
        config: KeyManagerConfig,
        options: StoreOptions,
        now: UnixTime,
    ) -> Result<Self, ManagerError> {
        let loaded = dir.load(|entry, blob| parse_key_file(provider, entry, blob, &options))?;
        let Some(loaded) = loaded else {
            let mut m = Self::generate(provider, config, now)?;
            let persist = Persist {
                dir,
                generation: 0,
                options,
            };
            let (manifest, blobs) =
                m.next_manifest(&persist, &m.active, &m.retired, &[&m.active])?;
            let refs: Vec<(&str, &[u8])> = blobs
                .iter()
                .map(|(k, b)| (k.as_str(), b.as_slice()))
                .collect();
            persist.dir.commit(&manifest, &refs)?;
            m.persist = Some(Persist {
                generation: manifest.generation,
                ..persist
            });
            return Ok(m);
        };
        Self::from_loaded(provider, dir, loaded, config, options)
    }

    /// Opens a key store that already exists, creating and writing nothing
    /// (for tools that inspect or rotate a store kept by a server). The
    /// algorithm is the one of the stored active key; `configure` turns it
    /// into the configuration (overlap, rotation age, RSA size), which is not
    /// stored. A directory without a committed store is
    /// [`StoreError::NotFound`].
    pub fn open_existing(
        provider: &'static CryptoProvider,
        dir: &Path,
        configure: impl FnOnce(Algorithm) -> KeyManagerConfig,
        options: StoreOptions,
    ) -> Result<Self, ManagerError> {
        let key_dir = KeyDir::open_existing(dir)?;
        let loaded = key_dir
            .load(|entry, blob| parse_key_file(provider, entry, blob, &options))?
            .ok_or_else(|| StoreError::NotFound {
                path: dir.to_owned(),
            })?;
        let algorithm = loaded
            .keys
            .iter()
            .find(|(entry, _)| entry.kid == loaded.manifest.active)
            .map(|(_, key)| key.algorithm())
            .ok_or_else(|| StoreError::Corrupt {
                path: dir.to_owned(),
                detail: "active key missing".into(),
            })?;
        Self::from_loaded(provider, key_dir, loaded, configure(algorithm), options)
    }

    fn from_loaded(
        provider: &'static CryptoProvider,
        dir: KeyDir,
        loaded: store::Loaded<SigningKey>,
        config: KeyManagerConfig,
        options: StoreOptions,
    ) -> Result<Self, ManagerError> {
        let mut active = None;
        let mut retired = Vec::new();
        for (entry, key) in loaded.keys {
            let managed = ManagedKey {
                key,
                created: UnixTime::from_secs(entry.created),
                retired: entry.retired.map(UnixTime::from_secs),
            };
            if entry.kid == loaded.manifest.active {
                active = Some(ManagedKey {
                    retired: None,
                    ..managed
                });
            } else {
                retired.push(managed);
            }
        }
        let Some(active) = active else {
            // load() only returns generations whose active key is listed.
            return Err(StoreError::Corrupt {
                path: dir.path().to_owned(),
                detail: "active key missing".into(),
            }
            .into());
        };
        if active.key.algorithm() != config.algorithm {
            return Err(ManagerError::AlgorithmChanged {
                found: active.key.algorithm(),
                configured: config.algorithm,
            });
        }
        Ok(KeyManager {
            provider,
            config,
            active,
            retired,
            persist: Some(Persist {
                dir,
                // Commits continue above every generation on disk, even a
                // damaged one, whose name a new commit may not reuse.
                generation: loaded
                    .skipped
                    .iter()
                    .map(|(g, _)| *g)
                    .fold(loaded.manifest.generation, u64::max),
                options,
            }),
            skipped: loaded.skipped,
        })
    }

    /// The key that signs now.
    pub fn active(&self) -> &SigningKey {
        &self.active.key
    }

    /// The active key with its dates.
    pub fn active_key(&self) -> &ManagedKey {
        &self.active
    }

    /// Retired keys still held (some may be past their overlap until
    /// [`KeyManager::prune`] runs; they never verify once past it).
    pub fn retired_keys(&self) -> &[ManagedKey] {
        &self.retired
    }

    /// Newer generations of the key store that were unreadable at open
    /// (torn by a crash or damaged by hand) and were skipped in favour of an
    /// older complete one, with why. Empty in the normal case; worth a log
    /// line otherwise.
    pub fn skipped_generations(&self) -> &[(u64, String)] {
        &self.skipped
    }

    /// The highest store generation this manager has seen on disk or
    /// written (0 in memory); the next commit writes the one after it.
    pub fn generation(&self) -> u64 {
        self.persist.as_ref().map_or(0, |p| p.generation)
    }

    /// The configuration.
    pub fn config(&self) -> &KeyManagerConfig {
        &self.config
    }

    /// Whether the active key is older than the rotation age.
    pub fn is_rotation_due(&self, now: UnixTime) -> bool {
        self.config
            .rotate_after_secs
            .is_some_and(|age| now >= self.active.created.plus(age))
    }

    /// Makes a fresh key active and retires the current one, which keeps
    /// verifying for the overlap window. Retired keys past their overlap are
    /// dropped at the same time.
    pub fn rotate(&mut self, now: UnixTime) -> Result<&SigningKey, ManagerError> {
        let fresh = ManagedKey {
            key: new_key(self.provider, &self.config)?,
            created: now,
            retired: None,
        };
        let mut retired: Vec<ManagedKey> = self
            .retired
            .iter()
            .filter(|k| self.in_overlap(k, now))
            .cloned()
            .collect();
        retired.insert(
            0,
            ManagedKey {
                retired: Some(now),
                ..self.active.clone()
            },
        );
        self.commit(&fresh, &retired, &[&fresh])?;
        self.active = fresh;
        self.retired = retired;
        Ok(&self.active.key)
    }

    /// Rotates if the active key is older than the configured age; returns
    /// whether it did.
    pub fn rotate_if_due(&mut self, now: UnixTime) -> Result<bool, ManagerError> {
        if !self.is_rotation_due(now) {
            return Ok(false);
        }
        self.rotate(now)?;
        Ok(true)
    }

    /// Drops retired keys whose overlap has ended; returns how many.
    pub fn prune(&mut self, now: UnixTime) -> Result<usize, ManagerError> {
        let keep: Vec<ManagedKey> = self
            .retired
            .iter()
            .filter(|k| self.in_overlap(k, now))
            .cloned()
            .collect();
        let dropped = self.retired.len() - keep.len();
        if dropped > 0 {
            let active = self.active.clone();
            self.commit(&active, &keep, &[])?;
            self.retired = keep;
        }
        Ok(dropped)
    }

    /// The public keys that verify at `now` (the active key without limit,
    /// retired keys until the end of their overlap), for this manager's own
    /// verifiers.
    pub fn verification_keys(&self, now: UnixTime) -> KeyRing {
        let mut ring = KeyRing::new();
        ring.insert(self.active.key.verifying_key().clone());
        for k in &self.retired {
            if let Some(until) = self.overlap_end(k)
                && now < until
            {
                ring.insert_until(k.key.verifying_key().clone(), until);
            }
        }
        ring
    }

    /// The JWKS to publish at `now`: the active key and the retired keys
    /// still in their overlap.
    pub fn jwks(&self, now: UnixTime) -> JwkSet {
        let ring = self.verification_keys(now);
        JwkSet {
            keys: ring.valid_at(now).map(|k| k.to_jwk()).collect(),
        }
    }

    fn overlap_end(&self, k: &ManagedKey) -> Option<UnixTime> {
        k.retired.map(|r| r.plus(self.config.overlap_secs))
    }

    fn in_overlap(&self, k: &ManagedKey, now: UnixTime) -> bool {
        self.overlap_end(k).is_some_and(|until| now < until)
    }

    /// Persists the state (`active`, `retired`) if this manager is
    /// persisted; `new_keys` are the keys whose files must be written.
    fn commit(
        &mut self,
        active: &ManagedKey,
        retired: &[ManagedKey],
        new_keys: &[&ManagedKey],
    ) -> Result<(), ManagerError> {
        let Some(persist) = &self.persist else {
            return Ok(());
        };
        let (manifest, blobs) = self.next_manifest(persist, active, retired, new_keys)?;
        let refs: Vec<(&str, &[u8])> = blobs
            .iter()
            .map(|(k, b)| (k.as_str(), b.as_slice()))
            .collect();
        persist.dir.commit(&manifest, &refs)?;
        if let Some(p) = &mut self.persist {
            p.generation = manifest.generation;
        }
        Ok(())
    }

    fn next_manifest(
        &self,
        persist: &Persist,
        active: &ManagedKey,
        retired: &[ManagedKey],
        new_keys: &[&ManagedKey],
    ) -> Result<(Manifest, Vec<KeyFile>), ManagerError> {
        let entry = |k: &ManagedKey| ManifestKey {
            kid: k.key.thumbprint().as_str().to_owned(),
            alg: k.key.algorithm().name().to_owned(),
            created: k.created.as_secs(),
            retired: k.retired.map(UnixTime::as_secs),
        };
        let mut keys = vec![entry(active)];
        keys.extend(retired.iter().map(entry));
        let manifest = Manifest {
            format: store::MANIFEST_FORMAT.to_owned(),
            generation: persist.generation + 1,
            active: active.key.thumbprint().as_str().to_owned(),
            keys,
        };
        let mut blobs = Vec::with_capacity(new_keys.len());
        for k in new_keys {
            blobs.push((
                k.key.thumbprint().as_str().to_owned(),
                encode_key_file(&k.key, &persist.options)?,
            ));
        }
        Ok((manifest, blobs))
    }
}

fn new_key(provider: &CryptoProvider, config: &KeyManagerConfig) -> Result<SigningKey, KeyError> {
    match config.algorithm.key_type() {
        crate::alg::KeyType::Rsa => {
            SigningKey::generate_rsa(provider, config.algorithm, config.rsa_size)
        }
        _ => SigningKey::generate(provider, config.algorithm),
    }
}

/// The bytes of a key file: PKCS#8 PEM, encrypted when a passphrase is set.
fn encode_key_file(
    key: &SigningKey,
    options: &StoreOptions,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match &options.passphrase {
        None => {
            let pem = key.to_pkcs8_pem()?;
            Ok(Zeroizing::new(pem.as_bytes().to_vec()))
        }
        Some(pass) => crate::store_crypt::encrypt_pkcs8_pem(
            &key.to_pkcs8_der(),
            pass.as_bytes(),
            options.kdf_log_n,
        ),
    }
}

/// Reads one key file and checks it is the key the manifest names.
fn parse_key_file(
    provider: &CryptoProvider,
    entry: &ManifestKey,
    blob: &[u8],
    options: &StoreOptions,
) -> Result<SigningKey, BlobError> {
    let damaged = |why: &str| BlobError::Damaged(why.to_owned());
    let alg = Algorithm::parse(&entry.alg).map_err(|_| damaged("unknown algorithm"))?;
    let text = std::str::from_utf8(blob).map_err(|_| damaged("not text"))?;
    let der = if crate::store_crypt::is_encrypted_pem(text) {
        let pass = options.passphrase.as_ref().ok_or(BlobError::Decrypt)?;
        crate::store_crypt::decrypt_pkcs8_pem(text, pass.as_bytes())?
    } else {
        if options.passphrase.is_some() {
            // A plain key where encrypted ones are expected: someone replaced
            // the file, or the store was never encrypted. Refuse either way.
            return Err(BlobError::Decrypt);
        }
        return SigningKey::from_pkcs8_pem(provider, text, alg)
            .map_err(|e| BlobError::Damaged(e.to_string()))
            .and_then(|k| check_kid(k, entry));
    };
    SigningKey::from_pkcs8_der(provider, &der, alg)
        .map_err(|e| BlobError::Damaged(e.to_string()))
        .and_then(|k| check_kid(k, entry))
}

fn check_kid(key: SigningKey, entry: &ManifestKey) -> Result<SigningKey, BlobError> {
    if key.thumbprint().as_str() == entry.kid {
        Ok(key)
    } else {
        Err(BlobError::Damaged(
            "key does not match its thumbprint".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::faults::Faults;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    fn cfg() -> KeyManagerConfig {
        KeyManagerConfig::new(Algorithm::ES256)
            .with_overlap_secs(100)
            .with_rotate_after_secs(Some(1000))
    }

    fn provider() -> &'static CryptoProvider {
        CryptoProvider::get_default()
    }

    /// Key ids, active first.
    fn kids(m: &KeyManager) -> Vec<String> {
        std::iter::once(m.active())
            .chain(m.retired_keys().iter().map(ManagedKey::key))
            .map(|k| k.thumbprint().as_str().to_owned())
            .collect()
    }

    fn open(dir: &Path, now: u64) -> KeyManager {
        KeyManager::open(provider(), dir, cfg(), StoreOptions::new(), t(now)).unwrap()
    }

    #[test]
    fn crash_at_every_step_of_a_rotation_leaves_old_or_new() {
        let mut crash_at = 0;
        loop {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let mut m = open(dir, 1000);
            m.rotate(t(1010)).unwrap();
            let old = kids(&m);
            assert_eq!(old.len(), 2);

            let faulty = KeyDir::open(dir)
                .unwrap()
                .with_faults(Faults::new(crash_at));
            let mut m2 =
                KeyManager::open_dir(provider(), faulty, cfg(), StoreOptions::new(), t(1020))
                    .unwrap();
            let result = m2.rotate(t(1020)).map(|k| k.thumbprint().clone());
            if result.is_err() {
                // A failed commit leaves the in-memory state untouched.
                assert_eq!(kids(&m2), old, "crash at {crash_at}");
            }

            let mut reopened = open(dir, 1030);
            let got = kids(&reopened);
            let is_old = got == old;
            let is_new = got.len() == 3 && got[1..] == old[..];
            assert!(is_old || is_new, "crash at {crash_at}: {got:?} vs {old:?}");
            if let Ok(new_kid) = &result {
                assert!(is_new);
                assert_eq!(got[0], new_kid.as_str());
            }
            // The reopened store works: it signs and can rotate again, and
            // that commit cleans up whatever the crash left behind.
            assert!(reopened.active().sign(b"x").is_ok());
            reopened.rotate(t(1040)).unwrap();
            let names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert!(!names.iter().any(|n| n.starts_with(".tmp-")), "{names:?}");
            assert_eq!(kids(&open(dir, 1050)), kids(&reopened));

            if result.is_ok() {
                assert!(crash_at > 8, "too few crash points exercised");
                break;
            }
            crash_at += 1;
            assert!(crash_at < 200);
        }
    }

    #[test]
    fn crash_while_creating_a_store_leaves_nothing_or_the_new_store() {
        let mut crash_at = 0;
        loop {
            let tmp = tempfile::tempdir().unwrap();
            let faulty = KeyDir::open(tmp.path())
                .unwrap()
                .with_faults(Faults::new(crash_at));
            let result =
                KeyManager::open_dir(provider(), faulty, cfg(), StoreOptions::new(), t(1000));
            let reopened = open(tmp.path(), 1001);
            match &result {
                Ok(m) => {
                    assert_eq!(kids(&reopened), kids(m));
                    break;
                }
                // Nothing was committed: reopening made a fresh key set.
                Err(_) => assert_eq!(reopened.generation(), 1),
            }
            crash_at += 1;
            assert!(crash_at < 100);
        }
    }

    #[test]
    fn damaged_newest_generation_falls_back_to_the_previous_key_set() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut m = open(dir, 1000);
        let first = kids(&m);
        m.rotate(t(1010)).unwrap();
        let new_active = m.active().thumbprint().as_str().to_owned();
        let key_file = dir.join(format!("key-{new_active}.pem"));

        // A manifest pointing at a missing key file.
        let saved = std::fs::read(&key_file).unwrap();
        std::fs::remove_file(&key_file).unwrap();
        let r = open(dir, 1020);
        assert_eq!(kids(&r), first);
        assert_eq!(r.skipped_generations().len(), 1);
        // Rotating from the fallback state commits above the damaged
        // generation instead of colliding with it.
        let dir2 = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let e = entry.unwrap();
            std::fs::copy(e.path(), dir2.path().join(e.file_name())).unwrap();
        }
        let mut r2 = open(dir2.path(), 1020);
        r2.rotate(t(1025)).unwrap();
        assert_eq!(r2.generation(), 3);
        assert_eq!(kids(&open(dir2.path(), 1030)), kids(&r2));

        // A torn key file.
        std::fs::write(&key_file, &saved[..saved.len() / 2]).unwrap();
        assert_eq!(kids(&open(dir, 1020)), first);

        // Another key's content under this key's name.
        let other = dir.join(format!("key-{}.pem", first[0]));
        std::fs::copy(&other, &key_file).unwrap();
        assert_eq!(kids(&open(dir, 1020)), first);

        std::fs::write(&key_file, &saved).unwrap();
        assert_eq!(kids(&open(dir, 1020)), kids(&m));
    }

    #[test]
    fn rotation_overlap_and_age_policy() {
        let mut m = KeyManager::generate(provider(), cfg(), t(1000)).unwrap();
        assert!(!m.rotate_if_due(t(1999)).unwrap());
        let old = m.active().clone();
        assert!(m.rotate_if_due(t(2000)).unwrap());
        assert_ne!(m.active().thumbprint(), old.thumbprint());
        let ring = m.verification_keys(t(2050));
        assert!(ring.get(old.kid().as_str(), t(2050)).is_some());
        // The ring handed out during the overlap stops trusting the old key
        // when the overlap ends, even if nobody refreshes it.
        assert!(ring.get(old.kid().as_str(), t(2100)).is_none());
        assert_eq!(m.jwks(t(2099)).keys.len(), 2);
        assert_eq!(m.jwks(t(2100)).keys.len(), 1);
        assert_eq!(m.prune(t(2099)).unwrap(), 0);
        assert_eq!(m.prune(t(2100)).unwrap(), 1);
        assert!(m.retired_keys().is_empty());
    }

    #[test]
    fn persisted_retired_keys_keep_their_dates() {
        let tmp = tempfile::tempdir().unwrap();
        let mut m = open(tmp.path(), 1000);
        m.rotate(t(1500)).unwrap();
        let r = open(tmp.path(), 1501);
        assert_eq!(r.retired_keys()[0].retired(), Some(t(1500)));
        assert_eq!(r.retired_keys()[0].created(), t(1000));
        assert_eq!(r.active_key().created(), t(1500));
        // Reopened after the overlap, the old key no longer verifies.
        assert_eq!(r.jwks(t(1600)).keys.len(), 1);
        let other = KeyManagerConfig::new(Algorithm::ES384);
        assert!(matches!(
            KeyManager::open(provider(), tmp.path(), other, StoreOptions::new(), t(1502)),
            Err(ManagerError::AlgorithmChanged { .. })
        ));
    }

    #[test]
    fn open_existing_creates_nothing_and_reads_the_stored_algorithm() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("keys");
        let options = StoreOptions::new;
        let configure = |alg| KeyManagerConfig::new(alg).with_overlap_secs(100);
        assert!(matches!(
            KeyManager::open_existing(provider(), &missing, configure, options()),
            Err(ManagerError::Store(StoreError::Io { .. }))
        ));
        assert!(!missing.exists());
        std::fs::create_dir(&missing).unwrap();
        assert!(matches!(
            KeyManager::open_existing(provider(), &missing, configure, options()),
            Err(ManagerError::Store(StoreError::NotFound { .. }))
        ));
        assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0);

        let mut m = open(&missing, 1000);
        m.rotate(t(1500)).unwrap();
        let before = kids(&m);
        let mut seen = None;
        let r = KeyManager::open_existing(
            provider(),
            &missing,
            |alg| {
                seen = Some(alg);
                configure(alg)
            },
            options(),
        )
        .unwrap();
        assert_eq!(seen, Some(Algorithm::ES256));
        assert_eq!(kids(&r), before);
        assert_eq!(r.retired_keys()[0].retired(), Some(t(1500)));
        assert_eq!(r.config().overlap_secs(), 100);
    }

    #[test]
    fn encrypted_key_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let opts = || {
            StoreOptions::new()
                .with_passphrase("correct horse")
                .with_kdf_cost(10)
        };
        let mut m = KeyManager::open(provider(), dir, cfg(), opts(), t(1000)).unwrap();
        m.rotate(t(1010)).unwrap();
        let active = m.active().thumbprint().as_str().to_owned();
        let text = std::fs::read_to_string(dir.join(format!("key-{active}.pem"))).unwrap();
        assert!(
            text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{text}"
        );
        let r = KeyManager::open(provider(), dir, cfg(), opts(), t(1020)).unwrap();
        assert_eq!(kids(&r), kids(&m));

        // Wrong or missing passphrase stops; it never falls back or starts
        // a new key set.
        let wrong = StoreOptions::new()
            .with_passphrase("wrong")
            .with_kdf_cost(10);
        assert!(matches!(
            KeyManager::open(provider(), dir, cfg(), wrong, t(1020)),
            Err(ManagerError::Store(StoreError::Decrypt { .. }))
        ));
        assert!(matches!(
            KeyManager::open(provider(), dir, cfg(), StoreOptions::new(), t(1020)),
            Err(ManagerError::Store(StoreError::Decrypt { .. }))
        ));

        // A torn encrypted file is damage, not a wrong passphrase: fall back.
        let path = dir.join(format!("key-{active}.pem"));
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let r = KeyManager::open(provider(), dir, cfg(), opts(), t(1020)).unwrap();
        assert_eq!(kids(&r), kids(&m)[1..].to_vec());
    }
}
