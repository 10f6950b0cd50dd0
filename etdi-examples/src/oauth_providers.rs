//! OAuth 2.0 / OIDC providers (PROTOCOL §11) with etdi-auth's presets:
//!
//! 1. the Auth0, Okta, Entra ID, Keycloak and generic OIDC presets, and
//!    what each checks: issuer, audience, JWKS URL, algorithms, and where
//!    scopes and roles are read;
//! 2. a token shaped like each provider's, accepted with the scopes and
//!    roles that provider's claims carry, and one refusal per provider
//!    (algorithm, audience, issuer, expiry), checked without a network by
//!    giving each preset the test keys as a fixed JWKS;
//! 3. end to end: an issuer on 127.0.0.1 serving OIDC discovery and a
//!    JWKS, a token minted with an etdi-crypto key, verified through the
//!    Keycloak preset's JWKS URL and through discovery, then used as the
//!    bearer token of a `SecureServer` over Streamable HTTP.
//!
//! Nothing here reaches the internet: the provider host names in part 1
//! and 2 are only configuration, never contacted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use etdi_auth::{IssuerConfig, TokenError, TokenVerifier, presets};
use etdi_core::{Principal, SecurityLevel, SecurityPolicy};
use etdi_crypto::jws::{JwsHeader, sign as jws_sign};
use etdi_crypto::{Algorithm, SigningKey, UnixTime};
use etdi_server::audit::MemoryAudit;
use etdi_server::schemars::JsonSchema;
use etdi_server::{BearerAuth, EtdiTool, SecureServer, ToolContext};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::narrative::{Context, Failure, Narrative, Outcome};
use crate::support::{
    http_client, key, loopback, outcome, params, public_jwk, set_claim, spawn_http,
};

/// The resource id (RFC 8707) of the MCP server the tokens are for.
const AUD: &str = "https://tools.example.com/mcp";
const ENTRA_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Signs `claims` (with `iat`/`exp` added) as a JWT access token.
fn mint(key: &SigningKey, claims: &Value, lifetime: i64) -> Result<String, Failure> {
    let now = i64::try_from(UnixTime::now().as_secs()).unwrap_or(i64::MAX);
    let mut claims = claims.clone();
    if let Value::Object(m) = &mut claims {
        m.entry("iat").or_insert(json!(now));
        m.entry("exp").or_insert(json!(now + lifetime));
    }
    let header = JwsHeader::for_key(key).with_typ("at+jwt");
    jws_sign(key, &header, claims.to_string().as_bytes()).context("signing a token")
}

