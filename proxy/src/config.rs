//! [`Config`]: every setting of the proxy in one typed struct, loaded once at start.
//!
//! The settings come from a TOML file (`paycode.toml`; see `proxy/paycode.example.toml` for
//! every option) with environment overrides on top: `PAYCODE_<SECTION>__<FIELD>`, e.g.
//! `PAYCODE_WECHAT__API_KEY` overrides `api_key` in `[wechat]`. Section and field names are
//! matched case-insensitively; the double underscore separates them because field names
//! contain single underscores. An empty value clears an optional setting.
//!
//! Loading fails fast, with a message naming the field (and the environment variable when
//! one set it). Tests and demo mode build a `Config` in code: every field is public, and
//! [`Config::new`] fills in the defaults around a [`WechatConfig`].

mod accounts;
mod de;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{FixedOffset, NaiveDate};
use paycode_api::Fen;
use paycode_api::money::MAX_PARSED;
use serde::Deserialize;
use url::Url;
use wxpay::{ApiKey, SignType};

use crate::store::records::Millis;

pub use accounts::{Account, AccountConfig, DEFAULT_ACCOUNT};

/// The prefix of environment variables that override the file.
pub const ENV_PREFIX: &str = "PAYCODE_";

/// WeChat auto-revokes an unpaid micropay order 45 s after submission; the proxy must stop
/// waiting (and start reversing) before that.
pub const WECHAT_AUTO_REVOKE_AFTER: Duration = Duration::from_secs(45);

/// WeChat's limit on `body` (the description) is 128 characters in some documents and 127
/// in others; counting bytes keeps any description safely inside both.
pub const MAX_DESCRIPTION_BYTES: usize = 127;

/// The longest `approvals.window`: a shift.
const MAX_APPROVAL_WINDOW: Duration = Duration::from_secs(12 * 60 * 60);

/// All settings of the proxy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP server: where it listens and what it serves.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where payments, refunds and terminals are stored.
    #[serde(default)]
    pub store: StoreConfig,
    /// The merchant account and how to reach WeChat Pay.
    pub wechat: WechatConfig,
    /// More merchant accounts, by name (`[accounts.NAME]`); `[wechat]` is the account
    /// [`DEFAULT_ACCOUNT`].
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    /// Payment rules and the timing of queries and reverses.
    #[serde(default)]
    pub payments: PaymentsConfig,
    /// Facts about the shop.
    #[serde(default)]
    pub shop: ShopConfig,
    /// Pairing tablets by QR code (`terminal add|pair`).
    #[serde(default)]
    pub pairing: PairingConfig,
    /// Leases: which proxy drives which payment when several share one database.
    #[serde(default)]
    pub leases: LeaseConfig,
    /// The owner's books: when the daily reconciliation runs (docs/books.md).
    #[serde(default)]
    pub books: BooksConfig,
    /// Manager approvals: which refunds need one, how long one lasts, PIN lockouts.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
}

/// `[approvals]`: manager approvals (docs/approvals.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// A refund of more than this many fen needs a manager's approval. Default 0: every
    /// refund does.
    #[serde(deserialize_with = "de::fen")]
    pub refund_above_fen: Fen,
    /// How long an approval works for any number of actions of its kind. Default 0: an
    /// approval works for one action (within two minutes).
    #[serde(deserialize_with = "de::duration")]
    pub window: Duration,
    /// How long a manager's PIN stays locked after `max_failures` failures in a row.
    /// Default `15m`.
    #[serde(deserialize_with = "de::duration")]
    pub lockout: Duration,
    /// Failed PIN checks in a row that lock the PIN. Default 5.
    #[serde(deserialize_with = "de::number")]
    pub max_failures: u32,
    /// Failed PIN checks (a wrong PIN, an unknown manager) one terminal may make per minute;
    /// right PINs are not counted. Default 10.
    #[serde(deserialize_with = "de::number")]
    pub failed_checks_per_minute: u32,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            refund_above_fen: Fen::ZERO,
            window: Duration::ZERO,
            lockout: Duration::from_secs(15 * 60),
            max_failures: 5,
            failed_checks_per_minute: 10,
        }
    }
}

/// `[leases]`: every unsettled payment and unfinished refund is driven by one proxy at a
/// time, the holder of its lease (docs/postgresql.md §4). On SQLite the one proxy holds
/// every lease and only the fence of the writes matters; on PostgreSQL these timings decide
/// how soon another proxy takes over the work of one that stopped.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseConfig {
    /// How long a claim or renewal holds a payment, on the database's clock. Another proxy
    /// takes over a stopped proxy's payments this long after its last renewal at most (plus
    /// `claim_interval`). Default `10s`; at most `20s`, well under WeChat's 45 s
    /// auto-revoke, so that a new owner still has time to query and reverse.
    #[serde(deserialize_with = "de::duration")]
    pub duration: Duration,
    /// How often held leases are renewed. Default `3s`; `renew_interval + safety_margin`
    /// must stay under `duration`, so a lease is renewed before calls stop for it.
    #[serde(deserialize_with = "de::duration")]
    pub renew_interval: Duration,
    /// No WeChat call is started for a payment whose lease has less than this left, counted
    /// on the proxy's monotonic clock from when the claim or renewal query was sent (so a
    /// slow database only shortens it): the call waits for the next renewal instead.
    /// Default `2s`; must be shorter than `duration`.
    #[serde(deserialize_with = "de::duration")]
    pub safety_margin: Duration,
    /// How often a proxy on PostgreSQL looks for due work nobody holds (also on wake-ups).
    /// Default `1s`.
    #[serde(deserialize_with = "de::duration")]
    pub claim_interval: Duration,
}

/// The longest `[leases] duration` accepted: under half of WeChat's 45-second auto-revoke.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(20);

/// `[server]`: the HTTP server.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The address and port to listen on. Default `127.0.0.1:3000`. `trunk serve` forwards
    /// `/api/` to `127.0.0.1:8080`, where `paycode-proxy demo` listens (`Trunk.toml`): set
    /// `127.0.0.1:8080` here to develop the app against `serve`. Port 0 picks a free port,
    /// which tests use.
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes; larger bodies get 413. Default 16384:
    /// a payment request is a few hundred bytes.
    #[serde(deserialize_with = "de::number")]
    pub body_limit_bytes: usize,
    /// The built cashier app (Trunk's `dist/`), served at `/`. Default `dist`. When it does
    /// not exist, `/` answers a page explaining how to build it.
    pub app_dir: PathBuf,
    /// The address tablets open, e.g. `https://paycode.local:3443`: the base of the pairing
    /// QR code's URL and the link on the CA page. Default: `https://` (with `[server.tls]`,
    /// else `http://`) and the certificate's first name, or `listen`'s address.
    #[serde(deserialize_with = "de::optional_url")]
    pub public_url: Option<Url>,
    /// HTTPS (docs/tablets.md). Without it the proxy serves plain HTTP, which a tablet on
    /// the shop's Wi-Fi must not use: the terminal token would cross the network in the
    /// clear, and browsers refuse the camera outside a secure context.
    pub tls: Option<TlsConfig>,
    /// This proxy's name among several on one PostgreSQL database (docs/postgresql.md §4):
    /// it labels the metrics, names the proxy in the `User-Agent` of its calls to WeChat and
    /// owns its leases. 1–64 characters of `A–Z a–z 0–9 . _ -`. Default: the host's name.
    pub instance: Option<String>,
}

