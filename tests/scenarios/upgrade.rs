//! Upgrading a database of the first release (one `[wechat]` merchant, no stores): written
//! here with migrations 0001–0005 and rows as that release wrote them, with unsettled
//! payments and an unfinished refund, then opened by this proxy. Everything becomes the
//! default store's, on the `[wechat]` account, and every payment ends right. The first
//! release ran on SQLite only, so this scenario stays on SQLite under
//! `PAYCODE_TEST_STORE=postgres` (and says so on stderr).

use std::path::Path;

use paycode_api::PaymentState::{Failed, Paid};
use paycode_api::RefundState;
use paycode_proxy::auth::TerminalToken;
use paycode_proxy::store::Millis;
use paycode_tests::world::{World, scaled_config, start_simulator};
use paycode_tests::{Cashier, ledger, test_store};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use wxpay::Client;
use wxpay::messages::{MicropayRequest, OutTradeNo};
use wxpay::sim::{Behaviour, DEMO_APPID, DEMO_MCH_ID, SimHandle};

const SCALE: f64 = 100.0;

/// Applies the first release's migrations (0001–0005) to a new database at `path`.
async fn first_release_database(path: &Path) -> sqlx::SqlitePool {
    let migrations = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proxy/migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["0001", "0002", "0003", "0004", "0005"]
            .iter()
            .any(|version| name.starts_with(version))
        {
            std::fs::copy(entry.path(), migrations.path().join(&name)).unwrap();
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .unwrap();
    let migrator = sqlx::migrate::Migrator::new(migrations.path())
        .await
        .unwrap();
    assert_eq!(migrator.iter().count(), 5);
    migrator.run(&pool).await.unwrap();
    pool
}

/// A payment row as the first release wrote it.
struct Row<'a> {
    id: &'a str,
    out_trade_no: String,
    auth_code: Option<String>,
    state: &'a str,
    maybe_sent: bool,
    transaction_id: Option<String>,
    next_action: Option<&'a str>,
}

async fn insert_payment(pool: &sqlx::SqlitePool, row: Row<'_>, terminal_id: &str, day: &str) {
    let now = Millis::now().0;
    let settled = row.next_action.is_none();
    sqlx::query(
        "INSERT INTO payments (id, attempt_id, terminal_id, out_trade_no, amount_fen, auth_code, \
         auth_code_last4, description, state, version, maybe_sent, micropay_attempts, \
         transaction_id, submitted_at, next_action_at, created_at, updated_at, settled_at, \
         business_day, next_action, auth_code_fingerprint) \
         VALUES (?, ?, ?, ?, 1230, ?, '5678', 'Paycode 门店-商品', ?, 3, ?, ?, ?, ?, ?, ?, ?, ?, \
         ?, ?, NULL)",
    )
    .bind(row.id)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(terminal_id)
    .bind(&row.out_trade_no)
    .bind(&row.auth_code)
    .bind(row.state)
    .bind(row.maybe_sent)
    .bind(u32::from(row.maybe_sent))
    .bind(&row.transaction_id)
    .bind(row.maybe_sent.then_some(now))
    .bind((!settled).then_some(now))
    .bind(now)
    .bind(now)
    .bind(settled.then_some(now))
    .bind(day)
    .bind(row.next_action)
    .execute(pool)
    .await
    .unwrap();
}

