//! `etdi_auth::TokenVerifier`: third-party JWT access tokens (RFC 9068)
//! against a static JWKS, with and without a client certificate (RFC 8705
//! binding).
//!
//! Invariants: no panic; a token is accepted only if the fixture issued
//! exactly these bytes, and then as the subject it was issued to; a bound
//! token is accepted only with its certificate; every fixture token is
//! accepted where it should be.

use std::sync::OnceLock;

use etdi_auth::{IssuerConfig, ManualClock, TokenVerifier, UnixTime};
use etdi_crypto::Algorithm;
use serde_json::{Value, json};

use super::{JOSE_DICTIONARY, seed, text};
use crate::fixture::{ISSUER, NOW, RESOURCE, fixture};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "access_token",
    about: "etdi-auth TokenVerifier: JWT access tokens, static JWKS, certificate binding",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, JOSE_DICTIONARY],
};

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifier: TokenVerifier,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let f = fixture();
        let keys: Vec<Value> = f
            .keys
            .trusted
            .iter()
            .filter_map(|k| serde_json::from_str(&k.to_jwk().to_json()).ok())
            .collect();
        let built = TokenVerifier::builder()
            .issuer(
                IssuerConfig::new(ISSUER)
                    .audience(RESOURCE)
                    .algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
                    .require_at_jwt(true)
                    .static_jwks(json!({ "keys": keys })),
            )
            .clock(std::sync::Arc::new(ManualClock::new(UnixTime::from_secs(
                NOW,
            ))))
            // No validated-token cache: every input takes the full path.
            .cache_capacity(0)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        match (built, runtime) {
            (Ok(verifier), Ok(runtime)) => Harness { runtime, verifier },
            (Err(e), _) => panic!("fuzz harness: token verifier: {e}"),
            (_, Err(e)) => panic!("fuzz harness: runtime: {e}"),
        }
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let h = harness();
    let token = text(data);
    let token = token.as_ref();
    let issued = f.access_tokens.get(token);

    let plain = h.runtime.block_on(h.verifier.verify(token));
    match (&plain, issued) {
        (Ok(p), Some(t)) if !t.bound => assert_eq!(p.subject, t.subject),
        (Ok(_), _) => {
            panic!("an access token the fixture did not issue (unbound) verified: {token:?}")
        }
        (Err(e), Some(t)) if !t.bound => panic!("an issued access token was refused: {e}"),
        (Err(_), _) => {}
    }

    let with_cert = h.runtime.block_on(
        h.verifier
            .verify_with_certificate(token, Some(&f.client_certificate)),
    );
    match (&with_cert, issued) {
        (Ok(p), Some(t)) => assert_eq!(p.subject, t.subject),
        (Ok(_), None) => panic!("an access token the fixture did not issue verified: {token:?}"),
        (Err(e), Some(_)) => panic!("an issued access token was refused with its certificate: {e}"),
        (Err(_), None) => {}
    }

    let other_cert = h.runtime.block_on(
        h.verifier
            .verify_with_certificate(token, Some(b"another certificate")),
    );
    if other_cert.is_ok() {
        assert!(
            issued.is_some_and(|t| !t.bound),
            "a token verified with a certificate it is not bound to: {token:?}"
        );
    }
}

/// The fixture's tokens (three algorithms, bound and unbound).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    fixture()
        .access_tokens
        .iter()
        .enumerate()
        .map(|(i, (token, t))| {
            seed(
                format!("{}-{i}", if t.bound { "bound" } else { "bearer" }),
                token.as_bytes(),
            )
        })
        .collect()
}
