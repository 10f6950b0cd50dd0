//! Configure the Auth0, Okta, Entra ID, Keycloak and generic OIDC presets and
//! verify a token end to end against an issuer on 127.0.0.1.
//!
//! `cargo run -p etdi-examples --example oauth_providers`; the code is
//! `etdi_examples::oauth_providers`.

fn main() -> std::process::ExitCode {
    etdi_examples::main_with("oauth_providers", etdi_examples::oauth_providers::run)
}
