//! The TOML policy format: a full example, errors with file, line and field,
//! and no panic on any input.

// Test code: a failed unwrap or index is a failed test, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use etdi_core::{Permission, SecurityLevel};
use etdi_policy::file::MAX_POLICY_FILE_LEN;
use etdi_policy::{CallRequest, PolicyDocument, PolicyEngine, PolicyFileErrorKind, RbacError};
use proptest::prelude::*;

const EXAMPLE: &str = r#"
# Server-wide settings.
security_level = "high"
max_call_depth = 4
require_request_signing = false
blocked_callees = ["com.example/shell"]

[roles.reader]
description = "Read-only access"
permissions = ["file:read"]

[roles.editor]
permissions = ["file:write"]
inherits = ["reader"]

[assignments]
"alice@example.com" = ["editor"]

[tools."com.example/delete"]
permissions = ["file:delete"]
max_call_depth = 1
require_request_signing = true
allowed_callers = []
"#;

fn err(text: &str) -> etdi_policy::PolicyFileError {
    PolicyDocument::from_toml(text, "policy.toml").unwrap_err()
}

#[test]
fn the_example_loads_and_drives_the_engine() {
    let doc = PolicyDocument::from_toml(EXAMPLE, "policy.toml").unwrap();
    assert_eq!(doc.security.security_level, SecurityLevel::Strict);
    assert_eq!(doc.security.max_call_depth, 4);
    assert!(!doc.security.require_request_signing);
    // Not written: the Strict default.
    assert!(doc.security.filter_tools_list);
    assert!(
        doc.security
            .blocked_callees
            .contains(&id("com.example/shell"))
    );
    assert_eq!(doc.roles["editor"].inherits.len(), 1);
    let rules = &doc.tools[&id("com.example/delete")];
    assert_eq!(rules.max_call_depth, Some(1));
    assert_eq!(rules.allowed_callers, Some(Default::default()));

    let del = tool("com.example/delete", &["file:write"]);
    let read = tool("com.example/read", &["file:read"]);
    let e = PolicyEngine::builder(server())
        .document(doc)
        .tools([&del, &read])
        .build()
        .unwrap();
    let alice = user("alice@example.com", &[], &[]);
    assert!(
        e.decide(&CallRequest::direct(&alice, &read.id))
            .is_allowed()
    );
    // Delete needs file:delete too (operator rule) and a signature.
    let d = e.decide(&CallRequest::direct(&alice, &del.id).signed(true));
    assert_eq!(
        d.reasons(),
        [etdi_core::DenyReason::MissingPermissions {
            missing: vec![Permission::parse("file:delete").unwrap()]
        }]
    );
    let sec = e.effective_security(&del.id).unwrap();
    assert!(sec.require_request_signing);
    assert_eq!(sec.max_call_depth, 1);
}

