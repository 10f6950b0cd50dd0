//! `etdi keys list|rotate`: the key store that etdi-crypto's `KeyManager`
//! keeps in a directory (an active key and retired keys that keep verifying
//! for an overlap window after a rotation).
//!
//! The overlap window is configuration, not stored state, so both commands
//! take it as `--overlap` (default: the library's one day).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use etdi_crypto::manager::{
    DEFAULT_OVERLAP_SECS, KeyManager, KeyManagerConfig, ManagedKey, ManagerError, StoreError,
    StoreOptions,
};
use etdi_crypto::{Algorithm, CryptoProvider, UnixTime};
use serde_json::{Value, json};

use super::files::show;
use super::keyfile::store_options;
use super::{AlgArg, BitsArg, emit, rfc3339};

/// `etdi keys` subcommands.
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// List the active key and the retired keys with their overlap window.
    List(ListArgs),
    /// Make a fresh key active; the previous one keeps verifying for the
    /// overlap window. With --alg, creates the store if the directory holds
    /// none.
    Rotate(RotateArgs),
}

/// Options shared by the `keys` subcommands.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// The key store directory.
    #[arg(long)]
    dir: PathBuf,
    /// Seconds a retired key keeps verifying after rotation.
    #[arg(long, default_value_t = DEFAULT_OVERLAP_SECS)]
    overlap: u64,
    /// File holding the passphrase of an encrypted key store.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

/// Arguments of `etdi keys list`.
#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print the public JWKS to publish now (active key and retired keys
    /// still in their overlap) instead of the listing.
    #[arg(long)]
    jwks: bool,
}

/// Arguments of `etdi keys rotate`.
#[derive(clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Algorithm of the store. Must match a store that exists; creates the
    /// store when the directory holds none.
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// RSA modulus size in bits for new RSA keys [default: 2048].
    #[arg(long, value_enum)]
    bits: Option<BitsArg>,
}

/// Runs an `etdi keys` subcommand.
pub fn run(command: &KeysCommand, json: bool) -> Result<ExitCode, String> {
    match command {
        KeysCommand::List(args) => list(args, json),
        KeysCommand::Rotate(args) => rotate(args, json),
    }
}

fn config(store: &StoreArgs, bits: Option<BitsArg>, alg: Algorithm) -> KeyManagerConfig {
    let mut c = KeyManagerConfig::new(alg).with_overlap_secs(store.overlap);
    if let Some(bits) = bits {
        c = c.with_rsa_size(bits.0);
    }
    c
}

fn is_absent(e: &ManagerError) -> bool {
    match e {
        ManagerError::Store(StoreError::NotFound { .. }) => true,
        ManagerError::Store(StoreError::Io { source, .. }) => {
            source.kind() == std::io::ErrorKind::NotFound
        }
        _ => false,
    }
}

fn open(
    store: &StoreArgs,
    bits: Option<BitsArg>,
    options: StoreOptions,
) -> Result<KeyManager, ManagerError> {
    KeyManager::open_existing(
        CryptoProvider::get_default(),
        &store.dir,
        |alg| config(store, bits, alg),
        options,
    )
}

fn key_json(k: &ManagedKey, overlap: u64, now: UnixTime) -> Value {
    let key = k.key();
    let mut v = json!({
        "kid": key.kid().as_str(),
        "alg": key.algorithm().name(),
        "created": rfc3339(k.created().as_secs()),
    });
    if let (Some(retired), Some(obj)) = (k.retired(), v.as_object_mut()) {
        let until = retired.plus(overlap);
        obj.insert("retired".into(), json!(rfc3339(retired.as_secs())));
        obj.insert("verifies_until".into(), json!(rfc3339(until.as_secs())));
        obj.insert("in_overlap".into(), json!(now < until));
    }
    v
}

