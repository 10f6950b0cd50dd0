//! JWT access-token verification against a loopback IdP (discovery + JWKS):
//! good tokens, the attack corpus, JWKS caching and refresh rules, the
//! validated-token cache and certificate binding.
// Test code: helpers outside `#[test]` functions may unwrap and index too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use common::{MockServer, Reply, TestKey, b64, now};
use etdi_auth::{
    Algorithm, AudienceFallback, BindingFailure, IssuerConfig, JwksPolicy, Malformed, ManualClock,
    Part, TokenError, TokenVerifier, UnixTime,
};
use etdi_core::AuthMethod;
use serde_json::{Value, json};

const AUD: &str = "https://tools.example.com/mcp";

struct Idp {
    server: MockServer,
    issuer: String,
    rsa: TestKey,
    ec: TestKey,
    clock: Arc<ManualClock>,
}

impl Idp {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let issuer = server.base.clone();
        let rsa = TestKey::rsa();
        let ec = TestKey::p256();
        server.reply(
            "/.well-known/openid-configuration",
            Reply::json(json!({"issuer": issuer, "jwks_uri": server.url("/jwks")})),
        );
        server.reply(
            "/jwks",
            Reply::json(json!({"keys": [rsa.jwk("rsa-1"), ec.jwk("ec-1")]}))
                .with_header("cache-control", "public, max-age=300"),
        );
        Idp {
            server,
            issuer,
            rsa,
            ec,
            clock: Arc::new(ManualClock::new(UnixTime::from_secs(now()))),
        }
    }

    fn config(&self) -> IssuerConfig {
        IssuerConfig::new(&self.issuer).audience(AUD)
    }

    fn verifier_with(&self, config: IssuerConfig) -> TokenVerifier {
        TokenVerifier::builder()
            .issuer(config)
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }

    fn verifier(&self) -> TokenVerifier {
        self.verifier_with(self.config())
    }

    fn now(&self) -> u64 {
        use etdi_auth::Clock;
        self.clock.now().as_secs()
    }

    fn claims(&self) -> Value {
        let now = self.now();
        json!({
            "iss": self.issuer, "sub": "agent-7", "aud": AUD, "client_id": "agent-client",
            "iat": now, "exp": now + 300, "jti": "j1", "scope": "tools:read tools:call",
            "roles": ["operator"]
        })
    }

    fn rs256(&self, claims: &Value) -> String {
        self.rsa.sign(
            &json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}),
            claims,
        )
    }

    fn es256(&self, claims: &Value) -> String {
        self.ec.sign(
            &json!({"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"}),
            claims,
        )
    }

    fn with(&self, patch: Value) -> Value {
        let mut c = self.claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }
}

#[tokio::test]
async fn good_rs256_and_es256_tokens_verify_to_a_principal() {
    let idp = Idp::start().await;
    let v = idp.verifier_with(idp.config().require_at_jwt(true));
    for token in [idp.rs256(&idp.claims()), idp.es256(&idp.claims())] {
        let p = v.verify(&token).await.unwrap();
        assert_eq!(p.subject, "agent-7");
        assert_eq!(p.issuer.as_deref(), Some(idp.issuer.as_str()));
        assert_eq!(p.client_id.as_deref(), Some("agent-client"));
        assert!(p.scopes.contains("tools:call") && p.scopes.contains("tools:read"));
        assert!(p.roles.contains("operator"));
        assert_eq!(p.auth_method, AuthMethod::BearerJwt);
    }
    // One discovery, one JWKS fetch for both tokens.
    assert_eq!(idp.server.hits("/jwks"), 1);
    assert_eq!(v.jwks_fetch_count(&idp.issuer), Some(1));
}

fn hs256(input: &str, key: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    b64(hmac::sign(&k, input.as_bytes()))
}

type Check = fn(&TokenError) -> bool;

