//! Signing and verifying keys: generation, PEM/DER/JWK import and export,
//! RFC 7638 key ids. A key is parsed once, bound to one algorithm, and kept
//! parsed inside the backend; signing and verifying never re-parse.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::B64;
use crate::alg::{Algorithm, KeySpec, KeyType, RsaKeySize};
use crate::error::{BadSignature, CryptoFailure, KeyError};
use crate::jwk::Jwk;
use crate::key_der::{self, PrivateParts, PublicParts};
use crate::provider::{CryptoProvider, SigningKeyImpl, VerifyingKeyImpl};

/// Longest key id accepted, in bytes.
pub const MAX_KID_BYTES: usize = 256;

/// A key id (`kid`). Keys made here use their RFC 7638 thumbprint; keys
/// imported from a JWK keep the JWK's `kid`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// Validates a key id: 1 to 256 bytes, no control characters.
    pub fn new(kid: impl Into<String>) -> Result<Self, KeyError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(KeyError::KeyId { problem: "empty" });
        }
        if kid.len() > MAX_KID_BYTES {
            return Err(KeyError::KeyId {
                problem: "longer than 256 bytes",
            });
        }
        if kid.chars().any(char::is_control) {
            return Err(KeyError::KeyId {
                problem: "contains control characters",
            });
        }
        Ok(KeyId(Arc::from(kid)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

// Lets maps keyed by `KeyId` be searched with a `&str` (ordering and
// equality are those of the text, so this is sound).
impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        KeyId::new(s).map_err(serde::de::Error::custom)
    }
}

/// A public key bound to one algorithm, parsed once by its backend.
///
/// Cloning is cheap (reference counted). `Debug` shows the algorithm, key id
/// and thumbprint only.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    kid: KeyId,
    thumbprint: KeyId,
    parts: Arc<PublicParts>,
    backend: Arc<dyn VerifyingKeyImpl>,
    provider: &'static str,
}

impl VerifyingKey {
    fn from_parts(
        provider: &CryptoProvider,
        parts: PublicParts,
        alg: Algorithm,
        kid: Option<KeyId>,
    ) -> Result<Self, KeyError> {
        parts.validate()?;
        key_der::check_algorithm(alg, parts.key_type(), parts.rsa_bits())?;
        let spki = parts.to_spki_der()?;
        let backend = provider
            .keys
            .verifying_key(alg, &spki)
            .map_err(|_| KeyError::Rejected)?;
        let thumbprint = thumbprint_of(&parts);
        Ok(VerifyingKey {
            alg,
            kid: kid.unwrap_or_else(|| thumbprint.clone()),
            thumbprint,
            parts: Arc::new(parts),
            backend: Arc::from(backend),
            provider: provider.name,
        })
    }

    /// Imports a SubjectPublicKeyInfo (DER) for `alg`.
    pub fn from_spki_der(
        provider: &CryptoProvider,
        der: &[u8],
        alg: Algorithm,
    ) -> Result<Self, KeyError> {
        Self::from_parts(provider, PublicParts::from_spki_der(der)?, alg, None)
    }

    /// Imports a `PUBLIC KEY` PEM block for `alg`.
    pub fn from_spki_pem(
        provider: &CryptoProvider,
        pem: &str,
        alg: Algorithm,
    ) -> Result<Self, KeyError> {
        let der = key_der::pem_decode(pem, "PUBLIC KEY")?;
        Self::from_spki_der(provider, &der, alg)
    }

    /// Imports a public JWK (private members, if any, are ignored).
    ///
    /// The algorithm comes from `alg`, else from the JWK's `alg` member, else
    /// from the curve for EC and Ed25519 keys; an RSA key with neither is
    /// refused ([`KeyError::AlgorithmRequired`]). If both are given they must
    /// agree. The key keeps the JWK's `kid`, or its thumbprint if it has none.
    pub fn from_jwk(
        provider: &CryptoProvider,
        jwk: &Jwk,
        alg: Option<Algorithm>,
    ) -> Result<Self, KeyError> {
        let parts = jwk.public_parts()?;
        let alg = jwk.resolve_algorithm(alg, parts.key_type())?;
        let kid = jwk.kid().map(KeyId::new).transpose()?;
        Self::from_parts(provider, parts, alg, kid)
    }

    /// Verifies `signature` over `message`. The failure is opaque.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        // Both backends get signatures of exactly the JOSE size, so neither
        // can be lenient about a stripped or extra leading byte.
        if signature.len() != self.signature_len() {
            return Err(BadSignature);
        }
        self.backend.verify(message, signature)
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id used to find this key.
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// The RFC 7638 thumbprint (base64url SHA-256), whatever the `kid`.
    pub fn thumbprint(&self) -> &KeyId {
        &self.thumbprint
    }

