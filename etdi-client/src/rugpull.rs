//! The rug-pull engine: compares a tool as advertised now with the pins of
//! its server and says what changed and what that means. Pure: no I/O, no
//! clock; the caller passes the unexpired pins.
//!
//! Rules (docs/PROTOCOL.md §3, issue 8):
//!
//! * versions are immutable: the same tool id and version (by SemVer
//!   precedence, so build metadata cannot be used to dodge this) with a
//!   different digest is an integrity violation, [`Verdict::Blocked`], with
//!   no approval path;
//! * a new version whose definition is otherwise unchanged advances the pin
//!   without asking ([`Verdict::AutoUpgrade`]); any other change of the
//!   definition or the permissions needs a new approval, permission
//!   escalation included, and so do a version downgrade, a provider swap, a
//!   signing key or issuer change, and newly hidden Unicode;
//! * a tool is matched to its pin by (provider, tool id), then by tool id
//!   under another provider (provider swap), then by name (a new id taking
//!   over an approved name), then by content with name and id ignored (a
//!   rename that also changed the id): a renamed tool is recognised and
//!   reported, never treated as new.

use std::collections::BTreeSet;
use std::fmt;

use etdi_core::{
    Digest, Permission, ProviderId, ServerId, ToolDefinition, ToolId, ToolName, ToolVersion,
};
use serde::{Deserialize, Serialize};

use crate::approval::{Approval, Signer};
use crate::unicode::{self, UnicodeFinding};

/// A tool as it is advertised now, after attestation verification.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The server advertising it.
    pub server: &'a ServerId,
    /// The definition rebuilt from what was advertised (PROTOCOL §2).
    pub definition: &'a ToolDefinition,
    /// Its digest.
    pub digest: Digest,
    /// Who attested it, if the attestation verified.
    pub signer: Option<&'a Signer>,
}

/// How serious a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth recording; needs nobody's approval.
    Info,
    /// The tool may be used only after a new approval.
    Reapproval,
    /// The tool may not be used at all; no approval can change that.
    Blocked,
}

/// One thing that differs from the pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// The same id and version now has a different digest.
    VersionReuse {
        /// The reused version.
        version: ToolVersion,
        /// The pinned digest.
        pinned: Digest,
        /// The digest now.
        now: Digest,
    },
    /// The version went down.
    VersionDowngrade {
        /// Pinned version.
        from: ToolVersion,
        /// Version now.
        to: ToolVersion,
    },
    /// The version went up.
    VersionUpgrade {
        /// Pinned version.
        from: ToolVersion,
        /// Version now.
        to: ToolVersion,
    },
    /// The tool is known under another name (and possibly another id).
    Renamed {
        /// The approved name.
        from: ToolName,
        /// The name now.
        to: ToolName,
        /// The approved tool id (equal to the current one for an id-stable rename).
        previous_id: ToolId,
    },
    /// A tool with a new id took over an approved tool's name.
    ToolIdChanged {
        /// The approved id.
        from: ToolId,
        /// The id now.
        to: ToolId,
    },
    /// The same tool is now published by another provider.
    ProviderSwap {
        /// Approved provider.
        from: ProviderId,
        /// Provider now.
        to: ProviderId,
    },
    /// The provider's display name or URL changed.
    ProviderDetailsChanged,
    /// The attestation issuer or key changed (or the attestation appeared or
    /// disappeared).
    SigningKeyChanged {
        /// Approved signer.
        from: Option<Signer>,
        /// Signer now.
        to: Option<Signer>,
    },
    /// The title changed.
    TitleChanged,
    /// The description changed.
    DescriptionChanged,
    /// The input schema changed.
    InputSchemaChanged,
    /// The output schema changed.
    OutputSchemaChanged,
    /// The annotations changed.
    AnnotationsChanged,
    /// The icons changed.
    IconsChanged,
    /// The call-chain constraints changed.
    CallChainChanged,
    /// The per-tool security overrides changed.
    SecurityChanged,
    /// Permissions not covered by the approved ones were added.
    PermissionEscalation {
        /// The new permissions.
        added: Vec<Permission>,
    },
    /// Approved permissions were dropped.
    PermissionsReduced {
        /// The dropped permissions.
        removed: Vec<Permission>,
    },
    /// Text with invisible, bidi-control, tag, variation-selector, control or
    /// mixed-script characters that the approved definition did not have.
    SuspiciousUnicode {
        /// What and where.
        finding: UnicodeFinding,
    },
}

