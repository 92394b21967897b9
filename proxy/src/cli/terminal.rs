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
use paycode_api::Role;
use url::Url;

use crate::auth::{AddTerminalError, Terminals};
use crate::cli::pair::{PairingOutputError, print_pairing};
use crate::config::Config;
use crate::pairing::Pairing;
use crate::store::{Millis, Store, StoreError};

/// The `terminal` subcommands.
#[derive(Debug, Subcommand)]
pub enum TerminalCommand {
    /// Add a terminal and print its token (shown only this once).
    Add {
        /// A name for the terminal, e.g. `counter-1`: letters, digits, '-', '_' or '.'.
        name: String,
        /// The store it takes payments for; may be left out while there is one store.
        #[arg(long)]
        store: Option<String>,
        /// What it may ask for: `cashier` (a till), `manager` (back office of its store) or
        /// `owner` (every store).
        #[arg(long, default_value = "cashier", value_parser = parse_role)]
        role: Role,
        /// Also write the pairing QR code to this file, as SVG or PNG by its extension
        /// (`.svg`, `.png`).
        #[arg(long)]
        qr_file: Option<PathBuf>,
    },
    /// Print a fresh pairing QR code for an existing terminal (one use, `pairing.code_ttl`).
    Pair {
        /// The terminal's name.
        name: String,
        /// Also write the pairing QR code to this file, as SVG or PNG by its extension
        /// (`.svg`, `.png`).
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
    /// The named store does not exist, or none was named while there are several.
    #[error(transparent)]
    Shop(#[from] crate::stores::BindingError),
    /// `terminal pair` named a revoked terminal.
    #[error("terminal {0} is revoked and cannot be paired; add a new one with `terminal add`")]
    Revoked(String),
    /// The pairing QR code could not be printed or written.
    #[error(transparent)]
    Pairing(#[from] PairingOutputError),
    /// The output could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Reads `--role`.
fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role: cashier, manager or owner"))
}

/// Runs `command` against the store named by `config`, writing what it has to say to `out`.
pub async fn run(
    command: TerminalCommand,
    config: &Config,
    out: &mut impl Write,
) -> Result<(), TerminalCommandError> {
    let store = crate::store::connect(&config.store).await?;
    let terminals = Terminals::new(Arc::clone(&store));
    let pairing = Pairing::new(Arc::clone(&store), &config.pairing);
    let app_url = crate::tls::app_url(&config.server, config.server.listen.port());
    let result = execute(command, store.as_ref(), &terminals, &pairing, &app_url, out).await;
    store.close().await;
    result
}

async fn execute(
    command: TerminalCommand,
    store: &dyn Store,
    terminals: &Terminals,
    pairing: &Pairing,
    app_url: &Url,
    out: &mut impl Write,
) -> Result<(), TerminalCommandError> {
    match command {
        TerminalCommand::Add {
            name,
            store: shop,
            role,
            qr_file,
        } => {
            let shop = crate::stores::find(store, shop.as_deref()).await?;
            let (terminal, token) = terminals.add_with_role(&name, &shop.id, role).await?;
            writeln!(
                out,
                "Added {} terminal {} (id {}) to store {}.",
                terminal.role, terminal.name, terminal.id, shop.name
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
            let revoked = terminals
                .list()
                .await?
                .iter()
                .any(|terminal| terminal.name == name && terminal.revoked_at.is_some());
            if revoked {
                return Err(TerminalCommandError::Revoked(name));
            }
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
            let stores = store.list_stores().await?;
            for terminal in list {
                let status = match terminal.revoked_at {
                    None => "active".to_owned(),
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                };
                let shop = stores
                    .iter()
                    .find(|shop| shop.id == terminal.store_id)
                    .map_or(terminal.store_id.as_str(), |shop| shop.name.as_str());
                writeln!(
                    out,
                    "{}\t{}\tstore {shop}\trole {}\tadded {}\t{}",
                    terminal.name,
                    terminal.id,
                    terminal.role,
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
                store: None,
                role: Role::Cashier,
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
        assert!(
            listed.contains("\tstore default\trole cashier\t"),
            "{listed}"
        );
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
    async fn a_terminal_joins_the_named_store_or_the_only_one() {
        let directory = tempfile::tempdir().unwrap();
        let config = test_config(directory.path());
        let add = |name: &str, store: Option<&str>| TerminalCommand::Add {
            name: name.into(),
            store: store.map(str::to_owned),
            role: Role::Cashier,
            qr_file: None,
        };
        let added = run_to_string(add("counter-1", None), &config).await;
        assert!(added.contains("to store default"), "{added}");
        let database = crate::store::SqliteStore::connect(&config.store)
            .await
            .unwrap();
        let shop = crate::stores::add(
            &config.accounts(),
            &database,
            crate::stores::NewStore {
                name: "shop-east".into(),
                account: "default".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

        let ambiguous = run(add("counter-2", None), &config, &mut Vec::new()).await;
        let added = run_to_string(add("counter-2", Some("shop-east")), &config).await;

        assert!(
            matches!(ambiguous, Err(TerminalCommandError::Shop(_))),
            "{ambiguous:?}"
        );
        assert!(added.contains("to store shop-east"), "{added}");
        let terminals = database.list_terminals().await.unwrap();
        assert_eq!(terminals[1].store_id, shop.id);
    }

    #[tokio::test]
    async fn a_disabled_store_takes_no_terminal_and_a_revoked_terminal_no_pairing() {
        // Arrange
        let directory = tempfile::tempdir().unwrap();
        let config = test_config(directory.path());
        run_to_string(
            TerminalCommand::Add {
                name: "counter-1".into(),
                store: None,
                role: Role::Cashier,
                qr_file: None,
            },
            &config,
        )
        .await;
        run_to_string(
            TerminalCommand::Revoke {
                name: "counter-1".into(),
            },
            &config,
        )
        .await;
        let database = crate::store::SqliteStore::connect(&config.store)
            .await
            .unwrap();
        database.disable_store("default").await.unwrap();

        // Act
        let added = run(
            TerminalCommand::Add {
                name: "counter-2".into(),
                store: Some("default".into()),
                role: Role::Cashier,
                qr_file: None,
            },
            &config,
            &mut Vec::new(),
        )
        .await;
        let paired = run(
            TerminalCommand::Pair {
                name: "counter-1".into(),
                qr_file: None,
            },
            &config,
            &mut Vec::new(),
        )
        .await;

        // Assert
        let added = added
            .expect_err("a disabled store takes no terminal")
            .to_string();
        assert!(
            added.contains("store: store \"default\" is disabled"),
            "{added}"
        );
        let paired = paired
            .expect_err("a revoked terminal is not paired")
            .to_string();
        assert!(paired.contains("counter-1 is revoked"), "{paired}");
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
