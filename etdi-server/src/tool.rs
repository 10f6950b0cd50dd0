//! Tool registration: an ETDI tool with its permissions and per-tool
//! overrides, typed arguments whose JSON Schema is derived with schemars
//! (as rmcp does), and the handler that runs it.
//!
//! ```
//! use etdi_server::{EtdiTool, ToolContext};
//! use etdi_server::schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[schemars(crate = "etdi_server::schemars")] // no own schemars dependency needed
//! struct Args { param: String }
//!
//! let tool = EtdiTool::new("my_secure_tool", "1.0.0")
//!     .description("Processes a parameter securely")
//!     .permissions(["data:read", "user:profile:view"])
//!     .require_signature(true)
//!     .max_call_depth(3)
//!     .handler(|args: Args, _ctx: ToolContext| async move {
//!         format!("Processed {} securely", args.param)
//!     });
//! # let _ = tool;
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use etdi_core::{CallChain, Principal, ToolDefinition};
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, JsonObject, ServerCapabilities, ServerConfig,
};
use rmcp::schemars::JsonSchema;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::remote::RemoteCaller;

/// What the pipeline established about a call, handed to the tool. Wrapped
/// rmcp handlers find it as `Arc<CallInfo>` in `RequestContext::extensions`.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The authenticated caller (shared with the HTTP layer's token cache).
    pub principal: Arc<Principal>,
    /// The tool's definition as advertised.
    pub tool: Arc<ToolDefinition>,
    /// The chain that led to this call (empty for a direct call).
    pub chain: CallChain,
    /// The raw hop JWS of that chain, outermost first (what an onward call
    /// extends).
    pub hop_jws: Vec<String>,
    /// The rights each earlier hop's principal held.
    pub hop_principals: Vec<Principal>,
    /// `iss` of the request signature, when the call was signed.
    pub signed_by: Option<String>,
    /// JSON-RPC id of the request, as text.
    pub request_id: String,
}

/// The context a registered tool runs with: who called, through which
/// chain, and a way to call tools on other ETDI servers with the chain
/// extended and signed.
#[derive(Clone)]
pub struct ToolContext {
    info: Arc<CallInfo>,
    remote: Option<Arc<RemoteCaller>>,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ToolContext {
    pub(crate) fn new(info: Arc<CallInfo>, remote: Option<Arc<RemoteCaller>>) -> Self {
        ToolContext { info, remote }
    }

    /// Everything the pipeline established.
    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// The authenticated caller.
    pub fn principal(&self) -> &Principal {
        &self.info.principal
    }

    /// The chain that led here.
    pub fn chain(&self) -> &CallChain {
        &self.info.chain
    }

    /// Calls `tool` on the configured remote ETDI server `server` on behalf
    /// of this call's principal: a hop naming this server, this tool and the
    /// principal is appended to the chain and signed, and the request is
    /// signed when a request signer is configured.
    pub async fn call_remote(
        &self,
        server: &str,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<rmcp::model::CallToolResult, crate::remote::RemoteError> {
        let Some(remote) = &self.remote else {
            return Err(crate::remote::RemoteError::NotConfigured);
        };
        remote.call(&self.info, server, tool, arguments).await
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Result<CallToolResponse, ErrorData>> + Send>>;

/// A type-erased tool body.
trait DynTool: Send + Sync {
    fn call(&self, args: JsonObject, ctx: ToolContext) -> BoxFut;
}

struct TypedTool<A, F> {
    f: F,
    _args: std::marker::PhantomData<fn(A)>,
}

impl<A, F, Fut, R> DynTool for TypedTool<A, F>
where
    A: DeserializeOwned + Send + 'static,
    F: Fn(A, ToolContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoCallToolResult,
{
    fn call(&self, args: JsonObject, ctx: ToolContext) -> BoxFut {
        let parsed: Result<A, _> = serde_json::from_value(Value::Object(args));
        match parsed {
            Ok(a) => {
                let fut = (self.f)(a, ctx);
                Box::pin(async move { fut.await.into_call_tool_result() })
            }
            Err(e) => Box::pin(std::future::ready(Err(ErrorData::invalid_params(
                format!("arguments do not match the tool's input schema: {e}"),
                None,
            )))),
        }
    }
}

/// A tool to register with [`crate::SecureServer`]: its MCP fields, its
/// ETDI fields (id, version, provider, permissions, call-chain rules,
/// security overrides) and its handler.
///
/// Nothing is validated until the server is built, where every field goes
/// through the same strict parser as a definition received from the wire
/// (`etdi_core::ToolDefinition::from_value`), so errors name the field.
pub struct EtdiTool {
    pub(crate) name: String,
    fields: Map<String, Value>,
    chain: Map<String, Value>,
    security: Map<String, Value>,
    schema_error: Option<String>,
    pub(crate) provider_set: bool,
    handler: Option<Arc<dyn DynTool>>,
}

impl std::fmt::Debug for EtdiTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtdiTool")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl EtdiTool {
    /// A tool called `name` (the MCP name) at semantic version `version`.
    /// Its id defaults to `<provider id>/<name>`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        let name = name.into();
        let mut fields = Map::new();
        fields.insert("name".into(), Value::from(name.clone()));
        fields.insert("version".into(), Value::from(version.into()));
        EtdiTool {
            name,
            fields,
            chain: Map::new(),
            security: Map::new(),
            schema_error: None,
            provider_set: false,
            handler: None,
        }
    }

    /// The stable tool id (unchanged across renames and versions).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.fields.insert("id".into(), Value::from(id.into()));
        self
    }

    /// The human title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.fields
            .insert("title".into(), Value::from(title.into()));
        self
    }

    /// The description the model reads.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.fields
            .insert("description".into(), Value::from(text.into()));
        self
    }

