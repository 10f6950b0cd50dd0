//! Approvals (pins): what a person or a rule approved for one tool of one
//! server, and the [`ApprovalStore`] trait that keeps them.
//!
//! A pin is keyed by (server identity, provider id, tool id), never by a
//! command line or a tool name, so it survives a server moving hosts and a
//! tool being renamed (the rename is then reported, not missed). It records
//! the exact approved definition (so a later change can be explained field by
//! field), its digest (the one digest of PROTOCOL §3), the permissions, the
//! attestation issuer and key, who approved and when, and an optional expiry.
//!
//! Expired approvals are treated as absent by every read, without holding
//! any lock while a new approval is sought (the Python implementation
//! deadlocked exactly there).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

use etdi_core::{
    Digest, Permission, ProviderId, ServerId, Timestamp, ToolDefinition, ToolId, ToolName,
    ToolVersion,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who signed a tool's attestation: the issuer and its key id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signer {
    /// Attestation `iss`.
    pub issuer: String,
    /// Attestation `kid`.
    pub key_id: String,
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (key {})", self.issuer, self.key_id)
    }
}

/// The identity of a pin: one tool of one provider as served by one server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ApprovalKey {
    /// The server's identity (its ETDI audience or configured name).
    pub server: ServerId,
    /// The provider id.
    pub provider: ProviderId,
    /// The stable tool id.
    pub tool: ToolId,
}

impl fmt::Display for ApprovalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {} / {}", self.server, self.provider, self.tool)
    }
}

/// One approval: a pin of an exact tool definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// What is pinned.
    #[serde(flatten)]
    pub key: ApprovalKey,
    /// The tool name when approved.
    pub name: ToolName,
    /// The approved version.
    pub version: ToolVersion,
    /// Digest of the approved definition (PROTOCOL §3).
    pub digest: Digest,
    /// The approved permissions.
    pub permissions: BTreeSet<Permission>,
    /// Who attested the approved definition; `None` if it was unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<Signer>,
    /// Who approved (a user name, `rule:<name>`, `auto:version-bump`).
    pub approved_by: String,
    /// When.
    pub approved_at: Timestamp,
    /// After this instant the approval counts as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The approved definition itself, so changes can be explained field by
    /// field and renames recognised by content.
    #[serde(serialize_with = "ser_definition", deserialize_with = "de_definition")]
    pub definition: ToolDefinition,
}

fn ser_definition<S: Serializer>(d: &ToolDefinition, s: S) -> Result<S::Ok, S::Error> {
    d.serialize(s)
}

fn de_definition<'de, D: Deserializer<'de>>(d: D) -> Result<ToolDefinition, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    ToolDefinition::from_value(v).map_err(serde::de::Error::custom)
}

/// Why a stored approval is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("approval for {key} is inconsistent: {detail}")]
pub struct InconsistentApproval {
    /// The approval.
    pub key: ApprovalKey,
    /// What disagrees.
    pub detail: String,
}

impl Approval {
    /// An approval of `definition` as served by `server`, attested by
    /// `signer`, approved by `approved_by` at `approved_at`.
    pub fn new(
        server: ServerId,
        definition: ToolDefinition,
        signer: Option<Signer>,
        approved_by: impl Into<String>,
        approved_at: Timestamp,
    ) -> Result<Self, etdi_core::CanonicalError> {
        let digest = definition.digest()?;
        Ok(Approval {
            key: ApprovalKey {
                server,
                provider: definition.provider.id.clone(),
                tool: definition.id.clone(),
            },
            name: definition.name.clone(),
            version: definition.version.clone(),
            digest,
            permissions: definition.permissions.clone(),
            signer,
            approved_by: approved_by.into(),
            approved_at,
            expires_at: None,
            definition,
        })
    }

    /// Sets an expiry.
    #[must_use]
    pub fn expiring_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Whether the approval has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Checks that the summary fields agree with the stored definition, so a
    /// hand-edited or damaged store cannot pin one digest and show another
    /// definition.
    pub fn check_consistent(&self) -> Result<(), InconsistentApproval> {
        let bad = |detail: &str| InconsistentApproval {
            key: self.key.clone(),
            detail: detail.to_owned(),
        };
        let d = &self.definition;
        let digest = d.digest().map_err(|e| bad(&e.to_string()))?;
        if digest != self.digest {
            return Err(bad("digest does not match the stored definition"));
        }
        if d.id != self.key.tool || d.provider.id != self.key.provider {
            return Err(bad(
                "tool or provider id does not match the stored definition",
            ));
        }
        if d.name != self.name || d.version != self.version || d.permissions != self.permissions {
            return Err(bad(
                "name, version or permissions do not match the definition",
            ));
        }
        Ok(())
    }
}

