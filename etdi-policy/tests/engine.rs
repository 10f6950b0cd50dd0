//! Unit tests of the built-in engine: one per reason of denial, the allow
//! rules, overrides, listing and explanations.

// Test code: a failed unwrap or index is a failed test, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use etdi_core::{
    CallChain, Decision, DenyReason, Permission, SecurityLevel, SecurityPolicy, ToolDefinition,
};
use etdi_policy::{
    Authorizer, BuildError, CallRequest, PolicyDocument, PolicyEngine, RbacError, Role, ToolRules,
};
use serde_json::json;

fn p(s: &str) -> Permission {
    Permission::parse(s).unwrap()
}

fn basic() -> SecurityPolicy {
    SecurityPolicy::new(SecurityLevel::Basic)
}

fn doc() -> PolicyDocument {
    PolicyDocument::new(basic())
        .with_role("reader", Role::granting([p("file:read")]))
        .with_role(
            "editor",
            Role::granting([p("file:write")]).inheriting(["reader"]),
        )
        .with_role("admin", Role::granting([p("file:*"), p("audit:*")]))
        .with_assignment("carol", ["editor"])
}

fn engine<'a>(
    doc: PolicyDocument,
    tools: impl IntoIterator<Item = &'a ToolDefinition>,
) -> PolicyEngine {
    PolicyEngine::builder(server())
        .document(doc)
        .tools(tools)
        .build()
        .unwrap()
}

fn reasons(d: &Decision) -> Vec<DenyReason> {
    d.reasons().to_vec()
}

#[test]
fn scopes_roles_inheritance_and_assignments_allow() {
    let read = tool("files/read", &["file:read"]);
    let write = tool("files/write", &["file:write", "file:read"]);
    let e = engine(doc(), [&read, &write]);

    let by_scope = user("u", &["file:read"], &[]);
    assert_eq!(
        e.decide(&CallRequest::direct(&by_scope, &read.id)),
        Decision::allow("scope:file:read")
    );
    let by_wildcard_scope = user("u", &["file:*", "openid"], &[]);
    assert_eq!(
        e.decide(&CallRequest::direct(&by_wildcard_scope, &write.id)),
        Decision::allow("scope:file:*")
    );
    // Inherited role: editor inherits reader.
    let editor = user("u", &[], &["editor"]);
    assert_eq!(
        e.decide(&CallRequest::direct(&editor, &write.id)),
        Decision::allow("role:editor")
    );
    // Static assignment for the subject.
    let carol = user("carol", &[], &[]);
    assert!(
        e.decide(&CallRequest::direct(&carol, &write.id))
            .is_allowed()
    );
    // Mixed grants are all named.
    let mixed = user("u", &["file:write"], &["reader"]);
    assert_eq!(
        e.decide(&CallRequest::direct(&mixed, &write.id)),
        Decision::allow("role:reader, scope:file:write")
    );
    // No permission required.
    let open = tool("open", &[]);
    let e2 = engine(doc(), [&open]);
    assert_eq!(
        e2.decide(&CallRequest::direct(&user("x", &[], &[]), &open.id)),
        Decision::allow(etdi_policy::RULE_NO_PERMISSION_REQUIRED)
    );
}

#[test]
fn missing_permissions_are_listed_by_name() {
    let t = tool(
        "db/update",
        &["database:user:update", "audit:log", "file:*"],
    );
    let e = engine(doc(), [&t]);
    // `file:read` does not cover a required `file:*`; scopes that are not
    // permissions are ignored.
    let u = user(
        "u",
        &["file:read", "openid", "audit:log", "database:user"],
        &["ghost"],
    );
    let d = e.decide(&CallRequest::direct(&u, &t.id));
    assert_eq!(
        reasons(&d),
        vec![DenyReason::MissingPermissions {
            missing: vec![p("database:user:update"), p("file:*")]
        }]
    );
    assert_eq!(
        d.reasons()[0].to_string(),
        "missing permission(s): database:user:update, file:*"
    );
    // Wildcards on the granted side cover deeper permissions.
    let admin = user("u", &["database:*"], &["admin"]);
    assert!(e.decide(&CallRequest::direct(&admin, &t.id)).is_allowed());
}

#[test]
fn unknown_tool() {
    let e = engine(doc(), []);
    let d = e.decide(&CallRequest::direct(&user("u", &[], &[]), &id("nope")));
    assert_eq!(
        reasons(&d),
        vec![DenyReason::UnknownTool {
            name: "nope".into()
        }]
    );
}

