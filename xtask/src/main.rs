//! `cargo xtask`: project automation in Rust instead of shell scripts.
//!
//! * `cargo xtask ci`: everything CI runs, failing on the first error:
//!   formatting, the peers (npm and Python packages, from the committed lock
//!   files), clippy with warnings denied, and every test of every crate with
//!   every feature (so the interop tests against real peers and the optional
//!   Cedar engine are always exercised).
//! * `cargo xtask peers`: only install the peers.
//!
//! Peers are installed into the repository (`interop/node/node_modules`,
//! `target/etdi-venv`) and skipped when the lock file has not changed since
//! the last install. A peer that cannot be installed fails the run: no test
//! is ever skipped for lack of a peer.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("peers") => peers().map(|_| ()),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci     fmt check, peers, clippy -D warnings, all tests with all features\n  peers  install the interop peers (npm, Python venv) from the lock files"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // CARGO_MANIFEST_DIR is xtask/; the workspace is its parent.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    println!("==> {name}");
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    println!("<== {name}: {:.1}s", start.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

/// Environment the tests need to find the peers.
struct Peers {
    python: Option<PathBuf>,
}

fn ci() -> Result<(), String> {
    let start = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt)?;

    let peers = peers()?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    step("cargo clippy", clippy)?;

    let mut test = cargo();
    test.args([
        "test",
        "--workspace",
        "--all-features",
        "--locked",
        "--no-fail-fast",
    ]);
    if let Some(py) = &peers.python {
        test.env("ETDI_PYTHON", py);
    }
    step("cargo test", test)?;

    println!(
        "ci: all steps passed in {:.0}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Installs every peer whose lock file exists in the repository.
fn peers() -> Result<Peers, String> {
    let root = root();
    let node_dir = root.join("interop/node");
    if node_dir.join("package-lock.json").is_file() {
        install_node(&node_dir)?;
    }
    let reqs = root.join("interop/python/requirements.txt");
    let python = if reqs.is_file() {
        Some(install_python(&root, &reqs)?)
    } else {
        None
    };
    Ok(Peers { python })
}

/// Runs `npm ci` from the committed lock file, unless node_modules was made
/// from this exact lock file already.
fn install_node(dir: &Path) -> Result<(), String> {
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
    step("npm ci (interop/node)", npm)
        .map_err(|e| format!("{e}; Node.js and npm are required for the interop tests"))?;
    fs::write(&stamp, want).map_err(|e| format!("writing {}: {e}", stamp.display()))
}

/// Creates `target/etdi-venv` and installs the pinned requirements into it,
/// unless it was made from this exact requirements file already. Returns the
/// venv's interpreter.
fn install_python(root: &Path, reqs: &Path) -> Result<PathBuf, String> {
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
        step("python3 -m venv target/etdi-venv", mk)
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
    step("pip install -r interop/python/requirements.txt", pip)?;
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
