//! mTLS over real loopback handshakes (rustls on both sides, and the `curl`
//! binary as a third-party client): trusted client certificates become the
//! right principal; untrusted, expired or missing certificates are refused;
//! a certificate-bound token presented with another certificate is refused.
// Test code: helpers outside `#[test]` functions may unwrap and index too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::{MockServer, Reply, TestKey, now};
use etdi_auth::mtls::{CertificateIdentity, MtlsServerConfigBuilder, connection_principal};
use etdi_auth::{BindingFailure, IssuerConfig, TokenError, TokenVerifier};
use etdi_core::{AuthMethod, Principal};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn leaf(ca: &Ca, sans: Vec<SanType>, cn: &str, client: bool, expired: bool) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn server_leaf(ca: &Ca) -> Leaf {
    leaf(
        ca,
        vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
        "tools.test",
        false,
        false,
    )
}

fn spiffe_client(ca: &Ca, expired: bool) -> Leaf {
    leaf(
        ca,
        vec![
            SanType::URI("spiffe://example.org/ns/tools/sa/agent".try_into().unwrap()),
            SanType::DnsName("agent.example.org".try_into().unwrap()),
        ],
        "agent",
        true,
        expired,
    )
}

/// Accepts one TLS connection; reports the principal (or the handshake
/// error) and answers an HTTP request with the subject.
async fn serve_once(
    config: Arc<rustls::ServerConfig>,
) -> (u16, oneshot::Receiver<Result<(Principal, Vec<u8>), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        match acceptor.accept(tcp).await {
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
            Ok(mut tls) => {
                let (_, conn) = tls.get_ref();
                let principal = connection_principal(conn).map_err(|e| e.to_string());
                let der = etdi_auth::mtls::peer_certificate(conn).map(|c| c.to_vec());
                let subject = principal
                    .as_ref()
                    .map(|p| p.subject.clone())
                    .unwrap_or_default();
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!("subject={subject}\n");
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
                let _ = tx.send(principal.map(|p| (p, der.unwrap_or_default())));
            }
        }
    });
    (port, rx)
}

