//! Elastic Common Schema mapping.
//!
//! Standard fields (`@timestamp`, `event.*`, `user.*`, `service.*`,
//! `trace.id`) where ECS has them; ETDI specifics (tool, reason codes,
//! details) under the custom `etdi.*` namespace, as ECS recommends for
//! fields it does not define.

use etdi_core::{AuditEvent, EventKind, Outcome};
use serde_json::{Map, Value, json};

/// ECS version the mapping follows (the `api` category is from 8.x).
pub const ECS_VERSION: &str = "8.17.0";

fn categorise(e: &AuditEvent) -> (&'static str, &'static str, &'static str) {
    let allowed_or_denied = match e.outcome {
        Outcome::Success => "allowed",
        Outcome::Denied => "denied",
        Outcome::Failure => "error",
        Outcome::Info => "info",
    };
    // (event.kind, event.category, event.type)
    match e.kind {
        EventKind::AuthenticationSucceeded => ("event", "authentication", "start"),
        EventKind::AuthenticationFailed => ("event", "authentication", "info"),
        EventKind::AuthorizationSucceeded | EventKind::AuthorizationFailed => {
            ("event", "iam", allowed_or_denied)
        }
        EventKind::RugPullDetected | EventKind::ReplayDetected | EventKind::PolicyViolation => {
            ("alert", "intrusion_detection", "denied")
        }
        EventKind::ToolApproved => ("event", "configuration", "creation"),
        EventKind::ToolApprovalRevoked => ("event", "configuration", "deletion"),
        EventKind::KeyRotated => ("event", "configuration", "change"),
        EventKind::ToolInvocationRequested => ("event", "api", "start"),
        EventKind::ToolInvocationCompleted => ("event", "api", "end"),
        EventKind::ToolDiscovered => ("event", "api", "access"),
        EventKind::ToolVerificationSucceeded | EventKind::ToolVerificationFailed => {
            ("event", "api", allowed_or_denied)
        }
        _ => ("event", "api", "error"),
    }
}

/// Maps an event to an ECS document.
pub fn to_ecs(e: &AuditEvent) -> Value {
    let (kind, category, typ) = categorise(e);
    let outcome = match e.outcome {
        Outcome::Success => "success",
        Outcome::Denied | Outcome::Failure => "failure",
        Outcome::Info => "unknown",
    };
    let mut event = json!({
        "kind": kind,
        "category": [category],
        "type": [typ],
        "action": e.kind.as_str(),
        "outcome": outcome,
        "id": e.id,
        "provider": "etdi",
        "dataset": "etdi.audit",
    });
    if let Some(m) = event.as_object_mut() {
        if let Some(r) = &e.reason {
            m.insert("reason".into(), r.as_str().into());
        }
        if matches!(kind, "alert") {
            m.insert("severity".into(), 73.into());
        }
    }
    let mut o = Map::new();
    o.insert("@timestamp".into(), e.time.to_string().into());
    o.insert("ecs".into(), json!({"version": ECS_VERSION}));
    o.insert("event".into(), event);
    o.insert("message".into(), super::ocsf::message(e).into());
    if let Some(p) = &e.principal {
        let mut u = json!({"id": p.subject, "name": p.subject});
        if let (Some(iss), Some(m)) = (&p.issuer, u.as_object_mut()) {
            m.insert("domain".into(), iss.as_str().into());
        }
        o.insert("user".into(), u);
        if let Some(c) = &p.client_id {
            o.insert("client".into(), json!({"user": {"id": c}}));
        }
    }
    if let Some(s) = &e.server {
        o.insert("service".into(), json!({"name": s}));
    }
    if let Some(t) = &e.trace_id {
        o.insert("trace".into(), json!({"id": t}));
    }
    if let Some(r) = &e.request_id {
        o.insert("http".into(), json!({"request": {"id": r}}));
    }
    let mut etdi = Map::new();
    if let Some(t) = &e.tool {
        etdi.insert(
            "tool".into(),
            serde_json::to_value(t).unwrap_or(Value::Null),
        );
    }
    if let Some(p) = &e.principal {
        etdi.insert(
            "auth_method".into(),
            serde_json::to_value(p.auth_method).unwrap_or(Value::Null),
        );
    }
    if let Some(c) = &e.correlation_id {
        etdi.insert("correlation_id".into(), c.as_str().into());
    }
    if !e.reason_codes.is_empty() {
        etdi.insert("reason_codes".into(), json!(e.reason_codes));
    }
    if !e.details.is_empty() {
        etdi.insert("details".into(), Value::Object(e.details.clone()));
    }
    if !etdi.is_empty() {
        o.insert("etdi".into(), Value::Object(etdi));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event;

    #[test]
    fn ecs_fields() {
        let e = event::authentication_failed("expired", "token expired")
            .id("e1")
            .trace_id("abc")
            .build();
        let v = to_ecs(&e);
        assert_eq!(v["event"]["category"], json!(["authentication"]));
        assert_eq!(v["event"]["outcome"], "failure");
        assert_eq!(v["event"]["action"], "authentication_failed");
        assert_eq!(v["trace"]["id"], "abc");
        assert_eq!(v["etdi"]["reason_codes"], json!(["expired"]));
        assert!(v["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
