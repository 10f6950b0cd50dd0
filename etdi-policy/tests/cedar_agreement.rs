//! The Cedar engine and the built-in engine agree on a generated corpus of
//! equivalent policies (`cedar` feature; run with
//! `cargo test -p etdi-policy --features cedar`).

// Test code: a failed unwrap or index is a failed test, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::scenario::*;
use common::*;
use etdi_core::{DenyReason, SecurityLevel, SecurityPolicy};
use etdi_policy::cedar::{CedarEngine, equivalent_policies};
use etdi_policy::{Authorizer, CallRequest, PolicyDocument, PolicyEngine, Role};
use proptest::prelude::*;

fn cedar_for(s: &Scenario) -> CedarEngine {
    let doc = s.document();
    let text = equivalent_policies(&doc, &s.tools);
    PolicyEngine::builder(server())
        .document(doc)
        .tools(&s.tools)
        .build_cedar(&text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn cedar_and_builtin_agree(s in scenario()) {
        let builtin = s.engine();
        let cedar = cedar_for(&s);
        let chain = s.chain();
        let p = s.principal();
        let hp = s.hop_principals();
        let callee = id(TOOLS[s.callee]);
        let req = CallRequest::chained(&p, &callee, &chain, &hp).signed(s.signed);
        let a = builtin.decide(&req);
        let b = cedar.decide(&req);
        prop_assert_eq!(a.is_allowed(), b.is_allowed(), "built-in {:?}\ncedar {:?}", a, b);
        // The same structural reasons, and a permission failure on one side
        // is a permission failure on the other.
        let structural = |d: &etdi_core::Decision| -> Vec<DenyReason> {
            d.reasons()
                .iter()
                .filter(|r| !matches!(r, DenyReason::MissingPermissions { .. } | DenyReason::PolicyDenied { .. } | DenyReason::PrivilegeEscalation { .. }))
                .cloned()
                .collect()
        };
        prop_assert_eq!(structural(&a), structural(&b));
        let codes = |d: &etdi_core::Decision| -> Vec<&'static str> {
            // Cedar cannot say which permission is missing: its `policy_denied`
            // is the built-in engine's `missing_permissions`.
            d.reasons()
                .iter()
                .map(DenyReason::code)
                .filter(|c| *c == "missing_permissions" || *c == "policy_denied")
                .map(|_| "permission")
                .collect()
        };
        prop_assert_eq!(codes(&a), codes(&b));
        prop_assert_eq!(
            Authorizer::visible_tools(&builtin, &p),
            Authorizer::visible_tools(&cedar, &p)
        );
    }
}

#[test]
fn handwritten_cedar_policies_with_roles_and_context() {
    let read = tool("files/read", &["file:read"]);
    let del = tool("files/delete", &["file:delete"]);
    let doc = PolicyDocument::new(SecurityPolicy::new(SecurityLevel::Basic))
        .with_role("reader", Role::default())
        .with_role("admin", Role::default().inheriting(["reader"]))
        .with_assignment("root", ["admin"]);
    let policies = r#"
        @id("readers-read")
        permit(principal in Etdi::Role::"reader", action == Etdi::Action::"call", resource == Etdi::Tool::"files/read");
        @id("admins-delete-directly")
        permit(principal in Etdi::Role::"admin", action == Etdi::Action::"call", resource == Etdi::Tool::"files/delete")
        when { !context.chained };
    "#;
    let e = PolicyEngine::builder(server())
        .document(doc)
        .tools([&read, &del])
        .build_cedar(policies)
        .unwrap();
    let admin = user("a", &[], &["admin"]);
    assert_eq!(
        e.decide(&CallRequest::direct(&admin, &read.id)),
        etdi_core::Decision::allow("cedar:readers-read")
    );
    let root = user("root", &[], &[]);
    assert!(e.decide(&CallRequest::direct(&root, &del.id)).is_allowed());
    let c = chain(vec![hop("s2", "x", "root")]);
    let hp = vec![root.clone()];
    let d = e.decide(&CallRequest::chained(&root, &del.id, &c, &hp));
    // No permit applies to a chained delete: Cedar says so, naming no policy.
    assert_eq!(
        d.reasons()[0],
        DenyReason::PolicyDenied {
            engine: "cedar".into(),
            policies: vec![]
        }
    );
    let nobody = user("n", &[], &[]);
    assert!(e.visible_tools(&nobody).is_empty());
    assert_eq!(
        e.visible_tools(&root),
        vec![del.id.clone(), read.id.clone()]
    );
    // Escalation: the service may, the hop's principal may not.
    let c = chain(vec![hop("s2", "x", "n")]);
    let hp = vec![nobody];
    let d = e.decide(&CallRequest::chained(&admin, &read.id, &c, &hp));
    assert_eq!(d.reasons()[0].code(), "privilege_escalation");
}

#[test]
fn cedar_errors_deny_and_bad_policies_fail_to_build() {
    let t = tool("t", &[]);
    let bad = PolicyEngine::builder(server())
        .tool(&t)
        .build_cedar("permit(");
    assert!(bad.is_err());
    // A policy that errors at evaluation (attribute missing) denies even
    // though plain Cedar would skip it and let the permit through.
    let policies = r#"
        permit(principal, action, resource);
        forbid(principal, action, resource) when { principal.no_such_attr };
    "#;
    let e = PolicyEngine::builder(server())
        .policy(SecurityPolicy::new(SecurityLevel::Basic))
        .tool(&t)
        .build_cedar(policies)
        .unwrap();
    let d = e.decide(&CallRequest::direct(&user("u", &[], &[]), &t.id));
    assert!(
        matches!(d.reasons(), [DenyReason::Internal { .. }]),
        "{d:?}"
    );
}

/// The corpus is not trivial: a fair share of both outcomes, including
/// allowed chained calls with hop principals.
#[test]
fn the_corpus_has_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut allow, mut chained_allow, mut agree) = (0, 0, 0);
    let mut hist = std::collections::BTreeMap::new();
    let n = 300;
    for _ in 0..n {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        let a = s.decide();
        let cedar = cedar_for(&s);
        let (chain, p, hp) = (s.chain(), s.principal(), s.hop_principals());
        let callee = id(TOOLS[s.callee]);
        let b = cedar.decide(&CallRequest::chained(&p, &callee, &chain, &hp).signed(s.signed));
        if a.is_allowed() {
            allow += 1;
            if !s.chain.is_empty() {
                chained_allow += 1;
            }
        }
        for r in a.reasons() {
            *hist.entry(r.code()).or_insert(0) += 1;
        }
        if a.is_allowed() == b.is_allowed() {
            agree += 1;
        }
    }
    println!("allowed {allow}/{n}, chained and allowed {chained_allow}; deny reasons {hist:?}");
    assert_eq!(agree, n);
    assert!(allow > n / 10 && allow < n * 9 / 10, "allowed {allow}/{n}");
    assert!(chained_allow > n / 50, "chained allowed {chained_allow}");
}
