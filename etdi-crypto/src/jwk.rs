//! JSON Web Keys (RFC 7517/7518/8037) and JWK Sets: parsing, export and
//! RFC 7638 thumbprints.
//!
//! A [`Jwk`] is only data: it becomes a usable key through
//! [`crate::VerifyingKey::from_jwk`] or [`crate::SigningKey::from_jwk`], which
//! check every member. Private members are zeroized on drop and never shown
//! by `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::B64;
use crate::alg::{Algorithm, Curve, KeyType};
use crate::error::KeyError;
use crate::key::{KeyId, thumbprint_of};
use crate::key_der::{PrivateParts, PublicParts, pad_scalar, strip_leading_zeros};

/// Largest JWK or JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A JSON Web Key. Unknown members are kept (and re-emitted) but never used.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Jwk {
    kty: String,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    key_use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_ops: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oth: Option<serde_json::Value>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

impl Drop for Jwk {
    fn drop(&mut self) {
        for member in [
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qi,
        ] {
            member.zeroize();
        }
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Jwk");
        s.field("kty", &self.kty);
        for (name, value) in [
            ("use", &self.key_use),
            ("alg", &self.alg),
            ("kid", &self.kid),
            ("crv", &self.crv),
        ] {
            if let Some(v) = value {
                s.field(name, v);
            }
        }
        if self.is_private() {
            s.field("private", &"<redacted>");
        }
        s.finish_non_exhaustive()
    }
}

