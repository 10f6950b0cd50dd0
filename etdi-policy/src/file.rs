//! The TOML policy file format and its loader. Every error names the file,
//! the line and column, and the field.
//!
//! ```toml
//! # Server-wide settings (all optional; the level supplies the defaults).
//! security_level = "strict"          # basic | enhanced | strict | high
//! max_call_depth = 4
//! require_request_signing = true
//! blocked_callees = ["com.example/shell"]
//!
//! [roles.reader]
//! permissions = ["file:read"]
//!
//! [roles.editor]
//! permissions = ["file:write"]
//! inherits = ["reader"]
//!
//! [assignments]
//! "alice@example.com" = ["editor"]
//!
//! [tools."com.example/delete"]
//! permissions = ["file:delete"]      # added to the tool's own
//! max_call_depth = 1
//! require_request_signing = true
//! allowed_callers = []               # no tool may call it
//! ```
//!
//! Server-wide keys are those of etdi-core's [`SecurityPolicy`]:
//! `security_level`, `require_tool_signatures`, `require_request_signing`,
//! `enable_call_chain_validation`, `max_call_depth`, `audit_all_calls`,
//! `filter_tools_list`, `allowed_callers`, `blocked_callers`,
//! `allowed_callees`, `blocked_callees`. A key written explicitly wins over
//! the level's default in either direction. Unknown keys are errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use etdi_core::tool::MAX_CALL_DEPTH;
use etdi_core::{IdError, Permission, PermissionError, SecurityLevel, SecurityPolicy, ToolId};
use serde::Deserialize;
use toml::Spanned;

use crate::document::{PolicyDocument, ToolRules};
use crate::rbac::{self, RbacError, Role};

/// Largest policy file accepted, in bytes.
pub const MAX_POLICY_FILE_LEN: usize = 8 * 1024 * 1024;

/// Why a policy file was refused: where, which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFileError {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line (0 when the error is not tied to a place, e.g. I/O).
    pub line: usize,
    /// 1-based column in characters (0 when not tied to a place).
    pub column: usize,
    /// Dotted path of the offending field (`roles.admin.inherits[1]`), empty
    /// for a syntax error that precedes any field.
    pub field: String,
    /// What is wrong (boxed to keep the error small on the happy path).
    pub kind: Box<PolicyFileErrorKind>,
}

/// The kinds of [`PolicyFileError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// Larger than [`MAX_POLICY_FILE_LEN`].
    #[error("file is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the file.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Not valid TOML, or a value of the wrong type, a missing or an
    /// unknown key.
    #[error("{0}")]
    Syntax(String),
    /// A malformed permission.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// A malformed tool id.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A value outside its range or otherwise refused.
    #[error("{0}")]
    Invalid(String),
    /// Undefined role or an inheritance cycle.
    #[error(transparent)]
    Roles(#[from] RbacError),
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for PolicyFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    security_level: Option<Spanned<String>>,
    require_tool_signatures: Option<bool>,
    require_request_signing: Option<bool>,
    enable_call_chain_validation: Option<bool>,
    max_call_depth: Option<Spanned<i64>>,
    audit_all_calls: Option<bool>,
    filter_tools_list: Option<bool>,
    allowed_callers: Option<Vec<Spanned<String>>>,
    blocked_callers: Option<Vec<Spanned<String>>>,
    allowed_callees: Option<Vec<Spanned<String>>>,
    blocked_callees: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    roles: BTreeMap<String, Spanned<RawRole>>,
    #[serde(default)]
    assignments: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    tools: BTreeMap<String, Spanned<RawTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    // For people reading the file; not used in decisions.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    permissions: Vec<Spanned<String>>,
    #[serde(default)]
    inherits: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    #[serde(default)]
    permissions: Vec<Spanned<String>>,
    max_call_depth: Option<Spanned<i64>>,
    require_request_signing: Option<bool>,
    require_signature: Option<bool>,
    allowed_callers: Option<Vec<Spanned<String>>>,
    blocked_callers: Option<Vec<Spanned<String>>>,
    allowed_callees: Option<Vec<Spanned<String>>>,
    blocked_callees: Option<Vec<Spanned<String>>>,
}

