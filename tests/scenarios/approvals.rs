//! Manager approvals (docs/approvals.md): terminal roles, managers' PINs with their lockout
//! and rate limit, one-use approvals bound to a terminal, an action and a store, and the
//! audit of every approved action; refunds need one, and so do the back-office actions.

use std::time::Duration;

use paycode_api::PaymentState::{Cancelled, NeedsAttention, Paid};
use paycode_api::{
    Approval, ApprovalAction, ApprovalUses, AttentionList, PaymentList, RefundState, Role,
    SettleOutcome, Settlement,
};
use paycode_proxy::store::Millis;
use paycode_tests::cashier::new_attempt_id;
use paycode_tests::ledger::assert_ledger_agrees;
use paycode_tests::world::{AMOUNT_FEN, TestManager};
use paycode_tests::{Cashier, Reply, World, ledger};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault};

fn refund_body(amount_fen: u64) -> serde_json::Value {
    json!({"refund_attempt_id": new_attempt_id(), "amount_fen": amount_fen, "reason": "退货"})
}

/// Asserts a 403 with `code` whose message contains `rule`.
fn assert_refused(reply: &Reply, code: &str, rule: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let error = reply.error();
    assert_eq!(error.code, code, "{error:?}");
    assert!(error.message.contains(rule), "{error:?} names {rule}");
}

