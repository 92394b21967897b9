//! A WeChat Pay v2 simulator: an HTTPS server that speaks the same protocol as
//! `api.mch.weixin.qq.com`, for demos and tests (feature `sim`).
//!
//! It verifies signatures with the crate's own [`sign`](crate::sign) module, keeps a ledger
//! per merchant (orders, refunds, single-use payment codes), auto-revokes unpaid orders after
//! 45 simulated seconds, requires the merchant's client certificate on `/secapi/*` (answering
//! nginx's HTML 400 page without one, as the real gateway does), and picks each customer's
//! behaviour from the payment code (see [`behaviour`] for the table, also in
//! `wxpay/SIMULATOR.md`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), wxpay::sim::SimError> {
//! use wxpay::sim::{Behaviour, Simulator, auth_code_for};
//!
//! let sim = Simulator::builder()
//!     .merchant("wxd930ea5d5a258f4f", "10000100", "192006250b4c09247ec02edce69f6a2d")
//!     .time_scale(1000.0)
//!     .start()
//!     .await?;
//! let code = auth_code_for(Behaviour::PasswordWaits);
//! // … point a client at sim.primary_url(), trusting sim.ca_pem() …
//! sim.confirm_password("order-1").ok();
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`clock`] (simulated time), [`behaviour`] (the customer table), `pki`
//! (certificates), `server` (TLS accept loops and connection faults), `handlers` (one file
//! per endpoint), `ledger` (the books), [`faults`] (injected faults), `control` (the JSON
//! control API under `/_sim/`), `phone` (the customer phone page), `bill` (the daily
//! bills, both formats) and [`discrepancy`] (differences injected for reconciliation tests,
//! docs/books.md §6).
//!
//! Two listeners (primary and backup, like `api.mch` and `api2.mch`) share one state. The
//! control API is served on both, needs no client certificate, and has the same operations
//! as the methods of [`SimHandle`].

pub mod behaviour;
mod bill;
pub mod cli;
pub mod clock;
mod control;
pub mod discrepancy;
pub mod faults;
mod handlers;
mod ledger;
mod phone;
mod pki;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::codes::Api;
use crate::sign::ApiKey;

pub use behaviour::{Behaviour, auth_code_for, is_wechat_auth_code};
pub use bill::BillFormat;
pub use clock::SimClock;
pub use control::ControlError;
pub use discrepancy::{Discrepancy, DiscrepancyKind, Injection};
pub use faults::{Fault, PendingFault};
pub use ledger::{CallRecord, Host, OrderView, PendingPrompt, RefundView};
pub use pki::{CertFiles, ClientIdentity};

/// The appid of the default merchant, used when the builder is given none.
pub const DEMO_APPID: &str = "wxd930ea5d5a258f4f";
/// The mch_id of the default merchant.
pub const DEMO_MCH_ID: &str = "10000100";
/// The API key of the default merchant (the key of the spec's published test vector).
pub const DEMO_API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Generating or encoding a certificate failed.
    #[error("certificate generation failed: {0}")]
    Pki(String),
    /// Writing a certificate file failed.
    #[error("cannot write {path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        message: String,
    },
    /// The TLS configuration was rejected.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// The builder's configuration is inconsistent (e.g. a duplicate mch_id).
    #[error("invalid simulator configuration: {0}")]
    Config(String),
}

/// A merchant the simulator knows: appid, merchant number and APIv2 key; for a service
/// provider (服务商), also the sub-merchants bound to it.
#[derive(Clone, Debug)]
pub struct Merchant {
    /// The appid bound to the merchant.
    pub appid: String,
    /// The merchant number.
    pub mch_id: String,
    /// The APIv2 key requests must be signed with.
    pub key: ApiKey,
    /// The sandbox sign key handed out by getsignkey (generated at start).
    pub sandbox_key: ApiKey,
    /// Whether this is a service provider: its calls must carry one of `sub_mch_ids`
    /// (docs/wechat-pay.md §11).
    pub provider: bool,
    /// The sub-merchants bound to this provider (empty for a direct merchant).
    pub sub_mch_ids: Vec<String>,
    /// The format of this account's bills (docs/books.md §1).
    pub bill_format: BillFormat,
}

