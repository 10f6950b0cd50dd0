//! Cross-implementation check against independent JOSE code in Python
//! (jwcrypto, and `cryptography` directly): for RS256/384/512 and
//! ES256/384/512, a request signature and an attestation made here verify
//! there, and ones made there verify here with the full ETDI verifiers.
//!
//! Run with `--features interop` and `ETDI_PYTHON` naming an interpreter that
//! has `interop/python/requirements.txt` installed (`cargo xtask ci` sets it
//! up). Without it this test fails: it never skips silently.

// Test helpers outside `#[test]` functions may panic too: clippy.toml only
// exempts the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use etdi_core::{CallChain, ToolDefinition};
use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
use etdi_crypto::request::{CallToSign, ReceivedCall, RequestSigner, RequestVerifier};
use etdi_crypto::trust::{IssuerKeys, KeyRing};
use etdi_crypto::{Algorithm, CryptoProvider, Jwk, SigningKey, UnixTime, VerifyingKey};
use serde_json::{Value, json};

const AUD: &str = "https://tools.example.com/mcp";
const NOW: u64 = 1_700_000_000;

fn python() -> PathBuf {
    let Some(path) = std::env::var_os("ETDI_PYTHON") else {
        panic!(
            "ETDI_PYTHON is not set. This test needs a Python interpreter with \
             interop/python/requirements.txt installed, e.g.\n  \
             python3 -m venv target/etdi-venv && target/etdi-venv/bin/pip install -r interop/python/requirements.txt\n  \
             ETDI_PYTHON=$PWD/target/etdi-venv/bin/python cargo test -p etdi-crypto --features interop\n\
             (`cargo xtask ci` does this itself)."
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "ETDI_PYTHON={} does not exist",
        path.display()
    );
    path
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/python/jose_cross.py")
}

fn def() -> ToolDefinition {
    ToolDefinition::from_value(json!({
        "id": "com.example.files/read",
        "name": "secure_file_read",
        "version": "2.0.0",
        "description": "Read a file \u{2014} safely.",
        "provider": {"id": "com.example", "name": "Example"},
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
        "permissions": ["file:read"],
    }))
    .unwrap()
}

fn args() -> serde_json::Map<String, Value> {
    json!({"path": "/tmp/\u{e9}t\u{e9}", "n": 3})
        .as_object()
        .unwrap()
        .clone()
}

fn run_python(jobs: &Value) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python interpreter named by ETDI_PYTHON");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jobs.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jose_cross.py failed (is interop/python/requirements.txt installed for ETDI_PYTHON?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn signatures_cross_verify_with_python_jose_for_all_required_algorithms() {
    let provider = CryptoProvider::get_default();
    let now = UnixTime::from_secs(NOW);
    let d = def();
    let a = args();
    let chain = CallChain::new();
    let call = CallToSign {
        audience: AUD,
        tool: "secure_file_read",
        arguments: Some(&a),
        chain: &chain,
    };

    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for alg in Algorithm::REQUIRED {
        let key = SigningKey::generate(provider, alg).unwrap();
        let jwk: Value = serde_json::from_str(&key.verifying_key().to_jwk().to_json()).unwrap();
        let req = RequestSigner::new("rust-client")
            .sign(&key, &call, now)
            .unwrap();
        let att = AttestationSigner::new("com.example")
            .sign(&key, &d, now)
            .unwrap();
        for (kind, token, typ) in [
            ("request", &req, "etdi-req+jwt"),
            ("attestation", &att, "etdi-tool+jwt"),
        ] {
            jobs.push(json!({
                "op": "verify", "id": format!("{alg}/{kind}"), "alg": alg.name(),
                "typ": typ, "token": token, "jwk": jwk,
            }));
        }
        // Python signs claims that ETDI's signers would produce for its key.
        let py_req = RequestSigner::new("py-client").claims(&call, now).unwrap();
        let py_att = AttestationSigner::new("com.example")
            .claims(&d, now)
            .unwrap();
        jobs.push(
            json!({"op": "sign", "id": format!("{alg}/request"), "alg": alg.name(),
            "typ": "etdi-req+jwt", "claims": py_req}),
        );
        jobs.push(
            json!({"op": "sign", "id": format!("{alg}/attestation"), "alg": alg.name(),
            "typ": "etdi-tool+jwt", "claims": py_att}),
        );
        ours.push((alg, key));
    }

    let results = run_python(&Value::Array(jobs));
    let find = |op_has: &str, id: &str| -> Value {
        results
            .iter()
            .find(|r| r["id"] == id && r.get(op_has).is_some())
            .cloned()
            .unwrap_or_else(|| panic!("no result for {id}"))
    };

    let mut table = Vec::new();
    for (alg, key) in &ours {
        // Rust -> Python.
        for kind in ["request", "attestation"] {
            let r = find("jwcrypto_ok", &format!("{alg}/{kind}"));
            assert_eq!(
                r["jwcrypto_ok"], true,
                "{alg} {kind}: jwcrypto refused: {r}"
            );
            assert_eq!(r["raw_ok"], true, "{alg} {kind}: cryptography refused: {r}");
            assert_eq!(r["typ_ok"], true, "{alg} {kind}");
            assert_eq!(r["tampered_rejected"], true, "{alg} {kind}");
            // RFC 7638 thumbprints agree.
            assert_eq!(
                r["thumbprint"],
                key.thumbprint().as_str(),
                "{alg} thumbprint"
            );
            if kind == "request" {
                let c = &r["claims"];
                assert_eq!(c["iss"], "rust-client");
                assert_eq!(c["aud"], AUD);
                assert_eq!(c["mcp_method"], "tools/call");
                let digest = etdi_crypto::request::args_digest(Some(&a)).unwrap();
                assert_eq!(c["args_digest"], digest.to_string());
                assert_eq!(c["exp"], NOW + 60);
            } else {
                assert_eq!(r["claims"]["tool_digest"], d.digest().unwrap().to_string());
            }
            table.push(format!(
                "{alg:6} {kind:12} etdi-crypto -> jwcrypto+cryptography  ok"
            ));
        }

        // Python -> Rust, through the full ETDI verifiers.
        let r = find("token", &format!("{alg}/request"));
        let jwk = Jwk::from_json(&r["jwk"].to_string()).unwrap();
        let py_key = VerifyingKey::from_jwk(provider, &jwk, Some(*alg)).unwrap();
        assert_eq!(
            r["kid"],
            py_key.thumbprint().as_str(),
            "{alg}: thumbprints disagree"
        );
        let mut issuers = IssuerKeys::new();
        issuers.add("py-client", py_key.clone());
        let verifier = RequestVerifier::new(AUD, issuers);
        let received = ReceivedCall::tools_call("secure_file_read", Some(&a), &chain);
        let token = r["token"].as_str().unwrap();
        let verified = verifier
            .verify(token, &received, now)
            .unwrap_or_else(|e| panic!("{alg} request from Python: {e}"));
        assert!(
            verified
                .record_in(&etdi_crypto::replay::MemoryNonceStore::new(4))
                .is_ok()
        );
        table.push(format!(
            "{alg:6} {:12} jwcrypto -> etdi-crypto (RequestVerifier)  ok",
            "request"
        ));

        let r = find("token", &format!("{alg}/attestation"));
        let jwk = Jwk::from_json(&r["jwk"].to_string()).unwrap();
        let py_key = VerifyingKey::from_jwk(provider, &jwk, Some(*alg)).unwrap();
        let mut v = AttestationVerifier::new();
        v.trust_issuer(
            "com.example",
            [py_key].into_iter().collect::<KeyRing>(),
            ProviderScope::only(["com.example"]).unwrap(),
        );
        let token = r["token"].as_str().unwrap();
        let status = v.verify(token, &d, now);
        assert!(
            status.is_verified(),
            "{alg} attestation from Python: {status:?}"
        );
        // And a Python-signed attestation still fails on a changed definition.
        let mut changed = d.clone();
        changed.description.push('!');
        assert!(!v.verify(token, &changed, now).is_verified());
        table.push(format!(
            "{alg:6} {:12} jwcrypto -> etdi-crypto (AttestationVerifier)  ok",
            "attestation"
        ));
    }
    println!("cross-implementation results:\n{}", table.join("\n"));
    assert_eq!(table.len(), 6 * 4);
}