#[test]
fn bad_permission_names_file_line_and_field() {
    let e = err("[roles.reader]\npermissions = [\"file:read\",\n  \"file::x\"]\n");
    assert_eq!(e.file, "policy.toml");
    assert_eq!((e.line, e.column), (3, 3));
    assert_eq!(e.field, "roles.reader.permissions[1]");
    assert!(matches!(*e.kind, PolicyFileErrorKind::Permission(_)));
    assert_eq!(
        e.to_string(),
        "policy.toml:3:3: field `roles.reader.permissions[1]`: permission `file::x` has an empty segment"
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_the_field() {
    let e = err("security_level = \"basic\"\n\n[roles.r]\npermissons = [\"a:b\"]\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.field.starts_with("roles.r"), "{e}");
    assert!(e.to_string().contains("permissons"), "{e}");

    let e = err("max_call_depth = \"five\"\n");
    assert_eq!((e.line, e.field.as_str()), (1, "max_call_depth"), "{e}");

    let e = err("\n\n[tools.\"a/b\"]\nrequire_request_signing = 1\n");
    assert_eq!(e.line, 4, "{e}");
    assert_eq!(e.field, "tools.\"a/b\".require_request_signing", "{e}");

    let e = err("max_depth = 3\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.to_string().contains("max_depth"), "{e}");
}

#[test]
fn range_and_identifier_errors() {
    let e = err("\nmax_call_depth = 40\n");
    assert_eq!((e.line, e.column), (2, 18));
    assert_eq!(e.field, "max_call_depth");
    assert!(e.to_string().contains("between 1 and 32"), "{e}");

    let e = err("security_level = \"medium\"\n");
    assert_eq!((e.line, e.field.as_str()), (1, "security_level"));

    let e = err("blocked_callers = [\"ok\", \"not ok\"]\n");
    assert_eq!(e.field, "blocked_callers[1]");
    assert!(matches!(*e.kind, PolicyFileErrorKind::Id(_)));

    let e = err("[tools.\"bad id\"]\n");
    assert_eq!((e.line, e.field.as_str()), (1, "tools.\"bad id\""), "{e}");

    let e = err("[tools.t]\nmax_call_depth = 0\n");
    assert_eq!((e.line, e.field.as_str()), (2, "tools.t.max_call_depth"));
}

#[test]
fn role_errors_point_at_the_inherits_entry() {
    let e = err("[roles.a]\ninherits = [\"ghost\"]\n");
    assert_eq!((e.line, e.field.as_str()), (2, "roles.a.inherits[0]"));
    assert!(matches!(
        *e.kind,
        PolicyFileErrorKind::Roles(RbacError::UnknownInheritedRole { .. })
    ));

    let text = "[roles.a]\ninherits = [\"b\"]\n\n[roles.b]\ninherits = [\"c\"]\n\n[roles.c]\ninherits = [\"a\"]\n";
    let e = err(text);
    assert_eq!((e.line, e.field.as_str()), (2, "roles.a.inherits[0]"));
    assert!(e.to_string().contains("cycle: a -> b -> c -> a"), "{e}");

    let e = err("[roles.a]\n[assignments]\nbob = [\"a\", \"b\"]\n");
    assert_eq!((e.line, e.field.as_str()), (3, "assignments.bob[1]"));
}

#[test]
fn syntax_errors_have_a_line() {
    let e = err("a = 1\n[roles\n");
    assert_eq!(e.line, 2, "{e}");
    let e = err("x = \"unterminated\n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn load_file_reads_and_names_the_path() {
    let dir = std::env::temp_dir().join(format!("etdi-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.toml");
    std::fs::write(
        &path,
        "security_level = \"basic\"\n[roles.r]\npermissions = [\"bad\"]\n",
    )
    .unwrap();
    let e = PolicyDocument::load_file(&path).unwrap_err();
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(e.line, 3);
    std::fs::write(&path, EXAMPLE).unwrap();
    assert!(PolicyDocument::load_file(&path).is_ok());
    let e = PolicyDocument::load_file(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(*e.kind, PolicyFileErrorKind::Io(_)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn oversized_input_is_refused() {
    let big = " ".repeat(MAX_POLICY_FILE_LEN + 1);
    assert!(matches!(
        *err(&big).kind,
        PolicyFileErrorKind::TooLarge { .. }
    ));
}

/// Fragments of the format, so random documents get past the TOML parser
/// often and exercise the semantic checks.
fn fragment() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "security_level",
        "max_call_depth",
        "permissions",
        "inherits",
        "allowed_callers",
        "blocked_callees",
        "require_request_signing",
        "description",
        "x",
    ]);
    let value = prop_oneof![
        Just("\"high\"".to_owned()),
        Just("[\"file:read\", \"a::b\"]".to_owned()),
        Just("[\"r1\", \"r2\"]".to_owned()),
        Just("[]".to_owned()),
        (-5i64..50).prop_map(|n| n.to_string()),
        Just("true".to_owned()),
        Just("{ a = 1 }".to_owned()),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    prop_oneof![
        (key, value).prop_map(|(k, v)| format!("{k} = {v}\n")),
        prop::sample::select(vec![
            "[roles.r1]\n",
            "[roles.r2]\n",
            "[assignments]\n",
            "[tools.\"t/1\"]\n",
            "[tools.\"\"]\n",
            "[[roles]]\n"
        ])
        .prop_map(String::from),
        "\\PC{0,20}".prop_map(|s| format!("{s}\n")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = PolicyDocument::from_toml(&text, "fuzz.toml") {
            prop_assert_eq!(e.file.as_str(), "fuzz.toml");
            let _ = e.to_string();
        }
    }

    #[test]
    fn arbitrary_documents_never_panic(parts in prop::collection::vec(fragment(), 0..12)) {
        let text = parts.concat();
        match PolicyDocument::from_toml(&text, "fuzz.toml") {
            Ok(doc) => {
                // Whatever loads must compile into an engine.
                prop_assert!(PolicyEngine::builder(server()).document(doc).build().is_ok());
            }
            Err(e) => {
                let lines = text.lines().count().max(1);
                prop_assert!(e.line <= lines + 1, "{} beyond {} lines", e, lines);
            }
        }
    }
}
