//! ETDI SecureServer on the official MCP Rust SDK (rmcp).
//!
//! [`SecureServer`] is an rmcp `ServerHandler` (hence a
//! `Service<RoleServer>`) that adds ETDI to real MCP:
//!
//! * `initialize` announces `capabilities.experimental["dev.etdi"]`
//!   (docs/PROTOCOL.md §1);
//! * `tools/list` carries each tool's ETDI fields and its attestation in
//!   `_meta` (§2, §5), filtered to what the caller may invoke when the
//!   policy says so (on by default at `Strict`);
//! * `tools/call` runs the pipeline — authenticate, verify the request
//!   signature where required, replay check, call-chain validation,
//!   authorization (etdi-policy), invoke, audit the outcome — and refuses
//!   with the JSON-RPC errors of §10.
//!
//! Tools are either registered with the builder ([`EtdiTool`], typed
//! arguments with a schemars schema) or served by an existing rmcp handler
//! that [`SecureServerBuilder::wrap`] puts behind the pipeline unchanged.
//! Transports: stdio ([`serve_stdio`], the configured local identity is the
//! caller), Streamable HTTP on axum ([`http::router`], [`http::serve_http`])
//! with OAuth bearer tokens (RFC 9728 metadata, `401`/`403` challenges,
//! audience checked by etdi-auth), and HTTPS with optional mutual TLS on
//! rustls ([`tls::serve_https`]). Request sizes, chain length, sessions and
//! concurrency are bounded ([`Limits`]).
//!
//! A tool can call a tool on another ETDI server through
//! [`ToolContext::call_remote`]: the call chain is extended with a hop this
//! server signs, so the callee enforces depth, caller/callee rules and the
//! intersection of rights across processes.
//!
//! The lower layers plug in directly: etdi-crypto signs attestations and
//! verifies request signatures, call chains and nonces; etdi-policy decides;
//! etdi-auth verifies tokens and client certificates (through the
//! [`stages::TokenVerifier`] adapter); etdi-audit records every step
//! (through the [`stages::AuditRecorder`] adapter). Every error in a
//! security step denies.
#![forbid(unsafe_code)]

pub mod audit;
pub mod error;
pub mod http;
pub mod limits;
pub mod listener;
pub mod remote;
mod server;
mod sessions;
pub mod stages;
pub mod tls;
mod tool;
pub mod wire;

pub use error::BuildError;
pub use limits::Limits;
pub use remote::{RemoteError, RemoteServer, StaticToken, TokenSource};
pub use rmcp;
pub use rmcp::schemars;
pub use server::{Authenticated, BearerAuth, SecureServer, SecureServerBuilder};
pub use tool::{CallInfo, EtdiTool, ToolContext, ToolSet};

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The server or router could not be built.
    #[error(transparent)]
    Build(BuildError),
    /// The transport failed.
    #[error("transport: {0}")]
    Io(String),
}

/// Serves `server` over stdin/stdout until the client disconnects. Every
/// caller is the server's configured local identity.
pub async fn serve_stdio<H>(server: SecureServer<H>) -> Result<(), ServeError>
where
    H: rmcp::ServerHandler,
{
    use rmcp::ServiceExt;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Io(e.to_string()))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| ServeError::Io(e.to_string()))
}
