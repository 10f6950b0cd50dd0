//! JWS compact serialisation against the RFC 7515, RFC 7520 and RFC 8037
//! examples on every backend, and the strict header and encoding checks.

// Test helpers outside `#[test]` functions may panic too: clippy.toml only
// exempts the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use base64::Engine as _;
use etdi_crypto::jws::{self, JwsHeader, MAX_TOKEN_BYTES, Validation};
use etdi_crypto::{
    Algorithm, AlgorithmError, CryptoProvider, Jwk, JwsError, JwsPart, SigningKey, VerifyingKey,
    VerifyingKeySet,
};
use serde_json::{Value, json};

fn vectors(name: &str) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "vectors", name]
        .iter()
        .collect();
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn public_key(p: &CryptoProvider, jwk: &Value, alg: Algorithm) -> VerifyingKey {
    let mut public = jwk.clone();
    public.as_object_mut().unwrap().remove("d");
    VerifyingKey::from_jwk(p, &Jwk::from_json(&public.to_string()).unwrap(), Some(alg)).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn rfc7515_appendix_a_verifies_on_every_backend() {
    let doc = vectors("rfc7515.json");
    for p in etdi_crypto::backend::all() {
        for (name, alg) in [
            ("A.2", Algorithm::RS256),
            ("A.3", Algorithm::ES256),
            ("A.4", Algorithm::ES512),
        ] {
            let key = public_key(&p, &doc[name]["key"], alg);
            let token = doc[name]["token"].as_str().unwrap();
            let verified = jws::verify(token, &Validation::new([alg]), &key)
                .unwrap_or_else(|e| panic!("{} {name}: {e}", p.name));
            assert_eq!(verified.header().alg(), alg);
            if name != "A.4" {
                assert!(verified.payload().starts_with(b"{\"iss\":\"joe\",\r\n"));
            } else {
                assert_eq!(verified.payload(), b"Payload");
            }

            // RFC 7515 appendix F: the same JWS with the payload detached.
            let (header, rest) = token.split_once('.').unwrap();
            let (payload, sig) = rest.split_once('.').unwrap();
            let detached = format!("{header}..{sig}");
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            jws::verify_detached(&detached, &payload, &Validation::new([alg]), &key).unwrap();
            assert_eq!(
                jws::verify_detached(&detached, b"other", &Validation::new([alg]), &key)
                    .unwrap_err(),
                JwsError::BadSignature(etdi_crypto::BadSignature)
            );
            // A detached token is not a token with an empty payload.
            assert!(matches!(
                jws::verify(&detached, &Validation::new([alg]), &key),
                Err(JwsError::BadSignature(_))
            ));
            assert_eq!(
                jws::verify_detached(token, &payload, &Validation::new([alg]), &key).unwrap_err(),
                JwsError::DetachedMismatch {
                    detached_expected: true
                }
            );
        }
    }
}

#[test]
fn rfc7515_a5_unsecured_jws_is_refused() {
    let doc = vectors("rfc7515.json");
    let token = doc["A.5"]["token"].as_str().unwrap();
    let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap();
    assert_eq!(
        jws::verify(token, &Validation::new(Algorithm::ALL), key.verifying_key()).unwrap_err(),
        JwsError::Algorithm(AlgorithmError::None)
    );
    assert_eq!(
        jws::peek_header(token).unwrap_err(),
        JwsError::Algorithm(AlgorithmError::None)
    );
    // Inspection tools still see what the token says, without trusting it.
    let (header, payload) = jws::peek_unverified(token).unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header, json!({"alg": "none"}));
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["iss"], "joe");
    assert!(jws::peek_unverified("a.b").is_err());
    assert!(jws::peek_unverified("e30=.e30.").is_err());
}

