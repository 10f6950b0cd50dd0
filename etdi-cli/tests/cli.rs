//! Runs the real `etdi` binary on temporary directories: the demo passes,
//! keys are generated and rotated, tools are signed, verified and tampered
//! with, tokens are decoded and validated (offline and by discovery against
//! a loopback issuer), approvals are recorded and revoked, audit logs written
//! by etdi-audit are verified and tailed, every `--json` output parses, every
//! subcommand has `--help`, and bad input is one sentence naming the file and
//! the field, with a non-zero exit and nothing changed on disk.

// Tests assert by unwrapping: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use etdi_audit::sink::FileSink;
use etdi_audit::{AuditLog, event};
use etdi_core::{AuthMethod, Principal};
use etdi_crypto::jws::{self, JwsHeader};
use etdi_crypto::{CryptoProvider, SigningKey, UnixTime};
use serde_json::{Value, json};

fn etdi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_etdi"))
}

/// Runs `etdi` with `args` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    etdi().current_dir(dir).args(args).output().unwrap()
}

/// Runs `etdi` with `args` in `dir` and `--json`, expecting `code`; returns
/// the parsed standard output.
fn json_in(dir: &Path, args: &[&str], code: i32) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let out = run_in(dir, &all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "etdi {all:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "etdi {all:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

const TOOL: &str = r#"{
  "id": "com.example.files/read",
  "name": "read_file",
  "version": "1.0.0",
  "description": "Read a file",
  "provider": {"id": "com.example", "name": "Example"},
  "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
  "permissions": ["file:read"]
}
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file under `dir` with its bytes and mode, to prove a command
/// changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                out.insert(e.path(), (b"<dir>".to_vec(), meta.permissions().mode()));
                stack.push(e.path());
            } else {
                out.insert(
                    e.path(),
                    (std::fs::read(e.path()).unwrap(), meta.permissions().mode()),
                );
            }
        }
    }
    out
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

