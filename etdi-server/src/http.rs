//! Streamable HTTP transport: rmcp's `StreamableHttpService` on axum, with
//! the MCP authorization spec's behaviour in front of it
//! (docs/PROTOCOL.md §11): bearer tokens only in the `Authorization`
//! header, `401` with `WWW-Authenticate: Bearer resource_metadata=...`,
//! `403 insufficient_scope` naming the missing scopes, and the RFC 9728
//! document at `/.well-known/oauth-protected-resource`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use etdi_auth::resource::ProtectedResourceMetadata;
use etdi_core::{DenyReason, EventKind, Outcome};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::audit::{self, step};
use crate::error::BuildError;
use crate::server::{Authenticated, BearerAuth, SecureServer, Shared};
use crate::stages::AuditRecorder;

/// How the HTTP endpoint is served.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Path of the MCP endpoint (default `/mcp`).
    pub path: String,
    /// `Host` header values accepted (DNS-rebinding protection; rmcp's
    /// default is loopback only).
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call (the MCP transport spec: servers
    /// MUST validate `Origin`), e.g. `https://app.example.com:443` or
    /// `http://localhost:*`. A request carrying any other `Origin` gets
    /// `403`; requests without one (every non-browser MCP client) are not
    /// affected. Default: empty, so every browser origin is refused.
    pub allowed_origins: Vec<String>,
    /// Keep MCP sessions (`Mcp-Session-Id`); off serves every request
    /// statelessly.
    pub sessions: bool,
    /// Prefer `application/json` responses over SSE for simple calls
    /// (stateless mode only).
    pub json_response: bool,
    /// Per-tool scope challenges (MCP step-up authorization): a
    /// `tools/call` whose token lacks a permission the tool requires is
    /// answered `403` with `WWW-Authenticate: Bearer
    /// error="insufficient_scope", scope="..."` naming what is missing, so
    /// an OAuth client can obtain a token with those scopes and retry.
    /// Off (the default), the same denial is the JSON-RPC error `-32010`
    /// with the missing permissions in `data`, which every MCP client can
    /// read. Either way the denial is audited at the authorization step.
    pub tool_scope_challenge: bool,
    /// Connection bounds applied by [`serve_http`] and
    /// [`crate::tls::serve_https`] (header-read and idle timeout, connection
    /// cap); [`router`] does not use them.
    pub connections: crate::listener::ConnectionLimits,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            path: "/mcp".into(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
            sessions: true,
            json_response: false,
            tool_scope_challenge: false,
            connections: crate::listener::ConnectionLimits::default(),
        }
    }
}

struct AuthState {
    bearer: BearerAuth,
    metadata_url: String,
    audit: Arc<dyn AuditRecorder>,
    server: Arc<str>,
    sessions: Arc<LocalSessionManager>,
    max_sessions: usize,
    /// Who opened each live session (`None` when sessions are off).
    owners: Option<crate::sessions::SessionOwners>,
    max_sessions_per_principal: usize,
    /// Set when per-tool scope challenges are on.
    scope_challenge: Option<ScopeChallenge>,
    /// Requests in flight past authentication (`max_concurrent_requests`).
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl AuthState {
    /// Runs an authenticated request once fewer than
    /// `max_concurrent_requests` are in flight; it waits until then. The
    /// slot is held until the response body has been sent or dropped: in
    /// session mode rmcp answers a call with an SSE stream whose headers
    /// go out before the tool runs, so a limit that ended with the headers
    /// (as tower's concurrency limit does) would not bound the tools
    /// running at once. `GET` opens the long-lived standalone stream of a
    /// session and is bounded by `max_sessions` instead.
    async fn admit(&self, req: Request, next: Next) -> Response {
        if req.method() == axum::http::Method::GET {
            return next.run(req).await;
        }
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return (StatusCode::SERVICE_UNAVAILABLE, "server shutting down").into_response();
        };
        next.run(req).await.map(|body| {
            axum::body::Body::new(Admitted {
                body,
                _permit: permit,
            })
        })
    }
}

