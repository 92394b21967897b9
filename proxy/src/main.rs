//! The `paycode-proxy` binary: parses the command line, starts logging, and hands over to
//! the library ([`paycode_proxy::cli::run`]).

use std::process::ExitCode;

use clap::Parser;
use paycode_proxy::cli::{self, Cli};
use paycode_proxy::error::error_chain_fmt;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr so that stdout carries only command output (such as the token that
    // `terminal add` prints). RUST_LOG overrides the default level.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut report = String::new();
            // Writing into a String cannot fail.
            let _ = error_chain_fmt(&error, &mut report);
            eprintln!("paycode-proxy: {report}");
            ExitCode::FAILURE
        }
    }
}
