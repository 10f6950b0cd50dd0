//! Request signing end to end with etdi-crypto alone (PROTOCOL §6, §8): the
//! six required algorithms (RS256, RS384, RS512, ES256, ES384, ES512) sign
//! and verify a `tools/call`; a changed argument, tool name or signature
//! byte is refused; a replay is caught by the nonce store and a late copy
//! by its expiry; and a key rotation keeps old-key signatures valid for the
//! overlap window only. Time comes from a manual clock, so nothing sleeps.

use etdi_core::CallChain;
use etdi_crypto::claims::FreshnessError;
use etdi_crypto::manager::{KeyManager, KeyManagerConfig, StoreOptions};
use etdi_crypto::replay::{MemoryNonceStore, ReplayError};
use etdi_crypto::request::{
    CallToSign, ReceivedCall, RequestError, RequestSigner, RequestVerifier,
};
use etdi_crypto::trust::IssuerKeys;
use etdi_crypto::{Algorithm, Clock, CryptoProvider, ManualClock, SigningKey, UnixTime};
use serde_json::{Map, Value};

use crate::narrative::{Context, Narrative, Outcome};
use crate::support::{claim, decode_jws, flip_char, middle_of_signature};

const AUDIENCE: &str = "https://reports.example.com/mcp";
const CLIENT: &str = "agent-7";
const TOOL: &str = "read_report";

fn arguments(path: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("path".into(), Value::from(path));
    m.insert("limit".into(), Value::from(100));
    m
}

fn verifier_for(ring: etdi_crypto::trust::KeyRing) -> RequestVerifier {
    let mut issuers = IssuerKeys::new();
    issuers.set(CLIENT, ring);
    RequestVerifier::new(AUDIENCE, issuers)
}