/// A merchant as added to the builder.
#[derive(Clone, Debug)]
struct MerchantSpec {
    appid: String,
    mch_id: String,
    key: ApiKey,
    provider: bool,
    sub_mch_ids: Vec<String>,
    bill_format: BillFormat,
}

/// Configures and starts a simulator. Created by [`Simulator::builder`].
#[derive(Clone, Debug)]
pub struct Simulator {
    merchants: Vec<MerchantSpec>,
    listen: SocketAddr,
    backup_listen: SocketAddr,
    cert_dir: Option<PathBuf>,
    time_scale: f64,
    start_time: Option<DateTime<Utc>>,
    slow_reply_delay: Duration,
    refund_delay: Duration,
    refund_spacing: Duration,
    bill_ready_at: chrono::NaiveTime,
    demo_bill_format: BillFormat,
}

impl Simulator {
    /// A builder with defaults: both listeners on `127.0.0.1:0`, real-time clock starting
    /// now, no certificate directory, 15 s slow-reply delay, 60 s refund completion, 60 s
    /// between two refund applications of one order, bills ready at 10:00 Beijing time the
    /// next day, and the demo merchant if no merchant is added.
    pub fn builder() -> Simulator {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Simulator {
            merchants: Vec::new(),
            listen: loopback,
            backup_listen: loopback,
            cert_dir: None,
            time_scale: 1.0,
            start_time: None,
            slow_reply_delay: Duration::from_secs(15),
            refund_delay: Duration::from_secs(60),
            refund_spacing: DEFAULT_REFUND_SPACING,
            bill_ready_at: DEFAULT_BILL_READY_AT,
            demo_bill_format: BillFormat::default(),
        }
    }

    /// The simulator that demo mode, `paycode-proxy sim`/`wxpay-sim` and every test harness
    /// start: both hosts on free loopback ports, and the certificates (`ca.pem`,
    /// `apiclient_cert.pem`, `apiclient_key.pem`, `apiclient_cert.p12`) written into
    /// `cert_dir`, so that a proxy can be configured from the files. The merchant is the demo
    /// merchant ([`DEMO_APPID`], [`DEMO_MCH_ID`], [`DEMO_API_KEY`]) unless one is added with
    /// [`Simulator::merchant`]; every other setting is the [`Simulator::builder`] default
    /// and can be changed before [`Simulator::start`].
    pub fn local(cert_dir: impl Into<PathBuf>) -> Simulator {
        Simulator::builder().cert_dir(cert_dir)
    }

    /// Adds a merchant. The first one added is the "primary" merchant whose certificate
    /// files are written at the top of the certificate directory.
    pub fn merchant(
        mut self,
        appid: impl Into<String>,
        mch_id: impl Into<String>,
        key: impl Into<String>,
    ) -> Simulator {
        self.merchants.push(MerchantSpec {
            appid: appid.into(),
            mch_id: mch_id.into(),
            key: ApiKey::new(key),
            provider: false,
            sub_mch_ids: Vec::new(),
            bill_format: BillFormat::default(),
        });
        self
    }

    /// Adds a service provider (服务商) with the sub-merchants bound to it: its calls must
    /// name one of them in `sub_mch_id`, are signed with the provider's key and use the
    /// provider's client certificate (docs/wechat-pay.md §11). Each sub-merchant has its
    /// own books.
    pub fn provider(
        mut self,
        appid: impl Into<String>,
        mch_id: impl Into<String>,
        key: impl Into<String>,
        sub_mch_ids: &[&str],
    ) -> Simulator {
        self.merchants.push(MerchantSpec {
            appid: appid.into(),
            mch_id: mch_id.into(),
            key: ApiKey::new(key),
            provider: true,
            sub_mch_ids: sub_mch_ids.iter().map(|id| (*id).to_owned()).collect(),
            bill_format: BillFormat::default(),
        });
        self
    }