#[test]
fn rfc8037_eddsa_verifies_on_every_backend() {
    let doc = vectors("rfc8037.json");
    for p in etdi_crypto::backend::all() {
        let key = public_key(&p, &doc["key"], Algorithm::EdDSA);
        let verified = jws::verify(
            doc["token"].as_str().unwrap(),
            &Validation::new([Algorithm::EdDSA]),
            &key,
        )
        .unwrap();
        assert_eq!(
            verified.payload(),
            doc["payload"].as_str().unwrap().as_bytes()
        );
    }
}

#[test]
fn rfc7520_examples_verify_by_kid_on_every_backend() {
    let doc = vectors("rfc7520.json");
    for p in etdi_crypto::backend::all() {
        // The cookbook's public keys form the trusted set; RSA keys carry no
        // `alg`, so the caller names it (a JWKS entry without `alg` cannot
        // pick its own algorithm).
        let mut set = VerifyingKeySet::new();
        let rsa = |alg| public_key(&p, &doc["keys"]["3.3"], alg);
        let ec = public_key(&p, &doc["keys"]["3.1"], Algorithm::ES512);
        assert_eq!(ec.kid().as_str(), "bilbo.baggins@hobbiton.example");
        for (section, key) in [
            ("4.1", rsa(Algorithm::RS256)),
            ("4.2", rsa(Algorithm::PS384)),
            ("4.3", ec),
        ] {
            set.insert(key);
            let alg = Algorithm::parse(doc[section]["alg"].as_str().unwrap()).unwrap();
            let verified = jws::verify(
                doc[section]["token"].as_str().unwrap(),
                &Validation::new([alg]),
                &set,
            )
            .unwrap_or_else(|e| panic!("{} {section}: {e}", p.name));
            assert_eq!(
                b64(verified.payload()),
                doc["payload_b64"].as_str().unwrap()
            );
            assert_eq!(
                verified.key().kid().as_str(),
                "bilbo.baggins@hobbiton.example"
            );
        }
        // 4.4 is HS256: refused whatever the allow-list says.
        assert!(matches!(
            jws::verify(
                doc["4.4"]["token"].as_str().unwrap(),
                &Validation::new(Algorithm::ALL),
                &set
            ),
            Err(JwsError::Algorithm(AlgorithmError::Symmetric { .. }))
        ));
    }
}

/// A key and a helper that signs arbitrary header JSON with it, to build
/// tokens our own signer would refuse to produce.
struct Forge {
    key: SigningKey,
}

impl Forge {
    fn new(alg: Algorithm) -> Self {
        Forge {
            key: SigningKey::generate(CryptoProvider::get_default(), alg).unwrap(),
        }
    }

    fn token(&self, header: &Value, payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload));
        let sig = self.key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&sig))
    }

    fn trusted(&self) -> VerifyingKey {
        self.key.verifying_key().clone()
    }
}

