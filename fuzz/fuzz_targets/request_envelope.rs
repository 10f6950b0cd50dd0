//! libFuzzer entry point for `etdi_fuzz::targets::request_envelope` (nightly only:
//! `cargo +nightly fuzz run request_envelope`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke request_envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::request_envelope::run(data));
