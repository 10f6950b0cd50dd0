//! The pipeline's pluggable stages that are not etdi-crypto types: where
//! audit events go and how bearer tokens are verified. Each is a small trait
//! so a deployment can plug in its own (a remote audit collector, a token
//! introspection service) without touching the pipeline; adapters for
//! etdi-auth and etdi-audit implement them.
//!
//! Every method is fallible and every error denies: no implementation can
//! turn a failure into an allow.

use async_trait::async_trait;
use etdi_core::{AuditEvent, Principal};

/// Where audit events go. `record` returns once the sink has accepted the
/// event (etdi-audit: queued losslessly for its writer); a sink that cannot
/// take it returns an error and the call is denied, because an unrecorded
/// call must not run.
#[async_trait]
pub trait AuditRecorder: Send + Sync {
    /// Records one event.
    async fn record(&self, event: AuditEvent) -> Result<(), StageError>;
}

/// etdi-audit's log: events are queued without blocking the executor and
/// written (hash-chained, group-committed) by its writer thread. Build the
/// log with the default `Overflow::Block` so nothing is dropped, and with
/// `.linger(Duration::from_millis(1))`: a server logs a few events per
/// request at a steady rate, and the default 200 µs linger wakes the
/// writer for almost every event (measured ~28 µs of CPU per event against
/// ~11 µs with 1 ms, in `benches/http.rs`).
#[async_trait]
impl AuditRecorder for etdi_audit::AuditLog {
    async fn record(&self, event: AuditEvent) -> Result<(), StageError> {
        self.log_async(event)
            .await
            .map_err(|e| StageError::new(format!("audit log: {e}")))
    }
}

/// etdi-audit's log, durably: `record` returns only once the event's group
/// commit has been fsynced, so the pipeline answers a call only after its
/// audit trail would survive a crash of the process or the machine. Costs
/// one group-commit wait (default at most 5 ms, shared by concurrent calls)
/// per event. The plain [`etdi_audit::AuditLog`] adapter returns once the
/// event is queued: faster, but events still queued or buffered when the
/// process dies are lost, while their calls may already have been
/// answered. The load and SIGKILL tests (`tests/load_fault.rs`) show both.
#[derive(Debug, Clone)]
pub struct DurableAudit(pub etdi_audit::AuditLog);

#[async_trait]
impl AuditRecorder for DurableAudit {
    async fn record(&self, event: AuditEvent) -> Result<(), StageError> {
        self.0
            .log_durable_async(event)
            .await
            .map_err(|e| StageError::new(format!("audit log: {e}")))
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRejection {
    /// Fixed text safe to send in `error_description` (nothing copied from
    /// the token).
    pub description: String,
    /// The verifier could not decide (keys unreachable): answered with
    /// `503`, not with a challenge that blames the token.
    pub unavailable: bool,
}

/// Verifies bearer tokens for the HTTP transport: signature, expiry, issuer
/// and audience (RFC 8707) are the implementation's job. etdi-auth's
/// `TokenVerifier` implements it.
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    /// The principal the token stands for, or why it is refused.
    /// `certificate` is the TLS client certificate (DER) of the connection,
    /// if any, for certificate-bound tokens (RFC 8705). Shared, so a
    /// verifier with a cache hands out its copy without cloning it.
    async fn verify(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<std::sync::Arc<Principal>, TokenRejection>;
}

#[async_trait]
impl TokenVerifier for etdi_auth::TokenVerifier {
    async fn verify(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<std::sync::Arc<Principal>, TokenRejection> {
        self.verify_shared(token, certificate)
            .await
            .map_err(|e| TokenRejection {
                description: e.description().to_owned(),
                unavailable: e.is_unavailable(),
            })
    }
}

/// A stage failed for a reason that is not the caller's fault. It denies;
/// the detail goes to the audit log and the operator, never to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StageError(pub String);

impl StageError {
    /// A stage error with `detail`.
    pub fn new(detail: impl Into<String>) -> Self {
        StageError(detail.into())
    }
}
