//! Signed call-chain hops (PROTOCOL §7): a three-server chain, the links
//! between hops, per-hop scopes, binding into a request signature, replay of
//! the last hop.

// Test helpers outside `#[test]` functions may panic too: clippy.toml only
// exempts the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use etdi_core::{ServerId, ToolId};
use etdi_crypto::chain::{ChainError, ChainVerifier, HopError, HopSigner, HopToSign, PendingChain};
use etdi_crypto::replay::{MemoryNonceStore, ReplayError};
use etdi_crypto::request::{CallToSign, ReceivedCall, RequestSigner, RequestVerifier};
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{Algorithm, CryptoProvider, JwsHeader, SigningKey, UnixTime, jws};
use serde_json::json;

const A: &str = "https://a.example/mcp";
const B: &str = "https://b.example/mcp";
const C: &str = "https://c.example/mcp";
const T0: u64 = 1_700_000_000;

fn t(s: u64) -> UnixTime {
    UnixTime::from_secs(T0 + s)
}

struct Server {
    id: &'static str,
    key: SigningKey,
}

fn server(id: &'static str, alg: Algorithm) -> Server {
    Server {
        id,
        key: SigningKey::generate(CryptoProvider::get_default(), alg).unwrap(),
    }
}

fn scope(s: &[&str]) -> BTreeSet<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

fn hop(
    from: &Server,
    chain: &[String],
    tool: &str,
    principal: &str,
    sc: &[&str],
    to: &str,
    now: UnixTime,
) -> String {
    let tool = ToolId::parse(tool).unwrap();
    let sc = scope(sc);
    HopSigner::new(ServerId::parse(from.id).unwrap())
        .append(
            &from.key,
            chain,
            &HopToSign {
                tool: &tool,
                principal,
                scope: &sc,
                audience: to,
            },
            now,
        )
        .unwrap()
}

fn trust(servers: &[&Server]) -> IssuerKeys {
    let mut keys = IssuerKeys::new();
    for s in servers {
        keys.add(s.id, s.key.verifying_key().clone());
    }
    keys
}

/// A calls B (hop 0), B calls C (hop 1); returns the chain C receives.
fn two_hops(a: &Server, b: &Server) -> Vec<String> {
    let h0 = hop(
        a,
        &[],
        "com.a/agent",
        "alice",
        &["file:read", "file:write"],
        B,
        t(0),
    );
    let h1 = hop(
        b,
        std::slice::from_ref(&h0),
        "com.b/summarise",
        "alice",
        &["file:read"],
        C,
        t(1),
    );
    vec![h0, h1]
}

fn verified(p: Result<PendingChain, ChainError>) -> etdi_crypto::chain::VerifiedChain {
    p.unwrap().record_in(&MemoryNonceStore::new(10)).unwrap()
}

#[test]
fn a_chain_verifies_and_yields_hops_and_scopes() {
    let a = server(A, Algorithm::ES256);
    let b = server(B, Algorithm::RS256);
    let chain = two_hops(&a, &b);
    let v = ChainVerifier::new(C, trust(&[&a, &b]));
    let out = verified(v.verify(&chain, t(2)));
    let hops = out.call_chain().hops();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0].server.as_str(), A);
    assert_eq!(hops[1].tool.as_str(), "com.b/summarise");
    assert_eq!(hops[1].principal, "alice");
    let scopes: Vec<_> = out.scopes().cloned().collect();
    assert_eq!(
        scopes,
        vec![scope(&["file:read", "file:write"]), scope(&["file:read"])]
    );
    assert!(
        verified(v.verify::<String>(&[], t(2)))
            .call_chain()
            .hops()
            .is_empty()
    );
}

