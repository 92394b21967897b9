//! The command line: `paycode-proxy [--config FILE] [serve | demo | check | migrate | terminal … | manager … | store … | tls … | reconcile … | sim]`:
//! `serve` runs the proxy from the configuration; `demo` runs it with the embedded simulator,
//! SQLite under `./data` and a demo terminal; `check` tests a configuration (database,
//! HTTPS certificate, client certificates, a signed query to WeChat per account); `migrate`
//! brings the database's schema up to date and stops; `terminal add|pair|list|revoke`
//! manages terminal tokens and pairing QR codes; `manager add|list|pin|remove` manages the
//! managers whose PIN approves manager actions; `store add|list|disable` manages stores;
//! `tls init|renew` makes the local CA and the HTTPS certificate; `reconcile --date D`
//! reconciles a business day with WeChat's bill; `sim` runs the WeChat Pay simulator alone.
//!
//! `main.rs` parses [`Cli`] and calls [`run`]; each subcommand's work lives in its own
//! module so that it can be tested without a process.

pub mod check;
pub mod demo;
pub mod manager;
pub mod pair;
pub mod reconcile;
pub mod store;
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
    /// Bring the database's schema up to date, then stop. `serve` does it too on start; run
    /// this to migrate ahead of starting proxies (e.g. several sharing one PostgreSQL).
    Migrate,
    /// Add, pair (QR code), list or revoke terminals (cashier, manager or owner).
    #[command(subcommand)]
    Terminal(terminal::TerminalCommand),
    /// Add, list, re-PIN or remove managers (whose PIN approves refunds and back-office
    /// actions).
    #[command(subcommand)]
    Manager(manager::ManagerCommand),
    /// Add, list or disable stores (each collects into a configured merchant account).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Make the shop's local CA and the proxy's HTTPS certificate (docs/tablets.md).
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Run the WeChat Pay simulator on its own (the same one demo mode embeds).
    ///
    /// `sim` does not read --config: its merchant is --appid, --mch-id and --key, whose
    /// defaults are proxy/paycode.example.toml's. At start it prints the `[wechat]` block
    /// (appid, mch_id, hosts, certificate, key file and CA) to paste into a proxy's
    /// configuration.
    Sim(wxpay::sim::cli::SimArgs),
    /// Reconcile one business day with WeChat's bill (every account, or one) and store the
    /// result, as the daily run does; prints the totals and mismatches (docs/books.md).
    Reconcile(reconcile::ReconcileArgs),
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
    /// A manager command failed.
    #[error(transparent)]
    Manager(#[from] manager::ManagerCommandError),
    /// A store command failed.
    #[error(transparent)]
    Store(#[from] store::StoreCommandError),
    /// A `tls` command failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsCommandError),
    /// Demo mode failed.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    /// `check` found a problem.
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// The database could not be migrated.
    #[error("cannot migrate the database")]
    Migrate(#[source] crate::store::StoreError),
    /// A command's report could not be written.
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    /// The simulator failed.
    #[error("the WeChat Pay simulator failed")]
    Sim(#[from] wxpay::sim::SimError),
    /// `reconcile` could not reconcile a day.
    #[error(transparent)]
    Reconcile(#[from] reconcile::ReconcileCommandError),
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
        Command::Migrate => {
            let config = Config::load(&cli.config)?;
            let mut out = std::io::stdout().lock();
            migrate(&config, &mut out).await
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
        Command::Manager(command) => {
            let config = Config::load(&cli.config)?;
            let mut out = std::io::stdout().lock();
            manager::run(command, &config, &mut std::io::stdin().lock(), &mut out).await?;
            Ok(())
        }
        Command::Store(command) => {
            let config = Config::load(&cli.config)?;
            let mut out = std::io::stdout().lock();
            store::run(command, &config, &mut out).await?;
            Ok(())
        }
        Command::Reconcile(args) => {
            let config = Config::load(&cli.config)?;
            let mut out = std::io::stdout().lock();
            reconcile::run(args, &config, &mut out).await?;
            Ok(())
        }
    }
}

/// `paycode-proxy migrate`: applies the migrations the database lacks and says which.
pub async fn migrate(config: &Config, out: &mut impl std::io::Write) -> Result<(), CliError> {
    let applied = crate::store::migrate(&config.store)
        .await
        .map_err(CliError::Migrate)?;
    let database = config.store.describe();
    let written = if applied.is_empty() {
        writeln!(out, "{database}: the schema was already up to date")
    } else {
        let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
        writeln!(
            out,
            "{database}: applied migrations {}",
            versions.join(", ")
        )
    };
    written.map_err(CliError::Output)
}
