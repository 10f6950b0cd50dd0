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
    /// This one attestation (by its `jti`) is revoked.
    RevokedAttestation {
        /// The revoked attestation id.
        jti: String,
    },
    /// The attestation's `etdi_ver` is not one this verifier implements.
    UnsupportedVersion {
        /// The version found.
        version: String,
    },
    /// The algorithm is not allowed.
    AlgorithmNotAllowed {
        /// The algorithm name.
        alg: String,
    },
}

impl VerificationFailure {
    /// Stable snake_case code (the serde tag).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::BadSignature => "bad_signature",
            Self::DigestMismatch => "digest_mismatch",
            Self::ClaimMismatch { .. } => "claim_mismatch",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UntrustedIssuer { .. } => "untrusted_issuer",
            Self::UnknownKey { .. } => "unknown_key",
            Self::RevokedKey { .. } => "revoked_key",
            Self::RevokedVersion => "revoked_version",
            Self::RevokedAttestation { .. } => "revoked_attestation",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
        }
    }
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
            Self::RevokedAttestation { jti } => write!(f, "attestation `{jti}` is revoked"),
            Self::UnsupportedVersion { version } => {
                write!(
                    f,
                    "unsupported ETDI version `{version}` (this verifier implements 1)"
                )
            }
            Self::AlgorithmNotAllowed { alg } => write!(f, "algorithm `{alg}` is not allowed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_the_serde_tag() {
        for f in [
            VerificationFailure::BadSignature,
            VerificationFailure::RevokedAttestation { jti: "j".into() },
            VerificationFailure::UnsupportedVersion {
                version: "2".into(),
            },
            VerificationFailure::AlgorithmNotAllowed {
                alg: "HS256".into(),
            },
        ] {
            let v = serde_json::to_value(&f).unwrap();
            assert_eq!(v["code"], f.code());
        }
    }
}
