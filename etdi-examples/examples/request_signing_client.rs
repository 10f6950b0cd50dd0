//! A client that signs its tool calls (ES256) and calls a SecureServer over
//! Streamable HTTP.
//!
//! `cargo run -p etdi-examples --example request_signing_client`; the code is
//! `etdi_examples::request_signing_client`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with(
        "request_signing_client",
        etdi_examples::request_signing_client::run,
    )
}
