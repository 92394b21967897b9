//! `paycode-proxy check`: is this configuration ready to take money?
//!
//! Checks, in order: the database opens and migrates; the HTTPS certificate of
//! `[server.tls]` loads, matches its key, has not expired and covers the host tablets use
//! (`cli::tls::check`); the client certificate loads, belongs
//! to `mch_id` and has not expired (with days left); WeChat answers a signed query, which
//! proves the API key, the signature type and the network. Prints one line per check and
//! fails on the first problem with a message saying what to fix.

use std::io::Write;

use chrono::Utc;

use crate::config::Config;
use crate::store::SqliteStore;
use crate::wechat::{build_client, load_identity, probe};

/// A client certificate this close to expiry is reported as a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// What `check` found wrong.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The database could not be opened.
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
    let store = SqliteStore::connect(&config.store)
        .await
        .map_err(|error| CheckError::Store(crate::error::chain(&error)))?;
    store.close().await;
    writeln!(out, "ok    database {}", config.store.data_dir.display())?;
    super::tls::check(config, Utc::now(), out)?;

    match load_identity(&config.wechat)
        .map_err(|error| CheckError::Certificate(crate::error::chain(&error)))?
    {
        Some(identity) => {
            let info = identity
                .info(&config.wechat.mch_id, Utc::now())
                .map_err(|error| CheckError::Certificate(crate::error::chain(&error)))?;
            if !info.mch_id_matches {
                return Err(CheckError::Certificate(format!(
                    "the subject {} is not merchant {}; download the certificate of this mch_id",
                    info.subject, config.wechat.mch_id
                )));
            }
            if info.days_until_expiry < 0 {
                return Err(CheckError::Certificate(format!(
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
                "{status} client certificate {} (serial {}), expires {} ({} days)",
                info.subject,
                info.serial,
                info.not_after.format("%Y-%m-%d"),
                info.days_until_expiry
            )?;
        }
        None => {
            return Err(CheckError::Certificate(
                "none configured; set wechat.cert_p12, or wechat.cert_pem and wechat.key_pem \
                 (reverse and refund need it)"
                    .to_owned(),
            ));
        }
    }

    let client = build_client(&config.wechat)
        .map_err(|error| CheckError::Wechat(crate::error::chain(&error)))?;
    probe(&client).await.map_err(|reason| {
        CheckError::Wechat(format!(
            "{reason} (check wechat.api_key, wechat.sign_type, wechat.appid and the network)"
        ))
    })?;
    writeln!(
        out,
        "ok    WeChat Pay {} answered a signed query for merchant {} ({})",
        config.wechat.primary_url,
        config.wechat.mch_id,
        config.wechat.sign_type.as_str()
    )?;
    Ok(())
}
