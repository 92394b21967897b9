//! Crash tests: the real `paycode-proxy` binary is killed with SIGKILL at each step of a
//! payment — before micropay is sent, while it is in flight, while the proxy polls, while a
//! reverse is in flight, while a failed payment's order is being closed — and a new process on the same SQLite database finishes every
//! payment. WeChat's books must then match: no second charge, no money kept for a payment
//! shown failed or cancelled.
//!
//! The simulator runs in the test process at 100×; faults (`delay`) hold a call in flight
//! and its call log says when the call arrived. The binary is built by the harness
//! (`paycode_tests::binary::proxy_binary`).

use std::time::Duration;

use paycode_api::PaymentState::{Cancelled, Failed, Paid, WaitingForCustomer};
use paycode_api::{FailureCode, Payment};
use paycode_tests::binary::{CrashRig, ProxyProcess};
use paycode_tests::ledger::{self, assert_ledger_agrees};
use paycode_tests::world::AMOUNT_FEN;
use reqwest::StatusCode;
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault};

const SCALE: f64 = 100.0;

/// A fault that holds a call in flight far longer than any test waits to kill the proxy.
const HOLD: Fault = Fault::Delay { ms: 10_000 };

async fn pay(rig: &CrashRig, proxy: &ProxyProcess, behaviour: Behaviour) -> Payment {
    proxy
        .cashier
        .pay(AMOUNT_FEN, &rig.sim.auth_code(behaviour))
        .await
}

