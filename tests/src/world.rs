//! [`World`]: one simulated WeChat Pay and one proxy serving its real HTTP API, in process.
//!
//! The simulator runs on simulated time `scale` times faster than real time, and the proxy's
//! waits (query schedule, 40 s deadline, 15 s reverse rule, …) are divided by the same
//! factor ([`simulator_config`]), so a 40-second wait takes 400 ms at the default 100×. The
//! proxy keeps its payments in SQLite in a temporary directory (or in a fresh PostgreSQL
//! database with `PAYCODE_TEST_STORE=postgres`) and talks to the simulator over HTTPS with
//! the client certificate the simulator issued.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use paycode_api::{Payment, PaymentList, Role};
use paycode_proxy::approvals::Approvals;
use paycode_proxy::approvals::pin::Pin;
use paycode_proxy::auth::Terminals;
use paycode_proxy::cli::demo::{simulator_account, simulator_config};
use paycode_proxy::config::Config;
use paycode_proxy::startup::Application;
use paycode_proxy::store::{Store, StoreRecord};
use paycode_proxy::stores::{self, NewStore};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxpay::sim::{
    Behaviour, CallRecord, DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, OrderView, SimHandle, Simulator,
};

use crate::cashier::Cashier;
use crate::{ledger, test_log, test_store};

/// The default speed-up of simulated time: 40 simulated seconds pass in 400 ms.
pub const DEFAULT_SCALE: f64 = 100.0;

/// The amount most scenarios charge: ¥12.30.
pub const AMOUNT_FEN: u64 = 1230;

/// A running simulator and proxy, and a cashier terminal paired with the proxy.
pub struct World {
    /// The simulated WeChat Pay (control API: faults, outage, password prompts, ledger).
    pub sim: Arc<SimHandle>,
    /// The first terminal, `counter-1`, with its bearer token.
    pub cashier: Cashier,
    /// The proxy's terminals, for adding and revoking more.
    pub terminals: Terminals,
    /// How many times faster than real time simulated time runs.
    pub scale: f64,
    /// The configuration the proxy was started with.
    pub config: Config,
    /// The proxy's database (stores, terminals, payments).
    pub store: Arc<dyn Store>,
    /// The manager of every store who approves the refunds of the world's cashiers.
    pub manager: TestManager,
    /// The proxy's managers and approvals, for adding more managers.
    pub approvals: Approvals,
    served: Served,
    _root: TempDir,
}

impl World {
    /// A world at [`DEFAULT_SCALE`] with the default configuration.
    pub async fn start() -> World {
        World::start_with(DEFAULT_SCALE, |_| {}).await
    }

    /// A world at `scale` whose configuration `tweak` adjusts after the waits are scaled.
    pub async fn start_with(scale: f64, tweak: impl FnOnce(&mut Config) + Send + 'static) -> World {
        test_log::init();
        let root = tempfile::tempdir().expect("a temporary directory");
        let sim = start_simulator(root.path(), scale).await;
        let mut config = scaled_config(&sim, root.path(), scale);
        tweak(&mut config);
        World::serve(sim, config, root, scale).await
    }

    /// A world whose simulator hosts the [`SHOPS`]' accounts: the demo merchant (`[wechat]`,
    /// the default store), a second direct merchant (`[accounts.chain_b]`, store `shop-b`)
    /// and a service provider (`[accounts.vendor]`) with two sub-merchants (stores `mall-1`
    /// and `mall-2`). `counter-1` belongs to the default store.
    pub async fn start_with_stores(
        scale: f64,
        tweak: impl FnOnce(&mut Config) + Send + 'static,
    ) -> World {
        test_log::init();
        let root = tempfile::tempdir().expect("a temporary directory");
        let (sim, mut config) = stores_simulator(root.path(), scale, &SHOPS).await;
        tweak(&mut config);
        let world = World::serve(sim, config, root, scale).await;
        add_stores(&world.config, world.store.as_ref(), &SHOPS).await;
        world
    }

