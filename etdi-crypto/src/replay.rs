//! Replay protection: a store of `(iss, jti)` nonces seen within their
//! validity window (docs/PROTOCOL.md §8.2).
//!
//! # Why the trait is async
//!
//! A single server can keep nonces in memory ([`MemoryNonceStore`]), but
//! several replicas behind a load balancer must share one store, or a request
//! replayed to a different replica would be accepted. A shared store (Redis,
//! a database) is reached over the network, so its check must not block the
//! async runtime: [`NonceStore::check_and_insert`] is an `async fn`. What such
//! a store needs, and what this trait asks of it:
//!
//! * one **atomic** "insert if absent" (Redis: `SET key 1 NX EXAT keep_until`),
//!   never a read followed by a write, or two replicas could both accept;
//! * a time-to-live, so entries leave by themselves at `keep_until`;
//! * **fail closed**: a store that is full, unreachable or slow returns an
//!   error, and the request is refused (Redis with `maxmemory-policy
//!   noeviction` answers `OOM` when full; an evicting policy would silently
//!   forget nonces and must not be used).
//!
//! The key is the pair `(iss, jti)`: two issuers may pick the same `jti`
//! without colliding. Stores may hash the pair (this one does, with SHA-256)
//! to get fixed-size keys.
//!
//! # Sizing
//!
//! An entry accepted at time `t` lives until at most
//! `t + skew + max_lifetime + skew` (its `iat` may be `skew` in the future, its
//! `exp` at most `max_lifetime` after `iat`, and it is kept `skew` past `exp`).
//! With the defaults (skew 30 s, max lifetime 300 s) that window is 360 s, so a
//! server accepting `r` signed requests per second needs a capacity of
//! `r × 360` entries in the worst case; clients using the default 60 s lifetime
//! need about `r × 120`. [`MemoryNonceStore::capacity_for`] computes this, and
//! [`MemoryNonceStore::MAX_BYTES_PER_ENTRY`] bounds the memory of each entry.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::clock::UnixTime;

/// Why a nonce was not accepted. Every variant means "refuse the request".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// `(iss, jti)` was already seen within its validity window.
    #[error("request replayed: this (iss, jti) was already used")]
    Replayed,
    /// The entry would already have expired (`keep_until <= now`): the request
    /// is stale and is refused by time.
    #[error("request is stale: its validity window has passed")]
    Stale,
    /// The store holds as many live entries as it may; new signed requests are
    /// refused until old ones expire (fail closed).
    #[error("replay store is full ({capacity} live entries); request refused")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
    /// The store could not answer (network error, poisoned lock, ...).
    #[error("replay store unavailable: {reason}")]
    Unavailable {
        /// What went wrong, for operators.
        reason: String,
    },
}

/// A store of `(iss, jti)` nonces. See the module documentation for what a
/// shared implementation must guarantee.
#[async_trait::async_trait]
pub trait NonceStore: Send + Sync {
    /// Records `(issuer, jti)` until `keep_until`, atomically refusing it if it
    /// is already present. `now` is the verifier's clock, passed in so that
    /// every replica judges time the same way the verifier did.
    async fn check_and_insert(
        &self,
        issuer: &str,
        jti: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ReplayError>;
}

pub(crate) type Key = [u8; 32];

/// A bounded in-memory [`NonceStore`] for a single server process.
///
/// Entries are evicted by time (at `keep_until`), oldest first, on every
/// insert; the number of live entries never exceeds the capacity, and when it
/// is reached new nonces are refused with [`ReplayError::Full`] rather than
/// admitted unchecked.
#[derive(Debug)]
pub struct MemoryNonceStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Live entries: hashed `(iss, jti)` to `keep_until` seconds.
    live: HashMap<Key, u64>,
    /// The same entries ordered by expiry, for eviction without a scan.
    by_expiry: BinaryHeap<Reverse<(u64, Key)>>,
}

impl MemoryNonceStore {
    /// Upper bound on the heap memory one live entry costs, in bytes.
    ///
    /// Each entry is a 32-byte key hash and an 8-byte expiry, stored twice:
    /// in the hash map (40 bytes + 1 control byte per slot; slots are a power
    /// of two at most 7/8 full, so between 47 and 94 bytes per entry) and in
    /// the expiry heap (40 bytes per element; a `Vec` that grows by doubling
    /// holds up to 80). 94 + 80 = 174, rounded up. Typical use sits near
    /// 100-130 bytes. Memory is allocated as entries arrive, never up front.
    pub const MAX_BYTES_PER_ENTRY: usize = 176;

    /// A store holding at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        MemoryNonceStore {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The capacity needed for `rate_per_sec` signed requests per second when
    /// entries live `window_secs` (see the module documentation: worst case
    /// `max_lifetime + 2 × skew`).
    pub fn capacity_for(rate_per_sec: u64, window_secs: u64) -> usize {
        usize::try_from(rate_per_sec.saturating_mul(window_secs)).unwrap_or(usize::MAX)
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Live entries (including ones that expired since the last insert and
    /// have not been evicted yet).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.live.len()).unwrap_or(0)
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Upper bound on the memory the store may use when full, in bytes.
    pub fn max_memory_bytes(&self) -> usize {
        self.capacity.saturating_mul(Self::MAX_BYTES_PER_ENTRY)
    }

    /// Removes every entry whose `keep_until` is at or before `now`.
    pub fn evict_expired(&self, now: UnixTime) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.evict(now.as_secs());
        }
    }