    /// The bill format of the merchant (or provider) added last, or of the demo merchant
    /// when none is added: [`BillFormat::Settlement`] unless set here (docs/books.md §1).
    /// Call it right after [`Simulator::merchant`] or [`Simulator::provider`].
    pub fn bill_format(mut self, format: BillFormat) -> Simulator {
        match self.merchants.last_mut() {
            Some(merchant) => merchant.bill_format = format,
            None => self.demo_bill_format = format,
        }
        self
    }

    /// The time of day (Beijing, simulated clock) from which day D's bill can be downloaded
    /// on day D+1; before it, downloadbill answers `Bill Creating`. Default 10:00, when
    /// WeChat advises fetching (it starts making bills at 09:00; docs/books.md §1).
    pub fn bill_ready_at(mut self, time: chrono::NaiveTime) -> Simulator {
        self.bill_ready_at = time;
        self
    }

    /// Where the primary host listens (port 0 picks a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Simulator {
        self.listen = addr;
        self
    }

    /// Where the backup host listens (port 0 picks a free port).
    pub fn backup_listen(mut self, addr: SocketAddr) -> Simulator {
        self.backup_listen = addr;
        self
    }

    /// Writes `ca.pem`, `apiclient_cert.pem`, `apiclient_key.pem` and `apiclient_cert.p12`
    /// into `dir` (created if needed; files are regenerated on every start).
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> Simulator {
        self.cert_dir = Some(dir.into());
        self
    }

    /// How many times faster than real time simulated time runs (1000.0 turns the 45 s
    /// auto-revoke into 45 ms).
    pub fn time_scale(mut self, scale: f64) -> Simulator {
        self.time_scale = scale;
        self
    }

    /// The simulated time at start (default: the real current time).
    pub fn start_time(mut self, start: DateTime<Utc>) -> Simulator {
        self.start_time = Some(start);
        self
    }

    /// The real-time delay of the "slow reply" behaviour when its code does not carry one.
    pub fn slow_reply_delay(mut self, delay: Duration) -> Simulator {
        self.slow_reply_delay = delay;
        self
    }

    /// Simulated time from a refund request until its status turns `SUCCESS`.
    pub fn refund_delay(mut self, delay: Duration) -> Simulator {
        self.refund_delay = delay;
        self
    }

    /// The least simulated time between two refund applications (new `out_refund_no`s) of
    /// one order; a sooner one is refused with `FREQUENCY_LIMITED` (docs/wechat-pay.md §3.4: partial
    /// refunds at least one minute apart). Zero turns the rule off.
    pub fn refund_spacing(mut self, spacing: Duration) -> Simulator {
        self.refund_spacing = spacing;
        self
    }

    /// Generates the certificates, binds both listeners and starts serving.
    pub async fn start(self) -> Result<SimHandle, SimError> {
        let mut merchants_in = self.merchants;
        if merchants_in.is_empty() {
            merchants_in.push(MerchantSpec {
                appid: DEMO_APPID.to_owned(),
                mch_id: DEMO_MCH_ID.to_owned(),
                key: ApiKey::new(DEMO_API_KEY),
                provider: false,
                sub_mch_ids: Vec::new(),
                bill_format: self.demo_bill_format,
            });
        }
        let mut merchants: Vec<Merchant> = Vec::with_capacity(merchants_in.len());
        for spec in merchants_in {
            if merchants
                .iter()
                .any(|merchant| merchant.mch_id == spec.mch_id)
            {
                return Err(SimError::Config(format!(
                    "mch_id {} is configured twice",
                    spec.mch_id
                )));
            }
            merchants.push(Merchant {
                appid: spec.appid,
                mch_id: spec.mch_id,
                key: spec.key,
                sandbox_key: ApiKey::new(random_token(32)),
                provider: spec.provider,
                sub_mch_ids: spec.sub_mch_ids,
                bill_format: spec.bill_format,
            });
        }

        let mch_ids: Vec<String> = merchants.iter().map(|m| m.mch_id.clone()).collect();
        let pki = Pki::generate(&mch_ids)?;
        let cert_files = match &self.cert_dir {
            Some(dir) => Some(pki.write_to(dir)?),
            None => None,
        };
        let tls = server::tls_acceptor(&pki)?;

        let primary = server::bind(self.listen).await?;
        let backup = server::bind(self.backup_listen).await?;
        let primary_addr = local_addr(&primary, self.listen)?;
        let backup_addr = local_addr(&backup, self.backup_listen)?;

        let state = Arc::new(SimState {
            merchants,
            clock: SimClock::new(self.start_time.unwrap_or_else(Utc::now), self.time_scale),
            ledger: Mutex::new(ledger::Ledger::default()),
            faults: Mutex::new(faults::Faults::default()),
            primary_outage: AtomicBool::new(false),
            settings: Mutex::new(Settings {
                slow_reply_delay: self.slow_reply_delay,
                refund_delay: self.refund_delay,
                refund_spacing: self.refund_spacing,
                bill_ready_at: self.bill_ready_at,
            }),
        });
        let router = handlers::router(state.clone());
        let (shutdown_sender, shutdown) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(
                primary,
                Host::Primary,
                tls.clone(),
                router.clone(),
                state.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(server::serve(
                backup,
                Host::Backup,
                tls,
                router,
                state.clone(),
                shutdown,
            )),
        ];
        tracing::info!(%primary_addr, %backup_addr, "WeChat Pay simulator listening");

        Ok(SimHandle {
            state,
            primary_addr,
            backup_addr,
            primary_url: format!("https://{primary_addr}"),
            backup_url: format!("https://{backup_addr}"),
            ca_pem: pki.ca_pem.clone(),
            clients: pki.clients,
            cert_files,
            shutdown: shutdown_sender,
            tasks,
        })
    }
}

