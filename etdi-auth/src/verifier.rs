//! JWT access-token verification for a resource server: signature against the
//! issuer's JWKS, `exp`/`nbf`/`iat` with leeway, `iss`, `aud` (RFC 8707) with an
//! explicit opt-in fallback, per-issuer algorithm allow-list, optional RFC 9068
//! `typ: at+jwt`, certificate binding (RFC 8705), and a cache of validated
//! tokens. The result is an `etdi_core::Principal`.
//!
//! The JWS itself (header rules, `crit`, the signature) is checked by
//! `etdi_crypto::jws`; this module routes the token to its issuer, finds the
//! key in that issuer's JWKS and checks the claims.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use etdi_core::{AuthMethod, Principal};
use etdi_crypto::jws::{self, JwsHeader, Validation, Verified};
use etdi_crypto::{Algorithm, JwsError, VerifyingKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::cache::{Entry, TokenCache, token_hash};
use crate::claims::ClaimMapping;
use crate::clock::{Clock, SystemClock};
use crate::error::{BindingFailure, ConfigError, FetchError, Malformed, Part, TokenError, shown};
use crate::http::HttpClient;
use crate::jwks::{JwksCache, JwksPolicy, KeySource};

/// Default size limit of an access token (16 KiB); real tokens are under 4 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What to do when a token has no `aud` claim.
///
/// Some IdPs (Keycloak without an audience mapper, Entra ID v1 for some
/// flows, Authentik) issue access tokens without `aud`. RFC 8707 and the MCP
/// authorization spec require the audience to be checked, so the fallback is
/// **off** by default and must be turned on per issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudienceFallback {
    /// A token without `aud` is refused (default).
    #[default]
    Off,
    /// A token **without** `aud` is accepted if its `azp` (or, when `azp` is
    /// absent, `client_id`) is one of these values. A token that has an `aud`
    /// naming something else is still refused.
    AuthorizedParty(Vec<String>),
}

/// Trust configuration for one issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) fallback: AudienceFallback,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: u64,
    pub(crate) max_lifetime: u64,
    pub(crate) require_at_jwt: bool,
    pub(crate) require_binding: bool,
    pub(crate) claims: ClaimMapping,
    pub(crate) keys: KeySource,
    pub(crate) jwks_policy: JwksPolicy,
}

impl IssuerConfig {
    /// An issuer whose keys are found by discovery (OIDC / RFC 8414).
    ///
    /// Defaults: algorithms `RS256` and `ES256`, leeway 30 s, tokens valid
    /// for at most 24 h from now, `typ` not enforced, no audience fallback,
    /// the default [`ClaimMapping`]. At least
    /// one audience must be added before [`TokenVerifierBuilder::build`].
    pub fn new(issuer: impl Into<String>) -> Self {
        IssuerConfig {
            issuer: issuer.into(),
            audiences: Vec::new(),
            fallback: AudienceFallback::Off,
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: 30,
            max_lifetime: 24 * 3600,
            require_at_jwt: false,
            require_binding: false,
            claims: ClaimMapping::default(),
            keys: KeySource::Discover,
            jwks_policy: JwksPolicy::default(),
        }
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Adds an accepted audience: this resource server's id (RFC 8707 resource).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the fallback for tokens without `aud` (off by default).
    pub fn audience_fallback(mut self, fallback: AudienceFallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// Replaces the algorithm allow-list.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock-skew leeway for `exp`, `nbf` and `iat`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Longest remaining lifetime accepted: a token whose `exp` is further
    /// than this (plus the leeway) from now is refused, so a token minted
    /// to "never expire" does not work for ever (default 24 h).
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime.as_secs();
        self
    }

    /// Requires RFC 9068 JWT access tokens: header `typ: at+jwt` and the claims
    /// `sub`, `client_id`, `iat` and `jti`. This keeps ID tokens and other JWTs
    /// of the same issuer from being used as access tokens.
    pub fn require_at_jwt(mut self, require: bool) -> Self {
        self.require_at_jwt = require;
        self
    }

    /// Requires every token to be certificate-bound (RFC 8705 `cnf.x5t#S256`).
    pub fn require_certificate_binding(mut self, require: bool) -> Self {
        self.require_binding = require;
        self
    }

    /// Replaces the claim mapping.
    pub fn claim_mapping(mut self, claims: ClaimMapping) -> Self {
        self.claims = claims;
        self
    }

    /// Uses this JWKS URL instead of discovery.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.keys = KeySource::Url(url.into());
        self
    }

