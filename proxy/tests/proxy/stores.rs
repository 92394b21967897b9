//! Stores against the configured accounts at start: a single-`[wechat]` configuration is one
//! store, and a store that does not fit the accounts stops the start, naming its field. Each
//! `async fn(Backend)` runs on SQLite and on PostgreSQL ([`conformance!`], `main.rs`).

use paycode_proxy::config::{AccountConfig, Config};
use paycode_proxy::startup::{Application, StartupError};
use paycode_proxy::store::{self, Millis, StoreRecord};
use paycode_proxy::stores::BindingError;
use tempfile::TempDir;
use wxpay::ApiKey;

use crate::helpers::{Backend, TestDatabase, config_in};

conformance!(
    a_single_wechat_configuration_is_one_default_store,
    wechat_in_provider_mode_gives_the_default_store_its_sub_merchant,
    a_store_naming_an_unknown_account_is_refused_at_start,
    a_providers_store_without_sub_mch_id_is_refused_at_start,
    a_sub_merchant_store_of_an_account_that_is_no_longer_a_provider_is_refused,
);

/// A valid configuration on a fresh database of `backend` (kept alive by the guards).
async fn config_on(backend: &Backend) -> (Config, TempDir, TestDatabase) {
    let root = tempfile::tempdir().unwrap();
    let database = TestDatabase::new(backend).await;
    let mut config = config_in(root.path());
    config.store = database.config.clone();
    (config, root, database)
}

fn vendor(provider: bool) -> AccountConfig {
    AccountConfig {
        provider,
        appid: "wx2222222222222222".into(),
        mch_id: "1900000200".into(),
        api_key: ApiKey::new("c0c1c2c3c4c5c6c7c8c9cac0c1c2c3c4"),
        sign_type: None,
        cert_pem: None,
        key_pem: None,
        cert_p12: None,
    }
}

fn store(name: &str, account: &str, sub_mch_id: Option<&str>) -> StoreRecord {
    StoreRecord {
        id: format!("id-{name}"),
        name: name.into(),
        account: account.into(),
        sub_mch_id: sub_mch_id.map(str::to_owned),
        sub_appid: None,
        address: None,
        created_at: Millis::now(),
        disabled_at: None,
    }
}

/// Starts the proxy on `config` after storing `records` directly (as an older configuration
/// or another tool might have left them), and returns the refused field.
async fn refused_field(config: &Config, records: &[StoreRecord]) -> String {
    let database = store::connect(&config.store).await.unwrap();
    for record in records {
        database.add_store(record).await.unwrap();
    }
    database.close().await;
    match Application::build(config.clone()).await {
        Err(StartupError::Binding(BindingError::Invalid { field, .. })) => field,
        Err(other) => panic!("expected a store to be refused, got {other:?}"),
        Ok(_) => panic!("expected a store to be refused, but the proxy started"),
    }
}

async fn a_single_wechat_configuration_is_one_default_store(backend: Backend) {
    let (config, _root, _database) = config_on(&backend).await;
    let application = Application::build(config).await.unwrap();

    let stores = application.state().store.list_stores().await.unwrap();

    assert_eq!(stores.len(), 1, "{stores:#?}");
    assert_eq!(stores[0].name, "default");
    assert_eq!(stores[0].account, "default");
    assert_eq!(stores[0].sub_mch_id, None);
}

async fn wechat_in_provider_mode_gives_the_default_store_its_sub_merchant(backend: Backend) {
    let (mut config, _root, _database) = config_on(&backend).await;
    config.wechat.sub_mch_id = Some("1900000109".into());
    let application = Application::build(config).await.unwrap();

    let stores = application.state().store.list_stores().await.unwrap();

    assert_eq!(stores[0].sub_mch_id.as_deref(), Some("1900000109"));
}

