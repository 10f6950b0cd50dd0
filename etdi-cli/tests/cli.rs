//! Runs the real `etdi` binary: the demo passes, digests are stable, and bad
//! input is one clear sentence with a non-zero exit.

// Tests assert by unwrapping: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::process::Command;

fn etdi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_etdi"))
}

#[test]
fn demo_passes_every_step() {
    let out = etdi().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("[FAIL]"), "{stdout}");

    let out = etdi().args(["demo", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], 0);
    assert!(v["passed"].as_u64().unwrap() >= 5);
}

#[test]
fn tool_digest_is_stable_and_errors_name_the_field() {
    let dir = std::env::temp_dir().join(format!("etdi-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("tool.json");
    std::fs::File::create(&good)
        .unwrap()
        .write_all(
            br#"{"id":"a/b","name":"b","version":"1.0.0","provider":{"id":"p","name":"P"},
                 "inputSchema":{"type":"object"}}"#,
        )
        .unwrap();
    let out = etdi().args(["tool", "digest"]).arg(&good).output().unwrap();
    assert!(out.status.success());
    let d1 = String::from_utf8(out.stdout).unwrap();
    assert!(d1.starts_with("sha256:") && d1.trim().len() == 71, "{d1}");

    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        br#"{"id":"a/b","name":"b","version":"1.0","provider":{"id":"p","name":"P"},"inputSchema":{"type":"object"}}"#,
    )
    .unwrap();
    let out = etdi().args(["tool", "digest"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("`version`") && err.lines().count() == 1,
        "{err}"
    );

    let out = etdi()
        .args(["tool", "digest", "/nonexistent/x.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read")
    );

    let out = etdi().args(["tool", "--bogus"]).output().unwrap();
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
