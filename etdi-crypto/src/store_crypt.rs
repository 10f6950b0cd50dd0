//! Encryption of key files at rest: PKCS#8 `ENCRYPTED PRIVATE KEY` with
//! PBES2 (scrypt + AES-256-CBC), the form `openssl pkcs8 -topk8 -scrypt`
//! writes and reads, so operators can inspect or convert a key with standard
//! tools.

use der::pem::LineEnding;
use pkcs8::pkcs5::{pbes2, scrypt};
use pkcs8::{EncryptedPrivateKeyInfoRef, PrivateKeyInfoRef};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::provider::CryptoProvider;
use crate::store::BlobError;

const LABEL: &str = "ENCRYPTED PRIVATE KEY";
/// scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s): the pkcs5
/// crate's recommendation and OpenSSL's default.
pub(crate) const DEFAULT_LOG_N: u8 = 15;

/// Whether `text` is an encrypted PKCS#8 PEM block.
pub(crate) fn is_encrypted_pem(text: &str) -> bool {
    text.trim_start()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
}

/// Encrypts PKCS#8 DER under `passphrase`.
pub(crate) fn encrypt_pkcs8_pem(
    der: &[u8],
    passphrase: &[u8],
    log_n: u8,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bad = |e: &dyn std::fmt::Display| KeyError::encoding("encrypted PKCS#8", e);
    let provider = CryptoProvider::get_default();
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    provider.fill_random(&mut salt)?;
    provider.fill_random(&mut iv)?;
    let cost = scrypt::Params::new(log_n, 8, 1).map_err(|e| bad(&e))?;
    let params =
        pbes2::Parameters::generate_scrypt_aes256cbc(cost, &salt, iv).map_err(|e| bad(&e))?;
    let info = PrivateKeyInfoRef::try_from(der).map_err(|e| bad(&e))?;
    let doc = info
        .encrypt_with_params(params, passphrase)
        .map_err(|e| bad(&e))?;
    let pem = doc.to_pem(LABEL, LineEnding::LF).map_err(|e| bad(&e))?;
    Ok(Zeroizing::new(pem.as_bytes().to_vec()))
}

/// Decrypts an encrypted PKCS#8 PEM block. A torn or malformed file is
/// [`BlobError::Damaged`]; a well-formed one that does not decrypt is
/// [`BlobError::Decrypt`].
pub(crate) fn decrypt_pkcs8_pem(
    text: &str,
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BlobError> {
    let (label, der) = der::pem::decode_vec(text.as_bytes())
        .map_err(|e| BlobError::Damaged(format!("PEM: {e}")))?;
    let der = Zeroizing::new(der);
    if label != LABEL {
        return Err(BlobError::Damaged(format!(
            "unexpected PEM label `{label}`"
        )));
    }
    let info = EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| BlobError::Damaged(format!("encrypted PKCS#8: {e}")))?;
    let doc = info.decrypt(passphrase).map_err(|_| BlobError::Decrypt)?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}
