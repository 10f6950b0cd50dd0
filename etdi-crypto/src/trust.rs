//! Trust configuration for ETDI verifiers: the keys trusted for each issuer,
//! each optionally valid only until a point in time (a retired key during
//! its rotation overlap).
//!
//! Keys come only from here, never from a token (docs/PROTOCOL.md §5.1): a
//! verifier looks the token's `iss` up first, then its `kid` among that
//! issuer's keys, so two issuers that happen to use the same `kid` cannot be
//! confused.

use std::collections::{BTreeMap, HashMap};

use crate::clock::UnixTime;
use crate::jws::{JwsHeader, KeyResolver};
use crate::key::{KeyId, VerifyingKey};
use crate::key_set::VerifyingKeySet;

/// One trusted key and the last second it may verify at.
#[derive(Debug, Clone)]
struct Entry {
    key: VerifyingKey,
    /// Signatures are refused when `now >= not_after`.
    not_after: Option<UnixTime>,
}

/// The keys trusted for one issuer, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<KeyId, Entry>,
}

impl KeyRing {
    /// An empty ring (trusts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` (under its `kid`) without a time limit.
    pub fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(
            key.kid().clone(),
            Entry {
                key,
                not_after: None,
            },
        );
    }

    /// Trusts `key` until `not_after` (exclusive): the shape of a retired key
    /// during its rotation overlap.
    pub fn insert_until(&mut self, key: VerifyingKey, not_after: UnixTime) {
        self.keys.insert(
            key.kid().clone(),
            Entry {
                key,
                not_after: Some(not_after),
            },
        );
    }

    /// Stops trusting the key with this `kid`.
    pub fn remove(&mut self, kid: &str) -> Option<VerifyingKey> {
        self.keys.remove(kid).map(|e| e.key)
    }

    /// The key with this `kid` if it is trusted at `now`.
    pub fn get(&self, kid: &str, now: UnixTime) -> Option<&VerifyingKey> {
        let e = self.keys.get(kid)?;
        match e.not_after {
            Some(t) if now >= t => None,
            _ => Some(&e.key),
        }
    }

    /// Number of keys (including ones whose time has passed).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys trusted at `now`.
    pub fn valid_at(&self, now: UnixTime) -> impl Iterator<Item = &VerifyingKey> {
        self.keys
            .values()
            .filter(move |e| e.not_after.is_none_or(|t| now < t))
            .map(|e| &e.key)
    }

    /// A resolver over the keys valid at `now`, for [`crate::jws::verify`].
    /// A header without `kid` never resolves: ETDI requires `kid`.
    pub(crate) fn resolver(&self, now: UnixTime) -> RingResolver<'_> {
        RingResolver { ring: self, now }
    }
}

impl From<VerifyingKeySet> for KeyRing {
    fn from(set: VerifyingKeySet) -> Self {
        let mut ring = KeyRing::new();
        for key in set.iter() {
            ring.insert(key.clone());
        }
        ring
    }
}

impl FromIterator<VerifyingKey> for KeyRing {
    fn from_iter<I: IntoIterator<Item = VerifyingKey>>(iter: I) -> Self {
        let mut ring = KeyRing::new();
        for key in iter {
            ring.insert(key);
        }
        ring
    }
}

/// [`KeyResolver`] over one ring at one instant.
pub(crate) struct RingResolver<'a> {
    ring: &'a KeyRing,
    now: UnixTime,
}

impl KeyResolver for RingResolver<'_> {
    fn resolve(&self, header: &JwsHeader) -> Option<VerifyingKey> {
        self.ring.get(header.kid()?, self.now).cloned()
    }
}

/// Key rings by issuer (`iss`).
#[derive(Debug, Clone, Default)]
pub struct IssuerKeys {
    issuers: HashMap<String, KeyRing>,
}

impl IssuerKeys {
    /// No issuer trusted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the ring of `issuer`.
    pub fn set(&mut self, issuer: impl Into<String>, ring: KeyRing) {
        self.issuers.insert(issuer.into(), ring);
    }

    /// Adds one key (without time limit) to `issuer`'s ring.
    pub fn add(&mut self, issuer: impl Into<String>, key: VerifyingKey) {
        self.issuers.entry(issuer.into()).or_default().insert(key);
    }

    /// The ring of `issuer`, if any.
    pub fn ring(&self, issuer: &str) -> Option<&KeyRing> {
        self.issuers.get(issuer)
    }

    /// Mutable access to the ring of `issuer`, creating it if needed.
    pub fn ring_mut(&mut self, issuer: impl Into<String>) -> &mut KeyRing {
        self.issuers.entry(issuer.into()).or_default()
    }

    /// Stops trusting `issuer` entirely.
    pub fn remove(&mut self, issuer: &str) -> Option<KeyRing> {
        self.issuers.remove(issuer)
    }
}
