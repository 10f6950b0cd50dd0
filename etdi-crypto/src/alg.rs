//! The JOSE signature algorithms ETDI accepts, and the key kinds each one needs.
//!
//! Only asymmetric algorithms exist here: `none` and the HMAC family are
//! refused when a name is parsed, so no code past the parser can meet them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AlgorithmError;

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037 §3.1).
///
/// `ES512` is ECDSA on P-521 with SHA-512, as in RFC 7518.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, 32-byte salt.
    PS256,
    /// RSASSA-PSS with SHA-384, MGF1 with SHA-384, 48-byte salt.
    PS384,
    /// RSASSA-PSS with SHA-512, MGF1 with SHA-512, 64-byte salt.
    PS512,
    /// ECDSA on P-256 with SHA-256, signature as fixed-size `r || s`.
    ES256,
    /// ECDSA on P-384 with SHA-384, signature as fixed-size `r || s`.
    ES384,
    /// ECDSA on P-521 with SHA-512, signature as fixed-size `r || s`.
    ES512,
    /// EdDSA on Ed25519 (RFC 8037).
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm, in a stable order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    /// The algorithms every ETDI implementation must support (brief §3).
    pub const REQUIRED: [Algorithm; 6] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
    ];

    /// The registered JOSE name (`"RS256"`, `"EdDSA"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE `alg` name. Names are case-sensitive (RFC 7515 §4.1.1).
    ///
    /// `none` and `HS*` get their own error variants so a log says plainly
    /// that someone tried them.
    pub fn parse(name: &str) -> Result<Self, AlgorithmError> {
        for alg in Algorithm::ALL {
            if alg.name() == name {
                return Ok(alg);
            }
        }
        if name.eq_ignore_ascii_case("none") {
            return Err(AlgorithmError::None);
        }
        if matches!(name, "HS256" | "HS384" | "HS512") {
            return Err(AlgorithmError::Symmetric {
                name: name.to_owned(),
            });
        }
        Err(AlgorithmError::Unsupported {
            name: truncate_for_message(name),
        })
    }

    /// The kind of key this algorithm signs with.
    pub const fn key_type(self) -> KeyType {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyType::Rsa,
            Algorithm::ES256 => KeyType::Ec(Curve::P256),
            Algorithm::ES384 => KeyType::Ec(Curve::P384),
            Algorithm::ES512 => KeyType::Ec(Curve::P521),
            Algorithm::EdDSA => KeyType::Ed25519,
        }
    }

    /// The algorithm implied by an EC curve or an Ed25519 key; `None` for
    /// RSA, where the padding and hash must be chosen by the caller.
    pub const fn implied_by(key_type: KeyType) -> Option<Algorithm> {
        match key_type {
            KeyType::Rsa => None,
            KeyType::Ec(Curve::P256) => Some(Algorithm::ES256),
            KeyType::Ec(Curve::P384) => Some(Algorithm::ES384),
            KeyType::Ec(Curve::P521) => Some(Algorithm::ES512),
            KeyType::Ed25519 => Some(Algorithm::EdDSA),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = AlgorithmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::parse(s)
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Algorithm::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// A NIST curve used with ECDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Curve {
    /// NIST P-256 (secp256r1), JWK `crv` `"P-256"`.
    P256,
    /// NIST P-384 (secp384r1), JWK `crv` `"P-384"`.
    P384,
    /// NIST P-521 (secp521r1), JWK `crv` `"P-521"`.
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    pub const fn jwk_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Size in bytes of a field element (and of `r` and `s` in a JOSE
    /// signature).
    pub const fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwk_name())
    }
}

/// The type of a key, as far as algorithm selection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// An RSA key of any size.
    Rsa,
    /// An ECDSA key on the given curve.
    Ec(Curve),
    /// An Ed25519 key.
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Rsa => f.write_str("RSA"),
            KeyType::Ec(curve) => write!(f, "EC {curve}"),
            KeyType::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// RSA modulus sizes offered for key generation.
///
/// Keys under 2048 bits are refused everywhere; larger sizes than these can
/// be imported but are not generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RsaKeySize {
    /// 2048-bit modulus (the JOSE minimum; the default).
    #[default]
    Bits2048,
    /// 3072-bit modulus.
    Bits3072,
    /// 4096-bit modulus.
    Bits4096,
}

impl RsaKeySize {
    /// The modulus size in bits.
    pub const fn bits(self) -> usize {
        match self {
            RsaKeySize::Bits2048 => 2048,
            RsaKeySize::Bits3072 => 3072,
            RsaKeySize::Bits4096 => 4096,
        }
    }
}

/// What to generate: the input of [`crate::KeyBackend::generate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// An RSA key with a modulus of the given size.
    Rsa(RsaKeySize),
    /// An ECDSA key on the given curve.
    Ec(Curve),
    /// An Ed25519 key.
    Ed25519,
}

impl KeySpec {
    /// The default key for an algorithm: RSA 2048, or the curve it names.
    pub const fn for_algorithm(alg: Algorithm) -> KeySpec {
        match alg.key_type() {
            KeyType::Rsa => KeySpec::Rsa(RsaKeySize::Bits2048),
            KeyType::Ec(curve) => KeySpec::Ec(curve),
            KeyType::Ed25519 => KeySpec::Ed25519,
        }
    }

    /// The key type this spec produces.
    pub const fn key_type(self) -> KeyType {
        match self {
            KeySpec::Rsa(_) => KeyType::Rsa,
            KeySpec::Ec(curve) => KeyType::Ec(curve),
            KeySpec::Ed25519 => KeyType::Ed25519,
        }
    }
}

/// Attacker-chosen names end up in error messages; keep them short.
fn truncate_for_message(name: &str) -> String {
    const LIMIT: usize = 32;
    if name.len() <= LIMIT {
        return name.to_owned();
    }
    let mut cut = LIMIT;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", name.get(..cut).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.name()), Ok(alg));
        }
    }

    #[test]
    fn none_and_hmac_are_refused_with_their_own_errors() {
        assert_eq!(Algorithm::parse("none"), Err(AlgorithmError::None));
        assert_eq!(Algorithm::parse("NONE"), Err(AlgorithmError::None));
        assert!(matches!(
            Algorithm::parse("HS256"),
            Err(AlgorithmError::Symmetric { .. })
        ));
        assert!(matches!(
            Algorithm::parse("rs256"),
            Err(AlgorithmError::Unsupported { .. })
        ));
        assert!(matches!(
            Algorithm::parse("ES256K"),
            Err(AlgorithmError::Unsupported { .. })
        ));
    }

    #[test]
    fn long_names_are_truncated_in_errors() {
        let long = "x".repeat(1000);
        let Err(AlgorithmError::Unsupported { name }) = Algorithm::parse(&long) else {
            panic!("expected Unsupported");
        };
        assert!(name.len() < 40);
    }
}
