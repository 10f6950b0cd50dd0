//! The one canonical form: strict JSON parsing, RFC 8785 (JCS) serialisation
//! and SHA-256 digests.
//!
//! Every hash in ETDI (tool signing, pinning, approvals, request arguments,
//! call chains) goes through [`canonical_json`] and [`Digest::of`], so the same
//! value can never have two different hashes. The JCS serialisation is the
//! `serde_json_canonicalizer` crate, checked against the RFC 8785 vectors in
//! `tests/jcs_vectors.rs`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// Largest JSON document [`parse_json`] accepts, in bytes (1 MiB).
///
/// Tool definitions, request arguments and policy documents are far smaller;
/// a bound keeps a hostile peer from making us allocate without limit.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

/// Deepest nesting [`parse_json`] accepts (objects and arrays).
pub const MAX_JSON_DEPTH: usize = 64;

/// Why a JSON document was refused by [`parse_json`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The document is larger than [`MAX_JSON_BYTES`].
    #[error("JSON document is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the refused document.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The document nests deeper than [`MAX_JSON_DEPTH`].
    #[error("JSON document nests deeper than {limit} levels")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// An object repeats a member name. JSON parsers disagree on which copy
    /// wins, so a document with duplicates could mean one thing to a signer and
    /// another to a verifier: it is refused.
    #[error("object member `{key}` appears more than once")]
    DuplicateKey {
        /// The repeated member name.
        key: String,
    },
    /// The text is not JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser saw.
        message: String,
    },
}

/// Parses untrusted JSON text strictly: size and depth bounded, duplicate
/// object members refused, trailing characters refused.
pub fn parse_json(input: &str) -> Result<Value, JsonError> {
    if input.len() > MAX_JSON_BYTES {
        return Err(JsonError::TooLarge {
            size: input.len(),
            limit: MAX_JSON_BYTES,
        });
    }
    let mut de = serde_json::Deserializer::from_str(input);
    let value = StrictValue { depth: 0 }
        .deserialize(&mut de)
        .map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(value)
}

/// Maps serde_json's error back to our typed variants. The strict visitor
/// reports duplicates and depth through `de::Error::custom` with a fixed
/// prefix, which is recovered here.
fn classify(err: serde_json::Error) -> JsonError {
    let text = err.to_string();
    if let Some(rest) = text.strip_prefix(DUPLICATE_PREFIX) {
        let key = rest.split('\u{0}').next().unwrap_or_default().to_owned();
        return JsonError::DuplicateKey { key };
    }
    if text.starts_with(DEPTH_PREFIX) {
        return JsonError::TooDeep {
            limit: MAX_JSON_DEPTH,
        };
    }
    let message = match text.rfind(" at line ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_owned(),
        None => text,
    };
    JsonError::Syntax {
        line: err.line(),
        column: err.column(),
        message,
    }
}

const DUPLICATE_PREFIX: &str = "etdi-duplicate-key:";
const DEPTH_PREFIX: &str = "etdi-too-deep";

/// A `serde_json::Value` builder that refuses duplicate keys and deep nesting.
struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl StrictValue {
    fn nested<E: de::Error>(&self) -> Result<StrictValue, E> {
        let depth = self.depth + 1;
        if depth > MAX_JSON_DEPTH {
            return Err(E::custom(DEPTH_PREFIX));
        }
        Ok(StrictValue { depth })
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue { depth: inner.depth })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "{DUPLICATE_PREFIX}{key}\u{0}"
                )));
            }
            let v = map.next_value_seed(StrictValue { depth: inner.depth })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Why a value could not be put into canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value has no canonical JSON form: {reason}")]
pub struct CanonicalError {
    reason: String,
}

/// Serialises any value as RFC 8785 (JCS) canonical JSON bytes.
///
/// Objects are sorted by the UTF-16 code units of their member names, numbers
/// use the ECMAScript shortest round-trip form, strings use the minimal JSON
/// escapes, and no whitespace is emitted.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value).map_err(|e| CanonicalError {
        reason: e.to_string(),
    })?;
    canonical_value(&value)
}