#[test]
fn help_works_for_every_subcommand() {
    let commands: &[&[&str]] = &[
        &[],
        &["demo"],
        &["keygen"],
        &["keys"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["tool"],
        &["tool", "digest"],
        &["tool", "canonical"],
        &["tool", "sign"],
        &["tool", "verify"],
        &["tool", "inspect"],
        &["token"],
        &["token", "inspect"],
        &["approvals"],
        &["approvals", "list"],
        &["approvals", "approve"],
        &["approvals", "revoke"],
        &["audit"],
        &["audit", "verify"],
        &["audit", "tail"],
        &["policy"],
        &["policy", "check"],
        &["proxy"],
    ];
    for path in commands {
        let mut args: Vec<&str> = path.to_vec();
        args.push("--help");
        let out = etdi().args(&args).output().unwrap();
        ok(&out);
        let text = stdout(&out);
        let usage = if path.is_empty() {
            "Usage: etdi".to_owned()
        } else {
            format!("Usage: etdi {}", path.join(" "))
        };
        assert!(text.contains(&usage), "{args:?}: {text}");
        assert!(out.stderr.is_empty(), "{args:?}");
    }
    // A command group without its subcommand is a one-sentence error.
    let out = etdi().arg("keys").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn keygen_sign_verify_round_trip_and_a_tampered_byte_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tool.json", TOOL);

    let k = json_in(
        dir,
        &["keygen", "--alg", "ES256", "--out", "provider.pem"],
        0,
    );
    let kid = k["kid"].as_str().unwrap();
    assert_eq!(
        kid.len(),
        43,
        "an RFC 7638 thumbprint is 43 base64url characters"
    );
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("provider.pem"), 0o600);
    assert_eq!(mode("provider.pub.pem"), 0o644);
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("provider.jwks.json")).unwrap())
            .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid);
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(
        std::fs::read_to_string(dir.join("provider.pem"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    // Sign: the attestation is printed, or written into a signed definition.
    let signed = json_in(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "provider.pem",
            "--issuer",
            "com.example",
            "tool.json",
        ],
        0,
    );
    assert_eq!(signed["kid"], kid);
    let attestation = signed["attestation"].as_str().unwrap();
    std::fs::write(dir.join("tool.jws"), attestation).unwrap();
    let digest = json_in(dir, &["tool", "digest", "tool.json"], 0);
    assert_eq!(signed["digest"], digest["digest"]);
    // The canonical form is JSON in either mode.
    let canonical = json_in(dir, &["tool", "canonical", "tool.json"], 0);
    assert_eq!(canonical["permissions"], json!(["file:read"]));

    // Verify with the SPKI PEM, the JWKS, and the attestation as a string.
    for key in ["provider.pub.pem", "provider.jwks.json"] {
        let v = json_in(
            dir,
            &[
                "tool",
                "verify",
                "tool.json",
                "--attestation",
                "tool.jws",
                "--key",
                key,
            ],
            0,
        );
        assert_eq!(v["verified"], true);
        assert_eq!(v["key_id"], kid);
        assert_eq!(v["issuer"], "com.example");
        assert_eq!(v["claims"]["tool_digest"], digest["digest"]);
    }
    let out = run_in(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            attestation,
            "--key",
            "provider.pub.pem",
        ],
    );
    ok(&out);
    assert!(stdout(&out).starts_with("verified: com.example.files/read 1.0.0"));

    // One changed byte in the definition: digest mismatch, exit 1.
    let tampered = TOOL.replace("Read a file", "Read a filf");
    assert_eq!(tampered.len(), TOOL.len());
    write(dir, "tampered.json", &tampered);
    let v = json_in(
        dir,
        &[
            "tool",
            "verify",
            "tampered.json",
            "--attestation",
            "tool.jws",
            "--key",
            "provider.pub.pem",
        ],
        1,
    );
    assert_eq!(v["verified"], false);
    assert_eq!(v["code"], "digest_mismatch");
    let out = run_in(
        dir,
        &[
            "tool",
            "verify",
            "tampered.json",
            "--attestation",
            "tool.jws",
            "--key",
            "provider.pub.pem",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("not verified: digest_mismatch:"),
        "{}",
        stdout(&out)
    );

    // A flipped signature byte, another key, another issuer.
    // (The first signature character: the last one carries padding bits
    // that strict base64url refuses, which would be `malformed` instead.)
    let sig_start = attestation.rfind('.').unwrap() + 1;
    let flipped = if &attestation[sig_start..=sig_start] == "A" {
        "B"
    } else {
        "A"
    };
    let bad_sig = format!(
        "{}{flipped}{}",
        &attestation[..sig_start],
        &attestation[sig_start + 1..]
    );
    let v = json_in(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            &bad_sig,
            "--key",
            "provider.pub.pem",
        ],
        1,
    );
    assert_eq!(v["code"], "bad_signature");
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "other.pem"], 0);
    let v = json_in(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "tool.jws",
            "--key",
            "other.pub.pem",
        ],
        1,
    );
    assert_eq!(v["code"], "unknown_key", "{v}");
    let v = json_in(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "tool.jws",
            "--key",
            "provider.pub.pem",
            "--issuer",
            "com.other",
        ],
        1,
    );
    assert_eq!(v["code"], "untrusted_issuer", "{v}");

    // The signed definition carries its attestation; inspect shows the
    // claims, clearly unverified.
    let s = json_in(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "provider.pem",
            "--issuer",
            "com.example",
            "tool.json",
            "--out",
            "signed.json",
        ],
        0,
    );
    assert_eq!(s["out"], "signed.json");
    let signed_file: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("signed.json")).unwrap()).unwrap();
    assert!(signed_file["_meta"]["dev.etdi/attestation"].is_string());
    let v = json_in(
        dir,
        &[
            "tool",
            "verify",
            "signed.json",
            "--key",
            "provider.jwks.json",
        ],
        0,
    );
    assert_eq!(v["verified"], true);
    let i = json_in(dir, &["tool", "inspect", "signed.json"], 0);
    assert_eq!(i["id"], "com.example.files/read");
    assert_eq!(i["name"], "read_file");
    assert_eq!(i["version"], "1.0.0");
    assert_eq!(i["provider"]["id"], "com.example");
    assert_eq!(i["permissions"], json!(["file:read"]));
    assert_eq!(i["digest"], digest["digest"]);
    assert_eq!(i["form"], "advertised");
    assert_eq!(i["attestation"]["verified"], false);
    assert_eq!(i["attestation"]["claims"]["iss"], "com.example");
    assert_eq!(i["attestation"]["digest_matches"], true);
    let i = json_in(
        dir,
        &[
            "tool",
            "inspect",
            "tampered.json",
            "--attestation",
            "tool.jws",
        ],
        0,
    );
    assert_eq!(i["attestation"]["digest_matches"], false);
    let out = run_in(dir, &["tool", "inspect", "signed.json"]);
    ok(&out);
    assert!(stdout(&out).contains("UNVERIFIED"), "{}", stdout(&out));

    // Refuses to overwrite, then --force replaces.
    let before = std::fs::read(dir.join("provider.pem")).unwrap();
    let out = run_in(dir, &["keygen", "--alg", "ES256", "--out", "provider.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("provider.pem already exists"));
    assert_eq!(std::fs::read(dir.join("provider.pem")).unwrap(), before);
    let k2 = json_in(
        dir,
        &[
            "keygen",
            "--alg",
            "ES256",
            "--out",
            "provider.pem",
            "--force",
        ],
        0,
    );
    assert_ne!(k2["kid"], k["kid"]);
    assert_eq!(mode("provider.pem"), 0o600);
}

#[test]
fn every_algorithm_signs_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tool.json", TOOL);
    let cases: &[(&str, &[&str])] = &[
        ("RS256", &[]),
        ("RS384", &["--bits", "3072"]),
        ("PS256", &[]),
        ("ES384", &[]),
        ("ES512", &[]),
        ("EdDSA", &[]),
    ];
    for (alg, extra) in cases {
        let out_name = format!("{alg}.pem");
        let mut args = vec!["keygen", "--alg", alg, "--out", &out_name];
        args.extend_from_slice(extra);
        let k = json_in(dir, &args, 0);
        assert_eq!(k["alg"], *alg);
        let rsa = alg.starts_with("RS") || alg.starts_with("PS");
        // An RSA PEM does not say which algorithm it is for.
        let mut sign = vec![
            "tool",
            "sign",
            "--key",
            &out_name,
            "--issuer",
            "com.example",
            "tool.json",
        ];
        if rsa {
            let out = run_in(dir, &sign);
            assert_eq!(out.status.code(), Some(2));
            let err = stderr(&out);
            assert!(err.contains(&out_name) && err.contains("--alg"), "{err}");
            sign.extend_from_slice(&["--alg", alg]);
        }
        let s = json_in(dir, &sign, 0);
        assert_eq!(s["alg"], *alg);
        std::fs::write(dir.join("a.jws"), s["attestation"].as_str().unwrap()).unwrap();
        let jwks = format!("{alg}.jwks.json");
        let v = json_in(
            dir,
            &[
                "tool",
                "verify",
                "tool.json",
                "--attestation",
                "a.jws",
                "--key",
                &jwks,
            ],
            0,
        );
        assert_eq!(v["alg"], *alg, "{v}");
        let pem = format!("{alg}.pub.pem");
        let mut verify = vec![
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "a.jws",
            "--key",
            &pem,
        ];
        if rsa {
            verify.extend_from_slice(&["--alg", alg]);
        }
        assert_eq!(json_in(dir, &verify, 0)["verified"], true);
    }
    let out = run_in(
        dir,
        &[
            "keygen", "--alg", "ES256", "--bits", "3072", "--out", "x.pem",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--bits applies only to RSA"));
    assert!(!dir.join("x.pem").exists());
}

#[test]
fn keys_rotate_then_list_shows_the_retired_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tool.json", TOOL);

    let created = json_in(
        dir,
        &["keys", "rotate", "--dir", "keys", "--alg", "ES256"],
        0,
    );
    assert_eq!(created["created"], true);
    let first = created["active"].as_str().unwrap().to_owned();
    let l = json_in(dir, &["keys", "list", "--dir", "keys"], 0);
    assert_eq!(l["active"]["kid"], first.as_str());
    assert_eq!(l["retired"], json!([]));

    // Sign with the store's active key before rotating.
    let s = json_in(
        dir,
        &[
            "tool",
            "sign",
            "--key-dir",
            "keys",
            "--issuer",
            "com.example",
            "tool.json",
        ],
        0,
    );
    assert_eq!(s["kid"], first.as_str());
    std::fs::write(dir.join("old.jws"), s["attestation"].as_str().unwrap()).unwrap();

    let r = json_in(dir, &["keys", "rotate", "--dir", "keys"], 0);
    assert_eq!(r["created"], false);
    assert_eq!(r["retired"], first.as_str());
    let second = r["active"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    let l = json_in(
        dir,
        &["keys", "list", "--dir", "keys", "--overlap", "3600"],
        0,
    );
    assert_eq!(l["active"]["kid"], second.as_str());
    assert_eq!(l["active"]["alg"], "ES256");
    let retired = l["retired"].as_array().unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0]["kid"], first.as_str());
    assert_eq!(retired[0]["in_overlap"], true);
    assert!(retired[0]["retired"].is_string() && retired[0]["verifies_until"].is_string());
    let out = run_in(dir, &["keys", "list", "--dir", "keys"]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!("retired  {first}")),
        "{}",
        stdout(&out)
    );

    // The JWKS still publishes the retired key during the overlap, so what
    // it signed keeps verifying; with no overlap left it is gone.
    let jwks = run_in(dir, &["keys", "list", "--dir", "keys", "--jwks"]);
    ok(&jwks);
    let set: Value = serde_json::from_slice(&jwks.stdout).unwrap();
    assert_eq!(set["keys"].as_array().unwrap().len(), 2);
    std::fs::write(dir.join("published.json"), &jwks.stdout).unwrap();
    let v = json_in(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "old.jws",
            "--key",
            "published.json",
        ],
        0,
    );
    assert_eq!(v["key_id"], first.as_str());
    let closed = run_in(
        dir,
        &["keys", "list", "--dir", "keys", "--jwks", "--overlap", "0"],
    );
    let set: Value = serde_json::from_slice(&closed.stdout).unwrap();
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert_eq!(set["keys"][0]["kid"], second.as_str());

    // Rotation keeps the algorithm; a store that is absent is not created
    // by a list, nor by a rotate without --alg.
    let before = snapshot(dir);
    let out = run_in(dir, &["keys", "rotate", "--dir", "keys", "--alg", "ES384"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("holds ES256 keys"),
        "{}",
        stderr(&out)
    );
    for args in [
        &["keys", "list", "--dir", "nokeys"][..],
        &["keys", "rotate", "--dir", "nokeys"][..],
    ] {
        let out = run_in(dir, args);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("nokeys"), "{}", stderr(&out));
    }
    std::fs::create_dir(dir.join("empty")).unwrap();
    let out = run_in(dir, &["keys", "list", "--dir", "empty"]);
    assert!(stderr(&out).contains("no key store"), "{}", stderr(&out));
    std::fs::remove_dir(dir.join("empty")).unwrap();
    assert_eq!(snapshot(dir), before);
}