/// Runs the example.
pub async fn run(n: Narrative) -> Outcome {
    let provider = CryptoProvider::get_default();
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    let chain = CallChain::new();
    let args = arguments("/srv/reports/q3.csv");
    let signer = RequestSigner::new(CLIENT);

    n.section("1. Sign and verify a tools/call with each required algorithm");
    n.say(format!(
        "Client `{CLIENT}` signs `{TOOL}` for the server `{AUDIENCE}`; the server verifies \
         against the key it registered for `{CLIENT}` and records the nonce."
    ));
    for alg in Algorithm::REQUIRED {
        let key = SigningKey::generate(provider, alg).context(&format!("{alg} key"))?;
        let verifier = verifier_for([key.verifying_key().clone()].into_iter().collect());
        let store = MemoryNonceStore::new(1_000);
        let now = clock.now();
        let call = CallToSign {
            audience: AUDIENCE,
            tool: TOOL,
            arguments: Some(&args),
            chain: &chain,
        };
        let token = signer.sign(&key, &call, now).context("signing")?;
        let (header, _) = decode_jws(&token)?;
        let received = ReceivedCall::tools_call(TOOL, Some(&args), &chain);
        match verifier
            .verify(&token, &received, now)
            .and_then(|p| p.record_in(&store))
        {
            Ok(v) => {
                n.check_eq(
                    format!(
                        "{alg}: signature verified (header alg {}, typ {})",
                        claim(&header, "alg"),
                        claim(&header, "typ")
                    ),
                    (v.algorithm(), v.issuer(), v.key_id()),
                    (alg, CLIENT, key.kid()),
                );
            }
            Err(e) => n.fail(format!("{alg}: signature verified"), e),
        }

        // Tampering: what was signed is not what arrived.
        let changed = arguments("/etc/shadow");
        let tampered_args = ReceivedCall::tools_call(TOOL, Some(&changed), &chain);
        let e = verifier.verify(&token, &tampered_args, now).err();
        n.check_eq(
            format!("{alg}: changed argument refused"),
            e,
            Some(RequestError::Mismatch {
                claim: "args_digest",
            }),
        );
        let other_tool = ReceivedCall::tools_call("delete_report", Some(&args), &chain);
        let e = verifier.verify(&token, &other_tool, now).err();
        n.check_eq(
            format!("{alg}: signature moved to another tool refused"),
            e,
            Some(RequestError::Mismatch { claim: "tool" }),
        );
        let forged = flip_char(&token, middle_of_signature(&token));
        let e = verifier.verify(&forged, &received, now).err();
        n.check_eq(
            format!("{alg}: one changed signature character refused"),
            e,
            Some(RequestError::BadSignature),
        );
        let stranger = SigningKey::generate(provider, alg).context("second key")?;
        let by_stranger = signer.sign(&stranger, &call, now).context("signing")?;
        let e = verifier.verify(&by_stranger, &received, now).err();
        n.check_eq(
            format!("{alg}: signature by an unregistered key refused"),
            e,
            Some(RequestError::UnknownKey {
                kid: stranger.kid().to_string(),
            }),
        );

        // Replay: the same signed request a second time.
        let e = verifier
            .verify(&token, &received, now)
            .and_then(|p| p.record_in(&store))
            .err();
        let code = e.as_ref().map(RequestError::reason_code);
        n.check_eq(
            format!("{alg}: replay refused by the nonce store"),
            (e, code),
            (
                Some(RequestError::Replay(ReplayError::Replayed)),
                Some("replay"),
            ),
        );
    }

    n.section("2. Freshness: a request is valid for its lifetime plus the clock skew");
    let key = SigningKey::generate(provider, Algorithm::ES256).context("ES256 key")?;
    let verifier = verifier_for([key.verifying_key().clone()].into_iter().collect());
    let store = MemoryNonceStore::new(1_000);
    let issued = clock.now();
    let token = signer
        .sign(
            &key,
            &CallToSign {
                audience: AUDIENCE,
                tool: TOOL,
                arguments: Some(&args),
                chain: &chain,
            },
            issued,
        )
        .context("signing")?;
    let (_, claims) = decode_jws(&token)?;
    n.say(format!(
        "signed claims: iss {}, aud {}, tool {}, iat {}, exp {} (60 s), jti {} characters",
        claim(&claims, "iss"),
        claim(&claims, "aud"),
        claim(&claims, "tool"),
        claim(&claims, "iat"),
        claim(&claims, "exp"),
        claim(&claims, "jti").as_str().map_or(0, str::len)
    ));
    let received = ReceivedCall::tools_call(TOOL, Some(&args), &chain);
    clock.advance(89);
    let ok = verifier
        .verify(&token, &received, clock.now())
        .and_then(|p| p.record_in(&store));
    n.check(
        "accepted 89 s after signing (60 s lifetime + 30 s skew)",
        ok.is_ok(),
        format_args!("{ok:?}"),
    );
    clock.advance(1);
    let e = verifier.verify(&token, &received, clock.now()).err();
    let code = e.as_ref().map(RequestError::reason_code);
    n.check_eq(
        "refused as stale 90 s after signing (exp + 30 s skew has passed)",
        (e, code),
        (
            Some(RequestError::Stale(FreshnessError::Expired {
                exp: issued.plus(60),
                now: clock.now(),
            })),
            Some("replay"),
        ),
    );

    store.evict_expired(clock.now());
    n.check_eq(
        "the nonce store has let the entry go: time alone refuses the late copy",
        store.len(),
        0,
    );

    n.section("3. Key rotation with a 10-minute overlap window (keys persisted in a temp dir)");
    let dir = tempfile::tempdir().context("creating a temporary key directory")?;
    let config = KeyManagerConfig::new(Algorithm::ES256)
        .with_overlap_secs(600)
        .with_rotate_after_secs(Some(3600));
    let mut keys = KeyManager::open(
        provider,
        dir.path(),
        config.clone(),
        StoreOptions::new(),
        clock.now(),
    )
    .context("opening the key store")?;
    let old_key = keys.active().clone();
    n.say(format!("active key {} created", old_key.kid()));
    let sign_old_and_new = |keys: &KeyManager, now: UnixTime| {
        let call = CallToSign {
            audience: AUDIENCE,
            tool: TOOL,
            arguments: None,
            chain: &chain,
        };
        (
            signer.sign(&old_key, &call, now),
            signer.sign(keys.active(), &call, now),
        )
    };
    let ping = ReceivedCall::tools_call(TOOL, None, &chain);

    clock.advance(3600);
    n.check(
        "rotation is due after one hour",
        keys.is_rotation_due(clock.now()),
        "not due",
    );
    let rotated = keys.rotate_if_due(clock.now()).context("rotating")?;
    let new_kid = keys.active().kid().clone();
    n.check(
        "rotated: the new active key differs from the old one",
        rotated && new_kid != *old_key.kid(),
        "no new key",
    );
    n.check_eq(
        "the published JWKS holds both keys during the overlap",
        keys.jwks(clock.now()).keys.len(),
        2,
    );

    clock.advance(300);
    let during = verifier_for(keys.verification_keys(clock.now()));
    let (old_token, new_token) = sign_old_and_new(&keys, clock.now());
    let old_token = old_token.context("signing with the old key")?;
    let new_token = new_token.context("signing with the new key")?;
    let r = during.verify(&old_token, &ping, clock.now());
    n.check(
        "5 min after rotation: an old-key signature still verifies",
        r.is_ok(),
        format_args!("{r:?}"),
    );
    let r = during.verify(&new_token, &ping, clock.now());
    n.check(
        "5 min after rotation: a new-key signature verifies",
        r.is_ok(),
        format_args!("{r:?}"),
    );

    // A restart in the middle of the overlap keeps both keys.
    drop(keys);
    let mut keys = KeyManager::open(
        provider,
        dir.path(),
        config,
        StoreOptions::new(),
        clock.now(),
    )
    .context("reopening the key store")?;
    n.check_eq(
        "after a restart the store has the same active key and one retired key",
        (keys.active().kid().clone(), keys.retired_keys().len()),
        (new_kid.clone(), 1),
    );

    clock.advance(301);
    let after = verifier_for(keys.verification_keys(clock.now()));
    let (old_token, new_token) = sign_old_and_new(&keys, clock.now());
    let old_token = old_token.context("signing with the old key")?;
    let new_token = new_token.context("signing with the new key")?;
    let expected = Some(RequestError::UnknownKey {
        kid: old_key.kid().to_string(),
    });
    n.check_eq(
        "10 min + 1 s after rotation: an old-key signature is refused",
        after.verify(&old_token, &ping, clock.now()).err(),
        expected.clone(),
    );
    n.check_eq(
        "... also by a verifier still holding the key ring fetched during the overlap",
        during.verify(&old_token, &ping, clock.now()).err(),
        expected,
    );
    let r = after.verify(&new_token, &ping, clock.now());
    n.check(
        "a new-key signature verifies",
        r.is_ok(),
        format_args!("{r:?}"),
    );
    n.check_eq(
        "the JWKS publishes only the new key",
        keys.jwks(clock.now())
            .keys
            .iter()
            .filter_map(|k| k.kid().map(str::to_owned))
            .collect::<Vec<_>>(),
        vec![new_kid.to_string()],
    );
    let pruned = keys.prune(clock.now()).context("pruning")?;
    n.check_eq("the retired key is pruned from the store", pruned, 1);
    drop(keys);
    dir.close()
        .context("removing the temporary key directory")?;
    Ok(())
}
