//! Signed call-chain hops (docs/PROTOCOL.md §7): when a tool on server A
//! calls a tool on server B, A appends a hop of type `etdi-hop+jwt` naming
//! itself, the calling tool, the principal and that principal's scope, and
//! links it to the previous hop by digest.
//!
//! [`ChainVerifier::verify`] checks every hop's signature against the keys
//! trusted for its `iss`, the `idx` sequence, the `prev` links, that each
//! hop's `aud` is the next hop's server and the last one's is this server,
//! and each hop's freshness. It yields the [`CallChain`] (whose digest a
//! request signature binds) and the per-hop scopes the policy engine
//! intersects. The chain rules themselves (depth, cycles, callers/callees,
//! rights) are the policy engine's.
//!
//! Replay: earlier hops are re-sent, legitimately, with every onward call a
//! server makes, so only the **last** hop (the one addressed to this server)
//! is recorded in the nonce store.

use std::collections::BTreeSet;

use etdi_core::{CallChain, Digest, Hop, ServerId, ToolId};
use serde::{Deserialize, Serialize};

use crate::alg::Algorithm;
use crate::claims::{
    DEFAULT_LIFETIME_SECS, ETDI_VER, Freshness, FreshnessError, MAX_LIFETIME_SECS, is_valid_jti,
    new_jti,
};
use crate::clock::UnixTime;
use crate::error::JwsError;
use crate::jws::{JwsHeader, Validation};
use crate::key::{KeyId, SigningKey};
use crate::provider::CryptoProvider;
use crate::replay::{MemoryNonceStore, NonceStore, ReplayError};
use crate::token::{self, JwsClass, PeekError, SignError};
use crate::trust::IssuerKeys;

/// The JWS `typ` of a hop.
pub const HOP_TYP: &str = "etdi-hop+jwt";
/// Most hops a chain may have (the protocol's hard cap).
pub const MAX_HOPS: usize = etdi_core::tool::MAX_CALL_DEPTH as usize;

/// The claims set of one hop (§7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopClaims {
    /// Protocol version, `1`.
    pub etdi_ver: u64,
    /// 0-based position in the chain.
    pub idx: u64,
    /// The signing server's id.
    pub iss: String,
    /// Server id of this hop; equals `iss`.
    pub server: String,
    /// The tool making the onward call.
    pub tool: String,
    /// Subject of the principal the tool runs for.
    pub principal: String,
    /// That principal's permissions here, space-separated.
    pub scope: String,
    /// The server called next.
    pub aud: String,
    /// Digest of the previous hop's JWS text; absent for `idx` 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Digest>,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// Nonce.
    pub jti: String,
}

/// What a server signs when it calls onward.
#[derive(Debug, Clone, Copy)]
pub struct HopToSign<'a> {
    /// The tool (running here) that makes the call.
    pub tool: &'a ToolId,
    /// Subject of the principal it runs for.
    pub principal: &'a str,
    /// The permissions that principal holds here.
    pub scope: &'a BTreeSet<String>,
    /// The server being called (its `audience`).
    pub audience: &'a str,
}

/// Signs hops for one server.
#[derive(Debug, Clone)]
pub struct HopSigner {
    server: ServerId,
    lifetime: u64,
    provider: &'static CryptoProvider,
}

impl HopSigner {
    /// A signer for `server` (this server's id, its `audience`), with the
    /// default 60 s lifetime.
    pub fn new(server: ServerId) -> Self {
        HopSigner {
            server,
            lifetime: DEFAULT_LIFETIME_SECS,
            provider: CryptoProvider::get_default(),
        }
    }

    /// Sets the lifetime `exp - iat`; at most 300 s.
    pub fn with_lifetime(mut self, secs: u64) -> Result<Self, SignError> {
        if secs == 0 || secs > MAX_LIFETIME_SECS {
            return Err(SignError::Invalid(format!(
                "hop lifetime must be 1 to {MAX_LIFETIME_SECS} seconds, got {secs}"
            )));
        }
        self.lifetime = secs;
        Ok(self)
    }

    /// Signs the hop that extends `chain` (the received hop tokens,
    /// outermost first; empty when this server was called directly) and
    /// returns the new token, to be appended to the chain sent onward.
    pub fn append<S: AsRef<str>>(
        &self,
        key: &SigningKey,
        chain: &[S],
        hop: &HopToSign<'_>,
        now: UnixTime,
    ) -> Result<String, SignError> {
        if chain.len() >= MAX_HOPS {
            return Err(SignError::Invalid(format!(
                "a call chain has at most {MAX_HOPS} hops"
            )));
        }
        if let Some(bad) = hop
            .scope
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(SignError::Invalid(format!(
                "scope entry `{bad}` is empty or contains whitespace"
            )));
        }
        let claims = HopClaims {
            etdi_ver: ETDI_VER,
            idx: chain.len() as u64,
            iss: self.server.as_str().to_owned(),
            server: self.server.as_str().to_owned(),
            tool: hop.tool.as_str().to_owned(),
            principal: hop.principal.to_owned(),
            scope: hop
                .scope
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            aud: hop.audience.to_owned(),
            prev: chain.last().map(|t| Digest::of(t.as_ref().as_bytes())),
            iat: now,
            exp: now.plus(self.lifetime),
            jti: new_jti(self.provider)?,
        };
        token::sign_claims(key, HOP_TYP, &claims)
    }
}