#[test]
fn an_encrypted_key_store_needs_its_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "pass", "correct horse battery staple\n");
    write(dir, "wrong", "incorrect\n");
    let created = json_in(
        dir,
        &[
            "keys",
            "rotate",
            "--dir",
            "keys",
            "--alg",
            "EdDSA",
            "--passphrase-file",
            "pass",
        ],
        0,
    );
    let kid = created["active"].as_str().unwrap();
    let key_file =
        std::fs::read_to_string(dir.join("keys").join(format!("key-{kid}.pem"))).unwrap();
    assert!(key_file.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let before = snapshot(dir);
    for args in [
        &["keys", "list", "--dir", "keys"][..],
        &[
            "keys",
            "list",
            "--dir",
            "keys",
            "--passphrase-file",
            "wrong",
        ][..],
    ] {
        let out = run_in(dir, args);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains("keys") && err.contains("passphrase"), "{err}");
    }
    assert_eq!(snapshot(dir), before);
    let l = json_in(
        dir,
        &["keys", "list", "--dir", "keys", "--passphrase-file", "pass"],
        0,
    );
    assert_eq!(l["active"]["kid"], kid);
    assert_eq!(l["active"]["alg"], "EdDSA");
}

#[test]
fn approvals_approve_list_revoke() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tool.json", TOOL);
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "p.pem"], 0);
    let s = json_in(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "p.pem",
            "--issuer",
            "com.example",
            "tool.json",
        ],
        0,
    );
    std::fs::write(dir.join("tool.jws"), s["attestation"].as_str().unwrap()).unwrap();

    // Listing a store that does not exist creates nothing.
    let l = json_in(dir, &["approvals", "list", "--store", "approvals.json"], 0);
    assert_eq!(l["approvals"], json!([]));
    assert!(!dir.join("approvals.json.lock").exists());

    // An attestation must be verified before approval.
    let out = run_in(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "files",
            "tool.json",
            "--attestation",
            "tool.jws",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--key"), "{}", stderr(&out));

    let a = json_in(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "files",
            "tool.json",
            "--attestation",
            "tool.jws",
            "--key",
            "p.pub.pem",
            "--by",
            "alice",
        ],
        0,
    );
    assert_eq!(a["approved"], true);
    assert_eq!(a["first_seen"], true);
    assert_eq!(a["approval"]["signer"]["issuer"], "com.example");
    let mode = std::fs::metadata(dir.join("approvals.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let l = json_in(dir, &["approvals", "list", "--store", "approvals.json"], 0);
    let list = l["approvals"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["tool"], "com.example.files/read");
    assert_eq!(list[0]["server"], "files");
    assert_eq!(list[0]["version"], "1.0.0");
    assert_eq!(list[0]["approved_by"], "alice");
    assert_eq!(list[0]["permissions"], json!(["file:read"]));
    let digest = json_in(dir, &["tool", "digest", "tool.json"], 0);
    assert_eq!(list[0]["digest"], digest["digest"]);

    // A failing attestation is not approved; the same version with other
    // content is blocked, never re-approved.
    write(
        dir,
        "changed.json",
        &TOOL.replace("Read a file", "Read any file"),
    );
    let a = json_in(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "files",
            "changed.json",
            "--attestation",
            "tool.jws",
            "--key",
            "p.pub.pem",
        ],
        1,
    );
    assert_eq!(a["code"], "digest_mismatch");
    assert_eq!(a["approved"], false);
    let a = json_in(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "files",
            "changed.json",
        ],
        1,
    );
    assert_eq!(a["verdict"], "blocked");
    assert!(
        a["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "version_reuse")
    );

    // A new version with more permissions is approved and says so.
    write(
        dir,
        "v2.json",
        &TOOL
            .replace("1.0.0", "2.0.0")
            .replace(r#"["file:read"]"#, r#"["file:read", "file:write"]"#),
    );
    let a = json_in(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "files",
            "v2.json",
            "--expires-in-days",
            "30",
        ],
        0,
    );
    assert!(
        a["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "permission_escalation")
    );
    let l = json_in(dir, &["approvals", "list", "--store", "approvals.json"], 0);
    let list = l["approvals"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one pin per (server, provider, tool)");
    assert_eq!(list[0]["version"], "2.0.0");
    assert!(list[0]["expires_at"].is_string());

    // Revoke: a version that is not pinned is an error; the pinned one goes.
    let out = run_in(
        dir,
        &[
            "approvals",
            "revoke",
            "--store",
            "approvals.json",
            "--tool",
            "com.example.files/read",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no approval matches"),
        "{}",
        stderr(&out)
    );
    let r = json_in(
        dir,
        &[
            "approvals",
            "revoke",
            "--store",
            "approvals.json",
            "--tool",
            "com.example.files/read",
        ],
        0,
    );
    assert_eq!(r["revoked"].as_array().unwrap().len(), 1);
    let l = json_in(dir, &["approvals", "list", "--store", "approvals.json"], 0);
    assert_eq!(l["approvals"], json!([]));
}

/// Writes `n` events to an audit log in `dir` with checkpoints signed by
/// `key`, through etdi-audit's own API.
fn write_audit_log(dir: &Path, key: &SigningKey, n: usize) {
    let sink = FileSink::builder(dir)
        .checkpoint_signer(Arc::new(key.clone()))
        .checkpoint_every_records(2)
        .open()
        .unwrap();
    let log = AuditLog::builder().sink(sink).build().unwrap();
    let alice = Principal::new("alice", AuthMethod::BearerJwt);
    for i in 0..n {
        log.log_durable(event::authentication_succeeded(&alice).server(format!("server-{i}")))
            .unwrap();
    }
    log.shutdown().unwrap();
}

fn private_key(dir: &Path, name: &str) -> SigningKey {
    let pem = std::fs::read_to_string(dir.join(name)).unwrap();
    SigningKey::from_pkcs8_pem(
        CryptoProvider::get_default(),
        &pem,
        etdi_crypto::Algorithm::ES256,
    )
    .unwrap()
}

#[test]
fn audit_verify_intact_then_tampered_and_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "audit.pem"], 0);
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "other.pem"], 0);
    let key = private_key(dir, "audit.pem");
    let logs = dir.join("log");
    std::fs::create_dir(&logs).unwrap();
    write_audit_log(&logs, &key, 5);

    let v = json_in(
        dir,
        &["audit", "verify", "--dir", "log", "--key", "audit.pub.pem"],
        0,
    );
    assert_eq!(v["intact"], true);
    assert_eq!(v["records"], 5);
    assert_eq!(v["signatures_checked"], true);
    assert!(v["checkpoints"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["torn_tail"], Value::Null);
    let v = json_in(dir, &["audit", "verify", "--dir", "log"], 0);
    assert_eq!(v["signatures_checked"], false);
    let out = run_in(dir, &["audit", "verify", "--dir", "log"]);
    ok(&out);
    assert!(stdout(&out).contains("NOT checked"), "{}", stdout(&out));

    // A checkpoint signed by another key is refused.
    let v = json_in(
        dir,
        &["audit", "verify", "--dir", "log", "--key", "other.pub.pem"],
        1,
    );
    assert_eq!(v["intact"], false);
    assert_eq!(v["first_bad"]["kind"], "bad_checkpoint");

    // Tail shows the last records.
    let out = run_in(dir, &["audit", "tail", "--dir", "log", "-n", "2", "--json"]);
    ok(&out);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["seq"], 3);
    assert_eq!(lines[1]["seq"], 4);
    assert_eq!(lines[1]["hash_ok"], true);
    assert_eq!(lines[1]["event"]["server"], "server-4");

    // An interrupted write leaves a torn last line: reported, not tampering.
    let files = etdi_audit::sink::file::list_log_files(&logs, "audit").unwrap();
    let (_, file) = files.last().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, format!("{text}{{\"event\":{{\"id\"")).unwrap();
    let v = json_in(
        dir,
        &["audit", "verify", "--dir", "log", "--key", "audit.pub.pem"],
        0,
    );
    assert_eq!(v["intact"], true);
    assert_eq!(v["records"], 5);
    assert_eq!(v["torn_tail"]["offset"], text.len());
    assert_eq!(v["torn_tail"]["bytes"], 14);
    let out = run_in(dir, &["audit", "verify", "--dir", "log"]);
    ok(&out);
    assert!(
        stdout(&out).contains("torn tail: 14 bytes"),
        "{}",
        stdout(&out)
    );
    std::fs::write(file, &text).unwrap();

    // Edit one record: the verifier names it, exit 1.
    assert!(text.contains("server-2"));
    std::fs::write(file, text.replace("server-2", "server-X")).unwrap();
    let v = json_in(
        dir,
        &["audit", "verify", "--dir", "log", "--key", "audit.pub.pem"],
        1,
    );
    assert_eq!(v["intact"], false);
    assert_eq!(v["first_bad"]["seq"], 2);
    assert_eq!(v["first_bad"]["line"], 3);
    assert_eq!(v["first_bad"]["kind"], "modified");
    assert_eq!(
        v["first_bad"]["file"],
        file.display()
            .to_string()
            .replace(&format!("{}/", dir.display()), "")
    );
    let out = run_in(dir, &["audit", "verify", "--dir", "log"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("broken: first bad record (seq 2):"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}:3",
            file.file_name().unwrap().to_string_lossy()
        )),
        "{text}"
    );

    // Tail flags the edited record without claiming to verify anything.
    let out = run_in(dir, &["audit", "tail", "--dir", "log", "-n", "3"]);
    ok(&out);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3);
    assert!(
        text.lines().next().unwrap().contains("HASH MISMATCH"),
        "{text}"
    );
}