#[test]
fn header_algorithm_must_be_allowed_and_match_the_key() {
    let es256 = Forge::new(Algorithm::ES256);
    let token = es256.token(&json!({"alg": "ES256"}), b"x");
    assert_eq!(
        jws::verify(
            &token,
            &Validation::new([Algorithm::RS256]),
            &es256.trusted()
        )
        .unwrap_err(),
        JwsError::AlgorithmNotAllowed {
            alg: Algorithm::ES256
        }
    );
    assert_eq!(
        jws::verify(&token, &Validation::new([]), &es256.trusted()).unwrap_err(),
        JwsError::AlgorithmNotAllowed {
            alg: Algorithm::ES256
        }
    );
    // The header claims ES384 but the trusted key is ES256: the key decides.
    let lying = es256.token(&json!({"alg": "ES384"}), b"x");
    assert_eq!(
        jws::verify(
            &lying,
            &Validation::new([Algorithm::ES256, Algorithm::ES384]),
            &es256.trusted()
        )
        .unwrap_err(),
        JwsError::KeyAlgorithmMismatch {
            header: Algorithm::ES384,
            key: Algorithm::ES256
        }
    );
    // An RSA key imported for RS256 does not verify PS256 tokens.
    let rsa = Forge::new(Algorithm::RS256);
    let ps = rsa.token(&json!({"alg": "PS256"}), b"x");
    assert!(matches!(
        jws::verify(
            &ps,
            &Validation::new([Algorithm::RS256, Algorithm::PS256]),
            &rsa.trusted()
        ),
        Err(JwsError::KeyAlgorithmMismatch { .. })
    ));
    for (alg, err) in [
        ("none", AlgorithmError::None),
        (
            "HS256",
            AlgorithmError::Symmetric {
                name: "HS256".into(),
            },
        ),
        (
            "HS512",
            AlgorithmError::Symmetric {
                name: "HS512".into(),
            },
        ),
        (
            "es256",
            AlgorithmError::Unsupported {
                name: "es256".into(),
            },
        ),
    ] {
        let token = es256.token(&json!({ "alg": alg }), b"x");
        assert_eq!(
            jws::verify(&token, &Validation::new(Algorithm::ALL), &es256.trusted()).unwrap_err(),
            JwsError::Algorithm(err)
        );
    }
    // Signing refuses a header that names another algorithm than the key.
    assert_eq!(
        jws::sign(&es256.key, &JwsHeader::new(Algorithm::RS256), b"x").unwrap_err(),
        JwsError::SigningAlgorithmMismatch {
            header: Algorithm::RS256,
            key: Algorithm::ES256
        }
    );
}

#[test]
fn keys_in_the_token_are_never_trusted() {
    let forge = Forge::new(Algorithm::ES256);
    let attacker = Forge::new(Algorithm::ES256);
    let jwk: Value =
        serde_json::from_str(&attacker.key.verifying_key().to_jwk().to_json()).unwrap();
    for (name, value) in [
        ("jwk", jwk),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("b64", json!(false)),
    ] {
        let mut header = json!({"alg": "ES256"});
        header[name] = value;
        let token = attacker.token(&header, b"x");
        let err = jws::verify(
            &token,
            &Validation::new([Algorithm::ES256]),
            &forge.trusted(),
        )
        .unwrap_err();
        assert!(
            matches!(err, JwsError::ForbiddenHeader { name: n } if n == name),
            "{name}: {err}"
        );
    }
}

