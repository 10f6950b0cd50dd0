//! One conformance suite, run against every backend: the same functions are
//! instantiated once per provider by the `conformance!` macro at the bottom.

// Test helpers outside `#[test]` functions may panic too: clippy.toml only
// exempts the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use etdi_crypto::jws::{self, JwsHeader, Validation};
use etdi_crypto::{
    Algorithm, AlgorithmError, BadSignature, CryptoProvider, Curve, Jwk, KeyError, KeyType,
    RsaKeySize, SigningKey, VerifyingKey,
};

fn vector(path: &str) -> String {
    let full: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "vectors", path]
        .iter()
        .collect();
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn vector_bytes(path: &str) -> Vec<u8> {
    let full: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "vectors", path]
        .iter()
        .collect();
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&vector(path)).unwrap()
}

fn jwk(value: &serde_json::Value) -> Jwk {
    Jwk::from_json(&value.to_string()).unwrap()
}

/// One key per algorithm. RSA keys are generated once and reused for every
/// RSA algorithm, because RSA generation is slow in unoptimised builds.
fn keys_for_every_algorithm(p: &CryptoProvider) -> Vec<SigningKey> {
    let rsa = SigningKey::generate(p, Algorithm::RS256).unwrap();
    let rsa_der = rsa.to_pkcs8_der();
    Algorithm::ALL
        .iter()
        .map(|&alg| match alg.key_type() {
            KeyType::Rsa => SigningKey::from_pkcs8_der(p, &rsa_der, alg).unwrap(),
            _ => SigningKey::generate(p, alg).unwrap(),
        })
        .collect()
}

fn sign_and_verify_every_algorithm(p: &CryptoProvider) {
    for key in keys_for_every_algorithm(p) {
        let alg = key.algorithm();
        let message = b"the exact bytes the model sees";
        let sig = key.sign(message).unwrap();
        let vk = key.verifying_key();
        assert_eq!(sig.len(), vk.signature_len(), "{alg}");
        let expected_len = match alg.key_type() {
            KeyType::Rsa => 256,
            KeyType::Ec(curve) => 2 * curve.field_len(),
            KeyType::Ed25519 => 64,
        };
        assert_eq!(sig.len(), expected_len, "{alg}: JOSE signature size");
        assert_eq!(vk.verify(message, &sig), Ok(()), "{alg}");
        assert_eq!(
            vk.verify(b"the exact bytes the model saw", &sig),
            Err(BadSignature),
            "{alg}"
        );
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                vk.verify(message, &bad),
                Err(BadSignature),
                "{alg} flipped byte {i}"
            );
        }
        assert_eq!(
            vk.verify(message, &sig[1..]),
            Err(BadSignature),
            "{alg} short"
        );
        let mut long = sig.clone();
        long.push(0);
        assert_eq!(vk.verify(message, &long), Err(BadSignature), "{alg} long");
        let mut padded = vec![0u8];
        padded.extend_from_slice(&sig);
        assert_eq!(
            vk.verify(message, &padded),
            Err(BadSignature),
            "{alg} zero-prefixed"
        );
        assert_eq!(vk.verify(message, &[]), Err(BadSignature), "{alg} empty");
    }
}

fn a_signature_does_not_verify_under_another_algorithm(p: &CryptoProvider) {
    let rsa = SigningKey::generate(p, Algorithm::RS256).unwrap();
    let der = rsa.to_pkcs8_der();
    let rs256 = rsa.sign(b"m").unwrap();
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        let other = SigningKey::from_pkcs8_der(p, &der, alg).unwrap();
        assert_eq!(
            other.verifying_key().verify(b"m", &rs256),
            Err(BadSignature),
            "{alg}"
        );
    }
}

fn generated_rsa_sizes(p: &CryptoProvider) {
    // 3072 only: 4096-bit generation in an unoptimised build takes too long
    // for a unit test; 4096-bit keys are covered by import below and by the
    // Wycheproof PS512 set.
    let key = SigningKey::generate_rsa(p, Algorithm::PS384, RsaKeySize::Bits3072).unwrap();
    assert_eq!(key.verifying_key().rsa_bits(), Some(3072));
    let sig = key.sign(b"m").unwrap();
    assert_eq!(sig.len(), 384);
    key.verifying_key().verify(b"m", &sig).unwrap();
}