    /// The key type (RSA, EC curve, Ed25519).
    pub fn key_type(&self) -> KeyType {
        self.parts.key_type()
    }

    /// The RSA modulus size in bits; `None` for other keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        self.parts.rsa_bits()
    }

    /// The name of the provider that parsed the key.
    pub fn provider_name(&self) -> &'static str {
        self.provider
    }

    /// Replaces the key id.
    #[must_use]
    pub fn with_kid(mut self, kid: KeyId) -> Self {
        self.kid = kid;
        self
    }

    /// The size in bytes of a valid signature for this key.
    pub fn signature_len(&self) -> usize {
        match &*self.parts {
            PublicParts::Rsa { n, .. } => key_der::bit_len(n).div_ceil(8),
            PublicParts::Ec { curve, .. } => 2 * curve.field_len(),
            PublicParts::Ed25519 { .. } => 64,
        }
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        self.parts.to_spki_der()
    }

    /// A `PUBLIC KEY` PEM block.
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        let der = self.to_spki_der()?;
        Ok(key_der::pem_encode("PUBLIC KEY", &der)?.to_string())
    }

    /// The public JWK, with `kid`, `alg` and `use: "sig"` set.
    pub fn to_jwk(&self) -> Jwk {
        Jwk::from_public_parts(&self.parts, Some(self.alg), Some(self.kid.as_str()))
    }

    /// Whether two keys are the same public key (ignoring `kid` and algorithm).
    pub fn same_key_as(&self, other: &VerifyingKey) -> bool {
        self.parts == other.parts
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid.as_str())
            .field("thumbprint", &self.thumbprint.as_str())
            .field("provider", &self.provider)
            .finish()
    }
}

/// A private key bound to one algorithm, parsed once by its backend.
///
/// Cloning is cheap (reference counted). The PKCS#8 form kept for export is
/// zeroized when the last clone is dropped; the backend's own key object is
/// zeroized as far as the backend allows (RustCrypto keys zeroize; aws-lc
/// frees its keys with `OPENSSL_free`-style cleansing). `Debug` never
/// prints secret material.
#[derive(Clone)]
pub struct SigningKey {
    public: VerifyingKey,
    backend: Arc<dyn SigningKeyImpl>,
    pkcs8: Arc<Zeroizing<Vec<u8>>>,
}

impl SigningKey {
    /// Generates a key for `alg` (RSA keys are 2048 bits; see
    /// [`SigningKey::generate_rsa`] for larger ones).
    pub fn generate(provider: &CryptoProvider, alg: Algorithm) -> Result<Self, KeyError> {
        Self::generate_spec(provider, alg, KeySpec::for_algorithm(alg))
    }

    /// Generates an RSA key of the given size for an RS* or PS* algorithm.
    pub fn generate_rsa(
        provider: &CryptoProvider,
        alg: Algorithm,
        size: RsaKeySize,
    ) -> Result<Self, KeyError> {
        Self::generate_spec(provider, alg, KeySpec::Rsa(size))
    }

    fn generate_spec(
        provider: &CryptoProvider,
        alg: Algorithm,
        spec: KeySpec,
    ) -> Result<Self, KeyError> {
        key_der::check_algorithm(alg, spec.key_type(), None)?;
        let der = provider.keys.generate(spec)?;
        Self::from_pkcs8_der(provider, &der, alg)
    }

    /// Imports PKCS#8 DER (v1 or v2) for `alg`.
    pub fn from_pkcs8_der(
        provider: &CryptoProvider,
        der: &[u8],
        alg: Algorithm,
    ) -> Result<Self, KeyError> {
        let parts = PrivateParts::from_pkcs8_der(der)?;
        Self::load(provider, &parts, Zeroizing::new(der.to_vec()), alg, None)
    }

    /// Imports a `PRIVATE KEY` (PKCS#8) PEM block for `alg`. PKCS#1
    /// (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and encrypted PKCS#8 are
    /// refused with [`KeyError::PemLabel`]; convert them with
    /// `openssl pkcs8 -topk8 -nocrypt`.
    pub fn from_pkcs8_pem(
        provider: &CryptoProvider,
        pem: &str,
        alg: Algorithm,
    ) -> Result<Self, KeyError> {
        let der = key_der::pem_decode(pem, "PRIVATE KEY")?;
        Self::from_pkcs8_der(provider, &der, alg)
    }