/// [`canonical_json`] of an already-built JSON value.
///
/// Documents whose numbers are all integers of magnitude at most 2^53 (where
/// the ECMAScript form is plain decimal digits) are written directly, about
/// four times faster than `serde_json_canonicalizer`, which re-parses every
/// member name to sort it. Any other document goes to that crate unchanged,
/// so number formatting is always the proven implementation. Differential
/// property tests hold the two paths to byte equality, and the RFC 8785
/// vectors run through both.
pub fn canonical_value(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = String::with_capacity(256);
    if fast::write_value(&mut out, value).is_some() {
        return Ok(out.into_bytes());
    }
    reads_back(value)?;
    serde_json_canonicalizer::to_vec(value).map_err(|e| CanonicalError {
        reason: e.to_string(),
    })
}

/// Every number must read back from its canonical text as itself.
///
/// RFC 8785 writes a number through an IEEE double in ECMAScript's
/// shortest form, while a tool handler reads the number as sent, integers
/// exactly. Where the two differ, several numbers share one canonical form,
/// and so one digest and one signature: a call signed with 2^53 and sent
/// with 2^53 + 1 verified, and the handler read 2^53 + 1. A number is
/// therefore accepted only when parsing its canonical text gives back the
/// same value: then the canonical text (what is signed) determines the
/// number (what the handler reads), and the canonical form is a fixed
/// point. Integers up to 2^53 and decimals always qualify; an integer
/// beyond 2^53 only when it is written in the shortest form already (10^18
/// does; 2^53 + 1, 10^18 + 64 and 2^60 do not). (I-JSON, RFC 7493 §2.2,
/// asks senders not to rely on more precision than a double.) The fast
/// writer handles only integers up to 2^53, so only the general path needs
/// this check.
pub(crate) fn reads_back(value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => {
            let small = n.as_u64().is_some_and(|u| u <= 1 << 53)
                || n.as_i64().is_some_and(|i| i.unsigned_abs() <= 1 << 53);
            if small {
                return Ok(());
            }
            let text = serde_json_canonicalizer::to_vec(n).map_err(|e| CanonicalError {
                reason: e.to_string(),
            })?;
            let back: Option<serde_json::Number> = serde_json::from_slice(&text).ok();
            if back.is_some_and(|b| same_number(n, &b)) {
                Ok(())
            } else {
                Err(CanonicalError {
                    reason: format!(
                        "number {n} is written {} in canonical form (RFC 8785), which is another number; send it as a string",
                        String::from_utf8_lossy(&text)
                    ),
                })
            }
        }
        Value::Array(items) => items.iter().try_for_each(reads_back),
        Value::Object(map) => map.values().try_for_each(reads_back),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// True when `a` and `b` are the same mathematical value (an integer and
/// a double compare by value; -0 equals 0).
fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    fn int(n: &serde_json::Number) -> Option<i128> {
        n.as_u64()
            .map(i128::from)
            .or_else(|| n.as_i64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        (Some(i), None) | (None, Some(i)) => {
            let f = if int(a).is_some() {
                b.as_f64()
            } else {
                a.as_f64()
            };
            // Below 2^127 in magnitude, `as i128` of an integral double is
            // exact.
            f.is_some_and(|f| f.fract() == 0.0 && f.abs() < 1.7e38 && f as i128 == i)
        }
        (None, None) => a.as_f64() == b.as_f64(),
    }
}

/// Orders two member names as RFC 8785 sorts them (by UTF-16 code units),
/// for writers that emit canonical JSON themselves (etdi-audit's encoder).
pub fn member_order(a: &str, b: &str) -> std::cmp::Ordering {
    fast::utf16_cmp(a, b)
}

/// True when `map` iterates its members in RFC 8785 order, so a canonical
/// writer can emit them as they come.
pub fn in_member_order(map: &Map<String, Value>) -> bool {
    fast::in_utf16_order(map)
}

/// The direct JCS writer behind [`canonical_value`] and the typed writer of
/// [`crate::ToolDefinition::canonical_bytes`].
pub(crate) mod fast {
    use std::fmt::Write as _;

    use serde_json::{Map, Value};

    /// Largest integer magnitude JCS writes as plain digits; beyond it JCS
    /// rounds through an IEEE double.
    const MAX_SAFE_INTEGER: u64 = 1 << 53;

    /// Writes the JCS form of `value`; `None` when the document needs the
    /// general implementation (a non-integer or a large number).
    pub(crate) fn write_value(out: &mut String, value: &Value) -> Option<()> {
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    if u > MAX_SAFE_INTEGER {
                        return None;
                    }
                    write!(out, "{u}").ok()?;
                } else if let Some(i) = n.as_i64() {
                    if i.unsigned_abs() > MAX_SAFE_INTEGER {
                        return None;
                    }
                    write!(out, "{i}").ok()?;
                } else {
                    return None;
                }
            }
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_value(out, item)?;
                }
                out.push(']');
            }
            Value::Object(map) => write_object(out, map)?,
        }
        Some(())
    }

    pub(crate) fn write_object(out: &mut String, map: &Map<String, Value>) -> Option<()> {
        // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their
        // names. serde_json's default map iterates sorted by bytes, which
        // agrees for almost all names, so check the order first and write
        // straight through when it holds. With serde_json's `preserve_order`
        // (which any crate in a build can switch on) maps keep insertion
        // order: sort references to the members, on the stack when there
        // are few.
        if in_utf16_order(map) {
            return write_members(out, map.iter());
        }
        const ON_STACK: usize = 16;
        if map.len() <= ON_STACK {
            let mut slots: [Option<(&String, &Value)>; ON_STACK] = [None; ON_STACK];
            for (slot, member) in slots.iter_mut().zip(map) {
                *slot = Some(member);
            }
            let members = slots.get_mut(..map.len())?;
            // Names in a map are unique, so an unstable sort is exact.
            members.sort_unstable_by(|a, b| match (a, b) {
                (Some(a), Some(b)) => utf16_cmp(a.0, b.0),
                _ => std::cmp::Ordering::Equal,
            });
            return write_members(out, members.iter().flatten().copied());
        }
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
        write_members(out, members.into_iter())
    }

    fn write_members<'a>(
        out: &mut String,
        members: impl Iterator<Item = (&'a String, &'a Value)>,
    ) -> Option<()> {
        out.push('{');
        for (i, (k, v)) in members.enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(out, k);
            out.push(':');
            write_value(out, v)?;
        }
        out.push('}');
        Some(())
    }

    /// Puts the members of `map`, and of every object inside it, in
    /// canonical (UTF-16) order where the map keeps insertion order
    /// (serde_json's `preserve_order`). The map's content, and so its JCS
    /// form, does not change; only how fast it is written.
    pub(crate) fn sort_members(map: &mut Map<String, Value>) {
        if !in_utf16_order(map) {
            let mut members: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            members.sort_unstable_by(|a, b| utf16_cmp(&a.0, &b.0));
            map.extend(members);
        }
        for value in map.values_mut() {
            sort_value_members(value);
        }
    }

    /// [`sort_members`] for every object in `value`.
    pub(crate) fn sort_value_members(value: &mut Value) {
        match value {
            Value::Object(map) => sort_members(map),
            Value::Array(items) => items.iter_mut().for_each(sort_value_members),
            _ => {}
        }
    }

    /// True when the map iterates its members in canonical (UTF-16) order.
    pub(crate) fn in_utf16_order(map: &Map<String, Value>) -> bool {
        let mut prev: Option<&str> = None;
        map.keys().all(|k| {
            let ok = prev.is_none_or(|p| utf16_cmp(p, k).is_lt());
            prev = Some(k);
            ok
        })
    }

    /// Compares two strings by their UTF-16 code units. UTF-8 byte order is
    /// code point order, which differs from UTF-16 order only between
    /// U+E000..=U+FFFF (lead bytes 0xEE, 0xEF) and characters above U+FFFF
    /// (lead bytes 0xF0 and up); strings without such bytes compare by bytes.
    pub(crate) fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
        let plain = |s: &str| s.bytes().all(|c| c < 0xEE);
        if plain(a) && plain(b) {
            a.as_bytes().cmp(b.as_bytes())
        } else {
            a.encode_utf16().cmp(b.encode_utf16())
        }
    }

    /// RFC 8785 §3.2.2.2: `"` and `\` escaped, control characters as
    /// `\b \t \n \f \r` or `\u00xx` (lowercase hex), everything else as is.
    pub(crate) fn write_string(out: &mut String, s: &str) {
        out.push('"');
        // Copy runs that need no escape whole; only `"`, `\` and control
        // characters (all ASCII, so never inside a multi-byte character)
        // break a run.
        let bytes = s.as_bytes();
        // Most strings need no escape at all: one branch-free pass (which
        // the compiler vectorises) decides, and the string is copied whole.
        let clean = bytes
            .iter()
            .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
        if clean {
            out.push_str(s);
            out.push('"');
            return;
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0x08 => "\\b",
                b'\t' => "\\t",
                b'\n' => "\\n",
                0x0c => "\\f",
                b'\r' => "\\r",
                0x00..=0x1f => "",
                _ => continue,
            };
            out.push_str(s.get(start..i).unwrap_or_default());
            if escape.is_empty() {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", b);
            } else {
                out.push_str(escape);
            }
            start = i + 1;
        }
        out.push_str(s.get(start..).unwrap_or_default());
        out.push('"');
    }
}

