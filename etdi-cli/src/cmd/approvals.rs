//! `etdi approvals list|approve|revoke`: the client's approval store
//! (etdi-client `FileApprovalStore`, format `etdi-approvals/1`).
//!
//! Approving runs the same checks a client would: the attestation (if any)
//! must verify against the given key, and the rug-pull engine compares the
//! definition with the existing pins of that server; a blocked change (same
//! version, different digest) is refused, never re-approved.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use etdi_client::rugpull::{self, Observed, Verdict};
use etdi_client::{Approval, ApprovalStore, FileApprovalStore, Signer};
use etdi_core::{ServerId, Timestamp, ToolId, ToolVersion};
use serde_json::{Value, json};

use super::files::{load_tool, read_attestation, show};
use super::keyfile::load_verifying_keys;
use super::tool::{verification_report, verify_attestation};
use super::{AlgArg, emit, refused};

/// `etdi approvals` subcommands.
#[derive(clap::Subcommand)]
pub enum ApprovalsCommand {
    /// List the approvals (pins) in a store.
    List(ListArgs),
    /// Approve a tool definition: pin its digest, version and permissions
    /// for one server, after verifying its attestation if it has one.
    Approve(ApproveArgs),
    /// Revoke the approvals of a tool by id (and version).
    Revoke(RevokeArgs),
}

/// Arguments of `etdi approvals list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// The approval store file.
    #[arg(long)]
    store: PathBuf,
    /// Only approvals for this server.
    #[arg(long)]
    server: Option<String>,
}

/// Arguments of `etdi approvals approve`.
#[derive(clap::Args)]
pub struct ApproveArgs {
    /// The approval store file (created if absent; its directory must exist).
    #[arg(long)]
    store: PathBuf,
    /// The server the tool is approved for (its ETDI audience or configured name).
    #[arg(long)]
    server: String,
    /// The tool definition JSON (plain, or an advertised tool carrying its
    /// attestation).
    definition: PathBuf,
    /// The tool's attestation (file, `-` or the JWS itself).
    #[arg(long)]
    attestation: Option<String>,
    /// Public key that must have signed the attestation (SPKI PEM, JWK or
    /// JWKS). Required when there is an attestation.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Algorithm of a PEM RSA key.
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// Trust the key only for this issuer [default: the attestation's].
    #[arg(long)]
    issuer: Option<String>,
    /// Who approves [default: $USER].
    #[arg(long)]
    by: Option<String>,
    /// Let the approval expire after this many days.
    #[arg(long)]
    expires_in_days: Option<u64>,
}

/// Arguments of `etdi approvals revoke`.
#[derive(clap::Args)]
pub struct RevokeArgs {
    /// The approval store file.
    #[arg(long)]
    store: PathBuf,
    /// The tool id.
    #[arg(long)]
    tool: String,
    /// Only the approval of this version.
    #[arg(long)]
    version: Option<String>,
    /// Only approvals for this server.
    #[arg(long)]
    server: Option<String>,
}

/// Runs an `etdi approvals` subcommand.
pub fn run(command: &ApprovalsCommand, json: bool) -> Result<ExitCode, String> {
    match command {
        ApprovalsCommand::List(args) => list(args, json),
        ApprovalsCommand::Approve(args) => approve(args, json),
        ApprovalsCommand::Revoke(args) => revoke(args, json),
    }
}

fn store_error(path: &Path, e: &etdi_client::StoreError) -> String {
    let text = e.to_string();
    if text.contains(&show(path)) {
        text
    } else {
        format!("{}: {text}", show(path))
    }
}

/// Whether a store (or its backup) exists; reading a store that does not
/// exist must not create its lock file.
fn exists(path: &Path) -> bool {
    let mut bak = path.as_os_str().to_owned();
    bak.push(".bak");
    path.exists() || Path::new(&bak).exists()
}

fn open(path: &Path) -> Result<FileApprovalStore, String> {
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; --store names the approval file",
            show(path)
        ));
    }
    FileApprovalStore::open(path).map_err(|e| store_error(path, &e))
}

fn server_id(s: &str) -> Result<ServerId, String> {
    ServerId::parse(s).map_err(|e| format!("--server `{s}`: {e}"))
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn approval_json(a: &Approval, now: Timestamp) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        // The full definition is in the store; the listing stays readable.
        obj.remove("definition");
        obj.insert("expired".into(), json!(a.is_expired(now)));
    }
    v
}

fn approval_line(a: &Approval, now: Timestamp) -> String {
    format!(
        "{}  {} {}  {}  [{}]  signer {}  by {} at {}{}",
        a.key,
        a.name,
        a.version,
        a.digest,
        a.permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        a.signer
            .as_ref()
            .map_or_else(|| "(unsigned)".to_owned(), ToString::to_string),
        a.approved_by,
        a.approved_at,
        match a.expires_at {
            Some(t) if a.is_expired(now) => format!("  EXPIRED {t}"),
            Some(t) => format!("  expires {t}"),
            None => String::new(),
        }
    )
}

