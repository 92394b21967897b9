//! Many stores in one deployment: two direct merchants and a service provider with two
//! sub-merchants ([`World::start_with_stores`]). Every payment goes to its store's account
//! with the right provider fields on every call, the simulator's books per account match
//! each store's day, a terminal sees only its own store's payments, and a disabled store
//! takes no new payment but finishes and refunds the ones it has.

use std::collections::BTreeMap;
use std::time::Duration;

use paycode_api::PaymentState::{self, Cancelled, Failed, Paid, WaitingForCustomer};
use paycode_api::{Payment, RefundState};
use paycode_tests::world::{AMOUNT_FEN, SHOPS, Shop};
use paycode_tests::{Cashier, World};
use reqwest::StatusCode;
use tokio::task::JoinSet;
use wxpay::sim::{Behaviour, SimHandle};

/// Every row of the behaviour table that ends on its own, with the state it ends in.
fn rows() -> Vec<(Behaviour, PaymentState)> {
    vec![
        (Behaviour::PasswordFree, Paid),
        (
            Behaviour::PasswordThenConfirm {
                after: Duration::from_secs(8),
            },
            Paid,
        ),
        (
            Behaviour::PasswordThenCancel {
                after: Duration::from_secs(8),
            },
            Failed,
        ),
        (Behaviour::NotEnough, Failed),
        (Behaviour::Expired, Failed),
        (Behaviour::Invalid, Failed),
        (Behaviour::SystemErrorPaid, Paid),
        (
            Behaviour::BankError {
                decline_after: Duration::from_secs(8),
            },
            Failed,
        ),
        (Behaviour::SlowReply { delay: None }, Paid),
        (Behaviour::DropAfterCommit, Paid),
        (Behaviour::Gateway502, Cancelled),
    ]
}

