//! A bounded cache of tokens that were already fully validated, keyed by the
//! SHA-256 of the token, so a client reusing its token costs a hash and a map
//! lookup instead of a signature check or an introspection call.
//!
//! Invariants: an entry is never served at or after its `valid_until`, which
//! is at most the token's `exp`; the map never holds more than `capacity`
//! entries. The token itself is never stored, only its hash.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use etdi_core::Principal;
use sha2::{Digest as _, Sha256};

/// SHA-256 of a token.
pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// What is remembered about a validated token.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Shared, so a hit hands out a reference count, not a copy.
    pub(crate) principal: std::sync::Arc<Principal>,
    /// Serve until this time (exclusive): `min(exp, validated + max_ttl)`.
    pub(crate) valid_until: u64,
    /// `cnf.x5t#S256` of a certificate-bound token: re-checked on every hit.
    pub(crate) bound_to: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<TokenHash, Entry>,
    order: VecDeque<TokenHash>,
    last_purge: u64,
}

/// The cache itself.
#[derive(Debug)]
pub(crate) struct TokenCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map is consistent after every statement that mutates it, so a
        // panic elsewhere while holding the lock leaves usable data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// False when the capacity is zero (caching disabled).
    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The entry for `hash`, if still valid at `now`.
    pub(crate) fn get(&self, hash: &TokenHash, now: u64) -> Option<Entry> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.lock();
        let entry = inner.map.get(hash)?;
        if now < entry.valid_until {
            return Some(entry.clone());
        }
        inner.map.remove(hash);
        None
    }

    pub(crate) fn insert(&self, hash: TokenHash, entry: Entry, now: u64) {
        if self.capacity == 0 || entry.valid_until <= now {
            return;
        }
        let mut inner = self.lock();
        if inner.map.len() >= self.capacity && inner.last_purge != now {
            // Purge expired entries at most once a second: O(n), amortised.
            inner.last_purge = now;
            inner.map.retain(|_, e| now < e.valid_until);
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|h| map.contains_key(h));
        }
        while inner.map.len() >= self.capacity {
            // Oldest first; `order` may hold hashes already removed, skip them.
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        if inner.map.insert(hash, entry).is_none() {
            inner.order.push_back(hash);
        }
        // Hashes of entries removed by `get` linger in `order`; keep it bounded.
        if inner.order.len() > self.capacity.saturating_mul(2) {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|h| map.contains_key(h));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etdi_core::AuthMethod;

    fn entry(valid_until: u64) -> Entry {
        Entry {
            principal: std::sync::Arc::new(Principal::new("s", AuthMethod::BearerJwt)),
            valid_until,
            bound_to: None,
        }
    }

    #[test]
    fn never_served_at_or_after_expiry() {
        let c = TokenCache::new(10);
        let h = token_hash("t");
        c.insert(h, entry(100), 50);
        assert!(c.get(&h, 99).is_some());
        assert!(c.get(&h, 100).is_none());
        assert!(c.get(&h, 99).is_none(), "removed once expired");
    }

    #[test]
    fn bounded_in_size() {
        let c = TokenCache::new(3);
        for i in 0..10 {
            c.insert(token_hash(&i.to_string()), entry(1000), 1);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&token_hash("9"), 2).is_some());
        assert!(c.get(&token_hash("0"), 2).is_none());
    }

    #[test]
    fn expired_entries_are_purged_first() {
        let c = TokenCache::new(2);
        c.insert(token_hash("old"), entry(5), 1);
        c.insert(token_hash("keep"), entry(100), 1);
        c.insert(token_hash("new"), entry(100), 10);
        assert!(c.get(&token_hash("keep"), 10).is_some());
        assert!(c.get(&token_hash("new"), 10).is_some());
    }

    #[test]
    fn zero_capacity_disables() {
        let c = TokenCache::new(0);
        c.insert(token_hash("t"), entry(100), 1);
        assert!(c.get(&token_hash("t"), 2).is_none());
    }
}
