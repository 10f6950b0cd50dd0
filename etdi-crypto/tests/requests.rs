//! Signed requests (PROTOCOL §6, §8.2): round trip, tamper detection at
//! every byte, replay, freshness, and rotation overlap.

// Test helpers outside `#[test]` functions may panic too: clippy.toml only
// exempts the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use etdi_core::{AuthMethod, CallChain, Hop, Principal, ServerId, ToolId};
use etdi_crypto::claims::{Freshness, FreshnessError};
use etdi_crypto::manager::{KeyManager, KeyManagerConfig};
use etdi_crypto::replay::{MemoryNonceStore, ReplayError};
use etdi_crypto::request::{
    CallToSign, ReceivedCall, RequestError, RequestSigner, RequestVerifier,
};
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{Algorithm, CryptoProvider, JwsHeader, SigningKey, UnixTime, jws};
use serde_json::{Map, Value, json};

const AUD: &str = "https://tools.example.com/mcp";
const T0: u64 = 1_700_000_000;

fn t(s: u64) -> UnixTime {
    UnixTime::from_secs(T0 + s)
}

fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(CryptoProvider::get_default(), alg).unwrap()
}

fn args() -> Map<String, Value> {
    json!({"path": "/etc/hosts", "limit": 10, "flags": ["a", "b"], "deep": {"x": 1.5}})
        .as_object()
        .unwrap()
        .clone()
}

fn verifier(k: &SigningKey) -> RequestVerifier {
    let mut issuers = IssuerKeys::new();
    issuers.add("client-1", k.verifying_key().clone());
    RequestVerifier::new(AUD, issuers)
}

fn sign(
    k: &SigningKey,
    tool: &str,
    a: Option<&Map<String, Value>>,
    chain: &CallChain,
    now: UnixTime,
) -> String {
    RequestSigner::new("client-1")
        .sign(
            k,
            &CallToSign {
                audience: AUD,
                tool,
                arguments: a,
                chain,
            },
            now,
        )
        .unwrap()
}

#[test]
fn round_trip_for_every_algorithm() {
    let chain = CallChain::new();
    let a = args();
    for alg in Algorithm::ALL {
        let k = key(alg);
        let token = sign(&k, "read_file", Some(&a), &chain, t(0));
        let v = verifier(&k);
        let store = MemoryNonceStore::new(100);
        let call = ReceivedCall::tools_call("read_file", Some(&a), &chain);
        let ok = v
            .verify(&token, &call, t(1))
            .unwrap()
            .record_in(&store)
            .unwrap();
        assert_eq!(ok.issuer(), "client-1");
        assert_eq!(ok.algorithm(), alg);
        assert_eq!(ok.key_id(), k.kid());
        assert!(ok.jti().len() >= 22);
    }
}

#[test]
fn every_single_byte_change_of_the_token_is_rejected() {
    let chain = CallChain::new();
    let a = args();
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let k = key(alg);
        let token = sign(&k, "read_file", Some(&a), &chain, t(0));
        let v = verifier(&k);
        let call = ReceivedCall::tools_call("read_file", Some(&a), &chain);
        assert!(v.verify(&token, &call, t(1)).is_ok());
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            // Two substitutions per position: a neighbour in ASCII and a
            // different base64url character (or a dot).
            for replacement in [bytes[i] ^ 0x01, if bytes[i] == b'A' { b'B' } else { b'A' }] {
                let mut m = bytes.to_vec();
                m[i] = replacement;
                let Ok(mutated) = String::from_utf8(m) else {
                    continue;
                };
                assert!(
                    v.verify(&mutated, &call, t(1)).is_err(),
                    "{alg}: change at byte {i} accepted"
                );
            }
        }
        // Truncation and extension too.
        assert!(v.verify(&token[..token.len() - 1], &call, t(1)).is_err());
        assert!(v.verify(&format!("{token}A"), &call, t(1)).is_err());
    }
}

