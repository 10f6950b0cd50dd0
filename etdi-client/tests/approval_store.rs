//! Acceptance tests of the file approval store: approvals survive a
//! restart, two processes approving at once both land, a file truncated
//! mid-write loads the last good state, and expired approvals count as
//! absent without deadlocking a re-approval.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use etdi_client::{
    Approval, ApprovalDecision, ApprovalKey, ApprovalRequest, ApprovalStore, Approver, Discovery,
    FileApprovalStore, StoreError, Verdict,
};
use etdi_core::{SecurityLevel, SecurityPolicy, ServerId, Timestamp, ToolDefinition};
use etdi_crypto::advertised;
use etdi_crypto::attestation::AttestationVerifier;
use serde_json::json;

fn server() -> ServerId {
    ServerId::parse("https://tools.example.com/mcp").unwrap()
}

fn def(n: usize) -> ToolDefinition {
    ToolDefinition::from_value(json!({
        "id": format!("com.example/tool-{n}"),
        "name": format!("tool_{n}"),
        "version": "1.0.0",
        "description": format!("Tool number {n}"),
        "provider": {"id": "com.example", "name": "Example"},
        "inputSchema": {"type": "object"},
        "permissions": ["file:read"]
    }))
    .unwrap()
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn approval(n: usize) -> Approval {
    Approval::new(server(), def(n), None, "alice", now()).unwrap()
}

fn tools(store: &FileApprovalStore) -> Vec<String> {
    store
        .list_all()
        .unwrap()
        .into_iter()
        .map(|a| a.key.tool.to_string())
        .collect()
}

#[test]
fn approvals_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    {
        let store = FileApprovalStore::open(&path).unwrap();
        store.put(approval(1)).unwrap();
        store
            .put(approval(2).expiring_at(Timestamp::from_unix(4_000_000_000, 0).unwrap()))
            .unwrap();
    }
    let store = FileApprovalStore::open(&path).unwrap();
    let all = store.list_all().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], approval_like(&all[0], 1));
    let key = all[1].key.clone();
    let got = store.get(&key, now()).unwrap().unwrap();
    assert_eq!(got.definition, def(2));
    assert_eq!(got.approved_by, "alice");
    assert!(got.expires_at.is_some());
    // Revocation persists too.
    assert!(store.revoke(&key).unwrap());
    let store = FileApprovalStore::open(&path).unwrap();
    assert_eq!(tools(&store), ["com.example/tool-1"]);
    // Owner-only permissions.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The documented format.
    let text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(text["format"], "etdi-approvals/1");
    assert_eq!(
        text["approvals"][0]["digest"],
        def(1).digest().unwrap().to_string()
    );
}

/// The approval as stored, checked field by field against `def(n)`.
fn approval_like(a: &Approval, n: usize) -> Approval {
    assert_eq!(a.definition, def(n));
    assert_eq!(a.digest, def(n).digest().unwrap());
    a.clone()
}

/// Child-process half of `two_processes_approving_at_once`: writes 15
/// approvals when run with `ETDI_TEST_STORE` set, does nothing otherwise.
#[test]
fn child_writer() {
    let (Ok(path), Ok(offset)) = (
        std::env::var("ETDI_TEST_STORE"),
        std::env::var("ETDI_TEST_OFFSET"),
    ) else {
        return;
    };
    let offset: usize = offset.parse().unwrap();
    let store = FileApprovalStore::open(path).unwrap();
    for n in offset..offset + 15 {
        store.put(approval(n)).unwrap();
    }
}

#[test]
fn two_processes_approving_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    let exe = std::env::current_exe().unwrap();
    let spawn = |offset: usize| {
        Command::new(&exe)
            .args(["--exact", "child_writer", "--test-threads=1"])
            .env("ETDI_TEST_STORE", &path)
            .env("ETDI_TEST_OFFSET", offset.to_string())
            .spawn()
            .unwrap()
    };
    let mut a = spawn(0);
    let mut b = spawn(100);
    // This process writes at the same time, too.
    let store = FileApprovalStore::open(&path).unwrap();
    for n in 200..215 {
        store.put(approval(n)).unwrap();
    }
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let all = FileApprovalStore::open(&path).unwrap().list_all().unwrap();
    assert_eq!(all.len(), 45);
    for n in (0..15).chain(100..115).chain(200..215) {
        let id = format!("com.example/tool-{n}");
        assert!(
            all.iter().any(|a| a.key.tool.as_str() == id),
            "{id} missing"
        );
    }
}