fn client_config(ca: &Ca, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match client {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// Connects, sends a request and reads whatever comes back. The server's
/// verdict is what the tests assert on: with TLS 1.3 a refused client
/// certificate surfaces on the server first.
async fn connect(port: u16, config: Arc<rustls::ClientConfig>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("localhost").unwrap();
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        let _ = tls
            .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
    }
}

struct Pki {
    ca: Ca,
    server_config: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let ca = ca("ETDI Test CA");
    let server = server_leaf(&ca);
    let server_config = MtlsServerConfigBuilder::from_ca_pem(ca.pem.as_bytes())
        .unwrap()
        .build(server.chain.clone(), server.key.clone_key())
        .unwrap();
    Pki { ca, server_config }
}

#[tokio::test]
async fn trusted_client_certificate_gives_the_spiffe_principal() {
    let pki = pki();
    let client = spiffe_client(&pki.ca, false);
    let (port, verdict) = serve_once(pki.server_config.clone()).await;
    connect(port, client_config(&pki.ca, Some(&client))).await;
    let (principal, der) = verdict.await.unwrap().unwrap();
    assert_eq!(principal.subject, "spiffe://example.org/ns/tools/sa/agent");
    assert_eq!(principal.auth_method, AuthMethod::MutualTls);
    assert!(principal.issuer.unwrap().contains("ETDI Test CA"));
    let id = CertificateIdentity::from_der(&der).unwrap();
    assert_eq!(id.dns_names, ["agent.example.org"]);
    assert_eq!(id.common_name.as_deref(), Some("agent"));
}

#[tokio::test]
async fn identity_falls_back_to_dns_then_cn() {
    let ca = ca("CA");
    let dns = leaf(
        &ca,
        vec![SanType::DnsName("svc.example.org".try_into().unwrap())],
        "cn",
        true,
        false,
    );
    let id = CertificateIdentity::from_der(&dns.chain[0]).unwrap();
    assert_eq!(id.to_principal().unwrap().subject, "svc.example.org");
    let cn_only = leaf(&ca, vec![], "legacy-client", true, false);
    let id = CertificateIdentity::from_der(&cn_only.chain[0]).unwrap();
    assert_eq!(id.to_principal().unwrap().subject, "legacy-client");
    let two = leaf(
        &ca,
        vec![
            SanType::URI("spiffe://a.org/x".try_into().unwrap()),
            SanType::URI("spiffe://b.org/y".try_into().unwrap()),
        ],
        "x",
        true,
        false,
    );
    assert!(CertificateIdentity::from_der(&two.chain[0]).is_err());
}

#[tokio::test]
async fn untrusted_expired_or_missing_client_certificates_are_refused() {
    let pki = pki();
    let other_ca = ca("Untrusted CA");
    let cases: Vec<(&str, Option<Leaf>)> = vec![
        ("untrusted CA", Some(spiffe_client(&other_ca, false))),
        ("expired certificate", Some(spiffe_client(&pki.ca, true))),
        ("no certificate", None),
    ];
    for (name, client) in cases {
        let (port, verdict) = serve_once(pki.server_config.clone()).await;
        connect(port, client_config(&pki.ca, client.as_ref())).await;
        let result = verdict.await.unwrap();
        assert!(result.is_err(), "{name}: accepted {result:?}");
    }
}

#[tokio::test]
async fn certificate_bound_token_with_another_certificate_is_refused() {
    let pki = pki();
    let alice = spiffe_client(&pki.ca, false);
    let mallory = leaf(
        &pki.ca,
        vec![SanType::DnsName("mallory.example.org".try_into().unwrap())],
        "mallory",
        true,
        false,
    );
    let server = MockServer::start().await;
    let key = TestKey::rsa();
    server.reply("/jwks", Reply::json(json!({"keys": [key.jwk("k")]})));
    let verifier = TokenVerifier::builder()
        .issuer(
            IssuerConfig::new(&server.base)
                .audience("https://tools.test/mcp")
                .jwks_uri(server.url("/jwks")),
        )
        .build()
        .unwrap();
    let thumb = etdi_auth::mtls::certificate_thumbprint(&alice.chain[0]);
    let t = now();
    let token = key.sign(
        &json!({"alg": "RS256", "kid": "k"}),
        &json!({"iss": server.base, "sub": "alice", "aud": "https://tools.test/mcp",
                "exp": t + 60, "cnf": {"x5t#S256": thumb}}),
    );
    // Over real handshakes: the DER each side presented.
    for (client, ok) in [(&alice, true), (&mallory, false)] {
        let (port, verdict) = serve_once(pki.server_config.clone()).await;
        connect(port, client_config(&pki.ca, Some(client))).await;
        let (_, der) = verdict.await.unwrap().unwrap();
        let result = verifier.verify_with_certificate(&token, Some(&der)).await;
        if ok {
            assert_eq!(
                result.unwrap().auth_method,
                AuthMethod::CertificateBoundToken
            );
        } else {
            assert_eq!(
                result.unwrap_err(),
                TokenError::CertificateBinding(BindingFailure::Mismatch)
            );
        }
    }
}

#[tokio::test]
async fn curl_with_a_client_certificate() {
    let version = std::process::Command::new("curl").arg("--version").output();
    let version =
        version.expect("the `curl` binary is required for this test (apt-get install curl)");
    assert!(version.status.success(), "curl --version failed");

    let pki = pki();
    let client = spiffe_client(&pki.ca, false);
    let dir = std::env::temp_dir().join(format!("etdi-auth-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_path = write("ca.pem", &pki.ca.pem);
    let cert_path = write("client.pem", &client.cert_pem);
    let key_path = write("client.key", &client.key_pem);

    let (port, verdict) = serve_once(pki.server_config.clone()).await;
    let out = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
        .arg(&ca_path)
        .arg("--cert")
        .arg(&cert_path)
        .arg("--key")
        .arg(&key_path)
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "subject=spiffe://example.org/ns/tools/sa/agent\n");
    let (principal, _) = verdict.await.unwrap().unwrap();
    assert_eq!(principal.subject, "spiffe://example.org/ns/tools/sa/agent");

    // Without a client certificate curl gets no answer.
    let (port, verdict) = serve_once(pki.server_config.clone()).await;
    let out = tokio::process::Command::new("curl")
        .args(["--silent", "--max-time", "20", "--cacert"])
        .arg(&ca_path)
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success() || out.stdout.is_empty());
    assert!(verdict.await.unwrap().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
