//! Reading inputs and writing outputs safely.
//!
//! Inputs are size-bounded so a wrong path (a log, a device) cannot exhaust
//! memory. Outputs are written to a temporary file in the target directory,
//! fsynced, and moved into place; without `--force` the move refuses to
//! replace an existing file (a hard link fails if the name exists, so two
//! writers cannot both win), and the directory is fsynced so the new name
//! survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use etdi_core::ToolDefinition;
use etdi_crypto::advertised;
use serde_json::Value;

/// Largest input file read: tool definitions, keys, JWKS, tokens and
/// attestations are all far smaller.
pub const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;

/// Reads a text file (`-` is standard input), naming `what` and the path in
/// the error.
pub fn read_text(path: &Path, what: &str) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {what} from standard input: {e}"))?;
        return check_size(text, what, "standard input");
    }
    let file = File::open(path).map_err(|e| format!("cannot read {what} {}: {e}", show(path)))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "cannot read {what} {}: it is a directory",
            show(path)
        ));
    }
    let mut text = String::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {what} {}: {e}", show(path)))?;
    check_size(text, what, &show(path))
}

fn check_size(text: String, what: &str, name: &str) -> Result<String, String> {
    if text.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{what} {name} is larger than {MAX_INPUT_BYTES} bytes"
        ));
    }
    Ok(text)
}

/// A path as shown in messages.
pub fn show(path: &Path) -> String {
    path.display().to_string()
}

/// A tool definition read from a file, in either form ETDI uses: a plain
/// definition (docs/PROTOCOL.md §2), or an MCP `Tool` object as advertised
/// in `tools/list`, whose `_meta` may carry the attestation.
#[derive(Debug)]
pub struct LoadedTool {
    /// The definition (rebuilt from the advertised fields for a `Tool`).
    pub definition: ToolDefinition,
    /// The attestation carried in `_meta`, if any.
    pub attestation: Option<String>,
    /// True when the file was an advertised MCP `Tool`.
    pub advertised: bool,
}

/// Reads a tool definition; errors name the file and the JSON field.
pub fn load_tool(path: &Path) -> Result<LoadedTool, String> {
    let text = read_text(path, "tool definition")?;
    let name = show(path);
    // An advertised tool is recognised by its `_meta` member; everything
    // else goes to the strict definition parser, whose errors name the field.
    if let Ok(Value::Object(tool)) = etdi_core::canonical::parse_json(&text)
        && tool.contains_key("_meta")
    {
        let definition = advertised::definition_from_tool(&tool)
            .map_err(|e| format!("{name}: advertised tool: {e}"))?;
        let attestation = advertised::attestation_of(&tool)
            .map_err(|e| format!("{name}: advertised tool: {e}"))?
            .map(str::to_owned);
        return Ok(LoadedTool {
            definition,
            attestation,
            advertised: true,
        });
    }
    let definition = ToolDefinition::from_json(&text).map_err(|e| format!("{name}: {e}"))?;
    Ok(LoadedTool {
        definition,
        attestation: None,
        advertised: false,
    })
}

/// Reads an attestation given as a file name or as the compact JWS itself.
pub fn read_attestation(arg: &str) -> Result<String, String> {
    let path = Path::new(arg);
    if arg == "-" || path.exists() {
        let text = read_text(path, "attestation")?;
        return Ok(text.trim().to_owned());
    }
    let looks_like_jws = arg.split('.').count() == 3
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if looks_like_jws {
        Ok(arg.to_owned())
    } else {
        Err(format!(
            "cannot read attestation {arg}: no such file, and it is not a compact JWS"
        ))
    }
}

/// One file to write.
pub struct Output<'a> {
    /// Where.
    pub path: &'a Path,
    /// What.
    pub bytes: &'a [u8],
    /// Unix permission bits (0o600 for private keys).
    pub mode: u32,
}

/// Writes every output or none: all targets are checked first (existing
/// files are refused unless `force`), and if a later write fails the files
/// this call created are removed again.
pub fn write_all(outputs: &[Output<'_>], force: bool) -> Result<(), String> {
    for (i, o) in outputs.iter().enumerate() {
        if outputs
            .iter()
            .skip(i + 1)
            .any(|other| same_path(other.path, o.path))
        {
            return Err(format!(
                "{} is named for two outputs; give each output its own file",
                show(o.path)
            ));
        }
        if !force && fs::symlink_metadata(o.path).is_ok() {
            return Err(format!(
                "{} already exists; use --force to replace it",
                show(o.path)
            ));
        }
        let dir = parent(o.path);
        if !dir.is_dir() {
            return Err(format!(
                "cannot write {}: directory {} does not exist",
                show(o.path),
                show(&dir)
            ));
        }
    }
    let mut created: Vec<&Path> = Vec::new();
    for o in outputs {
        let existed = fs::symlink_metadata(o.path).is_ok();
        if let Err(e) = write_one(o, force) {
            for path in created {
                let _ = fs::remove_file(path);
            }
            return Err(e);
        }
        if !existed {
            created.push(o.path);
        }
    }
    Ok(())
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (fs::canonicalize(parent(a)), fs::canonicalize(parent(b))),
            (Ok(x), Ok(y)) if x == y && a.file_name() == b.file_name()
        )
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Temporary file, fsync, then link (no replace) or rename (replace), then
/// fsync of the directory.
fn write_one(o: &Output<'_>, force: bool) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent(o.path);
    let file_name = o
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{} does not name a file", show(o.path)))?;
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let fail = |what: &str, e: io::Error| format!("cannot write {}: {what}: {e}", show(o.path));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(o.mode)
            .open(&tmp)
            .map_err(|e| fail("creating a temporary file", e))?;
        f.write_all(o.bytes).map_err(|e| fail("writing", e))?;
        f.sync_all().map_err(|e| fail("syncing", e))?;
        drop(f);
        if force {
            fs::rename(&tmp, o.path).map_err(|e| fail("moving into place", e))?;
        } else {
            fs::hard_link(&tmp, o.path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    format!("{} already exists; use --force to replace it", show(o.path))
                } else {
                    fail("moving into place", e)
                }
            })?;
            fs::remove_file(&tmp).map_err(|e| fail("removing the temporary file", e))?;
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("syncing the directory", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
