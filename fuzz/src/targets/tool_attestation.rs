//! Tool attestations as a client meets them: an advertised MCP `Tool`
//! object from `tools/list`, its ETDI fields in `_meta["dev.etdi/tool"]`
//! and its attestation in `_meta["dev.etdi/attestation"]`, verified by
//! `AttestationVerifier::verify_tool` against the fixture's trusted issuer.
//!
//! Invariants: no panic; `Verified` only for an attestation the fixture
//! signed, and only when the definition rebuilt from the advertised fields
//! has exactly the digest that attestation covers (so whitespace, member
//! order and escapes may change, the definition may not); every fixture
//! tool verifies.

use std::sync::OnceLock;

use etdi_core::VerificationStatus;
use etdi_core::canonical::parse_json;
use etdi_crypto::advertised::{attestation_of, definition_from_tool};
use etdi_crypto::attestation::{AttestationVerifier, ProviderScope};
use etdi_crypto::trust::KeyRing;
use serde_json::Value;

use super::{JOSE_DICTIONARY, seed, text};
use crate::fixture::{PROVIDER, fixture, now};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "tool_attestation",
    about: "advertised MCP tools with attestations: AttestationVerifier::verify_tool",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, JOSE_DICTIONARY, DICTIONARY],
};

const DICTIONARY: &[&[u8]] = &[
    b"\"_meta\"",
    b"\"dev.etdi/tool\"",
    b"\"dev.etdi/attestation\"",
    b"\"tool_digest\"",
    b"\"tool_name\"",
    b"\"tool_version\"",
    b"\"provider\"",
    b"\"permissions\"",
    b"\"sha256:",
    b"\"com.example\"",
    b"\"inputSchema\"",
    b"\"version\"",
];

fn verifier() -> &'static AttestationVerifier {
    static V: OnceLock<AttestationVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let mut v = AttestationVerifier::new();
        let scope = match ProviderScope::only([PROVIDER]) {
            Ok(s) => s,
            Err(e) => panic!("fuzz harness: provider scope: {e}"),
        };
        v.trust_issuer(
            PROVIDER,
            fixture().keys.trusted.iter().cloned().collect::<KeyRing>(),
            scope,
        );
        v
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let input = text(data);
    let Ok(Value::Object(tool)) = parse_json(input.as_ref()) else {
        return;
    };
    let status = verifier().verify_tool(&tool, now());
    let token = attestation_of(&tool).ok().flatten();
    let attested = token.and_then(|t| f.attestations.get(t));
    let digest = definition_from_tool(&tool)
        .ok()
        .and_then(|d| d.digest().ok());
    let genuine = attested.is_some() && attested == digest.as_ref();
    match status {
        VerificationStatus::Verified { .. } => assert!(
            genuine,
            "an attestation verified for a definition the fixture did not attest: {input}"
        ),
        VerificationStatus::Unsigned => {
            assert!(token.is_none(), "a carried attestation was ignored")
        }
        VerificationStatus::Failed { failure } => assert!(
            !genuine,
            "a genuine attestation of this very definition failed: {failure:?}"
        ),
    }
}

/// The fixture's advertised tools, compact and pretty-printed.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, tool) in fixture().advertised.iter().enumerate() {
        if let Ok(bytes) = serde_json::to_vec(tool) {
            out.push(seed(format!("advertised-{i}"), bytes));
        }
        if let Ok(bytes) = serde_json::to_vec_pretty(tool) {
            out.push(seed(format!("advertised-pretty-{i}"), bytes));
        }
    }
    out
}
