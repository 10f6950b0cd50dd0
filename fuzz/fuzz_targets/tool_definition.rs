//! libFuzzer entry point for `etdi_fuzz::targets::tool_definition` (nightly only:
//! `cargo +nightly fuzz run tool_definition`). The stable smoke run drives the same
//! function: `cargo xtask fuzz --smoke tool_definition`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etdi_fuzz::targets::tool_definition::run(data));
