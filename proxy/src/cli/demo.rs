//! `paycode-proxy demo`: Paycode with no merchant account.
//!
//! Starts the embedded WeChat Pay simulator on loopback (HTTPS, certificates generated into
//! the data directory), points the proxy at it, keeps payments in SQLite under the data
//! directory, makes sure a demo terminal exists (a manager terminal, so that one browser tab
//! can try every manager action) and offers its token to a browser on the same machine,
//! gives the demo manager [`MANAGER_NAME`] a fresh PIN, serves the built app, and prints
//! where to open it and the PIN.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use paycode_api::{DemoPairing, Role, StoreInfo, TerminalInfo};
use url::Url;
use wxpay::ApiKey;
use wxpay::sim::{DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, SimError, SimHandle, Simulator};

use crate::approvals::pin::Pin;
use crate::approvals::{Approvals, ManagerError};
use crate::auth::{AddTerminalError, TerminalToken, Terminals};
use crate::config::{AccountConfig, Config, LeaseConfig, PaymentsConfig, TlsConfig, WechatConfig};
use crate::private_file::write_private;
use crate::startup::{AppState, Application, StartupError};
use crate::store::{SqliteStore, Store, StoreError, StoreRecord, TerminalRecord};
use crate::tls::pki::{self, ServerNames};

/// The file under the data directory that keeps the demo terminal's token between runs.
const TOKEN_FILE: &str = "demo-terminal.token";
/// The demo terminal's name.
const TERMINAL_NAME: &str = "demo-counter";
/// The demo manager, who approves for every store; a new PIN is printed at each start.
pub const MANAGER_NAME: &str = "店长";

/// Demo mode's service provider (服务商): its account name, appid, mch_id and key.
const DEMO_VENDOR: (&str, &str, &str, &str) = (
    "demo_vendor",
    "wx3333333333333333",
    "1900000300",
    "d0d1d2d3d4d5d6d7d8d9dad0d1d2d3d4",
);
/// The provider's sub-merchant behind demo mode's second store.
const DEMO_SUB_MCH_ID: &str = "1900000301";
/// Demo mode's second store: a sub-merchant of [`DEMO_VENDOR`].
const DEMO_MALL: &str = "demo-mall";
/// The second store's terminal and the file that keeps its token.
const MALL_TERMINAL: (&str, &str) = ("demo-mall-counter", "demo-mall-terminal.token");

/// Options of `paycode-proxy demo`.
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Where the cashier app and API listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the simulated WeChat Pay listens (the backup host takes the next free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub sim_listen: SocketAddr,
    /// The data directory: the SQLite database, the simulator's certificates and the demo
    /// terminal's token.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// The built cashier app (`trunk build --release` writes it to `dist/`).
    #[arg(long, default_value = "./dist")]
    pub app_dir: PathBuf,
    /// How many times faster than real time the simulated WeChat runs; the proxy's waits
    /// shrink by the same factor (tests use this; people leave it at 1).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Serve HTTPS with a throwaway local CA made in `<data-dir>/tls` (kept between runs),
    /// for trying the app on a tablet; `http://127.0.0.1` is already a secure context.
    #[arg(long)]
    pub tls: bool,
}

