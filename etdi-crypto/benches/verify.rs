//! Verification cost: the raw backend verify per algorithm and backend (the
//! reference every higher-level verification is compared against), and JWS
//! compact verification over the same key and a typical signing input.
//!
//! Run with `cargo bench -p etdi-crypto --bench verify` (add
//! `--features rust-crypto` for the RustCrypto backend). Kept short: small
//! samples, one second of measurement per case.

// A bench is test code: a failed setup should stop it loudly.
#![allow(clippy::expect_used)]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use etdi_crypto::jws::{self, JwsHeader, Validation};
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};

/// About the size of an ETDI attestation's signing input.
const MESSAGE_LEN: usize = 600;

/// One signing key per algorithm for `provider` (RSA keys are 2048 bits, the
/// size of the brief's §6 figures).
fn keys(provider: &CryptoProvider) -> Vec<SigningKey> {
    Algorithm::ALL
        .iter()
        .map(|&alg| SigningKey::generate(provider, alg).expect("key generation"))
        .collect()
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

fn raw_verify(c: &mut Criterion) {
    let message = vec![0x5a_u8; MESSAGE_LEN];
    for provider in etdi_crypto::backend::all() {
        let mut group = c.benchmark_group(format!("raw_verify/{}", provider.name));
        for key in keys(&provider) {
            let sig = key.sign(&message).expect("sign");
            let vk = key.verifying_key().clone();
            group.bench_function(BenchmarkId::from_parameter(key.algorithm()), |b| {
                b.iter(|| {
                    vk.verify(black_box(&message), black_box(&sig))
                        .expect("verify")
                })
            });
        }
        group.finish();
    }
}

fn jws_verify(c: &mut Criterion) {
    let payload = vec![b'a'; MESSAGE_LEN * 3 / 4];
    let provider = CryptoProvider::get_default();
    let mut group = c.benchmark_group(format!("jws_verify/{}", provider.name));
    for key in keys(provider) {
        let alg = key.algorithm();
        let token = jws::sign(
            &key,
            &JwsHeader::for_key(&key).with_typ("bench+jwt"),
            &payload,
        )
        .expect("sign");
        let validation = Validation::new([alg]).expect_typ("bench+jwt");
        let trusted = key.verifying_key().clone();
        group.bench_function(BenchmarkId::from_parameter(alg), |b| {
            b.iter(|| jws::verify(black_box(&token), &validation, &trusted).expect("verify"))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = raw_verify, jws_verify
}
criterion_main!(benches);
