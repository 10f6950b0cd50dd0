//! Audit event types: what happened, to whom, with which tool, and why.
//!
//! The event kinds are the seed's section 4 list plus the ones ETDI adds
//! (replay, rug pull, key rotation, log repair). etdi-audit assigns ids and
//! times, chains the records and maps them to SIEM formats; this module is
//! the shared vocabulary.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::canonical::Digest;
use crate::id::{ToolId, ToolVersion};
use crate::principal::AuthMethod;

/// What kind of security-relevant thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A tool was seen in `tools/list`.
    ToolDiscovered,
    /// A tool's attestation verified.
    ToolVerificationSucceeded,
    /// A tool's attestation failed to verify.
    ToolVerificationFailed,
    /// A tool (version) was approved.
    ToolApproved,
    /// An approval was revoked.
    ToolApprovalRevoked,
    /// A `tools/call` was received or sent.
    ToolInvocationRequested,
    /// A `tools/call` finished (its outcome says how).
    ToolInvocationCompleted,
    /// A caller authenticated.
    AuthenticationSucceeded,
    /// A caller failed to authenticate.
    AuthenticationFailed,
    /// A permission/scope check allowed.
    AuthorizationSucceeded,
    /// A permission/scope check denied.
    AuthorizationFailed,
    /// A call-chain, depth or escalation rule was broken.
    PolicyViolation,
    /// A signed request was replayed or stale.
    ReplayDetected,
    /// A tool changed without a legitimate new version.
    RugPullDetected,
    /// A signing key was rotated.
    KeyRotated,
    /// Events were dropped by an explicitly lossy sink.
    EventsDropped,
    /// A torn log tail was cut on open.
    LogRepaired,
}

impl EventKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToolDiscovered => "tool_discovered",
            Self::ToolVerificationSucceeded => "tool_verification_succeeded",
            Self::ToolVerificationFailed => "tool_verification_failed",
            Self::ToolApproved => "tool_approved",
            Self::ToolApprovalRevoked => "tool_approval_revoked",
            Self::ToolInvocationRequested => "tool_invocation_requested",
            Self::ToolInvocationCompleted => "tool_invocation_completed",
            Self::AuthenticationSucceeded => "authentication_succeeded",
            Self::AuthenticationFailed => "authentication_failed",
            Self::AuthorizationSucceeded => "authorization_succeeded",
            Self::AuthorizationFailed => "authorization_failed",
            Self::PolicyViolation => "policy_violation",
            Self::ReplayDetected => "replay_detected",
            Self::RugPullDetected => "rug_pull_detected",
            Self::KeyRotated => "key_rotated",
            Self::EventsDropped => "events_dropped",
            Self::LogRepaired => "log_repaired",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked / was allowed.
    Success,
    /// A security check refused it.
    Denied,
    /// It failed for another reason (error, timeout).
    Failure,
    /// Informational; no outcome applies.
    Info,
}

/// A UTC instant, written as RFC 3339 (`2026-11-24T03:56:39.123456789Z`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// From seconds and nanoseconds since the Unix epoch; `None` if out of
    /// the representable range.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        let base = OffsetDateTime::from_unix_timestamp(secs).ok()?;
        base.replace_nanosecond(nanos).ok().map(Timestamp)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// Appends the text [`fmt::Display`] writes, without allocating a
    /// `String` (for writers on a hot path, such as the audit log's).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // RFC 3339 with nanoseconds is at most 35 bytes for years 0..=9999.
        let mut buf = [0u8; 48];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        match self.0.format_into(&mut cursor, &Rfc3339) {
            Ok(_) => {
                let n = usize::try_from(cursor.position()).unwrap_or(0);
                out.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            // Only years outside 0..=9999 cannot be written as RFC 3339.
            Err(_) => {
                use std::io::Write as _;
                let _ = write!(out, "@{}", self.0.unix_timestamp());
            }
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp(OffsetDateTime::from(t))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            // Only years outside 0..=9999 cannot be written as RFC 3339.
            Err(_) => write!(f, "@{}", self.0.unix_timestamp()),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339)
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
            .map_err(serde::de::Error::custom)
    }
}

/// The principal as recorded in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRef {
    /// Subject.
    pub subject: String,
    /// Issuer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OAuth client id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// How it authenticated.
    pub auth_method: AuthMethod,
}

impl From<&crate::principal::Principal> for PrincipalRef {
    fn from(p: &crate::principal::Principal) -> Self {
        PrincipalRef {
            subject: p.subject.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            auth_method: p.auth_method,
        }
    }
}

/// The tool as recorded in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRef {
    /// Tool id.
    pub id: ToolId,
    /// Tool name as called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ToolVersion>,
    /// Definition digest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// One audit event, before the audit log adds chain fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id (assigned by the audit log).
    pub id: String,
    /// When it happened, UTC.
    pub time: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Who. Shared, like `tool` and `server`: a server records several
    /// events about one call and one tool, and builds each part once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Arc<PrincipalRef>>,
    /// Which tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Arc<ToolRef>>,
    /// Which server (its [`crate::ServerId`] text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Arc<str>>,
    /// JSON-RPC request id, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Correlation id across hops (the chain's first request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Trace id of the current tracing span, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Machine-readable reason codes (e.g. `missing_permissions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_codes: Vec<String>,
    /// Human-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Extra structured detail (e.g. redacted arguments).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl AuditEvent {
    /// A bare event; the other fields are filled by the caller.
    pub fn new(id: impl Into<String>, time: Timestamp, kind: EventKind, outcome: Outcome) -> Self {
        AuditEvent {
            id: id.into(),
            time,
            kind,
            outcome,
            principal: None,
            tool: None,
            server: None,
            request_id: None,
            correlation_id: None,
            trace_id: None,
            reason_codes: Vec::new(),
            reason: None,
            details: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_timestamps_are_their_display() {
        let cases = [
            (0, 0),
            (1_700_000_000, 5_000),
            (1_700_000_000, 999_999_999),
            (1_700_000_000, 120_000_000),
            (-62_135_596_800, 0),           // 0001-01-01
            (253_402_300_799, 999_999_999), // 9999-12-31T23:59:59.999999999
            (253_402_300_800, 0),           // year 10000: not RFC 3339
            (-62_135_596_801, 1),           // year 0
            (-62_167_219_201, 0),           // year -1
        ];
        for (secs, nanos) in cases {
            let Some(t) = Timestamp::from_unix(secs, nanos) else {
                continue;
            };
            let mut out = b"x".to_vec();
            t.write_to(&mut out);
            assert_eq!(&out[1..], t.to_string().as_bytes(), "{secs}.{nanos}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = Timestamp::from_unix(1_700_000_000, 5_000).unwrap();
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.000005Z");
        let back: Timestamp =
            serde_json::from_value(serde_json::json!("2023-11-15T00:13:20.000005+02:00")).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn event_round_trips() {
        let mut e = AuditEvent::new(
            "e1",
            Timestamp::from_unix(0, 0).unwrap(),
            EventKind::AuthorizationFailed,
            Outcome::Denied,
        );
        e.reason_codes.push("missing_permissions".into());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "authorization_failed");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
