//! Everything the targets trust, and every input the fixture produced that
//! should verify, built once per process from fixed keys and a fixed clock.
//!
//! Determinism matters twice: the committed seed corpus must contain
//! exactly the tokens built here (a unit test checks it), and a verifier
//! accepting anything outside these sets is reported as a finding. So the
//! keys are fixed PKCS#8 files (`fuzz/keys/`, test keys made for this
//! harness and used nowhere else), signing uses deterministic algorithms
//! (Ed25519, RSA PKCS#1 v1.5, and ECDSA through the RustCrypto backend,
//! which follows RFC 6979), and every `jti` is a fixed string.
//! Verification uses the aws-lc-rs backend, the production default.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use etdi_audit::record::{EncodedEvent, record_hash, write_record_line};
use etdi_audit::{Checkpoint, HmacCheckpointKey};
use etdi_core::{
    AuditEvent, AuthMethod, CallChain, Digest, EventKind, Outcome, PrincipalRef, ServerId,
    Timestamp, ToolDefinition, ToolId, ToolRef, ToolVersion,
};
use etdi_crypto::advertised::tool_from_definition;
use etdi_crypto::attestation::{ATTESTATION_TYP, AttestationSigner};
use etdi_crypto::chain::{HOP_TYP, HopClaims};
use etdi_crypto::claims::ETDI_VER;
use etdi_crypto::jws::{self, JwsHeader};
use etdi_crypto::request::{CallToSign, REQUEST_TYP, RequestSigner};
use etdi_crypto::{Algorithm, SigningKey, UnixTime, VerifyingKey};
use serde_json::{Map, Value, json};

/// The fixed "now" of every verification, in seconds since the epoch.
pub const NOW: u64 = 1_700_000_000;
/// The resource server: access-token audience, request-signature audience
/// and this server's id in call chains.
pub const RESOURCE: &str = "https://files.example.com/mcp";
/// The OAuth issuer of access tokens.
pub const ISSUER: &str = "https://idp.example.com";
/// The request signer.
pub const CLIENT: &str = "client-1";
/// The tool provider and attestation issuer.
pub const PROVIDER: &str = "com.example";
/// Upstream servers of the call chains.
pub const SERVER_A: &str = "https://a.example/mcp";
/// The server between [`SERVER_A`] and [`RESOURCE`].
pub const SERVER_B: &str = "https://b.example/mcp";
/// The `typ` of the plain JWS seeds.
pub const JWS_TYP: &str = "etdi-fuzz+jwt";
/// A `crit` member the strict JWS validation understands.
pub const JWS_CRIT: &str = "etdi-fuzz";
/// The payload of detached JWS seeds.
pub const DETACHED_PAYLOAD: &[u8] = b"{\"detached\":true}";
/// The audit log's file prefix.
pub const AUDIT_PREFIX: &str = "audit";

/// The fixture's keys: the signing halves (RustCrypto, deterministic) and
/// the same public keys imported into aws-lc-rs for verification.
pub struct Keys {
    /// Ed25519.
    pub ed25519: SigningKey,
    /// P-256 (ES256).
    pub p256: SigningKey,
    /// RSA-2048 (RS256).
    pub rsa: SigningKey,
    /// The three public keys, aws-lc-rs backend.
    pub trusted: Vec<VerifyingKey>,
}

impl Keys {
    /// The aws-lc-rs copy of `key`'s public half (verification always runs
    /// on the production backend).
    pub fn verifier_of(&self, key: &SigningKey) -> VerifyingKey {
        match self.by_kid(key.kid().as_str()) {
            Some(k) => k,
            None => panic!(
                "fuzz fixture: no trusted copy of key {}",
                key.kid().as_str()
            ),
        }
    }

    /// The trusted key with this `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<VerifyingKey> {
        self.trusted
            .iter()
            .find(|k| k.kid().as_str() == kid)
            .cloned()
    }
}

/// Which validations of the JWS target a seed token passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwsValidity {
    /// Any algorithm, any `typ`, no `crit`.
    pub lax: bool,
    /// `typ` [`JWS_TYP`], `kid` required, `crit` [`JWS_CRIT`] understood.
    pub strict: bool,
}

/// An access token the fixture issued and what it should verify to.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The expected principal subject.
    pub subject: String,
    /// True if bound to [`Fixture::client_certificate`] (RFC 8705).
    pub bound: bool,
}

