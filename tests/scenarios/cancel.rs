//! The cashier's cancel: it becomes a reverse, never earlier than 15 s after submitting, and
//! when it loses the race to a payment, the money goes back and the payment says so.

use std::time::Duration;

use paycode_api::Payment;
use paycode_api::PaymentState::{Cancelled, Cancelling, Paid, Submitting, WaitingForCustomer};
use paycode_tests::World;
use reqwest::StatusCode;
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault};

use crate::{assert_calls, assert_not_before, assert_outcome};

const REVERSE_NOT_BEFORE: Duration = Duration::from_secs(15);

async fn cancel(world: &World, payment: &Payment) -> Payment {
    let cancelled: Payment = world
        .cashier
        .cancel(&payment.id)
        .await
        .expect(StatusCode::OK);
    assert!(cancelled.cancel_requested, "{cancelled:#?}");
    cancelled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_waiting_for_the_customer_reverses_after_15s() {
    let world = World::start().await;
    let payment = world.pay(Behaviour::PasswordWaits).await;
    let waiting = world.cashier.wait_for(&payment, WaitingForCustomer).await;

    let cancelling = cancel(&world, &waiting).await;
    let payment = world.cashier.settled(&cancelling).await;

    assert_eq!(cancelling.state, Cancelling);
    assert_outcome(&world, &payment, Cancelled, None);
    assert!(!payment.money_returned);
    // The prompt stays open on the phone, so WeChat answers recall=Y and the reverse is
    // repeated until the order closes (at the latest WeChat's 45 s auto-revoke).
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    assert_not_before(&world, &payment, "micropay", "reverse", REVERSE_NOT_BEFORE);
    assert_eq!(world.order(&payment).unwrap().trade_state, "REVOKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_losing_the_race_to_micropay_returns_the_money() {
    let world = World::start().await;
    // WeChat takes the money as micropay arrives, but answers only 300 ms later.
    world
        .sim
        .inject_fault(Api::Micropay, Fault::Delay { ms: 300 }, 1);
    let payment = world.pay(Behaviour::PasswordFree).await;
    world.until_call(&payment, "micropay").await;

    let cancelling = cancel(&world, &payment).await;
    let payment = world.cashier.settled(&cancelling).await;

    assert_eq!(cancelling.state, Submitting, "the answer is still awaited");
    assert_outcome(&world, &payment, Cancelled, None);
    assert!(payment.money_returned, "{payment:#?}");
    assert!(world.order(&payment).unwrap().paid_at.is_some());
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    assert_not_before(&world, &payment, "micropay", "reverse", REVERSE_NOT_BEFORE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_customer_pays_before_the_reverse_returns_the_money() {
    let world = World::start().await;
    let payment = world.pay(Behaviour::PasswordWaits).await;
    let waiting = world.cashier.wait_for(&payment, WaitingForCustomer).await;

    let cancelling = cancel(&world, &waiting).await;
    world.sim.confirm_password(&payment.out_trade_no).unwrap();
    let payment = world.cashier.settled(&cancelling).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert!(payment.money_returned, "{payment:#?}");
    assert_not_before(&world, &payment, "micropay", "reverse", REVERSE_NOT_BEFORE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_a_paid_payment_is_refused() {
    let world = World::start().await;
    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;

    let reply = world.cashier.cancel(&payment.id).await;

    reply.assert_error(StatusCode::CONFLICT, "PAYMENT_ALREADY_PAID", None);
    let payment = world.cashier.payment(&payment.id).await;
    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay");
}
