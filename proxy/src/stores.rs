//! Stores and the merchant accounts they collect into (docs/design.md, "Stores and
//! merchant accounts").
//!
//! Accounts, with their secrets, are configuration (`[wechat]` and `[accounts.NAME]`);
//! stores are data, in the database, managed with `paycode-proxy store add|list|disable`
//! like terminals. A store names its account and, when that account is a service provider,
//! its sub-merchant. [`merchant_ids`] is the one rule that turns a store into the merchant
//! fields its payments are made with; the CLI applies it when a store is added, and
//! [`bind_at_start`] applies it to every stored store before the proxy serves, so a store
//! whose account is unknown or whose sub-merchant does not fit its account stops the start,
//! naming the store and the field.

use crate::auth::check_terminal_name;
use crate::config::{Account, Config, DEFAULT_ACCOUNT};
use crate::store::{MerchantIds, Store, StoreError, StoreRecord};

/// The id (and first name) of the store a database from before stores became: every
/// earlier terminal and payment belongs to it, on the `[wechat]` account.
pub const DEFAULT_STORE: &str = "default";

/// Why a store cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// A store's field does not fit the configuration.
    #[error("{field}: {message}")]
    Invalid {
        /// `stores.NAME.FIELD`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(store: &StoreRecord, field: &str, message: String) -> BindingError {
    BindingError::Invalid {
        field: format!("stores.{}.{field}", store.name),
        message,
    }
}

/// The merchant fields `store`'s payments are made with: its account's `appid` and
/// `mch_id`, and its own `sub_mch_id`/`sub_appid` when the account is a service provider.
///
/// Refused, naming the store's field: an account that is not configured; a provider's store
/// without `sub_mch_id`, or with one that is not a merchant number; a direct merchant's
/// store with a `sub_mch_id` or `sub_appid` (WeChat refuses both, docs/wechat-pay.md §11).
pub fn merchant_ids(
    accounts: &[Account],
    store: &StoreRecord,
) -> Result<MerchantIds, BindingError> {
    let Some(account) = accounts
        .iter()
        .find(|account| account.name == store.account)
    else {
        let names: Vec<&str> = accounts
            .iter()
            .map(|account| account.name.as_str())
            .collect();
        return Err(invalid(
            store,
            "account",
            format!(
                "no account {:?} is configured (configured: {})",
                store.account,
                names.join(", ")
            ),
        ));
    };
    match (account.provider, &store.sub_mch_id, &store.sub_appid) {
        (true, None, _) => Err(invalid(
            store,
            "sub_mch_id",
            format!(
                "account {} is a service provider: each of its stores needs the sub_mch_id of \
                 its sub-merchant",
                account.name
            ),
        )),
        (false, Some(_), _) | (false, None, Some(_)) => Err(invalid(
            store,
            if store.sub_mch_id.is_some() {
                "sub_mch_id"
            } else {
                "sub_appid"
            },
            format!(
                "account {} is a direct merchant: its stores have no sub-merchant fields",
                account.name
            ),
        )),
        (true, Some(sub_mch_id), _) if !is_merchant_number(sub_mch_id) => Err(invalid(
            store,
            "sub_mch_id",
            format!(
                "must be the sub-merchant's number (1 to 32 digits, like 1900000109), got \
                 {sub_mch_id:?}"
            ),
        )),
        _ => Ok(MerchantIds {
            appid: account.appid.clone(),
            mch_id: account.mch_id.clone(),
            sub_appid: store.sub_appid.clone(),
            sub_mch_id: store.sub_mch_id.clone(),
        }),
    }
}

/// Whether `id` looks like a WeChat Pay merchant number: `mch_id` and `sub_mch_id` are
/// `String(32)` on the wire and numeric in practice (docs/wechat-pay.md §11).
fn is_merchant_number(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_digit())
}

/// Checks a new store's name (the terminal name rule: 1–64 letters, digits, `-`, `_`, `.`).
pub fn check_store_name(name: &str) -> Result<&str, BindingError> {
    check_terminal_name(name).map_err(|_| BindingError::Invalid {
        field: "name".to_owned(),
        message: format!(
            "a store name has 1 to 64 letters, digits, '-', '_' or '.', like shop-east (got \
             {name:?})"
        ),
    })
}

/// A store to add: what `paycode-proxy store add` is given.
#[derive(Clone, Debug, Default)]
pub struct NewStore {
    /// Its name: 1–64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The configured account it collects into.
    pub account: String,
    /// Its sub-merchant, when the account is a service provider.
    pub sub_mch_id: Option<String>,
    /// The sub-merchant's appid, if it has one.
    pub sub_appid: Option<String>,
    /// Where the shop is.
    pub address: Option<String>,
}

/// Adds a store after checking it against `accounts` ([`merchant_ids`]); a taken name is
/// [`StoreError::AlreadyExists`].
pub async fn add(
    accounts: &[Account],
    store: &dyn Store,
    new: NewStore,
) -> Result<StoreRecord, BindingError> {
    check_store_name(&new.name)?;
    let non_empty = |value: Option<String>| value.filter(|text| !text.trim().is_empty());
    let record = StoreRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: new.name,
        account: new.account,
        sub_mch_id: non_empty(new.sub_mch_id),
        sub_appid: non_empty(new.sub_appid),
        address: non_empty(new.address),
        created_at: crate::store::Millis::now(),
        disabled_at: None,
    };
    merchant_ids(accounts, &record)?;
    Ok(store.add_store(&record).await?)
}