#[test]
fn every_single_byte_change_of_the_arguments_is_rejected() {
    let chain = CallChain::new();
    let a = args();
    let k = key(Algorithm::ES256);
    let token = sign(&k, "read_file", Some(&a), &chain, t(0));
    let v = verifier(&k);
    let canonical = etdi_core::canonical::canonical_json(&a).unwrap();
    let mut checked = 0;
    for i in 0..canonical.len() {
        for flip in [0x01u8, 0x20] {
            let mut m = canonical.clone();
            m[i] ^= flip;
            let Ok(text) = std::str::from_utf8(&m) else {
                continue;
            };
            // Bytes that no longer parse as JSON cannot reach a server as
            // arguments at all.
            let Ok(Value::Object(changed)) = etdi_core::canonical::parse_json(text) else {
                continue;
            };
            checked += 1;
            let call = ReceivedCall::tools_call("read_file", Some(&changed), &chain);
            assert_eq!(
                v.verify(&token, &call, t(1)).unwrap_err(),
                RequestError::Mismatch {
                    claim: "args_digest"
                },
                "change at byte {i} of {text}"
            );
        }
    }
    assert!(checked > 20, "only {checked} mutations parsed");
    // Absent arguments and `{}` are the same call; anything else is not.
    let empty = Map::new();
    let t2 = sign(&k, "ping", None, &chain, t(0));
    assert!(
        v.verify(
            &t2,
            &ReceivedCall::tools_call("ping", Some(&empty), &chain),
            t(1)
        )
        .is_ok()
    );
    assert!(
        v.verify(
            &t2,
            &ReceivedCall::tools_call("ping", Some(&a), &chain),
            t(1)
        )
        .is_err()
    );
}

#[test]
fn replay_inside_the_window_is_rejected_and_an_expired_request_by_time() {
    let chain = CallChain::new();
    let a = args();
    let k = key(Algorithm::ES256);
    let v = verifier(&k);
    let store = MemoryNonceStore::new(100);
    let call = ReceivedCall::tools_call("read_file", Some(&a), &chain);
    let token = sign(&k, "read_file", Some(&a), &chain, t(0));
    v.verify(&token, &call, t(1))
        .unwrap()
        .record_in(&store)
        .unwrap();
    let replay = v
        .verify(&token, &call, t(30))
        .unwrap()
        .record_in(&store)
        .unwrap_err();
    assert_eq!(replay, RequestError::Replay(ReplayError::Replayed));
    assert_eq!(replay.reason_code(), "replay");
    // Default lifetime 60 s + 30 s skew: at t+90 the request is stale by
    // time, and the store has let go of its nonce.
    assert!(v.verify(&token, &call, t(89)).is_ok());
    let stale = v.verify(&token, &call, t(90)).unwrap_err();
    assert!(
        matches!(stale, RequestError::Stale(FreshnessError::Expired { .. })),
        "{stale:?}"
    );
    assert_eq!(stale.reason_code(), "replay");
    store.evict_expired(t(90));
    assert!(store.is_empty());

    // Through the async trait object as well.
    let shared: &dyn etdi_crypto::replay::NonceStore = &store;
    let token = sign(&k, "read_file", Some(&a), &chain, t(100));
    let first = block_on(v.verify(&token, &call, t(100)).unwrap().record(shared));
    assert!(first.is_ok());
    let second = block_on(v.verify(&token, &call, t(101)).unwrap().record(shared));
    assert_eq!(
        second.unwrap_err(),
        RequestError::Replay(ReplayError::Replayed)
    );
}

#[test]
fn a_full_store_refuses_new_requests() {
    let chain = CallChain::new();
    let k = key(Algorithm::ES256);
    let v = verifier(&k);
    let store = MemoryNonceStore::new(2);
    let call = ReceivedCall::tools_call("ping", None, &chain);
    for _ in 0..2 {
        let token = sign(&k, "ping", None, &chain, t(0));
        v.verify(&token, &call, t(0))
            .unwrap()
            .record_in(&store)
            .unwrap();
    }
    let token = sign(&k, "ping", None, &chain, t(0));
    assert_eq!(
        v.verify(&token, &call, t(0))
            .unwrap()
            .record_in(&store)
            .unwrap_err(),
        RequestError::Replay(ReplayError::Full { capacity: 2 })
    );
}

