//! libFuzzer entry point for `etdi_fuzz::targets::audit_log` (nightly only:
//! `cargo +nightly fuzz run audit_log`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke audit_log`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::audit_log::run(data));
