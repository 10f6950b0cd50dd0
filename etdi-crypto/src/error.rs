//! Error types of the crate: opaque ones for cryptographic failures, typed
//! enums with messages for people for everything else.
//!
//! A failed signature check says nothing about why it failed
//! ([`BadSignature`]), so an attacker learns nothing from the error. Format
//! problems (a malformed header, a wrong key type) are not secret and get
//! precise, typed errors.

use std::fmt;

use crate::alg::{Algorithm, KeyType};

/// A signature did not verify. Deliberately carries no detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BadSignature;

impl fmt::Display for BadSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("signature verification failed")
    }
}

impl std::error::Error for BadSignature {}

/// The crypto backend failed to sign, generate a key or produce random
/// bytes. Deliberately carries no detail; in practice it means the system
/// random generator or the backend itself is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CryptoFailure;

impl fmt::Display for CryptoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the cryptographic backend failed")
    }
}

impl std::error::Error for CryptoFailure {}

/// Why an algorithm name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmError {
    /// `none`: unsigned tokens are never accepted.
    #[error("algorithm `none` is refused: unsigned content is never accepted")]
    None,
    /// An HMAC algorithm: ETDI keys are asymmetric, and accepting HMAC next to
    /// public keys invites key-confusion attacks.
    #[error("symmetric algorithm `{name}` is refused: only asymmetric signatures are accepted")]
    Symmetric {
        /// The refused name.
        name: String,
    },
    /// Any other name.
    #[error("algorithm `{name}` is not supported")]
    Unsupported {
        /// The refused name (truncated if long).
        name: String,
    },
}

/// Why a key could not be generated, imported or exported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key's type, curve or size does not fit the requested algorithm.
    #[error("a {key} key cannot be used with {alg}")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// What the key is.
        key: KeyType,
    },
    /// An RSA key under 2048 bits.
    #[error("RSA key of {bits} bits is refused: at least 2048 bits are required")]
    RsaTooSmall {
        /// The modulus size found.
        bits: usize,
    },
    /// An RSA key over the largest size accepted (bounds verification cost).
    #[error("RSA key of {bits} bits is refused: at most {max} bits are accepted")]
    RsaTooLarge {
        /// The modulus size found.
        bits: usize,
        /// The limit in force.
        max: usize,
    },
    /// An RSA key is given but no RSA algorithm was named: an RSA key alone
    /// does not say whether it signs with PKCS#1 v1.5 or PSS, nor with which hash.
    #[error("an RSA key needs an algorithm (RS256, PS256, ...): none was given")]
    AlgorithmRequired,
    /// The key type, curve or algorithm OID is not one ETDI supports.
    #[error("unsupported key: {what}")]
    Unsupported {
        /// What was found.
        what: String,
    },
    /// The PEM label is not the one expected (for example `RSA PRIVATE KEY`
    /// where a PKCS#8 `PRIVATE KEY` is required).
    #[error("expected a PEM `{expected}` block, found `{found}`")]
    PemLabel {
        /// The label required.
        expected: &'static str,
        /// The label found (truncated if long).
        found: String,
    },
    /// The PEM or DER encoding is malformed.
    #[error("malformed {format}: {detail}")]
    Encoding {
        /// `PEM`, `PKCS#8`, `SubjectPublicKeyInfo`, ...
        format: &'static str,
        /// What is wrong, for a person.
        detail: String,
    },
    /// A JWK member is missing, has the wrong type or a bad value.
    #[error("JWK member `{member}`: {problem}")]
    JwkMember {
        /// The member name.
        member: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The JWK is not a JSON object of the expected shape.
    #[error("malformed JWK: {detail}")]
    Jwk {
        /// What is wrong.
        detail: String,
    },
    /// The `alg` member of a JWK disagrees with the algorithm asked for.
    #[error("the key is marked for {marked}, but {requested} was requested")]
    MarkedAlgorithm {
        /// The JWK's `alg`.
        marked: Algorithm,
        /// The algorithm asked for.
        requested: Algorithm,
    },
    /// The key's `alg` member names a refused or unknown algorithm.
    #[error(transparent)]
    Algorithm(#[from] AlgorithmError),
    /// A key id is empty, too long or contains control characters.
    #[error("invalid key id: {problem}")]
    KeyId {
        /// What is wrong.
        problem: &'static str,
    },
    /// The private and public halves of the key do not match.
    #[error("the public key does not match the private key")]
    PublicKeyMismatch,
    /// The backend rejected the key material (for example an RSA key whose
    /// primes do not multiply to the modulus, or an EC point not on the
    /// curve). The detail stays opaque.
    #[error("the key was rejected as invalid")]
    Rejected,
    /// The backend failed while generating or exporting a key.
    #[error(transparent)]
    Crypto(#[from] CryptoFailure),
}

impl KeyError {
    pub(crate) fn encoding(format: &'static str, detail: impl fmt::Display) -> Self {
        KeyError::Encoding {
            format,
            detail: detail.to_string(),
        }
    }
}

/// Which part of a compact JWS a problem is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsPart {
    /// The protected header (first part).
    Header,
    /// The payload (second part).
    Payload,
    /// The signature (third part).
    Signature,
}

impl fmt::Display for JwsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwsPart::Header => "header",
            JwsPart::Payload => "payload",
            JwsPart::Signature => "signature",
        })
    }
}

