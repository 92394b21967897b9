//! Graceful shutdown: WeChat calls in flight finish and are committed; payments still
//! waiting, closes still owed and queued refunds stay in the store and the next start
//! resumes them.

use std::time::Duration;

use paycode_api::PaymentState::{Failed, Paid, WaitingForCustomer};
use paycode_api::{Fen, RefundState};
use paycode_proxy::config::Config;
use paycode_proxy::engine::machine::{Action, CloseState};
use paycode_proxy::startup::Application;
use paycode_proxy::store;
use paycode_tests::world::{
    AMOUNT_FEN, DEFAULT_SCALE, Served, TestManager, scaled_config, start_simulator,
};
use paycode_tests::{Cashier, ledger};

use crate::closing::until_order_revoked;
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault};

/// A proxy serving on `config` with a cashier at its counter, until [`Running::stop`].
struct Running {
    cashier: Cashier,
    token: String,
    served: Served,
}

impl Running {
    /// Starts the proxy; a new terminal is added unless `token` names one already stored.
    async fn start(config: Config, token: Option<String>) -> Running {
        let application = Application::build(config).await.expect("the proxy starts");
        let manager = TestManager::add(
            &application.state().approvals,
            &format!("manager-{}", uuid::Uuid::new_v4().simple()),
            None,
        )
        .await;
        let token = match token {
            Some(token) => token,
            None => {
                let (_, token) = application
                    .state()
                    .terminals
                    .add("counter-1")
                    .await
                    .unwrap();
                token.expose().to_owned()
            }
        };
        let served = Served::start(application);
        Running {
            cashier: manager.at(Cashier::new(served.address(), Some(&token))),
            token,
            served,
        }
    }

    /// Asks for a graceful shutdown, waits until the proxy has finished it, and hands back
    /// the counter's token for the next start.
    async fn stop(self) -> String {
        self.served.stop().await.unwrap();
        self.token
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_calls_in_flight_and_the_next_start_resumes_the_rest() {
    // Slower simulated time than the default: the waiting payment must outlive a held call
    // (400 ms real) and a shutdown, and at the default scale WeChat's 45 s auto-revoke and
    // the proxy's 40 s wait are under half a real second, so a busy machine revoked the order
    // before the test confirmed the password.
    const SCALE: f64 = 10.0;
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), SCALE).await;
    let config = scaled_config(&sim, root.path(), SCALE);
    let proxy = Running::start(config.clone(), None).await;
    let cashier = &proxy.cashier;
    let waiting = cashier
        .pay(AMOUNT_FEN, &sim.auth_code(Behaviour::PasswordWaits))
        .await;
    let waiting = cashier.wait_for(&waiting, WaitingForCustomer).await;
    // The next micropay is held at WeChat for 400 ms after it has charged the customer.
    sim.inject_fault(Api::Micropay, Fault::Delay { ms: 400 }, 1);
    let in_flight = cashier
        .pay(AMOUNT_FEN, &sim.auth_code(Behaviour::PasswordFree))
        .await;
    ledger::until_call(&sim, &in_flight.out_trade_no, "micropay").await;

    let token = proxy.stop().await;

    // The call in flight finished and its outcome was committed before the process ended.
    let store = store::connect(&config.store).await.unwrap();
    let stored = store.get_payment(&in_flight.id).await.unwrap().unwrap();
    assert_eq!(stored.state, Paid, "{stored:?}");
    let parked = store.get_payment(&waiting.id).await.unwrap().unwrap();
    assert_eq!(parked.state, WaitingForCustomer, "{parked:?}");
    store.close().await;

