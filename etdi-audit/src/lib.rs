//! ETDI audit logging: events, SIEM formats, lossless sinks, hash chain and
//! signed checkpoints.
//!
//! ```
//! use etdi_audit::{AuditLog, Durability, event, sink::FileSink};
//! use etdi_core::{AuthMethod, Principal};
//!
//! let dir = tempfile::tempdir()?;
//! let log = AuditLog::builder()
//!     .sink(FileSink::builder(dir.path()).open()?)
//!     .durability(Durability::default()) // group commit
//!     .build()?;
//! let alice = Principal::new("alice", AuthMethod::BearerJwt);
//! // Returns once queued; waits only if the queue is full.
//! log.log(event::authentication_succeeded(&alice).server("files"))?;
//! // Returns once the event is on disk (fsynced with its batch).
//! log.log_durable(event::replay_detected("nonce reused").principal(&alice))?;
//! log.shutdown()?;
//!
//! let report = etdi_audit::Verifier::new(dir.path()).verify()?;
//! assert_eq!(report.records, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! * **Nothing is dropped silently.** Events go through a bounded queue.
//!   By default a full queue makes the producer wait (backpressure). The
//!   opt-in lossy mode ([`Overflow::DropNewest`]) returns
//!   [`AuditError::Dropped`] to the caller and writes an `events_dropped`
//!   event with the count. A failing sink stops the log loudly: every later
//!   call returns [`AuditError::Failed`].
//! * **Durability on request.** [`AuditLog::log_durable`] returns only after
//!   the event is durable per the [`Durability`] policy: fsync per event,
//!   group commit (default; the caller's batch was fsynced), or none
//!   (handed to the OS).
//! * **Tamper evidence.** Native-format file logs are a SHA-256 hash chain
//!   across rotated files with periodic signed checkpoints; [`Verifier`]
//!   reports the first bad record for modification, deletion, insertion,
//!   reordering and (against the last checkpoint) truncation.
//! * **Crash safety.** After a kill at any moment the log opens; an
//!   incomplete last line is cut and a `log_repaired` event records what was
//!   cut; every event acknowledged as durable is present. This is tested by
//!   killing a writer process with SIGKILL at random moments.
//!
//! # Threading model (why a dedicated OS thread)
//!
//! The sinks are owned by one writer thread (`etdi-audit-writer`) fed by a
//! bounded queue (a mutex-protected vector with condition variables and
//! waker lists), not by a task on an async runtime:
//!
//! * file writes and fsync are blocking system calls; on a runtime they
//!   would occupy a worker thread (or need `spawn_blocking` per batch);
//! * the log must work the same for sync callers (no runtime) and async
//!   callers (any runtime), so it cannot depend on tokio;
//! * one thread that owns the file and the chain head needs no locking
//!   around hashing and writing, and batches naturally.
//!
//! Producers canonicalise their event on their own thread (spreading the
//! CPU work), then take the queue lock only to push. The handoff never
//! blocks while there is queue space. When the queue is full:
//!
//! * [`AuditLog::log`] / [`AuditLog::log_durable`] block the calling
//!   thread: right for sync code; from async code they block a worker
//!   thread only while the queue is full, which callers can avoid with
//! * [`AuditLog::log_async`] / [`AuditLog::log_durable_async`] /
//!   [`AuditLog::flush_async`]: futures that wait on a waker, never on the
//!   executor thread (runtime-agnostic, no `spawn_blocking`);
//! * [`AuditLog::try_log`] never waits ([`AuditError::Full`]), and
//!   [`AuditLog::log_timeout`] / [`AuditLog::log_durable_timeout`] bound
//!   the wait, so the caller always knows when it is being held up.
//!
//! Dropping the last [`AuditLog`] handle (or [`AuditLog::shutdown`]) drains
//! the queue, syncs, writes a final checkpoint and joins the writer.
//!
//! # Events
//!
//! [`event`] has a helper per kind (tool discovery, verification,
//! approval and revocation, invocation, authentication, authorization with
//! reasons, policy violations, replay, rug pull, key rotation). Every event
//! has an RFC 3339 UTC time, a unique id (UUIDv7-shaped), kind, outcome,
//! and optionally principal, tool (id/version/digest), server, request id,
//! correlation id, trace id (the current `tracing` span unless configured),
//! reason codes and reason. Invocation arguments are recorded only with
//! [`ParamsPolicy::include`], with configured fields redacted.
//!
//! # Formats
//!
//! Selectable per sink ([`Format`]). The same `authorization_failed` event
//! in each:
//!
//! **Native** (the [`etdi_core::AuditEvent`] object, canonical JSON):
//!
//! ```json
//! {"id":"01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b","kind":"authorization_failed",
//!  "outcome":"denied","principal":{"auth_method":"bearer_jwt","subject":"alice"},
//!  "reason":"missing permission(s): file:write","reason_codes":["missing_permissions"],
//!  "server":"files","time":"2026-11-24T03:56:39.123Z",
//!  "tool":{"id":"com.example.files/write","version":"1.0.0"}}
//! ```
//!
//! In a native file sink each event is wrapped in a chained record (see
//! [`record`]):
//!
//! ```json
//! {"event":{...},"hash":"sha256:9c1f...","prev":"sha256:77ab...","seq":41,"v":1}
//! ```
//!
//! **OCSF 1.3** (Authorize Session 3003 here; Authentication 3002 for
//! authentication events, API Activity 6003 for the rest):
//!
//! ```json
//! {"activity_id":1,"activity_name":"Assign Privileges","category_name":"Identity & Access Management",
//!  "category_uid":3,"class_name":"Authorize Session","class_uid":3003,
//!  "message":"authorization failed: com.example.files/write by alice (missing permission(s): file:write)",
//!  "metadata":{"event_code":"authorization_failed","product":{"name":"ETDI","vendor_name":"ETDI","version":"0.1.0"},
//!              "uid":"01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b","version":"1.3.0"},
//!  "resources":[{"data":{"version":"1.0.0"},"type":"mcp_tool","uid":"com.example.files/write"}],
//!  "service":{"name":"files"},"severity":"Medium","severity_id":3,"status":"Failure",
//!  "status_code":"missing_permissions","status_detail":"missing permission(s): file:write","status_id":2,
//!  "time":1795492599123,"type_name":"Authorize Session: Assign Privileges","type_uid":300301,
//!  "unmapped":{"etdi":{"auth_method":"bearer_jwt","kind":"authorization_failed","outcome":"denied",
//!              "reason_codes":["missing_permissions"]}},
//!  "user":{"uid":"alice"}}
//! ```
//!
//! **Elastic ECS 8.x**:
//!
//! ```json
//! {"@timestamp":"2026-11-24T03:56:39.123Z","ecs":{"version":"8.17.0"},
//!  "event":{"action":"authorization_failed","category":["iam"],"dataset":"etdi.audit",
//!           "id":"01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a5b","kind":"event","outcome":"failure",
//!           "provider":"etdi","reason":"missing permission(s): file:write","type":["denied"]},
//!  "etdi":{"auth_method":"bearer_jwt","reason_codes":["missing_permissions"],
//!          "tool":{"id":"com.example.files/write","version":"1.0.0"}},
//!  "message":"authorization failed: com.example.files/write by alice (missing permission(s): file:write)",
//!  "service":{"name":"files"},"user":{"id":"alice","name":"alice"}}
//! ```
//!
//! # Sinks
//!
//! [`sink::FileSink`] (JSON lines, size/time rotation, hash chain,
//! checkpoints, crash repair), [`sink::StdoutSink`],
//! [`sink::TracingSink`] (a `tracing` bridge), [`sink::MemorySink`] (tests)
//! and [`sink::FanOut`]. Adding several sinks to one log fans out too.
//!
//! # Checkpoint keys
//!
//! Checkpoints are signed through [`CheckpointSigner`] and checked through
//! [`CheckpointVerifier`]. etdi-crypto's `SigningKey` implements the first,
//! its `VerifyingKey` and `VerifyingKeySet` the second (see [`crypto`]);
//! [`HmacCheckpointKey`] implements both for tests and single-party setups.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod crypto;
pub mod error;
pub mod event;
pub mod format;
pub mod log;
pub mod record;
pub mod sink;
pub mod verify;

pub use checkpoint::{
    Checkpoint, CheckpointSigner, CheckpointVerifier, HmacCheckpointKey, SignError, SignatureError,
};
pub use error::{AuditError, OpenError, SinkError};
pub use event::{EventBuilder, ParamsPolicy};
pub use format::Format;
pub use log::{AuditLog, AuditLogBuilder, Durability, LogFuture, Overflow, Stats};
pub use record::EncodedEvent;
pub use verify::{Finding, TamperKind, TornTail, Verifier, VerifyError, VerifyReport};