/// A SHA-256 digest, written `sha256:` followed by 64 lowercase hex digits.
///
/// The algorithm prefix is part of the wire form so a later protocol version
/// can add another hash without ambiguity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest `{input}`: expected `sha256:` and 64 lowercase hex digits")]
pub struct DigestParseError {
    input: String,
}

impl Digest {
    /// The wire prefix of a SHA-256 digest.
    pub const PREFIX: &'static str = "sha256:";

    /// The text [`fmt::Display`] writes (`sha256:` and 64 lowercase hex
    /// digits), as ASCII bytes on the stack: for writers on a hot path
    /// that should not allocate a `String` per digest.
    pub fn to_text_bytes(&self) -> [u8; 71] {
        let mut out = [0u8; 71];
        let (prefix, digits) = out.split_at_mut(Self::PREFIX.len());
        prefix.copy_from_slice(Self::PREFIX.as_bytes());
        // 32 bytes are always 64 hex digits: this cannot fail.
        let _ = hex::encode_to_slice(self.0, digits);
        out
    }

    /// SHA-256 of raw bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// SHA-256 of the canonical JSON form of `value`.
    pub fn of_canonical<T: Serialize>(value: &T) -> Result<Self, CanonicalError> {
        canonical_json(value).map(|b| Self::of(&b))
    }

