//! [`ClientConfig`]: everything a [`Client`](super::Client) needs, in one typed struct.

use std::time::Duration;

use url::Url;

use super::identity::ClientIdentity;
use crate::sign::{ApiKey, SignType};

/// WeChat's primary API host (docs/wechat-pay.md §1.1).
pub const DEFAULT_PRIMARY_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// WeChat's backup (cross-city disaster-recovery, 跨城冗灾) host: same paths, all APIs.
pub const DEFAULT_BACKUP_BASE_URL: &str = "https://api2.mch.weixin.qq.com";

/// The default limit for setting up a connection (DNS, TCP and TLS), as in the official Java
/// SDK. Short enough that a dead host fails over to the backup within one call.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(6);

/// The default deadline for a whole exchange (see [`ClientConfig::read_timeout`]).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration of a [`Client`](super::Client).
///
/// Build it with [`ClientConfig::new`], which fills in WeChat's hosts and the default
/// timeouts, then adjust the public fields. `Debug` is safe to log: the API key and the client
/// certificate's private key are redacted by their own types.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The `appid` bound to the merchant (the service provider's appid in provider mode).
    pub appid: String,
    /// The merchant number `mch_id` (the service provider's in provider mode). It is also the
    /// password of `apiclient_cert.p12`.
    pub mch_id: String,
    /// Provider mode (服务商): the sub-merchant's appid, added to every request when set.
    /// Needed to receive `sub_openid`.
    pub sub_appid: Option<String>,
    /// Provider mode (服务商): the sub-merchant number, added to every request when set.
    pub sub_mch_id: Option<String>,
    /// The 32-character APIv2 key that signs requests and verifies replies. In the sandbox it
    /// only signs the `getsignkey` request; the sandbox key it returns signs everything else.
    pub api_key: ApiKey,
    /// The signature algorithm for requests and replies. Defaults to
    /// [`SignType::HmacSha256`], the official Java SDK's production default and the stronger
    /// of the two; requests then carry `sign_type=HMAC-SHA256`. [`SignType::Md5`] sends no
    /// `sign_type` (MD5 is WeChat's default). The sandbox always uses MD5, as the official
    /// SDK does, whatever this says.
    pub sign_type: SignType,
    /// Where calls go first: scheme, host and optional port (and optionally a path prefix),
    /// e.g. `https://api.mch.weixin.qq.com`. Tests point it at a local server.
    pub primary_base_url: Url,
    /// Where calls go when the primary host cannot be reached (docs/wechat-pay.md §10), or `None` to never
    /// fail over.
    pub backup_base_url: Option<Url>,
    /// The limit for setting up a connection (DNS, TCP, TLS). A failure within it means the
    /// request was certainly not sent. Keep it below the read timeout.
    pub connect_timeout: Duration,
    /// The deadline for one exchange, from the start of sending (including connection setup
    /// when no pooled connection is open) to the last byte of the reply. Expiry means the
    /// outcome is unknown. [`CallOptions`](super::CallOptions) can override it per call
    /// (micropay typically wants longer than queries).
    pub read_timeout: Duration,
    /// The merchant's API client certificate, needed only for `/secapi/*` (reverse, refund).
    /// When set it is presented to every host on every call, which WeChat ignores outside
    /// `/secapi`.
    pub identity: Option<ClientIdentity>,
    /// Extra trusted root CA certificates, PEM (each entry may hold several certificates), on
    /// top of the built-in web PKI roots. Tests add the simulator's generated CA here.
    pub extra_root_certificates: Vec<String>,
    /// How long traffic stays on the backup host after a fail-over before it is forced back
    /// to the primary (docs/wechat-pay.md §10; the official SDK's three minutes,
    /// [`SWITCH_BACK_AFTER`](super::hosts::SWITCH_BACK_AFTER)).
    pub switch_back_after: Duration,
    /// Use WeChat's sandbox (仿真测试系统): every path gets the `/xdc/apiv2sandbox` prefix and
    /// calls are signed (MD5) with the key fetched from `getsignkey`.
    pub sandbox: bool,
    /// The `User-Agent` of every request. Default `paycode-wxpay/VERSION`. A deployment with
    /// several proxies names the instance here, so a call can be traced to the proxy that
    /// sent it (the simulator's call log records it).
    pub user_agent: String,
}

impl ClientConfig {
    /// A configuration for a direct merchant with WeChat's production hosts, HMAC-SHA256
    /// signatures, the default timeouts, no client certificate and no sandbox.
    pub fn new(appid: impl Into<String>, mch_id: impl Into<String>, api_key: ApiKey) -> Self {
        ClientConfig {
            appid: appid.into(),
            mch_id: mch_id.into(),
            sub_appid: None,
            sub_mch_id: None,
            api_key,
            sign_type: SignType::HmacSha256,
            primary_base_url: parse_constant_url(DEFAULT_PRIMARY_BASE_URL),
            backup_base_url: Some(parse_constant_url(DEFAULT_BACKUP_BASE_URL)),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            identity: None,
            extra_root_certificates: Vec::new(),
            switch_back_after: super::hosts::SWITCH_BACK_AFTER,
            sandbox: false,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

/// The default [`ClientConfig::user_agent`].
pub const DEFAULT_USER_AGENT: &str = concat!("paycode-wxpay/", env!("CARGO_PKG_VERSION"));

fn parse_constant_url(url: &str) -> Url {
    // The constants above are valid URLs; the unit test below proves it.
    Url::parse(url).expect("the default WeChat base URLs are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let config = ClientConfig::new("wx2421b1c4370ec43b", "10000100", ApiKey::new("k"));
        assert_eq!(
            config.primary_base_url.as_str(),
            "https://api.mch.weixin.qq.com/"
        );
        assert_eq!(
            config.backup_base_url.as_ref().map(Url::as_str),
            Some("https://api2.mch.weixin.qq.com/")
        );
        assert_eq!(config.sign_type, SignType::HmacSha256);
        assert!(!config.sandbox);
        assert!(config.connect_timeout < config.read_timeout);
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let config = ClientConfig::new("wx", "10000100", ApiKey::new("secret-api-key-value"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret-api-key-value"), "{debug}");
        assert!(debug.contains("ApiKey(***)"));
    }
}
