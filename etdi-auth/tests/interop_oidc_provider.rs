//! Integration against a real authorization server: npm `oidc-provider` 9.x
//! started on 127.0.0.1 from interop/node (see oidc-server.mjs there).
//!
//! Needs Node and `npm ci` in interop/node. Missing either is a test failure
//! with instructions, never a skip: CI must not go green without the peer.
// Test code: helpers outside `#[test]` functions may unwrap and index too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use common::{b64, now};
use etdi_auth::{
    Algorithm, AssertionKey, ClientAuth, ClientCredentials, ClientError, ClientSecret, HttpClient,
    Introspector, IssuerConfig, ManualClock, TokenError, TokenVerifier, UnixTime,
};
use etdi_core::AuthMethod;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const RS256_RESOURCE: &str = "https://rs256.mcp.test/mcp";
const ES256_RESOURCE: &str = "https://es256.mcp.test/mcp";
const OPAQUE_RESOURCE: &str = "https://opaque.mcp.test/mcp";
const SECRET: &str = "etdi-interop-secret-0123456789";

struct Provider {
    issuer: String,
    _child: Child,
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/node")
}

async fn start_provider(client_jwk: Option<&Value>) -> Provider {
    let dir = interop_dir();
    let node = std::process::Command::new("node").arg("--version").output();
    let node = node.unwrap_or_else(|e| {
        panic!("`node` is required for the oidc-provider interop tests and was not found ({e}); install Node.js >= 20")
    });
    assert!(node.status.success(), "`node --version` failed");
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "oidc-provider is not installed: run `npm ci` in {}",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg("oidc-server.mjs")
        .current_dir(&dir)
        .env("ETDI_CLIENT_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(jwk) = client_jwk {
        cmd.env("ETDI_CLIENT_JWK", jwk.to_string());
    }
    let mut child = cmd.spawn().expect("spawn node oidc-server.mjs");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("oidc-server.mjs did not start within 30 s")
        .expect("read oidc-server.mjs stdout")
        .expect("oidc-server.mjs exited before printing its address");
    // Keep draining stdout: a closed pipe would kill the server on its next write.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let started: Value = serde_json::from_str(&line).expect("start-up line is JSON");
    let issuer = started["issuer"].as_str().unwrap().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    Provider {
        issuer,
        _child: child,
    }
}

fn http() -> HttpClient {
    HttpClient::new().unwrap()
}

async fn client(
    p: &Provider,
    client_id: &str,
    auth: ClientAuth,
    resource: &str,
) -> ClientCredentials {
    ClientCredentials::discover(&http(), &p.issuer, client_id, auth)
        .await
        .unwrap()
        .scopes(["tools:read", "tools:call"])
        .resource(resource)
}

fn verifier(p: &Provider, audience: &str) -> TokenVerifier {
    TokenVerifier::builder()
        .issuer(
            IssuerConfig::new(&p.issuer)
                .audience(audience)
                .algorithms([Algorithm::RS256, Algorithm::ES256])
                .require_at_jwt(true),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn rs256_and_es256_tokens_from_oidc_provider_verify() {
    let p = start_provider(None).await;
    let cases = [
        (
            "etdi-basic",
            ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
            RS256_RESOURCE,
            "RS256",
        ),
        (
            "etdi-post",
            ClientAuth::SecretPost(ClientSecret::new(SECRET)),
            ES256_RESOURCE,
            "ES256",
        ),
    ];
    for (client_id, auth, resource, alg) in cases {
        let c = client(&p, client_id, auth, resource).await;
        let token = c.access_token().await.unwrap();
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                token.secret().split('.').next().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "at+jwt");
        let v = verifier(&p, resource);
        let principal = v.verify(token.secret()).await.unwrap();
        assert_eq!(principal.subject, client_id);
        assert_eq!(principal.client_id.as_deref(), Some(client_id));
        assert_eq!(principal.issuer.as_deref(), Some(p.issuer.as_str()));
        assert!(principal.scopes.contains("tools:read"));
        assert!(principal.scopes.contains("tools:call"));
        assert_eq!(principal.auth_method, AuthMethod::BearerJwt);
        // Cached by the client: the same token again, no new request.
        assert_eq!(c.access_token().await.unwrap().secret(), token.secret());
    }
}

#[tokio::test]
async fn the_same_token_is_refused_for_wrong_audience_expiry_or_issuer() {
    let p = start_provider(None).await;
    let c = client(
        &p,
        "etdi-basic",
        ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
        RS256_RESOURCE,
    )
    .await;
    let token = c.access_token().await.unwrap();
    let exp = token.expires_at().unwrap();
    assert!(
        verifier(&p, RS256_RESOURCE)
            .verify(token.secret())
            .await
            .is_ok()
    );

    // Wrong audience: this server is the ES256 resource.
    let err = verifier(&p, ES256_RESOURCE)
        .verify(token.secret())
        .await
        .unwrap_err();
    match &err {
        TokenError::WrongAudience {
            issuer,
            found,
            expected,
        } => {
            assert_eq!(issuer, &p.issuer);
            assert!(found.contains(RS256_RESOURCE) && expected.contains(ES256_RESOURCE));
        }
        other => panic!("expected WrongAudience, got {other:?}"),
    }
    println!("wrong audience: {err}");

    // Expired: the verifier's clock is past exp + leeway.
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(exp + 31)));
    let late = TokenVerifier::builder()
        .issuer(IssuerConfig::new(&p.issuer).audience(RS256_RESOURCE))
        .clock(clock)
        .build()
        .unwrap();
    let err = late.verify(token.secret()).await.unwrap_err();
    assert!(
        matches!(err, TokenError::Expired { exp: e, .. } if e == exp),
        "{err:?}"
    );
    println!("expired: {err}");

    // Another issuer: a verifier that trusts only someone else.
    let other = TokenVerifier::builder()
        .issuer(
            IssuerConfig::new("https://idp.other.example")
                .audience(RS256_RESOURCE)
                .static_jwks(json!({"keys": [common::TestKey::rsa().jwk("x")]})),
        )
        .build()
        .unwrap();
    let err = other.verify(token.secret()).await.unwrap_err();
    assert_eq!(
        err,
        TokenError::UntrustedIssuer {
            iss: p.issuer.clone()
        }
    );
    println!("other issuer: {err}");

    // The JWKS of the real provider with the wrong issuer's name configured:
    // signature checks pass but `iss` does not match any configured issuer.
    let misnamed = TokenVerifier::builder()
        .issuer(
            IssuerConfig::new(format!("{}/", p.issuer))
                .audience(RS256_RESOURCE)
                .jwks_uri(format!("{}/jwks", p.issuer)),
        )
        .build()
        .unwrap();
    assert!(matches!(
        misnamed.verify(token.secret()).await,
        Err(TokenError::UntrustedIssuer { .. })
    ));
}

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = key.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "client-key-1", "alg": "ES256", "use": "sig",
                     "x": b64(&point[1..33]), "y": b64(&point[33..])});
    let p = start_provider(Some(&jwk)).await;
    let pkcs8 = key.to_pkcs8v1().unwrap();
    let assertion = AssertionKey::ec_pkcs8_der(Algorithm::ES256, pkcs8.as_ref())
        .unwrap()
        .with_kid("client-key-1");
    let c = client(
        &p,
        "etdi-pkjwt",
        ClientAuth::PrivateKeyJwt(assertion),
        ES256_RESOURCE,
    )
    .await;
    let token = c.access_token().await.unwrap();
    let principal = verifier(&p, ES256_RESOURCE)
        .verify(token.secret())
        .await
        .unwrap();
    assert_eq!(principal.client_id.as_deref(), Some("etdi-pkjwt"));

    // A different key under the same kid is refused by the server.
    let wrong = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let wrong = AssertionKey::ec_pkcs8_der(Algorithm::ES256, wrong.to_pkcs8v1().unwrap().as_ref())
        .unwrap()
        .with_kid("client-key-1");
    let c = client(
        &p,
        "etdi-pkjwt",
        ClientAuth::PrivateKeyJwt(wrong),
        ES256_RESOURCE,
    )
    .await;
    assert!(matches!(
        c.access_token().await,
        Err(ClientError::Refused { ref error, .. }) if error == "invalid_client"
    ));
}