#[test]
fn request_signing_policy_tool_and_operator_overrides() {
    let plain = tool("plain", &[]);
    let by_def = tool_with(
        "by_def",
        &[],
        json!({"security": {"requireRequestSigning": true}}),
    );
    let by_rule = tool("by_rule", &[]);
    let d = doc().with_tool_rules(
        by_rule.id.clone(),
        ToolRules {
            require_request_signing: true,
            ..ToolRules::default()
        },
    );
    let e = engine(d, [&plain, &by_def, &by_rule]);
    let u = user("u", &[], &[]);
    assert!(e.decide(&CallRequest::direct(&u, &plain.id)).is_allowed());
    for t in [&by_def.id, &by_rule.id] {
        assert_eq!(
            reasons(&e.decide(&CallRequest::direct(&u, t))),
            vec![DenyReason::RequestSignatureRequired]
        );
        assert!(
            e.decide(&CallRequest::direct(&u, t).signed(true))
                .is_allowed()
        );
    }
    // Strict requires signing everywhere; a tool cannot turn it off.
    let e = engine(
        PolicyDocument::new(SecurityPolicy::new(SecurityLevel::Strict)),
        [&plain],
    );
    assert_eq!(
        reasons(&e.decide(&CallRequest::direct(&u, &plain.id))),
        vec![DenyReason::RequestSignatureRequired]
    );
    let sec = e.effective_security(&plain.id).unwrap();
    assert!(sec.require_request_signing && sec.require_signature);
    assert_eq!(sec.max_call_depth, 3);
}

#[test]
fn depth_limit_is_the_stricter_of_policy_and_tool() {
    let deep = tool("deep", &[]);
    let shallow = tool_with("shallow", &[], json!({"callChain": {"maxDepth": 2}}));
    let mut policy = basic();
    policy.max_call_depth = 3;
    let e = engine(PolicyDocument::new(policy), [&deep, &shallow]);
    let u = user("u", &[], &[]);
    let hops = |n: usize| -> (CallChain, Vec<etdi_core::Principal>) {
        let c = chain(
            (0..n)
                .map(|i| hop("other", &format!("t{i}"), "u"))
                .collect(),
        );
        (c, vec![u.clone(); n])
    };
    // A direct call has depth 1; two hops make depth 3.
    let (c2, hp2) = hops(2);
    assert!(
        e.decide(&CallRequest::chained(&u, &deep.id, &c2, &hp2))
            .is_allowed()
    );
    let (c3, hp3) = hops(3);
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &deep.id, &c3, &hp3))),
        vec![DenyReason::CallDepthExceeded { depth: 4, max: 3 }]
    );
    let (c1, hp1) = hops(1);
    assert!(
        e.decide(&CallRequest::chained(&u, &shallow.id, &c1, &hp1))
            .is_allowed()
    );
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &shallow.id, &c2, &hp2))),
        vec![DenyReason::CallDepthExceeded { depth: 3, max: 2 }]
    );
    // A tool cannot loosen the policy.
    let loose = tool_with("loose", &[], json!({"callChain": {"maxDepth": 30}}));
    let mut policy = basic();
    policy.max_call_depth = 2;
    let e = engine(PolicyDocument::new(policy), [&loose]);
    assert_eq!(e.effective_security(&loose.id).unwrap().max_call_depth, 2);
}

#[test]
fn cycle_a_b_a_is_refused() {
    let a = tool("A", &[]);
    let b = tool("B", &[]);
    let e = engine(doc(), [&a, &b]);
    let u = user("u", &[], &[]);
    // A -> B -> A: the chain holds A and B, and now A is called again.
    let c = chain(vec![hop(SERVER, "A", "u"), hop(SERVER, "B", "u")]);
    let hp = vec![u.clone(), u.clone()];
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &a.id, &c, &hp))),
        vec![DenyReason::CallCycle { tool: id("A") }]
    );
    // The same tool id on another server is not a cycle.
    let c = chain(vec![hop("elsewhere", "A", "u"), hop(SERVER, "B", "u")]);
    assert!(
        e.decide(&CallRequest::chained(&u, &a.id, &c, &hp))
            .is_allowed()
    );
    // A repeat inside the received chain is a cycle too.
    let c = chain(vec![
        hop("x", "C", "u"),
        hop("y", "D", "u"),
        hop("x", "C", "u"),
    ]);
    let hp3 = vec![u.clone(); 3];
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &b.id, &c, &hp3))),
        vec![DenyReason::CallCycle { tool: id("C") }]
    );
}

