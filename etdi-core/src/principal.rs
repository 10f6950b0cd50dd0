//! Who is calling: the authenticated identity every decision is about.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// How a principal proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT access token verified against the issuer's keys.
    BearerJwt,
    /// An opaque access token confirmed by RFC 7662 introspection.
    BearerIntrospected,
    /// A client certificate verified during the TLS handshake.
    MutualTls,
    /// An access token bound to the client certificate (RFC 8705).
    CertificateBoundToken,
    /// An identity configured for a local transport (stdio).
    Local,
    /// No authentication; only possible where the policy allows it.
    Anonymous,
}

/// An authenticated caller.
///
/// `scopes` are raw OAuth scope strings as granted; the policy engine decides
/// which of them are ETDI permissions. `roles` come from claims mapped by
/// etdi-auth or from static assignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Subject (`sub`, certificate identity, or configured local name).
    pub subject: String,
    /// Token issuer (`iss`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OAuth client id (`client_id` or `azp`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Granted OAuth scopes.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub scopes: BTreeSet<String>,
    /// Roles.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub roles: BTreeSet<String>,
    /// How the identity was established.
    pub auth_method: AuthMethod,
}

impl Principal {
    /// A principal with no scopes or roles.
    pub fn new(subject: impl Into<String>, auth_method: AuthMethod) -> Self {
        Principal {
            subject: subject.into(),
            issuer: None,
            client_id: None,
            scopes: BTreeSet::new(),
            roles: BTreeSet::new(),
            auth_method,
        }
    }

    /// Adds scopes (builder style).
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Adds roles (builder style).
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }
}
