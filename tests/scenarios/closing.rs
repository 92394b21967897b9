//! The closed loop (docs/wechat-pay.md §7.1 item 6): every order ends `SUCCESS`, `CLOSED` or `REVOKED` at
//! WeChat. A payment that fails while WeChat keeps its order open (`PAYERROR`) is shown
//! `failed` at once, and the proxy closes the order by reverse in the background, no earlier
//! than 15 s after submitting, without changing what the cashier sees. Orders that were never
//! created are left alone.

use std::time::Duration;

use paycode_api::PaymentState::Failed;
use paycode_api::{FailureCode, Payment};
use paycode_proxy::engine::machine::CloseState;
use paycode_proxy::store;
use paycode_tests::World;
use paycode_tests::ledger;
use tokio::time::Instant;
use wxpay::sim::{Behaviour, OrderView, SimHandle};

use crate::{assert_not_before, assert_outcome};

const REVERSE_NOT_BEFORE: Duration = Duration::from_secs(15);

/// Waits (at most 10 s of real time) until the simulator shows `payment`'s order `REVOKED`.
async fn until_revoked(world: &World, payment: &Payment) -> OrderView {
    until_order_revoked(&world.sim, &payment.out_trade_no).await
}

/// Waits (polling every 5 ms, at most 10 s of real time) until the simulator shows the order
/// `out_trade_no` `REVOKED`, and returns it.
pub(crate) async fn until_order_revoked(sim: &SimHandle, out_trade_no: &str) -> OrderView {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(order) = sim.order(out_trade_no) {
            if order.trade_state == "REVOKED" {
                return order;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the order was never closed: {:#?}\ncalls: {:#?}",
            sim.order(out_trade_no),
            ledger::calls_for(sim, out_trade_no)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts that a payment shown `failed` with `code` had its order closed by exactly one
/// reverse, 15 s or more after micropay, and that the cashier still sees the same failure.
async fn assert_closed_in_the_background(world: &World, failed: &Payment, code: FailureCode) {
    assert_outcome(world, failed, Failed, Some(code.clone()));
    let order = until_revoked(world, failed).await;
    assert!(order.paid_at.is_none(), "no money was taken: {order:#?}");
    let calls = world.calls(failed);
    assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    assert_eq!(ledger::count(&calls, "reverse"), 1, "{calls:#?}");
    assert!(
        ledger::shape(&calls).ends_with("orderquery reverse"),
        "the close is the last call: {calls:#?}"
    );
    assert_not_before(world, failed, "micropay", "reverse", REVERSE_NOT_BEFORE);
    // What the cashier sees has not changed: the same state and failure.
    let now = world.cashier.payment(&failed.id).await;
    assert_eq!(now.state, Failed, "{now:#?}");
    assert_eq!(now.failure, failed.failure, "{now:#?}");
    assert_eq!(now.money_returned, failed.money_returned);
    assert_outcome(world, &now, Failed, Some(code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_02_password_then_cancel_ends_failed_and_its_order_revoked() {
    let world = World::start().await;

    let failed = world
        .pay_and_settle(Behaviour::PasswordThenCancel {
            after: Duration::from_secs(5),
        })
        .await;

    assert_closed_in_the_background(&world, &failed, FailureCode::PayError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_04_not_enough_is_failed_at_once_and_its_order_revoked_after_15s() {
    let world = World::start().await;

    let failed = world.pay_and_settle(Behaviour::NotEnough).await;

    assert_closed_in_the_background(&world, &failed, FailureCode::NotEnough).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_08_bank_error_then_decline_ends_failed_and_its_order_revoked() {
    let world = World::start().await;

    let failed = world
        .pay_and_settle(Behaviour::BankError {
            decline_after: Duration::from_secs(8),
        })
        .await;

    assert_closed_in_the_background(&world, &failed, FailureCode::PayError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_never_created_owe_no_close() {
    let world = World::start().await;

    let expired = world.pay_and_settle(Behaviour::Expired).await;
    let invalid = world.pay_and_settle(Behaviour::Invalid).await;

    let store = store::connect(&world.config.store).await.unwrap();
    for payment in [&expired, &invalid] {
        assert!(world.order(payment).is_none());
        let stored = store.get_payment(&payment.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.next_action, stored.close_state),
            (None, None),
            "no reverse is owed for an order WeChat never created: {stored:?}"
        );
    }
    // The failed payment whose order is open does owe one, and the store says so.
    let open = world.pay_and_settle(Behaviour::NotEnough).await;
    let stored = store.get_payment(&open.id).await.unwrap().unwrap();
    assert!(
        matches!(
            stored.close_state,
            Some(CloseState::Pending | CloseState::Closed)
        ),
        "{stored:?}"
    );
    store.close().await;
}
