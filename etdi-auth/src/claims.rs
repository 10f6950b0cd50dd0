//! Claim mapping: which claims of a token (or introspection response) become
//! the subject, client id, scopes and roles of an `etdi_core::Principal`.
//!
//! IdPs disagree: Auth0 puts scopes in `scope` and API permissions in
//! `permissions`; Okta and Entra ID use `scp`; Entra ID app roles are `roles`;
//! Keycloak nests realm roles in `realm_access.roles`. The default mapping reads
//! all of these; presets narrow it to what each IdP issues.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A path to a claim: one member name per level of nesting.
///
/// Segments are kept whole, so a namespaced claim such as
/// `https://example.com/roles` (Auth0's convention, dots and slashes included)
/// is one segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// A top-level claim.
    pub fn top(name: impl Into<String>) -> Self {
        ClaimPath(vec![name.into()])
    }

    /// A nested claim, outermost member first: `["realm_access", "roles"]`.
    pub fn nested<I, S>(segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClaimPath(segments.into_iter().map(Into::into).collect())
    }

    /// Looks the path up in a claims object.
    pub fn get<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut value = claims.get(first)?;
        for segment in rest {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// How claims become a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// Where the subject is read; the first present string wins. Default
    /// `sub`. When none is present the client id is the subject (a
    /// client-credentials token names no user).
    pub subject: Vec<ClaimPath>,
    /// Where the OAuth client id is read; first present wins. Default
    /// `client_id`, `azp`, `appid` (Entra ID v1).
    pub client_id: Vec<ClaimPath>,
    /// Where scopes are read; all are merged. A string is split on spaces
    /// (RFC 8693 `scope`), an array is taken element by element. Default
    /// `scope`, `scp`.
    pub scopes: Vec<ClaimPath>,
    /// Where roles are read; all are merged, strings or arrays of strings.
    /// Default `roles`, `groups`, `permissions`, `realm_access.roles`.
    pub roles: Vec<ClaimPath>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            subject: vec![ClaimPath::top("sub")],
            client_id: vec![
                ClaimPath::top("client_id"),
                ClaimPath::top("azp"),
                ClaimPath::top("appid"),
            ],
            scopes: vec![ClaimPath::top("scope"), ClaimPath::top("scp")],
            roles: vec![
                ClaimPath::top("roles"),
                ClaimPath::top("groups"),
                ClaimPath::top("permissions"),
                ClaimPath::nested(["realm_access", "roles"]),
            ],
        }
    }
}

/// Largest number of scopes or roles taken from one token; more is refused
/// silently beyond the limit (fewer rights, never more).
const MAX_ENTRIES: usize = 256;

impl ClaimMapping {
    /// Roles only from these paths (scopes and subject unchanged).
    pub fn with_roles(mut self, roles: Vec<ClaimPath>) -> Self {
        self.roles = roles;
        self
    }

    /// Scopes only from these paths.
    pub fn with_scopes(mut self, scopes: Vec<ClaimPath>) -> Self {
        self.scopes = scopes;
        self
    }

    pub(crate) fn first_string(paths: &[ClaimPath], claims: &Map<String, Value>) -> Option<String> {
        paths
            .iter()
            .find_map(|p| p.get(claims).and_then(Value::as_str))
            .map(str::to_owned)
    }

    pub(crate) fn scopes_of(&self, claims: &Map<String, Value>) -> BTreeSet<String> {
        collect(&self.scopes, claims, true)
    }

    pub(crate) fn roles_of(&self, claims: &Map<String, Value>) -> BTreeSet<String> {
        collect(&self.roles, claims, false)
    }
}

fn collect(paths: &[ClaimPath], claims: &Map<String, Value>, split: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut push = |s: &str| {
        if out.len() < MAX_ENTRIES && !s.is_empty() {
            out.insert(s.to_owned());
        }
    };
    for path in paths {
        match path.get(claims) {
            Some(Value::String(s)) if split => s.split(' ').for_each(&mut push),
            Some(Value::String(s)) => push(s),
            Some(Value::Array(items)) => {
                // Non-string entries are ignored: the principal gets fewer
                // rights, never more.
                items.iter().filter_map(Value::as_str).for_each(&mut push);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn default_mapping_reads_every_idp_shape() {
        let m = ClaimMapping::default();
        let c = obj(json!({
            "scope": "a b", "scp": ["c"], "roles": ["r1"], "groups": "g1",
            "permissions": ["p1", 5], "realm_access": {"roles": ["kc"]}
        }));
        assert_eq!(
            m.scopes_of(&c).into_iter().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(
            m.roles_of(&c).into_iter().collect::<Vec<_>>(),
            ["g1", "kc", "p1", "r1"]
        );
    }

    #[test]
    fn namespaced_claim_is_one_segment() {
        let p = ClaimPath::top("https://example.com/roles");
        let c = obj(json!({"https://example.com/roles": ["admin"]}));
        assert!(p.get(&c).is_some());
        let m = ClaimMapping::default().with_roles(vec![p]);
        assert!(m.roles_of(&c).contains("admin"));
    }
}