fn encodings_round_trip_and_keep_the_thumbprint(p: &CryptoProvider) {
    for key in keys_for_every_algorithm(p) {
        let alg = key.algorithm();
        let thumbprint = key.thumbprint().clone();
        assert_eq!(
            key.kid(),
            &thumbprint,
            "{alg}: kid defaults to the thumbprint"
        );
        assert_eq!(thumbprint.as_str().len(), 43);

        let pem = key.to_pkcs8_pem().unwrap();
        let from_pem = SigningKey::from_pkcs8_pem(p, &pem, alg).unwrap();
        assert_eq!(from_pem.thumbprint(), &thumbprint, "{alg} PKCS#8");

        let private_jwk = key.to_private_jwk().unwrap();
        assert!(private_jwk.is_private());
        assert_eq!(private_jwk.alg(), Some(alg.name()));
        assert_eq!(private_jwk.key_use(), Some("sig"));
        let reparsed = Jwk::from_json(&private_jwk.to_json()).unwrap();
        let from_jwk = SigningKey::from_jwk(p, &reparsed, None).unwrap();
        assert_eq!(from_jwk.thumbprint(), &thumbprint, "{alg} private JWK");
        assert_eq!(from_jwk.algorithm(), alg);
        // The JWK path rebuilds PKCS#8 from components: the result must sign.
        let sig = from_jwk.sign(b"m").unwrap();
        key.verifying_key().verify(b"m", &sig).unwrap();

        let spki = key.verifying_key().to_spki_pem().unwrap();
        let vk = VerifyingKey::from_spki_pem(p, &spki, alg).unwrap();
        assert_eq!(vk.thumbprint(), &thumbprint, "{alg} SPKI");
        assert!(vk.same_key_as(key.verifying_key()));

        let public_jwk = key.verifying_key().to_jwk();
        assert!(!public_jwk.is_private());
        assert_eq!(public_jwk.thumbprint().unwrap(), thumbprint);
        let vk = VerifyingKey::from_jwk(p, &public_jwk, None).unwrap();
        assert_eq!(vk.kid(), key.kid());
        assert_eq!(private_jwk.to_public(), public_jwk);
        // A private JWK cannot be loaded for verification with its secrets
        // silently kept: the verifying key only ever holds the public half.
        let vk2 = VerifyingKey::from_jwk(p, &private_jwk, None).unwrap();
        assert!(vk2.same_key_as(&vk));
        vk.verify(b"m", &sig).unwrap();
    }
}

fn debug_output_never_shows_secrets(p: &CryptoProvider) {
    for key in keys_for_every_algorithm(p) {
        let jwk = key.to_private_jwk().unwrap();
        let json: serde_json::Value = serde_json::from_str(&jwk.to_json()).unwrap();
        let d = json["d"].as_str().unwrap().to_owned();
        for shown in [
            format!("{key:?}"),
            format!("{jwk:?}"),
            format!("{:?}", key.verifying_key()),
        ] {
            assert!(!shown.contains(&d), "{}: {shown}", key.algorithm());
            assert!(!shown.contains(&d[..12]), "{}: {shown}", key.algorithm());
        }
        assert!(format!("{jwk:?}").contains("redacted"));
    }
}

fn rfc_keys_sign_exactly_as_published(p: &CryptoProvider) {
    // RS256 and EdDSA are deterministic: our signature must equal the RFC's.
    let rfc7515 = json("rfc7515.json");
    let a2 = &rfc7515["A.2"];
    let key = SigningKey::from_jwk(p, &jwk(&a2["key"]), Some(Algorithm::RS256)).unwrap();
    let token = a2["token"].as_str().unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let ours = key.sign(input.as_bytes()).unwrap();
    assert_eq!(b64(&ours), sig, "RFC 7515 A.2");

    let rfc8037 = json("rfc8037.json");
    let key = SigningKey::from_jwk(p, &jwk(&rfc8037["key"]), None).unwrap();
    assert_eq!(key.algorithm(), Algorithm::EdDSA);
    assert_eq!(
        key.thumbprint().as_str(),
        rfc8037["thumbprint"].as_str().unwrap(),
        "RFC 8037 A.3"
    );
    let token = rfc8037["token"].as_str().unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(
        b64(&key.sign(input.as_bytes()).unwrap()),
        sig,
        "RFC 8037 A.4"
    );

    let rfc7520 = json("rfc7520.json");
    let key =
        SigningKey::from_jwk(p, &jwk(&rfc7520["keys"]["3.4"]), Some(Algorithm::RS256)).unwrap();
    assert_eq!(key.kid().as_str(), "bilbo.baggins@hobbiton.example");
    let token = rfc7520["4.1"]["token"].as_str().unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(
        b64(&key.sign(input.as_bytes()).unwrap()),
        sig,
        "RFC 7520 4.1"
    );

    // ECDSA is randomised: sign with the RFC keys and check our own output.
    for (doc, name, alg) in [
        (&rfc7515, "A.3", Algorithm::ES256),
        (&rfc7515, "A.4", Algorithm::ES512),
    ] {
        let key = SigningKey::from_jwk(p, &jwk(&doc[name]["key"]), None).unwrap();
        assert_eq!(key.algorithm(), alg);
        let sig = key.sign(b"m").unwrap();
        key.verifying_key().verify(b"m", &sig).unwrap();
    }
}