impl Change {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::VersionReuse { .. } => "version_reuse",
            Self::VersionDowngrade { .. } => "version_downgrade",
            Self::VersionUpgrade { .. } => "version_upgrade",
            Self::Renamed { .. } => "renamed",
            Self::ToolIdChanged { .. } => "tool_id_changed",
            Self::ProviderSwap { .. } => "provider_swap",
            Self::ProviderDetailsChanged => "provider_details_changed",
            Self::SigningKeyChanged { .. } => "signing_key_changed",
            Self::TitleChanged => "title_changed",
            Self::DescriptionChanged => "description_changed",
            Self::InputSchemaChanged => "input_schema_changed",
            Self::OutputSchemaChanged => "output_schema_changed",
            Self::AnnotationsChanged => "annotations_changed",
            Self::IconsChanged => "icons_changed",
            Self::CallChainChanged => "call_chain_changed",
            Self::SecurityChanged => "security_changed",
            Self::PermissionEscalation { .. } => "permission_escalation",
            Self::PermissionsReduced { .. } => "permissions_reduced",
            Self::SuspiciousUnicode { .. } => "suspicious_unicode",
        }
    }

    /// What the change requires.
    pub fn severity(&self) -> Severity {
        match self {
            Self::VersionReuse { .. } => Severity::Blocked,
            Self::VersionUpgrade { .. } => Severity::Info,
            _ => Severity::Reapproval,
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionReuse { version, .. } => write!(
                f,
                "version {version} was republished with different content (integrity violation)"
            ),
            Self::VersionDowngrade { from, to } => {
                write!(f, "version downgraded from {from} to {to}")
            }
            Self::VersionUpgrade { from, to } => write!(f, "version upgraded from {from} to {to}"),
            Self::Renamed {
                from,
                to,
                previous_id,
            } => {
                write!(
                    f,
                    "renamed from `{from}` to `{to}` (approved as tool id `{previous_id}`)"
                )
            }
            Self::ToolIdChanged { from, to } => {
                write!(
                    f,
                    "an approved tool name now belongs to tool id `{to}` instead of `{from}`"
                )
            }
            Self::ProviderSwap { from, to } => {
                write!(f, "provider changed from `{from}` to `{to}`")
            }
            Self::ProviderDetailsChanged => f.write_str("provider name or URL changed"),
            Self::SigningKeyChanged { from, to } => {
                let show = |s: &Option<Signer>| {
                    s.as_ref()
                        .map_or_else(|| "unsigned".to_owned(), ToString::to_string)
                };
                write!(
                    f,
                    "attestation signer changed from {} to {}",
                    show(from),
                    show(to)
                )
            }
            Self::TitleChanged => f.write_str("title changed"),
            Self::DescriptionChanged => f.write_str("description changed"),
            Self::InputSchemaChanged => f.write_str("input schema changed"),
            Self::OutputSchemaChanged => f.write_str("output schema changed"),
            Self::AnnotationsChanged => f.write_str("annotations changed"),
            Self::IconsChanged => f.write_str("icons changed"),
            Self::CallChainChanged => f.write_str("call-chain constraints changed"),
            Self::SecurityChanged => f.write_str("security overrides changed"),
            Self::PermissionEscalation { added } => {
                write!(f, "permission escalation: now also needs {}", join(added))
            }
            Self::PermissionsReduced { removed } => {
                write!(f, "permissions reduced: no longer needs {}", join(removed))
            }
            Self::SuspiciousUnicode { finding } => write!(f, "suspicious text: {finding}"),
        }
    }
}

/// What to do with a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Exactly what was approved.
    Approved,
    /// A new version with nothing else changed: the pin may advance without
    /// asking anyone.
    AutoUpgrade,
    /// Never approved, or changed in a way that needs a new approval.
    NeedsApproval,
    /// An integrity violation: refuse the tool; no approval can change that.
    Blocked,
}

/// The engine's answer for one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// What to do.
    pub verdict: Verdict,
    /// Every difference found, most serious first.
    pub changes: Vec<Change>,
    /// The pin compared against; `None` for a tool seen for the first time.
    pub previous: Option<Approval>,
}

impl Assessment {
    /// True when the tool was never approved (nor recognised under another
    /// name, id or provider).
    pub fn is_first_seen(&self) -> bool {
        self.previous.is_none()
    }

    /// Whether some change has this code.
    pub fn has(&self, code: &str) -> bool {
        self.changes.iter().any(|c| c.code() == code)
    }
}

