//! Bearer tokens on Streamable HTTP (PROTOCOL §11): a wrapper around any
//! `rmcp` HTTP client that puts a current access token on every request,
//! and on `403` with `error="insufficient_scope"` asks the token source once
//! for a token with the named scope and retries (bounded: one upgrade and
//! one retry per request). A `401` gets one fresh token and one retry.
//!
//! Bound rmcp's SSE reconnection (`retry_config`, as below): its default
//! retries without limit, and an ETDI server keeps sessions in memory, so
//! after a server restart a call in flight would wait forever instead of
//! failing (seen in the SIGKILL test, `etdi-server/tests/load_fault.rs`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use etdi_auth::{ClientAuth, ClientCredentials, ClientSecret};
//! use etdi_client::http::{BearerClient, ClientCredentialsSource};
//! use rmcp::transport::StreamableHttpClientTransport;
//! use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
//!
//! let tokens = ClientCredentialsSource::new(["tools:call"], |scopes| {
//!     Ok(ClientCredentials::new(
//!         "https://sso.example.com/token",
//!         "my-agent",
//!         ClientAuth::SecretBasic(ClientSecret::new("secret")),
//!     )?
//!     .scopes(scopes.to_vec())
//!     .resource("https://tools.example.com/mcp"))
//! })?;
//! let http = BearerClient::new(reqwest::Client::new(), Arc::new(tokens));
//! let mut config =
//!     StreamableHttpClientTransportConfig::with_uri("https://tools.example.com/mcp");
//! let mut backoff = rmcp::transport::common::client_side_sse::ExponentialBackoff::default();
//! backoff.max_times = Some(2);
//! config.retry_config = Arc::new(backoff);
//! let transport = StreamableHttpClientTransport::with_client(http, config);
//! # let _ = transport; Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use etdi_auth::{ClientCredentials, ConfigError};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use tokio::sync::Mutex;

type Headers = HashMap<http::HeaderName, http::HeaderValue>;

/// Supplies access tokens for one MCP server.
#[async_trait]
pub trait BearerTokenSource: Send + Sync {
    /// A current access token (cached by the source as it sees fit).
    async fn token(&self) -> Result<String, String>;

    /// A token that also carries `scope` (space-separated scopes from a
    /// `403 insufficient_scope` challenge). Returns an error if that scope
    /// cannot be obtained or was already requested.
    async fn token_with_scope(&self, scope: &str) -> Result<String, String>;

    /// Drops a token the server rejected (`401`), so the next is fresh.
    async fn invalidate(&self);
}

type Factory = dyn Fn(&[String]) -> Result<ClientCredentials, ConfigError> + Send + Sync;

/// Client-credentials tokens (etdi-auth) with scope step-up: `make` builds a
/// [`ClientCredentials`] for a scope list; a step-up builds a new one for
/// the union of the scopes so far and the requested scope.
pub struct ClientCredentialsSource {
    make: Box<Factory>,
    state: Mutex<(Vec<String>, Arc<ClientCredentials>)>,
}

impl std::fmt::Debug for ClientCredentialsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentialsSource")
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsSource {
    /// Starts with `scopes`.
    pub fn new<I, S>(
        scopes: I,
        make: impl Fn(&[String]) -> Result<ClientCredentials, ConfigError> + Send + Sync + 'static,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        let first = make(&scopes)?;
        Ok(ClientCredentialsSource {
            make: Box::new(make),
            state: Mutex::new((scopes, Arc::new(first))),
        })
    }
}

#[async_trait]
impl BearerTokenSource for ClientCredentialsSource {
    async fn token(&self) -> Result<String, String> {
        let client = self.state.lock().await.1.clone();
        client
            .access_token()
            .await
            .map(|t| t.secret().to_owned())
            .map_err(|e| e.to_string())
    }

    async fn token_with_scope(&self, scope: &str) -> Result<String, String> {
        let client = {
            let mut state = self.state.lock().await;
            let mut all: BTreeSet<String> = state.0.iter().cloned().collect();
            let before = all.len();
            all.extend(scope.split_whitespace().map(str::to_owned));
            if all.len() == before {
                return Err(format!(
                    "the server asks for scope `{scope}`, which was already requested"
                ));
            }
            let scopes: Vec<String> = all.into_iter().collect();
            let client = Arc::new((self.make)(&scopes).map_err(|e| e.to_string())?);
            *state = (scopes, client.clone());
            client
        };
        client
            .access_token()
            .await
            .map(|t| t.secret().to_owned())
            .map_err(|e| e.to_string())
    }

    async fn invalidate(&self) {
        let client = self.state.lock().await.1.clone();
        client.invalidate().await;
    }
}

