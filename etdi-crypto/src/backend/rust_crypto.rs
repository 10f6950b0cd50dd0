//! The pure-Rust backend on RustCrypto (`rsa`, `ecdsa` with `p256`/`p384`/
//! `p521`, `ed25519-dalek`), behind the `rust-crypto` feature.
//!
//! Slower than aws-lc-rs (brief §6) but needs no C toolchain. Private keys are
//! held in RustCrypto types that zeroize themselves on drop.

use std::marker::PhantomData;

use ecdsa::signature::{SignatureEncoding, Signer, Verifier};
use getrandom::SysRng;
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::Generate as _;
use rsa::sha2::{Sha256, Sha384, Sha512};
use spki::{DecodePublicKey, EncodePublicKey};
use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve, KeySpec};
use crate::error::{BadSignature, CryptoFailure};
use crate::provider::{
    CryptoProvider, KeyBackend, KeyRejected, SecureRandom, SigningKeyImpl, VerifyingKeyImpl,
};

/// The RustCrypto provider.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        name: "rust-crypto",
        keys: &RustCryptoKeys,
        random: &RustCryptoRandom,
    }
}

#[derive(Debug)]
struct RustCryptoKeys;

#[derive(Debug)]
struct RustCryptoRandom;

impl SecureRandom for RustCryptoRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoFailure> {
        getrandom::fill(dest).map_err(|_| CryptoFailure)
    }
}

/// A RustCrypto signer `K` producing signatures of type `S`, with the public
/// key's SPKI computed once at load.
struct RcSigner<K, S> {
    key: K,
    spki: Vec<u8>,
    _sig: PhantomData<fn() -> S>,
}

impl<K, S> SigningKeyImpl for RcSigner<K, S>
where
    K: Signer<S> + Send + Sync,
    S: SignatureEncoding,
{
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        let sig: S = self.key.try_sign(message).map_err(|_| CryptoFailure)?;
        Ok(sig.to_vec())
    }

    fn public_key_spki(&self) -> Result<Vec<u8>, CryptoFailure> {
        Ok(self.spki.clone())
    }
}

fn signer<K, S>(key: K, spki: Vec<u8>) -> Box<dyn SigningKeyImpl>
where
    K: Signer<S> + Send + Sync + 'static,
    S: SignatureEncoding + 'static,
{
    Box::new(RcSigner {
        key,
        spki,
        _sig: PhantomData,
    })
}

/// A RustCrypto verifier `K` for signatures of type `S`.
struct RcVerifier<K, S> {
    key: K,
    _sig: PhantomData<fn() -> S>,
}

impl<K, S> VerifyingKeyImpl for RcVerifier<K, S>
where
    K: Verifier<S> + Send + Sync,
    S: for<'a> TryFrom<&'a [u8]>,
{
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        let sig = S::try_from(signature).map_err(|_| BadSignature)?;
        self.key.verify(message, &sig).map_err(|_| BadSignature)
    }
}

fn verifier<K, S>(key: K) -> Box<dyn VerifyingKeyImpl>
where
    K: Verifier<S> + Send + Sync + 'static,
    S: for<'a> TryFrom<&'a [u8]> + 'static,
{
    Box::new(RcVerifier {
        key,
        _sig: PhantomData,
    })
}

fn spki_of(key: &impl EncodePublicKey) -> Result<Vec<u8>, KeyRejected> {
    Ok(key
        .to_public_key_der()
        .map_err(|_| KeyRejected)?
        .as_bytes()
        .to_vec())
}

