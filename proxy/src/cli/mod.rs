//! The command line: `paycode-proxy [--config FILE] [serve | demo | check | terminal … | sim]`:
//! `serve` runs the proxy from the configuration; `demo` runs it with the embedded simulator,
//! SQLite under `./data` and a demo terminal; `check` tests a configuration (database,
//! certificate, a signed query to WeChat); `terminal add|pair|list|revoke` manages terminal
//! tokens and pairing QR codes; `tls init|renew` makes the local CA and the HTTPS certificate; `sim` runs the
//! WeChat Pay simulator alone.
//!
//! `main.rs` parses [`Cli`] and calls [`run`]; each subcommand's work lives in its own
//! module so that it can be tested without a process.

pub mod check;
pub mod demo;
pub mod pair;
pub mod terminal;
pub mod tls;

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
    /// Run Paycode with no merchant account: the embedded WeChat Pay simulator, a demo
    /// terminal, SQLite under ./data, and the built app.
    Demo(demo::DemoArgs),
    /// Check the configuration: the database, the HTTPS certificate (names, days to
    /// expiry), the client certificate (subject, mch_id match, days to expiry) and the API
    /// key (by a signed query).
    Check,
    /// Add, pair (QR code), list or revoke cashier terminals.
    #[command(subcommand)]
    Terminal(terminal::TerminalCommand),
    /// Make the shop's local CA and the proxy's HTTPS certificate (docs/tablets.md).
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Run the WeChat Pay simulator on its own (the same one demo mode embeds).
    Sim(wxpay::sim::cli::SimArgs),
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
    /// A `tls` command failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsCommandError),
    /// Demo mode failed.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    /// `check` found a problem.
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// The simulator failed.
    #[error("the WeChat Pay simulator failed")]
    Sim(#[from] wxpay::sim::SimError),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = Config::load(&cli.config)?;
            tracing::info!(%config, "starting");
            let application = Application::build(config).await?;
            application
                .run_until_stopped()
                .await
                .map_err(CliError::Serve)
        }
        // Demo mode and the simulator need no configuration file.
        Command::Demo(args) => Ok(demo::run(args).await?),
        Command::Sim(args) => Ok(wxpay::sim::cli::serve(args).await?),
        Command::Check => {
            let config = Config::load(&cli.config)?;
            let mut out = std::io::stdout().lock();
            check::run(&config, &mut out).await?;
            Ok(())
        }
        Command::Tls(command) => {
            tls::run(command, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Terminal(command) => {
            let config = Config::load(&cli.config)?;
            let mut out = std::io::stdout().lock();
            terminal::run(command, &config, &mut out).await?;
            Ok(())
        }
    }
}
