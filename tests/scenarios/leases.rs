//! Leases (docs/postgresql.md §4): two proxies on one PostgreSQL database drive each payment
//! one at a time. The proxy that created a payment holds it while it lives; when it shuts
//! down it hands the lease back and the other proxy takes the payment over, starting with a
//! query, never a second micropay; a proxy whose lease is taken stops calling WeChat and
//! writing until it holds the payment again.

use std::time::Duration;

use paycode_api::PaymentState::{Paid, WaitingForCustomer};
use paycode_proxy::store::{self, ClaimRequest, HeldLeases, LeaseTerms, Millis};
use paycode_tests::world::{AMOUNT_FEN, scaled_config, start_simulator};
use paycode_tests::{ledger, test_store};

use crate::shutdown::Running;
use wxpay::sim::Behaviour;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_driven_by_its_creator_then_taken_over_with_a_query() {
    // 5×: a 40 s wait is 8 s of real time; the lease is 2 s, renewed every 0.6 s.
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), 5.0).await;
    let mut config = scaled_config(&sim, root.path(), 5.0);
    if !test_store::use_postgres(&mut config.store, "two proxies share one database") {
        return;
    }
    config.validate().unwrap();
    // Two live proxies on one database need names of their own (docs/postgresql.md §4).
    let named = |name: &str| {
        let mut named = config.clone();
        named.server.instance = Some(name.to_owned());
        named
    };
    let first = Running::start(named("lease-first"), None).await;
    let second = Running::start(named("lease-second"), Some(first.token.clone())).await;
    let (cashier, other_cashier) = (&first.cashier, &second.cashier);
    let store = store::connect(&config.store).await.unwrap();

    // The first proxy takes a payment; the customer is asked for a password.
    let payment = cashier
        .pay(AMOUNT_FEN, &sim.auth_code(Behaviour::PasswordWaits))
        .await;
    ledger::until_call(&sim, &payment.out_trade_no, "micropay").await;
    let created = store.existing_payment(&payment.id).await.unwrap();
    let creator = created.lease_owner.clone().expect("inserted leased");
    assert_eq!(created.lease_epoch, 1);

    // While it lives and renews, the second proxy does not take the payment, though it looks
    // for due work every claim interval.
    tokio::time::sleep(config.leases.duration + config.leases.claim_interval * 2).await;
    let held = store.existing_payment(&payment.id).await.unwrap();
    assert_eq!(
        (held.lease_owner.as_deref(), held.lease_epoch),
        (Some(creator.as_str()), 1)
    );
    assert!(held.lease_until > created.lease_until, "renewed");
    assert_eq!(
        other_cashier.payment(&payment.id).await.state,
        WaitingForCustomer
    );

    // The first proxy shuts down and hands its lease back; the second takes the payment
    // over and queries it; the customer confirms and it is paid.
    let queries_before = ledger::count(
        &ledger::calls_for(&sim, &payment.out_trade_no),
        "orderquery",
    );
    first.stop().await;
    let released = store.existing_payment(&payment.id).await.unwrap();
    assert!(
        released.lease_owner.is_none() || released.lease_epoch == 2,
        "handed back at shutdown (or already taken over): {released:#?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let taken = loop {
        let row = store.existing_payment(&payment.id).await.unwrap();
        if row.lease_epoch == 2 {
            break row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not taken over: {row:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(taken.lease_owner.as_deref(), Some(creator.as_str()));
    sim.confirm_password(&payment.out_trade_no).unwrap();
    let paid = other_cashier.settled(&payment).await;

    assert_eq!(paid.state, Paid, "{paid:#?}");
    let calls = ledger::calls_for(&sim, &payment.out_trade_no);
    assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    assert!(
        ledger::count(&calls, "orderquery") > queries_before,
        "{calls:#?}"
    );
    ledger::assert_ledger_agrees(&sim, &paid);
    second.stop().await;
    let after = store.existing_payment(&payment.id).await.unwrap();
    assert_eq!(
        after.lease_owner, taken.lease_owner,
        "settled: nothing left to hand back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_whose_lease_was_taken_stops_calling_and_writing_until_it_claims_again() {
    // 5×: a 40 s wait is 8 s of real time; queries every 0.6 s.
    let root = tempfile::tempdir().unwrap();
    let sim = start_simulator(root.path(), 5.0).await;
    let mut config = scaled_config(&sim, root.path(), 5.0);
    if !test_store::use_postgres(&mut config.store, "a lease taken by another owner") {
        return;
    }
    config.validate().unwrap();
    let proxy = Running::start(config.clone(), None).await;
    let cashier = &proxy.cashier;
    let store = store::connect(&config.store).await.unwrap();
    let payment = cashier
        .pay(AMOUNT_FEN, &sim.auth_code(Behaviour::PasswordWaits))
        .await;
    ledger::until_call(&sim, &payment.out_trade_no, "orderquery").await;

    // Another owner takes the payment (as a proxy would once this one's lease lapsed). A
    // claim skips a row the owner has locked at that instant (a renewal, a commit), so it
    // tries again until it gets it.
    let mut taken = Vec::new();
    for _ in 0..100 {
        (taken, _) = store
            .claim_due(ClaimRequest {
                terms: LeaseTerms {
                    owner: "intruder",
                    duration: Duration::from_secs(60),
                },
                due_before: Millis(i64::MAX),
                limit: 10,
                take_over: true,
            })
            .await
            .unwrap();
        if !taken.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(taken.len(), 1);
    let epoch = taken[0].record.lease_epoch;
    // A query already on its way may still arrive; after that, silence and no writes.
    tokio::time::sleep(config.payments.query_interval).await;
    let calls_before = ledger::calls_for(&sim, &payment.out_trade_no).len();
    let version_before = store.existing_payment(&payment.id).await.unwrap().version;
    tokio::time::sleep(config.payments.query_interval * 3).await;
    assert_eq!(
        ledger::calls_for(&sim, &payment.out_trade_no).len(),
        calls_before,
        "the proxy kept calling WeChat without the lease"
    );
    let untouched = store.existing_payment(&payment.id).await.unwrap();
    assert_eq!(untouched.version, version_before, "{untouched:#?}");
    assert_eq!(untouched.lease_owner.as_deref(), Some("intruder"));

    // Handed back, the payment is claimed again, queried and settled.
    store
        .release_leases(
            "intruder",
            &HeldLeases {
                payments: vec![(payment.id.clone(), epoch)],
                refunds: vec![],
            },
        )
        .await
        .unwrap();
    sim.confirm_password(&payment.out_trade_no).unwrap();
    let paid = cashier.settled(&payment).await;
    assert_eq!(paid.state, Paid, "{paid:#?}");
    let calls = ledger::calls_for(&sim, &payment.out_trade_no);
    assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
    let row = store.existing_payment(&payment.id).await.unwrap();
    assert_eq!(row.lease_epoch, epoch + 1);
    proxy.stop().await;
}