/// `[server.tls]`: the certificate `serve` presents; `paycode-proxy tls init` makes one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain (PEM), e.g. `data/tls/server.pem`.
    pub cert_pem: PathBuf,
    /// The server certificate's private key (PEM), e.g. `data/tls/server-key.pem`.
    pub key_pem: PathBuf,
    /// The local CA certificate (PEM) offered on `ca_listen`, e.g. `data/tls/ca.pem`.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub ca_pem: Option<PathBuf>,
    /// A plain-HTTP address that serves only the CA certificate and a page explaining how
    /// to trust it, so a tablet can fetch it before it trusts anything, e.g. `0.0.0.0:3080`.
    /// Needs `ca_pem`. Default: none.
    #[serde(default)]
    pub ca_listen: Option<SocketAddr>,
}

/// `[pairing]`: the one-time codes of the pairing QR code (`terminal add|pair`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairingConfig {
    /// How long a pairing code can be exchanged for a token. Default `5m`.
    #[serde(deserialize_with = "de::duration")]
    pub code_ttl: Duration,
    /// Exchanges allowed per client address per minute (answered or not). Default 10.
    #[serde(deserialize_with = "de::number")]
    pub exchanges_per_minute_per_ip: u32,
    /// Exchanges allowed per minute from all clients together. Default 60.
    #[serde(deserialize_with = "de::number")]
    pub exchanges_per_minute: u32,
}

/// `[store]`: the database. `Debug` hides a password in `database_url`.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The directory for the database and other local state; created if missing.
    /// Default `data`.
    pub data_dir: PathBuf,
    /// The database. Default: the SQLite file `paycode.sqlite` in `data_dir`. A `sqlite:`
    /// URL names another SQLite file (`sqlite:///var/lib/paycode/paycode.sqlite`); a
    /// `postgres://` (or `postgresql://`) URL selects PostgreSQL, which several proxies can
    /// share (`postgres://paycode:PASSWORD@db.internal:5432/paycode`; prefer giving it through
    /// `PAYCODE_STORE__DATABASE_URL` when it holds a password; `docs/postgresql.md`).
    #[serde(deserialize_with = "de::optional_text")]
    pub database_url: Option<String>,
    /// The most database connections the proxy keeps open: SQLite's readers (writes have
    /// one connection of their own) or PostgreSQL's pool. Default 8; 1 to 1000.
    #[serde(deserialize_with = "de::number")]
    pub pool_size: u32,
}

/// Which database implementation a [`StoreConfig`] selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// A SQLite file (the default).
    Sqlite,
    /// A PostgreSQL database (`database_url` is a `postgres://` URL).
    Postgres,
}

/// `[wechat]`: the merchant account and WeChat Pay's hosts. `Debug` is safe to log: the
/// API key's own `Debug` prints `ApiKey(***)`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    /// The `appid` bound to the merchant (the service provider's in provider mode).
    #[serde(deserialize_with = "de::text")]
    pub appid: String,
    /// The merchant number `mch_id` (the service provider's in provider mode). It is also the
    /// password of `apiclient_cert.p12`.
    #[serde(deserialize_with = "de::text")]
    pub mch_id: String,
    /// Provider mode (服务商) only: the default store's sub-merchant appid (other stores
    /// name their own: docs/design.md, "Stores and merchant accounts").
    #[serde(default, deserialize_with = "de::optional_text")]
    pub sub_appid: Option<String>,
    /// Provider mode (服务商) only: the default store's sub-merchant number. Setting it makes
    /// `[wechat]` a service provider.
    #[serde(default, deserialize_with = "de::optional_text")]
    pub sub_mch_id: Option<String>,
    /// The 32-character APIv2 key (商户平台 → 账户中心 → API安全). Secret: prefer setting it
    /// through `PAYCODE_WECHAT__API_KEY` over writing it into the file.
    #[serde(deserialize_with = "de::api_key")]
    pub api_key: ApiKey,
    /// The signature algorithm: `MD5` or `HMAC-SHA256`. Default `HMAC-SHA256`, the stronger
    /// one and the official SDK's production default. The sandbox always uses MD5.
    #[serde(default = "default_sign_type", deserialize_with = "de::sign_type")]
    pub sign_type: SignType,
    /// Where calls go first. Default `https://api.mch.weixin.qq.com`.
    #[serde(default = "default_primary_url", deserialize_with = "de::url")]
    pub primary_url: Url,
    /// Where calls go when the primary host cannot be reached (connect or DNS failures only).
    /// Default `https://api2.mch.weixin.qq.com`; empty disables failover.
    #[serde(default = "default_backup_url", deserialize_with = "de::optional_url")]
    pub backup_url: Option<Url>,
    /// The API client certificate (`apiclient_cert.pem`), needed for reverse and refund.
    /// Give it together with [`key_pem`](Self::key_pem), or give [`cert_p12`](Self::cert_p12)
    /// instead.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub cert_pem: Option<PathBuf>,
    /// The client certificate's private key (`apiclient_key.pem`).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub key_pem: Option<PathBuf>,
    /// The client certificate and key as one PKCS#12 file (`apiclient_cert.p12`, password
    /// `mch_id`), instead of the two PEM files.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub cert_p12: Option<PathBuf>,
    /// Extra root CA certificates (PEM) to trust on top of the built-in ones; demo mode and
    /// tests point this at the simulator's CA.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub extra_ca_pem: Option<PathBuf>,
    /// The limit for setting up a connection (DNS, TCP, TLS). Default `6s`. A failure within
    /// it means the request was certainly not sent.
    #[serde(default = "default_connect_timeout", deserialize_with = "de::duration")]
    pub connect_timeout: Duration,
    /// The deadline for one exchange with WeChat (query, reverse, refund). Default `10s`.
    /// Expiry means the outcome is unknown.
    #[serde(default = "default_read_timeout", deserialize_with = "de::duration")]
    pub read_timeout: Duration,
    /// The deadline for the micropay call itself, which WeChat may hold open while it
    /// charges. Default `15s`.
    #[serde(
        default = "default_micropay_read_timeout",
        deserialize_with = "de::duration"
    )]
    pub micropay_read_timeout: Duration,
    /// After a fail-over to `backup_url`, how long traffic stays there before it is forced
    /// back to `primary_url` (docs/wechat-pay.md §10). Default `3m`, as in WeChat's own SDKs.
    #[serde(
        default = "default_switch_back_after",
        deserialize_with = "de::duration"
    )]
    pub switch_back_after: Duration,
    /// Use WeChat's sandbox (仿真测试系统). Default `false`.
    #[serde(default, deserialize_with = "de::boolean")]
    pub sandbox: bool,
}

