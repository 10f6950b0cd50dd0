//! Audit events of the server pipeline: one builder for every step's event
//! and an in-memory recorder for tests and examples.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use etdi_core::{
    AuditEvent, DenyReason, Digest, EventKind, Outcome, Principal, PrincipalRef, Timestamp,
    ToolDefinition, ToolRef,
};
use serde_json::Value;

use crate::stages::{AuditRecorder, StageError};

/// The `details.step` value naming the pipeline step an event belongs to.
pub mod step {
    /// Bearer token check in the HTTP layer.
    pub const HTTP_AUTH: &str = "http_auth";
    /// Identification of the caller for a `tools/call`.
    pub const AUTHENTICATE: &str = "authenticate";
    /// Request signature verification.
    pub const REQUEST_SIGNATURE: &str = "request_signature";
    /// Replay check.
    pub const REPLAY: &str = "replay";
    /// Call-chain validation.
    pub const CALL_CHAIN: &str = "call_chain";
    /// Authorization.
    pub const AUTHORIZE: &str = "authorize";
    /// Invocation and its outcome.
    pub const INVOKE: &str = "invoke";
}

/// How allowed calls are audited (denials always get the event of the
/// step that denied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditGranularity {
    /// One event per step passed (authenticate, request signature, replay,
    /// call chain, authorize) and one for the outcome. The default.
    #[default]
    PerStep,
    /// One `tool_invocation_completed` event per allowed call, whose
    /// `details.steps` lists every step passed and `details.rule` the
    /// authorization rule. Fewer writes for busy servers; the same facts.
    PerCall,
}

/// Who and what an event is about. The parts are shared: the server's
/// name is built once, a tool's reference once at registration and the
/// caller's once per call, however many events the call records.
pub(crate) struct Subject<'a> {
    pub(crate) server: &'a Arc<str>,
    pub(crate) request_id: &'a str,
    pub(crate) principal: Option<&'a Arc<PrincipalRef>>,
    pub(crate) tool: Option<&'a Arc<ToolRef>>,
}

/// How events name a registered tool: `etdi_audit::event::tool_ref` with
/// the digest the build already computed, rather than computing it again.
pub(crate) fn tool_ref(def: &ToolDefinition, digest: Digest) -> Arc<ToolRef> {
    Arc::new(ToolRef {
        id: def.id.clone(),
        name: Some(def.name.to_string()),
        version: Some(def.version.clone()),
        digest: Some(digest),
    })
}

/// How events name a caller.
pub(crate) fn principal_ref(p: &Principal) -> Arc<PrincipalRef> {
    Arc::new(PrincipalRef::from(p))
}

/// Builds the event of one pipeline step. The audit log assigns the final
/// id and chains the record; the id here is a per-process counter so that
/// events stay distinguishable in sinks that keep it.
pub(crate) fn event(
    kind: EventKind,
    outcome: Outcome,
    step: &str,
    subject: &Subject<'_>,
    reasons: &[DenyReason],
) -> AuditEvent {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut e = AuditEvent::new(
        format!("srv-{id}"),
        Timestamp::from(SystemTime::now()),
        kind,
        outcome,
    );
    e.server = Some(subject.server.clone());
    e.request_id = Some(subject.request_id.to_owned());
    e.principal = subject.principal.cloned();
    e.tool = subject.tool.cloned();
    e.reason_codes = reasons.iter().map(|r| r.code().to_owned()).collect();
    if !reasons.is_empty() {
        e.reason = Some(
            reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    e.details.insert("step".into(), Value::from(step));
    e
}

/// Keeps every event in memory. For tests and examples only: it is not
/// durable and grows without bound (production servers use etdi-audit).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events recorded so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The events of one pipeline step (see [`step`]).
    pub fn for_step(&self, step: &str) -> Vec<AuditEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.details.get("step").and_then(Value::as_str) == Some(step))
            .collect()
    }
}

#[async_trait::async_trait]
impl AuditRecorder for MemoryAudit {
    async fn record(&self, event: AuditEvent) -> Result<(), StageError> {
        self.events
            .lock()
            .map_err(|_| StageError::new("memory audit lock poisoned"))?
            .push(event);
        Ok(())
    }
}

/// Discards events. Only for benchmarks that measure the pipeline without a
/// sink; a server built without an audit recorder refuses to build instead.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAudit;

#[async_trait::async_trait]
impl AuditRecorder for NoAudit {
    async fn record(&self, _event: AuditEvent) -> Result<(), StageError> {
        Ok(())
    }
}