/// Asserts the settled payment's state, that micropay reached WeChat exactly once, and
/// that WeChat's books agree.
fn assert_finished(rig: &CrashRig, payment: &Payment, state: paycode_api::PaymentState) {
    assert_eq!(payment.state, state, "{payment:#?}");
    let calls = ledger::calls_for(&rig.sim, &payment.out_trade_no);
    assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    assert_ledger_agrees(&rig.sim, payment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_micropay_is_sent_sends_it_once_after_restart() {
    // One micropay per second: the second payment waits its turn, stored but not sent.
    let rig = CrashRig::start(SCALE, |config| {
        config.payments.micropay_rate_per_second = 1;
    })
    .await;
    let proxy = rig.spawn().await;
    let first = pay(&rig, &proxy, Behaviour::PasswordFree).await;
    let second = pay(&rig, &proxy, Behaviour::PasswordFree).await;
    proxy.cashier.settled(&first).await;
    assert!(ledger::calls_for(&rig.sim, &second.out_trade_no).is_empty());

    proxy.kill();
    let proxy = rig.spawn().await;
    let second = proxy.cashier.settled(&second).await;

    assert_finished(&rig, &second, Paid);
    assert_eq!(rig.sim.call_count(Api::Micropay), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_micropay_is_in_flight_queries_and_never_resends() {
    let rig = CrashRig::start(SCALE, |_| {}).await;
    rig.sim.inject_fault(Api::Micropay, HOLD, 2);
    let proxy = rig.spawn().await;
    let password_free = pay(&rig, &proxy, Behaviour::PasswordFree).await;
    let password = pay(&rig, &proxy, Behaviour::PasswordWaits).await;
    ledger::until_call(&rig.sim, &password_free.out_trade_no, "micropay").await;
    ledger::until_call(&rig.sim, &password.out_trade_no, "micropay").await;

    proxy.kill();
    rig.sim.confirm_password(&password.out_trade_no).unwrap();
    let proxy = rig.spawn().await;
    let password_free = proxy.cashier.settled(&password_free).await;
    let password = proxy.cashier.settled(&password).await;

    for payment in [&password_free, &password] {
        assert_finished(&rig, payment, Paid);
        let calls = ledger::calls_for(&rig.sim, &payment.out_trade_no);
        assert_eq!(ledger::shape(&calls), "micropay orderquery", "{calls:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_polling_resumes_and_settles_every_payment() {
    let rig = CrashRig::start(SCALE, |_| {}).await;
    let proxy = rig.spawn().await;
    let confirmed = pay(&rig, &proxy, Behaviour::PasswordWaits).await;
    let abandoned = pay(&rig, &proxy, Behaviour::PasswordWaits).await;
    proxy.cashier.wait_for(&confirmed, WaitingForCustomer).await;
    proxy.cashier.wait_for(&abandoned, WaitingForCustomer).await;

    proxy.kill();
    rig.sim.confirm_password(&confirmed.out_trade_no).unwrap();
    let proxy = rig.spawn().await;
    let confirmed = proxy.cashier.settled(&confirmed).await;
    let abandoned = proxy.cashier.settled(&abandoned).await;

    assert_finished(&rig, &confirmed, Paid);
    assert_finished(&rig, &abandoned, Cancelled);
    let calls = ledger::calls_for(&rig.sim, &abandoned.out_trade_no);
    assert_eq!(
        ledger::shape(&calls),
        "micropay orderquery reverse orderquery",
        "{calls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_reversing_a_paid_order_returns_the_money_after_restart() {
    let rig = CrashRig::start(SCALE, |_| {}).await;
    rig.sim.inject_fault(Api::Reverse, HOLD, 1);
    let proxy = rig.spawn().await;
    let payment = pay(&rig, &proxy, Behaviour::PasswordWaits).await;
    proxy.cashier.wait_for(&payment, WaitingForCustomer).await;
    // The cashier cancels, but the customer enters the password before the reverse.
    let reply = proxy.cashier.cancel(&payment.id).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    rig.sim.confirm_password(&payment.out_trade_no).unwrap();
    ledger::until_call(&rig.sim, &payment.out_trade_no, "reverse").await;

    proxy.kill();
    let proxy = rig.spawn().await;
    let payment = proxy.cashier.settled(&payment).await;

    assert_finished(&rig, &payment, Cancelled);
    assert!(payment.money_returned, "{payment:#?}");
    let calls = ledger::calls_for(&rig.sim, &payment.out_trade_no);
    assert!(ledger::count(&calls, "reverse") >= 2, "{calls:#?}");
    assert_eq!(
        rig.sim.order(&payment.out_trade_no).unwrap().trade_state,
        "REVOKED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_repeatedly_mid_payment_still_charges_once() {
    let rig = CrashRig::start(SCALE, |_| {}).await;
    rig.sim.inject_fault(Api::Micropay, HOLD, 1);
    rig.sim.inject_fault(Api::OrderQuery, HOLD, 1);
    let proxy = rig.spawn().await;
    let payment = pay(&rig, &proxy, Behaviour::SystemErrorPaid).await;
    ledger::until_call(&rig.sim, &payment.out_trade_no, "micropay").await;

    proxy.kill();
    let proxy = rig.spawn().await;
    ledger::until_call(&rig.sim, &payment.out_trade_no, "orderquery").await;
    proxy.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let proxy = rig.spawn().await;
    let payment = proxy.cashier.settled(&payment).await;

    assert_finished(&rig, &payment, Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_closing_a_failed_payments_order_closes_it_after_restart() {
    let rig = CrashRig::start(SCALE, |_| {}).await;
    // The first reverse (the background close of the failed payment's PAYERROR order) is
    // held in flight when the proxy is killed.
    rig.sim.inject_fault(Api::Reverse, HOLD, 1);
    let proxy = rig.spawn().await;
    let payment = pay(&rig, &proxy, Behaviour::NotEnough).await;
    let failed = proxy.cashier.settled(&payment).await;
    assert_finished(&rig, &failed, Failed);
    ledger::until_call(&rig.sim, &payment.out_trade_no, "reverse").await;

    proxy.kill();
    let proxy = rig.spawn().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let calls = ledger::calls_for(&rig.sim, &payment.out_trade_no);
        let revoked = rig
            .sim
            .order(&payment.out_trade_no)
            .is_some_and(|order| order.trade_state == "REVOKED");
        if revoked && ledger::count(&calls, "reverse") >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the close was not resumed: {calls:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The cashier still sees the same failure; the order is closed.
    let seen = proxy.cashier.payment(&payment.id).await;
    assert_finished(&rig, &seen, Failed);
    assert_eq!(seen.failure, failed.failure, "{seen:#?}");
    assert_eq!(
        seen.failure.as_ref().map(|f| &f.code),
        Some(&FailureCode::NotEnough)
    );
}