#[test]
fn crit_typ_and_kid_rules() {
    let forge = Forge::new(Algorithm::ES256);
    let v = || Validation::new([Algorithm::ES256]);
    let crit = forge.token(
        &json!({"alg": "ES256", "crit": ["etdi-chain"], "etdi-chain": 1}),
        b"x",
    );
    assert_eq!(
        jws::verify(&crit, &v(), &forge.trusted()).unwrap_err(),
        JwsError::UnsupportedCritical {
            name: "etdi-chain".into()
        }
    );
    let verified = jws::verify(
        &crit,
        &v().understand_critical("etdi-chain"),
        &forge.trusted(),
    )
    .unwrap();
    assert_eq!(verified.header().param("etdi-chain"), Some(&json!(1)));
    assert_eq!(verified.header().crit(), ["etdi-chain".to_owned()]);
    // Our own signer produces the same shape.
    let header = JwsHeader::for_key(&forge.key)
        .with_critical_param("etdi-chain", json!(1))
        .unwrap();
    let token = jws::sign(&forge.key, &header, b"x").unwrap();
    assert!(matches!(
        jws::verify(&token, &v(), &forge.trusted()),
        Err(JwsError::UnsupportedCritical { .. })
    ));

    let typed = forge.token(
        &json!({"alg": "ES256", "typ": "application/ETDI-Attestation+JWT"}),
        b"x",
    );
    jws::verify(
        &typed,
        &v().expect_typ("etdi-attestation+jwt"),
        &forge.trusted(),
    )
    .unwrap();
    assert_eq!(
        jws::verify(
            &typed,
            &v().expect_typ("etdi-request+jwt"),
            &forge.trusted()
        )
        .unwrap_err(),
        JwsError::UnexpectedType {
            expected: "etdi-request+jwt".into(),
            found: Some("application/ETDI-Attestation+JWT".into())
        }
    );
    let untyped = forge.token(&json!({"alg": "ES256"}), b"x");
    assert!(matches!(
        jws::verify(&untyped, &v().expect_typ("jwt"), &forge.trusted()),
        Err(JwsError::UnexpectedType { found: None, .. })
    ));
    assert_eq!(
        jws::verify(&untyped, &v().require_kid(true), &forge.trusted()).unwrap_err(),
        JwsError::MissingKeyId
    );

    // Resolution by kid from a trusted set; unknown kids are reported.
    let other = Forge::new(Algorithm::ES256);
    let set: VerifyingKeySet = [forge.trusted(), other.trusted()].into_iter().collect();
    let with_kid = jws::sign(&forge.key, &JwsHeader::for_key(&forge.key), b"x").unwrap();
    assert_eq!(
        jws::verify(&with_kid, &v(), &set).unwrap().key().kid(),
        forge.key.kid()
    );
    assert_eq!(
        jws::verify(&untyped, &v(), &set).unwrap_err(),
        JwsError::UnknownKey { kid: None },
        "a multi-key set never guesses"
    );
    let unknown = forge.token(&json!({"alg": "ES256", "kid": "nobody"}), b"x");
    assert_eq!(
        jws::verify(&unknown, &v(), &set).unwrap_err(),
        JwsError::UnknownKey {
            kid: Some("nobody".into())
        }
    );
    // A token signed by a trusted key but naming the other trusted key's kid fails.
    let wrong_kid = forge.token(
        &json!({"alg": "ES256", "kid": other.key.kid().as_str()}),
        b"x",
    );
    assert!(matches!(
        jws::verify(&wrong_kid, &v(), &set),
        Err(JwsError::BadSignature(_))
    ));
    // A resolver can be a closure.
    let by_closure =
        |h: &JwsHeader| (h.kid() == Some(forge.key.kid().as_str())).then(|| forge.trusted());
    jws::verify(&with_kid, &v(), &by_closure).unwrap();
}

#[test]
fn header_json_must_be_strict() {
    let forge = Forge::new(Algorithm::ES256);
    let v = Validation::new([Algorithm::ES256]);
    let raw = |header: &str| {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(b"x"));
        let sig = forge.key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&sig))
    };
    for header in [
        r#"{"alg":"ES256","alg":"ES256"}"#,
        r#"{"alg":"ES256"}garbage"#,
        r#"["ES256"]"#,
        "",
        "\u{feff}{\"alg\":\"ES256\"}",
    ] {
        assert!(
            matches!(
                jws::verify(&raw(header), &v, &forge.trusted()),
                Err(JwsError::HeaderJson { .. })
            ),
            "{header:?}"
        );
    }
    for header in [
        r#"{"alg":["ES256"]}"#,
        r#"{"alg":"ES256","kid":7}"#,
        r#"{"alg":"ES256","crit":"x"}"#,
        r#"{}"#,
    ] {
        assert!(
            matches!(
                jws::verify(&raw(header), &v, &forge.trusted()),
                Err(JwsError::HeaderMember { .. })
            ),
            "{header:?}"
        );
    }
    // Unknown, non-critical members are ignored as RFC 7515 §4 requires.
    jws::verify(
        &raw(r#"{"alg":"ES256","x-note":"hi"}"#),
        &v,
        &forge.trusted(),
    )
    .unwrap();
}

