//! `cargo xtask`: project automation in Rust instead of shell scripts.
//!
//! * `cargo xtask ci`: everything CI runs, stopping at the first failing
//!   step: formatting, the peers, clippy with warnings denied, the ordinary
//!   tests with every feature, the doc tests, the interop tests against real
//!   peers, and the fuzz smoke run; then the time of each step and the total.
//! * `cargo xtask interop`: install the peers and run every
//!   cross-implementation test (see `interop.rs`).
//! * `cargo xtask fuzz --smoke`: the fuzz targets on stable Rust for a
//!   bounded time each (see `fuzz.rs`; `cargo +nightly fuzz` runs the same
//!   targets under libFuzzer).
//! * `cargo xtask bench`: every criterion bench, then BENCHMARKS.md and
//!   `target/etdi-bench/bench.json` (see `bench.rs`).
//! * `cargo xtask peers`: only install the peers.

mod bench;
mod fuzz;
mod interop;
mod metadata;
mod peers;
mod util;

use std::env;
use std::process::ExitCode;
use std::time::Instant;

use metadata::TestPlan;
use util::{Steps, cargo, root};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci                 fmt check, peers, clippy -D warnings, tests (all features),
                     doc tests, interop tests, fuzz smoke; prints step timings
  interop            install the peers and run every cross-implementation test
  fuzz --smoke [--seconds N] [TARGET...]
                     run the fuzz targets on stable for N seconds each (default 15)
  fuzz --replay TARGET FILE...
                     run saved inputs (a finding, a libFuzzer artifact) once
  fuzz --list        list the fuzz targets
  fuzz --write-seeds regenerate the seed corpus under fuzz/corpus/
  bench              run every criterion bench (release), write BENCHMARKS.md
                     and target/etdi-bench/bench.json
  peers              install the interop peers (npm, Python venv) from the lock files";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("interop") => interop(),
        Some("fuzz") => fuzz::main(rest),
        Some("bench") => bench::main(rest),
        Some("peers") => peers::install(&mut Steps::default()).map(|_| ()),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{USAGE}");
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

fn interop() -> Result<(), String> {
    let start = Instant::now();
    let mut steps = Steps::default();
    let result = (|| {
        let mut plan = TestPlan::from_targets(&metadata::targets()?)?;
        // The load and fault tests run on their own, uncaptured, so that their
        // figures (throughput, latency, peak RSS, acknowledged vs found after
        // SIGKILL) are in the CI log.
        let had_load = plan.regular_tests.len();
        plan.regular_tests.retain(|t| t != LOAD_TESTS);
        if plan.regular_tests.len() == had_load {
            return Err(format!(
                "test target `{LOAD_TESTS}` not found (renamed? update xtask)"
            ));
        }
        let peers = peers::install(&mut steps)?;
        interop::run(&mut steps, &plan, &peers)
    })();
    steps.summary("interop", start.elapsed());
    result
}

fn ci() -> Result<(), String> {
    let start = Instant::now();
    let mut steps = Steps::default();
    let result = ci_steps(&mut steps);
    steps.summary(
        if result.is_ok() {
            "ci: all steps passed"
        } else {
            "ci: FAILED"
        },
        start.elapsed(),
    );
    result
}

/// The load and SIGKILL fault tests (etdi-server).
const LOAD_TESTS: &str = "load_fault";

fn ci_steps(steps: &mut Steps) -> Result<(), String> {
    let root = root();
    let fuzz_manifest = root.join("fuzz/Cargo.toml");

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    steps.run("cargo fmt --check", fmt)?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--manifest-path"])
        .arg(&fuzz_manifest)
        .args(["--", "--check"]);
    steps.run("cargo fmt --check (fuzz)", fmt)?;

    let plan = TestPlan::from_targets(&metadata::targets()?)?;
    let peers = peers::install(steps)?;

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
    steps.run("cargo clippy", clippy)?;
    steps.run("cargo clippy (fuzz)", fuzz::clippy())?;

    steps.run_tests(
        "cargo test (all but interop)",
        interop::ordinary_tests(&plan, &peers),
    )?;
    let mut load = interop::cargo_test(&peers);
    load.args(["--test", LOAD_TESTS, "--", "--nocapture"]);
    steps.run_tests("load and fault tests (figures printed)", load)?;
    let mut doc = interop::cargo_test(&peers);
    doc.arg("--doc");
    steps.run_tests("cargo test --doc", doc)?;

    interop::run(steps, &plan, &peers)?;

    fuzz::smoke(steps, &fuzz::SmokeOptions::default())
}
