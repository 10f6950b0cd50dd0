//! The ETDI wire format on top of MCP: `_meta` keys, the `initialize`
//! capability, and the mapping between an ETDI definition and an MCP `Tool`
//! (docs/PROTOCOL.md §1 and §2).

use etdi_core::{Digest, PROTOCOL_VERSION, ToolDefinition};
use etdi_crypto::advertised;
use rmcp::model::{JsonObject, MetaObject, Tool};
use serde_json::{Map, Value};

/// The `_meta` keys are etdi-crypto's, so the server writes exactly what the
/// client-side verifier reads.
pub use etdi_crypto::advertised::{
    META_ATTESTATION, META_CALL_CHAIN, META_REQUEST_SIGNATURE, META_TOOL,
};
/// Key under `capabilities.experimental` announcing ETDI (§1).
pub const CAPABILITY: &str = "dev.etdi";

/// How request signing is announced in the capability (§1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningMode {
    /// Every call must be signed.
    Required,
    /// Signing is accepted and never needed.
    Optional,
    /// Some tools require signing (their `security.requireRequestSigning`).
    PerTool,
}

impl SigningMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::PerTool => "per-tool",
        }
    }
}

/// The `capabilities.experimental["dev.etdi"]` object (§1).
pub fn capability(audience: &str, signing: SigningMode, jwks_uri: Option<&str>) -> JsonObject {
    let mut o = Map::new();
    o.insert("version".into(), Value::from(PROTOCOL_VERSION));
    o.insert("audience".into(), Value::from(audience));
    o.insert("requestSigning".into(), Value::from(signing.as_str()));
    if let Some(uri) = jwks_uri {
        o.insert("jwksUri".into(), Value::from(uri));
    }
    o
}

/// Why a definition could not be put on (or taken off) the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// The MCP `Tool` advertising `def`, with its ETDI fields and (when given)
/// its attestation under `_meta`.
///
/// The mapping is etdi-crypto's [`advertised::tool_from_definition`], the
/// inverse of what verifiers use, so a client that rebuilds the definition
/// from what it sees gets the same digest. An empty description is left off
/// the wire; it rebuilds to the same definition.
pub fn to_mcp_tool(def: &ToolDefinition, attestation: Option<&str>) -> Result<Tool, MappingError> {
    let mut tool = advertised::tool_from_definition(def, attestation)
        .map_err(|e| MappingError(format!("definition did not serialise: {e}")))?;
    if tool.get("description").and_then(Value::as_str) == Some("") {
        tool.remove("description");
    }
    serde_json::from_value::<Tool>(Value::Object(tool))
        .map_err(|e| MappingError(format!("not an MCP tool: {e}")))
}

/// Rebuilds the ETDI definition from an advertised MCP `Tool` (top-level MCP
/// fields plus `_meta["dev.etdi/tool"]`), exactly as a verifier does (§2).
pub fn from_mcp_tool(tool: &Tool) -> Result<ToolDefinition, MappingError> {
    let Ok(Value::Object(o)) = serde_json::to_value(tool) else {
        return Err(MappingError("tool did not serialise".into()));
    };
    advertised::definition_from_tool(&o).map_err(|e| MappingError(e.to_string()))
}

/// Builds an ETDI definition from a tool an rmcp handler advertises plus the
/// ETDI-only fields configured for it (the handler wrapper's path).
pub fn merge_definition(
    tool: &Tool,
    etdi_fields: Map<String, Value>,
) -> Result<ToolDefinition, MappingError> {
    let mut t = tool.clone();
    let mut meta = MetaObject::new();
    meta.0.insert(META_TOOL.into(), Value::Object(etdi_fields));
    t.meta = Some(meta);
    from_mcp_tool(&t)
}

/// The ETDI-only fields of a definition, as `_meta["dev.etdi/tool"]` holds
/// them (used by the handler wrapper's configuration).
pub fn etdi_fields(def: &ToolDefinition) -> Map<String, Value> {
    advertised::tool_from_definition(def, None)
        .ok()
        .and_then(|mut t| match t.remove("_meta") {
            Some(Value::Object(mut meta)) => match meta.remove(META_TOOL) {
                Some(Value::Object(fields)) => Some(fields),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default()
}

/// §3 digest of a JSON value (`params.arguments`, a hop list).
pub fn digest_of(value: &impl serde::Serialize) -> Result<Digest, MappingError> {
    Digest::of_canonical(value).map_err(|e| MappingError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def() -> ToolDefinition {
        ToolDefinition::from_value(json!({
            "id": "com.example.files/read",
            "name": "read",
            "version": "1.0.0",
            "provider": {"id": "com.example", "name": "Example"},
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
            "annotations": {"readOnlyHint": true},
            "permissions": ["file:read"],
            "callChain": {"maxDepth": 2, "blockedCallers": ["evil"]},
            "security": {"requireRequestSigning": true}
        }))
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_the_digest() {
        let d = def();
        let tool = to_mcp_tool(&d, Some("a.b.c")).unwrap();
        let v = serde_json::to_value(&tool).unwrap();
        assert_eq!(v["_meta"][META_ATTESTATION], "a.b.c");
        assert_eq!(v["_meta"][META_TOOL]["id"], "com.example.files/read");
        assert!(v.get("description").is_none());
        assert!(v.get("id").is_none());
        let back = from_mcp_tool(&tool).unwrap();
        assert_eq!(back.digest().unwrap(), d.digest().unwrap());
    }

    #[test]
    fn merge_uses_the_handler_tool_fields() {
        let d = def();
        let tool = to_mcp_tool(&d, None).unwrap();
        let mut plain = tool.clone();
        plain.meta = None;
        let merged = merge_definition(&plain, etdi_fields(&d)).unwrap();
        assert_eq!(merged, d);
    }

    #[test]
    fn capability_names_version_and_audience() {
        let c = capability("https://s.example/mcp", SigningMode::PerTool, None);
        assert_eq!(
            Value::Object(c),
            json!({"version": "etdi/1", "audience": "https://s.example/mcp", "requestSigning": "per-tool"})
        );
    }
}
