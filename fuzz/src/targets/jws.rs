//! `etdi_crypto::jws`: compact JWS parsing and verification (attached and
//! detached payloads, header peeking), under a lax and a strict validation.
//!
//! Invariants: no panic; a token verifies only if the fixture signed
//! exactly these bytes (and every fixture token does verify under the
//! validations it was made for); a verified token reports the payload it
//! carries and the algorithm of the key that checked it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use etdi_crypto::jws::{self, JwsHeader, Validation};
use etdi_crypto::{Algorithm, VerifyingKey};

use super::{JOSE_DICTIONARY, seed, text};
use crate::fixture::{DETACHED_PAYLOAD, JWS_CRIT, JWS_TYP, fixture};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "jws",
    about: "compact JWS: peek_header, verify (lax and strict), verify_detached",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, JOSE_DICTIONARY],
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let token = text(data);
    let token = token.as_ref();
    let resolver = |h: &JwsHeader| -> Option<VerifyingKey> { f.keys.by_kid(h.kid()?) };
    let known = f.jws.get(token);

    if let Ok(header) = jws::peek_header(token) {
        assert!(
            Algorithm::ALL.contains(&header.alg()),
            "peek_header accepted an algorithm outside Algorithm::ALL"
        );
    }

    let lax = Validation::new(Algorithm::ALL);
    let strict = Validation::new([Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256])
        .expect_typ(JWS_TYP)
        .require_kid(true)
        .understand_critical(JWS_CRIT);
    for (validation, expected) in [
        (&lax, known.is_some_and(|(_, v)| v.lax)),
        (&strict, known.is_some_and(|(_, v)| v.strict)),
    ] {
        match jws::verify(token, validation, &resolver) {
            Ok(verified) => {
                assert!(
                    expected,
                    "a JWS the fixture did not sign (for this validation) verified: {token:?}"
                );
                let payload = token
                    .split('.')
                    .nth(1)
                    .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
                assert_eq!(
                    Some(verified.payload()),
                    payload.as_deref(),
                    "verified payload is not the token's"
                );
                assert_eq!(
                    known.map(|(p, _)| p.as_slice()),
                    Some(verified.payload()),
                    "verified payload is not the signed one"
                );
                assert_eq!(verified.header().alg(), verified.key().algorithm());
            }
            Err(e) => assert!(
                !expected,
                "a JWS the fixture signed was refused: {e}: {token:?}"
            ),
        }
    }

    let detached_ok = jws::verify_detached(token, DETACHED_PAYLOAD, &lax, &resolver).is_ok();
    assert_eq!(
        detached_ok,
        f.jws_detached.contains(token),
        "verify_detached disagrees with the fixture on {token:?}"
    );
    // The same detached tokens against any other payload never verify.
    assert!(
        jws::verify_detached(token, b"{\"detached\":false}", &lax, &resolver).is_err(),
        "a detached JWS verified against a payload it does not cover"
    );
}

/// The fixture's tokens, and headers that must be refused.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let f = fixture();
    let mut out = Vec::new();
    for (i, token) in f.jws.keys().enumerate() {
        out.push(seed(format!("valid-{i}"), token.as_bytes()));
    }
    for (i, token) in f.jws_detached.iter().enumerate() {
        out.push(seed(format!("detached-{i}"), token.as_bytes()));
    }
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let refused = [
        r#"{"alg":"none"}"#,
        r#"{"alg":"HS256","kid":"k"}"#,
        r#"{"alg":"ES256","jwk":{"kty":"EC"}}"#,
        r#"{"alg":"ES256","b64":false,"crit":["b64"]}"#,
        r#"{"alg":"ES256","alg":"EdDSA"}"#,
        r#"{"alg":"EdDSA","crit":["alg"]}"#,
    ];
    for (i, header) in refused.iter().enumerate() {
        let token = format!("{}.{}.{}", b64(header), b64("{}"), b64("sig"));
        out.push(seed(format!("refused-{i}"), token.into_bytes()));
    }
    out
}
