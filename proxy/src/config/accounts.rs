//! `[accounts.NAME]`: the merchant accounts a deployment collects into, besides the one in
//! `[wechat]`, and [`Account`], the resolved view of every account (docs/design.md,
//! "Stores and merchant accounts").
//!
//! `[wechat]` is always the account named [`DEFAULT_ACCOUNT`]: a direct merchant, or, when
//! it sets `sub_mch_id`, a service provider whose default store is that sub-merchant. Every
//! other account is a section of its own:
//!
//! ```toml
//! [accounts.chain_b]          # a direct merchant
//! appid = "wx…"
//! mch_id = "1900000110"
//! api_key = "…"               # or PAYCODE_ACCOUNTS__CHAIN_B__API_KEY
//! cert_p12 = "certs/chain_b/apiclient_cert.p12"
//!
//! [accounts.vendor]           # a service provider (服务商): its stores are sub-merchants
//! provider = true
//! appid = "wx…"
//! mch_id = "1900000200"
//! api_key = "…"
//! cert_pem = "certs/vendor/apiclient_cert.pem"
//! key_pem = "certs/vendor/apiclient_key.pem"
//! ```
//!
//! Secrets stay here (or in the environment, `PAYCODE_ACCOUNTS__<NAME>__API_KEY`), never in
//! the database. Hosts, timeouts, the sandbox switch and the extra CA are shared, from
//! `[wechat]`. Stores name their account; they live in the database
//! (`paycode-proxy store add`).

use std::path::PathBuf;

use serde::Deserialize;
use wxpay::{ApiKey, SignType};

use super::{Config, ConfigError, de, require};

/// The name of the account described by `[wechat]`.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The longest account name.
const MAX_ACCOUNT_NAME_CHARS: usize = 32;

/// `[accounts.NAME]`: one more merchant account. `Debug` is safe to log: the key's own
/// `Debug` prints `ApiKey(***)`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Whether this is a service provider (服务商): its stores are sub-merchants, each with
    /// its own `sub_mch_id`, and the provider's key and certificate serve them all
    /// (docs/wechat-pay.md §11). Default `false`: a direct merchant.
    #[serde(default, deserialize_with = "de::boolean")]
    pub provider: bool,
    /// The `appid` bound to the merchant (the provider's, in provider mode).
    #[serde(deserialize_with = "de::text")]
    pub appid: String,
    /// The merchant number (the provider's, in provider mode); the `.p12` password.
    #[serde(deserialize_with = "de::text")]
    pub mch_id: String,
    /// The 32-character APIv2 key. Secret: prefer `PAYCODE_ACCOUNTS__<NAME>__API_KEY`.
    #[serde(deserialize_with = "de::api_key")]
    pub api_key: ApiKey,
    /// `MD5` or `HMAC-SHA256`; default: `[wechat]`'s `sign_type`.
    #[serde(default, deserialize_with = "optional_sign_type")]
    pub sign_type: Option<SignType>,
    /// The API client certificate (`apiclient_cert.pem`), with [`key_pem`](Self::key_pem).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub cert_pem: Option<PathBuf>,
    /// The client certificate's private key (`apiclient_key.pem`).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub key_pem: Option<PathBuf>,
    /// The certificate and key as one PKCS#12 file (password `mch_id`), instead of the PEMs.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub cert_p12: Option<PathBuf>,
}

fn optional_sign_type<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SignType>, D::Error> {
    de::sign_type(deserializer).map(Some)
}

/// A merchant account as the proxy uses it: `[wechat]` or an `[accounts.NAME]` section,
/// with the shared defaults filled in.
#[derive(Clone, Debug)]
pub struct Account {
    /// [`DEFAULT_ACCOUNT`] for `[wechat]`, else the section's name.
    pub name: String,
    /// Whether stores under it are sub-merchants (service-provider mode).
    pub provider: bool,
    /// The `appid` sent with every call.
    pub appid: String,
    /// The `mch_id` sent with every call; the rate limit is counted on it.
    pub mch_id: String,
    /// The key every call is signed with.
    pub api_key: ApiKey,
    /// The signature algorithm.
    pub sign_type: SignType,
    /// The client certificate (PEM), if configured.
    pub cert_pem: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_pem: Option<PathBuf>,
    /// The certificate and key as PKCS#12.
    pub cert_p12: Option<PathBuf>,
}

