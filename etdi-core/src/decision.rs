//! Authorization decisions: an exhaustive `Allow | Deny` with the rule that
//! decided and, on deny, every reason in machine-readable form.
//!
//! Any error while deciding is a [`DenyReason::Internal`] deny: there is no
//! third outcome and no way to get `Allow` from a failure.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::ToolId;
use crate::permission::Permission;

/// The outcome of a security decision.
#[must_use = "a decision that is not acted on protects nothing"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The request may proceed.
    Allow {
        /// The rule that allowed it (e.g. `scope:file:read`, `role:admin`).
        rule: String,
    },
    /// The request is refused; `reasons` is never empty.
    Deny {
        /// Every reason the request failed, in evaluation order.
        reasons: Vec<DenyReason>,
    },
}

impl Decision {
    /// An allow naming its rule.
    pub fn allow(rule: impl Into<String>) -> Self {
        Decision::Allow { rule: rule.into() }
    }

    /// A deny with one reason.
    pub fn deny(reason: DenyReason) -> Self {
        Decision::Deny {
            reasons: vec![reason],
        }
    }

    /// A deny with several reasons; an empty list becomes an internal-error
    /// deny, so a bug can never produce a reasonless (or allowing) result.
    pub fn deny_all(reasons: Vec<DenyReason>) -> Self {
        if reasons.is_empty() {
            return Self::deny(DenyReason::Internal {
                detail: "deny without a reason".into(),
            });
        }
        Decision::Deny { reasons }
    }

    /// True only for `Allow`.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The deny reasons (empty for `Allow`).
    pub fn reasons(&self) -> &[DenyReason] {
        match self {
            Decision::Allow { .. } => &[],
            Decision::Deny { reasons } => reasons,
        }
    }
}

/// Why something was denied. `code()` is the stable machine-readable name
/// (used in audit events and the `etdi` error data on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenyReason {
    /// No or invalid credentials.
    Unauthenticated {
        /// Operator-facing detail (never secret material).
        detail: String,
    },
    /// The principal lacks these permissions.
    MissingPermissions {
        /// Each required permission not covered by any grant.
        missing: Vec<Permission>,
    },
    /// The tool is unknown to the server or was never listed and approved.
    UnknownTool {
        /// The name that was called.
        name: String,
    },
    /// The tool's attestation is missing or does not verify.
    ToolNotVerified {
        /// The tool.
        tool: ToolId,
        /// Why.
        detail: String,
    },
    /// The request had to be signed and was not.
    RequestSignatureRequired,
    /// The request signature did not verify.
    InvalidRequestSignature {
        /// Why (no cryptographic detail beyond the failing check).
        detail: String,
    },
    /// The request was seen before or is outside the freshness window.
    Replay {
        /// Why.
        detail: String,
    },
    /// The chain is longer than the smallest applicable limit.
    CallDepthExceeded {
        /// Depth the call would have.
        depth: u32,
        /// The limit that applied.
        max: u32,
    },
    /// The call-chain hops did not verify (signature, links, audience,
    /// freshness).
    InvalidCallChain {
        /// Why.
        detail: String,
    },
    /// The chain visits the same tool on the same server twice.
    CallCycle {
        /// The repeated tool.
        tool: ToolId,
    },
    /// The caller is not on the callee's (or policy's) allow-list.
    CallerNotAllowed {
        /// Calling tool.
        caller: ToolId,
        /// Called tool.
        callee: ToolId,
    },
    /// The caller is on a block list.
    CallerBlocked {
        /// Calling tool.
        caller: ToolId,
        /// Called tool.
        callee: ToolId,
    },
    /// The callee is not on the caller's (or policy's) allow-list.
    CalleeNotAllowed {
        /// Calling tool.
        caller: ToolId,
        /// Called tool.
        callee: ToolId,
    },
    /// The callee is on a block list.
    CalleeBlocked {
        /// Calling tool.
        caller: ToolId,
        /// Called tool.
        callee: ToolId,
    },
    /// A chain asked for permissions that an earlier hop's principal does not
    /// hold: the chain acts with the intersection of rights along it.
    PrivilegeEscalation {
        /// Permissions some hop lacks.
        permissions: Vec<Permission>,
        /// The principal that lacks them.
        principal: String,
    },
    /// A policy engine that does not report missing permissions (Cedar)
    /// denied; `policies` names the policies that decided, when known.
    PolicyDenied {
        /// Which engine decided (e.g. `cedar`).
        engine: String,
        /// Ids of the determining policies (empty when none matched).
        policies: Vec<String>,
    },
    /// A request on a transport session that another principal opened
    /// (answered as for an unknown session; see docs/THREAT_MODEL.md).
    SessionNotOwned,
    /// A bound on what one caller may hold or send was reached.
    LimitExceeded {
        /// The limit's name (e.g. `max_sessions_per_principal`).
        limit: String,
        /// Operator-facing detail.
        detail: String,
    },
    /// Evaluation failed; failures deny.
    Internal {
        /// Operator-facing detail.
        detail: String,
    },
}