/// A fixed token (tests, or tokens managed elsewhere); cannot step up.
#[derive(Clone)]
pub struct StaticBearer(pub String);

impl std::fmt::Debug for StaticBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticBearer(..)")
    }
}

#[async_trait]
impl BearerTokenSource for StaticBearer {
    async fn token(&self) -> Result<String, String> {
        Ok(self.0.clone())
    }
    async fn token_with_scope(&self, scope: &str) -> Result<String, String> {
        Err(format!(
            "a static token cannot be extended to scope `{scope}`"
        ))
    }
    async fn invalidate(&self) {}
}

/// An `rmcp` Streamable HTTP client that authenticates with a
/// [`BearerTokenSource`]. The transport's own `auth_header` is ignored: the
/// token always comes from the source.
#[derive(Clone)]
pub struct BearerClient<C> {
    inner: C,
    tokens: Arc<dyn BearerTokenSource>,
}

impl<C> std::fmt::Debug for BearerClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerClient").finish_non_exhaustive()
    }
}

impl<C> BearerClient<C> {
    /// Wraps `inner` (e.g. a `reqwest::Client`).
    pub fn new(inner: C, tokens: Arc<dyn BearerTokenSource>) -> Self {
        BearerClient { inner, tokens }
    }
}

fn source_error<E: std::error::Error + Send + Sync + 'static>(
    msg: String,
) -> StreamableHttpError<E> {
    StreamableHttpError::Io(std::io::Error::other(format!("access token: {msg}")))
}

impl<C> BearerClient<C>
where
    C: StreamableHttpClient + Send + Sync,
{
    /// Runs `call` with a token; on `403 insufficient_scope` steps up once,
    /// on `401` refreshes once, and retries once. Never loops.
    async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, StreamableHttpError<C::Error>>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<C::Error>>>,
    {
        let token = self.tokens.token().await.map_err(source_error)?;
        match call(Some(token)).await {
            Err(StreamableHttpError::InsufficientScope(e)) => {
                let Some(scope) = e.get_required_scope().map(str::to_owned) else {
                    return Err(StreamableHttpError::InsufficientScope(e));
                };
                match self.tokens.token_with_scope(&scope).await {
                    Ok(t) => call(Some(t)).await,
                    // The step-up is refused: report the server's answer.
                    Err(_) => Err(StreamableHttpError::InsufficientScope(e)),
                }
            }
            Err(StreamableHttpError::AuthRequired(e)) => {
                self.tokens.invalidate().await;
                match self.tokens.token().await {
                    Ok(t) => call(Some(t)).await,
                    Err(_) => Err(StreamableHttpError::AuthRequired(e)),
                }
            }
            other => other,
        }
    }
}

impl<C> StreamableHttpClient for BearerClient<C>
where
    C: StreamableHttpClient + Send + Sync,
{
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: Headers,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.authorized(|token| {
            let (uri, message, session_id, headers) = (
                uri.clone(),
                message.clone(),
                session_id.clone(),
                custom_headers.clone(),
            );
            async move {
                self.inner
                    .post_message(uri, message, session_id, token, headers)
                    .await
            }
        })
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: Headers,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.authorized(|token| {
            let (uri, message, session_id, headers) = (
                uri.clone(),
                message.clone(),
                session_id.clone(),
                custom_headers.clone(),
            );
            async move {
                self.inner
                    .post_message_with_max_sse_event_size(
                        uri,
                        message,
                        session_id,
                        token,
                        headers,
                        max_sse_event_size,
                    )
                    .await
            }
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: Headers,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.authorized(|token| {
            let (uri, message, session_id, headers) = (
                uri.clone(),
                message.clone(),
                session_id.clone(),
                custom_headers.clone(),
            );
            async move {
                self.inner
                    .post_message_with_response_limits(
                        uri, message, session_id, token, headers, limits,
                    )
                    .await
            }
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: Headers,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.authorized(|token| {
            let (uri, session_id, headers) =
                (uri.clone(), session_id.clone(), custom_headers.clone());
            async move {
                self.inner
                    .delete_session(uri, session_id, token, headers)
                    .await
            }
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: Headers,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        self.authorized(|token| {
            let (uri, session_id, last, headers) = (
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                custom_headers.clone(),
            );
            async move {
                self.inner
                    .get_stream(uri, session_id, last, token, headers)
                    .await
            }
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: Headers,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        self.authorized(|token| {
            let (uri, session_id, last, headers) = (
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                custom_headers.clone(),
            );
            async move {
                self.inner
                    .get_stream_with_max_sse_event_size(
                        uri,
                        session_id,
                        last,
                        token,
                        headers,
                        max_sse_event_size,
                    )
                    .await
            }
        })
        .await
    }
}