#[test]
fn claims_must_match_what_was_received() {
    let a = args();
    let k = key(Algorithm::ES384);
    let v = verifier(&k);
    let direct = CallChain::new();
    let token = sign(&k, "read_file", Some(&a), &direct, t(0));

    let wrong_tool = ReceivedCall::tools_call("write_file", Some(&a), &direct);
    assert_eq!(
        v.verify(&token, &wrong_tool, t(0)).unwrap_err(),
        RequestError::Mismatch { claim: "tool" }
    );
    let mut wrong_method = ReceivedCall::tools_call("read_file", Some(&a), &direct);
    wrong_method.method = "resources/read";
    assert_eq!(
        v.verify(&token, &wrong_method, t(0)).unwrap_err(),
        RequestError::Mismatch {
            claim: "mcp_method"
        }
    );
    let hop = Hop {
        server: ServerId::parse("https://a.example").unwrap(),
        tool: ToolId::parse("com.example/x").unwrap(),
        principal: "alice".into(),
    };
    let chained = CallChain::try_from(vec![hop]).unwrap();
    let call = ReceivedCall::tools_call("read_file", Some(&a), &chained);
    assert_eq!(
        v.verify(&token, &call, t(0)).unwrap_err(),
        RequestError::Mismatch {
            claim: "chain_digest"
        }
    );

    let other_server = RequestVerifier::new("https://other.example/mcp", {
        let mut i = IssuerKeys::new();
        i.add("client-1", k.verifying_key().clone());
        i
    });
    let call = ReceivedCall::tools_call("read_file", Some(&a), &direct);
    assert_eq!(
        other_server.verify(&token, &call, t(0)).unwrap_err(),
        RequestError::WrongAudience
    );

    // The signer must be the authenticated caller.
    let mallory = Principal::new("mallory", AuthMethod::BearerJwt);
    assert!(matches!(
        v.verify(&token, &call.with_principal(&mallory), t(0))
            .unwrap_err(),
        RequestError::IssuerNotCaller { .. }
    ));
    let mut client = Principal::new("someone", AuthMethod::BearerJwt);
    client.client_id = Some("client-1".into());
    assert!(
        v.verify(&token, &call.with_principal(&client), t(0))
            .is_ok()
    );
}

#[test]
fn keys_come_only_from_the_issuer_registration() {
    let a = args();
    let chain = CallChain::new();
    let call = ReceivedCall::tools_call("read_file", Some(&a), &chain);
    let k = key(Algorithm::ES256);
    let token = sign(&k, "read_file", Some(&a), &chain, t(0));

    // Unknown issuer.
    let nobody = RequestVerifier::new(AUD, IssuerKeys::new());
    assert_eq!(
        nobody.verify(&token, &call, t(0)).unwrap_err(),
        RequestError::UnknownIssuer {
            issuer: "client-1".into()
        }
    );
    // Same issuer, another key registered.
    let other = key(Algorithm::ES256);
    assert!(matches!(
        verifier(&other).verify(&token, &call, t(0)).unwrap_err(),
        RequestError::UnknownKey { .. }
    ));
    // A key registered to someone else cannot sign for client-1.
    let mut issuers = IssuerKeys::new();
    issuers.add("client-2", k.verifying_key().clone());
    issuers.add("client-1", other.verifying_key().clone());
    assert!(matches!(
        RequestVerifier::new(AUD, issuers)
            .verify(&token, &call, t(0))
            .unwrap_err(),
        RequestError::UnknownKey { .. }
    ));
    // The allow-list applies.
    let strict = verifier(&k).with_algorithms([Algorithm::RS256]);
    assert!(matches!(
        strict.verify(&token, &call, t(0)).unwrap_err(),
        RequestError::AlgorithmNotAllowed { .. }
    ));
}

