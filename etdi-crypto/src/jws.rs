//! JWS compact serialisation (RFC 7515), with detached payloads (appendix F)
//! and strict header checks.
//!
//! Verification never lets the token choose how it is verified: the caller
//! supplies an algorithm allow-list and a [`KeyResolver`] over keys it
//! already trusts, and the key found must be bound to exactly the header's
//! `alg`. Keys carried by the token (`jwk`, `jku`, `x5u`, `x5c`) are refused
//! outright, as is `b64` (RFC 7797 is not supported), and any `crit` member
//! the caller has not declared understood.
//!
//! ```
//! use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
//! use etdi_crypto::jws::{self, JwsHeader, Validation};
//!
//! let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)?;
//! let token = jws::sign(&key, &JwsHeader::for_key(&key).with_typ("example+jwt"), b"payload")?;
//!
//! let trusted = key.verifying_key().clone();
//! let validation = Validation::new([Algorithm::ES256]).expect_typ("example+jwt");
//! let verified = jws::verify(&token, &validation, &trusted)?;
//! assert_eq!(verified.payload(), b"payload");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use serde::de;
use serde_json::{Map, Value};

use std::borrow::Cow;
use std::mem::MaybeUninit;

use crate::B64;
use crate::alg::Algorithm;
use crate::error::{JwsError, JwsPart};
use crate::key::{SigningKey, VerifyingKey};

/// Default bound on a compact JWS, in bytes.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Bound on the encoded protected header, in bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Header members refused outright, wherever they appear.
const FORBIDDEN: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "b64"];
/// Header names registered by RFC 7515/7516/7518, which `crit` may not list
/// (RFC 7515 §4.1.11) and custom members may not reuse.
const REGISTERED: [&str; 17] = [
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc",
    "zip", "epk", "apu", "apv", "b64",
];

/// A JWS protected header.
#[derive(Clone, Debug, PartialEq)]
pub struct JwsHeader {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<Cow<'static, str>>,
    cty: Option<String>,
    crit: Vec<String>,
    extra: Map<String, Value>,
}

impl JwsHeader {
    /// A header with only `alg`.
    pub fn new(alg: Algorithm) -> Self {
        JwsHeader {
            alg,
            kid: None,
            typ: None,
            cty: None,
            crit: Vec::new(),
            extra: Map::new(),
        }
    }

    /// A header with the key's `alg` and `kid`.
    pub fn for_key(key: &SigningKey) -> Self {
        JwsHeader::new(key.algorithm()).with_kid(key.kid().as_str())
    }