/// The audit log the fixture wrote.
pub struct AuditFixture {
    /// The log file's bytes (`audit-00000000000000000000.jsonl`).
    pub log: Vec<u8>,
    /// The checkpoint file's bytes.
    pub checkpoints: Vec<u8>,
    /// `hash` of record `seq`, by `seq`.
    pub hashes: Vec<Digest>,
    /// The checkpoint key.
    pub key: HmacCheckpointKey,
}

/// Everything built once.
pub struct Fixture {
    /// The keys.
    pub keys: Keys,
    /// Plain compact JWS the fixture signed, with their payloads.
    pub jws: BTreeMap<String, (Vec<u8>, JwsValidity)>,
    /// Detached JWS over [`DETACHED_PAYLOAD`].
    pub jws_detached: BTreeSet<String>,
    /// Access tokens.
    pub access_tokens: BTreeMap<String, IssuedToken>,
    /// The DER bytes a bound token is bound to.
    pub client_certificate: Vec<u8>,
    /// Tool definitions (used by several targets).
    pub tools: Vec<ToolDefinition>,
    /// Attestations, with the definition digest each one attests.
    pub attestations: BTreeMap<String, Digest>,
    /// The advertised MCP `Tool` objects carrying those attestations.
    pub advertised: Vec<Map<String, Value>>,
    /// Hop chains addressed to [`RESOURCE`], outermost first.
    pub chains: Vec<Vec<String>>,
    /// Request signatures.
    pub requests: BTreeSet<String>,
    /// `tools/call` params objects carrying those signatures (and chains).
    pub envelopes: Vec<Value>,
    /// The audit log.
    pub audit: AuditFixture,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| match build() {
        Ok(f) => f,
        // The fixture is the harness's own setup: failing to build it is a
        // broken harness, reported as loudly as a finding.
        Err(e) => panic!("fuzz fixture: {e}"),
    })
}

/// The verification time as etdi-crypto sees it.
pub fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

type Result<T> = std::result::Result<T, String>;

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

fn build() -> Result<Fixture> {
    let keys = keys()?;
    let (jws, jws_detached) = jws_tokens(&keys)?;
    let client_certificate = b"0\x82\x01\x0afuzz fixture client certificate (not DER)".to_vec();
    let access_tokens = access_tokens(&keys, &client_certificate)?;
    let tools = tools()?;
    let (attestations, advertised) = attestations(&keys, &tools)?;
    let chains = chains(&keys)?;
    let (requests, envelopes) = requests(&keys, &chains)?;
    let audit = audit()?;
    Ok(Fixture {
        keys,
        jws,
        jws_detached,
        access_tokens,
        client_certificate,
        tools,
        attestations,
        advertised,
        chains,
        requests,
        envelopes,
        audit,
    })
}

fn keys() -> Result<Keys> {
    let signer = etdi_crypto::backend::rust_crypto::provider();
    let verifier = etdi_crypto::backend::aws_lc::provider();
    let load = |pem: &str, alg| SigningKey::from_pkcs8_pem(&signer, pem, alg);
    let ed25519 =
        load(include_str!("../keys/ed25519.pem"), Algorithm::EdDSA).map_err(err("ed25519 key"))?;
    let p256 = load(include_str!("../keys/p256.pem"), Algorithm::ES256).map_err(err("p256 key"))?;
    let rsa =
        load(include_str!("../keys/rsa2048.pem"), Algorithm::RS256).map_err(err("rsa key"))?;
    let mut trusted = Vec::new();
    for k in [&ed25519, &p256, &rsa] {
        let der = k.verifying_key().to_spki_der().map_err(err("spki"))?;
        let v = VerifyingKey::from_spki_der(&verifier, &der, k.algorithm())
            .map_err(err("import public key"))?;
        if v.kid() != k.kid() {
            return Err("a public key's kid differs between backends".into());
        }
        trusted.push(v);
    }
    Ok(Keys {
        ed25519,
        p256,
        rsa,
        trusted,
    })
}

fn signing_keys(keys: &Keys) -> [&SigningKey; 3] {
    [&keys.ed25519, &keys.p256, &keys.rsa]
}

type JwsSets = (BTreeMap<String, (Vec<u8>, JwsValidity)>, BTreeSet<String>);

