//! The crypto provider: which backend generates keys, signs and verifies, in
//! the style of rustls' `CryptoProvider` (a value made of trait objects, with
//! a process-wide default).
//!
//! Backends only see DER they can parse natively (PKCS#8 for private keys,
//! SubjectPublicKeyInfo for public keys) and an [`Algorithm`] that the common
//! layer has already checked against the key. Everything format-related (PEM,
//! JWK, thumbprints, size and curve checks) lives above them, once, so the
//! backends cannot disagree on it.

use std::fmt;
use std::sync::OnceLock;

use zeroize::Zeroizing;

use crate::alg::{Algorithm, KeySpec};
use crate::error::{BadSignature, CryptoFailure};

/// A set of backend implementations. Cheap to copy: it only holds `'static`
/// references.
///
/// ```
/// use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
///
/// let provider = CryptoProvider::get_default();
/// let key = SigningKey::generate(provider, Algorithm::ES256)?;
/// let sig = key.sign(b"hello")?;
/// key.verifying_key().verify(b"hello", &sig)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct CryptoProvider {
    /// A short name for logs and diagnostics (`"aws-lc-rs"`, `"rust-crypto"`).
    pub name: &'static str,
    /// Key generation, parsing, signing and verification.
    pub keys: &'static dyn KeyBackend,
    /// The cryptographically secure random generator.
    pub random: &'static dyn SecureRandom,
}

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoProvider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

static DEFAULT: OnceLock<CryptoProvider> = OnceLock::new();

impl CryptoProvider {
    /// Makes `self` the process default. Succeeds once; later calls return
    /// the provider already installed, so two libraries cannot silently
    /// switch the backend under each other.
    pub fn install_default(self) -> Result<(), &'static CryptoProvider> {
        let mut installed = false;
        let current = DEFAULT.get_or_init(|| {
            installed = true;
            self
        });
        if installed { Ok(()) } else { Err(current) }
    }

    /// The process default: the provider installed with
    /// [`CryptoProvider::install_default`], otherwise aws-lc-rs (which is
    /// then installed, so the answer never changes afterwards).
    pub fn get_default() -> &'static CryptoProvider {
        DEFAULT.get_or_init(crate::backend::aws_lc::provider)
    }

    /// Fills `dest` with cryptographically secure random bytes (nonces, `jti`).
    pub fn fill_random(&self, dest: &mut [u8]) -> Result<(), CryptoFailure> {
        self.random.fill(dest)
    }
}

/// A backend's key operations. Implementations receive DER that the common
/// layer has parsed and checked (algorithm family, curve, RSA size); they
/// parse it once into their own key type.
pub trait KeyBackend: Send + Sync {
    /// Generates a key and returns it as PKCS#8 v1 DER.
    fn generate(&self, spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, CryptoFailure>;

    /// Parses a PKCS#8 private key for signing with `alg`. The error is
    /// opaque: the common layer reports format problems before this is called.
    fn signing_key(
        &self,
        alg: Algorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn SigningKeyImpl>, KeyRejected>;

    /// Parses a SubjectPublicKeyInfo for verifying `alg` signatures.
    fn verifying_key(
        &self,
        alg: Algorithm,
        spki_der: &[u8],
    ) -> Result<Box<dyn VerifyingKeyImpl>, KeyRejected>;
}

/// A parsed private key inside a backend.
pub trait SigningKeyImpl: Send + Sync {
    /// Signs `message`, producing the JOSE encoding (ECDSA as `r || s`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoFailure>;

    /// The public half as SubjectPublicKeyInfo DER. Called once, at load.
    fn public_key_spki(&self) -> Result<Vec<u8>, CryptoFailure>;
}

/// A parsed public key inside a backend.
pub trait VerifyingKeyImpl: Send + Sync {
    /// Verifies a JOSE-encoded signature over `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature>;
}

/// A source of cryptographically secure random bytes.
pub trait SecureRandom: Send + Sync {
    /// Fills `dest` entirely, or fails.
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoFailure>;
}

/// A backend refused key material. Opaque, like the backends' own errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KeyRejected;

impl fmt::Display for KeyRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("key rejected by the crypto backend")
    }
}

impl std::error::Error for KeyRejected {}