    /// Imports a private JWK. The algorithm is chosen as in
    /// [`VerifyingKey::from_jwk`]. RSA JWKs must carry all of `d`, `p`, `q`,
    /// `dp`, `dq` and `qi`. The public members must match the private ones.
    pub fn from_jwk(
        provider: &CryptoProvider,
        jwk: &Jwk,
        alg: Option<Algorithm>,
    ) -> Result<Self, KeyError> {
        let private = jwk.private_parts()?;
        let alg = jwk.resolve_algorithm(alg, private.key_type())?;
        let kid = jwk.kid().map(KeyId::new).transpose()?;
        let der = private.to_pkcs8_der()?;
        let key = Self::load(provider, &private, der, alg, kid)?;
        // The public half derived by the backend must be the one the JWK
        // advertises, or the JWK's `x`/`y`/`n` would mislead whoever reads it.
        if *key.public.parts != jwk.public_parts()? {
            return Err(KeyError::PublicKeyMismatch);
        }
        Ok(key)
    }

    fn load(
        provider: &CryptoProvider,
        parts: &PrivateParts,
        der: Zeroizing<Vec<u8>>,
        alg: Algorithm,
        kid: Option<KeyId>,
    ) -> Result<Self, KeyError> {
        key_der::check_algorithm(alg, parts.key_type(), parts.rsa_bits())?;
        let backend = provider
            .keys
            .signing_key(alg, &der)
            .map_err(|_| KeyError::Rejected)?;
        let spki = backend.public_key_spki()?;
        let public_parts = PublicParts::from_spki_der(&spki)?;
        if let PrivateParts::Ec {
            public: Some((x, y)),
            ..
        } = parts
            && !matches!(&public_parts, PublicParts::Ec { x: px, y: py, .. } if px == x && py == y)
        {
            return Err(KeyError::PublicKeyMismatch);
        }
        let public = VerifyingKey::from_parts(provider, public_parts, alg, kid)?;
        Ok(SigningKey {
            public,
            backend: Arc::from(backend),
            pkcs8: Arc::new(der),
        })
    }

    /// Signs `message` with this key's algorithm, in the JOSE encoding
    /// (ECDSA as fixed-size `r || s`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        self.backend.sign(message)
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.public.alg
    }

    /// The key id put in JWS headers.
    pub fn kid(&self) -> &KeyId {
        &self.public.kid
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> &KeyId {
        &self.public.thumbprint
    }

    /// Replaces the key id (of both halves).
    #[must_use]
    pub fn with_kid(mut self, kid: KeyId) -> Self {
        self.public.kid = kid;
        self
    }

    /// PKCS#8 DER of the private key, zeroized on drop.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pkcs8.to_vec())
    }

    /// A `PRIVATE KEY` PEM block, zeroized on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        key_der::pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    /// The private JWK (with `kid`, `alg`, `use: "sig"`). Its private members
    /// are zeroized when it is dropped.
    pub fn to_private_jwk(&self) -> Result<Jwk, KeyError> {
        let mut private = PrivateParts::from_pkcs8_der(&self.pkcs8)?;
        // PKCS#8 may omit the EC public point; the JWK needs it.
        if let (PrivateParts::Ec { public, .. }, PublicParts::Ec { x, y, .. }) =
            (&mut private, &*self.public.parts)
        {
            *public = Some((x.clone(), y.clone()));
        }
        Ok(Jwk::from_private_parts(
            &private,
            &self.public.parts,
            Some(self.public.alg),
            Some(self.public.kid.as_str()),
        ))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.public.alg)
            .field("kid", &self.public.kid.as_str())
            .field("thumbprint", &self.public.thumbprint.as_str())
            .field("provider", &self.public.provider)
            .finish_non_exhaustive()
    }
}

/// The RFC 7638 thumbprint: base64url(SHA-256) of the required members in
/// lexicographic order, no whitespace.
pub(crate) fn thumbprint_of(parts: &PublicParts) -> KeyId {
    let json = match parts {
        PublicParts::Rsa { n, e } => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            B64.encode(e),
            B64.encode(n)
        ),
        PublicParts::Ec { curve, x, y } => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            curve.jwk_name(),
            B64.encode(x),
            B64.encode(y)
        ),
        PublicParts::Ed25519 { x } => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, B64.encode(x))
        }
    };
    // INVARIANT: base64url of 32 bytes is 43 ASCII characters, a valid kid.
    KeyId(Arc::from(B64.encode(Sha256::digest(json.as_bytes()))))
}
