//! The result of verifying a tool's attestation, as clients report it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a tool's definition stands after verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VerificationStatus {
    /// The attestation verified against a trusted key and the recomputed
    /// digest matches.
    Verified {
        /// Attestation issuer.
        issuer: String,
        /// Key id that signed it.
        key_id: String,
    },
    /// The tool carries no attestation.
    Unsigned,
    /// An attestation is present and does not verify.
    Failed {
        /// Why.
        failure: VerificationFailure,
    },
}

impl VerificationStatus {
    /// True only for `Verified`.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }
}

/// Why an attestation did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum VerificationFailure {
    /// Not a well-formed attestation.
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// The signature does not verify.
    BadSignature,
    /// The digest recomputed from the advertised definition differs from
    /// the signed one: the definition changed after signing.
    DigestMismatch,
    /// A signed claim disagrees with the advertised definition.
    ClaimMismatch {
        /// The claim.
        claim: String,
    },
    /// Past `exp`.
    Expired,
    /// Before `iat`/`nbf`.
    NotYetValid,
    /// The issuer is not trusted for this provider.
    UntrustedIssuer {
        /// The issuer.
        issuer: String,
    },
    /// No trusted key has this id.
    UnknownKey {
        /// The key id.
        key_id: String,
    },
    /// The signing key is revoked.
    RevokedKey {
        /// The key id.
        key_id: String,
    },
    /// This tool version is revoked.
    RevokedVersion,
    /// The algorithm is not allowed.
    AlgorithmNotAllowed {
        /// The algorithm name.
        alg: String,
    },
}

impl fmt::Display for VerificationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { detail } => write!(f, "malformed attestation: {detail}"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::DigestMismatch => {
                f.write_str("definition changed after signing (digest mismatch)")
            }
            Self::ClaimMismatch { claim } => {
                write!(f, "signed claim `{claim}` disagrees with the definition")
            }
            Self::Expired => f.write_str("attestation expired"),
            Self::NotYetValid => f.write_str("attestation not yet valid"),
            Self::UntrustedIssuer { issuer } => write!(f, "issuer `{issuer}` is not trusted"),
            Self::UnknownKey { key_id } => write!(f, "no trusted key with id `{key_id}`"),
            Self::RevokedKey { key_id } => write!(f, "key `{key_id}` is revoked"),
            Self::RevokedVersion => f.write_str("this tool version is revoked"),
            Self::AlgorithmNotAllowed { alg } => write!(f, "algorithm `{alg}` is not allowed"),
        }
    }
}