async fn micropay(client: &Client, sim: &SimHandle, out_trade_no: &str) -> String {
    let request = MicropayRequest::new(
        OutTradeNo::new(out_trade_no).unwrap(),
        paycode_api::Fen(1230),
        paycode_api::AuthCode::parse(&sim.auth_code(Behaviour::PasswordFree)).unwrap(),
        "Paycode 门店-商品",
        "127.0.0.1",
    );
    client.call(&request).await.unwrap().transaction_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_database_resumes_every_payment_on_the_wechat_account() {
    // Arrange: the first release's database, with a terminal, a payment never sent, one sent
    // just before the stop (paid at WeChat), a paid one with a refund not yet sent, and a
    // settled failure.
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), SCALE).await;
    let mut config = scaled_config(&sim, root.path(), SCALE);
    test_store::keep_sqlite(
        &mut config.store,
        "the first release's database was a SQLite file",
    );
    let pool = first_release_database(&config.store.default_database_path()).await;
    let token = TerminalToken::generate();
    sqlx::query(
        "INSERT INTO terminals (id, name, token_hash, created_at) VALUES ('t-old', 'counter-old', ?, ?)",
    )
    .bind(token.hash())
    .bind(Millis::now().0)
    .execute(&pool)
    .await
    .unwrap();
    let day = config
        .shop
        .business_day(Millis::now())
        .format("%Y-%m-%d")
        .to_string();
    // The merchant's own client makes the orders the first release sent before it stopped.
    let instance = paycode_proxy::instance::Instance::new(&config.server);
    let client = paycode_proxy::wechat::build_account_client(
        &config.wechat,
        &config.accounts()[0],
        &instance,
    )
    .unwrap();
    let order = |n: u32| format!("PCUPGRADE{n:023}");
    let never_sent = Row {
        id: "p-never-sent",
        out_trade_no: order(1),
        auth_code: Some(sim.auth_code(Behaviour::PasswordFree)),
        state: "submitting",
        maybe_sent: false,
        transaction_id: None,
        next_action: Some("micropay"),
    };
    micropay(&client, &sim, &order(2)).await;
    let sent_then_stopped = Row {
        id: "p-sent",
        out_trade_no: order(2),
        auth_code: Some(sim.auth_code(Behaviour::PasswordFree)),
        state: "submitting",
        maybe_sent: true,
        transaction_id: None,
        next_action: Some("micropay"),
    };
    let paid_transaction = micropay(&client, &sim, &order(3)).await;
    let paid = Row {
        id: "p-paid",
        out_trade_no: order(3),
        auth_code: None,
        state: "paid",
        maybe_sent: true,
        transaction_id: Some(paid_transaction),
        next_action: None,
    };
    let failed = Row {
        id: "p-failed",
        out_trade_no: order(4),
        auth_code: None,
        state: "failed",
        maybe_sent: true,
        transaction_id: None,
        next_action: None,
    };
    for row in [never_sent, sent_then_stopped, paid, failed] {
        insert_payment(&pool, row, "t-old", &day).await;
    }
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, refund_attempt_id, out_refund_no, amount_fen, \
         state, version, next_action_at, created_at, updated_at) \
         VALUES ('r-old', 'p-paid', ?, 'RFUPGRADE00000000000000000000001', 230, 'submitting', 1, ?, ?, ?)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(Millis::now().0)
    .bind(Millis::now().0)
    .bind(Millis::now().0)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    // Act: this proxy opens it.
    let world = World::serve(sim, config, root, SCALE).await;
    let old_terminal = Cashier::new(world.address(), Some(token.expose()));
    let never_sent = old_terminal.payment("p-never-sent").await;
    let never_sent = old_terminal.settled(&never_sent).await;
    let sent = old_terminal
        .settled(&old_terminal.payment("p-sent").await)
        .await;
    let refunded = old_terminal
        .wait_until(
            &old_terminal.payment("p-paid").await,
            "refunded",
            |payment| {
                payment
                    .refunds
                    .iter()
                    .any(|refund| refund.state == RefundState::Succeeded)
            },
        )
        .await;

    // Assert: every payment ended right, against the [wechat] account, in the default store.
    assert_eq!(never_sent.state, Paid, "{never_sent:#?}");
    assert_eq!(sent.state, Paid, "{sent:#?}");
    assert_eq!(refunded.refunded_fen.get(), 230);
    let sent_calls = ledger::calls_for(&world.sim, &sent.out_trade_no);
    assert_eq!(
        ledger::count(&sent_calls, "micropay"),
        1,
        "a micropay that may have left is queried, never sent again: {sent_calls:#?}"
    );
    for payment in [&never_sent, &sent, &refunded] {
        ledger::assert_ledger_agrees(&world.sim, payment);
        for call in ledger::calls_for(&world.sim, &payment.out_trade_no) {
            assert_eq!(call.mch_id.as_deref(), Some(DEMO_MCH_ID), "{call:#?}");
            assert_eq!(call.sub_mch_id, None, "{call:#?}");
        }
    }
    assert_eq!(old_terminal.payment("p-failed").await.state, Failed);
    let day = old_terminal.today().await;
    assert_eq!(
        day.payments.len(),
        4,
        "the old terminal's day is the default store's"
    );
    let stored = world.store.get_payment("p-sent").await.unwrap().unwrap();
    assert_eq!(stored.store_id, "default");
    assert_eq!(stored.merchant.mch_id, DEMO_MCH_ID);
    assert_eq!(stored.merchant.appid, DEMO_APPID);
    let refund = world.store.get_refund("r-old").await.unwrap().unwrap();
    assert_eq!(refund.merchant.mch_id, DEMO_MCH_ID);
    // A manager of the same (only) store sees the same day.
    assert_eq!(world.store_today("default").await.payments.len(), 4);
}
