//! A random scenario generator shared by the property tests: roles,
//! assignments, tools with chain constraints, a policy, a chain and rights.

use std::collections::BTreeSet;

use super::*;
use etdi_core::{
    CallChain, Hop, Permission, Principal, SecurityLevel, SecurityPolicy, ToolDefinition,
};
use etdi_policy::{CallRequest, PolicyDocument, PolicyEngine, Role};
use proptest::prelude::*;
use serde_json::json;

/// Permissions over a small alphabet so grants and requirements collide.
pub fn perm() -> impl Strategy<Value = Permission> {
    (
        prop::sample::select(vec!["file", "db", "api"]),
        prop::collection::vec(prop::sample::select(vec!["read", "write", "x"]), 0..=2),
        any::<bool>(),
    )
        .prop_map(|(first, rest, wild)| {
            let mut s = first.to_owned();
            for r in &rest {
                s.push(':');
                s.push_str(r);
            }
            if wild || rest.is_empty() {
                s.push_str(":*");
            }
            Permission::parse(&s).unwrap()
        })
}

pub fn scope() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => perm().prop_map(|p| p.to_string()),
        1 => prop::sample::select(vec!["openid", "file", "file:", "*", "profile email"]).prop_map(String::from),
    ]
}

pub const TOOLS: &[&str] = &["t0", "t1", "t2", "t3"];
pub const ROLES: &[&str] = &["r0", "r1", "r2", "r3"];
pub const SUBJECTS: &[&str] = &["alice", "bob", "carol"];

/// A random scenario: roles (acyclic: r_i inherits only r_j with j < i),
/// tools with permissions and chain constraints, a policy, a chain.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub policy: SecurityPolicy,
    pub roles: Vec<(BTreeSet<Permission>, BTreeSet<usize>)>,
    pub assignments: Vec<(usize, BTreeSet<usize>)>,
    pub tools: Vec<ToolDefinition>,
    pub chain: Vec<(bool, usize, usize)>,
    pub callee: usize,
    pub principal: (usize, BTreeSet<String>, BTreeSet<usize>),
    pub hop_rights: Vec<(BTreeSet<String>, BTreeSet<usize>)>,
    pub signed: bool,
}

fn tool_list() -> impl Strategy<Value = Option<Vec<usize>>> {
    prop::option::weighted(0.25, prop::collection::vec(0..TOOLS.len(), 0..4))
}

fn block_list() -> impl Strategy<Value = Vec<usize>> {
    prop::option::weighted(0.3, prop::collection::vec(0..TOOLS.len(), 1..3))
        .prop_map(Option::unwrap_or_default)
}

type ToolParts = (
    BTreeSet<Permission>,
    Option<u32>,
    [Option<Vec<usize>>; 2],
    [Vec<usize>; 2],
    bool,
);

fn tool_def() -> impl Strategy<Value = ToolParts> {
    (
        prop::collection::btree_set(perm(), 0..3).prop_map(|mut s| {
            // Mostly one permission or none, so grants often suffice.
            while s.len() > 1 {
                s.pop_last();
            }
            s
        }),
        prop::option::weighted(0.3, 1u32..8),
        [tool_list(), tool_list()],
        [block_list(), block_list()],
        prop::bool::weighted(0.15),
    )
}

fn names(list: &[usize]) -> Vec<&'static str> {
    list.iter().map(|i| TOOLS[*i]).collect()
}

