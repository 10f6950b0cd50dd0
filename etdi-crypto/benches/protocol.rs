//! Cost of ETDI verification against the raw signature check it is built
//! on: request-signature verification (JWS parse, claims, argument digest,
//! freshness, nonce store) and attestation verification (JWS parse, claims,
//! definition digest recomputed from the advertised definition) versus
//! `VerifyingKey::verify` over the same signing inputs, same algorithm, same
//! run. Target: at most 1.15x.
//!
//! Criterion measures ES256 and RS256; the ratio table for all six required
//! algorithms comes from an interleaved timing loop (raw, request and
//! attestation batches alternate, so drift and frequency changes hit all
//! three alike) and reports medians over rounds.

// A benchmark is a harness, not library code: broken setup should stop it
// loudly, and criterion's macros generate undocumented public items.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use etdi_core::{CallChain, ToolDefinition};
use etdi_crypto::attestation::{
    AttestationSigner, AttestationVerifier, DigestedDefinition, ProviderScope,
};
use etdi_crypto::replay::MemoryNonceStore;
use etdi_crypto::request::{CallToSign, ReceivedCall, RequestSigner, RequestVerifier};
use etdi_crypto::trust::{IssuerKeys, KeyRing};
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey, UnixTime, VerifyingKey};
use serde_json::{Map, Value, json};

const AUD: &str = "https://tools.example.com/mcp";
/// Nonces already in the store when a round starts, so lookups and inserts
/// hit a realistically sized table rather than an empty one.
const PREFILL: usize = 20_000;

struct Fixture {
    alg: Algorithm,
    key: VerifyingKey,
    now: UnixTime,
    args: Map<String, Value>,
    chain: CallChain,
    requests: Vec<String>,
    request_verifier: RequestVerifier,
    def: ToolDefinition,
    attestation: String,
    attestation_verifier: AttestationVerifier,
}

