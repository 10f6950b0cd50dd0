//! OAuth-issued tool attestations (PROTOCOL §5.3) verified against the
//! issuer's JWKS, found by OIDC discovery on a loopback stand-in IdP: key
//! rotation, the unknown-`kid` refresh cooldown, and failing closed when the
//! JWKS cannot be reached.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use etdi_auth::{HttpClient, IssuerConfig, IssuerJwks, ManualClock};
use etdi_client::{
    AutoApproveRule, Discovery, MemoryApprovalStore, Refusal, RuleApprover, ToolCatalog,
};
use etdi_core::{
    Permission, ProviderId, ServerId, ToolDefinition, VerificationFailure, VerificationStatus,
};
use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
use etdi_crypto::jws::{self, JwsHeader};
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime, advertised};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback HTTP/1.1 IdP: OIDC discovery and a replaceable JWKS, with
/// request counts per path.
#[derive(Clone)]
struct Idp {
    base: String,
    jwks: Arc<Mutex<Value>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Idp {
    async fn start(jwks: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let idp = Idp {
            base,
            jwks: Arc::new(Mutex::new(jwks)),
            hits: Arc::default(),
        };
        let s = idp.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    // GET only: read the head, answer, close.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let body = match path.as_str() {
                        "/.well-known/openid-configuration" => Some(json!({
                            "issuer": s.base,
                            "jwks_uri": format!("{}/jwks", s.base),
                        })),
                        "/jwks" => Some(s.jwks.lock().unwrap().clone()),
                        _ => None,
                    };
                    let out = match body {
                        Some(v) => {
                            let body = v.to_string();
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                 cache-control: max-age=300\r\ncontent-length: {}\r\n\
                                 connection: close\r\n\r\n{body}",
                                body.len()
                            )
                        }
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\
                                 connection: close\r\n\r\n"
                            .to_owned(),
                    };
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        idp
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn rotate(&self, jwks: Value) {
        *self.jwks.lock().unwrap() = jwks;
    }
}

fn es256() -> SigningKey {
    SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap()
}

fn jwks_of(keys: &[&SigningKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(&k.verifying_key().to_jwk().to_json()).unwrap())
        .collect();
    json!({ "keys": keys })
}

fn definition(name: &str) -> ToolDefinition {
    ToolDefinition::from_json(
        &json!({
            "id": format!("com.example.files/{name}"),
            "name": name,
            "version": "1.0.0",
            "description": format!("Reads files ({name})"),
            "provider": {"id": "com.example", "name": "Example"},
            "inputSchema": {"type": "object"},
            "permissions": ["file:read"]
        })
        .to_string(),
    )
    .unwrap()
}

fn now() -> UnixTime {
    UnixTime::now()
}

/// An IdP-issued attestation (§5.3): `typ: at+jwt`, the §5.1 claims as
/// private claims with `scope` instead of `permissions`, header `kid` as given.
fn oauth_attestation(issuer: &str, key: &SigningKey, kid: &str, def: &ToolDefinition) -> String {
    let mut claims = AttestationSigner::new(issuer).claims(def, now()).unwrap();
    claims.permissions = None;
    claims.scope = Some("file:read".into());
    let header = JwsHeader::new(key.algorithm())
        .with_kid(kid)
        .with_typ("at+jwt");
    jws::sign(key, &header, &serde_json::to_vec(&claims).unwrap()).unwrap()
}

/// The advertised tool `name`, attested by `issuer` with `key` under `kid`.
fn tool(issuer: &str, key: &SigningKey, kid: &str, name: &str) -> Map<String, Value> {
    let def = definition(name);
    let token = oauth_attestation(issuer, key, kid, &def);
    advertised::tool_from_definition(&def, Some(&token)).unwrap()
}

fn signed(issuer: &str, key: &SigningKey, name: &str) -> Map<String, Value> {
    tool(issuer, key, key.kid().as_str(), name)
}

fn discovery(jwks: Arc<IssuerJwks>) -> Discovery {
    let rules = RuleApprover::new().rule(AutoApproveRule::new(
        "example-readers",
        ProviderId::parse("com.example").unwrap(),
        [Permission::parse("file:read").unwrap()],
    ));
    Discovery::new(
        ServerId::parse("https://tools.example.com/mcp").unwrap(),
        AttestationVerifier::new(),
        Arc::new(MemoryApprovalStore::new()),
    )
    .approver(Arc::new(rules))
    .trust_oauth_issuer(jwks, ProviderScope::only(["com.example"]).unwrap())
}

fn issuer_jwks(issuer: &str, clock: &Arc<ManualClock>) -> Arc<IssuerJwks> {
    let config = IssuerConfig::new(issuer).algorithms([Algorithm::ES256]);
    Arc::new(IssuerJwks::new(&config, HttpClient::new().unwrap(), clock.clone()).unwrap())
}

fn failure(catalog: &ToolCatalog, name: &str) -> VerificationFailure {
    let t = catalog.get(name).unwrap();
    assert!(!t.is_usable(), "{name} must not be usable");
    match &t.verification {
        VerificationStatus::Failed { failure } => failure.clone(),
        other => panic!("{name}: expected a failure, got {other:?}"),
    }
}

fn assert_verified(catalog: &ToolCatalog, name: &str, issuer: &str, kid: &str) {
    let t = catalog.get(name).unwrap();
    assert_eq!(
        t.verification,
        VerificationStatus::Verified {
            issuer: issuer.into(),
            key_id: kid.into(),
        },
        "{name}: {:?}",
        t.refusal
    );
    assert!(t.is_usable(), "{name}: {:?}", t.refusal);
}

