//! The command line: `paycode-proxy [--config FILE] [serve | terminal …]`.
//!
//! `main.rs` parses [`Cli`] and calls [`run`]; each subcommand's work lives in its own
//! module so that it can be tested without a process.

pub mod terminal;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::startup::{Application, StartupError};

/// Paycode's proxy: takes WeChat Pay payment-code payments for the cashier app.
#[derive(Debug, Parser)]
#[command(name = "paycode-proxy", version, about)]
pub struct Cli {
    /// The configuration file (see proxy/paycode.example.toml). `PAYCODE_<SECTION>__<FIELD>`
    /// environment variables override its settings.
    #[arg(
        long,
        short,
        env = "PAYCODE_CONFIG",
        default_value = "paycode.toml",
        global = true
    )]
    pub config: PathBuf,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the JSON API and the cashier app until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Add, list or revoke cashier terminals.
    #[command(subcommand)]
    Terminal(terminal::TerminalCommand),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server could not start.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The server stopped with an error.
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    /// A terminal command failed.
    #[error(transparent)]
    Terminal(#[from] terminal::TerminalCommandError),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(&cli.config)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            tracing::info!(%config, "starting");
            let application = Application::build(config).await?;
            application
                .run_until_stopped()
                .await
                .map_err(CliError::Serve)
        }
        Command::Terminal(command) => {
            let mut out = std::io::stdout().lock();
            terminal::run(command, &config, &mut out).await?;
            Ok(())
        }
    }
}
