//! Explanations: a decision together with the outcome of each check, for
//! operators and for `etdi` tooling that shows why a call was refused.

use etdi_core::{Decision, Permission, ToolId};
use serde::Serialize;

use crate::index::EffectiveSecurity;

/// A decision and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The decision, identical to what `decide` returns.
    pub decision: Decision,
    /// The tool called.
    pub tool: ToolId,
    /// Depth of the call (hops + 1).
    pub depth: u32,
    /// The settings in force for the tool (`None` when it is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<EffectiveSecurity>,
    /// Each required permission and the grant of the current principal
    /// that covered it, if any.
    pub permissions: Vec<PermissionCheck>,
    /// For a chained call, what each hop's principal lacks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<HopCheck>,
}

/// One required permission of the tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionCheck {
    /// The permission required.
    pub permission: Permission,
    /// The grant that covered it (`scope:file:*`, `role:admin`), if any.
    pub granted_by: Option<String>,
}

/// The rights of one hop's principal against the tool's requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopCheck {
    /// The hop principal's subject.
    pub principal: String,
    /// Required permissions that principal does not hold.
    pub lacking: Vec<Permission>,
}
