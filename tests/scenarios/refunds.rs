//! Refunds: full and partial, idempotent on `refund_attempt_id`, never more than was paid,
//! only of paid payments; each ends `succeeded` and shows in the payment's `refunded_fen`.
//! Refunds of one payment reach WeChat at least a minute apart (docs/wechat-pay.md §3.4): a sooner one is
//! answered `queued` and sent when the minute has passed.

use std::time::Duration;

use paycode_api::{Fen, Payment, Refund, RefundState};
use paycode_tests::World;
use paycode_tests::cashier::{created_and_replayed, new_attempt_id};
use paycode_tests::ledger;
use paycode_tests::world::{AMOUNT_FEN, DEFAULT_SCALE};
use reqwest::StatusCode;
use wxpay::codes::Api;
use wxpay::sim::Behaviour;

use crate::slack;

/// A world whose refunds complete 2 simulated seconds after WeChat accepts them, and a
/// paid payment of [`AMOUNT_FEN`].
async fn paid() -> (World, Payment) {
    let world = World::start().await;
    world.sim.set_refund_delay(Duration::from_secs(2));
    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;
    (world, payment)
}

async fn refunded(world: &World, payment: &Payment, total: u64) -> Payment {
    world
        .cashier
        .wait_until(payment, &format!("refunded {total}"), |seen| {
            seen.refunded_fen == Fen(total)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_refund_succeeds_and_the_money_goes_back() {
    let (world, payment) = paid().await;

    let refund = world.cashier.refund(&payment.id, AMOUNT_FEN).await;
    let payment = refunded(&world, &payment, AMOUNT_FEN).await;

    assert_eq!(payment.refunds.len(), 1);
    assert_eq!(payment.refunds[0].id, refund.id);
    assert_eq!(payment.refunds[0].state, RefundState::Succeeded);
    let order = world.order(&payment).unwrap();
    assert_eq!(order.trade_state, "REFUND");
    assert_eq!(order.refunds.len(), 1);
    assert_eq!(order.refunds[0].refund_fee, AMOUNT_FEN);
    assert_eq!(order.refunds[0].refund_status, "SUCCESS");
    assert_eq!(order.refunds[0].out_refund_no, refund.out_refund_no);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_add_up_and_over_refunding_is_refused_before_wechat() {
    let (world, payment) = paid().await;

    world.cashier.refund(&payment.id, 300).await;
    world.cashier.refund(&payment.id, 200).await;
    let payment = refunded(&world, &payment, 500).await;
    let refunds_sent = world.sim.call_count(Api::Refund);
    let over = world
        .cashier
        .refund_raw(&payment.id, &new_attempt_id(), AMOUNT_FEN - 500 + 1)
        .await;
    let rest = world.cashier.refund(&payment.id, AMOUNT_FEN - 500).await;
    let payment = refunded(&world, &payment, AMOUNT_FEN).await;

    over.assert_error(
        StatusCode::CONFLICT,
        "REFUND_EXCEEDS_PAYMENT",
        Some("amount_fen"),
    );
    assert_eq!(
        world.sim.call_count(Api::Refund),
        refunds_sent + 1,
        "only the valid refund reached WeChat"
    );
    assert_eq!(rest.amount_fen, Fen(AMOUNT_FEN - 500));
    assert_eq!(payment.refunds.len(), 3);
    let order = world.order(&payment).unwrap();
    let refunded_by_wechat: u64 = order.refunds.iter().map(|refund| refund.refund_fee).sum();
    assert_eq!(refunded_by_wechat, AMOUNT_FEN);
    // The day list carries the same refunds and nets them out of the day's takings.
    let today = world.cashier.today().await;
    let listed = today.payments.iter().find(|p| p.id == payment.id).unwrap();
    assert_eq!(listed.refunds, payment.refunds);
    assert_eq!(
        (today.totals.refunded_fen, today.totals.net_fen),
        (
            Fen(AMOUNT_FEN),
            Fen(today.totals.paid_fen.get() - AMOUNT_FEN)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_is_idempotent_on_its_attempt_id() {
    let (world, payment) = paid().await;
    let attempt = new_attempt_id();

    let (first, second) = tokio::join!(
        world.cashier.refund_raw(&payment.id, &attempt, 400),
        world.cashier.refund_raw(&payment.id, &attempt, 400),
    );
    let payment = refunded(&world, &payment, 400).await;
    let again = world.cashier.refund_raw(&payment.id, &attempt, 400).await;
    let conflicting = world.cashier.refund_raw(&payment.id, &attempt, 401).await;

    let (first, second): (paycode_api::Refund, _) = created_and_replayed(&first, &second);
    let again: paycode_api::Refund = again.expect(StatusCode::OK);
    assert_eq!(first.id, second.id);
    assert_eq!(first.id, again.id);
    conflicting.assert_error(
        StatusCode::CONFLICT,
        "IDEMPOTENCY_CONFLICT",
        Some("refund_attempt_id"),
    );
    assert_eq!(payment.refunds.len(), 1);
    assert_eq!(world.order(&payment).unwrap().refunds.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_of_an_unpaid_payment_is_refused() {
    let world = World::start().await;
    let payment = world.pay_and_settle(Behaviour::NotEnough).await;

    let reply = world
        .cashier
        .refund_raw(&payment.id, &new_attempt_id(), 100)
        .await;

    reply.assert_error(StatusCode::CONFLICT, "PAYMENT_NOT_PAID", None);
    assert_eq!(world.sim.call_count(Api::Refund), 0);
    assert!(world.cashier.payment(&payment.id).await.refunds.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_of_nothing_is_refused() {
    let (world, payment) = paid().await;

    let zero = world
        .cashier
        .refund_raw(&payment.id, &new_attempt_id(), 0)
        .await;
    let unknown = world
        .cashier
        .refund_raw("no-such-payment", &new_attempt_id(), 100)
        .await;

    zero.assert_error(
        StatusCode::BAD_REQUEST,
        "INVALID_AMOUNT",
        Some("amount_fen"),
    );
    unknown.assert_error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", None);
    assert_eq!(world.sim.call_count(Api::Refund), 0);
}

/// The simulated time between the refund applications WeChat received for `payment`'s order
/// (the calls to `refund`, oldest first), and how many there were.
fn refund_call_gaps(world: &World, payment: &Payment) -> (usize, Vec<Duration>) {
    let calls: Vec<_> = world
        .calls(payment)
        .into_iter()
        .filter(|call| call.endpoint == "refund")
        .collect();
    let gaps = calls
        .windows(2)
        .map(|pair| ledger::sim_between(&pair[0], &pair[1]))
        .collect();
    (calls.len(), gaps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_refund_within_a_minute_is_queued_then_sent_a_minute_after_the_first() {
    let (world, payment) = paid().await;

    let first = world.cashier.refund(&payment.id, 300).await;
    let second = world.cashier.refund(&payment.id, 200).await;

    // The cashier is told at once that the second one waits, and until when.
    assert_ne!(first.state, RefundState::Queued, "{first:#?}");
    assert_eq!(second.state, RefundState::Queued, "{second:#?}");
    let not_before = second
        .not_before
        .as_deref()
        .expect("a queued refund says until when");
    let not_before = chrono::DateTime::parse_from_rfc3339(not_before).unwrap();
    let asked = chrono::DateTime::parse_from_rfc3339(&second.created_at).unwrap();
    // Held for at most one spacing (from the first refund's application, which is no
    // earlier than this request's predecessor); when it really goes is checked at WeChat.
    let wait = (not_before - asked).to_std().expect("not_before is later");
    assert!(
        wait > Duration::ZERO
            && wait <= world.config.payments.refund_spacing + Duration::from_millis(200),
        "held {wait:?}"
    );
    // Both succeed, and WeChat got each application once, a minute apart.
    let payment = refunded(&world, &payment, 500).await;
    assert!(
        payment
            .refunds
            .iter()
            .all(|refund| refund.state == RefundState::Succeeded && refund.not_before.is_none()),
        "{payment:#?}"
    );
    let (applications, gaps) = refund_call_gaps(&world, &payment);
    assert_eq!(applications, 2, "never refused for coming too soon");
    assert!(
        gaps[0] + slack(&world) >= Duration::from_secs(60),
        "the second refund came {:?} after the first",
        gaps[0]
    );
    let order = world.order(&payment).unwrap();
    assert_eq!(order.refunds.len(), 2);
    assert_eq!(order.refunds[1].out_refund_no, second.out_refund_no);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_wechat_still_finds_too_soon_is_queued_again_not_failed() {
    // The proxy's clock runs ahead of WeChat's: it waits only 30 simulated seconds, so
    // WeChat answers FREQUENCY_LIMITED and the refund must wait again rather than fail.
    let world = World::start_with(DEFAULT_SCALE, |config| {
        config.payments.refund_spacing = Duration::from_secs(30).div_f64(DEFAULT_SCALE);
    })
    .await;
    world.sim.set_refund_delay(Duration::from_secs(2));
    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;
    // Both approvals first, so the manager's PIN checks do not space the two refunds apart.
    let approvals = [
        world.cashier.approve("refund").await,
        world.cashier.approve("refund").await,
    ];

    let path = format!("/payments/{}/refunds", payment.id);
    let mut refunds = Vec::new();
    for (approval, amount) in approvals.iter().zip([300, 200]) {
        let body = serde_json::json!({"refund_attempt_id": new_attempt_id(), "amount_fen": amount});
        let refund: Refund = world
            .cashier
            .send_approved(reqwest::Method::POST, &path, approval, Some(&body))
            .await
            .expect(StatusCode::CREATED);
        refunds.push(refund);
    }
    let second = &refunds[1];
    assert_ne!(second.state, RefundState::Failed, "{second:#?}");
    let payment = refunded(&world, &payment, 500).await;

    assert!(
        payment
            .refunds
            .iter()
            .all(|refund| refund.state == RefundState::Succeeded),
        "{payment:#?}"
    );
    let (applications, _) = refund_call_gaps(&world, &payment);
    assert!(
        applications >= 3,
        "WeChat refused at least one application as too soon: {applications}"
    );
    let order = world.order(&payment).unwrap();
    assert_eq!(order.refunds.len(), 2);
    assert!(
        ledger::sim_between_times(order.refunds[0].created_at, order.refunds[1].created_at)
            >= Duration::from_secs(60)
    );
}
