//! The built-in engine: a policy compiled into per-tool requirement lists,
//! interned permission ids and one bit set per role, so a decision is a few
//! hash lookups and bit tests and never scans the rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use etdi_core::{
    Decision, DenyReason, Permission, Principal, SecurityPolicy, ServerId, ToolDefinition, ToolId,
};

use crate::document::PolicyDocument;
use crate::explain::{Explanation, HopCheck, PermissionCheck};
use crate::index::{EffectiveSecurity, Requirement, ToolIndex, ToolSpec};
use crate::perms::{BitSet, PermTable};
use crate::rbac::{self, RbacError};
use crate::request::CallRequest;
use crate::{Authorizer, BuildError};

/// The rule name of an allow for a tool that requires no permission.
pub const RULE_NO_PERMISSION_REQUIRED: &str = "no-permission-required";

/// Collects a policy document and the server's tool definitions, then
/// compiles them into an engine.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    server: ServerId,
    document: PolicyDocument,
    tools: Vec<ToolSpec>,
}

impl EngineBuilder {
    /// Uses `document` (roles, assignments, tool rules, server policy).
    pub fn document(mut self, document: PolicyDocument) -> Self {
        self.document = document;
        self
    }

    /// Replaces only the server-wide settings.
    pub fn policy(mut self, policy: SecurityPolicy) -> Self {
        self.document.security = policy;
        self
    }

    /// Adds one tool of this server.
    pub fn tool(mut self, tool: &ToolDefinition) -> Self {
        self.tools.push(ToolSpec::from(tool));
        self
    }

    /// Adds tools of this server.
    pub fn tools<'t, I: IntoIterator<Item = &'t ToolDefinition>>(mut self, tools: I) -> Self {
        self.tools.extend(tools.into_iter().map(ToolSpec::from));
        self
    }

    /// Compiles the built-in engine.
    pub fn build(self) -> Result<PolicyEngine, BuildError> {
        PolicyEngine::compile(self)
    }

    /// Compiles the Cedar engine: the same structural checks, with the
    /// principal-to-tool question answered by `policies` (Cedar text).
    #[cfg(feature = "cedar")]
    pub fn build_cedar(self, policies: &str) -> Result<crate::cedar::CedarEngine, BuildError> {
        crate::cedar::CedarEngine::compile(self, policies)
    }

    #[cfg(feature = "cedar")]
    pub(crate) fn into_parts(self) -> (ServerId, PolicyDocument, Vec<ToolSpec>) {
        (self.server, self.document, self.tools)
    }
}

/// The built-in policy engine. Evaluation is pure: no I/O, no locks, no
/// allocation beyond the decision it returns and small scratch vectors.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    index: ToolIndex,
    /// Role name → role number.
    role_ids: HashMap<String, u32>,
    /// Role number → name.
    role_names: Vec<String>,
    /// Role number → every permission id the role grants, inheritance
    /// resolved.
    role_grants: Vec<BitSet>,
    /// Role name → effective permissions, for callers and explanations.
    role_permissions: BTreeMap<String, BTreeSet<Permission>>,
    /// Subject → statically assigned role numbers.
    assignments: HashMap<String, Vec<u32>>,
}

/// How one required permission was satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant<'a> {
    Scope(&'a str),
    Role(u32),
}

impl PolicyEngine {
    /// Starts building an engine for the server `server`.
    pub fn builder(server: ServerId) -> EngineBuilder {
        EngineBuilder {
            server,
            document: PolicyDocument::default(),
            tools: Vec::new(),
        }
    }