#[test]
fn caller_rules_of_the_callee() {
    let callee = tool_with(
        "callee",
        &[],
        json!({"callChain": {"allowedCallers": ["good", "evil"], "blockedCallers": ["evil"]}}),
    );
    let e = engine(doc(), [&callee]);
    let u = user("u", &[], &[]);
    let hp = vec![u.clone()];
    let call = |caller: &str| {
        let c = chain(vec![hop("s2", caller, "u")]);
        e.decide(&CallRequest::chained(&u, &callee.id, &c, &hp))
    };
    assert!(call("good").is_allowed());
    // Block wins over allow.
    assert_eq!(
        reasons(&call("evil")),
        vec![DenyReason::CallerBlocked {
            caller: id("evil"),
            callee: id("callee")
        }]
    );
    assert_eq!(
        reasons(&call("other")),
        vec![DenyReason::CallerNotAllowed {
            caller: id("other"),
            callee: id("callee")
        }]
    );
    // Direct calls have no caller.
    assert!(e.decide(&CallRequest::direct(&u, &callee.id)).is_allowed());
    // `Some(empty)` admits nobody.
    let lonely = tool_with("lonely", &[], json!({"callChain": {"allowedCallers": []}}));
    let e = engine(doc(), [&lonely]);
    let c = chain(vec![hop("s2", "good", "u")]);
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &lonely.id, &c, &hp))),
        vec![DenyReason::CallerNotAllowed {
            caller: id("good"),
            callee: id("lonely")
        }]
    );
}

#[test]
fn callee_rules_of_a_caller_on_this_server() {
    let caller = tool_with(
        "caller",
        &[],
        json!({"callChain": {"allowedCallees": ["ok", "bad"], "blockedCallees": ["bad"]}}),
    );
    let ok = tool("ok", &[]);
    let bad = tool("bad", &[]);
    let other = tool("other", &[]);
    let e = engine(doc(), &[caller, ok.clone(), bad.clone(), other.clone()]);
    let u = user("u", &[], &[]);
    let hp = vec![u.clone()];
    let here = chain(vec![hop(SERVER, "caller", "u")]);
    assert!(
        e.decide(&CallRequest::chained(&u, &ok.id, &here, &hp))
            .is_allowed()
    );
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &bad.id, &here, &hp))),
        vec![DenyReason::CalleeBlocked {
            caller: id("caller"),
            callee: id("bad")
        }]
    );
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &other.id, &here, &hp))),
        vec![DenyReason::CalleeNotAllowed {
            caller: id("caller"),
            callee: id("other")
        }]
    );
    // A tool of the same id on another server: its definition is not ours,
    // so its callee rules are unknown here.
    let there = chain(vec![hop("s2", "caller", "u")]);
    assert!(
        e.decide(&CallRequest::chained(&u, &bad.id, &there, &hp))
            .is_allowed()
    );
}

#[test]
fn policy_wide_caller_and_callee_lists() {
    let t = tool("t", &[]);
    let mut policy = basic();
    policy.blocked_callers.insert(id("rogue"));
    policy.allowed_callers = Some([id("rogue"), id("friend"), id("stranger")].into());
    policy.blocked_callees.insert(id("t"));
    let e = engine(PolicyDocument::new(policy.clone()), [&t]);
    let u = user("u", &[], &[]);
    let hp = vec![u.clone()];
    // Policy callee rules apply to every chained call, not to direct ones.
    assert!(e.decide(&CallRequest::direct(&u, &t.id)).is_allowed());
    let c = chain(vec![hop("s2", "rogue", "u")]);
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &t.id, &c, &hp))),
        vec![
            DenyReason::CallerBlocked {
                caller: id("rogue"),
                callee: id("t")
            },
            DenyReason::CalleeBlocked {
                caller: id("rogue"),
                callee: id("t")
            }
        ]
    );
    policy.blocked_callees.clear();
    policy.allowed_callees = Some(Default::default());
    let e = engine(PolicyDocument::new(policy), [&t]);
    let c = chain(vec![hop("s2", "nobody", "u")]);
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &t.id, &c, &hp))),
        vec![
            DenyReason::CallerNotAllowed {
                caller: id("nobody"),
                callee: id("t")
            },
            DenyReason::CalleeNotAllowed {
                caller: id("nobody"),
                callee: id("t")
            }
        ]
    );
}

