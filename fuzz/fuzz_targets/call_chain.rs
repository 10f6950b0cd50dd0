//! libFuzzer entry point for `etdi_fuzz::targets::call_chain` (nightly only:
//! `cargo +nightly fuzz run call_chain`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke call_chain`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::call_chain::run(data));
