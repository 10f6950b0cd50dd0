//! A set of trusted verifying keys looked up by `kid`, built directly or
//! from a JWK Set, and usable as a [`KeyResolver`] for JWS verification.

use std::collections::BTreeMap;

use crate::alg::Algorithm;
use crate::error::KeyError;
use crate::jwk::{Jwk, JwkSet};
use crate::jws::{JwsHeader, KeyResolver};
use crate::key::{KeyId, VerifyingKey};
use crate::provider::CryptoProvider;

/// Trusted public keys by `kid`. A header without `kid` resolves only when
/// the set holds exactly one key, so a multi-key set never guesses.
#[derive(Clone, Debug, Default)]
pub struct VerifyingKeySet {
    keys: BTreeMap<KeyId, VerifyingKey>,
}

/// A JWK left out of a [`VerifyingKeySet`] built from a JWKS, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedJwk {
    /// The JWK's `kid`, if any.
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: KeyError,
}

impl VerifyingKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key under its `kid`, replacing any key with the same `kid`.
    /// Returns the replaced key.
    pub fn insert(&mut self, key: VerifyingKey) -> Option<VerifyingKey> {
        self.keys.insert(key.kid().clone(), key)
    }

    /// Removes the key with this `kid`.
    pub fn remove(&mut self, kid: &str) -> Option<VerifyingKey> {
        self.keys.remove(kid)
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, ordered by `kid`.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values()
    }

    /// The public JWKS of these keys, for publication.
    pub fn to_jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.values().map(VerifyingKey::to_jwk).collect(),
        }
    }

    /// Builds a set from a JWKS, strictly: any key that cannot be imported is
    /// an error, except keys marked for encryption (`use: "enc"`), which are
    /// not signature keys and are skipped.
    pub fn from_jwks(provider: &CryptoProvider, jwks: &JwkSet) -> Result<Self, KeyError> {
        let mut set = Self::new();
        for jwk in &jwks.keys {
            if !jwk.usable_for_signatures() {
                continue;
            }
            set.insert(VerifyingKey::from_jwk(provider, jwk, None)?);
        }
        Ok(set)
    }

    /// Builds a set from a third-party JWKS (an IdP's), leniently: keys that
    /// are not signature keys, are of unsupported types, or are malformed are
    /// skipped and reported, so one odd key does not disable the others.
    /// `default_rsa_alg` is used for RSA keys without an `alg` member.
    pub fn from_jwks_lenient(
        provider: &CryptoProvider,
        jwks: &JwkSet,
        default_rsa_alg: Option<Algorithm>,
    ) -> (Self, Vec<SkippedJwk>) {
        let mut set = Self::new();
        let mut skipped = Vec::new();
        for jwk in &jwks.keys {
            if !jwk.usable_for_signatures() {
                continue;
            }
            match import_lenient(provider, jwk, default_rsa_alg) {
                Ok(key) => {
                    set.insert(key);
                }
                Err(reason) => skipped.push(SkippedJwk {
                    kid: jwk.kid().map(str::to_owned),
                    reason,
                }),
            }
        }
        (set, skipped)
    }
}

fn import_lenient(
    provider: &CryptoProvider,
    jwk: &Jwk,
    default_rsa_alg: Option<Algorithm>,
) -> Result<VerifyingKey, KeyError> {
    let alg = match (jwk.alg(), jwk.kty()) {
        (None, "RSA") => default_rsa_alg,
        _ => None,
    };
    VerifyingKey::from_jwk(provider, jwk, alg)
}

impl KeyResolver for VerifyingKeySet {
    fn resolve(&self, header: &JwsHeader) -> Option<VerifyingKey> {
        match header.kid() {
            Some(kid) => self.get(kid).cloned(),
            None if self.keys.len() == 1 => self.keys.values().next().cloned(),
            None => None,
        }
    }
}

impl FromIterator<VerifyingKey> for VerifyingKeySet {
    fn from_iter<I: IntoIterator<Item = VerifyingKey>>(iter: I) -> Self {
        let mut set = Self::new();
        for key in iter {
            set.insert(key);
        }
        set
    }
}
