//! Access-token verification cost against its references, measured in the
//! same run:
//!
//! * `verify/rs256_warm_jwks`: a full RS256 verification (parse, key lookup
//!   in a loaded key set, signature, claims, principal) with the validated
//!   cache disabled, against `raw/rsa2048_verify`: one aws-lc-rs RSA-2048
//!   PKCS#1 v1.5 SHA-256 verification of the same signing input with the
//!   one-shot `UnparsedPublicKey` API (what jsonwebtoken's aws-lc backend
//!   calls per token). Target: at most 1.15x. The verifier keeps keys parsed
//!   (`etdi_crypto::VerifyingKey`, parsed once per JWKS load), so
//!   `raw/rsa2048_verify_parsed_key` is printed too: the gap to it is the
//!   parsing/claims overhead.
//! * `verify/cache_hit`: the same token again with the cache on. Target:
//!   under 2 µs.
//!
//! Besides criterion's report, the bench prints its own interleaved
//! measurement and the ratios, so one run shows whether the targets hold.
//! Run: `cargo bench -p etdi-auth --bench token`.
// Test code: helpers outside `#[test]` functions may unwrap and index too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use etdi_auth::{IssuerConfig, TokenVerifier};
use serde_json::json;

const AUD: &str = "https://tools.example.com/mcp";
const ISS: &str = "https://idp.example.com";

/// Polls a future that completes without waiting (warm caches never await
/// I/O), so the figure is the verifier's cost, not an executor's.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("verification waited on I/O with a warm cache"),
    }
}

struct Fixture {
    token: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    public_der: Vec<u8>,
    uncached: TokenVerifier,
    cached: TokenVerifier,
}

fn fixture() -> Fixture {
    let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let c = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                                "n": b64(&c.n), "e": b64(&c.e)}]});
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A realistic RFC 9068 access token (about 800 bytes).
    let header = json!({"alg": "RS256", "kid": "k1", "typ": "at+jwt"});
    let claims = json!({
        "iss": ISS, "sub": "agent-7f3a9c", "aud": AUD, "client_id": "mcp-agent",
        "iat": now, "exp": now + 3600, "jti": "b7e4c1d2-4f3a-4c9e-9a61-0f1e2d3c4b5a",
        "scope": "tools:read tools:call files:read audit:log",
        "roles": ["operator", "tool-user"]
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let token = format!("{input}.{}", b64(&sig));
    let build = |capacity| {
        TokenVerifier::builder()
            .issuer(
                IssuerConfig::new(ISS)
                    .audience(AUD)
                    .require_at_jwt(true)
                    .static_jwks(jwks.clone()),
            )
            .cache_capacity(capacity)
            .build()
            .unwrap()
    };
    let f = Fixture {
        token,
        signing_input: input.into_bytes(),
        signature: sig,
        public_der: key.public_key().as_ref().to_vec(),
        uncached: build(0),
        cached: build(10_000),
    };
    assert!(ready(f.uncached.verify(&f.token)).is_ok());
    assert!(ready(f.cached.verify(&f.token)).is_ok());
    assert!(raw(&f));
    f
}

fn raw(f: &Fixture) -> bool {
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &f.public_der)
        .verify(&f.signing_input, &f.signature)
        .is_ok()
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let parsed =
        signature::ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &f.public_der)
            .unwrap();

    let mut g = c.benchmark_group("token");
    g.bench_function("raw/rsa2048_verify", |b| {
        b.iter(|| black_box(raw(black_box(&f))))
    });
    g.bench_function("raw/rsa2048_verify_parsed_key", |b| {
        b.iter(|| black_box(parsed.verify_sig(&f.signing_input, &f.signature).is_ok()))
    });
    g.bench_function("verify/rs256_warm_jwks", |b| {
        b.iter(|| black_box(ready(f.uncached.verify(black_box(&f.token))).is_ok()))
    });
    g.bench_function("verify/cache_hit", |b| {
        b.iter(|| black_box(ready(f.cached.verify(black_box(&f.token))).is_ok()))
    });
    g.finish();

    report(&f, &parsed);
}

/// Interleaved batches, median per-operation time of each: both sides see
/// the same machine state, so the ratio is stable on a shared 2-core box.
fn report(f: &Fixture, parsed: &signature::ParsedPublicKey) {
    let per_op = |op: &dyn Fn() -> bool, n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(op());
        }
        start.elapsed() / n
    };
    let raw_op = || raw(f);
    let verify_op = || ready(f.uncached.verify(&f.token)).is_ok();
    let hit_op = || ready(f.cached.verify(&f.token)).is_ok();
    let parsed_op = || parsed.verify_sig(&f.signing_input, &f.signature).is_ok();
    let (mut r, mut v, mut h, mut rp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        r.push(per_op(&raw_op, 200));
        rp.push(per_op(&parsed_op, 200));
        v.push(per_op(&verify_op, 200));
        h.push(per_op(&hit_op, 20_000));
    }
    let median = |xs: &mut Vec<Duration>| {
        xs.sort();
        xs[xs.len() / 2]
    };
    let (r, v, h, rp) = (
        median(&mut r),
        median(&mut v),
        median(&mut h),
        median(&mut rp),
    );
    let ratio = v.as_secs_f64() / r.as_secs_f64();
    println!();
    println!("etdi-auth token bench (median of 15 interleaved batches)");
    println!(
        "  raw RSA-2048 verify (aws-lc-rs)    {:>9.2} us",
        r.as_secs_f64() * 1e6
    );
    println!(
        "  raw RSA-2048 verify, key pre-parsed {:>8.2} us",
        rp.as_secs_f64() * 1e6
    );
    println!(
        "  RS256 verify, warm JWKS, no cache  {:>9.2} us",
        v.as_secs_f64() * 1e6
    );
    println!(
        "  RS256 re-verify, cache hit         {:>9.3} us",
        h.as_secs_f64() * 1e6
    );
    println!(
        "  ratio verify/raw = {ratio:.3} (target <= 1.15: {})",
        if ratio <= 1.15 { "met" } else { "NOT MET" }
    );
    println!(
        "  ratio verify/raw with pre-parsed key = {:.3} (informational: parsing/claims overhead)",
        v.as_secs_f64() / rp.as_secs_f64()
    );
    println!(
        "  cache hit = {:.3} us (target < 2 us: {})",
        h.as_secs_f64() * 1e6,
        if h < Duration::from_micros(2) {
            "met"
        } else {
            "NOT MET"
        }
    );
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