    /// SHA-256 of the canonical JSON form of a JSON value (no copy).
    pub fn of_value(value: &Value) -> Result<Self, CanonicalError> {
        canonical_value(value).map(|b| Self::of(&b))
    }

    /// SHA-256 of the canonical JSON form of a JSON object (no copy), such
    /// as the `arguments` of a `tools/call`.
    pub fn of_object(map: &Map<String, Value>) -> Result<Self, CanonicalError> {
        let mut out = String::with_capacity(128);
        if fast::write_object(&mut out, map).is_some() {
            return Ok(Self::of(out.as_bytes()));
        }
        map.values().try_for_each(reads_back)?;
        serde_json_canonicalizer::to_vec(map)
            .map(|b| Self::of(&b))
            .map_err(|e| CanonicalError {
                reason: e.to_string(),
            })
    }

    /// Wraps 32 raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The 32 raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True when `text` is exactly this digest's wire form (`sha256:` and
    /// 64 lowercase hex digits): the same answer as parsing `text` and
    /// comparing, without parsing.
    pub fn is_written_as(&self, text: &str) -> bool {
        text.as_bytes() == self.to_text_bytes()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DigestParseError {
            input: s.chars().take(80).collect(),
        };
        let hex_part = s.strip_prefix(Self::PREFIX).ok_or_else(err)?;
        // Uppercase hex would give a second spelling of the same digest.
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| err())?;
        Ok(Digest(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_are_not_reads_back_have_no_canonical_form() {
        // (value, accepted): the edges of the rule.
        let cases: [(Value, bool); 12] = [
            (serde_json::json!(9_007_199_254_740_992u64), true),
            (serde_json::json!(9_007_199_254_740_993u64), false),
            (serde_json::json!(9_007_199_254_740_994u64), true),
            (serde_json::json!(1_000_000_000_000_000_000u64), true),
            (serde_json::json!(1_000_000_000_000_000_064u64), false),
            (serde_json::json!(1u64 << 60), false),
            (serde_json::json!(u64::MAX), false),
            // Written -9223372036854776000, which reads back as the double -2^63.
            (serde_json::json!(i64::MIN), true),
            (serde_json::json!(-9_007_199_254_740_993i64), false),
            (serde_json::json!(0.1), true),
            (serde_json::json!(1e21), true),
            // A double whose shortest form is an integer that is not it.
            (serde_json::json!(90_071_992_547_409_936.0f64), false),
        ];
        for (v, exact) in cases {
            let doc = serde_json::json!({"a": [v.clone()]});
            assert_eq!(canonical_value(&doc).is_ok(), exact, "{v}");
            assert_eq!(Digest::of_value(&doc).is_ok(), exact, "{v}");
            let map = doc.as_object().unwrap();
            assert_eq!(Digest::of_object(map).is_ok(), exact, "{v}");
        }
    }

    #[test]
    fn digest_text_bytes_are_its_display() {
        for input in [&b""[..], b"etdi", &[0xffu8; 100][..]] {
            let d = Digest::of(input);
            assert_eq!(d.to_text_bytes().as_slice(), d.to_string().as_bytes());
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(
            parse_json(r#"{"a":1,"a":2}"#),
            Err(JsonError::DuplicateKey { key: "a".into() })
        );
        assert_eq!(
            parse_json(r#"{"x":[{"b":1,"b":1}]}"#),
            Err(JsonError::DuplicateKey { key: "b".into() })
        );
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert_eq!(
            parse_json(&deep),
            Err(JsonError::TooDeep {
                limit: MAX_JSON_DEPTH
            })
        );
        let ok = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
        assert!(parse_json(&ok).is_ok());
        let big = format!("\"{}\"", "a".repeat(MAX_JSON_BYTES));
        assert!(matches!(parse_json(&big), Err(JsonError::TooLarge { .. })));
    }

    #[test]
    fn syntax_errors_carry_position() {
        match parse_json("{\n  \"a\": tru }") {
            Err(JsonError::Syntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse_json("{} x"), Err(JsonError::Syntax { .. })));
    }

    /// The reference: the RFC-proven crate on its own.
    fn reference(v: &Value) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(v).unwrap()
    }

    #[test]
    fn fast_path_matches_the_reference_on_edge_cases() {
        use serde_json::json;
        for v in [
            json!(null),
            json!({"b": 1, "a": [true, false, null], "": "x"}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3, "\u{7f}": 4}),
            json!("\u{0}\u{1}\u{1f}\u{7f}\u{8}\t\n\u{c}\r\"\\/\u{2028}\u{1f600}é"),
            json!([9007199254740992u64, -9007199254740992i64, 0, -0, 1]),
            // These need the general path (numbers JCS formats specially).
            json!([9007199254740994u64, 1.5, 1e21, 1e-7, -0.0, 100.0]),
            json!([1_000_000_000_000_000_000u64, i64::MIN, -9007199254740994i64]),
            json!({"n": {"deep": [{"z": 1, "y": {"x": []}}]}}),
        ] {
            assert_eq!(canonical_value(&v).unwrap(), reference(&v), "{v}");
            if let Value::Object(m) = &v {
                assert_eq!(Digest::of_object(m).unwrap(), Digest::of(&reference(&v)));
            }
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            // Large integers (the general path; some are refused).
            (1u64..2048).prop_map(|k| Value::from(k << 53)),
            (1i64..1024).prop_map(|k| Value::from(-(k << 53))),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\u{0}-\\u{7f}\\u{e000}-\\u{ffff}\\u{10000}-\\u{10ffff}]{0,6}"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    "[a-zA-Z\\u{e000}-\\u{e002}\\u{10000}-\\u{10002}\\u{0}-\\u{1f}]{0,4}",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        #[test]
        fn fast_path_is_byte_identical_to_the_reference(v in json_value()) {
            // A document holding a number its canonical text does not read
            // back as has no canonical form; any other is written exactly
            // as the reference writes it.
            match canonical_value(&v) {
                Ok(bytes) => proptest::prop_assert_eq!(bytes, reference(&v)),
                Err(_) => proptest::prop_assert!(reads_back(&v).is_err(), "refused {}", v),
            }
        }
    }

    #[test]
    fn digest_round_trips_and_refuses_other_spellings() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert!(d.to_string().to_uppercase().parse::<Digest>().is_err());
        // `is_written_as` answers exactly what parse-and-compare answers.
        let other = Digest::of(b"abd");
        for text in [
            d.to_string(),
            other.to_string(),
            d.to_string().to_uppercase(),
            d.to_string().replace("sha256:", "SHA256:"),
            d.to_string()[..70].to_owned(),
            format!("{d}0"),
            format!(" {d}"),
            d.to_string()["sha256:".len()..].to_owned(),
            String::new(),
        ] {
            assert_eq!(
                d.is_written_as(&text),
                text.parse::<Digest>() == Ok(d),
                "{text}"
            );
        }
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                .parse::<Digest>()
                .is_err()
        );
    }
}
