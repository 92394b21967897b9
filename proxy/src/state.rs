//! [`AppState`]: what every handler can reach through `State<AppState>`.
//!
//! The routes and the terminal extractor depend on this module; it depends only on the
//! layers below them (configuration, store, engine, WeChat client, readiness checks).

use std::sync::Arc;

use axum::extract::FromRef;
use paycode_api::DemoPairing;

use crate::approvals::Approvals;
use crate::auth::Terminals;
use crate::books::run::Books;
use crate::config::Config;
use crate::engine::{Engine, EngineSettings};
use crate::instance::Instance;
use crate::metrics::Metrics;
use crate::notify::Coordination;
use crate::pairing::Pairing;
use crate::readiness::{Readiness, StoreReachable};
use crate::startup::StartupError;
use crate::store::{Store, StoreError};
use crate::wechat::{AccountClients, WechatReachable};

/// How long `/readyz` trusts its last WeChat probe.
const WECHAT_PROBE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// What every handler can reach, through `State<AppState>`. Cheap to clone: every field is
/// shared.
#[derive(Clone)]
pub struct AppState {
    /// The configuration, loaded once at start.
    pub config: Arc<Config>,
    /// The database.
    pub store: Arc<dyn Store>,
    /// Terminal management and authentication, over the same store.
    pub terminals: Terminals,
    /// The checks `/readyz` runs: the store and WeChat.
    pub readiness: Readiness,
    /// The payments engine.
    pub engine: Engine,
    /// The owner's books: reconciliation runs (the daily run, and later the back office).
    pub books: Books,
    /// Pairing codes and their exchange for tokens (`POST /api/v1/pairing`).
    pub pairing: Pairing,
    /// Managers, PIN checks and the approvals manager actions need.
    pub approvals: Approvals,
    /// In demo mode, the demo terminal's pairing, offered to loopback browsers.
    pub demo_pairing: Option<Arc<DemoPairing>>,
    /// This proxy among several on one database: its name and this run's id.
    pub instance: Instance,
    /// On PostgreSQL, the connections that coordinate with the other proxies on the database
    /// (wake-ups and the shared micropay limit); `None` on SQLite.
    pub coordination: Option<Coordination>,
}

impl AppState {
    /// The state for `config` over `store`: a WeChat client per merchant account, the
    /// payments engine built from them and `[payments]`, and the store and WeChat readiness
    /// checks (WeChat: the `[wechat]` account), with metrics and `/readyz` labelled with the
    /// instance's name. On PostgreSQL the engine's micropay limits are shared with the other
    /// proxies on the database ([`Coordination`]). The engine does nothing until
    /// [`Application`](crate::startup::Application) starts it.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<AppState, StartupError> {
        let instance = Instance::new(&config.server);
        let accounts = Arc::new(AccountClients::build(&config, &instance)?);
        let client = accounts
            .iter()
            .next()
            .expect("the [wechat] account is always configured")
            .client_for(
                config.wechat.sub_mch_id.as_deref(),
                config.wechat.sub_appid.as_deref(),
            );
        let engine = Engine::new(
            Arc::clone(&store),
            Arc::clone(&accounts),
            EngineSettings::from_config(&config, &instance),
            Arc::new(Metrics::for_instance(&instance.name)),
        );
        let books = Books::new(
            Arc::clone(&store),
            accounts,
            engine.clone(),
            crate::cli::reconcile::rules(&config),
        );
        let coordination =
            Coordination::for_store(&config.store, &instance.name).map_err(StoreError::from)?;
        if let Some(coordination) = &coordination {
            engine.share_micropay_limits(coordination.pool());
        }
        let mut readiness = Readiness::for_instance(&instance.name)
            .with(Arc::new(StoreReachable::new(
                Arc::clone(&store),
                config.store.backend(),
            )))
            .with(Arc::new(WechatReachable::new(client, WECHAT_PROBE_MAX_AGE)));
        if let Some(warning) = plain_http_warning(&config) {
            readiness = readiness.with_warning(warning);
        }
        Ok(AppState {
            terminals: Terminals::new(Arc::clone(&store)),
            pairing: Pairing::new(Arc::clone(&store), &config.pairing),
            approvals: Approvals::new(Arc::clone(&store), &config.approvals),
            readiness,
            engine,
            books,
            demo_pairing: None,
            instance,
            coordination,
            config,
            store,
        })
    }
}

/// The warning for serving plain HTTP beyond this machine, if the configuration does.
pub fn plain_http_warning(config: &Config) -> Option<String> {
    let listen = config.server.listen;
    (config.server.tls.is_none() && !listen.ip().is_loopback()).then(|| {
        format!(
            "plain HTTP on {listen}: terminal tokens cross the network in the clear and tablets \
             cannot use the camera; run `paycode-proxy tls init` and set [server.tls]"
        )
    })
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}

impl FromRef<AppState> for Terminals {
    fn from_ref(state: &AppState) -> Terminals {
        state.terminals.clone()
    }
}
