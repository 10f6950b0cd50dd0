//! Provider presets: issuer and JWKS URL patterns, algorithms and claim
//! mappings for Auth0, Okta, Microsoft Entra ID (Azure AD), Keycloak and any
//! OIDC provider.
//!
//! Each preset returns an [`IssuerConfig`] that still needs `.audience(...)`.
//! No preset turns the audience fallback on: where an IdP commonly omits `aud`
//! the function says so, and the operator decides.

use crate::claims::{ClaimMapping, ClaimPath};
use crate::error::ConfigError;
use crate::verifier::IssuerConfig;
use etdi_crypto::Algorithm;

fn host(what: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    let v = v.strip_prefix("https://").unwrap_or(v);
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(ConfigError(format!("{what} `{value}` is not a host name")))
    }
}

fn segment(what: &str, value: &str) -> Result<String, ConfigError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ConfigError(format!(
            "{what} `{value}` is not a path segment"
        )))
    }
}

/// Auth0: issuer `https://{domain}/` (with the trailing slash Auth0 puts in
/// `iss`), JWKS `https://{domain}/.well-known/jwks.json`, `RS256`.
///
/// Scopes from `scope`; roles from `permissions` (RBAC for APIs) and, if
/// given, a namespaced claim set by an Auth0 Action (e.g.
/// `https://example.com/roles`). Auth0 access tokens carry `aud` when the
/// client asks for an API `audience`; tokens without one are opaque.
pub fn auth0(domain: &str, roles_claim: Option<&str>) -> Result<IssuerConfig, ConfigError> {
    let domain = host("Auth0 domain", domain)?;
    let mut roles = vec![ClaimPath::top("permissions")];
    if let Some(claim) = roles_claim {
        roles.push(ClaimPath::top(claim));
    }
    Ok(IssuerConfig::new(format!("https://{domain}/"))
        .jwks_uri(format!("https://{domain}/.well-known/jwks.json"))
        .algorithms([Algorithm::RS256])
        .claim_mapping(
            ClaimMapping::default()
                .with_scopes(vec![ClaimPath::top("scope")])
                .with_roles(roles),
        ))
}

/// Okta custom authorization server: issuer
/// `https://{domain}/oauth2/{server}` (`default` for the default server),
/// JWKS `{issuer}/v1/keys`, `RS256`. Scopes from `scp` (an array); roles from
/// `groups` (add a groups claim to the server).
pub fn okta(domain: &str, authorization_server: &str) -> Result<IssuerConfig, ConfigError> {
    let domain = host("Okta domain", domain)?;
    let server = segment("Okta authorization server", authorization_server)?;
    let issuer = format!("https://{domain}/oauth2/{server}");
    Ok(IssuerConfig::new(issuer.clone())
        .jwks_uri(format!("{issuer}/v1/keys"))
        .algorithms([Algorithm::RS256])
        .claim_mapping(
            ClaimMapping::default()
                .with_scopes(vec![ClaimPath::top("scp")])
                .with_roles(vec![ClaimPath::top("groups")]),
        ))
}

/// Microsoft Entra ID (Azure AD) v2.0 tokens: issuer
/// `https://login.microsoftonline.com/{tenant}/v2.0`, JWKS
/// `https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys`, `RS256`.
/// Scopes from `scp` (space-separated, delegated tokens); roles from `roles`
/// (app roles, also what app-only tokens carry). The client is `azp` (`appid`
/// in v1 tokens). The audience is the API's application id URI or its client
/// id, as configured in the app registration; v1 tokens
/// (`https://sts.windows.net/{tenant}/`) need [`entra_id_v1`].
pub fn entra_id(tenant: &str) -> Result<IssuerConfig, ConfigError> {
    let tenant = segment("Entra tenant", tenant)?;
    let base = format!("https://login.microsoftonline.com/{tenant}");
    Ok(IssuerConfig::new(format!("{base}/v2.0"))
        .jwks_uri(format!("{base}/discovery/v2.0/keys"))
        .algorithms([Algorithm::RS256])
        .claim_mapping(
            ClaimMapping::default()
                .with_scopes(vec![ClaimPath::top("scp")])
                .with_roles(vec![ClaimPath::top("roles")]),
        ))
}

/// Entra ID v1.0 access tokens: issuer `https://sts.windows.net/{tenant}/`,
/// same keys and mapping as [`entra_id`].
pub fn entra_id_v1(tenant: &str) -> Result<IssuerConfig, ConfigError> {
    let tenant = segment("Entra tenant", tenant)?;
    Ok(
        IssuerConfig::new(format!("https://sts.windows.net/{tenant}/"))
            .jwks_uri(format!(
                "https://login.microsoftonline.com/{tenant}/discovery/keys"
            ))
            .algorithms([Algorithm::RS256])
            .claim_mapping(
                ClaimMapping::default()
                    .with_scopes(vec![ClaimPath::top("scp")])
                    .with_roles(vec![ClaimPath::top("roles")]),
            ),
    )
}

