//! Property tests of the built-in engine: monotonicity of grants, deny
//! overrides allow, the depth bound, and the compiled matching equals
//! etdi-core's `Permission::covers`.

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
use etdi_core::{DenyReason, Principal, SecurityLevel, SecurityPolicy};
use etdi_policy::{CallRequest, PolicyDocument, PolicyEngine, Role};
use proptest::prelude::*;

fn is_block(r: &DenyReason) -> bool {
    matches!(
        r,
        DenyReason::CallerBlocked { .. } | DenyReason::CalleeBlocked { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The compiled matching is exactly `Permission::covers`.
    #[test]
    fn compiled_matching_equals_covers(
        grants in prop::collection::btree_set(perm(), 0..4),
        required in prop::collection::btree_set(perm(), 1..3),
    ) {
        let req: Vec<String> = required.iter().map(|p| p.to_string()).collect();
        let req: Vec<&str> = req.iter().map(String::as_str).collect();
        let t = tool("t", &req);
        let e = PolicyEngine::builder(server())
            .policy(SecurityPolicy::new(SecurityLevel::Basic))
            .tool(&t)
            .build()
            .unwrap();
        let expected = required.iter().all(|r| grants.iter().any(|g| g.covers(r)));
        let u = Principal::new("u", etdi_core::AuthMethod::Local)
            .with_scopes(grants.iter().map(|g| g.to_string()));
        prop_assert_eq!(e.decide(&CallRequest::direct(&u, &t.id)).is_allowed(), expected);
        // The same through a role.
        let e = PolicyEngine::builder(server())
            .document(PolicyDocument::new(SecurityPolicy::new(SecurityLevel::Basic))
                .with_role("r", Role::granting(grants.iter().cloned())))
            .tool(&t)
            .build()
            .unwrap();
        let u = Principal::new("u", etdi_core::AuthMethod::Local).with_roles(["r"]);
        prop_assert_eq!(e.decide(&CallRequest::direct(&u, &t.id)).is_allowed(), expected);
    }

    /// Adding a scope or a role to the principal or to a hop principal never
    /// turns Allow into Deny (no rule here blocks by scope or role).
    #[test]
    fn more_rights_never_deny(s in scenario(), extra_scope in scope(), extra_role in 0..ROLES.len() + 1, target in 0..6usize) {
        let before = s.decide();
        let mut more = s.clone();
        if target == 0 {
            more.principal.1.insert(extra_scope);
            more.principal.2.insert(extra_role);
        } else {
            let h = &mut more.hop_rights[target - 1];
            h.0.insert(extra_scope);
            h.1.insert(extra_role);
        }
        let after = more.decide();
        if before.is_allowed() {
            prop_assert!(after.is_allowed(), "{:?} became {:?}", before, after);
        }
        // And the deny reasons can only shrink.
        for r in after.reasons() {
            if !matches!(r, DenyReason::MissingPermissions { .. } | DenyReason::PrivilegeEscalation { .. }) {
                prop_assert!(before.reasons().contains(r), "new reason {:?}", r);
            }
        }
    }

    /// Deny overrides allow: when a block list names the caller or callee,
    /// the call is denied whatever is allowed or granted.
    #[test]
    fn block_rules_always_deny(s in scenario()) {
        let d = s.decide();
        let Some((_, last_tool, _)) = s.chain.last() else { return Ok(()); };
        let caller = id(TOOLS[*last_tool]);
        let callee = id(TOOLS[s.callee]);
        let callee_def = &s.tools[s.callee];
        let caller_here = s.chain.last().is_some_and(|(here, _, _)| *here);
        let validate = s.policy.enable_call_chain_validation;
        let blocked = callee_def.call_chain.blocked_callers.contains(&caller)
            || (validate && s.policy.blocked_callers.contains(&caller))
            || (caller_here && s.tools[*last_tool].call_chain.blocked_callees.contains(&callee))
            || (validate && s.policy.blocked_callees.contains(&callee));
        if blocked {
            prop_assert!(!d.is_allowed());
            prop_assert!(d.reasons().iter().any(is_block), "{:?}", d);
        } else {
            prop_assert!(!d.reasons().iter().any(is_block), "{:?}", d);
        }
    }

    /// An allowed call never exceeds the depth limit that applies.
    #[test]
    fn depth_bound_holds(s in scenario()) {
        let d = s.decide();
        let depth = s.chain.len() as u32 + 1;
        let mut limit = s.tools[s.callee].call_chain.max_depth.unwrap_or(32);
        if s.policy.enable_call_chain_validation {
            limit = limit.min(s.policy.max_call_depth);
        }
        if d.is_allowed() {
            prop_assert!(depth <= limit);
        }
        let exceeded = d.reasons().iter().any(|r| matches!(r, DenyReason::CallDepthExceeded { .. }));
        prop_assert_eq!(exceeded, depth > limit);
    }

    /// A deny always has at least one reason and an allow none; `explain`
    /// agrees with `decide`.
    #[test]
    fn decisions_are_well_formed(s in scenario()) {
        let d = s.decide();
        prop_assert_eq!(d.is_allowed(), d.reasons().is_empty());
        let e = s.engine();
        let chain = s.chain();
        let p = s.principal();
        let hp = s.hop_principals();
        let callee = id(TOOLS[s.callee]);
        let req = CallRequest::chained(&p, &callee, &chain, &hp).signed(s.signed);
        prop_assert_eq!(e.explain(&req).decision, d);
    }
}