    /// Uses a fixed JWKS document (no HTTP, never refreshed).
    pub fn static_jwks(mut self, jwks: Value) -> Self {
        self.keys = KeySource::Static(jwks);
        self
    }

    /// Replaces the JWKS cache timing.
    pub fn jwks_policy(mut self, policy: JwksPolicy) -> Self {
        self.jwks_policy = policy;
        self
    }

    /// The accepted audiences, in the order they were added.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The algorithm allow-list.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The configured JWKS URL; `None` when the keys are found by discovery
    /// or given as a fixed document.
    pub fn jwks_url(&self) -> Option<&str> {
        match &self.keys {
            KeySource::Url(url) => Some(url),
            KeySource::Discover | KeySource::Static(_) => None,
        }
    }

    /// The claim mapping in force (where subject, client id, scopes and
    /// roles are read).
    pub fn mapping(&self) -> &ClaimMapping {
        &self.claims
    }

    fn check(&self) -> Result<(), ConfigError> {
        let who = &self.issuer;
        if self.issuer.is_empty() {
            return Err(ConfigError("issuer is empty".into()));
        }
        if self.audiences.is_empty() {
            return Err(ConfigError(format!(
                "issuer `{who}` has no audience: add this resource server's id"
            )));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError(format!("issuer `{who}` allows no algorithm")));
        }
        if let AudienceFallback::AuthorizedParty(values) = &self.fallback
            && values.is_empty()
        {
            return Err(ConfigError(format!(
                "issuer `{who}`: audience fallback names no authorized party"
            )));
        }
        Ok(())
    }
}

/// Builds a [`TokenVerifier`].
#[derive(Debug)]
pub struct TokenVerifierBuilder {
    issuers: Vec<IssuerConfig>,
    http: Option<HttpClient>,
    clock: Arc<dyn Clock>,
    cache_capacity: usize,
    cache_max_ttl: Duration,
    max_token_bytes: usize,
}

impl TokenVerifierBuilder {
    /// Adds a trusted issuer.
    pub fn issuer(mut self, issuer: IssuerConfig) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The HTTP client for discovery and JWKS (default [`HttpClient::new`]).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// The clock (default: system time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validated-token cache size (default 10 000; 0 disables the cache).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Longest time a validated token is served from the cache (default
    /// 5 min, and never past its `exp`), so a key removed from the JWKS stops
    /// being honoured through the cache within that time.
    pub fn cache_max_ttl(mut self, ttl: Duration) -> Self {
        self.cache_max_ttl = ttl;
        self
    }

    /// Largest token accepted, in bytes (default [`DEFAULT_MAX_TOKEN_BYTES`]).
    pub fn max_token_bytes(mut self, limit: usize) -> Self {
        self.max_token_bytes = limit;
        self
    }

    /// Checks the configuration and builds the verifier. No network I/O
    /// happens here; call [`TokenVerifier::warm_up`] to fetch keys early.
    pub fn build(self) -> Result<TokenVerifier, ConfigError> {
        if self.issuers.is_empty() {
            return Err(ConfigError("no issuer configured".into()));
        }
        let http = match self.http {
            Some(h) => h,
            None => HttpClient::new()?,
        };
        let mut issuers = HashMap::new();
        for config in self.issuers {
            config.check()?;
            let jwks = JwksCache::new(
                config.issuer.clone(),
                config.algorithms.clone(),
                config.keys.clone(),
                config.jwks_policy.clone(),
                http.clone(),
                Arc::clone(&self.clock),
            )?;
            // Built once per issuer: the allow-list, RFC 9068 `typ` when
            // required, no `crit` name understood (so any `crit` is refused),
            // and the size bound.
            let mut validation = Validation::new(config.algorithms.iter().copied())
                .max_token_bytes(self.max_token_bytes);
            if config.require_at_jwt {
                validation = validation.expect_typ(AT_JWT);
            }
            let name = config.issuer.clone();
            let state = IssuerState {
                config,
                jwks,
                validation,
            };
            if issuers.insert(name.clone(), Arc::new(state)).is_some() {
                return Err(ConfigError(format!("issuer `{name}` configured twice")));
            }
        }
        Ok(TokenVerifier {
            issuers,
            cache: TokenCache::new(self.cache_capacity),
            cache_max_ttl: self.cache_max_ttl.as_secs(),
            clock: self.clock,
            max_token_bytes: self.max_token_bytes,
        })
    }
}