async fn a_store_naming_an_unknown_account_is_refused_at_start(backend: Backend) {
    let (config, _root, _database) = config_on(&backend).await;
    let field = refused_field(&config, &[store("shop-b", "chain_b", None)]).await;
    assert_eq!(field, "stores.shop-b.account");
}

async fn a_providers_store_without_sub_mch_id_is_refused_at_start(backend: Backend) {
    let (mut config, _root, _database) = config_on(&backend).await;
    config.accounts.insert("vendor".into(), vendor(true));
    let field = refused_field(&config, &[store("mall-1", "vendor", None)]).await;
    assert_eq!(field, "stores.mall-1.sub_mch_id");
}

async fn a_sub_merchant_store_of_an_account_that_is_no_longer_a_provider_is_refused(
    backend: Backend,
) {
    let (mut config, _root, _database) = config_on(&backend).await;
    config.accounts.insert("vendor".into(), vendor(false));
    let field = refused_field(&config, &[store("mall-1", "vendor", Some("1900000201"))]).await;
    assert_eq!(field, "stores.mall-1.sub_mch_id");
}

/// A certificate of another merchant would fail every reverse and refund of its account's
/// payments: the proxy does not start with one. (The configuration, not the database, is at
/// fault, so this runs on SQLite only.)
#[tokio::test]
async fn an_account_with_another_merchants_certificate_is_refused_at_start() {
    // Arrange
    let root = tempfile::tempdir().unwrap();
    let mut config = config_in(root.path());
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "10000100");
    let certificate = params.self_signed(&key).unwrap();
    let cert_pem = root.path().join("vendor-cert.pem");
    let key_pem = root.path().join("vendor-key.pem");
    std::fs::write(&cert_pem, certificate.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    config.accounts.insert(
        "vendor".into(),
        AccountConfig {
            cert_pem: Some(cert_pem),
            key_pem: Some(key_pem),
            ..vendor(false)
        },
    );

    // Act
    let refused = Application::build(config).await.err();

    // Assert
    let refused = refused.expect("the proxy does not start");
    let message = paycode_proxy::error::chain(&refused);
    assert!(
        message.contains("account vendor") && message.contains("\"1900000200\""),
        "{message}"
    );
}

/// Demo mode keeps its data in SQLite under `./data`, so this one runs on SQLite only.
#[tokio::test]
async fn demo_mode_has_a_direct_store_and_a_sub_merchant_store_each_with_a_terminal() {
    use paycode_proxy::auth::{TerminalToken, Terminals};
    use paycode_proxy::cli::demo::{Demo, DemoArgs};

    let root = tempfile::tempdir().unwrap();
    let args = DemoArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        sim_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: root.path().join("data"),
        app_dir: root.path().join("dist"),
        time_scale: 100.0,
        tls: false,
    };
    for run in 0..2 {
        let demo = Demo::start(&args).await.unwrap();
        let state = demo.application.state();
        let stores = state.store.list_stores().await.unwrap();
        let names: Vec<&str> = stores.iter().map(|store| store.name.as_str()).collect();
        assert_eq!(names, ["default", "demo-mall"], "run {run}");
        assert_eq!(stores[1].account, "demo_vendor");
        assert_eq!(stores[1].sub_mch_id.as_deref(), Some("1900000301"));
        let pairing = state.demo_pairing.as_ref().unwrap();
        assert_eq!(pairing.terminal.store.name, "default");
        let mall_token =
            std::fs::read_to_string(args.data_dir.join("demo-mall-terminal.token")).unwrap();
        let mall_terminal = Terminals::new(state.store.clone())
            .authenticate(&TerminalToken::parse(mall_token.trim()).unwrap())
            .await
            .unwrap()
            .expect("the mall's terminal");
        assert_eq!(mall_terminal.store_id, stores[1].id);
        assert!(demo.banner().contains("demo-mall (sub-merchant 1900000301"));
        // A second start finds both stores and both terminals again.
        assert_eq!(state.store.list_terminals().await.unwrap().len(), 2);
        demo.sim.shutdown().await;
    }
}