/// One verified hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHop {
    /// Server, tool and principal.
    pub hop: Hop,
    /// The principal's permissions at this hop.
    pub scope: BTreeSet<String>,
    /// The server that was called next.
    pub audience: String,
    /// The key that signed.
    pub key_id: KeyId,
    /// The full claims.
    pub claims: HopClaims,
}

/// A chain whose every hop verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifiedChain {
    chain: CallChain,
    hops: Vec<VerifiedHop>,
}

impl VerifiedChain {
    /// The decoded hop list (its digest is what `chain_digest` binds).
    pub fn call_chain(&self) -> &CallChain {
        &self.chain
    }

    /// The hops with their scopes, outermost first.
    pub fn hops(&self) -> &[VerifiedHop] {
        &self.hops
    }

    /// The per-hop scopes, outermost first: the rights the policy engine
    /// intersects.
    pub fn scopes(&self) -> impl Iterator<Item = &BTreeSet<String>> {
        self.hops.iter().map(|h| &h.scope)
    }
}

/// Why a chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// More hops than the protocol allows.
    #[error("call chain has {len} hops, more than {MAX_HOPS}")]
    TooLong {
        /// Hops received.
        len: usize,
    },
    /// One hop is invalid.
    #[error("call-chain hop {index}: {reason}")]
    Hop {
        /// Position of the hop (0-based).
        index: usize,
        /// What is wrong with it.
        reason: HopError,
    },
    /// The nonce store refused the last hop.
    #[error(transparent)]
    Replay(ReplayError),
}

impl ChainError {
    /// The PROTOCOL.md §10 reason code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            ChainError::Replay(ReplayError::Replayed | ReplayError::Stale)
            | ChainError::Hop {
                reason: HopError::Stale(_),
                ..
            } => "replay",
            _ => "invalid_call_chain",
        }
    }
}

/// What is wrong with one hop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HopError {
    /// Not a well-formed hop.
    #[error("malformed: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// No keys are trusted for the hop's `iss`.
    #[error("issuer `{issuer}` is not trusted")]
    UnknownIssuer {
        /// The `iss` claim.
        issuer: String,
    },
    /// No trusted key with this id.
    #[error("no trusted key with id `{kid}`")]
    UnknownKey {
        /// The `kid` header.
        kid: String,
    },
    /// Algorithm refused or not the key's.
    #[error("algorithm `{alg}` is not allowed")]
    AlgorithmNotAllowed {
        /// The `alg` header.
        alg: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Unsupported `etdi_ver`.
    #[error("unsupported etdi_ver {found}")]
    UnsupportedVersion {
        /// The claim.
        found: u64,
    },
    /// `idx` is not the hop's position.
    #[error("idx is {found}, expected {expected}")]
    WrongIndex {
        /// The position.
        expected: usize,
        /// The claim.
        found: u64,
    },
    /// `server` differs from `iss`.
    #[error("server differs from iss")]
    ServerNotIssuer,
    /// `prev` does not link to the previous hop (or is present on hop 0).
    #[error("prev does not link to the previous hop")]
    BrokenLink,
    /// `aud` is not the next hop's server (or, on the last hop, this server).
    #[error("aud `{aud}` is not the server that was called next")]
    WrongAudience {
        /// The claim.
        aud: String,
    },
    /// Outside its time window.
    #[error("not fresh: {0}")]
    Stale(FreshnessError),
}

/// Verifies received call chains for one server.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    self_id: String,
    issuers: IssuerKeys,
    freshness: Freshness,
    validation: Validation,
}

