//! `cargo xtask`: project automation in Rust instead of shell scripts.
//!
//! * `cargo xtask ci`: everything CI runs, in order, failing on the first
//!   error: formatting, clippy with warnings denied, the whole test suite.
//!
//! Later tasks (interop, fuzz smoke, bench) are added here as they land; each
//! installs what it needs from the project's own lock files.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  ci    fmt check, clippy -D warnings, all tests"
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

fn ci() -> Result<(), String> {
    let start = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    step("cargo clippy", clippy)?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    step("cargo test", test)?;

    println!(
        "ci: all steps passed in {:.0}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
