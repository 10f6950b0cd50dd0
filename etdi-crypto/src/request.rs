//! Signed `tools/call` requests (docs/PROTOCOL.md §6): a compact JWS of type
//! `etdi-req+jwt` in `params._meta["dev.etdi/request-signature"]`, binding
//! the method, tool, canonical arguments, call chain, audience, a short
//! validity window and a `jti` nonce.
//!
//! Verification is two steps, and only the second yields a
//! [`VerifiedRequest`]:
//!
//! 1. [`RequestVerifier::verify`] checks everything that needs no shared
//!    state (signature, claims, freshness) and returns a [`PendingRequest`];
//! 2. [`PendingRequest::record`] (any [`NonceStore`]) or
//!    [`PendingRequest::record_in`] (the in-memory store, no executor needed)
//!    records the nonce, refusing a replay.
//!
//! So a caller cannot forget the replay check and still hold a verified
//! request.
//!
//! ```
//! use etdi_core::CallChain;
//! use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime};
//! use etdi_crypto::replay::MemoryNonceStore;
//! use etdi_crypto::request::{CallToSign, ReceivedCall, RequestSigner, RequestVerifier};
//! use etdi_crypto::trust::IssuerKeys;
//!
//! let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)?;
//! let now = UnixTime::from_secs(1_700_000_000);
//! let args = serde_json::json!({"path": "/tmp/a"});
//! let args = args.as_object();
//! let chain = CallChain::new();
//!
//! // Client side.
//! let token = RequestSigner::new("client-1").sign(&key, &CallToSign {
//!     audience: "https://tools.example.com/mcp",
//!     tool: "read_file",
//!     arguments: args,
//!     chain: &chain,
//! }, now)?;
//!
//! // Server side.
//! let mut issuers = IssuerKeys::new();
//! issuers.add("client-1", key.verifying_key().clone());
//! let verifier = RequestVerifier::new("https://tools.example.com/mcp", issuers);
//! let store = MemoryNonceStore::new(10_000);
//! let call = ReceivedCall::tools_call("read_file", args, &chain);
//! let verified = verifier.verify(&token, &call, now)?.record_in(&store)?;
//! assert_eq!(verified.issuer(), "client-1");
//! // The same token again is a replay.
//! assert!(verifier.verify(&token, &call, now)?.record_in(&store).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::LazyLock;

use etdi_core::{CallChain, Digest, Principal};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::claims::{
    DEFAULT_LIFETIME_SECS, ETDI_VER, Freshness, FreshnessError, MAX_LIFETIME_SECS, is_valid_jti,
    new_jti,
};
use crate::clock::UnixTime;
use crate::jws::{self, Validation};
use crate::key::{KeyId, SigningKey};
use crate::provider::CryptoProvider;
use crate::replay::{MemoryNonceStore, NonceStore, ReplayError};
use crate::token::{self, JwsClass, PeekError, SignError};
use crate::trust::IssuerKeys;

/// The JWS `typ` of a request signature.
pub const REQUEST_TYP: &str = "etdi-req+jwt";
/// The only method ETDI signs in `etdi/1`.
pub const TOOLS_CALL: &str = "tools/call";

/// Digest of `{}`: the arguments digest of a call without arguments.
static EMPTY_ARGS: LazyLock<Digest> = LazyLock::new(|| Digest::of(b"{}"));
/// Digest of `[]`: the chain digest of a direct call.
static EMPTY_CHAIN: LazyLock<Digest> = LazyLock::new(|| Digest::of(b"[]"));

/// §3 digest of `params.arguments` (`{}` when absent).
pub fn args_digest(
    arguments: Option<&Map<String, Value>>,
) -> Result<Digest, etdi_core::CanonicalError> {
    match arguments {
        None => Ok(*EMPTY_ARGS),
        Some(m) if m.is_empty() => Ok(*EMPTY_ARGS),
        Some(m) => etdi_core::Digest::of_object(m),
    }
}

/// §3 digest of the decoded hop list (`[]` for a direct call).
pub fn chain_digest(chain: &CallChain) -> Result<Digest, etdi_core::CanonicalError> {
    if chain.depth() == 0 {
        Ok(*EMPTY_CHAIN)
    } else {
        chain.digest()
    }
}

/// The claims set of a request signature (§6), as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestClaims {
    /// Protocol version, `1`.
    pub etdi_ver: u64,
    /// The signer.
    pub iss: String,
    /// The server's audience.
    pub aud: String,
    /// `tools/call`.
    pub mcp_method: String,
    /// `params.name`.
    pub tool: String,
    /// Digest of the canonical arguments.
    #[serde(deserialize_with = "digest_from_str")]
    pub args_digest: Digest,
    /// Digest of the decoded call chain.
    #[serde(deserialize_with = "digest_from_str")]
    pub chain_digest: Digest,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// Nonce.
    pub jti: String,
}