/// `[payments]`: payment rules and timing. Durations are written as `"3s"`, `"500ms"`,
/// `"1m 30s"`, or as whole milliseconds. The defaults follow WeChat's documented schedule
/// (docs/design.md, "Query schedule"); tests shorten them.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The largest amount one payment may charge, in fen. Default 500000 (¥5,000.00).
    #[serde(deserialize_with = "de::fen")]
    pub max_amount_fen: Fen,
    /// The description (`body`) sent to WeChat when the app gives none; WeChat recommends
    /// `店名-销售商品类目`. Default `Paycode 门店-商品`. At most 127 bytes.
    pub default_description: String,
    /// The IP address reported to WeChat as `spbill_create_ip` (the machine calling the
    /// API). Default `127.0.0.1`.
    pub spbill_create_ip: IpAddr,
    /// After micropay answers USERPAYING, wait this long before the first query. Default `3s`.
    #[serde(deserialize_with = "de::duration")]
    pub first_query_after_userpaying: Duration,
    /// After an unknown outcome (timeout, SYSTEMERROR, …), wait this long before the first
    /// query. Default `5s`.
    #[serde(deserialize_with = "de::duration")]
    pub first_query_after_unknown: Duration,
    /// The pause between queries. Default `3s`; WeChat documents 3–5 s, but any value is
    /// accepted so tests can run fast.
    #[serde(deserialize_with = "de::duration")]
    pub query_interval: Duration,
    /// How long after submitting micropay the proxy stops waiting and reverses. Default
    /// `40s`; must stay under WeChat's 45 s auto-revoke.
    #[serde(deserialize_with = "de::duration")]
    pub wait_deadline: Duration,
    /// The earliest a reverse may be sent, measured from submitting micropay. Default `15s`
    /// (WeChat's rule).
    #[serde(deserialize_with = "de::duration")]
    pub reverse_not_before: Duration,
    /// The first pause between reverse attempts; it doubles with each retry. Default `1s`.
    #[serde(deserialize_with = "de::duration")]
    pub reverse_retry_base: Duration,
    /// How many reverse attempts are made before the payment needs attention. Default 10.
    #[serde(deserialize_with = "de::number")]
    pub reverse_max_attempts: u32,
    /// How often a payment that needs attention is queried again. Default `60s`.
    #[serde(deserialize_with = "de::duration")]
    pub attention_recheck_interval: Duration,
    /// The least time between two refunds of one payment reaching WeChat: WeChat wants
    /// partial refunds of one order at least a minute apart (docs/wechat-pay.md §3.4), so a refund asked
    /// for sooner is held (`queued`) until this long after the previous one was applied.
    /// Default `60s`.
    #[serde(deserialize_with = "de::duration")]
    pub refund_spacing: Duration,
    /// The most micropay calls sent per second (WeChat allows 30 per merchant). Default 30.
    #[serde(deserialize_with = "de::number")]
    pub micropay_rate_per_second: u32,
    /// The longest a long-poll (`GET /api/v1/payments/{id}?wait=…`) is held open. Default
    /// `25s`, below common proxy idle timeouts.
    #[serde(deserialize_with = "de::duration")]
    pub long_poll_max_wait: Duration,
    /// Every micropay carries `time_expire` this long after it is sent, so WeChat refuses a
    /// micropay that arrives later (from a proxy paused past its lease, or a request held in
    /// the network). WeChat wants it more than a minute ahead (docs/wechat-pay.md §3.1,
    /// §6.4). Default `90s`, a 30 s cushion over that minute; must be longer than
    /// `wait_deadline` (the order stays payable while the proxy waits for the customer).
    #[serde(deserialize_with = "de::duration")]
    pub micropay_expire_after: Duration,
    /// How far WeChat's clock may be off ours: a micropay whose outcome is unknown is not
    /// settled as "never arrived" (ORDERNOTEXIST, or a reverse of an order WeChat had not
    /// seen) before its `time_expire` plus this margin; it is queried again then. Default
    /// `15s`, generous for clocks kept by NTP.
    #[serde(deserialize_with = "de::duration")]
    pub expire_skew_margin: Duration,
}

/// `[shop]`: facts about the shop.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    /// The shop's offset from UTC, which decides the business day ("today") a payment
    /// belongs to. Default `+08:00` (China Standard Time).
    #[serde(deserialize_with = "de::utc_offset")]
    pub utc_offset: FixedOffset,
}

