//! Backend-neutral key encodings: PKCS#8, SubjectPublicKeyInfo, PKCS#1,
//! SEC1 and PEM parsed into typed key components, and built back from them.
//!
//! Untrusted key material is parsed here, once, for both backends: the key
//! type, curve and RSA size checks are made on these typed values before a
//! backend sees any bytes, so the two backends cannot disagree on them.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfoRef;
use spki::{AlgorithmIdentifier, SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::alg::{Algorithm, Curve, KeyType};
use crate::error::KeyError;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Smallest RSA modulus accepted anywhere.
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted: bounds the cost an attacker-supplied key can
/// impose on a verifier, and is the largest size both backends handle.
pub(crate) const RSA_MAX_BITS: usize = 4096;
/// Bound on PEM text accepted, far above a 4096-bit private key.
const MAX_PEM_BYTES: usize = 64 * 1024;

/// The public components of a supported key, in canonical form: RSA integers
/// big-endian without leading zeros, EC coordinates padded to the field size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicParts {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: [u8; 32],
    },
}

impl PublicParts {
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            PublicParts::Rsa { .. } => KeyType::Rsa,
            PublicParts::Ec { curve, .. } => KeyType::Ec(*curve),
            PublicParts::Ed25519 { .. } => KeyType::Ed25519,
        }
    }

    /// RSA modulus size in bits; `None` for other keys.
    pub(crate) fn rsa_bits(&self) -> Option<usize> {
        match self {
            PublicParts::Rsa { n, .. } => Some(bit_len(n)),
            _ => None,
        }
    }

    /// Checks RSA sizes and EC coordinate lengths.
    pub(crate) fn validate(&self) -> Result<(), KeyError> {
        match self {
            PublicParts::Rsa { n, e } => {
                check_rsa_bits(bit_len(n))?;
                if e.is_empty() || e.len() > 8 {
                    return Err(KeyError::encoding("RSA key", "bad public exponent"));
                }
                Ok(())
            }
            PublicParts::Ec { curve, x, y } => {
                if x.len() != curve.field_len() || y.len() != curve.field_len() {
                    return Err(KeyError::encoding("EC key", "coordinate of the wrong size"));
                }
                Ok(())
            }
            PublicParts::Ed25519 { .. } => Ok(()),
        }
    }

    /// Parses a SubjectPublicKeyInfo.
    pub(crate) fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        const FORMAT: &str = "SubjectPublicKeyInfo";
        let spki =
            SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::encoding(FORMAT, e))?;
        let key_bytes = spki.subject_public_key.as_bytes().ok_or_else(|| {
            KeyError::encoding(FORMAT, "public key bit string is not whole bytes")
        })?;
        let parts = match key_type_of(&spki.algorithm)? {
            KeyType::Rsa => {
                let rsa = pkcs1::RsaPublicKeyRef::from_der(key_bytes)
                    .map_err(|e| KeyError::encoding("RSA public key", e))?;
                PublicParts::Rsa {
                    n: rsa.modulus.as_bytes().to_vec(),
                    e: rsa.public_exponent.as_bytes().to_vec(),
                }
            }
            KeyType::Ec(curve) => Self::from_ec_point(curve, key_bytes)?,
            KeyType::Ed25519 => {
                let x: [u8; 32] = key_bytes.try_into().map_err(|_| {
                    KeyError::encoding(FORMAT, "Ed25519 public key is not 32 bytes")
                })?;
                PublicParts::Ed25519 { x }
            }
        };
        parts.validate()?;
        Ok(parts)
    }

    /// Parses an uncompressed SEC1 point (`04 || x || y`).
    pub(crate) fn from_ec_point(curve: Curve, point: &[u8]) -> Result<Self, KeyError> {
        let len = curve.field_len();
        match point.split_first() {
            Some((0x04, rest)) if rest.len() == 2 * len => {
                let (x, y) = rest.split_at(len);
                Ok(PublicParts::Ec {
                    curve,
                    x: x.to_vec(),
                    y: y.to_vec(),
                })
            }
            Some((0x02 | 0x03, _)) => Err(KeyError::Unsupported {
                what: "compressed EC points".to_owned(),
            }),
            _ => Err(KeyError::encoding("EC key", "malformed curve point")),
        }
    }

    /// The uncompressed SEC1 point of an EC key.
    fn ec_point(curve_x: &[u8], curve_y: &[u8]) -> Vec<u8> {
        let mut point = Vec::with_capacity(1 + curve_x.len() + curve_y.len());
        point.push(0x04);
        point.extend_from_slice(curve_x);
        point.extend_from_slice(curve_y);
        point
    }

    /// Encodes as SubjectPublicKeyInfo DER.
    pub(crate) fn to_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        const FORMAT: &str = "SubjectPublicKeyInfo";
        let enc = |e: der::Error| KeyError::encoding(FORMAT, e);
        let (oid, params, key): (ObjectIdentifier, Option<AnyRef<'_>>, Vec<u8>) = match self {
            PublicParts::Rsa { n, e } => {
                let rsa = pkcs1::RsaPublicKeyRef {
                    modulus: UintRef::new(n).map_err(enc)?,
                    public_exponent: UintRef::new(e).map_err(enc)?,
                };
                (
                    RSA_ENCRYPTION,
                    Some(AnyRef::NULL),
                    rsa.to_der().map_err(enc)?,
                )
            }
            PublicParts::Ec { curve, x, y } => (
                EC_PUBLIC_KEY,
                Some(AnyRef::from(curve_oid_ref(*curve))),
                Self::ec_point(x, y),
            ),
            PublicParts::Ed25519 { x } => (ED25519, None, x.to_vec()),
        };
        let spki = SubjectPublicKeyInfo {
            algorithm: AlgorithmIdentifier {
                oid,
                parameters: params,
            },
            subject_public_key: BitStringRef::from_bytes(&key).map_err(enc)?,
        };
        spki.to_der().map_err(enc)
    }
}

