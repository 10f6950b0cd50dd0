//! Runs the real `etdi demo` binary, as text and as JSON: it must exit 0,
//! report every step as passed, and each step's evidence must be the exact
//! outcome ETDI is supposed to produce (error codes and reasons), not just
//! "some error". The demo starts its own issuer and server on 127.0.0.1.

// Tests assert by unwrapping: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};

use serde_json::{Value, json};

/// The steps, in order, with their titles as printed.
const STEPS: [(&str, &str); 7] = [
    ("discover", "The agent checks the tools before it uses them"),
    ("signed_call", "A legitimate, signed call is allowed"),
    (
        "missing_scope",
        "A call without the needed scope is refused",
    ),
    ("call_depth", "A call chain that is too long is refused"),
    ("replay", "A replayed request is refused"),
    (
        "rug_pull",
        "A silent change to a tool is blocked (rug pull)",
    ),
    ("audit", "The audit log is complete and tamper-evident"),
];

fn etdi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etdi"))
        .args(args)
        .output()
        .expect("the etdi binary runs")
}

#[test]
fn text_report_shows_every_step_passed() {
    let out = etdi(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    for (i, (_, title)) in STEPS.iter().enumerate() {
        let line = format!("[PASS] {}. {title}", i + 1);
        assert!(stdout.contains(&line), "missing `{line}` in:\n{stdout}");
    }
    // The report wraps long lines; compare text with the wrapping undone.
    let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    // Each step tells its story and shows its evidence.
    assert_eq!(
        stdout.matches("evidence: ").count(),
        STEPS.len(),
        "{stdout}"
    );
    for needle in [
        "-32010",
        "missing permission(s): files:write",
        "-32014",
        "call chain depth 3 exceeds the limit of 2",
        "-32013",
        "-32015",
        "version 1.0.0 was republished with different content",
        "tampered copy: record",
    ] {
        assert!(flat.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    // The summary is the last paragraph.
    let summary = stdout.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        summary.starts_with("7 passed, 0 failed: ETDI allowed"),
        "{stdout}"
    );
    // Only loopback servers were started.
    for line in stdout.lines().filter(|l| l.contains("http://")) {
        assert!(line.contains("http://127.0.0.1:"), "{line}");
    }
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {report:#}"))
}

#[test]
fn json_report_is_complete_and_exact() {
    let out = etdi(&["--json", "demo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert!(out.status.success(), "{report:#}\n{stderr}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["passed"], 7);
    assert_eq!(report["failed"], 0);
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("7 passed, 0 failed")
    );

    let steps = report["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, STEPS.map(|(id, _)| id));
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["number"], i + 1);
        assert_eq!(s["passed"], true, "{s:#}");
        assert_eq!(s["title"], STEPS[i].1);
        for field in ["story", "expected", "observed"] {
            assert!(!s[field].as_str().unwrap().is_empty(), "{field} of {s:#}");
        }
    }

    // Loopback only, and the working directory is gone afterwards.
    let env = &report["environment"];
    assert!(
        env["issuer"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(
        env["server"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let work_dir = env["work_dir"].as_str().unwrap();
    assert!(
        !std::path::Path::new(work_dir).exists(),
        "{work_dir} left behind"
    );
    // Different tokens for different steps.
    assert_eq!(env["full_token_scope"], "files:read files:write");
    assert_eq!(env["read_only_token_scope"], "files:read");

    let d = &step(&report, "discover")["details"];
    assert_eq!(d["pins"], 2);
    for t in d["tools"].as_array().unwrap() {
        assert_eq!(t["signed_by"], "com.example");
        assert_eq!(t["approved_by"], "rule:demo-files");
        assert!(t["digest"].as_str().unwrap().starts_with("sha256:"));
    }

    let d = &step(&report, "signed_call")["details"];
    assert_eq!(d["answer"], "Q3 report: revenue up 4%, no incidents.");
    assert_eq!(d["principal"], "demo-agent");
    for s in [
        "authenticate",
        "request_signature",
        "replay",
        "authorize",
        "invoke",
    ] {
        assert!(
            d["audited_steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == s),
            "{d:#}"
        );
    }

    let d = &step(&report, "missing_scope")["details"];
    assert_eq!(d["code"], -32010);
    assert_eq!(
        d["reasons"],
        json!([{"code": "missing_permissions", "missing": ["files:write"]}])
    );

    let d = &step(&report, "call_depth")["details"];
    assert_eq!(d["one_relay"], "allowed");
    assert_eq!(d["two_relays"]["code"], -32014);
    assert_eq!(
        d["two_relays"]["reasons"],
        json!([{"code": "call_depth_exceeded", "depth": 3, "max": 2}])
    );

    let d = &step(&report, "replay")["details"];
    assert_eq!(d["first"], "answered");
    assert_eq!(d["second"]["code"], -32013);
    assert_eq!(d["second"]["reasons"][0]["code"], "replay");

    let d = &step(&report, "rug_pull")["details"];
    assert_eq!(d["verdict"], "blocked");
    assert_eq!(d["version"], "1.0.0");
    assert_ne!(d["pinned"], d["now"]);
    assert_eq!(d["shown_to_model"], json!(["write_file"]));
    assert_eq!(d["code"], -32015);
    assert_eq!(d["reached_server"], false);

    let d = &step(&report, "audit")["details"];
    let server = &d["server"];
    assert!(server["records"].as_u64().unwrap() > 0);
    assert!(server["checkpoints"].as_u64().unwrap() >= 1);
    for kind in [
        "authorization_failed",
        "policy_violation",
        "replay_detected",
    ] {
        assert_eq!(server["events"][kind], 1, "{kind}: {server:#}");
    }
    assert_eq!(
        server["events"]["tool_invocation_completed"], 3,
        "{server:#}"
    );
    assert_eq!(d["agent"]["events"]["rug_pull_detected"], 1, "{d:#}");
    assert!(d["tampered_copy"].as_str().unwrap().contains("modified"));
}
