//! The demo's embedded OAuth authorization server: a small axum app on
//! 127.0.0.1 that publishes RFC 8414 / OIDC discovery metadata and a JWKS,
//! and issues RFC 9068 JWT access tokens (ES256, signed with an etdi-crypto
//! key) through the client-credentials grant.
//!
//! It is deliberately small but not a mock: the tool server finds its keys
//! through discovery and verifies every token with etdi-auth, and the agent
//! obtains its tokens with etdi-auth's client-credentials client, exactly as
//! they would against a real identity provider. It knows one client, grants
//! only the scopes that client is registered for, and mints tokens only for
//! the one resource (the tool server) it serves.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use etdi_crypto::jws::{self, JwsHeader};
use etdi_crypto::{Algorithm, JwkSet, SigningKey, UnixTime};
use serde_json::json;

/// Lifetime of an access token, in seconds.
const TOKEN_LIFETIME_SECS: u64 = 300;

/// Largest token request body read.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// The one registered OAuth client.
#[derive(Clone)]
pub struct RegisteredClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret` (client_secret_post).
    pub secret: String,
    /// Scopes this client may be granted.
    pub scopes: BTreeSet<String>,
}

/// Everything the issuer's handlers share.
struct Issuer {
    url: String,
    key: Arc<SigningKey>,
    client: RegisteredClient,
    /// The only resource (RFC 8707) tokens are issued for.
    resource: String,
    jwks: String,
    issued: AtomicU64,
}

/// The issuer's router, for `url` (its `iss`, e.g. `http://127.0.0.1:4000`).
pub fn router(
    url: String,
    key: Arc<SigningKey>,
    client: RegisteredClient,
    resource: String,
) -> Router {
    let jwks = JwkSet {
        keys: vec![key.verifying_key().to_jwk()],
    }
    .to_json();
    let state = Arc::new(Issuer {
        url,
        key,
        client,
        resource,
        jwks,
        issued: AtomicU64::new(0),
    });
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/jwks.json", get(jwks_doc))
        .route("/token", post(token))
        .with_state(state)
}

async fn metadata(State(st): State<Arc<Issuer>>) -> Response {
    let doc = json!({
        "issuer": st.url,
        "jwks_uri": format!("{}/jwks.json", st.url),
        "token_endpoint": format!("{}/token", st.url),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "scopes_supported": st.client.scopes.iter().collect::<Vec<_>>(),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    axum::Json(doc).into_response()
}

async fn jwks_doc(State(st): State<Arc<Issuer>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        st.jwks.clone(),
    )
        .into_response()
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Compares two secrets without stopping at the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes one `application/x-www-form-urlencoded` component; `None` if a
/// percent escape is malformed or the result is not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The form's fields; a repeated field other than `resource` is refused.
fn parse_form(body: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            form_decode(k).ok_or("malformed form encoding")?,
            form_decode(v).ok_or("malformed form encoding")?,
        );
        if k != "resource" && out.iter().any(|(seen, _)| *seen == k) {
            return Err("a parameter is repeated");
        }
        out.push((k, v));
    }
    Ok(out)
}

async fn token(State(st): State<Arc<Issuer>>, body: String) -> Response {
    if body.len() > MAX_FORM_BYTES {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "request too large",
        );
    }
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why),
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    let authenticated = field("client_id") == Some(st.client.id.as_str())
        && field("client_secret").is_some_and(|s| same_secret(s, &st.client.secret));
    if !authenticated {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    }
    let requested: BTreeSet<String> = field("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if requested.is_empty() || !requested.is_subset(&st.client.scopes) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the client may not be granted that scope",
        );
    }
    let resources: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str())
        .collect();
    if resources != [st.resource.as_str()] {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "tokens are issued only for the demo tool server",
        );
    }
    let scope = requested.into_iter().collect::<Vec<_>>().join(" ");
    let now = UnixTime::now().as_secs();
    let n = st.issued.fetch_add(1, Ordering::Relaxed);
    let claims = json!({
        "iss": st.url,
        "sub": st.client.id,
        "aud": st.resource,
        "client_id": st.client.id,
        "iat": now,
        "exp": now.saturating_add(TOKEN_LIFETIME_SECS),
        "jti": format!("demo-{now}-{n}"),
        "scope": scope,
    });
    let header = JwsHeader::new(Algorithm::ES256)
        .with_kid(st.key.kid().to_string())
        .with_typ("at+jwt");
    match jws::sign(&st.key, &header, claims.to_string().as_bytes()) {
        Ok(access_token) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
                "scope": scope,
            })),
        )
            .into_response(),
        Err(_) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing failed",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_decode("files%3Aread+files%3Awrite").as_deref(),
            Some("files:read files:write")
        );
        assert_eq!(form_decode("%zz"), None);
        assert!(parse_form("a=1&a=2").is_err());
        assert_eq!(parse_form("resource=x&resource=y").map(|f| f.len()), Ok(2));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