    /// Sets `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets `typ` (for example `etdi-attestation+jwt`).
    #[must_use]
    pub fn with_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(Cow::Owned(typ.into()));
        self
    }

    /// Sets `cty`.
    #[must_use]
    pub fn with_cty(mut self, cty: impl Into<String>) -> Self {
        self.cty = Some(cty.into());
        self
    }

    /// Adds a custom member. Registered names are refused (they have their
    /// own setters or are not accepted at all).
    pub fn with_param(mut self, name: &str, value: Value) -> Result<Self, JwsError> {
        if let Some(forbidden) = FORBIDDEN.iter().find(|f| **f == name) {
            return Err(JwsError::ForbiddenHeader { name: forbidden });
        }
        if REGISTERED.contains(&name) {
            return Err(JwsError::ReservedHeader {
                name: name.to_owned(),
            });
        }
        self.extra.insert(name.to_owned(), value);
        Ok(self)
    }

    /// Adds a custom member and lists it in `crit`, so verifiers that do not
    /// understand it refuse the token.
    pub fn with_critical_param(self, name: &str, value: Value) -> Result<Self, JwsError> {
        let mut header = self.with_param(name, value)?;
        if !header.crit.iter().any(|c| c == name) {
            header.crit.push(name.to_owned());
        }
        Ok(header)
    }

    /// `alg`.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// `kid`, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `typ`, if present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// `cty`, if present.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }

    /// The names listed in `crit` (empty if absent).
    pub fn crit(&self) -> &[String] {
        &self.crit
    }

    /// A custom member by name.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.extra.get(name)
    }

    fn to_json(&self) -> Result<Vec<u8>, JwsError> {
        let mut map = self.extra.clone();
        map.insert("alg".to_owned(), Value::from(self.alg.name()));
        if let Some(kid) = &self.kid {
            map.insert("kid".to_owned(), Value::from(kid.as_str()));
        }
        if let Some(typ) = &self.typ {
            map.insert("typ".to_owned(), Value::from(typ.as_ref()));
        }
        if let Some(cty) = &self.cty {
            map.insert("cty".to_owned(), Value::from(cty.as_str()));
        }
        if !self.crit.is_empty() {
            map.insert("crit".to_owned(), Value::from(self.crit.clone()));
        }
        serde_json::to_vec(&map).map_err(|e| JwsError::HeaderEncoding {
            detail: e.to_string(),
        })
    }

    /// Parses a decoded protected header: a JSON object without duplicate
    /// members, a known asymmetric `alg`, no forbidden member, a well-formed
    /// `crit`. Whether `crit` names are understood is checked by
    /// [`verify`], which knows the caller's [`Validation`].
    fn parse(json: &[u8]) -> Result<Self, JwsError> {
        let text = std::str::from_utf8(json).map_err(|_| JwsError::HeaderJson {
            detail: "not UTF-8".to_owned(),
        })?;
        match CommonHeader::parse(text) {
            Some(header) => Ok(header),
            None => Self::parse_general(text),
        }
    }

    /// The general header parser, for any header [`CommonHeader`] does not
    /// take.
    fn parse_general(text: &str) -> Result<Self, JwsError> {
        let value = etdi_core::canonical::parse_json(text).map_err(|e| JwsError::HeaderJson {
            detail: e.to_string(),
        })?;
        let Value::Object(members) = value else {
            return Err(JwsError::HeaderJson {
                detail: "not a JSON object".to_owned(),
            });
        };
        let mut alg = None;
        let mut header = JwsHeader::new(Algorithm::ES256);
        for (name, value) in members {
            if let Some(forbidden) = FORBIDDEN.iter().find(|f| **f == name) {
                return Err(JwsError::ForbiddenHeader { name: forbidden });
            }
            match name.as_str() {
                "alg" => alg = Some(Algorithm::parse(string_member(&name, &value)?)?),
                "kid" => header.kid = Some(string_member(&name, &value)?.to_owned()),
                "typ" => header.typ = Some(known_typ(string_member(&name, &value)?)),
                "cty" => header.cty = Some(string_member(&name, &value)?.to_owned()),
                "crit" => header.crit = crit_member(&value)?,
                _ => {
                    header.extra.insert(name, value);
                }
            }
        }
        header.alg = alg.ok_or_else(|| JwsError::HeaderMember {
            name: "alg".to_owned(),
            problem: "missing",
        })?;
        for name in &header.crit {
            if REGISTERED.contains(&name.as_str()) {
                return Err(JwsError::HeaderMember {
                    name: "crit".to_owned(),
                    problem: "lists a registered header name",
                });
            }
            if !header.extra.contains_key(name) {
                return Err(JwsError::HeaderMember {
                    name: "crit".to_owned(),
                    problem: "lists a member the header does not have",
                });
            }
        }
        Ok(header)
    }
}

/// The shape nearly every protected header has: a flat object whose members
/// are `alg`, `kid`, `typ` and `cty` only, each a string without escapes,
/// each at most once.
///
/// Verification runs on every request, and building a `Value` tree for a
/// four-member object costs more than the rest of the header checks
/// together, so this shape is read straight into borrowed strings. It is an
/// accelerator only: anything outside the shape (another member, a
/// duplicate, an escape, a non-string value, a non-object, an unknown
/// algorithm) makes [`CommonHeader::parse`] return `None`, and the strict
/// general parser above decides, with its own error. A header accepted here
/// is therefore one the general parser accepts with the same result: it has
/// no forbidden member, no `crit` and no custom member to check.
struct CommonHeader<'a> {
    alg: &'a str,
    kid: Option<&'a str>,
    typ: Option<&'a str>,
    cty: Option<&'a str>,
}

/// A header `typ`, without a copy when it is one of the media types ETDI
/// issues (every token it verifies carries one).
fn known_typ(typ: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 5] = [
        crate::attestation::ATTESTATION_TYP,
        crate::request::REQUEST_TYP,
        crate::chain::HOP_TYP,
        "at+jwt",
        "JWT",
    ];
    match KNOWN.iter().find(|k| **k == typ) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(typ.to_owned()),
    }
}

