//! The attack suite: each test is one attack class, run as an outside
//! attacker would, over real HTTP against a real server process
//! (`etdi-load-server`: bearer tokens, `Strict` policy, request signatures
//! required, file audit log, state on disk). Each asserts what the attacker
//! gets (status, JSON-RPC error code) and what the operator sees (the audit
//! record). docs/THREAT_MODEL.md names the test that proves each defence;
//! every future security fix adds its attack here.
// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::load_server::{AUDIENCE, CLIENT_ID, Server, World};
use etdi_core::CallChain;
use etdi_crypto::UnixTime;
use etdi_crypto::request::{CallToSign, RequestSigner};
use serde_json::{Map, Value, json};

const PROTOCOL: &str = "2025-06-18";

/// A raw MCP session of one bearer token: what an attacker's script does.
struct Raw<'a> {
    http: reqwest::Client,
    url: &'a str,
    token: String,
    session: Option<String>,
}

/// One HTTP answer: status, session header, and the JSON-RPC message in it
/// (JSON or the first SSE `data:` event holding one), if any.
struct Answer {
    status: u16,
    session: Option<String>,
    body: String,
    message: Option<Value>,
}

fn parse_answer(status: u16, session: Option<String>, body: String) -> Answer {
    let message = serde_json::from_str::<Value>(&body).ok().or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    });
    Answer {
        status,
        session,
        body,
        message,
    }
}

impl<'a> Raw<'a> {
    fn new(url: &'a str, token: String) -> Self {
        Raw {
            http: reqwest::Client::new(),
            url,
            token,
            session: None,
        }
    }

    async fn send(&self, method: reqwest::Method, body: Option<String>) -> Answer {
        let mut req = self
            .http
            .request(method, self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let session = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        parse_answer(status, session, r.text().await.unwrap())
    }

    /// `initialize` and `notifications/initialized`; keeps the session id.
    async fn open(&mut self) -> Answer {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "attacker", "version": "0"}}});
        let a = self
            .send(reqwest::Method::POST, Some(init.to_string()))
            .await;
        if a.status == 200 {
            self.session = a.session.clone();
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            let n = self
                .send(reqwest::Method::POST, Some(note.to_string()))
                .await;
            assert_eq!(n.status, 202, "notifications/initialized: {}", n.body);
        }
        a
    }

    /// Posts a raw JSON-RPC body on the session.
    async fn post(&self, body: &str) -> Answer {
        self.send(reqwest::Method::POST, Some(body.to_owned()))
            .await
    }
}

/// A `tools/call` body whose `arguments` are the raw JSON text `args_text`
/// (so numbers keep every digit), signed over `signed_args`.
fn signed_call(world: &World, id: u64, tool: &str, signed_args: &Value, args_text: &str) -> String {
    let args: Map<String, Value> = signed_args.as_object().unwrap().clone();
    let sig = RequestSigner::new(CLIENT_ID)
        .sign(
            &world.client_key,
            &CallToSign {
                audience: AUDIENCE,
                tool,
                arguments: Some(&args),
                chain: &CallChain::new(),
            },
            UnixTime::now(),
        )
        .unwrap();
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args_text},"_meta":{{"{}":"{sig}"}}}}}}"#,
        etdi_server::wire::META_REQUEST_SIGNATURE
    )
}

fn error_code(a: &Answer) -> Option<i64> {
    a.message.as_ref()?.pointer("/error/code")?.as_i64()
}

/// The text the tool answered with, parsed as JSON.
fn tool_output(a: &Answer) -> Value {
    let m = a
        .message
        .as_ref()
        .unwrap_or_else(|| panic!("no JSON-RPC answer: HTTP {} {}", a.status, a.body));
    assert!(m.get("error").is_none(), "refused: {m}");
    let text = m
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text content: {m}"));
    serde_json::from_str(text).unwrap()
}

