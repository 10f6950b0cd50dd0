//! The ETDI tool definition: everything a model or a user sees or relies on,
//! parsed into typed values, with its canonical form and digest.
//!
//! Parsing is strict (unknown fields, duplicate keys and malformed values are
//! refused with the JSON path of the field), and the canonical form is taken
//! from the typed value, so whitespace, member order, permission order and
//! `null` versus absent never change the digest.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::{self, CanonicalError, Digest, JsonError};
use crate::id::{IdError, ProviderId, ToolId, ToolName, ToolVersion};
use crate::permission::{Permission, PermissionError};

/// Most permissions one tool may declare.
pub const MAX_PERMISSIONS: usize = 64;
/// Most entries in each caller/callee list.
pub const MAX_CHAIN_RULE_ENTRIES: usize = 256;
/// Largest accepted `maxDepth` (and the protocol's hard cap on chain length).
pub const MAX_CALL_DEPTH: u32 = 32;
/// Longest title or provider name, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 64 * 1024;

/// The provider that publishes a tool and signs its attestations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Stable identifier, e.g. `com.example`.
    pub id: ProviderId,
    /// Display name.
    pub name: String,
    /// Optional home page (`https://` or `http://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Caller/callee constraints a tool places on call chains through it.
///
/// `None` for an allow-list means "no restriction"; `Some(empty)` means
/// "nobody". Block lists win over allow lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallChainConstraints {
    /// Longest chain (in hops, this tool's included) this tool accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// Tools allowed to call this tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_callers: Option<BTreeSet<ToolId>>,
    /// Tools never allowed to call this tool.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub blocked_callers: BTreeSet<ToolId>,
    /// Tools this tool may call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_callees: Option<BTreeSet<ToolId>>,
    /// Tools this tool may never call.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub blocked_callees: BTreeSet<ToolId>,
}

impl CallChainConstraints {
    /// True when no constraint is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Per-tool security overrides (the seed's `etdi_require_signature` and
/// friends). They only tighten the server's policy: `true` forces the check
/// on, `false` means "as the policy says". The seed's `etdi_max_call_depth`
/// is [`CallChainConstraints::max_depth`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSecurity {
    /// Clients must refuse this tool unless its attestation verifies.
    #[serde(skip_serializing_if = "is_false")]
    pub require_signature: bool,
    /// Servers must refuse calls to this tool that are not signed.
    #[serde(skip_serializing_if = "is_false")]
    pub require_request_signing: bool,
}

impl ToolSecurity {
    /// True when no override is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A tool definition as ETDI signs, pins and approves it.
///
/// The JSON form (camelCase, MCP names for the MCP fields) is in
/// docs/PROTOCOL.md §2. Build one with [`ToolDefinition::from_json`] or
/// [`ToolDefinition::from_value`] from untrusted input, or with struct
/// literal syntax in code (fields are public; the canonical form is computed
/// from whatever the struct holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDefinition {
    /// Stable id, unchanged across renames and versions.
    pub id: ToolId,
    /// The MCP tool name.
    pub name: ToolName,
    /// Optional human title (MCP `title`); empty is the same as absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Semantic version; a given `(id, version)` never changes content.
    pub version: ToolVersion,
    /// The description the model reads (MCP `description`; absent is `""`).
    pub description: String,
    /// Who publishes the tool.
    pub provider: Provider,
    /// JSON Schema of the arguments (MCP `inputSchema`, `type: object`).
    pub input_schema: Map<String, Value>,
    /// JSON Schema of structured results (MCP `outputSchema`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Map<String, Value>>,
    /// MCP tool annotations (hints such as `readOnlyHint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    /// MCP icons, as advertised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icons: Option<Vec<Value>>,
    /// Permissions the tool needs; a set, so order never matters.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub permissions: BTreeSet<Permission>,
    /// Caller/callee and depth constraints.
    #[serde(skip_serializing_if = "CallChainConstraints::is_empty")]
    pub call_chain: CallChainConstraints,
    /// Per-tool overrides that tighten the policy.
    #[serde(skip_serializing_if = "ToolSecurity::is_empty")]
    pub security: ToolSecurity,
}

/// Why a tool definition was refused: the JSON path of the field and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// JSON path of the offending field (`permissions[1]`, `provider.id`), or
    /// `.` for the document as a whole.
    pub field: String,
    /// What is wrong.
    pub kind: DefinitionErrorKind,
}

