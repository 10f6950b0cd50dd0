//! Errors: why a token, a key set, a certificate or a token request was refused.
//!
//! Messages name the claim, header, issuer or key id at fault so an operator can
//! act on them, but never include a token, a secret or a signature. Values that
//! come from the token itself (an `iss`, a `kid`) are passed through [`shown`]
//! first: truncated and stripped of control characters, so a hostile token
//! cannot flood or forge log lines.

use std::fmt;

use etdi_crypto::{AlgorithmError, JwsError, JwsPart};

/// Why an access token was refused.
///
/// Every variant maps to HTTP `401` with `error="invalid_token"` (RFC 6750) except
/// where [`TokenError::is_unavailable`] says the failure was ours (the IdP could
/// not be reached), which a server may report as `503` instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than the configured limit.
    #[error("token is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the refused token.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(Malformed),
    /// The header's `alg` is one this crate never accepts (`none`, `HS*`) or
    /// does not know.
    #[error("algorithm `{alg}` is not supported")]
    UnsupportedAlgorithm {
        /// The refused algorithm, as the header named it.
        alg: String,
    },
    /// The algorithm is supported but not in the issuer's allow-list.
    #[error("algorithm `{alg}` is not allowed for issuer `{issuer}`")]
    AlgorithmNotAllowed {
        /// The refused algorithm.
        alg: String,
        /// The issuer whose allow-list refused it.
        issuer: String,
    },
    /// The header names a `crit` extension; this verifier implements none.
    /// RFC 7797 `b64` is reported here too, even outside `crit`.
    #[error("critical header extension `{name}` is not understood")]
    UnsupportedCritical {
        /// The first name listed in `crit`.
        name: String,
    },
    /// The header carries a key or a key location (`jwk`, `jku`, `x5u`,
    /// `x5c`). Keys come only from the issuer's JWKS, so such a token is
    /// refused before any key is looked up; nothing it names is fetched.
    #[error("header member `{name}` is not accepted: keys come only from the issuer")]
    ForbiddenHeader {
        /// The member name.
        name: &'static str,
    },
    /// RFC 9068 `typ: at+jwt` is required for this issuer and was absent or
    /// different.
    #[error("token type `{typ}` is not `at+jwt`")]
    WrongType {
        /// The `typ` found (empty when absent).
        typ: String,
    },
    /// The issuer has no key with the token's `kid` (even after a refresh, or a
    /// refresh was not allowed yet because of the cooldown).
    #[error("issuer `{issuer}` has no key `{kid}`")]
    UnknownKey {
        /// The issuer.
        issuer: String,
        /// The key id from the header (empty when absent).
        kid: String,
    },
    /// The key found by `kid` cannot verify this algorithm (type, curve, size or
    /// the key's own `alg` differ).
    #[error("key `{kid}` of issuer `{issuer}` cannot be used with `{alg}`")]
    KeyMismatch {
        /// The issuer.
        issuer: String,
        /// The key id.
        kid: String,
        /// The algorithm the header asked for.
        alg: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify against the keys of issuer `{issuer}`")]
    BadSignature {
        /// The issuer.
        issuer: String,
    },
    /// `iss` is not a configured issuer.
    #[error("issuer `{iss}` is not trusted")]
    UntrustedIssuer {
        /// The token's `iss`.
        iss: String,
    },
    /// A required claim is absent.
    #[error("claim `{claim}` is missing")]
    MissingClaim {
        /// The claim name.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type or an impossible value.
    #[error("claim `{claim}` is invalid: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `exp` has passed (beyond the leeway).
    #[error("token expired at {exp} (now {now}, leeway {leeway}s)")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's clock.
        now: u64,
        /// The leeway in force.
        leeway: u64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not valid before {nbf} (now {now}, leeway {leeway}s)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
        /// The verifier's clock.
        now: u64,
        /// The leeway in force.
        leeway: u64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future at {iat} (now {now}, leeway {leeway}s)")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's clock.
        now: u64,
        /// The leeway in force.
        leeway: u64,
    },
    /// `aud` does not name this resource (and no fallback applied).
    #[error("audience {found} does not include this resource ({expected}) for issuer `{issuer}`")]
    WrongAudience {
        /// The issuer.
        issuer: String,
        /// The audiences the token named (shown, truncated), or `none`.
        found: String,
        /// The audiences this verifier accepts.
        expected: String,
    },
    /// The token is bound to a client certificate (RFC 8705 `cnf.x5t#S256`)
    /// and no certificate, or a different one, was presented.
    #[error("certificate-bound token: {0}")]
    CertificateBinding(BindingFailure),
    /// Introspection (RFC 7662) said the token is not active.
    #[error("token is not active (introspection at issuer `{issuer}`)")]
    Inactive {
        /// The issuer whose introspection endpoint answered.
        issuer: String,
    },
    /// The keys or the introspection endpoint of the issuer could not be
    /// reached or understood; the token was not judged.
    #[error("issuer `{issuer}` is unavailable: {source}")]
    Unavailable {
        /// The issuer.
        issuer: String,
        /// What failed.
        source: FetchError,
    },
}