#[test]
fn the_request_signature_binds_the_decoded_chain() {
    let a = server(A, Algorithm::ES256);
    let b = server(B, Algorithm::ES256);
    let chain = two_hops(&a, &b);
    let out = verified(ChainVerifier::new(C, trust(&[&a, &b])).verify(&chain, t(2)));
    let args = json!({"q": 1});
    let args = args.as_object();
    // B signs its onward request to C over the chain it sends.
    let token = RequestSigner::new(B)
        .sign(
            &b.key,
            &CallToSign {
                audience: C,
                tool: "summarise",
                arguments: args,
                chain: out.call_chain(),
            },
            t(2),
        )
        .unwrap();
    let rv = RequestVerifier::new(C, trust(&[&b]));
    let call = ReceivedCall::tools_call("summarise", args, out.call_chain());
    assert!(rv.verify(&token, &call, t(2)).is_ok());
    // A request signed over a shorter chain does not match this one.
    let shorter = verified(ChainVerifier::new(B, trust(&[&a])).verify(&chain[..1], t(2)));
    let call = ReceivedCall::tools_call("summarise", args, shorter.call_chain());
    assert!(rv.verify(&token, &call, t(2)).is_err());
}

#[test]
fn every_single_byte_change_of_a_hop_is_rejected() {
    let a = server(A, Algorithm::ES256);
    let b = server(B, Algorithm::ES256);
    let chain = two_hops(&a, &b);
    let v = ChainVerifier::new(C, trust(&[&a, &b]));
    for which in 0..2 {
        let bytes = chain[which].as_bytes().to_vec();
        for i in 0..bytes.len() {
            let mut m = bytes.clone();
            m[i] ^= 0x01;
            let Ok(s) = String::from_utf8(m) else {
                continue;
            };
            let mut mutated = chain.clone();
            mutated[which] = s;
            assert!(v.verify(&mutated, t(2)).is_err(), "hop {which} byte {i}");
        }
    }
}

#[test]
fn structure_is_checked() {
    let a = server(A, Algorithm::ES256);
    let b = server(B, Algorithm::ES256);
    let chain = two_hops(&a, &b);
    let v = ChainVerifier::new(C, trust(&[&a, &b]));

    // Reordered or dropped hops break idx and prev.
    let err = v
        .verify(&[chain[1].clone(), chain[0].clone()], t(2))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::Hop {
                index: 0,
                reason: HopError::WrongIndex { .. }
            }
        ),
        "{err:?}"
    );
    // Only hop 1, addressed to C: wrong idx.
    assert!(v.verify(&chain[1..], t(2)).is_err());
    // Only hop 0: addressed to B, not C.
    assert!(matches!(
        v.verify(&chain[..1], t(2)).unwrap_err(),
        ChainError::Hop {
            index: 0,
            reason: HopError::WrongAudience { .. }
        }
    ));
    // A hop 1 linked to a different hop 0.
    let other_h0 = hop(&a, &[], "com.a/agent", "alice", &["file:read"], B, t(0));
    assert!(matches!(
        v.verify(&[other_h0, chain[1].clone()], t(2)).unwrap_err(),
        ChainError::Hop {
            index: 1,
            reason: HopError::BrokenLink
        }
    ));
    // Hop 0 addressed elsewhere than the server that signed hop 1.
    let h0 = hop(
        &a,
        &[],
        "com.a/agent",
        "alice",
        &["file:read"],
        "https://x.example",
        t(0),
    );
    let h1 = hop(
        &b,
        std::slice::from_ref(&h0),
        "com.b/summarise",
        "alice",
        &["file:read"],
        C,
        t(1),
    );
    assert!(matches!(
        v.verify(&[h0, h1], t(2)).unwrap_err(),
        ChainError::Hop {
            index: 0,
            reason: HopError::WrongAudience { .. }
        }
    ));
    // An untrusted server in the middle.
    let v_only_b = ChainVerifier::new(C, trust(&[&b]));
    assert!(matches!(
        v_only_b.verify(&chain, t(2)).unwrap_err(),
        ChainError::Hop {
            index: 0,
            reason: HopError::UnknownIssuer { .. }
        }
    ));
    // A server signing with its key but claiming to be another server.
    let mut claims = json!({
        "etdi_ver": 1, "idx": 0, "iss": A, "server": "https://evil.example", "tool": "com.a/agent",
        "principal": "alice", "scope": "file:read", "aud": C, "iat": T0, "exp": T0 + 60,
        "jti": "AAAAAAAAAAAAAAAAAAAAAAAA"
    });
    let make = |c: &serde_json::Value| {
        jws::sign(
            &a.key,
            &JwsHeader::for_key(&a.key).with_typ("etdi-hop+jwt"),
            &serde_json::to_vec(c).unwrap(),
        )
        .unwrap()
    };
    assert!(matches!(
        v.verify(&[make(&claims)], t(2)).unwrap_err(),
        ChainError::Hop {
            index: 0,
            reason: HopError::ServerNotIssuer
        }
    ));
    claims["server"] = json!(A);
    assert!(v.verify(&[make(&claims)], t(2)).is_ok());
    claims["prev"] = json!(etdi_core::Digest::of(b"x"));
    assert!(matches!(
        v.verify(&[make(&claims)], t(2)).unwrap_err(),
        ChainError::Hop {
            index: 0,
            reason: HopError::BrokenLink
        }
    ));
    // Expired hop.
    assert!(matches!(
        v.verify(&chain, t(200)).unwrap_err(),
        ChainError::Hop {
            reason: HopError::Stale(_),
            ..
        }
    ));
    // Too long.
    let long: Vec<String> = (0..33).map(|_| chain[0].clone()).collect();
    assert_eq!(
        v.verify(&long, t(2)).unwrap_err(),
        ChainError::TooLong { len: 33 }
    );
}