/// Why the approval store failed. Every failure denies: a tool whose pin
/// cannot be read is not callable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading, writing or locking the store failed.
    #[error("approval store I/O error ({context}): {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store and its backup are both unreadable.
    #[error("approval store is corrupt: {0}")]
    Corrupt(String),
    /// An approval contradicts its own definition.
    #[error(transparent)]
    Inconsistent(#[from] InconsistentApproval),
    /// A lock was poisoned by a panic in another thread.
    #[error("approval store lock poisoned")]
    Poisoned,
}

/// Persistent pins. Implementations must make every method atomic with
/// respect to other callers (other threads and, for shared files, other
/// processes), and must never hold a lock across calls.
pub trait ApprovalStore: Send + Sync {
    /// The unexpired approval under `key`, if any.
    fn get(&self, key: &ApprovalKey, now: Timestamp) -> Result<Option<Approval>, StoreError>;

    /// Every unexpired approval for `server`.
    fn list_server(&self, server: &ServerId, now: Timestamp) -> Result<Vec<Approval>, StoreError>;

    /// Every approval, expired ones included (for tooling).
    fn list_all(&self) -> Result<Vec<Approval>, StoreError>;

    /// Inserts or replaces the approval under its key.
    fn put(&self, approval: Approval) -> Result<(), StoreError>;

    /// Removes the approval under `key`; returns whether there was one.
    fn revoke(&self, key: &ApprovalKey) -> Result<bool, StoreError>;

    /// Removes every approval `matches` selects and returns them, choosing
    /// and removing in one atomic step. Listing first and then revoking by
    /// key would remove an approval put under the same key in between (say,
    /// a newer version than the one the operator asked to revoke) and
    /// report the old one as revoked.
    fn revoke_matching(
        &self,
        matches: &dyn Fn(&Approval) -> bool,
    ) -> Result<Vec<Approval>, StoreError>;
}

/// An in-memory store (tests, or sessions that should not persist pins).
#[derive(Debug, Default)]
pub struct MemoryApprovalStore {
    inner: Mutex<Vec<Approval>>,
}

impl MemoryApprovalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ApprovalStore for MemoryApprovalStore {
    fn get(&self, key: &ApprovalKey, now: Timestamp) -> Result<Option<Approval>, StoreError> {
        let g = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(g.iter()
            .find(|a| &a.key == key && !a.is_expired(now))
            .cloned())
    }

    fn list_server(&self, server: &ServerId, now: Timestamp) -> Result<Vec<Approval>, StoreError> {
        let g = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(g.iter()
            .filter(|a| &a.key.server == server && !a.is_expired(now))
            .cloned()
            .collect())
    }

    fn list_all(&self) -> Result<Vec<Approval>, StoreError> {
        let g = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(g.clone())
    }

    fn put(&self, approval: Approval) -> Result<(), StoreError> {
        approval.check_consistent()?;
        let mut g = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        upsert(&mut g, approval);
        Ok(())
    }

    fn revoke(&self, key: &ApprovalKey) -> Result<bool, StoreError> {
        let mut g = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        let before = g.len();
        g.retain(|a| &a.key != key);
        Ok(g.len() != before)
    }

    fn revoke_matching(
        &self,
        matches: &dyn Fn(&Approval) -> bool,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut g = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(take_matching(&mut g, matches))
    }
}

/// Removes and returns the approvals `matches` selects, keeping the order
/// of the rest.
pub(crate) fn take_matching(
    list: &mut Vec<Approval>,
    matches: &dyn Fn(&Approval) -> bool,
) -> Vec<Approval> {
    let (gone, kept) = std::mem::take(list).into_iter().partition(|a| matches(a));
    *list = kept;
    gone
}

/// Replaces the approval with the same key, or appends; keeps the list
/// sorted by key so the file form is stable.
pub(crate) fn upsert(list: &mut Vec<Approval>, approval: Approval) {
    list.retain(|a| a.key != approval.key);
    list.push(approval);
    list.sort_by(|a, b| a.key.cmp(&b.key));
}
