//! The `etdi` subcommands, one module per command group. Handlers are thin:
//! they read files, call the library crates and print the result; every
//! decision is made by the libraries.
//!
//! Conventions shared by every command:
//!
//! * results go to standard output, as text or (with `--json`) as one JSON
//!   document (`audit tail` prints one JSON document per line);
//! * an error is one sentence on standard error naming the file and, where
//!   the library reports one, the field, and nothing on disk is changed;
//! * exit status 0 means success, [`REFUSED`] means a check ran and said no
//!   (not verified, token refused, broken audit chain, approval blocked),
//!   [`ERROR`] means the command could not do its job (bad input, unreadable
//!   file, wrong flags).

pub mod approvals;
pub mod audit;
pub mod files;
pub mod keyfile;
pub mod keygen;
pub mod keys;
pub mod policy;
pub mod token;
pub mod tool;

use std::io::Write;
use std::process::ExitCode;

use clap::builder::PossibleValue;
use etdi_crypto::{Algorithm, RsaKeySize};
use serde_json::Value;

/// Exit status of a check that ran and refused.
pub const REFUSED: u8 = 1;
/// Exit status of an error: bad input, unreadable file, wrong flags.
pub const ERROR: u8 = 2;

/// The exit status for a refusal.
pub fn refused() -> ExitCode {
    ExitCode::from(REFUSED)
}

/// Prints one result: `value` as compact JSON with `--json`, else `text`.
pub fn emit(json: bool, value: &Value, text: &str) {
    if json {
        json_line(value);
    } else {
        line(text.trim_end_matches('\n'));
    }
}

/// Writes human-readable text and a newline to standard output, with what
/// a terminal would act on escaped (`crate::terminal::text`). A closed
/// pipe (`etdi ... | head`) ends the output quietly instead of panicking
/// like `println!`.
pub fn line(text: &str) -> bool {
    raw_line(&crate::terminal::text(text))
}

/// Writes `value` as one line of compact JSON (`crate::terminal::json`).
pub fn json_line(value: &Value) -> bool {
    json_text_line(&value.to_string())
}

/// Writes text that is JSON already as one line (`crate::terminal::json`).
pub fn json_text_line(json: &str) -> bool {
    raw_line(&crate::terminal::json(json))
}

fn raw_line(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
}

/// A JOSE algorithm as a command-line value (`--alg ES256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgArg(pub Algorithm);

impl clap::ValueEnum for AlgArg {
    fn value_variants<'a>() -> &'a [Self] {
        const ALL: [AlgArg; 10] = [
            AlgArg(Algorithm::RS256),
            AlgArg(Algorithm::RS384),
            AlgArg(Algorithm::RS512),
            AlgArg(Algorithm::PS256),
            AlgArg(Algorithm::PS384),
            AlgArg(Algorithm::PS512),
            AlgArg(Algorithm::ES256),
            AlgArg(Algorithm::ES384),
            AlgArg(Algorithm::ES512),
            AlgArg(Algorithm::EdDSA),
        ];
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

/// An RSA modulus size as a command-line value (`--bits 3072`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitsArg(pub RsaKeySize);

impl clap::ValueEnum for BitsArg {
    fn value_variants<'a>() -> &'a [Self] {
        const ALL: [BitsArg; 3] = [
            BitsArg(RsaKeySize::Bits2048),
            BitsArg(RsaKeySize::Bits3072),
            BitsArg(RsaKeySize::Bits4096),
        ];
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self.0 {
            RsaKeySize::Bits2048 => "2048",
            RsaKeySize::Bits3072 => "3072",
            RsaKeySize::Bits4096 => "4096",
        }))
    }
}

/// An instant as RFC 3339 text, for people and for JSON.
pub fn rfc3339(unix_secs: u64) -> String {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|s| etdi_core::Timestamp::from_unix(s, 0))
        .map_or_else(|| format!("@{unix_secs}"), |t| t.to_string())
}
