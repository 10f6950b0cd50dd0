//! Plumbing shared by the three ETDI token kinds (attestations, request
//! signatures, call-chain hops): signing a claims set, reading the claims of
//! a token before its key is known, and classifying JWS errors.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AlgorithmError, JwsError};
use crate::jws::{self, JwsHeader};
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

/// Opens a compact JWS and parses its claims WITHOUT verifying it, so that
/// the verifier can find the issuer's keys; the caller then verifies the
/// returned parts with [`jws::Opened::verify`]. Nothing read here is acted on before
/// the signature has been checked, and the payload is decoded only once.
pub(crate) fn open_claims<'t, C: DeserializeOwned>(
    token: &'t str,
    validation: &jws::Validation,
) -> Result<(jws::Opened<'t, 'static>, C), PeekError> {
    let opened = jws::Opened::open(token, validation).map_err(PeekError::Jws)?;
    let claims =
        serde_json::from_slice(opened.payload()).map_err(|e| PeekError::Claims(e.to_string()))?;
    Ok((opened, claims))
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
