//! Keys from files: private keys (PKCS#8 PEM or private JWK) and public keys
//! (SPKI PEM, JWK or JWKS).
//!
//! An EC or Ed25519 key implies its algorithm; an RSA key does not (PKCS#1
//! v1.5 or PSS, which hash), so it needs `--alg` unless a JWK names it.

use std::path::Path;

use etdi_crypto::manager::{KeyManager, KeyManagerConfig, StoreOptions};
use etdi_crypto::{
    Algorithm, CryptoProvider, Jwk, JwkSet, KeyError, SigningKey, VerifyingKey, VerifyingKeySet,
};

use super::files::{read_text, show};

fn provider() -> &'static CryptoProvider {
    CryptoProvider::get_default()
}

/// Imports with `alg`, or, when none is given, with the algorithm the key
/// implies (probing with ES256 reveals the key type without trusting it).
fn with_algorithm<T>(
    alg: Option<Algorithm>,
    import: impl Fn(Algorithm) -> Result<T, KeyError>,
) -> Result<T, KeyError> {
    if let Some(alg) = alg {
        return import(alg);
    }
    match import(Algorithm::ES256) {
        Err(KeyError::AlgorithmMismatch { key, .. }) => match Algorithm::implied_by(key) {
            Some(implied) => import(implied),
            None => Err(KeyError::AlgorithmRequired),
        },
        other => other,
    }
}

fn key_error(path: &Path, e: &KeyError) -> String {
    match e {
        KeyError::AlgorithmRequired => format!(
            "{}: an RSA key does not say which algorithm it signs with; give --alg (RS256, PS256, ...)",
            show(path)
        ),
        e => format!("{}: {e}", show(path)),
    }
}

/// Reads a private key: PKCS#8 PEM, or a private JWK.
pub fn load_signing_key(path: &Path, alg: Option<Algorithm>) -> Result<SigningKey, String> {
    let text = read_text(path, "private key")?;
    let trimmed = text.trim_start();
    let key = if trimmed.starts_with('{') {
        let jwk = Jwk::from_json(trimmed).map_err(|e| key_error(path, &e))?;
        if !jwk.is_private() {
            return Err(format!(
                "{}: the JWK is a public key; signing needs the private key",
                show(path)
            ));
        }
        SigningKey::from_jwk(provider(), &jwk, alg)
    } else {
        with_algorithm(alg, |a| SigningKey::from_pkcs8_pem(provider(), &text, a))
    };
    key.map_err(|e| key_error(path, &e))
}

/// Reads trusted public keys: an SPKI PEM, a JWK, or a JWKS (every key must
/// import; a key the operator named and that cannot be used is an error,
/// not something to skip silently).
pub fn load_verifying_keys(
    path: &Path,
    alg: Option<Algorithm>,
) -> Result<Vec<VerifyingKey>, String> {
    let text = read_text(path, "public key")?;
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        let key = with_algorithm(alg, |a| VerifyingKey::from_spki_pem(provider(), &text, a))
            .map_err(|e| key_error(path, &e))?;
        return Ok(vec![key]);
    }
    let value = etdi_core::canonical::parse_json(trimmed)
        .map_err(|e| format!("{}: not a JWK or JWKS: {e}", show(path)))?;
    if value.get("keys").is_none() {
        let jwk = Jwk::from_json(trimmed).map_err(|e| key_error(path, &e))?;
        let key = VerifyingKey::from_jwk(provider(), &jwk, alg).map_err(|e| key_error(path, &e))?;
        return Ok(vec![key]);
    }
    let set = load_jwks(path, trimmed)?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        if !jwk.usable_for_signatures() {
            continue;
        }
        let key = VerifyingKey::from_jwk(provider(), jwk, alg)
            .map_err(|e| format!("{}: keys[{i}]: {e}", show(path)))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(format!(
            "{}: field `keys` holds no signature key",
            show(path)
        ));
    }
    Ok(keys)
}

/// Parses a JWKS document, naming the file in errors.
pub fn load_jwks(path: &Path, text: &str) -> Result<JwkSet, String> {
    JwkSet::from_json(text).map_err(|e| format!("{}: JWKS: {e}", show(path)))
}

/// The keys as a set (for checkpoint verification and key rings).
pub fn key_set(keys: Vec<VerifyingKey>) -> VerifyingKeySet {
    keys.into_iter().collect()
}

/// Options of a key store: plain, or encrypted with the passphrase in a file.
pub fn store_options(passphrase_file: Option<&Path>) -> Result<StoreOptions, String> {
    let Some(path) = passphrase_file else {
        return Ok(StoreOptions::new());
    };
    let text = read_text(path, "passphrase file")?;
    let pass = text.trim_end_matches(['\n', '\r']);
    if pass.is_empty() {
        return Err(format!("{}: the passphrase is empty", show(path)));
    }
    Ok(StoreOptions::new().with_passphrase(pass))
}

/// The active signing key of an existing key store.
pub fn active_key_of_store(
    dir: &Path,
    passphrase_file: Option<&Path>,
) -> Result<SigningKey, String> {
    let options = store_options(passphrase_file)?;
    let manager = KeyManager::open_existing(provider(), dir, KeyManagerConfig::new, options)
        .map_err(|e| e.to_string())?;
    Ok(manager.active().clone())
}
