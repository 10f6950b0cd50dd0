//! The seed's SecurityPolicy example on the SecureServer builder, with one
//! allowed and one denied call.
//!
//! `cargo run -p etdi-examples --example secure_server_config`; the code is
//! `etdi_examples::secure_server_config`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with(
        "secure_server_config",
        etdi_examples::secure_server_config::run,
    )
}