/// Every record of the server's audit log, as JSON.
fn audit_records(state: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for (_, f) in etdi_audit::sink::file::list_log_files(&state.join("audit"), "audit").unwrap() {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                out.push(v);
            }
        }
    }
    out
}

/// True when some audit record is a denial with reason `code`.
fn audited_denial(state: &Path, code: &str) -> bool {
    audit_records(state).iter().any(|r| {
        let e = r.get("event").unwrap_or(r);
        e["outcome"] == "denied" && e.to_string().contains(code)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Seam: the signed digest and the numbers a handler reads. The arguments
/// digest is RFC 8785 over IEEE doubles, while a handler deserialises
/// exact integers: a call signed with 2^53 and sent with 2^53 + 1 had the
/// same digest and the handler got 2^53 + 1. Now any signed call whose
/// arguments hold a number that its canonical text does not read back as
/// is refused (`-32012`, audited), and any other reaches the handler
/// unchanged.
#[test]
fn signed_arguments_are_exactly_what_the_handler_reads() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    runtime().block_on(async {
        let mut raw = Raw::new(&server.url, world.token("alice"));
        assert_eq!(raw.open().await.status, 200);
        let cases: [(&str, Value, &str); 2] = [
            // Signed 2^53, sent 2^53 + 1: the same double.
            (
                "2^53+1 for 2^53",
                json!({"amount": 9007199254740992u64}),
                r#"{"amount":9007199254740993}"#,
            ),
            // Signed 10^18, sent 10^18 + 64 (half an ulp away).
            (
                "1e18+64 for 1e18",
                json!({"amount": 1_000_000_000_000_000_000u64}),
                r#"{"amount":1000000000000000064}"#,
            ),
        ];
        for (i, (what, signed, sent)) in cases.iter().enumerate() {
            let a = raw
                .post(&signed_call(&world, 10 + i as u64, "amount", signed, sent))
                .await;
            assert_eq!(error_code(&a), Some(-32012), "{what}: {}", a.body);
        }
        // The control: exact integers (2^53 and 10^18 are doubles) pass and
        // the handler reads exactly what was signed.
        for n in [9007199254740992u64, 1_000_000_000_000_000_000] {
            let args = json!({"amount": n});
            let a = raw
                .post(&signed_call(&world, 20, "amount", &args, &args.to_string()))
                .await;
            assert_eq!(tool_output(&a)["amount"], json!(n), "{}", a.body);
        }
        // Nor can such a number be signed: the signer refuses it too.
        let inexact = json!({"amount": 9007199254740993u64});
        let refused = RequestSigner::new(CLIENT_ID).sign(
            &world.client_key,
            &CallToSign {
                audience: AUDIENCE,
                tool: "amount",
                arguments: inexact.as_object(),
                chain: &CallChain::new(),
            },
            UnixTime::now(),
        );
        assert!(refused.is_err(), "signed a number that is not a double");
    });
    server.stop();
    assert!(
        audited_denial(state.path(), "invalid_request_signature"),
        "the refusals are not in the audit log"
    );
}

/// Seam: replay memory and the process. The nonce store was in memory, so
/// a signed request accepted before a crash was accepted again after the
/// restart, anywhere in its validity window. The nonces are journalled in
/// the state directory before the call runs: SIGKILL, restart, replay ->
/// `-32013`.
#[test]
fn a_request_accepted_before_sigkill_is_refused_after_restart() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let rt = runtime();
    let body = signed_call(
        &world,
        1,
        "echo",
        &json!({"text": "pay once"}),
        r#"{"text":"pay once"}"#,
    );
    let server = Server::start(&world, state.path(), false, "step");
    rt.block_on(async {
        let mut raw = Raw::new(&server.url, world.token("alice"));
        raw.open().await;
        let a = raw.post(&body).await;
        assert_eq!(tool_output(&a)["text"], "pay once");
    });
    server.kill();
    let server = Server::start(&world, state.path(), false, "step");
    rt.block_on(async {
        let mut raw = Raw::new(&server.url, world.token("alice"));
        raw.open().await;
        let a = raw.post(&body).await;
        assert_eq!(
            error_code(&a),
            Some(-32013),
            "replayed after restart: {}",
            a.body
        );
    });
    server.stop();
    assert!(audited_denial(state.path(), "replay"));
}

/// Seam: the HTTP session and the token's principal. Holding any valid
/// token and another user's `Mcp-Session-Id`, a `GET` with
/// `Last-Event-ID` took that user's stream and a `DELETE` ended their
/// session. Both are now answered as for an unknown session (`404`) and
/// audited, and the owner's session keeps working.
#[test]
fn another_principals_session_can_be_neither_resumed_nor_ended() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    runtime().block_on(async {
        let mut alice = Raw::new(&server.url, world.token("alice"));
        assert_eq!(alice.open().await.status, 200);
        let stolen = alice.session.clone().unwrap();
        let mut mallory = Raw::new(&server.url, world.token("mallory"));
        mallory.session = Some(stolen);
        let resume = mallory
            .http
            .get(&server.url)
            .bearer_auth(&mallory.token)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", PROTOCOL)
            .header("mcp-session-id", mallory.session.as_deref().unwrap())
            .header("last-event-id", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(resume.status(), 404, "GET on a foreign session");
        let end = mallory.send(reqwest::Method::DELETE, None).await;
        assert_eq!(end.status, 404, "DELETE on a foreign session: {}", end.body);
        let call = mallory
            .post(&signed_call(
                &world,
                3,
                "echo",
                &json!({"text": "x"}),
                r#"{"text":"x"}"#,
            ))
            .await;
        assert_eq!(call.status, 404, "POST on a foreign session: {}", call.body);
        // The owner's session is untouched.
        let a = alice
            .post(&signed_call(
                &world,
                4,
                "echo",
                &json!({"text": "still mine"}),
                r#"{"text":"still mine"}"#,
            ))
            .await;
        assert_eq!(tool_output(&a)["text"], "still mine");
    });
    server.stop();
    assert!(audited_denial(state.path(), "session_not_owned"));
}

/// One principal cannot fill the session table: a token with no scopes
/// opened 1,017 sessions and every other client got `503` for minutes.
/// Past its quota a principal gets `429` (audited); others still get in.
#[test]
fn one_principal_cannot_fill_the_session_table() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    let quota = etdi_server::Limits::default().max_sessions_per_principal;
    runtime().block_on(async {
        let token = world.token("mallory");
        for i in 0..quota {
            let mut s = Raw::new(&server.url, token.clone());
            assert_eq!(s.open().await.status, 200, "session {i} within the quota");
        }
        let mut over = Raw::new(&server.url, token.clone());
        let a = over.open().await;
        assert_eq!(a.status, 429, "session past the quota: {}", a.body);
        let mut bob = Raw::new(&server.url, world.token("bob"));
        assert_eq!(
            bob.open().await.status,
            200,
            "another principal is locked out"
        );
    });
    server.stop();
    assert!(audited_denial(state.path(), "limit_exceeded"));
}

