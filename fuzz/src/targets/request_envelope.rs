//! The ETDI envelope of a `tools/call` as a server receives it: the params
//! object with `name`, `arguments` and `_meta` holding
//! `dev.etdi/request-signature` (a compact `etdi-req+jwt`) and
//! `dev.etdi/call-chain` (an array of hops). The members are read the way
//! etdi-server reads them (strings only, hop count bounded), the chain is
//! verified and recorded, then the request signature is verified against
//! the call as received (name, canonical arguments, verified chain) and its
//! nonce recorded.
//!
//! Invariants: no panic; a request signature verifies only if the fixture
//! made exactly it, for exactly this tool, these arguments (any spelling
//! with the same canonical form) and this chain; the same request recorded
//! twice is a replay; every fixture envelope verifies.

use std::sync::OnceLock;

use etdi_core::CallChain;
use etdi_core::canonical::parse_json;
use etdi_crypto::advertised::{META_CALL_CHAIN, META_REQUEST_SIGNATURE};
use etdi_crypto::chain::MAX_HOPS;
use etdi_crypto::replay::MemoryNonceStore;
use etdi_crypto::request::{self, ReceivedCall, RequestVerifier};
use etdi_crypto::trust::IssuerKeys;
use serde_json::{Map, Value};

use super::{JOSE_DICTIONARY, seed, text};
use crate::fixture::{CLIENT, RESOURCE, fixture, now};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "request_envelope",
    about: "tools/call params with request signature and call chain: RequestVerifier, ChainVerifier",
    run,
    seeds,
    dictionaries: &[
        JSON_DICTIONARY,
        JOSE_DICTIONARY,
        super::call_chain::DICTIONARY,
        DICTIONARY,
    ],
};

const DICTIONARY: &[&[u8]] = &[
    b"\"name\"",
    b"\"arguments\"",
    b"\"_meta\"",
    b"\"dev.etdi/request-signature\"",
    b"\"dev.etdi/call-chain\"",
    b"\"mcp_method\"",
    b"\"tools/call\"",
    b"\"args_digest\"",
    b"\"chain_digest\"",
    b"\"secure_file_read\"",
    b"\"client-1\"",
];

/// Largest request signature etdi-server accepts by default.
const MAX_SIGNATURE_BYTES: usize = 16 * 1024;

fn verifier() -> &'static RequestVerifier {
    static V: OnceLock<RequestVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = &fixture().keys;
        let mut issuers = IssuerKeys::new();
        issuers.add(CLIENT, keys.verifier_of(&keys.p256));
        issuers.add(CLIENT, keys.verifier_of(&keys.ed25519));
        RequestVerifier::new(RESOURCE, issuers)
    })
}

struct Envelope<'a> {
    name: &'a str,
    arguments: Option<&'a Map<String, Value>>,
    signature: Option<&'a str>,
    hops: Vec<String>,
}

/// Reads the envelope as etdi-server does; `None` for what it refuses
/// before any verification.
fn read(params: &Map<String, Value>) -> Option<Envelope<'_>> {
    let name = params.get("name")?.as_str()?;
    let arguments = match params.get("arguments") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return None,
    };
    let meta = match params.get("_meta") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return None,
    };
    let signature = match meta.and_then(|m| m.get(META_REQUEST_SIGNATURE)) {
        None => None,
        Some(Value::String(s)) if s.len() <= MAX_SIGNATURE_BYTES => Some(s.as_str()),
        Some(_) => return None,
    };
    let hops = match meta.and_then(|m| m.get(META_CALL_CHAIN)) {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_HOPS => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    Some(Envelope {
        name,
        arguments,
        signature,
        hops,
    })
}

/// Runs one input: a `tools/call` params object.
pub fn run(data: &[u8]) {
    let f = fixture();
    let input = text(data);
    let Ok(Value::Object(params)) = parse_json(input.as_ref()) else {
        return;
    };
    let genuine_envelope = f.envelopes.iter().any(|e| e.as_object() == Some(&params));
    let Some(env) = read(&params) else {
        assert!(!genuine_envelope, "a fixture envelope was not readable");
        return;
    };

    // The chain first, as the server does; a chain that does not verify
    // ends the call.
    if !super::call_chain::check(&env.hops) {
        assert!(!genuine_envelope, "a fixture envelope's chain was refused");
        return;
    }
    let chain = if env.hops.is_empty() {
        CallChain::new()
    } else {
        match super::call_chain::verifier().verify(&env.hops, now()) {
            Ok(p) => match p.record_in(&MemoryNonceStore::new(4)) {
                Ok(v) => v.call_chain().clone(),
                Err(e) => panic!("a verified chain could not be recorded: {e}"),
            },
            Err(e) => panic!("a chain verified once and not twice: {e}"),
        }
    };

    let Some(signature) = env.signature else {
        return;
    };
    let known = f.requests.contains(signature);
    let call = ReceivedCall::tools_call(env.name, env.arguments, &chain);
    let store = MemoryNonceStore::new(16);
    match verifier().verify(signature, &call, now()) {
        Ok(pending) => {
            assert!(
                known,
                "a request signature the fixture did not make verified: {input}"
            );
            assert!(
                same_call_as_signed(signature, &env, &chain),
                "a request signature verified for a call other than the one signed: {input}"
            );
            pending
                .record_in(&store)
                .unwrap_or_else(|e| panic!("a fresh request was refused as a replay: {e}"));
            let again = verifier()
                .verify(signature, &call, now())
                .unwrap_or_else(|e| panic!("a request stopped verifying: {e}"));
            assert!(
                again.record_in(&store).is_err(),
                "the same request recorded twice was not a replay"
            );
        }
        Err(e) => assert!(
            !genuine_envelope,
            "a fixture envelope's request signature was refused: {e}"
        ),
    }
}

/// True if the fixture envelope carrying `signature` is the same call:
/// same tool, same canonical arguments, same chain.
fn same_call_as_signed(signature: &str, env: &Envelope<'_>, chain: &CallChain) -> bool {
    let digest = |args| request::args_digest(args).ok();
    fixture()
        .envelopes
        .iter()
        .filter_map(Value::as_object)
        .any(|e| {
            let Some(signed) = read(e) else {
                return false;
            };
            let signed_chain: Vec<_> = super::call_chain::verifier()
                .verify(&signed.hops, now())
                .ok()
                .and_then(|p| p.record_in(&MemoryNonceStore::new(4)).ok())
                .map(|v| v.call_chain().hops().to_vec())
                .unwrap_or_default();
            signed.signature == Some(signature)
                && signed.name == env.name
                && digest(signed.arguments) == digest(env.arguments)
                && signed_chain.as_slice() == chain.hops()
        })
}

/// The fixture's envelopes (direct, chained, unsigned).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    fixture()
        .envelopes
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some(seed(format!("envelope-{i}"), serde_json::to_vec(e).ok()?)))
        .collect()
}
