//! [`Instances`]: several proxies serving in this process on one PostgreSQL database and one
//! simulated WeChat Pay, as a chain runs them behind a load balancer (docs/postgresql.md §4).
//! One terminal is paired once, in the shared database; each proxy has a [`Cashier`] holding
//! its token, so a test chooses which proxy each request lands on.

use std::sync::Arc;

use paycode_proxy::config::Config;
use paycode_proxy::startup::Application;
use paycode_proxy::store::Store;
use tempfile::TempDir;
use wxpay::sim::SimHandle;

use crate::cashier::Cashier;
use crate::world::{Served, scaled_config, start_simulator};
use crate::{test_log, test_store};

/// Proxies in process on one fresh PostgreSQL database, and the simulator they all call.
pub struct Instances {
    /// The simulated WeChat Pay.
    pub sim: Arc<SimHandle>,
    /// One cashier per proxy, in the order of [`Instances::start`]'s names, all holding the
    /// token of the same terminal, `counter-1`.
    pub cashiers: Vec<Cashier>,
    /// The configuration every proxy shares but for `[server] instance`.
    pub config: Config,
    /// The database, as the first proxy reaches it.
    pub store: Arc<dyn Store>,
    served: Vec<Served>,
    _root: TempDir,
}

impl Instances {
    /// One proxy per name in `names` (its `[server] instance`), at simulator time `scale`,
    /// with `tweak` applied to the shared configuration; `None` when no PostgreSQL server is
    /// configured ([`test_store::shared_postgres`]).
    pub async fn start(
        names: &[&str],
        scale: f64,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<Instances> {
        test_log::init();
        let root = tempfile::tempdir().expect("a temporary directory");
        let sim = start_simulator(root.path(), scale).await;
        let mut config = scaled_config(&sim, root.path(), scale);
        if !test_store::shared_postgres(&mut config.store) {
            return None;
        }
        tweak(&mut config);
        config.validate().expect("the test configuration is valid");
        let mut served = Vec::new();
        let mut store = None;
        for name in names {
            let mut own = config.clone();
            own.server.instance = Some((*name).to_owned());
            let application = Application::build(own).await.expect("the proxy starts");
            store.get_or_insert_with(|| Arc::clone(&application.state().store));
            served.push(Served::start(application));
        }
        let store = store.expect("at least one proxy");
        let terminals = paycode_proxy::auth::Terminals::new(Arc::clone(&store));
        let (_, token) = terminals.add("counter-1").await.expect("a terminal");
        let cashiers = served
            .iter()
            .map(|proxy| Cashier::new(proxy.address(), Some(token.expose())))
            .collect();
        Some(Instances {
            sim: Arc::new(sim),
            cashiers,
            config,
            store,
            served,
            _root: root,
        })
    }

    /// `http://127.0.0.1:PORT` of each proxy, in start order.
    pub fn addresses(&self) -> Vec<&str> {
        self.served.iter().map(Served::address).collect()
    }

    /// Stops the proxy at `index` (in start order) gracefully; the others keep serving, and
    /// its cashier keeps its place in [`Instances::cashiers`] but finds nobody there.
    pub async fn stop_one(&mut self, index: usize) {
        let proxy = self.served.remove(index);
        proxy.stop().await.expect("the proxy stops cleanly");
    }

    /// Stops every proxy gracefully.
    pub async fn stop(self) {
        for proxy in self.served {
            proxy.stop().await.expect("the proxy stops cleanly");
        }
    }
}
