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

/// Longest JSON-RPC id kept whole in an event, in bytes.
pub const MAX_REQUEST_ID_BYTES: usize = 256;
/// Longest principal field (subject, issuer, client id) kept whole.
pub const MAX_PRINCIPAL_FIELD_BYTES: usize = 512;
/// Longest reason text kept whole.
pub const MAX_REASON_BYTES: usize = 2048;

/// `text` if it fits in `max` bytes; otherwise its longest prefix that
/// does (on a character boundary) followed by
/// `…[truncated: N bytes, sha256:…]`, the length and digest of the whole.
///
/// Every attacker-controlled string that goes into an audit event (the
/// JSON-RPC id, token claims, a called tool's name inside a reason) is
/// bounded here: an event too large to record would otherwise either stop
/// the call without a record or, for a denial, go out unrecorded ("no
/// audit, no call" must hold for every input). The digest still lets an
/// investigator match the whole value.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = text.get(..end).unwrap_or_default();
    std::borrow::Cow::Owned(format!(
        "{prefix}…[truncated: {} bytes, {}]",
        text.len(),
        Digest::of(text.as_bytes())
    ))
}

/// How events name a caller, each field bounded ([`bounded`]).
pub(crate) fn principal_ref(p: &Principal) -> Arc<PrincipalRef> {
    let mut r = PrincipalRef::from(p);
    let cap = |s: &mut String| {
        if s.len() > MAX_PRINCIPAL_FIELD_BYTES {
            *s = bounded(s, MAX_PRINCIPAL_FIELD_BYTES).into_owned();
        }
    };
    cap(&mut r.subject);
    if let Some(i) = r.issuer.as_mut() {
        cap(i);
    }
    if let Some(c) = r.client_id.as_mut() {
        cap(c);
    }
    Arc::new(r)
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
    e.request_id = Some(bounded(subject.request_id, MAX_REQUEST_ID_BYTES).into_owned());
    e.principal = subject.principal.cloned();
    e.tool = subject.tool.cloned();
    e.reason_codes = reasons.iter().map(|r| r.code().to_owned()).collect();
    if !reasons.is_empty() {
        let reason = reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        e.reason = Some(bounded(&reason, MAX_REASON_BYTES).into_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_short_text_and_cuts_long_text_on_a_character_boundary() {
        assert!(matches!(
            bounded("short", 8),
            std::borrow::Cow::Borrowed("short")
        ));
        let long = "é".repeat(10); // 20 bytes
        let cut = bounded(&long, 5);
        assert!(cut.starts_with("éé…[truncated: 20 bytes, sha256:"), "{cut}");
        assert!(
            cut.ends_with(&format!("{}]", Digest::of(long.as_bytes()))),
            "{cut}"
        );
    }
}