/// The store called `name`; without a name, the only store that is not disabled (a
/// deployment with one store needs no `--store`).
pub async fn find(store: &dyn Store, name: Option<&str>) -> Result<StoreRecord, BindingError> {
    let stores = store.list_stores().await?;
    let names = || {
        stores
            .iter()
            .map(|record| record.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => match stores.iter().find(|record| record.name == name) {
            Some(record) if record.disabled_at.is_some() => Err(BindingError::Invalid {
                field: "store".to_owned(),
                message: format!("store {name:?} is disabled: it takes no new terminals"),
            }),
            Some(record) => Ok(record.clone()),
            None => Err(BindingError::Invalid {
                field: "store".to_owned(),
                message: format!("there is no store {name:?} (stores: {})", names()),
            }),
        },
        None => {
            let mut active = stores.iter().filter(|record| record.disabled_at.is_none());
            match (active.next(), active.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(BindingError::Invalid {
                    field: "store".to_owned(),
                    message: format!("every store is disabled ({})", names()),
                }),
                _ => Err(BindingError::Invalid {
                    field: "store".to_owned(),
                    message: format!(
                        "there are several stores; name one with --store ({})",
                        names()
                    ),
                }),
            }
        }
    }
}

/// Before serving: adopts what a database from before stores left unbound, then checks
/// every store against the configured accounts.
///
/// The default store (the one the migration made of a wave-1 database) takes `[wechat]`'s
/// `sub_mch_id`/`sub_appid` if it has none, and its payments and refunds without merchant
/// fields get the `[wechat]` account's, so that unsettled ones resume against that account.
pub async fn bind_at_start(config: &Config, store: &dyn Store) -> Result<(), BindingError> {
    let accounts = config.accounts();
    let stores = store.list_stores().await?;
    if let Some(default) = stores
        .iter()
        .find(|candidate| candidate.id == DEFAULT_STORE && candidate.account == DEFAULT_ACCOUNT)
    {
        let mut adopted = default.clone();
        if adopted.sub_mch_id.is_none() && adopted.sub_appid.is_none() {
            adopted.sub_mch_id = config.wechat.sub_mch_id.clone();
            adopted.sub_appid = config.wechat.sub_appid.clone();
        }
        let merchant = merchant_ids(&accounts, &adopted)?;
        let rows = store.adopt_unbound_rows(&adopted, &merchant).await?;
        if rows > 0 {
            tracing::info!(
                store = %adopted.name,
                mch_id = %merchant.mch_id,
                rows,
                "recorded the [wechat] account on payments and refunds from before stores"
            );
        }
    }
    for record in store.list_stores().await? {
        merchant_ids(&accounts, &record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use wxpay::ApiKey;

    use super::*;
    use crate::config::{AccountConfig, WechatConfig};
    use crate::store::Millis;

    fn config() -> Config {
        let mut config = Config::new(WechatConfig::new("wxa", "1000", ApiKey::new("k")));
        config.accounts.insert(
            "vendor".into(),
            AccountConfig {
                provider: true,
                appid: "wxp".into(),
                mch_id: "2000".into(),
                api_key: ApiKey::new("p"),
                sign_type: None,
                cert_pem: None,
                key_pem: None,
                cert_p12: None,
            },
        );
        config
    }

    fn store(account: &str, sub_mch_id: Option<&str>, sub_appid: Option<&str>) -> StoreRecord {
        StoreRecord {
            id: "s1".into(),
            name: "shop-east".into(),
            account: account.into(),
            sub_mch_id: sub_mch_id.map(str::to_owned),
            sub_appid: sub_appid.map(str::to_owned),
            address: None,
            created_at: Millis(0),
            disabled_at: None,
        }
    }

    fn refused_field(result: Result<MerchantIds, BindingError>) -> String {
        match result {
            Err(BindingError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_store_gets_its_accounts_fields_and_its_own_sub_merchant() {
        let accounts = config().accounts();
        let direct = merchant_ids(&accounts, &store("default", None, None)).unwrap();
        assert_eq!(
            (direct.appid.as_str(), direct.mch_id.as_str()),
            ("wxa", "1000")
        );
        assert_eq!(direct.sub_mch_id, None);
        let sub = merchant_ids(&accounts, &store("vendor", Some("2001"), Some("wxs"))).unwrap();
        assert_eq!(sub.mch_id, "2000");
        assert_eq!(sub.sub_mch_id.as_deref(), Some("2001"));
        assert_eq!(sub.sub_appid.as_deref(), Some("wxs"));
    }

    #[test]
    fn a_store_that_does_not_fit_its_account_is_refused_naming_the_field() {
        let accounts = config().accounts();
        for (record, field) in [
            (store("nowhere", None, None), "stores.shop-east.account"),
            (store("vendor", None, None), "stores.shop-east.sub_mch_id"),
            (
                store("vendor", None, Some("wxs")),
                "stores.shop-east.sub_mch_id",
            ),
            (
                store("vendor", Some("abc"), None),
                "stores.shop-east.sub_mch_id",
            ),
            (
                store("vendor", Some(&"1".repeat(33)), None),
                "stores.shop-east.sub_mch_id",
            ),
            (
                store("default", Some("2001"), None),
                "stores.shop-east.sub_mch_id",
            ),
            (
                store("default", None, Some("wxs")),
                "stores.shop-east.sub_appid",
            ),
        ] {
            assert_eq!(refused_field(merchant_ids(&accounts, &record)), field);
        }
    }
}
