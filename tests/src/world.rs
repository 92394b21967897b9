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

use paycode_api::Payment;
use paycode_proxy::auth::Terminals;
use paycode_proxy::cli::demo::simulator_config;
use paycode_proxy::config::Config;
use paycode_proxy::startup::Application;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxpay::sim::{Behaviour, CallRecord, OrderView, SimHandle, Simulator};

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
        config.validate().expect("the test configuration is valid");
        let application = Application::build(config.clone())
            .await
            .expect("the proxy starts");
        let terminals = application.state().terminals.clone();
        let (_, token) = terminals.add("counter-1").await.expect("a terminal");
        let served = Served::start(application);
        World {
            sim: Arc::new(sim),
            cashier: Cashier::new(served.address(), Some(token.expose())),
            terminals,
            scale,
            config,
            served,
            _root: root,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn address(&self) -> &str {
        self.served.address()
    }

    /// A new terminal called `name`, and a cashier holding its token.
    pub async fn new_cashier(&self, name: &str) -> Cashier {
        let (_, token) = self.terminals.add(name).await.expect("a terminal");
        Cashier::new(self.address(), Some(token.expose()))
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
    test_store::apply(&mut config.store);
    config
}