#[test]
fn hand_made_tokens_with_bad_claims_are_refused() {
    let k = key(Algorithm::ES256);
    let v = verifier(&k);
    let chain = CallChain::new();
    let call = ReceivedCall::tools_call("ping", None, &chain);
    let signer = RequestSigner::new("client-1");
    let base = signer
        .claims(
            &CallToSign {
                audience: AUD,
                tool: "ping",
                arguments: None,
                chain: &chain,
            },
            t(0),
        )
        .unwrap();
    let make = |claims: &Value, typ: &str| {
        jws::sign(
            &k,
            &JwsHeader::for_key(&k).with_typ(typ),
            &serde_json::to_vec(claims).unwrap(),
        )
        .unwrap()
    };
    let good = serde_json::to_value(&base).unwrap();
    assert!(v.verify(&make(&good, "etdi-req+jwt"), &call, t(0)).is_ok());

    // Wrong typ (an attestation cannot be replayed as a request).
    assert!(matches!(
        v.verify(&make(&good, "etdi-tool+jwt"), &call, t(0))
            .unwrap_err(),
        RequestError::Malformed { .. }
    ));
    let with = |k: &str, val: Value| {
        let mut c = good.clone();
        c[k] = val;
        c
    };
    assert_eq!(
        v.verify(
            &make(&with("etdi_ver", json!(2)), "etdi-req+jwt"),
            &call,
            t(0)
        )
        .unwrap_err(),
        RequestError::UnsupportedVersion { found: 2 }
    );
    // Lifetime over 300 s.
    let long = with("exp", json!(T0 + 301));
    assert_eq!(
        v.verify(&make(&long, "etdi-req+jwt"), &call, t(0))
            .unwrap_err(),
        RequestError::Stale(FreshnessError::Lifetime { max: 300 })
    );
    // Issued in the future beyond the skew.
    let future = with("iat", json!(T0 + 31));
    let future = {
        let mut f = future;
        f["exp"] = json!(T0 + 60);
        f
    };
    assert!(matches!(
        v.verify(&make(&future, "etdi-req+jwt"), &call, t(0))
            .unwrap_err(),
        RequestError::Stale(FreshnessError::NotYetValid { .. })
    ));
    // Short or non-base64url jti.
    for jti in ["short", "!!!!!!!!!!!!!!!!!!!!!!!!"] {
        assert!(matches!(
            v.verify(&make(&with("jti", json!(jti)), "etdi-req+jwt"), &call, t(0))
                .unwrap_err(),
            RequestError::Malformed { .. }
        ));
    }
    // Fractional times, missing claims, `aud` as an array.
    for bad in [
        with("iat", json!(1.5)),
        with("aud", json!([AUD])),
        with("args_digest", json!("sha256:00")),
        {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove("chain_digest");
            c
        },
    ] {
        assert!(matches!(
            v.verify(&make(&bad, "etdi-req+jwt"), &call, t(0))
                .unwrap_err(),
            RequestError::Malformed { .. }
        ));
    }
    // Unknown extra claims are ignored (PROTOCOL §1).
    assert!(
        v.verify(
            &make(&with("x_extra", json!(1)), "etdi-req+jwt"),
            &call,
            t(0)
        )
        .is_ok()
    );
    // `alg: none` is refused before anything else.
    let payload = etdi_crypto_b64(&serde_json::to_vec(&good).unwrap());
    let header = etdi_crypto_b64(br#"{"alg":"none","typ":"etdi-req+jwt","kid":"x"}"#);
    let none = format!("{header}.{payload}.");
    assert_eq!(
        v.verify(&none, &call, t(0)).unwrap_err(),
        RequestError::AlgorithmNotAllowed { alg: "none".into() }
    );
}

#[test]
fn signer_refuses_lifetimes_over_the_protocol_limit() {
    assert!(RequestSigner::new("c").with_lifetime(301).is_err());
    assert!(RequestSigner::new("c").with_lifetime(0).is_err());
    assert!(RequestSigner::new("c").with_lifetime(300).is_ok());
}

#[test]
fn skew_is_configurable() {
    let k = key(Algorithm::ES256);
    let chain = CallChain::new();
    let call = ReceivedCall::tools_call("ping", None, &chain);
    let token = sign(&k, "ping", None, &chain, t(100));
    let v = verifier(&k);
    assert!(v.verify(&token, &call, t(70)).is_ok());
    let tight = verifier(&k).with_freshness(Freshness::new().with_skew(5));
    assert!(tight.verify(&token, &call, t(70)).is_err());
    assert!(tight.verify(&token, &call, t(95)).is_ok());
    assert!(tight.verify(&token, &call, t(164)).is_ok());
    assert!(tight.verify(&token, &call, t(165)).is_err());
}

#[test]
fn after_rotation_old_key_signatures_verify_during_the_overlap_only() {
    let provider = CryptoProvider::get_default();
    let config = KeyManagerConfig::new(Algorithm::ES256).with_overlap_secs(600);
    let mut keys = KeyManager::generate(provider, config, t(0)).unwrap();
    let chain = CallChain::new();
    let call = ReceivedCall::tools_call("ping", None, &chain);
    let verifier_at = |keys: &KeyManager, now| {
        let mut issuers = IssuerKeys::new();
        issuers.set("client-1", keys.verification_keys(now));
        RequestVerifier::new(AUD, issuers)
    };
    let old_key = keys.active().clone();
    keys.rotate(t(1000)).unwrap();
    // Signed with the old key just before the rotation took effect
    // everywhere (for example by a client with a cached key).
    let late_old = sign(&old_key, "ping", None, &chain, t(1500));
    let new = sign(keys.active(), "ping", None, &chain, t(1500));
    let v = verifier_at(&keys, t(1500));
    assert!(v.verify(&late_old, &call, t(1500)).is_ok());
    assert!(v.verify(&new, &call, t(1500)).is_ok());

    // After the overlap (rotation + 600 s), the old key fails, whether the
    // verifier refreshed its keys or still holds the ring from before.
    let old_after = sign(&old_key, "ping", None, &chain, t(1600));
    for v in [verifier_at(&keys, t(1600)), verifier_at(&keys, t(1500))] {
        assert!(matches!(
            v.verify(&old_after, &call, t(1600)).unwrap_err(),
            RequestError::UnknownKey { .. }
        ));
        let new = sign(keys.active(), "ping", None, &chain, t(1600));
        assert!(v.verify(&new, &call, t(1600)).is_ok());
    }
}

fn etdi_crypto_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The memory store's futures are ready on first poll.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("memory store future was not ready"),
    }
}