/// Asserts that every call the simulator received for `payment` carried `shop`'s `mch_id`
/// and `sub_mch_id`, and that its order (if any) is in `shop`'s books.
fn assert_made_with(sim: &SimHandle, shop: &Shop, payment: &Payment) {
    let calls = paycode_tests::ledger::calls_for(sim, &payment.out_trade_no);
    assert!(!calls.is_empty(), "{payment:#?}");
    for call in &calls {
        assert_eq!(
            call.mch_id.as_deref(),
            Some(shop.mch_id),
            "{}: {call:#?}",
            shop.name
        );
        assert_eq!(
            call.sub_mch_id.as_deref(),
            shop.sub_mch_id,
            "{}: {call:#?}",
            shop.name
        );
    }
    if let Some(order) = sim.order(&payment.out_trade_no) {
        assert_eq!(order.mch_id, shop.mch_id, "{order:#?}");
        assert_eq!(order.sub_mch_id.as_deref(), shop.sub_mch_id, "{order:#?}");
    }
    paycode_tests::ledger::assert_ledger_agrees(sim, payment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_pays_into_its_stores_account_and_the_books_match_per_store() {
    // 10×: 44 payments at once on two cores (twice over in CI: SQLite, then PostgreSQL),
    // each row's timing (a decline or password after 8 s, a 40 s deadline: 4 s of real
    // time) with room to spare. At 20× a bank decline once came after the deadline under
    // load, and the payment ended cancelled instead of failed.
    let world = World::start_with_stores(10.0, |config| {
        config.wechat.micropay_read_timeout = Duration::from_millis(100);
    })
    .await;
    world.sim.set_slow_reply_delay(Duration::from_millis(400));
    let mut cashiers = Vec::new();
    for shop in SHOPS {
        cashiers.push((
            shop,
            world
                .cashier_at(shop.name, &format!("{}-till", shop.name))
                .await,
        ));
    }

    let mut runs = JoinSet::new();
    for (shop, cashier) in &cashiers {
        for (n, (behaviour, expected)) in rows().into_iter().enumerate() {
            let (shop, cashier, code) = (*shop, cashier.clone(), world.sim.auth_code(behaviour));
            let amount = AMOUNT_FEN + n as u64;
            runs.spawn(async move {
                let payment = cashier.pay(amount, &code).await;
                (shop, expected, cashier.settled(&payment).await)
            });
        }
    }
    let settled = runs.join_all().await;

    let mut paid_by_shop: BTreeMap<&str, u64> = BTreeMap::new();
    for (shop, expected, payment) in &settled {
        assert_eq!(payment.state, *expected, "{}: {payment:#?}", shop.name);
        assert_made_with(&world.sim, shop, payment);
        if payment.state == Paid {
            *paid_by_shop.entry(shop.name).or_default() += payment.amount_fen.get();
        }
    }
    // The simulator's books per account (and sub-merchant) hold exactly each store's money.
    for (shop, cashier) in &cashiers {
        let in_books: u64 = world
            .sim
            .orders()
            .iter()
            .filter(|order| {
                order.mch_id == shop.mch_id
                    && order.sub_mch_id.as_deref() == shop.sub_mch_id
                    && matches!(order.trade_state.as_str(), "SUCCESS" | "REFUND")
            })
            .map(|order| order.total_fee)
            .sum();
        let day = cashier.today().await;
        assert_eq!(
            day.payments.len(),
            rows().len(),
            "{}: one store's day only",
            shop.name
        );
        assert_eq!(day.totals.paid_fen.get(), in_books, "{}", shop.name);
        assert_eq!(paid_by_shop[shop.name], in_books, "{}", shop.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_reverses_and_queries_of_a_sub_merchant_carry_the_provider_fields() {
    let world = World::start_with_stores(100.0, |_| {}).await;
    let mall = SHOPS[2];
    let cashier = world.cashier_at(mall.name, "mall-till").await;

    let paid = cashier
        .pay(AMOUNT_FEN, &world.sim.auth_code(Behaviour::PasswordFree))
        .await;
    let paid = cashier.settled(&paid).await;
    let refund = cashier.refund(&paid.id, 500).await;
    let refunded = cashier
        .wait_until(&paid, "refunded", |payment| {
            payment
                .refunds
                .iter()
                .any(|r| r.id == refund.id && r.state == RefundState::Succeeded)
        })
        .await;
    let waiting = cashier
        .pay(AMOUNT_FEN, &world.sim.auth_code(Behaviour::PasswordWaits))
        .await;
    cashier.wait_for(&waiting, WaitingForCustomer).await;
    cashier
        .cancel(&waiting.id)
        .await
        .expect::<Payment>(StatusCode::OK);
    let cancelled = cashier.settled(&waiting).await;

    assert_eq!(refunded.refunded_fen.get(), 500);
    assert_eq!(cancelled.state, Cancelled);
    let calls = world.sim.calls();
    for endpoint in ["micropay", "orderquery", "refund", "refundquery", "reverse"] {
        assert!(
            calls.iter().any(|call| call.endpoint == endpoint),
            "no {endpoint} call: {calls:#?}"
        );
    }
    assert_made_with(&world.sim, &mall, &refunded);
    assert_made_with(&world.sim, &mall, &cancelled);
    let order = world.sim.order(&paid.out_trade_no).unwrap();
    assert_eq!(order.refunds.len(), 1, "{order:#?}");
}

/// The terminal of one store asks about another store's payment in every way it can.
async fn assert_not_found_everywhere(other: &Cashier, payment: &Payment) {
    other
        .get_raw(&format!("/payments/{}", payment.id))
        .await
        .assert_error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", None);
    other
        .cancel(&payment.id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", None);
    other
        .refund_raw(&payment.id, &paycode_tests::cashier::new_attempt_id(), 100)
        .await
        .assert_error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", None);
    let missing = other
        .get_raw("/payments/00000000-0000-0000-0000-000000000000")
        .await
        .error();
    let foreign = other
        .get_raw(&format!("/payments/{}", payment.id))
        .await
        .error();
    assert_eq!(
        foreign.message.replace(&payment.id, "ID"),
        missing
            .message
            .replace("00000000-0000-0000-0000-000000000000", "ID"),
        "another store's payment reads exactly like a missing one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_sees_cancels_and_refunds_only_its_own_stores_payments() {
    let world = World::start_with_stores(100.0, |_| {}).await;
    let shop_b = world.cashier_at("shop-b", "b-till").await;
    let mall_2 = world.cashier_at("mall-2", "m2-till").await;

    let at_default = world.pay_and_settle(Behaviour::PasswordFree).await;
    let at_b = shop_b
        .pay(AMOUNT_FEN, &world.sim.auth_code(Behaviour::PasswordWaits))
        .await;

    assert_not_found_everywhere(&shop_b, &at_default).await;
    assert_not_found_everywhere(&mall_2, &at_default).await;
    assert_not_found_everywhere(&world.cashier, &at_b).await;
    assert_eq!(world.cashier.payment(&at_default.id).await.state, Paid);
    let day_b = shop_b.today().await;
    assert_eq!(day_b.payments.len(), 1);
    assert_eq!(day_b.payments[0].id, at_b.id);
    let day_default = world.cashier.today().await;
    assert_eq!(day_default.payments.len(), 1);
    assert_eq!(day_default.totals.paid_fen.get(), AMOUNT_FEN);
    assert!(mall_2.today().await.payments.is_empty());
    // The terminal knows its store, for the app's header and receipts.
    let me: paycode_api::TerminalInfo = shop_b.get_raw("/terminal").await.expect(StatusCode::OK);
    assert_eq!(me.store.name, "shop-b");
    world.sim.confirm_password(&at_b.out_trade_no).unwrap();
    assert_eq!(shop_b.settled(&at_b).await.state, Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_store_takes_no_payment_but_finishes_and_refunds_what_it_has() {
    let world = World::start_with_stores(100.0, |_| {}).await;
    let mall = world.cashier_at("mall-1", "m1-till").await;
    let paid = mall
        .pay(AMOUNT_FEN, &world.sim.auth_code(Behaviour::PasswordFree))
        .await;
    let paid = mall.settled(&paid).await;
    let waiting_code = world.sim.auth_code(Behaviour::PasswordWaits);
    let waiting = mall.pay(AMOUNT_FEN, &waiting_code).await;
    mall.wait_for(&waiting, WaitingForCustomer).await;

    world.store.disable_store("mall-1").await.unwrap();
    let replayed: Payment = mall
        .create_raw(waiting.attempt_id.as_str(), AMOUNT_FEN, &waiting_code)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        replayed.id, waiting.id,
        "a replay still gets its payment back"
    );
    let refused = mall
        .create_raw(
            &paycode_tests::cashier::new_attempt_id(),
            AMOUNT_FEN,
            &world.sim.auth_code(Behaviour::PasswordFree),
        )
        .await;
    world.sim.confirm_password(&waiting.out_trade_no).unwrap();
    let finished = mall.settled(&waiting).await;
    let refund = mall.refund(&paid.id, AMOUNT_FEN).await;

    refused.assert_error(StatusCode::CONFLICT, "STORE_DISABLED", None);
    assert!(
        refused.error().message.contains("mall-1"),
        "{:?}",
        refused.error()
    );
    assert_eq!(finished.state, Paid);
    assert_ne!(refund.state, RefundState::Failed);
    assert_eq!(
        world.sim.orders().len(),
        2,
        "the refused payment reached nobody"
    );
    // Other stores still take payments.
    assert_eq!(
        world.pay_and_settle(Behaviour::PasswordFree).await.state,
        Paid
    );
}