/// A response body that holds its request's in-flight slot until it ends
/// or is dropped.
struct Admitted {
    body: axum::body::Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Admitted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The answer to a request on a session this layer does not let it use:
/// exactly rmcp's answer for an unknown session, so a refused attempt
/// learns nothing about the session.
fn unknown_session() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

/// What the session checks read of a request (taken out of it, because a
/// request body is not `Sync` and cannot be borrowed across an await).
struct SessionRequest {
    /// The `Mcp-Session-Id` header.
    session: Option<String>,
    /// A `POST` without a session id: it may open one.
    opens: bool,
}

impl SessionRequest {
    fn of(req: &Request) -> Self {
        SessionRequest {
            session: req
                .headers()
                .get("mcp-session-id")
                .map(|v| v.to_str().unwrap_or_default().to_owned()),
            opens: req.method() == axum::http::Method::POST,
        }
    }
}

/// What the per-tool scope check needs from the server.
struct ScopeChallenge {
    shared: Arc<Shared>,
    max_body: usize,
}

/// The tool name and JSON-RPC id of a `tools/call` request body; `None`
/// for anything else (other methods, batches, unparsable bodies: the MCP
/// service answers those itself).
fn tools_call_target(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Peek {
        method: Option<String>,
        id: Option<serde_json::Value>,
        params: Option<Params>,
    }
    let peek: Peek = serde_json::from_slice(body).ok()?;
    if peek.method.as_deref() != Some("tools/call") {
        return None;
    }
    let name = peek.params?.name?;
    let id = match peek.id {
        Some(serde_json::Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => "-".into(),
    };
    Some((name, id))
}

/// Splits `https://host:port/path` into origin and path.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")? + 3;
    match url.get(scheme_end..)?.find('/') {
        Some(i) => Some((url.get(..scheme_end + i)?, url.get(scheme_end + i..)?)),
        None => Some((url, "")),
    }
}

/// The RFC 9728 metadata URL for `resource`: the well-known path with the
/// resource's path appended.
pub fn metadata_url(resource: &str) -> Option<String> {
    let (origin, path) = split_url(resource)?;
    let path = path.trim_end_matches('/');
    Some(format!(
        "{origin}/.well-known/oauth-protected-resource{path}"
    ))
}

/// Makes a string safe inside a quoted `WWW-Authenticate` parameter.
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .take(200)
        .collect()
}

