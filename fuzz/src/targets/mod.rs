//! The targets, one module per parser of untrusted input. Each has
//! `run(&[u8])` (the entry point both drivers call), `seeds()` (the inputs
//! committed under `fuzz/corpus/NAME/`) and `TARGET`.

pub mod access_token;
pub mod audit_log;
pub mod call_chain;
pub mod jws;
pub mod policy_file;
pub mod request_envelope;
pub mod tool_attestation;
pub mod tool_definition;

use std::borrow::Cow;

/// The input as text: parsers of untrusted text take `&str`, so invalid
/// UTF-8 is replaced rather than dropped, to keep exercising them.
pub(crate) fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A named seed.
pub(crate) fn seed(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> (String, Vec<u8>) {
    (name.into(), bytes.into())
}

/// Dictionary entries shared by the JOSE targets.
pub(crate) const JOSE_DICTIONARY: &[&[u8]] = &[
    b".",
    b"..",
    b"eyJ",
    b"\"alg\"",
    b"\"kid\"",
    b"\"typ\"",
    b"\"crit\"",
    b"\"cty\"",
    b"\"b64\"",
    b"\"jwk\"",
    b"\"jku\"",
    b"\"x5c\"",
    b"\"x5u\"",
    b"\"x5t#S256\"",
    b"\"none\"",
    b"\"HS256\"",
    b"\"RS256\"",
    b"\"PS256\"",
    b"\"ES256\"",
    b"\"ES512\"",
    b"\"EdDSA\"",
    b"\"iss\"",
    b"\"sub\"",
    b"\"aud\"",
    b"\"exp\"",
    b"\"nbf\"",
    b"\"iat\"",
    b"\"jti\"",
    b"\"scope\"",
    b"\"cnf\"",
    b"\"client_id\"",
    b"\"etdi_ver\"",
    b"\"at+jwt\"",
    b"\"application/at+jwt\"",
    b"\"etdi-req+jwt\"",
    b"\"etdi-hop+jwt\"",
    b"\"etdi-tool+jwt\"",
    b"\"etdi-fuzz+jwt\"",
    b"\"etdi-fuzz\"",
];
