//! Runnable ETDI examples, one per documented workflow.
//!
//! Each workflow is a module with an `async fn run(Narrative) -> Outcome`:
//! it sets up real components (servers on 127.0.0.1, real keys, real
//! files in temporary directories), prints a short narrative, and checks
//! every expected outcome, down to the exact §10 error codes. The example
//! binaries under `examples/` are thin `main`s around these functions
//! (`cargo run -p etdi-examples --example NAME`), and `tests/examples.rs`
//! calls the same functions, so the test always runs the code that ships.
//!
//! | module | shows |
//! |---|---|
//! | [`oauth_providers`] | the Auth0, Okta, Entra ID, Keycloak and generic OIDC presets, and a token verified end to end against a local issuer |
//! | [`request_signing_client`] | a client signing its calls (ES256) and calling a `SecureServer` over Streamable HTTP |
//! | [`request_signing_server`] | a server requiring signatures for one tool: signed accepted, unsigned, tampered and replayed refused |
//! | [`comprehensive_request_signing`] | RS256/384/512 and ES256/384/512, tampering, replay, key rotation with an overlap window |
//! | [`secure_server_config`] | the seed's `SecurityPolicy` example on the `SecureServer` builder |
//! | [`call_chain`] | tool-to-tool calls across two servers: signed hops, depth limit, blocked caller |
//! | [`rug_pull_protection`] | a client pinning a tool and blocking silent changes; a legitimate upgrade |
#![forbid(unsafe_code)]

pub mod narrative;
pub mod support;

pub mod call_chain;
pub mod comprehensive_request_signing;
pub mod oauth_providers;
pub mod request_signing_client;
pub mod request_signing_server;
pub mod rug_pull_protection;
pub mod secure_server_config;

pub use narrative::{Context, Failure, Narrative, Outcome, main_with, run_captured};