/// Seam: an audit event and the size of its input. A JSON-RPC `id` over
/// 512 KiB made every event of the call too large to record, and the real
/// denial still went out with no record. Attacker-controlled fields are
/// now bounded in every event (a prefix, the length and the SHA-256 of the
/// whole), so the call is recorded and answered; a denial that still
/// cannot be recorded is answered only as an internal error.
#[test]
fn an_oversized_request_id_cannot_evade_the_audit_log() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    let id = "A".repeat(600 * 1024);
    runtime().block_on(async {
        let mut raw = Raw::new(&server.url, world.token("alice"));
        assert_eq!(raw.open().await.status, 200);
        // Unsigned, so the Strict server refuses it at the signature step.
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x"}}}}}}"#
        );
        let a = raw.post(&body).await;
        assert_eq!(error_code(&a), Some(-32012), "HTTP {}", a.status);
    });
    server.stop();
    let records = audit_records(state.path());
    let of_the_call: Vec<&Value> = records
        .iter()
        .map(|r| r.get("event").unwrap_or(r))
        .filter(|e| {
            e["request_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("AAAA") && s.contains("truncated: 614400 bytes"))
        })
        .collect();
    let denial = of_the_call
        .iter()
        .find(|e| e["outcome"] == "denied")
        .unwrap_or_else(|| panic!("no denial recorded for the call: {of_the_call:?}"));
    assert!(
        denial.to_string().contains("request_signature_required"),
        "{denial}"
    );
    assert!(
        of_the_call.iter().all(|e| e.to_string().len() < 4096),
        "the records are bounded"
    );
}