fn challenge(status: StatusCode, value: String) -> Response {
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

impl AuthState {
    async fn record_failure(
        &self,
        kind: EventKind,
        reason: DenyReason,
        principal: Option<&etdi_core::Principal>,
    ) {
        let principal = principal.map(audit::principal_ref);
        let subject = audit::Subject {
            server: &self.server,
            request_id: "-",
            principal: principal.as_ref(),
            tool: None,
        };
        let e = audit::event(kind, Outcome::Denied, step::HTTP_AUTH, &subject, &[reason]);
        if let Err(err) = self.audit.record(e).await {
            tracing::error!(error = %err, "HTTP authentication failure could not be audited");
        }
    }

    /// Holds a request on a session to the principal that opened it, and a
    /// request opening one to the per-principal quota (see
    /// [`crate::sessions`]); `Err` is the refusal to send, already audited.
    async fn check_session(
        &self,
        request: SessionRequest,
        principal: &etdi_core::Principal,
    ) -> Result<Option<crate::sessions::Owner>, Response> {
        use crate::sessions::{Access, Owner};
        let Some(owners) = &self.owners else {
            return Ok(None);
        };
        let owner = Owner::of(principal);
        let SessionRequest { session, opens } = request;
        match session {
            Some(id) => {
                let access = owners.access(&id, &owner);
                if access == Access::Unknown {
                    // Ended, expired or never opened here: rmcp would say
                    // the same, and an id this layer cannot place (a
                    // poisoned table) must not reach a session it owns.
                    return Err(unknown_session());
                }
                if access == Access::Foreign {
                    self.record_failure(
                        EventKind::AuthorizationFailed,
                        DenyReason::SessionNotOwned,
                        Some(principal),
                    )
                    .await;
                    return Err(unknown_session());
                }
                Ok(None)
            }
            None if opens => {
                let live = self.sessions.sessions.read().await;
                let held = owners.live_count(&owner, |id| live.contains_key(id));
                let total = live.len();
                drop(live);
                let refusal = match held {
                    None => Some("session table unavailable".to_owned()),
                    Some(n) if n >= self.max_sessions_per_principal => Some(format!(
                        "{n} live sessions, the most one principal may hold (max_sessions_per_principal)"
                    )),
                    Some(_) if total >= self.max_sessions => Some(format!(
                        "{total} live sessions, the most the server holds (max_sessions)"
                    )),
                    Some(_) => None,
                };
                if let Some(detail) = refusal {
                    let status = if held.is_some_and(|n| n >= self.max_sessions_per_principal) {
                        StatusCode::TOO_MANY_REQUESTS
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    self.record_failure(
                        EventKind::AuthorizationFailed,
                        DenyReason::LimitExceeded {
                            limit: if status == StatusCode::TOO_MANY_REQUESTS {
                                "max_sessions_per_principal".into()
                            } else {
                                "max_sessions".into()
                            },
                            detail: detail.clone(),
                        },
                        Some(principal),
                    )
                    .await;
                    return Err((status, detail).into_response());
                }
                Ok(Some(owner))
            }
            None => Ok(None),
        }
    }

    /// Admits the request; a session it opened is bound to `opener`, a
    /// session it ended is forgotten.
    async fn admit_session(
        &self,
        req: Request,
        next: Next,
        opener: Option<crate::sessions::Owner>,
    ) -> Response {
        let ending = (req.method() == axum::http::Method::DELETE)
            .then(|| req.headers().get("mcp-session-id").cloned())
            .flatten();
        let resp = self.admit(req, next).await;
        if let Some(owners) = &self.owners {
            if let Some(owner) = opener
                && let Some(id) = resp.headers().get("mcp-session-id")
                && let Ok(id) = id.to_str()
            {
                owners.bind(id, owner);
            }
            if let Some(id) = ending
                && resp.status().is_success()
                && let Ok(id) = id.to_str()
            {
                owners.forget(id);
            }
        }
        resp
    }
}

async fn authenticate(State(st): State<Arc<AuthState>>, mut req: Request, next: Next) -> Response {
    let meta = &st.metadata_url;
    // A token in the query string leaks into logs and caches; refuse it
    // outright rather than ignore it.
    if req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("access_token=")))
    {
        st.record_failure(
            EventKind::AuthenticationFailed,
            DenyReason::Unauthenticated {
                detail: "access token in the query string".into(),
            },
            None,
        )
        .await;
        return challenge(
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer error=\"invalid_request\", error_description=\"tokens are accepted only in the Authorization header\", resource_metadata=\"{meta}\""
            ),
        );
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        });
    // `Authorization: Bearer` with nothing after it is a malformed request
    // (RFC 6750 §3.1 `invalid_request`), not a missing credential.
    if bearer.as_deref() == Some("") {
        st.record_failure(
            EventKind::AuthenticationFailed,
            DenyReason::Unauthenticated {
                detail: "empty bearer token".into(),
            },
            None,
        )
        .await;
        return challenge(
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer error=\"invalid_request\", error_description=\"empty bearer token\", resource_metadata=\"{meta}\""
            ),
        );
    }
    let token = bearer;
    let certificate = req
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::tls::TlsPeer>>()
        .and_then(|c| c.0.certificate.clone());
    if token.is_none()
        && st.bearer.accept_client_certificates
        && let Some(cert) = &certificate
    {
        let principal =
            etdi_auth::mtls::CertificateIdentity::from_der(cert).and_then(|id| id.to_principal());
        return match principal {
            Ok(p) => {
                let opener = match st.check_session(SessionRequest::of(&req), &p).await {
                    Ok(o) => o,
                    Err(refusal) => return refusal,
                };
                req.extensions_mut().insert(Authenticated(Arc::new(p)));
                st.admit_session(req, next, opener).await
            }
            Err(e) => {
                st.record_failure(
                    EventKind::AuthenticationFailed,
                    DenyReason::Unauthenticated {
                        detail: format!("client certificate has no usable identity: {e}"),
                    },
                    None,
                )
                .await;
                challenge(
                    StatusCode::UNAUTHORIZED,
                    etdi_auth::resource::www_authenticate_unauthenticated(meta),
                )
            }
        };
    }
    let Some(token) = token else {
        st.record_failure(
            EventKind::AuthenticationFailed,
            DenyReason::Unauthenticated {
                detail: "no bearer token".into(),
            },
            None,
        )
        .await;
        return challenge(
            StatusCode::UNAUTHORIZED,
            etdi_auth::resource::www_authenticate_unauthenticated(meta),
        );
    };
    let principal = match st
        .bearer
        .verifier
        .verify(&token, certificate.as_deref())
        .await
    {
        Ok(p) => p,
        Err(rejection) if rejection.unavailable => {
            st.record_failure(
                EventKind::AuthenticationFailed,
                DenyReason::Unauthenticated {
                    detail: format!("token could not be checked: {}", rejection.description),
                },
                None,
            )
            .await;
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "token verification unavailable",
            )
                .into_response();
        }
        Err(rejection) => {
            let why = quote_safe(&rejection.description);
            st.record_failure(
                EventKind::AuthenticationFailed,
                DenyReason::Unauthenticated {
                    detail: why.clone(),
                },
                None,
            )
            .await;
            return challenge(
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{why}\", resource_metadata=\"{meta}\""
                ),
            );
        }
    };
    let missing: Vec<&str> = st
        .bearer
        .required_scopes
        .iter()
        .filter(|s| !principal.scopes.contains(*s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        st.record_failure(
            EventKind::AuthorizationFailed,
            DenyReason::Unauthenticated {
                detail: format!("token lacks scope(s): {}", missing.join(" ")),
            },
            Some(&principal),
        )
        .await;
        return challenge(
            StatusCode::FORBIDDEN,
            etdi_auth::resource::www_authenticate_insufficient_scope(
                &st.bearer.required_scopes,
                meta,
            ),
        );
    }
    // Sessions: a request on one must come from its owner; one opening a
    // session must fit the per-principal and total quotas.
    let opener = match st.check_session(SessionRequest::of(&req), &principal).await {
        Ok(o) => o,
        Err(refusal) => return refusal,
    };
    if let Some(sc) = &st.scope_challenge
        && req.method() == axum::http::Method::POST
    {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, sc.max_body).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        };
        if let Some((name, id)) = tools_call_target(&bytes)
            && let Some(missing) = sc.shared.scope_challenge(&principal, &name, &id).await
        {
            let mut scopes = st.bearer.required_scopes.clone();
            for p in &missing {
                if !scopes.iter().any(|s| s == p.as_str()) {
                    scopes.push(p.as_str().to_owned());
                }
            }
            let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
            let why = quote_safe(&format!(
                "the tool needs permission(s): {}",
                names.join(" ")
            ));
            return challenge(
                StatusCode::FORBIDDEN,
                format!(
                    "{}, error_description=\"{why}\"",
                    etdi_auth::resource::www_authenticate_insufficient_scope(&scopes, meta)
                ),
            );
        }
        req = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    req.extensions_mut().insert(Authenticated(principal));
    st.admit_session(req, next, opener).await
}

