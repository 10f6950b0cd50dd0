//! `etdi token inspect`: decode an access token WITHOUT trusting it, and
//! optionally validate it with etdi-auth's `TokenVerifier` exactly as a
//! server would (issuer, audience, algorithm allow-list, times, signature
//! against the issuer's JWKS from a file, a URL, or discovery).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use etdi_auth::{IssuerConfig, TokenError, TokenVerifier};
use serde_json::{Value, json};

use super::files::{read_text, show};
use super::{AlgArg, emit, refused, rfc3339};

/// `etdi token` subcommands.
#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Decode a JWT's header and claims (UNVERIFIED); with --issuer and
    /// --audience, validate it and print the principal or the exact refusal.
    Inspect(InspectArgs),
}

/// Arguments of `etdi token inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The token, a file holding it, or `-` for standard input (preferred:
    /// a token on the command line is visible to other local users).
    token: String,
    /// Validate against this trusted issuer (`iss`).
    #[arg(long, requires = "audience")]
    issuer: Option<String>,
    /// Accepted audience: this resource server's id (repeatable).
    #[arg(long, requires = "issuer")]
    audience: Vec<String>,
    /// The issuer's JWKS from a file (offline validation).
    #[arg(long, requires = "issuer", conflicts_with = "jwks_uri")]
    jwks: Option<PathBuf>,
    /// The issuer's JWKS URL [default: found by OIDC discovery / RFC 8414].
    #[arg(long, requires = "issuer")]
    jwks_uri: Option<String>,
    /// Allowed algorithm (repeatable) [default: RS256 and ES256].
    #[arg(long, value_enum, requires = "issuer")]
    alg: Vec<AlgArg>,
    /// Require an RFC 9068 JWT access token (`typ: at+jwt`).
    #[arg(long, requires = "issuer")]
    require_at_jwt: bool,
    /// Clock-skew leeway in seconds for exp, nbf and iat.
    #[arg(long, requires = "issuer")]
    leeway: Option<u64>,
}

/// Runs an `etdi token` subcommand.
pub fn run(command: &TokenCommand, json: bool) -> Result<ExitCode, String> {
    match command {
        TokenCommand::Inspect(args) => inspect(args, json),
    }
}

fn read_token(arg: &str) -> Result<String, String> {
    let path = std::path::Path::new(arg);
    let text = if arg == "-" || path.exists() {
        read_text(path, "token")?
    } else {
        arg.to_owned()
    };
    let token = text.trim();
    // `Bearer xyz` pasted from a header is accepted.
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    Ok(token.to_owned())
}

/// Header and claims, decoded without any check.
fn decode(token: &str) -> Result<(Value, Value), String> {
    let (header, payload) = etdi_crypto::jws::peek_unverified(token)
        .map_err(|e| format!("the token is not a compact JWS: {e}"))?;
    let parse = |bytes: Vec<u8>, part: &str| -> Result<Value, String> {
        let text =
            String::from_utf8(bytes).map_err(|_| format!("the token {part} is not UTF-8"))?;
        etdi_core::canonical::parse_json(&text)
            .map_err(|e| format!("the token {part} is not JSON: {e}"))
    };
    Ok((parse(header, "header")?, parse(payload, "payload")?))
}

