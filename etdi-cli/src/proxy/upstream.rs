//! The connection to the upstream MCP server: an rmcp client over a child
//! process's stdio or over Streamable HTTP.
//!
//! What the upstream receives is built here and nowhere else: the tool name
//! and the arguments of a call, and for HTTP the gateway's own token (if
//! configured). Nothing from the downstream request's headers or `_meta`
//! (its bearer token, request signature, call chain) is forwarded. A stdio
//! upstream starts with an empty environment plus the configured variables.
//!
//! `tools/list` is sent straight to the upstream on every check, bypassing
//! rmcp's client-side list cache (which may answer from a cached or stale
//! list), so a check always compares against what the upstream says now.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, ClientRequest,
    ErrorData, Implementation, JsonObject, ListToolsRequest, PaginatedRequestParams, ServerResult,
    Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tokio::sync::Notify;

use super::config::UpstreamConfig;

/// Most pages of `tools/list` followed, and most tools accepted, so an
/// upstream cannot make a check run forever or hold unbounded memory.
const MAX_PAGES: usize = 64;
const MAX_TOOLS: usize = 4096;

/// The gateway's rmcp client handler: it only listens for
/// `notifications/tools/list_changed`, which triggers a re-check.
#[derive(Clone)]
struct Listener {
    changed: Arc<Notify>,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            Default::default(),
            Implementation::new("etdi-proxy", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

/// The HTTP client of an HTTP upstream. `TCP_NODELAY` is set explicitly
/// (reqwest's default today, but a forwarded call pays any delayed-ACK
/// stall twice, so it is not left to a default). Redirects are not
/// followed: the upstream is the configured URL and nothing else, and a
/// redirect could carry the gateway's own token elsewhere. No idle
/// connections are kept, as rmcp's default client does: rmcp may stop
/// reading an SSE answer mid-stream, and a pooled connection left in that
/// state would stall the next request.
fn upstream_http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))
}

/// Why a forwarded call failed.
#[derive(Debug)]
pub enum CallError {
    /// The upstream answered with a JSON-RPC error.
    Rpc(ErrorData),
    /// The upstream could not be reached or answered something unusable.
    Unavailable(String),
}

/// A connected upstream.
pub struct Upstream {
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Listener>>>,
    peer: rmcp::Peer<RoleClient>,
    timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Starts (stdio) or reaches (HTTP) the upstream and initializes the MCP
    /// session. `changed` is notified when the upstream says its tool list
    /// changed.
    pub async fn connect(
        config: &UpstreamConfig,
        timeout: Duration,
        changed: Arc<Notify>,
    ) -> Result<Self, String> {
        let handler = Listener { changed };
        let service = match config {
            UpstreamConfig::Stdio {
                command,
                args,
                env,
                inherit_env,
                cwd,
            } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).env_clear().kill_on_drop(true);
                for name in inherit_env {
                    if let Some(v) = std::env::var_os(name) {
                        cmd.env(name, v);
                    }
                }
                cmd.envs(env);
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::inherit())
                    .spawn()
                    .map_err(|e| format!("cannot start the upstream `{command}`: {e}"))?;
                tokio::time::timeout(timeout, handler.serve(transport))
                    .await
                    .map_err(|_| {
                        format!("the upstream `{command}` did not initialize within {timeout:?}")
                    })?
                    .map_err(|e| format!("the upstream `{command}` failed to initialize: {e}"))?
            }
            UpstreamConfig::Http { url, token } => {
                use rmcp::transport::StreamableHttpClientTransport;
                use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
                let mut cfg = StreamableHttpClientTransportConfig::with_uri(url.clone());
                if let Some(t) = token {
                    cfg = cfg.auth_header(t.clone());
                }
                let transport = StreamableHttpClientTransport::with_client(upstream_http()?, cfg);
                tokio::time::timeout(timeout, handler.serve(transport))
                    .await
                    .map_err(|_| {
                        format!("the upstream {url} did not initialize within {timeout:?}")
                    })?
                    .map_err(|e| format!("the upstream {url} failed to initialize: {e}"))?
            }
        };
        let peer = service.peer().clone();
        Ok(Upstream {
            service: tokio::sync::Mutex::new(Some(service)),
            peer,
            timeout,
        })
    }

    /// Every tool the upstream advertises now (all pages).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, String> {
        let mut tools = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let mut params = PaginatedRequestParams::default();
            params.cursor = cursor.take();
            let request = ClientRequest::ListToolsRequest(ListToolsRequest {
                method: Default::default(),
                params: Some(params),
                extensions: Default::default(),
            });
            let answer = tokio::time::timeout(self.timeout, self.peer.send_request(request))
                .await
                .map_err(|_| {
                    format!(
                        "the upstream did not list its tools within {:?}",
                        self.timeout
                    )
                })?
                .map_err(|e| format!("the upstream did not list its tools: {e}"))?;
            let ServerResult::ListToolsResult(page) = answer else {
                return Err("the upstream answered tools/list with something else".into());
            };
            tools.extend(page.tools);
            if tools.len() > MAX_TOOLS {
                return Err(format!("the upstream lists more than {MAX_TOOLS} tools"));
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(tools),
            }
        }
        Err(format!(
            "the upstream's tool list has more than {MAX_PAGES} pages"
        ))
    }

    /// Calls `name` with `arguments` and nothing else.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Some(a) = arguments {
            params = params.with_arguments(a);
        }
        let answer = tokio::time::timeout(self.timeout, self.peer.call_tool_once(params))
            .await
            .map_err(|_| CallError::Unavailable(format!("no answer within {:?}", self.timeout)))?;
        match answer {
            Ok(CallToolResponse::Complete(r)) => Ok(r),
            Ok(_) => Err(CallError::Unavailable(
                "the upstream asked for input or started a task, which the gateway does not forward"
                    .into(),
            )),
            Err(rmcp::ServiceError::McpError(e)) => Err(CallError::Rpc(e)),
            Err(e) => Err(CallError::Unavailable(e.to_string())),
        }
    }

    /// Ends the session: a stdio upstream sees its input close and is
    /// stopped (SIGTERM, then SIGKILL) if it does not exit.
    pub async fn shutdown(&self) {
        let service = self.service.lock().await.take();
        if let Some(s) = service {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.cancel()).await;
        }
    }
}