/// An attack on the operator's terminal (docs/THREAT_MODEL.md, #8): a
/// token `sub` holding a newline, an ANSI escape and a bidi override,
/// recorded as the audit log records any caller, must not forge a line on
/// `etdi audit tail` nor reach the terminal raw, in either output mode.
#[test]
fn audit_tail_shows_control_characters_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "audit.pem"], 0);
    let key = private_key(dir, "audit.pem");
    let logs = dir.join("log");
    std::fs::create_dir(&logs).unwrap();
    let sink = FileSink::builder(&logs)
        .checkpoint_signer(Arc::new(key))
        .open()
        .unwrap();
    let log = AuditLog::builder().sink(sink).build().unwrap();
    let forged = "mallory\n     9 2026-12-01T00:00:00Z authorization_succeeded success principal=root \u{1b}[2K\u{1b}[1A\u{202e}\u{85}";
    let attacker = Principal::new(forged, AuthMethod::BearerJwt);
    log.log_durable(event::authentication_succeeded(&attacker))
        .unwrap();
    log.shutdown().unwrap();

    let out = run_in(dir, &["audit", "tail", "--dir", "log", "-n", "5"]);
    ok(&out);
    let text = stdout(&out);
    let unsafe_char = |c: char| c.is_control() && c != '\n' || c == '\u{202e}';
    assert!(
        !text.chars().any(unsafe_char),
        "raw control characters: {text:?}"
    );
    assert_eq!(text.lines().count(), 1, "a forged line: {text}");
    assert!(
        text.contains("mallory\\u{a}") && text.contains("\\u{1b}[2K"),
        "{text}"
    );
    assert!(text.contains("\\u{202e}"), "{text}");

    let out = run_in(dir, &["audit", "tail", "--dir", "log", "-n", "5", "--json"]);
    ok(&out);
    let text = stdout(&out);
    assert!(
        !text.chars().any(unsafe_char),
        "raw control characters: {text:?}"
    );
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["event"]["principal"]["subject"], forged);
}