fn times(claims: &Value) -> String {
    ["iat", "nbf", "exp"]
        .iter()
        .filter_map(|c| {
            claims
                .get(*c)
                .and_then(Value::as_u64)
                .map(|t| format!("{c} {}", rfc3339(t)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn verifier(args: &InspectArgs, issuer: &str) -> Result<TokenVerifier, String> {
    let mut config = IssuerConfig::new(issuer).require_at_jwt(args.require_at_jwt);
    for aud in &args.audience {
        config = config.audience(aud);
    }
    if !args.alg.is_empty() {
        config = config.algorithms(args.alg.iter().map(|a| a.0));
    }
    if let Some(secs) = args.leeway {
        config = config.leeway(Duration::from_secs(secs));
    }
    let mut jwks_file = None;
    if let Some(path) = &args.jwks {
        let text = read_text(path, "JWKS")?;
        let doc = etdi_core::canonical::parse_json(&text)
            .map_err(|e| format!("{}: not a JWKS: {e}", show(path)))?;
        config = config.static_jwks(doc);
        jwks_file = Some(path);
    } else if let Some(url) = &args.jwks_uri {
        config = config.jwks_uri(url);
    }
    TokenVerifier::builder()
        .issuer(config)
        // One token, one process: nothing to cache.
        .cache_capacity(0)
        .build()
        .map_err(|e| match jwks_file {
            Some(path) => format!("{}: {e}", show(path)),
            None => e.to_string(),
        })
}

fn inspect(args: &InspectArgs, json: bool) -> Result<ExitCode, String> {
    let token = read_token(&args.token)?;
    let (header, claims) = decode(&token)?;
    let mut text = format!(
        "UNVERIFIED header (decoded, not checked): {header}\nUNVERIFIED claims (decoded, not checked): {claims}"
    );
    let when = times(&claims);
    if !when.is_empty() {
        text.push_str(&format!("\nUNVERIFIED times: {when}"));
    }
    let mut value = json!({
        "unverified": {"header": header, "claims": claims},
    });
    let Some(issuer) = &args.issuer else {
        text.push_str("\nnot validated: give --issuer and --audience to validate");
        emit(json, &value, &text);
        return Ok(ExitCode::SUCCESS);
    };
    let verifier = verifier(args, issuer)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(verifier.verify(&token));
    let code = match result {
        Ok(principal) => {
            text.push_str(&format!(
                "\nverified: subject {} issued by {}{}{}",
                principal.subject,
                principal.issuer.as_deref().unwrap_or(issuer),
                if principal.scopes.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", scopes {}",
                        principal
                            .scopes
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                },
                principal
                    .client_id
                    .as_deref()
                    .map(|c| format!(", client {c}"))
                    .unwrap_or_default(),
            ));
            if let Some(obj) = value.as_object_mut() {
                obj.insert("verified".into(), json!(true));
                obj.insert("principal".into(), json!(principal));
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.is_unavailable() => {
            return Err(format!("cannot validate the token: {e}"));
        }
        Err(e) => {
            text.push_str(&format!("\nrefused: {e}"));
            if let Some(obj) = value.as_object_mut() {
                obj.insert("verified".into(), json!(false));
                obj.insert("reason".into(), json!(e.to_string()));
                obj.insert("description".into(), json!(e.description()));
                obj.insert("code".into(), json!(code_of(&e)));
            }
            refused()
        }
    };
    emit(json, &value, &text);
    Ok(code)
}

/// A stable snake_case name for each refusal, for scripts.
fn code_of(e: &TokenError) -> &'static str {
    match e {
        TokenError::TooLarge { .. } => "too_large",
        TokenError::Malformed(_) => "malformed",
        TokenError::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
        TokenError::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
        TokenError::UnsupportedCritical { .. } => "unsupported_critical",
        TokenError::ForbiddenHeader { .. } => "forbidden_header",
        TokenError::WrongType { .. } => "wrong_type",
        TokenError::UnknownKey { .. } => "unknown_key",
        TokenError::KeyMismatch { .. } => "key_mismatch",
        TokenError::BadSignature { .. } => "bad_signature",
        TokenError::UntrustedIssuer { .. } => "untrusted_issuer",
        TokenError::MissingClaim { .. } => "missing_claim",
        TokenError::InvalidClaim { .. } => "invalid_claim",
        TokenError::Expired { .. } => "expired",
        TokenError::NotYetValid { .. } => "not_yet_valid",
        TokenError::IssuedInFuture { .. } => "issued_in_future",
        TokenError::WrongAudience { .. } => "wrong_audience",
        TokenError::CertificateBinding(_) => "certificate_binding",
        TokenError::Inactive { .. } => "inactive",
        TokenError::Unavailable { .. } => "unavailable",
        _ => "refused",
    }
}