fn paths(list: &[etdi_auth::ClaimPath]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Part 1: the presets as configured.
fn presets_list() -> Result<Vec<(&'static str, IssuerConfig)>, Failure> {
    Ok(vec![
        (
            "Auth0",
            presets::auth0("example.us.auth0.com", Some("https://example.com/roles"))
                .context("Auth0 preset")?,
        ),
        (
            "Okta",
            presets::okta("dev-123456.okta.com", "default").context("Okta preset")?,
        ),
        (
            "Entra ID",
            presets::entra_id(ENTRA_TENANT).context("Entra ID preset")?,
        ),
        (
            "Keycloak",
            presets::keycloak("https://sso.example.com", "mcp", Some("tools"))
                .context("Keycloak preset")?,
        ),
        (
            "generic OIDC",
            presets::oidc("https://idp.example.com").context("OIDC preset")?,
        ),
    ])
}

fn show_presets(n: &Narrative) -> Result<(), Failure> {
    n.section("1. The presets and what each checks");
    let expected: BTreeMap<&str, (&str, Option<&str>)> = [
        (
            "Auth0",
            (
                "https://example.us.auth0.com/",
                Some("https://example.us.auth0.com/.well-known/jwks.json"),
            ),
        ),
        (
            "Okta",
            (
                "https://dev-123456.okta.com/oauth2/default",
                Some("https://dev-123456.okta.com/oauth2/default/v1/keys"),
            ),
        ),
        (
            "Entra ID",
            (
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
                Some(
                    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys",
                ),
            ),
        ),
        (
            "Keycloak",
            (
                "https://sso.example.com/realms/mcp",
                Some("https://sso.example.com/realms/mcp/protocol/openid-connect/certs"),
            ),
        ),
        ("generic OIDC", ("https://idp.example.com", None)),
    ]
    .into_iter()
    .collect();
    for (name, config) in presets_list()? {
        let config = config.audience(AUD);
        let algs: Vec<&str> = config
            .allowed_algorithms()
            .iter()
            .map(|a| a.name())
            .collect();
        let mapping = config.mapping();
        n.say(format!("{name}:"));
        n.say(format!("  issuer (iss)   {}", config.issuer()));
        n.say(format!(
            "  audience (aud) {}",
            config.audiences().join(", ")
        ));
        n.say(format!(
            "  JWKS           {}",
            config
                .jwks_url()
                .unwrap_or("found by OIDC discovery / RFC 8414 metadata")
        ));
        n.say(format!("  algorithms     {}", algs.join(", ")));
        n.say(format!("  scopes from    {}", paths(&mapping.scopes)));
        n.say(format!("  roles from     {}", paths(&mapping.roles)));
        n.say(format!("  client id from {}", paths(&mapping.client_id)));
        if let Some((iss, jwks)) = expected.get(name) {
            n.check_eq(
                format!("{name}: issuer and JWKS URL follow the provider's pattern"),
                (config.issuer(), config.jwks_url()),
                (*iss, *jwks),
            );
        }
    }
    Ok(())
}

/// Part 2: tokens shaped like each provider's, verified offline.
async fn provider_tokens(n: &Narrative) -> Result<(), Failure> {
    n.section("2. Tokens shaped like each provider's (keys given as a fixed JWKS, no network)");
    let rsa = key(Algorithm::RS256)?;
    let ec = key(Algorithm::ES256)?;
    let jwks = json!({"keys": [public_jwk(&rsa)?, public_jwk(&ec)?]});
    let mut builder = TokenVerifier::builder();
    let mut issuers = BTreeMap::new();
    for (name, config) in presets_list()? {
        issuers.insert(name, config.issuer().to_owned());
        builder = builder.issuer(config.audience(AUD).static_jwks(jwks.clone()));
    }
    let verifier = builder.build().context("building the verifier")?;
    let iss = |name: &str| issuers.get(name).cloned().unwrap_or_default();

    struct Case {
        name: &'static str,
        key: Arc<SigningKey>,
        claims: Value,
        scopes: BTreeSet<String>,
        roles: BTreeSet<String>,
    }
    let cases = [
        Case {
            name: "Auth0",
            key: rsa.clone(),
            claims: json!({
                "iss": iss("Auth0"), "sub": "auth0|5f7c8ec7c33c", "azp": "agent-client",
                "aud": [AUD, "https://example.us.auth0.com/userinfo"],
                "scope": "openid demo:read",
                "permissions": ["demo:read", "demo:write"],
                "https://example.com/roles": ["analyst"],
            }),
            scopes: set(&["openid", "demo:read"]),
            roles: set(&["demo:read", "demo:write", "analyst"]),
        },
        Case {
            name: "Okta",
            key: rsa.clone(),
            claims: json!({
                "iss": iss("Okta"), "sub": "00u1abcd", "aud": AUD, "cid": "0oa1agent",
                "scp": ["demo:read"], "groups": ["Everyone", "analysts"],
                // Not where Okta puts scopes: the preset does not read it.
                "scope": "demo:admin",
            }),
            scopes: set(&["demo:read"]),
            roles: set(&["Everyone", "analysts"]),
        },
        Case {
            name: "Entra ID",
            key: rsa.clone(),
            claims: json!({
                "iss": iss("Entra ID"), "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
                "aud": AUD, "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
                "scp": "Files.Read demo:read", "roles": ["Tools.Call"],
            }),
            scopes: set(&["Files.Read", "demo:read"]),
            roles: set(&["Tools.Call"]),
        },
        Case {
            name: "Keycloak",
            key: ec.clone(),
            claims: json!({
                "iss": iss("Keycloak"), "sub": "f:1234:alice", "aud": AUD, "azp": "agent",
                "scope": "openid demo:read",
                "realm_access": {"roles": ["analyst"]},
                "resource_access": {"tools": {"roles": ["tool-user"]}, "other": {"roles": ["x"]}},
            }),
            scopes: set(&["openid", "demo:read"]),
            roles: set(&["analyst", "tool-user"]),
        },
        Case {
            name: "generic OIDC",
            key: ec.clone(),
            claims: json!({
                "iss": iss("generic OIDC"), "sub": "user-1", "aud": AUD, "client_id": "agent",
                "scope": "demo:read", "roles": ["analyst"],
            }),
            scopes: set(&["demo:read"]),
            roles: set(&["analyst"]),
        },
    ];
    for case in &cases {
        let token = mint(&case.key, &case.claims, 300)?;
        match verifier.verify(&token).await {
            Ok(p) => {
                n.check_eq(
                    format!(
                        "{}: accepted; subject {}, scopes {:?}, roles {:?}",
                        case.name, p.subject, case.scopes, case.roles
                    ),
                    (&p.scopes, &p.roles),
                    (&case.scopes, &case.roles),
                );
            }
            Err(e) => n.fail(format!("{}: accepted", case.name), e),
        }
    }

    // One refusal per provider, each for a different check.
    let refuse =
        |what: String, result: Result<Principal, TokenError>, ok: fn(&TokenError) -> bool| {
            match result {
                Err(e) => n.check(format!("{what}: {e}"), ok(&e), format_args!("{e:?}")),
                Ok(p) => n.check(what, false, format_args!("accepted for {}", p.subject)),
            };
        };
    let auth0_es256 = mint(&ec, &cases[0].claims, 300)?;
    refuse(
        "Auth0: an ES256 token (Auth0 signs RS256 only)".into(),
        verifier.verify(&auth0_es256).await,
        |e| matches!(e, TokenError::AlgorithmNotAllowed { alg, .. } if alg == "ES256"),
    );
    let mut claims = cases[1].claims.clone();
    set_claim(&mut claims, "aud", json!("https://other-api.example.com"));
    refuse(
        "Okta: a token for another API".into(),
        verifier.verify(&mint(&rsa, &claims, 300)?).await,
        |e| matches!(e, TokenError::WrongAudience { .. }),
    );
    let mut claims = cases[2].claims.clone();
    set_claim(
        &mut claims,
        "iss",
        json!(format!("https://sts.windows.net/{ENTRA_TENANT}/")),
    );
    refuse(
        "Entra ID: a v1.0 token (the v2.0 preset does not trust the v1 issuer)".into(),
        verifier.verify(&mint(&rsa, &claims, 300)?).await,
        |e| matches!(e, TokenError::UntrustedIssuer { .. }),
    );
    let mut claims = cases[3].claims.clone();
    set_claim(&mut claims, "aud", json!("account"));
    refuse(
        "Keycloak: a token without an audience mapper (aud `account`)".into(),
        verifier.verify(&mint(&ec, &claims, 300)?).await,
        |e| matches!(e, TokenError::WrongAudience { .. }),
    );
    let mut claims = cases[4].claims.clone();
    let now = i64::try_from(UnixTime::now().as_secs()).unwrap_or(i64::MAX);
    set_claim(&mut claims, "iat", json!(now - 600));
    set_claim(&mut claims, "exp", json!(now - 300));
    refuse(
        "generic OIDC: a token that expired five minutes ago".into(),
        verifier.verify(&mint(&ec, &claims, 0)?).await,
        |e| matches!(e, TokenError::Expired { .. }),
    );
    Ok(())
}

/// The local issuer: OIDC discovery and a JWKS for realm `mcp`, counting
/// requests per path.
#[derive(Clone)]
struct LocalIdp {
    issuer: String,
    jwks: Value,
    hits: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl LocalIdp {
    fn hits(&self, path: &str) -> u64 {
        self.hits
            .lock()
            .map(|h| h.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

const DISCOVERY: &str = "/realms/mcp/.well-known/openid-configuration";
const CERTS: &str = "/realms/mcp/protocol/openid-connect/certs";

async fn idp_handler(State(idp): State<LocalIdp>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if let Ok(mut hits) = idp.hits.lock() {
        *hits.entry(path.clone()).or_insert(0) += 1;
    }
    let body = match path.as_str() {
        DISCOVERY => json!({
            "issuer": idp.issuer,
            "jwks_uri": format!("{}/protocol/openid-connect/certs", idp.issuer),
            "token_endpoint": format!("{}/protocol/openid-connect/token", idp.issuer),
            "id_token_signing_alg_values_supported": ["ES256"],
        }),
        CERTS => idp.jwks.clone(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Sends an MCP `initialize` with `token` and returns the status code and
/// the `WWW-Authenticate` header (HTTP/1.1 over a plain socket, so the
/// exact answer of the HTTP layer is visible).
async fn raw_initialize(url: &str, token: &str) -> Result<(u16, String), Failure> {
    let rest = url.strip_prefix("http://").context("not an http URL")?;
    let (authority, path) = rest.split_once('/').context("no path in the URL")?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .context("connecting")?;
    stream
        .write_all(request.as_bytes())
        .await
        .context("sending")?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    // The head is enough; stop at its end or when the server closes.
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let got = stream.read(&mut chunk).await.context("reading")?;
        if got == 0 {
            break;
        }
        response.extend_from_slice(chunk.get(..got).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let challenge = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("www-authenticate")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    Ok((status, challenge))
}

#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
struct NoArgs {}

/// Part 3: a real issuer on loopback.
async fn end_to_end(n: &Narrative) -> Result<(), Failure> {
    n.section("3. End to end: an issuer on 127.0.0.1 with discovery and a JWKS");
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the issuer")?;
    let base = format!(
        "http://{}",
        idp_listener.local_addr().context("issuer address")?
    );
    let signing = key(Algorithm::ES256)?;
    let idp = LocalIdp {
        issuer: format!("{base}/realms/mcp"),
        jwks: json!({"keys": [public_jwk(&signing)?]}),
        hits: Arc::default(),
    };
    let app = Router::new().fallback(idp_handler).with_state(idp.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(etdi_server::listener::TcpAccept::new(idp_listener), app).await
        {
            eprintln!("issuer stopped: {e}");
        }
    });
    let (mcp_listener, resource) = loopback().await?;
    n.say(format!(
        "issuer {} (discovery and JWKS on loopback)",
        idp.issuer
    ));
    n.say(format!("MCP server (resource) {resource}"));

    static JTI: AtomicU64 = AtomicU64::new(0);
    let claims = |aud: &str| {
        json!({
            "iss": idp.issuer, "sub": "alice", "aud": aud, "azp": "mcp-agent",
            "client_id": "mcp-agent", "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::Relaxed)),
            "scope": "openid demo:read",
            "realm_access": {"roles": ["analyst"]},
            "resource_access": {"tools": {"roles": ["tool-user"]}},
        })
    };
    let token = mint(&signing, &claims(&resource), 300)?;

    // The Keycloak preset: JWKS from its URL pattern, on the local issuer.
    let keycloak = presets::keycloak(&base, "mcp", Some("tools"))
        .context("Keycloak preset")?
        .audience(resource.clone())
        .require_at_jwt(true);
    n.say(format!(
        "Keycloak preset for the local realm: JWKS {}",
        keycloak.jwks_url().unwrap_or("?")
    ));
    let by_url = TokenVerifier::builder()
        .issuer(keycloak.clone())
        .build()
        .context("building the Keycloak verifier")?;
    match by_url.verify(&token).await {
        Ok(p) => {
            n.check_eq(
                "Keycloak preset: token verified; alice with scope demo:read, roles analyst and tool-user",
                (p.subject.as_str(), &p.scopes, &p.roles),
                (
                    "alice",
                    &set(&["openid", "demo:read"]),
                    &set(&["analyst", "tool-user"]),
                ),
            );
        }
        Err(e) => n.fail("Keycloak preset: token verified", e),
    }
    n.check_eq(
        "... with one JWKS fetch and no discovery",
        (idp.hits(CERTS), idp.hits(DISCOVERY)),
        (1, 0),
    );

    // The generic preset: the JWKS URL comes from discovery.
    let discovered = TokenVerifier::builder()
        .issuer(
            presets::oidc(&idp.issuer)
                .context("OIDC preset")?
                .audience(resource.clone()),
        )
        .build()
        .context("building the OIDC verifier")?;
    let r = discovered.verify(&token).await;
    n.check(
        "generic OIDC preset: token verified after discovery",
        r.as_ref().is_ok_and(|p| p.subject == "alice"),
        format_args!("{r:?}"),
    );
    n.check_eq(
        "... which read the realm's openid-configuration once, then the JWKS",
        (idp.hits(DISCOVERY), idp.hits(CERTS)),
        (1, 2),
    );
    let stranger = key(Algorithm::ES256)?;
    let forged = mint(&stranger, &claims(&resource), 300)?;
    let r = discovered.verify(&forged).await;
    n.check(
        "a token signed by a key the issuer does not publish is refused: unknown key",
        matches!(&r, Err(TokenError::UnknownKey { .. })),
        format_args!("{r:?}"),
    );
    let other = mint(&signing, &claims("https://other.example.com/mcp"), 300)?;
    let r = discovered.verify(&other).await;
    n.check(
        "a token for another resource is refused: wrong audience",
        matches!(&r, Err(TokenError::WrongAudience { .. })),
        format_args!("{r:?}"),
    );

    // The same verifier as a SecureServer's bearer authentication.
    let verifier = TokenVerifier::builder()
        .issuer(keycloak)
        .build()
        .context("building the server's verifier")?;
    let mut policy = SecurityPolicy::new(SecurityLevel::Basic);
    policy.audit_all_calls = true;
    let server = SecureServer::builder("tools")
        .audience(resource.clone())
        .policy(policy)
        .provider("com.example", "Example Corp")
        .audit(Arc::new(MemoryAudit::new()))
        .bearer_auth(BearerAuth {
            verifier: Arc::new(verifier),
            resource: resource.clone(),
            authorization_servers: vec![idp.issuer.clone()],
            scopes_supported: vec!["demo:read".into()],
            required_scopes: Vec::new(),
            accept_client_certificates: false,
        })
        .tool(
            EtdiTool::new("whoami", "1.0.0")
                .description("Says who the caller is")
                .permissions(["demo:read"])
                .handler(|_a: NoArgs, ctx: ToolContext| async move {
                    let p = ctx.principal();
                    format!(
                        "{} via {:?} with roles {}",
                        p.subject,
                        p.auth_method,
                        p.roles.iter().cloned().collect::<Vec<_>>().join(",")
                    )
                }),
        )
        .build()
        .context("building the MCP server")?;
    spawn_http(server, mcp_listener);
    let client = http_client(&resource, &token).await?;
    let r = client.call_tool(params("whoami", &json!({}), None)).await;
    n.expect(
        "MCP call with the token",
        outcome(&r),
        "ok: alice via BearerJwt with roles analyst,tool-user",
    );
    client.cancel().await.context("closing the session")?;
    let (status, challenge) = raw_initialize(&resource, &forged).await?;
    n.say(format!(
        "forged token: HTTP {status}, WWW-Authenticate: {challenge}"
    ));
    n.check(
        "MCP request with the forged token: HTTP 401 invalid_token",
        status == 401 && challenge.starts_with("Bearer error=\"invalid_token\""),
        format_args!("HTTP {status} {challenge}"),
    );
    Ok(())
}

/// Runs the example.
pub async fn run(n: Narrative) -> Outcome {
    show_presets(&n)?;
    provider_tokens(&n).await?;
    end_to_end(&n).await?;
    Ok(())
}
