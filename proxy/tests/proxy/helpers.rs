//! Shared set-up: configurations in temporary directories, stores on either back end (a
//! fresh SQLite file or a fresh PostgreSQL database), payments, and a running application.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use paycode_api::{AttemptId, AuthCode, Fen};
use paycode_proxy::auth::Terminals;
use paycode_proxy::cli::demo::simulator_wechat_config;
use paycode_proxy::config::{Config, StoreConfig, WechatConfig};
use paycode_proxy::startup::Application;
use paycode_proxy::store::{self, MerchantIds, Millis, PaymentRecord, Store};
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

/// The PostgreSQL server the PostgreSQL half of the store suite runs on.
pub const DATABASE_URL_VARIABLE: &str = "PAYCODE_TEST_DATABASE_URL";

/// Set to `1` (as `scripts/test` does) to make the PostgreSQL half fail, not skip, when
/// [`DATABASE_URL_VARIABLE`] is unset.
pub const REQUIRE_POSTGRES_VARIABLE: &str = "PAYCODE_REQUIRE_POSTGRES";

/// A store implementation the conformance suite runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server at `server_url`.
    Postgres {
        /// `postgres://user@host:port/database` of a database the tests may create
        /// databases from.
        server_url: String,
    },
}

impl Backend {
    /// PostgreSQL at `PAYCODE_TEST_DATABASE_URL`. When it is unset: a panic saying so if
    /// `PAYCODE_REQUIRE_POSTGRES=1` (CI must not skip), else `None` after a notice on
    /// stderr, so that a developer's plain `cargo test` runs the SQLite half alone.
    pub fn postgres() -> Option<Backend> {
        match std::env::var(DATABASE_URL_VARIABLE) {
            Ok(server_url) if !server_url.is_empty() => Some(Backend::Postgres { server_url }),
            _ if std::env::var(REQUIRE_POSTGRES_VARIABLE).as_deref() == Ok("1") => panic!(
                "{REQUIRE_POSTGRES_VARIABLE}=1 but {DATABASE_URL_VARIABLE} is not set: \
                 start a throwaway cluster with `eval \"$(scripts/pg-cluster start)\"`"
            ),
            _ => {
                eprintln!(
                    "skipped on PostgreSQL: {DATABASE_URL_VARIABLE} is not set \
                     (`scripts/pg-cluster run cargo test …` sets it)"
                );
                None
            }
        }
    }
}

/// A fresh, empty database on a back end, and the temporary directory it needs.
pub struct TestDatabase {
    /// A `[store]` section naming the database.
    pub config: StoreConfig,
    _directory: TempDir,
}

impl TestDatabase {
    /// A new database: a SQLite file in a new temporary directory, or a new PostgreSQL
    /// database with a unique name (the throwaway cluster is removed whole, so the
    /// databases are not dropped one by one).
    pub async fn new(backend: &Backend) -> TestDatabase {
        let directory = tempfile::tempdir().unwrap();
        let mut config = config_in(directory.path()).store;
        if let Backend::Postgres { server_url } = backend {
            config.database_url = Some(fresh_postgres_database(server_url).await);
        }
        TestDatabase {
            config,
            _directory: directory,
        }
    }

    /// The store on this database (its schema brought up to date).
    pub async fn open(&self) -> Arc<dyn Store> {
        store::connect(&self.config).await.unwrap()
    }

    /// Runs one SQL statement on the database directly, past the store: for rows the store
    /// itself never writes (those of a database from before a migration).
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        match &self.config.database_url {
            Some(url) => {
                let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut connection).await.unwrap();
                connection.close().await.unwrap();
            }
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.config.default_database_path());
                let mut connection = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&mut connection).await.unwrap();
                connection.close().await.unwrap();
            }
        }
    }
}

/// Creates a database with a unique name on the server at `server_url` and returns its URL.
async fn fresh_postgres_database(server_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("paycode_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(server_url)
        .await
        .unwrap_or_else(|error| panic!("cannot reach {DATABASE_URL_VARIABLE}: {error}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    let mut url = url::Url::parse(server_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// A fresh store on `backend` (kept alive by the returned guard).
pub async fn new_store(backend: &Backend) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(backend).await;
    (database.open().await, database)
}

/// What `paycode-proxy check` prints for `config`, which must pass.
pub async fn check_report(config: &Config) -> String {
    let mut out = Vec::new();
    paycode_proxy::cli::check::run(config, &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
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
        (
            "default".to_owned(),
            MerchantIds {
                appid: "wx2421b1c4370ec43b".to_owned(),
                mch_id: "10000100".to_owned(),
                sub_appid: None,
                sub_mch_id: None,
            },
        ),
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
        let store = store::connect(&self.store_config).await.unwrap();
        let (_, token) = Terminals::new(store).add(name).await.unwrap();
        token.expose().to_owned()
    }

    /// A pairing code for the terminal called `name`, valid for `ttl`, as
    /// `paycode-proxy terminal pair` issues it.
    pub async fn pairing_code(&self, name: &str, ttl: std::time::Duration) -> String {
        let store = store::connect(&self.store_config).await.unwrap();
        let config = paycode_proxy::config::PairingConfig {
            code_ttl: ttl,
            ..Default::default()
        };
        let pairing = paycode_proxy::pairing::Pairing::new(store, &config);
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