impl Jwk {
    /// Parses one JWK from JSON (bounded size, duplicate members refused).
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        parse_bounded(json)
    }

    /// Serialises as compact JSON. For a private JWK the result holds secrets.
    pub fn to_json(&self) -> String {
        // INVARIANT: every member is a string, string list or JSON value, so
        // serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `kty`: `RSA`, `EC`, `OKP`, ...
    pub fn kty(&self) -> &str {
        &self.kty
    }

    /// `kid`, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `alg`, if present (unparsed).
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// `use` (`sig` or `enc`), if present.
    pub fn key_use(&self) -> Option<&str> {
        self.key_use.as_deref()
    }

    /// `crv`, if present.
    pub fn crv(&self) -> Option<&str> {
        self.crv.as_deref()
    }

    /// Any other member, by name (`x5c`, `x5t#S256`, ...).
    pub fn member(&self, name: &str) -> Option<&serde_json::Value> {
        self.other.get(name)
    }

    /// Whether any private member is present.
    pub fn is_private(&self) -> bool {
        [&self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi]
            .iter()
            .any(|m| m.is_some())
            || self.oth.is_some()
    }

    /// Sets `kid`.
    pub fn set_kid(&mut self, kid: Option<&str>) {
        self.kid = kid.map(str::to_owned);
    }

    /// The same key without private members.
    pub fn to_public(&self) -> Jwk {
        let mut public = self.clone();
        for member in [
            &mut public.d,
            &mut public.p,
            &mut public.q,
            &mut public.dp,
            &mut public.dq,
            &mut public.qi,
        ] {
            member.zeroize();
            *member = None;
        }
        public.oth = None;
        public
    }

    /// The RFC 7638 thumbprint of the public members (after checking them).
    pub fn thumbprint(&self) -> Result<KeyId, KeyError> {
        Ok(thumbprint_of(&self.public_parts()?))
    }

    /// Whether this JWK may be used to verify signatures: `use` absent or
    /// `sig`, and `key_ops` absent or containing `verify`.
    pub fn usable_for_signatures(&self) -> bool {
        let use_ok = self.key_use.as_deref().is_none_or(|u| u == "sig");
        let ops_ok = self
            .key_ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|o| o == "verify" || o == "sign"));
        use_ok && ops_ok
    }

    pub(crate) fn from_public_parts(
        parts: &PublicParts,
        alg: Option<Algorithm>,
        kid: Option<&str>,
    ) -> Jwk {
        // Field by field: `Jwk` implements `Drop`, so struct-update syntax
        // cannot move out of a default value.
        let mut jwk = Jwk::default();
        jwk.key_use = Some("sig".to_owned());
        jwk.alg = alg.map(|a| a.name().to_owned());
        jwk.kid = kid.map(str::to_owned);
        match parts {
            PublicParts::Rsa { n, e } => {
                jwk.kty = "RSA".to_owned();
                jwk.n = Some(B64.encode(n));
                jwk.e = Some(B64.encode(e));
            }
            PublicParts::Ec { curve, x, y } => {
                jwk.kty = "EC".to_owned();
                jwk.crv = Some(curve.jwk_name().to_owned());
                jwk.x = Some(B64.encode(x));
                jwk.y = Some(B64.encode(y));
            }
            PublicParts::Ed25519 { x } => {
                jwk.kty = "OKP".to_owned();
                jwk.crv = Some("Ed25519".to_owned());
                jwk.x = Some(B64.encode(x));
            }
        }
        jwk
    }

    pub(crate) fn from_private_parts(
        private: &PrivateParts,
        public: &PublicParts,
        alg: Option<Algorithm>,
        kid: Option<&str>,
    ) -> Jwk {
        let mut jwk = Jwk::from_public_parts(public, alg, kid);
        match private {
            PrivateParts::Rsa {
                d,
                p,
                q,
                dp,
                dq,
                qi,
                ..
            } => {
                jwk.d = Some(B64.encode(d));
                jwk.p = Some(B64.encode(p));
                jwk.q = Some(B64.encode(q));
                jwk.dp = Some(B64.encode(dp));
                jwk.dq = Some(B64.encode(dq));
                jwk.qi = Some(B64.encode(qi));
            }
            PrivateParts::Ec { d, .. } => jwk.d = Some(B64.encode(d)),
            PrivateParts::Ed25519 { seed } => jwk.d = Some(B64.encode(seed)),
        }
        jwk
    }

    /// Decodes and checks the public members.
    pub(crate) fn public_parts(&self) -> Result<PublicParts, KeyError> {
        let parts = match self.kty.as_str() {
            "RSA" => PublicParts::Rsa {
                n: strip_leading_zeros(&member(&self.n, "n")?).to_vec(),
                e: strip_leading_zeros(&member(&self.e, "e")?).to_vec(),
            },
            "EC" => {
                let curve = self.ec_curve()?;
                let x = member(&self.x, "x")?;
                let y = member(&self.y, "y")?;
                // RFC 7518 §6.2.1.2: coordinates are exactly the field size.
                if x.len() != curve.field_len() {
                    return Err(KeyError::JwkMember {
                        member: "x",
                        problem: "wrong length for the curve",
                    });
                }
                if y.len() != curve.field_len() {
                    return Err(KeyError::JwkMember {
                        member: "y",
                        problem: "wrong length for the curve",
                    });
                }
                PublicParts::Ec { curve, x, y }
            }
            "OKP" => {
                match self.crv.as_deref() {
                    Some("Ed25519") => {}
                    Some(_) => {
                        return Err(KeyError::Unsupported {
                            what: "OKP curve other than Ed25519".to_owned(),
                        });
                    }
                    None => {
                        return Err(KeyError::JwkMember {
                            member: "crv",
                            problem: "missing",
                        });
                    }
                }
                let x: [u8; 32] =
                    member(&self.x, "x")?
                        .try_into()
                        .map_err(|_| KeyError::JwkMember {
                            member: "x",
                            problem: "an Ed25519 key is 32 bytes",
                        })?;
                PublicParts::Ed25519 { x }
            }
            "oct" => {
                return Err(KeyError::Unsupported {
                    what: "symmetric (oct) keys".to_owned(),
                });
            }
            "" => {
                return Err(KeyError::JwkMember {
                    member: "kty",
                    problem: "missing",
                });
            }
            other => {
                let mut what = format!("key type {other}");
                what.truncate(40);
                return Err(KeyError::Unsupported { what });
            }
        };
        parts.validate()?;
        Ok(parts)
    }

    /// Decodes and checks the private members.
    pub(crate) fn private_parts(&self) -> Result<PrivateParts, KeyError> {
        let public = self.public_parts()?;
        if self.oth.is_some() {
            return Err(KeyError::Unsupported {
                what: "multi-prime RSA keys".to_owned(),
            });
        }
        match public {
            PublicParts::Rsa { n, e } => {
                let get = |v: &Option<String>, name: &'static str| -> Result<Vec<u8>, KeyError> {
                    let mut bytes = member(v, name).map_err(|err| match err {
                        KeyError::JwkMember {
                            problem: "missing", ..
                        } => KeyError::JwkMember {
                            member: name,
                            problem: "missing (RSA private JWKs need d, p, q, dp, dq and qi)",
                        },
                        other => other,
                    })?;
                    let trimmed = strip_leading_zeros(&bytes).to_vec();
                    bytes.zeroize();
                    Ok(trimmed)
                };
                Ok(PrivateParts::Rsa {
                    n,
                    e,
                    d: get(&self.d, "d")?,
                    p: get(&self.p, "p")?,
                    q: get(&self.q, "q")?,
                    dp: get(&self.dp, "dp")?,
                    dq: get(&self.dq, "dq")?,
                    qi: get(&self.qi, "qi")?,
                })
            }
            PublicParts::Ec { curve, x, y } => {
                let mut raw = member(&self.d, "d")?;
                if raw.len() != curve.field_len() {
                    raw.zeroize();
                    return Err(KeyError::JwkMember {
                        member: "d",
                        problem: "wrong length for the curve",
                    });
                }
                let d = pad_scalar(curve, &raw);
                raw.zeroize();
                Ok(PrivateParts::Ec {
                    curve,
                    d: d?,
                    public: Some((x, y)),
                })
            }
            PublicParts::Ed25519 { .. } => {
                let mut raw = member(&self.d, "d")?;
                let seed: Result<[u8; 32], _> = raw.as_slice().try_into();
                raw.zeroize();
                let seed = seed.map_err(|_| KeyError::JwkMember {
                    member: "d",
                    problem: "an Ed25519 private key is 32 bytes",
                })?;
                Ok(PrivateParts::Ed25519 { seed })
            }
        }
    }

    fn ec_curve(&self) -> Result<Curve, KeyError> {
        match self.crv.as_deref() {
            Some("P-256") => Ok(Curve::P256),
            Some("P-384") => Ok(Curve::P384),
            Some("P-521") => Ok(Curve::P521),
            Some(_) => Err(KeyError::Unsupported {
                what: "EC curve other than P-256, P-384 and P-521".to_owned(),
            }),
            None => Err(KeyError::JwkMember {
                member: "crv",
                problem: "missing",
            }),
        }
    }

    /// Picks the algorithm for a key: the requested one, else the JWK's
    /// `alg`, else the one the curve implies.
    pub(crate) fn resolve_algorithm(
        &self,
        requested: Option<Algorithm>,
        key: KeyType,
    ) -> Result<Algorithm, KeyError> {
        let marked = self.alg.as_deref().map(Algorithm::parse).transpose()?;
        let alg = match (requested, marked) {
            (Some(requested), Some(marked)) if requested != marked => {
                return Err(KeyError::MarkedAlgorithm { marked, requested });
            }
            (Some(alg), _) | (None, Some(alg)) => alg,
            (None, None) => Algorithm::implied_by(key).ok_or(KeyError::AlgorithmRequired)?,
        };
        if alg.key_type() != key {
            return Err(KeyError::AlgorithmMismatch { alg, key });
        }
        Ok(alg)
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct JwkSet {
    /// The keys, in document order.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a JWKS document (bounded size, duplicate members refused).
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        parse_bounded(json)
    }

    /// Serialises as compact JSON.
    pub fn to_json(&self) -> String {
        // INVARIANT: see `Jwk::to_json`.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The first key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

fn parse_bounded<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, KeyError> {
    if json.len() > MAX_JWKS_BYTES {
        return Err(KeyError::Jwk {
            detail: format!(
                "document is {} bytes, more than the limit of {MAX_JWKS_BYTES}",
                json.len()
            ),
        });
    }
    let value = etdi_core::canonical::parse_json(json).map_err(|e| KeyError::Jwk {
        detail: e.to_string(),
    })?;
    serde_json::from_value(value).map_err(|e| KeyError::Jwk {
        detail: e.to_string(),
    })
}

/// Decodes a required base64url member strictly.
fn member(value: &Option<String>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = value.as_deref().ok_or(KeyError::JwkMember {
        member: name,
        problem: "missing",
    })?;
    let bytes = B64.decode(text).map_err(|_| KeyError::JwkMember {
        member: name,
        problem: "not unpadded base64url",
    })?;
    if bytes.is_empty() {
        return Err(KeyError::JwkMember {
            member: name,
            problem: "empty",
        });
    }
    Ok(bytes)
}
