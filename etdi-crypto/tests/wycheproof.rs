//! Wycheproof signature-verification vectors (ECDSA P-256/384/521 in IEEE
//! P1363 `r || s` form, RSA PKCS#1 v1.5, RSA-PSS) run through the public
//! `VerifyingKey` API on every backend.
//!
//! Verdicts: "valid" must verify, "invalid" must fail (at key import or at
//! verification), "acceptable" may go either way and is counted separately.
//! Keys enter through `VerifyingKey::from_spki_der`, so the vectors also
//! exercise our SPKI parsing and size policy.

// Test helpers outside `#[test]` functions may panic too: clippy.toml only
// exempts the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use etdi_crypto::{Algorithm, CryptoProvider, VerifyingKey};
use wycheproof::{HashFunction, TestResult};

/// The hash each JOSE RSA algorithm fixes (RFC 7518 §3.3, §3.5).
trait JoseHash {
    fn wycheproof_hash(self) -> HashFunction;
    fn hash_len(self) -> usize;
}

impl JoseHash for Algorithm {
    fn wycheproof_hash(self) -> HashFunction {
        match self {
            Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => HashFunction::Sha2_256,
            Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => HashFunction::Sha2_384,
            _ => HashFunction::Sha2_512,
        }
    }

    fn hash_len(self) -> usize {
        match self.wycheproof_hash() {
            HashFunction::Sha2_256 => 32,
            HashFunction::Sha2_384 => 48,
            _ => 64,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    run: usize,
    valid: usize,
    invalid: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        set: &str,
        tc_id: usize,
        expected: TestResult,
        verified: bool,
        comment: &str,
    ) {
        self.run += 1;
        match (expected, verified) {
            (TestResult::Valid, true) => self.valid += 1,
            (TestResult::Invalid, false) => self.invalid += 1,
            (TestResult::Acceptable, true) => self.acceptable_accepted += 1,
            (TestResult::Acceptable, false) => self.acceptable_rejected += 1,
            (expected, verified) => self.failures.push(format!(
                "{set} tcId {tc_id} ({comment}): expected {expected:?}, verified = {verified}"
            )),
        }
    }

    fn finish(self, provider: &CryptoProvider, what: &str, minimum: usize) {
        println!(
            "wycheproof {what} on {}: {} vectors run ({} valid ok, {} invalid refused, acceptable: {} accepted / {} refused)",
            provider.name,
            self.run,
            self.valid,
            self.invalid,
            self.acceptable_accepted,
            self.acceptable_rejected
        );
        assert!(
            self.failures.is_empty(),
            "{} failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(self.run >= minimum, "only {} vectors ran", self.run);
    }
}

/// Verifies one vector; a key that cannot be imported counts as "did not verify".
fn verify(key: &Result<VerifyingKey, etdi_crypto::KeyError>, msg: &[u8], sig: &[u8]) -> bool {
    key.as_ref().is_ok_and(|k| k.verify(msg, sig).is_ok())
}

fn ecdsa(provider: &CryptoProvider) {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut tally = Tally::default();
    for (name, alg, hash) in [
        (
            TestName::EcdsaSecp256r1Sha256P1363,
            Algorithm::ES256,
            HashFunction::Sha2_256,
        ),
        (
            TestName::EcdsaSecp384r1Sha384P1363,
            Algorithm::ES384,
            HashFunction::Sha2_384,
        ),
        (
            TestName::EcdsaSecp521r1Sha512P1363,
            Algorithm::ES512,
            HashFunction::Sha2_512,
        ),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            assert_eq!(
                group.hash, hash,
                "{name:?}: the JOSE algorithm fixes the hash"
            );
            let key = VerifyingKey::from_spki_der(provider, &group.der, alg);
            for test in &group.tests {
                let ok = verify(&key, &test.msg, &test.sig);
                tally.record(
                    &format!("{name:?}"),
                    test.tc_id,
                    test.result,
                    ok,
                    &test.comment,
                );
            }
        }
    }
    tally.finish(provider, "ECDSA P1363", 800);
}

fn rsa_pkcs1(provider: &CryptoProvider) {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for (name, alg) in [
        (TestName::Rsa2048Sha256, Algorithm::RS256),
        (TestName::Rsa2048Sha384, Algorithm::RS384),
        (TestName::Rsa2048Sha512, Algorithm::RS512),
        (TestName::Rsa3072Sha256, Algorithm::RS256),
        (TestName::Rsa3072Sha384, Algorithm::RS384),
        (TestName::Rsa3072Sha512, Algorithm::RS512),
        (TestName::Rsa4096Sha256, Algorithm::RS256),
        (TestName::Rsa4096Sha384, Algorithm::RS384),
        (TestName::Rsa4096Sha512, Algorithm::RS512),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            assert_eq!(group.hash, alg.wycheproof_hash(), "{name:?}");
            let key = VerifyingKey::from_spki_der(provider, &group.der, alg);
            for test in &group.tests {
                let ok = verify(&key, &test.msg, &test.sig);
                tally.record(
                    &format!("{name:?}"),
                    test.tc_id,
                    test.result,
                    ok,
                    &test.comment,
                );
            }
        }
    }
    tally.finish(provider, "RSA PKCS#1 v1.5", 500);
}

