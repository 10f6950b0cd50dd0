//! Tool attestations (docs/PROTOCOL.md §5): a compact JWS of type
//! `etdi-tool+jwt` by which an issuer vouches for one exact tool definition,
//! bound by its §3 digest.
//!
//! Verification recomputes the digest from the definition **as advertised**
//! and follows §5.2 step by step; the first failing step decides the
//! [`VerificationFailure`] reported.
//!
//! ```
//! use etdi_core::{ToolDefinition, VerificationStatus};
//! use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime};
//! use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
//! use etdi_crypto::trust::KeyRing;
//!
//! let def = ToolDefinition::from_json(r#"{
//!     "id": "com.example.files/read", "name": "read_file", "version": "1.0.0",
//!     "provider": {"id": "com.example", "name": "Example"},
//!     "inputSchema": {"type": "object"}, "permissions": ["file:read"]
//! }"#)?;
//! let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)?;
//! let now = UnixTime::from_secs(1_700_000_000);
//! let token = AttestationSigner::new("com.example").sign(&key, &def, now)?;
//!
//! let mut verifier = AttestationVerifier::new();
//! verifier.trust_issuer(
//!     "com.example",
//!     [key.verifying_key().clone()].into_iter().collect::<KeyRing>(),
//!     ProviderScope::only(["com.example"])?,
//! );
//! assert!(verifier.verify(&token, &def, now).is_verified());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

use etdi_core::{
    Digest, IdError, ProviderId, ToolDefinition, ToolId, ToolVersion, VerificationFailure,
    VerificationStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::advertised::{self, AdvertisedError};
use crate::alg::Algorithm;
use crate::claims::{DEFAULT_SKEW_SECS, ETDI_VER, new_jti};
use crate::clock::UnixTime;
use crate::error::JwsError;
use crate::jws::{JwsHeader, Validation};
use crate::key::{KeyId, SigningKey};
use crate::provider::CryptoProvider;
use crate::token::{self, JwsClass, PeekError, SignError};
use crate::trust::KeyRing;

/// The JWS `typ` of an attestation.
pub const ATTESTATION_TYP: &str = "etdi-tool+jwt";
/// `typ` values an OAuth authorization server may use instead (§5.3).
const OAUTH_TYPS: [&str; 2] = ["at+jwt", "JWT"];

/// The claims set of an attestation (§5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationClaims {
    /// Protocol version, `1`.
    pub etdi_ver: u64,
    /// The attesting issuer.
    pub iss: String,
    /// The tool id.
    pub sub: String,
    /// The tool name.
    pub tool_name: String,
    /// The tool version.
    pub tool_version: String,
    /// §3 digest of the definition. Required; optional here only so that an
    /// IdP token without it is reported as `claim_mismatch (tool_digest)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_digest: Option<String>,
    /// The provider id.
    pub provider: String,
    /// The definition's permissions, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// OAuth-issued attestations may carry the permissions space-separated
    /// here instead (§5.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Issued at.
    pub iat: UnixTime,
    /// Optional expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<UnixTime>,
    /// Optional unique id, for revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Produces attestations for one issuer.
#[derive(Debug, Clone)]
pub struct AttestationSigner {
    issuer: String,
    validity: Option<u64>,
    with_jti: bool,
    provider: &'static CryptoProvider,
}

impl AttestationSigner {
    /// A signer for `issuer` (the provider id or URL, or its OAuth server).
    /// Attestations carry a random `jti` and no expiry by default.
    pub fn new(issuer: impl Into<String>) -> Self {
        AttestationSigner {
            issuer: issuer.into(),
            validity: None,
            with_jti: true,
            provider: CryptoProvider::get_default(),
        }
    }

    /// Makes attestations expire `secs` after issue.
    #[must_use]
    pub fn with_validity(mut self, secs: u64) -> Self {
        self.validity = Some(secs);
        self
    }

    /// Whether to add a random `jti` (on by default; needed to revoke one
    /// attestation without revoking the version or the key).
    #[must_use]
    pub fn with_jti(mut self, on: bool) -> Self {
        self.with_jti = on;
        self
    }

    /// The claims for `def` at `now`.
    pub fn claims(
        &self,
        def: &ToolDefinition,
        now: UnixTime,
    ) -> Result<AttestationClaims, SignError> {
        Ok(AttestationClaims {
            etdi_ver: ETDI_VER,
            iss: self.issuer.clone(),
            sub: def.id.as_str().to_owned(),
            tool_name: def.name.as_str().to_owned(),
            tool_version: def.version.to_string(),
            tool_digest: Some(def.digest()?.to_string()),
            provider: def.provider.id.as_str().to_owned(),
            permissions: Some(
                def.permissions
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
            ),
            scope: None,
            iat: now,
            exp: self.validity.map(|v| now.plus(v)),
            jti: if self.with_jti {
                Some(new_jti(self.provider)?)
            } else {
                None
            },
        })
    }

    /// Signs an attestation of `def` with `key`, issued at `now`.
    pub fn sign(
        &self,
        key: &SigningKey,
        def: &ToolDefinition,
        now: UnixTime,
    ) -> Result<String, SignError> {
        token::sign_claims(key, ATTESTATION_TYP, &self.claims(def, now)?)
    }
}

/// Which providers an issuer may attest for (§5.2 step 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderScope {
    /// Any provider: for a registry or marketplace that vouches for others.
    Any,
    /// Only these provider ids.
    Only(BTreeSet<ProviderId>),
}

