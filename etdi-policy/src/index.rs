//! The compiled, per-tool index both engines share: each tool's effective
//! requirements (definition and operator rules merged, only tightening) and
//! the structural checks every call goes through: request signing, depth,
//! cycles, allowed/blocked callers and callees.
//!
//! These checks are ETDI protocol rules, not authorization policy, so the
//! built-in and the Cedar engine run exactly this code for them.

use std::collections::{BTreeSet, HashMap};

use etdi_core::tool::MAX_CALL_DEPTH;
use etdi_core::{
    CallChainConstraints, DenyReason, Permission, SecurityPolicy, ServerId, ToolDefinition, ToolId,
    ToolSecurity,
};

use serde::Serialize;

use crate::BuildError;
use crate::document::ToolRules;
use crate::perms::{PermTable, candidates};
use crate::request::CallRequest;

/// The settings in force for calls to one tool, after per-tool overrides.
///
/// Per-tool settings only tighten: booleans are the policy's value OR the
/// tool's, the depth limit is the minimum of every applicable limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EffectiveSecurity {
    /// Clients must verify the tool's attestation.
    pub require_signature: bool,
    /// Unsigned calls to the tool are refused.
    pub require_request_signing: bool,
    /// The policy's chain rules (depth, cycles, policy caller/callee lists)
    /// apply. The tool's own chain constraints apply regardless.
    pub chain_validation: bool,
    /// Longest accepted depth for a call to this tool (hops + 1).
    pub max_call_depth: u32,
    /// Allowed calls are audited too.
    pub audit_all_calls: bool,
}

/// One required permission and the grant strings that cover it.
#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    pub(crate) permission: Permission,
    /// `(interned id, text)` of every covering grant, the exact one first.
    pub(crate) candidates: Vec<(u32, Box<str>)>,
}

/// A tool as the engines see it.
#[derive(Debug, Clone)]
pub(crate) struct CompiledTool {
    pub(crate) id: ToolId,
    pub(crate) requirements: Vec<Requirement>,
    pub(crate) security: EffectiveSecurity,
    allowed_callers: Option<BTreeSet<ToolId>>,
    blocked_callers: BTreeSet<ToolId>,
    allowed_callees: Option<BTreeSet<ToolId>>,
    blocked_callees: BTreeSet<ToolId>,
}

impl CompiledTool {
    /// The permissions required, declared and operator-added.
    pub(crate) fn permissions(&self) -> impl Iterator<Item = &Permission> {
        self.requirements.iter().map(|r| &r.permission)
    }
}

/// What the index keeps of a tool definition.
#[derive(Debug, Clone)]
pub(crate) struct ToolSpec {
    pub(crate) id: ToolId,
    pub(crate) permissions: BTreeSet<Permission>,
    pub(crate) call_chain: CallChainConstraints,
    pub(crate) security: ToolSecurity,
}

impl From<&ToolDefinition> for ToolSpec {
    fn from(d: &ToolDefinition) -> Self {
        ToolSpec {
            id: d.id.clone(),
            permissions: d.permissions.clone(),
            call_chain: d.call_chain.clone(),
            security: d.security,
        }
    }
}

/// Every tool of the server, indexed by id.
#[derive(Debug, Clone)]
pub(crate) struct ToolIndex {
    pub(crate) server: ServerId,
    pub(crate) policy: SecurityPolicy,
    pub(crate) tools: HashMap<ToolId, CompiledTool>,
    /// Tool ids in order, for listing.
    pub(crate) order: Vec<ToolId>,
}

fn intersect(
    a: Option<&BTreeSet<ToolId>>,
    b: Option<&BTreeSet<ToolId>>,
) -> Option<BTreeSet<ToolId>> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (Some(x), Some(y)) => Some(x.intersection(y).cloned().collect()),
    }
}

fn check_depth(field: String, d: u32) -> Result<u32, BuildError> {
    if d == 0 || d > MAX_CALL_DEPTH {
        return Err(BuildError::InvalidDepth { field, value: d });
    }
    Ok(d)
}

