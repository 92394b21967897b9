//! `paycode-proxy manager add NAME [--store S | --all-stores] [--pin-stdin] | list | pin NAME
//! [--pin-stdin] | remove NAME`: the managers whose PIN approves manager actions
//! (docs/approvals.md).
//!
//! `add` and `pin` print a generated six-digit PIN once (or read one from standard input
//! with `--pin-stdin`); it is stored only as an argon2id hash, so it cannot be shown again
//! (give a new one with `manager pin NAME`). `list` never prints PINs or their hashes.

use std::io::{BufRead, Write};
use std::sync::Arc;

use clap::Subcommand;

use crate::approvals::pin::{InvalidPin, Pin};
use crate::approvals::{Approvals, ManagerError};
use crate::config::Config;
use crate::store::{Millis, StoreError};

/// The `manager` subcommands.
#[derive(Debug, Subcommand)]
pub enum ManagerCommand {
    /// Add a manager and print their PIN (shown only this once).
    Add {
        /// The name the manager types with their PIN, e.g. `店长` or `wang.li`.
        name: String,
        /// The store the manager approves for; may be left out while there is one store.
        #[arg(long, conflicts_with = "all_stores")]
        store: Option<String>,
        /// The manager approves for every store (an owner).
        #[arg(long)]
        all_stores: bool,
        /// Read the PIN (4 to 12 digits) from the first line of standard input instead of
        /// generating one.
        #[arg(long)]
        pin_stdin: bool,
    },
    /// List the managers (names, stores, lockouts; never PINs).
    List,
    /// Give a manager a new PIN (clears a lockout) and print it once.
    Pin {
        /// The manager's name.
        name: String,
        /// Read the PIN from the first line of standard input instead of generating one.
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Remove a manager: their PIN and approvals stop working at once.
    Remove {
        /// The manager's name.
        name: String,
    },
}

/// Why a manager command failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerCommandError {
    /// The store could not be opened or refused the change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manager could not be added or changed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// The named store does not exist, or none was named while there are several.
    #[error(transparent)]
    Shop(#[from] crate::stores::BindingError),
    /// The PIN read from standard input is not 4 to 12 digits.
    #[error("the PIN on standard input: {0}")]
    Pin(#[from] InvalidPin),
    /// The output could not be written or the input read.
    #[error("cannot write the output or read the input")]
    Io(#[from] std::io::Error),
}

/// Runs `command` against the store named by `config`, reading a PIN from `input` when
/// asked to and writing what it has to say to `out`.
pub async fn run(
    command: ManagerCommand,
    config: &Config,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), ManagerCommandError> {
    let store = crate::store::connect(&config.store).await?;
    let approvals = Approvals::new(Arc::clone(&store), &config.approvals);
    let result = execute(command, store.as_ref(), &approvals, input, out).await;
    store.close().await;
    result
}

async fn execute(
    command: ManagerCommand,
    store: &dyn crate::store::Store,
    approvals: &Approvals,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), ManagerCommandError> {
    match command {
        ManagerCommand::Add {
            name,
            store: shop,
            all_stores,
            pin_stdin,
        } => {
            let shop = if all_stores {
                None
            } else {
                Some(crate::stores::find(store, shop.as_deref()).await?)
            };
            let pin = read_or_generate(pin_stdin, input)?;
            let manager = approvals
                .add_manager(&name, shop.as_ref().map(|shop| shop.id.as_str()), &pin)
                .await?;
            let scope = shop.map_or_else(
                || "every store".to_owned(),
                |shop| format!("store {}", shop.name),
            );
            writeln!(out, "Added manager {} for {scope}.", manager.name)?;
            print_pin(out, pin_stdin, &pin)?;
        }
        ManagerCommand::List => {
            let managers = approvals.list().await?;
            if managers.is_empty() {
                writeln!(
                    out,
                    "No managers yet; add one with `paycode-proxy manager add NAME`."
                )?;
            }
            let stores = store.list_stores().await?;
            let now = Millis::now();
            for manager in managers {
                let scope = match &manager.store_id {
                    None => "every store".to_owned(),
                    Some(id) => {
                        let name = stores
                            .iter()
                            .find(|shop| shop.id == *id)
                            .map_or(id.as_str(), |shop| shop.name.as_str());
                        format!("store {name}")
                    }
                };
                let status = match (manager.removed_at, manager.locked_until) {
                    (Some(at), _) => format!("removed {}", at.to_rfc3339()),
                    (None, Some(until)) if until > now => {
                        format!("PIN locked until {}", until.to_rfc3339())
                    }
                    (None, _) => "active".to_owned(),
                };
                writeln!(
                    out,
                    "{}\t{scope}\tadded {}\t{status}",
                    manager.name,
                    manager.created_at.to_rfc3339()
                )?;
            }
        }
        ManagerCommand::Pin { name, pin_stdin } => {
            let pin = read_or_generate(pin_stdin, input)?;
            let manager = approvals.set_pin(&name, &pin).await?;
            writeln!(out, "Manager {} has a new PIN.", manager.name)?;
            print_pin(out, pin_stdin, &pin)?;
        }
        ManagerCommand::Remove { name } => {
            let manager = approvals.remove(&name).await?;
            writeln!(
                out,
                "Removed manager {}; their approvals stop working now.",
                manager.name
            )?;
        }
    }
    Ok(())
}

/// The PIN on the first line of `input` (`--pin-stdin`), or a generated one.
fn read_or_generate(
    from_input: bool,
    input: &mut impl BufRead,
) -> Result<Pin, ManagerCommandError> {
    if !from_input {
        return Ok(Pin::generate());
    }
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(Pin::parse(line.trim())?)
}

/// Shows a generated PIN once; a PIN the operator typed is not echoed.
fn print_pin(out: &mut impl Write, typed: bool, pin: &Pin) -> std::io::Result<()> {
    if typed {
        return writeln!(out, "The PIN from standard input is set.");
    }
    writeln!(
        out,
        "Their PIN, shown only this once; give it to them in person:"
    )?;
    writeln!(out)?;
    writeln!(out, "    {}", pin.expose())?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::test_config;

    async fn run_with(
        command: ManagerCommand,
        config: &Config,
        input: &str,
    ) -> Result<String, ManagerCommandError> {
        let mut out = Vec::new();
        run(command, config, &mut input.as_bytes(), &mut out).await?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[tokio::test]
    async fn add_prints_the_pin_once_and_the_store_keeps_only_its_hash() {
        // Arrange
        let directory = tempfile::tempdir().unwrap();
        let config = test_config(directory.path());

        // Act
        let added = run_with(
            ManagerCommand::Add {
                name: "店长".into(),
                store: None,
                all_stores: false,
                pin_stdin: false,
            },
            &config,
            "",
        )
        .await
        .unwrap();
        let owner = run_with(
            ManagerCommand::Add {
                name: "owner".into(),
                store: None,
                all_stores: true,
                pin_stdin: true,
            },
            &config,
            "2468\n",
        )
        .await
        .unwrap();
        let listed = run_with(ManagerCommand::List, &config, "").await.unwrap();

        // Assert
        let pin = added
            .split_whitespace()
            .find(|word| word.len() == 6 && word.bytes().all(|b| b.is_ascii_digit()))
            .expect("add prints a six-digit PIN");
        assert!(
            added.starts_with("Added manager 店长 for store default."),
            "{added}"
        );
        assert!(owner.contains("for every store"), "{owner}");
        assert!(
            !owner.contains("2468"),
            "a typed PIN is not echoed: {owner}"
        );
        assert!(listed.contains("店长\tstore default\t"), "{listed}");
        assert!(listed.contains("owner\tevery store\t"), "{listed}");
        assert!(
            !listed.contains(pin) && !listed.contains("argon2"),
            "{listed}"
        );
        let store = crate::store::connect(&config.store).await.unwrap();
        let stored = store.manager_by_name("店长").await.unwrap().unwrap();
        assert!(stored.pin_hash.starts_with("$argon2id$"));
        assert!(Pin::parse(pin).unwrap().verify(&stored.pin_hash));
        let owner = store.manager_by_name("owner").await.unwrap().unwrap();
        assert!(Pin::parse("2468").unwrap().verify(&owner.pin_hash));
        assert_eq!(owner.store_id, None);
    }

    #[tokio::test]
    async fn pin_replaces_the_pin_and_remove_ends_the_manager() {
        let directory = tempfile::tempdir().unwrap();
        let config = test_config(directory.path());
        let add = ManagerCommand::Add {
            name: "li".into(),
            store: None,
            all_stores: false,
            pin_stdin: true,
        };
        run_with(add, &config, "1111\n").await.unwrap();

        let changed = run_with(
            ManagerCommand::Pin {
                name: "li".into(),
                pin_stdin: true,
            },
            &config,
            "2222\n",
        )
        .await
        .unwrap();
        let bad_pin = run_with(
            ManagerCommand::Pin {
                name: "li".into(),
                pin_stdin: true,
            },
            &config,
            "12\n",
        )
        .await;
        let removed = run_with(ManagerCommand::Remove { name: "li".into() }, &config, "")
            .await
            .unwrap();
        let again = run_with(ManagerCommand::Remove { name: "li".into() }, &config, "").await;

        assert!(changed.contains("has a new PIN"), "{changed}");
        assert!(
            matches!(bad_pin, Err(ManagerCommandError::Pin(_))),
            "{bad_pin:?}"
        );
        assert!(removed.starts_with("Removed manager li"), "{removed}");
        assert!(
            matches!(
                again,
                Err(ManagerCommandError::Store(StoreError::NotFound { .. }))
            ),
            "{again:?}"
        );
        let store = crate::store::connect(&config.store).await.unwrap();
        let listed = store.list_managers().await.unwrap();
        assert!(Pin::parse("2222").unwrap().verify(&listed[0].pin_hash));
        assert!(listed[0].removed_at.is_some());
        assert!(store.manager_by_name("li").await.unwrap().is_none());
    }
}