    /// The synchronous form of [`NonceStore::check_and_insert`]: this store
    /// never waits, so callers that hold a `MemoryNonceStore` directly need no
    /// executor.
    pub fn check_and_insert_now(
        &self,
        issuer: &str,
        jti: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ReplayError> {
        self.insert_key(hash_key(issuer, jti), keep_until.as_secs(), now)
    }

    /// [`Self::check_and_insert_now`] of an already hashed key.
    pub(crate) fn insert_key(
        &self,
        key: Key,
        until: u64,
        now: UnixTime,
    ) -> Result<(), ReplayError> {
        let now = now.as_secs();
        if until <= now {
            return Err(ReplayError::Stale);
        }
        // A poisoned lock means a thread panicked mid-update; the maps may
        // disagree, so refuse rather than guess.
        let mut inner = self.inner.lock().map_err(|_| ReplayError::Unavailable {
            reason: "replay store lock poisoned".into(),
        })?;
        inner.evict(now);
        // One lookup for both the replay check and the insert. A replay is
        // reported as such even when the store is full.
        let live = inner.live.len();
        match inner.live.entry(key) {
            Entry::Occupied(_) => return Err(ReplayError::Replayed),
            Entry::Vacant(_) if live >= self.capacity => {
                return Err(ReplayError::Full {
                    capacity: self.capacity,
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(until);
            }
        }
        inner.by_expiry.push(Reverse((until, key)));
        Ok(())
    }
}

impl MemoryNonceStore {
    /// The entries still live at `now` (for a journal's compaction);
    /// `None` when the lock is poisoned.
    pub(crate) fn live_entries(&self, now: UnixTime) -> Option<Vec<(Key, u64)>> {
        let g = self.inner.lock().ok()?;
        Some(
            g.live
                .iter()
                .filter(|(_, until)| **until > now.as_secs())
                .map(|(k, u)| (*k, *u))
                .collect(),
        )
    }
}

impl Inner {
    fn evict(&mut self, now: u64) {
        while let Some(Reverse((until, key))) = self.by_expiry.peek().copied() {
            if until > now {
                break;
            }
            self.by_expiry.pop();
            self.live.remove(&key);
        }
    }
}

#[async_trait::async_trait]
impl NonceStore for MemoryNonceStore {
    async fn check_and_insert(
        &self,
        issuer: &str,
        jti: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<(), ReplayError> {
        self.check_and_insert_now(issuer, jti, keep_until, now)
    }
}

/// SHA-256 over the length-prefixed pair, so `("ab", "c")` and `("a", "bc")`
/// are different keys and every key has the same small size.
pub(crate) fn hash_key(issuer: &str, jti: &str) -> Key {
    let mut h = Sha256::new();
    h.update((issuer.len() as u64).to_be_bytes());
    h.update(issuer.as_bytes());
    h.update(jti.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    #[test]
    fn replay_inside_window_is_refused_and_evicted_after() {
        let s = MemoryNonceStore::new(10);
        assert_eq!(s.check_and_insert_now("c", "n1", t(200), t(100)), Ok(()));
        assert_eq!(
            s.check_and_insert_now("c", "n1", t(200), t(150)),
            Err(ReplayError::Replayed)
        );
        // Another issuer may use the same jti.
        assert_eq!(s.check_and_insert_now("d", "n1", t(200), t(150)), Ok(()));
        // Length prefix: no ambiguity between ("c","n1x") and ("cn", "1x").
        assert_eq!(s.check_and_insert_now("c", "n1x", t(200), t(150)), Ok(()));
        assert_eq!(s.check_and_insert_now("cn", "1x", t(200), t(150)), Ok(()));
        assert_eq!(s.len(), 4);
        // At keep_until the entry leaves; a request that old is refused by
        // time before it reaches the store, and the store refuses it too.
        assert_eq!(
            s.check_and_insert_now("c", "n1", t(200), t(200)),
            Err(ReplayError::Stale)
        );
        s.evict_expired(t(200));
        assert!(s.is_empty());
    }

    #[test]
    fn full_store_fails_closed_until_entries_expire() {
        let s = MemoryNonceStore::new(3);
        for (i, until) in [(0, 110), (1, 120), (2, 130)] {
            s.check_and_insert_now("c", &format!("n{i}"), t(until), t(100))
                .unwrap();
        }
        assert_eq!(
            s.check_and_insert_now("c", "n3", t(140), t(101)),
            Err(ReplayError::Full { capacity: 3 })
        );
        // A replay is still reported as a replay when full.
        assert_eq!(
            s.check_and_insert_now("c", "n0", t(140), t(101)),
            Err(ReplayError::Replayed)
        );
        // Once the oldest expires there is room again.
        assert_eq!(s.check_and_insert_now("c", "n3", t(140), t(110)), Ok(()));
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.max_memory_bytes(),
            3 * MemoryNonceStore::MAX_BYTES_PER_ENTRY
        );
    }

    #[test]
    fn memory_stays_bounded_under_steady_load() {
        // 50 requests per second for 20 minutes, each kept 90 s: the live set
        // never exceeds rate x window.
        let window = 90;
        let cap = MemoryNonceStore::capacity_for(50, window);
        let s = MemoryNonceStore::new(cap);
        for sec in 0..1200u64 {
            for i in 0..50 {
                s.check_and_insert_now("c", &format!("{sec}-{i}"), t(sec + window), t(sec))
                    .unwrap();
            }
            assert!(s.len() <= cap);
        }
        let inner = s.inner.lock().unwrap();
        assert_eq!(inner.live.len(), inner.by_expiry.len());
    }

    #[test]
    fn trait_object_is_usable() {
        let s: Box<dyn NonceStore> = Box::new(MemoryNonceStore::new(1));
        let fut = s.check_and_insert("c", "n", t(10), t(1));
        // The memory store never waits, so one poll completes the future.
        let mut fut = fut;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(())));
    }
}
