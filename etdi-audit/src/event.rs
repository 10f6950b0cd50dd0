//! Building audit events: one helper per event kind, a builder for the
//! common fields, unique ids, and the parameter policy with redaction.
//!
//! Every helper returns an [`EventBuilder`] whose time is "now"; the log
//! fills the id and the current trace id when the event is submitted, so
//! the caller only adds what it knows (principal, tool, server, request id,
//! reasons).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use etdi_core::{
    AuditEvent, CallChain, Decision, DenyReason, Digest, EventKind, Outcome, PrincipalRef,
    Timestamp, ToolDefinition, ToolRef, VerificationStatus,
};
use serde_json::{Map, Value};

/// What a [`EventBuilder`] becomes: an [`AuditEvent`] with its common fields
/// set through chained calls.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an event that is built and not logged records nothing"]
pub struct EventBuilder {
    event: AuditEvent,
}

impl EventBuilder {
    /// A bare event of `kind` with `outcome`, timed now, id assigned at
    /// submission.
    pub fn new(kind: EventKind, outcome: Outcome) -> Self {
        EventBuilder {
            event: AuditEvent::new(String::new(), now(), kind, outcome),
        }
    }

    /// Sets the principal.
    pub fn principal(mut self, principal: impl Into<PrincipalRef>) -> Self {
        self.event.principal = Some(Arc::new(principal.into()));
        self
    }

    /// Sets the tool (a `ToolRef`, or one shared by several events).
    pub fn tool(mut self, tool: impl Into<Arc<ToolRef>>) -> Self {
        self.event.tool = Some(tool.into());
        self
    }

    /// Sets the server (its `ServerId` text).
    pub fn server(mut self, server: impl Into<Arc<str>>) -> Self {
        self.event.server = Some(server.into());
        self
    }

    /// Sets the JSON-RPC request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.event.request_id = Some(id.into());
        self
    }

    /// Sets the correlation id (the call chain's first request).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.event.correlation_id = Some(id.into());
        self
    }

    /// Sets the trace id explicitly; otherwise the log asks its trace-id
    /// source at submission.
    pub fn trace_id(mut self, id: impl Into<String>) -> Self {
        self.event.trace_id = Some(id.into());
        self
    }

    /// Sets the human-readable reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.event.reason = Some(reason.into());
        self
    }

    /// Adds a machine-readable reason code.
    pub fn reason_code(mut self, code: impl Into<String>) -> Self {
        self.event.reason_codes.push(code.into());
        self
    }

    /// Adds a structured detail.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.event.details.insert(key.into(), value.into());
        self
    }

    /// Overrides the time (tests, replays of external events).
    pub fn time(mut self, time: Timestamp) -> Self {
        self.event.time = time;
        self
    }

    /// Sets the id explicitly (normally the log assigns one).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.event.id = id.into();
        self
    }

    /// The event as built so far.
    pub fn as_event(&self) -> &AuditEvent {
        &self.event
    }

    /// The finished event (the id may still be empty; the log fills it).
    pub fn build(self) -> AuditEvent {
        self.event
    }
}

impl From<EventBuilder> for AuditEvent {
    fn from(b: EventBuilder) -> Self {
        b.event
    }
}

/// The current time as an event timestamp.
pub fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

/// A [`ToolRef`] naming a definition: id, name, version and digest.
///
/// The digest is the one canonical digest of etdi-core; if it cannot be
/// computed (a definition with a value JCS cannot encode) it is left out
/// rather than invented.
pub fn tool_ref(def: &ToolDefinition) -> ToolRef {
    ToolRef {
        id: def.id.clone(),
        name: Some(def.name.as_str().to_owned()),
        version: Some(def.version.clone()),
        digest: def.digest().ok(),
    }
}

/// A tool was seen in `tools/list` from `server`.
pub fn tool_discovered(tool: ToolRef, server: impl Into<Arc<str>>) -> EventBuilder {
    EventBuilder::new(EventKind::ToolDiscovered, Outcome::Info)
        .tool(tool)
        .server(server)
}

/// The result of verifying a tool's attestation: success for `Verified`,
/// a denied `tool_verification_failed` for `Unsigned` (code `unsigned`) and
/// `Failed` (the failure's code and message).
pub fn tool_verification(tool: ToolRef, status: &VerificationStatus) -> EventBuilder {
    match status {
        VerificationStatus::Verified { issuer, key_id } => {
            EventBuilder::new(EventKind::ToolVerificationSucceeded, Outcome::Success)
                .tool(tool)
                .detail("issuer", issuer.as_str())
                .detail("key_id", key_id.as_str())
        }
        VerificationStatus::Unsigned => {
            EventBuilder::new(EventKind::ToolVerificationFailed, Outcome::Denied)
                .tool(tool)
                .reason_code("unsigned")
                .reason("the tool carries no attestation")
        }
        VerificationStatus::Failed { failure } => {
            let code = serde_json::to_value(failure)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "verification_failed".to_owned());
            EventBuilder::new(EventKind::ToolVerificationFailed, Outcome::Denied)
                .tool(tool)
                .reason_code(code)
                .reason(failure.to_string())
        }
    }
}

