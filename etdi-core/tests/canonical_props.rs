//! Property tests for the canonical form and the parsers of untrusted input:
//! the digest ignores spelling (member order, whitespace, permission order)
//! and changes with every covered field; no input makes a parser panic.

// Tests assert by unwrapping: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use etdi_core::canonical::parse_json;
use etdi_core::{Permission, ToolDefinition, ToolVersion};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        // Integers up to 2^53: a larger one has a canonical form only when
        // it is written in ECMAScript's shortest form already (tested in
        // canonical.rs and jcs_vectors.rs).
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z0-9_\u{e9}\u{20ac}]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Writes `v` as JSON with members in a shuffled order and random whitespace.
fn respell(v: &Value, seed: &mut u64) -> String {
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }
    let ws = |seed: &mut u64| [" ", "", "\n  ", "\t"][(next(seed) % 4) as usize];
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            for i in (1..entries.len()).rev() {
                let j = (next(seed) % (i as u64 + 1)) as usize;
                entries.swap(i, j);
            }
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}{}{}:{}{}",
                        ws(seed),
                        serde_json::to_string(k).unwrap(),
                        ws(seed),
                        ws(seed),
                        respell(v, seed)
                    )
                })
                .collect();
            format!("{{{}{}}}", parts.join(","), ws(seed))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|x| format!("{}{}", ws(seed), respell(x, seed)))
                .collect();
            format!("[{}{}]", parts.join(","), ws(seed))
        }
        other => other.to_string(),
    }
}

fn arb_definition() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}/[a-z_]{1,10}",
        "[a-z_]{1,16}",
        "(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})",
        "\\PC{0,40}",
        prop::collection::btree_set("[a-z]{1,6}:[a-z]{1,6}(:\\*)?", 0..4),
        prop::option::of(1u32..=32),
        prop::collection::btree_map("[a-z]{1,6}", arb_json(2), 0..4),
    )
        .prop_map(|(id, name, version, description, perms, depth, props)| {
            let mut chain = Map::new();
            if let Some(d) = depth {
                chain.insert("maxDepth".into(), json!(d));
            }
            json!({
                "id": id,
                "name": name,
                "version": version,
                "description": description,
                "provider": {"id": "com.example", "name": "Example"},
                "inputSchema": {"type": "object", "properties": Value::Object(props.into_iter().collect())},
                "annotations": {"readOnlyHint": true},
                "permissions": perms.into_iter().collect::<Vec<_>>(),
                "callChain": Value::Object(chain),
            })
        })
}

