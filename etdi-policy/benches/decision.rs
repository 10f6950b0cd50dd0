//! Decision latency of the built-in engine at 10, 100 and 1000 tools with 50
//! roles, beside cedar-policy evaluating equivalent policies (one `permit`
//! per tool) in the same run. Prints p50/p99 per decision and the ratios,
//! then runs short criterion benchmarks for the medians.
//!
//! `cargo bench -p etdi-policy --features cedar --bench decision`

// Benchmark code: a failed unwrap aborts the run, which is what we want;
// `criterion_group!` generates an undocumented function.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use cedar_policy::{
    Authorizer as CedarAuthorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use criterion::{Criterion, criterion_group};
use etdi_core::{
    AuthMethod, CallChain, Hop, Permission, Principal, SecurityLevel, SecurityPolicy, ServerId,
    ToolDefinition, ToolId,
};
use etdi_policy::cedar::{CedarEngine, equivalent_policies};
use etdi_policy::{CallRequest, PolicyDocument, PolicyEngine, Role};
use serde_json::json;

const ROLES: usize = 50;
const SIZES: [usize; 3] = [10, 100, 1000];

/// A small deterministic generator (no dependency needed for this).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Setup {
    tools: Vec<ToolDefinition>,
    doc: PolicyDocument,
    principals: Vec<Principal>,
    server: ServerId,
}

