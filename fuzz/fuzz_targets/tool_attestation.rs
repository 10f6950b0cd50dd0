//! libFuzzer entry point for `etdi_fuzz::targets::tool_attestation` (nightly only:
//! `cargo +nightly fuzz run tool_attestation`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke tool_attestation`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::tool_attestation::run(data));
