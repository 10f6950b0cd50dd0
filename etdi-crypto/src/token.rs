//! Plumbing shared by the three ETDI token kinds (attestations, request
//! signatures, call-chain hops): signing a claims set, reading the claims of
//! a token before its key is known, and classifying JWS errors.

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::B64;
use crate::error::{AlgorithmError, JwsError, JwsPart};
use crate::jws::{self, JwsHeader, MAX_TOKEN_BYTES};
use crate::key::SigningKey;

/// Why a token could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The JWS layer refused (key/header mismatch) or the backend failed.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// A value to be digested has no canonical JSON form.
    #[error(transparent)]
    Canonical(#[from] etdi_core::CanonicalError),
    /// The claims could not be serialised.
    #[error("claims cannot be serialised: {0}")]
    Claims(String),
    /// The random generator failed (no `jti` could be made).
    #[error(transparent)]
    Crypto(#[from] crate::error::CryptoFailure),
    /// A parameter breaks a protocol rule (lifetime over 300 s, a hop index
    /// over the chain limit, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Signs `claims` as a compact JWS with `alg` and `kid` from `key` and the
/// given `typ`.
pub(crate) fn sign_claims<C: Serialize>(
    key: &SigningKey,
    typ: &str,
    claims: &C,
) -> Result<String, SignError> {
    let payload = serde_json::to_vec(claims).map_err(|e| SignError::Claims(e.to_string()))?;
    let header = JwsHeader::for_key(key).with_typ(typ);
    Ok(jws::sign(key, &header, &payload)?)
}

/// Decodes and parses the claims of a compact JWS WITHOUT verifying it, so
/// that the verifier can find the issuer's keys. Nothing read here is acted
/// on before the signature has been checked.
pub(crate) fn peek_claims<C: DeserializeOwned>(token: &str) -> Result<C, PeekError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(PeekError::Jws(JwsError::TooLarge {
            size: token.len(),
            limit: MAX_TOKEN_BYTES,
        }));
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PeekError::Jws(JwsError::NotCompact {
            parts: token.split('.').count(),
        }));
    };
    let bytes = B64.decode(payload).map_err(|_| {
        PeekError::Jws(JwsError::Base64 {
            part: JwsPart::Payload,
        })
    })?;
    serde_json::from_slice(&bytes).map_err(|e| PeekError::Claims(e.to_string()))
}

/// Why the claims of a token could not be read.
#[derive(Debug)]
pub(crate) enum PeekError {
    /// Not a compact JWS.
    Jws(JwsError),
    /// The payload is not the claims set this token kind needs.
    Claims(String),
}

/// How a JWS error reads to a person, and which class of failure it is.
pub(crate) enum JwsClass {
    /// The algorithm is refused or not allowed; carries its name.
    Algorithm(String),
    /// No trusted key has the token's `kid`.
    UnknownKey(String),
    /// The signature does not verify.
    BadSignature,
    /// Any format or header problem.
    Malformed(String),
}

pub(crate) fn classify(e: JwsError) -> JwsClass {
    match e {
        JwsError::Algorithm(a) => JwsClass::Algorithm(match a {
            AlgorithmError::None => "none".to_owned(),
            AlgorithmError::Symmetric { name } | AlgorithmError::Unsupported { name } => name,
        }),
        JwsError::AlgorithmNotAllowed { alg } => JwsClass::Algorithm(alg.name().to_owned()),
        JwsError::KeyAlgorithmMismatch { header, .. } => {
            JwsClass::Algorithm(header.name().to_owned())
        }
        JwsError::UnknownKey { kid } => JwsClass::UnknownKey(kid.unwrap_or_default()),
        JwsError::BadSignature(_) => JwsClass::BadSignature,
        other => JwsClass::Malformed(other.to_string()),
    }
}
