//! Test helpers: a tiny loopback HTTP server standing in for an IdP, and
//! signing keys that mint tokens with arbitrary headers and payloads.
// Test code: helpers outside `#[test]` functions may unwrap and index too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One canned response.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(body: Value) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
        }
    }
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A loopback HTTP/1.1 server with per-path replies and request counters.
#[derive(Clone)]
pub struct MockServer {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Handler>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = MockServer {
            base,
            routes: Arc::default(),
            seen: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                // As every etdi endpoint does (etdi_server::listener).
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                tokio::spawn(async move {
                    // One request per connection is enough for these tests.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, content_length) = loop {
                        let n = match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            break (pos + 4, len);
                        }
                    };
                    while buf.len() < head_end + content_length {
                        let n = match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.lines();
                    let request_line = lines.next().unwrap_or("");
                    let mut parts = request_line.split(' ');
                    let method = parts.next().unwrap_or("").to_owned();
                    let path = parts.next().unwrap_or("").to_owned();
                    let headers = lines
                        .filter_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        })
                        .collect();
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + content_length])
                        .to_string();
                    let seen = Seen {
                        method,
                        path: path.clone(),
                        headers,
                        body,
                    };
                    s.seen.lock().unwrap().push(seen.clone());
                    let route_path = path.split('?').next().unwrap_or("").to_owned();
                    let handler = s.routes.lock().unwrap().get(&route_path).cloned();
                    let reply = match handler {
                        Some(h) => h(&seen),
                        None => Reply::status(404),
                    };
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&reply.body);
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn route(&self, path: &str, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), Arc::new(handler));
    }

    pub fn reply(&self, path: &str, reply: Reply) {
        self.route(path, move |_| reply.clone());
    }

    pub fn hits(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .count()
    }

    pub fn total_hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

/// A signing key with its public JWK.
pub enum TestKey {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    P521(EcdsaKeyPair),
}

impl TestKey {
    pub fn rsa() -> Self {
        TestKey::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
    }

    pub fn p256() -> Self {
        TestKey::P256(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn p384() -> Self {
        TestKey::P384(EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap())
    }

    pub fn p521() -> Self {
        TestKey::P521(EcdsaKeyPair::generate(&signature::ECDSA_P521_SHA512_FIXED_SIGNING).unwrap())
    }

    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            TestKey::Rsa(k) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
            TestKey::P256(k) | TestKey::P384(k) | TestKey::P521(k) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = match len {
                    32 => "P-256",
                    48 => "P-384",
                    _ => "P-521",
                };
                json!({"kty": "EC", "kid": kid, "use": "sig", "crv": crv,
                       "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
        }
    }

    /// RSA public key as PKCS#1 DER (what `HS256 with the public key` uses).
    pub fn rsa_public_der(&self) -> Vec<u8> {
        match self {
            TestKey::Rsa(k) => k.public_key().as_ref().to_vec(),
            _ => panic!("not RSA"),
        }
    }

    /// Signs `header.payload` with the algorithm matching the key type
    /// (`RS256` / `ES256` / `ES384` / `ES512`), or `PS256` when `pss`.
    pub fn sign_input(&self, input: &str, pss: bool) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                let enc: &'static dyn signature::RsaEncoding = if pss {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                k.sign(enc, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
            TestKey::P256(k) | TestKey::P384(k) | TestKey::P521(k) => {
                k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
            }
        }
    }

    /// A compact JWS over raw header and payload text (so tests can write
    /// duplicate members or wrong types).
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let pss = header.contains("\"PS256\"");
        let sig = self.sign_input(&input, pss);
        format!("{input}.{}", b64(sig))
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
