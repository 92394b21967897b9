//! A chain: one simulated WeChat Pay (every account of [`SHOPS`](crate::world::SHOPS),
//! including a service provider with sub-merchants), one fresh database, and N real
//! `paycode-proxy` binaries on it, each with its own `[server] instance` name, port and
//! configuration file ([`Chain`]). Instances can be SIGKILLed and restarted under the same
//! name and configuration, or frozen with SIGSTOP and resumed ([`Node`]).
//!
//! The chain soak ([`soak`], `--example chain_soak`) and the chain benchmarks ([`bench`],
//! `--example chain_bench`) are built on it; [`checks`] holds the soak's end-of-run checks
//! that only a chain needs (docs/chains.md).

pub mod bench;
pub mod checks;
pub mod soak;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use paycode_proxy::config::Config;
use paycode_proxy::store;
use tempfile::TempDir;
use wxpay::sim::SimHandle;

use crate::binary::{ProxyProcess, write_config};
use crate::cashier::Cashier;
use crate::test_store::{DATABASE_URL_VARIABLE, fresh_database};
use crate::world::{Shop, add_stores, stores_simulator};
use crate::{free_port, test_log};

/// Where a chain keeps its payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A fresh database on the PostgreSQL server at `PAYCODE_TEST_DATABASE_URL` (the
    /// throwaway cluster of `scripts/pg-cluster`): the only back end several instances share.
    Postgres,
    /// A SQLite file in the chain's directory: one instance only.
    Sqlite,
}

/// One simulator, one database and N instances of the binary. Dropping it kills every
/// instance.
pub struct Chain {
    /// The simulated WeChat Pay (in this process, so its books survive every kill).
    pub sim: SimHandle,
    /// How many times faster than real time simulated time runs.
    pub scale: f64,
    /// The configuration every instance shares (each node's file differs only in
    /// `[server] listen`, `[server] instance` and `[store] data_dir`).
    pub config: Config,
    /// The instances, `node-1` … `node-N`.
    pub nodes: Vec<Arc<Node>>,
    _root: TempDir,
}

impl Chain {
    /// Starts the simulator at `scale`, makes the database (`backend`), adds the stores
    /// `shops` to it, and writes one configuration file per instance (`count` of them,
    /// adjusted by `tweak`, which applies to all). No instance runs yet: add terminals, then
    /// [`Chain::start_all`].
    ///
    /// Panics when `backend` is PostgreSQL and `PAYCODE_TEST_DATABASE_URL` is unset, or
    /// when SQLite is asked for more than one instance.
    pub async fn new(
        count: usize,
        backend: Backend,
        scale: f64,
        shops: &[Shop],
        tweak: impl Fn(&mut Config),
    ) -> Chain {
        test_log::init();
        assert!(
            backend == Backend::Postgres || count == 1,
            "instances share a database only on PostgreSQL"
        );
        let root = tempfile::tempdir().expect("a temporary directory");
        let (sim, mut config) = stores_simulator(root.path(), scale, shops).await;
        config.store.database_url = match backend {
            Backend::Postgres => {
                let server = std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| {
                    panic!(
                        "a chain runs on PostgreSQL and needs {DATABASE_URL_VARIABLE}: start a \
                         throwaway cluster with `eval \"$(scripts/pg-cluster start)\"`"
                    )
                });
                Some(fresh_database(&server))
            }
            Backend::Sqlite => None,
        };
        tweak(&mut config);
        config
            .validate()
            .expect("the chain's configuration is valid");
        let database = store::connect(&config.store)
            .await
            .expect("the database opens");
        add_stores(&config, database.as_ref(), shops).await;
        database.close().await;