/// Why a JWS could not be produced or was refused.
///
/// Every variant except [`JwsError::BadSignature`] is about format or policy
/// and says precisely what is wrong; a signature that does not verify gets
/// the one opaque variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The token is longer than the configured limit.
    #[error("JWS is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the refused token.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The token does not have exactly three dot-separated parts.
    #[error("JWS compact serialisation needs three parts separated by `.`, found {parts}")]
    NotCompact {
        /// The number of parts found.
        parts: usize,
    },
    /// A part is not strict unpadded base64url.
    #[error("JWS {part} is not valid unpadded base64url")]
    Base64 {
        /// The offending part.
        part: JwsPart,
    },
    /// The protected header is not a JSON object without duplicate members.
    #[error("JWS header is not valid JSON: {detail}")]
    HeaderJson {
        /// What the parser found.
        detail: String,
    },
    /// A header member has the wrong JSON type or an invalid value.
    #[error("JWS header member `{name}`: {problem}")]
    HeaderMember {
        /// The member name.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The `alg` header names a refused or unknown algorithm.
    #[error(transparent)]
    Algorithm(#[from] AlgorithmError),
    /// The algorithm is valid but not in the caller's allow-list.
    #[error("algorithm {alg} is not allowed here")]
    AlgorithmNotAllowed {
        /// The refused algorithm.
        alg: Algorithm,
    },
    /// The key found for the token is bound to another algorithm than the
    /// header names. The header is never trusted to pick the algorithm.
    #[error("the header says {header} but the key is for {key}")]
    KeyAlgorithmMismatch {
        /// The header's `alg`.
        header: Algorithm,
        /// The key's algorithm.
        key: Algorithm,
    },
    /// The `typ` header is missing or not the expected one.
    #[error("expected JWS type `{expected}`, found {}", found.as_deref().map_or_else(|| "none".to_owned(), |t| format!("`{t}`")))]
    UnexpectedType {
        /// The type required.
        expected: String,
        /// The type found, if any.
        found: Option<String>,
    },
    /// A header listed in `crit` is not understood here (RFC 7515 §4.1.11).
    #[error("critical header `{name}` is not supported")]
    UnsupportedCritical {
        /// The member name.
        name: String,
    },
    /// A header member that is refused outright: `jwk`, `jku`, `x5u` and
    /// `x5c` (keys are never taken from the token itself) and `b64`
    /// (RFC 7797 unencoded payloads are not supported).
    #[error("JWS header member `{name}` is not accepted")]
    ForbiddenHeader {
        /// The member name.
        name: &'static str,
    },
    /// A header member that the signer may not set by hand (`alg`, `kid`,
    /// `typ`, `cty` and `crit` have their own setters).
    #[error("header member `{name}` is reserved: use its dedicated setter")]
    ReservedHeader {
        /// The member name.
        name: String,
    },
    /// The `kid` header is required by the validation but missing.
    #[error("JWS header has no `kid`")]
    MissingKeyId,
    /// No trusted key matches the token.
    #[error("no trusted key{} for this token", kid.as_deref().map_or_else(String::new, |k| format!(" with kid `{k}`")))]
    UnknownKey {
        /// The `kid` asked for, if any.
        kid: Option<String>,
    },
    /// A detached-payload JWS was expected but the payload part is not empty,
    /// or the other way round.
    #[error("{}", if *detached_expected { "expected a detached payload (empty second part)" } else { "the payload is detached but none was supplied" })]
    DetachedMismatch {
        /// Whether the caller expected a detached JWS.
        detached_expected: bool,
    },
    /// The signature does not verify. Opaque on purpose.
    #[error(transparent)]
    BadSignature(#[from] BadSignature),
    /// Signing failed in the backend.
    #[error(transparent)]
    Crypto(#[from] CryptoFailure),
    /// The header could not be serialised (a custom member that JSON cannot
    /// represent).
    #[error("JWS header cannot be serialised: {detail}")]
    HeaderEncoding {
        /// What failed.
        detail: String,
    },
    /// The signing key's algorithm differs from the header's `alg`.
    #[error("the header says {header} but the signing key is for {key}")]
    SigningAlgorithmMismatch {
        /// The header's `alg`.
        header: Algorithm,
        /// The key's algorithm.
        key: Algorithm,
    },
}