/// Resolves byte offsets to lines and names errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        kind: impl Into<PolicyFileErrorKind>,
    ) -> PolicyFileError {
        let (line, column) = span.map_or((0, 0), |s| line_col(self.text, s.start));
        PolicyFileError {
            file: self.file.to_owned(),
            line,
            column,
            field: field.into(),
            kind: Box::new(kind.into()),
        }
    }

    fn permission(
        &self,
        field: String,
        s: &Spanned<String>,
    ) -> Result<Permission, PolicyFileError> {
        Permission::parse(s.get_ref()).map_err(|e| self.err(Some(s.span()), field, e))
    }

    fn permissions(
        &self,
        field: &str,
        list: &[Spanned<String>],
    ) -> Result<BTreeSet<Permission>, PolicyFileError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| self.permission(format!("{field}[{i}]"), s))
            .collect()
    }

    fn tool_ids(
        &self,
        field: &str,
        list: &[Spanned<String>],
    ) -> Result<BTreeSet<ToolId>, PolicyFileError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                ToolId::parse(s.get_ref())
                    .map_err(|e| self.err(Some(s.span()), format!("{field}[{i}]"), e))
            })
            .collect()
    }

    fn opt_tool_ids(
        &self,
        field: &str,
        list: Option<&Vec<Spanned<String>>>,
    ) -> Result<Option<BTreeSet<ToolId>>, PolicyFileError> {
        list.map(|l| self.tool_ids(field, l)).transpose()
    }

    fn depth(&self, field: &str, d: &Spanned<i64>) -> Result<u32, PolicyFileError> {
        match u32::try_from(*d.get_ref()) {
            Ok(v) if (1..=MAX_CALL_DEPTH).contains(&v) => Ok(v),
            _ => Err(self.err(
                Some(d.span()),
                field,
                PolicyFileErrorKind::Invalid(format!(
                    "must be between 1 and {MAX_CALL_DEPTH}, got {}",
                    d.get_ref()
                )),
            )),
        }
    }
}

/// 1-based line and character column of byte offset `at` in `text`.
/// Public so other TOML configuration readers (the `etdi proxy` config)
/// report positions exactly as policy files do.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.as_bytes().get(..at).unwrap_or_default();
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A serde path as the dotted field name users write (`tools.x[0].y`),
/// skipping the span wrapper's internal names. Public for the same reason
/// as [`line_col`].
pub fn field_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                // Internal names of the span wrapper are not user fields.
                if key.starts_with("$__") {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                if key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            Segment::Unknown => {}
        }
    }
    out
}

impl PolicyDocument {
    /// Parses a TOML policy; `file` names the source in errors.
    ///
    /// Never panics, whatever the input.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, PolicyFileError> {
        let ctx = Ctx { file, text };
        if text.len() > MAX_POLICY_FILE_LEN {
            return Err(ctx.err(
                None,
                "",
                PolicyFileErrorKind::TooLarge {
                    len: text.len(),
                    limit: MAX_POLICY_FILE_LEN,
                },
            ));
        }
        let de = toml::Deserializer::parse(text).map_err(|e| {
            ctx.err(
                e.span(),
                "",
                PolicyFileErrorKind::Syntax(e.message().into()),
            )
        })?;
        let raw: RawFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = field_of(e.path());
            let inner = e.into_inner();
            ctx.err(
                inner.span(),
                field,
                PolicyFileErrorKind::Syntax(inner.message().into()),
            )
        })?;
        raw.compile(&ctx)
    }

    /// Reads and parses a TOML policy file. The only I/O in this crate.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self, PolicyFileError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyFileError {
            file: name.clone(),
            line: 0,
            column: 0,
            field: String::new(),
            kind: Box::new(PolicyFileErrorKind::Io(e.to_string())),
        })?;
        Self::from_toml(&text, &name)
    }
}

