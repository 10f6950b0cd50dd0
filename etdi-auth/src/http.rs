//! The HTTP client for discovery, JWKS, introspection and token requests:
//! reqwest over rustls, no redirects, bounded time and bounded bodies.
//!
//! Redirects are not followed because a JWKS or metadata URL that redirects
//! elsewhere would let whoever controls the redirect choose our trust anchors.
//! Plain `http` is refused except to loopback addresses, which the test
//! harnesses and local development use.

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use crate::error::{ConfigError, FetchError};

/// Largest response body accepted from an authorization server (256 KiB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// An HTTP client shared by every part of this crate that talks to an IdP.
///
/// Cheap to clone (reqwest's client is reference-counted).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    max_body: usize,
}

/// A fetched JSON document and the caching headers that came with it.
#[derive(Debug)]
pub(crate) struct JsonResponse {
    pub(crate) value: Value,
    /// `max-age` from `Cache-Control`, if any; `Some(0)` for `no-store`/`no-cache`.
    pub(crate) max_age: Option<u64>,
}

impl HttpClient {
    /// A client with rustls (aws-lc-rs), the platform's trust roots, a 10 s
    /// request timeout, a 5 s connect timeout and no redirects.
    pub fn new() -> Result<Self, ConfigError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("etdi-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(format!("HTTP client: {e}")))?;
        Ok(HttpClient {
            inner,
            max_body: MAX_RESPONSE_BYTES,
        })
    }

    /// Wraps a client configured elsewhere (custom roots, proxy, timeouts).
    ///
    /// The caller is responsible for keeping redirects off and TLS on rustls.
    pub fn from_reqwest(inner: reqwest::Client) -> Self {
        HttpClient {
            inner,
            max_body: MAX_RESPONSE_BYTES,
        }
    }

    pub(crate) fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// GETs a JSON object.
    pub(crate) async fn get_json(&self, url: &str) -> Result<JsonResponse, FetchError> {
        check_url(url)?;
        let response = self
            .inner
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport(url, &e))?;
        self.read_json(url, response).await
    }

    /// Reads a response as a JSON object, refusing non-success statuses,
    /// oversized bodies and duplicate members.
    pub(crate) async fn read_json(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<JsonResponse, FetchError> {
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let max_age = max_age(response.headers());
        check_json_content_type(url, response.headers())?;
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit: self.max_body,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(url, &e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(FetchError::TooLarge {
                    url: url.to_owned(),
                    limit: self.max_body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&body).map_err(|_| invalid(url, "not UTF-8"))?;
        let value = etdi_core::canonical::parse_json(text)
            .map_err(|e| invalid(url, &format!("not strict JSON: {e}")))?;
        if !value.is_object() {
            return Err(invalid(url, "not a JSON object"));
        }
        Ok(JsonResponse { value, max_age })
    }
}

/// Refuses URLs that are not `https`, except `http` to a loopback host.
pub(crate) fn check_url(url: &str) -> Result<(), FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid(url, "not an absolute URL"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err(invalid(url, "only https (or http to loopback) is allowed")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_json_content_type(url: &str, headers: &HeaderMap) -> Result<(), FetchError> {
    // Absent is tolerated (some IdPs omit it); a present type must be JSON,
    // so an HTML error page behind a 200 is not parsed as keys.
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let Ok(text) = value.to_str() else {
        return Err(invalid(url, "unreadable content type"));
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5 && essence.to_ascii_lowercase().ends_with("+json"))
    {
        Ok(())
    } else {
        Err(invalid(url, "content type is not JSON"))
    }
}

/// `max-age` (or `s-maxage`) from `Cache-Control`; `no-store` and `no-cache`
/// read as zero (the caller's minimum TTL then applies).
pub(crate) fn max_age(headers: &HeaderMap) -> Option<u64> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',') {
            let directive = directive.trim();
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(0);
            }
            if let Some(v) = lower
                .strip_prefix("max-age=")
                .or_else(|| lower.strip_prefix("s-maxage="))
                && let Ok(secs) = v.trim_matches('"').parse::<u64>()
            {
                found = Some(found.map_or(secs, |f: u64| f.min(secs)));
            }
        }
    }
    found
}

pub(crate) fn transport(url: &str, e: &reqwest::Error) -> FetchError {
    // reqwest's Display includes the URL already; strip nothing else, as it
    // never includes request bodies (where secrets travel).
    let reason = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_redirect() {
        "redirect refused".to_owned()
    } else {
        e.to_string()
    };
    FetchError::Transport {
        url: url.to_owned(),
        reason,
    }
}

pub(crate) fn invalid(url: &str, reason: &str) -> FetchError {
    FetchError::Invalid {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn urls_must_be_https_or_loopback() {
        assert!(check_url("https://idp.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://[::1]/jwks").is_ok());
        assert!(check_url("http://idp.example/jwks").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("../jwks").is_err());
    }

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        assert_eq!(max_age(&h), Some(3600));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&h), Some(0));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=abc"));
        assert_eq!(max_age(&h), None);
    }
}
