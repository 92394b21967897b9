//! The async WeChat Pay v2 client: signing, one careful HTTP exchange, fail-over, verification.
//!
//! [`Client::execute`] does all the protocol work around a [`Params`] request: it adds the
//! merchant fields, a fresh `nonce_str` and the signature, POSTs the XML, and turns whatever
//! comes back into either verified reply [`Params`] or an [`Error`] that says whether the
//! request may have reached WeChat. Typed messages are built on top of it.
//!
//! # Layout
//! - [`config`]: [`ClientConfig`], hosts, timeouts, certificate, sandbox switch.
//! - [`hosts`]: [`HostSelector`], the primary/backup fail-over rules of docs/wechat-pay.md §10.
//! - [`identity`]: [`ClientIdentity`], the merchant API certificate for `/secapi/*`.
//! - [`sandbox`]: the `/xdc/apiv2sandbox` prefix and the sandbox sign key.
//! - `transport` (private): one HTTP exchange and the classification of its failures.
//! - `reply` (private): reading a reply body in the order docs/wechat-pay.md §2.2 prescribes.
//!
//! # Resending
//! A call is sent at most twice, and only when the first attempt certainly did not leave: a
//! DNS or connect failure on one host resends the identical request to the other host. A
//! timeout, a reset or any reply, however odd, is returned to the caller, who must query
//! before doing anything else (docs/wechat-pay.md §7). In the sandbox, a signature refusal additionally
//! refreshes the sandbox key and resends once: WeChat refused that request outright.

pub mod config;
pub mod hosts;
pub mod identity;
mod reply;
pub mod sandbox;
mod transport;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng as _;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use url::Url;

pub use config::ClientConfig;
pub use hosts::{Host, HostOutcome, HostSelector, HostStats};
pub use identity::{CertificateInfo, ClientIdentity, IdentityError};

use crate::codes::Api;
use crate::error::{BadReply, CallOutcome, Error, NotSent, Result};
use crate::messages::{Bill, DownloadBillRequest, Request, Response};
use crate::params::Params;
use crate::sign::{self, ApiKey, SignType};
use crate::xml;
use transport::{ClassifyingResolver, Failure};

/// The largest `downloadbill` reply read: a busy merchant's daily CSV runs to megabytes,
/// far above the XML limit [`xml::MAX_BODY_BYTES`].
pub const MAX_BILL_BYTES: usize = 64 * 1024 * 1024;

/// The length of every generated `nonce_str` (the field's maximum).
pub const NONCE_LEN: usize = 32;

/// Per-call options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Overrides [`ClientConfig::read_timeout`] for this call: micropay may wait for the
    /// customer longer than a query should.
    pub read_timeout: Option<Duration>,
}

impl CallOptions {
    /// Options with a read timeout for this call.
    pub fn with_read_timeout(read_timeout: Duration) -> CallOptions {
        CallOptions {
            read_timeout: Some(read_timeout),
        }
    }
}

/// Why a [`Client`] could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// A base URL is not an `http`/`https` URL with a host and without query or fragment.
    #[error("base URL {url} is not usable: {problem}")]
    BaseUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An extra root certificate is not valid PEM.
    #[error("extra root certificate #{index} is not a valid PEM certificate: {reason}")]
    RootCertificate {
        /// Its position in [`ClientConfig::extra_root_certificates`].
        index: usize,
        /// What the TLS layer said.
        reason: String,
    },
    /// The client certificate could not be handed to the TLS layer.
    #[error("the client certificate is not usable: {0}")]
    Identity(#[from] IdentityError),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
}

/// The WeChat Pay v2 client. Cheap to clone: clones share one connection pool, one fail-over
/// state and one sandbox key cache.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    /// Shared with every [`Client::for_sub_merchant`] client of the same merchant: they use
    /// the same hosts, so one fail-over state serves them all.
    hosts: Arc<Mutex<HostSelector>>,
    sandbox_key: Arc<sandbox::SignKeyCache>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("appid", &self.inner.config.appid)
            .field("mch_id", &self.inner.config.mch_id)
            .field("sandbox", &self.inner.config.sandbox)
            .field("current_host", &self.current_host())
            .finish_non_exhaustive()
    }
}

