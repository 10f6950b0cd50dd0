//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod scenario;

use etdi_core::{AuthMethod, CallChain, Hop, Principal, ServerId, ToolDefinition, ToolId};
use serde_json::{Value, json};

pub const SERVER: &str = "srv";

pub fn server() -> ServerId {
    ServerId::parse(SERVER).unwrap()
}

pub fn id(s: &str) -> ToolId {
    ToolId::parse(s).unwrap()
}

/// A tool `name` requiring `perms`, with extra JSON members merged in.
pub fn tool_with(name: &str, perms: &[&str], extra: Value) -> ToolDefinition {
    let mut v = json!({
        "id": name,
        "name": name.replace(['/', ':', '@'], "_"),
        "version": "1.0.0",
        "provider": {"id": "com.example", "name": "Example"},
        "inputSchema": {"type": "object"},
        "permissions": perms,
    });
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    ToolDefinition::from_value(v).unwrap()
}

pub fn tool(name: &str, perms: &[&str]) -> ToolDefinition {
    tool_with(name, perms, json!({}))
}

pub fn user(subject: &str, scopes: &[&str], roles: &[&str]) -> Principal {
    Principal::new(subject, AuthMethod::BearerJwt)
        .with_scopes(scopes.iter().copied())
        .with_roles(roles.iter().copied())
}

pub fn hop(server: &str, tool: &str, principal: &str) -> Hop {
    Hop {
        server: ServerId::parse(server).unwrap(),
        tool: id(tool),
        principal: principal.into(),
    }
}

pub fn chain(hops: Vec<Hop>) -> CallChain {
    CallChain::try_from(hops).unwrap()
}