/// Checks that a key of this type (and RSA size) may sign with `alg`.
pub(crate) fn check_algorithm(
    alg: Algorithm,
    key: KeyType,
    rsa_bits: Option<usize>,
) -> Result<(), KeyError> {
    if alg.key_type() != key {
        return Err(KeyError::AlgorithmMismatch { alg, key });
    }
    if let Some(bits) = rsa_bits {
        check_rsa_bits(bits)?;
    }
    Ok(())
}

fn check_rsa_bits(bits: usize) -> Result<(), KeyError> {
    if bits < RSA_MIN_BITS {
        return Err(KeyError::RsaTooSmall { bits });
    }
    if bits > RSA_MAX_BITS {
        return Err(KeyError::RsaTooLarge {
            bits,
            max: RSA_MAX_BITS,
        });
    }
    Ok(())
}

/// The private components of a supported key, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PrivateParts {
    /// All eight PKCS#1 integers, canonical (no leading zeros).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        d: Vec<u8>,
        p: Vec<u8>,
        q: Vec<u8>,
        dp: Vec<u8>,
        dq: Vec<u8>,
        qi: Vec<u8>,
    },
    /// The private scalar, padded to the field size, and the public point
    /// when the encoding carries it.
    Ec {
        curve: Curve,
        d: Vec<u8>,
        public: Option<(Vec<u8>, Vec<u8>)>,
    },
    /// The 32-byte seed.
    Ed25519 { seed: [u8; 32] },
}

impl Zeroize for PrivateParts {
    fn zeroize(&mut self) {
        match self {
            PrivateParts::Rsa {
                n,
                e,
                d,
                p,
                q,
                dp,
                dq,
                qi,
            } => {
                for v in [n, e, d, p, q, dp, dq, qi] {
                    v.zeroize();
                }
            }
            PrivateParts::Ec { d, .. } => d.zeroize(),
            PrivateParts::Ed25519 { seed } => seed.zeroize(),
        }
    }
}

