//! RFC 7662 token introspection for opaque access tokens, with results cached
//! no longer than the token lives.

use std::sync::Arc;
use std::time::Duration;

use etdi_core::{AuthMethod, Principal};
use serde_json::{Map, Value};

use crate::cache::{Entry, TokenCache, token_hash};
use crate::claims::ClaimMapping;
use crate::client::{ClientAuth, ClientError, read_oauth_json};
use crate::clock::{Clock, SystemClock};
use crate::discovery;
use crate::error::{ConfigError, FetchError, TokenError, shown};
use crate::http::{HttpClient, check_url, invalid, transport};
use crate::verifier::{
    AudienceFallback, DEFAULT_MAX_TOKEN_BYTES, binding_of, check_audience_with, check_binding,
    check_binding_hit, check_times, principal_from,
};

/// Asks the authorization server whether an opaque token is active.
///
/// An active answer is cached until the token's `exp` (and at most
/// `cache_max_ttl`, default 60 s, so a revocation is seen within a minute);
/// an answer without `exp` is not cached, and inactive answers are never
/// cached. `aud` must name this resource (same rules and fallback as JWTs);
/// `iss`, when present, must be the configured issuer.
#[derive(Debug)]
pub struct Introspector {
    issuer: String,
    endpoint: String,
    client_id: String,
    auth: ClientAuth,
    audiences: Vec<String>,
    fallback: AudienceFallback,
    claims: ClaimMapping,
    leeway: u64,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    cache: TokenCache,
    cache_max_ttl: u64,
}

impl Introspector {
    /// An introspector for `issuer` at `endpoint`, authenticating as
    /// `client_id` (RFC 7662 requires the caller to authenticate).
    pub fn new(
        issuer: impl Into<String>,
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuth,
    ) -> Result<Self, ConfigError> {
        let endpoint = endpoint.into();
        check_url(&endpoint)?;
        Ok(Introspector {
            issuer: issuer.into(),
            endpoint,
            client_id: client_id.into(),
            auth,
            audiences: Vec::new(),
            fallback: AudienceFallback::Off,
            claims: ClaimMapping::default(),
            leeway: 30,
            http: HttpClient::new()?,
            clock: Arc::new(SystemClock),
            cache: TokenCache::new(10_000),
            cache_max_ttl: 60,
        })
    }

    /// Like [`Introspector::new`], finding `introspection_endpoint` by discovery.
    pub async fn discover(
        http: &HttpClient,
        issuer: &str,
        client_id: impl Into<String>,
        auth: ClientAuth,
    ) -> Result<Self, FetchError> {
        let meta = discovery::discover(http, issuer).await?;
        let endpoint = meta
            .introspection_endpoint
            .ok_or_else(|| invalid(&meta.source, "metadata has no `introspection_endpoint`"))?;
        let mut this =
            Self::new(issuer, endpoint, client_id, auth).map_err(|e| invalid(issuer, &e.0))?;
        this.http = http.clone();
        Ok(this)
    }

    /// Adds an accepted audience (this resource server's id).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Fallback for answers without `aud` (off by default).
    pub fn audience_fallback(mut self, fallback: AudienceFallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// Claim mapping for the introspection response.
    pub fn claim_mapping(mut self, claims: ClaimMapping) -> Self {
        self.claims = claims;
        self
    }

    /// The HTTP client.
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Cache size (0 disables) and longest time an answer is reused.
    pub fn cache(mut self, capacity: usize, max_ttl: Duration) -> Self {
        self.cache = TokenCache::new(capacity);
        self.cache_max_ttl = max_ttl.as_secs();
        self
    }

    /// Introspects a token presented without a client certificate.
    pub async fn introspect(&self, token: &str) -> Result<Principal, TokenError> {
        self.introspect_with_certificate(token, None).await
    }

    /// Introspects a token presented with `certificate` (DER), enforcing an
    /// RFC 8705 binding reported in the response's `cnf`.
    pub async fn introspect_with_certificate(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Principal, TokenError> {
        if self.audiences.is_empty() {
            // Checked here rather than at construction so the builder stays
            // infallible; an introspector without audience never accepts.
            return Err(TokenError::WrongAudience {
                issuer: self.issuer.clone(),
                found: "not checked".into(),
                expected: "(no audience configured)".into(),
            });
        }
        if token.is_empty() || token.len() > DEFAULT_MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge {
                size: token.len(),
                limit: DEFAULT_MAX_TOKEN_BYTES,
            });
        }
        let now = self.clock.now().as_secs();
        let hash = token_hash(token);
        if let Some(entry) = self.cache.get(&hash, now) {
            check_binding_hit(entry.bound_to.as_ref(), certificate)?;
            return Ok(std::sync::Arc::unwrap_or_clone(entry.principal));
        }
        let response = self
            .call(token, now)
            .await
            .map_err(|e| TokenError::Unavailable {
                issuer: self.issuer.clone(),
                source: match e {
                    ClientError::Fetch(f) => f,
                    other => invalid(&self.endpoint, &other.to_string()),
                },
            })?;
        let claims = response
            .as_object()
            .ok_or_else(|| self.unavailable("response is not an object"))?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenError::Inactive {
                issuer: self.issuer.clone(),
            });
        }
        self.judge(claims, certificate, now)
            .map(|(principal, exp, bound_to)| {
                if let Some(exp) = exp {
                    let valid_until = exp.min(now.saturating_add(self.cache_max_ttl));
                    self.cache.insert(
                        hash,
                        Entry {
                            principal: std::sync::Arc::new(principal.clone()),
                            valid_until,
                            bound_to,
                        },
                        now,
                    );
                }
                principal
            })
    }

    fn unavailable(&self, reason: &str) -> TokenError {
        TokenError::Unavailable {
            issuer: self.issuer.clone(),
            source: invalid(&self.endpoint, reason),
        }
    }

    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        claims: &Map<String, Value>,
        certificate: Option<&[u8]>,
        now: u64,
    ) -> Result<(Principal, Option<u64>, Option<[u8; 32]>), TokenError> {
        match claims.get("iss") {
            None => {}
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(Value::String(iss)) => {
                return Err(TokenError::UntrustedIssuer { iss: shown(iss) });
            }
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: "iss",
                    reason: "not a string",
                });
            }
        }
        let exp = check_times(claims, now, self.leeway, false)?;
        check_audience_with(claims, &self.issuer, &self.audiences, &self.fallback)?;
        let bound_to = binding_of(claims)?;
        let method = match check_binding(bound_to.as_ref(), certificate, false)? {
            AuthMethod::BearerJwt => AuthMethod::BearerIntrospected,
            other => other,
        };
        let principal = principal_from(claims, &self.claims, &self.issuer, method)?;
        Ok((principal, exp, bound_to))
    }

    async fn call(&self, token: &str, now: u64) -> Result<Value, ClientError> {
        let mut form: Vec<(String, String)> = vec![
            ("token".into(), token.into()),
            ("token_type_hint".into(), "access_token".into()),
        ];
        let url = &self.endpoint;
        let request = self.http.reqwest().post(url.as_str());
        let request = self
            .auth
            .apply(request, &mut form, &self.client_id, url, now)?;
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(url, &e))?;
        read_oauth_json(&self.http, url, response).await
    }
}