impl Account {
    /// The configuration prefix of the account's settings, for messages: `wechat` or
    /// `accounts.NAME`.
    pub fn section(&self) -> String {
        if self.name == DEFAULT_ACCOUNT {
            "wechat".to_owned()
        } else {
            format!("accounts.{}", self.name)
        }
    }
}

impl Config {
    /// Every merchant account: `[wechat]` first (as [`DEFAULT_ACCOUNT`]), then the
    /// `[accounts.NAME]` sections in name order.
    pub fn accounts(&self) -> Vec<Account> {
        let wechat = &self.wechat;
        let mut accounts = vec![Account {
            name: DEFAULT_ACCOUNT.to_owned(),
            provider: wechat.sub_mch_id.is_some(),
            appid: wechat.appid.clone(),
            mch_id: wechat.mch_id.clone(),
            api_key: wechat.api_key.clone(),
            sign_type: wechat.sign_type,
            cert_pem: wechat.cert_pem.clone(),
            key_pem: wechat.key_pem.clone(),
            cert_p12: wechat.cert_p12.clone(),
        }];
        accounts.extend(self.accounts.iter().map(|(name, account)| Account {
            name: name.clone(),
            provider: account.provider,
            appid: account.appid.clone(),
            mch_id: account.mch_id.clone(),
            api_key: account.api_key.clone(),
            sign_type: account.sign_type.unwrap_or(wechat.sign_type),
            cert_pem: account.cert_pem.clone(),
            key_pem: account.key_pem.clone(),
            cert_p12: account.cert_p12.clone(),
        }));
        accounts
    }

    /// The account called `name`, if configured.
    pub fn account(&self, name: &str) -> Option<Account> {
        self.accounts()
            .into_iter()
            .find(|account| account.name == name)
    }
}

/// Checks the `[accounts.NAME]` sections: names, required fields, certificate pairs, and
/// that no two accounts (`[wechat]` included) share a `mch_id`.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    for (name, account) in &config.accounts {
        let section = format!("accounts.{name}");
        require(
            name != DEFAULT_ACCOUNT,
            &section,
            "`default` is the name of the [wechat] account; choose another",
        )?;
        require(
            (1..=MAX_ACCOUNT_NAME_CHARS).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            &section,
            "an account name has 1 to 32 lower-case letters, digits or '_' (so that \
             PAYCODE_ACCOUNTS__<NAME>__API_KEY can name it)",
        )?;
        require(
            !account.appid.trim().is_empty(),
            &format!("{section}.appid"),
            "must not be empty",
        )?;
        require(
            !account.mch_id.trim().is_empty(),
            &format!("{section}.mch_id"),
            "must not be empty",
        )?;
        require(
            !account.api_key.expose().is_empty(),
            &format!("{section}.api_key"),
            "must not be empty",
        )?;
        require(
            account.cert_pem.is_some() == account.key_pem.is_some(),
            &if account.cert_pem.is_some() {
                format!("{section}.key_pem")
            } else {
                format!("{section}.cert_pem")
            },
            "cert_pem and key_pem must be given together",
        )?;
        require(
            !(account.cert_p12.is_some() && account.cert_pem.is_some()),
            &format!("{section}.cert_p12"),
            "give either cert_p12 or cert_pem and key_pem, not both",
        )?;
    }
    let accounts = config.accounts();
    for (index, account) in accounts.iter().enumerate() {
        if let Some(earlier) = accounts[..index]
            .iter()
            .find(|earlier| earlier.mch_id == account.mch_id)
        {
            return Err(ConfigError::Invalid {
                field: format!("{}.mch_id", account.section()),
                message: format!(
                    "mch_id {} is already the mch_id of {}: one account per merchant number",
                    account.mch_id,
                    earlier.section()
                ),
            });
        }
    }
    Ok(())
}
