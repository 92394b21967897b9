//! The `paycode-proxy` binary: parses the command line, starts logging, and hands over to
//! the library ([`paycode_proxy::cli::run`]).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use paycode_proxy::cli::{self, Cli};
use paycode_proxy::error::chain;
use tracing_subscriber::EnvFilter;

/// The log filter when `RUST_LOG` is not set.
const DEFAULT_LOG: &str = "info,sqlx::postgres::notice=warn";

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr so that stdout carries only command output (such as the token that
    // `terminal add` prints). RUST_LOG overrides the default level, which leaves out
    // PostgreSQL's notices below WARN (the migrator's "relation … already exists, skipping"
    // on every command).
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("paycode-proxy: {}", chain(&error));
            ExitCode::FAILURE
        }
    }
}
