//! Time as the protocol sees it: whole seconds since the Unix epoch, read
//! through a [`Clock`] so that tests can move time without sleeping.
//!
//! Every verification function in this crate takes `now` explicitly. The
//! [`Clock`] trait exists for the long-lived objects (key manager, servers)
//! that need to ask for the time themselves; production code uses
//! [`SystemClock`], tests use [`ManualClock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A JWT NumericDate: whole seconds since the Unix epoch (RFC 7519 §2).
///
/// ETDI writes and accepts only non-negative integers here; fractional or
/// negative values are refused when claims are parsed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// From seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// The current system time. A clock set before 1970 reads as the epoch,
    /// which makes every token look expired: failing closed.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime(secs)
    }

    /// `self + secs`, saturating at the far future instead of wrapping.
    pub const fn plus(self, secs: u64) -> Self {
        UnixTime(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at the epoch.
    pub const fn minus(self, secs: u64) -> Self {
        UnixTime(self.0.saturating_sub(secs))
    }
}

impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixTime({})", self.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A source of the current time. etdi-auth reads this same trait (token
/// expiry, JWKS and introspection caches), so one clock drives a whole stack.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: UnixTime) -> Self {
        ManualClock(AtomicU64::new(start.0))
    }

    /// Sets the time.
    pub fn set(&self, t: UnixTime) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: u64) {
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(UnixTime::from_secs(100));
        assert_eq!(c.now(), UnixTime::from_secs(100));
        c.advance(5);
        assert_eq!(c.now().as_secs(), 105);
        c.set(UnixTime::from_secs(7));
        assert_eq!(c.now().as_secs(), 7);
        assert_eq!(UnixTime::from_secs(u64::MAX).plus(1).as_secs(), u64::MAX);
        assert_eq!(UnixTime::EPOCH.minus(1), UnixTime::EPOCH);
        assert!(SystemClock.now() > UnixTime::from_secs(1_600_000_000));
    }
}
