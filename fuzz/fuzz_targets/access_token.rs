//! libFuzzer entry point for `etdi_fuzz::targets::access_token` (nightly only:
//! `cargo +nightly fuzz run access_token`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke access_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::access_token::run(data));
