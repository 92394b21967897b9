//! The proxy's side of WeChat Pay: a `wxpay` client per merchant account
//! ([`AccountClients`], built from `[wechat]` and `[accounts.NAME]`), and the `/readyz`
//! check that WeChat answers.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use wxpay::client::{ClientBuildError, ClientConfig, ClientIdentity, IdentityError};
use wxpay::codes::ErrCode;
use wxpay::messages::{OrderQueryRequest, OrderRef, OutTradeNo};

use crate::config::{Account, Config, WechatConfig};
use crate::instance::Instance;
use crate::readiness::ReadinessCheck;
use crate::store::MerchantIds;

/// Why the WeChat client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum WechatSetupError {
    /// The client certificate could not be loaded.
    #[error("cannot load the WeChat Pay client certificate")]
    Identity(#[from] IdentityError),
    /// An `[accounts.NAME]` client certificate could not be loaded.
    #[error("cannot load the client certificate of account {account}")]
    AccountIdentity {
        /// The account.
        account: String,
        /// Why.
        source: IdentityError,
    },
    /// `wechat.extra_ca_pem` could not be read.
    #[error("cannot read wechat.extra_ca_pem {path}")]
    ExtraCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The client rejected its configuration.
    #[error("cannot build the WeChat Pay client")]
    Client(#[from] ClientBuildError),
}

/// The client certificate of `account`, if one is configured.
pub fn load_identity(account: &Account) -> Result<Option<ClientIdentity>, IdentityError> {
    match (&account.cert_p12, &account.cert_pem, &account.key_pem) {
        (Some(p12), _, _) => ClientIdentity::from_p12_file(p12, &account.mch_id).map(Some),
        (None, Some(cert), Some(key)) => ClientIdentity::from_pem_files(cert, key).map(Some),
        _ => Ok(None),
    }
}

/// The `wxpay` client for `account` (no sub-merchant): its keys and certificate, with the
/// hosts, timeouts and extra CA of `[wechat]`, calling as `instance`.
pub fn build_account_client(
    config: &WechatConfig,
    account: &Account,
    instance: &Instance,
) -> Result<wxpay::Client, WechatSetupError> {
    let mut client = ClientConfig::new(&account.appid, &account.mch_id, account.api_key.clone());
    client.user_agent = instance.user_agent();
    client.sign_type = account.sign_type;
    client.primary_base_url = config.primary_url.clone();
    client.backup_base_url = config.backup_url.clone();
    client.connect_timeout = config.connect_timeout;
    client.read_timeout = config.read_timeout;
    client.switch_back_after = config.switch_back_after;
    client.sandbox = config.sandbox;
    // A certificate of another merchant would fail every reverse and refund: refuse to
    // start rather than take payments that could not be reversed.
    let identity = load_identity(account).and_then(|identity| {
        if let Some(identity) = &identity {
            identity.check_mch_id(&account.mch_id)?;
        }
        Ok(identity)
    });
    client.identity = identity.map_err(|source| {
        if account.name == crate::config::DEFAULT_ACCOUNT {
            WechatSetupError::Identity(source)
        } else {
            WechatSetupError::AccountIdentity {
                account: account.name.clone(),
                source,
            }
        }
    })?;
    if let Some(path) = &config.extra_ca_pem {
        let pem = std::fs::read_to_string(path).map_err(|source| WechatSetupError::ExtraCa {
            path: path.clone(),
            source,
        })?;
        client.extra_root_certificates.push(pem);
    }
    Ok(wxpay::Client::new(client)?)
}

/// A sub-merchant: `sub_mch_id` and `sub_appid`.
type SubMerchant = (Option<String>, Option<String>);

/// One merchant account's client, and its clients per sub-merchant.
pub struct AccountClient {
    /// The account.
    pub account: Account,
    client: wxpay::Client,
    by_sub_merchant: Mutex<HashMap<SubMerchant, wxpay::Client>>,
}

impl AccountClient {
    /// The client that calls for `sub_mch_id`/`sub_appid` under this account (the account's
    /// own for a direct merchant), made once and kept.
    pub fn client_for(&self, sub_mch_id: Option<&str>, sub_appid: Option<&str>) -> wxpay::Client {
        if sub_mch_id.is_none() && sub_appid.is_none() {
            return self.client.clone();
        }
        let key = (sub_mch_id.map(str::to_owned), sub_appid.map(str::to_owned));
        let mut clients = self
            .by_sub_merchant
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(key)
            .or_insert_with(|| self.client.for_sub_merchant(sub_mch_id, sub_appid))
            .clone()
    }
}

/// Every configured merchant account with its client: what the payments engine calls
/// WeChat through. A payment's calls go to the account whose `mch_id` it was made with, with
/// its `sub_mch_id`/`sub_appid` (docs/wechat-pay.md §11).
pub struct AccountClients {
    accounts: Vec<AccountClient>,
}

impl AccountClients {
    /// A client per account of `config` (`[wechat]` first).
    pub fn build(config: &Config, instance: &Instance) -> Result<AccountClients, WechatSetupError> {
        let accounts = config
            .accounts()
            .into_iter()
            .map(|account| {
                Ok(AccountClient {
                    client: build_account_client(&config.wechat, &account, instance)?,
                    account,
                    by_sub_merchant: Mutex::new(HashMap::new()),
                })
            })
            .collect::<Result<_, WechatSetupError>>()?;
        Ok(AccountClients { accounts })
    }

    /// Every account, `[wechat]` first.
    pub fn iter(&self) -> impl Iterator<Item = &AccountClient> {
        self.accounts.iter()
    }

    /// The accounts' configuration.
    pub fn accounts(&self) -> Vec<Account> {
        self.iter().map(|client| client.account.clone()).collect()
    }

    /// The client for a payment made with `merchant`, or `None` if no configured account
    /// has its `mch_id` (the configuration changed under a payment in progress).
    pub fn client_for(&self, merchant: &MerchantIds) -> Option<wxpay::Client> {
        self.accounts
            .iter()
            .find(|client| client.account.mch_id == merchant.mch_id)
            .map(|client| {
                client.client_for(
                    merchant.sub_mch_id.as_deref(),
                    merchant.sub_appid.as_deref(),
                )
            })
    }
}

impl std::fmt::Debug for AccountClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.accounts.iter().map(|client| &client.account.name))
            .finish()
    }
}