fn setup(n: usize) -> Setup {
    // Role i grants `svc{i}:*` on its service and a read on the next; every
    // fifth role starts a new inheritance chain.
    let mut doc = PolicyDocument::new(SecurityPolicy::new(SecurityLevel::Enhanced));
    for i in 0..ROLES {
        let mut role = Role::granting([
            Permission::parse(&format!("svc{i}:*")).unwrap(),
            Permission::parse(&format!("svc{}:read", (i + 1) % ROLES)).unwrap(),
        ]);
        if i % 5 != 0 {
            role = role.inheriting([format!("role{}", i - 1)]);
        }
        doc = doc.with_role(format!("role{i}"), role);
    }
    doc = doc.with_assignment("svc-account", ["role0", "role7"]);
    let tools: Vec<ToolDefinition> = (0..n)
        .map(|j| {
            let svc = j % ROLES;
            let op = if j % 3 == 0 {
                "read".to_owned()
            } else {
                format!("op{j}")
            };
            ToolDefinition::from_value(json!({
                "id": format!("com.example.svc{svc}/tool{j}"),
                "name": format!("tool{j}"),
                "version": "1.0.0",
                "provider": {"id": "com.example", "name": "Example"},
                "inputSchema": {"type": "object"},
                "permissions": [format!("svc{svc}:{op}"), "audit:log"],
            }))
            .unwrap()
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let principals = (0..64)
        .map(|k| {
            let roles: Vec<String> = (0..3)
                .map(|_| format!("role{}", rng.below(ROLES)))
                .collect();
            let mut scopes = vec!["openid".to_owned(), "profile".to_owned()];
            if k % 4 != 0 {
                scopes.push("audit:log".to_owned());
            }
            Principal::new(format!("user{k}"), AuthMethod::BearerJwt)
                .with_roles(roles)
                .with_scopes(scopes)
        })
        .collect();
    Setup {
        tools,
        doc,
        principals,
        server: ServerId::parse("bench").unwrap(),
    }
}

/// `(principal index, tool index)` pairs to decide, the same for every
/// engine: half of them a tool of a service one of the principal's roles
/// covers (mostly allowed), half a random tool (mostly denied).
fn workload(s: &Setup, count: usize) -> Vec<(usize, usize)> {
    let mut rng = Rng(42);
    let n = s.tools.len();
    (0..count)
        .map(|i| {
            let p = rng.below(s.principals.len());
            if i % 2 == 0 {
                let roles: Vec<&String> = s.principals[p].roles.iter().collect();
                let svc: usize = roles[rng.below(roles.len())]["role".len()..]
                    .parse()
                    .unwrap();
                if svc < n {
                    let k = rng.below(n.div_ceil(ROLES).max(1));
                    let t = svc + ROLES * k;
                    return (p, if t < n { t } else { svc });
                }
            }
            (p, rng.below(n))
        })
        .collect()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times `f` over `work` in batches of `batch` calls; one sample per batch,
/// in nanoseconds per call. Returns (p50, p99, allowed share).
fn measure(
    work: &[(usize, usize)],
    batch: usize,
    mut f: impl FnMut(usize, usize) -> bool,
) -> (f64, f64, f64) {
    // Warm up caches and branch predictors.
    for &(p, t) in work.iter().take(work.len() / 10) {
        black_box(f(p, t));
    }
    let mut samples = Vec::with_capacity(work.len() / batch + 1);
    let mut allowed = 0usize;
    for chunk in work.chunks(batch) {
        let start = Instant::now();
        for &(p, t) in chunk {
            if black_box(f(p, t)) {
                allowed += 1;
            }
        }
        samples.push(start.elapsed().as_nanos() as f64 / chunk.len() as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        allowed as f64 / work.len() as f64,
    )
}

/// Plain cedar-policy: the same policies, entities built once, requests
/// pre-built; only `is_authorized` is timed. This is Cedar's best case.
struct RawCedar {
    policies: PolicySet,
    entities: Entities,
    requests: Vec<Vec<Request>>,
    authorizer: CedarAuthorizer,
}

fn raw_cedar(s: &Setup, policies: &str) -> RawCedar {
    let ty = |t: &str| EntityTypeName::from_str(t).unwrap();
    let uid = |t: &str, id: &str| EntityUid::from_type_name_and_id(ty(t), EntityId::new(id));
    let mut entities = Vec::new();
    for (name, role) in &s.doc.roles {
        let parents: HashSet<EntityUid> =
            role.inherits.iter().map(|p| uid("Etdi::Role", p)).collect();
        entities.push(Entity::new_no_attrs(uid("Etdi::Role", name), parents));
    }
    for p in &s.principals {
        let parents: HashSet<EntityUid> = p.roles.iter().map(|r| uid("Etdi::Role", r)).collect();
        let scopes = RestrictedExpression::new_set(
            p.scopes
                .iter()
                .map(|s| RestrictedExpression::new_string(s.clone())),
        );
        entities.push(
            Entity::new(
                uid("Etdi::User", &p.subject),
                [("scopes".to_owned(), scopes)].into(),
                parents,
            )
            .unwrap(),
        );
    }
    for t in &s.tools {
        entities.push(Entity::new_no_attrs(
            uid("Etdi::Tool", t.id.as_str()),
            HashSet::new(),
        ));
    }
    let action = EntityUid::from_str(r#"Etdi::Action::"call""#).unwrap();
    let requests = s
        .principals
        .iter()
        .map(|p| {
            s.tools
                .iter()
                .map(|t| {
                    let ctx = Context::from_pairs([
                        ("depth".to_owned(), RestrictedExpression::new_long(1)),
                        ("chained".to_owned(), RestrictedExpression::new_bool(false)),
                        (
                            "caller".to_owned(),
                            RestrictedExpression::new_string(String::new()),
                        ),
                        ("signed".to_owned(), RestrictedExpression::new_bool(false)),
                    ])
                    .unwrap();
                    Request::new(
                        uid("Etdi::User", &p.subject),
                        action.clone(),
                        uid("Etdi::Tool", t.id.as_str()),
                        ctx,
                        None,
                    )
                    .unwrap()
                })
                .collect()
        })
        .collect();
    RawCedar {
        policies: PolicySet::from_str(policies).unwrap(),
        entities: Entities::from_entities(entities, None).unwrap(),
        requests,
        authorizer: CedarAuthorizer::new(),
    }
}

struct Engines {
    setup: Setup,
    builtin: PolicyEngine,
    cedar: CedarEngine,
    raw: RawCedar,
    ids: Vec<ToolId>,
    chain: CallChain,
}

fn engines(n: usize) -> Engines {
    let setup = setup(n);
    let policies = equivalent_policies(&setup.doc, &setup.tools);
    let builder = PolicyEngine::builder(setup.server.clone())
        .document(setup.doc.clone())
        .tools(&setup.tools);
    let builtin = builder.clone().build().unwrap();
    let cedar = builder.build_cedar(&policies).unwrap();
    let raw = raw_cedar(&setup, &policies);
    let ids = setup.tools.iter().map(|t| t.id.clone()).collect();
    let chain = CallChain::try_from(vec![Hop {
        server: ServerId::parse("front").unwrap(),
        tool: ToolId::parse("front/agent").unwrap(),
        principal: "svc-account".into(),
    }])
    .unwrap();
    Engines {
        setup,
        builtin,
        cedar,
        raw,
        ids,
        chain,
    }
}

fn report() {
    println!();
    println!("decision latency per call, {ROLES} roles, one Cedar policy per tool");
    println!(
        "{:>6} {:>8} | {:>14} {:>14} | {:>14} {:>14} | {:>16} {:>16} | {:>10} {:>10}",
        "tools",
        "policies",
        "built-in p50",
        "built-in p99",
        "cedar p50",
        "cedar p99",
        "cedar-eng p50",
        "cedar-eng p99",
        "x p50",
        "x p99"
    );
    for n in SIZES {
        let e = engines(n);
        let s = &e.setup;
        let work = workload(s, 200_000);
        let (bp50, bp99, allowed) = measure(&work, 8, |p, t| {
            e.builtin
                .decide(&CallRequest::direct(&s.principals[p], &e.ids[t]))
                .is_allowed()
        });
        let cedar_work = &work[..work.len() / if n >= 1000 { 100 } else { 20 }];
        let (cp50, cp99, cedar_allowed) = measure(cedar_work, 1, |p, t| {
            let r = e.raw.authorizer.is_authorized(
                &e.raw.requests[p][t],
                &e.raw.policies,
                &e.raw.entities,
            );
            r.decision() == cedar_policy::Decision::Allow
        });
        let (ep50, ep99, _) = measure(cedar_work, 1, |p, t| {
            e.cedar
                .decide(&CallRequest::direct(&s.principals[p], &e.ids[t]))
                .is_allowed()
        });
        println!(
            "{:>6} {:>8} | {:>11.0} ns {:>11.0} ns | {:>11.0} ns {:>11.0} ns | {:>13.0} ns {:>13.0} ns | {:>9.0}x {:>9.0}x",
            n,
            n,
            bp50,
            bp99,
            cp50,
            cp99,
            ep50,
            ep99,
            cp50 / bp50,
            cp99 / bp99
        );
        println!(
            "{:>6}          allowed: built-in {:.0}%, cedar {:.0}% of its sample",
            "",
            allowed * 100.0,
            cedar_allowed * 100.0
        );
        // A chained call: one hop whose principal's rights must also hold.
        let hop = [Principal::new("svc-account", AuthMethod::Local).with_scopes(["audit:log"])];
        let (hp50, hp99, _) = measure(&work[..50_000], 8, |p, t| {
            e.builtin
                .decide(&CallRequest::chained(
                    &s.principals[p],
                    &e.ids[t],
                    &e.chain,
                    &hop,
                ))
                .is_allowed()
        });
        println!(
            "{:>6}          built-in, one-hop chain: p50 {hp50:.0} ns, p99 {hp99:.0} ns",
            ""
        );
    }
    println!();
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700));
    for n in SIZES {
        let e = engines(n);
        let s = &e.setup;
        let work = workload(s, 1024);
        let mut i = 0usize;
        g.bench_function(format!("builtin/{n}"), |b| {
            b.iter(|| {
                let (p, t) = work[i % work.len()];
                i += 1;
                black_box(
                    e.builtin
                        .decide(&CallRequest::direct(&s.principals[p], &e.ids[t])),
                )
            })
        });
        let mut i = 0usize;
        g.bench_function(format!("cedar/{n}"), |b| {
            b.iter(|| {
                let (p, t) = work[i % work.len()];
                i += 1;
                black_box(e.raw.authorizer.is_authorized(
                    &e.raw.requests[p][t],
                    &e.raw.policies,
                    &e.raw.entities,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, criterion_benches);

fn main() {
    report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
