//! The interop peers: npm packages from the committed lock file and a Python
//! virtualenv from the pinned requirements, installed into the repository
//! (`interop/node/node_modules`, `target/etdi-venv`) and skipped when the
//! lock file has not changed since the last install. A peer that cannot be
//! installed fails the run: no test is ever skipped for lack of a peer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Steps, require_program, root};

/// What the tests need to find the peers.
pub struct Peers {
    /// The venv's interpreter (`ETDI_PYTHON`).
    pub python: PathBuf,
}

/// Installs every peer. The lock files are part of the repository; a
/// missing one is an error, not a reason to skip.
pub fn install(steps: &mut Steps) -> Result<Peers, String> {
    let root = root();
    let node_dir = root.join("interop/node");
    if !node_dir.join("package-lock.json").is_file() {
        return Err("interop/node/package-lock.json is missing".into());
    }
    install_node(steps, &node_dir)?;
    let reqs = root.join("interop/python/requirements.txt");
    if !reqs.is_file() {
        return Err("interop/python/requirements.txt is missing".into());
    }
    let python = install_python(steps, &root, &reqs)?;
    // Programs the tests run directly.
    require_program(
        "node",
        "Node.js is required for the oidc-provider interop tests",
    )?;
    require_program(
        "curl",
        "curl is required for the mTLS interop test (apt-get install curl)",
    )?;
    Ok(Peers { python })
}

/// Runs `npm ci` from the committed lock file, unless node_modules was made
/// from this exact lock file already.
fn install_node(steps: &mut Steps, dir: &Path) -> Result<(), String> {
    let lock = fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("reading interop/node/package-lock.json: {e}"))?;
    let stamp = dir.join("node_modules/.etdi-stamp");
    let want = fingerprint(&lock);
    if fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        println!("==> npm peers up to date");
        return Ok(());
    }
    let mut npm = Command::new("npm");
    npm.current_dir(dir)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    steps
        .run("npm ci (interop/node)", npm)
        .map_err(|e| format!("{e}; Node.js and npm are required for the interop tests"))?;
    fs::write(&stamp, want).map_err(|e| format!("writing {}: {e}", stamp.display()))
}

/// Creates `target/etdi-venv` and installs the pinned requirements into it,
/// unless it was made from this exact requirements file already. Returns the
/// venv's interpreter.
fn install_python(steps: &mut Steps, root: &Path, reqs: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target/etdi-venv");
    let python = venv.join("bin/python");
    let text = fs::read(reqs).map_err(|e| format!("reading {}: {e}", reqs.display()))?;
    let stamp = venv.join(".etdi-stamp");
    let want = fingerprint(&text);
    if python.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        println!("==> Python peers up to date");
        return Ok(python);
    }
    if !python.is_file() {
        let mut mk = Command::new("python3");
        mk.args(["-m", "venv"]).arg(&venv);
        steps
            .run("python3 -m venv target/etdi-venv", mk)
            .map_err(|e| format!("{e}; Python 3 with venv is required for the interop tests"))?;
    }
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(reqs);
    steps.run("pip install -r interop/python/requirements.txt", pip)?;
    fs::write(&stamp, want).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(python)
}

/// A cheap content fingerprint (FNV-1a 64) for the install stamps; it only
/// decides whether to reinstall, so it need not be cryptographic.
fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