/// The kinds of [`DefinitionError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionErrorKind {
    /// Not acceptable JSON (syntax, duplicates, size, depth).
    #[error(transparent)]
    Json(#[from] JsonError),
    /// Wrong type, missing or unknown field.
    #[error("{0}")]
    Shape(String),
    /// An id, name or version is malformed.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A permission string is malformed.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// A value breaks a rule of the definition format (schema type, limits,
    /// URL scheme, control characters).
    #[error("{0}")]
    Invalid(String),
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tool definition field `{}`: {}", self.field, self.kind)
    }
}

impl std::error::Error for DefinitionError {}

impl DefinitionError {
    fn at(field: impl Into<String>, kind: impl Into<DefinitionErrorKind>) -> Self {
        DefinitionError {
            field: field.into(),
            kind: kind.into(),
        }
    }

    fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::at(field, DefinitionErrorKind::Invalid(msg.into()))
    }
}

/// The untyped shape of a definition, as it comes off the wire.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDefinition {
    id: String,
    name: String,
    #[serde(default)]
    title: Option<String>,
    version: String,
    #[serde(default)]
    description: Option<String>,
    provider: RawProvider,
    input_schema: Map<String, Value>,
    #[serde(default)]
    output_schema: Option<Map<String, Value>>,
    #[serde(default)]
    annotations: Option<Map<String, Value>>,
    #[serde(default)]
    icons: Option<Vec<Value>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    call_chain: Option<RawChain>,
    #[serde(default)]
    security: Option<RawSecurity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: String,
    name: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawChain {
    #[serde(default)]
    max_depth: Option<u32>,
    #[serde(default)]
    allowed_callers: Option<Vec<String>>,
    #[serde(default)]
    blocked_callers: Option<Vec<String>>,
    #[serde(default)]
    allowed_callees: Option<Vec<String>>,
    #[serde(default)]
    blocked_callees: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSecurity {
    #[serde(default)]
    require_signature: Option<bool>,
    #[serde(default)]
    require_request_signing: Option<bool>,
}

impl ToolDefinition {
    /// Parses a definition from untrusted JSON text (strict; see module docs).
    pub fn from_json(text: &str) -> Result<Self, DefinitionError> {
        let value = canonical::parse_json(text).map_err(|e| DefinitionError::at(".", e))?;
        Self::from_value(value)
    }

    /// Parses a definition from an already-parsed JSON value.
    ///
    /// Prefer [`ToolDefinition::from_json`] for text: it also refuses
    /// duplicate member names, which a `Value` can no longer show.
    pub fn from_value(value: Value) -> Result<Self, DefinitionError> {
        let raw: RawDefinition = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            DefinitionError::at(path, DefinitionErrorKind::Shape(e.into_inner().to_string()))
        })?;
        raw.validate()
    }

    /// The RFC 8785 canonical JSON bytes of this definition: the exact bytes
    /// whose SHA-256 is [`ToolDefinition::digest`].
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        // The typed writer skips building a `serde_json::Value` of the whole
        // definition (most of the digest's cost). It produces the same bytes
        // as `canonical_json(self)`, which a differential proptest checks,
        // and falls back to it for documents it does not handle (numbers
        // that need ECMAScript formatting).
        let mut out = String::with_capacity(512);
        match self.write_canonical(&mut out) {
            Some(()) => Ok(out.into_bytes()),
            None => canonical::canonical_json(self),
        }
    }

    /// Writes the JCS form of this definition: members in UTF-16 order
    /// (all names are ASCII, so byte order), optional members omitted exactly
    /// as the `Serialize` impl omits them. `None` means "use the generic path".
    fn write_canonical(&self, out: &mut String) -> Option<()> {
        use canonical::fast::{write_object, write_string, write_value};
        let mut first = true;
        let mut key = |out: &mut String, name: &str| {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
        };
        let strings = |out: &mut String, items: &mut dyn Iterator<Item = &str>| {
            out.push('[');
            for (i, s) in items.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, s);
            }
            out.push(']');
        };
        if let Some(a) = &self.annotations {
            key(out, "annotations");
            write_object(out, a)?;
        }
        if !self.call_chain.is_empty() {
            key(out, "callChain");
            let c = &self.call_chain;
            let mut inner = true;
            let mut k = |out: &mut String, name: &str| {
                out.push(if inner { '{' } else { ',' });
                inner = false;
                out.push('"');
                out.push_str(name);
                out.push_str("\":");
            };
            if let Some(l) = &c.allowed_callees {
                k(out, "allowedCallees");
                strings(out, &mut l.iter().map(ToolId::as_str));
            }
            if let Some(l) = &c.allowed_callers {
                k(out, "allowedCallers");
                strings(out, &mut l.iter().map(ToolId::as_str));
            }
            if !c.blocked_callees.is_empty() {
                k(out, "blockedCallees");
                strings(out, &mut c.blocked_callees.iter().map(ToolId::as_str));
            }
            if !c.blocked_callers.is_empty() {
                k(out, "blockedCallers");
                strings(out, &mut c.blocked_callers.iter().map(ToolId::as_str));
            }
            if let Some(d) = c.max_depth {
                k(out, "maxDepth");
                out.push_str(&d.to_string());
            }
            out.push('}');
        }
        key(out, "description");
        write_string(out, &self.description);
        if let Some(icons) = &self.icons {
            key(out, "icons");
            out.push('[');
            for (i, v) in icons.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, v)?;
            }
            out.push(']');
        }
        key(out, "id");
        write_string(out, self.id.as_str());
        key(out, "inputSchema");
        write_object(out, &self.input_schema)?;
        key(out, "name");
        write_string(out, self.name.as_str());
        if let Some(o) = &self.output_schema {
            key(out, "outputSchema");
            write_object(out, o)?;
        }
        if !self.permissions.is_empty() {
            key(out, "permissions");
            strings(out, &mut self.permissions.iter().map(Permission::as_str));
        }
        key(out, "provider");
        out.push_str("{\"id\":");
        write_string(out, self.provider.id.as_str());
        out.push_str(",\"name\":");
        write_string(out, &self.provider.name);
        if let Some(u) = &self.provider.url {
            out.push_str(",\"url\":");
            write_string(out, u);
        }
        out.push('}');
        if !self.security.is_empty() {
            key(out, "security");
            let s = &self.security;
            match (s.require_request_signing, s.require_signature) {
                (true, true) => {
                    out.push_str("{\"requireRequestSigning\":true,\"requireSignature\":true}")
                }
                (true, false) => out.push_str("{\"requireRequestSigning\":true}"),
                (false, true) => out.push_str("{\"requireSignature\":true}"),
                // INVARIANT: `is_empty` is false, so one flag is set.
                (false, false) => return None,
            }
        }
        if let Some(t) = &self.title {
            key(out, "title");
            write_string(out, t);
        }
        key(out, "version");
        write_string(out, self.version.as_str());
        out.push('}');
        Some(())
    }

    /// The definition digest: SHA-256 over [`ToolDefinition::canonical_bytes`].
    /// This is the only digest of a tool that ETDI uses anywhere.
    pub fn digest(&self) -> Result<Digest, CanonicalError> {
        // Every attestation check recomputes this digest: write into a
        // per-thread buffer rather than allocate one each time.
        thread_local! {
            static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        /// Buffers grown past this are dropped after use, not kept.
        const KEEP_BYTES: usize = 64 * 1024;
        let fast = BUF
            .try_with(|buf| {
                let mut buf = buf.try_borrow_mut().ok()?;
                buf.clear();
                let digest = self
                    .write_canonical(&mut buf)
                    .map(|()| Digest::of(buf.as_bytes()));
                if buf.capacity() > KEEP_BYTES {
                    *buf = String::new();
                }
                digest
            })
            .ok()
            .flatten();
        match fast {
            Some(digest) => Ok(digest),
            // Documents the typed writer does not handle (and a thread being
            // torn down) take the general path.
            None => self.canonical_bytes().map(|b| Digest::of(&b)),
        }
    }
}