/// Raises this test process's open-file limit (the sockets below).
fn raise_own_fd_limit() {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    )
    .unwrap();
}

/// Opens `n` TCP connections to `url`'s host that send nothing.
async fn idle_sockets(url: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let authority = url["http://".len()..].split('/').next().unwrap().to_owned();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(tokio::net::TcpStream::connect(&authority).await.unwrap());
    }
    out
}

/// How many of `sockets` the server closes (EOF or reset) within `limit`,
/// all watched at once.
async fn closed_by_server(
    sockets: Vec<tokio::net::TcpStream>,
    limit: std::time::Duration,
) -> usize {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return true,
                        Ok(Ok(_)) => continue,
                        Err(_) => return false,
                    }
                }
            })
        })
        .collect();
    let mut closed = 0;
    for t in tasks {
        if t.await.unwrap() {
            closed += 1;
        }
    }
    closed
}

/// Unauthenticated connection exhaustion: 1,000 idle or trickling sockets
/// stayed open 45 s, and 1,030 made the server unreachable at the common
/// 1,024 file-descriptor limit. Now the soft limit is raised to the hard
/// one, a connection that sends no complete request head within the
/// header timeout is closed, and a legitimate client gets through while
/// 2,000 idle and trickling sockets are open.
#[test]
fn idle_and_trickling_connections_do_not_lock_clients_out() {
    raise_own_fd_limit();
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &world,
        state.path(),
        false,
        "step",
        &[("ETDI_LOAD_HEADER_TIMEOUT_MS", "2000")],
    );
    runtime().block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut idle = idle_sockets(&server.url, 1000).await;
        let mut slow = idle_sockets(&server.url, 1000).await;
        // A request head one byte at a time, never finished (bounded: 20
        // rounds of 100 ms).
        for s in &mut slow {
            let _ = s.write_all(b"POST /mcp HTTP/1.1\r\n").await;
        }
        let trickle = tokio::spawn(async move {
            for _ in 0..20 {
                for s in &mut slow {
                    let _ = s.write_all(b"x").await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            slow
        });
        // A legitimate client still gets through.
        let mut alice = Raw::new(&server.url, world.token("alice"));
        let opened = tokio::time::timeout(std::time::Duration::from_secs(5), alice.open())
            .await
            .expect("a legitimate client waited more than 5 s");
        assert_eq!(opened.status, 200);
        let a = alice
            .post(&signed_call(
                &world,
                1,
                "echo",
                &json!({"text": "through"}),
                r#"{"text":"through"}"#,
            ))
            .await;
        assert_eq!(tool_output(&a)["text"], "through");
        // The server drops them after its 2 s header timeout.
        let slow = trickle.await.unwrap();
        idle.extend(slow);
        let closed = closed_by_server(idle, std::time::Duration::from_secs(10)).await;
        assert_eq!(closed, 2000, "sockets the server left open");
    });
    server.stop();
}