#[tokio::test]
async fn token_requests_refused_by_the_server_report_the_oauth_error() {
    let p = start_provider(None).await;
    let bad_secret = client(
        &p,
        "etdi-basic",
        ClientAuth::SecretBasic(ClientSecret::new("wrong")),
        RS256_RESOURCE,
    )
    .await;
    let err = bad_secret.access_token().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 401, error, .. } if error == "invalid_client"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong"), "secret echoed");
    let bad_resource = client(
        &p,
        "etdi-basic",
        ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
        "https://unknown.mcp.test/",
    )
    .await;
    let err = bad_resource.access_token().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { error, .. } if error == "invalid_target"),
        "{err:?}"
    );
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_revocation_is_seen() {
    let p = start_provider(None).await;
    let c = client(
        &p,
        "etdi-basic",
        ClientAuth::SecretBasic(ClientSecret::new(SECRET)),
        OPAQUE_RESOURCE,
    )
    .await;
    let token = c.access_token().await.unwrap();
    assert_eq!(
        token.secret().matches('.').count(),
        0,
        "opaque token expected"
    );
    let auth = || ClientAuth::SecretPost(ClientSecret::new(SECRET));
    let introspector = Introspector::discover(&http(), &p.issuer, "etdi-post", auth())
        .await
        .unwrap()
        .audience(OPAQUE_RESOURCE);
    let principal = introspector.introspect(token.secret()).await.unwrap();
    assert_eq!(principal.subject, "etdi-basic");
    assert_eq!(principal.client_id.as_deref(), Some("etdi-basic"));
    assert_eq!(principal.auth_method, AuthMethod::BearerIntrospected);
    assert!(principal.scopes.contains("tools:call"));

    // Wrong audience for the same opaque token.
    let elsewhere = Introspector::discover(&http(), &p.issuer, "etdi-post", auth())
        .await
        .unwrap()
        .audience(RS256_RESOURCE);
    assert!(matches!(
        elsewhere.introspect(token.secret()).await,
        Err(TokenError::WrongAudience { .. })
    ));

    // Unknown tokens are inactive.
    assert!(matches!(
        introspector
            .introspect("not-a-token-the-server-issued")
            .await,
        Err(TokenError::Inactive { .. })
    ));

    // Revoke (RFC 7009) and introspect again without the cache.
    let revoke = reqwest::Client::new()
        .post(format!("{}/token/revocation", p.issuer))
        .basic_auth("etdi-basic", Some(SECRET))
        .form(&[
            ("token", token.secret()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_success(), "{}", revoke.status());
    let uncached = Introspector::discover(&http(), &p.issuer, "etdi-post", auth())
        .await
        .unwrap()
        .audience(OPAQUE_RESOURCE)
        .cache(0, Duration::ZERO);
    assert!(matches!(
        uncached.introspect(token.secret()).await,
        Err(TokenError::Inactive { .. })
    ));
    // The caching introspector keeps its answer no longer than its TTL
    // (60 s by default) and never past `exp`.
    assert!(token.expires_at().unwrap() > now());
}