/// Assesses `observed` against the unexpired pins of its server.
pub fn assess(observed: &Observed<'_>, pins: &[Approval]) -> Assessment {
    let def = observed.definition;
    let same_server = |a: &&Approval| &a.key.server == observed.server;
    let exact = pins
        .iter()
        .filter(same_server)
        .find(|a| a.key.provider == def.provider.id && a.key.tool == def.id);
    let by_id = || {
        pins.iter()
            .filter(same_server)
            .find(|a| a.key.tool == def.id)
    };
    let by_name = || pins.iter().filter(same_server).find(|a| a.name == def.name);
    let by_content = || {
        pins.iter()
            .filter(same_server)
            .find(|a| same_content_ignoring_identity(&a.definition, def))
    };
    let pin = exact.or_else(by_id).or_else(by_name).or_else(by_content);
    let Some(pin) = pin else {
        let changes: Vec<Change> = unicode::scan_definition(def)
            .into_iter()
            .map(|finding| Change::SuspiciousUnicode { finding })
            .collect();
        return Assessment {
            verdict: Verdict::NeedsApproval,
            changes,
            previous: None,
        };
    };
    let mut changes = compare(pin, observed);
    changes.sort_by_key(|c| std::cmp::Reverse(c.severity()));
    let worst = changes.iter().map(Change::severity).max();
    let verdict = match worst {
        Some(Severity::Blocked) => Verdict::Blocked,
        Some(Severity::Reapproval) => Verdict::NeedsApproval,
        _ if pin.digest == observed.digest => Verdict::Approved,
        // Only `Info` changes remain, and the digest moved: a version bump.
        _ => Verdict::AutoUpgrade,
    };
    Assessment {
        verdict,
        changes,
        previous: Some(pin.clone()),
    }
}

/// Equal apart from name, id and version: a renamed (re-identified) tool.
fn same_content_ignoring_identity(a: &ToolDefinition, b: &ToolDefinition) -> bool {
    let mut a = a.clone();
    a.name = b.name.clone();
    a.id = b.id.clone();
    a.version = b.version.clone();
    &a == b
}