impl ToolIndex {
    pub(crate) fn build(
        server: ServerId,
        policy: SecurityPolicy,
        specs: &[ToolSpec],
        rules: &std::collections::BTreeMap<ToolId, ToolRules>,
        table: &mut PermTable,
    ) -> Result<Self, BuildError> {
        check_depth("max_call_depth".into(), policy.max_call_depth)?;
        let none = ToolRules::default();
        let mut tools = HashMap::with_capacity(specs.len());
        for spec in specs {
            let r = rules.get(&spec.id).unwrap_or(&none);
            let mut required: BTreeSet<Permission> = spec.permissions.clone();
            required.extend(r.permissions.iter().cloned());
            let requirements = required
                .into_iter()
                .map(|permission| {
                    let candidates = candidates(&permission)
                        .into_iter()
                        .map(|c| (table.intern(&c), c.into_boxed_str()))
                        .collect();
                    Requirement {
                        permission,
                        candidates,
                    }
                })
                .collect();
            let def_depth = spec
                .call_chain
                .max_depth
                .map(|d| check_depth(format!("{}: callChain.maxDepth", spec.id), d))
                .transpose()?;
            let rule_depth = r
                .max_call_depth
                .map(|d| check_depth(format!("tools.{}.max_call_depth", spec.id), d))
                .transpose()?;
            let tool_max_depth = match (def_depth, rule_depth) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut max_call_depth = tool_max_depth.unwrap_or(MAX_CALL_DEPTH);
            if policy.enable_call_chain_validation {
                max_call_depth = max_call_depth.min(policy.max_call_depth);
            }
            let security = EffectiveSecurity {
                require_signature: policy.require_tool_signatures
                    || spec.security.require_signature
                    || r.require_signature,
                require_request_signing: policy.require_request_signing
                    || spec.security.require_request_signing
                    || r.require_request_signing,
                chain_validation: policy.enable_call_chain_validation,
                max_call_depth,
                audit_all_calls: policy.audit_all_calls,
            };
            let c = &spec.call_chain;
            let tool = CompiledTool {
                id: spec.id.clone(),
                requirements,
                security,
                allowed_callers: intersect(c.allowed_callers.as_ref(), r.allowed_callers.as_ref()),
                blocked_callers: c
                    .blocked_callers
                    .union(&r.blocked_callers)
                    .cloned()
                    .collect(),
                allowed_callees: intersect(c.allowed_callees.as_ref(), r.allowed_callees.as_ref()),
                blocked_callees: c
                    .blocked_callees
                    .union(&r.blocked_callees)
                    .cloned()
                    .collect(),
            };
            if tools.insert(spec.id.clone(), tool).is_some() {
                return Err(BuildError::DuplicateTool {
                    tool: spec.id.clone(),
                });
            }
        }
        let mut order: Vec<ToolId> = tools.keys().cloned().collect();
        order.sort();
        Ok(ToolIndex {
            server,
            policy,
            tools,
            order,
        })
    }

    /// Appends every structural reason to deny `req` for `tool`.
    pub(crate) fn check_structure(
        &self,
        tool: &CompiledTool,
        req: &CallRequest<'_>,
        reasons: &mut Vec<DenyReason>,
    ) {
        let policy = &self.policy;
        let validate = policy.enable_call_chain_validation;
        let hops = req.chain.hops();

        if tool.security.require_request_signing && !req.signed {
            reasons.push(DenyReason::RequestSignatureRequired);
        }

        // The rights of every hop must be supplied, one per hop, for the
        // same subjects the chain names.
        if req.hop_principals.len() != hops.len() {
            reasons.push(DenyReason::Internal {
                detail: format!(
                    "chain has {} hops but rights for {} hop principals were supplied",
                    hops.len(),
                    req.hop_principals.len()
                ),
            });
        } else if let Some((i, h)) = hops
            .iter()
            .zip(req.hop_principals)
            .enumerate()
            .find_map(|(i, (h, p))| (h.principal != p.subject).then_some((i, h)))
        {
            reasons.push(DenyReason::Internal {
                detail: format!(
                    "rights supplied for hop {i} are not those of its principal `{}`",
                    h.principal
                ),
            });
        }

        let depth = req.depth();
        if depth > tool.security.max_call_depth {
            reasons.push(DenyReason::CallDepthExceeded {
                depth,
                max: tool.security.max_call_depth,
            });
        }

        if validate {
            if req.chain.would_cycle(&self.server, &tool.id) {
                reasons.push(DenyReason::CallCycle {
                    tool: tool.id.clone(),
                });
            } else if let Some(h) = req.chain.first_repeat() {
                reasons.push(DenyReason::CallCycle {
                    tool: h.tool.clone(),
                });
            }
        }

        let Some(last) = req.chain.last() else {
            return;
        };
        let caller = &last.tool;
        let callee = &tool.id;
        let pair = || (caller.clone(), callee.clone());
        let mut push = |r: DenyReason| {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        };

        // The callee's rules about who may call it.
        let mut caller_rule = |blocked: &BTreeSet<ToolId>, allowed: Option<&BTreeSet<ToolId>>| {
            if blocked.contains(caller) {
                let (caller, callee) = pair();
                push(DenyReason::CallerBlocked { caller, callee });
            } else if allowed.is_some_and(|a| !a.contains(caller)) {
                let (caller, callee) = pair();
                push(DenyReason::CallerNotAllowed { caller, callee });
            }
        };
        caller_rule(&tool.blocked_callers, tool.allowed_callers.as_ref());
        if validate {
            caller_rule(&policy.blocked_callers, policy.allowed_callers.as_ref());
        }

        // The caller's rules about what it may call.
        let mut callee_rule = |blocked: &BTreeSet<ToolId>, allowed: Option<&BTreeSet<ToolId>>| {
            if blocked.contains(callee) {
                let (caller, callee) = pair();
                push(DenyReason::CalleeBlocked { caller, callee });
            } else if allowed.is_some_and(|a| !a.contains(callee)) {
                let (caller, callee) = pair();
                push(DenyReason::CalleeNotAllowed { caller, callee });
            }
        };
        if last.server == self.server
            && let Some(c) = self.tools.get(caller)
        {
            callee_rule(&c.blocked_callees, c.allowed_callees.as_ref());
        }
        if validate {
            callee_rule(&policy.blocked_callees, policy.allowed_callees.as_ref());
        }
    }
}
