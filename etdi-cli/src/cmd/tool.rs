//! `etdi tool`: digests, signing, verification and inspection of tool
//! definitions (docs/PROTOCOL.md §2-§5).
//!
//! A definition file is either a plain definition or an MCP `Tool` object as
//! advertised (what `tool sign --out` writes), whose `_meta` carries the
//! attestation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use etdi_core::{ToolDefinition, VerificationFailure};
use etdi_crypto::attestation::{
    AttestationSigner, AttestationVerifier, ProviderScope, VerifiedAttestation,
};
use etdi_crypto::trust::KeyRing;
use etdi_crypto::{UnixTime, VerifyingKey, advertised, jws};
use serde_json::{Value, json};

use super::files::{LoadedTool, Output, load_tool, read_attestation, show, write_all};
use super::keyfile::{active_key_of_store, load_signing_key, load_verifying_keys};
use super::{AlgArg, emit, refused};

/// `etdi tool` subcommands.
#[derive(clap::Subcommand)]
pub enum ToolCommand {
    /// Print the canonical digest of a tool definition (JSON file, or `-`
    /// for standard input). This is the digest ETDI signs, pins and approves.
    Digest {
        /// Path of the tool definition JSON.
        file: PathBuf,
    },
    /// Print the RFC 8785 canonical form of a tool definition.
    Canonical {
        /// Path of the tool definition JSON.
        file: PathBuf,
    },
    /// Sign a tool definition: print its attestation (PROTOCOL §5), or with
    /// --out write the signed definition as an advertised MCP tool.
    Sign(SignArgs),
    /// Verify a tool's attestation against a trusted public key; exits 1
    /// with the failure code when it does not verify.
    Verify(VerifyArgs),
    /// Show a tool's id, name, version, provider, permissions and digest,
    /// and the claims of its attestation (decoded, NOT verified).
    Inspect(InspectArgs),
}

/// Arguments of `etdi tool sign`.
#[derive(clap::Args)]
pub struct SignArgs {
    /// The tool definition JSON.
    definition: PathBuf,
    /// Private key file (PKCS#8 PEM or private JWK).
    #[arg(long, required_unless_present = "key_dir", conflicts_with = "key_dir")]
    key: Option<PathBuf>,
    /// Sign with the active key of this key store instead of --key.
    #[arg(long)]
    key_dir: Option<PathBuf>,
    /// File holding the passphrase of an encrypted key store (with --key-dir).
    #[arg(long, requires = "key_dir")]
    passphrase_file: Option<PathBuf>,
    /// Algorithm; needed only for RSA keys in PEM form.
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// The attesting issuer (`iss`): the provider's id or URL.
    #[arg(long)]
    issuer: String,
    /// Make the attestation expire this many seconds after now.
    #[arg(long)]
    validity: Option<u64>,
    /// Write the signed definition (an MCP tool with the attestation in
    /// `_meta`) here instead of printing the attestation.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long, requires = "out")]
    force: bool,
}

/// Arguments of `etdi tool verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The tool definition JSON (plain, or an advertised tool carrying its
    /// attestation).
    definition: PathBuf,
    /// The attestation: a file, `-` for standard input, or the compact JWS
    /// itself. Optional when the definition carries one.
    #[arg(long)]
    attestation: Option<String>,
    /// Trusted public key: SPKI PEM, JWK or JWKS file.
    #[arg(long)]
    key: PathBuf,
    /// Algorithm of a PEM RSA key.
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// Trust the key only for this issuer [default: the issuer the
    /// attestation names, since the key itself is the trust anchor].
    #[arg(long)]
    issuer: Option<String>,
}

/// Arguments of `etdi tool inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The tool definition JSON (plain or advertised).
    file: PathBuf,
    /// An attestation to decode alongside (file, `-` or the JWS itself).
    #[arg(long)]
    attestation: Option<String>,
}

