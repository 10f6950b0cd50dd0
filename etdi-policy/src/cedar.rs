//! The optional Cedar engine (`cedar` feature): the same [`Authorizer`]
//! interface as the built-in engine, with the principal-to-tool question put
//! to Cedar policies. For teams that already write Cedar or use Amazon
//! Verified Permissions.
//!
//! The protocol's structural rules (request signing, depth, cycles,
//! caller/callee lists, per-tool overrides) are not policy: they run as the
//! same code as in the built-in engine, before Cedar is asked. The
//! intersection of rights along a chain holds too: Cedar is asked once for
//! the current principal and once for every hop principal; a hop principal
//! Cedar refuses while the current one is permitted is a
//! [`DenyReason::PrivilegeEscalation`].
//!
//! # The Cedar model
//!
//! | Cedar | ETDI |
//! |---|---|
//! | `Etdi::User::"<subject>"`, attribute `scopes: Set<String>`, parents: its roles | the principal; roles are [`Principal::roles`] plus static assignments |
//! | `Etdi::Role::"<name>"`, parents: the roles it inherits | a role (so `principal in Etdi::Role::"reader"` holds for an `editor` that inherits `reader`) |
//! | `Etdi::Action::"call"` | `tools/call` |
//! | `Etdi::Tool::"<id>"`, attributes `permissions: Set<String>`, `server: String` | the tool and its required permissions (declared + operator rules) |
//! | `context.depth: Long`, `context.chained: Bool`, `context.caller: String` (`""` when direct), `context.signed: Bool` | the call |
//!
//! A permit that names no permission lets the principal call the tool;
//! scopes are plain strings here, so wildcard matching is the policy
//! author's business ([`equivalent_policies`] writes it out).
//!
//! Cedar reports which policies decided, not which permission was missing:
//! a Cedar deny of the current principal is reported as
//! [`DenyReason::PolicyDenied`] naming the determining policies (empty when
//! no policy permitted the call). Any Cedar evaluation error denies ([`DenyReason::Internal`]),
//! unlike plain Cedar, which skips policies that error.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

use cedar_policy::{
    Authorizer as CedarAuthorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId,
    EntityTypeName, EntityUid, PolicySet, Request, RestrictedExpression,
};
use etdi_core::{Decision, DenyReason, Principal, ToolDefinition, ToolId};

use crate::document::PolicyDocument;
use crate::engine::EngineBuilder;
use crate::index::{CompiledTool, EffectiveSecurity, ToolIndex};
use crate::perms::{PermTable, candidates};
use crate::rbac;
use crate::request::CallRequest;
use crate::{Authorizer, BuildError};

/// The Cedar-backed engine. Build it with [`EngineBuilder::build_cedar`].
pub struct CedarEngine {
    index: ToolIndex,
    policies: PolicySet,
    authorizer: CedarAuthorizer,
    /// Role name → the role entity and every role it inherits, itself
    /// included.
    roles: HashMap<String, Vec<(String, Entity)>>,
    assignments: BTreeMap<String, BTreeSet<String>>,
    tools: HashMap<ToolId, Entity>,
    types: Types,
}

impl std::fmt::Debug for CedarEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarEngine")
            .field("server", &self.index.server)
            .field("tools", &self.index.order.len())
            .field("roles", &self.roles.len())
            .finish_non_exhaustive()
    }
}

struct Types {
    user: EntityTypeName,
    role: EntityTypeName,
    tool: EntityTypeName,
    action: EntityUid,
}

fn cedar_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Cedar(e.to_string())
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn string_set<'a, I: IntoIterator<Item = &'a str>>(items: I) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .into_iter()
            .map(|s| RestrictedExpression::new_string(s.to_owned())),
    )
}

