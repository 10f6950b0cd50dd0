//! The forwarding handler that `SecureServer` wraps: it advertises the
//! pinned form of each exposed upstream tool (SecureServer adds the ETDI
//! fields and the gateway's attestation), and for each call that passed the
//! ETDI pipeline (authentication, policy, audit) it re-lists the upstream's
//! tools, compares them with the pins, and forwards the call only when the
//! tool is unchanged.
//!
//! ```text
//! downstream ──HTTP+OAuth──▶ SecureServer ──▶ Forwarder ──rmcp client──▶ upstream
//!                            (auth, policy,    (pin check,
//!                             attestation,      forward name +
//!                             audit)            arguments only)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use etdi_audit::{AuditLog, event};
use etdi_core::{DenyReason, EventKind, Outcome, ToolRef};
use etdi_server::CallInfo;
use etdi_server::error::deny_error;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::config::ToolSettings;
use super::pins::{Observation, PinStore};
use super::upstream::{CallError, Upstream};

/// The `details.step` of the gateway's own audit events.
pub const STEP_PIN_CHECK: &str = "pin_check";
/// The `details.step` of a forwarded call's upstream outcome.
pub const STEP_FORWARD: &str = "forward";

/// JSON-RPC codes ETDI uses or reserves for its denials (PROTOCOL §10).
const ETDI_CODES: std::ops::RangeInclusive<i32> = -32019..=-32010;

/// One upstream tool the gateway exposes.
#[derive(Debug, Clone)]
pub struct Exposed {
    /// ETDI fields from the configuration.
    pub settings: ToolSettings,
    /// The pinned tool, as advertised downstream (before SecureServer adds
    /// `_meta`).
    pub tool: Tool,
}

impl Exposed {
    /// How audit events name the tool.
    fn tool_ref(&self) -> ToolRef {
        ToolRef {
            id: self.settings.id.clone(),
            name: Some(self.tool.name.to_string()),
            version: Some(self.settings.version.clone()),
            digest: None,
        }
    }
}

struct Inner {
    upstream: Arc<Upstream>,
    pins: tokio::sync::Mutex<PinStore>,
    exposed: BTreeMap<String, Exposed>,
    audit: AuditLog,
    server: String,
}

/// The rmcp handler behind SecureServer. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("exposed", &self.inner.exposed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The call a pin check runs for (absent for a check outside a call).
struct CallSubject<'a> {
    info: &'a CallInfo,
}

impl CallSubject<'_> {
    /// How events name `exposed`: with the advertised definition's digest
    /// when it is the called tool.
    fn tool_ref(&self, exposed: &Exposed) -> ToolRef {
        if self.info.tool.name.as_str() == exposed.tool.name {
            event::tool_ref(&self.info.tool)
        } else {
            exposed.tool_ref()
        }
    }
}

/// The §10 error of a refused call to a blocked tool: -32015
/// `tool_not_verified`.
fn rug_pull_error(tool: &etdi_core::ToolId) -> ErrorData {
    deny_error(&[DenyReason::ToolNotVerified {
        tool: tool.clone(),
        detail: "its definition changed upstream since the gateway pinned it (rug pull); calls are blocked until an operator re-approves it".into(),
    }])
}

impl Forwarder {
    /// A forwarder for `exposed` tools (already pinned in `pins`).
    pub fn new(
        upstream: Arc<Upstream>,
        pins: PinStore,
        exposed: BTreeMap<String, Exposed>,
        audit: AuditLog,
        server: String,
    ) -> Self {
        Forwarder {
            inner: Arc::new(Inner {
                upstream,
                pins: tokio::sync::Mutex::new(pins),
                exposed,
                audit,
                server,
            }),
        }
    }

    /// The pins (for the start-up version check).
    pub fn pins(&self) -> &tokio::sync::Mutex<PinStore> {
        &self.inner.pins
    }

    /// Lists the upstream's tools now and compares every exposed one with
    /// its pin; new blocks are recorded durably in the pin file and the
    /// audit log before this returns. Returns the names the upstream lists.
    pub async fn recheck(&self) -> Result<Vec<String>, String> {
        self.check(None).await
    }

