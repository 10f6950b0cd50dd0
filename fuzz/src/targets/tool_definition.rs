//! Tool definitions and the canonical form (etdi-core), and the advertised
//! MCP `Tool` mapping (etdi-crypto `advertised`).
//!
//! Invariants: no panic, and the canonical form is a fixed point:
//!
//! * strict JSON: `parse_json(canonical(parse_json(x)))` canonicalises to
//!   the same bytes;
//! * definitions: `from_json(canonical_bytes(from_json(x)))` is the same
//!   definition with the same bytes and digest, and the typed fast writer
//!   agrees byte for byte with the generic RFC 8785 serializer;
//! * advertised tools: definition -> MCP `Tool` -> definition keeps the
//!   digest.

use etdi_core::canonical::{self, canonical_value, parse_json};
use etdi_core::{Digest, ToolDefinition};
use etdi_crypto::advertised::{definition_from_tool, tool_from_definition};
use serde_json::Value;

use super::{seed, text};
use crate::fixture::fixture;
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "tool_definition",
    about: "strict JSON, ToolDefinition::from_json, canonical form and digest, advertised mapping",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, DICTIONARY],
};

const DICTIONARY: &[&[u8]] = &[
    b"\"id\"",
    b"\"name\"",
    b"\"title\"",
    b"\"version\"",
    b"\"description\"",
    b"\"provider\"",
    b"\"url\"",
    b"\"inputSchema\"",
    b"\"outputSchema\"",
    b"\"annotations\"",
    b"\"icons\"",
    b"\"permissions\"",
    b"\"callChain\"",
    b"\"maxDepth\"",
    b"\"allowedCallers\"",
    b"\"blockedCallers\"",
    b"\"allowedCallees\"",
    b"\"blockedCallees\"",
    b"\"security\"",
    b"\"requireSignature\"",
    b"\"requireRequestSigning\"",
    b"\"_meta\"",
    b"\"dev.etdi/tool\"",
    b"\"dev.etdi/attestation\"",
    b"\"file:*\"",
    b"\"file:read\"",
    b"\"1.0.0-rc.1+b\"",
    b"\"v1.0.0\"",
    b"\"com.example/x\"",
    b"\"type\"",
    b"\"object\"",
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let input = text(data);
    let input = input.as_ref();

    if let Ok(value) = parse_json(input)
        && let Ok(c1) = canonical_value(&value)
    {
        let again = std::str::from_utf8(&c1)
            .ok()
            .and_then(|t| parse_json(t).ok());
        let Some(again) = again else {
            panic!(
                "canonical JSON does not parse back: {:?}",
                String::from_utf8_lossy(&c1)
            );
        };
        let c2 = canonical_value(&again).unwrap_or_default();
        assert_eq!(c1, c2, "canonicalisation is not a fixed point");

        if let Value::Object(tool) = &value
            && let Ok(def) = definition_from_tool(tool)
        {
            check_definition(&def);
            let advertised = tool_from_definition(&def, None)
                .unwrap_or_else(|e| panic!("cannot advertise a parsed definition: {e}"));
            let back = definition_from_tool(&advertised)
                .unwrap_or_else(|e| panic!("an advertised definition does not read back: {e}"));
            assert_eq!(
                back.canonical_bytes().ok(),
                def.canonical_bytes().ok(),
                "definition -> tool -> definition changed it"
            );
        }
    }

    if let Ok(def) = ToolDefinition::from_json(input) {
        check_definition(&def);
    }
}

fn check_definition(def: &ToolDefinition) {
    let bytes = def
        .canonical_bytes()
        .unwrap_or_else(|e| panic!("a parsed definition has no canonical form: {e}"));
    let generic = canonical::canonical_json(def)
        .unwrap_or_else(|e| panic!("the generic serializer refused a parsed definition: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&generic),
        "the typed canonical writer and the generic one disagree"
    );
    let text = std::str::from_utf8(&bytes).unwrap_or_else(|e| panic!("canonical bytes: {e}"));
    let again = ToolDefinition::from_json(text)
        .unwrap_or_else(|e| panic!("a canonical definition does not parse back: {e}: {text}"));
    // Compared by canonical bytes, not as structs: `0.0` and `0` are one
    // number to RFC 8785 but two `serde_json::Value`s.
    assert_eq!(
        again.canonical_bytes().ok(),
        Some(bytes.clone()),
        "parse(canonical(def)) has another canonical form"
    );
    assert_eq!(def.digest().ok(), Some(Digest::of(&bytes)));
}

/// The fixture's definitions, canonical and pretty-printed, plain and as
/// advertised MCP tools.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let f = fixture();
    let mut out = Vec::new();
    for (i, def) in f.tools.iter().enumerate() {
        if let Ok(bytes) = def.canonical_bytes() {
            out.push(seed(format!("canonical-{i}"), bytes));
        }
        if let Ok(pretty) = serde_json::to_vec_pretty(def) {
            out.push(seed(format!("pretty-{i}"), pretty));
        }
        if let Ok(tool) = tool_from_definition(def, None)
            && let Ok(bytes) = serde_json::to_vec(&tool)
        {
            out.push(seed(format!("advertised-{i}"), bytes));
        }
    }
    out.push(seed(
        "numbers",
        &b"[1e21,1e-7,-0,0.1,9007199254740993,\"\\u2028\"]"[..],
    ));
    out.push(seed("duplicate", &br#"{"a":1,"a":2}"#[..]));
    out
}