impl RawFile {
    fn compile(self, ctx: &Ctx<'_>) -> Result<PolicyDocument, PolicyFileError> {
        let level = match &self.security_level {
            Some(s) => s.get_ref().parse::<SecurityLevel>().map_err(|e| {
                ctx.err(
                    Some(s.span()),
                    "security_level",
                    PolicyFileErrorKind::Invalid(e.to_string()),
                )
            })?,
            None => SecurityLevel::default(),
        };
        let mut security = SecurityPolicy::new(level);
        if let Some(v) = self.require_tool_signatures {
            security.require_tool_signatures = v;
        }
        if let Some(v) = self.require_request_signing {
            security.require_request_signing = v;
        }
        if let Some(v) = self.enable_call_chain_validation {
            security.enable_call_chain_validation = v;
        }
        if let Some(d) = &self.max_call_depth {
            security.max_call_depth = ctx.depth("max_call_depth", d)?;
        }
        if let Some(v) = self.audit_all_calls {
            security.audit_all_calls = v;
        }
        if let Some(v) = self.filter_tools_list {
            security.filter_tools_list = v;
        }
        security.allowed_callers =
            ctx.opt_tool_ids("allowed_callers", self.allowed_callers.as_ref())?;
        security.blocked_callers = ctx
            .opt_tool_ids("blocked_callers", self.blocked_callers.as_ref())?
            .unwrap_or_default();
        security.allowed_callees =
            ctx.opt_tool_ids("allowed_callees", self.allowed_callees.as_ref())?;
        security.blocked_callees = ctx
            .opt_tool_ids("blocked_callees", self.blocked_callees.as_ref())?
            .unwrap_or_default();

        let mut roles = BTreeMap::new();
        for (name, raw) in &self.roles {
            let field = format!("roles.{name}");
            let raw = raw.get_ref();
            let permissions = ctx.permissions(&format!("{field}.permissions"), &raw.permissions)?;
            let mut inherits = BTreeSet::new();
            for (i, r) in raw.inherits.iter().enumerate() {
                if !self.roles.contains_key(r.get_ref()) {
                    return Err(ctx.err(
                        Some(r.span()),
                        format!("{field}.inherits[{i}]"),
                        RbacError::UnknownInheritedRole {
                            role: name.clone(),
                            inherits: r.get_ref().clone(),
                        },
                    ));
                }
                inherits.insert(r.get_ref().clone());
            }
            roles.insert(
                name.clone(),
                Role {
                    permissions,
                    inherits,
                },
            );
        }
        if let Err(e) = rbac::resolve_roles(&roles) {
            // Point at the first role of the cycle, at its `inherits` entry
            // that continues the cycle.
            let (span, field) = match &e {
                RbacError::InheritanceCycle { cycle } => {
                    let from = cycle.first().cloned().unwrap_or_default();
                    let to = cycle.get(1).cloned().unwrap_or_default();
                    match self.roles.get(&from) {
                        Some(r) => match r
                            .get_ref()
                            .inherits
                            .iter()
                            .enumerate()
                            .find(|(_, s)| s.get_ref() == &to)
                        {
                            Some((i, s)) => (Some(s.span()), format!("roles.{from}.inherits[{i}]")),
                            None => (Some(r.span()), format!("roles.{from}")),
                        },
                        None => (None, "roles".to_owned()),
                    }
                }
                _ => (None, "roles".to_owned()),
            };
            return Err(ctx.err(span, field, e));
        }

        let mut assignments = BTreeMap::new();
        for (subject, list) in &self.assignments {
            let mut set = BTreeSet::new();
            for (i, r) in list.get_ref().iter().enumerate() {
                if !roles.contains_key(r.get_ref()) {
                    return Err(ctx.err(
                        Some(r.span()),
                        format!("assignments.{}[{i}]", quote_key(subject)),
                        RbacError::UnknownAssignedRole {
                            subject: subject.clone(),
                            role: r.get_ref().clone(),
                        },
                    ));
                }
                set.insert(r.get_ref().clone());
            }
            assignments.insert(subject.clone(), set);
        }

        let mut tools = BTreeMap::new();
        for (id, raw) in &self.tools {
            let field = format!("tools.{}", quote_key(id));
            let tool =
                ToolId::parse(id).map_err(|e| ctx.err(Some(raw.span()), field.clone(), e))?;
            let raw = raw.get_ref();
            let f = |name: &str| format!("{field}.{name}");
            let rules = ToolRules {
                permissions: ctx.permissions(&f("permissions"), &raw.permissions)?,
                max_call_depth: raw
                    .max_call_depth
                    .as_ref()
                    .map(|d| ctx.depth(&f("max_call_depth"), d))
                    .transpose()?,
                require_request_signing: raw.require_request_signing.unwrap_or(false),
                require_signature: raw.require_signature.unwrap_or(false),
                allowed_callers: ctx
                    .opt_tool_ids(&f("allowed_callers"), raw.allowed_callers.as_ref())?,
                blocked_callers: ctx
                    .opt_tool_ids(&f("blocked_callers"), raw.blocked_callers.as_ref())?
                    .unwrap_or_default(),
                allowed_callees: ctx
                    .opt_tool_ids(&f("allowed_callees"), raw.allowed_callees.as_ref())?,
                blocked_callees: ctx
                    .opt_tool_ids(&f("blocked_callees"), raw.blocked_callees.as_ref())?
                    .unwrap_or_default(),
            };
            tools.insert(tool, rules);
        }

        Ok(PolicyDocument {
            security,
            roles,
            assignments,
            tools,
        })
    }
}

/// A table key as written in a dotted field path: bare when it can be.
fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("éa", 2), (1, 2));
        assert_eq!(line_col("abc", 99), (1, 4));
    }
}
