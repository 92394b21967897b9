//! Faults between the proxy and WeChat: replies that never come, come late, come signed
//! wrongly or as HTML; a primary host that is down; reverses WeChat asks to repeat or that
//! keep failing.

use std::time::Duration;

use paycode_api::Payment;
use paycode_api::PaymentState::{Cancelled, NeedsAttention, Paid};
use paycode_tests::World;
use paycode_tests::ledger::{self, assert_ledger_agrees};
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault, Host};

use crate::{assert_calls, assert_outcome};

/// A password-free payment whose micropay call meets `fault` once, settled. Micropay waits
/// at most 100 ms for a reply.
async fn pay_through_micropay_fault(fault: Fault) -> (World, Payment) {
    let world = World::start_with(100.0, |config| {
        config.wechat.micropay_read_timeout = Duration::from_millis(100);
    })
    .await;
    world.sim.inject_fault(Api::Micropay, fault, 1);
    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;
    (world, payment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_after_commit_is_resolved_by_query_never_by_resending() {
    let (world, payment) = pay_through_micropay_fault(Fault::Delay { ms: 500 }).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_after_commit_is_resolved_by_query() {
    let (world, payment) = pay_through_micropay_fault(Fault::DropAfterCommit).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_before_processing_is_reversed_not_resent() {
    let (world, payment) = pay_through_micropay_fault(Fault::DropBeforeProcessing).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    assert!(world.order(&payment).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_reversed_not_resent() {
    let (world, payment) = pay_through_micropay_fault(Fault::ConnectionReset).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_502_page_is_an_unknown_outcome_reversed_not_resent() {
    let (world, payment) = pay_through_micropay_fault(Fault::Html5xx { status: 502 }).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_reply_is_an_unknown_outcome_resolved_by_query() {
    let (world, payment) = pay_through_micropay_fault(Fault::GarbageXml).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn micropay_reply_with_a_bad_signature_is_not_trusted() {
    let (world, payment) = pay_through_micropay_fault(Fault::BadSignature).await;

    // The SUCCESS reply was not believed: the payment was confirmed by a query.
    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_reply_with_a_bad_signature_is_not_trusted() {
    let world = World::start().await;
    world
        .sim
        .inject_fault(Api::OrderQuery, Fault::BadSignature, 1);

    let payment = world.pay_and_settle(Behaviour::SystemErrorPaid).await;

    assert_outcome(&world, &payment, Paid, None);
    assert_calls(&world, &payment, "micropay orderquery");
    let queries = ledger::count(&world.calls(&payment), "orderquery");
    assert!(
        queries >= 2,
        "the badly signed SUCCESS must be re-queried, {queries} queries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_host_down_fails_over_to_the_backup() {
    let world = World::start().await;
    world.sim.set_primary_outage(true);

    let mut during_outage = Vec::new();
    for _ in 0..4 {
        during_outage.push(world.pay_and_settle(Behaviour::PasswordFree).await);
    }
    world.sim.set_primary_outage(false);
    let after_outage = world.pay_and_settle(Behaviour::PasswordFree).await;

    for payment in during_outage.iter().chain([&after_outage]) {
        assert_outcome(&world, payment, Paid, None);
        assert_calls(&world, payment, "micropay");
    }
    let hosts: Vec<Host> = world.sim.calls().iter().map(|call| call.host).collect();
    assert!(
        hosts.iter().all(|host| *host == Host::Backup),
        "every call during the outage went to the backup, and after three connect failures \
         the client stays there (it switches back only after three minutes): {hosts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_switches_back_to_the_primary_once_it_recovers() {
    let switch_back_after = Duration::from_millis(300);
    let world = World::start_with(100.0, move |config| {
        config.wechat.switch_back_after = switch_back_after;
    })
    .await;
    world.sim.set_primary_outage(true);
    for _ in 0..4 {
        let payment = world.pay_and_settle(Behaviour::PasswordFree).await;
        assert_outcome(&world, &payment, Paid, None);
    }
    let failed_over = world.sim.calls().len();
    world.sim.set_primary_outage(false);
    tokio::time::sleep(switch_back_after).await;

    let after = world.pay_and_settle(Behaviour::PasswordFree).await;

    assert_outcome(&world, &after, Paid, None);
    let calls = world.sim.calls();
    assert!(
        calls[..failed_over]
            .iter()
            .all(|call| call.host == Host::Backup),
        "the outage's calls went to the backup: {calls:?}"
    );
    assert!(
        calls[failed_over..]
            .iter()
            .all(|call| call.host == Host::Primary),
        "after switch_back_after the primary serves again: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_is_repeated_while_wechat_answers_recall() {
    // Reverse from 20 s; the prompt stays open (recall=Y) until the test cancels it.
    let world = World::start_with(20.0, |config| {
        config.payments.wait_deadline = Duration::from_secs(20).div_f64(20.0);
    })
    .await;
    let payment = world.pay(Behaviour::PasswordWaits).await;
    ledger::until_call(&world.sim, &payment.out_trade_no, "reverse").await;
    until_reverse_count(&world, &payment, 2).await;
    world.sim.cancel_password(&payment.out_trade_no).unwrap();

    let payment = world.cashier.settled(&payment).await;

    assert_outcome(&world, &payment, Cancelled, None);
    assert_calls(&world, &payment, "micropay orderquery reverse orderquery");
    let reverses = ledger::count(&world.calls(&payment), "reverse");
    assert!(
        reverses >= 3,
        "two recall=Y, then a reverse that closed it: {reverses}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_failing_every_time_needs_attention_then_recovers() {
    let world = World::start_with(100.0, |config| {
        config.payments.reverse_max_attempts = 3;
    })
    .await;
    world
        .sim
        .inject_fault(Api::Reverse, Fault::Html5xx { status: 503 }, 1000);

    let payment = world.pay(Behaviour::PasswordWaits).await;
    let stuck = world.cashier.wait_for(&payment, NeedsAttention).await;

    let calls = world.calls(&stuck);
    assert_eq!(ledger::count(&calls, "reverse"), 3, "{calls:#?}");
    let order = world.order(&stuck).unwrap();
    assert!(order.paid_at.is_none(), "{order:#?}");

    // WeChat recovers: the background recheck finds the order closed (auto-revoked).
    world.sim.clear_faults();
    let payment = world.cashier.settled(&stuck).await;
    assert_eq!(payment.state, Cancelled);
    assert_ledger_agrees(&world.sim, &payment);
}

async fn until_reverse_count(world: &World, payment: &Payment, at_least: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ledger::count(&world.calls(payment), "reverse") < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:#?}",
            world.calls(payment)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
