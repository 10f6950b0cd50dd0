//! The server-wide security policy model: security levels and the settings
//! they turn on.
//!
//! | setting                        | Basic | Enhanced (default) | Strict (`High`) |
//! |--------------------------------|-------|--------------------|-----------------|
//! | `require_tool_signatures`      | no    | yes                | yes             |
//! | `require_request_signing`      | no    | no                 | yes             |
//! | `enable_call_chain_validation` | yes   | yes                | yes             |
//! | `max_call_depth`               | 10    | 5                  | 3               |
//! | `audit_all_calls`              | no    | yes                | yes             |
//! | `filter_tools_list`            | no    | no                 | yes             |
//!
//! A level only supplies defaults; a setting written explicitly in the policy
//! wins in either direction, because the operator writes the policy. Per-tool
//! settings ([`crate::ToolSecurity`], [`crate::CallChainConstraints`]) can
//! only tighten it: see docs/PROTOCOL.md §7. At `Basic` audit still records
//! every security decision that denies; `audit_all_calls` adds the allowed ones.
//!
//! `High` is accepted as an alias of `Strict` (the seed's example uses it): a
//! request for a "high" level gets the strictest one rather than a weaker guess.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::ToolId;
use crate::tool::MAX_CALL_DEPTH;

/// How much ETDI demands by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SecurityLevel {
    /// Backward-compatible: nothing signed is required.
    Basic,
    /// Signed tool definitions required; request signing optional.
    #[default]
    Enhanced,
    /// Everything required; `tools/list` filtered to what the caller may call.
    Strict,
}

/// Why a level name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown security level `{0}`; expected basic, enhanced, strict or high")]
pub struct LevelParseError(String);

impl FromStr for SecurityLevel {
    type Err = LevelParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "basic" => Ok(Self::Basic),
            "enhanced" => Ok(Self::Enhanced),
            "strict" | "high" => Ok(Self::Strict),
            _ => Err(LevelParseError(s.chars().take(64).collect())),
        }
    }
}

impl SecurityLevel {
    /// The lowercase name used in files and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Enhanced => "enhanced",
            Self::Strict => "strict",
        }
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SecurityLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SecurityLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The resolved server-wide policy. Build it with [`SecurityPolicy::new`]
/// and adjust fields, or deserialize it (absent fields take the level's
/// defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyFile")]
pub struct SecurityPolicy {
    /// The level that supplied the defaults.
    pub security_level: SecurityLevel,
    /// Clients hide or refuse tools whose attestation does not verify.
    pub require_tool_signatures: bool,
    /// Servers refuse unsigned `tools/call` requests.
    pub require_request_signing: bool,
    /// Servers check depth, cycles and caller/callee rules of call chains.
    pub enable_call_chain_validation: bool,
    /// Longest chain accepted, in hops (1 ..= 32).
    pub max_call_depth: u32,
    /// Audit allowed calls too, not only denials and security events.
    pub audit_all_calls: bool,
    /// `tools/list` shows only the tools the caller may invoke.
    pub filter_tools_list: bool,
    /// If set, only these tools may appear as callers in a chain.
    pub allowed_callers: Option<BTreeSet<ToolId>>,
    /// Tools that may never appear as callers.
    pub blocked_callers: BTreeSet<ToolId>,
    /// If set, chains may only call these tools.
    pub allowed_callees: Option<BTreeSet<ToolId>>,
    /// Tools that may never be called from a chain.
    pub blocked_callees: BTreeSet<ToolId>,
}

