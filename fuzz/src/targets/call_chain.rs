//! Signed call-chain hops (`etdi-hop+jwt`, docs/PROTOCOL.md §7) as a
//! server receives them: one compact JWS per line, outermost first,
//! verified by `ChainVerifier` for [`RESOURCE`] trusting the two upstream
//! servers, then recorded in a nonce store.
//!
//! Invariants: no panic; a chain verifies only if it is exactly a chain the
//! fixture built (no hop dropped, reordered, altered or borrowed from
//! another chain), and every fixture chain verifies; the verified chain has
//! one hop per token; recording it twice is a replay.

use std::sync::OnceLock;

use etdi_crypto::chain::ChainVerifier;
use etdi_crypto::replay::MemoryNonceStore;
use etdi_crypto::trust::IssuerKeys;

use super::{JOSE_DICTIONARY, seed, text};
use crate::fixture::{RESOURCE, SERVER_A, SERVER_B, fixture, now};
use crate::{JSON_DICTIONARY, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "call_chain",
    about: "signed call-chain hops: ChainVerifier::verify and the replay record",
    run,
    seeds,
    dictionaries: &[JSON_DICTIONARY, JOSE_DICTIONARY, DICTIONARY],
};

pub(crate) const DICTIONARY: &[&[u8]] = &[
    b"\n",
    b"\"idx\"",
    b"\"prev\"",
    b"\"server\"",
    b"\"tool\"",
    b"\"principal\"",
    b"\"scope\"",
    b"\"https://a.example/mcp\"",
    b"\"https://b.example/mcp\"",
    b"\"https://files.example.com/mcp\"",
    b"\"com.a/agent\"",
    b"\"sha256:",
];

/// The verifier every chain target uses.
pub(crate) fn verifier() -> &'static ChainVerifier {
    static V: OnceLock<ChainVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = &fixture().keys;
        let mut issuers = IssuerKeys::new();
        issuers.add(SERVER_A, keys.verifier_of(&keys.p256));
        issuers.add(SERVER_B, keys.verifier_of(&keys.ed25519));
        ChainVerifier::new(RESOURCE, issuers)
    })
}

/// Checks the chain invariants on `hops`; returns whether it verified.
pub(crate) fn check(hops: &[String]) -> bool {
    let f = fixture();
    let genuine = f.chains.iter().any(|c| c.as_slice() == hops);
    let store = MemoryNonceStore::new(64);
    match verifier().verify(hops, now()) {
        Ok(pending) => {
            assert!(
                genuine || hops.is_empty(),
                "a call chain the fixture did not build verified: {hops:?}"
            );
            let verified = pending
                .record_in(&store)
                .unwrap_or_else(|e| panic!("a fresh chain was refused as a replay: {e}"));
            assert_eq!(verified.hops().len(), hops.len());
            assert_eq!(verified.call_chain().depth(), hops.len());
            if !hops.is_empty() {
                let again = verifier()
                    .verify(hops, now())
                    .unwrap_or_else(|e| panic!("a chain stopped verifying: {e}"));
                assert!(
                    again.record_in(&store).is_err(),
                    "the same chain recorded twice was not a replay"
                );
            }
            true
        }
        Err(e) => {
            assert!(!genuine, "a chain the fixture built was refused: {e}");
            false
        }
    }
}

/// Runs one input: the hop tokens, one per line.
pub fn run(data: &[u8]) {
    let input = text(data);
    let hops: Vec<String> = if input.is_empty() {
        Vec::new()
    } else {
        input.split('\n').map(str::to_owned).collect()
    };
    check(&hops);
}

/// The fixture's chains, and their hops out of order.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let f = fixture();
    let mut out = Vec::new();
    for (i, chain) in f.chains.iter().enumerate() {
        out.push(seed(format!("chain-{i}"), chain.join("\n")));
        let mut reversed = chain.clone();
        reversed.reverse();
        if reversed != *chain {
            out.push(seed(format!("reversed-{i}"), reversed.join("\n")));
        }
    }
    out
}
