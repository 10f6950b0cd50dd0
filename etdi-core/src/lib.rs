//! The ETDI core model: tool definitions, permissions, the security policy
//! model, principals, call chains, decisions, verification results, audit
//! event types, and the one canonical form + digest used everywhere.
//!
//! This crate does no I/O and needs no async runtime. Untrusted input enters
//! through parsers ([`ToolDefinition::from_json`], [`Permission::parse`],
//! [`canonical::parse_json`], ...) that return typed errors and never panic;
//! everything past them works with validated values.
//!
//! ```
//! use etdi_core::ToolDefinition;
//!
//! let tool = ToolDefinition::from_json(r#"{
//!     "id": "com.example.files/read",
//!     "name": "secure_file_read",
//!     "version": "1.0.0",
//!     "description": "Read a file",
//!     "provider": {"id": "com.example", "name": "Example Corp"},
//!     "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
//!     "permissions": ["file:read", "audit:log"]
//! }"#)?;
//! // The one digest ETDI signs, pins and approves.
//! let digest = tool.digest()?;
//! assert!(digest.to_string().starts_with("sha256:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod canonical;
pub mod chain;
pub mod decision;
pub mod event;
pub mod id;
pub mod permission;
pub mod policy;
pub mod principal;
pub mod tool;
pub mod verification;

pub use canonical::{CanonicalError, Digest, JsonError};
pub use chain::{CallChain, ChainTooLong, Hop};
pub use decision::{Decision, DenyReason};
pub use event::{AuditEvent, EventKind, Outcome, PrincipalRef, Timestamp, ToolRef};
pub use id::{IdError, ProviderId, ServerId, ToolId, ToolName, ToolVersion};
pub use permission::{Permission, PermissionError};
pub use policy::{SecurityLevel, SecurityPolicy};
pub use principal::{AuthMethod, Principal};
pub use tool::{
    CallChainConstraints, DefinitionError, DefinitionErrorKind, Provider, ToolDefinition,
    ToolSecurity,
};
pub use verification::{VerificationFailure, VerificationStatus};

/// The ETDI protocol version this crate implements (docs/PROTOCOL.md).
pub const PROTOCOL_VERSION: &str = "etdi/1";
