//! `paycode-proxy store add NAME --account ACCOUNT [--sub-mch-id …] | list | disable NAME`:
//! the stores of this deployment (docs/design.md, "Stores and merchant accounts").
//!
//! Stores live in the database; the accounts they name live in the configuration, so `add`
//! checks the store against the configured accounts exactly as the proxy does at start. A
//! disabled store takes no new payments; its payments in progress finish and its paid
//! payments can still be refunded.

use std::io::Write;

use clap::Subcommand;

use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::stores::{self, BindingError, NewStore};

/// The `store` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Add a store collecting into a configured account.
    Add {
        /// A name for the store, e.g. `shop-east`: letters, digits, '-', '_' or '.'.
        name: String,
        /// The account it collects into: `default` (`[wechat]`) or an `[accounts.NAME]` name.
        #[arg(long, default_value = crate::config::DEFAULT_ACCOUNT)]
        account: String,
        /// Its sub-merchant number, when the account is a service provider (服务商).
        #[arg(long)]
        sub_mch_id: Option<String>,
        /// The sub-merchant's appid, if it has one (service-provider mode only).
        #[arg(long)]
        sub_appid: Option<String>,
        /// Where the shop is.
        #[arg(long)]
        address: Option<String>,
    },
    /// List the stores with their accounts.
    List,
    /// Disable a store: it takes no new payments (its payments in progress finish, and its
    /// paid payments can still be refunded).
    Disable {
        /// The store's name.
        name: String,
    },
}

/// Why a store command failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreCommandError {
    /// The database could not be opened or refused the change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store does not fit the configured accounts.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// The output could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Runs `command` against the database named by `config`, writing to `out`.
pub async fn run(
    command: StoreCommand,
    config: &Config,
    out: &mut impl Write,
) -> Result<(), StoreCommandError> {
    let store = crate::store::connect(&config.store).await?;
    let result = execute(command, config, store.as_ref(), out).await;
    store.close().await;
    result
}

async fn execute(
    command: StoreCommand,
    config: &Config,
    store: &dyn Store,
    out: &mut impl Write,
) -> Result<(), StoreCommandError> {
    match command {
        StoreCommand::Add {
            name,
            account,
            sub_mch_id,
            sub_appid,
            address,
        } => {
            let new = NewStore {
                name,
                account,
                sub_mch_id,
                sub_appid,
                address,
            };
            let added = stores::add(&config.accounts(), store, new).await?;
            writeln!(
                out,
                "Added store {} (id {}) on account {}{}.",
                added.name,
                added.id,
                added.account,
                added
                    .sub_mch_id
                    .as_deref()
                    .map(|sub| format!(", sub_mch_id {sub}"))
                    .unwrap_or_default()
            )?;
            writeln!(
                out,
                "Add its terminals with `paycode-proxy terminal add NAME --store {}`.",
                added.name
            )?;
        }
        StoreCommand::List => {
            for record in store.list_stores().await? {
                let status = match record.disabled_at {
                    None => "active".to_owned(),
                    Some(at) => format!("disabled {}", at.to_rfc3339()),
                };
                writeln!(
                    out,
                    "{}\t{}\taccount {}\tsub_mch_id {}\t{}\t{}",
                    record.name,
                    record.id,
                    record.account,
                    record.sub_mch_id.as_deref().unwrap_or("-"),
                    record.address.as_deref().unwrap_or("-"),
                    status
                )?;
            }
        }
        StoreCommand::Disable { name } => {
            let record = store.disable_store(&name).await?;
            writeln!(
                out,
                "Disabled store {}: it takes no new payments; payments in progress finish and \
                 paid ones can still be refunded.",
                record.name
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountConfig;
    use crate::test_support::test_config;

    async fn run_in(config: &Config, command: StoreCommand) -> Result<String, StoreCommandError> {
        let mut out = Vec::new();
        run(command, config, &mut out).await?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn add(name: &str, account: &str, sub_mch_id: Option<&str>) -> StoreCommand {
        StoreCommand::Add {
            name: name.into(),
            account: account.into(),
            sub_mch_id: sub_mch_id.map(str::to_owned),
            sub_appid: None,
            address: Some("深圳南山".into()),
        }
    }

    #[tokio::test]
    async fn stores_are_added_checked_listed_and_disabled() {
        let directory = tempfile::tempdir().unwrap();
        let mut config = test_config(directory.path());
        config.accounts.insert(
            "vendor".into(),
            AccountConfig {
                provider: true,
                appid: "wxp".into(),
                mch_id: "1900000200".into(),
                api_key: wxpay::ApiKey::new("p"),
                sign_type: None,
                cert_pem: None,
                key_pem: None,
                cert_p12: None,
            },
        );

        let added = run_in(&config, add("mall-1", "vendor", Some("1900000201")))
            .await
            .unwrap();
        assert!(added.contains("sub_mch_id 1900000201"), "{added}");
        for (command, field) in [
            (add("mall-2", "vendor", None), "stores.mall-2.sub_mch_id"),
            (add("shop-x", "nowhere", None), "stores.shop-x.account"),
            (add("bad name", "default", None), "name"),
        ] {
            match run_in(&config, command).await {
                Err(StoreCommandError::Binding(BindingError::Invalid { field: named, .. })) => {
                    assert_eq!(named, field)
                }
                other => panic!("expected {field} to be refused, got {other:?}"),
            }
        }
        let list = run_in(&config, StoreCommand::List).await.unwrap();
        assert!(list.contains("default\tdefault\taccount default"), "{list}");
        assert!(list.contains("mall-1"), "{list}");
        assert!(
            !list.contains("mall-2"),
            "a refused store is not stored: {list}"
        );
        let disabled = run_in(
            &config,
            StoreCommand::Disable {
                name: "mall-1".into(),
            },
        )
        .await
        .unwrap();
        assert!(disabled.contains("Disabled store mall-1"), "{disabled}");
        let list = run_in(&config, StoreCommand::List).await.unwrap();
        assert!(list.contains("disabled 20"), "{list}");
    }
}