impl Drop for PrivateParts {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for PrivateParts {}

impl PrivateParts {
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            PrivateParts::Rsa { .. } => KeyType::Rsa,
            PrivateParts::Ec { curve, .. } => KeyType::Ec(*curve),
            PrivateParts::Ed25519 { .. } => KeyType::Ed25519,
        }
    }

    pub(crate) fn rsa_bits(&self) -> Option<usize> {
        match self {
            PrivateParts::Rsa { n, .. } => Some(bit_len(n)),
            _ => None,
        }
    }

    /// Parses PKCS#8 (v1 or v2) DER.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        const FORMAT: &str = "PKCS#8";
        let info = PrivateKeyInfoRef::from_der(der).map_err(|e| KeyError::encoding(FORMAT, e))?;
        let secret = info.private_key.as_bytes();
        match key_type_of(&info.algorithm)? {
            KeyType::Rsa => {
                let rsa = pkcs1::RsaPrivateKeyRef::from_der(secret)
                    .map_err(|e| KeyError::encoding("RSA private key", e))?;
                if rsa.other_prime_infos.is_some() {
                    return Err(KeyError::Unsupported {
                        what: "multi-prime RSA keys".to_owned(),
                    });
                }
                let parts = PrivateParts::Rsa {
                    n: rsa.modulus.as_bytes().to_vec(),
                    e: rsa.public_exponent.as_bytes().to_vec(),
                    d: rsa.private_exponent.as_bytes().to_vec(),
                    p: rsa.prime1.as_bytes().to_vec(),
                    q: rsa.prime2.as_bytes().to_vec(),
                    dp: rsa.exponent1.as_bytes().to_vec(),
                    dq: rsa.exponent2.as_bytes().to_vec(),
                    qi: rsa.coefficient.as_bytes().to_vec(),
                };
                if let Some(bits) = parts.rsa_bits() {
                    check_rsa_bits(bits)?;
                }
                Ok(parts)
            }
            KeyType::Ec(curve) => {
                let ec = sec1::EcPrivateKey::from_der(secret)
                    .map_err(|e| KeyError::encoding("EC private key", e))?;
                if let Some(sec1::EcParameters::NamedCurve(inner)) = ec.parameters
                    && inner != *curve_oid_ref(curve)
                {
                    return Err(KeyError::encoding(FORMAT, "curve named twice, differently"));
                }
                let d = pad_scalar(curve, ec.private_key)?;
                let public = match ec.public_key {
                    Some(point) => match PublicParts::from_ec_point(curve, point)? {
                        PublicParts::Ec { x, y, .. } => Some((x, y)),
                        _ => None,
                    },
                    None => None,
                };
                Ok(PrivateParts::Ec { curve, d, public })
            }
            KeyType::Ed25519 => {
                let inner = <&OctetStringRef>::from_der(secret)
                    .map_err(|e| KeyError::encoding("Ed25519 private key", e))?;
                let seed: [u8; 32] = inner.as_bytes().try_into().map_err(|_| {
                    KeyError::encoding("Ed25519 private key", "seed is not 32 bytes")
                })?;
                Ok(PrivateParts::Ed25519 { seed })
            }
        }
    }

    /// Encodes as PKCS#8 v1 DER; for EC keys the public point is included
    /// when known (RFC 5915), so backends can check it against the scalar.
    pub(crate) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        const FORMAT: &str = "PKCS#8";
        let enc = |e: der::Error| KeyError::encoding(FORMAT, e);
        let (oid, params, secret): (ObjectIdentifier, Option<AnyRef<'_>>, Zeroizing<Vec<u8>>) =
            match self {
                PrivateParts::Rsa {
                    n,
                    e,
                    d,
                    p,
                    q,
                    dp,
                    dq,
                    qi,
                } => {
                    let rsa = pkcs1::RsaPrivateKeyRef {
                        modulus: UintRef::new(n).map_err(enc)?,
                        public_exponent: UintRef::new(e).map_err(enc)?,
                        private_exponent: UintRef::new(d).map_err(enc)?,
                        prime1: UintRef::new(p).map_err(enc)?,
                        prime2: UintRef::new(q).map_err(enc)?,
                        exponent1: UintRef::new(dp).map_err(enc)?,
                        exponent2: UintRef::new(dq).map_err(enc)?,
                        coefficient: UintRef::new(qi).map_err(enc)?,
                        other_prime_infos: None,
                    };
                    (
                        RSA_ENCRYPTION,
                        Some(AnyRef::NULL),
                        Zeroizing::new(rsa.to_der().map_err(enc)?),
                    )
                }
                PrivateParts::Ec { curve, d, public } => {
                    let point = public.as_ref().map(|(x, y)| PublicParts::ec_point(x, y));
                    let ec = sec1::EcPrivateKey {
                        private_key: d,
                        parameters: None,
                        public_key: point.as_deref(),
                    };
                    (
                        EC_PUBLIC_KEY,
                        Some(AnyRef::from(curve_oid_ref(*curve))),
                        Zeroizing::new(ec.to_der().map_err(enc)?),
                    )
                }
                PrivateParts::Ed25519 { seed } => {
                    let inner = OctetStringRef::new(seed).map_err(enc)?;
                    (ED25519, None, Zeroizing::new(inner.to_der().map_err(enc)?))
                }
            };
        let info = PrivateKeyInfoRef {
            algorithm: AlgorithmIdentifier {
                oid,
                parameters: params,
            },
            private_key: OctetStringRef::new(&secret).map_err(enc)?,
            public_key: None,
        };
        Ok(Zeroizing::new(info.to_der().map_err(enc)?))
    }
}

