//! Many terminals at once, and WeChat's limit of 30 micropay calls per second.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use paycode_api::PaymentState::Paid;
use paycode_tests::World;
use paycode_tests::ledger::{self, assert_ledger_agrees};
use paycode_tests::world::AMOUNT_FEN;
use tokio::task::JoinSet;
use wxpay::sim::Behaviour;

/// Confirms every open password prompt, every 10 ms, until aborted: customers who enter
/// their password promptly.
fn confirm_prompts(world: &World) -> tokio::task::JoinHandle<()> {
    let sim = Arc::clone(&world.sim);
    tokio::spawn(async move {
        loop {
            for prompt in sim.pending_prompts() {
                let _ = sim.confirm_password(&prompt.out_trade_no);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_terminals_paying_at_once_all_end_correctly() {
    // 20×: a 40 s wait is 2 s of real time, room enough for 200 payments on two cores.
    let world = World::start_with(20.0, |config| {
        config.payments.micropay_rate_per_second = 1000;
    })
    .await;
    let mut cashiers = Vec::new();
    for n in 0..200 {
        cashiers.push(world.new_cashier(&format!("counter-{}", n + 2)).await);
    }
    let confirmer = confirm_prompts(&world);

    let mut payments = JoinSet::new();
    for (n, cashier) in cashiers.into_iter().enumerate() {
        let behaviour = if n % 2 == 0 {
            Behaviour::PasswordFree
        } else {
            Behaviour::PasswordWaits
        };
        let code = world.sim.auth_code(behaviour);
        let amount = AMOUNT_FEN + n as u64;
        payments.spawn(async move {
            let payment = cashier.pay(amount, &code).await;
            cashier.settled(&payment).await
        });
    }
    let payments = payments.join_all().await;
    confirmer.abort();

    assert_eq!(payments.len(), 200);
    for payment in &payments {
        assert_eq!(payment.state, Paid, "{payment:#?}");
        assert_ledger_agrees(&world.sim, payment);
        let calls = world.calls(payment);
        assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    }
    assert_eq!(world.sim.orders().len(), 200);
    let totals = world.store_today("default").await.totals;
    assert_eq!(totals.paid_count, 200);
    let expected: u64 = (0..200).map(|n| AMOUNT_FEN + n).sum();
    assert_eq!(totals.paid_fen.get(), expected);
    assert_eq!(totals.open_count, 0);
}

/// Takes `count` password-free payments at once with the default limit of 30 micropay
/// calls per second, on real time, and returns when each micropay arrived.
async fn micropay_arrivals(count: usize) -> Vec<DateTime<Utc>> {
    let world = World::start_with(1.0, |_| {}).await;
    assert_eq!(world.config.payments.micropay_rate_per_second, 30);
    let mut payments = JoinSet::new();
    for _ in 0..count {
        let cashier = world.cashier.clone();
        let code = world.sim.auth_code(Behaviour::PasswordFree);
        payments.spawn(async move {
            let payment = cashier.pay(AMOUNT_FEN, &code).await;
            cashier.settled(&payment).await
        });
    }
    for payment in payments.join_all().await {
        assert_eq!(payment.state, Paid);
    }
    let mut arrivals: Vec<_> = world
        .sim
        .calls()
        .into_iter()
        .filter(|call| call.endpoint == "micropay")
        .map(|call| call.sim_time)
        .collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), count);
    arrivals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_micropay_limit_spaces_sixty_payments_over_a_second() {
    let arrivals = micropay_arrivals(60).await;

    let span = (arrivals[59] - arrivals[0]).to_std().unwrap();
    assert!(
        span >= Duration::from_millis(950),
        "60 micropay calls at 30/s took only {span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_second_ever_carries_more_than_30_micropay_calls() {
    let arrivals = micropay_arrivals(90).await;

    let busiest = ledger::busiest_second(&arrivals);
    // One call of slack for arrival jitter.
    assert!(
        busiest <= 31,
        "{busiest} micropay calls arrived within one second; WeChat allows 30"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_micropay_limit_holds_per_account_while_the_others_are_saturated() {
    use paycode_tests::world::{SHOPS, VENDOR_MCH_ID};
    // Real time: the limit is counted in real seconds.
    let world = World::start_with_stores(1.0, |_| {}).await;
    // 40 payments at the direct merchant's store, and 20 at each of the provider's two
    // stores: the provider's limit is counted on its own mch_id, shared by its
    // sub-merchants. Both accounts are saturated at once (two cores also run the simulator,
    // so the load stays modest enough for arrival times to mean something).
    let mut payments = JoinSet::new();
    for (shop, count) in [(SHOPS[0], 40), (SHOPS[2], 20), (SHOPS[3], 20)] {
        let cashier = world
            .cashier_at(shop.name, &format!("{}-till", shop.name))
            .await;
        for _ in 0..count {
            let cashier = cashier.clone();
            let code = world.sim.auth_code(Behaviour::PasswordFree);
            payments.spawn(async move {
                let payment = cashier.pay(AMOUNT_FEN, &code).await;
                cashier.settled(&payment).await
            });
        }
    }
    for payment in payments.join_all().await {
        assert_eq!(payment.state, Paid, "{payment:#?}");
    }

    let micropays: Vec<_> = world
        .sim
        .calls()
        .into_iter()
        .filter(|call| call.endpoint == "micropay")
        .collect();
    assert_eq!(micropays.len(), 80);
    let arrivals_of = |mch_id: Option<&str>| {
        let mut arrivals: Vec<_> = micropays
            .iter()
            .filter(|call| mch_id.is_none_or(|mch_id| call.mch_id.as_deref() == Some(mch_id)))
            .map(|call| call.sim_time)
            .collect();
        arrivals.sort();
        arrivals
    };
    for mch_id in [wxpay::sim::DEMO_MCH_ID, VENDOR_MCH_ID] {
        let arrivals = arrivals_of(Some(mch_id));
        assert_eq!(arrivals.len(), 40, "{mch_id}");
        let busiest = ledger::busiest_second(&arrivals);
        // One call of slack for arrival jitter, as for a single account.
        assert!(
            busiest <= 31,
            "{busiest} micropay calls of {mch_id} arrived within one second; WeChat allows 30"
        );
    }
    // The accounts did not wait for each other: together they went well over 30 a second.
    let together = ledger::busiest_second(&arrivals_of(None));
    assert!(
        together > 40,
        "only {together} micropay calls a second across two accounts: the limit is not per account"
    );
}
