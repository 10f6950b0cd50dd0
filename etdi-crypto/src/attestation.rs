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

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
use crate::jws::{self, Validation};
use crate::key::{KeyId, SigningKey, VerifyingKey};
use crate::provider::CryptoProvider;
use crate::token::{self, JwsClass, SignError};
use crate::trust::KeyRing;

/// The JWS `typ` of an attestation.
pub const ATTESTATION_TYP: &str = "etdi-tool+jwt";
/// `typ` values an OAuth authorization server may use instead (§5.3).
const OAUTH_TYPS: [&str; 2] = ["at+jwt", "JWT"];

/// Stack room for a decoded attestation payload: ordinary claims sets fit,
/// larger ones are decoded onto the heap.
const PAYLOAD_BUF_BYTES: usize = 1024;

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

/// [`AttestationClaims`] read in place from the verified payload: strings
/// borrow from it unless they contain escapes. Verification compares these
/// against the definition without copying them; the owned claims are built
/// only for [`AttestationVerifier::verify_detailed`]'s answer.
#[derive(Deserialize)]
struct ClaimsRef<'a> {
    etdi_ver: u64,
    #[serde(borrow)]
    iss: Text<'a>,
    #[serde(borrow)]
    sub: Text<'a>,
    #[serde(borrow)]
    tool_name: Text<'a>,
    #[serde(borrow)]
    tool_version: Text<'a>,
    #[serde(borrow, default)]
    tool_digest: Option<Text<'a>>,
    #[serde(borrow)]
    provider: Text<'a>,
    #[serde(borrow, default)]
    permissions: Option<Vec<Text<'a>>>,
    #[serde(borrow, default)]
    scope: Option<Text<'a>>,
    iat: UnixTime,
    #[serde(default)]
    exp: Option<UnixTime>,
    #[serde(borrow, default)]
    jti: Option<Text<'a>>,
}

impl ClaimsRef<'_> {
    fn into_owned(self) -> AttestationClaims {
        AttestationClaims {
            etdi_ver: self.etdi_ver,
            iss: self.iss.into(),
            sub: self.sub.into(),
            tool_name: self.tool_name.into(),
            tool_version: self.tool_version.into(),
            tool_digest: self.tool_digest.map(Into::into),
            provider: self.provider.into(),
            permissions: self
                .permissions
                .map(|list| list.into_iter().map(Into::into).collect()),
            scope: self.scope.map(Into::into),
            iat: self.iat,
            exp: self.exp,
            jti: self.jti.map(Into::into),
        }
    }
}

/// A JSON string borrowed from the input when it has no escapes, decoded
/// into an owned string when it has (serde's own `Cow` impl always copies
/// inside an `Option` or a `Vec`).
struct Text<'a>(std::borrow::Cow<'a, str>);

