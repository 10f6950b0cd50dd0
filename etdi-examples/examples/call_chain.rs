//! Tool-to-tool calls across two servers: the chain extended and signed, a
//! depth limit and a blocked caller.
//!
//! `cargo run -p etdi-examples --example call_chain`; the code is
//! `etdi_examples::call_chain`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with("call_chain", etdi_examples::call_chain::run)
}