#[test]
fn privilege_escalation_through_a_chain() {
    let export = tool("db/export", &["database:read", "file:write"]);
    let e = engine(doc(), [&export]);
    // The service calling on behalf of alice holds everything; alice, who
    // started the chain, holds only database:read.
    let service = user("svc", &["database:read", "file:write"], &[]);
    let alice = user("alice", &["database:read"], &[]);
    let c = chain(vec![hop("front", "report", "alice")]);
    let hp = vec![alice.clone()];
    let d = e.decide(&CallRequest::chained(&service, &export.id, &c, &hp));
    assert_eq!(
        reasons(&d),
        vec![DenyReason::PrivilegeEscalation {
            permissions: vec![p("file:write")],
            principal: "alice".into()
        }]
    );
    assert_eq!(d.reasons()[0].code(), "privilege_escalation");
    // With the right in every hop, the call passes.
    let alice_rw = user("alice", &["database:read"], &["editor"]);
    let hp = vec![alice_rw];
    assert!(
        e.decide(&CallRequest::chained(&service, &export.id, &c, &hp))
            .is_allowed()
    );
    // When the current principal lacks it too, it is reported as missing,
    // not as an escalation.
    let weak = user("svc", &["database:read"], &[]);
    let hp = vec![alice];
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&weak, &export.id, &c, &hp))),
        vec![DenyReason::MissingPermissions {
            missing: vec![p("file:write")]
        }]
    );
}

#[test]
fn hop_rights_must_match_the_chain() {
    let t = tool("t", &[]);
    let e = engine(doc(), [&t]);
    let u = user("u", &[], &[]);
    let c = chain(vec![hop("s2", "x", "alice")]);
    // Missing hop rights.
    let d = e.decide(&CallRequest::chained(&u, &t.id, &c, &[]));
    assert!(matches!(reasons(&d)[..], [DenyReason::Internal { .. }]));
    // Rights of someone else.
    let hp = vec![user("mallory", &[], &[])];
    let d = e.decide(&CallRequest::chained(&u, &t.id, &c, &hp));
    assert!(matches!(reasons(&d)[..], [DenyReason::Internal { .. }]));
}

#[test]
fn every_reason_is_returned() {
    let t = tool_with(
        "t",
        &["file:write"],
        json!({"callChain": {"maxDepth": 1, "blockedCallers": ["x"]}, "security": {"requireRequestSigning": true}}),
    );
    let e = engine(doc(), [&t]);
    let u = user("u", &[], &[]);
    let c = chain(vec![hop(SERVER, "t", "u"), hop("s2", "x", "u")]);
    let hp = vec![u.clone(), u.clone()];
    let d = e.decide(&CallRequest::chained(&u, &t.id, &c, &hp));
    let codes: Vec<&str> = d.reasons().iter().map(DenyReason::code).collect();
    assert_eq!(
        codes,
        [
            "request_signature_required",
            "call_depth_exceeded",
            "call_cycle",
            "caller_blocked",
            "missing_permissions"
        ]
    );
}

#[test]
fn disabling_chain_validation_keeps_tool_constraints() {
    let t = tool_with(
        "t",
        &[],
        json!({"callChain": {"maxDepth": 2, "blockedCallers": ["x"]}}),
    );
    let mut policy = basic();
    policy.enable_call_chain_validation = false;
    policy.max_call_depth = 1;
    policy.blocked_callers.insert(id("y"));
    let e = engine(PolicyDocument::new(policy), [&t]);
    let u = user("u", &[], &[]);
    let hp = vec![u.clone()];
    // Policy depth and lists are off; the cycle check is off.
    let c = chain(vec![hop(SERVER, "t", "u")]);
    assert!(
        e.decide(&CallRequest::chained(&u, &t.id, &c, &hp))
            .is_allowed()
    );
    let c = chain(vec![hop("s2", "y", "u")]);
    assert!(
        e.decide(&CallRequest::chained(&u, &t.id, &c, &hp))
            .is_allowed()
    );
    // The tool's own constraints still hold.
    let c = chain(vec![hop("s2", "x", "u")]);
    assert!(
        !e.decide(&CallRequest::chained(&u, &t.id, &c, &hp))
            .is_allowed()
    );
    let c = chain(vec![hop("s2", "a", "u"), hop("s2", "b", "u")]);
    let hp2 = vec![u.clone(), u.clone()];
    assert_eq!(
        reasons(&e.decide(&CallRequest::chained(&u, &t.id, &c, &hp2))),
        vec![DenyReason::CallDepthExceeded { depth: 3, max: 2 }]
    );
}

