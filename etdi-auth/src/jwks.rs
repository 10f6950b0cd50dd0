//! JWKS: parsing an issuer's key set, and a cache that refreshes it on a TTL,
//! on unknown `kid` at most once per cooldown, and keeps known keys working
//! for a bounded time while the IdP is unreachable.
//!
//! Keys come only from the configured issuer's JWKS (or static configuration):
//! `jku`, `x5u`, `jwk` and `x5c` token headers are never consulted (etdi-crypto
//! refuses tokens that carry them), so a token cannot bring its own key.
//!
//! Each JWK becomes one `etdi_crypto::VerifyingKey` per algorithm it may
//! verify, parsed once when the set is loaded. A JWK that names its `alg`
//! verifies that algorithm only. A JWK without `alg` verifies the algorithms
//! of the issuer's allow-list that fit its key type, size and curve (for RSA,
//! the allow-list's `RS*`/`PS*`; for EC and Ed25519 the one algorithm the
//! curve implies, if allowed), so the token's header can pick among those and
//! nothing else.

use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etdi_crypto::{Algorithm, CryptoProvider, Jwk, KeyError, VerifyingKey};
use serde_json::Value;

use crate::clock::Clock;
use crate::discovery;
use crate::error::{ConfigError, FetchError, TokenError, shown};
use crate::http::HttpClient;

/// One JWK of an issuer's set: its `kid` as published, and the key bound to
/// each algorithm it may verify.
#[derive(Debug)]
pub(crate) struct JwksKey {
    kid: Option<String>,
    keys: Vec<VerifyingKey>,
}

impl JwksKey {
    fn for_alg(&self, alg: Algorithm) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.algorithm() == alg)
    }
}

/// Keys parsed from one JWKS document.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<JwksKey>,
    /// When this set was fetched, and until when it is fresh.
    fetched_at: u64,
    fresh_until: u64,
    generation: u64,
}

/// Why no key was found in a set.
enum Lookup {
    Found(VerifyingKey),
    NoKid,
    Mismatch,
}

impl KeySet {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        match kid {
            Some(kid) => {
                let mut seen = false;
                for jwk in self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
                    seen = true;
                    if let Some(key) = jwk.for_alg(alg) {
                        return Lookup::Found(key.clone());
                    }
                }
                if seen {
                    Lookup::Mismatch
                } else {
                    Lookup::NoKid
                }
            }
            None => {
                // Without a `kid`, accept only an unambiguous key: trying every
                // key would let one token cost many signature checks.
                let mut candidates = self.keys.iter().filter_map(|k| k.for_alg(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Lookup::Found(key.clone()),
                    _ => Lookup::NoKid,
                }
            }
        }
    }

    /// Number of usable keys (JWKs, not algorithms).
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Largest number of keys taken from one JWKS; real IdPs publish a handful.
pub const MAX_JWKS_KEYS: usize = 64;

/// Parses a JWKS document into verification keys for an issuer that allows
/// `allowed`.
///
/// Keys that cannot verify this issuer's tokens are skipped, not fatal: `use`
/// other than `sig`, `key_ops` without `verify`/`sign`, symmetric `oct` keys
/// (never trusted from a JWKS), unknown key types or curves, RSA moduli under
/// 2048 bits, malformed members, a JWK `alg` that is not a signature
/// algorithm or does not fit the key, and a key without `alg` that fits no
/// allowed algorithm. A document with no usable key at all is an error.
pub(crate) fn parse_jwks(doc: &Value, allowed: &[Algorithm]) -> Result<Vec<JwksKey>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("`keys` is not an array")?;
    let provider = CryptoProvider::get_default();
    let mut out = Vec::new();
    for entry in keys.iter().take(MAX_JWKS_KEYS) {
        match parse_jwk(provider, entry, allowed) {
            Ok(Some(key)) => out.push(key),
            Ok(None) => {}
            Err(reason) => tracing::debug!(%reason, "JWKS entry skipped"),
        }
    }
    if out.is_empty() {
        return Err("no usable signature verification key".to_owned());
    }
    Ok(out)
}

