//! What the benchmark examples (`load`, `confirm_latency`) share: the proxy in this process
//! or as the real binary in a child process, configured for a simulator from
//! [`world::start_simulator`](crate::world::start_simulator), with one terminal per virtual
//! cashier; and the figures they print ([`figures`]). The terminals call the API through
//! [`Cashier`](crate::Cashier)'s `try_*` methods.

pub mod figures;

use std::path::Path;
use std::sync::Arc;

use paycode_proxy::auth::Terminals;
use paycode_proxy::config::Config;
use paycode_proxy::startup::{AppState, Application};
use paycode_proxy::store;
use wxpay::sim::SimHandle;

use crate::binary::{ProxyProcess, add_terminal, write_config};
use crate::world::{Served, scaled_config};
use crate::{BoxError, free_port};

/// How the configuration differs from the defaults for a benchmark.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// `payments.micropay_rate_per_second`.
    pub micropay_rate_per_second: u32,
    /// How many terminals (tokens) to create.
    pub terminals: usize,
}

/// A running proxy: where it listens and one bearer token per terminal.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// One token per virtual terminal (`bench-0`, `bench-1`, …).
    pub tokens: Vec<String>,
    /// The process id of the proxy (this process when it runs in process).
    pub pid: u32,
    kind: ProxyKind,
}

enum ProxyKind {
    InProcess(Served),
    Child(ProxyProcess),
}

/// The proxy's configuration for `sim` (real time), with its data under `root/data`.
pub fn bench_config(root: &Path, sim: &SimHandle, settings: &ProxySettings) -> Config {
    let mut config = scaled_config(sim, root, 1.0);
    config.payments.micropay_rate_per_second = settings.micropay_rate_per_second;
    config
}

impl Proxy {
    /// Builds and serves the proxy inside this process (same tokio runtime).
    pub async fn in_process(
        root: &Path,
        sim: &SimHandle,
        settings: &ProxySettings,
    ) -> Result<Proxy, BoxError> {
        let config = bench_config(root, sim, settings);
        config.validate()?;
        let store = store::connect(&config.store).await?;
        let terminals = Terminals::new(store.clone());
        let mut tokens = Vec::with_capacity(settings.terminals);
        for n in 0..settings.terminals {
            let (_, token) = terminals.add(&format!("bench-{n}")).await?;
            tokens.push(token.expose().to_owned());
        }
        let state = AppState::new(Arc::new(config), store)?;
        let application = Application::build_with_state(state).await?;
        let served = Served::start(application);
        Ok(Proxy {
            base: served.address().to_owned(),
            tokens,
            pid: std::process::id(),
            kind: ProxyKind::InProcess(served),
        })
    }

    /// Runs the real `paycode-proxy` binary ([`proxy_binary`](crate::binary::proxy_binary))
    /// as a child process with `RUST_LOG=log` (plus the listening line), configured by a generated `paycode.toml` in
    /// `root`; the terminals are added to its database before it starts.
    pub async fn child(
        root: &Path,
        sim: &SimHandle,
        settings: &ProxySettings,
        log: &str,
    ) -> Result<Proxy, BoxError> {
        let mut config = bench_config(root, sim, settings);
        config.server.listen = format!("127.0.0.1:{}", free_port()).parse()?;
        config.validate()?;
        let config_path = root.join("paycode.toml");
        write_config(&config, &config_path);
        let mut tokens = Vec::with_capacity(settings.terminals);
        for n in 0..settings.terminals {
            tokens.push(add_terminal(&config, &format!("bench-{n}")).await);
        }
        // The harness reads the address from the listening line, at info.
        let filter = format!("{log},paycode_proxy::startup=info");
        let process = ProxyProcess::spawn(&config_path, None, &filter).await;
        Ok(Proxy {
            base: process.cashier.base().to_owned(),
            tokens,
            pid: process.pid().ok_or("the proxy process has gone")?,
            kind: ProxyKind::Child(process),
        })
    }

    /// Stops the proxy: in process gracefully; the child is killed (pending payments stay in
    /// the throw-away database).
    pub async fn stop(self) {
        match self.kind {
            ProxyKind::InProcess(served) => {
                let _ = served.stop().await;
            }
            ProxyKind::Child(process) => process.kill(),
        }
    }
}