        let nodes = (1..=count)
            .map(|index| {
                let name = format!("node-{index}");
                let port = free_port();
                let mut own = config.clone();
                own.server.instance = Some(name.clone());
                own.server.listen = format!("127.0.0.1:{port}").parse().expect("an address");
                if backend == Backend::Postgres {
                    // Nothing of a PostgreSQL chain lives in data_dir; apart, all the same.
                    own.store.data_dir = root.path().join(&name);
                }
                let config_path = root.path().join(format!("{name}.toml"));
                write_config(&own, &config_path);
                Arc::new(Node {
                    name,
                    base: format!("http://127.0.0.1:{port}"),
                    config_path,
                    process: tokio::sync::Mutex::new(None),
                    paused: AtomicBool::new(false),
                    runs: AtomicU64::new(0),
                })
            })
            .collect();
        Chain {
            sim,
            scale,
            config,
            nodes,
            _root: root,
        }
    }

    /// Adds the terminal `name` to the store `store` and returns its bearer token (on
    /// SQLite, call it while no instance runs).
    pub async fn add_terminal(&self, name: &str, store: &str) -> String {
        crate::binary::add_terminal_to(&self.config, name, store).await
    }

    /// Starts every instance that is not running, logging at `filter`.
    pub async fn start_all(&self, filter: &str) {
        for node in &self.nodes {
            node.start(filter).await;
        }
    }

    /// Adds the manager `name` for every store to the chain's database.
    pub async fn add_manager(&self, name: &str) -> crate::world::TestManager {
        crate::world::TestManager::add_to_database(&self.config, name).await
    }

    /// A cashier holding `token` for every instance, in node order.
    pub fn cashiers(&self, token: &str) -> Vec<Cashier> {
        self.nodes
            .iter()
            .map(|node| Cashier::new(&node.base, Some(token)))
            .collect()
    }

    /// SIGKILLs every instance and returns their logs (resuming a paused one first).
    pub async fn kill_all(&self) -> Vec<(String, String)> {
        let mut logs = Vec::new();
        for node in &self.nodes {
            node.resume().await;
            if let Some(log) = node.kill().await {
                logs.push((node.name.clone(), log));
            }
        }
        logs
    }
}

/// One instance: its name, address and configuration file, and the running process (if
/// any). Restarts reuse the same name, port and file.
pub struct Node {
    /// `[server] instance`, also what its `User-Agent` names.
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its `paycode.toml`.
    pub config_path: PathBuf,
    process: tokio::sync::Mutex<Option<ProxyProcess>>,
    paused: AtomicBool,
    runs: AtomicU64,
}

impl Node {
    /// Starts the binary on this node's configuration (no-op when it runs) and waits until
    /// it listens.
    pub async fn start(&self, filter: &str) {
        let mut process = self.process.lock().await;
        if process.is_none() {
            *process = Some(ProxyProcess::spawn(&self.config_path, None, filter).await);
            self.runs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// SIGKILLs the process (resumed first if paused, so that it dies at once) and returns
    /// everything it logged; `None` when it was not running.
    pub async fn kill(&self) -> Option<String> {
        let process = self.process.lock().await.take()?;
        if self.paused.swap(false, Ordering::SeqCst) {
            process.resume();
        }
        tokio::task::spawn_blocking(move || process.kill_and_collect_log())
            .await
            .ok()
    }

    /// Freezes the process with SIGSTOP; false when it was not running or already paused.
    pub async fn pause(&self) -> bool {
        let process = self.process.lock().await;
        match process.as_ref() {
            Some(process) if !self.paused.swap(true, Ordering::SeqCst) => {
                process.pause();
                true
            }
            _ => false,
        }
    }

    /// Resumes a paused process (SIGCONT); a no-op otherwise.
    pub async fn resume(&self) {
        let process = self.process.lock().await;
        if let Some(process) = process.as_ref() {
            if self.paused.swap(false, Ordering::SeqCst) {
                process.resume();
            }
        }
    }

    /// Whether the process is frozen.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// How many times the binary was started on this node.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// The running process's id.
    pub async fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .await
            .as_ref()
            .and_then(ProxyProcess::pid)
    }
}

impl crate::soak::SimOwner for Chain {
    fn sim(&self) -> &SimHandle {
        &self.sim
    }
}

/// How long a SIGSTOPped instance stays frozen by default: past a 10 s lease by 4 s.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(14);
