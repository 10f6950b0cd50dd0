//! Denials as JSON-RPC errors (docs/PROTOCOL.md §10) and the errors of
//! building a server.

use etdi_core::{DenyReason, PROTOCOL_VERSION};
use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

/// -32010: authorization denied.
pub const CODE_AUTHORIZATION: i32 = -32010;
/// -32011: authentication required or failed.
pub const CODE_AUTHENTICATION: i32 = -32011;
/// -32012: request signature required or invalid.
pub const CODE_REQUEST_SIGNATURE: i32 = -32012;
/// -32013: replayed or stale request.
pub const CODE_REPLAY: i32 = -32013;
/// -32014: call-chain rule violated.
pub const CODE_CALL_CHAIN: i32 = -32014;
/// -32015: tool not verified.
pub const CODE_TOOL_NOT_VERIFIED: i32 = -32015;
/// -32602: unknown tool (MCP's own code).
pub const CODE_UNKNOWN_TOOL: i32 = -32602;
/// -32603: internal error; the request was denied.
pub const CODE_INTERNAL: i32 = -32603;

/// The §10 error code and message prefix of one reason.
pub fn classify(reason: &DenyReason) -> (i32, &'static str) {
    match reason.code() {
        "missing_permissions" | "privilege_escalation" => (CODE_AUTHORIZATION, "permission denied"),
        "unauthenticated" => (CODE_AUTHENTICATION, "authentication required"),
        "request_signature_required" | "invalid_request_signature" => {
            (CODE_REQUEST_SIGNATURE, "request signature")
        }
        "replay" => (CODE_REPLAY, "replayed or stale request"),
        "call_depth_exceeded"
        | "call_cycle"
        | "caller_not_allowed"
        | "caller_blocked"
        | "callee_not_allowed"
        | "callee_blocked" => (CODE_CALL_CHAIN, "call chain rejected"),
        "tool_not_verified" => (CODE_TOOL_NOT_VERIFIED, "tool not verified"),
        "unknown_tool" => (CODE_UNKNOWN_TOOL, "unknown tool"),
        _ => (CODE_INTERNAL, "internal error"),
    }
}

/// What a caller may see of a reason: internal details (which may name
/// files, peers or library errors) are replaced by a fixed text. The full
/// reason goes to the audit log only.
pub fn public_reason(reason: &DenyReason) -> DenyReason {
    match reason {
        DenyReason::Internal { .. } => DenyReason::Internal {
            detail: "the request was denied because of an internal error".into(),
        },
        other => other.clone(),
    }
}

/// The JSON-RPC error for a denial with `reasons` (never empty in practice;
/// an empty list is reported as an internal error, since it still denies).
pub fn deny_error(reasons: &[DenyReason]) -> ErrorData {
    let public: Vec<DenyReason> = if reasons.is_empty() {
        vec![public_reason(&DenyReason::Internal {
            detail: String::new(),
        })]
    } else {
        reasons.iter().map(public_reason).collect()
    };
    let (code, prefix) = public
        .first()
        .map_or((CODE_INTERNAL, "internal error"), classify);
    let text = public
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let data = json!({
        "etdi": PROTOCOL_VERSION,
        "reasons": public.iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).collect::<Vec<_>>(),
    });
    ErrorData::new(
        ErrorCode(code),
        format!("ETDI: {prefix}: {text}"),
        Some(data),
    )
}

/// Why a server could not be built. Every invalid configuration fails here,
/// never later at request time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A tool definition is invalid.
    #[error("tool `{tool}`: {message}")]
    Tool {
        /// The tool's name.
        tool: String,
        /// What is wrong.
        message: String,
    },
    /// Two tools share a name.
    #[error("tool name `{0}` is registered twice")]
    DuplicateTool(String),
    /// The policy engine refused the policy or the definitions.
    #[error("policy: {0}")]
    Policy(String),
    /// Signing an attestation failed.
    #[error("signing the attestation of `{tool}` failed")]
    Attestation {
        /// The tool's name.
        tool: String,
    },
    /// A setting is missing or contradicts another.
    #[error("configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use etdi_core::Permission;

    #[test]
    fn missing_permission_is_32010_with_reasons() {
        let e = deny_error(&[DenyReason::MissingPermissions {
            missing: vec![Permission::parse("file:write").unwrap()],
        }]);
        assert_eq!(e.code.0, -32010);
        assert_eq!(
            e.message,
            "ETDI: permission denied: missing permission(s): file:write"
        );
        assert_eq!(
            e.data.unwrap(),
            json!({"etdi": "etdi/1", "reasons": [{"code": "missing_permissions", "missing": ["file:write"]}]})
        );
    }

    #[test]
    fn internal_details_never_leave() {
        let e = deny_error(&[DenyReason::Internal {
            detail: "/etc/secret key.pem unreadable".into(),
        }]);
        assert_eq!(e.code.0, -32603);
        assert!(!e.message.contains("secret"));
        assert!(!e.data.unwrap().to_string().contains("secret"));
        assert_eq!(deny_error(&[]).code.0, -32603);
    }
}