impl CommonHeader<'_> {
    fn parse(text: &str) -> Option<JwsHeader> {
        let mut de = serde_json::Deserializer::from_str(text);
        let common = de::Deserializer::deserialize_map(&mut de, CommonHeaderVisitor).ok()?;
        // Trailing characters after the object are the general parser's to
        // report.
        de.end().ok()?;
        let alg = Algorithm::parse(common.alg).ok()?;
        Some(JwsHeader {
            alg,
            kid: common.kid.map(str::to_owned),
            typ: common.typ.map(known_typ),
            cty: common.cty.map(str::to_owned),
            crit: Vec::new(),
            extra: Map::new(),
        })
    }
}

struct CommonHeaderVisitor;

impl<'de> de::Visitor<'de> for CommonHeaderVisitor {
    type Value = CommonHeader<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of alg, kid, typ and cty strings")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut alg, mut kid, mut typ, mut cty) = (None, None, None, None);
        // Borrowed `&str` keys and values: serde_json refuses to borrow a
        // string with escapes, which sends it to the general parser.
        while let Some(name) = map.next_key::<&'de str>()? {
            let slot = match name {
                "alg" => &mut alg,
                "kid" => &mut kid,
                "typ" => &mut typ,
                "cty" => &mut cty,
                _ => return Err(de::Error::custom("not a common header member")),
            };
            // A duplicate must be refused, which the general parser does.
            if slot.is_some() {
                return Err(de::Error::custom("duplicate member"));
            }
            *slot = Some(map.next_value::<&'de str>()?);
        }
        let alg = alg.ok_or_else(|| de::Error::custom("no alg"))?;
        Ok(CommonHeader { alg, kid, typ, cty })
    }
}

fn string_member<'v>(name: &str, value: &'v Value) -> Result<&'v str, JwsError> {
    value.as_str().ok_or_else(|| JwsError::HeaderMember {
        name: name.to_owned(),
        problem: "must be a string",
    })
}

