//! An existing rmcp `ServerHandler`, unchanged, behind the ETDI pipeline:
//! its tools get ETDI definitions from a configuration map, keep their own
//! MCP fields, and only configured tools are listed and callable.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::*;
use etdi_core::EventKind;
use etdi_server::audit::{MemoryAudit, step};
use etdi_server::rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use etdi_server::rmcp::service::RequestContext;
use etdi_server::rmcp::{ErrorData, RoleServer, ServerHandler};
use etdi_server::{CallInfo, EtdiTool, SecureServer, wire};
use serde_json::json;

/// A plain rmcp server with three tools, knowing nothing about ETDI.
#[derive(Clone)]
struct Plain;

fn plain_tools() -> Vec<Tool> {
    let schema = |props: serde_json::Value| {
        Arc::new(
            json!({"type": "object", "properties": props})
                .as_object()
                .unwrap()
                .clone(),
        )
    };
    vec![
        Tool::new(
            "add",
            "Adds two numbers",
            schema(json!({"a": {"type": "number"}, "b": {"type": "number"}})),
        ),
        Tool::new("delete_all", "Deletes everything", schema(json!({}))),
        Tool::new("unlisted", "Has no ETDI definition", schema(json!({}))),
    ]
}

impl ServerHandler for Plain {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        plain_tools().into_iter().find(|t| t.name == name)
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(plain_tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        // What ETDI established is visible to the wrapped handler.
        let who = context
            .extensions
            .get::<Arc<CallInfo>>()
            .map(|i| i.principal.subject.clone())
            .unwrap_or_else(|| "nobody".into());
        let text = match request.name.as_ref() {
            "add" => {
                let a = args.get("a").and_then(|v| v.as_f64()).unwrap_or(0.0);
                let b = args.get("b").and_then(|v| v.as_f64()).unwrap_or(0.0);
                format!("{} (for {who})", a + b)
            }
            other => format!("{other} ran (for {who})"),
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

fn wrapped(audit: Arc<MemoryAudit>) -> SecureServer<Plain> {
    SecureServer::builder("wrapped")
        .audience("urn:etdi:wrapped")
        .policy(basic())
        .provider("com.example", "Example Corp")
        .audit(audit)
        .local_identity(alice(&["math:add"]))
        .wrap(
            Plain,
            vec![
                EtdiTool::new("add", "2.1.0")
                    .id("com.example.math/add")
                    .permissions(["math:add"]),
                EtdiTool::new("delete_all", "1.0.0")
                    .permissions(["data:delete"])
                    .max_call_depth(1),
            ],
        )
        .unwrap()
}

#[tokio::test]
async fn wrapped_handler_tools_get_etdi_definitions() {
    let audit = Arc::new(MemoryAudit::new());
    let client = connect(wrapped(audit.clone())).await;
    let tools = client.list_tools(None).await.unwrap().tools;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["add", "delete_all"]);
    let add = &tools[0];
    // The handler's own MCP fields are kept.
    assert_eq!(add.description.as_deref(), Some("Adds two numbers"));
    assert_eq!(add.input_schema["properties"]["a"]["type"], "number");
    let etdi = &add.meta.as_ref().unwrap().0[wire::META_TOOL];
    assert_eq!(etdi["id"], "com.example.math/add");
    assert_eq!(etdi["version"], "2.1.0");
    assert_eq!(etdi["permissions"], json!(["math:add"]));
    let del = &tools[1].meta.as_ref().unwrap().0[wire::META_TOOL];
    assert_eq!(del["id"], "com.example/delete_all");
    assert_eq!(del["callChain"], json!({"maxDepth": 1}));

    let r = client
        .call_tool(call("add", json!({"a": 2, "b": 3})))
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "5 (for alice)");

    let e = refused(&client, call("delete_all", json!({}))).await;
    assert_eq!(e.code.0, -32010);
    assert_eq!(reason_codes(&e), ["missing_permissions"]);
    assert_denied_event(
        &audit,
        step::AUTHORIZE,
        EventKind::AuthorizationFailed,
        "missing_permissions",
    );

    // A handler tool without an ETDI definition is not callable.
    let e = refused(&client, call("unlisted", json!({}))).await;
    assert_eq!(e.code.0, -32602);
    client.cancel().await.unwrap();
}

#[test]
fn wrapping_a_tool_the_handler_does_not_have_fails_at_build() {
    let e = SecureServer::builder("wrapped")
        .policy(basic())
        .provider("com.example", "Example Corp")
        .audit(Arc::new(MemoryAudit::new()))
        .wrap(Plain, vec![EtdiTool::new("missing", "1.0.0")])
        .unwrap_err();
    assert!(e.to_string().contains("does not describe this tool"), "{e}");
}