fn parse_jwk(
    provider: &CryptoProvider,
    entry: &Value,
    allowed: &[Algorithm],
) -> Result<Option<JwksKey>, KeyError> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| KeyError::Jwk {
        detail: e.to_string(),
    })?;
    // Encryption keys and keys not meant for verification are not ours to use.
    if !jwk.usable_for_signatures() {
        return Ok(None);
    }
    let kid = jwk.kid().map(str::to_owned);
    let keys = if jwk.alg().is_some() {
        // The JWK says which algorithm it is for: that one only (etdi-crypto
        // refuses `none`, HMAC, encryption algorithms and a mismatch with the
        // key type).
        vec![VerifyingKey::from_jwk(provider, &jwk, None)?]
    } else {
        let mut keys = Vec::new();
        for &alg in allowed {
            match VerifyingKey::from_jwk(provider, &jwk, Some(alg)) {
                Ok(key) => keys.push(key),
                // This allowed algorithm needs another key type or curve.
                Err(KeyError::AlgorithmMismatch { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Unsupported {
                what: "no allowed algorithm fits this key".to_owned(),
            });
        }
        keys
    };
    Ok(Some(JwksKey { kid, keys }))
}

/// Timing of the JWKS cache.
#[derive(Debug, Clone)]
pub struct JwksPolicy {
    /// TTL when the response has no `Cache-Control: max-age` (default 10 min).
    pub default_ttl: Duration,
    /// Lower bound on the TTL, whatever `max-age` says (default 1 min), so a
    /// `no-store` IdP is not fetched on every request.
    pub min_ttl: Duration,
    /// Upper bound on the TTL (default 24 h), so a rotated-out key stops
    /// verifying within a day even if the IdP asked for longer caching.
    pub max_ttl: Duration,
    /// An unknown `kid` refreshes the set at most once per this interval
    /// (default 30 s): a flood of random `kid`s costs at most one fetch each.
    pub unknown_kid_cooldown: Duration,
    /// After a failed fetch, no new attempt for this long (default 10 s).
    pub failure_backoff: Duration,
    /// How long past its TTL a set keeps verifying while refreshes fail
    /// (default 1 h). After that, tokens of the issuer are refused as
    /// unavailable: an IdP that is gone cannot have its old keys trusted forever.
    pub max_stale: Duration,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(10),
            max_stale: Duration::from_secs(3600),
        }
    }
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// Discover `jwks_uri` from the issuer's metadata.
    Discover,
    /// A known JWKS URL.
    Url(String),
    /// A fixed JWKS document: never fetched, never refreshed.
    Static(Value),
}

#[derive(Debug, Default)]
struct RefreshState {
    jwks_uri: Option<String>,
    last_attempt: Option<u64>,
    last_failure: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Initial,
    Expired,
    UnknownKid,
}

/// The key cache of one issuer.
#[derive(Debug)]
pub(crate) struct JwksCache {
    issuer: String,
    /// The issuer's algorithm allow-list: JWKs without `alg` are imported
    /// for these algorithms only.
    algorithms: Vec<Algorithm>,
    source: KeySource,
    policy: JwksPolicy,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    current: RwLock<Option<Arc<KeySet>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    fetches: AtomicU64,
}