/// Reads a [`Digest`] from a JSON string through its own `FromStr`, so the
/// same spellings are accepted, but from the borrowed text: every request
/// verification reads two digests, and `Digest`'s `Deserialize` copies each
/// into a `String` first.
fn digest_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    struct DigestVisitor;
    impl serde::de::Visitor<'_> for DigestVisitor {
        type Value = Digest;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(DigestVisitor)
}

/// What a client signs.
#[derive(Debug, Clone, Copy)]
pub struct CallToSign<'a> {
    /// The server's `audience` from its ETDI capability.
    pub audience: &'a str,
    /// `params.name`.
    pub tool: &'a str,
    /// `params.arguments`.
    pub arguments: Option<&'a Map<String, Value>>,
    /// The call chain sent with the call (empty for a direct call).
    pub chain: &'a CallChain,
}

/// Produces request signatures for one issuer.
#[derive(Debug, Clone)]
pub struct RequestSigner {
    issuer: String,
    lifetime: u64,
    provider: &'static CryptoProvider,
}

impl RequestSigner {
    /// A signer for `issuer` (the OAuth client id, or the key owner the
    /// server registered), with the default 60 s lifetime.
    pub fn new(issuer: impl Into<String>) -> Self {
        RequestSigner {
            issuer: issuer.into(),
            lifetime: DEFAULT_LIFETIME_SECS,
            provider: CryptoProvider::get_default(),
        }
    }

    /// Sets the lifetime `exp - iat`; at most 300 s.
    pub fn with_lifetime(mut self, secs: u64) -> Result<Self, SignError> {
        if secs == 0 || secs > MAX_LIFETIME_SECS {
            return Err(SignError::Invalid(format!(
                "request lifetime must be 1 to {MAX_LIFETIME_SECS} seconds, got {secs}"
            )));
        }
        self.lifetime = secs;
        Ok(self)
    }

    /// Draws `jti` nonces from `provider` instead of the process default.
    pub fn with_provider(mut self, provider: &'static CryptoProvider) -> Self {
        self.provider = provider;
        self
    }

    /// The claims this signer would sign for `call` at `now`, with a fresh
    /// `jti`.
    pub fn claims(&self, call: &CallToSign<'_>, now: UnixTime) -> Result<RequestClaims, SignError> {
        Ok(RequestClaims {
            etdi_ver: ETDI_VER,
            iss: self.issuer.clone(),
            aud: call.audience.to_owned(),
            mcp_method: TOOLS_CALL.to_owned(),
            tool: call.tool.to_owned(),
            args_digest: args_digest(call.arguments)?,
            chain_digest: chain_digest(call.chain)?,
            iat: now,
            exp: now.plus(self.lifetime),
            jti: new_jti(self.provider)?,
        })
    }

    /// Signs `call` with `key`, issued at `now`.
    pub fn sign(
        &self,
        key: &SigningKey,
        call: &CallToSign<'_>,
        now: UnixTime,
    ) -> Result<String, SignError> {
        let claims = self.claims(call, now)?;
        token::sign_claims(key, REQUEST_TYP, &claims)
    }
}

/// What the server received, against which the signature is checked.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedCall<'a> {
    /// The JSON-RPC method.
    pub method: &'a str,
    /// `params.name`.
    pub tool: &'a str,
    /// `params.arguments`.
    pub arguments: Option<&'a Map<String, Value>>,
    /// The verified call chain that came with the call (empty if none).
    pub chain: &'a CallChain,
    /// The authenticated caller, if the transport authenticated one.
    pub principal: Option<&'a Principal>,
}

impl<'a> ReceivedCall<'a> {
    /// A `tools/call` without an authenticated principal.
    pub fn tools_call(
        tool: &'a str,
        arguments: Option<&'a Map<String, Value>>,
        chain: &'a CallChain,
    ) -> Self {
        ReceivedCall {
            method: TOOLS_CALL,
            tool,
            arguments,
            chain,
            principal: None,
        }
    }

    /// Sets the authenticated principal.
    #[must_use]
    pub fn with_principal(mut self, principal: &'a Principal) -> Self {
        self.principal = Some(principal);
        self
    }
}