#[test]
fn audit_tail_follow_prints_new_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "audit.pem"], 0);
    let key = private_key(dir, "audit.pem");
    let logs = dir.join("log");
    std::fs::create_dir(&logs).unwrap();
    write_audit_log(&logs, &key, 2);

    let mut child = etdi()
        .current_dir(dir)
        .args([
            "audit", "tail", "--dir", "log", "-n", "1", "--follow", "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    // Generous bound so a slow machine is not a failure; it only stops a hang.
    let wait = Duration::from_secs(120);
    let first = rx.recv_timeout(wait).expect("the last existing record");
    assert_eq!(first["seq"], 1);
    // The log is reopened and appended to; the follower prints the records
    // (a reopened log may first record its own repair or start events).
    write_audit_log(&logs, &key, 2);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|v: &Value| v["event"]["server"] == "server-1" && v["seq"].as_u64() > Some(1))
    {
        seen.push(rx.recv_timeout(wait).expect("appended records"));
    }
    assert!(seen.iter().all(|v| v["hash_ok"] == true), "{seen:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// An access token signed with `key` in-test.
fn mint(key: &SigningKey, claims: &Value) -> String {
    let header = JwsHeader::for_key(key).with_typ("at+jwt");
    jws::sign(key, &header, claims.to_string().as_bytes()).unwrap()
}

fn token_claims(iss: &str, aud: &str, exp: u64) -> Value {
    let now = UnixTime::now().as_secs();
    json!({
        "iss": iss, "sub": "alice", "aud": aud, "client_id": "cli-test",
        "scope": "file:read audit:log", "iat": now - 10, "exp": exp,
        "jti": "3bq7YPm2Qy6cK9Xl1hZr0w",
    })
}

#[test]
fn token_inspect_decodes_and_validates_with_a_jwks_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "idp.pem"], 0);
    let key = private_key(dir, "idp.pem");
    let iss = "https://idp.example.com";
    let aud = "https://tools.example.com/mcp";
    let now = UnixTime::now().as_secs();
    let good = mint(&key, &token_claims(iss, aud, now + 600));
    let wrong_aud = mint(
        &key,
        &token_claims(iss, "https://other.example.com", now + 600),
    );
    let expired = mint(&key, &token_claims(iss, aud, now - 3600));

    // Decoding alone trusts nothing and says so.
    let out = run_in(dir, &["token", "inspect", &good]);
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("UNVERIFIED header") && text.contains("not validated"),
        "{text}"
    );
    let v = json_in(dir, &["token", "inspect", &good], 0);
    assert_eq!(v["unverified"]["claims"]["sub"], "alice");
    assert_eq!(v["unverified"]["header"]["typ"], "at+jwt");
    assert!(v.get("verified").is_none());

    let validate = [
        "--issuer",
        iss,
        "--audience",
        aud,
        "--jwks",
        "idp.jwks.json",
    ];
    let with = |token: &str| -> Vec<String> {
        let mut a = vec!["token".to_owned(), "inspect".to_owned(), token.to_owned()];
        a.extend(validate.iter().map(|s| (*s).to_owned()));
        a
    };

    let args = with(&good);
    let v = json_in(dir, &refs(&args), 0);
    assert_eq!(v["verified"], true);
    assert_eq!(v["principal"]["subject"], "alice");
    assert_eq!(v["principal"]["issuer"], iss);
    assert_eq!(v["principal"]["scopes"], json!(["audit:log", "file:read"]));

    let args = with(&wrong_aud);
    let v = json_in(dir, &refs(&args), 1);
    assert_eq!(v["verified"], false);
    assert_eq!(v["code"], "wrong_audience");
    let args = with(&expired);
    let v = json_in(dir, &refs(&args), 1);
    assert_eq!(v["code"], "expired");
    let out = run_in(dir, &refs(&args));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("refused: token expired at"),
        "{}",
        stdout(&out)
    );

    // From standard input, and signed by a key the issuer does not have.
    let mut child = etdi()
        .current_dir(dir)
        .args(["token", "inspect", "-", "--json"])
        .args(validate)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(good.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "rogue.pem"], 0);
    let rogue = mint(
        &private_key(dir, "rogue.pem"),
        &token_claims(iss, aud, now + 600),
    );
    let args = with(&rogue);
    let v = json_in(dir, &refs(&args), 1);
    assert_eq!(v["code"], "unknown_key", "{v}");
}

