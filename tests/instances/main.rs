//! Several proxies on one PostgreSQL database (docs/postgresql.md §4), in process, against
//! one simulator: what holds when a load balancer spreads one terminal's requests across
//! them. Each test needs a PostgreSQL server (`eval "$(scripts/pg-cluster start)"`); without
//! one it prints a notice and passes, unless `PAYCODE_REQUIRE_POSTGRES=1` (`scripts/test`),
//! which makes it fail.
//!
//! - a long-poll held by one proxy answers within milliseconds of a commit on another
//!   (LISTEN/NOTIFY wake-ups);
//! - a cancel posted to a proxy that does not drive the payment reaches the one that does
//!   at once, not at its next lease renewal;
//! - a proxy stopped gracefully hands its leases back and another takes its payment at once;
//! - the 30/s micropay limit of one account holds across the proxies, in every window of
//!   real time at the simulator;
//! - the same `attempt_id` posted to two proxies at once makes one order;
//! - `/readyz` and `/metrics` name the proxy that answered, and `/readyz` its database;
//! - a second proxy under a `[server] instance` in use is refused, a restart after SIGKILL is
//!   not (`names`).

mod names;

use std::time::{Duration, Instant};

use paycode_api::Payment;
use paycode_api::PaymentState::{Paid, WaitingForCustomer};
use paycode_tests::cashier::{created_and_replayed, new_attempt_id};
use paycode_tests::instances::Instances;
use paycode_tests::ledger::{self, assert_ledger_agrees};
use paycode_tests::world::AMOUNT_FEN;
use reqwest::StatusCode;
use tokio::task::JoinSet;
use wxpay::codes::Api;
use wxpay::sim::Behaviour;