    /// A world over an already started `sim` and a prepared `config` (whose database may
    /// already hold data, as in the upgrade scenario), kept under `root`, at `scale`.
    pub async fn serve(sim: SimHandle, config: Config, root: TempDir, scale: f64) -> World {
        config.validate().expect("the test configuration is valid");
        let application = Application::build(config.clone())
            .await
            .expect("the proxy starts");
        let terminals = application.state().terminals.clone();
        let store = Arc::clone(&application.state().store);
        let approvals = application.state().approvals.clone();
        let manager = TestManager::add(&approvals, TEST_MANAGER, None).await;
        let (_, token) = terminals.add("counter-1").await.expect("a terminal");
        let served = Served::start(application);
        World {
            sim: Arc::new(sim),
            cashier: manager.at(Cashier::new(served.address(), Some(token.expose()))),
            terminals,
            scale,
            config,
            store,
            manager,
            approvals,
            served,
            _root: root,
        }
    }

    /// The store called `name`.
    pub async fn shop(&self, name: &str) -> StoreRecord {
        stores::find(self.store.as_ref(), Some(name))
            .await
            .expect("the store exists")
    }

    /// A new terminal called `terminal` in the store `store`, and a cashier holding its token.
    pub async fn cashier_at(&self, store: &str, terminal: &str) -> Cashier {
        let shop = self.shop(store).await;
        let (_, token) = self
            .terminals
            .add_to(terminal, &shop.id)
            .await
            .expect("a terminal");
        self.manager
            .at(Cashier::new(self.address(), Some(token.expose())))
    }

    /// A new terminal called `name` with the role `role` in the store `store`, and a
    /// cashier holding its token (approved by the world's manager).
    pub async fn terminal_with_role(&self, store: &str, name: &str, role: Role) -> Cashier {
        let shop = self.shop(store).await;
        let (_, token) = self
            .terminals
            .add_with_role(name, &shop.id, role)
            .await
            .expect("a terminal");
        self.manager
            .at(Cashier::new(self.address(), Some(token.expose())))
    }

    /// The day list of every terminal of the store `store`, as a manager sees it: through a
    /// new manager terminal of that store, with a `view_all_payments` approval.
    pub async fn store_today(&self, store: &str) -> PaymentList {
        let name = format!("back-office-{}", uuid::Uuid::new_v4().simple());
        let office = self.terminal_with_role(store, &name, Role::Manager).await;
        let approval = office.approve("view_all_payments").await;
        office
            .send_approved(reqwest::Method::GET, "/payments", &approval, None)
            .await
            .expect(reqwest::StatusCode::OK)
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn address(&self) -> &str {
        self.served.address()
    }

    /// A new terminal called `name`, and a cashier holding its token.
    pub async fn new_cashier(&self, name: &str) -> Cashier {
        let (_, token) = self.terminals.add(name).await.expect("a terminal");
        self.manager
            .at(Cashier::new(self.address(), Some(token.expose())))
    }

    /// A cashier without a token (or with `token`, which may be anything).
    pub fn stranger(&self, token: Option<&str>) -> Cashier {
        Cashier::new(self.address(), token)
    }

    /// Takes a payment of [`AMOUNT_FEN`] with a fresh code for `behaviour` (expects 201).
    pub async fn pay(&self, behaviour: Behaviour) -> Payment {
        self.cashier
            .pay(AMOUNT_FEN, &self.sim.auth_code(behaviour))
            .await
    }

    /// Takes a payment like [`World::pay`] and waits until it is settled.
    pub async fn pay_and_settle(&self, behaviour: Behaviour) -> Payment {
        let payment = self.pay(behaviour).await;
        self.cashier.settled(&payment).await
    }

    /// The calls the simulator received for `payment`'s order, oldest first.
    pub fn calls(&self, payment: &Payment) -> Vec<CallRecord> {
        ledger::calls_for(&self.sim, &payment.out_trade_no)
    }

    /// The simulator's order for `payment`, if WeChat has one.
    pub fn order(&self, payment: &Payment) -> Option<OrderView> {
        self.sim.order(&payment.out_trade_no)
    }

    /// Simulated time `real` corresponds to.
    pub fn simulated(&self, real: Duration) -> Duration {
        real.mul_f64(self.scale)
    }

    /// Waits (polling every 5 ms, at most 10 s of real time) until the simulator has
    /// received an `endpoint` call for `payment`'s order.
    pub async fn until_call(&self, payment: &Payment, endpoint: &str) -> CallRecord {
        ledger::until_call(&self.sim, &payment.out_trade_no, endpoint).await
    }

    /// Stops the proxy gracefully, then the simulator.
    pub async fn stop(self) {
        self.served.stop().await.expect("the server stops cleanly");
    }
}

/// The name of the manager every [`World`] has.
pub const TEST_MANAGER: &str = "值班经理";

/// A manager and their PIN, as the harness knows them.
#[derive(Clone, Debug)]
pub struct TestManager {
    /// The manager's name.
    pub name: String,
    /// Their PIN.
    pub pin: String,
}

impl TestManager {
    /// Adds the manager `name` (for the store `store_id`, or every store) with a generated
    /// PIN.
    pub async fn add(approvals: &Approvals, name: &str, store_id: Option<&str>) -> TestManager {
        let pin = Pin::generate();
        approvals
            .add_manager(name, store_id, &pin)
            .await
            .expect("a manager");
        TestManager {
            name: name.to_owned(),
            pin: pin.expose().to_owned(),
        }
    }

