//! Client side: OAuth client authentication (`client_secret_basic`,
//! `client_secret_post`, `private_key_jwt`) and the client-credentials grant
//! with RFC 8707 `resource`, a cached token and refresh before expiry.
//!
//! Interactive authorization-code + PKCE flows are not implemented here: use
//! the `rmcp` client's auth support (see the crate documentation).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use crate::clock::{Clock, SystemClock};
use crate::discovery;
use crate::error::{ConfigError, FetchError, shown};
use crate::http::{HttpClient, check_url, invalid, transport};
use etdi_crypto::{Algorithm, CryptoProvider};

/// A client secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// A private key that signs `private_key_jwt` client assertions (RFC 7523).
#[derive(Clone)]
pub struct AssertionKey {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AssertionKey {
    /// An RSA key in PKCS#1 `RSAPrivateKey` DER, for `RS*` or `PS*`.
    pub fn rsa_pkcs1_der(alg: Algorithm, der: &[u8]) -> Result<Self, ConfigError> {
        Self::checked(alg, EncodingKey::from_rsa_der(der))
    }

    /// An EC key in PKCS#8 DER, for `ES256` (P-256) or `ES384` (P-384).
    pub fn ec_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, ConfigError> {
        Self::checked(alg, EncodingKey::from_ec_der(der))
    }

    /// An Ed25519 key in PKCS#8 DER, for `EdDSA`.
    pub fn ed25519_pkcs8_der(der: &[u8]) -> Result<Self, ConfigError> {
        Self::checked(Algorithm::EdDSA, EncodingKey::from_ed_der(der))
    }

    fn checked(alg: Algorithm, key: EncodingKey) -> Result<Self, ConfigError> {
        let key = AssertionKey {
            alg,
            key,
            kid: None,
            audience: None,
        };
        // Sign once now so a wrong key or algorithm fails at configuration,
        // not at the first token request.
        key.sign_raw(b"probe")
            .map_err(|_| ConfigError(format!("assertion key cannot sign {alg}")))?;
        Ok(key)
    }

    /// Sets the `kid` header (the key's id in the client's registered JWKS).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets the assertion's `aud`. Default: the URL of the endpoint called
    /// (token or introspection endpoint). Some servers want their issuer id.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, ()> {
        // The aws-lc-rs provider is named explicitly rather than the process
        // default, so another crate enabling jsonwebtoken's `rust_crypto`
        // feature cannot make it panic.
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        let alg = jwt_algorithm(self.alg).ok_or(())?;
        let signer = (provider.signer_factory)(&alg, &self.key).map_err(|_| ())?;
        signer.try_sign(message).map_err(|_| ())
    }

    /// A client assertion JWT for `client_id` calling `endpoint`, valid 60 s.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        endpoint: &str,
        now: u64,
    ) -> Result<String, ClientError> {
        let mut header = json!({"alg": self.alg.name(), "typ": "JWT"});
        if let (Some(kid), Some(obj)) = (&self.kid, header.as_object_mut()) {
            obj.insert("kid".into(), Value::String(kid.clone()));
        }
        let mut jti = [0u8; 16];
        CryptoProvider::get_default()
            .fill_random(&mut jti)
            .map_err(|_| ClientError::Config("no randomness for the assertion `jti`".into()))?;
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.audience.as_deref().unwrap_or(endpoint),
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now,
            "exp": now + 60,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .sign_raw(input.as_bytes())
            .map_err(|_| ClientError::Config("client assertion signing failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The jsonwebtoken name of `alg`; `None` for `ES512`, which jsonwebtoken 11
/// cannot sign (a P-521 assertion key is refused when it is configured).
fn jwt_algorithm(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
    Some(match alg {
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
        Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
        Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
        Algorithm::PS384 => jsonwebtoken::Algorithm::PS384,
        Algorithm::PS512 => jsonwebtoken::Algorithm::PS512,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::ES512 => return None,
    })
}

/// How the client authenticates to the authorization server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    SecretBasic(ClientSecret),
    /// `client_id` and `client_secret` in the form body.
    SecretPost(ClientSecret),
    /// A signed JWT assertion (RFC 7523, OIDC `private_key_jwt`).
    PrivateKeyJwt(AssertionKey),
}

impl ClientAuth {
    /// Adds this authentication to a form POST to `endpoint`.
    pub(crate) fn apply(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(String, String)>,
        client_id: &str,
        endpoint: &str,
        now: u64,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        Ok(match self {
            ClientAuth::SecretBasic(secret) => {
                let pair = format!(
                    "{}:{}",
                    form_encode(client_id),
                    form_encode(secret.expose())
                );
                request.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(pair)),
                )
            }
            ClientAuth::SecretPost(secret) => {
                form.push(("client_id".into(), client_id.into()));
                form.push(("client_secret".into(), secret.expose().into()));
                request
            }
            ClientAuth::PrivateKeyJwt(key) => {
                form.push(("client_id".into(), client_id.into()));
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion".into(),
                    key.assertion(client_id, endpoint, now)?,
                ));
                request
            }
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Why a token could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The authorization server could not be reached or answered nonsense.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The authorization server refused (RFC 6749 §5.2 error response).
    #[error("token request refused with HTTP {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` code (e.g. `invalid_client`, `invalid_target`).
        error: String,
        /// `error_description`, truncated.
        description: Option<String>,
    },
    /// The configuration cannot work.
    #[error("client configuration: {0}")]
    Config(String),
}

/// An access token obtained by this client. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    expires_at: Option<u64>,
    scope: Option<String>,
}

impl AccessToken {
    /// The token, for the `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// When it expires (seconds since the epoch), if the server said.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// The granted scope, if the server said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    refresh_at: u64,
}