/// How long after a commit on one proxy a long-poll held by another may answer, in this
/// test (HTTP round trips included, on a loaded two-core machine). Well under the 1 s re-read
/// timer behind the wake-ups, so only a wake-up passes it reliably.
const WAKE_UP_LIMIT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_proxy_answers_when_another_commits() {
    // 10×: the customer's 40 s are 4 s of real time, room for the polls below.
    let Some(chain) = Instances::start(&["a", "b"], 10.0, |_| {}).await else {
        return;
    };
    let (a, b) = (&chain.cashiers[0], &chain.cashiers[1]);
    for round in 0..5 {
        let code = chain.sim.auth_code(Behaviour::PasswordWaits);
        let created = a.pay(AMOUNT_FEN, &code).await;
        let waiting = a
            .wait_until(&created, "waiting for the customer", |payment| {
                payment.state == WaitingForCustomer
            })
            .await;
        // B holds a long-poll; A then commits the cashier's cancel.
        let poll = {
            let b = b.clone();
            let (id, version) = (waiting.id.clone(), waiting.version);
            tokio::spawn(async move {
                let answer = b.poll(&id, version, 10).await;
                (answer, Instant::now())
            })
        };
        // Let B's request reach its handler and subscribe before A commits (on loopback a
        // request takes well under a millisecond; this is the margin for a loaded machine).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before_cancel = Instant::now();
        let cancelled: Payment = a.cancel(&waiting.id).await.expect(StatusCode::OK);
        let (answer, answered_at) = poll.await.expect("the long-poll task");
        let latency = answered_at.duration_since(before_cancel);
        assert!(
            answer.version > waiting.version,
            "round {round}: B answered without a change: {answer:#?}"
        );
        assert!(
            answer.version <= cancelled.version || answer.state == cancelled.state,
            "round {round}: {answer:#?} / {cancelled:#?}"
        );
        assert!(
            latency <= WAKE_UP_LIMIT,
            "round {round}: B's long-poll answered {latency:?} after A's cancel was posted"
        );
        a.settled(&cancelled).await;
    }
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_taken_by_another_proxy_reaches_the_owner_at_once() {
    // Renewals 2 s apart and queries 3 s apart (real time): without the wake-up, the owner
    // would learn of the cancel at its next renewal or query, up to 2 s late.
    let Some(chain) = Instances::start(&["a", "b"], 10.0, |config| {
        config.leases.duration = Duration::from_secs(5);
        config.leases.renew_interval = Duration::from_secs(2);
        config.leases.safety_margin = Duration::from_millis(200);
        config.payments.first_query_after_userpaying = Duration::from_secs(3);
        config.payments.query_interval = Duration::from_secs(3);
    })
    .await
    else {
        return;
    };
    let (a, b) = (&chain.cashiers[0], &chain.cashiers[1]);
    let reverse_not_before = chain.config.payments.reverse_not_before;
    for round in 0..3 {
        let code = chain.sim.auth_code(Behaviour::PasswordWaits);
        let created = a.pay(AMOUNT_FEN, &code).await;
        let waiting = a
            .wait_until(&created, "waiting for the customer", |payment| {
                payment.state == WaitingForCustomer
            })
            .await;
        // Past the 15-second rule (scaled), so the owner reverses as soon as it knows.
        tokio::time::sleep(reverse_not_before).await;
        let before_cancel = Instant::now();
        let _: Payment = b.cancel(&waiting.id).await.expect(StatusCode::OK);
        ledger::until_call(&chain.sim, &waiting.out_trade_no, "reverse").await;
        let latency = before_cancel.elapsed();
        assert!(
            latency <= Duration::from_millis(400),
            "round {round}: the owner reversed {latency:?} after the cancel was posted elsewhere"
        );
        let settled = a.settled(&waiting).await;
        assert_ledger_agrees(&chain.sim, &settled);
        let calls = ledger::calls_for(&chain.sim, &settled.out_trade_no);
        assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    }
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_stopped_gracefully_hands_its_payment_to_another() {
    // Leases of 8 s real time: without the hand-back, B could take the payment only after
    // A's lease ran out.
    let Some(mut chain) = Instances::start(&["a", "b"], 10.0, |config| {
        config.leases.duration = Duration::from_secs(8);
        config.leases.renew_interval = Duration::from_secs(2);
        config.leases.safety_margin = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let (a, b) = (chain.cashiers[0].clone(), chain.cashiers[1].clone());
    let code = chain.sim.auth_code(Behaviour::PasswordWaits);
    let created = a.pay(AMOUNT_FEN, &code).await;
    let waiting = a
        .wait_until(&created, "waiting for the customer", |payment| {
            payment.state == WaitingForCustomer
        })
        .await;
    chain.stop_one(0).await;
    let stopped = Instant::now();
    chain
        .sim
        .confirm_password(&waiting.out_trade_no)
        .expect("the prompt is open");
    let paid = b.wait_for(&waiting, Paid).await;
    let taken_in = stopped.elapsed();
    assert!(
        taken_in <= Duration::from_secs(3),
        "B showed the payment paid {taken_in:?} after A stopped"
    );
    assert_ledger_agrees(&chain.sim, &paid);
    let calls = ledger::calls_for(&chain.sim, &paid.out_trade_no);
    assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_micropay_limit_of_one_account_holds_across_proxies() {
    // Real time: the limit is counted in real seconds.
    let Some(chain) = Instances::start(&["a", "b"], 1.0, |_| {}).await else {
        return;
    };
    assert_eq!(chain.config.payments.micropay_rate_per_second, 30);
    // 30 payments through each proxy at once, all on the same merchant account: each proxy
    // alone would send its 30 within the first second.
    let mut payments = JoinSet::new();
    for cashier in &chain.cashiers {
        for _ in 0..30 {
            let cashier = cashier.clone();
            let code = chain.sim.auth_code(Behaviour::PasswordFree);
            payments.spawn(async move {
                let payment = cashier.pay(AMOUNT_FEN, &code).await;
                cashier.settled(&payment).await
            });
        }
    }
    for payment in payments.join_all().await {
        assert_eq!(payment.state, Paid, "{payment:#?}");
        assert_ledger_agrees(&chain.sim, &payment);
    }
    let mut arrivals: Vec<_> = chain
        .sim
        .calls()
        .into_iter()
        .filter(|call| call.endpoint == "micropay")
        .map(|call| call.sim_time)
        .collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 60);
    let busiest = ledger::busiest_second(&arrivals);
    assert!(
        busiest <= 30,
        "{busiest} micropay calls of one account arrived within one second from two proxies; \
         WeChat allows 30"
    );
    let span = (arrivals[59] - arrivals[0]).to_std().expect("sorted");
    assert!(
        span >= Duration::from_millis(1900),
        "60 micropay calls at 30/s in total took only {span:?}"
    );
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attempt_posted_to_two_proxies_at_once_makes_one_order() {
    let Some(chain) = Instances::start(&["a", "b"], 100.0, |_| {}).await else {
        return;
    };
    let (a, b) = (&chain.cashiers[0], &chain.cashiers[1]);
    for _ in 0..5 {
        let attempt = new_attempt_id();
        let code = chain.sim.auth_code(Behaviour::PasswordFree);
        let (first, second) = tokio::join!(
            a.create_raw(&attempt, AMOUNT_FEN, &code),
            b.create_raw(&attempt, AMOUNT_FEN, &code),
        );
        let (first, second): (Payment, Payment) = created_and_replayed(&first, &second);
        assert_eq!(first.id, second.id);
        assert_eq!(first.out_trade_no, second.out_trade_no);
        let settled = b.settled(&first).await;
        assert_eq!(settled.state, Paid, "{settled:#?}");
        assert_ledger_agrees(&chain.sim, &settled);
        let calls = ledger::calls_for(&chain.sim, &settled.out_trade_no);
        assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    }
    assert_eq!(chain.sim.call_count(Api::Micropay), 5);
    assert_eq!(chain.sim.orders().len(), 5);
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_metrics_name_the_proxy_that_answered() {
    let Some(chain) = Instances::start(&["till-a", "till-b"], 100.0, |_| {}).await else {
        return;
    };
    let http = reqwest::Client::new();
    for (address, name) in chain.addresses().into_iter().zip(["till-a", "till-b"]) {
        let ready: serde_json::Value = http
            .get(format!("{address}/readyz"))
            .send()
            .await
            .expect("/readyz answers")
            .json()
            .await
            .expect("a JSON report");
        assert_eq!(ready["instance"], name, "{ready}");
        let store = &ready["checks"][0];
        assert_eq!(store["name"], "store", "{ready}");
        assert_eq!(store["ok"], true, "{ready}");
        assert_eq!(store["backend"], "postgresql", "{ready}");
        assert!(store["latency_ms"].as_f64().is_some(), "{ready}");
        let metrics = http
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a text body");
        let label = format!("instance=\"{name}\"}}");
        for sample in metrics.lines().filter(|line| !line.starts_with('#')) {
            assert!(sample.contains(&label), "{sample}");
        }
    }
    chain.stop().await;
}