/// A loopback issuer: OIDC discovery and a JWKS, one request per connection.
fn serve_issuer(jwks: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, body) = if path.ends_with("/openid-configuration")
                || path.ends_with("/oauth-authorization-server")
            {
                (
                    "200 OK",
                    json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string(),
                )
            } else if path == "/jwks" {
                ("200 OK", jwks.clone())
            } else {
                ("404 Not Found", "{}".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    base
}

#[test]
fn token_inspect_validates_by_discovery_on_a_loopback_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "idp.pem"], 0);
    let key = private_key(dir, "idp.pem");
    let jwks = std::fs::read_to_string(dir.join("idp.jwks.json")).unwrap();
    let iss = serve_issuer(jwks);
    let aud = "https://tools.example.com/mcp";
    let now = UnixTime::now().as_secs();
    let token = mint(&key, &token_claims(&iss, aud, now + 600));
    let v = json_in(
        dir,
        &[
            "token",
            "inspect",
            &token,
            "--issuer",
            &iss,
            "--audience",
            aud,
        ],
        0,
    );
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["principal"]["subject"], "alice");
    let other = mint(
        &key,
        &token_claims("https://elsewhere.example", aud, now + 600),
    );
    let v = json_in(
        dir,
        &[
            "token",
            "inspect",
            &other,
            "--issuer",
            &iss,
            "--audience",
            aud,
        ],
        1,
    );
    assert_eq!(v["code"], "untrusted_issuer", "{v}");
}