#[derive(Debug)]
struct IssuerState {
    config: IssuerConfig,
    jwks: JwksCache,
    validation: Validation,
}

/// The RFC 9068 media type of JWT access tokens (`application/` optional).
const AT_JWT: &str = "at+jwt";

/// Verifies JWT access tokens from one or more trusted issuers.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use etdi_auth::{IssuerConfig, TokenVerifier};
///
/// let verifier = TokenVerifier::builder()
///     .issuer(IssuerConfig::new("https://idp.example.com").audience("https://tools.example.com/mcp"))
///     .build()?;
/// let principal = verifier.verify("eyJ...").await?;
/// println!("{} with scopes {:?}", principal.subject, principal.scopes);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TokenVerifier {
    issuers: HashMap<String, Arc<IssuerState>>,
    cache: TokenCache,
    cache_max_ttl: u64,
    clock: Arc<dyn Clock>,
    max_token_bytes: usize,
}

impl TokenVerifier {
    /// Starts a builder.
    pub fn builder() -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            issuers: Vec::new(),
            http: None,
            clock: Arc::new(SystemClock),
            cache_capacity: 10_000,
            cache_max_ttl: Duration::from_secs(300),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Fetches every issuer's keys now, so the first request does not wait.
    /// Returns the first failure; issuers that failed are retried on demand.
    pub async fn warm_up(&self) -> Result<(), TokenError> {
        for state in self.issuers.values() {
            state
                .jwks
                .warm_up()
                .await
                .map_err(|source| TokenError::Unavailable {
                    issuer: state.config.issuer.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// How many JWKS documents were fetched for `issuer` so far (for
    /// monitoring: a steadily rising count means tokens with unknown keys).
    pub fn jwks_fetch_count(&self, issuer: &str) -> Option<u64> {
        self.issuers.get(issuer).map(|s| s.jwks.fetch_count())
    }

    /// Verifies a bearer token presented without a client certificate.
    ///
    /// A certificate-bound token (RFC 8705) is refused here: its holder must
    /// present the certificate, see [`TokenVerifier::verify_with_certificate`].
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_with_certificate(token, None).await
    }

    /// Verifies a token presented over a connection whose client certificate
    /// (DER) is `certificate`, enforcing `cnf.x5t#S256` when the token has it.
    pub async fn verify_with_certificate(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Principal, TokenError> {
        self.verify_shared(token, certificate)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`TokenVerifier::verify_with_certificate`] returning the principal
    /// the token cache holds, shared rather than copied (a server handing
    /// the caller's identity from its HTTP layer to its pipeline).
    pub async fn verify_shared(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Arc<Principal>, TokenError> {
        if token.len() > self.max_token_bytes {
            return Err(TokenError::TooLarge {
                size: token.len(),
                limit: self.max_token_bytes,
            });
        }
        let now = self.clock.now().as_secs();
        // With the cache off there is nothing to look up or insert: skip the hash.
        let hash = self.cache.enabled().then(|| token_hash(token));
        if let Some(entry) = hash.as_ref().and_then(|h| self.cache.get(h, now)) {
            check_binding_hit(entry.bound_to.as_ref(), certificate)?;
            return Ok(entry.principal);
        }
        let (principal, valid_until, bound_to) =
            self.verify_uncached(token, certificate, now).await?;
        let principal = Arc::new(principal);
        let Some(hash) = hash else {
            return Ok(principal);
        };
        let valid_until = valid_until.min(now.saturating_add(self.cache_max_ttl));
        self.cache.insert(
            hash,
            Entry {
                principal: principal.clone(),
                valid_until,
                bound_to,
            },
            now,
        );
        Ok(principal)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
        now: u64,
    ) -> Result<(Principal, u64, Option<[u8; 32]>), TokenError> {
        let unverified = Unverified::read(token)?;
        let iss = match unverified.claims.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: "iss",
                    reason: "not a string",
                });
            }
            None => return Err(TokenError::MissingClaim { claim: "iss" }),
        };
        let state = self
            .issuers
            .get(iss)
            .ok_or_else(|| TokenError::UntrustedIssuer { iss: shown(iss) })?;
        let config = &state.config;
        let verified = verify_signature(token, state).await?;
        // INVARIANT: both decodings read the same payload segment with strict
        // base64url (one encoding per byte string), so the claims parsed
        // before verification are the verified ones; checked, as it is cheap.
        if verified.payload() != unverified.payload.as_slice() {
            return Err(TokenError::BadSignature {
                issuer: config.issuer.clone(),
            });
        }
        let claims = &unverified.claims;
        let exp = check_times(claims, now, config.leeway, true)?.unwrap_or(0);
        if exp
            > now
                .saturating_add(config.leeway)
                .saturating_add(config.max_lifetime)
        {
            return Err(TokenError::InvalidClaim {
                claim: "exp",
                reason: "further ahead than the issuer's maximum token lifetime",
            });
        }
        check_audience(claims, config)?;
        if config.require_at_jwt {
            for claim in ["sub", "client_id", "jti"] {
                if !claims.get(claim).is_some_and(Value::is_string) {
                    return Err(TokenError::MissingClaim { claim });
                }
            }
            if !claims.contains_key("iat") {
                return Err(TokenError::MissingClaim { claim: "iat" });
            }
        }
        let bound_to = binding_of(claims)?;
        let method = check_binding(bound_to.as_ref(), certificate, config.require_binding)?;
        let principal = principal_from(claims, &config.claims, &config.issuer, method)?;
        Ok((principal, exp, bound_to))
    }
}

/// Checks the JWS with etdi-crypto against the issuer's keys.
///
/// `jws::verify` checks the header (allow-list, `typ`, `crit`, forbidden
/// members) before it asks for a key, so a refused header never reaches
/// the key cache, let alone the network. The key comes from the issuer's
/// fresh set when it is there; otherwise (unknown `kid`, expired set,
/// a key of another type) the resolver records what the header asked
/// for and the async path applies the refresh rules, then verifies again.
async fn verify_signature(token: &str, state: &IssuerState) -> Result<Verified, TokenError> {
    let issuer = &state.config.issuer;
    let reason = |e| refused(e, token, issuer);
    let wanted: Cell<Option<(Option<String>, Algorithm)>> = Cell::new(None);
    let first = {
        let resolver = |header: &JwsHeader| -> Option<VerifyingKey> {
            let key = state.jwks.fresh_key(header.kid(), header.alg());
            if key.is_none() {
                wanted.set(Some((header.kid().map(str::to_owned), header.alg())));
            }
            key
        };
        jws::verify(token, &state.validation, &resolver)
    };
    let (kid, alg) = match (first, wanted.take()) {
        (Err(JwsError::UnknownKey { .. }), Some(wanted)) => wanted,
        (result, _) => return result.map_err(reason),
    };
    let key = state.jwks.key_for(kid.as_deref(), alg).await?;
    // The key was found by the header's `kid` and `alg` in the issuer's
    // own set and is bound to exactly that algorithm; etdi-crypto checks
    // the binding again.
    let resolver = |_: &JwsHeader| -> Option<VerifyingKey> { Some(key.clone()) };
    jws::verify(token, &state.validation, &resolver).map_err(reason)
}

/// Maps a refusal from `jws::verify` to the reason reported.
fn refused(error: JwsError, token: &str, issuer: &str) -> TokenError {
    // An empty signature segment is a truncated token, not a wrong signature
    // (etdi-crypto finds it only when the signature length is checked).
    if matches!(error, JwsError::BadSignature(_)) && token.ends_with('.') {
        return TokenError::Malformed(Malformed::Segments);
    }
    TokenError::from_jws(error, issuer)
}

/// What is read from a token before its signature is checked, only to route
/// it to an issuer: the claims. Nothing here is trusted until `jws::verify`
/// succeeds.
struct Unverified {
    payload: Vec<u8>,
    claims: Map<String, Value>,
}

impl Unverified {
    fn read(token: &str) -> Result<Self, TokenError> {
        let segments = || TokenError::Malformed(Malformed::Segments);
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(segments());
        };
        // Empty header or payload: a detached or truncated JWS, never an
        // access token. The header itself is parsed by `jws::verify`.
        if h.is_empty() || p.is_empty() {
            return Err(segments());
        }
        // Unpadded, canonical base64url only, as etdi-crypto decodes it.
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| TokenError::Malformed(Malformed::Base64(Part::Payload)))?;
        let json = || TokenError::Malformed(Malformed::Json(Part::Payload));
        let text = std::str::from_utf8(&payload).map_err(|_| json())?;
        // Duplicate members are refused: a second `aud` or `exp` could mean
        // one thing here and another to the next component reading the token.
        let claims = match etdi_core::canonical::parse_json(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(json()),
        };
        Ok(Unverified { payload, claims })
    }
}