/// Decodes PEM with the expected label. Other labels get a typed error that
/// names what was found, so `RSA PRIVATE KEY` (PKCS#1) is reported plainly.
pub(crate) fn pem_decode(
    pem: &str,
    expected: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(KeyError::encoding("PEM", "input too large"));
    }
    let (label, der) =
        der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| KeyError::encoding("PEM", e))?;
    let der = Zeroizing::new(der);
    if label != expected {
        let mut found = label.to_owned();
        found.truncate(40);
        return Err(KeyError::PemLabel { expected, found });
    }
    Ok(der)
}

/// Encodes DER as PEM with LF line endings.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> Result<Zeroizing<String>, KeyError> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der)
        .map(Zeroizing::new)
        .map_err(|e| KeyError::encoding("PEM", e))
}

fn key_type_of(alg: &AlgorithmIdentifier<AnyRef<'_>>) -> Result<KeyType, KeyError> {
    if alg.oid == RSA_ENCRYPTION {
        // RFC 3279: the parameters are NULL; absent is tolerated because some
        // encoders drop them.
        match alg.parameters {
            None => {}
            Some(p) if p.is_null() => {}
            Some(_) => {
                return Err(KeyError::encoding(
                    "key",
                    "RSA key with unexpected parameters",
                ));
            }
        }
        return Ok(KeyType::Rsa);
    }
    if alg.oid == EC_PUBLIC_KEY {
        let curve_oid: ObjectIdentifier = alg
            .parameters
            .ok_or_else(|| KeyError::encoding("key", "EC key without a named curve"))?
            .decode_as()
            .map_err(|_| KeyError::Unsupported {
                what: "EC keys with explicit curve parameters".to_owned(),
            })?;
        let curve = match curve_oid {
            oid if oid == SECP256R1 => Curve::P256,
            oid if oid == SECP384R1 => Curve::P384,
            oid if oid == SECP521R1 => Curve::P521,
            other => {
                return Err(KeyError::Unsupported {
                    what: format!("EC curve {other}"),
                });
            }
        };
        return Ok(KeyType::Ec(curve));
    }
    if alg.oid == ED25519 {
        if alg.parameters.is_some() {
            return Err(KeyError::encoding("key", "Ed25519 key with parameters"));
        }
        return Ok(KeyType::Ed25519);
    }
    if alg.oid == RSASSA_PSS {
        return Err(KeyError::Unsupported {
            what: "RSASSA-PSS-restricted keys (use an rsaEncryption key with PS256/384/512)"
                .to_owned(),
        });
    }
    Err(KeyError::Unsupported {
        what: format!("key algorithm {}", alg.oid),
    })
}

fn curve_oid_ref(curve: Curve) -> &'static ObjectIdentifier {
    match curve {
        Curve::P256 => &SECP256R1,
        Curve::P384 => &SECP384R1,
        Curve::P521 => &SECP521R1,
    }
}

/// Left-pads an EC private scalar to the field size (some encoders strip
/// leading zeros); refuses one that is too long.
pub(crate) fn pad_scalar(curve: Curve, d: &[u8]) -> Result<Vec<u8>, KeyError> {
    let len = curve.field_len();
    let trimmed = strip_leading_zeros(d);
    if trimmed.len() > len || trimmed.is_empty() {
        return Err(KeyError::encoding(
            "EC private key",
            "scalar of the wrong size",
        ));
    }
    let mut out = vec![0u8; len - trimmed.len()];
    out.extend_from_slice(trimmed);
    Ok(out)
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Bit length of a big-endian unsigned integer.
pub(crate) fn bit_len(bytes: &[u8]) -> usize {
    let trimmed = strip_leading_zeros(bytes);
    match trimmed.first() {
        Some(top) => (trimmed.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_len_counts_from_the_top_bit() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x7f, 0xff]), 15);
    }

    #[test]
    fn scalars_are_padded_and_bounded() {
        assert_eq!(pad_scalar(Curve::P256, &[1]).unwrap().len(), 32);
        assert!(pad_scalar(Curve::P256, &[1; 33]).is_err());
        assert!(pad_scalar(Curve::P256, &[0; 4]).is_err());
    }

    #[test]
    fn wrong_pem_label_is_named() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            pem_decode(pem, "PRIVATE KEY"),
            Err(KeyError::PemLabel {
                expected: "PRIVATE KEY",
                found: "RSA PRIVATE KEY".to_owned()
            })
        );
    }
}