fn list(args: &ListArgs, json: bool) -> Result<ExitCode, String> {
    let server = args.server.as_deref().map(server_id).transpose()?;
    let approvals = if exists(&args.store) {
        open(&args.store)?
            .list_all()
            .map_err(|e| store_error(&args.store, &e))?
    } else {
        Vec::new()
    };
    let now = now();
    let shown: Vec<&Approval> = approvals
        .iter()
        .filter(|a| server.as_ref().is_none_or(|s| &a.key.server == s))
        .collect();
    let text = if shown.is_empty() {
        format!("no approvals in {}", show(&args.store))
    } else {
        shown
            .iter()
            .map(|a| approval_line(a, now))
            .collect::<Vec<_>>()
            .join("\n")
    };
    emit(
        json,
        &json!({
            "store": show(&args.store),
            "approvals": shown.iter().map(|a| approval_json(a, now)).collect::<Vec<_>>(),
        }),
        &text,
    );
    Ok(ExitCode::SUCCESS)
}

fn approve(args: &ApproveArgs, json: bool) -> Result<ExitCode, String> {
    // Every input is read and checked before the store is touched.
    let server = server_id(&args.server)?;
    let tool = load_tool(&args.definition)?;
    let def = tool.definition;
    let token = match (&args.attestation, tool.attestation) {
        (Some(a), _) => Some(read_attestation(a)?),
        (None, embedded) => embedded,
    };
    let signer = match (&token, &args.key) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(format!(
                "{} has an attestation; give --key so it is verified before approval",
                show(&args.definition)
            ));
        }
        (Some(token), Some(key)) => {
            let keys = load_verifying_keys(key, args.alg.map(|a| a.0))?;
            let result = verify_attestation(&def, token, keys, args.issuer.as_deref());
            match &result {
                Ok(v) => Some(Signer {
                    issuer: v.claims.iss.clone(),
                    key_id: v.key_id.as_str().to_owned(),
                }),
                Err(_) => {
                    let (mut value, text) = verification_report(&def, &result);
                    if let Some(obj) = value.as_object_mut() {
                        obj.insert("approved".into(), json!(false));
                    }
                    emit(json, &value, &format!("not approved: {text}"));
                    return Ok(refused());
                }
            }
        }
    };
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "etdi-cli".to_owned());
    let now = now();
    let mut approval = Approval::new(server.clone(), def, signer, by, now)
        .map_err(|e| format!("{}: {e}", show(&args.definition)))?;
    if let Some(days) = args.expires_in_days {
        let secs = i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        let at = Timestamp::from_unix(now.unix_seconds().saturating_add(secs), 0)
            .ok_or_else(|| format!("--expires-in-days {days} is too far in the future"))?;
        approval = approval.expiring_at(at);
    }

    if let Some(dir) = args.store.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(format!(
            "cannot write {}: directory {} does not exist",
            show(&args.store),
            show(dir)
        ));
    }
    let store = open(&args.store)?;
    let pins = store
        .list_server(&server, now)
        .map_err(|e| store_error(&args.store, &e))?;
    let assessment = rugpull::assess(
        &Observed {
            server: &server,
            definition: &approval.definition,
            digest: approval.digest,
            signer: approval.signer.as_ref(),
        },
        &pins,
    );
    let changes: Vec<Value> = assessment
        .changes
        .iter()
        .map(|c| json!({"code": c.code(), "detail": c.to_string()}))
        .collect();
    let change_text = assessment
        .changes
        .iter()
        .map(|c| format!("{}: {c}", c.code()))
        .collect::<Vec<_>>()
        .join("; ");
    if assessment.verdict == Verdict::Blocked {
        emit(
            json,
            &json!({"approved": false, "verdict": assessment.verdict, "changes": changes}),
            &format!(
                "not approved: blocked ({change_text}); a version's content never changes, so publish a new version"
            ),
        );
        return Ok(refused());
    }
    let summary = approval_json(&approval, now);
    let line = approval_line(&approval, now);
    store
        .put(approval)
        .map_err(|e| store_error(&args.store, &e))?;
    emit(
        json,
        &json!({
            "approved": true,
            "verdict": assessment.verdict,
            "first_seen": assessment.is_first_seen(),
            "changes": changes,
            "approval": summary,
        }),
        &if change_text.is_empty() {
            format!("approved: {line}")
        } else {
            format!("approved: {line}\nchanges since the previous approval: {change_text}")
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn revoke(args: &RevokeArgs, json: bool) -> Result<ExitCode, String> {
    let tool = ToolId::parse(&args.tool).map_err(|e| format!("--tool `{}`: {e}", args.tool))?;
    let version = args
        .version
        .as_deref()
        .map(|v| ToolVersion::parse(v).map_err(|e| format!("--version `{v}`: {e}")))
        .transpose()?;
    let server = args.server.as_deref().map(server_id).transpose()?;
    if !exists(&args.store) {
        return Err(format!("{} does not exist", show(&args.store)));
    }
    let store = open(&args.store)?;
    // Chosen and removed in one step: an approval put between a listing and
    // a revocation by key (a newer version, say) is never removed in place
    // of the one asked for.
    let revoked = store
        .revoke_matching(&|a| {
            a.key.tool == tool
                && version.as_ref().is_none_or(|v| &a.version == v)
                && server.as_ref().is_none_or(|s| &a.key.server == s)
        })
        .map_err(|e| store_error(&args.store, &e))?;
    if revoked.is_empty() {
        return Err(format!(
            "{}: no approval matches tool `{tool}`{}",
            show(&args.store),
            version
                .as_ref()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default()
        ));
    }
    let now = now();
    emit(
        json,
        &json!({
            "revoked": revoked.iter().map(|a| approval_json(a, now)).collect::<Vec<_>>(),
        }),
        &revoked
            .iter()
            .map(|a| format!("revoked: {}", approval_line(a, now)))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    Ok(ExitCode::SUCCESS)
}