#[test]
fn a_store_truncated_mid_write_loads_the_last_good_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    let store = FileApprovalStore::open(&path).unwrap();
    store.put(approval(1)).unwrap();
    store.put(approval(2)).unwrap();
    // Simulated crash while the second approval was being written: the file
    // is cut in the middle.
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let store = FileApprovalStore::open(&path).unwrap();
    assert_eq!(tools(&store), ["com.example/tool-1"]);
    // The store keeps working from there.
    store.put(approval(3)).unwrap();
    assert_eq!(
        tools(&FileApprovalStore::open(&path).unwrap()),
        ["com.example/tool-1", "com.example/tool-3"]
    );
}

#[test]
fn crash_between_renames_and_leftover_temporaries_are_survived() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    let store = FileApprovalStore::open(&path).unwrap();
    store.put(approval(1)).unwrap();
    store.put(approval(2)).unwrap();
    // A writer died after moving the file to the backup and before renaming
    // its complete temporary file into place.
    std::fs::rename(&path, dir.path().join("approvals.json.bak")).unwrap();
    let leftover = dir.path().join("approvals.json.tmp.99999.0");
    std::fs::write(&leftover, b"{\"format\": \"etdi-appr").unwrap();
    // The backup is the complete state the dead writer had moved aside.
    let store = FileApprovalStore::open(&path).unwrap();
    assert_eq!(tools(&store), ["com.example/tool-1", "com.example/tool-2"]);
    store.put(approval(4)).unwrap();
    assert!(!leftover.exists(), "leftover temporary file not swept");
    assert_eq!(
        tools(&store),
        [
            "com.example/tool-1",
            "com.example/tool-2",
            "com.example/tool-4"
        ]
    );
}

#[test]
fn an_unreadable_store_fails_closed_instead_of_starting_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    std::fs::write(&path, b"{\"format\": \"etdi-approvals/1\", \"appro").unwrap();
    assert!(matches!(
        FileApprovalStore::open(&path),
        Err(StoreError::Corrupt(_))
    ));
    // A pin whose digest does not match its definition is refused too.
    let store_path = dir.path().join("other.json");
    let store = FileApprovalStore::open(&store_path).unwrap();
    store.put(approval(1)).unwrap();
    let text = std::fs::read_to_string(&store_path)
        .unwrap()
        .replace("Tool number 1", "Tool number 1, now evil");
    std::fs::write(&store_path, text).unwrap();
    std::fs::remove_file(dir.path().join("other.json.bak")).ok();
    assert!(matches!(
        FileApprovalStore::open(&store_path),
        Err(StoreError::Corrupt(m)) if m.contains("digest")
    ));
}

/// Approves, after reading the store itself: if discovery held the store
/// lock while asking, this would deadlock.
struct ReadsTheStore(Arc<FileApprovalStore>);

impl Approver for ReadsTheStore {
    fn decide(&self, _: &ApprovalRequest<'_>) -> ApprovalDecision {
        let _ = self.0.list_all().unwrap();
        ApprovalDecision::Approve {
            by: "bob".into(),
            expires_at: None,
        }
    }
}

#[test]
fn expired_approvals_are_absent_and_reapproval_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    let store = Arc::new(FileApprovalStore::open(&path).unwrap());
    let past = Timestamp::from_unix(1_000_000_000, 0).unwrap();
    store.put(approval(1).expiring_at(past)).unwrap();
    let key = ApprovalKey {
        server: server(),
        provider: def(1).provider.id,
        tool: def(1).id,
    };
    assert!(store.get(&key, now()).unwrap().is_none());
    assert!(store.list_server(&server(), now()).unwrap().is_empty());
    assert_eq!(store.list_all().unwrap().len(), 1);

    let discovery = Discovery::new(server(), AttestationVerifier::new(), store.clone())
        .policy(SecurityPolicy::new(SecurityLevel::Basic))
        .approver(Arc::new(ReadsTheStore(store.clone())));
    let listed = vec![advertised::tool_from_definition(&def(1), None).unwrap()];
    let cat = discovery.discover(&listed);
    let t = &cat.all()[0];
    assert!(t.is_usable(), "{:?}", t.refusal);
    assert_eq!(
        t.assessment.as_ref().unwrap().verdict,
        Verdict::NeedsApproval
    );
    let pin = store.get(&key, now()).unwrap().unwrap();
    assert_eq!(pin.approved_by, "bob");
    assert!(pin.expires_at.is_none());
    assert_eq!(store.list_all().unwrap().len(), 1);
    assert_stable(&path);
}

