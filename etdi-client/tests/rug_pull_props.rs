//! Properties of the rug-pull engine and the Unicode scanner over
//! arbitrary text: the scanner never panics, an unchanged definition is
//! always approved, and any other content at the same version is always
//! blocked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use etdi_client::rugpull::{Observed, assess};
use etdi_client::{Approval, Verdict, unicode};
use etdi_core::{ServerId, Timestamp, ToolDefinition};
use proptest::prelude::*;
use serde_json::json;

fn def(description: &str, version: &str) -> Option<ToolDefinition> {
    ToolDefinition::from_value(json!({
        "id": "com.example/t", "name": "t", "version": version,
        "description": description,
        "provider": {"id": "com.example", "name": "Example"},
        "inputSchema": {"type": "object"}
    }))
    .ok()
}

fn verdict(pinned: &ToolDefinition, now: &ToolDefinition) -> Verdict {
    let server = ServerId::parse("srv").unwrap();
    let pin = Approval::new(
        server.clone(),
        pinned.clone(),
        None,
        "t",
        Timestamp::from_unix(0, 0).unwrap(),
    )
    .unwrap();
    assess(
        &Observed {
            server: &server,
            definition: now,
            digest: now.digest().unwrap(),
            signer: None,
        },
        &[pin],
    )
    .verdict
}

proptest! {
    #[test]
    fn scanner_never_panics(s in any::<String>()) {
        let _ = unicode::scan("description", &s);
    }

    #[test]
    fn same_content_is_approved_other_content_at_same_version_is_blocked(
        a in "\\PC{0,40}", b in "\\PC{0,40}"
    ) {
        let (Some(da), Some(db)) = (def(&a, "1.0.0"), def(&b, "1.0.0")) else {
            return Ok(());
        };
        prop_assert_eq!(verdict(&da, &da), Verdict::Approved);
        if a != b {
            prop_assert_eq!(verdict(&da, &db), Verdict::Blocked);
        }
    }
}
