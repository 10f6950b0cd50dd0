//! ETDI verifying MCP client: attestation checks, approvals, rug-pull
//! protection, and refusal of calls to tools that were never listed and
//! approved.
//!
//! The pieces, each usable on its own:
//!
//! - [`rugpull`]: the pure engine comparing an advertised, verified tool with
//!   the pins of its server ([`rugpull::assess`] gives a [`Verdict`] and
//!   every [`Change`] with its reason).
//! - [`unicode`]: invisible, bidi-control, tag, variation-selector and
//!   mixed-script checks on everything a model reads.
//! - [`approval`] and [`file_store`]: pins keyed by (server, provider, tool
//!   id) in an [`ApprovalStore`]; [`FileApprovalStore`] is a crash-safe JSON
//!   file shared safely between processes.
//! - [`approver`]: who decides new approvals ([`PromptApprover`],
//!   [`RuleApprover`], [`DenyAll`]).
//! - [`discovery`]: `tools/list` in, a [`ToolCatalog`] out, with
//!   [`ToolCatalog::check_call`] refusing unknown or unapproved tools in the
//!   PROTOCOL §10 error shape.
//! - [`client`]: [`SecureClient`] on `rmcp`: discovery on connect and after
//!   `notifications/tools/list_changed`, local refusals, request signing,
//!   call-chain extension.
//! - [`http`]: bearer tokens on Streamable HTTP with one bounded scope
//!   step-up on `403 insufficient_scope`.
//!
//! A new user's first run: a provider-signed tool, a rule that approves that
//! provider's read-only tools, and a call check.
//!
//! ```
//! use std::sync::Arc;
//! use etdi_client::{AutoApproveRule, Discovery, MemoryApprovalStore, RuleApprover};
//! use etdi_core::{Permission, ProviderId, ServerId, ToolDefinition};
//! use etdi_crypto::attestation::{AttestationSigner, AttestationVerifier, ProviderScope};
//! use etdi_crypto::trust::KeyRing;
//! use etdi_crypto::{advertised, Algorithm, CryptoProvider, SigningKey, UnixTime};
//!
//! // What the server advertises (normally the `tools/list` result).
//! let def = ToolDefinition::from_json(r#"{
//!     "id": "com.example.files/read", "name": "read_file", "version": "1.0.0",
//!     "description": "Read a file",
//!     "provider": {"id": "com.example", "name": "Example"},
//!     "inputSchema": {"type": "object"}, "permissions": ["file:read"]
//! }"#)?;
//! let key = SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256)?;
//! let token = AttestationSigner::new("com.example").sign(&key, &def, UnixTime::now())?;
//! let listed = vec![advertised::tool_from_definition(&def, Some(&token))?];
//!
//! // The client: trust the provider's key, pin approvals, auto-approve
//! // com.example tools that need at most file:read.
//! let mut verifier = AttestationVerifier::new();
//! verifier.trust_issuer(
//!     "com.example",
//!     [key.verifying_key().clone()].into_iter().collect::<KeyRing>(),
//!     ProviderScope::only(["com.example"])?,
//! );
//! let rules = RuleApprover::new().rule(AutoApproveRule::new(
//!     "example-readers",
//!     ProviderId::parse("com.example")?,
//!     [Permission::parse("file:read")?],
//! ));
//! let discovery = Discovery::new(
//!     ServerId::parse("https://tools.example.com/mcp")?,
//!     verifier,
//!     Arc::new(MemoryApprovalStore::new()),
//! )
//! .approver(Arc::new(rules));
//!
//! let catalog = discovery.discover(&listed);
//! assert!(catalog.check_call("read_file").is_ok());
//! // A tool that was never listed is refused locally (PROTOCOL §10).
//! let refused = catalog.check_call("delete_everything").unwrap_err();
//! assert_eq!(refused.code(), -32602);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod approval;
pub mod approver;
pub mod client;
pub mod discovery;
pub mod file_store;
pub mod http;
pub mod rugpull;
pub mod unicode;

pub use approval::{
    Approval, ApprovalKey, ApprovalStore, InconsistentApproval, MemoryApprovalStore, Signer,
    StoreError,
};
pub use approver::{
    ApprovalDecision, ApprovalRequest, Approver, AutoApproveRule, DenyAll, PromptApprover,
    RuleApprover,
};
pub use client::{ClientError, EtdiHandler, OnwardCall, RequestSigning, SecureClient};
pub use discovery::{
    CallRefused, DiscoveredTool, Discovery, Refusal, ToolCatalog, UnverifiedHandling,
};
pub use file_store::FileApprovalStore;
pub use rugpull::{Assessment, Change, Observed, Severity, Verdict};
pub use unicode::{UnicodeFinding, UnicodeIssueKind};