/// Why the configuration could not be loaded. Every message names the file, the field or
/// the environment variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path} (copy proxy/paycode.example.toml to start)")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("the configuration file {path} is not valid TOML")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        source: Box<toml::de::Error>,
    },
    /// An environment variable named a setting in a way that cannot be applied.
    #[error("environment variable {variable}: {message}")]
    Environment {
        /// The variable.
        variable: String,
        /// What is wrong with it.
        message: String,
    },
    /// A setting is missing, unknown, or has a value that is not allowed.
    #[error("{field}: {message}")]
    Invalid {
        /// The setting, as `section.field` (with the environment variable that set it, if
        /// any).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Config {
    /// A configuration with every default around the given merchant settings.
    pub fn new(wechat: WechatConfig) -> Config {
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            wechat,
            accounts: BTreeMap::new(),
            payments: PaymentsConfig::default(),
            shop: ShopConfig::default(),
            pairing: PairingConfig::default(),
            leases: LeaseConfig::default(),
            books: BooksConfig::default(),
            approvals: ApprovalsConfig::default(),
        }
    }

    /// Loads the file at `path`, applies the `PAYCODE_*` variables of the process
    /// environment, and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_sources(path, &text, std::env::vars())
    }

    /// Builds the configuration from the file's text (`path` only names it in errors) and
    /// the given environment, then validates it. [`Config::load`] calls this with the
    /// process environment; tests pass their own.
    pub fn from_sources(
        path: &Path,
        file_text: &str,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(file_text).map_err(|source| ConfigError::Syntax {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        let overridden_by = apply_environment(&mut table, environment)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
                let (field, message) = describe_serde_error(&error);
                ConfigError::Invalid {
                    field: name_with_variable(&field, &overridden_by),
                    message,
                }
            })?;
        config.validate().map_err(|error| match error {
            ConfigError::Invalid { field, message } => ConfigError::Invalid {
                field: name_with_variable(&field, &overridden_by),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks the rules that types alone cannot express. [`Config::load`] calls it; code
    /// that builds a `Config` by hand should call it too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let wechat = &self.wechat;
        let payments = &self.payments;
        require(
            !wechat.appid.trim().is_empty(),
            "wechat.appid",
            "must not be empty",
        )?;
        require(
            !wechat.mch_id.trim().is_empty(),
            "wechat.mch_id",
            "must not be empty",
        )?;
        require(
            !wechat.api_key.expose().is_empty(),
            "wechat.api_key",
            "must not be empty",
        )?;
        require(
            wechat.cert_pem.is_some() == wechat.key_pem.is_some(),
            if wechat.cert_pem.is_some() {
                "wechat.key_pem"
            } else {
                "wechat.cert_pem"
            },
            "cert_pem and key_pem must be given together",
        )?;
        require(
            !(wechat.cert_p12.is_some() && wechat.cert_pem.is_some()),
            "wechat.cert_p12",
            "give either cert_p12 or cert_pem and key_pem, not both",
        )?;
        for (field, duration) in [
            ("wechat.connect_timeout", wechat.connect_timeout),
            ("wechat.read_timeout", wechat.read_timeout),
            ("wechat.micropay_read_timeout", wechat.micropay_read_timeout),
            ("wechat.switch_back_after", wechat.switch_back_after),
            ("payments.query_interval", payments.query_interval),
            ("payments.wait_deadline", payments.wait_deadline),
            ("payments.reverse_retry_base", payments.reverse_retry_base),
            (
                "payments.attention_recheck_interval",
                payments.attention_recheck_interval,
            ),
            ("payments.long_poll_max_wait", payments.long_poll_max_wait),
            ("pairing.code_ttl", self.pairing.code_ttl),
            ("leases.duration", self.leases.duration),
            ("leases.renew_interval", self.leases.renew_interval),
            ("leases.claim_interval", self.leases.claim_interval),
            ("approvals.lockout", self.approvals.lockout),
        ] {
            // A zero here would make a timer loop spin or a call fail at once.
            require(!duration.is_zero(), field, "must be longer than zero")?;
        }
        require(
            payments.wait_deadline < WECHAT_AUTO_REVOKE_AFTER,
            "payments.wait_deadline",
            "must be shorter than 45s, when WeChat auto-revokes the order",
        )?;
        require(
            payments.micropay_expire_after > payments.wait_deadline,
            "payments.micropay_expire_after",
            "must be longer than payments.wait_deadline (and, for WeChat, more than 60s)",
        )?;
        let leases = &self.leases;
        require(
            leases.duration <= MAX_LEASE_DURATION,
            "leases.duration",
            "must be at most 20s, well under WeChat's 45-second auto-revoke",
        )?;
        require(
            leases.safety_margin < leases.duration,
            "leases.safety_margin",
            "must be shorter than leases.duration",
        )?;
        require(
            leases.renew_interval + leases.safety_margin < leases.duration,
            "leases.renew_interval",
            "plus leases.safety_margin must be shorter than leases.duration",
        )?;
        require(
            payments.max_amount_fen > Fen::ZERO && payments.max_amount_fen <= MAX_PARSED,
            "payments.max_amount_fen",
            "must be between 1 and 1000000000000",
        )?;
        require(
            !payments.default_description.trim().is_empty(),
            "payments.default_description",
            "must not be empty",
        )?;
        require(
            payments.default_description.len() <= MAX_DESCRIPTION_BYTES,
            "payments.default_description",
            "must be at most 127 bytes (WeChat's limit on `body`)",
        )?;
        require(
            payments.reverse_max_attempts >= 1,
            "payments.reverse_max_attempts",
            "must be at least 1",
        )?;
        require(
            payments.micropay_rate_per_second >= 1,
            "payments.micropay_rate_per_second",
            "must be at least 1",
        )?;
        require(
            self.server.body_limit_bytes >= 1024,
            "server.body_limit_bytes",
            "must be at least 1024",
        )?;
        self.books.validate()?;
        require(
            self.pairing.exchanges_per_minute_per_ip >= 1 && self.pairing.exchanges_per_minute >= 1,
            "pairing.exchanges_per_minute",
            "the pairing rate limits must be at least 1",
        )?;
        let approvals = &self.approvals;
        require(
            approvals.refund_above_fen <= MAX_PARSED,
            "approvals.refund_above_fen",
            "must be at most 1000000000000",
        )?;
        require(
            approvals.window <= MAX_APPROVAL_WINDOW,
            "approvals.window",
            "must be at most 12h (0: an approval works for one action)",
        )?;
        require(
            (1..=100).contains(&approvals.max_failures),
            "approvals.max_failures",
            "must be between 1 and 100",
        )?;
        require(
            approvals.failed_checks_per_minute >= 1,
            "approvals.failed_checks_per_minute",
            "must be at least 1",
        )?;
        if let Some(instance) = &self.server.instance {
            require(
                (1..=64).contains(&instance.len())
                    && instance.chars().all(crate::instance::is_name_char),
                "server.instance",
                "must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
            )?;
        }
        if let Some(tls) = &self.server.tls {
            require(
                tls.ca_listen.is_none() || tls.ca_pem.is_some(),
                "server.tls.ca_pem",
                "ca_listen offers the CA certificate, so ca_pem must name it",
            )?;
        }
        accounts::validate(self)?;
        self.store.validate()
    }
}

impl StoreConfig {
    /// The database implementation `database_url` selects (SQLite when it is not set).
    pub fn backend(&self) -> StoreBackend {
        match &self.database_url {
            Some(url) if is_postgres_url(url) => StoreBackend::Postgres,
            _ => StoreBackend::Sqlite,
        }
    }

    /// The database, for logs and `check`: the SQLite file, or PostgreSQL's host, port and
    /// database name (never the user or password).
    pub fn describe(&self) -> String {
        match (&self.database_url, self.backend()) {
            (None, _) => format!("SQLite {}", self.default_database_path().display()),
            (Some(url), StoreBackend::Sqlite) => format!("SQLite {url}"),
            (Some(url), StoreBackend::Postgres) => match Url::parse(url) {
                Ok(url) => format!(
                    "PostgreSQL {}:{}{}",
                    url.host_str().unwrap_or("localhost"),
                    url.port().unwrap_or(5432),
                    url.path()
                ),
                Err(_) => "PostgreSQL".to_owned(),
            },
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        require(
            (1..=1000).contains(&self.pool_size),
            "store.pool_size",
            "must be between 1 and 1000",
        )?;
        let Some(url) = &self.database_url else {
            return Ok(());
        };
        // The parsers' messages say what is wrong without repeating the URL, which may hold
        // a password.
        let parsed = match self.backend() {
            StoreBackend::Postgres => sqlx::postgres::PgConnectOptions::from_str(url).map(|_| ()),
            StoreBackend::Sqlite if url.starts_with("sqlite:") => {
                sqlx::sqlite::SqliteConnectOptions::from_str(url).map(|_| ())
            }
            StoreBackend::Sqlite => {
                return Err(ConfigError::Invalid {
                    field: "store.database_url".to_owned(),
                    message: "must be a sqlite: or postgres:// URL".to_owned(),
                });
            }
        };
        parsed.map_err(|error| ConfigError::Invalid {
            field: "store.database_url".to_owned(),
            message: format!("is not a valid database URL: {error}"),
        })
    }
}

impl WechatConfig {
    /// A direct-merchant configuration with WeChat's production hosts, HMAC-SHA256, the
    /// default timeouts, no client certificate and no sandbox.
    pub fn new(appid: impl Into<String>, mch_id: impl Into<String>, api_key: ApiKey) -> Self {
        WechatConfig {
            appid: appid.into(),
            mch_id: mch_id.into(),
            sub_appid: None,
            sub_mch_id: None,
            api_key,
            sign_type: default_sign_type(),
            primary_url: default_primary_url(),
            backup_url: default_backup_url(),
            cert_pem: None,
            key_pem: None,
            cert_p12: None,
            extra_ca_pem: None,
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            micropay_read_timeout: default_micropay_read_timeout(),
            switch_back_after: default_switch_back_after(),
            sandbox: false,
        }
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl fmt::Debug for StoreConfig {
    /// Every field, with a password in `database_url` replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let database_url = self
            .database_url
            .as_ref()
            .map(|text| match Url::parse(text) {
                Ok(mut url) if url.password().is_some() => {
                    let _ = url.set_password(Some("***"));
                    url.to_string()
                }
                Ok(_) => text.clone(),
                Err(_) => "<unparsable URL>".to_owned(),
            });
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("database_url", &database_url)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl StoreConfig {
    /// The SQLite file used when [`database_url`](Self::database_url) is not set.
    pub fn default_database_path(&self) -> PathBuf {
        self.data_dir.join("paycode.sqlite")
    }
}

impl ShopConfig {
    /// The business day (`YYYY-MM-DD` in the shop's offset) that an instant belongs to.
    pub fn business_day(&self, at: Millis) -> NaiveDate {
        at.to_datetime()
            .with_timezone(&self.utc_offset)
            .date_naive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 3000)),
            body_limit_bytes: 16 * 1024,
            app_dir: PathBuf::from("dist"),
            public_url: None,
            tls: None,
            instance: None,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("data"),
            database_url: None,
            pool_size: 8,
        }
    }
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            max_amount_fen: Fen(500_000),
            default_description: "Paycode 门店-商品".to_owned(),
            spbill_create_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            first_query_after_userpaying: Duration::from_secs(3),
            first_query_after_unknown: Duration::from_secs(5),
            query_interval: Duration::from_secs(3),
            wait_deadline: Duration::from_secs(40),
            reverse_not_before: Duration::from_secs(15),
            reverse_retry_base: Duration::from_secs(1),
            reverse_max_attempts: 10,
            attention_recheck_interval: Duration::from_secs(60),
            refund_spacing: Duration::from_secs(60),
            micropay_rate_per_second: 30,
            long_poll_max_wait: Duration::from_secs(25),
            micropay_expire_after: Duration::from_secs(90),
            expire_skew_margin: Duration::from_secs(15),
        }
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            duration: Duration::from_secs(10),
            renew_interval: Duration::from_secs(3),
            safety_margin: Duration::from_secs(2),
            claim_interval: Duration::from_secs(1),
        }
    }
}

