//! Signed checkpoints: "this log held `count` records and the last one
//! hashed to `head`", signed so that truncation and wholesale rewriting are
//! detectable.
//!
//! Signing goes through the small [`CheckpointSigner`] / [`CheckpointVerifier`]
//! traits so the audit log does not depend on one key type: etdi-crypto keys
//! plug in through an adapter, tests use [`HmacCheckpointKey`].
//!
//! A checkpoint is one line of `<prefix>.checkpoints.jsonl`:
//!
//! ```text
//! {"alg":"ES256","count":1000,"head":"sha256:<hex>","kid":"audit-2026","log":"audit",
//!  "sig":"<base64url, no padding>","time":"2026-11-24T03:56:39.1Z","v":1}
//! ```
//!
//! (one line in the file). The signature covers the canonical JSON
//! ([`etdi_core::canonical::canonical_json`]) of the object without `sig`,
//! so the key id and algorithm are signed too and cannot be swapped.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use etdi_core::canonical::{canonical_json, parse_json};
use etdi_core::{Digest, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Checkpoint format version.
pub const CHECKPOINT_VERSION: u64 = 1;

/// Why signing failed. Deliberately opaque: the message is for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint signing failed: {0}")]
pub struct SignError(pub String);

/// Why a checkpoint signature was refused. Opaque on purpose: no detail of
/// the cryptographic failure leaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint signature does not verify")]
pub struct SignatureError;

/// Signs checkpoints. Implemented for etdi-crypto signing keys (see the
/// crate docs) and by [`HmacCheckpointKey`].
pub trait CheckpointSigner: Send + Sync {
    /// The key id written in (and covered by) each checkpoint.
    fn key_id(&self) -> String;
    /// The JOSE algorithm name (e.g. `ES256`).
    fn algorithm(&self) -> String;
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Verifies checkpoint signatures; it decides which `kid`s it trusts and
/// which algorithms it accepts for them.
pub trait CheckpointVerifier: Send + Sync {
    /// `Ok` only if `signature` is a valid signature of `message` by the key
    /// `kid` with algorithm `alg`.
    fn verify(
        &self,
        kid: &str,
        alg: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;
}

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version, [`CHECKPOINT_VERSION`].
    pub v: u64,
    /// The log's file prefix: binds the checkpoint to one log.
    pub log: String,
    /// Records in the log when it was taken (the head is record `count-1`).
    pub count: u64,
    /// Hash of record `count - 1`.
    pub head: Digest,
    /// When it was taken.
    pub time: Timestamp,
    /// Signing key id.
    pub kid: String,
    /// Signing algorithm.
    pub alg: String,
    /// Signature, base64url without padding.
    pub sig: String,
}

#[derive(Serialize)]
struct Unsigned<'a> {
    v: u64,
    log: &'a str,
    count: u64,
    head: &'a Digest,
    time: &'a Timestamp,
    kid: &'a str,
    alg: &'a str,
}

impl Checkpoint {
    /// Builds and signs a checkpoint.
    pub fn sign(
        signer: &dyn CheckpointSigner,
        log: &str,
        count: u64,
        head: Digest,
        time: Timestamp,
    ) -> Result<Self, SignError> {
        let kid = signer.key_id();
        let alg = signer.algorithm();
        let message = canonical_json(&Unsigned {
            v: CHECKPOINT_VERSION,
            log,
            count,
            head: &head,
            time: &time,
            kid: &kid,
            alg: &alg,
        })
        .map_err(|e| SignError(e.to_string()))?;
        let sig = URL_SAFE_NO_PAD.encode(signer.sign(&message)?);
        Ok(Checkpoint {
            v: CHECKPOINT_VERSION,
            log: log.to_owned(),
            count,
            head,
            time,
            kid,
            alg,
            sig,
        })
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, SignatureError> {
        canonical_json(&Unsigned {
            v: self.v,
            log: &self.log,
            count: self.count,
            head: &self.head,
            time: &self.time,
            kid: &self.kid,
            alg: &self.alg,
        })
        .map_err(|_| SignatureError)
    }

    /// Checks the signature with `verifier`.
    pub fn verify(&self, verifier: &dyn CheckpointVerifier) -> Result<(), SignatureError> {
        if self.v != CHECKPOINT_VERSION {
            return Err(SignatureError);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(self.sig.as_bytes())
            .map_err(|_| SignatureError)?;
        verifier.verify(&self.kid, &self.alg, &self.signed_bytes()?, &sig)
    }

    /// The line written to the checkpoint file (canonical JSON and `\n`).
    pub fn to_line(&self) -> Result<Vec<u8>, SignError> {
        let mut line = canonical_json(self).map_err(|e| SignError(e.to_string()))?;
        line.push(b'\n');
        Ok(line)
    }

    /// Parses one checkpoint line (without `\n`) strictly.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
        let value = parse_json(text).map_err(|e| e.to_string())?;
        let cp: Checkpoint = serde_json::from_value(value).map_err(|e| e.to_string())?;
        // A checkpoint of another format version is not understood, so its
        // count and head must not be relied on either (fail closed).
        if cp.v != CHECKPOINT_VERSION {
            return Err(format!(
                "unsupported checkpoint version {} (expected {CHECKPOINT_VERSION})",
                cp.v
            ));
        }
        Ok(cp)
    }
}

/// A symmetric HMAC-SHA-256 checkpoint key (`alg` `HS256`).
///
/// Whoever can verify can also forge, so this suits tests and deployments
/// where the verifier is the key holder (an operator checking their own
/// logs). For checkpoints a third party can check, use an etdi-crypto
/// asymmetric key.
#[derive(Clone)]
pub struct HmacCheckpointKey {
    kid: String,
    key: Vec<u8>,
}

impl fmt::Debug for HmacCheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacCheckpointKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl HmacCheckpointKey {
    /// A key with id `kid` and secret `key` (at least 32 bytes recommended).
    pub fn new(kid: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        HmacCheckpointKey {
            kid: kid.into(),
            key: key.into(),
        }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        // RFC 2104 over SHA-256 (block size 64).
        let mut k = [0u8; 64];
        if self.key.len() > 64 {
            let d: [u8; 32] = Sha256::digest(&self.key).into();
            k.iter_mut().zip(d.iter()).for_each(|(a, b)| *a = *b);
        } else {
            k.iter_mut().zip(self.key.iter()).for_each(|(a, b)| *a = *b);
        }
        let mut inner = Sha256::new();
        inner.update(k.map(|b| b ^ 0x36));
        inner.update(message);
        let mut outer = Sha256::new();
        outer.update(k.map(|b| b ^ 0x5c));
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

impl CheckpointSigner for HmacCheckpointKey {
    fn key_id(&self) -> String {
        self.kid.clone()
    }

    fn algorithm(&self) -> String {
        "HS256".to_owned()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.mac(message).to_vec())
    }
}

impl CheckpointVerifier for HmacCheckpointKey {
    fn verify(
        &self,
        kid: &str,
        alg: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if kid != self.kid || alg != "HS256" || signature.len() != 32 {
            return Err(SignatureError);
        }
        let expected = self.mac(message);
        // Constant-time comparison: no early exit on the first difference.
        let diff = expected
            .iter()
            .zip(signature.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(SignatureError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let k = HmacCheckpointKey::new("k", b"Jefe".to_vec());
        assert_eq!(
            hex::encode(k.mac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn checkpoints_sign_verify_and_bind_every_field() {
        let key = HmacCheckpointKey::new("k1", vec![7u8; 32]);
        let t = Timestamp::from_unix(1_700_000_000, 0).unwrap();
        let cp = Checkpoint::sign(&key, "audit", 10, Digest::of(b"h"), t).unwrap();
        cp.verify(&key).unwrap();
        let line = cp.to_line().unwrap();
        let back = Checkpoint::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(back, cp);
        for tampered in [
            Checkpoint {
                count: 11,
                ..cp.clone()
            },
            Checkpoint {
                head: Digest::of(b"x"),
                ..cp.clone()
            },
            Checkpoint {
                log: "other".into(),
                ..cp.clone()
            },
            Checkpoint {
                alg: "none".into(),
                ..cp.clone()
            },
        ] {
            assert_eq!(tampered.verify(&key), Err(SignatureError));
        }
        let other = HmacCheckpointKey::new("k1", vec![8u8; 32]);
        assert_eq!(cp.verify(&other), Err(SignatureError));
    }
}