impl SecurityPolicy {
    /// The defaults of `level` (table in the module docs).
    pub fn new(level: SecurityLevel) -> Self {
        let (sig, req, depth, audit_all, filter) = match level {
            SecurityLevel::Basic => (false, false, 10, false, false),
            SecurityLevel::Enhanced => (true, false, 5, true, false),
            SecurityLevel::Strict => (true, true, 3, true, true),
        };
        SecurityPolicy {
            security_level: level,
            require_tool_signatures: sig,
            require_request_signing: req,
            enable_call_chain_validation: true,
            max_call_depth: depth,
            audit_all_calls: audit_all,
            filter_tools_list: filter,
            allowed_callers: None,
            blocked_callers: BTreeSet::new(),
            allowed_callees: None,
            blocked_callees: BTreeSet::new(),
        }
    }
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self::new(SecurityLevel::default())
    }
}

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("security policy field `{field}`: {message}")]
pub struct PolicyError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    security_level: SecurityLevel,
    require_tool_signatures: Option<bool>,
    require_request_signing: Option<bool>,
    enable_call_chain_validation: Option<bool>,
    max_call_depth: Option<u32>,
    audit_all_calls: Option<bool>,
    filter_tools_list: Option<bool>,
    allowed_callers: Option<BTreeSet<ToolId>>,
    #[serde(default)]
    blocked_callers: BTreeSet<ToolId>,
    allowed_callees: Option<BTreeSet<ToolId>>,
    #[serde(default)]
    blocked_callees: BTreeSet<ToolId>,
}

impl TryFrom<PolicyFile> for SecurityPolicy {
    type Error = PolicyError;

    fn try_from(f: PolicyFile) -> Result<Self, PolicyError> {
        let d = SecurityPolicy::new(f.security_level);
        let max_call_depth = f.max_call_depth.unwrap_or(d.max_call_depth);
        if max_call_depth == 0 || max_call_depth > MAX_CALL_DEPTH {
            return Err(PolicyError {
                field: "max_call_depth",
                message: format!("must be between 1 and {MAX_CALL_DEPTH}, got {max_call_depth}"),
            });
        }
        Ok(SecurityPolicy {
            security_level: f.security_level,
            require_tool_signatures: f
                .require_tool_signatures
                .unwrap_or(d.require_tool_signatures),
            require_request_signing: f
                .require_request_signing
                .unwrap_or(d.require_request_signing),
            enable_call_chain_validation: f
                .enable_call_chain_validation
                .unwrap_or(d.enable_call_chain_validation),
            max_call_depth,
            audit_all_calls: f.audit_all_calls.unwrap_or(d.audit_all_calls),
            filter_tools_list: f.filter_tools_list.unwrap_or(d.filter_tools_list),
            allowed_callers: f.allowed_callers,
            blocked_callers: f.blocked_callers,
            allowed_callees: f.allowed_callees,
            blocked_callees: f.blocked_callees,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn high_is_strict_and_names_are_case_insensitive() {
        assert_eq!("HIGH".parse::<SecurityLevel>(), Ok(SecurityLevel::Strict));
        assert_eq!(
            "Enhanced".parse::<SecurityLevel>(),
            Ok(SecurityLevel::Enhanced)
        );
        assert!("medium".parse::<SecurityLevel>().is_err());
    }

    #[test]
    fn the_seed_example_deserializes_with_level_defaults() {
        let p: SecurityPolicy = serde_json::from_value(json!({
            "security_level": "high",
            "require_tool_signatures": true,
            "enable_call_chain_validation": true,
            "max_call_depth": 5,
            "audit_all_calls": true,
        }))
        .unwrap();
        assert_eq!(p.security_level, SecurityLevel::Strict);
        assert_eq!(p.max_call_depth, 5);
        // Not written, so the Strict default applies.
        assert!(p.require_request_signing);
        assert!(p.filter_tools_list);
    }

    #[test]
    fn explicit_settings_win_and_bad_values_name_the_field() {
        let p: SecurityPolicy = serde_json::from_value(
            json!({"security_level": "strict", "require_request_signing": false}),
        )
        .unwrap();
        assert!(!p.require_request_signing);
        let e = serde_json::from_value::<SecurityPolicy>(json!({"max_call_depth": 0})).unwrap_err();
        assert!(e.to_string().contains("max_call_depth"), "{e}");
        let e = serde_json::from_value::<SecurityPolicy>(json!({"max_depth": 3})).unwrap_err();
        assert!(e.to_string().contains("max_depth"), "{e}");
    }

    #[test]
    fn defaults_are_enhanced() {
        let p = SecurityPolicy::default();
        assert_eq!(p.security_level, SecurityLevel::Enhanced);
        assert!(p.require_tool_signatures && !p.require_request_signing);
    }
}