#[test]
fn the_last_hop_is_replay_protected_and_earlier_hops_may_repeat() {
    let a = server(A, Algorithm::ES256);
    let b = server(B, Algorithm::ES256);
    let h0 = hop(&a, &[], "com.a/agent", "alice", &["file:read"], B, t(0));
    let store = MemoryNonceStore::new(10);
    let v = ChainVerifier::new(C, trust(&[&a, &b]));
    // B makes two onward calls to C within one incoming request: both carry
    // hop 0, each with its own hop 1.
    for _ in 0..2 {
        let h1 = hop(
            &b,
            std::slice::from_ref(&h0),
            "com.b/summarise",
            "alice",
            &["file:read"],
            C,
            t(1),
        );
        let chain = vec![h0.clone(), h1];
        v.verify(&chain, t(2)).unwrap().record_in(&store).unwrap();
        // The very same chain again is a replay.
        let again = v
            .verify(&chain, t(3))
            .unwrap()
            .record_in(&store)
            .unwrap_err();
        assert_eq!(again, ChainError::Replay(ReplayError::Replayed));
        assert_eq!(again.reason_code(), "replay");
    }
}

#[test]
fn signer_limits() {
    let a = server(A, Algorithm::ES256);
    let tool = ToolId::parse("com.a/x").unwrap();
    let bad_scope = scope(&["file read"]);
    let signer = HopSigner::new(ServerId::parse(A).unwrap());
    let hop = HopToSign {
        tool: &tool,
        principal: "p",
        scope: &bad_scope,
        audience: B,
    };
    assert!(signer.append::<String>(&a.key, &[], &hop, t(0)).is_err());
    let full: Vec<String> = (0..32).map(|i| i.to_string()).collect();
    let ok_scope = scope(&["file:read"]);
    let hop = HopToSign {
        tool: &tool,
        principal: "p",
        scope: &ok_scope,
        audience: B,
    };
    assert!(signer.append(&a.key, &full, &hop, t(0)).is_err());
    assert!(
        HopSigner::new(ServerId::parse(A).unwrap())
            .with_lifetime(301)
            .is_err()
    );
}
