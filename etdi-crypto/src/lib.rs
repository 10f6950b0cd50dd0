//! ETDI cryptography: algorithm providers, keys and rotation, JWS, tool attestations, request signing and replay protection.
//!
//! Layers, bottom up:
//!
//! - [`CryptoProvider`]: the backend, a value of trait objects with a process
//!   default (aws-lc-rs; RustCrypto with the `rust-crypto` feature).
//! - [`Algorithm`]: RS256/384/512, PS256/384/512, ES256/384/512 (ES512 is
//!   P-521 with SHA-512) and EdDSA (Ed25519). `none` and HMAC are refused
//!   when parsed.
//! - [`SigningKey`] / [`VerifyingKey`]: generated or imported from PKCS#8,
//!   SPKI or JWK, bound to one algorithm, parsed once, identified by an
//!   RFC 7638 thumbprint [`KeyId`]. [`VerifyingKeySet`] holds trusted keys by `kid`.
//! - [`jws`]: compact JWS with detached payloads and strict header checks.
//! - The ETDI protocol (docs/PROTOCOL.md §5-§8), all taking `now` explicitly
//!   ([`UnixTime`], [`Clock`]): [`attestation`] (tool attestations,
//!   verified against the definition as advertised, [`advertised`]),
//!   [`request`] (signed `tools/call`), [`chain`] (signed call-chain hops),
//!   [`replay`] (the nonce store trait and a bounded in-memory store),
//!   [`trust`] (keys per issuer), [`manager`] (active and retired keys,
//!   rotation, crash-safe persistence, JWKS).
//!
//! ```
//! use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, VerifyingKey};
//!
//! let provider = CryptoProvider::get_default();
//! let key = SigningKey::generate(provider, Algorithm::EdDSA)?;
//! let public_pem = key.verifying_key().to_spki_pem()?;
//!
//! // Elsewhere: import the published key and verify.
//! let trusted = VerifyingKey::from_spki_pem(provider, &public_pem, Algorithm::EdDSA)?;
//! let sig = key.sign(b"message")?;
//! assert!(trusted.verify(b"message", &sig).is_ok());
//! assert!(trusted.verify(b"massage", &sig).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod alg;
pub mod backend;
pub mod error;
pub mod jwk;
pub mod jws;
pub mod key;
mod key_der;
pub mod key_set;
pub mod provider;
// Protocol layer (docs/PROTOCOL.md §5-§8): time, trust, tokens, replay,
// key management.
pub mod advertised;
pub mod attestation;
pub mod chain;
pub mod claims;
pub mod clock;
pub mod manager;
pub mod nonce_journal;
pub mod replay;
pub mod request;
mod store;
mod store_crypt;
mod token;
pub mod trust;

pub use alg::{Algorithm, Curve, KeySpec, KeyType, RsaKeySize};
pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use error::{AlgorithmError, BadSignature, CryptoFailure, JwsError, JwsPart, KeyError};
pub use jwk::{Jwk, JwkSet};
pub use jws::{JwsHeader, KeyResolver, Validation, Verified, VerifiedDetached};
pub use key::{KeyId, SigningKey, VerifyingKey};
pub use key_set::{SkippedJwk, VerifyingKeySet};
pub use provider::{
    CryptoProvider, KeyBackend, KeyRejected, SecureRandom, SigningKeyImpl, VerifyingKeyImpl,
};
pub use token::SignError;

/// Strict base64url: no padding on output, padding refused on input, and
/// non-canonical trailing bits refused, so every byte string has exactly one
/// accepted encoding.
pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);
