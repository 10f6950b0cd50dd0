//! `cargo xtask fuzz`: the fuzz targets of `fuzz/` on stable Rust.
//!
//! The targets are plain functions (`fuzz/src/targets/`). On stable, the
//! package's `etdi-fuzz` binary drives them: it replays the committed seed
//! corpus (`fuzz/corpus/TARGET/`) and then runs mutated and random inputs
//! for a bounded time per target, checking each target's invariants. On
//! nightly, `cargo +nightly fuzz run TARGET` drives the very same functions
//! through libFuzzer with coverage feedback (see `fuzz/fuzz_targets/`).
//!
//! The fuzz package is not a workspace member (its own lock file), but it
//! is built into the workspace's `target/` so that the libraries' compiled
//! dependencies are shared, with `--no-default-features --features driver`
//! so that libFuzzer (nightly only) is never compiled.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::util::{Steps, cargo, root};

/// What a smoke run does.
pub struct SmokeOptions {
    /// Seconds of mutated inputs per target (after the corpus replay).
    pub seconds: u64,
    /// Targets to run; all when empty.
    pub targets: Vec<String>,
}

impl Default for SmokeOptions {
    fn default() -> Self {
        // Eight targets x 15 s: two minutes, plus the corpus replays.
        SmokeOptions {
            seconds: 15,
            targets: Vec::new(),
        }
    }
}

fn manifest() -> PathBuf {
    root().join("fuzz/Cargo.toml")
}

/// A cargo command on the fuzz package, built into the workspace target/.
fn fuzz_cargo_with_features(subcommand: &str) -> Command {
    let mut c = cargo();
    c.arg(subcommand)
        .arg("--manifest-path")
        .arg(manifest())
        .arg("--locked")
        .env("CARGO_TARGET_DIR", root().join("target"));
    c
}

/// The stable build: the `etdi-fuzz` driver, without libFuzzer.
fn fuzz_cargo(subcommand: &str) -> Command {
    let mut c = fuzz_cargo_with_features(subcommand);
    c.args(["--no-default-features", "--features", "driver"]);
    c
}

/// `cargo clippy` over the fuzz package, warnings denied: the driver and
/// the libFuzzer entry points (checking them needs no nightly; running
/// them does).
pub fn clippy() -> Command {
    let mut c = fuzz_cargo_with_features("clippy");
    c.args(["--all-features", "--all-targets", "--", "-D", "warnings"]);
    c
}

fn driver(args: &[&str]) -> Command {
    let mut c = fuzz_cargo("run");
    c.args(["--quiet", "--bin", "etdi-fuzz", "--"]).args(args);
    c
}

/// The fuzz package's own tests (the mutator, and that the committed
/// corpus is current and runs clean), then the smoke run.
pub fn smoke(steps: &mut Steps, o: &SmokeOptions) -> Result<(), String> {
    steps.run_tests("fuzz: unit tests and corpus replay", fuzz_cargo("test"))?;
    let seconds = o.seconds.to_string();
    let mut args = vec!["smoke", "--seconds", seconds.as_str()];
    args.extend(o.targets.iter().map(String::as_str));
    steps.run(
        &format!("fuzz smoke ({} s per target, stable)", o.seconds),
        driver(&args),
    )
}

/// `cargo xtask fuzz ...`.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut steps = Steps::default();
    let start = Instant::now();
    match args.first().map(String::as_str) {
        Some("--smoke") => {
            let mut o = SmokeOptions::default();
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--seconds" => {
                        o.seconds = it
                            .next()
                            .and_then(|v| v.parse().ok())
                            .ok_or("--seconds needs a number")?;
                    }
                    name => o.targets.push(name.to_owned()),
                }
            }
            let result = smoke(&mut steps, &o);
            steps.summary("fuzz", start.elapsed());
            result
        }
        Some("--list") => steps.run("fuzz targets", driver(&["list"])),
        Some("--replay") => {
            // The driver runs in the workspace root: make the files' paths
            // absolute against the caller's directory first.
            let here = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
            let mut a = vec!["replay".to_owned()];
            for (i, arg) in args.iter().skip(1).enumerate() {
                a.push(if i == 0 {
                    arg.clone()
                } else {
                    here.join(arg).display().to_string()
                });
            }
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            steps.run("fuzz replay", driver(&a))
        }
        Some("--write-seeds") => steps.run("fuzz seeds", driver(&["write-seeds"])),
        _ => Err(
            "usage: cargo xtask fuzz --smoke [--seconds N] [TARGET...] | --replay TARGET FILE... \
             | --list | --write-seeds (libFuzzer, nightly only: cargo +nightly fuzz run TARGET)"
                .into(),
        ),
    }
}
