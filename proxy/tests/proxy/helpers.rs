//! Shared set-up: configurations in temporary directories, stores, payments, and a running
//! application.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use paycode_api::{AttemptId, AuthCode, Fen};
use paycode_proxy::auth::Terminals;
use paycode_proxy::cli::demo::simulator_wechat_config;
use paycode_proxy::config::{Config, StoreConfig, WechatConfig};
use paycode_proxy::startup::Application;
use paycode_proxy::store::{Millis, PaymentRecord, SqliteStore, Store};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxpay::ApiKey;
use wxpay::sim::{SimHandle, Simulator};

/// A valid configuration with its data and app directories under `root`, listening on
/// port 0.
pub fn config_in(root: &Path) -> Config {
    let mut config = Config::new(WechatConfig::new(
        "wx2421b1c4370ec43b",
        "10000100",
        ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
    ));
    config.store.data_dir = root.join("data");
    config.server.app_dir = root.join("dist");
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
pub async fn new_store() -> (Arc<SqliteStore>, TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&config_in(directory.path()).store)
        .await
        .unwrap();
    (Arc::new(store), directory)
}

/// A UUID-shaped attempt id derived from `n`.
pub fn attempt(n: u32) -> AttemptId {
    AttemptId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
}

/// A payment code ending in `n` (four digits).
pub fn code(n: u16) -> AuthCode {
    AuthCode::parse(&format!("13456789012345{n:04}")).unwrap()
}

/// The business day most tests use.
pub fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 2).unwrap()
}

/// A new `submitting` payment number `n` of `amount` fen by terminal `t1`.
pub fn payment(n: u32, amount: u64) -> PaymentRecord {
    PaymentRecord::new_submitting(
        format!("pay_{n}"),
        attempt(n),
        "t1".to_owned(),
        wxpay::messages::OutTradeNo::new(format!("PC{n:08}")).unwrap(),
        Fen(amount),
        code(1234),
        "Paycode 门店-商品".to_owned(),
        Millis(1_709_340_000_000 + i64::from(n)),
        day(),
    )
}

/// Stores `payment(n, amount)` and returns it.
pub async fn stored_payment(store: &dyn Store, n: u32, amount: u64) -> PaymentRecord {
    store
        .insert_payment(&payment(n, amount))
        .await
        .unwrap()
        .into_record()
}

/// A running application and what is needed to reach and stop it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, or `https://` when the configuration has `[server.tls]`.
    pub address: String,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    /// The simulated WeChat Pay the proxy talks to.
    pub sim: Option<SimHandle>,
    store_config: StoreConfig,
    /// Keeps the data and app directories alive while the server runs.
    _root: TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A new terminal's bearer token, added to the application's database.
    pub async fn terminal_token(&self, name: &str) -> String {
        let store = SqliteStore::connect(&self.store_config).await.unwrap();
        let (_, token) = Terminals::new(Arc::new(store)).add(name).await.unwrap();
        token.expose().to_owned()
    }

    /// A pairing code for the terminal called `name`, valid for `ttl`, as
    /// `paycode-proxy terminal pair` issues it.
    pub async fn pairing_code(&self, name: &str, ttl: std::time::Duration) -> String {
        let store = SqliteStore::connect(&self.store_config).await.unwrap();
        let config = paycode_proxy::config::PairingConfig {
            code_ttl: ttl,
            ..Default::default()
        };
        let pairing = paycode_proxy::pairing::Pairing::new(Arc::new(store), &config);
        let (_, code, _) = pairing.issue(name).await.unwrap();
        code.expose().to_owned()
    }

    /// Stops the server gracefully and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.server.take() {
            Some(server) => server.await.unwrap(),
            None => Ok(()),
        };
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        served
    }
}

/// The simulator with the demo merchant on free loopback ports, its certificates under
/// `root/sim-certs` ([`Simulator::local`]), and a configuration ([`config_in`]) that talks
/// to it.
pub async fn with_simulator(root: &Path) -> (SimHandle, Config) {
    let sim = Simulator::local(root.join("sim-certs"))
        .start()
        .await
        .unwrap();
    let mut config = config_in(root);
    config.wechat = simulator_wechat_config(&sim);
    (sim, config)
}

/// Starts the application on port 0, after `prepare` has had a chance to put files in the
/// root directory (such as a built app).
pub async fn spawn_app(prepare: impl FnOnce(&Path)) -> TestApp {
    spawn_app_with(prepare, |_| {}).await
}

/// Like [`spawn_app`], with `configure` changing the configuration first.
pub async fn spawn_app_with(
    prepare: impl FnOnce(&Path),
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let root = tempfile::tempdir().unwrap();
    prepare(root.path());
    let (sim, mut config) = with_simulator(root.path()).await;
    configure(&mut config);
    let store_config = config.store.clone();
    let application = Application::build(config).await.unwrap();
    let address = format!(
        "{}://127.0.0.1:{}",
        application.scheme(),
        application.port()
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        sim: Some(sim),
        store_config,
        _root: root,
        stop: Some(stop),
        server: Some(server),
    }
}
