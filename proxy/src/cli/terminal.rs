//! `paycode-proxy terminal add NAME | pair NAME | list | revoke NAME`: managing who may take
//! payments.
//!
//! `add` prints the new terminal's token once; it is stored only as a hash, so it cannot be
//! shown again (revoke the terminal and add a new one if it is lost). `add` and `pair` also
//! print a pairing QR code (`cli::pair`): a tablet that scans it gets a new token of its
//! own, and the previous one stops working. `list` never prints tokens or their hashes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use url::Url;

use crate::auth::{AddTerminalError, Terminals};
use crate::cli::pair::{PairingOutputError, print_pairing};
use crate::config::Config;
use crate::pairing::Pairing;
use crate::store::{Millis, SqliteStore, StoreError};

/// The `terminal` subcommands.
#[derive(Debug, Subcommand)]
pub enum TerminalCommand {
    /// Add a terminal and print its token (shown only this once).
    Add {
        /// A name for the terminal, e.g. `counter-1`: letters, digits, '-', '_' or '.'.
        name: String,
        /// Also write the pairing QR code to this SVG file.
        #[arg(long)]
        qr_file: Option<PathBuf>,
    },
    /// Print a fresh pairing QR code for an existing terminal (one use, `pairing.code_ttl`).
    Pair {
        /// The terminal's name.
        name: String,
        /// Also write the pairing QR code to this SVG file.
        #[arg(long)]
        qr_file: Option<PathBuf>,
    },
    /// List the terminals (names and status, never tokens).
    List,
    /// Revoke a terminal: its token stops working at once.
    Revoke {
        /// The terminal's name.
        name: String,
    },
}

/// Why a terminal command failed.
#[derive(Debug, thiserror::Error)]
pub enum TerminalCommandError {
    /// The store could not be opened or refused the change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The terminal could not be added.
    #[error(transparent)]
    Add(#[from] AddTerminalError),
    /// The pairing QR code could not be printed or written.
    #[error(transparent)]
    Pairing(#[from] PairingOutputError),
    /// The output could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Runs `command` against the store named by `config`, writing what it has to say to `out`.
pub async fn run(
    command: TerminalCommand,
    config: &Config,
    out: &mut impl Write,
) -> Result<(), TerminalCommandError> {
    let store = SqliteStore::connect(&config.store).await?;
    let terminals = Terminals::new(Arc::new(store.clone()));
    let pairing = Pairing::new(Arc::new(store.clone()), &config.pairing);
    let app_url = crate::tls::app_url(&config.server, config.server.listen.port());
    let result = execute(command, &terminals, &pairing, &app_url, out).await;
    store.close().await;
    result
}

async fn execute(
    command: TerminalCommand,
    terminals: &Terminals,
    pairing: &Pairing,
    app_url: &Url,
    out: &mut impl Write,
) -> Result<(), TerminalCommandError> {
    match command {
        TerminalCommand::Add { name, qr_file } => {
            let (terminal, token) = terminals.add(&name).await?;
            writeln!(
                out,
                "Added terminal {} (id {}).",
                terminal.name, terminal.id
            )?;
            writeln!(
                out,
                "Its token, shown only this once; enter it in the cashier app:"
            )?;
            writeln!(out)?;
            writeln!(out, "    {}", token.expose())?;
            writeln!(out)?;
            let (terminal, code, expires_at) = pairing.issue(&terminal.name).await?;
            print_pairing(
                out,
                &terminal,
                app_url,
                &code,
                expires_at,
                qr_file.as_deref(),
            )?;
        }
        TerminalCommand::Pair { name, qr_file } => {
            let (terminal, code, expires_at) = pairing.issue(&name).await?;
            print_pairing(
                out,
                &terminal,
                app_url,
                &code,
                expires_at,
                qr_file.as_deref(),
            )?;
        }
        TerminalCommand::List => {
            let list = terminals.list().await?;
            if list.is_empty() {
                writeln!(
                    out,
                    "No terminals yet; add one with `paycode-proxy terminal add NAME`."
                )?;
            }
            for terminal in list {
                let status = match terminal.revoked_at {
                    None => "active".to_owned(),
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                };
                writeln!(
                    out,
                    "{}\t{}\tadded {}\t{}",
                    terminal.name,
                    terminal.id,
                    terminal.created_at.to_rfc3339(),
                    status
                )?;
            }
        }
        TerminalCommand::Revoke { name } => {
            let terminal = terminals.revoke(&name).await?;
            let at = terminal.revoked_at.unwrap_or_else(Millis::now);
            writeln!(
                out,
                "Revoked terminal {} at {}.",
                terminal.name,
                at.to_rfc3339()
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TerminalToken;
    use crate::test_support::test_config;

    async fn run_to_string(command: TerminalCommand, config: &Config) -> String {
        let mut out = Vec::new();
        run(command, config, &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn add_prints_the_token_once_and_list_never_does() {
        // Arrange
        let directory = tempfile::tempdir().unwrap();
        let config = test_config(directory.path());

        // Act
        let added = run_to_string(
            TerminalCommand::Add {
                name: "counter-1".into(),
                qr_file: None,
            },
            &config,
        )
        .await;
        let listed = run_to_string(TerminalCommand::List, &config).await;
        let revoked = run_to_string(
            TerminalCommand::Revoke {
                name: "counter-1".into(),
            },
            &config,
        )
        .await;
        let listed_after = run_to_string(TerminalCommand::List, &config).await;

        // Assert
        let token = added
            .split_whitespace()
            .find(|word| word.starts_with("pct_"))
            .and_then(TerminalToken::parse)
            .expect("add prints a token");
        assert!(listed.starts_with("counter-1\t"), "{listed}");
        assert!(listed.contains("active"), "{listed}");
        for output in [&listed, &revoked, &listed_after] {
            assert!(!output.contains(token.expose()), "{output}");
            assert!(!output.contains(&token.hash()), "{output}");
        }
        assert!(
            revoked.starts_with("Revoked terminal counter-1"),
            "{revoked}"
        );
        assert!(listed_after.contains("revoked 20"), "{listed_after}");
    }

    #[tokio::test]
    async fn revoking_an_unknown_terminal_fails() {
        let directory = tempfile::tempdir().unwrap();
        let config = test_config(directory.path());
        let result = run(
            TerminalCommand::Revoke {
                name: "nobody".into(),
            },
            &config,
            &mut Vec::new(),
        )
        .await;
        assert!(
            matches!(
                result,
                Err(TerminalCommandError::Store(StoreError::NotFound { .. }))
            ),
            "{result:?}"
        );
    }
}
