//! [`World`]: one simulated WeChat Pay and one proxy serving its real HTTP API, in process.
//!
//! The simulator runs on simulated time `scale` times faster than real time, and the proxy's
//! waits (query schedule, 40 s deadline, 15 s reverse rule, …) are divided by the same
//! factor with [`scale_waits`], so a 40-second wait takes 400 ms at the default 100×. The
//! proxy keeps its payments in SQLite in a temporary directory and talks to the simulator
//! over HTTPS with the client certificate the simulator issued.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use paycode_api::Payment;
use paycode_proxy::auth::Terminals;
use paycode_proxy::cli::demo::{scale_waits, simulator_wechat_config};
use paycode_proxy::config::Config;
use paycode_proxy::startup::Application;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxpay::sim::{
    Behaviour, CallRecord, DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, OrderView, SimHandle, Simulator,
};

use crate::cashier::Cashier;
use crate::ledger;

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
    address: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _root: TempDir,
}

impl World {
    /// A world at [`DEFAULT_SCALE`] with the default configuration.
    pub async fn start() -> World {
        World::start_with(DEFAULT_SCALE, |_| {}).await
    }

    /// A world at `scale` whose configuration `tweak` adjusts after the waits are scaled.
    pub async fn start_with(scale: f64, tweak: impl FnOnce(&mut Config) + Send + 'static) -> World {
        let root = tempfile::tempdir().expect("a temporary directory");
        let sim = start_simulator(root.path(), scale).await;
        let mut config = scaled_config(&sim, root.path(), scale);
        tweak(&mut config);
        config.validate().expect("the test configuration is valid");
        let application = Application::build(config.clone())
            .await
            .expect("the proxy starts");
        let address = format!("http://{}", application.address());
        let terminals = application.state().terminals.clone();
        let (_, token) = terminals.add("counter-1").await.expect("a terminal");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        World {
            sim: Arc::new(sim),
            cashier: Cashier::new(&address, Some(token.expose())),
            terminals,
            scale,
            config,
            address,
            stop: Some(stop),
            server: Some(server),
            _root: root,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A new terminal called `name`, and a cashier holding its token.
    pub async fn new_cashier(&self, name: &str) -> Cashier {
        let (_, token) = self.terminals.add(name).await.expect("a terminal");
        Cashier::new(&self.address, Some(token.expose()))
    }

    /// A cashier without a token (or with `token`, which may be anything).
    pub fn stranger(&self, token: Option<&str>) -> Cashier {
        Cashier::new(&self.address, token)
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
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }
}

/// Starts the simulator with the demo merchant on two loopback ports, writing its
/// certificates under `root/sim-certs`.
pub async fn start_simulator(root: &Path, scale: f64) -> SimHandle {
    Simulator::builder()
        .merchant(DEMO_APPID, DEMO_MCH_ID, DEMO_API_KEY)
        .listen("127.0.0.1:0".parse().expect("an address"))
        .backup_listen("127.0.0.1:0".parse().expect("an address"))
        .cert_dir(root.join("sim-certs"))
        .time_scale(scale)
        .start()
        .await
        .expect("the simulator starts")
}

/// The proxy's configuration for `sim`: data under `root`, port 0, waits divided by `scale`.
pub fn scaled_config(sim: &SimHandle, root: &Path, scale: f64) -> Config {
    let mut config = Config::new(simulator_wechat_config(sim));
    config.server.listen = "127.0.0.1:0".parse().expect("an address");
    config.server.app_dir = root.join("dist");
    config.store.data_dir = root.join("data");
    scale_waits(&mut config.payments, scale);
    config
}