fn jws_tokens(keys: &Keys) -> Result<JwsSets> {
    let mut plain = BTreeMap::new();
    let mut detached = BTreeSet::new();
    for key in signing_keys(keys) {
        let payload = format!("{{\"iss\":\"fuzz\",\"alg\":\"{}\"}}", key.algorithm()).into_bytes();
        let typed = JwsHeader::for_key(key).with_typ(JWS_TYP);
        let token = jws::sign(key, &typed, &payload).map_err(err("jws"))?;
        plain.insert(
            token,
            (
                payload.clone(),
                JwsValidity {
                    lax: true,
                    strict: true,
                },
            ),
        );
        let critical = typed
            .clone()
            .with_critical_param(JWS_CRIT, json!(1))
            .map_err(err("crit"))?;
        let token = jws::sign(key, &critical, &payload).map_err(err("jws"))?;
        plain.insert(
            token,
            (
                payload.clone(),
                JwsValidity {
                    lax: false,
                    strict: true,
                },
            ),
        );
        let untyped = JwsHeader::for_key(key);
        let token = jws::sign(key, &untyped, b"").map_err(err("jws"))?;
        plain.insert(
            token,
            (
                Vec::new(),
                JwsValidity {
                    lax: true,
                    strict: false,
                },
            ),
        );
        let token =
            jws::sign_detached(key, &typed, DETACHED_PAYLOAD).map_err(err("detached jws"))?;
        detached.insert(token);
    }
    Ok((plain, detached))
}

fn access_tokens(keys: &Keys, certificate: &[u8]) -> Result<BTreeMap<String, IssuedToken>> {
    let mut out = BTreeMap::new();
    let thumb = URL_SAFE_NO_PAD.encode(Digest::of(certificate).as_bytes());
    for (i, key) in signing_keys(keys).into_iter().enumerate() {
        for bound in [false, true] {
            let subject = format!("user-{i}{}", if bound { "-bound" } else { "" });
            let mut claims = json!({
                "iss": ISSUER,
                "sub": subject,
                "aud": RESOURCE,
                "client_id": CLIENT,
                "iat": NOW - 10,
                "exp": NOW + 300,
                "jti": format!("fuzz-access-{i}-{bound}"),
                "scope": "file:read audit:log",
            });
            if bound {
                claims["cnf"] = json!({"x5t#S256": thumb});
            }
            let payload = serde_json::to_vec(&claims).map_err(err("claims"))?;
            let header = JwsHeader::for_key(key).with_typ("at+jwt");
            let token = jws::sign(key, &header, &payload).map_err(err("access token"))?;
            out.insert(token, IssuedToken { subject, bound });
        }
    }
    Ok(out)
}

fn tools() -> Result<Vec<ToolDefinition>> {
    let defs = [
        json!({
            "id": "com.example.files/read",
            "name": "secure_file_read",
            "title": "Read a file",
            "version": "1.0.0",
            "description": "Reads a UTF-8 text file from the workspace.",
            "provider": {"id": PROVIDER, "name": "Example Corp", "url": "https://example.com"},
            "inputSchema": {"type": "object", "properties": {
                "path": {"type": "string"}, "maxBytes": {"type": "integer", "minimum": 1}
            }, "required": ["path"]},
            "annotations": {"readOnlyHint": true},
            "permissions": ["file:read", "audit:log"],
            "callChain": {"maxDepth": 3, "blockedCallers": ["com.evil/agent"]},
            "security": {"requireSignature": true, "requireRequestSigning": false}
        }),
        json!({
            "id": "com.example.files/delete",
            "name": "delete_file",
            "version": "2.1.0-beta.1+build.7",
            "provider": {"id": PROVIDER, "name": "Example Corp"},
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
            "outputSchema": {"type": "object", "properties": {"deleted": {"type": "boolean"}}},
            "permissions": ["file:delete"],
            "callChain": {"maxDepth": 1, "allowedCallers": []},
            "security": {"requireRequestSigning": true}
        }),
        json!({
            "id": "com.example.shell/run",
            "name": "run_command",
            "version": "0.1.0",
            "description": "Zero-width\u{200b}joiner, \u{e9}, \"quotes\" and 1e-7 in the schema.",
            "provider": {"id": PROVIDER, "name": "Example Corp"},
            "inputSchema": {"type": "object", "default": {"n": 1.5e-7, "big": 1e21}},
            "icons": [{"src": "https://example.com/i.png", "mimeType": "image/png"}]
        }),
    ];
    defs.into_iter()
        .map(|d| ToolDefinition::from_value(d).map_err(err("tool definition")))
        .collect()
}

type Attested = (BTreeMap<String, Digest>, Vec<Map<String, Value>>);

