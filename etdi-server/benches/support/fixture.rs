//! What the etdi-server benches share: the plain rmcp server serving the
//! `echo` tool, the in-bench token issuer, and a loopback listener.

use std::sync::Arc;

use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime};
use etdi_server::rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use etdi_server::rmcp::service::RequestContext;
use etdi_server::rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use etdi_server::rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService,
};
use etdi_server::rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{Value, json};

/// The tool both servers serve.
pub fn echo(text: &str) -> String {
    text.to_owned()
}

#[derive(Clone)]
pub struct Plain;

impl ServerHandler for Plain {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "echo",
            "Echoes text",
            Arc::new(schema.as_object().unwrap().clone()),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _c: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let text = args.get("text").and_then(Value::as_str).unwrap_or_default();
        Ok(CallToolResult::success(vec![ContentBlock::text(echo(text))]).into())
    }
}

#[derive(Deserialize, etdi_server::schemars::JsonSchema)]
#[schemars(crate = "etdi_server::schemars")]
pub struct EchoArgs {
    pub text: String,
}

pub struct Issuer {
    pub key: SigningKey,
}

impl Issuer {
    pub fn generate() -> Self {
        Issuer {
            key: SigningKey::generate(CryptoProvider::get_default(), Algorithm::ES256).unwrap(),
        }
    }

    pub fn token(&self, aud: &str) -> String {
        let now = UnixTime::now().as_secs();
        let claims = json!({"iss": "https://issuer.bench", "sub": "alice", "client_id": "alice",
            "aud": aud, "iat": now, "exp": now + 3600, "jti": "bench-token", "scope": "demo:read"});
        let header = etdi_crypto::jws::JwsHeader::new(Algorithm::ES256)
            .with_kid(self.key.kid().to_string())
            .with_typ("at+jwt");
        etdi_crypto::jws::sign(&self.key, &header, claims.to_string().as_bytes()).unwrap()
    }

    pub fn verifier(&self, aud: &str) -> etdi_auth::TokenVerifier {
        let jwk: Value =
            serde_json::from_str(&self.key.verifying_key().to_jwk().to_json()).unwrap();
        etdi_auth::TokenVerifier::builder()
            .issuer(
                etdi_auth::IssuerConfig::new("https://issuer.bench")
                    .audience(aud)
                    .static_jwks(json!({"keys": [jwk]})),
            )
            .build()
            .unwrap()
    }
}

pub async fn listen() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    (l, url)
}

/// A plain rmcp server on loopback, accepting with `TCP_NODELAY` as the
/// secure one does (etdi_server::listener), so a pair differs only by ETDI.
/// `json`: stateless, `application/json` answers.
pub async fn start_plain(json: bool) -> String {
    let (l, url) = listen().await;
    let svc = StreamableHttpService::new(
        || Ok(Plain),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(!json)
            .with_json_response(json),
    );
    let app = axum::Router::new().route_service("/mcp", svc);
    tokio::spawn(async move { axum::serve(etdi_server::listener::TcpAccept::new(l), app).await });
    url
}