/// What one public call did, for its single debug event.
#[derive(Default)]
struct CallTrace {
    /// The host of the last attempt.
    host: Option<Host>,
    /// How many HTTP exchanges the call made (including `getsignkey` and resends).
    exchanges: u32,
    /// Whether an unreachable host made the call resend to the other host.
    failed_over: bool,
    /// Whether the sandbox refused the cached key and the call resent with a fresh one.
    sandbox_key_refreshed: bool,
}

impl Client {
    /// Builds the client and its HTTP connection pool.
    ///
    /// The HTTP client connects directly (no proxy: a proxy would turn "could not connect"
    /// into an HTTP error after sending and blur the sent/not-sent line), follows no
    /// redirects (a POST must not silently become a GET, and the sandbox redirects over-quota
    /// calls to an HTML page), trusts the built-in web PKI roots plus
    /// [`ClientConfig::extra_root_certificates`], and presents the client certificate, if
    /// any, to every host. A client certificate outside its validity period is refused.
    pub fn new(config: ClientConfig) -> std::result::Result<Client, ClientBuildError> {
        check_base_url(&config.primary_base_url)?;
        if let Some(backup) = &config.backup_base_url {
            check_base_url(backup)?;
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .dns_resolver(Arc::new(ClassifyingResolver))
            .user_agent(config.user_agent.as_str());
        for (index, pem) in config.extra_root_certificates.iter().enumerate() {
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|error| {
                    ClientBuildError::RootCertificate {
                        index,
                        reason: error.to_string(),
                    }
                })?;
            if certificates.is_empty() {
                return Err(ClientBuildError::RootCertificate {
                    index,
                    reason: "no certificate in the PEM text".into(),
                });
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(identity) = &config.identity {
            // Refuse an expired (or not yet valid) certificate now rather than as a handshake
            // failure on the first refund.
            identity.check_validity(chrono::Utc::now())?;
            builder = builder.identity(identity.to_reqwest()?);
        }
        let http = builder
            .build()
            .map_err(|error| ClientBuildError::Http(error.to_string()))?;
        let hosts = HostSelector::with_switch_back_after(config.switch_back_after);
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                http,
                hosts: Arc::new(Mutex::new(hosts)),
                sandbox_key: Arc::default(),
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The same merchant calling for another sub-merchant (service-provider mode,
    /// docs/wechat-pay.md §11): `sub_mch_id` and `sub_appid` replaced (`None` or empty: not
    /// sent), everything else kept. The new client shares this one's connection pool,
    /// fail-over state and sandbox key, since the provider's key signs and the provider's
    /// certificate authenticates every sub-merchant's calls.
    pub fn for_sub_merchant(&self, sub_mch_id: Option<&str>, sub_appid: Option<&str>) -> Client {
        let mut config = self.inner.config.clone();
        let non_empty = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
        config.sub_mch_id = non_empty(sub_mch_id);
        config.sub_appid = non_empty(sub_appid);
        Client {
            inner: Arc::new(Inner {
                config,
                http: self.inner.http.clone(),
                hosts: Arc::clone(&self.inner.hosts),
                sandbox_key: Arc::clone(&self.inner.sandbox_key),
            }),
        }
    }

    /// Calls `api` with the business fields in `params` and returns the verified reply.
    ///
    /// The client adds `appid`, `mch_id`, `sub_appid`/`sub_mch_id` (when configured),
    /// a fresh 32-character `nonce_str`, `sign_type` (when not MD5) and `sign`, replacing any
    /// values `params` had for them. The reply is accepted only if `return_code=SUCCESS`, its
    /// signature verifies with the request's sign type, and (on APIs that have it)
    /// `result_code=SUCCESS`; see [`Error`] for everything else.
    ///
    /// `downloadbill` answers CSV, not XML: use [`download_bill_raw`](Self::download_bill_raw).
    /// `getsignkey` is the client's own business in the sandbox.
    pub async fn execute(&self, api: Api, params: Params, options: CallOptions) -> Result<Params> {
        let started = Instant::now();
        let mut trace = CallTrace::default();
        let result = self.execute_traced(api, params, options, &mut trace).await;
        self.log_call(api, started, &trace, &result);
        result
    }

    /// Sends a typed request and reads the verified reply into its typed response.
    ///
    /// ```no_run
    /// # async fn example(client: wxpay::Client) -> wxpay::Result<()> {
    /// use paycode_api::{AuthCode, Fen};
    /// use wxpay::messages::{MicropayRequest, OutTradeNo};
    ///
    /// let order = OutTradeNo::new("P20261128T1A0001").expect("a valid order number");
    /// let code = AuthCode::parse("134567890123455678").expect("a WeChat payment code");
    /// let request = MicropayRequest::new(order, Fen(1230), code, "小张南山店-超市", "192.168.1.20");
    /// match client.call(&request).await {
    ///     Ok(paid) => println!("paid: {}", paid.transaction_id),
    ///     // USERPAYING, SYSTEMERROR (business errors of class Unknown), timeouts…: the outcome
    ///     // is unknown, so query, never resend.
    ///     Err(error)
    ///         if error.is_outcome_unknown()
    ///             || error.class(wxpay::Api::Micropay) == wxpay::ErrorClass::Unknown =>
    ///     {
    ///         println!("query {}", request.out_trade_no)
    ///     }
    ///     Err(error) => println!("not paid: {error}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response> {
        self.call_with(request, CallOptions::default()).await
    }

    /// [`call`](Self::call) with per-call options (a read timeout for micropay, say).
    pub async fn call_with<R: Request>(
        &self,
        request: &R,
        options: CallOptions,
    ) -> Result<R::Response> {
        let reply = self.execute(R::API, request.to_params(), options).await?;
        Ok(R::Response::from_params(reply)?)
    }

    /// Downloads and parses a day's bill, gzipped on the wire (`tar_type=GZIP`,
    /// docs/books.md §1).
    pub async fn download_bill(
        &self,
        request: &DownloadBillRequest,
        options: CallOptions,
    ) -> Result<Bill> {
        let mut params = request.to_params();
        params.insert("tar_type", "GZIP");
        let body = self.download_bill_raw(params, options).await?;
        Ok(Bill::parse_bytes(&body).map_err(BadReply::Bill)?)
    }

    /// Downloads a bill (`/pay/downloadbill`, docs/wechat-pay.md §3.7) and returns its
    /// bytes: CSV text, or with `tar_type=GZIP` a gzip file ([`Bill::parse_bytes`] reads
    /// both).
    ///
    /// `params` carries `bill_date` (`yyyyMMdd`) and optionally `bill_type` and `tar_type`.
    /// An XML reply is WeChat's error (`return_code=FAIL`, e.g. "No Bill Exist") and becomes
    /// [`Error::Protocol`] with the `error_code` appended. The bill is not signed; it is read
    /// up to [`MAX_BILL_BYTES`].
    pub async fn download_bill_raw(&self, params: Params, options: CallOptions) -> Result<Vec<u8>> {
        let started = Instant::now();
        let mut trace = CallTrace::default();
        let timeout = self.timeout(options);
        let result = self
            .call_signed_with_key_retry(
                Api::DownloadBill,
                params,
                timeout,
                MAX_BILL_BYTES,
                &mut trace,
                |body, _key, _sign_type| reply::bill_from_body(body),
            )
            .await;
        self.log_call(Api::DownloadBill, started, &trace, &result);
        result
    }

    /// The key requests are signed with: the API key, or in the sandbox the sandbox sign key
    /// (fetched if not cached yet). Refund notifications' `req_info` is encrypted with it.
    pub async fn signing_key(&self) -> Result<ApiKey> {
        if !self.inner.config.sandbox {
            return Ok(self.inner.config.api_key.clone());
        }
        let mut trace = CallTrace::default();
        self.sandbox_key(None, &mut trace).await
    }

    /// The host the next call will go to first.
    pub fn current_host(&self) -> Host {
        if self.inner.config.backup_base_url.is_none() {
            return Host::Primary;
        }
        self.hosts().peek(Instant::now())
    }

    /// The base URL of `host` (the primary's when no backup is configured).
    pub fn base_url(&self, host: Host) -> &Url {
        match (host, &self.inner.config.backup_base_url) {
            (Host::Backup, Some(backup)) => backup,
            _ => &self.inner.config.primary_base_url,
        }
    }

    /// The fail-over counters of `host`, for metrics.
    pub fn host_stats(&self, host: Host) -> HostStats {
        self.hosts().stats(host)
    }

    async fn execute_traced(
        &self,
        api: Api,
        params: Params,
        options: CallOptions,
        trace: &mut CallTrace,
    ) -> Result<Params> {
        match api {
            Api::DownloadBill => {
                return Err(NotSent::Build(
                    "downloadbill replies are CSV; use Client::download_bill_raw".into(),
                )
                .into());
            }
            Api::GetSignKey => {
                return Err(NotSent::Build(
                    "getsignkey is called by the client itself in sandbox mode".into(),
                )
                .into());
            }
            _ => {}
        }
        if api.needs_client_certificate() && self.inner.config.identity.is_none() {
            return Err(NotSent::Build(format!(
                "{} ({}) needs the merchant API client certificate: set ClientConfig::identity \
                 from apiclient_cert.p12 (password = mch_id) or apiclient_cert.pem + apiclient_key.pem",
                api.name(),
                api.path()
            ))
            .into());
        }
        let timeout = self.timeout(options);
        self.call_signed_with_key_retry(
            api,
            params,
            timeout,
            xml::MAX_BODY_BYTES,
            trace,
            move |body, key, sign_type| {
                reply::check_reply(api, reply::parse_body(body)?, key, sign_type)
            },
        )
        .await
    }

    /// Signs, sends and interprets one call; in the sandbox, refreshes the sandbox key and
    /// resends once if the sandbox refused the signature.
    async fn call_signed_with_key_retry<T>(
        &self,
        api: Api,
        params: Params,
        timeout: Duration,
        max_body: usize,
        trace: &mut CallTrace,
        interpret: impl Fn(&[u8], &ApiKey, SignType) -> Result<T>,
    ) -> Result<T> {
        if !self.inner.config.sandbox {
            let key = self.inner.config.api_key.clone();
            let sign_type = self.inner.config.sign_type;
            let body = self.prepare(params, &key, sign_type);
            let reply = self.send(api, &body, timeout, max_body, trace).await?;
            return interpret(&reply, &key, sign_type);
        }
        // The sandbox signs with MD5 only, as the official SDK forces.
        let key = self.sandbox_key(None, trace).await?;
        let body = self.prepare(params.clone(), &key, SignType::Md5);
        let reply = self.send(api, &body, timeout, max_body, trace).await?;
        match interpret(&reply, &key, SignType::Md5) {
            Err(Error::Protocol { return_msg }) if sandbox::is_sign_key_rejection(&return_msg) => {
                trace.sandbox_key_refreshed = true;
                let fresh = self.sandbox_key(Some(&key), trace).await?;
                let body = self.prepare(params, &fresh, SignType::Md5);
                let reply = self.send(api, &body, timeout, max_body, trace).await?;
                interpret(&reply, &fresh, SignType::Md5)
            }
            other => other,
        }
    }

    /// The cached sandbox key, fetched when missing or when `stale` is the cached one.
    ///
    /// Any failure to get it is reported as [`NotSent::Build`]: the business request that
    /// needed it was never sent, whatever happened to the `getsignkey` call.
    async fn sandbox_key(&self, stale: Option<&ApiKey>, trace: &mut CallTrace) -> Result<ApiKey> {
        let config = &self.inner.config;
        self.inner
            .sandbox_key
            .get(stale, || async move {
                let request =
                    sandbox::sign_key_request(&config.mch_id, &new_nonce_str(), &config.api_key);
                let reply = self
                    .send(
                        Api::GetSignKey,
                        &xml::encode(&request),
                        config.read_timeout,
                        xml::MAX_BODY_BYTES,
                        trace,
                    )
                    .await?;
                sandbox::sign_key_from_reply(&reply::parse_body(&reply)?)
            })
            .await
            .map_err(|error| {
                NotSent::Build(format!("could not get the sandbox sign key: {error}")).into()
            })
    }

    /// The request body: `params` plus the merchant fields, nonce, sign type and signature.
    fn prepare(&self, mut params: Params, key: &ApiKey, sign_type: SignType) -> String {
        let config = &self.inner.config;
        params.insert("appid", config.appid.as_str());
        params.insert("mch_id", config.mch_id.as_str());
        params.insert_opt("sub_appid", config.sub_appid.as_deref());
        params.insert_opt("sub_mch_id", config.sub_mch_id.as_deref());
        params.insert("nonce_str", new_nonce_str());
        params.remove("sign");
        // `sign_type` takes part in the signature, so it is set before signing; MD5 is
        // WeChat's default and is sent without it, as the official SDK does.
        params.remove("sign_type");
        if sign_type != SignType::Md5 {
            params.insert("sign_type", sign_type.as_str());
        }
        let signature = sign::sign(&params, key, sign_type);
        params.insert("sign", signature);
        xml::encode(&params)
    }

    /// One exchange on the chosen host and, only if that host could not be reached, one more
    /// on the other host.
    async fn send(
        &self,
        api: Api,
        body: &str,
        timeout: Duration,
        max_body: usize,
        trace: &mut CallTrace,
    ) -> Result<Vec<u8>> {
        let has_backup = self.inner.config.backup_base_url.is_some();
        let first_host = if has_backup {
            self.hosts().choose(Instant::now())
        } else {
            Host::Primary
        };
        let mut host = first_host;
        let mut outcome = self
            .attempt(host, api, body, timeout, max_body, trace)
            .await;
        if let Err(failure) = &outcome {
            if failure.is_unreachable() && has_backup {
                trace.failed_over = true;
                host = first_host.other();
                outcome = self
                    .attempt(host, api, body, timeout, max_body, trace)
                    .await;
            }
        }
        outcome.map_err(|failure| {
            let host_name = self
                .base_url(host)
                .host_str()
                .unwrap_or_default()
                .to_owned();
            failure.into_error(&host_name, timeout, max_body)
        })
    }

    async fn attempt(
        &self,
        host: Host,
        api: Api,
        body: &str,
        timeout: Duration,
        max_body: usize,
        trace: &mut CallTrace,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let url = sandbox::endpoint(self.base_url(host), api, self.inner.config.sandbox);
        trace.host = Some(host);
        trace.exchanges += 1;
        let outcome = transport::exchange(&self.inner.http, &url, body, timeout, max_body).await;
        let health = match &outcome {
            Ok(_) => Some(HostOutcome::Success),
            Err(failure) => failure.host_outcome(),
        };
        if let (Some(health), Some(_)) = (health, &self.inner.config.backup_base_url) {
            self.hosts().report(host, health);
        }
        outcome
    }

    fn timeout(&self, options: CallOptions) -> Duration {
        options
            .read_timeout
            .unwrap_or(self.inner.config.read_timeout)
    }

    fn hosts(&self) -> MutexGuard<'_, HostSelector> {
        // The selector holds plain counters that are valid after any panic, so a poisoned
        // lock is safe to keep using.
        self.inner
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The one debug event per call. It names the API, host, duration and outcome class,
    /// and never the key, the signature, the auth code or any body.
    fn log_call<T>(&self, api: Api, started: Instant, trace: &CallTrace, result: &Result<T>) {
        let host = trace.host.unwrap_or(Host::Primary);
        let outcome = CallOutcome::of(result).as_str();
        let err_code = match result {
            Err(Error::Business(business)) => Some(business.err_code.as_str()),
            _ => None,
        };
        tracing::debug!(
            api = api.name(),
            host = host.name(),
            host_name = self.base_url(host).host_str().unwrap_or_default(),
            exchanges = trace.exchanges,
            failed_over = trace.failed_over,
            sandbox_key_refreshed = trace.sandbox_key_refreshed,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome,
            err_code,
            "wechat pay call"
        );
    }
}

/// A fresh `nonce_str`: 32 characters from `[0-9A-Za-z]`, drawn from the operating system's
/// CSPRNG.
pub fn new_nonce_str() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(NONCE_LEN)
        .map(char::from)
        .collect()
}

fn check_base_url(url: &Url) -> std::result::Result<(), ClientBuildError> {
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some("the scheme must be https (or http for local tests)")
    } else if url.host_str().is_none() {
        Some("there is no host")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("a base URL cannot have a query or fragment")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ClientBuildError::BaseUrl {
            url: url.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_32_alphanumeric_characters_and_differ() {
        let first = new_nonce_str();
        let second = new_nonce_str();
        assert_eq!(first.len(), NONCE_LEN);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()), "{first}");
        assert_ne!(first, second);
    }

    fn config() -> ClientConfig {
        let mut config = ClientConfig::new(
            "wx2421b1c4370ec43b",
            "10000100",
            ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
        );
        config.sub_mch_id = Some("1900000109".into());
        config.sub_appid = Some(String::new());
        config
    }

    #[test]
    fn prepared_requests_carry_merchant_fields_nonce_and_a_valid_signature() {
        // Arrange
        let client = Client::new(config()).unwrap();
        let mut params = Params::new();
        params
            .insert("out_trade_no", "1415757673")
            .insert("sign", "stale")
            .insert("sign_type", "MD5");
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        // Act
        let body = client.prepare(params, &key, SignType::HmacSha256);
        // Assert
        let sent = xml::decode(body.as_bytes()).unwrap();
        assert_eq!(sent.get("appid"), Some("wx2421b1c4370ec43b"));
        assert_eq!(sent.get("mch_id"), Some("10000100"));
        assert_eq!(sent.get("sub_mch_id"), Some("1900000109"));
        assert!(!sent.contains("sub_appid"), "empty sub_appid is not sent");
        assert_eq!(sent.get("sign_type"), Some("HMAC-SHA256"));
        assert_eq!(sent.get("nonce_str").map(str::len), Some(NONCE_LEN));
        assert_eq!(sign::verify(&sent, &key, SignType::HmacSha256), Ok(()));
        // MD5 requests carry no sign_type at all.
        let md5 = xml::decode(
            client
                .prepare(Params::new(), &key, SignType::Md5)
                .as_bytes(),
        )
        .unwrap();
        assert!(!md5.contains("sign_type"));
        assert_eq!(sign::verify(&md5, &key, SignType::Md5), Ok(()));
    }

    #[test]
    fn a_sub_merchant_client_sends_its_own_sub_fields_under_the_same_merchant() {
        let provider = Client::new(config()).unwrap();
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let store = provider.for_sub_merchant(Some("1900000110"), Some("wxsub"));
        let sent =
            xml::decode(store.prepare(Params::new(), &key, SignType::Md5).as_bytes()).unwrap();
        assert_eq!(sent.get("mch_id"), Some("10000100"));
        assert_eq!(sent.get("sub_mch_id"), Some("1900000110"));
        assert_eq!(sent.get("sub_appid"), Some("wxsub"));
        let direct = provider.for_sub_merchant(None, Some(""));
        let sent = xml::decode(
            direct
                .prepare(Params::new(), &key, SignType::Md5)
                .as_bytes(),
        )
        .unwrap();
        assert!(!sent.contains("sub_mch_id") && !sent.contains("sub_appid"));
        assert!(Arc::ptr_eq(&provider.inner.hosts, &direct.inner.hosts));
    }

    #[test]
    fn base_urls_are_checked() {
        let mut bad = config();
        bad.primary_base_url = Url::parse("ftp://api.mch.weixin.qq.com").unwrap();
        assert!(matches!(
            Client::new(bad),
            Err(ClientBuildError::BaseUrl { .. })
        ));
        let mut query = config();
        query.backup_base_url = Some(Url::parse("https://api2.mch.weixin.qq.com/?a=1").unwrap());
        assert!(matches!(
            Client::new(query),
            Err(ClientBuildError::BaseUrl { .. })
        ));
        let mut roots = config();
        roots.extra_root_certificates = vec!["not a certificate".into()];
        assert!(matches!(
            Client::new(roots),
            Err(ClientBuildError::RootCertificate { index: 0, .. })
        ));
    }

    #[tokio::test]
    async fn secapi_calls_without_a_certificate_are_not_sent() {
        let client = Client::new(config()).unwrap();
        let error = client
            .execute(Api::Reverse, Params::new(), CallOptions::default())
            .await
            .unwrap_err();
        let Error::NotSent(NotSent::Build(message)) = error else {
            panic!("expected NotSent::Build, got {error:?}");
        };
        assert!(message.contains("client certificate"), "{message}");
        for api in [Api::DownloadBill, Api::GetSignKey] {
            assert!(matches!(
                client
                    .execute(api, Params::new(), CallOptions::default())
                    .await,
                Err(Error::NotSent(NotSent::Build(_)))
            ));
        }
    }

    #[test]
    fn a_client_certificate_and_extra_roots_are_accepted() {
        // Arrange: a CA for "the simulator" and a merchant certificate, both generated here.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let merchant_key = rcgen::KeyPair::generate().unwrap();
        let mut merchant_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        merchant_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "10000100");
        let merchant = merchant_params.self_signed(&merchant_key).unwrap();
        let identity = ClientIdentity::from_pem(
            merchant.pem().as_bytes(),
            merchant_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let mut config = config();
        config.identity = Some(identity);
        config.extra_root_certificates = vec![ca.pem()];
        // Act & Assert
        assert!(Client::new(config).is_ok());
    }

    #[test]
    fn the_current_host_starts_on_the_primary() {
        let client = Client::new(config()).unwrap();
        assert_eq!(client.current_host(), Host::Primary);
        assert_eq!(
            client.base_url(Host::Backup).as_str(),
            "https://api2.mch.weixin.qq.com/"
        );
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("192006250b4c09247ec02edce69f6a2d"),
            "{debug}"
        );
    }
}
