//! The same `attempt_id` always answers with the same payment, and never makes a second
//! WeChat order.

use paycode_api::Payment;
use paycode_api::PaymentState::Paid;
use paycode_tests::World;
use paycode_tests::cashier::{created_and_replayed, new_attempt_id};
use paycode_tests::world::AMOUNT_FEN;
use reqwest::StatusCode;
use wxpay::codes::Api;
use wxpay::sim::Behaviour;

use crate::{assert_calls, assert_outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attempt_posted_twice_at_once_makes_one_order() {
    let world = World::start().await;
    let attempt = new_attempt_id();
    let code = world.sim.auth_code(Behaviour::PasswordFree);

    let (first, second) = tokio::join!(
        world.cashier.create_raw(&attempt, AMOUNT_FEN, &code),
        world.cashier.create_raw(&attempt, AMOUNT_FEN, &code),
    );

    let (first, second): (Payment, Payment) = created_and_replayed(&first, &second);
    assert_eq!(first.id, second.id);
    assert_eq!(first.out_trade_no, second.out_trade_no);
    let payment = world.cashier.settled(&first).await;
    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay");
    assert_eq!(world.sim.call_count(Api::Micropay), 1);
    assert_eq!(world.sim.orders().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_settled_attempt_returns_it_without_calling_wechat() {
    let world = World::start().await;
    let attempt = new_attempt_id();
    let code = world.sim.auth_code(Behaviour::PasswordFree);
    let created: Payment = world
        .cashier
        .create_raw(&attempt, AMOUNT_FEN, &code)
        .await
        .expect(StatusCode::CREATED);
    let paid = world.cashier.settled(&created).await;

    let replay: Payment = world
        .cashier
        .create_raw(&attempt, AMOUNT_FEN, &code)
        .await
        .expect(StatusCode::OK);

    assert_eq!(replay.id, paid.id);
    assert_eq!(replay.state, Paid);
    assert_eq!(replay.transaction_id, paid.transaction_id);
    assert_eq!(world.sim.call_count(Api::Micropay), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attempt_with_another_amount_or_code_is_a_conflict() {
    let world = World::start().await;
    let attempt = new_attempt_id();
    let created: Payment = world
        .cashier
        .create_raw(&attempt, AMOUNT_FEN, "134567890123451111")
        .await
        .expect(StatusCode::CREATED);
    // Once micropay has been answered the proxy keeps only the code's last four digits, so
    // the other code differs there.
    let payment = world.cashier.settled(&created).await;

    let other_amount = world
        .cashier
        .create_raw(&attempt, AMOUNT_FEN + 1, "134567890123451111")
        .await;
    let other_code = world
        .cashier
        .create_raw(&attempt, AMOUNT_FEN, "134567890123452222")
        .await;

    for reply in [other_amount, other_code] {
        reply.assert_error(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_CONFLICT",
            Some("attempt_id"),
        );
    }
    assert_eq!(payment.state, Paid);
    assert_eq!(world.cashier.today().await.payments.len(), 1);
    assert_eq!(world.sim.call_count(Api::Micropay), 1);
}