impl CedarEngine {
    pub(crate) fn compile(b: EngineBuilder, policies: &str) -> Result<Self, BuildError> {
        let (server, doc, specs) = b.into_parts();
        let effective = rbac::resolve_roles(&doc.roles)?;
        rbac::check_assignments(&doc.roles, &doc.assignments)?;
        let mut table = PermTable::default();
        let index = ToolIndex::build(server, doc.security, &specs, &doc.tools, &mut table)?;
        let policies = PolicySet::from_str(policies).map_err(cedar_err)?;
        let types = Types {
            user: EntityTypeName::from_str("Etdi::User").map_err(cedar_err)?,
            role: EntityTypeName::from_str("Etdi::Role").map_err(cedar_err)?,
            tool: EntityTypeName::from_str("Etdi::Tool").map_err(cedar_err)?,
            action: EntityUid::from_str(r#"Etdi::Action::"call""#).map_err(cedar_err)?,
        };

        // Each role entity's parents are the roles it inherits; a request
        // carries the role closure of its principal.
        let role_entity = |name: &str| {
            let parents = doc
                .roles
                .get(name)
                .map(|r| r.inherits.iter().map(|p| uid(&types.role, p)).collect())
                .unwrap_or_default();
            Entity::new_no_attrs(uid(&types.role, name), parents)
        };
        let mut roles = HashMap::with_capacity(effective.len());
        for name in effective.keys() {
            let mut closure = vec![name.clone()];
            let mut seen: HashSet<String> = closure.iter().cloned().collect();
            let mut i = 0;
            while let Some(r) = closure.get(i).cloned() {
                for p in doc.roles.get(&r).map(|r| &r.inherits).into_iter().flatten() {
                    if seen.insert(p.clone()) {
                        closure.push(p.clone());
                    }
                }
                i += 1;
            }
            roles.insert(
                name.clone(),
                closure
                    .iter()
                    .map(|r| (r.clone(), role_entity(r)))
                    .collect::<Vec<_>>(),
            );
        }

        let mut tools = HashMap::with_capacity(index.tools.len());
        for (id, t) in &index.tools {
            let attrs = HashMap::from([
                (
                    "permissions".to_owned(),
                    string_set(t.permissions().map(|p| p.as_str())),
                ),
                (
                    "server".to_owned(),
                    RestrictedExpression::new_string(index.server.to_string()),
                ),
            ]);
            let e = Entity::new(uid(&types.tool, id.as_str()), attrs, HashSet::new())
                .map_err(cedar_err)?;
            tools.insert(id.clone(), e);
        }
        Ok(CedarEngine {
            index,
            policies,
            authorizer: CedarAuthorizer::new(),
            roles,
            assignments: doc.assignments,
            tools,
            types,
        })
    }

    /// The settings in force for calls to `tool`.
    pub fn effective_security(&self, tool: &ToolId) -> Option<EffectiveSecurity> {
        self.index.tools.get(tool).map(|t| t.security)
    }

    /// Asks Cedar whether `p` may call `tool` in this context. `Ok(Some(ids))`
    /// is a permit naming the deciding policies, `Ok(None)` a deny, `Err` an
    /// evaluation error.
    fn ask(
        &self,
        p: &Principal,
        tool: &CompiledTool,
        req: Option<&CallRequest<'_>>,
    ) -> Result<Result<Vec<String>, Vec<String>>, String> {
        let t = &self.types;
        let mut role_names: BTreeSet<&str> = p.roles.iter().map(String::as_str).collect();
        if let Some(a) = self.assignments.get(&p.subject) {
            role_names.extend(a.iter().map(String::as_str));
        }
        let mut entities: Vec<Entity> = Vec::with_capacity(role_names.len() * 2 + 2);
        let mut added: HashSet<&str> = HashSet::new();
        for r in &role_names {
            match self.roles.get(*r) {
                Some(closure) => {
                    for (name, e) in closure {
                        if added.insert(name.as_str()) {
                            entities.push(e.clone());
                        }
                    }
                }
                None => {
                    if added.insert(r) {
                        entities.push(Entity::new_no_attrs(uid(&t.role, r), HashSet::new()));
                    }
                }
            }
        }
        let user = uid(&t.user, &p.subject);
        let parents: HashSet<EntityUid> = role_names.iter().map(|r| uid(&t.role, r)).collect();
        let attrs = HashMap::from([(
            "scopes".to_owned(),
            string_set(p.scopes.iter().map(String::as_str)),
        )]);
        entities.push(Entity::new(user.clone(), attrs, parents).map_err(|e| e.to_string())?);
        let tool_entity = self
            .tools
            .get(&tool.id)
            .ok_or_else(|| "tool entity missing".to_owned())?;
        entities.push(tool_entity.clone());
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;

        let (depth, chained, caller, signed) = match req {
            Some(r) => (
                r.depth(),
                !r.chain.hops().is_empty(),
                r.chain
                    .last()
                    .map(|h| h.tool.to_string())
                    .unwrap_or_default(),
                r.signed,
            ),
            // Listing: a direct call whose signature is not in question.
            None => (1, false, String::new(), true),
        };
        let context = Context::from_pairs([
            (
                "depth".to_owned(),
                RestrictedExpression::new_long(i64::from(depth)),
            ),
            (
                "chained".to_owned(),
                RestrictedExpression::new_bool(chained),
            ),
            (
                "caller".to_owned(),
                RestrictedExpression::new_string(caller),
            ),
            ("signed".to_owned(), RestrictedExpression::new_bool(signed)),
        ])
        .map_err(|e| e.to_string())?;
        let request = Request::new(
            user,
            t.action.clone(),
            uid(&t.tool, tool.id.as_str()),
            context,
            None,
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let diagnostics = response.diagnostics();
        if let Some(e) = diagnostics.errors().next() {
            return Err(e.to_string());
        }
        // The determining policies: the permits on allow, the forbids on deny
        // (none when nothing permitted the call).
        let ids: Vec<String> = diagnostics
            .reason()
            .map(|id| {
                self.policies
                    .annotation(id, "id")
                    .map_or_else(|| id.to_string(), str::to_owned)
            })
            .collect();
        Ok(match response.decision() {
            CedarDecision::Allow => Ok(ids),
            CedarDecision::Deny => Err(ids),
        })
    }

    /// Decides a call (see the module documentation).
    pub fn decide(&self, req: &CallRequest<'_>) -> Decision {
        let Some(tool) = self.index.tools.get(req.tool) else {
            return Decision::deny(DenyReason::UnknownTool {
                name: req.tool.to_string(),
            });
        };
        let mut reasons = Vec::new();
        self.index.check_structure(tool, req, &mut reasons);
        let rule = match self.ask(req.principal, tool, Some(req)) {
            Err(detail) => {
                reasons.push(DenyReason::Internal {
                    detail: format!("cedar: {detail}"),
                });
                None
            }
            Ok(Err(policies)) => {
                reasons.push(DenyReason::PolicyDenied {
                    engine: "cedar".into(),
                    policies,
                });
                None
            }
            Ok(Ok(ids)) => Some(ids),
        };
        let mut refused: Vec<&str> = Vec::new();
        for hp in req.hop_principals {
            if refused.contains(&hp.subject.as_str()) {
                continue;
            }
            match self.ask(hp, tool, Some(req)) {
                Err(detail) => reasons.push(DenyReason::Internal {
                    detail: format!("cedar: {detail}"),
                }),
                Ok(Err(_)) if rule.is_some() => {
                    refused.push(hp.subject.as_str());
                    reasons.push(DenyReason::PrivilegeEscalation {
                        permissions: tool.permissions().cloned().collect(),
                        principal: hp.subject.clone(),
                    });
                }
                Ok(_) => {}
            }
        }
        match (rule, reasons.is_empty()) {
            (Some(ids), true) => {
                let mut r = String::from("cedar:");
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        r.push(',');
                    }
                    r.push_str(id);
                }
                Decision::allow(r)
            }
            _ => Decision::deny_all(reasons),
        }
    }