/// Azure AD is Entra ID's former name; same as [`entra_id`].
pub fn azure_ad(tenant: &str) -> Result<IssuerConfig, ConfigError> {
    entra_id(tenant)
}

/// Keycloak realm: issuer `{base_url}/realms/{realm}`, JWKS
/// `{issuer}/protocol/openid-connect/certs`, `RS256`, `ES256`, `PS256`.
/// Scopes from `scope`; roles from `realm_access.roles` and, if `client` is
/// given, `resource_access.{client}.roles`.
///
/// Keycloak puts `aud` only where an audience mapper (or a client role of the
/// audience client) adds it; otherwise `aud` is absent or `account`. Prefer an
/// audience mapper; the `azp` fallback is available but off.
pub fn keycloak(
    base_url: &str,
    realm: &str,
    client: Option<&str>,
) -> Result<IssuerConfig, ConfigError> {
    let base = base_url.trim_end_matches('/');
    crate::http::check_url(base).map_err(|e| ConfigError(e.to_string()))?;
    let realm = segment("Keycloak realm", realm)?;
    let issuer = format!("{base}/realms/{realm}");
    let mut roles = vec![ClaimPath::nested(["realm_access", "roles"])];
    if let Some(client) = client {
        roles.push(ClaimPath::nested(["resource_access", client, "roles"]));
    }
    Ok(IssuerConfig::new(issuer.clone())
        .jwks_uri(format!("{issuer}/protocol/openid-connect/certs"))
        .algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::PS256])
        .claim_mapping(
            ClaimMapping::default()
                .with_scopes(vec![ClaimPath::top("scope")])
                .with_roles(roles),
        ))
}

/// Any OpenID Connect or RFC 8414 provider: keys found by discovery, the
/// default claim mapping (scopes from `scope`/`scp`; roles from `roles`,
/// `groups`, `permissions`, `realm_access.roles`), `RS256` and `ES256`.
pub fn oidc(issuer: &str) -> Result<IssuerConfig, ConfigError> {
    crate::http::check_url(issuer).map_err(|e| ConfigError(e.to_string()))?;
    Ok(IssuerConfig::new(issuer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::KeySource;

    fn jwks(c: &IssuerConfig) -> String {
        match &c.keys {
            KeySource::Url(u) => u.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn url_patterns() {
        let a = auth0("tenant.eu.auth0.com", None).unwrap();
        assert_eq!(a.issuer(), "https://tenant.eu.auth0.com/");
        assert_eq!(
            jwks(&a),
            "https://tenant.eu.auth0.com/.well-known/jwks.json"
        );
        let o = okta("dev-1.okta.com", "default").unwrap();
        assert_eq!(o.issuer(), "https://dev-1.okta.com/oauth2/default");
        assert_eq!(jwks(&o), "https://dev-1.okta.com/oauth2/default/v1/keys");
        let e = entra_id("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        assert_eq!(
            e.issuer(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
        );
        assert!(jwks(&e).ends_with("/discovery/v2.0/keys"));
        let k = keycloak("https://sso.example.com/", "mcp", Some("tools")).unwrap();
        assert_eq!(k.issuer(), "https://sso.example.com/realms/mcp");
        assert_eq!(
            jwks(&k),
            "https://sso.example.com/realms/mcp/protocol/openid-connect/certs"
        );
        assert!(matches!(
            oidc("https://idp.example").unwrap().keys,
            KeySource::Discover
        ));
        // The public accessors report the same configuration.
        assert_eq!(a.jwks_url(), Some(jwks(&a).as_str()));
        assert_eq!(oidc("https://idp.example").unwrap().jwks_url(), None);
        assert_eq!(a.allowed_algorithms(), [Algorithm::RS256]);
        let a = a.audience("https://tools.example.com/mcp");
        assert_eq!(a.audiences(), ["https://tools.example.com/mcp"]);
        assert_eq!(k.mapping().scopes, [ClaimPath::top("scope")]);
    }

    #[test]
    fn bad_inputs_refused() {
        assert!(auth0("evil.example/path", None).is_err());
        assert!(okta("dev.okta.com", "../x").is_err());
        assert!(entra_id("a/b").is_err());
        assert!(keycloak("http://sso.example.com", "r", None).is_err());
        assert!(oidc("ftp://x").is_err());
    }

    #[test]
    fn claim_mappings() {
        use serde_json::json;
        let k = keycloak("https://sso.example.com", "mcp", Some("tools")).unwrap();
        let claims = json!({"realm_access": {"roles": ["r"]}, "resource_access": {"tools": {"roles": ["c"]}}, "groups": ["g"]});
        let roles = k.claims.roles_of(claims.as_object().unwrap());
        assert_eq!(roles.into_iter().collect::<Vec<_>>(), ["c", "r"]);
        let e = entra_id("t").unwrap();
        let claims = json!({"scp": "Files.Read User.Read", "roles": ["Tools.Call"]});
        let c = claims.as_object().unwrap();
        assert_eq!(e.claims.scopes_of(c).len(), 2);
        assert!(e.claims.roles_of(c).contains("Tools.Call"));
    }
}