/// Why a request signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a well-formed request signature (JWS format, header, claims).
    #[error("malformed request signature: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// No keys are registered for the signer.
    #[error("no keys are registered for issuer `{issuer}`")]
    UnknownIssuer {
        /// The `iss` claim.
        issuer: String,
    },
    /// The signer has no registered key with this id (or it has expired).
    #[error("no registered key with id `{kid}`")]
    UnknownKey {
        /// The `kid` header.
        kid: String,
    },
    /// The algorithm is refused, not allowed, or not the key's.
    #[error("algorithm `{alg}` is not allowed")]
    AlgorithmNotAllowed {
        /// The `alg` header.
        alg: String,
    },
    /// The signature does not verify.
    #[error("request signature does not verify")]
    BadSignature,
    /// `etdi_ver` is not one this verifier implements.
    #[error("unsupported etdi_ver {found}")]
    UnsupportedVersion {
        /// The claim's value.
        found: u64,
    },
    /// `aud` is not this server.
    #[error("request was signed for another audience")]
    WrongAudience,
    /// A signed claim disagrees with what was received.
    #[error("signed `{claim}` does not match the request")]
    Mismatch {
        /// The claim.
        claim: &'static str,
    },
    /// `iat`, `exp` or the lifetime is out of bounds.
    #[error("request signature is not fresh: {0}")]
    Stale(FreshnessError),
    /// The signer is not the authenticated caller.
    #[error("request signed by `{issuer}`, which is not the authenticated caller")]
    IssuerNotCaller {
        /// The `iss` claim.
        issuer: String,
    },
    /// The nonce store refused the request (replayed, store full or down).
    #[error(transparent)]
    Replay(ReplayError),
}

impl RequestError {
    /// The PROTOCOL.md §10 reason code: `replay` for a replayed or stale
    /// request, `invalid_request_signature` otherwise.
    pub fn reason_code(&self) -> &'static str {
        match self {
            RequestError::Replay(ReplayError::Replayed | ReplayError::Stale)
            | RequestError::Stale(_) => "replay",
            _ => "invalid_request_signature",
        }
    }
}

/// Verifies request signatures for one server (one audience).
#[derive(Debug, Clone)]
pub struct RequestVerifier {
    audience: String,
    issuers: IssuerKeys,
    freshness: Freshness,
    validation: Validation,
}

impl RequestVerifier {
    /// A verifier for `audience`, trusting `issuers`, accepting every
    /// algorithm ETDI supports, with the default freshness window.
    pub fn new(audience: impl Into<String>, issuers: IssuerKeys) -> Self {
        RequestVerifier {
            audience: audience.into(),
            issuers,
            freshness: Freshness::default(),
            validation: validation(Algorithm::ALL),
        }
    }

    /// Restricts the accepted algorithms.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.validation = validation(algorithms);
        self
    }

    /// Sets the clock skew and lifetime bounds.
    #[must_use]
    pub fn with_freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The freshness window in force (size nonce stores with
    /// [`Freshness::replay_window_secs`]).
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// The registered keys, for updates (key registration, rotation).
    pub fn issuers_mut(&mut self) -> &mut IssuerKeys {
        &mut self.issuers
    }

    /// Checks `token` against `call` at `now`: everything except the nonce.
    pub fn verify(
        &self,
        token: &str,
        call: &ReceivedCall<'_>,
        now: UnixTime,
    ) -> Result<PendingRequest, RequestError> {
        let (opened, claims): (_, RequestClaims) = token::open_claims(token, &self.validation)
            .map_err(|e| match e {
                PeekError::Jws(e) => from_jws(e),
                PeekError::Claims(detail) => RequestError::Malformed {
                    detail: format!("claims: {detail}"),
                },
            })?;
        let ring = self.issuers.ring(&claims.iss);
        let verified = match ring {
            Some(ring) => opened.verify(&self.validation, &ring.resolver(now)),
            // Run the header checks anyway so that a malformed header is
            // reported as such, then report the issuer.
            None => opened.verify(&self.validation, &|_: &jws::JwsHeader| None),
        };
        let (header, key) = match (verified, ring) {
            (Ok(v), _) => v,
            (Err(crate::error::JwsError::UnknownKey { .. }), None) => {
                return Err(RequestError::UnknownIssuer { issuer: claims.iss });
            }
            (Err(e), _) => return Err(from_jws(e)),
        };
        if claims.etdi_ver != ETDI_VER {
            return Err(RequestError::UnsupportedVersion {
                found: claims.etdi_ver,
            });
        }
        if claims.aud != self.audience {
            return Err(RequestError::WrongAudience);
        }
        if claims.mcp_method != call.method {
            return Err(RequestError::Mismatch {
                claim: "mcp_method",
            });
        }
        if claims.tool != call.tool {
            return Err(RequestError::Mismatch { claim: "tool" });
        }
        let args = args_digest(call.arguments).map_err(|e| RequestError::Malformed {
            detail: e.to_string(),
        })?;
        if claims.args_digest != args {
            return Err(RequestError::Mismatch {
                claim: "args_digest",
            });
        }
        let chain = chain_digest(call.chain).map_err(|e| RequestError::Malformed {
            detail: e.to_string(),
        })?;
        if claims.chain_digest != chain {
            return Err(RequestError::Mismatch {
                claim: "chain_digest",
            });
        }
        self.freshness
            .check(claims.iat, claims.exp, now)
            .map_err(RequestError::Stale)?;
        if !is_valid_jti(&claims.jti) {
            return Err(RequestError::Malformed {
                detail: "jti must be 22 to 64 base64url characters".into(),
            });
        }
        if let Some(p) = call.principal {
            let matches =
                p.client_id.as_deref() == Some(claims.iss.as_str()) || p.subject == claims.iss;
            if !matches {
                return Err(RequestError::IssuerNotCaller { issuer: claims.iss });
            }
        }
        Ok(PendingRequest {
            keep_until: self.freshness.keep_until(claims.exp),
            now,
            request: VerifiedRequest {
                key_id: key.kid().clone(),
                algorithm: header.alg(),
                claims,
            },
        })
    }
}

