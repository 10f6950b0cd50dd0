//! The crypto backends: aws-lc-rs (always built, the default) and RustCrypto
//! (with the `rust-crypto` feature). Each exposes `provider()`.

pub mod aws_lc;
#[cfg(feature = "rust-crypto")]
pub mod rust_crypto;

/// Every backend compiled into this build, default first. The conformance
/// suite and benches iterate over this.
pub fn all() -> Vec<crate::CryptoProvider> {
    #[allow(unused_mut)]
    let mut providers = vec![aws_lc::provider()];
    #[cfg(feature = "rust-crypto")]
    providers.push(rust_crypto::provider());
    providers
}
