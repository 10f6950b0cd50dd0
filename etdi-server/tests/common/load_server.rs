//! The `etdi-load-server` process as the load, fault and attack tests
//! drive it: a token issuer and a request-signing client key of the test's
//! own (`World`), and the server started with them on a state directory
//! (`Server`), announcing its URL and keys on its first line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use etdi_crypto::{Algorithm, CryptoProvider, Jwk, SigningKey, UnixTime, VerifyingKey};
use serde_json::{Value, json};

/// The server's identity, independent of its port so that a restarted
/// server (on another port) is the same server to tokens, signatures and
/// approvals.
pub const AUDIENCE: &str = "https://load.etdi.test/mcp";
pub const ISSUER: &str = "https://issuer.load.test";

/// The OAuth client every caller uses; it signs the requests.
pub const CLIENT_ID: &str = "etdi-load";

/// The token issuer and the client's request-signing key.
pub struct World {
    pub issuer_key: SigningKey,
    pub client_key: Arc<SigningKey>,
    pub http: reqwest::Client,
}

impl World {
    pub fn new() -> Self {
        let p = CryptoProvider::get_default();
        World {
            issuer_key: SigningKey::generate(p, Algorithm::ES256).unwrap(),
            client_key: Arc::new(SigningKey::generate(p, Algorithm::ES256).unwrap()),
            http: reqwest::Client::new(),
        }
    }

    pub fn jwks(&self) -> Value {
        let jwk: Value =
            serde_json::from_str(&self.issuer_key.verifying_key().to_jwk().to_json()).unwrap();
        json!({"keys": [jwk]})
    }

    /// An RFC 9068 access token of `subject` for the client `etdi-load`.
    pub fn token(&self, subject: &str) -> String {
        let now = UnixTime::now().as_secs();
        self.token_with(json!({
            "iss": ISSUER, "sub": subject, "aud": AUDIENCE, "client_id": CLIENT_ID,
            "iat": now, "exp": now + 3600, "jti": format!("tok-{subject}-{now}"),
            "scope": "demo:read",
        }))
    }

    /// An access token with exactly these claims, signed by the issuer.
    pub fn token_with(&self, claims: Value) -> String {
        let header = etdi_crypto::jws::JwsHeader::new(Algorithm::ES256)
            .with_kid(self.issuer_key.kid().to_string())
            .with_typ("at+jwt");
        etdi_crypto::jws::sign(&self.issuer_key, &header, claims.to_string().as_bytes()).unwrap()
    }
}

/// The server process. Dropping it kills the process.
pub struct Server {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub url: String,
    pub provider_jwk: Value,
    pub audit_jwk: Value,
    pub records_at_open: u64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time of the process whose `/proc/<pid>/stat` is
/// at `path`, in seconds (Linux reports it in USER_HZ = 100 ticks).
pub fn cpu_secs(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap();
    // The command name may contain spaces; the fields after it do not.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the name.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

pub fn verifying_key(jwk: &Value) -> VerifyingKey {
    let jwk = Jwk::from_json(&jwk.to_string()).unwrap();
    VerifyingKey::from_jwk(CryptoProvider::get_default(), &jwk, None).unwrap()
}

impl Server {
    pub fn start(world: &World, state: &Path, durable: bool, granularity: &str) -> Server {
        Server::start_with(world, state, durable, granularity, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with(
        world: &World,
        state: &Path,
        durable: bool,
        granularity: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_etdi-load-server"))
            .envs(env.iter().copied())
            .env("ETDI_LOAD_STATE", state)
            .env("ETDI_LOAD_AUDIENCE", AUDIENCE)
            .env("ETDI_LOAD_ISSUER", ISSUER)
            .env("ETDI_LOAD_JWKS", world.jwks().to_string())
            .env("ETDI_LOAD_SIGNER", CLIENT_ID)
            .env(
                "ETDI_LOAD_SIGNER_JWK",
                world.client_key.verifying_key().to_jwk().to_json(),
            )
            .env("ETDI_LOAD_DURABLE", if durable { "1" } else { "0" })
            .env("ETDI_LOAD_GRANULARITY", granularity)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Bounded: a server that never announces itself fails the test.
        let first = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| {
                panic!(
                    "the server did not announce itself within 60 s ({e}); stderr: {:?}",
                    stderr.lock().unwrap()
                )
            });
        let v: Value = serde_json::from_str(&first).unwrap();
        Server {
            child,
            lines,
            stderr,
            url: v["url"].as_str().unwrap().to_owned(),
            provider_jwk: v["provider_jwk"].clone(),
            audit_jwk: v["audit_jwk"].clone(),
            records_at_open: v["records_at_open"].as_u64().unwrap(),
        }
    }

    /// The server's peak resident set size (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc/<pid>/status: {status}"))
    }

    /// CPU time the server has used so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Stops the server gracefully (closing its stdin) and returns its last
    /// report. Fails if it does not exit cleanly within 60 s.
    pub fn stop(mut self) -> Value {
        drop(self.child.stdin.take());
        let stopped = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| {
                panic!(
                    "the server did not stop within 60 s ({e}); stderr: {:?}",
                    self.stderr.lock().unwrap()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "server exit {status}; stderr: {:?}",
            self.stderr.lock().unwrap()
        );
        serde_json::from_str(&stopped).unwrap()
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }
}