impl KeyBackend for RustCryptoKeys {
    fn generate(&self, spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, CryptoFailure> {
        let doc = match spec {
            KeySpec::Rsa(size) => rsa::PrivateKey::new(&mut SysRng, size.bits())
                .map_err(|_| CryptoFailure)?
                .to_pkcs8_der(),
            KeySpec::Ec(Curve::P256) => p256::ecdsa::SigningKey::try_generate()
                .map_err(|_| CryptoFailure)?
                .to_pkcs8_der(),
            KeySpec::Ec(Curve::P384) => p384::ecdsa::SigningKey::try_generate()
                .map_err(|_| CryptoFailure)?
                .to_pkcs8_der(),
            KeySpec::Ec(Curve::P521) => p521::ecdsa::SigningKey::try_generate()
                .map_err(|_| CryptoFailure)?
                .to_pkcs8_der(),
            KeySpec::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut_slice()).map_err(|_| CryptoFailure)?;
                ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_der()
            }
        };
        let doc = doc.map_err(|_| CryptoFailure)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    fn signing_key(
        &self,
        alg: Algorithm,
        der: &[u8],
    ) -> Result<Box<dyn SigningKeyImpl>, KeyRejected> {
        let rsa_key = || -> Result<(rsa::PrivateKey, Vec<u8>), KeyRejected> {
            let key = rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| KeyRejected)?;
            let spki = spki_of(&key.to_public_key())?;
            Ok((key, spki))
        };
        Ok(match alg {
            Algorithm::RS256 => {
                let (key, spki) = rsa_key()?;
                signer(rsa::pkcs1v15::SigningKey::<Sha256>::new(key), spki)
            }
            Algorithm::RS384 => {
                let (key, spki) = rsa_key()?;
                signer(rsa::pkcs1v15::SigningKey::<Sha384>::new(key), spki)
            }
            Algorithm::RS512 => {
                let (key, spki) = rsa_key()?;
                signer(rsa::pkcs1v15::SigningKey::<Sha512>::new(key), spki)
            }
            Algorithm::PS256 => {
                let (key, spki) = rsa_key()?;
                signer(rsa::pss::SigningKey::<Sha256>::new(key), spki)
            }
            Algorithm::PS384 => {
                let (key, spki) = rsa_key()?;
                signer(rsa::pss::SigningKey::<Sha384>::new(key), spki)
            }
            Algorithm::PS512 => {
                let (key, spki) = rsa_key()?;
                signer(rsa::pss::SigningKey::<Sha512>::new(key), spki)
            }
            Algorithm::ES256 => {
                let key = p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| KeyRejected)?;
                let spki = spki_of(key.verifying_key())?;
                signer::<_, p256::ecdsa::Signature>(key, spki)
            }
            Algorithm::ES384 => {
                let key = p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| KeyRejected)?;
                let spki = spki_of(key.verifying_key())?;
                signer::<_, p384::ecdsa::Signature>(key, spki)
            }
            Algorithm::ES512 => {
                let key = p521::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| KeyRejected)?;
                let spki = spki_of(key.verifying_key())?;
                signer::<_, p521::ecdsa::Signature>(key, spki)
            }
            Algorithm::EdDSA => {
                let key =
                    ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| KeyRejected)?;
                let spki = spki_of(&key.verifying_key())?;
                signer::<_, ed25519_dalek::Signature>(key, spki)
            }
        })
    }

    fn verifying_key(
        &self,
        alg: Algorithm,
        der: &[u8],
    ) -> Result<Box<dyn VerifyingKeyImpl>, KeyRejected> {
        let rsa_key = || rsa::PublicKey::from_public_key_der(der).map_err(|_| KeyRejected);
        Ok(match alg {
            // PSS verification expects a salt as long as the hash (RFC 7518 §3.5).
            Algorithm::RS256 => verifier(rsa::pkcs1v15::VerifyingKey::<Sha256>::new(rsa_key()?)),
            Algorithm::RS384 => verifier(rsa::pkcs1v15::VerifyingKey::<Sha384>::new(rsa_key()?)),
            Algorithm::RS512 => verifier(rsa::pkcs1v15::VerifyingKey::<Sha512>::new(rsa_key()?)),
            Algorithm::PS256 => verifier(rsa::pss::VerifyingKey::<Sha256>::new(rsa_key()?)),
            Algorithm::PS384 => verifier(rsa::pss::VerifyingKey::<Sha384>::new(rsa_key()?)),
            Algorithm::PS512 => verifier(rsa::pss::VerifyingKey::<Sha512>::new(rsa_key()?)),
            Algorithm::ES256 => verifier::<_, p256::ecdsa::Signature>(
                p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(|_| KeyRejected)?,
            ),
            Algorithm::ES384 => verifier::<_, p384::ecdsa::Signature>(
                p384::ecdsa::VerifyingKey::from_public_key_der(der).map_err(|_| KeyRejected)?,
            ),
            Algorithm::ES512 => verifier::<_, p521::ecdsa::Signature>(
                p521::ecdsa::VerifyingKey::from_public_key_der(der).map_err(|_| KeyRejected)?,
            ),
            Algorithm::EdDSA => verifier::<_, ed25519_dalek::Signature>(
                ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(|_| KeyRejected)?,
            ),
        })
    }
}
