//! ETDI authorization engine: permissions, scopes, RBAC, caller/callee and
//! call-depth rules, security levels. Pure: no I/O and no async, except the
//! explicit [`PolicyDocument::load_file`] convenience.
//!
//! # What a decision checks
//!
//! [`PolicyEngine::decide`] answers one [`CallRequest`] with an exhaustive
//! [`Decision`]: `Allow` names the grants that satisfied the tool
//! (`scope:file:read`, `role:admin`, or `no-permission-required`); `Deny`
//! lists **every** reason, in this order:
//!
//! 1. unknown tool ([`DenyReason::UnknownTool`], alone: nothing else can be
//!    checked);
//! 2. request signing required but the request was not signed;
//! 3. chain consistency: one set of rights per hop, for the hop's subject
//!    (otherwise [`DenyReason::Internal`]);
//! 4. depth: a call's depth is the chain's hops + 1 (a direct call has depth
//!    1); it must not exceed the tool's limit (below);
//! 5. cycles: the callee `(server, tool)` already in the chain, or any repeat
//!    in the chain ([`DenyReason::CallCycle`]);
//! 6. caller/callee rules, the caller being the tool of the chain's last hop:
//!    the callee's `allowed_callers`/`blocked_callers`, the policy's
//!    `allowed_callers`/`blocked_callers`, the caller's
//!    `allowed_callees`/`blocked_callees` when the caller is a tool of this
//!    server, and the policy's `allowed_callees`/`blocked_callees`. Block
//!    lists win over allow lists; an absent allow-list is unrestricted, an
//!    empty one admits nobody;
//! 7. permissions: each required permission must be covered for the current
//!    principal ([`DenyReason::MissingPermissions`], by name) **and** for
//!    every hop principal: the chain acts with the intersection of rights
//!    along it. A permission the current principal holds but a hop's
//!    principal lacks is refused as [`DenyReason::PrivilegeEscalation`].
//!
//! Any failure inside evaluation is a deny ([`DenyReason::Internal`]); there
//! is no third outcome.
//!
//! # Permissions, scopes and roles
//!
//! Matching is etdi-core's [`Permission::covers`]: a granted `file:*` covers
//! `file:read` and `file:*`; a required `file:*` is not covered by
//! `file:read`; there is no hierarchy without the wildcard. A principal's
//! grants are its OAuth scopes that are permissions (scopes that do not parse
//! as a permission are ignored) and the effective permissions of its roles:
//! those it carries ([`Principal::roles`], mapped from token claims by
//! etdi-auth) plus static assignments for its subject in the policy. Roles
//! inherit roles; inheritance is resolved at load time and a cycle is an
//! error there ([`RbacError::InheritanceCycle`]). Role names the policy does
//! not define grant nothing.
//!
//! # Security levels and overrides
//!
//! The level ([`SecurityLevel`]: Basic, Enhanced, Strict, `High` = Strict)
//! supplies the defaults of [`SecurityPolicy`]; a setting written explicitly
//! in the policy wins in either direction, because the operator writes it.
//! **Per-tool settings only tighten** — those of the tool definition
//! ([`etdi_core::ToolSecurity`], [`etdi_core::CallChainConstraints`]) and
//! those of the policy file's `[tools."id"]` tables alike:
//!
//! | setting | effective value for a tool |
//! |---|---|
//! | request signing required | policy OR definition OR operator rule |
//! | tool signature required | policy OR definition OR operator rule |
//! | depth limit | min(policy `max_call_depth` if chain validation is on, definition `maxDepth`, operator `max_call_depth`, 32) |
//! | required permissions | definition ∪ operator rule |
//! | allowed callers/callees | intersection of the lists that are set |
//! | blocked callers/callees | union |
//!
//! A tool can never loosen the server's policy. When the operator turns
//! `enable_call_chain_validation` off, the policy's own chain rules (its depth
//! limit, cycle refusal, its caller/callee lists) stop applying, but a
//! tool's own constraints still do, and so does the intersection of rights.
//! See [`PolicyEngine::effective_security`].
//!
//! # Policy files
//!
//! A TOML format ([`mod@file`]) compiled into an index by tool; errors name the
//! file, line, column and field ([`PolicyFileError`]).
//!
//! # Cedar
//!
//! With the `cedar` feature, `EngineBuilder::build_cedar` gives a
//! `CedarEngine` with the same [`Authorizer`] interface: the protocol's
//! structural checks (signing, depth, cycles, caller/callee) are the same
//! code, and the permission question is put to Cedar policies instead.
//!
//! ```
//! use etdi_core::{AuthMethod, Principal, SecurityPolicy, ServerId, ToolDefinition, ToolId};
//! use etdi_policy::{CallRequest, PolicyDocument, PolicyEngine};
//!
//! let tool = ToolDefinition::from_json(r#"{
//!     "id": "com.example.files/read", "name": "read", "version": "1.0.0",
//!     "provider": {"id": "com.example", "name": "Example"},
//!     "inputSchema": {"type": "object"},
//!     "permissions": ["file:read"]
//! }"#)?;
//! let doc = PolicyDocument::from_toml(r#"
//!     security_level = "enhanced"
//!     [roles.reader]
//!     permissions = ["file:*"]
//! "#, "policy.toml")?;
//! let engine = PolicyEngine::builder(ServerId::parse("files")?)
//!     .document(doc)
//!     .tool(&tool)
//!     .build()?;
//!
//! let alice = Principal::new("alice", AuthMethod::BearerJwt).with_roles(["reader"]);
//! let d = engine.decide(&CallRequest::direct(&alice, &tool.id));
//! assert_eq!(d, etdi_core::Decision::allow("role:reader"));
//!
//! let bob = Principal::new("bob", AuthMethod::BearerJwt).with_scopes(["openid"]);
//! assert!(!engine.decide(&CallRequest::direct(&bob, &tool.id)).is_allowed());
//! assert!(engine.visible_tools(&bob).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "cedar")]
pub mod cedar;
mod document;
mod engine;
mod explain;
pub mod file;
mod index;
mod perms;
mod rbac;
mod request;

