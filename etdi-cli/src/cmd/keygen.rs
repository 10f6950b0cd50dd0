//! `etdi keygen`: a signing key as files: the private key (PKCS#8 PEM, mode
//! 0600), the public key as SPKI PEM, and the public key as a JWKS (with
//! `alg` and `kid`, so verifiers need no `--alg`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use etdi_crypto::{CryptoProvider, KeyType, SigningKey};
use serde_json::json;

use super::files::{Output, show, write_all};
use super::{AlgArg, BitsArg, emit};

/// Arguments of `etdi keygen`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Signing algorithm.
    #[arg(long, value_enum)]
    alg: AlgArg,
    /// RSA modulus size in bits (RS*/PS* only) [default: 2048].
    #[arg(long, value_enum)]
    bits: Option<BitsArg>,
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// Where to write the public key as SPKI PEM [default: OUT with `.pub.pem`
    /// in place of `.pem`].
    #[arg(long)]
    public_out: Option<PathBuf>,
    /// Where to write the public key as a JWKS [default: OUT with `.jwks.json`
    /// in place of `.pem`].
    #[arg(long)]
    jwks_out: Option<PathBuf>,
    /// Replace files that already exist.
    #[arg(long)]
    force: bool,
}

/// `key.pem` -> `key<suffix>`; `key` -> `key<suffix>`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(stem) = name.strip_suffix(".pem") {
        name = stem.to_owned();
    }
    out.with_file_name(format!("{name}{suffix}"))
}

/// Runs `etdi keygen`.
pub fn run(args: &KeygenArgs, json: bool) -> Result<ExitCode, String> {
    let alg = args.alg.0;
    let provider = CryptoProvider::get_default();
    let key = match (alg.key_type(), args.bits) {
        (KeyType::Rsa, Some(bits)) => SigningKey::generate_rsa(provider, alg, bits.0),
        (_, Some(_)) => {
            return Err(format!(
                "--bits applies only to RSA algorithms (RS*, PS*), not {alg}"
            ));
        }
        (_, None) => SigningKey::generate(provider, alg),
    }
    .map_err(|e| format!("cannot generate a {alg} key: {e}"))?;

    let public_out = args
        .public_out
        .clone()
        .unwrap_or_else(|| beside(&args.out, ".pub.pem"));
    let jwks_out = args
        .jwks_out
        .clone()
        .unwrap_or_else(|| beside(&args.out, ".jwks.json"));
    let private_pem = key
        .to_pkcs8_pem()
        .map_err(|e| format!("cannot encode the private key: {e}"))?;
    let public = key.verifying_key();
    let public_pem = public
        .to_spki_pem()
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    let jwks = json!({ "keys": [public.to_jwk()] });
    let mut jwks_text = serde_json::to_string_pretty(&jwks)
        .map_err(|e| format!("cannot encode the public JWKS: {e}"))?;
    jwks_text.push('\n');

    write_all(
        &[
            Output {
                path: &args.out,
                bytes: private_pem.as_bytes(),
                mode: 0o600,
            },
            Output {
                path: &public_out,
                bytes: public_pem.as_bytes(),
                mode: 0o644,
            },
            Output {
                path: &jwks_out,
                bytes: jwks_text.as_bytes(),
                mode: 0o644,
            },
        ],
        args.force,
    )?;

    let kid = key.kid().as_str();
    emit(
        json,
        &json!({
            "kid": kid,
            "alg": alg.name(),
            "private_key": show(&args.out),
            "public_key": show(&public_out),
            "jwks": show(&jwks_out),
        }),
        &format!(
            "{kid}\n{alg} key written: private {} (0600), public {}, JWKS {}",
            show(&args.out),
            show(&public_out),
            show(&jwks_out)
        ),
    );
    Ok(ExitCode::SUCCESS)
}