fn rfc7638_thumbprint(p: &CryptoProvider) {
    let doc = json("rfc7638.json");
    let expected = doc["thumbprint"].as_str().unwrap();
    assert_eq!(expected, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    let key = jwk(&doc["key"]);
    assert_eq!(key.thumbprint().unwrap().as_str(), expected);
    // The RFC 7638 example key is 2048 bits and marked RS256.
    let vk = VerifyingKey::from_jwk(p, &key, None).unwrap();
    assert_eq!(vk.thumbprint().as_str(), expected);
    assert_eq!(vk.kid().as_str(), "2011-04-29", "the JWK's own kid is kept");
    assert_eq!(vk.algorithm(), Algorithm::RS256);
}

fn openssl_keys_and_signatures(p: &CryptoProvider) {
    let msg = vector_bytes("openssl/msg.txt");

    let rsa = SigningKey::from_pkcs8_pem(p, &vector("openssl/rsa2048.pkcs8.pem"), Algorithm::RS256)
        .unwrap();
    let rsa_pub =
        VerifyingKey::from_spki_pem(p, &vector("openssl/rsa2048.spki.pem"), Algorithm::RS256)
            .unwrap();
    assert!(rsa_pub.same_key_as(rsa.verifying_key()));
    assert_eq!(
        rsa_pub.verify(&msg, &vector_bytes("openssl/rsa2048.rs256.sig")),
        Ok(())
    );
    // RS256 is deterministic, so our signature equals OpenSSL's.
    assert_eq!(
        rsa.sign(&msg).unwrap(),
        vector_bytes("openssl/rsa2048.rs256.sig")
    );
    let ps = VerifyingKey::from_spki_pem(p, &vector("openssl/rsa2048.spki.pem"), Algorithm::PS256)
        .unwrap();
    assert_eq!(
        ps.verify(&msg, &vector_bytes("openssl/rsa2048.ps256.sig")),
        Ok(())
    );

    let ed = SigningKey::from_pkcs8_pem(p, &vector("openssl/ed25519.pkcs8.pem"), Algorithm::EdDSA)
        .unwrap();
    let ed_pub =
        VerifyingKey::from_spki_pem(p, &vector("openssl/ed25519.spki.pem"), Algorithm::EdDSA)
            .unwrap();
    assert!(ed_pub.same_key_as(ed.verifying_key()));
    assert_eq!(ed.sign(&msg).unwrap(), vector_bytes("openssl/ed25519.sig"));
    assert_eq!(
        ed_pub.verify(&msg, &vector_bytes("openssl/ed25519.sig")),
        Ok(())
    );

    for (name, alg) in [("p256", Algorithm::ES256), ("p521", Algorithm::ES512)] {
        let sk = SigningKey::from_pkcs8_pem(p, &vector(&format!("openssl/{name}.pkcs8.pem")), alg)
            .unwrap();
        let vk = VerifyingKey::from_spki_pem(p, &vector(&format!("openssl/{name}.spki.pem")), alg)
            .unwrap();
        assert!(vk.same_key_as(sk.verifying_key()), "{name}");
        vk.verify(&msg, &sk.sign(&msg).unwrap()).unwrap();
    }
}

fn weak_foreign_and_mismatched_keys_are_refused(p: &CryptoProvider) {
    let spki =
        |name: &str, alg| VerifyingKey::from_spki_pem(p, &vector(&format!("openssl/{name}")), alg);
    let pkcs8 =
        |name: &str, alg| SigningKey::from_pkcs8_pem(p, &vector(&format!("openssl/{name}")), alg);

    assert_eq!(
        spki("rsa1024.spki.pem", Algorithm::RS256).unwrap_err(),
        KeyError::RsaTooSmall { bits: 1024 }
    );
    assert_eq!(
        pkcs8("rsa1024.pkcs8.pem", Algorithm::PS256).unwrap_err(),
        KeyError::RsaTooSmall { bits: 1024 }
    );
    assert_eq!(
        spki("rsa4608.spki.pem", Algorithm::RS256).unwrap_err(),
        KeyError::RsaTooLarge {
            bits: 4608,
            max: 4096
        }
    );

    // The algorithm must fit the key type, curve and size.
    assert_eq!(
        spki("p521.spki.pem", Algorithm::ES256).unwrap_err(),
        KeyError::AlgorithmMismatch {
            alg: Algorithm::ES256,
            key: KeyType::Ec(Curve::P521)
        }
    );
    assert!(matches!(
        pkcs8("p256.pkcs8.pem", Algorithm::RS256),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
    assert!(matches!(
        pkcs8("rsa2048.pkcs8.pem", Algorithm::EdDSA),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
    assert!(matches!(
        spki("ed25519.spki.pem", Algorithm::ES256),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
    for alg in Algorithm::ALL {
        let Err(KeyError::AlgorithmMismatch { .. }) =
            SigningKey::generate_rsa(p, alg, RsaKeySize::Bits2048)
        else {
            assert_eq!(alg.key_type(), KeyType::Rsa, "{alg}");
            continue;
        };
        assert_ne!(alg.key_type(), KeyType::Rsa);
    }

    // Encodings that are not PKCS#8 / SPKI, and unsupported keys.
    assert!(matches!(
        pkcs8("rsa2048.pkcs1.pem", Algorithm::RS256),
        Err(KeyError::PemLabel {
            expected: "PRIVATE KEY",
            ..
        })
    ));
    assert!(matches!(
        pkcs8("p256.sec1.pem", Algorithm::ES256),
        Err(KeyError::PemLabel {
            expected: "PRIVATE KEY",
            ..
        })
    ));
    assert!(matches!(
        spki("p256.pkcs8.pem", Algorithm::ES256),
        Err(KeyError::PemLabel {
            expected: "PUBLIC KEY",
            ..
        })
    ));
    assert!(matches!(
        spki("p256-compressed.spki.pem", Algorithm::ES256),
        Err(KeyError::Unsupported { .. })
    ));
    assert!(matches!(
        spki("k256.spki.pem", Algorithm::ES256),
        Err(KeyError::Unsupported { .. })
    ));
    assert!(matches!(
        spki("x25519.spki.pem", Algorithm::EdDSA),
        Err(KeyError::Unsupported { .. })
    ));
    assert!(matches!(
        VerifyingKey::from_spki_der(p, b"\x30\x03\x02\x01\x00", Algorithm::ES256),
        Err(KeyError::Encoding { .. })
    ));
    assert!(matches!(
        SigningKey::from_pkcs8_der(p, b"not der", Algorithm::ES256),
        Err(KeyError::Encoding { .. })
    ));
}

fn bad_jwks_are_refused(p: &CryptoProvider) {
    let rfc7515 = json("rfc7515.json");
    let rsa = rfc7515["A.2"]["key"].clone();
    let ec = rfc7515["A.3"]["key"].clone();
    let with = |base: &serde_json::Value, member: &str, value: serde_json::Value| {
        let mut v = base.clone();
        v[member] = value;
        Jwk::from_json(&v.to_string()).unwrap()
    };
    let without = |base: &serde_json::Value, member: &str| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(member);
        Jwk::from_json(&v.to_string()).unwrap()
    };

    // An RSA key alone does not name its padding or hash.
    assert_eq!(
        VerifyingKey::from_jwk(p, &jwk(&rsa), None).unwrap_err(),
        KeyError::AlgorithmRequired
    );
    assert_eq!(
        VerifyingKey::from_jwk(p, &with(&rsa, "alg", "HS256".into()), None).unwrap_err(),
        KeyError::Algorithm(AlgorithmError::Symmetric {
            name: "HS256".into()
        })
    );
    assert_eq!(
        VerifyingKey::from_jwk(p, &with(&rsa, "alg", "none".into()), None).unwrap_err(),
        KeyError::Algorithm(AlgorithmError::None)
    );
    assert_eq!(
        VerifyingKey::from_jwk(
            p,
            &with(&rsa, "alg", "RS384".into()),
            Some(Algorithm::RS256)
        )
        .unwrap_err(),
        KeyError::MarkedAlgorithm {
            marked: Algorithm::RS384,
            requested: Algorithm::RS256
        }
    );
    assert!(matches!(
        VerifyingKey::from_jwk(p, &with(&ec, "alg", "ES384".into()), None),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
    assert!(matches!(
        SigningKey::from_jwk(p, &without(&rsa, "qi"), Some(Algorithm::RS256)),
        Err(KeyError::JwkMember { member: "qi", .. })
    ));
    assert!(matches!(
        VerifyingKey::from_jwk(p, &without(&ec, "y"), None),
        Err(KeyError::JwkMember { member: "y", .. })
    ));
    assert!(matches!(
        VerifyingKey::from_jwk(p, &with(&ec, "x", "AAAA".into()), None),
        Err(KeyError::JwkMember { member: "x", .. })
    ));
    assert!(matches!(
        VerifyingKey::from_jwk(
            p,
            &with(
                &ec,
                "x",
                "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU=".into()
            ),
            None
        ),
        Err(KeyError::JwkMember { member: "x", .. })
    ));
    assert!(matches!(
        VerifyingKey::from_jwk(p, &with(&ec, "crv", "P-192".into()), None),
        Err(KeyError::Unsupported { .. })
    ));
    assert!(matches!(
        VerifyingKey::from_jwk(
            p,
            &jwk(&serde_json::json!({"kty": "oct", "k": "AAAA"})),
            None
        ),
        Err(KeyError::Unsupported { .. })
    ));
    // A point that is not on the curve is refused by the backend.
    let mut off_curve = ec.clone();
    off_curve["y"] = "y_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into();
    off_curve.as_object_mut().unwrap().remove("d");
    assert_eq!(
        VerifyingKey::from_jwk(p, &jwk(&off_curve), None).unwrap_err(),
        KeyError::Rejected
    );
    // The public half must belong to the private half.
    let other = SigningKey::generate(p, Algorithm::ES256)
        .unwrap()
        .verifying_key()
        .to_jwk();
    let other: serde_json::Value = serde_json::from_str(&other.to_json()).unwrap();
    let mut mixed = ec.clone();
    mixed["x"] = other["x"].clone();
    mixed["y"] = other["y"].clone();
    assert!(matches!(
        SigningKey::from_jwk(p, &jwk(&mixed), None),
        Err(KeyError::PublicKeyMismatch | KeyError::Rejected)
    ));
    // An RSA private key with a wrong prime is refused by the backend.
    let mut broken = rsa.clone();
    broken["q"] = rsa["p"].clone();
    assert!(matches!(
        SigningKey::from_jwk(p, &jwk(&broken), Some(Algorithm::RS256)),
        Err(KeyError::Rejected)
    ));
    // Duplicate members are refused at parse time.
    assert!(matches!(
        Jwk::from_json(r#"{"kty":"EC","kty":"RSA"}"#),
        Err(KeyError::Jwk { .. })
    ));
}

fn jws_round_trip_every_algorithm(p: &CryptoProvider) {
    for key in keys_for_every_algorithm(p) {
        let alg = key.algorithm();
        let header = JwsHeader::for_key(&key).with_typ("etdi-test+jwt");
        let validation = Validation::new([alg])
            .expect_typ("etdi-test+jwt")
            .require_kid(true);
        let trusted = key.verifying_key().clone();

        let token = jws::sign(&key, &header, b"{\"hello\":1}").unwrap();
        let verified = jws::verify(&token, &validation, &trusted).unwrap();
        assert_eq!(verified.payload(), b"{\"hello\":1}");
        assert_eq!(verified.header().alg(), alg);
        assert_eq!(verified.header().kid(), Some(key.kid().as_str()));

        let detached = jws::sign_detached(&key, &header, b"payload").unwrap();
        assert!(detached.contains(".."));
        jws::verify_detached(&detached, b"payload", &validation, &trusted).unwrap();
        assert!(matches!(
            jws::verify_detached(&detached, b"payloaD", &validation, &trusted),
            Err(etdi_crypto::JwsError::BadSignature(_))
        ));
    }
}

fn keys_are_shared_across_threads(p: &CryptoProvider) {
    let key = SigningKey::generate(p, Algorithm::ES256).unwrap();
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let key = key.clone();
            s.spawn(move || {
                let sig = key.sign(&[i]).unwrap();
                key.verifying_key().verify(&[i], &sig).unwrap();
            });
        }
    });
}

fn random_bytes(p: &CryptoProvider) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    p.fill_random(&mut a).unwrap();
    p.fill_random(&mut b).unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 32]);
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

macro_rules! conformance {
    ($backend:ident, $provider:expr) => {
        mod $backend {
            use super::*;

            fn provider() -> CryptoProvider {
                $provider
            }

            #[test]
            fn sign_and_verify_every_algorithm() {
                super::sign_and_verify_every_algorithm(&provider());
            }

            #[test]
            fn a_signature_does_not_verify_under_another_algorithm() {
                super::a_signature_does_not_verify_under_another_algorithm(&provider());
            }

            #[test]
            fn generated_rsa_sizes() {
                super::generated_rsa_sizes(&provider());
            }

            #[test]
            fn encodings_round_trip_and_keep_the_thumbprint() {
                super::encodings_round_trip_and_keep_the_thumbprint(&provider());
            }

            #[test]
            fn debug_output_never_shows_secrets() {
                super::debug_output_never_shows_secrets(&provider());
            }

            #[test]
            fn rfc_keys_sign_exactly_as_published() {
                super::rfc_keys_sign_exactly_as_published(&provider());
            }

            #[test]
            fn rfc7638_thumbprint() {
                super::rfc7638_thumbprint(&provider());
            }

            #[test]
            fn openssl_keys_and_signatures() {
                super::openssl_keys_and_signatures(&provider());
            }

            #[test]
            fn weak_foreign_and_mismatched_keys_are_refused() {
                super::weak_foreign_and_mismatched_keys_are_refused(&provider());
            }

            #[test]
            fn bad_jwks_are_refused() {
                super::bad_jwks_are_refused(&provider());
            }

            #[test]
            fn jws_round_trip_every_algorithm() {
                super::jws_round_trip_every_algorithm(&provider());
            }

            #[test]
            fn keys_are_shared_across_threads() {
                super::keys_are_shared_across_threads(&provider());
            }

            #[test]
            fn random_bytes() {
                super::random_bytes(&provider());
            }
        }
    };
}

conformance!(aws_lc, etdi_crypto::backend::aws_lc::provider());
#[cfg(feature = "rust-crypto")]
conformance!(rust_crypto, etdi_crypto::backend::rust_crypto::provider());

/// Signatures made by one backend verify with the other, for every algorithm.
#[cfg(feature = "rust-crypto")]
#[test]
fn backends_verify_each_other() {
    let a = etdi_crypto::backend::aws_lc::provider();
    let b = etdi_crypto::backend::rust_crypto::provider();
    for (signer, verifier) in [(a, b), (b, a)] {
        for key in keys_for_every_algorithm(&signer) {
            let alg = key.algorithm();
            let spki = key.verifying_key().to_spki_der().unwrap();
            let other = VerifyingKey::from_spki_der(&verifier, &spki, alg).unwrap();
            assert_eq!(other.provider_name(), verifier.name);
            let sig = key.sign(b"cross").unwrap();
            assert_eq!(
                other.verify(b"cross", &sig),
                Ok(()),
                "{alg} {} -> {}",
                signer.name,
                verifier.name
            );
            // A PKCS#8 document written by one backend loads in the other.
            let moved = SigningKey::from_pkcs8_der(&verifier, &key.to_pkcs8_der(), alg).unwrap();
            assert_eq!(moved.thumbprint(), key.thumbprint());
        }
    }
}

#[test]
fn the_default_provider_is_aws_lc() {
    assert_eq!(CryptoProvider::get_default().name, "aws-lc-rs");
    // Installing another provider after the default is in use fails and
    // reports the one in force.
    let again = etdi_crypto::backend::aws_lc::provider().install_default();
    assert_eq!(again.unwrap_err().name, "aws-lc-rs");
}
