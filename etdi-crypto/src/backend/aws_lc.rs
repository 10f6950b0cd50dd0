//! The default backend, on aws-lc-rs: fast (brief §6), has P-521, and can be
//! built in FIPS mode.
//!
//! Keys are parsed once into aws-lc key objects (`RsaKeyPair`,
//! `EcdsaKeyPair`, `Ed25519KeyPair`, `ParsedPublicKey`); aws-lc frees private
//! keys with `OPENSSL_cleanse`, which is the zeroization this backend allows.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
    RsaEncoding, RsaKeyPair, VerificationAlgorithm,
};
use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve, KeySpec, RsaKeySize};
use crate::error::{BadSignature, CryptoFailure};
use crate::provider::{
    CryptoProvider, KeyBackend, KeyRejected, SecureRandom, SigningKeyImpl, VerifyingKeyImpl,
};

/// The aws-lc-rs provider.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        name: "aws-lc-rs",
        keys: &AwsLcKeys,
        random: &AwsLcRandom,
    }
}

#[derive(Debug)]
struct AwsLcKeys;

#[derive(Debug)]
struct AwsLcRandom;

impl SecureRandom for AwsLcRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoFailure> {
        SystemRandom::new().fill(dest).map_err(|_| CryptoFailure)
    }
}

fn ecdsa_signing(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn rsa_encoding(alg: Algorithm) -> Option<&'static dyn RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn verification(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    // The RSA parameters accept 2048..=8192-bit moduli; the common layer has
    // already narrowed that to 2048..=4096. PSS verification uses a salt as
    // long as the hash, as RFC 7518 §3.5 requires.
    match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
    }
}

impl KeyBackend for AwsLcKeys {
    fn generate(&self, spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, CryptoFailure> {
        let der: Vec<u8> = match spec {
            KeySpec::Rsa(size) => {
                let size = match size {
                    RsaKeySize::Bits2048 => KeySize::Rsa2048,
                    RsaKeySize::Bits3072 => KeySize::Rsa3072,
                    RsaKeySize::Bits4096 => KeySize::Rsa4096,
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| CryptoFailure)?;
                let doc: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| CryptoFailure)?;
                doc.as_ref().to_vec()
            }
            KeySpec::Ec(curve) => {
                let pair =
                    EcdsaKeyPair::generate(ecdsa_signing(curve)).map_err(|_| CryptoFailure)?;
                pair.to_pkcs8v1()
                    .map_err(|_| CryptoFailure)?
                    .as_ref()
                    .to_vec()
            }
            KeySpec::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(|_| CryptoFailure)?;
                pair.to_pkcs8v1()
                    .map_err(|_| CryptoFailure)?
                    .as_ref()
                    .to_vec()
            }
        };
        Ok(Zeroizing::new(der))
    }

    fn signing_key(
        &self,
        alg: Algorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn SigningKeyImpl>, KeyRejected> {
        let key: Box<dyn SigningKeyImpl> = match alg {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
                let curve = match alg {
                    Algorithm::ES256 => Curve::P256,
                    Algorithm::ES384 => Curve::P384,
                    _ => Curve::P521,
                };
                let pair = EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), pkcs8_der)
                    .map_err(|_| KeyRejected)?;
                Box::new(EcSigner { pair })
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8_der).map_err(|_| KeyRejected)?;
                Box::new(EdSigner { pair })
            }
            rsa => {
                let encoding = rsa_encoding(rsa).ok_or(KeyRejected)?;
                let pair = RsaKeyPair::from_pkcs8(pkcs8_der).map_err(|_| KeyRejected)?;
                Box::new(RsaSigner { pair, encoding })
            }
        };
        Ok(key)
    }

    fn verifying_key(
        &self,
        alg: Algorithm,
        spki_der: &[u8],
    ) -> Result<Box<dyn VerifyingKeyImpl>, KeyRejected> {
        let key = ParsedPublicKey::new(verification(alg), spki_der).map_err(|_| KeyRejected)?;
        Ok(Box::new(Verifier { key }))
    }
}

struct RsaSigner {
    pair: RsaKeyPair,
    encoding: &'static dyn RsaEncoding,
}

impl SigningKeyImpl for RsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(self.encoding, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| CryptoFailure)?;
        Ok(sig)
    }

    fn public_key_spki(&self) -> Result<Vec<u8>, CryptoFailure> {
        let der: PublicKeyX509Der<'static> =
            self.pair.public_key().as_der().map_err(|_| CryptoFailure)?;
        Ok(der.as_ref().to_vec())
    }
}

struct EcSigner {
    pair: EcdsaKeyPair,
}

impl SigningKeyImpl for EcSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| CryptoFailure)?;
        Ok(sig.as_ref().to_vec())
    }

    fn public_key_spki(&self) -> Result<Vec<u8>, CryptoFailure> {
        let der: PublicKeyX509Der<'static> =
            self.pair.public_key().as_der().map_err(|_| CryptoFailure)?;
        Ok(der.as_ref().to_vec())
    }
}

struct EdSigner {
    pair: Ed25519KeyPair,
}

impl SigningKeyImpl for EdSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        Ok(self.pair.sign(message).as_ref().to_vec())
    }

    fn public_key_spki(&self) -> Result<Vec<u8>, CryptoFailure> {
        let der: PublicKeyX509Der<'static> =
            self.pair.public_key().as_der().map_err(|_| CryptoFailure)?;
        Ok(der.as_ref().to_vec())
    }
}

struct Verifier {
    key: ParsedPublicKey,
}

impl VerifyingKeyImpl for Verifier {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        self.key
            .verify_sig(message, signature)
            .map_err(|_| BadSignature)
    }
}