    // The customer confirms while the proxy is down; the next start picks the payment up.
    sim.confirm_password(&waiting.out_trade_no).unwrap();
    let proxy = Running::start(config, Some(token)).await;
    let cashier = &proxy.cashier;
    let resumed = cashier.settled(&waiting).await;
    assert_eq!(resumed.state, Paid, "{resumed:#?}");
    ledger::assert_ledger_agrees(&sim, &resumed);
    assert_eq!(sim.call_count(Api::Micropay), 2, "nothing was sent twice");
    proxy.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_waiting_for_their_micropay_turn_are_not_sent_during_shutdown() {
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), DEFAULT_SCALE).await;
    let mut config = scaled_config(&sim, root.path(), DEFAULT_SCALE);
    // One micropay per second: the second and third payments wait for their turns.
    config.payments.micropay_rate_per_second = 1;
    let proxy = Running::start(config.clone(), None).await;
    let cashier = &proxy.cashier;
    let mut payments = Vec::new();
    for _ in 0..3 {
        let code = sim.auth_code(Behaviour::PasswordFree);
        payments.push(cashier.pay(AMOUNT_FEN, &code).await);
    }
    cashier.settled(&payments[0]).await;

    let token = proxy.stop().await;

    assert_eq!(
        sim.call_count(Api::Micropay),
        1,
        "no call started after shutdown"
    );
    let store = store::connect(&config.store).await.unwrap();
    for waiting in &payments[1..] {
        let stored = store.get_payment(&waiting.id).await.unwrap().unwrap();
        assert!(!stored.maybe_sent, "still safely unsent: {stored:?}");
    }
    store.close().await;
    let proxy = Running::start(config, Some(token)).await;
    let cashier = &proxy.cashier;
    for waiting in &payments[1..] {
        let paid = cashier.settled(waiting).await;
        assert_eq!(paid.state, Paid, "{paid:#?}");
        ledger::assert_ledger_agrees(&sim, &paid);
    }
    assert_eq!(sim.call_count(Api::Micropay), 3);
    proxy.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_still_owed_when_the_proxy_stops_is_made_after_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), DEFAULT_SCALE).await;
    let mut config = scaled_config(&sim, root.path(), DEFAULT_SCALE);
    // Reverse no earlier than 100 simulated seconds after submitting (1 s of real time), so
    // the proxy surely stops while the close is still owed.
    config.payments.reverse_not_before = Duration::from_secs(1);
    let proxy = Running::start(config.clone(), None).await;
    let failed = proxy
        .cashier
        .pay(AMOUNT_FEN, &sim.auth_code(Behaviour::NotEnough))
        .await;
    let failed = proxy.cashier.settled(&failed).await;
    assert_eq!(failed.state, Failed, "{failed:#?}");

    let token = proxy.stop().await;

    // The close is in the store, not in the stopped process's memory.
    let store = store::connect(&config.store).await.unwrap();
    let stored = store.get_payment(&failed.id).await.unwrap().unwrap();
    assert_eq!(stored.close_state, Some(CloseState::Pending), "{stored:?}");
    assert_eq!(stored.next_action, Some(Action::CloseReverse), "{stored:?}");
    store.close().await;
    let calls = ledger::calls_for(&sim, &failed.out_trade_no);
    assert_eq!(ledger::count(&calls, "reverse"), 0, "{calls:#?}");
    assert_eq!(
        sim.order(&failed.out_trade_no).unwrap().trade_state,
        "PAYERROR"
    );

    let proxy = Running::start(config.clone(), Some(token)).await;
    until_order_revoked(&sim, &failed.out_trade_no).await;
    let calls = ledger::calls_for(&sim, &failed.out_trade_no);
    assert_eq!(ledger::count(&calls, "reverse"), 1, "{calls:#?}");
    let gap = ledger::sim_between(
        ledger::first(&calls, "micropay"),
        ledger::first(&calls, "reverse"),
    );
    assert!(
        gap >= Duration::from_secs(15),
        "reversed {gap:?} after micropay"
    );
    let seen = proxy.cashier.payment(&failed.id).await;
    assert_eq!(seen.state, Failed, "{seen:#?}");
    assert_eq!(
        seen.failure, failed.failure,
        "the cashier sees the same failure"
    );
    ledger::assert_ledger_agrees(&sim, &seen);
    proxy.stop().await;
    let store = store::connect(&config.store).await.unwrap();
    let stored = store.get_payment(&failed.id).await.unwrap().unwrap();
    assert_eq!(stored.close_state, Some(CloseState::Closed), "{stored:?}");
    assert_eq!(stored.next_action, None);
    let events = store.payment_events(&failed.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|event| event.detail.contains("close: order reversed")),
        "the close is in the audit trail: {events:#?}"
    );
    store.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_queued_when_the_proxy_stops_is_sent_after_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), DEFAULT_SCALE).await;
    sim.set_refund_delay(Duration::from_secs(2));
    let mut config = scaled_config(&sim, root.path(), DEFAULT_SCALE);
    // Refunds of one payment 100 simulated seconds apart (1 s of real time), so the proxy
    // surely stops while the second one is still queued.
    config.payments.refund_spacing = Duration::from_secs(1);
    let proxy = Running::start(config.clone(), None).await;
    let paid = proxy
        .cashier
        .pay(AMOUNT_FEN, &sim.auth_code(Behaviour::PasswordFree))
        .await;
    let paid = proxy.cashier.settled(&paid).await;
    proxy.cashier.refund(&paid.id, 300).await;
    let queued = proxy.cashier.refund(&paid.id, 200).await;
    assert_eq!(queued.state, RefundState::Queued, "{queued:#?}");

    let token = proxy.stop().await;

    let store = store::connect(&config.store).await.unwrap();
    let stored = store.get_refund(&queued.id).await.unwrap().unwrap();
    assert_eq!(stored.state, RefundState::Queued, "{stored:?}");
    assert!(stored.next_action_at.is_some(), "{stored:?}");
    store.close().await;
    assert_eq!(sim.order(&paid.out_trade_no).unwrap().refunds.len(), 1);

    let proxy = Running::start(config, Some(token)).await;
    let refunded = proxy
        .cashier
        .wait_until(&paid, "both refunds succeeded", |seen| {
            seen.refunded_fen == Fen(500)
        })
        .await;
    assert!(
        refunded
            .refunds
            .iter()
            .all(|refund| refund.state == RefundState::Succeeded),
        "{refunded:#?}"
    );
    let order = sim.order(&paid.out_trade_no).unwrap();
    assert_eq!(order.refunds.len(), 2);
    assert!(
        ledger::sim_between_times(order.refunds[0].created_at, order.refunds[1].created_at)
            >= Duration::from_secs(60)
    );
    assert_eq!(sim.call_count(Api::Refund), 2, "each application sent once");
    proxy.stop().await;
    sim.shutdown().await;
}
