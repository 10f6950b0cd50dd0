//! Authorization-server metadata: OIDC discovery and RFC 8414, used to find
//! `jwks_uri`, `token_endpoint` and `introspection_endpoint` from an issuer.

use serde_json::Value;

use crate::error::FetchError;
use crate::http::{HttpClient, invalid};

/// The parts of an authorization server's metadata this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerMetadata {
    /// `issuer`, checked to equal the issuer asked for (RFC 8414 §3.3).
    pub issuer: String,
    /// `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// `introspection_endpoint` (RFC 7662).
    pub introspection_endpoint: Option<String>,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: Option<String>,
    /// The URL the document was read from.
    pub source: String,
}

/// The metadata URLs tried for `issuer`, in the order of the MCP
/// authorization specification: RFC 8414 with path insertion, OIDC discovery
/// with path insertion (only for an issuer with a path), then OIDC discovery
/// with the path appended.
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>, FetchError> {
    let url = reqwest::Url::parse(issuer).map_err(|_| invalid(issuer, "issuer is not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(issuer, "issuer has a query or fragment"));
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    }
    urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    Ok(urls)
}

/// Fetches and checks the metadata of `issuer`.
///
/// The first URL that answers with a valid document wins; a document whose
/// `issuer` differs from the one asked for is refused (mix-up protection)
/// rather than skipped, because it means the server is misconfigured or
/// hostile.
pub async fn discover(http: &HttpClient, issuer: &str) -> Result<ServerMetadata, FetchError> {
    let mut last = None;
    for url in metadata_urls(issuer)? {
        match http.get_json(&url).await {
            Ok(doc) => return parse_metadata(issuer, &url, &doc.value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| invalid(issuer, "no metadata URL")))
}

fn parse_metadata(issuer: &str, url: &str, doc: &Value) -> Result<ServerMetadata, FetchError> {
    let text = |name: &str| -> Result<Option<String>, FetchError> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(url, &format!("`{name}` is not a string"))),
        }
    };
    let found = text("issuer")?.ok_or_else(|| invalid(url, "`issuer` is missing"))?;
    if found != issuer {
        return Err(invalid(
            url,
            &format!(
                "metadata names issuer `{}`, expected `{issuer}`",
                crate::error::shown(&found)
            ),
        ));
    }
    Ok(ServerMetadata {
        issuer: found,
        jwks_uri: text("jwks_uri")?,
        token_endpoint: text("token_endpoint")?,
        introspection_endpoint: text("introspection_endpoint")?,
        revocation_endpoint: text("revocation_endpoint")?,
        source: url.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_rfc8414_and_oidc() {
        assert_eq!(
            metadata_urls("https://idp.example").unwrap(),
            vec![
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("https://idp.example/realms/mcp/").unwrap(),
            vec![
                "https://idp.example/.well-known/oauth-authorization-server/realms/mcp",
                "https://idp.example/.well-known/openid-configuration/realms/mcp",
                "https://idp.example/realms/mcp/.well-known/openid-configuration",
            ]
        );
        assert!(metadata_urls("https://idp.example/?a=b").is_err());
    }

    #[test]
    fn metadata_issuer_must_match() {
        let doc = serde_json::json!({"issuer": "https://other.example", "jwks_uri": "https://x/j"});
        assert!(parse_metadata("https://idp.example", "u", &doc).is_err());
        let doc = serde_json::json!({"issuer": "https://idp.example", "jwks_uri": "https://x/j"});
        let m = parse_metadata("https://idp.example", "u", &doc).unwrap();
        assert_eq!(m.jwks_uri.as_deref(), Some("https://x/j"));
        let doc = serde_json::json!({"issuer": "https://idp.example", "jwks_uri": 5});
        assert!(parse_metadata("https://idp.example", "u", &doc).is_err());
    }
}