impl ProviderScope {
    /// Only the given provider ids.
    pub fn only<I, S>(ids: I) -> Result<Self, IdError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ids.into_iter()
            .map(|s| ProviderId::parse(s.as_ref()))
            .collect::<Result<_, _>>()
            .map(ProviderScope::Only)
    }

    fn allows(&self, provider: &ProviderId) -> bool {
        match self {
            ProviderScope::Any => true,
            ProviderScope::Only(set) => set.contains(provider),
        }
    }
}

/// Revoked keys, tool versions and attestation ids.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    keys: HashSet<String>,
    versions: HashSet<(ToolId, ToolVersion)>,
    jtis: HashSet<String>,
}

impl Revocations {
    /// Nothing revoked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes a key by `kid`: nothing it signed verifies any more.
    pub fn revoke_key(&mut self, kid: impl Into<String>) {
        self.keys.insert(kid.into());
    }

    /// Revokes one version of a tool, whoever attested it.
    pub fn revoke_version(&mut self, tool: ToolId, version: ToolVersion) {
        self.versions.insert((tool, version));
    }

    /// Revokes one attestation by its `jti`.
    pub fn revoke_jti(&mut self, jti: impl Into<String>) {
        self.jtis.insert(jti.into());
    }

    /// Whether the key is revoked.
    pub fn is_key_revoked(&self, kid: &str) -> bool {
        self.keys.contains(kid)
    }
}

#[derive(Debug, Clone)]
struct TrustedIssuer {
    keys: KeyRing,
    providers: ProviderScope,
}

/// What a verified attestation said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    /// The verified claims.
    pub claims: AttestationClaims,
    /// The key that signed.
    pub key_id: KeyId,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The definition digest (recomputed, and equal to the signed one).
    pub digest: Digest,
}

/// A definition together with its §3 digest, computed once when the
/// definition is received. The digest can only come from the definition
/// itself, so it cannot disagree with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestedDefinition {
    def: ToolDefinition,
    digest: Digest,
}

impl DigestedDefinition {
    /// Computes the digest of `def`.
    pub fn new(def: ToolDefinition) -> Result<Self, etdi_core::CanonicalError> {
        let digest = def.digest()?;
        Ok(DigestedDefinition { def, digest })
    }

    /// The definition.
    pub fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    /// Its §3 digest (the value to pin and approve).
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Takes the definition back.
    pub fn into_definition(self) -> ToolDefinition {
        self.def
    }
}

/// Verifies attestations against trusted issuers and a revocation list.
#[derive(Debug, Clone)]
pub struct AttestationVerifier {
    issuers: HashMap<String, TrustedIssuer>,
    revocations: Revocations,
    validation: Validation,
    algorithms: Vec<Algorithm>,
    accept_oauth: bool,
    skew: u64,
}

impl Default for AttestationVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl AttestationVerifier {
    /// Trusts no issuer, accepts every algorithm ETDI supports, 30 s skew,
    /// only `typ: etdi-tool+jwt`.
    pub fn new() -> Self {
        AttestationVerifier {
            issuers: HashMap::new(),
            revocations: Revocations::new(),
            validation: validation(Algorithm::ALL, false),
            algorithms: Algorithm::ALL.to_vec(),
            accept_oauth: false,
            skew: DEFAULT_SKEW_SECS,
        }
    }

    /// Trusts `issuer`'s `keys` for the providers in `providers`, replacing
    /// any earlier trust in `issuer`.
    pub fn trust_issuer(
        &mut self,
        issuer: impl Into<String>,
        keys: KeyRing,
        providers: ProviderScope,
    ) {
        self.issuers
            .insert(issuer.into(), TrustedIssuer { keys, providers });
    }

    /// Stops trusting `issuer`.
    pub fn distrust_issuer(&mut self, issuer: &str) {
        self.issuers.remove(issuer);
    }

    /// The revocation list, for updates.
    pub fn revocations_mut(&mut self) -> &mut Revocations {
        &mut self.revocations
    }

