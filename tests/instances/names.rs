//! One live proxy per `[server] instance` on a database (docs/postgresql.md §4): a second
//! proxy under a name in use is refused, also after the first's listening connection was
//! reopened, while a restart after a SIGKILL under the same name starts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use paycode_proxy::config::StoreConfig;
use paycode_proxy::error::chain;
use paycode_proxy::notify::{Coordination, SERVER_TCP_SETTINGS};
use paycode_proxy::startup::Application;
use paycode_tests::binary::{CrashRig, proxy_binary};
use paycode_tests::instances::Instances;
use paycode_tests::test_store;
use sqlx::postgres::PgPool;

/// Asserts that `message` is the refusal of a second proxy called `name`.
fn assert_refused(message: &str, name: &str) {
    assert!(
        message.contains("server.instance")
            && message.contains(&format!("already running as \"{name}\""))
            && message.contains("give every proxy its own [server] instance"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_proxy_under_a_name_in_use_is_refused_also_after_a_reconnect() {
    let Some(chain_of_one) = Instances::start(&["till-a"], 10.0, |_| {}).await else {
        return;
    };
    let named = |name: &str| {
        let mut config = chain_of_one.config.clone();
        config.server.instance = Some(name.to_owned());
        config
    };

    let twin = Application::build(named("till-a")).await.err();

    let twin = twin.expect("a second proxy named till-a is refused");
    assert_refused(&chain(&twin), "till-a");
    let other = Application::build(named("till-b"))
        .await
        .expect("another name on the same database starts");
    drop(other);

    // The server ends till-a's coordination sessions (a fail-over, an administrator): the
    // listener reconnects and must take the name again.
    let url = chain_of_one.config.store.database_url.clone().unwrap();
    let admin = PgPool::connect(&url).await.unwrap();
    let ended: Vec<i32> = sqlx::query_scalar(
        "WITH named AS MATERIALIZED \
         (SELECT pid FROM pg_stat_activity WHERE application_name = $1) \
         SELECT pid FROM named WHERE pg_terminate_backend(pid)",
    )
    .bind("paycode-proxy coordination till-a")
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "till-a has a coordination session");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let relocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND a.application_name = $1 \
             AND NOT (l.pid = ANY($2))",
        )
        .bind("paycode-proxy coordination till-a")
        .bind(&ended)
        .fetch_one(&admin)
        .await
        .unwrap();
        if relocked > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "till-a's listener did not take its name again after reconnecting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let twin = Application::build(named("till-a")).await.err();
    let twin = twin.expect("a second till-a is refused after the first reconnected");
    assert_refused(&chain(&twin), "till-a");
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_restarts_at_once_after_a_sigkill_and_refuses_a_twin() {
    let mut database = StoreConfig::default();
    if !test_store::shared_postgres(&mut database) {
        return;
    }
    let rig = CrashRig::start(10.0, |config| {
        config.store.database_url = database.database_url;
        config.server.instance = Some("till-a".into());
    })
    .await;
    let first = rig.spawn().await;

    // SIGKILL, then the same name at once, as systemd or the chain soak restarts it: the new
    // process waits for PostgreSQL to end the dead session and starts.
    first.kill();
    let second = rig.spawn().await;

    // A twin while it runs: refused, with the setting to change, after waiting its bound.
    let config_path = rig.config_path().to_owned();
    let twin = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(proxy_binary());
        command
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PAYCODE_") {
                command.env_remove(name);
            }
        }
        command.output().expect("the proxy binary runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&twin.stderr);
    assert!(!twin.status.success(), "{stderr}");
    assert_refused(&stderr, "till-a");
    assert!(
        stderr.contains("waiting up to"),
        "the twin said it waited: {stderr}"
    );
    // The running proxy is unaffected.
    second.cashier.terminal().await;
}

/// A proxy whose machine vanished (no socket closed) must not hold its name for the
/// system's two hours of keepalive silence: its coordination sessions carry the server-side
/// TCP settings that end such a session within about half a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordination_session_tells_the_server_to_notice_a_vanished_proxy() {
    let mut config = StoreConfig::default();
    if !test_store::use_postgres(&mut config, "the coordination sessions' TCP settings") {
        return;
    }
    let coordination = Coordination::for_store(&config, "till-tcp")
        .expect("a PostgreSQL store")
        .expect("coordination on PostgreSQL");
    for (setting, value) in SERVER_TCP_SETTINGS {
        let shown: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(coordination.pool())
            .await
            .unwrap();
        assert_eq!(shown, value, "{setting}");
    }
}