/// Reads a NumericDate claim: a non-negative JSON number of seconds that
/// fits in an i64 (RFC 7519 NumericDate as every JOSE library stores it),
/// fractions dropped. Larger values (1e300, 2^64 + 1) are refused, not
/// read as "never".
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<u64>, TokenError> {
    const MAX: u64 = i64::MAX as u64;
    let out_of_range = TokenError::InvalidClaim {
        claim,
        reason: "out of range (more than i64 seconds)",
    };
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                if v > MAX {
                    return Err(out_of_range);
                }
                Ok(Some(v))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0) {
                // 2^63 is the first double past i64::MAX.
                if f >= 9_223_372_036_854_775_808.0 {
                    return Err(out_of_range);
                }
                Ok(Some(f as u64))
            } else {
                Err(TokenError::InvalidClaim {
                    claim,
                    reason: "not a non-negative number",
                })
            }
        }
        Some(_) => Err(TokenError::InvalidClaim {
            claim,
            reason: "not a number",
        }),
    }
}

/// Checks `exp`, `nbf` and `iat`; returns `exp`.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
    require_exp: bool,
) -> Result<Option<u64>, TokenError> {
    let exp = numeric_date(claims, "exp")?;
    match exp {
        Some(exp) if now >= exp.saturating_add(leeway) => {
            return Err(TokenError::Expired { exp, now, leeway });
        }
        None if require_exp => return Err(TokenError::MissingClaim { claim: "exp" }),
        _ => {}
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(TokenError::NotYetValid { nbf, now, leeway });
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(TokenError::IssuedInFuture { iat, now, leeway });
    }
    Ok(exp)
}

pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    config: &IssuerConfig,
) -> Result<(), TokenError> {
    check_audience_with(claims, &config.issuer, &config.audiences, &config.fallback)
}

pub(crate) fn check_audience_with(
    claims: &Map<String, Value>,
    issuer: &str,
    audiences: &[String],
    fallback: &AudienceFallback,
) -> Result<(), TokenError> {
    let wrong = |found: String| TokenError::WrongAudience {
        issuer: issuer.to_owned(),
        found,
        expected: audiences.join(", "),
    };
    let invalid = TokenError::InvalidClaim {
        claim: "aud",
        reason: "not a string or an array of strings",
    };
    match claims.get("aud") {
        Some(Value::String(aud)) => {
            if audiences.iter().any(|a| a == aud) {
                Ok(())
            } else {
                Err(wrong(format!("`{}`", shown(aud))))
            }
        }
        Some(Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                let aud = item.as_str().ok_or_else(|| invalid.clone())?;
                if audiences.iter().any(|a| a == aud) {
                    return Ok(());
                }
                names.push(aud);
            }
            Err(wrong(format!("`{}`", shown(&names.join(", ")))))
        }
        Some(_) => Err(invalid),
        None => match fallback {
            AudienceFallback::Off => Err(wrong("none".into())),
            AudienceFallback::AuthorizedParty(parties) => {
                let party = ["azp", "client_id"]
                    .iter()
                    .find_map(|c| claims.get(*c).and_then(Value::as_str));
                match party {
                    Some(p) if parties.iter().any(|a| a == p) => Ok(()),
                    _ => Err(wrong("none (and azp/client_id not accepted)".into())),
                }
            }
        },
    }
}