fn list(args: &ListArgs, json: bool) -> Result<ExitCode, String> {
    let store = &args.store;
    let options = store_options(store.passphrase_file.as_deref())?;
    let manager = open(store, None, options).map_err(|e| message(&store.dir, &e))?;
    let now = UnixTime::now();
    if args.jwks {
        // A JWKS is JSON whatever the output mode.
        super::json_text_line(&manager.jwks(now).to_json());
        return Ok(ExitCode::SUCCESS);
    }
    let active = key_json(manager.active_key(), store.overlap, now);
    let retired: Vec<Value> = manager
        .retired_keys()
        .iter()
        .map(|k| key_json(k, store.overlap, now))
        .collect();
    let skipped: Vec<Value> = manager
        .skipped_generations()
        .iter()
        .map(|(g, why)| json!({"generation": g, "reason": why}))
        .collect();
    let mut text = format!(
        "key store {} (generation {}, overlap {} s)\nactive   {}  {}  created {}",
        show(&store.dir),
        manager.generation(),
        store.overlap,
        manager.active().kid(),
        manager.active().algorithm(),
        rfc3339(manager.active_key().created().as_secs()),
    );
    for k in manager.retired_keys() {
        let retired_at = k.retired().map_or(0, UnixTime::as_secs);
        let until = retired_at.saturating_add(store.overlap);
        let state = if now.as_secs() < until {
            "verifies until"
        } else {
            "overlap ended"
        };
        text.push_str(&format!(
            "\nretired  {}  {}  created {}  retired {}  {state} {}",
            k.key().kid(),
            k.key().algorithm(),
            rfc3339(k.created().as_secs()),
            rfc3339(retired_at),
            rfc3339(until),
        ));
    }
    for (g, why) in manager.skipped_generations() {
        text.push_str(&format!(
            "\nwarning: generation {g} was unreadable and skipped: {why}"
        ));
    }
    emit(
        json,
        &json!({
            "dir": show(&store.dir),
            "generation": manager.generation(),
            "overlap_secs": store.overlap,
            "active": active,
            "retired": retired,
            "skipped_generations": skipped,
        }),
        &text,
    );
    Ok(ExitCode::SUCCESS)
}

fn rotate(args: &RotateArgs, json: bool) -> Result<ExitCode, String> {
    let store = &args.store;
    let now = UnixTime::now();
    let options = store_options(store.passphrase_file.as_deref())?;
    let mut manager = match open(store, args.bits, options.clone()) {
        Ok(m) => m,
        Err(e) if is_absent(&e) => {
            let Some(alg) = args.alg else {
                return Err(format!(
                    "{} holds no key store; give --alg to create one",
                    show(&store.dir)
                ));
            };
            return create(args, alg.0, options, now, json);
        }
        Err(e) => return Err(message(&store.dir, &e)),
    };
    let stored = manager.active().algorithm();
    if let Some(AlgArg(alg)) = args.alg
        && alg != stored
    {
        return Err(format!(
            "{} holds {stored} keys and rotation keeps the algorithm; --alg {alg} needs a new key store",
            show(&store.dir)
        ));
    }
    let previous = manager.active().kid().clone();
    let fresh = manager
        .rotate(now)
        .map_err(|e| message(&store.dir, &e))?
        .kid()
        .clone();
    let until = now.plus(store.overlap);
    emit(
        json,
        &json!({
            "dir": show(&store.dir),
            "created": false,
            "active": fresh.as_str(),
            "alg": stored.name(),
            "retired": previous.as_str(),
            "verifies_until": rfc3339(until.as_secs()),
            "generation": manager.generation(),
        }),
        &format!(
            "{fresh}\nrotated {}: {fresh} is active; {previous} retired, verifies until {}",
            show(&store.dir),
            rfc3339(until.as_secs())
        ),
    );
    Ok(ExitCode::SUCCESS)
}

fn create(
    args: &RotateArgs,
    alg: Algorithm,
    options: StoreOptions,
    now: UnixTime,
    json: bool,
) -> Result<ExitCode, String> {
    let store = &args.store;
    let manager = KeyManager::open(
        CryptoProvider::get_default(),
        &store.dir,
        config(store, args.bits, alg),
        options,
        now,
    )
    .map_err(|e| message(&store.dir, &e))?;
    let kid = manager.active().kid();
    emit(
        json,
        &json!({
            "dir": show(&store.dir),
            "created": true,
            "active": kid.as_str(),
            "alg": alg.name(),
            "generation": manager.generation(),
        }),
        &format!(
            "{kid}\ncreated key store {} with active {alg} key {kid}",
            show(&store.dir)
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// One sentence for a key-store error; library messages already name the
/// directory or the file.
fn message(dir: &Path, e: &ManagerError) -> String {
    let text = e.to_string();
    if text.contains(&show(dir)) {
        text
    } else {
        format!("{}: {text}", show(dir))
    }
}
