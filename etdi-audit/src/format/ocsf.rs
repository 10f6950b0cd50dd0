//! OCSF 1.3 mapping: authentication events become Authentication (3002),
//! authorization decisions Authorize Session (3003), everything else API
//! Activity (6003).
//!
//! Fields OCSF has no place for (reason codes, trace id, details) go under
//! `unmapped.etdi`, so nothing the native event holds is lost.

use etdi_core::{AuditEvent, AuthMethod, EventKind, Outcome};
use serde_json::{Map, Value, json};

/// OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// OCSF class of an event kind: `(class_uid, class_name, category_uid,
/// category_name)`.
pub fn class_of(kind: EventKind) -> (u32, &'static str, u32, &'static str) {
    match kind {
        EventKind::AuthenticationSucceeded | EventKind::AuthenticationFailed => {
            (3002, "Authentication", 3, "Identity & Access Management")
        }
        EventKind::AuthorizationSucceeded | EventKind::AuthorizationFailed => {
            (3003, "Authorize Session", 3, "Identity & Access Management")
        }
        _ => (6003, "API Activity", 6, "Application Activity"),
    }
}

fn activity(kind: EventKind, class_uid: u32) -> (u32, &'static str) {
    match (class_uid, kind) {
        (3002, _) => (1, "Logon"),
        (3003, _) => (1, "Assign Privileges"),
        (_, EventKind::ToolApproved) => (1, "Create"),
        (_, EventKind::ToolDiscovered) => (2, "Read"),
        (_, EventKind::KeyRotated) => (3, "Update"),
        (_, EventKind::ToolApprovalRevoked) => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn severity(e: &AuditEvent) -> (u32, &'static str) {
    match e.kind {
        EventKind::RugPullDetected | EventKind::ReplayDetected | EventKind::PolicyViolation => {
            (4, "High")
        }
        EventKind::EventsDropped | EventKind::LogRepaired => (3, "Medium"),
        _ => match e.outcome {
            Outcome::Denied => (3, "Medium"),
            Outcome::Failure => (2, "Low"),
            Outcome::Success | Outcome::Info => (1, "Informational"),
        },
    }
}

fn auth_protocol(m: AuthMethod) -> (u32, &'static str) {
    match m {
        AuthMethod::BearerJwt
        | AuthMethod::BearerIntrospected
        | AuthMethod::CertificateBoundToken => (6, "OAUTH 2.0"),
        AuthMethod::MutualTls => (99, "mTLS"),
        AuthMethod::Local => (99, "Local"),
        _ => (0, "Unknown"),
    }
}

/// Maps an event to an OCSF object.
pub fn to_ocsf(e: &AuditEvent) -> Value {
    let (class_uid, class_name, category_uid, category_name) = class_of(e.kind);
    let (activity_id, activity_name) = activity(e.kind, class_uid);
    let (severity_id, severity_name) = severity(e);
    let mut o = Map::new();
    o.insert("class_uid".into(), class_uid.into());
    o.insert("class_name".into(), class_name.into());
    o.insert("category_uid".into(), category_uid.into());
    o.insert("category_name".into(), category_name.into());
    o.insert("activity_id".into(), activity_id.into());
    o.insert("activity_name".into(), activity_name.into());
    o.insert(
        "type_uid".into(),
        (u64::from(class_uid) * 100 + u64::from(activity_id)).into(),
    );
    o.insert(
        "type_name".into(),
        format!("{class_name}: {activity_name}").into(),
    );
    o.insert("severity_id".into(), severity_id.into());
    o.insert("severity".into(), severity_name.into());
    o.insert(
        "time".into(),
        i64::try_from(e.time.unix_nanos() / 1_000_000)
            .unwrap_or(0)
            .into(),
    );
    match e.outcome {
        Outcome::Success => {
            o.insert("status_id".into(), 1.into());
            o.insert("status".into(), "Success".into());
        }
        Outcome::Denied | Outcome::Failure => {
            o.insert("status_id".into(), 2.into());
            o.insert("status".into(), "Failure".into());
        }
        Outcome::Info => {}
    }
    if let Some(code) = e.reason_codes.first() {
        o.insert("status_code".into(), code.as_str().into());
    }
    if let Some(r) = &e.reason {
        o.insert("status_detail".into(), r.as_str().into());
    }
    o.insert("message".into(), message(e).into());

    let mut metadata = json!({
        "version": OCSF_VERSION,
        "uid": e.id,
        "event_code": e.kind.as_str(),
        "product": {"name": "ETDI", "vendor_name": "ETDI", "version": env!("CARGO_PKG_VERSION")},
    });
    if let (Some(c), Some(m)) = (&e.correlation_id, metadata.as_object_mut()) {
        m.insert("correlation_uid".into(), c.as_str().into());
    }
    o.insert("metadata".into(), metadata);

    let user = e.principal.as_ref().map(|p| {
        let mut u = json!({"uid": p.subject});
        if let (Some(iss), Some(m)) = (&p.issuer, u.as_object_mut()) {
            m.insert("domain".into(), iss.as_str().into());
        }
        u
    });

    match class_uid {
        3002 | 3003 => {
            if let Some(u) = user {
                o.insert("user".into(), u);
            }
            if let Some(s) = &e.server {
                o.insert("service".into(), json!({"name": s}));
            }
            if class_uid == 3002 {
                if let Some(p) = &e.principal {
                    let (id, name) = auth_protocol(p.auth_method);
                    o.insert("auth_protocol_id".into(), id.into());
                    o.insert("auth_protocol".into(), name.into());
                }
            } else if let Some(rule) = e.details.get("rule") {
                o.insert("privileges".into(), json!([rule]));
            }
        }
        _ => {
            let mut actor = Map::new();
            if let Some(u) = user {
                actor.insert("user".into(), u);
            }
            if let Some(c) = e.principal.as_ref().and_then(|p| p.client_id.as_ref()) {
                actor.insert("app_uid".into(), c.as_str().into());
            }
            o.insert("actor".into(), Value::Object(actor));
            let operation = match e.kind {
                EventKind::ToolInvocationRequested | EventKind::ToolInvocationCompleted => {
                    "tools/call"
                }
                EventKind::ToolDiscovered => "tools/list",
                k => k.as_str(),
            };
            let mut api = json!({"operation": operation});
            if let Some(m) = api.as_object_mut() {
                if let Some(r) = &e.request_id {
                    m.insert("request".into(), json!({"uid": r}));
                }
                if let Some(s) = &e.server {
                    m.insert("service".into(), json!({"name": s}));
                }
            }
            o.insert("api".into(), api);
        }
    }
    if let Some(t) = &e.tool {
        let mut r = json!({"uid": t.id.as_str(), "type": "mcp_tool"});
        if let Some(m) = r.as_object_mut() {
            if let Some(n) = &t.name {
                m.insert("name".into(), n.as_str().into());
            }
            let mut data = Map::new();
            if let Some(v) = &t.version {
                data.insert("version".into(), v.to_string().into());
            }
            if let Some(d) = &t.digest {
                data.insert("digest".into(), d.to_string().into());
            }
            if !data.is_empty() {
                m.insert("data".into(), Value::Object(data));
            }
        }
        o.insert("resources".into(), json!([r]));
    }

    let mut etdi = Map::new();
    etdi.insert("kind".into(), e.kind.as_str().into());
    etdi.insert(
        "outcome".into(),
        serde_json::to_value(e.outcome).unwrap_or(Value::Null),
    );
    if !e.reason_codes.is_empty() {
        etdi.insert("reason_codes".into(), json!(e.reason_codes));
    }
    if let Some(t) = &e.trace_id {
        etdi.insert("trace_id".into(), t.as_str().into());
    }
    if let Some(p) = &e.principal {
        etdi.insert(
            "auth_method".into(),
            serde_json::to_value(p.auth_method).unwrap_or(Value::Null),
        );
    }
    if !e.details.is_empty() {
        etdi.insert("details".into(), Value::Object(e.details.clone()));
    }
    o.insert("unmapped".into(), json!({ "etdi": etdi }));
    Value::Object(o)
}

/// A one-line summary for SIEM list views.
pub(crate) fn message(e: &AuditEvent) -> String {
    let mut m = e.kind.as_str().replace('_', " ");
    if let Some(t) = &e.tool {
        m.push_str(": ");
        m.push_str(t.id.as_str());
    }
    if let Some(p) = &e.principal {
        m.push_str(" by ");
        m.push_str(&p.subject);
    }
    if let Some(r) = &e.reason {
        m.push_str(" (");
        m.push_str(r);
        m.push(')');
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event;
    use etdi_core::{Decision, Principal};

    #[test]
    fn classes_follow_the_event_kind() {
        let p = Principal::new("alice", AuthMethod::BearerJwt);
        let v = to_ocsf(&event::authentication_succeeded(&p).id("e1").build());
        assert_eq!(v["class_uid"], 3002);
        assert_eq!(v["type_uid"], 300201);
        assert_eq!(v["user"]["uid"], "alice");
        assert_eq!(v["auth_protocol_id"], 6);
        assert_eq!(v["status_id"], 1);

        let v = to_ocsf(&event::authorization(&Decision::allow("scope:x")).build());
        assert_eq!(v["class_uid"], 3003);
        assert_eq!(v["privileges"], json!(["scope:x"]));

        let v = to_ocsf(&event::replay_detected("nonce reused").build());
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["type_uid"], 600399);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_code"], "replay");
        assert_eq!(v["unmapped"]["etdi"]["kind"], "replay_detected");
    }
}