/// A user or policy approved a tool version.
pub fn tool_approved(tool: ToolRef) -> EventBuilder {
    EventBuilder::new(EventKind::ToolApproved, Outcome::Success).tool(tool)
}

/// An approval was revoked, with the reason.
pub fn tool_approval_revoked(tool: ToolRef, reason: impl Into<String>) -> EventBuilder {
    EventBuilder::new(EventKind::ToolApprovalRevoked, Outcome::Info)
        .tool(tool)
        .reason(reason)
}

/// A `tools/call` was received or sent. The arguments are recorded only if
/// `params` says so, after redaction (see [`ParamsPolicy`]).
pub fn invocation_requested(
    tool: ToolRef,
    arguments: Option<&Value>,
    params: &ParamsPolicy,
) -> EventBuilder {
    let b = EventBuilder::new(EventKind::ToolInvocationRequested, Outcome::Info).tool(tool);
    match arguments.and_then(|a| params.apply(a)) {
        Some(recorded) => b.detail("arguments", recorded),
        None => b,
    }
}

/// A `tools/call` finished; `outcome` says how (`Success`, `Failure` for
/// a tool error, `Denied` when a check refused it).
pub fn invocation_completed(tool: ToolRef, outcome: Outcome) -> EventBuilder {
    EventBuilder::new(EventKind::ToolInvocationCompleted, outcome).tool(tool)
}

/// A caller authenticated.
pub fn authentication_succeeded(principal: impl Into<PrincipalRef>) -> EventBuilder {
    EventBuilder::new(EventKind::AuthenticationSucceeded, Outcome::Success).principal(principal)
}

/// A caller failed to authenticate. `code` is machine-readable (e.g.
/// `invalid_token`, `expired`, `wrong_audience`); `reason` is for people
/// and must not contain the credential.
pub fn authentication_failed(code: impl Into<String>, reason: impl Into<String>) -> EventBuilder {
    EventBuilder::new(EventKind::AuthenticationFailed, Outcome::Denied)
        .reason_code(code)
        .reason(reason)
}

/// An authorization decision: `authorization_succeeded` with the allowing
/// rule, or `authorization_failed` with every deny reason's code and text.
pub fn authorization(decision: &Decision) -> EventBuilder {
    match decision {
        Decision::Allow { rule } => {
            EventBuilder::new(EventKind::AuthorizationSucceeded, Outcome::Success)
                .detail("rule", rule.as_str())
        }
        Decision::Deny { reasons } => {
            let b = EventBuilder::new(EventKind::AuthorizationFailed, Outcome::Denied);
            with_reasons(b, reasons)
        }
    }
}

/// A call-chain, depth or escalation rule was broken. The chain, when
/// known, is recorded as its list of hops.
pub fn policy_violation(reasons: &[DenyReason], chain: Option<&CallChain>) -> EventBuilder {
    let b = with_reasons(
        EventBuilder::new(EventKind::PolicyViolation, Outcome::Denied),
        reasons,
    );
    match chain.and_then(|c| serde_json::to_value(c).ok()) {
        Some(hops) => b.detail("call_chain", hops),
        None => b,
    }
}

/// A signed request was replayed or outside its freshness window.
pub fn replay_detected(detail: impl Into<String>) -> EventBuilder {
    EventBuilder::new(EventKind::ReplayDetected, Outcome::Denied)
        .reason_code("replay")
        .reason(detail)
}

/// A tool's definition changed without a legitimate new version: the
/// pinned digest and the digest now advertised.
pub fn rug_pull_detected(tool: ToolRef, pinned: &Digest, advertised: &Digest) -> EventBuilder {
    EventBuilder::new(EventKind::RugPullDetected, Outcome::Denied)
        .tool(tool)
        .reason_code("definition_changed")
        .reason("the tool definition changed without a new version")
        .detail("pinned_digest", pinned.to_string())
        .detail("advertised_digest", advertised.to_string())
}

/// A signing key was rotated from `old_kid` (if any) to `new_kid`.
pub fn key_rotated(old_kid: Option<&str>, new_kid: &str) -> EventBuilder {
    let b = EventBuilder::new(EventKind::KeyRotated, Outcome::Success).detail("new_kid", new_kid);
    match old_kid {
        Some(old) => b.detail("old_kid", old),
        None => b,
    }
}

