//! Client credentials (caching, refresh before expiry, RFC 8707 `resource`,
//! client authentication on the wire) and introspection caching, against a
//! loopback token/introspection endpoint.
// Test code: helpers outside `#[test]` functions may unwrap and index too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use common::{MockServer, Reply};
use etdi_auth::{
    ClientAuth, ClientCredentials, ClientSecret, Clock, Introspector, ManualClock, TokenError,
    UnixTime,
};
use etdi_core::AuthMethod;
use serde_json::json;

fn token_endpoint(server: &MockServer, expires_in: u64) {
    let counter = Arc::new(AtomicU64::new(0));
    server.route("/token", move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::json(
            json!({"access_token": format!("tok-{n}"), "token_type": "Bearer",
                           "expires_in": expires_in, "scope": "tools:call"}),
        )
    });
}

#[tokio::test]
async fn token_is_cached_and_refreshed_before_expiry() {
    let server = MockServer::start().await;
    token_endpoint(&server, 300);
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1_000_000)));
    let c = ClientCredentials::new(
        server.url("/token"),
        "agent",
        ClientAuth::SecretBasic(ClientSecret::new("s3cret:with space")),
    )
    .unwrap()
    .scopes(["tools:call"])
    .resource("https://tools.example.com/mcp")
    .resource("https://other.example.com/mcp")
    .clock(clock.clone());
    let t1 = c.access_token().await.unwrap();
    assert_eq!(t1.secret(), "tok-0");
    assert_eq!(t1.expires_at(), Some(1_000_300));
    clock.advance(239);
    assert_eq!(c.access_token().await.unwrap().secret(), "tok-0");
    assert_eq!(server.hits("/token"), 1);
    // 60 s before expiry: refreshed.
    clock.advance(1);
    assert_eq!(c.access_token().await.unwrap().secret(), "tok-1");
    assert_eq!(server.hits("/token"), 2);
    c.invalidate().await;
    assert_eq!(c.access_token().await.unwrap().secret(), "tok-2");

    let req = &server.requests("/token")[0];
    assert!(req.body.contains("grant_type=client_credentials"));
    assert!(req.body.contains("scope=tools%3Acall"));
    assert!(
        req.body
            .contains("resource=https%3A%2F%2Ftools.example.com%2Fmcp")
    );
    assert!(
        req.body
            .contains("resource=https%3A%2F%2Fother.example.com%2Fmcp")
    );
    assert!(!req.body.contains("client_secret"));
    let basic = req.headers["authorization"].strip_prefix("Basic ").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic)
        .unwrap();
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
    assert_eq!(decoded, b"agent:s3cret%3Awith+space");
}

#[tokio::test]
async fn short_lived_tokens_refresh_half_way() {
    let server = MockServer::start().await;
    token_endpoint(&server, 40);
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(1000)));
    let c = ClientCredentials::new(
        server.url("/token"),
        "agent",
        ClientAuth::SecretPost(ClientSecret::new("pw")),
    )
    .unwrap()
    .clock(clock.clone());
    c.access_token().await.unwrap();
    clock.advance(19);
    c.access_token().await.unwrap();
    assert_eq!(server.hits("/token"), 1);
    clock.advance(1);
    c.access_token().await.unwrap();
    assert_eq!(server.hits("/token"), 2);
    let req = &server.requests("/token")[0];
    assert!(req.body.contains("client_id=agent") && req.body.contains("client_secret=pw"));
    assert!(!req.headers.contains_key("authorization"));
}

#[tokio::test]
async fn introspection_is_cached_no_longer_than_the_token_lives() {
    let server = MockServer::start().await;
    let clock = Arc::new(ManualClock::new(UnixTime::from_secs(5_000)));
    let exp = clock.now().as_secs() + 30;
    server.reply(
        "/introspect",
        Reply::json(
            json!({"active": true, "sub": "agent", "client_id": "agent-app",
                           "aud": "https://tools.example.com/mcp", "exp": exp,
                           "iss": "https://idp.example.com", "scope": "tools:read"}),
        ),
    );
    let i = Introspector::new(
        "https://idp.example.com",
        server.url("/introspect"),
        "rs",
        ClientAuth::SecretBasic(ClientSecret::new("rs-secret")),
    )
    .unwrap()
    .audience("https://tools.example.com/mcp")
    .clock(clock.clone());
    let p = i.introspect("opaque-1").await.unwrap();
    assert_eq!(p.auth_method, AuthMethod::BearerIntrospected);
    assert_eq!(p.client_id.as_deref(), Some("agent-app"));
    assert!(p.scopes.contains("tools:read"));
    clock.advance(29);
    assert!(i.introspect("opaque-1").await.is_ok());
    assert_eq!(
        server.hits("/introspect"),
        1,
        "served from cache before exp"
    );
    clock.advance(1);
    // At exp: not from the cache, the server is asked again (its answer is
    // still inside the 30 s leeway, so it is accepted once more).
    assert!(i.introspect("opaque-1").await.is_ok());
    assert_eq!(server.hits("/introspect"), 2);
    clock.advance(30);
    assert!(matches!(
        i.introspect("opaque-1").await,
        Err(TokenError::Expired { .. })
    ));
    let req = &server.requests("/introspect")[0];
    assert!(req.body.contains("token=opaque-1"));

    // A foreign issuer in the answer, inactive answers, and server errors.
    server.reply(
        "/introspect",
        Reply::json(
            json!({"active": true, "sub": "a", "aud": "https://tools.example.com/mcp",
                           "iss": "https://evil.example"}),
        ),
    );
    assert!(matches!(
        i.introspect("opaque-2").await,
        Err(TokenError::UntrustedIssuer { .. })
    ));
    server.reply("/introspect", Reply::json(json!({"active": false})));
    assert!(matches!(
        i.introspect("opaque-3").await,
        Err(TokenError::Inactive { .. })
    ));
    server.reply("/introspect", Reply::json(json!({"active": "true"})));
    assert!(matches!(
        i.introspect("opaque-4").await,
        Err(TokenError::Inactive { .. })
    ));
    server.reply("/introspect", Reply::status(500));
    assert!(i.introspect("opaque-5").await.unwrap_err().is_unavailable());
    // The max cache TTL bounds answers that outlive it.
    let long = Introspector::new(
        "https://idp.example.com",
        server.url("/introspect2"),
        "rs",
        ClientAuth::SecretBasic(ClientSecret::new("rs-secret")),
    )
    .unwrap()
    .audience("https://tools.example.com/mcp")
    .cache(100, Duration::from_secs(10))
    .clock(clock.clone());
    server.reply(
        "/introspect2",
        Reply::json(
            json!({"active": true, "sub": "a", "aud": "https://tools.example.com/mcp",
                           "exp": clock.now().as_secs() + 3600}),
        ),
    );
    long.introspect("opaque-6").await.unwrap();
    clock.advance(10);
    long.introspect("opaque-6").await.unwrap();
    assert_eq!(server.hits("/introspect2"), 2);
}