fn assert_stable(path: &Path) {
    let a = std::fs::read(path).unwrap();
    let _ = FileApprovalStore::open(path).unwrap().list_all().unwrap();
    assert_eq!(
        a,
        std::fs::read(path).unwrap(),
        "reads must not rewrite the store"
    );
}

#[test]
fn a_damaged_file_never_replaces_the_good_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    let bak = dir.path().join("approvals.json.bak");
    let store = FileApprovalStore::open(&path).unwrap();
    store.put(approval(1)).unwrap();
    store.put(approval(2)).unwrap();
    std::fs::write(&path, b"{\"format\"").unwrap();
    // Writing from the backup's state keeps the backup as it was.
    store.put(approval(3)).unwrap();
    let backup = std::fs::read_to_string(&bak).unwrap();
    assert!(backup.contains("tool-1") && !backup.contains("tool-2"));
    assert_eq!(tools(&store), ["com.example/tool-1", "com.example/tool-3"]);
}

/// `etdi approvals revoke --version V` chooses and removes in one step: a
/// newer version approved after the operator looked is not revoked in
/// place of the one asked for, in either store.
#[test]
fn revoking_a_version_never_removes_a_newer_approval_under_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = FileApprovalStore::open(dir.path().join("approvals.json")).unwrap();
    let memory = etdi_client::MemoryApprovalStore::new();
    let stores: [&dyn ApprovalStore; 2] = [&file, &memory];
    for store in stores {
        let v1 = approval(1);
        store.put(v1.clone()).unwrap();
        store.put(approval(2)).unwrap();
        // The operator saw version 1.0.0 of tool 1; version 2.0.0 is
        // approved under the same key before the revocation runs.
        let mut newer = serde_json::to_value(def(1)).unwrap();
        newer["version"] = json!("2.0.0");
        let newer = ToolDefinition::from_value(newer).unwrap();
        let v2 = Approval::new(server(), newer, None, "bob", now()).unwrap();
        assert_eq!(v2.key, v1.key);
        store.put(v2.clone()).unwrap();

        let asked = v1.version.clone();
        let gone = store
            .revoke_matching(&|a| a.key == v1.key && a.version == asked)
            .unwrap();
        assert!(gone.is_empty(), "revoked {gone:?}");
        assert_eq!(store.get(&v1.key, now()).unwrap(), Some(v2.clone()));

        let gone = store.revoke_matching(&|a| a.key == v1.key).unwrap();
        assert_eq!(gone, vec![v2]);
        assert!(store.get(&v1.key, now()).unwrap().is_none());
        // The other tool's approval is untouched.
        let left = store.list_all().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].key.tool, def(2).id);
    }
}

#[test]
fn a_revocation_that_matches_nothing_does_not_rewrite_the_file() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.json");
    let store = FileApprovalStore::open(&path).unwrap();
    store.put(approval(1)).unwrap();
    let inode = || std::fs::metadata(&path).unwrap().ino();
    let before = (inode(), std::fs::read(&path).unwrap());
    // Every write replaces the file by rename, so an unchanged inode means
    // nothing was written.
    assert!(!store.revoke(&approval(2).key).unwrap());
    assert!(store.revoke_matching(&|_| false).unwrap().is_empty());
    assert_eq!((inode(), std::fs::read(&path).unwrap()), before);
    // A revocation that removes something does write.
    assert_eq!(store.revoke_matching(&|_| true).unwrap().len(), 1);
    assert_ne!(inode(), before.0);
    assert!(
        FileApprovalStore::open(&path)
            .unwrap()
            .list_all()
            .unwrap()
            .is_empty()
    );
}