    /// The tools `principal` may call directly, in id order.
    pub fn visible_tools(&self, principal: &Principal) -> Vec<ToolId> {
        self.index
            .order
            .iter()
            .filter(|id| {
                self.index
                    .tools
                    .get(*id)
                    .is_some_and(|t| matches!(self.ask(principal, t, None), Ok(Ok(_))))
            })
            .cloned()
            .collect()
    }
}

impl Authorizer for CedarEngine {
    fn decide(&self, request: &CallRequest<'_>) -> Decision {
        CedarEngine::decide(self, request)
    }

    fn visible_tools(&self, principal: &Principal) -> Vec<ToolId> {
        CedarEngine::visible_tools(self, principal)
    }

    fn effective_security(&self, tool: &ToolId) -> Option<EffectiveSecurity> {
        CedarEngine::effective_security(self, tool)
    }
}

/// A Cedar string literal for `s`.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Cedar policies equivalent to `doc`'s permission rules for `tools`: one
/// `permit` per tool, whose condition is, for each required permission, "a
/// scope that covers it, or membership of a role that grants something that
/// covers it". Role inheritance and static assignments are carried by the
/// entity hierarchy the engine builds, so the policies name only the roles
/// that grant a permission directly.
///
/// The structural rules (depth, cycles, caller/callee, signing) need no
/// Cedar text: both engines run them as the same code.
pub fn equivalent_policies<'t, I>(doc: &PolicyDocument, tools: I) -> String
where
    I: IntoIterator<Item = &'t ToolDefinition>,
{
    let mut out = String::new();
    for tool in tools {
        let mut required = tool.permissions.clone();
        if let Some(rules) = doc.tools.get(&tool.id) {
            required.extend(rules.permissions.iter().cloned());
        }
        let _ = writeln!(out, "@id({})", lit(&format!("tool:{}", tool.id)));
        let _ = write!(
            out,
            "permit(principal, action == Etdi::Action::\"call\", resource == Etdi::Tool::{})",
            lit(tool.id.as_str())
        );
        let mut conds = Vec::with_capacity(required.len());
        for r in &required {
            let cands = candidates(r);
            let mut alts = vec![format!(
                "principal.scopes.containsAny([{}])",
                cands.iter().map(|c| lit(c)).collect::<Vec<_>>().join(", ")
            )];
            for (name, role) in &doc.roles {
                if role.permissions.iter().any(|g| g.covers(r)) {
                    alts.push(format!("principal in Etdi::Role::{}", lit(name)));
                }
            }
            conds.push(format!("({})", alts.join(" || ")));
        }
        if conds.is_empty() {
            out.push_str(";\n");
        } else {
            let _ = writeln!(out, "\nwhen {{ {} }};", conds.join(" && "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape() {
        assert_eq!(lit(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lit("é"), r#""\u{e9}""#);
    }
}