    /// Restricts the accepted algorithms.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self.validation = validation(self.algorithms.iter().copied(), self.accept_oauth);
        self
    }

    /// Sets the tolerated clock skew for `iat` and `exp`.
    #[must_use]
    pub fn with_skew(mut self, secs: u64) -> Self {
        self.skew = secs;
        self
    }

    /// Also accepts attestations issued by an OAuth server (§5.3): `typ`
    /// `at+jwt` or `JWT`, and `scope` instead of `permissions`.
    #[must_use]
    pub fn accept_oauth_attestations(mut self, on: bool) -> Self {
        self.accept_oauth = on;
        self.validation = validation(self.algorithms.iter().copied(), on);
        self
    }

    /// Verifies `token` for the definition `def` as advertised.
    pub fn verify(&self, token: &str, def: &ToolDefinition, now: UnixTime) -> VerificationStatus {
        match self.verify_detailed(token, def, now) {
            Ok(v) => VerificationStatus::Verified {
                issuer: v.claims.iss,
                key_id: v.key_id.as_str().to_owned(),
            },
            Err(failure) => VerificationStatus::Failed { failure },
        }
    }

    /// Verifies an advertised MCP `Tool` object: `Unsigned` without an
    /// attestation, otherwise the attestation against the definition rebuilt
    /// from the advertised fields (§2).
    pub fn verify_tool(&self, tool: &Map<String, Value>, now: UnixTime) -> VerificationStatus {
        let malformed = |e: AdvertisedError| VerificationStatus::Failed {
            failure: VerificationFailure::Malformed {
                detail: e.to_string(),
            },
        };
        let token = match advertised::attestation_of(tool) {
            Ok(Some(t)) => t,
            Ok(None) => return VerificationStatus::Unsigned,
            Err(e) => return malformed(e),
        };
        match advertised::definition_from_tool(tool) {
            Ok(def) => self.verify(token, &def, now),
            Err(e) => malformed(e),
        }
    }

    /// Verifies `token` for `def`, following §5.2 in order, and returns what
    /// it attested.
    pub fn verify_detailed(
        &self,
        token: &str,
        def: &ToolDefinition,
        now: UnixTime,
    ) -> Result<VerifiedAttestation, VerificationFailure> {
        self.verify_inner(token, def, None, now)
    }

    /// [`AttestationVerifier::verify_detailed`] for a definition whose
    /// digest was computed when it was received (and is shared with pinning
    /// and approvals), so it is not canonicalised a second time.
    pub fn verify_digested(
        &self,
        token: &str,
        def: &DigestedDefinition,
        now: UnixTime,
    ) -> Result<VerifiedAttestation, VerificationFailure> {
        self.verify_inner(token, &def.def, Some(def.digest), now)
    }

    fn verify_inner(
        &self,
        token: &str,
        def: &ToolDefinition,
        digest: Option<Digest>,
        now: UnixTime,
    ) -> Result<VerifiedAttestation, VerificationFailure> {
        // Step 1 (and reading `iss`, which step 2 needs to find the keys).
        let (opened, claims): (_, AttestationClaims) = token::open_claims(token, &self.validation)
            .map_err(|e| match e {
                PeekError::Jws(e) => from_jws(e),
                PeekError::Claims(detail) => VerificationFailure::Malformed {
                    detail: format!("claims: {detail}"),
                },
            })?;
        // Steps 1-3: strict JWS, typ, crit, alg allow-list, alg equal to the
        // algorithm of the key found by kid among the issuer's keys, signature.
        let issuer = self.issuers.get(&claims.iss);
        let verified = match issuer {
            Some(i) => opened.verify(&self.validation, &i.keys.resolver(now)),
            None => opened.verify(&self.validation, &|_: &JwsHeader| None),
        };
        let (header, key) = match (verified, issuer) {
            (Ok(v), _) => v,
            (Err(JwsError::UnknownKey { .. }), None) => {
                // Header checks passed; the issuer is the problem.
                return Err(VerificationFailure::UntrustedIssuer { issuer: claims.iss });
            }
            (Err(e), _) => return Err(from_jws(e)),
        };
        let typ_ok = header.typ().is_some_and(|t| {
            t.eq_ignore_ascii_case(ATTESTATION_TYP)
                || (self.accept_oauth && OAUTH_TYPS.iter().any(|o| t.eq_ignore_ascii_case(o)))
        });
        if !typ_ok {
            return Err(VerificationFailure::Malformed {
                detail: format!("JWS typ must be `{ATTESTATION_TYP}`"),
            });
        }
        // Step 4: version and time.
        if claims.etdi_ver != ETDI_VER {
            return Err(VerificationFailure::UnsupportedVersion {
                version: claims.etdi_ver.to_string(),
            });
        }
        if claims.iat > now.plus(self.skew) {
            return Err(VerificationFailure::NotYetValid);
        }
        if let Some(exp) = claims.exp
            && exp.plus(self.skew) <= now
        {
            return Err(VerificationFailure::Expired);
        }
        // Step 5: the digest of the definition as advertised.
        let digest = match digest {
            Some(d) => d,
            None => def.digest().map_err(|e| VerificationFailure::Malformed {
                detail: e.to_string(),
            })?,
        };
        let Some(signed) = claims.tool_digest.as_deref() else {
            return Err(mismatch("tool_digest"));
        };
        if signed.parse::<Digest>() != Ok(digest) {
            return Err(VerificationFailure::DigestMismatch);
        }
        // Step 6: the other claims against the definition.
        if claims.sub != def.id.as_str() {
            return Err(mismatch("sub"));
        }
        if claims.tool_name != def.name.as_str() {
            return Err(mismatch("tool_name"));
        }
        if !displays_as(&def.version, &claims.tool_version) {
            return Err(mismatch("tool_version"));
        }
        if claims.provider != def.provider.id.as_str() {
            return Err(mismatch("provider"));
        }
        // A signer writes the definition's set in its own order, so an
        // element-wise equal list is the same set and needs no sets built;
        // any other list is compared as a set, which decides.
        let same_list = claims.permissions.as_ref().is_some_and(|list| {
            list.iter()
                .map(String::as_str)
                .eq(def.permissions.iter().map(|p| p.as_str()))
        });
        if !same_list {
            let signed_permissions: BTreeSet<&str> = match (&claims.permissions, &claims.scope) {
                (Some(list), _) => list.iter().map(String::as_str).collect(),
                (None, Some(scope)) if self.accept_oauth => {
                    scope.split_ascii_whitespace().collect()
                }
                _ => return Err(mismatch("permissions")),
            };
            let advertised: BTreeSet<&str> = def.permissions.iter().map(|p| p.as_str()).collect();
            if signed_permissions != advertised {
                return Err(mismatch("permissions"));
            }
        }
        // Step 7: issuer scope and revocations.
        let issuer_trust = issuer.ok_or_else(|| VerificationFailure::UntrustedIssuer {
            issuer: claims.iss.clone(),
        })?;
        if !issuer_trust.providers.allows(&def.provider.id) {
            return Err(VerificationFailure::UntrustedIssuer { issuer: claims.iss });
        }
        if self.revocations.keys.contains(key.kid().as_str())
            || self.revocations.keys.contains(key.thumbprint().as_str())
        {
            return Err(VerificationFailure::RevokedKey {
                key_id: key.kid().as_str().to_owned(),
            });
        }
        // The lookup key is an owned pair; skip building it when nothing is
        // revoked, the usual case.
        if !self.revocations.versions.is_empty()
            && self
                .revocations
                .versions
                .contains(&(def.id.clone(), def.version.clone()))
        {
            return Err(VerificationFailure::RevokedVersion);
        }
        if let Some(jti) = &claims.jti
            && self.revocations.jtis.contains(jti)
        {
            return Err(VerificationFailure::RevokedAttestation { jti: jti.clone() });
        }
        Ok(VerifiedAttestation {
            key_id: key.kid().clone(),
            algorithm: header.alg(),
            digest,
            claims,
        })
    }
}

