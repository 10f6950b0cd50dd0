//! libFuzzer entry point for `etdi_fuzz::targets::policy_file` (nightly only:
//! `cargo +nightly fuzz run policy_file`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke policy_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::policy_file::run(data));