fn crit_member(value: &Value) -> Result<Vec<String>, JwsError> {
    let bad = |problem| JwsError::HeaderMember {
        name: "crit".to_owned(),
        problem,
    };
    let list = value
        .as_array()
        .ok_or_else(|| bad("must be an array of strings"))?;
    if list.is_empty() {
        return Err(bad("must not be empty"));
    }
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let name = item
            .as_str()
            .ok_or_else(|| bad("must be an array of strings"))?;
        if names.iter().any(|n| n == name) {
            return Err(bad("lists a name twice"));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// What a verifier accepts. Fails closed: an empty allow-list accepts nothing.
#[derive(Clone, Debug)]
pub struct Validation {
    algorithms: Vec<Algorithm>,
    typ: Option<String>,
    critical: Vec<String>,
    max_token_bytes: usize,
    require_kid: bool,
}

impl Validation {
    /// Accepts exactly these algorithms, any `typ`, no `crit`, tokens up to
    /// [`MAX_TOKEN_BYTES`].
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Validation {
            algorithms: algorithms.into_iter().collect(),
            typ: None,
            critical: Vec::new(),
            max_token_bytes: MAX_TOKEN_BYTES,
            require_kid: false,
        }
    }

    /// Requires this `typ`. Compared as RFC 7515 §4.1.9 says: case-insensitive,
    /// with an `application/` prefix optional.
    #[must_use]
    pub fn expect_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Declares a `crit` member name understood (the caller then checks its
    /// value in [`Verified::header`]).
    #[must_use]
    pub fn understand_critical(mut self, name: impl Into<String>) -> Self {
        self.critical.push(name.into());
        self
    }

    /// Changes the size bound on the whole token.
    #[must_use]
    pub fn max_token_bytes(mut self, limit: usize) -> Self {
        self.max_token_bytes = limit;
        self
    }

    /// Requires a `kid` header.
    #[must_use]
    pub fn require_kid(mut self, required: bool) -> Self {
        self.require_kid = required;
        self
    }

    /// The accepted algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
}

/// Finds the trusted key for a token, usually by `kid`. Implementations
/// return only keys the caller already trusts; the header is untrusted input.
pub trait KeyResolver {
    /// The key to verify a token with this header, if one is trusted.
    fn resolve(&self, header: &JwsHeader) -> Option<VerifyingKey>;
}

/// One trusted key: used when the header has no `kid` or names this key's
/// `kid` (or its thumbprint).
impl KeyResolver for VerifyingKey {
    fn resolve(&self, header: &JwsHeader) -> Option<VerifyingKey> {
        match header.kid() {
            None => Some(self.clone()),
            Some(kid) if kid == self.kid().as_str() || kid == self.thumbprint().as_str() => {
                Some(self.clone())
            }
            Some(_) => None,
        }
    }
}

impl<F> KeyResolver for F
where
    F: Fn(&JwsHeader) -> Option<VerifyingKey>,
{
    fn resolve(&self, header: &JwsHeader) -> Option<VerifyingKey> {
        self(header)
    }
}

/// A verified JWS with an attached payload.
#[derive(Clone, Debug)]
pub struct Verified {
    header: JwsHeader,
    payload: Vec<u8>,
    key: VerifyingKey,
}

impl Verified {
    /// The protected header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The key that verified the signature.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Takes the payload.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }
}

/// A verified JWS whose payload was supplied separately (RFC 7515 appendix F).
#[derive(Clone, Debug)]
pub struct VerifiedDetached {
    header: JwsHeader,
    key: VerifyingKey,
}

impl VerifiedDetached {
    /// The protected header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The key that verified the signature.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// Signs `payload` into a compact JWS. The header's `alg` must be the key's.
pub fn sign(key: &SigningKey, header: &JwsHeader, payload: &[u8]) -> Result<String, JwsError> {
    let mut token = signing_input(key, header, payload)?;
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    B64.encode_string(signature, &mut token);
    Ok(token)
}

/// Signs `payload` into a compact JWS with a detached payload: the second part
/// is empty and the verifier must be given the payload (RFC 7515 appendix F).
pub fn sign_detached(
    key: &SigningKey,
    header: &JwsHeader,
    payload: &[u8],
) -> Result<String, JwsError> {
    let input = signing_input(key, header, payload)?;
    let signature = key.sign(input.as_bytes())?;
    let header_len = input.find('.').unwrap_or(input.len());
    let mut token = String::with_capacity(header_len + 2 + signature.len() * 4 / 3 + 4);
    token.push_str(input.get(..header_len).unwrap_or_default());
    token.push_str("..");
    B64.encode_string(signature, &mut token);
    Ok(token)
}

fn signing_input(key: &SigningKey, header: &JwsHeader, payload: &[u8]) -> Result<String, JwsError> {
    if header.alg != key.algorithm() {
        return Err(JwsError::SigningAlgorithmMismatch {
            header: header.alg,
            key: key.algorithm(),
        });
    }
    let header_json = header.to_json()?;
    let mut input = String::with_capacity((header_json.len() + payload.len()) * 4 / 3 + 8);
    B64.encode_string(header_json, &mut input);
    input.push('.');
    B64.encode_string(payload, &mut input);
    Ok(input)
}

/// Verifies a compact JWS and returns its header and payload.
pub fn verify(
    token: &str,
    validation: &Validation,
    keys: &dyn KeyResolver,
) -> Result<Verified, JwsError> {
    let parts = split(token, validation)?;
    let (header, key) = check_header(parts.header, validation, keys)?;
    let mut buf = [MaybeUninit::uninit(); SMALL_PART_BYTES];
    let signature = decode_small(parts.signature, JwsPart::Signature, &mut buf)?;
    let payload = decode(parts.payload, JwsPart::Payload)?;
    key.verify(parts.signing_input.as_bytes(), &signature)?;
    Ok(Verified {
        header,
        payload,
        key,
    })
}

/// A compact JWS split into its parts with the payload decoded, before
/// anything is verified.
///
/// The ETDI token kinds must read their claims before the signature is
/// checked (the issuer in `iss` picks the keys). Opening the token once and
/// verifying the same parts afterwards decodes the payload once instead of
/// twice, and the claims they act on are from the very bytes the signature
/// covered.
pub(crate) struct Opened<'t, 'b> {
    parts: Parts<'t>,
    payload: std::borrow::Cow<'b, [u8]>,
}

impl<'t> Opened<'t, 'static> {
    /// Splits `token` (within the size bound of `validation`, exactly three
    /// parts) and decodes its payload. The header's own size bound is left
    /// to [`Opened::verify`], so a token whose claims are unreadable is
    /// reported as such first, as it always has been.
    pub(crate) fn open(token: &'t str, validation: &Validation) -> Result<Self, JwsError> {
        let parts = split_parts(token, validation.max_token_bytes)?;
        let payload = decode(parts.payload, JwsPart::Payload)?;
        Ok(Opened {
            parts,
            payload: std::borrow::Cow::Owned(payload),
        })
    }
}

impl<'t, 'b> Opened<'t, 'b> {
    /// [`Opened::open`], decoding the payload into `buf` when it fits (the
    /// same decoder either way, so the same encodings are accepted).
    pub(crate) fn open_in(
        token: &'t str,
        validation: &Validation,
        buf: &'b mut [MaybeUninit<u8>],
    ) -> Result<Self, JwsError> {
        let parts = split_parts(token, validation.max_token_bytes)?;
        let payload = decode_small(parts.payload, JwsPart::Payload, buf)?;
        Ok(Opened { parts, payload })
    }

    /// The decoded payload: NOT verified until [`Opened::verify`] succeeds.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Everything [`verify`] checks, on these parts: the header against
    /// `validation`, the key from `keys`, and the signature.
    pub(crate) fn verify(
        &self,
        validation: &Validation,
        keys: &dyn KeyResolver,
    ) -> Result<(JwsHeader, VerifyingKey), JwsError> {
        self.verify_with(validation, |h| keys.resolve(h))
    }

    /// [`Opened::verify`] with the key found by `resolve`, which may lend
    /// it rather than clone it.
    pub(crate) fn verify_with<K: std::borrow::Borrow<VerifyingKey>>(
        &self,
        validation: &Validation,
        resolve: impl FnOnce(&JwsHeader) -> Option<K>,
    ) -> Result<(JwsHeader, K), JwsError> {
        check_header_size(self.parts.header)?;
        let (header, key) = check_header_with(self.parts.header, validation, resolve)?;
        let mut buf = [MaybeUninit::uninit(); SMALL_PART_BYTES];
        let signature = decode_small(self.parts.signature, JwsPart::Signature, &mut buf)?;
        key.borrow()
            .verify(self.parts.signing_input.as_bytes(), &signature)?;
        Ok((header, key))
    }
}

/// Verifies a compact JWS with a detached payload (empty second part)
/// against `payload`.
pub fn verify_detached(
    token: &str,
    payload: &[u8],
    validation: &Validation,
    keys: &dyn KeyResolver,
) -> Result<VerifiedDetached, JwsError> {
    let parts = split(token, validation)?;
    if !parts.payload.is_empty() {
        return Err(JwsError::DetachedMismatch {
            detached_expected: true,
        });
    }
    let (header, key) = check_header(parts.header, validation, keys)?;
    let mut buf = [MaybeUninit::uninit(); SMALL_PART_BYTES];
    let signature = decode_small(parts.signature, JwsPart::Signature, &mut buf)?;
    let mut input = String::with_capacity(parts.header.len() + 1 + payload.len() * 4 / 3 + 4);
    input.push_str(parts.header);
    input.push('.');
    B64.encode_string(payload, &mut input);
    key.verify(input.as_bytes(), &signature)?;
    Ok(VerifiedDetached { header, key })
}

/// Decodes the protected header WITHOUT verifying anything, to route a token
/// (for example to pick a JWKS by issuer). Never act on it before [`verify`].
pub fn peek_header(token: &str) -> Result<JwsHeader, JwsError> {
    let parts = split(token, &Validation::new([]))?;
    let json = decode(parts.header, JwsPart::Header)?;
    JwsHeader::parse(&json)
}

/// Decodes the protected header and the payload WITHOUT verifying or
/// interpreting anything, for display by inspection tools: the header JSON
/// is returned as bytes even when it names an algorithm this crate refuses.
/// Only the size bound, the three-part shape and strict base64url are
/// checked. Never act on the result; verify with [`verify`].
pub fn peek_unverified(token: &str) -> Result<(Vec<u8>, Vec<u8>), JwsError> {
    let parts = split(token, &Validation::new([]))?;
    let header = decode(parts.header, JwsPart::Header)?;
    let payload = decode(parts.payload, JwsPart::Payload)?;
    Ok((header, payload))
}

struct Parts<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    signing_input: &'t str,
}

fn split<'t>(token: &'t str, validation: &Validation) -> Result<Parts<'t>, JwsError> {
    let parts = split_parts(token, validation.max_token_bytes)?;
    check_header_size(parts.header)?;
    Ok(parts)
}

