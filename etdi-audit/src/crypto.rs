//! etdi-crypto keys as checkpoint signers and verifiers.
//!
//! A [`etdi_crypto::SigningKey`] signs checkpoints (its `kid` and JOSE
//! algorithm name go into the signed checkpoint); a
//! [`etdi_crypto::VerifyingKey`] or a [`etdi_crypto::VerifyingKeySet`]
//! (several trusted keys, e.g. across a rotation) verifies them. The
//! verifier accepts a checkpoint only if the `kid` names the key and the
//! `alg` is the key's own algorithm, so a checkpoint cannot pick a weaker
//! algorithm for a trusted key.
//!
//! ```
//! use std::sync::Arc;
//! use etdi_audit::{AuditLog, Verifier, event, sink::FileSink};
//! use etdi_crypto::{Algorithm, CryptoProvider, KeyId, SigningKey};
//!
//! let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)?
//!     .with_kid(KeyId::new("audit-2026")?);
//! let dir = tempfile::tempdir()?;
//! let log = AuditLog::builder()
//!     .sink(FileSink::builder(dir.path()).checkpoint_signer(Arc::new(key.clone())).open()?)
//!     .build()?;
//! log.log(event::key_rotated(None, "audit-2026"))?;
//! log.shutdown()?; // writes the final checkpoint
//!
//! let report = Verifier::new(dir.path())
//!     .checkpoint_verifier(key.verifying_key())
//!     .verify()?;
//! assert!(report.signatures_checked && report.last_checkpoint_count == 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use etdi_crypto::{SigningKey, VerifyingKey, VerifyingKeySet};

use crate::checkpoint::{CheckpointSigner, CheckpointVerifier, SignError, SignatureError};

impl CheckpointSigner for SigningKey {
    fn key_id(&self) -> String {
        self.kid().as_str().to_owned()
    }

    fn algorithm(&self) -> String {
        SigningKey::algorithm(self).to_string()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        SigningKey::sign(self, message).map_err(|e| SignError(e.to_string()))
    }
}

impl CheckpointVerifier for VerifyingKey {
    fn verify(
        &self,
        kid: &str,
        alg: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if kid != self.kid().as_str() || alg != VerifyingKey::algorithm(self).to_string() {
            return Err(SignatureError);
        }
        VerifyingKey::verify(self, message, signature).map_err(|_| SignatureError)
    }
}

impl CheckpointVerifier for VerifyingKeySet {
    fn verify(
        &self,
        kid: &str,
        alg: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        match self.get(kid) {
            Some(key) => CheckpointVerifier::verify(key, kid, alg, message, signature),
            None => Err(SignatureError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use etdi_core::{Digest, Timestamp};
    use etdi_crypto::{Algorithm, CryptoProvider, KeyId};

    fn key(alg: Algorithm, kid: &str) -> SigningKey {
        SigningKey::generate(CryptoProvider::get_default(), alg)
            .unwrap()
            .with_kid(KeyId::new(kid).unwrap())
    }

    #[test]
    fn checkpoints_signed_by_etdi_crypto_keys_verify_and_bind_kid_and_alg() {
        let t = Timestamp::from_unix(1_700_000_000, 0).unwrap();
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let k = key(alg, "audit-1");
            let cp = Checkpoint::sign(&k, "audit", 5, Digest::of(b"h"), t).unwrap();
            assert_eq!(cp.alg, alg.to_string());
            assert_eq!(cp.kid, "audit-1");
            cp.verify(k.verifying_key()).unwrap();

            let mut set = VerifyingKeySet::new();
            set.insert(key(Algorithm::ES256, "other").verifying_key().clone());
            assert_eq!(cp.verify(&set), Err(SignatureError));
            set.insert(k.verifying_key().clone());
            cp.verify(&set).unwrap();

            let wrong_alg = Checkpoint {
                alg: "ES384".into(),
                ..cp.clone()
            };
            assert_eq!(wrong_alg.verify(k.verifying_key()), Err(SignatureError));
            let edited = Checkpoint {
                count: 6,
                ..cp.clone()
            };
            assert_eq!(edited.verify(k.verifying_key()), Err(SignatureError));
        }
    }
}
