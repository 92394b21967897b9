//! `time_expire`: every micropay carries it, stored with its write-ahead, and a micropay whose
//! outcome is unknown keeps its payment open until it can no longer reach WeChat
//! (docs/postgresql.md §4, "time_expire").

use std::time::Duration;

use paycode_api::PaymentState::Cancelled;
use paycode_proxy::engine::machine::Action;
use paycode_proxy::store;
use paycode_tests::World;
use paycode_tests::ledger;
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault};

use crate::{assert_calls, assert_outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_micropay_lost_on_the_way_keeps_its_payment_open_until_its_time_expire() {
    // 10×: time_expire is whole seconds, so its 90 s of simulated time are 9 s of real time
    // (plus up to one second), well past the 4 s deadline.
    let world = World::start_with(10.0, |config| {
        config.wechat.micropay_read_timeout = Duration::from_millis(100);
    })
    .await;
    // The micropay never reaches WeChat, and the proxy cannot know: it queries (no order),
    // reverses at the deadline (WeChat answers success for an order it has not seen) and
    // queries again.
    world
        .sim
        .inject_fault(Api::Micropay, Fault::DropBeforeProcessing, 1);

    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;

    // Cancelled in the end, with every call as before: nothing was sent twice.
    assert_outcome(&world, &payment, Cancelled, None);
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    assert!(world.order(&payment).is_none());
    // But not before the micropay's time_expire (plus the skew margin) had passed.
    let store = store::connect(&world.config.store).await.unwrap();
    let stored = store.existing_payment(&payment.id).await.unwrap();
    let submitted_at = stored.submitted_at.expect("micropay was sent");
    let time_expire = stored.time_expire.expect("stored with the write-ahead");
    let expire_after = world.config.payments.micropay_expire_after;
    // time_expire is taken at the write-ahead and rounded up; submitted_at is when the
    // request left, just after: they are less than a second apart.
    assert!(
        time_expire < submitted_at.plus(expire_after).plus(Duration::from_secs(1)),
        "{stored:#?}"
    );
    assert!(
        submitted_at.plus(expire_after) < time_expire.plus(Duration::from_secs(1)),
        "{stored:#?}"
    );
    assert_eq!(time_expire.0 % 1000, 0, "whole seconds, as sent");
    let gate = time_expire.plus(world.config.payments.expire_skew_margin);
    let settled_at = stored.settled_at.expect("settled");
    assert!(settled_at >= gate, "settled {settled_at:?} before {gate:?}");
    // The first final query found no order before that moment and did not settle it.
    let events = store.payment_events(&payment.id).await.unwrap();
    let kept_open = events
        .iter()
        .find(|event| event.detail.contains("time_expire"))
        .unwrap_or_else(|| panic!("no final query kept the payment open: {events:#?}"));
    assert!(kept_open.at < gate, "{events:#?}");
    assert_eq!(kept_open.to_state, paycode_api::PaymentState::Cancelling);
    // The queries after the reverse straddle the moment: one before, the last after.
    let calls = world.calls(&payment);
    let reverse = ledger::first(&calls, "reverse");
    let after_reverse: Vec<_> = calls
        .iter()
        .filter(|call| call.endpoint == "orderquery" && call.seq > reverse.seq)
        .collect();
    assert!(after_reverse.len() >= 2, "{calls:#?}");
    assert_eq!(stored.next_action, None::<Action>);
}