/// Asks WeChat about an order that does not exist: a signed, verified answer (the order is
/// unknown) proves the key, the signature type and the network all work.
pub async fn probe(client: &wxpay::Client) -> Result<(), String> {
    let order = OutTradeNo::new("PCPROBE0000000000000000000000000")
        .map_err(|error| format!("probe order number: {error}"))?;
    let request = OrderQueryRequest {
        order: OrderRef::OutTradeNo(order),
    };
    match client.call(&request).await {
        Ok(_) => Ok(()),
        Err(wxpay::Error::Business(business)) if business.err_code == ErrCode::OrderNotExist => {
            Ok(())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// `/readyz`'s `wechat` check. Probes WeChat at most once per `max_age`, remembering the
/// answer, so load balancers polling `/readyz` do not turn into WeChat traffic.
pub struct WechatReachable {
    client: wxpay::Client,
    max_age: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl WechatReachable {
    /// A check over `client` that probes at most once per `max_age`.
    pub fn new(client: wxpay::Client, max_age: Duration) -> WechatReachable {
        WechatReachable {
            client,
            max_age,
            last: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl ReadinessCheck for WechatReachable {
    fn name(&self) -> &'static str {
        "wechat"
    }

    async fn check(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = last.as_ref() {
            if at.elapsed() < self.max_age {
                return outcome.clone();
            }
        }
        let outcome = probe(&self.client).await;
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }
}