fn attestations(keys: &Keys, tools: &[ToolDefinition]) -> Result<Attested> {
    let mut tokens = BTreeMap::new();
    let mut advertised = Vec::new();
    let signer = AttestationSigner::new(PROVIDER).with_jti(false);
    for (def, key) in tools.iter().zip([&keys.p256, &keys.ed25519, &keys.rsa]) {
        let claims = signer
            .claims(def, now())
            .map_err(err("attestation claims"))?;
        let payload = serde_json::to_vec(&claims).map_err(err("claims"))?;
        let header = JwsHeader::for_key(key).with_typ(ATTESTATION_TYP);
        let token = jws::sign(key, &header, &payload).map_err(err("attestation"))?;
        tokens.insert(token.clone(), def.digest().map_err(err("digest"))?);
        advertised.push(tool_from_definition(def, Some(&token)).map_err(err("advertise"))?);
    }
    Ok((tokens, advertised))
}

fn jti(n: usize) -> String {
    format!("fuzz-jti-{n:016}")
}

/// A hop exactly as `HopSigner::append` makes it, with a fixed `jti`.
fn hop(
    key: &SigningKey,
    server: &str,
    before: &[String],
    tool: &str,
    scope: &str,
    aud: &str,
    n: usize,
) -> Result<String> {
    let claims = HopClaims {
        etdi_ver: ETDI_VER,
        idx: before.len() as u64,
        iss: server.to_owned(),
        server: server.to_owned(),
        tool: tool.to_owned(),
        principal: "alice".to_owned(),
        scope: scope.to_owned(),
        aud: aud.to_owned(),
        prev: before.last().map(|t| Digest::of(t.as_bytes())),
        iat: now(),
        exp: now().plus(60),
        jti: jti(n),
    };
    let payload = serde_json::to_vec(&claims).map_err(err("hop claims"))?;
    let header = JwsHeader::for_key(key).with_typ(HOP_TYP);
    jws::sign(key, &header, &payload).map_err(err("hop"))
}

fn chains(keys: &Keys) -> Result<Vec<Vec<String>>> {
    // A (ES256) -> B (EdDSA) -> RESOURCE, and B -> RESOURCE directly.
    let h0 = hop(
        &keys.p256,
        SERVER_A,
        &[],
        "com.a/agent",
        "file:read file:write",
        SERVER_B,
        1,
    )?;
    let h1 = hop(
        &keys.ed25519,
        SERVER_B,
        std::slice::from_ref(&h0),
        "com.b/summarise",
        "file:read",
        RESOURCE,
        2,
    )?;
    let single = hop(
        &keys.ed25519,
        SERVER_B,
        &[],
        "com.b/summarise",
        "file:read audit:log",
        RESOURCE,
        3,
    )?;
    Ok(vec![vec![h0, h1], vec![single]])
}

/// The call chain a verified hop list yields (server, tool, principal).
fn call_chain(hops: &[(&str, &str)]) -> Result<CallChain> {
    let mut chain = CallChain::new();
    for (server, tool) in hops {
        chain
            .push(etdi_core::Hop {
                server: ServerId::parse(server).map_err(err("server id"))?,
                tool: ToolId::parse(tool).map_err(err("tool id"))?,
                principal: "alice".to_owned(),
            })
            .map_err(err("chain"))?;
    }
    Ok(chain)
}

type Requests = (BTreeSet<String>, Vec<Value>);

/// Key, tool, arguments, the chain the signature binds, the hops sent.
type Case<'a> = (
    &'a SigningKey,
    &'a str,
    Option<&'a Value>,
    &'a CallChain,
    Option<&'a Vec<String>>,
);