/// `cnf.x5t#S256` of the token, decoded.
pub(crate) fn binding_of(claims: &Map<String, Value>) -> Result<Option<[u8; 32]>, TokenError> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let invalid = TokenError::CertificateBinding(BindingFailure::Invalid);
    let cnf = cnf.as_object().ok_or_else(|| invalid.clone())?;
    match cnf.get("x5t#S256") {
        None => Ok(None),
        Some(Value::String(t)) => {
            let bytes = URL_SAFE_NO_PAD.decode(t).map_err(|_| invalid.clone())?;
            let arr: [u8; 32] = bytes.try_into().map_err(|_| invalid)?;
            Ok(Some(arr))
        }
        Some(_) => Err(invalid),
    }
}

/// SHA-256 of a DER certificate: the RFC 8705 thumbprint.
pub(crate) fn cert_thumbprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

fn thumbprints_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    // Thumbprints are public, but a comparison without an early exit costs
    // nothing here.
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Enforces RFC 8705 binding; returns the authentication method.
pub(crate) fn check_binding(
    bound_to: Option<&[u8; 32]>,
    certificate: Option<&[u8]>,
    require: bool,
) -> Result<AuthMethod, TokenError> {
    match (bound_to, certificate) {
        (Some(_), None) => Err(TokenError::CertificateBinding(
            BindingFailure::NoCertificate,
        )),
        (Some(want), Some(der)) => {
            if thumbprints_equal(want, &cert_thumbprint(der)) {
                Ok(AuthMethod::CertificateBoundToken)
            } else {
                Err(TokenError::CertificateBinding(BindingFailure::Mismatch))
            }
        }
        (None, _) if require => Err(TokenError::CertificateBinding(BindingFailure::NotBound)),
        (None, _) => Ok(AuthMethod::BearerJwt),
    }
}

pub(crate) fn check_binding_hit(
    bound_to: Option<&[u8; 32]>,
    certificate: Option<&[u8]>,
) -> Result<(), TokenError> {
    // `require` was enforced when the entry was made; only the presented
    // certificate can differ between two presentations of one token.
    check_binding(bound_to, certificate, false).map(|_| ())
}

/// Maps verified claims to a principal.
pub(crate) fn principal_from(
    claims: &Map<String, Value>,
    mapping: &ClaimMapping,
    issuer: &str,
    method: AuthMethod,
) -> Result<Principal, TokenError> {
    let client_id = ClaimMapping::first_string(&mapping.client_id, claims);
    let subject = ClaimMapping::first_string(&mapping.subject, claims)
        .or_else(|| client_id.clone())
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::MissingClaim { claim: "sub" })?;
    let mut principal = Principal::new(subject, method);
    principal.issuer = Some(issuer.to_owned());
    principal.client_id = client_id;
    principal.scopes = mapping.scopes_of(claims);
    principal.roles = mapping.roles_of(claims);
    Ok(principal)
}

