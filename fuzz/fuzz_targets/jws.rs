//! libFuzzer entry point for `etdi_fuzz::targets::jws` (nightly only:
//! `cargo +nightly fuzz run jws`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke jws`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::jws::run(data));