fn validation(algorithms: impl IntoIterator<Item = Algorithm>) -> Validation {
    Validation::new(algorithms)
        .expect_typ(REQUEST_TYP)
        .require_kid(true)
}

fn from_jws(e: crate::error::JwsError) -> RequestError {
    match token::classify(e) {
        JwsClass::Algorithm(alg) => RequestError::AlgorithmNotAllowed { alg },
        JwsClass::UnknownKey(kid) => RequestError::UnknownKey { kid },
        JwsClass::BadSignature => RequestError::BadSignature,
        JwsClass::Malformed(detail) => RequestError::Malformed { detail },
    }
}

/// A request whose signature and claims verified, but whose nonce has not
/// been recorded yet. It yields a [`VerifiedRequest`] only through a nonce
/// store.
#[derive(Debug)]
#[must_use = "a request is verified only once its nonce is recorded"]
pub struct PendingRequest {
    request: VerifiedRequest,
    keep_until: UnixTime,
    now: UnixTime,
}

impl PendingRequest {
    /// Records the nonce in `store` (shared stores: async), refusing replays.
    pub async fn record(self, store: &dyn NonceStore) -> Result<VerifiedRequest, RequestError> {
        let c = &self.request.claims;
        store
            .check_and_insert(&c.iss, &c.jti, self.keep_until, self.now)
            .await
            .map_err(RequestError::Replay)?;
        Ok(self.request)
    }

    /// Records the nonce in an in-memory store, without an executor.
    pub fn record_in(self, store: &MemoryNonceStore) -> Result<VerifiedRequest, RequestError> {
        let c = &self.request.claims;
        store
            .check_and_insert_now(&c.iss, &c.jti, self.keep_until, self.now)
            .map_err(RequestError::Replay)?;
        Ok(self.request)
    }
}

/// A request signature that verified and whose nonce was fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    claims: RequestClaims,
    key_id: KeyId,
    algorithm: Algorithm,
}

impl VerifiedRequest {
    /// The signer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.claims.iss
    }

    /// The key that signed.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The algorithm it was signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The nonce.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// All verified claims.
    pub fn claims(&self) -> &RequestClaims {
        &self.claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two components could read a claims set with a repeated member
    /// differently (first or last wins), so one is refused even when the
    /// signature is good, whichever value would be read.
    #[test]
    fn repeated_claims_are_refused() {
        let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let chain = CallChain::new();
        let call = CallToSign {
            audience: "aud",
            tool: "t",
            arguments: None,
            chain: &chain,
        };
        let signer = RequestSigner::new("client-1");
        let mut issuers = IssuerKeys::new();
        issuers.add("client-1", key.verifying_key().clone());
        let verifier = RequestVerifier::new("aud", issuers);
        let received = ReceivedCall::tools_call("t", None, &chain);
        let sign_with = |extra: &str| {
            let claims = signer.claims(&call, now).unwrap();
            let mut json = serde_json::to_string(&claims).unwrap();
            json.pop();
            json.push_str(extra);
            json.push('}');
            let header = jws::JwsHeader::for_key(&key).with_typ(REQUEST_TYP);
            jws::sign(&key, &header, json.as_bytes()).unwrap()
        };
        // The same construction without a repeat verifies.
        assert!(verifier.verify(&sign_with(""), &received, now).is_ok());
        for extra in [
            r#","aud":"other""#,
            r#","aud":"aud""#,
            r#","jti":"AAAAAAAAAAAAAAAAAAAAAA""#,
        ] {
            assert!(
                matches!(
                    verifier.verify(&sign_with(extra), &received, now),
                    Err(RequestError::Malformed { .. })
                ),
                "{extra}"
            );
        }
    }
}
