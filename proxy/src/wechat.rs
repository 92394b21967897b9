//! The proxy's side of WeChat Pay: the `wxpay` client built from `[wechat]`, and the
//! `/readyz` check that WeChat answers.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use wxpay::client::{ClientBuildError, ClientConfig, ClientIdentity, IdentityError};
use wxpay::codes::ErrCode;
use wxpay::messages::{OrderQueryRequest, OrderRef, OutTradeNo};

use crate::config::WechatConfig;
use crate::readiness::ReadinessCheck;

/// Why the WeChat client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum WechatSetupError {
    /// The client certificate could not be loaded.
    #[error("cannot load the WeChat Pay client certificate")]
    Identity(#[from] IdentityError),
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

/// The client certificate named by `[wechat]`, if one is configured.
pub fn load_identity(config: &WechatConfig) -> Result<Option<ClientIdentity>, IdentityError> {
    match (&config.cert_p12, &config.cert_pem, &config.key_pem) {
        (Some(p12), _, _) => ClientIdentity::from_p12_file(p12, &config.mch_id).map(Some),
        (None, Some(cert), Some(key)) => ClientIdentity::from_pem_files(cert, key).map(Some),
        _ => Ok(None),
    }
}

/// The `wxpay` client for `[wechat]`: keys, hosts, timeouts, certificate and extra CA.
pub fn build_client(config: &WechatConfig) -> Result<wxpay::Client, WechatSetupError> {
    let mut client = ClientConfig::new(&config.appid, &config.mch_id, config.api_key.clone());
    client.sub_appid = config.sub_appid.clone();
    client.sub_mch_id = config.sub_mch_id.clone();
    client.sign_type = config.sign_type;
    client.primary_base_url = config.primary_url.clone();
    client.backup_base_url = config.backup_url.clone();
    client.connect_timeout = config.connect_timeout;
    client.read_timeout = config.read_timeout;
    client.switch_back_after = config.switch_back_after;
    client.sandbox = config.sandbox;
    client.identity = load_identity(config)?;
    if let Some(path) = &config.extra_ca_pem {
        let pem = std::fs::read_to_string(path).map_err(|source| WechatSetupError::ExtraCa {
            path: path.clone(),
            source,
        })?;
        client.extra_root_certificates.push(pem);
    }
    Ok(wxpay::Client::new(client)?)
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