    /// Adds the manager `name` for every store to the database of `config` (opened and
    /// closed again: on SQLite, call it while no proxy has the file open).
    pub async fn add_to_database(config: &Config, name: &str) -> TestManager {
        let store = paycode_proxy::store::connect(&config.store)
            .await
            .expect("the database opens");
        let manager = TestManager::add(
            &Approvals::new(store.clone(), &config.approvals),
            name,
            None,
        )
        .await;
        store.close().await;
        manager
    }

    /// `cashier`, with this manager at its counter to approve refunds.
    pub fn at(&self, cashier: Cashier) -> Cashier {
        cashier.with_approver(&self.name, &self.pin)
    }
}

/// A proxy serving in this process (on the caller's tokio runtime) until [`Served::stop`]:
/// the one way the harness runs an [`Application`] in process (worlds, benchmarks, the
/// shutdown scenarios). Starting one installs the `TEST_LOG` subscriber
/// ([`test_log::init`]).
pub struct Served {
    address: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Serves `application` in a task.
    pub fn start(application: Application) -> Served {
        test_log::init();
        let address = format!("http://{}", application.address());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        Served {
            address,
            stop,
            server,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Asks for a graceful shutdown and waits until the proxy has finished it: what the
    /// server returned (a panic of its task panics here).
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.server.await.expect("the server task")
    }
}

/// A store of [`World::start_with_stores`] and the account fields its payments carry.
#[derive(Clone, Copy, Debug)]
pub struct Shop {
    /// The store's name.
    pub name: &'static str,
    /// Its account's name in the configuration.
    pub account: &'static str,
    /// The `mch_id` its calls carry (the provider's for a sub-merchant).
    pub mch_id: &'static str,
    /// The `sub_mch_id` its calls carry, under the provider.
    pub sub_mch_id: Option<&'static str>,
}

/// The second direct merchant of [`World::start_with_stores`].
pub const CHAIN_B_MCH_ID: &str = "1900000110";
const CHAIN_B_APPID: &str = "wx1111111111111111";
const CHAIN_B_KEY: &str = "b0b1b2b3b4b5b6b7b8b9bab0b1b2b3b4";
/// The service provider of [`World::start_with_stores`].
pub const VENDOR_MCH_ID: &str = "1900000200";
const VENDOR_APPID: &str = "wx2222222222222222";
const VENDOR_KEY: &str = "c0c1c2c3c4c5c6c7c8c9cac0c1c2c3c4";
/// The provider's sub-merchant behind store `mall-1`.
pub const MALL_1_SUB: &str = "1900000201";
/// The provider's sub-merchant behind store `mall-2`.
pub const MALL_2_SUB: &str = "1900000202";

/// The four stores of [`World::start_with_stores`]: two direct merchants and two
/// sub-merchants of one provider.
pub const SHOPS: [Shop; 4] = [
    Shop {
        name: "default",
        account: "default",
        mch_id: DEMO_MCH_ID,
        sub_mch_id: None,
    },
    Shop {
        name: "shop-b",
        account: "chain_b",
        mch_id: CHAIN_B_MCH_ID,
        sub_mch_id: None,
    },
    Shop {
        name: "mall-1",
        account: "vendor",
        mch_id: VENDOR_MCH_ID,
        sub_mch_id: Some(MALL_1_SUB),
    },
    Shop {
        name: "mall-2",
        account: "vendor",
        mch_id: VENDOR_MCH_ID,
        sub_mch_id: Some(MALL_2_SUB),
    },
];

/// The simulator of [`World::start_with_stores`] (every account of [`SHOPS`]) at `scale`,
/// and the proxy's configuration for it with the accounts that `shops` use.
pub async fn stores_simulator(root: &Path, scale: f64, shops: &[Shop]) -> (SimHandle, Config) {
    let sim = Simulator::local(root.join("sim-certs"))
        .merchant(DEMO_APPID, DEMO_MCH_ID, DEMO_API_KEY)
        .merchant(CHAIN_B_APPID, CHAIN_B_MCH_ID, CHAIN_B_KEY)
        .provider(
            VENDOR_APPID,
            VENDOR_MCH_ID,
            VENDOR_KEY,
            &[MALL_1_SUB, MALL_2_SUB],
        )
        .time_scale(scale)
        .start()
        .await
        .expect("the simulator starts");
    let mut config = scaled_config(&sim, root, scale);
    for shop in shops.iter().filter(|shop| shop.account != "default") {
        let account = simulator_account(&sim, shop.mch_id).expect("the simulator's merchant");
        config.accounts.insert(shop.account.to_owned(), account);
    }
    (sim, config)
}

/// Adds `shops` (but the default store, which always exists) to the proxy's database.
pub async fn add_stores(config: &Config, store: &dyn Store, shops: &[Shop]) {
    for shop in shops
        .iter()
        .filter(|shop| shop.name != stores::DEFAULT_STORE)
    {
        let new = NewStore {
            name: shop.name.to_owned(),
            account: shop.account.to_owned(),
            sub_mch_id: shop.sub_mch_id.map(str::to_owned),
            ..NewStore::default()
        };
        stores::add(&config.accounts(), store, new)
            .await
            .expect("the store is added");
    }
}

/// The API keys of the simulator's merchants besides the demo merchant's, for secret scans.
pub const OTHER_API_KEYS: [&str; 2] = [CHAIN_B_KEY, VENDOR_KEY];

/// Starts the simulator with the demo merchant on free loopback ports at `scale`, writing
/// its certificates under `root/sim-certs` ([`Simulator::local`]).
pub async fn start_simulator(root: &Path, scale: f64) -> SimHandle {
    Simulator::local(root.join("sim-certs"))
        .time_scale(scale)
        .start()
        .await
        .expect("the simulator starts")
}

/// The proxy's configuration for `sim` ([`simulator_config`]): data under `root/data` (or a
/// fresh PostgreSQL database, [`test_store::apply`]), the app directory `root/dist`, port 0,
/// waits divided by `scale`.
pub fn scaled_config(sim: &SimHandle, root: &Path, scale: f64) -> Config {
    let mut config = simulator_config(sim, &root.join("data"), scale);
    config.server.listen = "127.0.0.1:0".parse().expect("an address");
    config.server.app_dir = root.join("dist");
    // The books' scenarios run reconciliation themselves, at the simulated time they choose.
    config.books.daily_run = false;
    test_store::apply(&mut config.store);
    config
}