impl Default for PairingConfig {
    fn default() -> Self {
        PairingConfig {
            code_ttl: Duration::from_secs(5 * 60),
            exchanges_per_minute_per_ip: 10,
            exchanges_per_minute: 60,
        }
    }
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            utc_offset: china_standard_time(),
        }
    }
}

fn china_standard_time() -> FixedOffset {
    // Eight hours is well inside FixedOffset's ±24 h range; the default test proves it.
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid UTC offset")
}

fn default_sign_type() -> SignType {
    SignType::HmacSha256
}

fn default_primary_url() -> Url {
    constant_url(wxpay::client::config::DEFAULT_PRIMARY_BASE_URL)
}

fn default_backup_url() -> Option<Url> {
    Some(constant_url(wxpay::client::config::DEFAULT_BACKUP_BASE_URL))
}

fn constant_url(text: &str) -> Url {
    // The constants are valid URLs; `defaults_are_valid` below proves it.
    Url::parse(text).expect("WeChat's default base URLs are valid")
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(6)
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_micropay_read_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_switch_back_after() -> Duration {
    wxpay::client::hosts::SWITCH_BACK_AFTER
}

/// `[books]`: the daily reconciliation of WeChat's bills with the store (docs/books.md §5),
/// which `serve` runs for yesterday, for each account, once per day across every proxy on
/// the database.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BooksConfig {
    /// Whether `serve` runs the daily reconciliation. Default `true`. `paycode-proxy
    /// reconcile --date D` works either way.
    #[serde(deserialize_with = "de::boolean")]
    pub daily_run: bool,
    /// The shop time (`HH:MM`, in `[shop] utc_offset`) after which yesterday's bill is
    /// fetched. Default `"10:30"`: WeChat makes day D's bill from 09:00 on D+1 and advises
    /// fetching it after 10:00 (docs/books.md §1).
    #[serde(deserialize_with = "time_of_day")]
    pub run_at: chrono::NaiveTime,
    /// How long to wait before trying again when WeChat says the bill is not ready (`Bill
    /// Creating`) or the run failed; also how long one proxy's claim on a day's run lasts.
    /// Default `30m`.
    #[serde(deserialize_with = "de::duration")]
    pub retry_after: Duration,
    /// How close to midnight a store item the day's bill lacks must be to be carried to the
    /// next day's run instead of reported (docs/books.md §2). Default `10m`; at most `1h`.
    #[serde(deserialize_with = "de::duration")]
    pub carry_over_edge: Duration,
}

impl Default for BooksConfig {
    fn default() -> Self {
        BooksConfig {
            daily_run: true,
            run_at: chrono::NaiveTime::from_hms_opt(10, 30, 0).expect("10:30 is a time"),
            retry_after: Duration::from_secs(30 * 60),
            carry_over_edge: Duration::from_secs(10 * 60),
        }
    }
}

impl BooksConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        require(
            !self.retry_after.is_zero(),
            "books.retry_after",
            "must be longer than zero",
        )?;
        require(
            self.carry_over_edge <= Duration::from_secs(3600),
            "books.carry_over_edge",
            "must be at most 1h",
        )
    }
}

/// A time of day `HH:MM` (or `HH:MM:SS`).
fn time_of_day<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<chrono::NaiveTime, D::Error> {
    use serde::de::Error as _;
    let text = String::deserialize(deserializer)?;
    chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .or_else(|_| chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M:%S"))
        .map_err(|_| {
            D::Error::custom(format!(
                "expected a time of day such as \"10:30\", got {text:?}"
            ))
        })
}

fn require(condition: bool, field: &str, message: &str) -> Result<(), ConfigError> {
    if condition {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        })
    }
}

/// Writes every `PAYCODE_<SECTION>__<FIELD>` variable into `table` as text and returns,
/// for each dotted setting name it set, the variable that set it.
fn apply_environment(
    table: &mut toml::Table,
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut overridden_by = BTreeMap::new();
    for (variable, value) in environment {
        let Some(rest) = variable.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Variables without a section separator (such as PAYCODE_CONFIG, the file path)
        // are not settings.
        if !rest.contains("__") {
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            return Err(ConfigError::Environment {
                variable,
                message: "expected PAYCODE_<SECTION>__<FIELD>".to_owned(),
            });
        }
        let (field, sections) = segments.split_last().unwrap_or((&segments[0], &[]));
        let mut current = &mut *table;
        for section in sections {
            let entry = current
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(ConfigError::Environment {
                        variable,
                        message: format!("`{section}` is a setting, not a section"),
                    });
                }
            };
        }
        current.insert(field.clone(), toml::Value::String(value));
        overridden_by.insert(segments.join("."), variable);
    }
    Ok(overridden_by)
}

/// Splits a deserialization error into the dotted setting it concerns and a message.
fn describe_serde_error(error: &serde_path_to_error::Error<toml::de::Error>) -> (String, String) {
    let message = error.inner().message().trim().to_owned();
    let field = crate::field_path::field_of(error.path(), &message)
        .unwrap_or_else(|| "configuration".to_owned());
    (field, message)
}

fn name_with_variable(field: &str, overridden_by: &BTreeMap<String, String>) -> String {
    match overridden_by.get(field) {
        Some(variable) => format!("{field} (from {variable})"),
        None => field.to_owned(),
    }
}

impl fmt::Display for Config {
    /// A one-line summary for the start-up log: no secrets, no paths to key files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accounts: Vec<String> = self
            .accounts()
            .iter()
            .map(|account| format!("{}:{}", account.name, account.mch_id))
            .collect();
        write!(
            f,
            "listen={} tls={} mch_id={} accounts={} primary_url={} sandbox={} client_certificate={}",
            self.server.listen,
            self.server.tls.is_some(),
            self.wechat.mch_id,
            accounts.join(","),
            self.wechat.primary_url,
            self.wechat.sandbox,
            self.wechat.cert_pem.is_some() || self.wechat.cert_p12.is_some(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [wechat]
        appid = "wx2421b1c4370ec43b"
        mch_id = 10000100
        api_key = "192006250b4c09247ec02edce69f6a2d"
    "#;

    fn load(text: &str, environment: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let environment = environment
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()));
        Config::from_sources(Path::new("paycode.toml"), text, environment)
    }

    fn invalid_field(result: Result<Config, ConfigError>) -> (String, String) {
        match result {
            Err(ConfigError::Invalid { field, message }) => (field, message),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        // Arrange
        let config = Config::new(WechatConfig::new("wx", "10000100", ApiKey::new("k")));
        // Act
        let result = config.validate();
        // Assert
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            config.wechat.primary_url.as_str(),
            "https://api.mch.weixin.qq.com/"
        );
        assert_eq!(
            config.wechat.backup_url.as_ref().map(Url::as_str),
            Some("https://api2.mch.weixin.qq.com/")
        );
    }