use pki::Pki;

fn local_addr(
    listener: &tokio::net::TcpListener,
    asked: SocketAddr,
) -> Result<SocketAddr, SimError> {
    listener.local_addr().map_err(|error| SimError::Bind {
        addr: asked,
        message: error.to_string(),
    })
}

/// A random alphanumeric string (nonce_str, sandbox keys).
pub(crate) fn random_token(length: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

/// Settings that can change while the simulator runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) slow_reply_delay: Duration,
    pub(crate) refund_delay: Duration,
    pub(crate) refund_spacing: Duration,
    pub(crate) bill_ready_at: chrono::NaiveTime,
}

/// When a day's bill is ready on the next day (Beijing time), unless configured.
pub const DEFAULT_BILL_READY_AT: chrono::NaiveTime = match chrono::NaiveTime::from_hms_opt(10, 0, 0)
{
    Some(time) => time,
    None => chrono::NaiveTime::MIN,
};

/// WeChat's least time between two refund applications of one order (docs/wechat-pay.md §3.4).
pub const DEFAULT_REFUND_SPACING: Duration = Duration::from_secs(60);

/// The state shared by both listeners, the control API and [`SimHandle`].
pub(crate) struct SimState {
    pub(crate) merchants: Vec<Merchant>,
    pub(crate) clock: SimClock,
    pub(crate) ledger: Mutex<ledger::Ledger>,
    pub(crate) faults: Mutex<faults::Faults>,
    pub(crate) primary_outage: AtomicBool,
    pub(crate) settings: Mutex<Settings>,
}

/// WeChat revokes unpaid micropay orders this long after creation (docs/wechat-pay.md §5.2, [D-POS-Q]).
pub(crate) fn auto_revoke_after() -> chrono::Duration {
    chrono::Duration::seconds(45)
}

