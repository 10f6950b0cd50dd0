//! `etdi policy check`: load a TOML policy file (docs/PROTOCOL.md §9.1) with
//! etdi-policy's loader and show what it configures, or the one error that
//! names the file, line, column and field.

use std::path::PathBuf;
use std::process::ExitCode;

use etdi_policy::PolicyDocument;
use serde_json::json;

use super::emit;
use super::files::show;

/// `etdi policy` subcommands.
#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file and summarise it: level, settings, roles,
    /// assignments and per-tool rules.
    Check {
        /// The TOML policy file.
        file: PathBuf,
    },
}

/// Runs an `etdi policy` subcommand.
pub fn run(command: &PolicyCommand, json: bool) -> Result<ExitCode, String> {
    match command {
        PolicyCommand::Check { file } => {
            let doc = PolicyDocument::load_file(file).map_err(|e| e.to_string())?;
            let roles: Vec<&String> = doc.roles.keys().collect();
            let tools: Vec<&str> = doc.tools.keys().map(|t| t.as_str()).collect();
            let level = serde_json::to_value(doc.security.security_level)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            emit(
                json,
                &json!({
                    "file": show(file),
                    "valid": true,
                    "security": doc.security,
                    "roles": roles,
                    "assignments": doc.assignments,
                    "tools": tools,
                }),
                &format!(
                    "{}: valid; level {level}, max call depth {}, request signing {}, {} role(s), {} assignment(s), rules for {} tool(s)",
                    show(file),
                    doc.security.max_call_depth,
                    if doc.security.require_request_signing {
                        "required"
                    } else {
                        "optional"
                    },
                    roles.len(),
                    doc.assignments.len(),
                    tools.len(),
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
