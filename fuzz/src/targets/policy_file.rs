//! TOML policy files (`PolicyDocument::from_toml`) and the decisions of an
//! engine built from them over the fixture's tool definitions.
//!
//! Invariants, for every file that loads and builds: no panic; `decide`
//! and `explain` agree and are deterministic; more grants never turn an
//! allow into a deny; an allowed direct call is to a visible tool, and
//! `visible_tools` agrees with `is_visible`; an allowed call respects the
//! effective depth limit and request-signing rule; and a policy file can
//! never loosen what a tool definition demands (its signing requirements,
//! its depth limit, its empty caller list).

use etdi_core::{AuthMethod, CallChain, Hop, Principal, ServerId, ToolId};
use etdi_policy::{CallRequest, PolicyDocument, PolicyEngine};

use super::{seed, text};
use crate::fixture::{SERVER_A, fixture};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "policy_file",
    about: "TOML policy files, engine build, decide/explain/visible_tools invariants",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, DICTIONARY],
};

const DICTIONARY: &[&[u8]] = &[
    b"\n",
    b"=",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"\"\"\"",
    b"'''",
    b"#",
    b".",
    b"security_level",
    b"\"basic\"",
    b"\"enhanced\"",
    b"\"strict\"",
    b"\"high\"",
    b"require_tool_signatures",
    b"require_request_signing",
    b"enable_call_chain_validation",
    b"max_call_depth",
    b"audit_all_calls",
    b"filter_tools_list",
    b"allowed_callers",
    b"blocked_callers",
    b"allowed_callees",
    b"blocked_callees",
    b"[roles.",
    b"[roles.admin]",
    b"permissions",
    b"inherits",
    b"[assignments]",
    b"\"alice@example.com\"",
    b"[tools.\"",
    b"\"file:*\"",
    b"\"file:read\"",
    b"\"file:delete\"",
    b"\"audit:log\"",
    b"\"*\"",
    b"\"com.example.files/read\"",
    b"\"com.example.files/delete\"",
    b"\"com.a/agent\"",
    b"true",
    b"false",
    b"0",
    b"33",
    b"1979-05-27T07:32:00Z",
    b"inf",
    b"nan",
    b"0x10",
];

const SUBJECT: &str = "alice@example.com";

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let input = text(data);
    let Ok(doc) = PolicyDocument::from_toml(input.as_ref(), "fuzz.toml") else {
        return;
    };
    let Ok(server) = ServerId::parse("files") else {
        panic!("fuzz harness: server id");
    };
    let Ok(engine) = PolicyEngine::builder(server)
        .document(doc)
        .tools(&f.tools)
        .build()
    else {
        return;
    };

    let small = Principal::new(SUBJECT, AuthMethod::BearerJwt)
        .with_scopes(["file:read"])
        .with_roles(["reader"]);
    let big = Principal::new(SUBJECT, AuthMethod::BearerJwt)
        .with_scopes(["file:read", "file:*", "audit:log", "admin:*"])
        .with_roles(["reader", "editor", "admin", "ops"]);
    let hop_principal = Principal::new(SUBJECT, AuthMethod::BearerJwt)
        .with_scopes(["file:*", "audit:log"])
        .with_roles(["admin"]);
    let mut chain = CallChain::new();
    let pushed = match (ServerId::parse(SERVER_A), ToolId::parse("com.a/agent")) {
        (Ok(server), Ok(tool)) => chain.push(Hop {
            server,
            tool,
            principal: SUBJECT.to_owned(),
        }),
        _ => panic!("fuzz harness: hop ids"),
    };
    if pushed.is_err() {
        panic!("fuzz harness: one hop is too long a chain");
    }
    let hops = [hop_principal];

    for def in &f.tools {
        let tool = &def.id;
        let Some(eff) = engine.effective_security(tool) else {
            panic!("the engine lost tool {tool}");
        };
        assert!(
            (1..=32).contains(&eff.max_call_depth),
            "depth limit {}",
            eff.max_call_depth
        );
        // A tool's own demands survive any policy file.
        if def.security.require_request_signing {
            assert!(
                eff.require_request_signing,
                "policy loosened request signing for {tool}"
            );
        }
        if def.security.require_signature {
            assert!(
                eff.require_signature,
                "policy loosened the signature rule for {tool}"
            );
        }
        if let Some(max) = def.call_chain.max_depth {
            assert!(
                eff.max_call_depth <= max,
                "policy raised {tool}'s depth limit"
            );
        }

        for signed in [false, true] {
            for chained in [false, true] {
                let call = Call {
                    tool,
                    chain: &chain,
                    hops: &hops,
                    signed,
                    chained,
                };
                check_request(&engine, &small, &big, &call, &eff);
            }
        }
        if def
            .call_chain
            .allowed_callers
            .as_ref()
            .is_some_and(|a| a.is_empty())
        {
            let r = CallRequest::chained(&big, tool, &chain, &hops).signed(true);
            assert!(
                !engine.decide(&r).is_allowed(),
                "a policy file let a chain call {tool}, whose definition admits no caller"
            );
        }
    }

    for p in [&small, &big] {
        let visible = engine.visible_tools(p);
        for def in &f.tools {
            assert_eq!(
                visible.contains(&&def.id),
                engine.is_visible(p, &def.id),
                "visible_tools and is_visible disagree on {}",
                def.id
            );
        }
    }
    let small_visible = engine.visible_tools(&small);
    let big_visible = engine.visible_tools(&big);
    assert!(
        small_visible.iter().all(|t| big_visible.contains(t)),
        "more grants made a tool invisible"
    );
}

