//! Helpers shared by the unit tests: a configuration and state over a real SQLite file in a
//! temporary directory.

use std::path::Path;
use std::sync::Arc;

use tempfile::TempDir;
use wxpay::ApiKey;

use crate::config::{Config, WechatConfig};
use crate::state::AppState;
use crate::store::SqliteStore;

/// A valid configuration whose data directory is `data_dir` and which listens on port 0.
pub(crate) fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::new(WechatConfig::new(
        "wx2421b1c4370ec43b",
        "10000100",
        ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
    ));
    config.store.data_dir = data_dir.join("data");
    config.server.listen = "127.0.0.1:0".parse().expect("a valid address");
    config.server.app_dir = data_dir.join("dist");
    config
}

/// An [`AppState`] over a fresh SQLite store. Keep the directory alive as long as the state.
pub(crate) async fn test_state() -> (AppState, TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = test_config(directory.path());
    let store = SqliteStore::connect(&config.store)
        .await
        .expect("the store opens");
    (
        AppState::new(Arc::new(config), Arc::new(store)).expect("the state builds"),
        directory,
    )
}
