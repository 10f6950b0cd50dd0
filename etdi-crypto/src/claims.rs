//! Rules shared by every ETDI token: the protocol version claim, freshness
//! windows (docs/PROTOCOL.md §8.2) and `jti` nonces.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UnixTime;
use crate::error::CryptoFailure;
use crate::provider::CryptoProvider;

/// The `etdi_ver` this crate writes and accepts.
pub const ETDI_VER: u64 = 1;
/// Default tolerated clock difference between signer and verifier.
pub const DEFAULT_SKEW_SECS: u64 = 30;
/// Longest `exp - iat` the protocol allows for requests and hops.
pub const MAX_LIFETIME_SECS: u64 = 300;
/// Lifetime a signer gives requests and hops unless told otherwise.
pub const DEFAULT_LIFETIME_SECS: u64 = 60;
/// Random bytes in a generated `jti` (128 bits, as §6 requires).
pub const JTI_RANDOM_BYTES: usize = 16;
/// Shortest `jti` accepted: 128 bits written in base64url.
pub const JTI_MIN_LEN: usize = 22;
/// Longest `jti` accepted.
pub const JTI_MAX_LEN: usize = 64;

/// The time window a verifier accepts short-lived tokens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    skew: u64,
    max_lifetime: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            skew: DEFAULT_SKEW_SECS,
            max_lifetime: MAX_LIFETIME_SECS,
        }
    }
}

/// Why a token is outside its time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FreshnessError {
    /// `iat` is further in the future than the skew allows.
    #[error("issued in the future (iat {iat}, now {now})")]
    NotYetValid {
        /// The token's `iat`.
        iat: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// `exp` is at or before `now - skew`.
    #[error("expired (exp {exp}, now {now})")]
    Expired {
        /// The token's `exp`.
        exp: UnixTime,
        /// The verifier's clock.
        now: UnixTime,
    },
    /// `exp - iat` is negative or longer than allowed.
    #[error("lifetime exp - iat is not between 0 and {max} seconds")]
    Lifetime {
        /// The longest lifetime accepted.
        max: u64,
    },
}

impl Freshness {
    /// The default window: 30 s skew, 300 s longest lifetime.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the tolerated clock skew in seconds.
    pub fn with_skew(mut self, secs: u64) -> Self {
        self.skew = secs;
        self
    }

    /// Sets the longest accepted lifetime; values above the protocol's 300 s
    /// are clamped to it.
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime = secs.min(MAX_LIFETIME_SECS);
        self
    }

    /// The tolerated skew in seconds.
    pub fn skew(&self) -> u64 {
        self.skew
    }

    /// The longest accepted lifetime in seconds.
    pub fn max_lifetime(&self) -> u64 {
        self.max_lifetime
    }

    /// Checks `iat` and `exp` against `now` (§8.2).
    pub fn check(&self, iat: UnixTime, exp: UnixTime, now: UnixTime) -> Result<(), FreshnessError> {
        if iat > now.plus(self.skew) {
            return Err(FreshnessError::NotYetValid { iat, now });
        }
        // `exp` must be later than `now - skew`; written without subtraction
        // so that small `now` values cannot underflow.
        if exp.plus(self.skew) <= now {
            return Err(FreshnessError::Expired { exp, now });
        }
        match exp.as_secs().checked_sub(iat.as_secs()) {
            Some(life) if life <= self.max_lifetime => Ok(()),
            _ => Err(FreshnessError::Lifetime {
                max: self.max_lifetime,
            }),
        }
    }

    /// How long a nonce store must remember a token expiring at `exp`.
    pub fn keep_until(&self, exp: UnixTime) -> UnixTime {
        exp.plus(self.skew)
    }

    /// The longest any accepted token stays in a nonce store after it is
    /// first seen: `skew + max_lifetime + skew`. Multiply by the request rate
    /// to size a store.
    pub fn replay_window_secs(&self) -> u64 {
        self.skew
            .saturating_mul(2)
            .saturating_add(self.max_lifetime)
    }
}

/// A fresh `jti`: 128 random bits from the provider, base64url.
pub fn new_jti(provider: &CryptoProvider) -> Result<String, CryptoFailure> {
    let mut bytes = [0u8; JTI_RANDOM_BYTES];
    provider.fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// True when `jti` is base64url of an acceptable length (§6). Randomness
/// cannot be checked; length is a floor on what the signer could have used.
pub fn is_valid_jti(jti: &str) -> bool {
    (JTI_MIN_LEN..=JTI_MAX_LEN).contains(&jti.len())
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    #[test]
    fn freshness_window_edges() {
        let f = Freshness::new();
        assert_eq!(f.check(t(1000), t(1060), t(1000)), Ok(()));
        // iat up to skew in the future is fine, one second more is not.
        assert_eq!(f.check(t(1030), t(1090), t(1000)), Ok(()));
        assert!(matches!(
            f.check(t(1031), t(1091), t(1000)),
            Err(FreshnessError::NotYetValid { .. })
        ));
        // exp must be later than now - skew.
        assert_eq!(f.check(t(1000), t(1060), t(1089)), Ok(()));
        assert!(matches!(
            f.check(t(1000), t(1060), t(1090)),
            Err(FreshnessError::Expired { .. })
        ));
        // Lifetime bounds.
        assert_eq!(f.check(t(1000), t(1300), t(1000)), Ok(()));
        assert_eq!(
            f.check(t(1000), t(1301), t(1000)),
            Err(FreshnessError::Lifetime { max: 300 })
        );
        assert_eq!(
            f.check(t(1000), t(999), t(1000)),
            Err(FreshnessError::Lifetime { max: 300 })
        );
        assert_eq!(
            Freshness::new().with_max_lifetime(10_000).max_lifetime(),
            300
        );
        assert_eq!(f.replay_window_secs(), 360);
        assert_eq!(f.keep_until(t(1060)), t(1090));
        // Tiny clocks do not underflow.
        assert!(f.check(t(0), t(0), t(0)).is_ok());
    }

    #[test]
    fn jti_shape() {
        let p = CryptoProvider::get_default();
        let a = new_jti(p).unwrap();
        let b = new_jti(p).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(is_valid_jti(&a));
        assert!(!is_valid_jti("short"));
        assert!(!is_valid_jti(&"a".repeat(65)));
        assert!(!is_valid_jti("aaaaaaaaaaaaaaaaaaaaaaaaa+"));
    }
}