#[tokio::test]
async fn attack_corpus_is_refused_with_precise_reasons() {
    let idp = Idp::start().await;
    let attacker = MockServer::start().await;
    let evil = TestKey::rsa();
    attacker.reply(
        "/jwks",
        Reply::json(json!({"keys": [evil.jwk("rsa-1"), evil.jwk("evil")]})),
    );
    let v = idp.verifier();
    let now = idp.now();
    let claims = idp.claims();
    let good = idp.rs256(&claims);
    let segs: Vec<&str> = good.split('.').collect();
    let hdr = |h: Value| b64(h.to_string());
    let body = b64(claims.to_string());

    let mut corpus: Vec<(&str, String, Check)> = Vec::new();
    // Algorithm attacks.
    corpus.push((
        "alg none, empty signature",
        format!("{}.{body}.", hdr(json!({"alg": "none"}))),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    corpus.push((
        "alg none with a signature",
        format!(
            "{}.{body}.{}",
            hdr(json!({"alg": "none", "kid": "rsa-1"})),
            segs[2]
        ),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    corpus.push((
        "alg NONE",
        format!("{}.{body}.", hdr(json!({"alg": "NONE"}))),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    let input = format!("{}.{body}", hdr(json!({"alg": "HS256", "kid": "rsa-1"})));
    corpus.push((
        "HS256 keyed with the RSA public key (DER)",
        format!("{input}.{}", hs256(&input, &idp.rsa.rsa_public_der())),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    let jwk_text = idp.rsa.jwk("rsa-1").to_string();
    corpus.push((
        "HS256 keyed with the RSA public JWK text",
        format!("{input}.{}", hs256(&input, jwk_text.as_bytes())),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    corpus.push((
        "HS512",
        idp.rsa
            .sign(&json!({"alg": "HS512", "kid": "rsa-1"}), &claims),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    corpus.push((
        "ES512 not in the allow-list",
        idp.ec
            .sign(&json!({"alg": "ES512", "kid": "ec-1"}), &claims),
        |e| matches!(e, TokenError::AlgorithmNotAllowed { .. }),
    ));
    corpus.push((
        "alg RS1",
        idp.rsa
            .sign(&json!({"alg": "RS1", "kid": "rsa-1"}), &claims),
        |e| matches!(e, TokenError::UnsupportedAlgorithm { .. }),
    ));
    corpus.push((
        "ES256 header naming the RSA key",
        idp.ec
            .sign(&json!({"alg": "ES256", "kid": "rsa-1"}), &claims),
        |e| matches!(e, TokenError::KeyMismatch { .. }),
    ));
    corpus.push((
        "RS256 header naming the EC key",
        idp.rsa
            .sign(&json!({"alg": "RS256", "kid": "ec-1"}), &claims),
        |e| matches!(e, TokenError::KeyMismatch { .. }),
    ));
    corpus.push((
        "PS256 not in the allow-list",
        idp.rsa
            .sign(&json!({"alg": "PS256", "kid": "rsa-1"}), &claims),
        |e| matches!(e, TokenError::AlgorithmNotAllowed { .. }),
    ));
    corpus.push((
        "ES384 not in the allow-list",
        TestKey::p384().sign(&json!({"alg": "ES384", "kid": "ec-1"}), &claims),
        |e| matches!(e, TokenError::AlgorithmNotAllowed { .. }),
    ));
    corpus.push((
        "alg not a string",
        format!(
            "{}.{body}.{}",
            hdr(json!({"alg": 256, "kid": "rsa-1"})),
            segs[2]
        ),
        |e| matches!(e, TokenError::Malformed(Malformed::Header("alg"))),
    ));
    // Key selection attacks.
    corpus.push((
        "unknown kid",
        idp.rsa
            .sign(&json!({"alg": "RS256", "kid": "nope"}), &claims),
        |e| matches!(e, TokenError::UnknownKey { .. }),
    ));
    corpus.push((
        "kid with path traversal",
        idp.rsa.sign(
            &json!({"alg": "RS256", "kid": "../../../../etc/passwd"}),
            &claims,
        ),
        |e| matches!(e, TokenError::UnknownKey { .. }),
    ));
    corpus.push((
        "kid that is a URL",
        idp.rsa.sign(
            &json!({"alg": "RS256", "kid": attacker.url("/jwks")}),
            &claims,
        ),
        |e| matches!(e, TokenError::UnknownKey { .. }),
    ));
    corpus.push(("kid with control characters", idp.rsa.sign(&json!({"alg": "RS256", "kid": "a\n\u{0}b"}), &claims), |e| {
        matches!(e, TokenError::UnknownKey { kid, .. } if !kid.contains('\n') && !kid.contains('\u{0}'))
    }));
    corpus.push((
        "jku to an attacker JWKS, attacker key",
        evil.sign(
            &json!({"alg": "RS256", "kid": "evil", "jku": attacker.url("/jwks")}),
            &claims,
        ),
        |e| matches!(e, TokenError::ForbiddenHeader { name: "jku" }),
    ));
    corpus.push((
        "jku with the legitimate kid, attacker key",
        evil.sign(
            &json!({"alg": "RS256", "kid": "rsa-1", "jku": attacker.url("/jwks")}),
            &claims,
        ),
        |e| matches!(e, TokenError::ForbiddenHeader { name: "jku" }),
    ));
    corpus.push((
        "x5u to an attacker URL",
        evil.sign(
            &json!({"alg": "RS256", "kid": "evil", "x5u": attacker.url("/cert.pem")}),
            &claims,
        ),
        |e| matches!(e, TokenError::ForbiddenHeader { name: "x5u" }),
    ));
    corpus.push((
        "embedded jwk header",
        evil.sign(
            &json!({"alg": "RS256", "kid": "evil", "jwk": evil.jwk("evil")}),
            &claims,
        ),
        |e| matches!(e, TokenError::ForbiddenHeader { name: "jwk" }),
    ));
    corpus.push((
        "embedded x5c certificate chain",
        evil.sign(
            &json!({"alg": "RS256", "kid": "rsa-1", "x5c": [b64(b"certificate")]}),
            &claims,
        ),
        |e| matches!(e, TokenError::ForbiddenHeader { name: "x5c" }),
    ));
    corpus.push((
        "signature by another key under the real kid",
        evil.sign(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims),
        |e| matches!(e, TokenError::BadSignature { .. }),
    ));
    corpus.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            segs[0],
            b64(idp.with(json!({"sub": "admin"})).to_string()),
            segs[2]
        ),
        |e| matches!(e, TokenError::BadSignature { .. }),
    ));
    corpus.push((
        "truncated signature",
        format!("{}.{}.{}", segs[0], segs[1], &segs[2][..segs[2].len() / 2]),
        |e| {
            matches!(
                e,
                TokenError::BadSignature { .. } | TokenError::Malformed(_)
            )
        },
    ));
    // `crit`.
    corpus.push((
        "crit naming exp",
        idp.rsa.sign(
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}),
            &claims,
        ),
        |e| matches!(e, TokenError::UnsupportedCritical { name } if name == "exp"),
    ));
    corpus.push((
        "crit b64 (RFC 7797)",
        idp.rsa.sign(
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false}),
            &claims,
        ),
        |e| matches!(e, TokenError::UnsupportedCritical { .. }),
    ));
    corpus.push((
        "crit not an array",
        idp.rsa.sign(
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": "exp"}),
            &claims,
        ),
        |e| matches!(e, TokenError::Malformed(Malformed::Header("crit"))),
    ));
    // Time.
    corpus.push((
        "expired beyond leeway",
        idp.rs256(&idp.with(json!({"exp": now - 31}))),
        |e| matches!(e, TokenError::Expired { .. }),
    ));
    corpus.push((
        "expired exactly at the leeway edge",
        idp.rs256(&idp.with(json!({"exp": now - 30}))),
        |e| matches!(e, TokenError::Expired { .. }),
    ));
    corpus.push((
        "not yet valid beyond leeway",
        idp.rs256(&idp.with(json!({"nbf": now + 31}))),
        |e| matches!(e, TokenError::NotYetValid { .. }),
    ));
    corpus.push((
        "issued in the future",
        idp.rs256(&idp.with(json!({"iat": now + 3600}))),
        |e| matches!(e, TokenError::IssuedInFuture { .. }),
    ));
    corpus.push((
        "missing exp",
        idp.rs256(&idp.with(json!({"exp": null}))),
        |e| matches!(e, TokenError::MissingClaim { claim: "exp" }),
    ));
    corpus.push((
        "non-numeric exp",
        idp.rs256(&idp.with(json!({"exp": "99999999999"}))),
        |e| matches!(e, TokenError::InvalidClaim { claim: "exp", .. }),
    ));
    corpus.push((
        "negative exp",
        idp.rs256(&idp.with(json!({"exp": -5}))),
        |e| matches!(e, TokenError::InvalidClaim { claim: "exp", .. }),
    ));
    corpus.push((
        "non-numeric nbf",
        idp.rs256(&idp.with(json!({"nbf": [1]}))),
        |e| matches!(e, TokenError::InvalidClaim { claim: "nbf", .. }),
    ));
    // Issuer and audience.
    corpus.push((
        "another issuer",
        idp.rs256(&idp.with(json!({"iss": "https://evil.example"}))),
        |e| matches!(e, TokenError::UntrustedIssuer { iss } if iss == "https://evil.example"),
    ));
    corpus.push((
        "issuer with a trailing slash",
        idp.rs256(&idp.with(json!({"iss": format!("{}/", idp.issuer)}))),
        |e| matches!(e, TokenError::UntrustedIssuer { .. }),
    ));
    corpus.push((
        "missing iss",
        idp.rs256(&idp.with(json!({"iss": null}))),
        |e| matches!(e, TokenError::MissingClaim { claim: "iss" }),
    ));
    corpus.push((
        "iss not a string",
        idp.rs256(&idp.with(json!({"iss": ["x"]}))),
        |e| matches!(e, TokenError::InvalidClaim { claim: "iss", .. }),
    ));
    corpus.push((
        "wrong audience",
        idp.rs256(&idp.with(json!({"aud": "https://other.example/mcp"}))),
        |e| matches!(e, TokenError::WrongAudience { .. }),
    ));
    corpus.push((
        "missing audience, fallback off",
        idp.rs256(&idp.with(json!({"aud": null, "azp": AUD}))),
        |e| matches!(e, TokenError::WrongAudience { .. }),
    ));
    corpus.push((
        "audience array of numbers",
        idp.rs256(&idp.with(json!({"aud": [1, 2]}))),
        |e| matches!(e, TokenError::InvalidClaim { claim: "aud", .. }),
    ));
    // Encoding and structure.
    corpus.push((
        "oversized token",
        format!("{}.{}.{}", segs[0], "A".repeat(20_000), segs[2]),
        |e| matches!(e, TokenError::TooLarge { .. }),
    ));
    corpus.push((
        "bad base64 in the header",
        format!("*{}.{}.{}", segs[0], segs[1], segs[2]),
        |e| matches!(e, TokenError::Malformed(Malformed::Base64(Part::Header))),
    ));
    corpus.push((
        "bad base64 in the payload",
        format!("{}.{}$.{}", segs[0], segs[1], segs[2]),
        |e| matches!(e, TokenError::Malformed(Malformed::Base64(Part::Payload))),
    ));
    corpus.push((
        "padded base64 signature",
        format!("{}.{}.{}==", segs[0], segs[1], segs[2]),
        |e| matches!(e, TokenError::Malformed(Malformed::Base64(Part::Signature))),
    ));
    corpus.push((
        "standard (non-url) base64 alphabet",
        format!(
            "{}.{}.{}",
            segs[0],
            segs[1],
            segs[2].replace('-', "+").replace('_', "/") + "+/"
        ),
        |e| matches!(e, TokenError::Malformed(Malformed::Base64(Part::Signature))),
    ));
    corpus.push(("two segments", format!("{}.{}", segs[0], segs[1]), |e| {
        matches!(e, TokenError::Malformed(Malformed::Segments))
    }));
    corpus.push((
        "empty signature segment",
        format!("{}.{}.", segs[0], segs[1]),
        |e| matches!(e, TokenError::Malformed(Malformed::Segments)),
    ));
    corpus.push(("five segments (JWE shape)", format!("{good}.a.b"), |e| {
        matches!(e, TokenError::Malformed(Malformed::Segments))
    }));
    corpus.push(("empty token", String::new(), |e| {
        matches!(e, TokenError::Malformed(Malformed::Segments))
    }));
    corpus.push((
        "header is not JSON",
        format!("{}.{}.{}", b64("alg=RS256"), segs[1], segs[2]),
        |e| matches!(e, TokenError::Malformed(Malformed::Json(Part::Header))),
    ));
    corpus.push((
        "duplicate header member",
        idp.rsa.sign_raw(
            r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#,
            &claims.to_string(),
        ),
        |e| matches!(e, TokenError::Malformed(Malformed::Json(Part::Header))),
    ));
    let dup = format!(
        r#"{{"iss":"{}","sub":"agent-7","aud":"https://other.example","aud":"{AUD}","iat":{now},"exp":{}}}"#,
        idp.issuer,
        now + 300
    );
    corpus.push((
        "duplicate aud claim, validly signed",
        idp.rsa.sign_raw(r#"{"alg":"RS256","kid":"rsa-1"}"#, &dup),
        |e| matches!(e, TokenError::Malformed(Malformed::Json(Part::Payload))),
    ));
    let dup_exp = format!(
        r#"{{"iss":"{}","sub":"a","aud":"{AUD}","exp":{},"exp":{}}}"#,
        idp.issuer,
        now - 1000,
        now + 300
    );
    corpus.push((
        "duplicate exp claim, validly signed",
        idp.rsa
            .sign_raw(r#"{"alg":"RS256","kid":"rsa-1"}"#, &dup_exp),
        |e| matches!(e, TokenError::Malformed(Malformed::Json(Part::Payload))),
    ));
    corpus.push((
        "payload is an array",
        idp.rsa
            .sign_raw(r#"{"alg":"RS256","kid":"rsa-1"}"#, "[1,2]"),
        |e| matches!(e, TokenError::Malformed(Malformed::Json(Part::Payload))),
    ));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    corpus.push((
        "deeply nested payload",
        idp.rsa.sign_raw(
            r#"{"alg":"RS256","kid":"rsa-1"}"#,
            &format!(r#"{{"x":{deep}}}"#),
        ),
        |e| matches!(e, TokenError::Malformed(Malformed::Json(Part::Payload))),
    ));
    corpus.push((
        "certificate-bound token without a certificate",
        idp.rs256(&idp.with(json!({"cnf": {"x5t#S256": b64([7u8; 32])}}))),
        |e| {
            matches!(
                e,
                TokenError::CertificateBinding(BindingFailure::NoCertificate)
            )
        },
    ));

    assert!(corpus.len() >= 30, "corpus has {} tokens", corpus.len());
    for (name, token, check) in &corpus {
        let result = v.verify(token).await;
        match result {
            Err(e) => {
                assert!(check(&e), "{name}: unexpected reason {e:?}");
                let message = e.to_string();
                assert!(
                    token.len() < 40 || !message.contains(token.as_str()),
                    "{name}: error echoes the token"
                );
            }
            Ok(p) => panic!("{name}: accepted as {p:?}"),
        }
    }
    // Header-supplied key locations were never fetched.
    assert_eq!(attacker.total_hits(), 0, "jku/x5u/kid URL was fetched");
    // The good token still verifies after all that, and the many unknown
    // kids cost at most one refresh (the cooldown).
    assert!(v.verify(&good).await.is_ok());
    assert!(
        idp.server.hits("/jwks") <= 2,
        "JWKS fetched {} times",
        idp.server.hits("/jwks")
    );
    println!("attack corpus: {} tokens refused", corpus.len());
}

#[tokio::test]
async fn es512_and_pss_verify_when_the_issuer_allows_them() {
    let idp = Idp::start().await;
    let p521 = TestKey::p521();
    idp.server.reply(
        "/jwks",
        Reply::json(json!({"keys": [idp.rsa.jwk("rsa-1"), p521.jwk("p521")]})),
    );
    let es512 = p521.sign(
        &json!({"alg": "ES512", "kid": "p521", "typ": "at+jwt"}),
        &idp.claims(),
    );
    // Not in the default allow-list.
    assert!(matches!(
        idp.verifier().verify(&es512).await,
        Err(TokenError::AlgorithmNotAllowed { .. })
    ));
    let v = idp.verifier_with(idp.config().algorithms([
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES512,
    ]));
    assert_eq!(v.verify(&es512).await.unwrap().subject, "agent-7");
    // The RSA JWK has no `alg`: the header may pick PS256 because the issuer
    // allows it and it fits an RSA key...
    let pss = idp
        .rsa
        .sign(&json!({"alg": "PS256", "kid": "rsa-1"}), &idp.claims());
    assert!(v.verify(&pss).await.is_ok());
    // ...but never an algorithm of another key type.
    let wrong = idp
        .rsa
        .sign(&json!({"alg": "ES512", "kid": "rsa-1"}), &idp.claims());
    assert!(matches!(
        v.verify(&wrong).await,
        Err(TokenError::KeyMismatch { .. })
    ));
    let wrong = p521.sign(&json!({"alg": "RS256", "kid": "p521"}), &idp.claims());
    assert!(matches!(
        v.verify(&wrong).await,
        Err(TokenError::KeyMismatch { .. })
    ));
}

#[tokio::test]
async fn leeway_edges_accept_inside_the_window() {
    let idp = Idp::start().await;
    let v = idp.verifier();
    let now = idp.now();
    for patch in [
        json!({"exp": now - 29}),
        json!({"nbf": now + 30}),
        json!({"iat": now + 30}),
        json!({"exp": now as f64 + 100.5}),
    ] {
        let token = idp.rs256(&idp.with(patch.clone()));
        assert!(v.verify(&token).await.is_ok(), "{patch}");
    }
    let strict = idp.verifier_with(idp.config().leeway(Duration::ZERO));
    let token = idp.rs256(&idp.with(json!({"exp": now})));
    assert!(matches!(
        strict.verify(&token).await,
        Err(TokenError::Expired { .. })
    ));
}

#[tokio::test]
async fn unknown_kid_flood_costs_one_fetch_per_cooldown() {
    let idp = Idp::start().await;
    let v = idp.verifier();
    let claims = idp.claims();
    assert!(v.verify(&idp.rs256(&claims)).await.is_ok());
    assert_eq!(idp.server.hits("/jwks"), 1);
    for i in 0..500 {
        let token = idp.rsa.sign(
            &json!({"alg": "RS256", "kid": format!("random-{i}")}),
            &claims,
        );
        assert!(matches!(
            v.verify(&token).await,
            Err(TokenError::UnknownKey { .. })
        ));
    }
    // The set was fetched moments ago, so every unknown kid falls inside the
    // cooldown: no refresh at all.
    assert_eq!(idp.server.hits("/jwks"), 1);
    idp.clock.advance(31);
    for i in 0..100 {
        let token = idp.rsa.sign(
            &json!({"alg": "RS256", "kid": format!("again-{i}")}),
            &claims,
        );
        assert!(v.verify(&token).await.is_err());
    }
    // After the cooldown, the first unknown kid refreshes once; the other 99 wait.
    assert_eq!(idp.server.hits("/jwks"), 2);
    assert_eq!(v.jwks_fetch_count(&idp.issuer), Some(2));
}

#[tokio::test]
async fn rotated_key_is_found_after_one_refresh() {
    let idp = Idp::start().await;
    let v = idp.verifier();
    assert!(v.verify(&idp.rs256(&idp.claims())).await.is_ok());
    let new_key = TestKey::rsa();
    idp.server.reply(
        "/jwks",
        Reply::json(json!({"keys": [idp.rsa.jwk("rsa-1"), new_key.jwk("rsa-2")]})),
    );
    idp.clock.advance(31); // past the cooldown since the first fetch
    let token = new_key.sign(&json!({"alg": "RS256", "kid": "rsa-2"}), &idp.claims());
    assert!(v.verify(&token).await.is_ok());
    assert_eq!(idp.server.hits("/jwks"), 2);
}

#[tokio::test]
async fn jwks_ttl_follows_cache_control_within_bounds() {
    let idp = Idp::start().await;
    idp.server.reply(
        "/jwks",
        Reply::json(json!({"keys": [idp.rsa.jwk("rsa-1")]}))
            .with_header("cache-control", "max-age=120"),
    );
    let v = idp.verifier();
    v.warm_up().await.unwrap();
    assert_eq!(idp.server.hits("/jwks"), 1);
    idp.clock.advance(119);
    assert!(v.verify(&idp.rs256(&idp.claims())).await.is_ok());
    assert_eq!(idp.server.hits("/jwks"), 1, "fresh for max-age");
    idp.clock.advance(2);
    assert!(v.verify(&idp.rs256(&idp.claims())).await.is_ok());
    assert_eq!(idp.server.hits("/jwks"), 2, "refreshed after max-age");

    // `no-store` / tiny max-age are raised to the minimum TTL (60 s).
    idp.server.reply(
        "/jwks",
        Reply::json(json!({"keys": [idp.rsa.jwk("rsa-1")]}))
            .with_header("cache-control", "no-store"),
    );
    idp.clock.advance(200);
    assert!(v.verify(&idp.rs256(&idp.claims())).await.is_ok());
    assert_eq!(idp.server.hits("/jwks"), 3);
    for _ in 0..5 {
        idp.clock.advance(10);
        assert!(v.verify(&idp.rs256(&idp.claims())).await.is_ok());
    }
    assert_eq!(idp.server.hits("/jwks"), 3, "min TTL holds");
}

#[tokio::test]
async fn known_keys_survive_an_outage_for_a_bounded_time() {
    let idp = Idp::start().await;
    let policy = JwksPolicy {
        max_stale: Duration::from_secs(600),
        ..JwksPolicy::default()
    };
    let v = idp.verifier_with(idp.config().jwks_policy(policy));
    v.warm_up().await.unwrap();
    idp.server.reply("/jwks", Reply::status(503));
    // Past the 300 s TTL: refresh fails, known keys still verify.
    idp.clock.advance(301);
    assert!(v.verify(&idp.rs256(&idp.claims())).await.is_ok());
    // Retries during the outage are throttled by the failure back-off.
    let hits = idp.server.hits("/jwks");
    assert!(
        v.verify(&idp.rs256(&idp.with(json!({"jti": "x"}))))
            .await
            .is_ok()
    );
    assert_eq!(idp.server.hits("/jwks"), hits);
    // Beyond TTL + max_stale the issuer is unavailable, not trusted forever.
    idp.clock.advance(600);
    let err = v
        .verify(&idp.rs256(&idp.with(json!({"jti": "y"}))))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    // Recovery.
    idp.server.reply(
        "/jwks",
        Reply::json(json!({"keys": [idp.rsa.jwk("rsa-1")]})),
    );
    idp.clock.advance(11);
    assert!(
        v.verify(&idp.rs256(&idp.with(json!({"jti": "z"}))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unreachable_idp_at_start_is_unavailable_not_a_token_error() {
    let idp = Idp::start().await;
    idp.server.reply("/jwks", Reply::status(500));
    let v = idp.verifier();
    let err = v.verify(&idp.rs256(&idp.claims())).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(err.description(), "authorization server unavailable");
}

#[tokio::test]
async fn discovery_falls_back_to_rfc8414_and_checks_issuer() {
    let server = MockServer::start().await;
    let rsa = TestKey::rsa();
    let issuer = server.url("/tenant");
    server.reply(
        "/.well-known/oauth-authorization-server/tenant",
        Reply::json(json!({"issuer": issuer, "jwks_uri": server.url("/keys")})),
    );
    server.reply("/keys", Reply::json(json!({"keys": [rsa.jwk("k")]})));
    let v = TokenVerifier::builder()
        .issuer(IssuerConfig::new(&issuer).audience(AUD))
        .build()
        .unwrap();
    let t = now();
    let token = rsa.sign(
        &json!({"alg": "RS256", "kid": "k"}),
        &json!({"iss": issuer, "sub": "s", "aud": AUD, "exp": t + 60}),
    );
    assert!(v.verify(&token).await.is_ok());

    // Metadata naming another issuer (mix-up) is refused.
    let server2 = MockServer::start().await;
    server2.reply(
        "/.well-known/openid-configuration",
        Reply::json(json!({"issuer": "https://evil.example", "jwks_uri": server2.url("/keys")})),
    );
    server2.reply("/keys", Reply::json(json!({"keys": [rsa.jwk("k")]})));
    let v2 = TokenVerifier::builder()
        .issuer(IssuerConfig::new(&server2.base).audience(AUD))
        .build()
        .unwrap();
    let token2 = rsa.sign(
        &json!({"alg": "RS256", "kid": "k"}),
        &json!({"iss": server2.base, "sub": "s", "aud": AUD, "exp": t + 60}),
    );
    assert!(v2.verify(&token2).await.unwrap_err().is_unavailable());
    assert_eq!(server2.hits("/keys"), 0);
}

#[tokio::test]
async fn typ_at_jwt_enforcement() {
    let idp = Idp::start().await;
    let v = idp.verifier_with(idp.config().require_at_jwt(true));
    let claims = idp.claims();
    for typ in [json!("JWT"), json!(null)] {
        let mut h = json!({"alg": "RS256", "kid": "rsa-1"});
        if !typ.is_null() {
            h["typ"] = typ;
        }
        assert!(matches!(
            v.verify(&idp.rsa.sign(&h, &claims)).await,
            Err(TokenError::WrongType { .. })
        ));
    }
    let h = json!({"alg": "RS256", "kid": "rsa-1", "typ": "application/at+jwt"});
    assert!(v.verify(&idp.rsa.sign(&h, &claims)).await.is_ok());
    // RFC 9068 claims are required in that mode.
    let no_jti = idp.rs256(&idp.with(json!({"jti": null})));
    assert!(matches!(
        v.verify(&no_jti).await,
        Err(TokenError::MissingClaim { claim: "jti" })
    ));
}

#[tokio::test]
async fn audience_fallback_is_explicit_per_issuer() {
    let idp = Idp::start().await;
    let token = idp.rs256(&idp.with(json!({"aud": null, "azp": "mcp-agent"})));
    assert!(matches!(
        idp.verifier().verify(&token).await,
        Err(TokenError::WrongAudience { .. })
    ));
    let v = idp.verifier_with(
        idp.config()
            .audience_fallback(AudienceFallback::AuthorizedParty(vec!["mcp-agent".into()])),
    );
    assert!(v.verify(&token).await.is_ok());
    let other = idp.rs256(&idp.with(json!({"aud": null, "azp": "someone-else"})));
    assert!(v.verify(&other).await.is_err());
}

#[tokio::test]
async fn validated_cache_never_outlives_exp() {
    let idp = Idp::start().await;
    let v = idp.verifier_with(idp.config().leeway(Duration::ZERO));
    let token = idp.rs256(&idp.with(json!({"exp": idp.now() + 10})));
    assert!(v.verify(&token).await.is_ok());
    assert!(v.verify(&token).await.is_ok());
    idp.clock.advance(10);
    assert!(matches!(
        v.verify(&token).await,
        Err(TokenError::Expired { .. })
    ));
}

#[tokio::test]
async fn multiple_issuers_and_static_keys() {
    let idp = Idp::start().await;
    let other = TestKey::p256();
    let v = TokenVerifier::builder()
        .issuer(idp.config())
        .issuer(
            IssuerConfig::new("https://static.example")
                .audience(AUD)
                .algorithms([Algorithm::ES256])
                .static_jwks(json!({"keys": [other.jwk("s1")]})),
        )
        .clock(idp.clock.clone())
        .build()
        .unwrap();
    let t = idp.now();
    let token = other.sign(
        &json!({"alg": "ES256", "kid": "s1"}),
        &json!({"iss": "https://static.example", "sub": "x", "aud": AUD, "exp": t + 60, "scp": ["a", "b"]}),
    );
    let p = v.verify(&token).await.unwrap();
    assert_eq!(p.issuer.as_deref(), Some("https://static.example"));
    assert_eq!(p.scopes.len(), 2);
    assert!(v.verify(&idp.es256(&idp.claims())).await.is_ok());
    // Static issuer never fetches; unknown kid there is simply unknown.
    let unknown = other.sign(
        &json!({"alg": "ES256", "kid": "s2"}),
        &json!({"iss": "https://static.example", "sub": "x", "aud": AUD, "exp": t + 60}),
    );
    assert!(matches!(
        v.verify(&unknown).await,
        Err(TokenError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn certificate_bound_tokens() {
    let idp = Idp::start().await;
    let v = idp.verifier();
    let cert_a = b"DER of certificate A".to_vec();
    let cert_b = b"DER of certificate B".to_vec();
    let thumb = etdi_auth::mtls::certificate_thumbprint(&cert_a);
    let token = idp.rs256(&idp.with(json!({"cnf": {"x5t#S256": thumb}})));
    let p = v
        .verify_with_certificate(&token, Some(&cert_a))
        .await
        .unwrap();
    assert_eq!(p.auth_method, AuthMethod::CertificateBoundToken);
    // Same token again (cache hit) with another certificate, or none.
    assert!(matches!(
        v.verify_with_certificate(&token, Some(&cert_b)).await,
        Err(TokenError::CertificateBinding(BindingFailure::Mismatch))
    ));
    assert!(matches!(
        v.verify(&token).await,
        Err(TokenError::CertificateBinding(
            BindingFailure::NoCertificate
        ))
    ));
    // An issuer that requires binding refuses plain bearer tokens.
    let strict = idp.verifier_with(idp.config().require_certificate_binding(true));
    let plain = idp.rs256(&idp.claims());
    assert!(matches!(
        strict.verify_with_certificate(&plain, Some(&cert_a)).await,
        Err(TokenError::CertificateBinding(BindingFailure::NotBound))
    ));
}