impl From<FetchError> for ConfigError {
    fn from(e: FetchError) -> Self {
        ConfigError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn time_checks_with_leeway_edges() {
        let c = obj(json!({"exp": 100, "nbf": 50, "iat": 50}));
        assert!(check_times(&c, 100, 0, true).is_err(), "exp is exclusive");
        for huge in [json!(1e300), json!(18446744073709551615u64), json!(9.3e18)] {
            let t = obj(json!({"exp": huge}));
            assert!(
                matches!(
                    check_times(&t, 1, 0, true),
                    Err(TokenError::InvalidClaim { claim: "exp", .. })
                ),
                "{huge}"
            );
        }
        assert!(check_times(&c, 99, 0, true).is_ok());
        assert!(check_times(&c, 109, 10, true).is_ok(), "within leeway");
        assert!(check_times(&c, 110, 10, true).is_err(), "at exp + leeway");
        assert!(check_times(&c, 40, 10, true).is_ok(), "nbf - leeway");
        assert!(matches!(
            check_times(&c, 39, 10, true),
            Err(TokenError::NotYetValid { .. })
        ));
        assert!(matches!(
            check_times(&obj(json!({})), 1, 0, true),
            Err(TokenError::MissingClaim { claim: "exp" })
        ));
        assert!(matches!(
            check_times(&obj(json!({"exp": "100"})), 1, 0, true),
            Err(TokenError::InvalidClaim { claim: "exp", .. })
        ));
        assert!(check_times(&obj(json!({"exp": -1})), 1, 0, true).is_err());
        assert!(check_times(&obj(json!({"exp": 1e300})), 1, 0, true).is_err());
    }

    #[test]
    fn audience_and_fallback() {
        let cfg = IssuerConfig::new("i").audience("https://rs");
        assert!(check_audience(&obj(json!({"aud": "https://rs"})), &cfg).is_ok());
        assert!(check_audience(&obj(json!({"aud": ["x", "https://rs"]})), &cfg).is_ok());
        assert!(check_audience(&obj(json!({"aud": "x"})), &cfg).is_err());
        assert!(check_audience(&obj(json!({"aud": [1]})), &cfg).is_err());
        assert!(check_audience(&obj(json!({"azp": "https://rs"})), &cfg).is_err());
        let cfg =
            cfg.audience_fallback(AudienceFallback::AuthorizedParty(vec!["mcp-client".into()]));
        assert!(check_audience(&obj(json!({"azp": "mcp-client"})), &cfg).is_ok());
        assert!(check_audience(&obj(json!({"client_id": "mcp-client"})), &cfg).is_ok());
        assert!(check_audience(&obj(json!({"azp": "other"})), &cfg).is_err());
        // A present but wrong `aud` is never rescued by the fallback.
        assert!(check_audience(&obj(json!({"aud": "x", "azp": "mcp-client"})), &cfg).is_err());
    }

    #[test]
    fn binding_rules() {
        let cert = b"certificate";
        let t = cert_thumbprint(cert);
        assert_eq!(
            check_binding(Some(&t), Some(cert), false).unwrap(),
            AuthMethod::CertificateBoundToken
        );
        assert!(check_binding(Some(&t), None, false).is_err());
        assert!(check_binding(Some(&t), Some(b"other"), false).is_err());
        assert_eq!(
            check_binding(None, Some(cert), false).unwrap(),
            AuthMethod::BearerJwt
        );
        assert!(check_binding(None, Some(cert), true).is_err());
        let claims = obj(json!({"cnf": {"x5t#S256": URL_SAFE_NO_PAD.encode(t)}}));
        assert_eq!(binding_of(&claims).unwrap(), Some(t));
        assert!(binding_of(&obj(json!({"cnf": {"x5t#S256": "abc"}}))).is_err());
        assert!(binding_of(&obj(json!({"cnf": 1}))).is_err());
    }

    #[test]
    fn verification_futures_are_send() {
        // Servers verify tokens on multi-threaded runtimes.
        fn send<T: Send>(_: &T) {}
        let v = TokenVerifier::builder()
            .issuer(IssuerConfig::new("https://i").audience("a"))
            .build()
            .unwrap();
        send(&v.verify("t"));
        send(&v.verify_with_certificate("t", Some(b"cert")));
    }

    #[test]
    fn config_checks() {
        let b = |c: IssuerConfig| TokenVerifier::builder().issuer(c).build();
        assert!(b(IssuerConfig::new("https://i")).is_err(), "no audience");
        assert!(b(IssuerConfig::new("https://i").audience("a").algorithms([])).is_err());
        assert!(TokenVerifier::builder().build().is_err());
        let ok = IssuerConfig::new("https://i").audience("a");
        assert!(
            TokenVerifier::builder()
                .issuer(ok.clone())
                .issuer(ok)
                .build()
                .is_err(),
            "duplicate issuer"
        );
    }
}