fn rsa_pss(provider: &CryptoProvider) {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for (name, alg) in [
        (TestName::RsaPss2048Sha256Mgf1SaltLen32, Algorithm::PS256),
        (TestName::RsaPss2048Sha384Mgf1SaltLen48, Algorithm::PS384),
        (TestName::RsaPss3072Sha256Mgf1SaltLen32, Algorithm::PS256),
        (TestName::RsaPss4096Sha256Mgf1SaltLen32, Algorithm::PS256),
        (TestName::RsaPss4096Sha384Mgf1SaltLen48, Algorithm::PS384),
        (TestName::RsaPss4096Sha512Mgf1SaltLen64, Algorithm::PS512),
        // Sets whose parameters differ from JOSE's (salt 0, SHA-512 with a
        // 32-byte salt): every "valid" vector there must be REFUSED by a
        // JOSE verifier, which checks the salt length RFC 7518 fixes.
        (TestName::RsaPss2048Sha256Mgf1SaltLen0, Algorithm::PS256),
        (TestName::RsaPss4096Sha512Mgf1SaltLen32, Algorithm::PS512),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            assert_eq!(group.hash, alg.wycheproof_hash(), "{name:?}");
            let jose_params =
                group.mgf_hash == Some(group.hash) && group.salt_size == alg.hash_len();
            let key = VerifyingKey::from_spki_der(provider, &group.der, alg);
            for test in &group.tests {
                let ok = verify(&key, &test.msg, &test.sig);
                // Outside JOSE parameters a "valid" Wycheproof signature is
                // invalid for PSxxx and must be refused; an "invalid" one may
                // happen to be valid with JOSE parameters (for example a
                // salt-0 set's "salt changed to 32" case), so either is fine.
                let expected = match (jose_params, test.result) {
                    (true, verdict) => verdict,
                    (false, TestResult::Valid) => TestResult::Invalid,
                    (false, _) => TestResult::Acceptable,
                };
                tally.record(
                    &format!("{name:?}"),
                    test.tc_id,
                    expected,
                    ok,
                    &test.comment,
                );
            }
        }
    }
    tally.finish(provider, "RSA-PSS", 300);
}

macro_rules! wycheproof {
    ($backend:ident, $provider:expr) => {
        mod $backend {
            #[test]
            fn ecdsa_p1363() {
                super::ecdsa(&$provider);
            }

            #[test]
            fn rsa_pkcs1_v15() {
                super::rsa_pkcs1(&$provider);
            }

            #[test]
            fn rsa_pss() {
                super::rsa_pss(&$provider);
            }
        }
    };
}

wycheproof!(aws_lc, etdi_crypto::backend::aws_lc::provider());
#[cfg(feature = "rust-crypto")]
wycheproof!(rust_crypto, etdi_crypto::backend::rust_crypto::provider());