impl JwksCache {
    pub(crate) fn new(
        issuer: String,
        algorithms: Vec<Algorithm>,
        source: KeySource,
        policy: JwksPolicy,
        http: HttpClient,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let mut initial = None;
        if let KeySource::Static(doc) = &source {
            let keys = parse_jwks(doc, &algorithms)
                .map_err(|e| ConfigError(format!("static JWKS for `{issuer}`: {e}")))?;
            initial = Some(Arc::new(KeySet {
                keys,
                fetched_at: 0,
                fresh_until: u64::MAX,
                generation: 1,
            }));
        }
        if let KeySource::Url(url) = &source {
            crate::http::check_url(url).map_err(|e| ConfigError(e.to_string()))?;
        }
        Ok(JwksCache {
            issuer,
            algorithms,
            source,
            policy,
            http,
            clock,
            current: RwLock::new(initial),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many JWKS documents were requested over HTTP so far.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc;
        // the value inside is still a whole set.
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetches the key set now if none is loaded yet (warm-up at start).
    pub(crate) async fn warm_up(&self) -> Result<usize, FetchError> {
        if let Some(set) = self.snapshot() {
            return Ok(set.len());
        }
        self.refresh(Reason::Initial, 0).await.map(|set| set.len())
    }

    /// The key for `kid` and `alg` if the loaded set is fresh and has it:
    /// the common case, answered without waiting. Anything else (no set yet,
    /// an expired set, an unknown `kid`, a key of another type) is left to
    /// [`JwksCache::key_for`], which knows the refresh rules.
    pub(crate) fn fresh_key(&self, kid: Option<&str>, alg: Algorithm) -> Option<VerifyingKey> {
        let set = self.snapshot()?;
        if self.clock.now().as_secs() >= set.fresh_until {
            return None;
        }
        match set.lookup(kid, alg) {
            Lookup::Found(key) => Some(key),
            Lookup::NoKid | Lookup::Mismatch => None,
        }
    }

    /// Finds the key for a token's `kid` and `alg`, refreshing the set when
    /// the policy allows.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, TokenError> {
        let now = self.clock.now().as_secs();
        let Some(set) = self.snapshot() else {
            let set = self
                .refresh(Reason::Initial, 0)
                .await
                .map_err(|e| self.unavailable(e))?;
            return self.resolve(&set, kid, alg);
        };
        if now < set.fresh_until {
            match set.lookup(kid, alg) {
                Lookup::Found(key) => return Ok(key),
                Lookup::Mismatch => return Err(self.mismatch(kid, alg)),
                Lookup::NoKid => {}
            }
            return match self.refresh(Reason::UnknownKid, set.generation).await {
                Ok(fresh) => self.resolve(&fresh, kid, alg),
                Err(e) => {
                    tracing::debug!(issuer = %self.issuer, error = %e, "no JWKS refresh for unknown kid");
                    Err(self.unknown(kid))
                }
            };
        }
        // The set is past its TTL: refresh, and fall back to the stale set
        // within the bounded grace period if the IdP cannot be reached.
        match self.refresh(Reason::Expired, set.generation).await {
            Ok(fresh) => self.resolve(&fresh, kid, alg),
            Err(e) => {
                let grace_end = set
                    .fresh_until
                    .saturating_add(self.policy.max_stale.as_secs());
                if now <= grace_end {
                    tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refresh failed; using known keys");
                    self.resolve(&set, kid, alg)
                } else {
                    Err(self.unavailable(e))
                }
            }
        }
    }

    fn resolve(
        &self,
        set: &KeySet,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, TokenError> {
        match set.lookup(kid, alg) {
            Lookup::Found(key) => Ok(key),
            Lookup::Mismatch => Err(self.mismatch(kid, alg)),
            Lookup::NoKid => Err(self.unknown(kid)),
        }
    }

    fn unknown(&self, kid: Option<&str>) -> TokenError {
        TokenError::UnknownKey {
            issuer: self.issuer.clone(),
            kid: shown(kid.unwrap_or("")),
        }
    }

    fn mismatch(&self, kid: Option<&str>, alg: Algorithm) -> TokenError {
        TokenError::KeyMismatch {
            issuer: self.issuer.clone(),
            kid: shown(kid.unwrap_or("")),
            alg: alg.to_string(),
        }
    }

    fn unavailable(&self, source: FetchError) -> TokenError {
        TokenError::Unavailable {
            issuer: self.issuer.clone(),
            source,
        }
    }

    /// Fetches a new set unless another task just did (`seen` is the
    /// generation the caller looked at) or the cooldown forbids it.
    async fn refresh(&self, reason: Reason, seen: u64) -> Result<Arc<KeySet>, FetchError> {
        let url_for_errors = || match &self.source {
            KeySource::Url(u) => u.clone(),
            _ => self.issuer.clone(),
        };
        if let KeySource::Static(_) = self.source {
            // Static keys never change; an unknown kid stays unknown.
            return Err(FetchError::Cooldown {
                url: url_for_errors(),
            });
        }
        let mut state = self.refresh.lock().await;
        if let Some(set) = self.snapshot()
            && set.generation != seen
            && (reason != Reason::Initial || seen == 0)
        {
            return Ok(set);
        }
        let now = self.clock.now().as_secs();
        let within = |since: Option<u64>, window: Duration| {
            since.is_some_and(|t| now < t.saturating_add(window.as_secs()))
        };
        let suppressed = match reason {
            Reason::UnknownKid => within(state.last_attempt, self.policy.unknown_kid_cooldown),
            Reason::Initial | Reason::Expired => {
                within(state.last_failure, self.policy.failure_backoff)
            }
        };
        if suppressed {
            return Err(FetchError::Cooldown {
                url: state.jwks_uri.clone().unwrap_or_else(url_for_errors),
            });
        }
        state.last_attempt = Some(now);
        match self.fetch(&mut state).await {
            Ok((keys, max_age)) => {
                let ttl = max_age
                    .map(Duration::from_secs)
                    .unwrap_or(self.policy.default_ttl)
                    .clamp(self.policy.min_ttl, self.policy.max_ttl);
                let generation = self.snapshot().map_or(0, |s| s.generation) + 1;
                let set = Arc::new(KeySet {
                    keys,
                    fetched_at: now,
                    fresh_until: now.saturating_add(ttl.as_secs()),
                    generation,
                });
                match self.current.write() {
                    Ok(mut guard) => *guard = Some(Arc::clone(&set)),
                    Err(poisoned) => *poisoned.into_inner() = Some(Arc::clone(&set)),
                }
                state.last_failure = None;
                tracing::debug!(issuer = %self.issuer, keys = set.len(), fetched_at = set.fetched_at, "JWKS refreshed");
                Ok(set)
            }
            Err(e) => {
                state.last_failure = Some(now);
                Err(e)
            }
        }
    }

    async fn fetch(
        &self,
        state: &mut RefreshState,
    ) -> Result<(Vec<JwksKey>, Option<u64>), FetchError> {
        let url = match (&self.source, &state.jwks_uri) {
            (_, Some(url)) => url.clone(),
            (KeySource::Url(url), None) => url.clone(),
            (KeySource::Discover, None) => {
                let meta = discovery::discover(&self.http, &self.issuer).await?;
                let url = meta.jwks_uri.ok_or_else(|| {
                    crate::http::invalid(&meta.source, "metadata has no `jwks_uri`")
                })?;
                crate::http::check_url(&url)?;
                state.jwks_uri = Some(url.clone());
                url
            }
            (KeySource::Static(_), None) => {
                return Err(FetchError::Cooldown {
                    url: self.issuer.clone(),
                });
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let doc = self.http.get_json(&url).await?;
        let keys =
            parse_jwks(&doc.value, &self.algorithms).map_err(|e| crate::http::invalid(&url, &e))?;
        Ok((keys, doc.max_age))
    }
}

/// One issuer's JWKS behind the same cache a [`crate::TokenVerifier`] uses
/// (TTL from `Cache-Control`, at most one refresh per cooldown on an unknown
/// `kid`, bounded grace while the IdP is unreachable), for verifiers of other
/// JWTs signed with the issuer's keys, such as OAuth-issued ETDI tool
/// attestations (docs/PROTOCOL.md §5.3).
///
/// Only the key lookup is offered: checking the JWS and its claims is the
/// caller's job.
#[derive(Debug)]
pub struct IssuerJwks {
    cache: JwksCache,
}

impl IssuerJwks {
    /// The JWKS of `config`'s issuer, found as `config` says (discovery, a
    /// configured `jwks_uri` or a static document), imported for its
    /// algorithm allow-list and cached with its [`JwksPolicy`]. Audiences and
    /// other token rules of `config` are not used. No network I/O happens here.
    pub fn new(
        config: &crate::IssuerConfig,
        http: HttpClient,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        if config.issuer.is_empty() {
            return Err(ConfigError("issuer is empty".into()));
        }
        if config.algorithms.is_empty() {
            return Err(ConfigError(format!(
                "issuer `{}` allows no algorithm",
                config.issuer
            )));
        }
        let cache = JwksCache::new(
            config.issuer.clone(),
            config.algorithms.clone(),
            config.keys.clone(),
            config.jwks_policy.clone(),
            http,
            clock,
        )?;
        Ok(IssuerJwks { cache })
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.cache.issuer
    }

    /// The issuer's algorithm allow-list.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.cache.algorithms
    }

    /// The issuer's key for a JWS header's `kid` and `alg`, fetching or
    /// refreshing the set under the cache's rules. Fails closed: an unknown
    /// `kid` after the allowed refresh is [`TokenError::UnknownKey`], a key
    /// of another algorithm [`TokenError::KeyMismatch`], and an unreachable
    /// IdP with no usable set [`TokenError::Unavailable`].
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, TokenError> {
        if !self.cache.algorithms.contains(&alg) {
            return Err(TokenError::KeyMismatch {
                issuer: self.cache.issuer.clone(),
                kid: shown(kid.unwrap_or("")),
                alg: alg.to_string(),
            });
        }
        if let Some(key) = self.cache.fresh_key(kid, alg) {
            return Ok(key);
        }
        self.cache.key_for(kid, alg).await
    }

    /// How many JWKS documents were requested over HTTP so far.
    pub fn fetch_count(&self) -> u64 {
        self.cache.fetch_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn public_jwk(alg: Algorithm) -> Value {
        let key = etdi_crypto::SigningKey::generate(CryptoProvider::get_default(), alg).unwrap();
        let jwk = key.verifying_key().to_jwk();
        serde_json::from_str(&jwk.to_json()).unwrap()
    }

    fn without(mut jwk: Value, member: &str, kid: &str) -> Value {
        let obj = jwk.as_object_mut().unwrap();
        obj.remove(member);
        obj.insert("kid".into(), Value::from(kid));
        jwk
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let rsa = public_jwk(Algorithm::RS256);
        let mut short_n = rsa.clone();
        short_n["n"] = Value::from(b64(&[0xc0; 128]));
        let mut enc = without(rsa.clone(), "alg", "enc");
        enc["use"] = Value::from("enc");
        let mut oaep = without(rsa.clone(), "alg", "oaep");
        oaep["alg"] = Value::from("RSA-OAEP");
        let mut marked_ec = without(rsa.clone(), "alg", "marked-ec");
        marked_ec["alg"] = Value::from("ES256");
        let mut p256 = without(public_jwk(Algorithm::ES256), "alg", "badlen");
        p256["x"] = Value::from(b64(&[1; 31]));
        let doc = json!({"keys": [
            {"kty": "oct", "k": b64(b"secret"), "kid": "hmac"},
            without(short_n, "kid", "short"),
            enc,
            oaep,
            marked_ec,
            p256,
            {"kty": "RSA", "kid": 7},
            "not an object",
            without(rsa, "kid", "good"),
        ]});
        let keys = parse_jwks(&doc, &[Algorithm::RS256]).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("good"));
        assert!(keys[0].for_alg(Algorithm::RS256).is_some());
        assert!(keys[0].for_alg(Algorithm::PS256).is_none());
        assert!(keys[0].for_alg(Algorithm::ES256).is_none());
        assert!(parse_jwks(&json!({"keys": []}), &[Algorithm::RS256]).is_err());
        assert!(parse_jwks(&json!({"nokeys": 1}), &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn keys_without_alg_get_only_allowed_algorithms_of_their_type() {
        let rsa = without(public_jwk(Algorithm::PS256), "alg", "rsa");
        let p256 = without(public_jwk(Algorithm::ES256), "alg", "p256");
        let p521 = without(public_jwk(Algorithm::ES512), "alg", "p521");
        let doc = json!({"keys": [rsa, p256, p521]});
        let allowed = [Algorithm::RS256, Algorithm::PS384, Algorithm::ES512];
        let keys = parse_jwks(&doc, &allowed).unwrap();
        // The P-256 key fits no allowed algorithm and is skipped.
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["rsa", "p521"]);
        let algs: Vec<_> = keys[0].keys.iter().map(VerifyingKey::algorithm).collect();
        assert_eq!(algs, [Algorithm::RS256, Algorithm::PS384]);
        assert!(keys[1].for_alg(Algorithm::ES512).is_some());
        let set = KeySet {
            keys,
            ..KeySet::default()
        };
        assert!(matches!(
            set.lookup(Some("rsa"), Algorithm::PS384),
            Lookup::Found(k) if k.algorithm() == Algorithm::PS384
        ));
        assert!(matches!(
            set.lookup(Some("rsa"), Algorithm::PS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            set.lookup(Some("p521"), Algorithm::RS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            set.lookup(Some("x"), Algorithm::RS256),
            Lookup::NoKid
        ));
        // Without `kid`, only an unambiguous key is used.
        assert!(matches!(
            set.lookup(None, Algorithm::ES512),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn a_jwk_alg_is_kept_even_where_the_header_could_ask_for_more() {
        let rsa = public_jwk(Algorithm::RS256);
        let keys = parse_jwks(
            &json!({"keys": [rsa]}),
            &[Algorithm::RS256, Algorithm::PS256],
        )
        .unwrap();
        let algs: Vec<_> = keys[0].keys.iter().map(VerifyingKey::algorithm).collect();
        assert_eq!(algs, [Algorithm::RS256]);
    }
}