/// The size bound and the three-part shape, without the header bound.
fn split_parts(token: &str, max_token_bytes: usize) -> Result<Parts<'_>, JwsError> {
    if token.len() > max_token_bytes {
        return Err(JwsError::TooLarge {
            size: token.len(),
            limit: max_token_bytes,
        });
    }
    // SIMD search: the whole token is scanned on every verification (the
    // third `next` proves there is no fourth part).
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(JwsError::NotCompact {
            parts: token.split('.').count(),
        });
    };
    let part = |range: std::ops::Range<usize>| token.get(range).unwrap_or_default();
    Ok(Parts {
        header: part(0..first),
        payload: part(first + 1..second),
        signature: part(second + 1..token.len()),
        signing_input: part(0..second),
    })
}

fn check_header_size(header: &str) -> Result<(), JwsError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(JwsError::TooLarge {
            size: header.len(),
            limit: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

/// Decodes one part as strict base64url: the encodings [`B64`] accepts and
/// no others (no padding, no whitespace, nothing outside the URL-safe
/// alphabet, no non-zero trailing bits), so each byte string has exactly one
/// accepted encoding.
///
/// Every verification decodes its payload and signature, so this uses
/// `base64-simd` (the crate the AWS SDK for Rust decodes with): about 3.4x
/// faster than the `base64` crate on a 930-character part on this project's
/// bench machine. A differential property test below holds the two to the
/// same answers, accepted bytes and refusals alike.
fn decode(part: &str, which: JwsPart) -> Result<Vec<u8>, JwsError> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(part.as_bytes())
        .map_err(|_| JwsError::Base64 { part: which })
}

/// Stack room for a decoded header or signature: every signature ETDI
/// accepts (RSA-4096 is 512 bytes) and any ordinary header fit, so the hot
/// path does not allocate for them. The buffers are left uninitialised
/// (`MaybeUninit`, safe code): the decoder only writes them, and only the
/// bytes it wrote are read back.
const SMALL_PART_BYTES: usize = 512;

/// [`decode`] into `buf` when the part fits, into a `Vec` otherwise. The
/// same engine decodes either way, so the accepted encodings are the same.
fn decode_small<'b>(
    part: &str,
    which: JwsPart,
    buf: &'b mut [MaybeUninit<u8>],
) -> Result<std::borrow::Cow<'b, [u8]>, JwsError> {
    let engine = base64_simd::URL_SAFE_NO_PAD;
    // The exact decoded length (an impossible length is refused here), so
    // the decoder is never handed a buffer too short for it.
    let len = engine
        .decoded_length(part.as_bytes())
        .map_err(|_| JwsError::Base64 { part: which })?;
    let Some(out) = buf.get_mut(..len) else {
        return decode(part, which).map(std::borrow::Cow::Owned);
    };
    engine
        .decode(part.as_bytes(), base64_simd::Out::from_uninit_slice(out))
        .map(|bytes| std::borrow::Cow::Borrowed(&*bytes))
        .map_err(|_| JwsError::Base64 { part: which })
}