/// Runs an `etdi tool` subcommand.
pub fn run(command: &ToolCommand, json: bool) -> Result<ExitCode, String> {
    match command {
        ToolCommand::Digest { file } => {
            let def = load_tool(file)?.definition;
            let digest = def.digest().map_err(|e| format!("{}: {e}", show(file)))?;
            emit(
                json,
                &json!({"id": def.id, "version": def.version, "digest": digest}),
                &digest.to_string(),
            );
            Ok(ExitCode::SUCCESS)
        }
        ToolCommand::Canonical { file } => {
            let def = load_tool(file)?.definition;
            let bytes = def
                .canonical_bytes()
                .map_err(|e| format!("{}: {e}", show(file)))?;
            // The canonical form is JSON already, in either output mode.
            super::json_text_line(&String::from_utf8_lossy(&bytes));
            Ok(ExitCode::SUCCESS)
        }
        ToolCommand::Sign(args) => sign(args, json),
        ToolCommand::Verify(args) => verify(args, json),
        ToolCommand::Inspect(args) => inspect(args, json),
    }
}

fn sign(args: &SignArgs, json: bool) -> Result<ExitCode, String> {
    let tool = load_tool(&args.definition)?;
    let key = match (&args.key, &args.key_dir) {
        (Some(path), _) => load_signing_key(path, args.alg.map(|a| a.0))?,
        (None, Some(dir)) => active_key_of_store(dir, args.passphrase_file.as_deref())?,
        (None, None) => return Err("give --key or --key-dir".into()),
    };
    if args.issuer.is_empty() {
        return Err("--issuer is empty; name the provider's id or URL".into());
    }
    let mut signer = AttestationSigner::new(&args.issuer);
    if let Some(secs) = args.validity {
        signer = signer.with_validity(secs);
    }
    let def = &tool.definition;
    let token = signer
        .sign(&key, def, UnixTime::now())
        .map_err(|e| format!("{}: cannot sign: {e}", show(&args.definition)))?;
    let digest = def
        .digest()
        .map_err(|e| format!("{}: {e}", show(&args.definition)))?;
    let mut result = json!({
        "attestation": token,
        "issuer": args.issuer,
        "kid": key.kid().as_str(),
        "alg": key.algorithm().name(),
        "tool": def.id,
        "version": def.version,
        "digest": digest,
    });
    let text = if let Some(out) = &args.out {
        let signed = advertised::tool_from_definition(def, Some(&token))
            .map_err(|e| format!("cannot encode the signed definition: {e}"))?;
        let mut bytes = serde_json::to_vec_pretty(&signed)
            .map_err(|e| format!("cannot encode the signed definition: {e}"))?;
        bytes.push(b'\n');
        write_all(
            &[Output {
                path: out,
                bytes: &bytes,
                mode: 0o644,
            }],
            args.force,
        )?;
        if let Some(obj) = result.as_object_mut() {
            obj.insert("out".into(), json!(show(out)));
        }
        format!(
            "signed {} {} ({digest}) with key {}; wrote {}",
            def.id,
            def.version,
            key.kid(),
            show(out)
        )
    } else {
        token
    };
    emit(json, &result, &text);
    Ok(ExitCode::SUCCESS)
}

/// The claims of a JWS decoded without verification, for display and for
/// routing only.
fn peek(token: &str) -> Result<(Value, Value), String> {
    let (header, payload) =
        jws::peek_unverified(token).map_err(|e| format!("not a compact JWS: {e}"))?;
    let parse = |bytes: &[u8], part: &str| {
        std::str::from_utf8(bytes)
            .map_err(|_| format!("the {part} is not UTF-8"))
            .and_then(|t| {
                etdi_core::canonical::parse_json(t)
                    .map_err(|e| format!("the {part} is not JSON: {e}"))
            })
    };
    Ok((parse(&header, "header")?, parse(&payload, "payload")?))
}

/// Verifies `token` for `def` with `keys` as the only trust anchor, trusted
/// for `issuer` (default: the `iss` the token names) and for the
/// definition's own provider. Follows PROTOCOL §5.2 in etdi-crypto.
pub fn verify_attestation(
    def: &ToolDefinition,
    token: &str,
    keys: Vec<VerifyingKey>,
    issuer: Option<&str>,
) -> Result<VerifiedAttestation, VerificationFailure> {
    // Routing only: the signature decides, with these keys, below.
    let named = peek(token)
        .ok()
        .and_then(|(_, claims)| claims.get("iss").and_then(Value::as_str).map(str::to_owned));
    let issuer = issuer.map(str::to_owned).or(named).unwrap_or_default();
    let mut ring = KeyRing::new();
    for k in keys {
        ring.insert(k);
    }
    let mut verifier = AttestationVerifier::new();
    verifier.trust_issuer(
        issuer,
        ring,
        ProviderScope::Only([def.provider.id.clone()].into_iter().collect()),
    );
    verifier.verify_detailed(token, def, UnixTime::now())
}