pub fn scenario() -> impl Strategy<Value = Scenario> {
    let roles = prop::collection::vec(
        (
            prop::collection::btree_set(perm(), 0..4),
            prop::collection::btree_set(0..ROLES.len(), 0..2),
        ),
        ROLES.len(),
    )
    .prop_map(|mut rs| {
        for (i, r) in rs.iter_mut().enumerate() {
            r.1.retain(|j| *j < i);
        }
        rs
    });
    let policy = (
        prop::sample::select(vec![
            SecurityLevel::Basic,
            SecurityLevel::Enhanced,
            SecurityLevel::Strict,
        ]),
        1u32..8,
        prop::bool::weighted(0.85),
        tool_list(),
        block_list(),
        tool_list(),
        block_list(),
    )
        .prop_map(|(level, depth, validate, ac, bc, ae, be)| {
            let mut p = SecurityPolicy::new(level);
            p.max_call_depth = depth;
            p.enable_call_chain_validation = validate;
            p.allowed_callers = ac.map(|l| l.iter().map(|i| id(TOOLS[*i])).collect());
            p.blocked_callers = bc.iter().map(|i| id(TOOLS[*i])).collect();
            p.allowed_callees = ae.map(|l| l.iter().map(|i| id(TOOLS[*i])).collect());
            p.blocked_callees = be.iter().map(|i| id(TOOLS[*i])).collect();
            p
        });
    let tools = prop::collection::vec(tool_def(), TOOLS.len()).prop_map(|defs| {
        defs.into_iter()
            .enumerate()
            .map(|(i, (perms, depth, allowed, blocked, sign))| {
                let perms: Vec<String> = perms.iter().map(|p| p.to_string()).collect();
                let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
                let mut cc = serde_json::Map::new();
                if let Some(d) = depth {
                    cc.insert("maxDepth".into(), json!(d));
                }
                if let Some(a) = &allowed[0] {
                    cc.insert("allowedCallers".into(), json!(names(a)));
                }
                if let Some(a) = &allowed[1] {
                    cc.insert("allowedCallees".into(), json!(names(a)));
                }
                cc.insert("blockedCallers".into(), json!(names(&blocked[0])));
                cc.insert("blockedCallees".into(), json!(names(&blocked[1])));
                tool_with(
                    TOOLS[i],
                    &perms,
                    json!({"callChain": cc, "security": {"requireRequestSigning": sign}}),
                )
            })
            .collect::<Vec<_>>()
    });
    let rights = || {
        (
            prop::collection::btree_set(scope(), 0..6),
            prop::collection::btree_set(0..ROLES.len() + 1, 0..3),
        )
    };
    (
        policy,
        roles,
        prop::collection::vec(
            (
                0..SUBJECTS.len(),
                prop::collection::btree_set(0..ROLES.len(), 0..2),
            ),
            0..2,
        ),
        tools,
        prop_oneof![
            2 => Just(Vec::new()),
            3 => prop::collection::vec((any::<bool>(), 0..TOOLS.len(), 0..SUBJECTS.len()), 1..5),
        ],
        0..TOOLS.len(),
        (0..SUBJECTS.len(), rights().prop_map(|r| r)),
        prop::collection::vec(rights(), 5),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(
                policy,
                roles,
                assignments,
                tools,
                chain,
                callee,
                (ps, (pscopes, proles)),
                hop_rights,
                signed,
            )| Scenario {
                policy,
                roles,
                assignments,
                tools,
                chain,
                callee,
                principal: (ps, pscopes, proles),
                hop_rights,
                signed,
            },
        )
}

fn role_name(i: usize) -> String {
    // Index ROLES.len() is a role the policy does not define.
    ROLES
        .get(i)
        .map_or("undefined".to_owned(), |s| (*s).to_owned())
}

impl Scenario {
    pub fn document(&self) -> PolicyDocument {
        let mut d = PolicyDocument::new(self.policy.clone());
        for (i, (perms, inh)) in self.roles.iter().enumerate() {
            d = d.with_role(
                ROLES[i],
                Role::granting(perms.iter().cloned()).inheriting(inh.iter().map(|j| ROLES[*j])),
            );
        }
        for (s, roles) in &self.assignments {
            d = d.with_assignment(SUBJECTS[*s], roles.iter().map(|j| ROLES[*j]));
        }
        d
    }

    pub fn engine(&self) -> PolicyEngine {
        PolicyEngine::builder(server())
            .document(self.document())
            .tools(&self.tools)
            .build()
            .unwrap()
    }

    pub fn chain(&self) -> CallChain {
        chain(
            self.chain
                .iter()
                .map(|(here, t, s)| Hop {
                    server: if *here {
                        server()
                    } else {
                        etdi_core::ServerId::parse("other").unwrap()
                    },
                    tool: id(TOOLS[*t]),
                    principal: SUBJECTS[*s].into(),
                })
                .collect(),
        )
    }

    pub fn principal(&self) -> Principal {
        let (s, scopes, roles) = &self.principal;
        Principal::new(SUBJECTS[*s], etdi_core::AuthMethod::BearerJwt)
            .with_scopes(scopes.iter().cloned())
            .with_roles(roles.iter().map(|r| role_name(*r)))
    }

    pub fn hop_principals(&self) -> Vec<Principal> {
        self.chain
            .iter()
            .zip(&self.hop_rights)
            .map(|((_, _, s), (scopes, roles))| {
                Principal::new(SUBJECTS[*s], etdi_core::AuthMethod::BearerJwt)
                    .with_scopes(scopes.iter().cloned())
                    .with_roles(roles.iter().map(|r| role_name(*r)))
            })
            .collect()
    }

    pub fn decide(&self) -> etdi_core::Decision {
        let e = self.engine();
        let chain = self.chain();
        let p = self.principal();
        let hp = self.hop_principals();
        let callee = id(TOOLS[self.callee]);
        e.decide(&CallRequest::chained(&p, &callee, &chain, &hp).signed(self.signed))
    }
}