/// `count` events were dropped by a lossy queue (written by the log itself).
pub fn events_dropped(count: u64) -> EventBuilder {
    EventBuilder::new(EventKind::EventsDropped, Outcome::Failure)
        .reason_code("queue_full")
        .reason(format!(
            "{count} audit events dropped: queue full in lossy mode"
        ))
        .detail("dropped", count)
}

fn with_reasons(mut b: EventBuilder, reasons: &[DenyReason]) -> EventBuilder {
    let mut text = Vec::with_capacity(reasons.len());
    for r in reasons {
        b = b.reason_code(r.code());
        text.push(r.to_string());
    }
    if !text.is_empty() {
        b = b.reason(text.join("; "));
    }
    b
}

/// The value that replaces a redacted field.
pub const REDACTED: &str = "[REDACTED]";

/// Member names redacted by [`ParamsPolicy::include`] unless cleared:
/// common names of secrets. Matching ignores ASCII case.
pub const DEFAULT_REDACTED_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "cookie",
];

/// Whether tool-call arguments are recorded, and which fields are hidden.
///
/// Arguments often carry personal data or secrets, so the default records
/// none. [`ParamsPolicy::include`] records them with every member whose
/// name is in the redaction set (at any depth, ASCII case-insensitive) and
/// every configured JSON pointer replaced by `"[REDACTED]"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamsPolicy {
    include: bool,
    keys: BTreeSet<String>,
    pointers: Vec<String>,
}

impl ParamsPolicy {
    /// Record no arguments (the default).
    pub fn omit() -> Self {
        ParamsPolicy::default()
    }

    /// Record arguments, redacting [`DEFAULT_REDACTED_KEYS`].
    pub fn include() -> Self {
        ParamsPolicy {
            include: true,
            keys: DEFAULT_REDACTED_KEYS
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            pointers: Vec::new(),
        }
    }

    /// Also redacts members named `key` at any depth.
    pub fn redact_key(mut self, key: &str) -> Self {
        self.keys.insert(key.to_ascii_lowercase());
        self
    }

    /// Also redacts the value at an RFC 6901 JSON pointer (e.g. `/auth/pin`).
    pub fn redact_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointers.push(pointer.into());
        self
    }

    /// Forgets the default and configured key names (pointers stay).
    pub fn clear_redacted_keys(mut self) -> Self {
        self.keys.clear();
        self
    }

    /// True if arguments are recorded.
    pub fn includes_arguments(&self) -> bool {
        self.include
    }

    /// The arguments as they would be recorded, or `None` when omitted.
    pub fn apply(&self, arguments: &Value) -> Option<Value> {
        if !self.include {
            return None;
        }
        let mut v = arguments.clone();
        if !self.keys.is_empty() {
            redact_keys(&mut v, &self.keys);
        }
        for p in &self.pointers {
            if let Some(slot) = v.pointer_mut(p) {
                *slot = Value::String(REDACTED.to_owned());
            }
        }
        Some(v)
    }
}

fn redact_keys(v: &mut Value, keys: &BTreeSet<String>) {
    match v {
        Value::Object(map) => redact_map(map, keys),
        Value::Array(items) => items.iter_mut().for_each(|i| redact_keys(i, keys)),
        _ => {}
    }
}

fn redact_map(map: &mut Map<String, Value>, keys: &BTreeSet<String>) {
    for (k, val) in map.iter_mut() {
        if keys.contains(&k.to_ascii_lowercase()) {
            *val = Value::String(REDACTED.to_owned());
        } else {
            redact_keys(val, keys);
        }
    }
}

/// A new event id: a UUIDv7-shaped string (time-ordered, 74 random bits).
///
/// The random bits come from a per-process seed read once from the OS and
/// a counter passed through a bijective mixer, so ids never repeat within a
/// process and are unpredictable across processes without a system call
/// per event.
pub fn new_event_id() -> String {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        getrandom::u64().unwrap_or_else(|_| {
            // No OS randomness: fall back to time and pid; ids stay unique
            // within the process (the counter), only less unpredictable.
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (u64::from(std::process::id()) << 32)
        })
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let r1 = mix(seed ^ n);
    let r2 = mix(r1 ^ seed.rotate_left(17));
    let hi: u64 = ((ms & 0xFFFF_FFFF_FFFF) << 16) | 0x7000 | (r2 & 0x0FFF);
    let lo: u64 = (r1 & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    // 8-4-4-4-12 lowercase hex, written digit by digit (this runs once per
    // event, so it avoids the formatting machinery).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    let value = (u128::from(hi) << 64) | u128::from(lo);
    for i in 0..32u32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            id.push('-');
        }
        let nibble = ((value >> (124 - 4 * i)) & 0xF) as usize;
        id.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
    }
    id
}

