//! The `etdi` command: keys, tool signing and verification, token
//! inspection, approvals, audit verification, policy checks, `etdi demo` (a
//! self-checking walk through what ETDI enforces) and `etdi proxy`.
//!
//! Errors are one sentence on stderr with a non-zero exit status (2 for
//! errors and wrong flags, 1 when a check ran and refused); `--json`
//! switches output to machine-readable JSON for scripts.
#![forbid(unsafe_code)]

mod cmd;
mod demo;
mod proxy;
mod terminal;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use cmd::approvals::ApprovalsCommand;
use cmd::audit::AuditCommand;
use cmd::keygen::KeygenArgs;
use cmd::keys::KeysCommand;
use cmd::policy::PolicyCommand;
use cmd::token::TokenCommand;
use cmd::tool::ToolCommand;

/// ETDI: signed, pinned and authorized tools for the Model Context Protocol.
#[derive(Parser)]
#[command(name = "etdi", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the self-checking demonstration (exits 0 only if every step
    /// behaves as expected).
    Demo,
    /// Generate a signing key: private PKCS#8 PEM (0600), public SPKI PEM
    /// and JWKS; prints the key id (RFC 7638 thumbprint).
    Keygen(KeygenArgs),
    /// List or rotate the keys of a key store directory.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Work with ETDI tool definitions: digest, sign, verify, inspect.
    Tool {
        #[command(subcommand)]
        command: ToolCommand,
    },
    /// Decode and validate OAuth access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage a client's tool approvals (pins).
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Verify and read a hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check authorization policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Run an ETDI gateway in front of an existing MCP server.
    Proxy(proxy::ProxyArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            report_error(cli.json, &message);
            ExitCode::from(cmd::ERROR)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    match &cli.command {
        Command::Demo => Ok(demo::run(cli.json)),
        Command::Proxy(args) => proxy::run(args, cli.json),
        Command::Keygen(args) => cmd::keygen::run(args, cli.json),
        Command::Keys { command } => cmd::keys::run(command, cli.json),
        Command::Tool { command } => cmd::tool::run(command, cli.json),
        Command::Token { command } => cmd::token::run(command, cli.json),
        Command::Approvals { command } => cmd::approvals::run(command, cli.json),
        Command::Audit { command } => cmd::audit::run(command, cli.json),
        Command::Policy { command } => cmd::policy::run(command, cli.json),
    }
}

/// Prints an error as one line: `etdi: <sentence>`, or `{"error": ...}`
/// with `--json`.
fn report_error(json: bool, message: &str) {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if json {
        let error = serde_json::json!({ "error": one_line }).to_string();
        eprintln!("{}", terminal::json(&error));
    } else {
        eprintln!("etdi: {}", terminal::one_line(&one_line));
    }
}

/// Help and version go to stdout as clap renders them; every usage error
/// becomes one sentence on stderr with exit status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a subcommand is required here; add --help to see the choices".to_owned()
    } else {
        // clap's first paragraph is the error itself; the rest is usage and tips.
        let rendered = e.render().to_string();
        let first = rendered
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .trim()
            .trim_start_matches("error:")
            .trim()
            .to_owned();
        format!("{first}; add --help for usage")
    };
    let json = std::env::args_os().any(|a| a == "--json");
    report_error(json, &message);
    ExitCode::from(cmd::ERROR)
}