impl TokenError {
    /// True when the failure is on our side or the IdP's (keys or
    /// introspection unreachable), not a judgement on the token.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::Unavailable { .. })
    }

    /// A short, stable reason for `error_description` in `WWW-Authenticate`.
    ///
    /// Only fixed text: nothing from the token is echoed to the client.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::TooLarge { .. } => "token too large",
            TokenError::Malformed(_) => "malformed token",
            TokenError::UnsupportedAlgorithm { .. } | TokenError::AlgorithmNotAllowed { .. } => {
                "algorithm not allowed"
            }
            TokenError::UnsupportedCritical { .. } => "unsupported critical header",
            TokenError::ForbiddenHeader { .. } => "token-supplied key refused",
            TokenError::WrongType { .. } => "wrong token type",
            TokenError::UnknownKey { .. } | TokenError::KeyMismatch { .. } => "unknown signing key",
            TokenError::BadSignature { .. } => "invalid signature",
            TokenError::UntrustedIssuer { .. } => "untrusted issuer",
            TokenError::MissingClaim { .. } | TokenError::InvalidClaim { .. } => "invalid claims",
            TokenError::Expired { .. } => "token expired",
            TokenError::NotYetValid { .. } | TokenError::IssuedInFuture { .. } => {
                "token not yet valid"
            }
            TokenError::WrongAudience { .. } => "wrong audience",
            TokenError::CertificateBinding(_) => "certificate binding mismatch",
            TokenError::Inactive { .. } => "token not active",
            TokenError::Unavailable { .. } => "authorization server unavailable",
        }
    }
}

impl TokenError {
    /// Maps an `etdi_crypto` JWS error onto the precise reason a resource
    /// server reports. `issuer` is the issuer whose keys were in use.
    pub(crate) fn from_jws(error: JwsError, issuer: &str) -> Self {
        match error {
            JwsError::TooLarge { size, limit } => TokenError::TooLarge { size, limit },
            JwsError::NotCompact { .. } | JwsError::DetachedMismatch { .. } => {
                TokenError::Malformed(Malformed::Segments)
            }
            JwsError::Base64 { part } => TokenError::Malformed(Malformed::Base64(part.into())),
            JwsError::HeaderJson { .. } => TokenError::Malformed(Malformed::Json(Part::Header)),
            JwsError::HeaderMember { name, .. } => {
                TokenError::Malformed(Malformed::Header(header_name(&name)))
            }
            JwsError::Algorithm(e) => TokenError::UnsupportedAlgorithm {
                alg: match e {
                    AlgorithmError::None => "none".to_owned(),
                    AlgorithmError::Symmetric { name } | AlgorithmError::Unsupported { name } => {
                        shown(&name)
                    }
                    _ => String::new(),
                },
            },
            JwsError::AlgorithmNotAllowed { alg } => TokenError::AlgorithmNotAllowed {
                alg: alg.to_string(),
                issuer: issuer.to_owned(),
            },
            JwsError::UnexpectedType { found, .. } => TokenError::WrongType {
                typ: shown(found.as_deref().unwrap_or("")),
            },
            JwsError::UnsupportedCritical { name } => {
                TokenError::UnsupportedCritical { name: shown(&name) }
            }
            // RFC 7797 (`b64`) is a `crit` extension this verifier does not
            // implement; the others are keys carried by the token.
            JwsError::ForbiddenHeader { name: "b64" } => TokenError::UnsupportedCritical {
                name: "b64".to_owned(),
            },
            JwsError::ForbiddenHeader { name } => TokenError::ForbiddenHeader { name },
            JwsError::MissingKeyId | JwsError::UnknownKey { .. } => TokenError::UnknownKey {
                issuer: issuer.to_owned(),
                kid: String::new(),
            },
            JwsError::KeyAlgorithmMismatch { header, .. } => TokenError::KeyMismatch {
                issuer: issuer.to_owned(),
                kid: String::new(),
                alg: header.to_string(),
            },
            // A failed signature check, and anything else (signing-side
            // variants cannot occur when verifying): the token is refused as
            // unverifiable, never accepted.
            _ => TokenError::BadSignature {
                issuer: issuer.to_owned(),
            },
        }
    }
}

/// The `&'static` name of a header member for [`Malformed::Header`].
fn header_name(name: &str) -> &'static str {
    match name {
        "alg" => "alg",
        "kid" => "kid",
        "typ" => "typ",
        "cty" => "cty",
        "crit" => "crit",
        _ => "header",
    }
}