/// Client-credentials token acquisition with caching (RFC 6749 §4.4).
///
/// One instance holds one token for one (scope, resource) request; it is
/// fetched on first use and refreshed ahead of expiry (by `refresh_before`,
/// but never later than half-way through a short lifetime). Concurrent callers
/// share a single request. A token response without `expires_in` is used once
/// and not cached, since its lifetime is unknown.
#[derive(Debug)]
pub struct ClientCredentials {
    token_endpoint: String,
    client_id: String,
    auth: ClientAuth,
    scopes: Vec<String>,
    resources: Vec<String>,
    refresh_before: u64,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl ClientCredentials {
    /// A client for `token_endpoint`.
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuth,
    ) -> Result<Self, ConfigError> {
        let token_endpoint = token_endpoint.into();
        check_url(&token_endpoint)?;
        Ok(ClientCredentials {
            token_endpoint,
            client_id: client_id.into(),
            auth,
            scopes: Vec::new(),
            resources: Vec::new(),
            refresh_before: 60,
            http: HttpClient::new()?,
            clock: Arc::new(SystemClock),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A client whose token endpoint is discovered from `issuer`.
    pub async fn discover(
        http: &HttpClient,
        issuer: &str,
        client_id: impl Into<String>,
        auth: ClientAuth,
    ) -> Result<Self, ClientError> {
        let meta = discovery::discover(http, issuer).await?;
        let endpoint = meta
            .token_endpoint
            .ok_or_else(|| invalid(&meta.source, "metadata has no `token_endpoint`"))?;
        let mut client =
            Self::new(endpoint, client_id, auth).map_err(|e| ClientError::Config(e.0))?;
        client.http = http.clone();
        Ok(client)
    }

    /// Requests these scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an RFC 8707 `resource` (the MCP server's resource id), so the
    /// token's audience is that server and nothing else.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Refresh this long before expiry (default 60 s).
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin.as_secs();
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

    /// The token endpoint in use.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// A valid access token: the cached one, or a new one when it is due for
    /// refresh.
    pub async fn access_token(&self) -> Result<AccessToken, ClientError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now().as_secs();
        if let Some(c) = cached.as_ref()
            && now < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let token = self.request(now).await?;
        *cached = token.expires_at.map(|exp| {
            let lifetime = exp.saturating_sub(now);
            let margin = self.refresh_before.min(lifetime / 2);
            Cached {
                token: token.clone(),
                refresh_at: exp.saturating_sub(margin),
            }
        });
        Ok(token)
    }

    /// Drops the cached token (for example after a resource server answered
    /// 401 `invalid_token`), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self, now: u64) -> Result<AccessToken, ClientError> {
        let mut form: Vec<(String, String)> =
            vec![("grant_type".into(), "client_credentials".into())];
        if !self.scopes.is_empty() {
            form.push(("scope".into(), self.scopes.join(" ")));
        }
        for r in &self.resources {
            form.push(("resource".into(), r.clone()));
        }
        let url = &self.token_endpoint;
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
        let doc = read_oauth_json(&self.http, url, response).await?;
        parse_token_response(url, &doc, now)
    }
}

/// Reads a token-endpoint style response: JSON on success, an RFC 6749 §5.2
/// error object otherwise.
pub(crate) async fn read_oauth_json(
    http: &HttpClient,
    url: &str,
    response: reqwest::Response,
) -> Result<Value, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(http.read_json(url, response).await?.value);
    }
    // The error body is small JSON; anything else is reported by status only.
    let body = response.text().await.unwrap_or_default();
    let parsed = body
        .get(..body.len().min(4096))
        .and_then(|b| etdi_core::canonical::parse_json(b).ok());
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(shown)
    };
    match field("error") {
        Some(error) => Err(ClientError::Refused {
            status: status.as_u16(),
            error,
            description: field("error_description"),
        }),
        None => Err(ClientError::Fetch(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        })),
    }
}

fn parse_token_response(url: &str, doc: &Value, now: u64) -> Result<AccessToken, ClientError> {
    let value = doc
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid(url, "no `access_token`"))?;
    let token_type = doc.get("token_type").and_then(Value::as_str).unwrap_or("");
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid(url, "`token_type` is not Bearer").into());
    }
    let expires_at = match doc.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            now.saturating_add(
                v.as_u64()
                    .ok_or_else(|| invalid(url, "`expires_in` is not a positive integer"))?,
            ),
        ),
    };
    Ok(AccessToken {
        value: Arc::from(value),
        expires_at,
        scope: doc.get("scope").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = ClientSecret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let t = AccessToken {
            value: Arc::from("tok-123"),
            expires_at: Some(1),
            scope: None,
        };
        assert!(!format!("{t:?}").contains("tok-123"));
    }

    #[test]
    fn form_encoding_of_basic_credentials() {
        assert_eq!(form_encode("a b:c/d%é"), "a+b%3Ac%2Fd%25%C3%A9");
    }

    #[test]
    fn token_response_parsing() {
        let ok =
            json!({"access_token": "t", "token_type": "bearer", "expires_in": 300, "scope": "a"});
        let t = parse_token_response("u", &ok, 1000).unwrap();
        assert_eq!(t.expires_at(), Some(1300));
        assert_eq!(t.scope(), Some("a"));
        assert!(
            parse_token_response("u", &json!({"access_token": "t", "token_type": "DPoP"}), 0)
                .is_err()
        );
        assert!(parse_token_response("u", &json!({"token_type": "Bearer"}), 0).is_err());
        assert!(
            parse_token_response(
                "u",
                &json!({"access_token": "t", "token_type": "Bearer", "expires_in": "5"}),
                0
            )
            .is_err()
        );
    }
}
