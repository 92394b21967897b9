//! One test per row of the simulator's behaviour table: the customer behind the payment
//! code decides what WeChat answers, and the proxy must end each payment correctly.

use std::time::Duration;

use paycode_api::FailureCode;
use paycode_api::PaymentState::{Cancelled, Failed, Paid, WaitingForCustomer};
use paycode_tests::World;
use paycode_tests::ledger;
use wxpay::sim::Behaviour;

use crate::{assert_calls, assert_not_before, assert_outcome};

const REVERSE_NOT_BEFORE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_00_password_free_is_paid_by_micropay_alone() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_01_password_then_confirm_waits_for_the_customer_then_is_paid() {
    let world = World::start().await;

    let payment = world
        .pay(Behaviour::PasswordThenConfirm {
            after: Duration::from_secs(10),
        })
        .await;
    let waiting = world.cashier.wait_for(&payment, WaitingForCustomer).await;
    let payment = world.cashier.settled(&waiting).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
    assert_not_before(
        &world,
        &payment,
        "micropay",
        "orderquery",
        Duration::from_secs(3),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_02_password_then_cancel_fails_without_money_taken() {
    let world = World::start().await;

    let payment = world
        .pay_and_settle(Behaviour::PasswordThenCancel {
            after: Duration::from_secs(10),
        })
        .await;

    assert_outcome(&world, &payment, Failed, Some(FailureCode::PayError));
    let calls = world.calls(&payment);
    assert!(
        ledger::shape(&calls).starts_with("micropay orderquery"),
        "{calls:#?}"
    );
    assert_eq!(ledger::count(&calls, "micropay"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_03_password_waits_unanswered_is_reversed_at_the_deadline() {
    let world = World::start().await;

    let payment = world.pay(Behaviour::PasswordWaits).await;
    let waiting = world.cashier.wait_for(&payment, WaitingForCustomer).await;
    let payment = world.cashier.settled(&waiting).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert!(!payment.money_returned);
    // While the password prompt is open WeChat answers reverse with recall=Y, so reverse
    // repeats until the order is closed; then one final query confirms it.
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    // The proxy stops waiting 40 s after submitting, and never reverses earlier.
    assert_not_before(
        &world,
        &payment,
        "micropay",
        "reverse",
        Duration::from_secs(40),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_03_password_waits_confirmed_on_the_phone_is_paid() {
    let world = World::start().await;

    let payment = world.pay(Behaviour::PasswordWaits).await;
    let waiting = world.cashier.wait_for(&payment, WaitingForCustomer).await;
    world.sim.confirm_password(&payment.out_trade_no).unwrap();
    let payment = world.cashier.settled(&waiting).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_04_not_enough_fails_after_one_confirming_query() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::NotEnough).await;

    assert_outcome(&world, &payment, Failed, Some(FailureCode::NotEnough));
    // The order WeChat keeps (PAYERROR) is then closed by reverse: see `closing`.
    let calls = world.calls(&payment);
    assert!(
        ledger::shape(&calls).starts_with("micropay orderquery"),
        "{calls:#?}"
    );
    assert_eq!(ledger::count(&calls, "micropay"), 1);
    assert_eq!(
        ledger::count(&calls, "orderquery"),
        1,
        "one confirming query"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_05_expired_code_fails_and_no_order_exists() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::Expired).await;

    assert_outcome(&world, &payment, Failed, Some(FailureCode::AuthCodeExpire));
    assert_calls(&world, &payment, "micropay orderquery");
    assert!(world.order(&payment).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_06_invalid_code_fails_and_no_order_exists() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::Invalid).await;

    assert_outcome(&world, &payment, Failed, Some(FailureCode::AuthCodeInvalid));
    assert_calls(&world, &payment, "micropay orderquery");
    assert!(world.order(&payment).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_07_system_error_hiding_a_payment_is_found_paid_by_query() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::SystemErrorPaid).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
    // SYSTEMERROR: wait 5 s before the first query (docs/wechat-pay.md §7.1).
    assert_not_before(
        &world,
        &payment,
        "micropay",
        "orderquery",
        Duration::from_secs(5),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_08_bank_error_then_decline_fails_without_money_taken() {
    let world = World::start().await;

    let payment = world
        .pay_and_settle(Behaviour::BankError {
            decline_after: Duration::from_secs(8),
        })
        .await;

    assert_outcome(&world, &payment, Failed, Some(FailureCode::PayError));
    let calls = world.calls(&payment);
    assert!(
        ledger::shape(&calls).starts_with("micropay orderquery"),
        "{calls:#?}"
    );
    assert_eq!(ledger::count(&calls, "micropay"), 1, "never resubmitted");
    assert!(
        ledger::count(&calls, "orderquery") >= 2,
        "BANKERROR is polled: {calls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_09_slow_reply_past_the_timeout_is_confirmed_paid_by_query() {
    let world = World::start_with(100.0, |config| {
        config.wechat.micropay_read_timeout = Duration::from_millis(100);
    })
    .await;
    world.sim.set_slow_reply_delay(Duration::from_millis(400));

    let payment = world
        .pay_and_settle(Behaviour::SlowReply { delay: None })
        .await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_09_slow_reply_within_the_timeout_is_paid_by_micropay_alone() {
    let world = World::start().await;
    world.sim.set_slow_reply_delay(Duration::from_millis(200));

    let payment = world
        .pay_and_settle(Behaviour::SlowReply { delay: None })
        .await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_10_dropped_connection_after_commit_is_found_paid_by_query() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::DropAfterCommit).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_11_gateway_502_is_never_resent_and_ends_reversed() {
    let world = World::start().await;

    let payment = world.pay_and_settle(Behaviour::Gateway502).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert!(!payment.money_returned);
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    assert!(
        world.order(&payment).is_none(),
        "the gateway created no order"
    );
    assert_not_before(&world, &payment, "micropay", "reverse", REVERSE_NOT_BEFORE);
}