    fn compile(b: EngineBuilder) -> Result<Self, BuildError> {
        let doc = b.document;
        let effective = rbac::resolve_roles(&doc.roles)?;
        rbac::check_assignments(&doc.roles, &doc.assignments)?;
        let mut table = PermTable::default();
        let index = ToolIndex::build(b.server, doc.security, &b.tools, &doc.tools, &mut table)?;

        // Only grants that can cover some requirement matter; others are
        // not interned and so never looked at.
        let mut role_ids = HashMap::with_capacity(effective.len());
        let mut role_names = Vec::with_capacity(effective.len());
        let mut role_grants = Vec::with_capacity(effective.len());
        for (name, perms) in &effective {
            let id = u32::try_from(role_names.len()).map_err(|_| BuildError::TooLarge)?;
            let mut bits = BitSet::with_capacity(table.len());
            for p in perms {
                if let Some(pid) = table.get(p.as_str()) {
                    bits.insert(pid);
                }
            }
            role_ids.insert(name.clone(), id);
            role_names.push(name.clone());
            role_grants.push(bits);
        }
        let mut assignments = HashMap::with_capacity(doc.assignments.len());
        for (subject, roles) in &doc.assignments {
            let ids = roles
                .iter()
                .map(|r| {
                    role_ids.get(r).copied().ok_or_else(|| {
                        BuildError::Roles(RbacError::UnknownAssignedRole {
                            subject: subject.clone(),
                            role: r.clone(),
                        })
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            assignments.insert(subject.clone(), ids);
        }
        Ok(PolicyEngine {
            index,
            role_ids,
            role_names,
            role_grants,
            role_permissions: effective,
            assignments,
        })
    }

    /// The server this engine decides for.
    pub fn server(&self) -> &ServerId {
        &self.index.server
    }

    /// The server-wide settings.
    pub fn policy(&self) -> &SecurityPolicy {
        &self.index.policy
    }

    /// A role's effective permissions (inheritance resolved).
    pub fn role_permissions(&self, role: &str) -> Option<&BTreeSet<Permission>> {
        self.role_permissions.get(role)
    }

    /// The permissions a call to `tool` requires (declared and
    /// operator-added), or `None` for an unknown tool.
    pub fn required_permissions(&self, tool: &ToolId) -> Option<Vec<Permission>> {
        self.index
            .tools
            .get(tool)
            .map(|t| t.permissions().cloned().collect())
    }

    /// The settings in force for calls to `tool`.
    pub fn effective_security(&self, tool: &ToolId) -> Option<EffectiveSecurity> {
        self.index.tools.get(tool).map(|t| t.security)
    }

    /// Decides a call. Every reason to deny is reported; an allow names the
    /// grants that satisfied the tool's permissions (`scope:file:read`,
    /// `role:admin`, or [`RULE_NO_PERMISSION_REQUIRED`]).
    pub fn decide(&self, req: &CallRequest<'_>) -> Decision {
        self.evaluate(req, None)
    }

    /// Decides a call and says why, check by check.
    pub fn explain(&self, req: &CallRequest<'_>) -> Explanation {
        let mut ex = Explanation {
            decision: Decision::deny(DenyReason::Internal {
                detail: "not evaluated".into(),
            }),
            tool: req.tool.clone(),
            depth: req.depth(),
            security: self.effective_security(req.tool),
            permissions: Vec::new(),
            hops: Vec::new(),
        };
        ex.decision = self.evaluate(req, Some(&mut ex));
        ex
    }

    /// The tools `principal` may call directly, in id order: what a
    /// filtered `tools/list` shows. Chain rules and request signing are not
    /// considered, since they depend on the call, not on the caller.
    pub fn visible_tools(&self, principal: &Principal) -> Vec<&ToolId> {
        let roles = self.roles_of(principal);
        self.index
            .order
            .iter()
            .filter(|id| {
                self.index.tools.get(*id).is_some_and(|t| {
                    t.requirements
                        .iter()
                        .all(|r| self.grant(principal, &roles, r).is_some())
                })
            })
            .collect()
    }

    /// True when `principal` may call `tool` directly (see
    /// [`PolicyEngine::visible_tools`]).
    pub fn is_visible(&self, principal: &Principal, tool: &ToolId) -> bool {
        let roles = self.roles_of(principal);
        self.index.tools.get(tool).is_some_and(|t| {
            t.requirements
                .iter()
                .all(|r| self.grant(principal, &roles, r).is_some())
        })
    }

    /// Role numbers of `p`: its own roles the policy defines, plus static
    /// assignments for its subject. Undefined role names grant nothing.
    fn roles_of(&self, p: &Principal) -> Vec<u32> {
        let assigned = self.assignments.get(&p.subject);
        let mut out = Vec::with_capacity(p.roles.len() + assigned.map_or(0, Vec::len));
        out.extend(p.roles.iter().filter_map(|r| self.role_ids.get(r).copied()));
        if let Some(a) = assigned {
            out.extend(a.iter().copied());
        }
        out
    }

    /// The first grant of `p` that covers `req`, scopes before roles.
    #[inline]
    fn grant<'p>(&self, p: &'p Principal, roles: &[u32], req: &Requirement) -> Option<Grant<'p>> {
        for (id, text) in &req.candidates {
            // A scope equal to a candidate is necessarily a valid permission
            // (candidates are), so scopes that do not parse never match.
            if let Some(s) = p.scopes.get(&**text) {
                return Some(Grant::Scope(s.as_str()));
            }
            for r in roles {
                if self
                    .role_grants
                    .get(*r as usize)
                    .is_some_and(|g| g.contains(*id))
                {
                    return Some(Grant::Role(*r));
                }
            }
        }
        None
    }

    fn grant_name(&self, g: Grant<'_>) -> String {
        match g {
            Grant::Scope(s) => format!("scope:{s}"),
            Grant::Role(r) => format!(
                "role:{}",
                self.role_names.get(r as usize).map_or("?", String::as_str)
            ),
        }
    }

    fn evaluate(&self, req: &CallRequest<'_>, mut ex: Option<&mut Explanation>) -> Decision {
        let Some(tool) = self.index.tools.get(req.tool) else {
            return Decision::deny(DenyReason::UnknownTool {
                name: req.tool.to_string(),
            });
        };
        let mut reasons = Vec::new();
        self.index.check_structure(tool, req, &mut reasons);

        // The current principal's rights.
        let roles = self.roles_of(req.principal);
        let mut missing: Vec<Permission> = Vec::new();
        let mut grants: Vec<Grant<'_>> = Vec::with_capacity(tool.requirements.len());
        for r in &tool.requirements {
            let g = self.grant(req.principal, &roles, r);
            match g {
                Some(g) => {
                    if !grants.contains(&g) {
                        grants.push(g);
                    }
                }
                None => missing.push(r.permission.clone()),
            }
            if let Some(ex) = ex.as_deref_mut() {
                ex.permissions.push(PermissionCheck {
                    permission: r.permission.clone(),
                    granted_by: g.map(|g| self.grant_name(g)),
                });
            }
        }
        if !missing.is_empty() {
            reasons.push(DenyReason::MissingPermissions {
                missing: missing.clone(),
            });
        }

        // The chain acts with the intersection of rights along it: every
        // hop's principal must hold what the tool requires. What the current
        // principal holds but a hop lacks is an escalation.
        let mut escalations: Vec<(&str, Vec<Permission>)> = Vec::new();
        for hp in req.hop_principals {
            let hop_roles = self.roles_of(hp);
            let lacking: Vec<Permission> = tool
                .requirements
                .iter()
                .filter(|r| self.grant(hp, &hop_roles, r).is_none())
                .map(|r| r.permission.clone())
                .collect();
            if let Some(ex) = ex.as_deref_mut() {
                ex.hops.push(HopCheck {
                    principal: hp.subject.clone(),
                    lacking: lacking.clone(),
                });
            }
            let escalated: Vec<Permission> = lacking
                .into_iter()
                .filter(|p| !missing.contains(p))
                .collect();
            if escalated.is_empty() {
                continue;
            }
            match escalations.iter_mut().find(|(s, _)| *s == hp.subject) {
                Some((_, perms)) => {
                    for p in escalated {
                        if !perms.contains(&p) {
                            perms.push(p);
                        }
                    }
                }
                None => escalations.push((hp.subject.as_str(), escalated)),
            }
        }
        for (principal, permissions) in escalations {
            reasons.push(DenyReason::PrivilegeEscalation {
                permissions,
                principal: principal.to_owned(),
            });
        }

        if !reasons.is_empty() {
            return Decision::deny_all(reasons);
        }
        if grants.is_empty() {
            return Decision::allow(RULE_NO_PERMISSION_REQUIRED);
        }
        let mut rule = String::with_capacity(32 * grants.len());
        for (i, g) in grants.into_iter().enumerate() {
            if i > 0 {
                rule.push_str(", ");
            }
            match g {
                Grant::Scope(s) => {
                    rule.push_str("scope:");
                    rule.push_str(s);
                }
                Grant::Role(r) => {
                    rule.push_str("role:");
                    rule.push_str(self.role_names.get(r as usize).map_or("?", String::as_str));
                }
            }
        }
        Decision::allow(rule)
    }
}

impl Authorizer for PolicyEngine {
    fn decide(&self, request: &CallRequest<'_>) -> Decision {
        PolicyEngine::decide(self, request)
    }

    fn visible_tools(&self, principal: &Principal) -> Vec<ToolId> {
        PolicyEngine::visible_tools(self, principal)
            .into_iter()
            .cloned()
            .collect()
    }

    fn effective_security(&self, tool: &ToolId) -> Option<EffectiveSecurity> {
        PolicyEngine::effective_security(self, tool)
    }
}