impl From<JwsPart> for Part {
    fn from(part: JwsPart) -> Self {
        match part {
            JwsPart::Header => Part::Header,
            JwsPart::Payload => Part::Payload,
            JwsPart::Signature => Part::Signature,
        }
    }
}

/// How a compact JWS was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// Not three non-empty dot-separated segments (JWE has five: refused).
    Segments,
    /// A segment is not unpadded base64url.
    Base64(Part),
    /// A segment is not a JSON object, or repeats a member.
    Json(Part),
    /// A header member has the wrong type or value (`alg`, `kid`, `typ`,
    /// `cty`, `crit`; `header` for a custom member).
    Header(&'static str),
}

/// A part of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The protected header.
    Header,
    /// The claims set.
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Segments => f.write_str("not three base64url segments"),
            Malformed::Base64(part) => write!(f, "{part} is not base64url without padding"),
            Malformed::Json(part) => {
                write!(f, "{part} is not a JSON object without duplicate members")
            }
            Malformed::Header(member) => write!(f, "header member `{member}` has the wrong type"),
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// Why an RFC 8705 certificate binding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingFailure {
    /// The token is bound but no client certificate was presented.
    NoCertificate,
    /// The presented certificate's SHA-256 thumbprint differs from `cnf.x5t#S256`.
    Mismatch,
    /// The verifier requires bound tokens and this one has no `cnf.x5t#S256`.
    NotBound,
    /// `cnf` or `cnf.x5t#S256` has the wrong type.
    Invalid,
}

impl fmt::Display for BindingFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingFailure::NoCertificate => "no client certificate was presented",
            BindingFailure::Mismatch => {
                "the client certificate is not the one the token is bound to"
            }
            BindingFailure::NotBound => "the token is not bound to a certificate",
            BindingFailure::Invalid => "`cnf.x5t#S256` is malformed",
        })
    }
}

/// Why a document could not be fetched from an authorization server
/// (discovery metadata, JWKS, introspection, token endpoint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connection, TLS or timeout failure.
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What failed (from the HTTP client; never contains request bodies).
        reason: String,
    },
    /// The server answered with a non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The response is larger than the limit.
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit in force.
        limit: usize,
    },
    /// The response is not the JSON document expected.
    #[error("response from {url} is invalid: {reason}")]
    Invalid {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A refresh was refused locally because the last attempt was too recent
    /// (unknown-`kid` cooldown or back-off after a failure).
    #[error("refresh of {url} suppressed until the cooldown ends")]
    Cooldown {
        /// The URL that would have been fetched.
        url: String,
    },
}

/// A configuration that cannot work, reported by `build()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Shows an untrusted string in an error: at most 80 characters, control
/// characters replaced, so logs stay one line and bounded.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = value
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_truncates_and_strips_controls() {
        assert_eq!(shown("a\nb"), "a?b");
        let long = "x".repeat(200);
        assert_eq!(shown(&long).chars().count(), 81);
    }

    #[test]
    fn jws_errors_map_to_precise_reasons() {
        let map = |e| TokenError::from_jws(e, "https://i");
        assert_eq!(
            map(JwsError::ForbiddenHeader { name: "jku" }),
            TokenError::ForbiddenHeader { name: "jku" }
        );
        assert_eq!(
            map(JwsError::ForbiddenHeader { name: "b64" }),
            TokenError::UnsupportedCritical { name: "b64".into() }
        );
        assert_eq!(
            map(JwsError::HeaderMember {
                name: "crit".into(),
                problem: "must not be empty"
            }),
            TokenError::Malformed(Malformed::Header("crit"))
        );
        assert_eq!(
            map(JwsError::HeaderMember {
                name: "custom".into(),
                problem: "x"
            }),
            TokenError::Malformed(Malformed::Header("header"))
        );
        assert_eq!(
            map(JwsError::Base64 {
                part: JwsPart::Signature
            }),
            TokenError::Malformed(Malformed::Base64(Part::Signature))
        );
        assert_eq!(
            map(JwsError::Algorithm(AlgorithmError::None)),
            TokenError::UnsupportedAlgorithm { alg: "none".into() }
        );
        assert_eq!(
            map(JwsError::BadSignature(etdi_crypto::BadSignature)),
            TokenError::BadSignature {
                issuer: "https://i".into()
            }
        );
    }

    #[test]
    fn descriptions_never_echo_input() {
        let e = TokenError::UntrustedIssuer {
            iss: "https://evil.example".into(),
        };
        assert!(!e.description().contains("evil"));
        assert!(e.to_string().contains("evil.example"));
    }
}
