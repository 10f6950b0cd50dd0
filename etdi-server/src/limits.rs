//! Bounds on what one client can make the server hold or do.
//!
//! | limit | default | enforced |
//! |---|---|---|
//! | `max_request_body_bytes` | 1 MiB | HTTP: rmcp refuses larger POST bodies with `413` while streaming |
//! | `max_argument_bytes` | 256 KiB | `tools/call`: canonical size of `params.arguments`; larger is `-32602` |
//! | `max_signature_bytes` | 8 KiB | `tools/call`: length of the request-signature JWS |
//! | `max_chain_hops` | 8 | `tools/call`: hops in `dev.etdi/call-chain` (the protocol cap is 32; the policy's depth rule applies on top) |
//! | `max_hop_bytes` | 8 KiB | `tools/call`: length of each hop JWS |
//! | `max_sessions` | 1024 | HTTP: live MCP sessions; a new `initialize` beyond it gets `503` (audited) |
//! | `max_sessions_per_principal` | 32 | HTTP: live MCP sessions one principal (issuer, subject, client id) may hold; beyond it `429` (audited) |
//! | `max_concurrent_requests` | 256 | HTTP: authenticated requests in flight, each until its response body is sent (standalone `GET` streams excepted: `max_sessions` bounds them); more wait for a slot |

use etdi_core::tool::MAX_CALL_DEPTH;

/// Request-size and resource bounds. `Limits::default()` is what a server
/// gets unless it configures others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest HTTP request body, in bytes.
    pub max_request_body_bytes: usize,
    /// Largest `params.arguments` (serialised), in bytes.
    pub max_argument_bytes: usize,
    /// Longest request-signature JWS, in bytes.
    pub max_signature_bytes: usize,
    /// Most hops accepted in an incoming call chain (at most 32).
    pub max_chain_hops: usize,
    /// Longest hop JWS, in bytes.
    pub max_hop_bytes: usize,
    /// Most live HTTP sessions.
    pub max_sessions: usize,
    /// Most live HTTP sessions of one principal.
    pub max_sessions_per_principal: usize,
    /// Most HTTP requests served at once.
    pub max_concurrent_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body_bytes: 1024 * 1024,
            max_argument_bytes: 256 * 1024,
            max_signature_bytes: 8 * 1024,
            max_chain_hops: 8,
            max_hop_bytes: 8 * 1024,
            max_sessions: 1024,
            max_sessions_per_principal: 32,
            max_concurrent_requests: 256,
        }
    }
}

impl Limits {
    /// Checks the limits are usable; called by the server builder.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let nonzero = [
            ("max_request_body_bytes", self.max_request_body_bytes),
            ("max_argument_bytes", self.max_argument_bytes),
            ("max_signature_bytes", self.max_signature_bytes),
            ("max_hop_bytes", self.max_hop_bytes),
            ("max_sessions", self.max_sessions),
            (
                "max_sessions_per_principal",
                self.max_sessions_per_principal,
            ),
            ("max_concurrent_requests", self.max_concurrent_requests),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("limit `{name}` must be positive"));
        }
        if self.max_chain_hops > MAX_CALL_DEPTH as usize {
            return Err(format!(
                "limit `max_chain_hops` is {}, more than the protocol cap of {MAX_CALL_DEPTH}",
                self.max_chain_hops
            ));
        }
        Ok(())
    }
}
