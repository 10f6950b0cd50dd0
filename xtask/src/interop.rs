//! `cargo xtask interop`: every cross-implementation test in one place,
//! against real third-party peers, and the split that keeps `cargo xtask ci`
//! from running them twice.
//!
//! The peer-backed tests are
//!
//! * every `[[test]]` whose `required-features` names `interop`, in any
//!   crate, found through `cargo metadata` (an oidc-provider in Node, the
//!   official Python MCP SDK, jwcrypto/cryptography for the JOSE
//!   cross-verification, and whatever is added later);
//! * the tests listed in [`PEER_TESTS`]: single tests inside an ordinary
//!   test target that drive a system program (curl over mTLS).
//!
//! Every command uses `--workspace --all-features`, the same as clippy and
//! the ordinary test step, so the three share one build.

use std::process::Command;

use crate::metadata::TestPlan;
use crate::peers::Peers;
use crate::util::{Steps, cargo};

/// A peer-backed test that lives inside an ordinary test target.
pub struct PeerTest {
    /// The test target (`tests/NAME.rs`).
    pub target: &'static str,
    /// The test function's full name inside it.
    pub test: &'static str,
    /// What it needs, for the report.
    pub peer: &'static str,
}

/// Peer-backed tests inside ordinary targets: skipped (by exact name) in
/// the ordinary test step and run here. If one is renamed, the interop
/// step fails because its filter matches nothing.
pub const PEER_TESTS: &[PeerTest] = &[PeerTest {
    target: "mtls",
    test: "curl_with_a_client_certificate",
    peer: "the curl binary as an mTLS client (etdi-auth)",
}];

/// `cargo test --workspace --all-features --locked --no-fail-fast`.
pub fn cargo_test(peers: &Peers) -> Command {
    let mut c = cargo();
    c.args([
        "test",
        "--workspace",
        "--all-features",
        "--locked",
        "--no-fail-fast",
    ])
    .env("ETDI_PYTHON", &peers.python);
    c
}

/// The ordinary tests: every unit, integration and example test except the
/// peer-backed ones (doc tests are a separate command: cargo cannot mix
/// `--doc` with other target selections).
pub fn ordinary_tests(plan: &TestPlan, peers: &Peers) -> Command {
    let mut c = cargo_test(peers);
    c.arg("--lib");
    for bin in &plan.bins {
        c.args(["--bin", bin]);
    }
    for test in &plan.regular_tests {
        c.args(["--test", test]);
    }
    for example in &plan.examples {
        c.args(["--example", example]);
    }
    c.args(["--", "--exact"]);
    for t in PEER_TESTS {
        c.args(["--skip", t.test]);
    }
    c
}

/// Runs every peer-backed test; each interop target must run at least one
/// test and each [`PEER_TESTS`] entry exactly one.
pub fn run(steps: &mut Steps, plan: &TestPlan, peers: &Peers) -> Result<(), String> {
    let names: Vec<String> = plan
        .interop
        .iter()
        .map(|(package, test)| format!("{package}/{test}"))
        .collect();
    println!("interop test targets: {}", names.join(", "));
    let mut cmd = cargo_test(peers);
    for (_, test) in &plan.interop {
        cmd.args(["--test", test]);
    }
    let counts = steps.run_tests("interop: peer test targets", cmd)?;
    if counts.binaries < plan.interop.len() || counts.empty_binaries > 0 {
        return Err(format!(
            "interop: {} test targets were selected but {} reported tests ({} ran none)",
            plan.interop.len(),
            counts.binaries,
            counts.empty_binaries
        ));
    }
    for t in PEER_TESTS {
        let mut cmd = cargo_test(peers);
        cmd.args(["--test", t.target, "--", "--exact", t.test]);
        let name = format!("interop: {} ({})", t.test, t.peer);
        let counts = steps.run_tests(&name, cmd)?;
        if counts.passed != 1 {
            return Err(format!(
                "interop: `{}` in tests/{}.rs ran {} tests, expected exactly 1 \
                 (renamed? update PEER_TESTS in xtask/src/interop.rs)",
                t.test, t.target, counts.passed
            ));
        }
    }
    Ok(())
}
