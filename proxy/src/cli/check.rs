//! `paycode-proxy check`: is this configuration ready to take money?
//!
//! Checks, in order: the database opens and migrates, and every store in it fits the
//! configured accounts; the HTTPS certificate of `[server.tls]` loads, matches its key, has
//! not expired and covers the host tablets use (`cli::tls::check`); then, for every merchant
//! account (`[wechat]` and each `[accounts.NAME]`), that its client certificate loads,
//! belongs to its `mch_id` and has not expired (with days left), and that WeChat answers a
//! signed query, which proves the API key, the signature type and the network. A service
//! provider is asked once per store, with the store's `sub_mch_id`, which also proves the
//! sub-merchant is bound to it. Prints one line per check and fails on the first problem,
//! naming the account or store and the setting to fix.

use std::io::Write;

use chrono::Utc;

use crate::config::{Account, Config};
use crate::instance::Instance;
use crate::store::StoreRecord;
use crate::stores::merchant_ids;
use crate::wechat::{build_account_client, load_identity, probe};

/// A client certificate this close to expiry is reported as a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// What `check` found wrong.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The database could not be opened, or a store in it does not fit the configuration.
    #[error("database: {0}")]
    Store(String),
    /// The certificate is missing, unreadable, for another merchant or expired.
    #[error("client certificate: {0}")]
    Certificate(String),
    /// WeChat could not be reached or refused the signed query.
    #[error("WeChat Pay: {0}")]
    Wechat(String),
    /// The serving certificate (`[server.tls]`) is unusable, expired or for other names.
    #[error("TLS: {0}")]
    Tls(#[from] super::tls::TlsCheckError),
    /// The report could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Runs every check against `config`, reporting to `out`.
pub async fn run(config: &Config, out: &mut impl Write) -> Result<(), CheckError> {
    let store = crate::store::connect(&config.store)
        .await
        .map_err(|error| CheckError::Store(crate::error::chain(&error)))?;
    let stores = store.list_stores().await;
    store.close().await;
    let stores = stores.map_err(|error| CheckError::Store(crate::error::chain(&error)))?;
    writeln!(out, "ok    database {}", config.store.describe())?;
    let accounts = config.accounts();
    for record in &stores {
        merchant_ids(&accounts, record).map_err(|error| CheckError::Store(error.to_string()))?;
    }
    super::tls::check(config, Utc::now(), out)?;
    for account in &accounts {
        check_certificate(account, out)?;
        check_key(config, account, &stores, out).await?;
    }
    Ok(())
}

fn check_certificate(account: &Account, out: &mut impl Write) -> Result<(), CheckError> {
    let section = account.section();
    let fail = |message: String| {
        CheckError::Certificate(format!("account {} ({section}): {message}", account.name))
    };
    let identity = load_identity(account)
        .map_err(|error| fail(crate::error::chain(&error)))?
        .ok_or_else(|| {
            fail(format!(
                "none configured; set {section}.cert_p12, or {section}.cert_pem and \
                 {section}.key_pem (reverse and refund need it)"
            ))
        })?;
    let info = identity
        .info(&account.mch_id, Utc::now())
        .map_err(|error| fail(crate::error::chain(&error)))?;
    if !info.mch_id_matches {
        return Err(fail(format!(
            "the subject {} is not merchant {}; download the certificate of this mch_id",
            info.subject, account.mch_id
        )));
    }
    if info.days_until_expiry < 0 {
        return Err(fail(format!(
            "expired on {}; renew it in the merchant platform (API安全)",
            info.not_after.format("%Y-%m-%d")
        )));
    }
    let status = if info.days_until_expiry < EXPIRY_WARNING_DAYS {
        "warn "
    } else {
        "ok   "
    };
    writeln!(
        out,
        "{status} account {}: client certificate {} (serial {}), expires {} ({} days)",
        account.name,
        info.subject,
        info.serial,
        info.not_after.format("%Y-%m-%d"),
        info.days_until_expiry
    )?;
    Ok(())
}

/// A signed query per direct account, or per store of a provider account (with its
/// `sub_mch_id`).
async fn check_key(
    config: &Config,
    account: &Account,
    stores: &[StoreRecord],
    out: &mut impl Write,
) -> Result<(), CheckError> {
    let section = account.section();
    let client = build_account_client(&config.wechat, account, &Instance::new(&config.server))
        .map_err(|error| CheckError::Wechat(crate::error::chain(&error)))?;
    let mut targets: Vec<(Option<&StoreRecord>, wxpay::Client)> = Vec::new();
    if account.provider {
        for record in stores
            .iter()
            .filter(|record| record.account == account.name)
        {
            if record.disabled_at.is_some() {
                // A disabled store takes no payments; its refunds still go through the
                // provider, whose key the other stores (or none) prove.
                writeln!(out, "skip  store {}: disabled", record.name)?;
                continue;
            }
            let sub =
                client.for_sub_merchant(record.sub_mch_id.as_deref(), record.sub_appid.as_deref());
            targets.push((Some(record), sub));
        }
        if targets.is_empty() && account.name == crate::config::DEFAULT_ACCOUNT {
            let sub = client.for_sub_merchant(
                config.wechat.sub_mch_id.as_deref(),
                config.wechat.sub_appid.as_deref(),
            );
            targets.push((None, sub));
        }
    } else {
        targets.push((None, client));
    }
    if targets.is_empty() {
        writeln!(
            out,
            "skip  account {}: a service provider with no store yet (add one with `store add`)",
            account.name
        )?;
    }
    for (record, client) in targets {
        let target = match record {
            Some(record) => format!(
                "store {} (sub_mch_id {})",
                record.name,
                record.sub_mch_id.as_deref().unwrap_or("-")
            ),
            None => format!("merchant {}", account.mch_id),
        };
        probe(&client).await.map_err(|reason| {
            CheckError::Wechat(format!(
                "account {}, {target}: {reason} (check {section}.api_key, {section}.sign_type, \
                 {section}.appid, the store's sub_mch_id and the network)",
                account.name
            ))
        })?;
        writeln!(
            out,
            "ok    account {}: WeChat Pay {} answered a signed query for {target} ({})",
            account.name,
            config.wechat.primary_url,
            account.sign_type.as_str()
        )?;
    }
    Ok(())
}