    #[test]
    fn leases_and_time_expire_are_read_and_checked_against_each_other() {
        let config = load(MINIMAL, &[]).unwrap();
        assert_eq!(config.leases.duration, Duration::from_secs(10));
        assert_eq!(
            config.payments.micropay_expire_after,
            Duration::from_secs(90)
        );
        for (section, expected_field) in [
            ("[leases]\nduration = \"30s\"", "leases.duration"),
            ("[leases]\nsafety_margin = \"10s\"", "leases.safety_margin"),
            (
                "[leases]\nrenew_interval = \"8s\"\nsafety_margin = \"2s\"",
                "leases.renew_interval",
            ),
            ("[leases]\nclaim_interval = \"0s\"", "leases.claim_interval"),
            (
                "[payments]\nmicropay_expire_after = \"30s\"",
                "payments.micropay_expire_after",
            ),
        ] {
            let (field, _) = invalid_field(load(&format!("{MINIMAL}\n{section}"), &[]));
            assert_eq!(field, expected_field, "{section}");
        }
        let shorter = load(
            &format!("{MINIMAL}\n[leases]\nduration = \"5s\"\nrenew_interval = \"1s\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(shorter.leases.duration, Duration::from_secs(5));
    }

    #[test]
    fn loads_a_minimal_file_with_defaults() {
        let config = load(MINIMAL, &[]).unwrap();
        assert_eq!(config.wechat.mch_id, "10000100");
        assert_eq!(config.wechat.sign_type, SignType::HmacSha256);
        assert_eq!(config.server.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.payments.query_interval, Duration::from_secs(3));
        assert_eq!(config.payments.wait_deadline, Duration::from_secs(40));
        assert_eq!(config.payments.max_amount_fen, Fen(500_000));
        assert_eq!(config.shop.utc_offset.local_minus_utc(), 8 * 3600);
        assert_eq!(
            config.store.default_database_path(),
            Path::new("data/paycode.sqlite")
        );
    }

    #[test]
    fn the_example_file_loads() {
        let text = include_str!("../paycode.example.toml");
        let config = load(text, &[]).unwrap();
        assert_eq!(config.payments.reverse_not_before, Duration::from_secs(15));
        assert_eq!(config.payments.default_description, "Paycode 门店-商品");
    }

    #[test]
    fn the_chain_sample_of_the_docs_loads_as_written_with_its_environment() {
        let doc = include_str!("../../docs/chains.md");
        let start = doc.find("# /etc/paycode/paycode.toml on till-a").unwrap();
        let end = start + doc[start..].find("```").unwrap();
        let environment = [
            (
                "PAYCODE_WECHAT__API_KEY",
                "192006250b4c09247ec02edce69f6a2d",
            ),
            (
                "PAYCODE_STORE__DATABASE_URL",
                "postgres://paycode:SECRET@db.internal:5432/paycode",
            ),
        ];

        let config = load(&doc[start..end], &environment).unwrap();

        assert_eq!(config.server.instance.as_deref(), Some("till-a"));
        assert_eq!(config.server.app_dir, Path::new("/opt/paycode/dist"));
        assert_eq!(
            config.server.public_url.as_ref().map(Url::as_str),
            Some("https://paycode.shop.internal/")
        );
        assert_eq!(config.store.backend(), StoreBackend::Postgres);
        assert_eq!(config.store.data_dir, Path::new("/var/lib/paycode"));
        assert!(config.wechat.cert_p12.is_some());
    }

    #[test]
    fn tls_and_pairing_settings_load_and_are_checked() {
        let text = format!(
            "{MINIMAL}\n[server]\nlisten = \"0.0.0.0:3443\"\npublic_url = \"https://paycode.local:3443\"\n\
             [server.tls]\ncert_pem = \"tls/server.pem\"\nkey_pem = \"tls/server-key.pem\"\n\
             ca_pem = \"tls/ca.pem\"\nca_listen = \"0.0.0.0:3080\"\n\
             [pairing]\ncode_ttl = \"2m\"\nexchanges_per_minute_per_ip = 3\n"
        );
        let config = load(&text, &[]).unwrap();
        let tls = config.server.tls.as_ref().unwrap();
        assert_eq!(tls.key_pem, Path::new("tls/server-key.pem"));
        assert_eq!(tls.ca_listen, Some("0.0.0.0:3080".parse().unwrap()));
        assert_eq!(config.pairing.code_ttl, Duration::from_secs(120));
        assert_eq!(config.pairing.exchanges_per_minute_per_ip, 3);
        assert_eq!(config.pairing.exchanges_per_minute, 60);
        assert_eq!(
            load(MINIMAL, &[]).unwrap().pairing.code_ttl,
            Duration::from_secs(300)
        );

        let without_ca = text.replace("ca_pem = \"tls/ca.pem\"\n", "");
        let (field, _) = invalid_field(load(&without_ca, &[]));
        assert_eq!(field, "server.tls.ca_pem");
        let (field, _) = invalid_field(load(&format!("{MINIMAL}\n[pairing]\ncode_ttl = 0\n"), &[]));
        assert_eq!(field, "pairing.code_ttl");
    }

    #[test]
    fn approval_settings_load_and_are_checked() {
        let defaults = load(MINIMAL, &[]).unwrap().approvals;
        assert_eq!(defaults.refund_above_fen, Fen::ZERO);
        assert_eq!(defaults.window, Duration::ZERO);
        assert_eq!(defaults.lockout, Duration::from_secs(900));
        assert_eq!(defaults.max_failures, 5);
        let config = load(
            &format!(
                "{MINIMAL}\n[approvals]\nrefund_above_fen = 5000\nwindow = \"10m\"\nlockout = \"30s\"\nmax_failures = 3\n"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(config.approvals.refund_above_fen, Fen(5000));
        assert_eq!(config.approvals.window, Duration::from_secs(600));
        assert_eq!(config.approvals.lockout, Duration::from_secs(30));
        assert_eq!(config.approvals.max_failures, 3);
        for (setting, field) in [
            ("lockout = 0", "approvals.lockout"),
            ("max_failures = 0", "approvals.max_failures"),
            ("window = \"13h\"", "approvals.window"),
            (
                "failed_checks_per_minute = 0",
                "approvals.failed_checks_per_minute",
            ),
        ] {
            let (named, _) =
                invalid_field(load(&format!("{MINIMAL}\n[approvals]\n{setting}\n"), &[]));
            assert_eq!(named, field, "{setting}");
        }
    }

    #[test]
    fn durations_accept_text_and_milliseconds() {
        let text = format!(
            "{MINIMAL}\n[payments]\nquery_interval = \"250ms\"\nwait_deadline = 1500\nreverse_not_before = \"1m 2s\"\n"
        );
        let config = load(&text, &[]).unwrap();
        assert_eq!(config.payments.query_interval, Duration::from_millis(250));
        assert_eq!(config.payments.wait_deadline, Duration::from_millis(1500));
        assert_eq!(config.payments.reverse_not_before, Duration::from_secs(62));
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load(
            MINIMAL,
            &[
                ("PAYCODE_WECHAT__API_KEY", "from-the-environment"),
                ("PAYCODE_WECHAT__MCH_ID", "1900000109"),
                ("PAYCODE_WECHAT__SIGN_TYPE", "md5"),
                ("PAYCODE_WECHAT__BACKUP_URL", ""),
                ("PAYCODE_SERVER__LISTEN", "127.0.0.1:0"),
                ("PAYCODE_PAYMENTS__MAX_AMOUNT_FEN", "100"),
                ("PAYCODE_PAYMENTS__QUERY_INTERVAL", "10ms"),
                ("PAYCODE_WECHAT__SANDBOX", "true"),
                ("PAYCODE_SHOP__UTC_OFFSET", "-05:30"),
                ("PAYCODE_CONFIG", "ignored.toml"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(config.wechat.api_key.expose(), "from-the-environment");
        assert_eq!(config.wechat.mch_id, "1900000109");
        assert_eq!(config.wechat.sign_type, SignType::Md5);
        assert_eq!(config.wechat.backup_url, None);
        assert_eq!(config.server.listen.port(), 0);
        assert_eq!(config.payments.max_amount_fen, Fen(100));
        assert_eq!(config.payments.query_interval, Duration::from_millis(10));
        assert!(config.wechat.sandbox);
        assert_eq!(
            config.shop.utc_offset.local_minus_utc(),
            -(5 * 3600 + 30 * 60)
        );
    }

    #[test]
    fn the_environment_alone_can_supply_a_section() {
        let config = load(
            "",
            &[
                ("PAYCODE_WECHAT__APPID", "wx"),
                ("PAYCODE_WECHAT__MCH_ID", "10000100"),
                ("PAYCODE_WECHAT__API_KEY", "k"),
            ],
        )
        .unwrap();
        assert_eq!(config.wechat.appid, "wx");
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let text = MINIMAL.replace("api_key", "# api_key");
        let (field, message) = invalid_field(load(&text, &[]));
        assert_eq!(field, "wechat.api_key");
        assert!(message.contains("missing field"), "{message}");
    }

    #[test]
    fn a_missing_section_is_named() {
        let (field, _) = invalid_field(load("", &[]));
        assert_eq!(field, "wechat");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = format!("{MINIMAL}\n[payments]\nquery_intervall = \"3s\"\n");
        let (field, message) = invalid_field(load(&text, &[]));
        assert_eq!(field, "payments.query_intervall");
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let (field, message) = invalid_field(load(
            MINIMAL,
            &[("PAYCODE_PAYMENTS__QUERY_INTERVAL", "soon")],
        ));
        assert_eq!(
            field,
            "payments.query_interval (from PAYCODE_PAYMENTS__QUERY_INTERVAL)"
        );
        assert!(message.contains("\"soon\""), "{message}");
    }

    #[test]
    fn a_variable_that_treats_a_setting_as_a_section_is_rejected() {
        let result = load(MINIMAL, &[("PAYCODE_WECHAT__APPID__X", "1")]);
        assert!(
            matches!(result, Err(ConfigError::Environment { .. })),
            "{result:?}"
        );
        let result = load(MINIMAL, &[("PAYCODE___APPID", "1")]);
        assert!(
            matches!(result, Err(ConfigError::Environment { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn toml_syntax_errors_name_the_file() {
        let error = load("[wechat", &[]).unwrap_err();
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
        assert!(error.to_string().contains("paycode.toml"), "{error}");
    }

    #[test]
    fn each_value_error_names_its_field() {
        for (section, line, expected_field) in [
            ("wechat", "sign_type = \"SHA1\"", "wechat.sign_type"),
            (
                "wechat",
                "primary_url = \"not a url\"",
                "wechat.primary_url",
            ),
            ("wechat", "sandbox = \"maybe\"", "wechat.sandbox"),
            ("payments", "max_amount_fen = -5", "payments.max_amount_fen"),
            (
                "payments",
                "spbill_create_ip = \"localhost\"",
                "payments.spbill_create_ip",
            ),
            ("shop", "utc_offset = \"Asia/Shanghai\"", "shop.utc_offset"),
            ("server", "listen = \"3000\"", "server.listen"),
        ] {
            let text = if section == "wechat" {
                format!("{MINIMAL}{line}\n")
            } else {
                format!("{MINIMAL}\n[{section}]\n{line}\n")
            };
            let (field, _) = invalid_field(load(&text, &[]));
            assert_eq!(field, expected_field, "{line}");
        }
    }

    #[test]
    fn each_validation_rule_names_its_field() {
        let base = || Config::new(WechatConfig::new("wx", "10000100", ApiKey::new("k")));
        type Breakage = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("wechat.appid", Box::new(|c| c.wechat.appid = " ".into())),
            ("wechat.mch_id", Box::new(|c| c.wechat.mch_id.clear())),
            (
                "wechat.api_key",
                Box::new(|c| c.wechat.api_key = ApiKey::new("")),
            ),
            (
                "wechat.key_pem",
                Box::new(|c| c.wechat.cert_pem = Some("c.pem".into())),
            ),
            (
                "wechat.cert_pem",
                Box::new(|c| c.wechat.key_pem = Some("k.pem".into())),
            ),
            (
                "wechat.cert_p12",
                Box::new(|c| {
                    c.wechat.cert_pem = Some("c.pem".into());
                    c.wechat.key_pem = Some("k.pem".into());
                    c.wechat.cert_p12 = Some("c.p12".into());
                }),
            ),
            (
                "wechat.connect_timeout",
                Box::new(|c| c.wechat.connect_timeout = Duration::ZERO),
            ),
            (
                "wechat.read_timeout",
                Box::new(|c| c.wechat.read_timeout = Duration::ZERO),
            ),
            (
                "wechat.micropay_read_timeout",
                Box::new(|c| c.wechat.micropay_read_timeout = Duration::ZERO),
            ),
            (
                "payments.query_interval",
                Box::new(|c| c.payments.query_interval = Duration::ZERO),
            ),
            (
                "payments.wait_deadline",
                Box::new(|c| c.payments.wait_deadline = Duration::from_secs(45)),
            ),
            (
                "payments.wait_deadline",
                Box::new(|c| c.payments.wait_deadline = Duration::ZERO),
            ),
            (
                "payments.reverse_retry_base",
                Box::new(|c| c.payments.reverse_retry_base = Duration::ZERO),
            ),
            (
                "payments.attention_recheck_interval",
                Box::new(|c| c.payments.attention_recheck_interval = Duration::ZERO),
            ),
            (
                "payments.long_poll_max_wait",
                Box::new(|c| c.payments.long_poll_max_wait = Duration::ZERO),
            ),
            (
                "payments.max_amount_fen",
                Box::new(|c| c.payments.max_amount_fen = Fen(0)),
            ),
            (
                "payments.max_amount_fen",
                Box::new(|c| c.payments.max_amount_fen = Fen(MAX_PARSED.0 + 1)),
            ),
            (
                "payments.default_description",
                Box::new(|c| c.payments.default_description = "  ".into()),
            ),
            (
                "payments.default_description",
                Box::new(|c| c.payments.default_description = "商".repeat(43)),
            ),
            (
                "payments.reverse_max_attempts",
                Box::new(|c| c.payments.reverse_max_attempts = 0),
            ),
            (
                "payments.micropay_rate_per_second",
                Box::new(|c| c.payments.micropay_rate_per_second = 0),
            ),
            (
                "server.body_limit_bytes",
                Box::new(|c| c.server.body_limit_bytes = 10),
            ),
            (
                "server.instance",
                Box::new(|c| c.server.instance = Some("till 2".into())),
            ),
            (
                "server.instance",
                Box::new(|c| c.server.instance = Some(String::new())),
            ),
            (
                "store.database_url",
                Box::new(|c| c.store.database_url = Some("mysql://db/paycode".into())),
            ),
            (
                "store.database_url",
                Box::new(|c| c.store.database_url = Some("postgres://db:port/paycode".into())),
            ),
            ("store.pool_size", Box::new(|c| c.store.pool_size = 0)),
        ];
        for (expected_field, break_it) in cases {
            // Arrange
            let mut config = base();
            break_it(&mut config);
            // Act
            let result = config.validate().map(|()| config);
            // Assert
            let (field, _) = invalid_field(result);
            assert_eq!(field, expected_field);
        }
    }

    #[test]
    fn validation_errors_from_the_environment_name_the_variable() {
        let (field, _) =
            invalid_field(load(MINIMAL, &[("PAYCODE_PAYMENTS__WAIT_DEADLINE", "50s")]));
        assert_eq!(
            field,
            "payments.wait_deadline (from PAYCODE_PAYMENTS__WAIT_DEADLINE)"
        );
    }

    #[test]
    fn debug_and_display_never_show_the_api_key() {
        let config = load(MINIMAL, &[]).unwrap();
        for text in [format!("{config:?}"), config.to_string()] {
            assert!(!text.contains("192006250b4c09247ec02edce69f6a2d"), "{text}");
        }
    }

    const ACCOUNTS: &str = r#"
        [accounts.chain_b]
        appid = "wx1111111111111111"
        mch_id = 1900000110
        api_key = "b0b1b2b3b4b5b6b7b8b9bab0b1b2b3b4"
        cert_p12 = "certs/chain_b.p12"

        [accounts.vendor]
        provider = true
        appid = "wx2222222222222222"
        mch_id = "1900000200"
        api_key = "c0c1c2c3c4c5c6c7c8c9cac0c1c2c3c4"
        sign_type = "MD5"
    "#;

    #[test]
    fn the_single_wechat_file_is_one_direct_account() {
        let config = load(MINIMAL, &[]).unwrap();
        let accounts = config.accounts();
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].name, DEFAULT_ACCOUNT);
        assert_eq!(accounts[0].mch_id, "10000100");
        assert!(!accounts[0].provider);
    }

    #[test]
    fn accounts_load_beside_wechat_with_its_defaults_and_their_own_overrides() {
        let config = load(
            &format!("{MINIMAL}{ACCOUNTS}"),
            &[("PAYCODE_ACCOUNTS__VENDOR__API_KEY", "from-the-environment")],
        )
        .unwrap();
        let accounts = config.accounts();
        let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["default", "chain_b", "vendor"]);
        assert_eq!(accounts[1].mch_id, "1900000110");
        assert_eq!(
            accounts[1].sign_type,
            SignType::HmacSha256,
            "[wechat]'s sign_type"
        );
        assert!(!accounts[1].provider);
        assert!(accounts[2].provider);
        assert_eq!(accounts[2].sign_type, SignType::Md5);
        assert_eq!(accounts[2].api_key.expose(), "from-the-environment");
        let text = format!("{config:?} {config}");
        assert!(!text.contains("c0c1c2c3c4c5c6c7c8c9cac0c1c2c3c4"), "{text}");
        assert!(!text.contains("from-the-environment"), "{text}");
    }

    #[test]
    fn each_account_rule_names_its_field() {
        for (text, expected_field) in [
            (
                ACCOUNTS.replace("mch_id = \"1900000200\"", "mch_id = \"1900000110\""),
                "accounts.vendor.mch_id",
            ),
            (
                ACCOUNTS.replace("mch_id = \"1900000200\"", "mch_id = \"10000100\""),
                "accounts.vendor.mch_id",
            ),
            (
                ACCOUNTS.replace("[accounts.vendor]", "[accounts.default]"),
                "accounts.default",
            ),
            (
                ACCOUNTS.replace("[accounts.vendor]", "[accounts.Vendor-1]"),
                "accounts.Vendor-1",
            ),
            (
                ACCOUNTS.replace("mch_id = \"1900000200\"", "mch_id = \" \""),
                "accounts.vendor.mch_id",
            ),
            (
                ACCOUNTS.replace("cert_p12 = \"certs/chain_b.p12\"", "cert_pem = \"c.pem\""),
                "accounts.chain_b.key_pem",
            ),
            (
                ACCOUNTS.replace("sign_type = \"MD5\"", "sign_type = \"SHA1\""),
                "accounts.vendor.sign_type",
            ),
            (
                ACCOUNTS.replace("provider = true", "provider = true\nsub_mch_id = 1"),
                "accounts.vendor.sub_mch_id",
            ),
        ] {
            let (field, _) = invalid_field(load(&format!("{MINIMAL}{text}"), &[]));
            assert_eq!(field, expected_field, "{text}");
        }
    }

    #[test]
    fn a_postgres_url_selects_postgresql_and_its_password_never_shows() {
        let config = load(
            MINIMAL,
            &[
                (
                    "PAYCODE_STORE__DATABASE_URL",
                    "postgres://paycode:s3cret-pw@db.internal:6543/shop",
                ),
                ("PAYCODE_STORE__POOL_SIZE", "20"),
            ],
        )
        .unwrap();
        assert_eq!(config.store.backend(), StoreBackend::Postgres);
        assert_eq!(config.store.pool_size, 20);
        assert_eq!(config.store.describe(), "PostgreSQL db.internal:6543/shop");
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert!(
            debug.contains("postgres://paycode:***@db.internal:6543/shop"),
            "{debug}"
        );
        let sqlite = load(MINIMAL, &[]).unwrap();
        assert_eq!(sqlite.store.backend(), StoreBackend::Sqlite);
        assert_eq!(sqlite.store.describe(), "SQLite data/paycode.sqlite");
    }

    #[test]
    fn utc_offsets_parse() {
        for (text, seconds) in [
            ("+08:00", 28_800),
            ("+8", 28_800),
            ("-0530", -19_800),
            ("Z", 0),
        ] {
            assert_eq!(
                de::parse_utc_offset(text).map(|offset| offset.local_minus_utc()),
                Some(seconds),
                "{text}"
            );
        }
        for text in ["08:00", "+15:00", "+08:60", "+", "+8:0:0", "Asia/Shanghai"] {
            assert_eq!(de::parse_utc_offset(text), None, "{text}");
        }
    }

    #[test]
    fn books_settings_have_defaults_and_bad_ones_name_their_field() {
        let config = load(MINIMAL, &[]).unwrap();
        assert!(config.books.daily_run);
        assert_eq!(config.books.run_at.to_string(), "10:30:00");
        assert_eq!(config.books.retry_after, Duration::from_secs(1800));
        let set = load(
            &format!("{MINIMAL}\n[books]\nrun_at = \"11:05\"\nretry_after = \"5m\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(set.books.run_at.to_string(), "11:05:00");
        assert_eq!(set.books.retry_after, Duration::from_secs(300));
        for (toml, field) in [
            ("run_at = \"25:00\"", "books.run_at"),
            ("retry_after = \"0s\"", "books.retry_after"),
            ("carry_over_edge = \"2h\"", "books.carry_over_edge"),
        ] {
            let error = load(&format!("{MINIMAL}\n[books]\n{toml}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{toml}: {error}");
        }
    }

    #[test]
    fn business_days_follow_the_shop_offset() {
        let shop = ShopConfig::default();
        // 2024-03-01T16:30:00Z is 00:30 on 2 March in Beijing.
        let at = Millis(1_709_310_600_000);
        assert_eq!(
            shop.business_day(at),
            NaiveDate::from_ymd_opt(2024, 3, 2).unwrap()
        );
    }
}
