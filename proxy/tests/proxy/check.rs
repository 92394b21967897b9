//! `paycode-proxy check` against the simulator: what it reports for a good configuration,
//! and that a wrong key or a missing certificate fails with the setting to fix.

use paycode_proxy::cli::check::{self, CheckError};
use wxpay::ApiKey;
use wxpay::sim::DEMO_API_KEY;

use crate::helpers::with_simulator;

#[tokio::test]
async fn a_good_configuration_reports_each_check() {
    let root = tempfile::tempdir().unwrap();
    let (sim, config) = with_simulator(root.path()).await;
    let report = crate::helpers::check_report(&config).await;
    assert!(report.contains("ok    database"), "{report}");
    assert!(
        report.contains("client certificate CN=10000100"),
        "{report}"
    );
    assert!(report.contains("days)"), "{report}");
    assert!(
        report.contains("answered a signed query for merchant 10000100"),
        "{report}"
    );
    assert!(!report.contains(DEMO_API_KEY), "{report}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_key_or_a_missing_certificate_fails_naming_the_setting() {
    let root = tempfile::tempdir().unwrap();
    let (sim, mut config) = with_simulator(root.path()).await;
    config.wechat.api_key = ApiKey::new("00000000000000000000000000000000");

    let wrong_key = check::run(&config, &mut Vec::new()).await.unwrap_err();

    assert!(matches!(wrong_key, CheckError::Wechat(_)), "{wrong_key:?}");
    assert!(
        wrong_key.to_string().contains("wechat.api_key"),
        "{wrong_key}"
    );
    config.wechat.cert_pem = None;
    config.wechat.key_pem = None;
    let no_certificate = check::run(&config, &mut Vec::new()).await.unwrap_err();
    assert!(
        matches!(no_certificate, CheckError::Certificate(_)),
        "{no_certificate:?}"
    );
    assert!(no_certificate.to_string().contains("wechat.cert_p12"));
    sim.shutdown().await;
}

#[tokio::test]
async fn every_account_and_every_providers_store_is_checked_by_name() {
    use paycode_proxy::cli::demo::simulator_account;
    use paycode_proxy::store::{SqliteStore, Store};
    use paycode_proxy::stores::{self, NewStore};
    use wxpay::sim::{DEMO_APPID, DEMO_MCH_ID};

    let root = tempfile::tempdir().unwrap();
    let sim = wxpay::sim::Simulator::local(root.path().join("sim-certs"))
        .merchant(DEMO_APPID, DEMO_MCH_ID, DEMO_API_KEY)
        .provider(
            "wx2222222222222222",
            "1900000200",
            "c0c1c2c3c4c5c6c7c8c9cac0c1c2c3c4",
            &["1900000201"],
        )
        .start()
        .await
        .unwrap();
    let mut config = crate::helpers::config_in(root.path());
    config.wechat = paycode_proxy::cli::demo::simulator_wechat_config(&sim);
    config.accounts.insert(
        "vendor".into(),
        simulator_account(&sim, "1900000200").unwrap(),
    );
    let database = SqliteStore::connect(&config.store).await.unwrap();
    let add = |name: &str, sub: &str| NewStore {
        name: name.into(),
        account: "vendor".into(),
        sub_mch_id: Some(sub.into()),
        ..NewStore::default()
    };
    stores::add(&config.accounts(), &database, add("mall-1", "1900000201"))
        .await
        .unwrap();
    let report = crate::helpers::check_report(&config).await;
    assert!(
        report.contains("account vendor: client certificate CN=1900000200"),
        "{report}"
    );
    assert!(
        report.contains("signed query for store mall-1 (sub_mch_id 1900000201)"),
        "{report}"
    );
    assert!(report.contains("account default: WeChat Pay"), "{report}");
    // A store whose sub-merchant is not bound to the provider fails, naming the store.
    stores::add(&config.accounts(), &database, add("mall-x", "1900000999"))
        .await
        .unwrap();
    let unbound = check::run(&config, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(unbound, CheckError::Wechat(_)), "{unbound:?}");
    assert!(unbound.to_string().contains("store mall-x"), "{unbound}");
    assert!(unbound.to_string().contains("account vendor"), "{unbound}");
    database.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_example_file_with_the_block_sim_prints_passes_check_against_the_simulator() {
    // `paycode-proxy sim` with its defaults, as a new user runs it next to the example file.
    let root = tempfile::tempdir().unwrap();
    let sim = wxpay::sim::Simulator::local(root.path().join("sim-certs"))
        .start()
        .await
        .unwrap();
    let example = include_str!("../../paycode.example.toml");
    let path = root.path().join("paycode.toml");
    let example_config =
        paycode_proxy::config::Config::from_sources(&path, example, Vec::<(String, String)>::new())
            .unwrap();
    let merchant = &sim.merchants()[0];
    assert_eq!(example_config.wechat.appid, merchant.appid);
    assert_eq!(example_config.wechat.mch_id, merchant.mch_id);
    let example_key = example_config.wechat.api_key.expose().to_owned();
    assert_eq!(example_key, merchant.key.expose());

    // The printed block replaces the example's [wechat] section; the key is the example's
    // own, which the block never prints.
    let block = wxpay::sim::cli::proxy_config(&sim);
    assert!(!block.contains(&example_key), "{block}");
    let wechat_at = example.find("\n[wechat]\n").unwrap();
    let after_wechat = wechat_at + example[wechat_at + 1..].find("\n[").unwrap() + 1;
    let data_dir = root.path().join("data").display().to_string();
    let text = format!(
        "{}\n{block}api_key = \"{example_key}\"\n{}",
        &example[..wechat_at],
        &example[after_wechat..],
    )
    .replace("data_dir = \"data\"", &format!("data_dir = {data_dir:?}"));
    let config =
        paycode_proxy::config::Config::from_sources(&path, &text, Vec::<(String, String)>::new())
            .unwrap_or_else(|error| panic!("{error}\n{text}"));
    let report = crate::helpers::check_report(&config).await;
    assert!(
        report.contains("answered a signed query for merchant 10000100"),
        "{report}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_real_cause_and_no_password() {
    let root = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::config_in(root.path());
    // Nothing listens on port 1.
    config.store.database_url = Some("postgres://paycode:s3cret-pw@127.0.0.1:1/paycode".into());

    let checked = check::run(&config, &mut Vec::new()).await.unwrap_err();
    let migrated = paycode_proxy::store::migrate(&config.store)
        .await
        .unwrap_err();

    for message in [checked.to_string(), paycode_proxy::error::chain(&migrated)] {
        assert!(message.contains("store.database_url"), "{message}");
        assert!(message.contains("127.0.0.1:1/paycode"), "{message}");
        assert!(message.contains("Connection refused"), "{message}");
        assert!(!message.contains("pool timed out"), "{message}");
        assert!(!message.contains("s3cret-pw"), "{message}");
    }
}

#[tokio::test]
async fn commands_on_postgresql_log_no_notices_by_default() {
    let Some(backend) = crate::helpers::Backend::postgres() else {
        return;
    };
    let database = crate::helpers::TestDatabase::new(&backend).await;
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("paycode.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ndata_dir = {:?}\ndatabase_url = {:?}\n\n[wechat]\n\
             appid = \"wxd930ea5d5a258f4f\"\nmch_id = \"10000100\"\n\
             api_key = \"192006250b4c09247ec02edce69f6a2d\"\n",
            root.path().join("data").display().to_string(),
            database.config.database_url.as_deref().unwrap(),
        ),
    )
    .unwrap();
    let migrate = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_paycode-proxy"));
        command.arg("--config").arg(&config).arg("migrate");
        command.env_remove("RUST_LOG");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PAYCODE_") {
                command.env_remove(name);
            }
        }
        command.output().unwrap()
    };

    let first = migrate();
    let again = migrate();

    for run in [first, again] {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        // The migrator's CREATE TABLE IF NOT EXISTS makes PostgreSQL send this notice.
        assert!(!stderr.contains("already exists, skipping"), "{stderr}");
    }
}