fn check_header(
    encoded: &str,
    validation: &Validation,
    keys: &dyn KeyResolver,
) -> Result<(JwsHeader, VerifyingKey), JwsError> {
    check_header_with(encoded, validation, |h| keys.resolve(h))
}

/// [`check_header`] with the key found by `resolve`, which may lend it
/// (`&VerifyingKey`) rather than hand out a clone.
fn check_header_with<K: std::borrow::Borrow<VerifyingKey>>(
    encoded: &str,
    validation: &Validation,
    resolve: impl FnOnce(&JwsHeader) -> Option<K>,
) -> Result<(JwsHeader, K), JwsError> {
    let mut buf = [MaybeUninit::uninit(); SMALL_PART_BYTES];
    let json = decode_small(encoded, JwsPart::Header, &mut buf)?;
    let header = JwsHeader::parse(&json)?;
    if !validation.algorithms.contains(&header.alg) {
        return Err(JwsError::AlgorithmNotAllowed { alg: header.alg });
    }
    if let Some(expected) = &validation.typ {
        let matches = header
            .typ
            .as_deref()
            .is_some_and(|found| same_media_type(expected, found));
        if !matches {
            return Err(JwsError::UnexpectedType {
                expected: expected.clone(),
                found: header.typ.as_deref().map(str::to_owned),
            });
        }
    }
    for name in &header.crit {
        if !validation.critical.contains(name) {
            return Err(JwsError::UnsupportedCritical { name: name.clone() });
        }
    }
    if validation.require_kid && header.kid.is_none() {
        return Err(JwsError::MissingKeyId);
    }
    let key = resolve(&header).ok_or_else(|| JwsError::UnknownKey {
        kid: header.kid.clone(),
    })?;
    let algorithm = key.borrow().algorithm();
    if algorithm != header.alg {
        return Err(JwsError::KeyAlgorithmMismatch {
            header: header.alg,
            key: algorithm,
        });
    }
    Ok((header, key))
}