fn requests(keys: &Keys, chains: &[Vec<String>]) -> Result<Requests> {
    let signer = RequestSigner::new(CLIENT);
    let mut tokens = BTreeSet::new();
    let mut envelopes = Vec::new();
    let args = json!({"path": "docs/readme.md", "maxBytes": 65536, "opts": {"z": 1, "a": [1.5, "\u{e9}"]}});
    let chain_ab = call_chain(&[(SERVER_A, "com.a/agent"), (SERVER_B, "com.b/summarise")])?;
    let chain_b = call_chain(&[(SERVER_B, "com.b/summarise")])?;
    let empty = CallChain::new();
    let cases: [Case<'_>; 4] = [
        (&keys.p256, "secure_file_read", Some(&args), &empty, None),
        (&keys.ed25519, "delete_file", None, &empty, None),
        (
            &keys.p256,
            "secure_file_read",
            Some(&args),
            &chain_ab,
            chains.first(),
        ),
        (
            &keys.ed25519,
            "run_command",
            Some(&args),
            &chain_b,
            chains.get(1),
        ),
    ];
    for (n, (key, tool, arguments, chain, hops)) in cases.into_iter().enumerate() {
        let call = CallToSign {
            audience: RESOURCE,
            tool,
            arguments: arguments.and_then(Value::as_object),
            chain,
        };
        let mut claims = signer.claims(&call, now()).map_err(err("request claims"))?;
        claims.jti = jti(100 + n);
        let payload = serde_json::to_vec(&claims).map_err(err("claims"))?;
        let header = JwsHeader::for_key(key).with_typ(REQUEST_TYP);
        let token = jws::sign(key, &header, &payload).map_err(err("request"))?;
        tokens.insert(token.clone());
        let mut meta = Map::new();
        meta.insert(
            etdi_crypto::advertised::META_REQUEST_SIGNATURE.into(),
            token.into(),
        );
        if let Some(hops) = hops {
            meta.insert(
                etdi_crypto::advertised::META_CALL_CHAIN.into(),
                hops.clone().into(),
            );
        }
        let mut params = Map::new();
        params.insert("name".into(), tool.into());
        if let Some(a) = arguments {
            params.insert("arguments".into(), a.clone());
        }
        params.insert("_meta".into(), meta.into());
        envelopes.push(Value::Object(params));
    }
    // An unsigned call, as a client without a key sends it.
    envelopes.push(json!({"name": "secure_file_read", "arguments": {"path": "a"}}));
    Ok((tokens, envelopes))
}

fn audit() -> Result<AuditFixture> {
    let key = HmacCheckpointKey::new(
        "fuzz-checkpoint",
        b"etdi fuzz checkpoint key, 32+ B".to_vec(),
    );
    let time = |s: i64| Timestamp::from_unix(NOW as i64 + s, 123_000_000).ok_or("timestamp");
    let alice = PrincipalRef {
        subject: "alice".into(),
        issuer: Some(ISSUER.into()),
        client_id: Some(CLIENT.into()),
        auth_method: AuthMethod::BearerJwt,
    };
    let tool = ToolRef {
        id: ToolId::parse("com.example.files/read").map_err(err("tool id"))?,
        name: Some("secure_file_read".into()),
        version: Some(ToolVersion::parse("1.0.0").map_err(err("version"))?),
        digest: Some(Digest::of(b"definition")),
    };
    let kinds = [
        (EventKind::AuthenticationSucceeded, Outcome::Success),
        (EventKind::AuthorizationFailed, Outcome::Denied),
        (EventKind::ToolInvocationCompleted, Outcome::Success),
        (EventKind::ReplayDetected, Outcome::Denied),
        (EventKind::RugPullDetected, Outcome::Denied),
    ];
    let mut log = Vec::new();
    let mut checkpoints = Vec::new();
    let mut hashes = Vec::new();
    let mut prev = etdi_audit::record::GENESIS;
    for (seq, (kind, outcome)) in kinds.into_iter().enumerate() {
        let mut event = AuditEvent::new(
            format!("01933f2e-8b1c-7a4e-9f00-3c2d1e0f4a{seq:02}"),
            time(seq as i64)?,
            kind,
            outcome,
        );
        event.principal = Some(std::sync::Arc::new(alice.clone()));
        event.tool = Some(std::sync::Arc::new(tool.clone()));
        event.server = Some("files".into());
        if outcome == Outcome::Denied {
            event.reason_codes = vec!["missing_permissions".into()];
            event.reason = Some("missing permission(s): file:write \u{e9}\"\\".into());
        }
        event.details.insert("n".into(), json!(seq));
        event.details.insert("f".into(), json!(1.5e-7));
        let encoded = EncodedEvent::new(event).map_err(err("event"))?;
        let seq = seq as u64;
        let hash = record_hash(seq, &prev, encoded.canonical_json());
        write_record_line(&mut log, seq, &prev, &hash, encoded.canonical_json());
        hashes.push(hash);
        prev = hash;
        // Checkpoints after records 2 and 4 (counts 3 and 5).
        if seq == 2 || seq == 4 {
            let cp = Checkpoint::sign(&key, AUDIT_PREFIX, seq + 1, hash, time(seq as i64)?)
                .map_err(err("checkpoint"))?;
            checkpoints.extend(cp.to_line().map_err(err("checkpoint line"))?);
        }
    }
    Ok(AuditFixture {
        log,
        checkpoints,
        hashes,
        key,
    })
}