fn compare(pin: &Approval, observed: &Observed<'_>) -> Vec<Change> {
    let old = &pin.definition;
    let new = observed.definition;
    let mut out = Vec::new();

    if pin.key.provider != new.provider.id {
        out.push(Change::ProviderSwap {
            from: pin.key.provider.clone(),
            to: new.provider.id.clone(),
        });
    }
    if pin.key.tool != new.id {
        if pin.name == new.name {
            out.push(Change::ToolIdChanged {
                from: pin.key.tool.clone(),
                to: new.id.clone(),
            });
        } else {
            out.push(Change::Renamed {
                from: pin.name.clone(),
                to: new.name.clone(),
                previous_id: pin.key.tool.clone(),
            });
        }
    } else if pin.name != new.name {
        out.push(Change::Renamed {
            from: pin.name.clone(),
            to: new.name.clone(),
            previous_id: pin.key.tool.clone(),
        });
    }

    // Version immutability is judged only for the same tool of the same
    // provider; another id or provider has its own version line (a provider
    // swap is reported as such).
    if pin.key.tool == new.id && pin.key.provider == new.provider.id {
        match new.version.precedence(&pin.version) {
            std::cmp::Ordering::Equal if pin.digest != observed.digest => {
                out.push(Change::VersionReuse {
                    version: new.version.clone(),
                    pinned: pin.digest,
                    now: observed.digest,
                });
            }
            std::cmp::Ordering::Equal => {}
            std::cmp::Ordering::Less => out.push(Change::VersionDowngrade {
                from: pin.version.clone(),
                to: new.version.clone(),
            }),
            std::cmp::Ordering::Greater => out.push(Change::VersionUpgrade {
                from: pin.version.clone(),
                to: new.version.clone(),
            }),
        }
    }

    if old.provider.name != new.provider.name || old.provider.url != new.provider.url {
        out.push(Change::ProviderDetailsChanged);
    }
    if pin.signer.as_ref() != observed.signer {
        out.push(Change::SigningKeyChanged {
            from: pin.signer.clone(),
            to: observed.signer.cloned(),
        });
    }
    let fields = [
        (old.title != new.title, Change::TitleChanged),
        (
            old.description != new.description,
            Change::DescriptionChanged,
        ),
        (
            old.input_schema != new.input_schema,
            Change::InputSchemaChanged,
        ),
        (
            old.output_schema != new.output_schema,
            Change::OutputSchemaChanged,
        ),
        (
            old.annotations != new.annotations,
            Change::AnnotationsChanged,
        ),
        (old.icons != new.icons, Change::IconsChanged),
        (old.call_chain != new.call_chain, Change::CallChainChanged),
        (old.security != new.security, Change::SecurityChanged),
    ];
    out.extend(fields.into_iter().filter(|(d, _)| *d).map(|(_, c)| c));

    let added: Vec<Permission> = new
        .permissions
        .iter()
        .filter(|p| !pin.permissions.iter().any(|g| g.covers(p)))
        .cloned()
        .collect();
    if !added.is_empty() {
        out.push(Change::PermissionEscalation { added });
    }
    // Dropped means no longer covered: `file:read` replaced by `file:*` is an
    // escalation, not a reduction.
    let removed: Vec<Permission> = pin
        .permissions
        .iter()
        .filter(|p| !new.permissions.iter().any(|g| g.covers(p)))
        .cloned()
        .collect();
    if !removed.is_empty() {
        out.push(Change::PermissionsReduced { removed });
    }

    // Only text that is suspicious now and was not in what was approved: an
    // approved definition with, say, a ZWJ in a Persian title is not
    // re-flagged on every listing.
    let before: BTreeSet<(String, unicode::UnicodeIssueKind)> = unicode::scan_definition(old)
        .into_iter()
        .map(|f| (f.field, f.kind))
        .collect();
    out.extend(
        unicode::scan_definition(new)
            .into_iter()
            .filter(|f| !before.contains(&(f.field.clone(), f.kind)))
            .map(|finding| Change::SuspiciousUnicode { finding }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use etdi_core::Timestamp;
    use serde_json::json;

    fn def(v: serde_json::Value) -> ToolDefinition {
        ToolDefinition::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "id": "com.example/read", "name": "read", "version": "1.0.0",
            "description": "می\u{200C}خواهم",
            "provider": {"id": "com.example", "name": "Example"},
            "inputSchema": {"type": "object"}, "permissions": ["file:read"]
        })
    }

    fn server() -> ServerId {
        ServerId::parse("srv").unwrap()
    }

    fn pin(d: &ToolDefinition) -> Approval {
        Approval::new(
            server(),
            d.clone(),
            None,
            "t",
            Timestamp::from_unix(0, 0).unwrap(),
        )
        .unwrap()
    }

    fn run(d: &ToolDefinition, pins: &[Approval]) -> Assessment {
        let s = server();
        assess(
            &Observed {
                server: &s,
                definition: d,
                digest: d.digest().unwrap(),
                signer: None,
            },
            pins,
        )
    }

    #[test]
    fn unchanged_is_approved_and_pins_of_other_servers_do_not_count() {
        let d = def(base());
        assert_eq!(run(&d, &[pin(&d)]).verdict, Verdict::Approved);
        let mut other = pin(&d);
        other.key.server = ServerId::parse("elsewhere").unwrap();
        assert!(run(&d, &[other]).is_first_seen());
    }

    #[test]
    fn a_new_id_taking_an_approved_name_is_reported() {
        let old = def(base());
        let mut v = base();
        v["id"] = json!("com.example/evil");
        v["description"] = json!("different");
        let a = run(&def(v), &[pin(&old)]);
        assert_eq!(a.verdict, Verdict::NeedsApproval);
        assert_eq!(a.changes[0].code(), "tool_id_changed");
    }

    #[test]
    fn approved_unicode_is_not_re_flagged_but_new_unicode_is() {
        // The approved description has a (legitimate) ZWNJ in Persian text.
        let old = def(base());
        let mut v = base();
        v["version"] = json!("1.0.1");
        let a = run(&def(v.clone()), &[pin(&old)]);
        assert_eq!(a.verdict, Verdict::AutoUpgrade);
        v["title"] = json!("Re\u{200B}ad");
        let a = run(&def(v), &[pin(&old)]);
        assert!(a.has("suspicious_unicode"));
        assert!(a.has("title_changed"));
    }

    #[test]
    fn every_change_has_a_code_and_a_severity() {
        let c = Change::PermissionEscalation {
            added: vec![Permission::parse("file:write").unwrap()],
        };
        assert_eq!(c.severity(), Severity::Reapproval);
        assert_eq!(
            c.to_string(),
            "permission escalation: now also needs file:write"
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"code": "permission_escalation", "added": ["file:write"]})
        );
    }
}
