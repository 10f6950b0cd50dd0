//! MCP authorization pieces for an HTTP resource server: the RFC 9728
//! protected-resource metadata document and the `WWW-Authenticate` values for
//! `401` and `403` (docs/PROTOCOL.md §11).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, TokenError};

/// The RFC 9728 protected-resource metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource id (the MCP server's URL): the audience tokens must name.
    pub resource: String,
    /// Issuers of the authorization servers that issue tokens for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// Scopes a client may request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How a token may be presented: only `header` (never the query string).
    pub bearer_methods_supported: Vec<String>,
    /// The resource's own JWKS (for ETDI, the server's attestation keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Documentation URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// RFC 8705: the resource accepts (or requires) certificate-bound tokens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_client_certificate_bound_access_tokens: bool,
}

impl ProtectedResourceMetadata {
    /// Metadata for `resource` served by `authorization_servers`.
    pub fn new<I, S>(resource: impl Into<String>, authorization_servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProtectedResourceMetadata {
            resource: resource.into(),
            authorization_servers: authorization_servers.into_iter().map(Into::into).collect(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".into()],
            jwks_uri: None,
            resource_name: None,
            resource_documentation: None,
            tls_client_certificate_bound_access_tokens: false,
        }
    }

    /// Sets the supported scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the resource name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets the resource's JWKS URL.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// Declares support for certificate-bound tokens (RFC 8705).
    pub fn certificate_bound_tokens(mut self, supported: bool) -> Self {
        self.tls_client_certificate_bound_access_tokens = supported;
        self
    }

    /// The document as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, vectors and bools cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Where this document is served: see [`metadata_url`].
    pub fn url(&self) -> Result<String, ConfigError> {
        metadata_url(&self.resource)
    }
}

/// The RFC 9728 metadata URL for a resource id: the well-known segment goes
/// between the host and the path, so `https://h/mcp` has its document at
/// `https://h/.well-known/oauth-protected-resource/mcp`.
pub fn metadata_url(resource: &str) -> Result<String, ConfigError> {
    let url = reqwest::Url::parse(resource)
        .map_err(|_| ConfigError(format!("resource `{resource}` is not a URL")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ConfigError(format!("resource `{resource}` is not http(s)")));
    }
    if url.fragment().is_some() {
        return Err(ConfigError(format!("resource `{resource}` has a fragment")));
    }
    let path = url.path().trim_end_matches('/');
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!(
        "{}/.well-known/oauth-protected-resource{path}{query}",
        url.origin().ascii_serialization()
    ))
}

/// An RFC 7230 quoted-string: `"` and `\` escaped, control characters dropped.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `WWW-Authenticate` for a request without a token (`401`).
pub fn www_authenticate_unauthenticated(resource_metadata_url: &str) -> String {
    format!("Bearer resource_metadata={}", quoted(resource_metadata_url))
}

/// `WWW-Authenticate` for an invalid token (`401`, RFC 6750 `invalid_token`).
/// The description is [`TokenError::description`]: fixed text, nothing from
/// the token.
pub fn www_authenticate_invalid_token(resource_metadata_url: &str, error: &TokenError) -> String {
    format!(
        "Bearer error=\"invalid_token\", error_description={}, resource_metadata={}",
        quoted(error.description()),
        quoted(resource_metadata_url)
    )
}

/// `WWW-Authenticate` for a token lacking scopes (`403`, RFC 6750
/// `insufficient_scope`), naming the scopes the request needs. Scope tokens
/// with characters RFC 6749 §3.3 forbids are left out.
pub fn www_authenticate_insufficient_scope<I, S>(needed: I, resource_metadata_url: &str) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let scopes: Vec<String> = needed
        .into_iter()
        .filter(|s| {
            let s = s.as_ref();
            !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
        .map(|s| s.as_ref().to_owned())
        .collect();
    format!(
        "Bearer error=\"insufficient_scope\", scope={}, resource_metadata={}",
        quoted(&scopes.join(" ")),
        quoted(resource_metadata_url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_document() {
        let m = ProtectedResourceMetadata::new(
            "https://tools.example.com/mcp",
            ["https://idp.example.com"],
        )
        .scopes(["tools:call"]);
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["resource"], "https://tools.example.com/mcp");
        assert_eq!(v["authorization_servers"][0], "https://idp.example.com");
        assert_eq!(v["bearer_methods_supported"][0], "header");
        assert!(
            v.get("tls_client_certificate_bound_access_tokens")
                .is_none()
        );
        assert_eq!(
            m.url().unwrap(),
            "https://tools.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://tools.example.com").unwrap(),
            "https://tools.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn challenges() {
        let url = "https://tools.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            www_authenticate_unauthenticated(url),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        let e = TokenError::Expired {
            exp: 1,
            now: 2,
            leeway: 0,
        };
        assert_eq!(
            www_authenticate_invalid_token(url, &e),
            format!(
                "Bearer error=\"invalid_token\", error_description=\"token expired\", resource_metadata=\"{url}\""
            )
        );
        assert_eq!(
            www_authenticate_insufficient_scope(["tools:call", "bad\"scope", "files:write"], url),
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"tools:call files:write\", resource_metadata=\"{url}\""
            )
        );
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\cd\"");
    }
}