impl DenyReason {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::MissingPermissions { .. } => "missing_permissions",
            Self::UnknownTool { .. } => "unknown_tool",
            Self::ToolNotVerified { .. } => "tool_not_verified",
            Self::RequestSignatureRequired => "request_signature_required",
            Self::InvalidRequestSignature { .. } => "invalid_request_signature",
            Self::Replay { .. } => "replay",
            Self::CallDepthExceeded { .. } => "call_depth_exceeded",
            Self::InvalidCallChain { .. } => "invalid_call_chain",
            Self::CallCycle { .. } => "call_cycle",
            Self::CallerNotAllowed { .. } => "caller_not_allowed",
            Self::CallerBlocked { .. } => "caller_blocked",
            Self::CalleeNotAllowed { .. } => "callee_not_allowed",
            Self::CalleeBlocked { .. } => "callee_blocked",
            Self::PrivilegeEscalation { .. } => "privilege_escalation",
            Self::PolicyDenied { .. } => "policy_denied",
            Self::SessionNotOwned => "session_not_owned",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::Internal { .. } => "internal",
        }
    }
}

fn join(perms: &[Permission]) -> String {
    perms
        .iter()
        .map(Permission::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthenticated { detail } => write!(f, "not authenticated: {detail}"),
            Self::MissingPermissions { missing } => {
                write!(f, "missing permission(s): {}", join(missing))
            }
            Self::UnknownTool { name } => write!(f, "unknown tool `{name}`"),
            Self::ToolNotVerified { tool, detail } => {
                write!(f, "tool `{tool}` is not verified: {detail}")
            }
            Self::RequestSignatureRequired => f.write_str("this call must be signed"),
            Self::InvalidRequestSignature { detail } => {
                write!(f, "request signature rejected: {detail}")
            }
            Self::Replay { detail } => write!(f, "request refused as a replay: {detail}"),
            Self::CallDepthExceeded { depth, max } => {
                write!(f, "call chain depth {depth} exceeds the limit of {max}")
            }
            Self::InvalidCallChain { detail } => write!(f, "call chain rejected: {detail}"),
            Self::CallCycle { tool } => write!(f, "call chain revisits tool `{tool}`"),
            Self::CallerNotAllowed { caller, callee } => {
                write!(f, "`{caller}` is not an allowed caller of `{callee}`")
            }
            Self::CallerBlocked { caller, callee } => {
                write!(f, "`{caller}` is blocked from calling `{callee}`")
            }
            Self::CalleeNotAllowed { caller, callee } => {
                write!(f, "`{callee}` is not an allowed callee of `{caller}`")
            }
            Self::CalleeBlocked { caller, callee } => {
                write!(f, "`{caller}` may not call blocked tool `{callee}`")
            }
            Self::PrivilegeEscalation {
                permissions,
                principal,
            } => write!(
                f,
                "privilege escalation: chain principal `{principal}` does not hold {}",
                join(permissions)
            ),
            Self::PolicyDenied { engine, policies } if policies.is_empty() => {
                write!(
                    f,
                    "denied by the {engine} policy: no policy permits this call"
                )
            }
            Self::PolicyDenied { engine, policies } => {
                write!(f, "denied by the {engine} policy: {}", policies.join(", "))
            }
            Self::SessionNotOwned => f.write_str("the session belongs to another principal"),
            Self::LimitExceeded { limit, detail } => write!(f, "limit `{limit}` reached: {detail}"),
            Self::Internal { detail } => write!(f, "internal error (denied): {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_deny_is_still_a_deny_with_a_reason() {
        let d = Decision::deny_all(vec![]);
        assert!(!d.is_allowed());
        assert_eq!(d.reasons()[0].code(), "internal");
    }

    #[test]
    fn wire_form_is_tagged() {
        let d = Decision::deny(DenyReason::MissingPermissions {
            missing: vec![Permission::parse("file:write").unwrap()],
        });
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"decision": "deny", "reasons": [{"code": "missing_permissions", "missing": ["file:write"]}]})
        );
        assert_eq!(
            d.reasons()[0].to_string(),
            "missing permission(s): file:write"
        );
    }
}