#[test]
fn policy_check_summarises_a_valid_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "policy.toml",
        r#"security_level = "strict"

[roles.reader]
permissions = ["file:read"]

[assignments]
"alice@example.com" = ["reader"]

[tools."com.example.files/read"]
max_call_depth = 2
"#,
    );
    let v = json_in(dir, &["policy", "check", "policy.toml"], 0);
    assert_eq!(v["valid"], true);
    assert_eq!(v["roles"], json!(["reader"]));
    assert_eq!(v["tools"], json!(["com.example.files/read"]));
    assert_eq!(v["security"]["max_call_depth"], 3);
}

/// Asserts a one-sentence error: exit 2, nothing on stdout, one line on
/// stderr starting with `etdi: `, containing every needle.
fn assert_error(dir: &Path, args: &[&str], needles: &[&str]) {
    let out = run_in(dir, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "etdi {args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "etdi {args:?} printed {}",
        stdout(&out)
    );
    assert_eq!(err.lines().count(), 1, "etdi {args:?}: {err}");
    assert!(err.starts_with("etdi: "), "etdi {args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "etdi {args:?}: `{n}` missing from: {err}");
    }
    // The same error as JSON for scripts.
    let mut all = args.to_vec();
    all.push("--json");
    let out = run_in(dir, &all);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("etdi {all:?}: stderr is not JSON ({e}): {}", stderr(&out)));
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(needles.first().unwrap_or(&""))
    );
}

