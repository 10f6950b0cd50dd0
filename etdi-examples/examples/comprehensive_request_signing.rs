//! RS256/384/512 and ES256/384/512 request signatures: tampering, replay,
//! freshness and key rotation with an overlap window.
//!
//! `cargo run -p etdi-examples --example comprehensive_request_signing`; the code is
//! `etdi_examples::comprehensive_request_signing`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with(
        "comprehensive_request_signing",
        etdi_examples::comprehensive_request_signing::run,
    )
}
