//! ETDI cryptography: algorithm providers, keys and rotation, JWS, tool attestations, request signing and replay protection.
//!
//! This crate is a placeholder in the workspace layout; its issue delivers the
//! implementation. It exposes nothing yet, so nothing can depend on behaviour
//! it does not have.
#![forbid(unsafe_code)]