#[test]
fn bad_input_is_one_sentence_naming_file_and_field_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "tool.json", TOOL);
    json_in(dir, &["keygen", "--alg", "ES256", "--out", "p.pem"], 0);
    json_in(dir, &["keygen", "--alg", "RS256", "--out", "rsa.pem"], 0);
    json_in(
        dir,
        &["keys", "rotate", "--dir", "keys", "--alg", "ES256"],
        0,
    );
    let s = json_in(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "p.pem",
            "--issuer",
            "com.example",
            "tool.json",
        ],
        0,
    );
    std::fs::write(dir.join("tool.jws"), s["attestation"].as_str().unwrap()).unwrap();
    json_in(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "files",
            "tool.json",
            "--attestation",
            "tool.jws",
            "--key",
            "p.pub.pem",
        ],
        0,
    );
    std::fs::create_dir(dir.join("log")).unwrap();
    write_audit_log(&dir.join("log"), &private_key(dir, "p.pem"), 3);

    write(dir, "bad-version.json", &TOOL.replace("1.0.0", "1.0"));
    write(
        dir,
        "unknown-member.json",
        &TOOL.replace("\"name\"", "\"nmae\""),
    );
    write(
        dir,
        "bad-permission.json",
        &TOOL.replace("file:read", "file read"),
    );
    write(dir, "not-json.json", "{\"id\": ");
    write(
        dir,
        "bad.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    write(
        dir,
        "bad-member.jwks",
        r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "not base64!", "y": "AAAA"}]}"#,
    );
    write(dir, "not-jwks.json", "keys = [");
    write(dir, "bad-type.toml", "max_call_depth = \"deep\"\n");
    write(
        dir,
        "unknown-key.toml",
        "security_level = \"strict\"\nmax_depth = 3\n",
    );
    write(
        dir,
        "bad-role.toml",
        "[roles.admin]\npermissions = [\"file read\"]\n",
    );
    // A damaged approval store (and backup): refused, never read as empty.
    write(
        dir,
        "damaged.json",
        "{\"format\": \"etdi-approvals/1\", \"approvals\": [}",
    );
    write(dir, "damaged.json.bak", "not json");
    write(dir, "damaged.json.lock", "");

    let before = snapshot(dir);

    // Wrong flags and values.
    assert_error(dir, &["tool", "sign", "--bogus"], &["--bogus"]);
    assert_error(dir, &["keygen", "--alg", "ES256"], &["--out"]);
    assert_error(
        dir,
        &["keygen", "--alg", "HS256", "--out", "x.pem"],
        &["HS256"],
    );
    assert_error(
        dir,
        &[
            "keygen", "--alg", "RS256", "--bits", "1024", "--out", "x.pem",
        ],
        &["1024"],
    );
    assert_error(dir, &["nonsense"], &["nonsense"]);
    assert_error(
        dir,
        &["token", "inspect", "x.y.z", "--audience", "a"],
        &["--issuer"],
    );

    // Unreadable and malformed key files.
    assert_error(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "missing.pem",
            "--issuer",
            "i",
            "tool.json",
        ],
        &["missing.pem"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "bad.pem",
            "--issuer",
            "i",
            "tool.json",
        ],
        &["bad.pem", "PKCS#8"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "rsa.pem",
            "--issuer",
            "i",
            "tool.json",
        ],
        &["rsa.pem", "--alg"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "p.pub.pem",
            "--issuer",
            "i",
            "tool.json",
        ],
        &["p.pub.pem", "PRIVATE KEY"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "keys",
            "--issuer",
            "i",
            "tool.json",
        ],
        &["keys", "directory"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "tool.jws",
            "--key",
            "bad-member.jwks",
        ],
        &["bad-member.jwks", "keys[0]", "`x`"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "tool.jws",
            "--key",
            "not-jwks.json",
        ],
        &["not-jwks.json"],
    );
    assert_error(
        dir,
        &["audit", "verify", "--dir", "log", "--key", "missing.pem"],
        &["missing.pem"],
    );
    assert_error(
        dir,
        &[
            "token",
            "inspect",
            "a.b.c",
            "--issuer",
            "https://i",
            "--audience",
            "a",
            "--jwks",
            "not-jwks.json",
        ],
        &["not a compact JWS"],
    );
    let token = mint(
        &private_key(dir, "p.pem"),
        &token_claims("https://i", "a", 0),
    );
    assert_error(
        dir,
        &[
            "token",
            "inspect",
            &token,
            "--issuer",
            "https://i",
            "--audience",
            "a",
            "--jwks",
            "not-jwks.json",
        ],
        &["not-jwks.json"],
    );
    assert_error(
        dir,
        &[
            "token",
            "inspect",
            &token,
            "--issuer",
            "https://i",
            "--audience",
            "a",
            "--jwks",
            "bad-member.jwks",
        ],
        &["bad-member.jwks"],
    );

    // Malformed definitions: the file and the JSON field.
    for (file, field) in [
        ("bad-version.json", "`version`"),
        ("unknown-member.json", "nmae"),
        ("bad-permission.json", "`permissions[0]`"),
        ("not-json.json", "not-json.json"),
    ] {
        assert_error(dir, &["tool", "digest", file], &[file, field]);
        assert_error(
            dir,
            &[
                "tool",
                "sign",
                "--key",
                "p.pem",
                "--issuer",
                "i",
                file,
                "--out",
                "signed.json",
            ],
            &[file, field],
        );
        assert_error(
            dir,
            &[
                "approvals",
                "approve",
                "--store",
                "new-approvals.json",
                "--server",
                "files",
                file,
            ],
            &[file, field],
        );
    }
    assert_error(dir, &["tool", "inspect", "missing.json"], &["missing.json"]);
    assert_error(
        dir,
        &["tool", "verify", "tool.json", "--key", "p.pub.pem"],
        &["tool.json", "--attestation"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "verify",
            "tool.json",
            "--attestation",
            "nothing-here",
            "--key",
            "p.pub.pem",
        ],
        &["nothing-here"],
    );

    // Malformed policy files: file, line and field.
    assert_error(
        dir,
        &["policy", "check", "bad-type.toml"],
        &["bad-type.toml:1", "max_call_depth"],
    );
    assert_error(
        dir,
        &["policy", "check", "unknown-key.toml"],
        &["unknown-key.toml:2", "max_depth"],
    );
    assert_error(
        dir,
        &["policy", "check", "bad-role.toml"],
        &["bad-role.toml", "roles.admin.permissions"],
    );
    assert_error(dir, &["policy", "check", "missing.toml"], &["missing.toml"]);

    // Stores: damaged, absent, wrong algorithm, outputs that exist.
    assert_error(
        dir,
        &["approvals", "list", "--store", "damaged.json"],
        &["damaged.json"],
    );
    assert_error(
        dir,
        &[
            "approvals",
            "revoke",
            "--store",
            "missing.json",
            "--tool",
            "com.example.files/read",
        ],
        &["missing.json"],
    );
    assert_error(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "nodir/a.json",
            "--server",
            "files",
            "tool.json",
        ],
        &["nodir"],
    );
    assert_error(
        dir,
        &[
            "approvals",
            "approve",
            "--store",
            "approvals.json",
            "--server",
            "bad server!",
            "tool.json",
        ],
        &["--server"],
    );
    assert_error(dir, &["keys", "list", "--dir", "nokeys"], &["nokeys"]);
    assert_error(
        dir,
        &["keys", "rotate", "--dir", "keys", "--alg", "EdDSA"],
        &["keys", "ES256"],
    );
    assert_error(
        dir,
        &["keygen", "--alg", "ES256", "--out", "p.pem"],
        &["p.pem", "--force"],
    );
    assert_error(
        dir,
        &["keygen", "--alg", "ES256", "--out", "nodir/k.pem"],
        &["nodir"],
    );
    assert_error(
        dir,
        &[
            "keygen",
            "--alg",
            "ES256",
            "--out",
            "fresh.pem",
            "--public-out",
            "p.pub.pem",
        ],
        &["p.pub.pem"],
    );
    assert_error(
        dir,
        &[
            "tool",
            "sign",
            "--key",
            "p.pem",
            "--issuer",
            "i",
            "tool.json",
            "--out",
            "tool.json",
        ],
        &["tool.json", "--force"],
    );
    assert_error(dir, &["audit", "verify", "--dir", "nolog"], &["nolog"]);
    assert_error(
        dir,
        &["audit", "verify", "--dir", "keys"],
        &["keys", "no audit log"],
    );
    assert_error(dir, &["audit", "tail", "--dir", "nolog"], &["nolog"]);

    assert_eq!(
        snapshot(dir),
        before,
        "a refused command changed the directory"
    );
}