    /// The provider, when it differs from the server's default provider.
    pub fn provider(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        let mut p = Map::new();
        p.insert("id".into(), Value::from(id.into()));
        p.insert("name".into(), Value::from(name.into()));
        self.fields.insert("provider".into(), Value::Object(p));
        self.provider_set = true;
        self
    }

    /// Permissions the tool requires (docs/PROTOCOL.md §4).
    pub fn permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<Value> = permissions
            .into_iter()
            .map(|p| Value::from(p.into()))
            .collect();
        self.fields.insert("permissions".into(), Value::Array(list));
        self
    }

    /// MCP annotations (e.g. `{"readOnlyHint": true}`).
    pub fn annotations(mut self, annotations: Map<String, Value>) -> Self {
        self.fields
            .insert("annotations".into(), Value::Object(annotations));
        self
    }

    /// The JSON Schema of structured results.
    pub fn output_schema(mut self, schema: JsonObject) -> Self {
        self.fields
            .insert("outputSchema".into(), Value::Object(schema));
        self
    }

    /// Clients must refuse this tool unless its attestation verifies
    /// (the seed's `etdi_require_signature`; tightens only).
    pub fn require_signature(mut self, on: bool) -> Self {
        self.security
            .insert("requireSignature".into(), Value::from(on));
        self
    }

    /// Calls to this tool must carry a request signature (tightens only).
    pub fn require_request_signing(mut self, on: bool) -> Self {
        self.security
            .insert("requireRequestSigning".into(), Value::from(on));
        self
    }

    /// Longest call chain this tool accepts (the seed's
    /// `etdi_max_call_depth`; the smaller of this and the policy applies).
    pub fn max_call_depth(mut self, depth: u32) -> Self {
        self.chain.insert("maxDepth".into(), Value::from(depth));
        self
    }

    /// Only these tool ids may call this tool through a chain.
    pub fn allowed_callers<I: IntoIterator<Item = S>, S: Into<String>>(self, ids: I) -> Self {
        self.chain_list("allowedCallers", ids)
    }

    /// These tool ids may never call this tool.
    pub fn blocked_callers<I: IntoIterator<Item = S>, S: Into<String>>(self, ids: I) -> Self {
        self.chain_list("blockedCallers", ids)
    }

    /// This tool may only call these tool ids.
    pub fn allowed_callees<I: IntoIterator<Item = S>, S: Into<String>>(self, ids: I) -> Self {
        self.chain_list("allowedCallees", ids)
    }

    /// This tool may never call these tool ids.
    pub fn blocked_callees<I: IntoIterator<Item = S>, S: Into<String>>(self, ids: I) -> Self {
        self.chain_list("blockedCallees", ids)
    }

    fn chain_list<I: IntoIterator<Item = S>, S: Into<String>>(mut self, key: &str, ids: I) -> Self {
        let list = ids.into_iter().map(|s| Value::from(s.into())).collect();
        self.chain.insert(key.into(), Value::Array(list));
        self
    }

    /// The body, with typed arguments: `A` is deserialised from
    /// `params.arguments` and its schemars schema is the tool's input
    /// schema (draft 2020-12, as rmcp generates it).
    pub fn handler<A, F, Fut, R>(mut self, f: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, ToolContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoCallToolResult + 'static,
    {
        match rmcp::handler::server::common::schema_for_input::<A>() {
            Ok(schema) => {
                self.fields
                    .insert("inputSchema".into(), Value::Object(schema.as_ref().clone()));
            }
            Err(e) => self.schema_error = Some(e),
        }
        self.handler = Some(Arc::new(TypedTool {
            f,
            _args: std::marker::PhantomData,
        }));
        self
    }

    /// Builds the definition, filling the server's default provider and the
    /// default id.
    pub(crate) fn definition(
        &self,
        default_provider: Option<&Map<String, Value>>,
    ) -> Result<ToolDefinition, String> {
        if let Some(e) = &self.schema_error {
            return Err(format!("input schema: {e}"));
        }
        let mut v = self.fields.clone();
        if !v.contains_key("provider") {
            match default_provider {
                Some(p) => {
                    v.insert("provider".into(), Value::Object(p.clone()));
                }
                None => {
                    return Err("no provider: set one on the tool or the server".into());
                }
            }
        }
        if !v.contains_key("id") {
            let pid = v
                .get("provider")
                .and_then(|p| p.get("id"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            v.insert("id".into(), Value::from(format!("{pid}/{}", self.name)));
        }
        if !v.contains_key("inputSchema") {
            let mut s = Map::new();
            s.insert("type".into(), Value::from("object"));
            s.insert("properties".into(), Value::Object(Map::new()));
            v.insert("inputSchema".into(), Value::Object(s));
        }
        if !self.chain.is_empty() {
            v.insert("callChain".into(), Value::Object(self.chain.clone()));
        }
        if !self.security.is_empty() {
            v.insert("security".into(), Value::Object(self.security.clone()));
        }
        ToolDefinition::from_value(Value::Object(v)).map_err(|e| e.to_string())
    }

    pub(crate) fn has_handler(&self) -> bool {
        self.handler.is_some()
    }
}

/// The rmcp handler that runs tools registered with the builder. The
/// secure server in front of it does discovery, checks and audit; this only
/// dispatches by name.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Arc<HashMap<String, Arc<dyn DynTool>>>,
    pub(crate) remote: Option<Arc<RemoteCaller>>,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSet")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ToolSet {
    pub(crate) fn new(tools: &[EtdiTool], remote: Option<Arc<RemoteCaller>>) -> Self {
        let map = tools
            .iter()
            .filter_map(|t| t.handler.clone().map(|h| (t.name.clone(), h)))
            .collect();
        ToolSet {
            tools: Arc::new(map),
            remote,
        }
    }
}

impl ServerHandler for ToolSet {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Only the secure server calls this, after its pipeline stored what
        // it established; without it the call did not pass the pipeline.
        let Some(info) = context.extensions.get::<Arc<CallInfo>>().cloned() else {
            return Err(crate::error::deny_error(&[]));
        };
        let Some(tool) = self.tools.get(request.name.as_ref()) else {
            return Err(crate::error::deny_error(&[
                etdi_core::DenyReason::UnknownTool {
                    name: request.name.to_string(),
                },
            ]));
        };
        let ctx = ToolContext::new(info, self.remote.clone());
        tool.call(request.arguments.unwrap_or_default(), ctx).await
    }
}