fn definition() -> ToolDefinition {
    ToolDefinition::from_value(json!({
        "id": "com.example.files/read",
        "name": "secure_file_read",
        "title": "Read a file",
        "version": "1.0.0",
        "description": "Reads a UTF-8 text file from the workspace and returns its content.",
        "provider": {"id": "com.example", "name": "Example Corp"},
        "inputSchema": {"type": "object", "properties": {
            "path": {"type": "string", "description": "Path relative to the workspace"},
            "maxBytes": {"type": "integer", "minimum": 1}
        }, "required": ["path"]},
        "annotations": {"readOnlyHint": true},
        "permissions": ["file:read", "audit:log"],
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

impl Fixture {
    fn new(alg: Algorithm, pool: usize) -> Self {
        let provider = CryptoProvider::get_default();
        let signing = SigningKey::generate(provider, alg).unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let args = json!({"path": "docs/readme.md", "maxBytes": 65536})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let chain = CallChain::new();
        let signer = RequestSigner::new("client-1");
        let requests = (0..pool)
            .map(|_| {
                let call = CallToSign {
                    audience: AUD,
                    tool: "secure_file_read",
                    arguments: Some(&args),
                    chain: &chain,
                };
                signer.sign(&signing, &call, now).unwrap()
            })
            .collect();
        let mut issuers = IssuerKeys::new();
        issuers.add("client-1", signing.verifying_key().clone());
        let def = definition();
        let attestation = AttestationSigner::new("com.example")
            .sign(&signing, &def, now)
            .unwrap();
        let mut attestation_verifier = AttestationVerifier::new();
        attestation_verifier.trust_issuer(
            "com.example",
            [signing.verifying_key().clone()]
                .into_iter()
                .collect::<KeyRing>(),
            ProviderScope::only(["com.example"]).unwrap(),
        );
        Fixture {
            alg,
            key: signing.verifying_key().clone(),
            now,
            args,
            chain,
            requests,
            request_verifier: RequestVerifier::new(AUD, issuers),
            def,
            attestation,
            attestation_verifier,
        }
    }

    fn store(&self) -> MemoryNonceStore {
        let store = MemoryNonceStore::new(PREFILL + self.requests.len() + 16);
        let until = self.now.plus(3600);
        for i in 0..PREFILL {
            let _ =
                store.check_and_insert_now("other", &format!("prefill-{i:08}"), until, self.now);
        }
        store
    }

    /// The raw check: the backend verifying the same signing input.
    fn raw(token: &str, key: &VerifyingKey) -> impl Fn() -> bool {
        let (input, sig) = split(token);
        let key = key.clone();
        move || {
            key.verify(black_box(input.as_bytes()), black_box(&sig))
                .is_ok()
        }
    }

    /// The raw check over the whole request pool, one token after another
    /// as the request batches go. ECDSA verification time depends on the
    /// signature (variable-time multiplication of public scalars), so
    /// timing one token against a pool of others compares different work.
    fn raw_pool(&self) -> impl FnMut() -> bool {
        let inputs: Vec<(String, Vec<u8>)> = self.requests.iter().map(|t| split(t)).collect();
        let key = self.key.clone();
        let mut next = 0;
        move || {
            let (input, sig) = &inputs[next];
            next = (next + 1) % inputs.len();
            key.verify(black_box(input.as_bytes()), black_box(sig))
                .is_ok()
        }
    }

    fn verify_request(&self, token: &str, store: &MemoryNonceStore) -> bool {
        let call = ReceivedCall::tools_call("secure_file_read", Some(&self.args), &self.chain);
        self.request_verifier
            .verify(black_box(token), &call, self.now)
            .and_then(|p| p.record_in(store))
            .is_ok()
    }

    fn verify_attestation_digested(&self, def: &DigestedDefinition) -> bool {
        self.attestation_verifier
            .verify_digested_status(black_box(&self.attestation), def, self.now)
            .is_verified()
    }

    /// The verification status only (issuer and key), the definition
    /// canonicalised on every call.
    fn verify_attestation_status(&self) -> bool {
        self.attestation_verifier
            .verify(black_box(&self.attestation), &self.def, self.now)
            .is_verified()
    }

    fn verify_attestation(&self) -> bool {
        self.attestation_verifier
            .verify_detailed(black_box(&self.attestation), &self.def, self.now)
            .is_ok()
    }
}

fn split(token: &str) -> (String, Vec<u8>) {
    use base64::Engine as _;
    let cut = token.rfind('.').unwrap_or(0);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token[cut + 1..])
        .unwrap_or_default();
    (token[..cut].to_owned(), sig)
}

fn criterion_benches(c: &mut Criterion) {
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let f = Fixture::new(alg, 512);
        let mut group = c.benchmark_group(format!("protocol/{alg}"));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        let mut raw_req = f.raw_pool();
        group.bench_function("raw_verify_request_input", |b| b.iter(&mut raw_req));
        group.bench_function("request_verify_and_record", |b| {
            b.iter_custom(|iters| {
                // Fresh store per pass over the pool, outside the timing, so
                // no token is ever a replay.
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let store = f.store();
                    let n = (iters - done).min(f.requests.len() as u64) as usize;
                    let start = Instant::now();
                    for t in &f.requests[..n] {
                        assert!(f.verify_request(t, &store));
                    }
                    total += start.elapsed();
                    done += n as u64;
                }
                total
            })
        });
        let raw_att = Fixture::raw(&f.attestation, &f.key);
        group.bench_function("raw_verify_attestation_input", |b| b.iter(&raw_att));
        group.bench_function("attestation_verify", |b| b.iter(|| f.verify_attestation()));
        group.finish();
    }
    ratio_table();
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn fastest(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::INFINITY, f64::min)
}

fn ratio_table() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 3 } else { 41 };
    let batch = Duration::from_millis(if quick { 1 } else { 2 });
    println!();
    println!(
        "ETDI verification vs raw backend verify of the same signing input \
         ({rounds} interleaved rounds; fastest round, median in brackets)"
    );
    println!(
        "{:<6} {:>9} {:>9} {:>17} {:>9} {:>9} {:>17} {:>9} {:>17} {:>9} {:>17}",
        "alg",
        "raw",
        "request",
        "ratio",
        "raw",
        "attest.",
        "ratio",
        "status",
        "ratio",
        "digested",
        "ratio"
    );
    for alg in Algorithm::REQUIRED {
        // Calibrate the batch size on the raw check.
        let probe = Fixture::new(alg, 1);
        let raw = Fixture::raw(&probe.requests[0], &probe.key);
        let start = Instant::now();
        let mut k = 0u32;
        while start.elapsed() < Duration::from_millis(20) {
            black_box(raw());
            k += 1;
        }
        let per_op = start.elapsed().as_secs_f64() / f64::from(k.max(1));
        let n = ((batch.as_secs_f64() / per_op) as usize).clamp(4, 2000);

        let f = Fixture::new(alg, n);
        let mut raw_req = f.raw_pool();
        let raw_att = Fixture::raw(&f.attestation, &f.key);
        let digested = DigestedDefinition::new(f.def.clone()).unwrap();
        let (mut rr, mut rq, mut ra, mut at, mut st, mut ad) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let store = f.store();
            let s = Instant::now();
            for _ in 0..n {
                black_box(raw_req());
            }
            rr.push(s.elapsed().as_secs_f64() / n as f64);
            let s = Instant::now();
            for t in &f.requests {
                assert!(f.verify_request(t, &store));
            }
            rq.push(s.elapsed().as_secs_f64() / n as f64);
            let s = Instant::now();
            for _ in 0..n {
                black_box(raw_att());
            }
            ra.push(s.elapsed().as_secs_f64() / n as f64);
            let s = Instant::now();
            for _ in 0..n {
                assert!(f.verify_attestation());
            }
            at.push(s.elapsed().as_secs_f64() / n as f64);
            let s = Instant::now();
            for _ in 0..n {
                assert!(f.verify_attestation_status());
            }
            st.push(s.elapsed().as_secs_f64() / n as f64);
            let s = Instant::now();
            for _ in 0..n {
                assert!(f.verify_attestation_digested(&digested));
            }
            ad.push(s.elapsed().as_secs_f64() / n as f64);
        }
        let ratio = |a: &[f64], b: &[f64]| {
            (
                fastest(a) / fastest(b),
                median(a.to_vec()) / median(b.to_vec()),
            )
        };
        let (req, req_med) = ratio(&rq, &rr);
        let (att, att_med) = ratio(&at, &ra);
        let (sta, sta_med) = ratio(&st, &ra);
        let (dig, dig_med) = ratio(&ad, &ra);
        println!(
            "{:<6} {:>7.1}us {:>7.1}us {:>7.3}x [{:.3}x] {:>7.1}us {:>7.1}us {:>7.3}x [{:.3}x] {:>7.1}us {:>7.3}x [{:.3}x] {:>7.1}us {:>7.3}x [{:.3}x]",
            f.alg.name(),
            fastest(&rr) * 1e6,
            fastest(&rq) * 1e6,
            req,
            req_med,
            fastest(&ra) * 1e6,
            fastest(&at) * 1e6,
            att,
            att_med,
            fastest(&st) * 1e6,
            sta,
            sta_med,
            fastest(&ad) * 1e6,
            dig,
            dig_med
        );
    }
    println!(
        "target: request and attestation ratios <= 1.150x \
         (\"attest.\": verify_detailed, owned claims; \"status\": verify, digest computed \
         on each call; \"digested\": verify_digested_status, what etdi-client calls, with the \
         digest it computed once per tools/list)"
    );
}

criterion_group!(benches, criterion_benches);
criterion_main!(benches);
