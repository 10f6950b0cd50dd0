//! `etdi proxy`: an ETDI gateway in front of an existing MCP server.
//!
//! Not built yet: the command refuses to run rather than pretend.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `etdi proxy`.
#[derive(clap::Args)]
pub struct ProxyArgs {
    /// Path of the gateway's TOML configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
}

/// Runs the gateway until SIGTERM or Ctrl-C.
pub fn run(args: &ProxyArgs, _json: bool) -> Result<ExitCode, String> {
    Err(format!(
        "{}: `etdi proxy` is not implemented yet",
        args.config.display()
    ))
}