/// The JWS checks of §5.2 steps 1-2. `typ` is checked by the JWS layer
/// (before the signature, as §5.2 orders) unless OAuth-issued attestations
/// are accepted, whose several `typ` values are checked after it.
fn validation(algorithms: impl IntoIterator<Item = Algorithm>, accept_oauth: bool) -> Validation {
    let v = Validation::new(algorithms).require_kid(true);
    if accept_oauth {
        v
    } else {
        v.expect_typ(ATTESTATION_TYP)
    }
}

/// True when `value` displays exactly as `expected`, compared as it is
/// written, without building the string.
fn displays_as(value: &impl std::fmt::Display, expected: &str) -> bool {
    struct Compare<'a> {
        rest: &'a str,
    }
    impl std::fmt::Write for Compare<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.rest = self.rest.strip_prefix(s).ok_or(std::fmt::Error)?;
            Ok(())
        }
    }
    let mut compare = Compare { rest: expected };
    std::fmt::write(&mut compare, format_args!("{value}")).is_ok() && compare.rest.is_empty()
}

fn mismatch(claim: &str) -> VerificationFailure {
    VerificationFailure::ClaimMismatch {
        claim: claim.to_owned(),
    }
}

fn from_jws(e: JwsError) -> VerificationFailure {
    match token::classify(e) {
        JwsClass::Algorithm(alg) => VerificationFailure::AlgorithmNotAllowed { alg },
        JwsClass::UnknownKey(key_id) => VerificationFailure::UnknownKey { key_id },
        JwsClass::BadSignature => VerificationFailure::BadSignature,
        JwsClass::Malformed(detail) => VerificationFailure::Malformed { detail },
    }
}