/// RFC 7515 §4.1.9: media types compare case-insensitively, and
/// `application/` may be left out when the rest has no `/`.
fn same_media_type(a: &str, b: &str) -> bool {
    fn short(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => {
                let rest = t.get(12..).unwrap_or_default();
                if rest.contains('/') { t } else { rest }
            }
            _ => t,
        }
    }
    short(a).eq_ignore_ascii_case(short(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_as_rfc_7515_says() {
        assert!(same_media_type("JWT", "jwt"));
        assert!(same_media_type("application/jwt", "JWT"));
        assert!(same_media_type("etdi+jwt", "application/ETDI+JWT"));
        assert!(!same_media_type("jwt", "jose"));
        assert!(!same_media_type("application/a/b", "a/b"));
    }

    #[test]
    fn header_parsing_is_strict() {
        let parse = |s: &str| JwsHeader::parse(s.as_bytes());
        assert!(parse(r#"{"alg":"ES256"}"#).is_ok());
        assert_eq!(
            parse(r#"{"kid":"a"}"#),
            Err(JwsError::HeaderMember {
                name: "alg".to_owned(),
                problem: "missing"
            })
        );
        assert!(matches!(
            parse(r#"{"alg":"ES256","alg":"RS256"}"#),
            Err(JwsError::HeaderJson { .. })
        ));
        assert!(matches!(
            parse(r#"["alg"]"#),
            Err(JwsError::HeaderJson { .. })
        ));
        assert!(matches!(
            parse(r#"{"alg":5}"#),
            Err(JwsError::HeaderMember { .. })
        ));
        for name in FORBIDDEN {
            let json = format!(r#"{{"alg":"ES256","{name}":"x"}}"#);
            assert_eq!(parse(&json), Err(JwsError::ForbiddenHeader { name }));
        }
        assert!(matches!(
            parse(r#"{"alg":"ES256","crit":[]}"#),
            Err(JwsError::HeaderMember { .. })
        ));
        assert!(matches!(
            parse(r#"{"alg":"ES256","crit":["kid"],"kid":"a"}"#),
            Err(JwsError::HeaderMember { .. })
        ));
        assert!(matches!(
            parse(r#"{"alg":"ES256","crit":["exp"]}"#),
            Err(JwsError::HeaderMember { .. })
        ));
        assert!(parse(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#).is_ok());
    }

    #[test]
    fn common_header_shape_agrees_with_the_general_parser() {
        for json in [
            r#"{"alg":"ES256"}"#,
            r#"{"alg":"RS256","kid":"k1","typ":"etdi-req+jwt","cty":"c"}"#,
            r#"{"typ":"JWT","alg":"ES256","kid":"k"}"#,
            r#"{"alg":"ES256","kid":null}"#,
            r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
            r#"{"alg":"ES256","alg":"ES256"}"#,
            r#"{"alg":"ES256"}"#,
            r#"{"alg":"ES256","kid":"a"b"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"kid":"k"}"#,
            r#"{"alg":"ES256","cty":5}"#,
            r#"{"alg":"ES256","jwk":"x"}"#,
            r#"{"alg":"ES256"} x"#,
            r#"["ES256","k","t","c"]"#,
            r#"{}"#,
        ] {
            let general = JwsHeader::parse_general(json);
            if let Some(fast) = CommonHeader::parse(json) {
                assert_eq!(Ok(fast), general, "{json}");
            }
            assert_eq!(JwsHeader::parse(json.as_bytes()), general, "{json}");
        }
        // The shape covers the headers ETDI itself writes.
        assert!(
            CommonHeader::parse(r#"{"alg":"ES256","kid":"k","typ":"etdi-tool+jwt"}"#).is_some()
        );
        assert!(CommonHeader::parse(r#"["ES256"]"#).is_none());
        assert!(CommonHeader::parse(r#"{"alg":"ES256","kid":null}"#).is_none());
    }

    #[test]
    fn custom_params_cannot_shadow_registered_ones() {
        let header = JwsHeader::new(Algorithm::ES256);
        assert!(matches!(
            header.clone().with_param("alg", Value::from("none")),
            Err(JwsError::ReservedHeader { .. })
        ));
        assert!(matches!(
            header.clone().with_param("jwk", Value::from("x")),
            Err(JwsError::ForbiddenHeader { name: "jwk" })
        ));
        assert!(header.with_param("nonce", Value::from("x")).is_ok());
    }

    /// What the `base64` crate's strict engine ([`B64`]) answers, which the
    /// SIMD decoder must match exactly.
    fn reference(part: &str) -> Option<Vec<u8>> {
        B64.decode(part).ok()
    }

    fn decoded(part: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let mut buf = [MaybeUninit::uninit(); SMALL_PART_BYTES];
        let small = decode_small(part, JwsPart::Payload, &mut buf)
            .ok()
            .map(|c| c.into_owned());
        (decode(part, JwsPart::Payload).ok(), small)
    }

    #[test]
    fn decoding_refuses_every_non_canonical_encoding() {
        for part in [
            "",
            "QQ",
            "QUI",
            "QUJD",
            "QQ==",
            "QR",
            "QUJ",
            "Q",
            "QUJDR",
            "QU JD",
            "QUJD\n",
            "QU+D",
            "QU/D",
            "QU-_",
            "Q\u{e9}JD",
        ] {
            let (vec, small) = decoded(part);
            assert_eq!(vec, reference(part), "{part:?}");
            assert_eq!(small, reference(part), "{part:?}");
        }
        // Non-zero trailing bits: "QR" would be 0x41 with 4 stray bits.
        assert!(decoded("QR").0.is_none());
        assert_eq!(decoded("QQ").0, Some(b"A".to_vec()));
    }

    /// Characters the decoders must tell apart: the alphabet, the other
    /// alphabet's two, padding, whitespace and a multi-byte character.
    fn base64ish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let ch = prop_oneof![
            20 => proptest::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                    .chars()
                    .collect::<Vec<_>>()
            ),
            1 => proptest::sample::select(vec!['+', '/', '=', ' ', '\n', '.', '\u{e9}', '\0']),
        ];
        // Long enough for the SIMD loop, around the stack buffer's bound.
        proptest::collection::vec(ch, 0..760).prop_map(|c| c.into_iter().collect())
    }

    proptest::proptest! {
        #[test]
        fn simd_decoding_matches_the_strict_reference(part in base64ish()) {
            let (vec, small) = decoded(&part);
            proptest::prop_assert_eq!(&vec, &reference(&part));
            proptest::prop_assert_eq!(&small, &reference(&part));
        }

        #[test]
        fn one_changed_character_of_a_valid_part_is_judged_alike(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..600),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            to in proptest::prelude::any::<char>(),
        ) {
            let mut chars: Vec<char> = B64.encode(&bytes).chars().collect();
            let i = at.index(chars.len());
            chars[i] = to;
            let part: String = chars.into_iter().collect();
            let (vec, small) = decoded(&part);
            proptest::prop_assert_eq!(&vec, &reference(&part));
            proptest::prop_assert_eq!(&small, &reference(&part));
        }
    }
}
