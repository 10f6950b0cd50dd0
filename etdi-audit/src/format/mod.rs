//! Output formats: the native JSON event, OCSF 1.3 and Elastic ECS.
//!
//! Each sink picks one. All three write one JSON object per line; the
//! examples are in the crate documentation.

pub mod ecs;
pub mod ocsf;

use crate::record::EncodedEvent;

/// How a sink renders an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The [`etdi_core::AuditEvent`] object in canonical JSON. In a file sink
    /// this is wrapped in a chained record (see [`crate::record`]).
    #[default]
    Native,
    /// OCSF 1.3: API Activity (6003), Authentication (3002) or Authorize
    /// Session (3003) depending on the event kind.
    Ocsf,
    /// Elastic Common Schema 8.x.
    Ecs,
}

impl Format {
    /// Appends the rendered event (no newline) to `out`.
    pub fn render(&self, event: &EncodedEvent, out: &mut Vec<u8>) {
        match self {
            Format::Native => out.extend_from_slice(event.canonical_json()),
            Format::Ocsf => write_json(&ocsf::to_ocsf(event.event()), out),
            Format::Ecs => write_json(&ecs::to_ecs(event.event()), out),
        }
    }

    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
        }
    }
}

fn write_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    // A Value with string keys always serialises; a failure here could only
    // come from the allocator, and would leave `out` unchanged.
    let _ = serde_json::to_writer(out, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event;
    use etdi_core::{
        AuthMethod, Decision, DenyReason, Permission, Principal, Timestamp, ToolId, ToolRef,
        ToolVersion,
    };

    /// The examples in the crate documentation are this event's output;
    /// the test keeps them from drifting.
    #[test]
    fn the_documented_examples_are_the_real_output() {
        let d = Decision::deny(DenyReason::MissingPermissions {
            missing: vec![Permission::parse("file:write").unwrap()],
        });
        let e = event::authorization(&d)
            .principal(&Principal::new("alice", AuthMethod::BearerJwt))
            .tool(ToolRef {
                id: ToolId::parse("com.example.files/write").unwrap(),
                name: None,
                version: Some(ToolVersion::parse("1.0.0").unwrap()),
                digest: None,
            })
            .server("files")
            .id("01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b")
            .time(Timestamp::from_unix(1_795_492_599, 123_000_000).unwrap())
            .build();
        let enc = EncodedEvent::new(e).unwrap();
        // Compared as JSON values: member order is not part of these formats,
        // and serde_json's `preserve_order` (switched on by other crates in a
        // workspace build) changes it.
        let render = |f: Format| {
            let mut out = Vec::new();
            f.render(&enc, &mut out);
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()
        };
        let doc = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            render(Format::Native),
            doc(
                r#"{"id":"01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b","kind":"authorization_failed","outcome":"denied","principal":{"auth_method":"bearer_jwt","subject":"alice"},"reason":"missing permission(s): file:write","reason_codes":["missing_permissions"],"server":"files","time":"2026-11-24T03:56:39.123Z","tool":{"id":"com.example.files/write","version":"1.0.0"}}"#
            )
        );
        assert_eq!(
            render(Format::Ocsf),
            doc(&r#"{"activity_id":1,"activity_name":"Assign Privileges","category_name":"Identity & Access Management","category_uid":3,"class_name":"Authorize Session","class_uid":3003,"message":"authorization failed: com.example.files/write by alice (missing permission(s): file:write)","metadata":{"event_code":"authorization_failed","product":{"name":"ETDI","vendor_name":"ETDI","version":"0.1.0"},"uid":"01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b","version":"1.3.0"},"resources":[{"data":{"version":"1.0.0"},"type":"mcp_tool","uid":"com.example.files/write"}],"service":{"name":"files"},"severity":"Medium","severity_id":3,"status":"Failure","status_code":"missing_permissions","status_detail":"missing permission(s): file:write","status_id":2,"time":1795492599123,"type_name":"Authorize Session: Assign Privileges","type_uid":300301,"unmapped":{"etdi":{"auth_method":"bearer_jwt","kind":"authorization_failed","outcome":"denied","reason_codes":["missing_permissions"]}},"user":{"uid":"alice"}}"#
                .replace("\"version\":\"0.1.0\"", &format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"))))
        );
        assert_eq!(
            render(Format::Ecs),
            doc(
                r#"{"@timestamp":"2026-11-24T03:56:39.123Z","ecs":{"version":"8.17.0"},"etdi":{"auth_method":"bearer_jwt","reason_codes":["missing_permissions"],"tool":{"id":"com.example.files/write","version":"1.0.0"}},"event":{"action":"authorization_failed","category":["iam"],"dataset":"etdi.audit","id":"01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b","kind":"event","outcome":"failure","provider":"etdi","reason":"missing permission(s): file:write","type":["denied"]},"message":"authorization failed: com.example.files/write by alice (missing permission(s): file:write)","service":{"name":"files"},"user":{"id":"alice","name":"alice"}}"#
            )
        );
    }
}
