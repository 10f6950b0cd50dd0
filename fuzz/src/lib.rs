//! Fuzz targets for every etdi parser of untrusted input, written once as
//! plain functions `fn(&[u8])` (see [`targets`]) and driven two ways:
//!
//! * on nightly, by libFuzzer with coverage feedback: `cargo +nightly fuzz
//!   run TARGET` (the binaries in `fuzz_targets/`, feature `libfuzzer`);
//! * on stable, by `cargo xtask fuzz --smoke`: this crate's `etdi-fuzz`
//!   binary replays the committed seed corpus (`fuzz/corpus/TARGET/`) and
//!   then feeds each target mutated and random inputs from a deterministic
//!   mutator ([`mutate`]) for a bounded time.
//!
//! Each target asserts more than "no panic": the invariants that make the
//! parser safe to trust, for example that a canonical form is a fixed point
//! of parse-then-canonicalise, and that a verifier never accepts a token,
//! chain, attestation or log that the [`fixture`] did not produce exactly.
//! A panic (failed invariant included) is a finding.

pub mod fixture;
pub mod mutate;
pub mod targets;

/// One fuzz target: its entry point, its seeds and the tokens the mutator
/// splices in.
pub struct Target {
    /// The name of the `fuzz_targets/` binary and of the corpus directory.
    pub name: &'static str,
    /// What it exercises, for `--list`.
    pub about: &'static str,
    /// The entry point.
    pub run: fn(&[u8]),
    /// Valid (and a few near-valid) inputs made from the real types, named.
    pub seeds: fn() -> Vec<(String, Vec<u8>)>,
    /// Byte strings worth inserting (member names, keywords, numbers), as
    /// a list of lists so that shared ones need not be repeated.
    pub dictionaries: &'static [&'static [&'static [u8]]],
}

/// Every target.
pub const TARGETS: &[Target] = &[
    targets::jws::TARGET,
    targets::access_token::TARGET,
    targets::tool_definition::TARGET,
    targets::tool_attestation::TARGET,
    targets::request_envelope::TARGET,
    targets::call_chain::TARGET,
    targets::policy_file::TARGET,
    targets::audit_log::TARGET,
];

impl Target {
    /// The dictionary, flattened.
    pub fn dictionary(&self) -> Vec<&'static [u8]> {
        self.dictionaries
            .iter()
            .flat_map(|d| d.iter().copied())
            .collect()
    }
}

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// JSON punctuation and values every text target benefits from.
pub const JSON_DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\u00e9",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"-0",
    b"1e999",
    b"1.5e-7",
    b"1E+2",
    b"18446744073709551616",
    b"9007199254740993",
    b"4294967295",
    b"\xc3\xa9",
    b"\xe2\x80\x8b",
    b"\xef\xbb\xbf",
    b"\xff",
    b"{}",
    b"[]",
    b"\"\"",
];
