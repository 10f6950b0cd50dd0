//! A client pins an approved tool and blocks silent changes; a legitimate
//! version bump goes through re-approval.
//!
//! `cargo run -p etdi-examples --example rug_pull_protection`; the code is
//! `etdi_examples::rug_pull_protection`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with(
        "rug_pull_protection",
        etdi_examples::rug_pull_protection::run,
    )
}