/// The axum router serving `server` over Streamable HTTP at
/// `options.path`, with bearer authentication and the RFC 9728 document.
///
/// Fails when the server has no [`BearerAuth`]: a network endpoint without
/// authentication is not something this crate serves.
pub fn router<H>(server: SecureServer<H>, options: HttpOptions) -> Result<Router, BuildError>
where
    H: ServerHandler + Send + Sync + 'static,
{
    let bearer = server.bearer().cloned().ok_or_else(|| {
        BuildError::Config("HTTP needs bearer authentication (`bearer_auth`)".into())
    })?;
    let metadata = metadata_url(&bearer.resource).ok_or_else(|| {
        BuildError::Config(format!(
            "bearer resource `{}` is not an absolute http(s) URL",
            bearer.resource
        ))
    })?;
    let limits = server.limits();
    let sessions = Arc::new(LocalSessionManager::default());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts.clone())
        .with_allowed_origins(options.allowed_origins.clone())
        .enforce_origin_validation()
        .with_legacy_session_mode(options.sessions)
        .with_json_response(options.json_response)
        .with_max_request_body_bytes(limits.max_request_body_bytes);
    let factory_server = server.clone();
    // One service shared behind an `Arc`: axum clones a route's service for
    // every request, and cloning a `StreamableHttpService` copies its
    // configuration (the host and origin lists, about twenty allocations
    // per call as rmcp's own examples mount it).
    let mcp = Arc::new(StreamableHttpService::new(
        move || Ok(factory_server.clone()),
        sessions.clone(),
        config,
    ));
    let mcp_route = axum::routing::any(move |req: Request| {
        let mcp = mcp.clone();
        async move { mcp.handle(req).await }
    });
    let state = Arc::new(AuthState {
        bearer: bearer.clone(),
        metadata_url: metadata,
        audit: server.audit_recorder().clone(),
        server: server.audience().into(),
        sessions,
        max_sessions: limits.max_sessions,
        owners: options
            .sessions
            .then(crate::sessions::SessionOwners::default),
        max_sessions_per_principal: limits.max_sessions_per_principal,
        scope_challenge: options.tool_scope_challenge.then(|| ScopeChallenge {
            shared: server.shared.clone(),
            max_body: limits.max_request_body_bytes,
        }),
        in_flight: Arc::new(tokio::sync::Semaphore::new(
            limits
                .max_concurrent_requests
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        )),
    });
    let doc = ProtectedResourceMetadata::new(
        bearer.resource.clone(),
        bearer.authorization_servers.iter().cloned(),
    )
    .scopes(bearer.scopes_supported.iter().cloned())
    .name(server.audience());
    let doc: serde_json::Value = serde_json::from_str(&doc.to_json())
        .map_err(|e| BuildError::Config(format!("protected-resource metadata: {e}")))?;
    let doc = Arc::new(doc);
    let well_known = {
        let doc = doc.clone();
        move || {
            let doc = doc.clone();
            async move { axum::Json((*doc).clone()) }
        }
    };
    let mut path_suffixed = String::from("/.well-known/oauth-protected-resource");
    if let Some((_, p)) = split_url(&bearer.resource) {
        path_suffixed.push_str(p.trim_end_matches('/'));
    }
    let protected = Router::new()
        .route(&options.path, mcp_route)
        .layer(axum::middleware::from_fn_with_state(state, authenticate));
    let jwks = Arc::new(server.jwks().to_json());
    let jwks_route = move || {
        let jwks = jwks.clone();
        async move {
            (
                [(header::CONTENT_TYPE, "application/jwk-set+json")],
                (*jwks).clone(),
            )
        }
    };
    let mut app = Router::new()
        .route(
            "/.well-known/etdi/jwks.json",
            axum::routing::get(jwks_route),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            axum::routing::get(well_known.clone()),
        );
    if path_suffixed != "/.well-known/oauth-protected-resource" {
        app = app.route(&path_suffixed, axum::routing::get(well_known));
    }
    Ok(app.merge(protected))
}

/// Serves `server` on `listener` until the process ends or the listener
/// fails. Every accepted connection gets `TCP_NODELAY`
/// ([`crate::listener::TcpAccept`]) and the bounds of
/// `options.connections` ([`crate::listener::serve`]).
pub async fn serve_http<H>(
    server: SecureServer<H>,
    listener: tokio::net::TcpListener,
    options: HttpOptions,
) -> Result<(), crate::ServeError>
where
    H: ServerHandler + Send + Sync + 'static,
{
    let limits = options.connections;
    let app = router(server, options).map_err(crate::ServeError::Build)?;
    crate::listener::serve(
        crate::listener::TcpAccept::new(listener),
        app,
        limits,
        std::future::pending(),
    )
    .await
    .map_err(|e| crate::ServeError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_appends_the_resource_path() {
        assert_eq!(
            metadata_url("https://t.example.com/mcp").as_deref(),
            Some("https://t.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:80").as_deref(),
            Some("http://127.0.0.1:80/.well-known/oauth-protected-resource")
        );
        assert_eq!(metadata_url("no-scheme"), None);
    }

    #[test]
    fn quoting_strips_what_could_break_the_header() {
        assert_eq!(quote_safe("bad \"token\"\\\n"), "bad token");
    }
}