#[tokio::test]
async fn oauth_attestations_verify_against_the_issuers_jwks() {
    let key1 = es256();
    let idp = Idp::start(jwks_of(&[&key1])).await;
    let iss = idp.base.clone();
    let clock = Arc::new(ManualClock::new(now()));
    let jwks = issuer_jwks(&iss, &clock);
    let discovery = discovery(jwks.clone());

    // Signed by the JWKS key: verified, after discovery and one JWKS fetch.
    let other = es256();
    let catalog = discovery
        .discover_async(&[
            signed(&iss, &key1, "read_file"),
            // Another key claiming the JWKS key's `kid`: bad signature.
            tool(&iss, &other, key1.kid().as_str(), "forged"),
            // Another key under its own `kid`: not in the JWKS.
            signed(&iss, &other, "stranger"),
        ])
        .await;
    assert_verified(&catalog, "read_file", &iss, key1.kid().as_str());
    assert_eq!(
        failure(&catalog, "forged"),
        VerificationFailure::BadSignature
    );
    assert!(matches!(
        failure(&catalog, "stranger"),
        VerificationFailure::UnknownKey { .. }
    ));
    assert_eq!(idp.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(idp.hits("/jwks"), 1);
    assert_eq!(jwks.fetch_count(), 1);

    // The sync path cannot fetch keys: it fails closed.
    let sync = discovery.discover(&[signed(&iss, &key1, "read_file")]);
    assert!(!sync.get("read_file").unwrap().is_usable());

    // The IdP rotates to a new key; past the cooldown, a tool signed by it
    // makes the cache refresh once, and verifies.
    let key2 = es256();
    idp.rotate(jwks_of(&[&key2]));
    clock.advance(31);
    let catalog = discovery
        .discover_async(&[signed(&iss, &key2, "read_file_v2")])
        .await;
    assert_verified(&catalog, "read_file_v2", &iss, key2.kid().as_str());
    assert_eq!(idp.hits("/jwks"), 2);

    // A flood of random `kid`s within the cooldown: no fetch at all.
    let flood = |round: usize| -> Vec<Map<String, Value>> {
        (0..40)
            .map(|i| {
                tool(
                    &iss,
                    &other,
                    &format!("random-{round}-{i}"),
                    &format!("flood_{round}_{i}"),
                )
            })
            .collect()
    };
    let catalog = discovery.discover_async(&flood(0)).await;
    assert_eq!(catalog.usable().count(), 0);
    assert!(catalog.all().iter().all(|t| matches!(
        t.verification,
        VerificationStatus::Failed {
            failure: VerificationFailure::UnknownKey { .. }
        }
    )));
    assert_eq!(idp.hits("/jwks"), 2);
    // After the cooldown, another flood costs at most one fetch.
    clock.advance(31);
    let catalog = discovery.discover_async(&flood(1)).await;
    assert_eq!(catalog.usable().count(), 0);
    assert_eq!(idp.hits("/jwks"), 3);
    assert_eq!(jwks.fetch_count(), 3);
    // And the rotated key still verifies from the cache, without a fetch.
    let catalog = discovery
        .discover_async(&[signed(&iss, &key2, "read_file_v2")])
        .await;
    assert_verified(&catalog, "read_file_v2", &iss, key2.kid().as_str());
    assert_eq!(idp.hits("/jwks"), 3);
}

#[tokio::test]
async fn the_etdi_typ_is_accepted_from_an_oauth_issuer_too() {
    let key = es256();
    let idp = Idp::start(jwks_of(&[&key])).await;
    let iss = idp.base.clone();
    let clock = Arc::new(ManualClock::new(now()));
    let discovery = discovery(issuer_jwks(&iss, &clock));
    let def = definition("read_file");
    let token = AttestationSigner::new(iss.as_str())
        .sign(&key, &def, now())
        .unwrap();
    let listed = [advertised::tool_from_definition(&def, Some(&token)).unwrap()];
    let catalog = discovery.discover_async(&listed).await;
    assert_verified(&catalog, "read_file", &iss, key.kid().as_str());
}

#[tokio::test]
async fn an_unreachable_jwks_with_nothing_cached_fails_closed() {
    // A loopback port with nothing listening.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let iss = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let clock = Arc::new(ManualClock::new(now()));
    let discovery = discovery(issuer_jwks(&iss, &clock));
    let key = es256();
    let catalog = discovery
        .discover_async(&[signed(&iss, &key, "read_file")])
        .await;
    assert!(matches!(
        failure(&catalog, "read_file"),
        VerificationFailure::UnknownKey { .. }
    ));
    let t = catalog.get("read_file").unwrap();
    match &t.refusal {
        Some(Refusal::NotVerified(detail)) => {
            assert!(detail.contains("JWKS"), "{detail}");
            assert!(detail.contains(&iss), "{detail}");
        }
        other => panic!("expected a verification refusal, got {other:?}"),
    }
    assert!(catalog.check_call("read_file").is_err());
    assert_eq!(catalog.usable().count(), 0);

    // A configured `jwks_uri` that is down fails the same way.
    let config = IssuerConfig::new(iss.as_str())
        .algorithms([Algorithm::ES256])
        .jwks_uri(format!("{iss}/jwks"));
    let jwks =
        Arc::new(IssuerJwks::new(&config, HttpClient::new().unwrap(), clock.clone()).unwrap());
    let discovery = self::discovery(jwks);
    let catalog = discovery
        .discover_async(&[signed(&iss, &key, "read_file")])
        .await;
    assert!(!catalog.get("read_file").unwrap().is_usable());
}
