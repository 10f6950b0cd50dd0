//! The `etdi` command: inspect and digest tool definitions, and `etdi demo`,
//! a self-checking walk through what ETDI enforces.
//!
//! Errors are one sentence on stderr with a non-zero exit status; `--json`
//! switches output to machine-readable JSON for scripts.
#![forbid(unsafe_code)]

mod demo;
mod proxy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use etdi_core::ToolDefinition;

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
    /// Work with ETDI tool definitions.
    Tool {
        #[command(subcommand)]
        command: ToolCommand,
    },
    /// Run an ETDI gateway in front of an existing MCP server.
    Proxy(proxy::ProxyArgs),
}

#[derive(Subcommand)]
enum ToolCommand {
    /// Print the canonical digest of a tool definition (JSON file, or `-`
    /// for standard input). This is the digest ETDI signs, pins and approves.
    Digest {
        /// Path of the tool definition JSON.
        file: PathBuf,
    },
    /// Print the RFC 8785 canonical form of a tool definition.
    Canonical {
        /// Path of the tool definition JSON.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            if cli.json {
                eprintln!("{}", serde_json::json!({ "error": message }));
            } else {
                eprintln!("etdi: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    match &cli.command {
        Command::Demo => Ok(demo::run(cli.json)),
        Command::Proxy(args) => proxy::run(args, cli.json),
        Command::Tool { command } => match command {
            ToolCommand::Digest { file } => {
                let def = load_definition(file)?;
                let digest = def
                    .digest()
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                if cli.json {
                    println!(
                        "{}",
                        serde_json::json!({"id": def.id, "version": def.version, "digest": digest})
                    );
                } else {
                    println!("{digest}");
                }
                Ok(ExitCode::SUCCESS)
            }
            ToolCommand::Canonical { file } => {
                let def = load_definition(file)?;
                let bytes = def
                    .canonical_bytes()
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                println!("{}", String::from_utf8_lossy(&bytes));
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

fn load_definition(path: &PathBuf) -> Result<ToolDefinition, String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    ToolDefinition::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}