/// The `Retry-After` of `method path` with `body`, and the reply.
async fn with_retry_after(cashier: &Cashier, path: &str, body: serde_json::Value) -> (Reply, u64) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1{path}", cashier.base()))
        .bearer_auth(cashier.token().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let status = response.status();
    let body = response.json().await.unwrap();
    (Reply { status, body }, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_terminal_is_refused_manager_actions_naming_the_rule() {
    // Arrange
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let manager = &world.manager;

    // Act
    let view_all = world.cashier.get_raw("/payments").await;
    let attention = world.cashier.get_raw("/needs-attention").await;
    let settle = world
        .cashier
        .post_json(
            &format!("/payments/{}/settle", paid.id),
            &json!({"reason": "顾客已付款"}),
        )
        .await;
    // Refused before any PIN is checked: a wrong PIN is not even counted.
    let approval = world
        .cashier
        .approve_raw(&manager.name, "000000", "view_all_payments")
        .await;
    let own = world.cashier.today().await;

    // Assert
    assert_refused(&view_all, "ROLE_REQUIRED", "view_all_payments");
    assert_refused(&attention, "ROLE_REQUIRED", "view_all_payments");
    assert_refused(&settle, "ROLE_REQUIRED", "settle_payment");
    assert_refused(&approval, "ROLE_REQUIRED", "view_all_payments");
    for reply in [&view_all, &settle] {
        assert!(
            reply.error().message.contains("manager or owner terminal"),
            "{reply:?}"
        );
    }
    let stored = world
        .store
        .manager_by_name(&manager.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.failed_attempts, 0, "no PIN was checked");
    assert_eq!(
        own.payments.len(),
        1,
        "a cashier still lists its own payments"
    );
    assert!(
        world
            .store
            .approved_actions(Millis(0))
            .await
            .unwrap()
            .is_empty()
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_needs_an_approval_and_the_audit_names_the_manager() {
    // Arrange
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let counter = world.cashier.terminal().await;
    let unapproved = Cashier::new(world.address(), world.cashier.token());
    let path = format!("/payments/{}/refunds", paid.id);

    // Act: no approval, then a malformed one, then a real one.
    let refused = unapproved.post_json(&path, &refund_body(500)).await;
    let malformed = unapproved
        .send_approved(Method::POST, &path, "pca_nope", Some(&refund_body(500)))
        .await;
    let calls_before = world.calls(&paid);
    let stored_before = world.store.refunds_for_payment(&paid.id).await.unwrap();
    let approval: Approval = world
        .cashier
        .approve_raw(&world.manager.name, &world.manager.pin, "refund")
        .await
        .expect(StatusCode::CREATED);
    let refund = unapproved
        .send_approved(
            Method::POST,
            &path,
            &approval.approval,
            Some(&refund_body(500)),
        )
        .await;

    // Assert
    assert_refused(
        &refused,
        "APPROVAL_REQUIRED",
        "every refund is approved by a manager",
    );
    assert_refused(&malformed, "APPROVAL_REQUIRED", "malformed");
    assert_eq!(
        ledger::count(&calls_before, "refund"),
        0,
        "nothing reached WeChat"
    );
    assert!(
        stored_before.is_empty(),
        "nothing was stored: {stored_before:?}"
    );
    assert!(approval.approval.starts_with("pca_"));
    assert_eq!(approval.manager, world.manager.name);
    assert_eq!(approval.action, ApprovalAction::Refund);
    assert_eq!(approval.uses, ApprovalUses::Once);
    let refund: paycode_api::Refund = refund.expect(StatusCode::CREATED);
    let refunded = world.cashier.payment(&paid.id).await;
    assert_eq!(refunded.refunds[0].id, refund.id);
    world.until_call(&paid, "refund").await;
    let audit = world.store.approved_actions(Millis(0)).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].manager_name, world.manager.name);
    assert_eq!(audit[0].terminal_id, counter.id);
    assert_eq!(audit[0].action, ApprovalAction::Refund);
    assert_eq!(audit[0].target, paid.id);
    assert_eq!(audit[0].reason.as_deref(), Some("测试"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_works_once_and_for_its_own_terminal_only() {
    // Arrange
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let other = world.new_cashier("counter-2").await;
    let path = format!("/payments/{}/refunds", paid.id);
    let token = world.cashier.approve("refund").await;
    let for_other = other.approve("refund").await;

    // Act
    let first = world
        .cashier
        .send_approved(Method::POST, &path, &token, Some(&refund_body(300)))
        .await;
    let second = world
        .cashier
        .send_approved(Method::POST, &path, &token, Some(&refund_body(300)))
        .await;
    let borrowed = world
        .cashier
        .send_approved(Method::POST, &path, &for_other, Some(&refund_body(300)))
        .await;
    let wrong_kind = world
        .cashier
        .approve_raw(&world.manager.name, &world.manager.pin, "books")
        .await;

    // Assert
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_refused(&second, "APPROVAL_REQUIRED", "used");
    assert_refused(&borrowed, "APPROVAL_REQUIRED", "another action or terminal");
    assert_refused(&wrong_kind, "ROLE_REQUIRED", "books");
    assert_eq!(
        world
            .store
            .refunds_for_payment(&paid.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        world.store.approved_actions(Millis(0)).await.unwrap().len(),
        1
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_of_one_store_approves_only_for_that_store() {
    // Arrange
    let world = World::start_with_stores(100.0, |_| {}).await;
    let shop_b = world.shop("shop-b").await;
    let manager_b = TestManager::add(&world.approvals, "manager-b", Some(&shop_b.id)).await;
    let counter_b = manager_b.at(world.cashier_at("shop-b", "counter-b").await);
    let paid = counter_b
        .pay(AMOUNT_FEN, &world.sim.auth_code(Behaviour::PasswordFree))
        .await;
    let paid = counter_b.settled(&paid).await;

    // Act
    let elsewhere = world
        .cashier
        .approve_raw(&manager_b.name, &manager_b.pin, "refund")
        .await;
    let refund = counter_b.refund(&paid.id, 100).await;

    // Assert
    assert_refused(&elsewhere, "MANAGER_WRONG_STORE", "another store");
    assert_eq!(refund.amount_fen.0, 100);
    let audit = world.store.approved_actions(Millis(0)).await.unwrap();
    assert_eq!(audit[0].manager_name, "manager-b");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_pins_lock_the_pin_until_the_lockout_passes() {
    // Arrange
    let world = World::start_with(100.0, |config| {
        config.approvals.lockout = Duration::from_secs(1);
    })
    .await;
    let manager = world.manager.clone();
    let wrong = if manager.pin == "000000" {
        "111111"
    } else {
        "000000"
    };
    let body = |pin: &str| json!({"manager": manager.name, "pin": pin, "action": "refund"});

    // Act
    let mut wrongs = Vec::new();
    for _ in 0..4 {
        wrongs.push(world.cashier.post_json("/approvals", &body(wrong)).await);
    }
    let (fifth, _) = with_retry_after(&world.cashier, "/approvals", body(wrong)).await;
    let (right_but_locked, retry_after) =
        with_retry_after(&world.cashier, "/approvals", body(&manager.pin)).await;
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let after = world
        .cashier
        .post_json("/approvals", &body(&manager.pin))
        .await;

    // Assert
    for (index, reply) in wrongs.iter().enumerate() {
        assert_refused(
            reply,
            "PIN_INCORRECT",
            &format!("{} more wrong PINs", 4 - index),
        );
        assert_eq!(reply.error().field.as_deref(), Some("pin"));
    }
    assert_eq!(fifth.status, StatusCode::LOCKED, "{fifth:?}");
    assert_eq!(fifth.error().code, "PIN_LOCKED");
    assert_eq!(
        right_but_locked.status,
        StatusCode::LOCKED,
        "even the right PIN"
    );
    assert_eq!(retry_after, 1, "Retry-After says when the lockout ends");
    let approval: Approval = after.expect(StatusCode::CREATED);
    assert_eq!(approval.manager, manager.name);
    for reply in wrongs.iter().chain([&fifth, &right_but_locked]) {
        let text = reply.body.to_string();
        assert!(
            !text.contains(&manager.pin),
            "the PIN never appears: {text}"
        );
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_checks_are_rate_limited_per_terminal() {
    // Arrange
    let world = World::start_with(100.0, |config| {
        config.approvals.failed_checks_per_minute = 2;
    })
    .await;
    let other = world.new_cashier("counter-2").await;

    // Act: right PINs are never counted; two wrong ones use up the terminal's minute.
    for _ in 0..3 {
        world.cashier.approve("refund").await;
    }
    for _ in 0..2 {
        let wrong = world
            .cashier
            .approve_raw(&world.manager.name, "00000000", "refund")
            .await;
        assert_eq!(wrong.error().code, "PIN_INCORRECT", "{wrong:?}");
    }
    let (third, retry_after) = with_retry_after(
        &world.cashier,
        "/approvals",
        json!({"manager": world.manager.name, "pin": world.manager.pin, "action": "refund"}),
    )
    .await;
    let from_other = other.approve("refund").await;

    // Assert
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS, "{third:?}");
    assert_eq!(third.error().code, "TOO_MANY_REQUESTS");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(
        from_other.starts_with("pca_"),
        "another terminal has its own count"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_terminal_sees_every_terminal_with_an_approval_and_it_is_audited() {
    // Arrange
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let office = world
        .terminal_with_role("default", "back-office", Role::Manager)
        .await;
    let office_id = office.terminal().await.id;

    // Act
    let without = office.get_raw("/payments").await;
    let approval = office.approve("view_all_payments").await;
    let listed = office
        .send_approved(Method::GET, "/payments", &approval, None)
        .await;
    let replayed = office
        .send_approved(Method::GET, "/payments", &approval, None)
        .await;

    // Assert
    assert_refused(
        &without,
        "APPROVAL_REQUIRED",
        "view_all_payments is approved by a manager",
    );
    let listed: PaymentList = listed.expect(StatusCode::OK);
    assert_eq!(listed.payments.len(), 1);
    assert_eq!(listed.payments[0].id, paid.id, "counter-1's payment");
    assert_refused(&replayed, "APPROVAL_REQUIRED", "used");
    let audit = world.store.approved_actions(Millis(0)).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, ApprovalAction::ViewAllPayments);
    assert_eq!(audit[0].manager_name, world.manager.name);
    assert_eq!(audit[0].terminal_id, office_id);
    assert!(
        audit[0].target.starts_with("payments of "),
        "{:?}",
        audit[0]
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_a_payment_that_needs_attention_follows_a_fresh_query() {
    // Arrange: reverses keep failing, so the payment needs attention; no background
    // recheck comes before the manager's settle.
    let world = World::start_with(100.0, |config| {
        config.payments.reverse_max_attempts = 2;
        config.payments.attention_recheck_interval = Duration::from_secs(3600);
    })
    .await;
    world
        .sim
        .inject_fault(Api::Reverse, Fault::Html5xx { status: 503 }, 1000);
    let payment = world.pay(Behaviour::PasswordWaits).await;
    let stuck = world.cashier.wait_for(&payment, NeedsAttention).await;
    world.sim.clear_faults();
    let office = world
        .terminal_with_role("default", "back-office", Role::Manager)
        .await;
    let path = format!("/payments/{}/settle", stuck.id);

    // Act
    let attention_approval = office.approve("view_all_payments").await;
    let attention: AttentionList = office
        .send_approved(Method::GET, "/needs-attention", &attention_approval, None)
        .await
        .expect(StatusCode::OK);
    let queries_before = ledger::count(&world.calls(&stuck), "orderquery");
    let unapproved = office
        .post_json(&path, &json!({"reason": "顾客说已付款"}))
        .await;
    let approval = office.approve("settle_payment").await;
    let settled = office
        .send_approved(
            Method::POST,
            &path,
            &approval,
            Some(&json!({"reason": "顾客说已付款"})),
        )
        .await;

    // Assert
    assert_eq!(attention.payments.len(), 1);
    assert_eq!(attention.payments[0].id, stuck.id);
    assert_refused(&unapproved, "APPROVAL_REQUIRED", "settle_payment");
    let settled: Settlement = settled.expect(StatusCode::OK);
    assert_eq!(settled.outcome, SettleOutcome::Changed);
    let calls = world.calls(&stuck);
    assert!(
        ledger::count(&calls, "orderquery") > queries_before,
        "the settle asked WeChat afresh: {calls:#?}"
    );
    // WeChat auto-revoked the order that was never paid: the query proves it closed.
    let order = world.order(&stuck).unwrap();
    assert!(order.paid_at.is_none(), "{order:#?}");
    let payment = world.cashier.settled(&settled.payment).await;
    assert_eq!(payment.state, Cancelled, "{payment:#?}");
    assert_ledger_agrees(&world.sim, &payment);
    let audit = world.store.approved_actions(Millis(0)).await.unwrap();
    let settle = audit
        .iter()
        .find(|row| row.action == ApprovalAction::SettlePayment)
        .expect("the settle is audited");
    assert_eq!(settle.target, stuck.id);
    assert_eq!(settle.manager_name, world.manager.name);
    assert_eq!(
        settle.reason.as_deref(),
        Some("顾客说已付款"),
        "the settle's own reason"
    );
    let events = world.store.payment_events(&stuck.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|event| event.detail.contains(&world.manager.name)),
        "the payment's own audit trail names the manager: {events:#?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_payment_is_not_settled_and_a_refund_under_the_threshold_needs_no_approval() {
    // Arrange
    let world = World::start_with(100.0, |config| {
        config.approvals.refund_above_fen = paycode_api::Fen(200);
    })
    .await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    assert_eq!(paid.state, Paid);
    let unapproved = Cashier::new(world.address(), world.cashier.token());
    let office = world
        .terminal_with_role("default", "back-office", Role::Owner)
        .await;
    let path = format!("/payments/{}/refunds", paid.id);

    // Act
    let small = unapproved.post_json(&path, &refund_body(200)).await;
    let large = unapproved.post_json(&path, &refund_body(201)).await;
    let settle_path = format!("/payments/{}/settle", paid.id);
    let unapproved_settle = office
        .post_json(&settle_path, &json!({"reason": "核对"}))
        .await;
    let settle_approval = office.approve("settle_payment").await;
    let settle = office
        .send_approved(
            Method::POST,
            &settle_path,
            &settle_approval,
            Some(&json!({"reason": "核对"})),
        )
        .await;

    // Assert
    let small: paycode_api::Refund = small.expect(StatusCode::CREATED);
    assert_ne!(small.state, RefundState::Failed);
    assert_refused(&large, "APPROVAL_REQUIRED", "a refund above 200 fen");
    large.assert_error(StatusCode::FORBIDDEN, "APPROVAL_REQUIRED", None);
    // Without an approval, the request is told so before anything else; with one, a paid
    // payment is not settled, and the approval is not used up on it.
    unapproved_settle.assert_error(StatusCode::FORBIDDEN, "APPROVAL_REQUIRED", None);
    settle.assert_error(StatusCode::CONFLICT, "PAYMENT_NOT_IN_ATTENTION", None);
    assert!(
        !world
            .store
            .approved_actions(Millis(0))
            .await
            .unwrap()
            .iter()
            .any(|action| action.target == paid.id),
        "nothing was approved on the paid payment"
    );
    world.stop().await;
}