impl ChainVerifier {
    /// A verifier for the server whose id (`audience`) is `self_id`,
    /// trusting the servers in `issuers`.
    pub fn new(self_id: impl Into<String>, issuers: IssuerKeys) -> Self {
        ChainVerifier {
            self_id: self_id.into(),
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

    /// The trusted servers, for updates.
    pub fn issuers_mut(&mut self) -> &mut IssuerKeys {
        &mut self.issuers
    }

    /// Verifies `tokens` (outermost first) at `now`. The last hop's nonce
    /// still has to be recorded through the returned [`PendingChain`].
    pub fn verify<S: AsRef<str>>(
        &self,
        tokens: &[S],
        now: UnixTime,
    ) -> Result<PendingChain, ChainError> {
        if tokens.len() > MAX_HOPS {
            return Err(ChainError::TooLong { len: tokens.len() });
        }
        let mut out = VerifiedChain::default();
        let mut prev_token: Option<&str> = None;
        for (index, t) in tokens.iter().enumerate() {
            let t = t.as_ref();
            let hop = self
                .verify_hop(t, index, prev_token, now)
                .map_err(|reason| ChainError::Hop { index, reason })?;
            // Each hop's `aud` must be the server that signed the next hop.
            if let Some(before) = out.hops.last()
                && before.audience != hop.claims.iss
            {
                return Err(ChainError::Hop {
                    index: index - 1,
                    reason: HopError::WrongAudience {
                        aud: before.audience.clone(),
                    },
                });
            }
            out.chain
                .push(hop.hop.clone())
                .map_err(|_| ChainError::TooLong { len: tokens.len() })?;
            out.hops.push(hop);
            prev_token = Some(t);
        }
        let last = match out.hops.last() {
            Some(h) if h.audience != self.self_id => {
                return Err(ChainError::Hop {
                    index: out.hops.len() - 1,
                    reason: HopError::WrongAudience {
                        aud: h.audience.clone(),
                    },
                });
            }
            Some(h) => Some((
                h.claims.iss.clone(),
                h.claims.jti.clone(),
                self.freshness.keep_until(h.claims.exp),
            )),
            None => None,
        };
        Ok(PendingChain {
            chain: out,
            last,
            now,
        })
    }

    fn verify_hop(
        &self,
        t: &str,
        index: usize,
        prev: Option<&str>,
        now: UnixTime,
    ) -> Result<VerifiedHop, HopError> {
        let (opened, claims): (_, HopClaims) =
            token::open_claims(t, &self.validation).map_err(|e| match e {
                PeekError::Jws(e) => from_jws(e),
                PeekError::Claims(detail) => HopError::Malformed {
                    detail: format!("claims: {detail}"),
                },
            })?;
        let ring = self.issuers.ring(&claims.iss);
        let verified = match ring {
            Some(ring) => opened.verify(&self.validation, &ring.resolver(now)),
            None => opened.verify(&self.validation, &|_: &JwsHeader| None),
        };
        let (_, key) = match (verified, ring) {
            (Ok(v), _) => v,
            (Err(JwsError::UnknownKey { .. }), None) => {
                return Err(HopError::UnknownIssuer { issuer: claims.iss });
            }
            (Err(e), _) => return Err(from_jws(e)),
        };
        if claims.etdi_ver != ETDI_VER {
            return Err(HopError::UnsupportedVersion {
                found: claims.etdi_ver,
            });
        }
        if claims.idx != index as u64 {
            return Err(HopError::WrongIndex {
                expected: index,
                found: claims.idx,
            });
        }
        if claims.server != claims.iss {
            return Err(HopError::ServerNotIssuer);
        }
        let expected_prev = prev.map(|p| Digest::of(p.as_bytes()));
        if claims.prev != expected_prev {
            return Err(HopError::BrokenLink);
        }
        self.freshness
            .check(claims.iat, claims.exp, now)
            .map_err(HopError::Stale)?;
        if !is_valid_jti(&claims.jti) {
            return Err(HopError::Malformed {
                detail: "jti must be 22 to 64 base64url characters".into(),
            });
        }
        let malformed = |what: &str, e: etdi_core::IdError| HopError::Malformed {
            detail: format!("{what}: {e}"),
        };
        let hop = Hop {
            server: ServerId::parse(&claims.server).map_err(|e| malformed("server", e))?,
            tool: ToolId::parse(&claims.tool).map_err(|e| malformed("tool", e))?,
            principal: claims.principal.clone(),
        };
        Ok(VerifiedHop {
            hop,
            scope: claims
                .scope
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect(),
            audience: claims.aud.clone(),
            key_id: key.kid().clone(),
            claims,
        })
    }
}

fn validation(algorithms: impl IntoIterator<Item = Algorithm>) -> Validation {
    Validation::new(algorithms)
        .expect_typ(HOP_TYP)
        .require_kid(true)
}

fn from_jws(e: JwsError) -> HopError {
    match token::classify(e) {
        JwsClass::Algorithm(alg) => HopError::AlgorithmNotAllowed { alg },
        JwsClass::UnknownKey(kid) => HopError::UnknownKey { kid },
        JwsClass::BadSignature => HopError::BadSignature,
        JwsClass::Malformed(detail) => HopError::Malformed { detail },
    }
}

/// A chain that verified, whose last hop's nonce is not recorded yet.
#[derive(Debug)]
#[must_use = "a chain is verified only once its last hop's nonce is recorded"]
pub struct PendingChain {
    chain: VerifiedChain,
    last: Option<(String, String, UnixTime)>,
    now: UnixTime,
}

impl PendingChain {
    /// Records the last hop's nonce in `store`, refusing a replay.
    pub async fn record(self, store: &dyn NonceStore) -> Result<VerifiedChain, ChainError> {
        if let Some((iss, jti, until)) = &self.last {
            store
                .check_and_insert(iss, jti, *until, self.now)
                .await
                .map_err(ChainError::Replay)?;
        }
        Ok(self.chain)
    }

    /// Records the last hop's nonce in an in-memory store, without an
    /// executor.
    pub fn record_in(self, store: &MemoryNonceStore) -> Result<VerifiedChain, ChainError> {
        if let Some((iss, jti, until)) = &self.last {
            store
                .check_and_insert_now(iss, jti, *until, self.now)
                .map_err(ChainError::Replay)?;
        }
        Ok(self.chain)
    }
}