impl RawDefinition {
    fn validate(self) -> Result<ToolDefinition, DefinitionError> {
        let id = ToolId::parse(&self.id).map_err(|e| DefinitionError::at("id", e))?;
        let name = ToolName::parse(&self.name).map_err(|e| DefinitionError::at("name", e))?;
        let version =
            ToolVersion::parse(&self.version).map_err(|e| DefinitionError::at("version", e))?;
        let title = match self.title {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(label("title", t)?),
            None => None,
        };
        let description = self.description.unwrap_or_default();
        if description.len() > MAX_DESCRIPTION_LEN {
            return Err(DefinitionError::invalid(
                "description",
                format!(
                    "description is {} bytes, more than the limit of {MAX_DESCRIPTION_LEN}",
                    description.len()
                ),
            ));
        }
        let provider = Provider {
            id: ProviderId::parse(&self.provider.id)
                .map_err(|e| DefinitionError::at("provider.id", e))?,
            name: label("provider.name", self.provider.name)?,
            url: match self.provider.url {
                Some(u) => Some(url("provider.url", u)?),
                None => None,
            },
        };
        object_schema("inputSchema", &self.input_schema)?;
        if let Some(s) = &self.output_schema {
            object_schema("outputSchema", s)?;
        }
        // Parse, don't validate: a number without a canonical form (one
        // its RFC 8785 text reads back as another number, docs/PROTOCOL.md
        // §3) is refused here, naming the field, not when the definition is
        // first digested.
        let numbers = |field: &str, map: &Map<String, Value>| {
            map.values()
                .try_for_each(canonical::reads_back)
                .map_err(|e| DefinitionError::invalid(field, e.to_string()))
        };
        numbers("inputSchema", &self.input_schema)?;
        for (field, map) in [
            ("outputSchema", self.output_schema.as_ref()),
            ("annotations", self.annotations.as_ref()),
        ] {
            if let Some(map) = map {
                numbers(field, map)?;
            }
        }
        for icon in self.icons.iter().flatten() {
            canonical::reads_back(icon)
                .map_err(|e| DefinitionError::invalid("icons", e.to_string()))?;
        }
        let permissions = permissions(self.permissions.unwrap_or_default())?;
        let call_chain = match self.call_chain {
            Some(c) => c.validate()?,
            None => CallChainConstraints::default(),
        };
        let security = self
            .security
            .map_or_else(ToolSecurity::default, |s| ToolSecurity {
                require_signature: s.require_signature.unwrap_or(false),
                require_request_signing: s.require_request_signing.unwrap_or(false),
            });
        // Members in canonical order once, here, so that every digest of
        // this definition takes the canonical writer's in-order path (this
        // matters only when serde_json's `preserve_order` is on).
        let mut input_schema = self.input_schema;
        canonical::fast::sort_members(&mut input_schema);
        let mut output_schema = self.output_schema;
        let mut annotations = self.annotations;
        let mut icons = self.icons;
        for map in [&mut output_schema, &mut annotations].into_iter().flatten() {
            canonical::fast::sort_members(map);
        }
        for value in icons.iter_mut().flatten() {
            canonical::fast::sort_value_members(value);
        }
        Ok(ToolDefinition {
            id,
            name,
            title,
            version,
            description,
            provider,
            input_schema,
            output_schema,
            annotations,
            icons,
            permissions,
            call_chain,
            security,
        })
    }
}