/// splitmix64's finaliser: a bijection on u64, so distinct counters give
/// distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etdi_core::{AuthMethod, Permission, Principal, ToolId};
    use serde_json::json;

    fn tref() -> ToolRef {
        ToolRef {
            id: ToolId::parse("com.example/read").unwrap(),
            name: Some("read".into()),
            version: None,
            digest: None,
        }
    }

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_event_id();
            assert_eq!(id.len(), 36);
            assert_eq!(id.as_bytes()[14], b'7');
            assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn params_are_omitted_by_default_and_redacted_when_included() {
        let args = json!({"path": "/etc/x", "Password": "hunter2",
            "nested": [{"token": "t"}], "auth": {"pin": 1234}});
        let e = invocation_requested(tref(), Some(&args), &ParamsPolicy::default()).build();
        assert!(!e.details.contains_key("arguments"));

        let p = ParamsPolicy::include().redact_pointer("/auth/pin");
        let e = invocation_requested(tref(), Some(&args), &p).build();
        assert_eq!(
            e.details["arguments"],
            json!({"path": "/etc/x", "Password": REDACTED,
                "nested": [{"token": REDACTED}], "auth": {"pin": REDACTED}})
        );
        let p = ParamsPolicy::include()
            .clear_redacted_keys()
            .redact_key("PATH");
        assert_eq!(p.apply(&args).unwrap()["path"], json!(REDACTED));
        assert_eq!(p.apply(&args).unwrap()["Password"], json!("hunter2"));
    }

    #[test]
    fn authorization_records_every_reason() {
        let d = Decision::deny_all(vec![
            DenyReason::MissingPermissions {
                missing: vec![Permission::parse("file:write").unwrap()],
            },
            DenyReason::CallDepthExceeded { depth: 5, max: 3 },
        ]);
        let p = Principal::new("alice", AuthMethod::BearerJwt);
        let e = authorization(&d).principal(&p).tool(tref()).build();
        assert_eq!(e.kind, EventKind::AuthorizationFailed);
        assert_eq!(e.outcome, Outcome::Denied);
        assert_eq!(
            e.reason_codes,
            vec!["missing_permissions", "call_depth_exceeded"]
        );
        assert!(e.reason.unwrap().contains("file:write"));
        let e = authorization(&Decision::allow("scope:file:read")).build();
        assert_eq!(e.kind, EventKind::AuthorizationSucceeded);
        assert_eq!(e.details["rule"], json!("scope:file:read"));
    }

    #[test]
    fn every_helper_sets_its_kind() {
        let d = Digest::of(b"a");
        let cases = [
            (tool_discovered(tref(), "s"), EventKind::ToolDiscovered),
            (
                tool_verification(tref(), &VerificationStatus::Unsigned),
                EventKind::ToolVerificationFailed,
            ),
            (
                tool_verification(
                    tref(),
                    &VerificationStatus::Failed {
                        failure: etdi_core::VerificationFailure::DigestMismatch,
                    },
                ),
                EventKind::ToolVerificationFailed,
            ),
            (
                tool_verification(
                    tref(),
                    &VerificationStatus::Verified {
                        issuer: "i".into(),
                        key_id: "k".into(),
                    },
                ),
                EventKind::ToolVerificationSucceeded,
            ),
            (tool_approved(tref()), EventKind::ToolApproved),
            (
                tool_approval_revoked(tref(), "r"),
                EventKind::ToolApprovalRevoked,
            ),
            (
                invocation_completed(tref(), Outcome::Failure),
                EventKind::ToolInvocationCompleted,
            ),
            (
                authentication_failed("expired", "token expired"),
                EventKind::AuthenticationFailed,
            ),
            (
                authentication_succeeded(&Principal::new("a", AuthMethod::Local)),
                EventKind::AuthenticationSucceeded,
            ),
            (
                policy_violation(&[DenyReason::CallDepthExceeded { depth: 4, max: 3 }], None),
                EventKind::PolicyViolation,
            ),
            (replay_detected("nonce seen"), EventKind::ReplayDetected),
            (
                rug_pull_detected(tref(), &d, &Digest::of(b"b")),
                EventKind::RugPullDetected,
            ),
            (key_rotated(Some("k1"), "k2"), EventKind::KeyRotated),
            (events_dropped(3), EventKind::EventsDropped),
        ];
        for (b, kind) in cases {
            assert_eq!(b.as_event().kind, kind);
        }
        let e = tool_verification(
            tref(),
            &VerificationStatus::Failed {
                failure: etdi_core::VerificationFailure::DigestMismatch,
            },
        )
        .build();
        assert_eq!(e.reason_codes, vec!["digest_mismatch"]);
    }
}