    async fn check(&self, subject: Option<&CallSubject<'_>>) -> Result<Vec<String>, String> {
        let s = &*self.inner;
        let tools = s.upstream.list_tools().await?;
        let mut pins = s.pins.lock().await;
        let mut names = Vec::with_capacity(tools.len());
        for tool in &tools {
            let name = tool.name.to_string();
            if let Some(exposed) = s.exposed.get(&name) {
                let (observation, persist_error) = pins.observe(&name, tool)?;
                if let Some(e) = persist_error {
                    // The block holds in memory; the operator must know it
                    // is not on disk.
                    super::warn(format_args!(
                        "warning: the pin file could not be written: {e}"
                    ));
                }
                if let Observation::Blocked {
                    pinned,
                    observed,
                    changed,
                    new: true,
                } = &observation
                {
                    let tool_ref = match subject {
                        Some(c) => c.tool_ref(exposed),
                        None => exposed.tool_ref(),
                    };
                    let mut e = event::rug_pull_detected(tool_ref, pinned, observed)
                        .server(s.server.clone())
                        .detail("step", STEP_PIN_CHECK)
                        .detail("changed", changed.clone());
                    if let Some(c) = subject {
                        e = e
                            .principal(&*c.info.principal)
                            .request_id(c.info.request_id.clone());
                    }
                    // Durable before anyone is told: a detected rug pull
                    // must survive a crash right after.
                    s.audit
                        .log_durable_async(e)
                        .await
                        .map_err(|e| format!("audit log: {e}"))?;
                }
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Records a refused call and returns its error. The caller is told the
    /// refusal even when the record cannot be written.
    async fn refuse(&self, info: &CallInfo, reason: DenyReason, error: ErrorData) -> ErrorData {
        let s = &*self.inner;
        let e = event::EventBuilder::new(EventKind::AuthorizationFailed, Outcome::Denied)
            .tool(event::tool_ref(&info.tool))
            .server(s.server.clone())
            .principal(&*info.principal)
            .request_id(info.request_id.clone())
            .reason_code(reason.code())
            .reason(reason.to_string())
            .detail("step", STEP_PIN_CHECK);
        if let Err(err) = s.audit.log_durable_async(e).await {
            super::warn(format_args!(
                "error: a refused call could not be audited: {err}"
            ));
        }
        error
    }
}

impl ServerHandler for Forwarder {
    fn get_info(&self) -> ServerConfig {
        // Only tools: resources, prompts and the upstream's instructions are
        // not forwarded (they would bypass the checks, and instructions are
        // text a model reads).
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.exposed.get(name).map(|e| e.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Only SecureServer calls this, after its pipeline stored what it
        // established; without it the call did not pass the pipeline.
        let Some(info) = context.extensions.get::<Arc<CallInfo>>().cloned() else {
            return Err(deny_error(&[]));
        };
        let name = request.name.to_string();
        let Some(exposed) = self.inner.exposed.get(&name) else {
            return Err(deny_error(&[DenyReason::UnknownTool { name }]));
        };
        let subject = CallSubject { info: &info };

        // Re-check the upstream's definitions before forwarding.
        let listed = match self.check(Some(&subject)).await {
            Ok(l) => l,
            Err(detail) => {
                let reason = DenyReason::Internal {
                    detail: format!("the upstream's tools could not be checked: {detail}"),
                };
                let error = deny_error(std::slice::from_ref(&reason));
                return Err(self.refuse(&info, reason, error).await);
            }
        };
        if self.inner.pins.lock().await.is_blocked(&name) {
            let reason = DenyReason::ToolNotVerified {
                tool: exposed.settings.id.clone(),
                detail: "its definition changed upstream since it was pinned (rug pull)".into(),
            };
            let error = rug_pull_error(&exposed.settings.id);
            return Err(self.refuse(&info, reason, error).await);
        }
        if !listed.contains(&name) {
            let reason = DenyReason::ToolNotVerified {
                tool: exposed.settings.id.clone(),
                detail: "the upstream no longer offers this tool".into(),
            };
            let error = deny_error(std::slice::from_ref(&reason));
            return Err(self.refuse(&info, reason, error).await);
        }

        // Forward the name and the arguments; nothing else of the request.
        match self.inner.upstream.call(&name, request.arguments).await {
            Ok(result) => Ok(CallToolResponse::Complete(result)),
            Err(CallError::Rpc(mut e)) => {
                // An upstream must not be able to forge an ETDI denial.
                if ETDI_CODES.contains(&e.code.0) {
                    e = ErrorData::internal_error(format!("upstream error: {}", e.message), None);
                }
                Err(e)
            }
            Err(CallError::Unavailable(detail)) => {
                let reason = DenyReason::Internal {
                    detail: format!("the upstream did not answer: {detail}"),
                };
                let s = &*self.inner;
                let e =
                    event::EventBuilder::new(EventKind::ToolInvocationCompleted, Outcome::Failure)
                        .tool(event::tool_ref(&info.tool))
                        .server(s.server.clone())
                        .principal(&*info.principal)
                        .request_id(info.request_id.clone())
                        .reason_code(reason.code())
                        .reason(reason.to_string())
                        .detail("step", STEP_FORWARD);
                if let Err(err) = s.audit.log_async(e).await {
                    super::warn(format_args!(
                        "error: an upstream failure could not be audited: {err}"
                    ));
                }
                Err(deny_error(&[reason]))
            }
        }
    }
}