/// The attestation to check: `--attestation`, else the one the file carries.
fn attestation_for(tool: &LoadedTool, arg: Option<&str>, file: &Path) -> Result<String, String> {
    match (arg, &tool.attestation) {
        (Some(a), _) => read_attestation(a),
        (None, Some(a)) => Ok(a.clone()),
        (None, None) => Err(format!(
            "{} carries no attestation; give --attestation",
            show(file)
        )),
    }
}

/// JSON and text for a verification result.
pub fn verification_report(
    def: &ToolDefinition,
    result: &Result<VerifiedAttestation, VerificationFailure>,
) -> (Value, String) {
    match result {
        Ok(v) => (
            json!({
                "verified": true,
                "tool": def.id,
                "version": def.version,
                "issuer": v.claims.iss,
                "key_id": v.key_id.as_str(),
                "alg": v.algorithm.name(),
                "digest": v.digest,
                "claims": v.claims,
            }),
            format!(
                "verified: {} {} ({}) attested by {} with key {} ({})",
                def.id, def.version, v.digest, v.claims.iss, v.key_id, v.algorithm
            ),
        ),
        Err(f) => (
            json!({
                "verified": false,
                "tool": def.id,
                "version": def.version,
                "code": f.code(),
                "reason": f.to_string(),
                "failure": f,
            }),
            format!("not verified: {}: {f}", f.code()),
        ),
    }
}

fn verify(args: &VerifyArgs, json: bool) -> Result<ExitCode, String> {
    let tool = load_tool(&args.definition)?;
    let token = attestation_for(&tool, args.attestation.as_deref(), &args.definition)?;
    let keys = load_verifying_keys(&args.key, args.alg.map(|a| a.0))?;
    let result = verify_attestation(&tool.definition, &token, keys, args.issuer.as_deref());
    let (value, text) = verification_report(&tool.definition, &result);
    emit(json, &value, &text);
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        refused()
    })
}

fn inspect(args: &InspectArgs, json: bool) -> Result<ExitCode, String> {
    let tool = load_tool(&args.file)?;
    let def = &tool.definition;
    let digest = def
        .digest()
        .map_err(|e| format!("{}: {e}", show(&args.file)))?;
    let permissions: Vec<&str> = def.permissions.iter().map(|p| p.as_str()).collect();
    let mut value = json!({
        "id": def.id,
        "name": def.name,
        "title": def.title,
        "version": def.version,
        "provider": def.provider,
        "permissions": permissions,
        "digest": digest,
        "form": if tool.advertised { "advertised" } else { "definition" },
    });
    let mut text = format!(
        "id          {}\nname        {}\nversion     {}\nprovider    {} ({})\npermissions {}\ndigest      {digest}",
        def.id,
        def.name,
        def.version,
        def.provider.id,
        def.provider.name,
        if permissions.is_empty() {
            "(none)".to_owned()
        } else {
            permissions.join(" ")
        },
    );
    let token = match (&args.attestation, &tool.attestation) {
        (Some(a), _) => Some(read_attestation(a)?),
        (None, Some(a)) => Some(a.clone()),
        (None, None) => None,
    };
    if let Some(token) = token {
        let (header, claims) = peek(&token).map_err(|e| format!("attestation: {e}"))?;
        let digest_matches =
            claims.get("tool_digest").and_then(Value::as_str) == Some(&digest.to_string());
        text.push_str(&format!(
            "\nattestation (UNVERIFIED, decoded without checking the signature; use `etdi tool verify`)\n  header {header}\n  claims {claims}\n  tool_digest {} the definition's digest",
            if digest_matches { "equals" } else { "DIFFERS FROM" }
        ));
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "attestation".into(),
                json!({
                    "verified": false,
                    "note": "decoded without checking the signature; use `etdi tool verify`",
                    "header": header,
                    "claims": claims,
                    "digest_matches": digest_matches,
                }),
            );
        }
    } else {
        text.push_str("\nattestation (none)");
    }
    emit(json, &value, &text);
    Ok(ExitCode::SUCCESS)
}
