//! A SecureServer that requires request signing for one tool: signed calls
//! accepted, unsigned, tampered and replayed calls refused.
//!
//! `cargo run -p etdi-examples --example request_signing_server`; the code is
//! `etdi_examples::request_signing_server`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with(
        "request_signing_server",
        etdi_examples::request_signing_server::run,
    )
}
