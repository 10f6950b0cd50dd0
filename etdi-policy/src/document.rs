//! The policy document: the server-wide [`SecurityPolicy`], roles, static
//! role assignments and per-tool rules, as an operator writes them (in TOML,
//! see [`crate::file`], or in code).

use std::collections::{BTreeMap, BTreeSet};

use etdi_core::{Permission, SecurityPolicy, ToolId};

use crate::rbac::Role;

/// Everything an operator configures about authorization on one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDocument {
    /// Server-wide settings and their security-level defaults.
    pub security: SecurityPolicy,
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
    /// Static role assignments: subject → role names. They add to the roles
    /// a principal already carries (from token claims mapped by etdi-auth).
    pub assignments: BTreeMap<String, BTreeSet<String>>,
    /// Per-tool rules written by the operator, by tool id. They combine
    /// with the tool's own definition and, like it, only tighten.
    pub tools: BTreeMap<ToolId, ToolRules>,
}

impl PolicyDocument {
    /// A document with `security` and nothing else.
    pub fn new(security: SecurityPolicy) -> Self {
        PolicyDocument {
            security,
            ..Self::default()
        }
    }

    /// Adds a role (builder style).
    pub fn with_role(mut self, name: impl Into<String>, role: Role) -> Self {
        self.roles.insert(name.into(), role);
        self
    }

    /// Adds a static assignment of `roles` to `subject` (builder style).
    pub fn with_assignment<I, S>(mut self, subject: impl Into<String>, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.assignments
            .entry(subject.into())
            .or_default()
            .extend(roles.into_iter().map(Into::into));
        self
    }

    /// Sets the rules for one tool (builder style).
    pub fn with_tool_rules(mut self, tool: ToolId, rules: ToolRules) -> Self {
        self.tools.insert(tool, rules);
        self
    }
}

/// Operator rules for one tool. Every field tightens what the tool's
/// definition and the server-wide policy already demand: permissions are
/// added, depth limits take the minimum, allow-lists intersect, block lists
/// unite, and `true` flags force a check on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolRules {
    /// Permissions required in addition to the tool's declared ones.
    pub permissions: BTreeSet<Permission>,
    /// Longest chain accepted for calls to this tool (1 ..= 32).
    pub max_call_depth: Option<u32>,
    /// Refuse unsigned calls to this tool.
    pub require_request_signing: bool,
    /// Clients must verify this tool's attestation.
    pub require_signature: bool,
    /// Only these tools may call this tool.
    pub allowed_callers: Option<BTreeSet<ToolId>>,
    /// These tools may never call this tool.
    pub blocked_callers: BTreeSet<ToolId>,
    /// This tool may call only these tools.
    pub allowed_callees: Option<BTreeSet<ToolId>>,
    /// This tool may never call these tools.
    pub blocked_callees: BTreeSet<ToolId>,
}
