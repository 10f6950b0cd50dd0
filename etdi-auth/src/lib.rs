//! ETDI authentication: OAuth 2.0 / OIDC resource server and client, JWKS, provider presets, mTLS identity.
//!
//! This crate is a placeholder in the workspace layout; its issue delivers the
//! implementation. It exposes nothing yet, so nothing can depend on behaviour
//! it does not have.
#![forbid(unsafe_code)]