/// Reverse is refused (REVERSE_EXPIRE) for orders older than this (docs/wechat-pay.md §3.3).
pub(crate) fn reverse_window() -> chrono::Duration {
    chrono::Duration::days(7)
}

impl SimState {
    /// Locks the ledger. Every operation leaves it consistent before it can panic, so a
    /// poisoned lock is still usable.
    pub(crate) fn ledger(&self) -> MutexGuard<'_, ledger::Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn settings(&self) -> Settings {
        *self
            .settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn update_settings(&self, update: impl FnOnce(&mut Settings)) {
        update(
            &mut self
                .settings
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    /// The merchant with this number.
    pub(crate) fn merchant(&self, mch_id: &str) -> Option<&Merchant> {
        self.merchants
            .iter()
            .find(|merchant| merchant.mch_id == mch_id)
    }

    pub(crate) fn primary_outage(&self) -> bool {
        self.primary_outage.load(Ordering::Relaxed)
    }
}

/// A running simulator. Dropping it stops the listeners; [`SimHandle::shutdown`] also waits
/// for them to finish.
pub struct SimHandle {
    state: Arc<SimState>,
    primary_addr: SocketAddr,
    backup_addr: SocketAddr,
    primary_url: String,
    backup_url: String,
    ca_pem: String,
    clients: Vec<ClientIdentity>,
    cert_files: Option<CertFiles>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("primary_url", &self.primary_url)
            .field("backup_url", &self.backup_url)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `https://127.0.0.1:<port>` of the primary host (stands for `api.mch.weixin.qq.com`).
    pub fn primary_url(&self) -> &str {
        &self.primary_url
    }

    /// `https://127.0.0.1:<port>` of the backup host (stands for `api2.mch.weixin.qq.com`).
    pub fn backup_url(&self) -> &str {
        &self.backup_url
    }

    /// The primary listener's address.
    pub fn primary_addr(&self) -> SocketAddr {
        self.primary_addr
    }

    /// The backup listener's address.
    pub fn backup_addr(&self) -> SocketAddr {
        self.backup_addr
    }

    /// The CA certificate (PEM) that signed the server and client certificates; clients
    /// must trust it.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The first merchant's client identity (certificate, key, PKCS#12).
    pub fn client_identity(&self) -> &ClientIdentity {
        // `start` always configures at least one merchant and one identity per merchant.
        &self.clients[0]
    }

    /// The client identity issued to `mch_id`.
    pub fn client_identity_for(&self, mch_id: &str) -> Option<&ClientIdentity> {
        self.clients.iter().find(|client| client.mch_id == mch_id)
    }

    /// The certificate files, when a certificate directory was configured.
    pub fn cert_files(&self) -> Option<&CertFiles> {
        self.cert_files.as_ref()
    }

    /// The configured merchants (the first is the primary one).
    pub fn merchants(&self) -> &[Merchant] {
        &self.state.merchants
    }

    /// The current simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.clock.now()
    }

    /// Moves simulated time forward (e.g. 7 days to make reverse answer REVERSE_EXPIRE).
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Sets how many times faster than real time simulated time runs.
    pub fn set_time_scale(&self, scale: f64) {
        self.state.clock.set_scale(scale);
    }

    /// Sets the real-time delay of the slow-reply behaviour.
    pub fn set_slow_reply_delay(&self, delay: Duration) {
        self.state
            .update_settings(|settings| settings.slow_reply_delay = delay);
    }

    /// Sets the simulated time refunds take to complete.
    pub fn set_refund_delay(&self, delay: Duration) {
        self.state
            .update_settings(|settings| settings.refund_delay = delay);
    }

    /// Sets the least simulated time between two refund applications of one order (see
    /// [`Simulator::refund_spacing`]).
    pub fn set_refund_spacing(&self, spacing: Duration) {
        self.state
            .update_settings(|settings| settings.refund_spacing = spacing);
    }

    /// The customer enters the password for the pending order `out_trade_no`: it is paid.
    pub fn confirm_password(&self, out_trade_no: &str) -> Result<OrderView, ControlError> {
        self.state.resolve_prompt(None, out_trade_no, true)
    }

    /// The customer cancels the password prompt of `out_trade_no`: the payment fails.
    pub fn cancel_password(&self, out_trade_no: &str) -> Result<OrderView, ControlError> {
        self.state.resolve_prompt(None, out_trade_no, false)
    }

    /// Every open password prompt.
    pub fn pending_prompts(&self) -> Vec<PendingPrompt> {
        self.state.pending_prompts()
    }

    /// Gives the next `times` calls to `api` the fault `fault` (see [`Fault`]).
    pub fn inject_fault(&self, api: Api, fault: Fault, times: u32) {
        self.state.faults().inject(api, fault, times);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.state.faults().clear();
    }

    /// The queued faults.
    pub fn pending_faults(&self) -> Vec<PendingFault> {
        self.state.faults().pending()
    }

    /// While `down`, the primary listener closes every new connection before the TLS
    /// handshake, so only the backup host answers.
    pub fn set_primary_outage(&self, down: bool) {
        self.state.primary_outage.store(down, Ordering::Relaxed);
    }

    /// Every order of every merchant (settled to the current simulated time).
    pub fn orders(&self) -> Vec<OrderView> {
        self.state.orders()
    }

    /// The order `out_trade_no` (of any merchant, production books first).
    pub fn order(&self, out_trade_no: &str) -> Option<OrderView> {
        self.state
            .orders()
            .into_iter()
            .find(|order| order.out_trade_no == out_trade_no)
    }

    /// Every refund of every order.
    pub fn refunds(&self) -> Vec<RefundView> {
        self.state
            .orders()
            .into_iter()
            .flat_map(|order| order.refunds)
            .collect()
    }

    /// Changes when bills are ready (see [`Simulator::bill_ready_at`]).
    pub fn set_bill_ready_at(&self, time: chrono::NaiveTime) {
        self.state
            .update_settings(|settings| settings.bill_ready_at = time);
    }

    /// Makes WeChat's side differ from what the merchant's system saw, as `injection` says,
    /// and records it (docs/books.md §6, [`discrepancy`]).
    ///
    /// # Errors
    /// [`ControlError::BadRequest`] for an unknown merchant, a bad amount, number or trade
    /// type; [`ControlError::NotFound`], [`ControlError::Ambiguous`] or
    /// [`ControlError::NotPaid`] when the order to refund or re-price is not one paid order.
    pub fn inject_discrepancy(&self, injection: Injection) -> Result<Discrepancy, ControlError> {
        self.state.inject_discrepancy(injection)
    }

    /// Every discrepancy injected so far, oldest first: those of
    /// [`SimHandle::inject_discrepancy`] and every micropay made with a
    /// [`Behaviour::LostPaidReply`] code.
    pub fn injected_discrepancies(&self) -> Vec<Discrepancy> {
        self.state.ledger().discrepancies.clone()
    }

    /// The call log, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state.ledger().calls.clone()
    }

    /// How many calls reached `api` (on either host, sandbox included).
    pub fn call_count(&self, api: Api) -> usize {
        self.state
            .ledger()
            .calls
            .iter()
            .filter(|call| call.endpoint == api.name())
            .count()
    }

    /// A fresh payment code for `behaviour` (same as [`auth_code_for`]).
    pub fn auth_code(&self, behaviour: Behaviour) -> String {
        auth_code_for(behaviour)
    }

    /// Stops both listeners and closes open connections, then waits for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // Without this a dropped handle would leave the listeners running until the runtime
        // stops; sending twice (after `shutdown`) is harmless.
        let _ = self.shutdown.send(true);
    }
}