impl Text<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Text<'_>> for String {
    fn from(t: Text<'_>) -> String {
        t.0.into_owned()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
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

    /// How long attestations stay valid, in seconds (`None`: no expiry).
    pub fn validity(&self) -> Option<u64> {
        self.validity
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
    /// Ordered: a lookup is a few string comparisons, cheaper than hashing
    /// the issuer for the handful of issuers a verifier trusts.
    issuers: BTreeMap<String, TrustedIssuer>,
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
            issuers: BTreeMap::new(),
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
        let verified = self.verify_inner(token, def, None, now, verified_status);
        verified.unwrap_or_else(|failure| VerificationStatus::Failed { failure })
    }

    /// [`AttestationVerifier::verify`] for a definition whose digest was
    /// computed when it was received: the status, without canonicalising the
    /// definition a second time.
    pub fn verify_digested_status(
        &self,
        token: &str,
        def: &DigestedDefinition,
        now: UnixTime,
    ) -> VerificationStatus {
        let verified = self.verify_inner(token, &def.def, Some(def.digest), now, verified_status);
        verified.unwrap_or_else(|failure| VerificationStatus::Failed { failure })
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
        self.verify_inner(token, def, None, now, verified_attestation)
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
        self.verify_inner(token, &def.def, Some(def.digest), now, verified_attestation)
    }

    /// §5.2 in order; on success hands the verified claims (still
    /// borrowed from the token), the key, the algorithm and the digest to
    /// `finish`.
    fn verify_inner<R>(
        &self,
        token: &str,
        def: &ToolDefinition,
        digest: Option<Digest>,
        now: UnixTime,
        finish: impl FnOnce(ClaimsRef<'_>, &VerifyingKey, Algorithm, Digest) -> R,
    ) -> Result<R, VerificationFailure> {
        // Step 1 (and reading `iss`, which step 2 needs to find the keys).
        // Nothing read from the payload is acted on before the signature
        // over these same bytes has been checked.
        let mut buf = [std::mem::MaybeUninit::uninit(); PAYLOAD_BUF_BYTES];
        let opened = jws::Opened::open_in(token, &self.validation, &mut buf).map_err(from_jws)?;
        // Checking UTF-8 once for the whole payload lets the parser skip
        // checking it string by string.
        let text =
            std::str::from_utf8(opened.payload()).map_err(|e| VerificationFailure::Malformed {
                detail: format!("claims: not UTF-8: {e}"),
            })?;
        let claims: ClaimsRef<'_> =
            serde_json::from_str(text).map_err(|e| VerificationFailure::Malformed {
                detail: format!("claims: {e}"),
            })?;
        // Steps 1-3: strict JWS, typ, crit, alg allow-list, alg equal to the
        // algorithm of the key found by kid among the issuer's keys, signature.
        let issuer = self.issuers.get(claims.iss.as_str());
        let verified = match issuer {
            // The ring lends the key: no reference counts touched.
            Some(i) => opened.verify_with(&self.validation, |h| i.keys.get(h.kid()?, now)),
            None => opened.verify_with(&self.validation, |_| None::<&VerifyingKey>),
        };
        let (header, key) = match (verified, issuer) {
            (Ok(v), _) => v,
            (Err(JwsError::UnknownKey { .. }), None) => {
                // Header checks passed; the issuer is the problem.
                return Err(VerificationFailure::UntrustedIssuer {
                    issuer: claims.iss.into(),
                });
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
        let Some(signed) = claims.tool_digest.as_ref().map(Text::as_str) else {
            return Err(mismatch("tool_digest"));
        };
        if !digest.is_written_as(signed) {
            return Err(VerificationFailure::DigestMismatch);
        }
        // Step 6: the other claims against the definition.
        if claims.sub.as_str() != def.id.as_str() {
            return Err(mismatch("sub"));
        }
        if claims.tool_name.as_str() != def.name.as_str() {
            return Err(mismatch("tool_name"));
        }
        if def.version.as_str() != claims.tool_version.as_str() {
            return Err(mismatch("tool_version"));
        }
        if claims.provider.as_str() != def.provider.id.as_str() {
            return Err(mismatch("provider"));
        }
        // A signer writes the definition's set in its own order, so an
        // element-wise equal list is the same set and needs no sets built;
        // any other list is compared as a set, which decides.
        let same_list = claims.permissions.as_ref().is_some_and(|list| {
            list.iter()
                .map(Text::as_str)
                .eq(def.permissions.iter().map(|p| p.as_str()))
        });
        if !same_list {
            let signed_permissions: BTreeSet<&str> = match (&claims.permissions, &claims.scope) {
                (Some(list), _) => list.iter().map(Text::as_str).collect(),
                (None, Some(scope)) if self.accept_oauth => {
                    scope.as_str().split_ascii_whitespace().collect()
                }
                _ => return Err(mismatch("permissions")),
            };
            let advertised: BTreeSet<&str> = def.permissions.iter().map(|p| p.as_str()).collect();
            if signed_permissions != advertised {
                return Err(mismatch("permissions"));
            }
        }
        // Step 7: issuer scope and revocations.
        let Some(issuer_trust) = issuer else {
            return Err(VerificationFailure::UntrustedIssuer {
                issuer: claims.iss.into(),
            });
        };
        if !issuer_trust.providers.allows(&def.provider.id) {
            return Err(VerificationFailure::UntrustedIssuer {
                issuer: claims.iss.into(),
            });
        }
        // Each lookup hashes its key first; skip them when nothing of the
        // kind is revoked, the usual case.
        if !self.revocations.keys.is_empty()
            && (self.revocations.keys.contains(key.kid().as_str())
                || self.revocations.keys.contains(key.thumbprint().as_str()))
        {
            return Err(VerificationFailure::RevokedKey {
                key_id: key.kid().as_str().to_owned(),
            });
        }
        // The version lookup also builds an owned pair to look up.
        if !self.revocations.versions.is_empty()
            && self
                .revocations
                .versions
                .contains(&(def.id.clone(), def.version.clone()))
        {
            return Err(VerificationFailure::RevokedVersion);
        }
        if let Some(jti) = &claims.jti
            && !self.revocations.jtis.is_empty()
            && self.revocations.jtis.contains(jti.as_str())
        {
            return Err(VerificationFailure::RevokedAttestation {
                jti: jti.as_str().to_owned(),
            });
        }
        Ok(finish(claims, key, header.alg(), digest))
    }
}

/// The answer of [`AttestationVerifier::verify`]: who attested, with which
/// key.
fn verified_status(
    claims: ClaimsRef<'_>,
    key: &VerifyingKey,
    _algorithm: Algorithm,
    _digest: Digest,
) -> VerificationStatus {
    VerificationStatus::Verified {
        issuer: claims.iss.into(),
        key_id: key.kid().as_str().to_owned(),
    }
}

/// The owned answer of [`AttestationVerifier::verify_detailed`].
fn verified_attestation(
    claims: ClaimsRef<'_>,
    key: &VerifyingKey,
    algorithm: Algorithm,
    digest: Digest,
) -> VerifiedAttestation {
    VerifiedAttestation {
        claims: claims.into_owned(),
        key_id: key.kid().clone(),
        algorithm,
        digest,
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