/// One kind of call, made by the small and the big principal.
struct Call<'a> {
    tool: &'a ToolId,
    chain: &'a CallChain,
    hops: &'a [Principal],
    signed: bool,
    chained: bool,
}

fn check_request(
    engine: &PolicyEngine,
    small: &Principal,
    big: &Principal,
    call: &Call<'_>,
    eff: &etdi_policy::EffectiveSecurity,
) {
    let Call {
        tool,
        chain,
        hops,
        signed,
        chained,
    } = *call;
    let request = |p| {
        let r = if chained {
            CallRequest::chained(p, tool, chain, hops)
        } else {
            CallRequest::direct(p, tool)
        };
        r.signed(signed)
    };
    let (rs, rb) = (request(small), request(big));
    let ds = engine.decide(&rs);
    let db = engine.decide(&rb);
    assert_eq!(ds, engine.decide(&rs), "decide is not deterministic");
    assert_eq!(
        ds,
        engine.explain(&rs).decision,
        "decide and explain disagree"
    );
    assert_eq!(
        db,
        engine.explain(&rb).decision,
        "decide and explain disagree"
    );
    if ds.is_allowed() {
        assert!(
            db.is_allowed(),
            "more grants turned an allow into a deny: {db:?}"
        );
    }
    for (r, d, p) in [(&rs, &ds, small), (&rb, &db, big)] {
        if d.is_allowed() {
            assert!(
                r.depth() <= eff.max_call_depth,
                "allowed beyond the depth limit"
            );
            assert!(signed || !eff.require_request_signing, "allowed unsigned");
            if !chained {
                assert!(
                    engine.is_visible(p, tool),
                    "allowed a call to an invisible tool"
                );
            }
        }
    }
}

/// Policies in the documented format.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    vec![
        seed(
            "documented",
            r#"# Server-wide settings
security_level = "strict"
max_call_depth = 4
require_request_signing = true
blocked_callees = ["com.example/shell"]

[roles.reader]
permissions = ["file:read"]

[roles.editor]
permissions = ["file:write"]
inherits = ["reader"]

[assignments]
"alice@example.com" = ["editor"]

[tools."com.example.files/delete"]
permissions = ["file:delete"]
max_call_depth = 1
require_request_signing = true
allowed_callers = []
"#,
        ),
        seed(
            "loose",
            r#"security_level = "basic"
require_tool_signatures = false
require_request_signing = false
enable_call_chain_validation = false
max_call_depth = 32
allowed_callers = ["com.a/agent"]

[roles.admin]
permissions = ["file:*", "audit:log", "admin:*"]

[roles.ops]
permissions = ["audit:log"]
inherits = ["admin"]

[tools."com.example.files/read"]
max_call_depth = 32
allowed_callers = ["com.a/agent"]
blocked_callers = []
"#,
        ),
        seed("empty", ""),
        seed(
            "enhanced",
            "security_level = \"enhanced\"\nfilter_tools_list = true\naudit_all_calls = true\n",
        ),
    ]
}