/// Past `max_connections` a new connection gets `503` and is closed; the
/// slots come back as the header timeout frees idle sockets.
#[test]
fn past_the_connection_cap_a_connection_is_refused_clearly() {
    raise_own_fd_limit();
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &world,
        state.path(),
        false,
        "step",
        &[
            ("ETDI_LOAD_MAX_CONNECTIONS", "64"),
            ("ETDI_LOAD_HEADER_TIMEOUT_MS", "1000"),
        ],
    );
    runtime().block_on(async {
        use tokio::io::AsyncReadExt;
        let held = idle_sockets(&server.url, 64).await;
        let mut extra = idle_sockets(&server.url, 1).await.pop().unwrap();
        let mut answer = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            extra.read_to_string(&mut answer),
        )
        .await
        .expect("no answer past the cap")
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        assert!(answer.contains("too many connections"), "{answer:?}");
        // Once the idle ones are timed out, a client gets in.
        let closed = closed_by_server(held, std::time::Duration::from_secs(10)).await;
        assert_eq!(closed, 64, "idle sockets the server left open");
        let mut alice = Raw::new(&server.url, world.token("alice"));
        assert_eq!(alice.open().await.status, 200);
    });
    server.stop();
}

/// Token claims from an outside corpus: an `exp` that does not fit in i64
/// seconds (1e300, 2^64 + 1) was read as "never expires", and a token
/// minted for ten years worked for ten years. Both are refused (`401
/// invalid_token`, audited); a token within the issuer's maximum lifetime
/// (24 h by default) is accepted.
#[test]
fn tokens_that_never_expire_are_refused() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    let now = UnixTime::now().as_secs();
    let claims = |exp: Value| {
        json!({"iss": common::load_server::ISSUER, "sub": "mallory", "aud": AUDIENCE,
            "client_id": CLIENT_ID, "iat": now, "exp": exp, "jti": format!("t-{exp}"),
            "scope": "demo:read"})
    };
    runtime().block_on(async {
        for exp in [
            json!(1e300),
            serde_json::from_str::<Value>("18446744073709551617").unwrap(),
            json!(now + 10 * 365 * 24 * 3600),
        ] {
            let mut raw = Raw::new(&server.url, world.token_with(claims(exp.clone())));
            let a = raw.open().await;
            assert_eq!(a.status, 401, "exp {exp}: {}", a.body);
        }
        let mut ok = Raw::new(&server.url, world.token_with(claims(json!(now + 3600))));
        assert_eq!(ok.open().await.status, 200);
    });
    server.stop();
    let failed = audit_records(state.path())
        .iter()
        .filter(|r| r["event"]["kind"] == "authentication_failed")
        .count();
    assert_eq!(failed, 3, "each refused token is audited");
}

/// `Authorization: Bearer ` with no token was treated as no token (`401`);
/// RFC 6750 §3.1 makes it a malformed request: `400 invalid_request`,
/// audited.
#[test]
fn an_empty_bearer_token_is_an_invalid_request() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    runtime().block_on(async {
        for header in ["Bearer ", "Bearer", "bearer    "] {
            let r = reqwest::Client::new()
                .post(&server.url)
                .header("authorization", header)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{header:?}");
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains("invalid_request"), "{challenge}");
        }
    });
    server.stop();
    assert!(
        audit_records(state.path())
            .iter()
            .any(|r| r.to_string().contains("empty bearer token"))
    );
}

/// `Origin` was not checked, so a web page in the user's browser could
/// drive a local server (the MCP transport spec says servers must validate
/// it). A request with an origin that is not allowed gets `403`; clients
/// that send none (every non-browser MCP client) are unaffected.
#[test]
fn a_browser_origin_that_is_not_allowed_is_refused() {
    let world = World::new();
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(&world, state.path(), false, "step");
    runtime().block_on(async {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "page", "version": "0"}}});
        let r = reqwest::Client::new()
            .post(&server.url)
            .bearer_auth(world.token("alice"))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let mut alice = Raw::new(&server.url, world.token("alice"));
        assert_eq!(alice.open().await.status, 200);
    });
    server.stop();
}