fn digest_of(v: &Value) -> String {
    ToolDefinition::from_value(v.clone())
        .unwrap()
        .digest()
        .unwrap()
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn digest_ignores_member_order_and_whitespace(def in arb_definition(), seed in 1u64..) {
        let mut seed = seed;
        let text = respell(&def, &mut seed);
        let reparsed = ToolDefinition::from_json(&text).unwrap();
        prop_assert_eq!(reparsed.digest().unwrap().to_string(), digest_of(&def));
    }

    #[test]
    fn digest_ignores_permission_order(def in arb_definition()) {
        let mut rev = def.clone();
        if let Some(Value::Array(p)) = rev.get_mut("permissions") {
            p.reverse();
        }
        prop_assert_eq!(digest_of(&rev), digest_of(&def));
    }

    #[test]
    fn digest_changes_with_every_covered_field(def in arb_definition(), which in 0usize..12) {
        let base = ToolDefinition::from_value(def.clone()).unwrap();
        let mut changed = base.clone();
        match which {
            0 => changed.name = format!("{}x", base.name).parse().unwrap(),
            1 => changed.description.push('.'),
            2 => { changed.input_schema.insert("additionalProperties".into(), json!(false)); }
            3 => changed.annotations = Some(Map::from_iter([("destructiveHint".to_string(), json!(true))])),
            4 => { changed.permissions.insert(Permission::parse("zz:new").unwrap()); }
            5 => {
                let (a, b, c) = base.version.triple();
                changed.version = ToolVersion::parse(&format!("{a}.{b}.{}", c + 1)).unwrap();
            }
            6 => changed.provider.name.push('!'),
            7 => changed.call_chain.max_depth = Some(base.call_chain.max_depth.map_or(1, |d| if d == 1 { 2 } else { d - 1 })),
            8 => changed.call_chain.blocked_callees = BTreeSet::from(["x.y/z".parse().unwrap()]),
            9 => changed.title = Some("A title".into()),
            10 => changed.security.require_request_signing = true,
            _ => changed.id = format!("{}2", base.id).parse().unwrap(),
        }
        prop_assert_ne!(changed.digest().unwrap(), base.digest().unwrap());
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_json(v in arb_json(4)) {
        let _ = ToolDefinition::from_value(v.clone());
        let text = v.to_string();
        let _ = ToolDefinition::from_json(&text);
        let _ = serde_json::from_value::<etdi_core::SecurityPolicy>(v.clone());
        let _ = serde_json::from_value::<etdi_core::CallChain>(v);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse_json(&s);
        let _ = ToolDefinition::from_json(&s);
        let _ = Permission::parse(&s);
        let _ = ToolVersion::parse(&s);
        let _ = s.parse::<etdi_core::Digest>();
    }

    #[test]
    fn definitions_with_one_field_mangled_never_panic(def in arb_definition(), field in 0usize..9, junk in arb_json(2)) {
        let mut v = def;
        let key = ["id", "name", "version", "description", "provider", "inputSchema", "permissions", "callChain", "security"][field];
        v[key] = junk;
        if let Err(e) = ToolDefinition::from_value(v) {
            // Every error names a field.
            prop_assert!(!e.field.is_empty());
        }
    }
}

/// Definitions with every optional member switched on or off at random.
fn arb_full_definition() -> impl Strategy<Value = Value> {
    (
        arb_definition(),
        (
            prop::option::of("\\PC{0,12}"),
            prop::option::of(prop::collection::vec(arb_json(1), 0..3)),
            prop::option::of(prop::collection::btree_map("[a-z]{1,5}", arb_json(2), 0..3)),
            prop::option::of("https://[a-z]{1,8}\\.example/[a-z]{0,5}"),
        ),
        (
            prop::option::of(prop::collection::vec("[a-z]{1,4}/[a-z]{1,4}", 0..3)),
            prop::option::of(prop::collection::vec("[a-z]{1,4}/[a-z]{1,4}", 0..3)),
            prop::collection::vec("[a-z]{1,4}/[a-z]{1,4}", 0..3),
            prop::collection::vec("[a-z]{1,4}/[a-z]{1,4}", 0..3),
            any::<(bool, bool)>(),
        ),
    )
        .prop_map(
            |(mut def, (title, icons, output, url), (allow_in, allow_out, block_in, block_out, (rrs, rs)))| {
                let o = def.as_object_mut().unwrap();
                if let Some(t) = title {
                    o.insert("title".into(), json!(t));
                }
                if let Some(i) = icons {
                    o.insert("icons".into(), Value::Array(i));
                }
                if let Some(props) = output {
                    o.insert(
                        "outputSchema".into(),
                        json!({"type": "object", "properties": Value::Object(props.into_iter().collect())}),
                    );
                }
                if let Some(u) = url {
                    o["provider"]["url"] = json!(u);
                }
                let chain = o["callChain"].as_object_mut().unwrap();
                if let Some(a) = allow_in {
                    chain.insert("allowedCallers".into(), json!(a));
                }
                if let Some(a) = allow_out {
                    chain.insert("allowedCallees".into(), json!(a));
                }
                chain.insert("blockedCallers".into(), json!(block_in));
                chain.insert("blockedCallees".into(), json!(block_out));
                o.insert(
                    "security".into(),
                    json!({"requireRequestSigning": rrs, "requireSignature": rs}),
                );
                def
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// `ToolDefinition::canonical_bytes` writes JCS from the typed struct;
    /// it must equal the generic path (serialise to a value, then JCS).
    #[test]
    fn typed_writer_equals_the_generic_canonical_form(v in arb_full_definition()) {
        let def = ToolDefinition::from_value(v).unwrap();
        let generic = etdi_core::canonical::canonical_json(&def).unwrap();
        prop_assert_eq!(
            String::from_utf8(def.canonical_bytes().unwrap()).unwrap(),
            String::from_utf8(generic).unwrap()
        );
    }
}