#[test]
fn operator_rules_only_tighten() {
    let t = tool_with(
        "t",
        &["file:read"],
        json!({"callChain": {"maxDepth": 4, "allowedCallers": ["a", "b"]}}),
    );
    let rules = ToolRules {
        permissions: [p("audit:log")].into(),
        max_call_depth: Some(2),
        allowed_callers: Some([id("b"), id("c")].into()),
        ..ToolRules::default()
    };
    let e = engine(doc().with_tool_rules(t.id.clone(), rules), [&t]);
    assert_eq!(
        e.required_permissions(&t.id).unwrap(),
        vec![p("audit:log"), p("file:read")]
    );
    assert_eq!(e.effective_security(&t.id).unwrap().max_call_depth, 2);
    let u = user("u", &["file:read", "audit:log"], &[]);
    let hp = vec![u.clone()];
    for (caller, ok) in [("a", false), ("b", true), ("c", false)] {
        let c = chain(vec![hop("s2", caller, "u")]);
        assert_eq!(
            e.decide(&CallRequest::chained(&u, &t.id, &c, &hp))
                .is_allowed(),
            ok,
            "{caller}"
        );
    }
}

#[test]
fn visible_tools_filter_the_list() {
    let read = tool("files/read", &["file:read"]);
    let write = tool("files/write", &["file:write"]);
    let open = tool("open", &[]);
    let e = engine(doc(), [&write, &read, &open]);
    let reader = user("u", &[], &["reader"]);
    assert_eq!(e.visible_tools(&reader), vec![&read.id, &open.id]);
    assert!(e.is_visible(&reader, &read.id));
    assert!(!e.is_visible(&reader, &write.id));
    let admin = user("u", &[], &["admin"]);
    assert_eq!(
        Authorizer::visible_tools(&e, &admin),
        vec![read.id.clone(), write.id.clone(), open.id.clone()]
    );
}

#[test]
fn explanations_name_each_grant() {
    let t = tool("t", &["file:read", "audit:log"]);
    let e = engine(doc(), [&t]);
    let u = user("u", &["audit:*"], &["reader"]);
    let ex = e.explain(&CallRequest::direct(&u, &t.id));
    assert!(ex.decision.is_allowed());
    assert_eq!(ex.depth, 1);
    let grants: Vec<_> = ex
        .permissions
        .iter()
        .map(|c| (c.permission.as_str(), c.granted_by.as_deref()))
        .collect();
    assert_eq!(
        grants,
        [
            ("audit:log", Some("scope:audit:*")),
            ("file:read", Some("role:reader"))
        ]
    );
    assert_eq!(ex.decision, e.decide(&CallRequest::direct(&u, &t.id)));
    let v = serde_json::to_value(&ex).unwrap();
    assert_eq!(v["decision"]["decision"], "allow");
}

#[test]
fn build_errors() {
    let cyc = PolicyDocument::default()
        .with_role("a", Role::default().inheriting(["b"]))
        .with_role("b", Role::default().inheriting(["a"]));
    assert!(matches!(
        PolicyEngine::builder(server()).document(cyc).build(),
        Err(BuildError::Roles(RbacError::InheritanceCycle { .. }))
    ));
    let bad_assign = PolicyDocument::default().with_assignment("x", ["ghost"]);
    assert!(matches!(
        PolicyEngine::builder(server()).document(bad_assign).build(),
        Err(BuildError::Roles(RbacError::UnknownAssignedRole { .. }))
    ));
    let t = tool("t", &[]);
    assert!(matches!(
        PolicyEngine::builder(server()).tool(&t).tool(&t).build(),
        Err(BuildError::DuplicateTool { .. })
    ));
    let mut policy = basic();
    policy.max_call_depth = 0;
    assert!(matches!(
        PolicyEngine::builder(server()).policy(policy).build(),
        Err(BuildError::InvalidDepth { .. })
    ));
}