/// Why demo mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator could not start.
    #[error("cannot start the WeChat Pay simulator")]
    Simulator(#[from] SimError),
    /// The proxy could not start.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The store could not be opened.
    #[error("cannot open the demo database")]
    Store(#[from] StoreError),
    /// The demo terminal could not be created.
    #[error("cannot create the demo terminal")]
    Terminal(#[from] AddTerminalError),
    /// The demo manager could not be created or given a PIN.
    #[error("cannot create the demo manager")]
    Manager(#[from] ManagerError),
    /// The token file could not be written.
    #[error("cannot write {path}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The demo's certificates could not be made.
    #[error("cannot make the demo's TLS certificates")]
    Tls(#[from] crate::tls::pki::PkiError),
    /// `--time-scale` is not a positive number.
    #[error("--time-scale must be a positive number, not {0}")]
    TimeScale(f64),
    /// The server stopped with an error.
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs demo mode until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let demo = Demo::start(&args).await?;
    print!("{}", demo.banner());
    let served = demo.application.run_until_stopped().await;
    demo.sim.shutdown().await;
    served.map_err(DemoError::Serve)
}

/// A started demo: the simulator and the bound (not yet serving) proxy.
pub struct Demo {
    /// The embedded WeChat Pay simulator.
    pub sim: SimHandle,
    /// The proxy, bound to its port.
    pub application: Application,
    /// The demo manager's PIN for this run (printed in the banner).
    pub manager_pin: Pin,
}

impl Demo {
    /// Starts the simulator, prepares the store and the demo terminal, and binds the proxy.
    pub async fn start(args: &DemoArgs) -> Result<Demo, DemoError> {
        if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
            return Err(DemoError::TimeScale(args.time_scale));
        }
        let backup_listen = SocketAddr::new(args.sim_listen.ip(), 0);
        let (vendor, vendor_appid, vendor_mch_id, vendor_key) = DEMO_VENDOR;
        let sim = Simulator::local(args.data_dir.join("sim-certs"))
            .merchant(DEMO_APPID, DEMO_MCH_ID, DEMO_API_KEY)
            .provider(vendor_appid, vendor_mch_id, vendor_key, &[DEMO_SUB_MCH_ID])
            .listen(args.sim_listen)
            .backup_listen(backup_listen)
            .time_scale(args.time_scale)
            .start()
            .await?;
        let mut config = simulator_config(&sim, &args.data_dir, args.time_scale);
        config.server.listen = args.listen;
        config.server.app_dir = args.app_dir.clone();
        if let Some(account) = simulator_account(&sim, vendor_mch_id) {
            config.accounts.insert(vendor.to_owned(), account);
        }
        if args.tls {
            config.server.tls = Some(demo_tls(&args.data_dir, args.listen)?);
        }
        let store = Arc::new(SqliteStore::connect(&config.store).await?);
        crate::stores::bind_at_start(&config, store.as_ref())
            .await
            .map_err(StartupError::from)?;
        let mall = demo_mall(&config, store.as_ref()).await?;
        let terminals = Terminals::new(store.clone());
        let pairing = demo_pairing(
            store.as_ref(),
            &terminals,
            &args.data_dir,
            (crate::stores::DEFAULT_STORE, TERMINAL_NAME, TOKEN_FILE),
            Role::Manager,
        )
        .await?;
        let (mall_terminal, mall_token_file) = MALL_TERMINAL;
        demo_pairing(
            store.as_ref(),
            &terminals,
            &args.data_dir,
            (&mall.id, mall_terminal, mall_token_file),
            Role::Cashier,
        )
        .await?;
        let mut state = AppState::new(Arc::new(config), store)?;
        let manager_pin = demo_manager(&state.approvals).await?;
        state.demo_pairing = Some(Arc::new(pairing));
        let application = Application::build_with_state(state).await?;
        Ok(Demo {
            sim,
            application,
            manager_pin,
        })
    }

    /// What the demo prints once it is ready.
    pub fn banner(&self) -> String {
        let app_dir = &self.application.state().config.server.app_dir;
        let mut banner = format!(
            "Paycode demo ready: {}://{}\n\
             Customer phone page: {}/_sim/phone\n\
             WeChat simulator: {} (CA: {})\n",
            self.application.scheme(),
            self.application.address(),
            self.sim.primary_url(),
            self.sim.primary_url(),
            self.sim
                .cert_files()
                .map_or_else(String::new, |files| files.ca_pem.display().to_string()),
        );
        let data_dir = &self.application.state().config.store.data_dir;
        banner.push_str(&format!(
            "Stores: default (direct merchant {DEMO_MCH_ID}; this browser is its terminal \
             {TERMINAL_NAME}) and {DEMO_MALL} (sub-merchant {DEMO_SUB_MCH_ID} of provider {}; \
             its terminal's token is in {})\n",
            DEMO_VENDOR.2,
            data_dir.join(MALL_TERMINAL.1).display()
        ));
        banner.push_str(&format!(
            "Demo manager: {MANAGER_NAME}, PIN {} (every store; a new PIN at each start; \
             this browser's terminal is a manager terminal)\n",
            self.manager_pin.expose()
        ));
        if let Some(tls) = &self.application.state().config.server.tls {
            banner.push_str(&format!(
                "HTTPS certificate: {} (trust its CA {} to open the app without a warning)\n",
                tls.cert_pem.display(),
                tls.ca_pem
                    .as_ref()
                    .map_or_else(String::new, |ca| ca.display().to_string()),
            ));
        }
        if !app_dir.join("index.html").is_file() {
            banner.push_str(&format!(
                "The cashier app is not built in {}: run scripts/demo, or `trunk build --release`.\n",
                app_dir.display()
            ));
        }
        banner
    }
}

/// `[server.tls]` for `demo --tls`: a server certificate for `localhost`, `127.0.0.1` and
/// the listen address, from the demo's own CA in `data_dir/tls` (made on the first run).
fn demo_tls(data_dir: &Path, listen: SocketAddr) -> Result<TlsConfig, DemoError> {
    let mut ips = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    if !listen.ip().is_unspecified() && !ips.contains(&listen.ip()) {
        ips.push(listen.ip());
    }
    let names = ServerNames {
        hosts: vec!["localhost".to_owned()],
        ips,
    };
    let issued = pki::issue(&data_dir.join("tls"), &names, pki::SERVER_CERT_MAX_DAYS)?;
    Ok(TlsConfig {
        cert_pem: issued.files.server_pem,
        key_pem: issued.files.server_key_pem,
        ca_pem: Some(issued.files.ca_pem),
        ca_listen: None,
    })
}

/// The proxy's configuration for a simulator started by [`Simulator::local`] with the demo
/// merchant: `[wechat]` from [`simulator_wechat_config`], the store in `data_dir`, every wait
/// of the payment rules divided by `time_scale` ([`scale_waits`]), and the other settings at
/// their defaults. Demo mode and the test harness (`paycode-tests`) start from it.
pub fn simulator_config(sim: &SimHandle, data_dir: &Path, time_scale: f64) -> Config {
    let mut config = Config::new(simulator_wechat_config(sim));
    config.store.data_dir = data_dir.to_path_buf();
    scale_waits(&mut config.payments, time_scale);
    scale_leases(&mut config.leases, time_scale);
    config
}

/// `[wechat]` for a simulator started with the demo merchant and a certificate directory:
/// its two hosts, its CA, and the demo merchant's key and client certificate.
pub fn simulator_wechat_config(sim: &SimHandle) -> WechatConfig {
    let mut wechat = WechatConfig::new(DEMO_APPID, DEMO_MCH_ID, ApiKey::new(DEMO_API_KEY));
    // The simulator's URLs are built by the simulator itself, so they always parse.
    wechat.primary_url = Url::parse(sim.primary_url()).expect("the simulator's primary URL");
    wechat.backup_url = Url::parse(sim.backup_url()).ok();
    if let Some(files) = sim.cert_files() {
        wechat.cert_pem = Some(files.client_cert_pem.clone());
        wechat.key_pem = Some(files.client_key_pem.clone());
        wechat.extra_ca_pem = Some(files.ca_pem.clone());
    }
    wechat
}

/// `[accounts.NAME]` for the simulator's merchant `mch_id` (added with
/// [`Simulator::merchant`] or [`Simulator::provider`], not the first): its appid, key and
/// kind, and the client certificate the simulator wrote under `<certificate dir>/<mch_id>/`.
/// `None` if the simulator has no such merchant or wrote no files.
pub fn simulator_account(sim: &SimHandle, mch_id: &str) -> Option<AccountConfig> {
    let merchant = sim
        .merchants()
        .iter()
        .find(|merchant| merchant.mch_id == mch_id)?;
    let dir = sim.cert_files()?.dir.join(mch_id);
    Some(AccountConfig {
        provider: merchant.provider,
        appid: merchant.appid.clone(),
        mch_id: merchant.mch_id.clone(),
        api_key: merchant.key.clone(),
        sign_type: None,
        cert_pem: Some(dir.join("apiclient_cert.pem")),
        key_pem: Some(dir.join("apiclient_key.pem")),
        cert_p12: None,
    })
}

/// Shrinks every wait of the payment rules by `time_scale`, to match simulated time.
pub fn scale_waits(payments: &mut PaymentsConfig, time_scale: f64) {
    let scale = |duration: &mut Duration| {
        *duration = duration.div_f64(time_scale).max(Duration::from_millis(1));
    };
    scale(&mut payments.first_query_after_userpaying);
    scale(&mut payments.first_query_after_unknown);
    scale(&mut payments.query_interval);
    scale(&mut payments.wait_deadline);
    scale(&mut payments.reverse_not_before);
    scale(&mut payments.reverse_retry_base);
    scale(&mut payments.attention_recheck_interval);
    scale(&mut payments.refund_spacing);
    scale(&mut payments.micropay_expire_after);
    scale(&mut payments.expire_skew_margin);
}

/// Shrinks the lease timings by `time_scale`, like [`scale_waits`]: a lease is measured
/// against WeChat's 45-second auto-revoke, which the simulator shrinks too (a proxy that
/// restarts on PostgreSQL takes its payments back one lease later, which must stay well inside
/// the simulated 45 s). [`LEASE_FLOORS`] keep the claim and renewal timers of the many
/// proxies a test run starts from spending the machine on lease queries.
pub fn scale_leases(leases: &mut LeaseConfig, time_scale: f64) {
    let [duration, renew, margin, claim] = LEASE_FLOORS;
    let scale = |value: &mut Duration, floor: Duration| {
        *value = value.div_f64(time_scale).max(floor);
    };
    scale(&mut leases.duration, duration);
    scale(&mut leases.renew_interval, renew);
    scale(&mut leases.safety_margin, margin);
    scale(&mut leases.claim_interval, claim);
}

/// The shortest lease duration, renewal interval, safety margin and claim interval
/// [`scale_leases`] makes (they keep `renew_interval + safety_margin < duration`).
pub const LEASE_FLOORS: [Duration; 4] = [
    Duration::from_millis(200),
    Duration::from_millis(50),
    Duration::from_millis(20),
    Duration::from_millis(100),
];

/// Demo mode's second store, a sub-merchant of the demo provider, added on the first run.
async fn demo_mall(config: &Config, store: &dyn Store) -> Result<StoreRecord, DemoError> {
    // Disabled or not: a demo whose mall was disabled keeps it disabled.
    let stores = store.list_stores().await?;
    if let Some(mall) = stores.into_iter().find(|record| record.name == DEMO_MALL) {
        return Ok(mall);
    }
    let new = crate::stores::NewStore {
        name: DEMO_MALL.to_owned(),
        account: DEMO_VENDOR.0.to_owned(),
        sub_mch_id: Some(DEMO_SUB_MCH_ID.to_owned()),
        address: Some("演示商场 1F".to_owned()),
        ..crate::stores::NewStore::default()
    };
    crate::stores::add(&config.accounts(), store, new)
        .await
        .map_err(|error| DemoError::Startup(StartupError::from(error)))
}

/// The demo manager [`MANAGER_NAME`] (every store) with a fresh PIN, added on the first
/// run: the PIN is stored hashed, so each start makes a new one to print.
async fn demo_manager(approvals: &Approvals) -> Result<Pin, DemoError> {
    let pin = Pin::generate();
    match approvals.set_pin(MANAGER_NAME, &pin).await {
        Err(ManagerError::Store(StoreError::NotFound { .. })) => {
            approvals.add_manager(MANAGER_NAME, None, &pin).await?;
        }
        other => {
            other?;
        }
    }
    Ok(pin)
}

/// A demo terminal's pairing (`terminal` = store id, terminal name, token file) with the
/// role `role`: the token kept in the data directory if it still works, otherwise a new
/// terminal of that store whose token is written there.
async fn demo_pairing(
    store: &dyn Store,
    terminals: &Terminals,
    data_dir: &Path,
    terminal: (&str, &str, &str),
    role: Role,
) -> Result<DemoPairing, DemoError> {
    let (store_id, terminal_name, token_file) = terminal;
    let token_path = data_dir.join(token_file);
    if let Some(token) = std::fs::read_to_string(&token_path)
        .ok()
        .and_then(|text| TerminalToken::parse(text.trim()))
    {
        if let Some(mut terminal) = terminals.authenticate(&token).await? {
            // A data directory from before roles: its terminal gets the demo's role.
            if terminal.role != role {
                terminal = store.set_terminal_role(&terminal.name, role).await?;
            }
            return Ok(DemoPairing {
                token: token.expose().to_owned(),
                terminal: terminal_info(store, terminal).await?,
            });
        }
    }
    // The token file was lost or its terminal revoked: add a terminal under the first free
    // name (tokens are stored hashed, so an old one cannot be recovered).
    let mut attempt = 1;
    let (terminal, token) = loop {
        let name = match attempt {
            1 => terminal_name.to_owned(),
            n => format!("{terminal_name}-{n}"),
        };
        match terminals.add_with_role(&name, store_id, role).await {
            Err(AddTerminalError::Store(StoreError::AlreadyExists { .. })) => attempt += 1,
            added => break added?,
        }
    };
    write_private(&token_path, format!("{}\n", token.expose()).as_bytes()).map_err(|source| {
        DemoError::TokenFile {
            path: token_path.clone(),
            source,
        }
    })?;
    Ok(DemoPairing {
        token: token.expose().to_owned(),
        terminal: terminal_info(store, terminal).await?,
    })
}

/// What the app is told about a terminal: its id, name and store.
async fn terminal_info(
    store: &dyn Store,
    terminal: TerminalRecord,
) -> Result<TerminalInfo, DemoError> {
    let name = store
        .get_store(&terminal.store_id)
        .await?
        .map_or_else(|| terminal.store_id.clone(), |record| record.name);
    Ok(TerminalInfo {
        id: terminal.id,
        name: terminal.name,
        store: StoreInfo {
            id: terminal.store_id,
            name,
        },
        role: terminal.role,
    })
}