pub use document::{PolicyDocument, ToolRules};
pub use engine::{EngineBuilder, PolicyEngine, RULE_NO_PERMISSION_REQUIRED};
pub use explain::{Explanation, HopCheck, PermissionCheck};
pub use file::{PolicyFileError, PolicyFileErrorKind};
pub use index::EffectiveSecurity;
pub use rbac::{RbacError, Role, resolve_roles};
pub use request::CallRequest;

use etdi_core::{Decision, Principal, ToolId};

#[cfg(doc)]
use etdi_core::{DenyReason, Permission, SecurityLevel, SecurityPolicy};

/// The decision interface every engine offers.
pub trait Authorizer: Send + Sync {
    /// Decides one call; every error inside is a deny.
    fn decide(&self, request: &CallRequest<'_>) -> Decision;

    /// The tools `principal` may call directly, in id order (for filtering
    /// `tools/list`).
    fn visible_tools(&self, principal: &Principal) -> Vec<ToolId>;

    /// The settings in force for calls to `tool`, per-tool overrides applied.
    fn effective_security(&self, tool: &ToolId) -> Option<EffectiveSecurity>;
}

/// Why an engine could not be built from a document and tool definitions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Roles or assignments are inconsistent.
    #[error(transparent)]
    Roles(#[from] RbacError),
    /// Two definitions share a tool id.
    #[error("tool `{tool}` is defined twice")]
    DuplicateTool {
        /// The repeated id.
        tool: ToolId,
    },
    /// A depth limit outside 1 ..= 32.
    #[error("{field} must be between 1 and 32, got {value}")]
    InvalidDepth {
        /// Which setting.
        field: String,
        /// The refused value.
        value: u32,
    },
    /// More roles than the engine can number.
    #[error("too many roles")]
    TooLarge,
    /// The Cedar policies or entities were refused.
    #[error("cedar: {0}")]
    Cedar(String),
}
