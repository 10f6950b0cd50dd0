//! ETDI authentication: OAuth 2.0 / OIDC resource server and client, JWKS,
//! provider presets, mTLS identity. Every successful path ends in an
//! [`etdi_core::Principal`]; every failure is a typed reason.
//!
//! # Resource server
//!
//! * [`TokenVerifier`] verifies JWT access tokens from configured issuers:
//!   signature against the issuer's JWKS (found by OIDC discovery or RFC 8414,
//!   or configured), `exp`/`nbf`/`iat` with leeway, `iss`, `aud` (the RFC 8707
//!   resource) with an explicit per-issuer fallback to `azp`/`client_id`
//!   ([`AudienceFallback`], off by default), a per-issuer algorithm allow-list
//!   checked against the key's type (never the header alone), optional RFC 9068
//!   `typ: at+jwt`, and `crit` refused. Validated tokens are cached by their
//!   SHA-256, never past `exp`, in a bounded cache.
//! * [`Introspector`] asks an RFC 7662 endpoint about opaque tokens; answers
//!   are cached no longer than the token lives.
//! * [`presets`] configure Auth0, Okta, Entra ID (Azure AD), Keycloak and any
//!   OIDC provider.
//! * [`resource`] builds the RFC 9728 protected-resource metadata and the
//!   `WWW-Authenticate` values of docs/PROTOCOL.md §11.
//! * [`mtls`] builds a rustls server configuration requiring client
//!   certificates and turns the verified certificate into a principal; tokens
//!   bound to a certificate (RFC 8705) are checked by
//!   [`TokenVerifier::verify_with_certificate`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use etdi_auth::{presets, resource, TokenVerifier};
//!
//! let verifier = TokenVerifier::builder()
//!     .issuer(presets::keycloak("https://sso.example.com", "mcp", None)?
//!         .audience("https://tools.example.com/mcp")
//!         .require_at_jwt(true))
//!     .build()?;
//! let metadata_url = resource::metadata_url("https://tools.example.com/mcp")?;
//! match verifier.verify("eyJ...").await {
//!     Ok(principal) => println!("caller {}", principal.subject),
//!     // 401 with this WWW-Authenticate value; log `e` itself for operators.
//!     Err(e) => println!("{}", resource::www_authenticate_invalid_token(&metadata_url, &e)),
//! }
//! # Ok(()) }
//! ```
//!
//! # Algorithms and where the JWS is checked
//!
//! Third-party JWTs: `RS256/384/512`, `PS256/384/512`, `ES256`, `ES384`,
//! `ES512` (P-521) and `EdDSA` (Ed25519), each only if the issuer's
//! allow-list names it ([`IssuerConfig::algorithms`], default `RS256` and
//! `ES256`). `none` and `HS*` are always refused. [`Algorithm`] is
//! `etdi_crypto::Algorithm`.
//!
//! Access tokens are verified by `etdi_crypto::jws`, the workspace's one JWS
//! implementation (proven with the RFC 7515/7520/8037 examples and the
//! Wycheproof vectors on both of its backends); this crate does no
//! signature cryptography itself. The order of a verification:
//!
//! 1. The claims are read, unverified, only to find the issuer by `iss`
//!    (`etdi_core::canonical::parse_json`: duplicate members refused).
//! 2. `etdi_crypto::jws::verify` runs with a `Validation` built once per
//!    issuer: the allow-list, RFC 9068 `typ: at+jwt` when required, no
//!    `crit` name understood (so any `crit` is refused,
//!    [`TokenError::UnsupportedCritical`]) and the size bound. It parses the
//!    header strictly (duplicate members refused, `alg` known and
//!    asymmetric) and refuses `jwk`, `jku`, `x5u` and `x5c` outright
//!    ([`TokenError::ForbiddenHeader`]): keys come only from the configured
//!    issuer, and nothing a token names is fetched. All of this happens
//!    before a key is asked for, so a refused header never causes a JWKS
//!    fetch.
//! 3. The key is found by `kid` in the issuer's JWKS cache: from the loaded
//!    set when it is fresh, else through the refresh rules of [`jwks`].
//!    Keys are `etdi_crypto::VerifyingKey`s, parsed once per JWKS load and
//!    each bound to one algorithm: a JWK's own `alg`, or, for a JWK without
//!    `alg`, each allowed algorithm that fits its key type and curve. The
//!    header never picks an algorithm on its own: it must be allowed for
//!    the issuer and equal to the found key's.
//! 4. The signature is checked by that key (etdi-crypto).
//! 5. The claims are checked (`exp`/`nbf`/`iat`, `aud`, RFC 9068 claims,
//!    certificate binding) and mapped to a principal.
//!
//! jsonwebtoken is used for one thing: signing `private_key_jwt` client
//! assertions ([`AssertionKey`], PKCS#1 RSA and PKCS#8 EC/Ed25519 keys, not
//! P-521), with its aws-lc-rs provider named explicitly rather than the
//! process default, so another crate enabling its `rust_crypto` feature
//! cannot make it panic. Hashes (the validated-token cache key, RFC 8705
//! thumbprints) use `sha2`; TLS is rustls's job ([`mtls`]).
//!
//! # Client side
//!
//! [`ClientCredentials`] obtains tokens with the client-credentials grant,
//! caches them and refreshes before expiry, asks for an RFC 8707 `resource`,
//! and authenticates with `client_secret_basic`, `client_secret_post` or
//! `private_key_jwt` ([`ClientAuth`]).
//!
//! ## Interactive login (authorization code + PKCE) with `rmcp`
//!
//! This crate does not implement a second authorization-code flow: the
//! official MCP SDK's client (`rmcp` with feature `auth`, `rmcp::transport::auth`)
//! does discovery from the server's `401`/RFC 9728 metadata, client
//! registration, PKCE (`S256`), the redirect, refresh and the `Authorization`
//! header. Use it for users, and ETDI's types around it:
//!
//! ```text
//! use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
//! use rmcp::transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig};
//!
//! // 1. Discover and start: rmcp reads the server's protected-resource
//! //    metadata (what etdi_auth::resource serves) and the AS metadata.
//! let mut state = OAuthState::new("https://tools.example.com/mcp", None).await?;
//! state.start_authorization(
//!     AuthorizationRequest::new("http://127.0.0.1:8765/callback")
//!         .with_scopes(["tools:call"])
//!         .with_preregistered_client("my-agent"),
//! ).await?;
//! let url = state.get_authorization_url().await?;   // open in a browser
//! // 2. The redirect arrives at the callback; rmcp checks `state`, the
//! //    RFC 9207 `iss`, and exchanges the code with the PKCE verifier.
//! state.handle_callback_url(&callback_url).await?;
//! state.complete_authorization().await?;
//! // 3. Use the authorized manager as the MCP transport's HTTP client; rmcp
//! //    adds the token and refreshes it.
//! let manager = state.into_authorization_manager().expect("authorized");
//! let client = AuthClient::new(reqwest::Client::default(), manager);
//! let transport = StreamableHttpClientTransport::with_client(
//!     client, StreamableHttpClientTransportConfig::with_uri("https://tools.example.com/mcp"));
//! ```
//!
//! On the server that receives these tokens, [`TokenVerifier`] is the check
//! (audience = the MCP server's resource id, which rmcp sends as RFC 8707
//! `resource`). For machine clients without a user, prefer
//! [`ClientCredentials`]: it gives an [`AccessToken`] to put in the
//! `Authorization` header of any transport. A gateway never forwards a token
//! it received; it obtains its own (docs/PROTOCOL.md §11).
#![forbid(unsafe_code)]

mod cache;
pub mod claims;
pub mod client;
pub mod clock;
pub mod discovery;
pub mod error;
pub mod http;
pub mod introspection;
pub mod jwks;
pub mod mtls;
pub mod presets;
pub mod resource;
pub mod verifier;

pub use claims::{ClaimMapping, ClaimPath};
pub use client::{
    AccessToken, AssertionKey, ClientAuth, ClientCredentials, ClientError, ClientSecret,
};
pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use error::{BindingFailure, ConfigError, FetchError, Malformed, Part, TokenError};
pub use etdi_crypto::Algorithm;
pub use http::HttpClient;
pub use introspection::Introspector;
pub use jwks::{IssuerJwks, JwksPolicy};
pub use mtls::{CertificateIdentity, MtlsError, MtlsServerConfigBuilder};
pub use resource::ProtectedResourceMetadata;
pub use verifier::{AudienceFallback, IssuerConfig, TokenVerifier, TokenVerifierBuilder};
