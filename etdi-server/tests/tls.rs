//! HTTPS with mutual TLS: a client certificate verified by rustls
//! (etdi-auth's server configuration) authenticates the caller without a
//! token, its SPIFFE ID is the principal, and the policy grants permissions
//! to that subject through a role. A client without a certificate cannot
//! connect at all.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::*;
use etdi_core::{Permission, SecurityLevel, SecurityPolicy};
use etdi_policy::{PolicyDocument, Role};
use etdi_server::audit::MemoryAudit;
use etdi_server::rmcp::ServiceExt;
use etdi_server::rmcp::transport::StreamableHttpClientTransport;
use etdi_server::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use etdi_server::tls::{TlsLimits, TlsListener, serve_https};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::json;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const AGENT: &str = "spiffe://example.org/ns/tools/sa/agent";

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    client_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf = |sans: Vec<SanType>, client: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = sans;
        p.distinguished_name.push(DnType::CommonName, "leaf");
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        (p.signed_by(&key, &issuer).unwrap(), key)
    };
    let (server, server_key) = leaf(
        vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
        false,
    );
    let (client, client_key) = leaf(vec![SanType::URI(AGENT.try_into().unwrap())], true);
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
    }
}

fn https_client(pki: &Pki, with_identity: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()]);
    if with_identity {
        b = b.identity(reqwest::Identity::from_pem(pki.client_pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_authenticates_and_roles_grant_permissions() {
    let pki = pki();
    let tls = etdi_auth::MtlsServerConfigBuilder::new(vec![pki.ca_der.clone()])
        .alpn(vec![b"http/1.1".to_vec()])
        .build(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}/mcp");

    let mut policy = SecurityPolicy::new(SecurityLevel::Basic);
    policy.audit_all_calls = true;
    let doc = PolicyDocument::new(policy)
        .with_role(
            "reader",
            Role::granting([Permission::parse("demo:read").unwrap()]),
        )
        .with_assignment(AGENT, ["reader"]);
    let issuer = LocalIssuer::new();
    let mut auth = bearer(issuer.verifier(&url), &url, &[]);
    auth.accept_client_certificates = true;
    let server = demo_builder(basic(), Arc::new(MemoryAudit::new()))
        .audience(url.clone())
        .policy_document(doc)
        .bearer_auth(auth)
        .build()
        .unwrap();
    let listener = TlsListener::new(tcp, tls, TlsLimits::default()).unwrap();
    tokio::spawn(serve_https(
        server,
        listener,
        etdi_server::http::HttpOptions::default(),
    ));

    // No client certificate: the handshake is refused.
    let r = https_client(&pki, false)
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    assert!(
        r.is_err(),
        "a client without a certificate connected: {r:?}"
    );

    // With the certificate, a full MCP session through rmcp's HTTP client.
    let config = StreamableHttpClientTransportConfig::with_uri(url.clone());
    let transport = StreamableHttpClientTransport::with_client(https_client(&pki, true), config);
    let client = ().serve(transport).await.unwrap();
    let r = client
        .call_tool(call("echo", json!({"text": "over mTLS"})))
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "over mTLS");
    let e = refused(&client, call("write", json!({"text": "x"}))).await;
    assert_eq!(e.code.0, -32010);
    assert_eq!(reason_codes(&e), ["missing_permissions"]);
    client.cancel().await.unwrap();
}

/// The TLS listener sets `TCP_NODELAY` on every accepted socket, before the
/// handshake (read on the server's own socket, see common/sockets.rs).
#[tokio::test]
async fn the_tls_listener_accepts_connections_with_tcp_nodelay() {
    let pki = pki();
    let tls = etdi_auth::MtlsServerConfigBuilder::new(vec![pki.ca_der.clone()])
        .alpn(vec![b"http/1.1".to_vec()])
        .build(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let url = format!("https://{addr}/mcp");
    let issuer = LocalIssuer::new();
    let server = demo_builder(basic(), Arc::new(MemoryAudit::new()))
        .audience(url.clone())
        .bearer_auth(bearer(issuer.verifier(&url), &url, &[]))
        .build()
        .unwrap();
    let listener = TlsListener::new(tcp, tls, TlsLimits::default()).unwrap();
    tokio::spawn(serve_https(
        server,
        listener,
        etdi_server::http::HttpOptions::default(),
    ));
    let client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let peer = client.local_addr().unwrap();
    assert!(
        sockets::server_nodelay(std::process::id(), peer).await,
        "the TLS listener accepted {peer} without TCP_NODELAY"
    );
}