impl RawChain {
    fn validate(self) -> Result<CallChainConstraints, DefinitionError> {
        if let Some(d) = self.max_depth
            && (d == 0 || d > MAX_CALL_DEPTH)
        {
            return Err(DefinitionError::invalid(
                "callChain.maxDepth",
                format!("maxDepth must be between 1 and {MAX_CALL_DEPTH}, got {d}"),
            ));
        }
        Ok(CallChainConstraints {
            max_depth: self.max_depth,
            allowed_callers: self
                .allowed_callers
                .map(|l| tool_ids("callChain.allowedCallers", l))
                .transpose()?,
            blocked_callers: tool_ids(
                "callChain.blockedCallers",
                self.blocked_callers.unwrap_or_default(),
            )?,
            allowed_callees: self
                .allowed_callees
                .map(|l| tool_ids("callChain.allowedCallees", l))
                .transpose()?,
            blocked_callees: tool_ids(
                "callChain.blockedCallees",
                self.blocked_callees.unwrap_or_default(),
            )?,
        })
    }
}

fn tool_ids(field: &str, list: Vec<String>) -> Result<BTreeSet<ToolId>, DefinitionError> {
    if list.len() > MAX_CHAIN_RULE_ENTRIES {
        return Err(DefinitionError::invalid(
            field,
            format!("more than {MAX_CHAIN_RULE_ENTRIES} entries"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| ToolId::parse(s).map_err(|e| DefinitionError::at(format!("{field}[{i}]"), e)))
        .collect()
}

fn permissions(list: Vec<String>) -> Result<BTreeSet<Permission>, DefinitionError> {
    if list.len() > MAX_PERMISSIONS {
        return Err(DefinitionError::invalid(
            "permissions",
            format!("more than {MAX_PERMISSIONS} permissions"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            Permission::parse(s).map_err(|e| DefinitionError::at(format!("permissions[{i}]"), e))
        })
        .collect()
}

fn label(field: &str, s: String) -> Result<String, DefinitionError> {
    if s.is_empty() || s.len() > MAX_LABEL_LEN {
        return Err(DefinitionError::invalid(
            field,
            format!("must be 1 to {MAX_LABEL_LEN} bytes, got {}", s.len()),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(DefinitionError::invalid(
            field,
            "contains a control character",
        ));
    }
    Ok(s)
}

fn url(field: &str, s: String) -> Result<String, DefinitionError> {
    let ok_scheme = s.starts_with("https://") || s.starts_with("http://");
    if !ok_scheme || s.len() > 2048 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DefinitionError::invalid(
            field,
            "must be an http(s) URL without spaces, at most 2048 bytes",
        ));
    }
    Ok(s)
}

fn object_schema(field: &str, schema: &Map<String, Value>) -> Result<(), DefinitionError> {
    match schema.get("type") {
        Some(Value::String(t)) if t == "object" => Ok(()),
        _ => Err(DefinitionError::invalid(
            field,
            "must be a JSON Schema with \"type\": \"object\" (MCP requirement)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "id": "com.example.files/read",
            "name": "secure_file_read",
            "version": "1.0.0",
            "description": "Read a file",
            "provider": {"id": "com.example", "name": "Example"},
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
            "permissions": ["file:read", "audit:log"],
        })
    }

    fn err_of(v: Value) -> DefinitionError {
        ToolDefinition::from_value(v).unwrap_err()
    }

    #[test]
    fn parses_and_normalises() {
        let d = ToolDefinition::from_value(sample()).unwrap();
        assert_eq!(d.name.as_str(), "secure_file_read");
        assert_eq!(d.permissions.len(), 2);
        let mut v = sample();
        v["title"] = json!("");
        v["callChain"] = json!({});
        v["security"] = json!({"requireSignature": false});
        v["permissions"] = json!(["audit:log", "file:read", "file:read"]);
        let d2 = ToolDefinition::from_value(v).unwrap();
        assert_eq!(d, d2);
        assert_eq!(d.digest().unwrap(), d2.digest().unwrap());
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = sample();
        v["permissions"] = json!(["file:read", "bad"]);
        let e = err_of(v);
        assert_eq!(e.field, "permissions[1]");
        assert!(matches!(e.kind, DefinitionErrorKind::Permission(_)));

        let mut v = sample();
        v["version"] = json!("1.0");
        let e = err_of(v);
        assert_eq!(e.field, "version");
        assert!(matches!(
            e.kind,
            DefinitionErrorKind::Id(IdError::InvalidVersion { .. })
        ));

        let mut v = sample();
        v["provider"]["id"] = json!("");
        assert_eq!(err_of(v).field, "provider.id");

        let mut v = sample();
        v["provider"]["extra"] = json!(1);
        let e = err_of(v);
        assert!(
            matches!(e.kind, DefinitionErrorKind::Shape(ref m) if m.contains("extra")),
            "{e}"
        );

        let mut v = sample();
        v["inputSchema"] = json!({"type": "string"});
        assert_eq!(err_of(v).field, "inputSchema");

        let mut v = sample();
        v.as_object_mut().unwrap().remove("name");
        let e = err_of(v);
        assert!(e.to_string().contains("name"), "{e}");

        let mut v = sample();
        v["callChain"] = json!({"maxDepth": 0});
        assert_eq!(err_of(v).field, "callChain.maxDepth");

        let mut v = sample();
        v["callChain"] = json!({"blockedCallees": ["ok", "not ok"]});
        assert_eq!(err_of(v).field, "callChain.blockedCallees[1]");

        let mut v = sample();
        v["inputSchema"] = json!("x");
        assert_eq!(err_of(v).field, "inputSchema");
    }

    #[test]
    fn typed_writer_handles_ordinary_definitions_itself() {
        let mut v = sample();
        v["title"] = json!("T");
        v["callChain"] = json!({"maxDepth": 2, "allowedCallers": [], "blockedCallees": ["x/y"]});
        v["security"] = json!({"requireSignature": true});
        v["provider"]["url"] = json!("https://example.com");
        let d = ToolDefinition::from_value(v).unwrap();
        let mut typed = String::new();
        assert!(d.write_canonical(&mut typed).is_some());
        let generic = canonical::canonical_json(&d).unwrap();
        assert_eq!(typed.as_bytes(), generic.as_slice());
        // A float in a schema needs ECMAScript number formatting: generic path.
        let mut v = sample();
        v["inputSchema"]["maximum"] = json!(1.5);
        let d = ToolDefinition::from_value(v).unwrap();
        assert!(d.write_canonical(&mut String::new()).is_none());
        assert_eq!(
            d.canonical_bytes().unwrap(),
            canonical::canonical_json(&d).unwrap()
        );
    }

    #[test]
    fn duplicate_members_in_text_are_refused() {
        let text = r#"{"id":"a","id":"b"}"#;
        let e = ToolDefinition::from_json(text).unwrap_err();
        assert!(matches!(
            e.kind,
            DefinitionErrorKind::Json(JsonError::DuplicateKey { .. })
        ));
    }
}