#[test]
fn encoding_and_size_are_strict() {
    let forge = Forge::new(Algorithm::ES256);
    let v = Validation::new([Algorithm::ES256]);
    let good = forge.token(&json!({"alg": "ES256"}), b"payload!");
    jws::verify(&good, &v, &forge.trusted()).unwrap();
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();

    assert_eq!(
        jws::verify(&format!("{h}.{p}"), &v, &forge.trusted()).unwrap_err(),
        JwsError::NotCompact { parts: 2 }
    );
    assert_eq!(
        jws::verify(&format!("{good}.x"), &v, &forge.trusted()).unwrap_err(),
        JwsError::NotCompact { parts: 4 }
    );
    for (token, part) in [
        (format!("{h}=.{p}.{s}"), JwsPart::Header),
        (format!("{h}.{p}=.{s}"), JwsPart::Payload),
        (format!("{h}.{p}.{s}="), JwsPart::Signature),
        (format!("{h}.{p}.{s} "), JwsPart::Signature),
        (format!("{h}.{p}.\n{s}"), JwsPart::Signature),
        (format!("{h}.{}.{s}", p.replace('h', "+")), JwsPart::Payload),
        (
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
            JwsPart::Signature,
        ),
    ] {
        if token == good {
            continue;
        }
        let err = jws::verify(&token, &v, &forge.trusted()).unwrap_err();
        assert!(
            err == JwsError::Base64 { part } || matches!(err, JwsError::BadSignature(_)),
            "{token}: {err}"
        );
    }
    // Non-canonical trailing bits: "cGF5bG9hZCE" encodes "payload!"; the last
    // character with the low bits set must be refused, not silently decoded.
    assert_eq!(p, "cGF5bG9hZCE");
    assert_eq!(
        jws::verify(&format!("{h}.cGF5bG9hZCF.{s}"), &v, &forge.trusted()).unwrap_err(),
        JwsError::Base64 {
            part: JwsPart::Payload
        }
    );

    // Size limits: the default 64 KiB, and a caller-chosen one.
    let big = forge.token(&json!({"alg": "ES256"}), &vec![b'a'; MAX_TOKEN_BYTES]);
    assert!(matches!(
        jws::verify(&big, &v, &forge.trusted()),
        Err(JwsError::TooLarge {
            limit: MAX_TOKEN_BYTES,
            ..
        })
    ));
    assert!(matches!(
        jws::verify(&good, &v.clone().max_token_bytes(16), &forge.trusted()),
        Err(JwsError::TooLarge { limit: 16, .. })
    ));
    let huge_header = forge.token(&json!({"alg": "ES256", "pad": "x".repeat(10_000)}), b"x");
    assert!(matches!(
        jws::verify(&huge_header, &v, &forge.trusted()),
        Err(JwsError::TooLarge { .. })
    ));
}

#[test]
fn every_single_byte_change_is_rejected() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let forge = Forge::new(alg);
        let v = Validation::new([alg]);
        let token = jws::sign(
            &forge.key,
            &JwsHeader::for_key(&forge.key),
            b"{\"tool\":\"read\"}",
        )
        .unwrap();
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            // Swap to another base64url character (or to a dot), so every
            // position is tested with a plausible-looking change.
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(
                jws::verify(&changed, &v, &forge.trusted()).is_err(),
                "{alg}: byte {i} of {token}"
            );
        }
    }
}

#[test]
fn error_messages_are_for_people() {
    let messages = [
        JwsError::Algorithm(AlgorithmError::None).to_string(),
        JwsError::BadSignature(etdi_crypto::BadSignature).to_string(),
        JwsError::UnknownKey {
            kid: Some("k1".into()),
        }
        .to_string(),
        JwsError::UnexpectedType {
            expected: "jwt".into(),
            found: None,
        }
        .to_string(),
        JwsError::Base64 {
            part: JwsPart::Payload,
        }
        .to_string(),
    ];
    assert_eq!(messages[1], "signature verification failed");
    for m in messages {
        assert!(
            !m.contains("::") && !m.contains("Some(") && !m.contains("JwsError"),
            "{m}"
        );
    }
}
