//! What the API refuses: requests without a valid token, and bodies with bad amounts, codes
//! or fields. Every refusal is a 4xx with a stable code naming the field, and nothing is
//! stored and nothing is sent to WeChat.

use paycode_api::PaymentState::Paid;
use paycode_proxy::auth::TerminalToken;
use paycode_tests::cashier::new_attempt_id;
use paycode_tests::{Reply, World};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wxpay::sim::Behaviour;

/// Asserts that the proxy stored no payment and WeChat received no call.
async fn assert_nothing_happened(world: &World) {
    assert!(world.cashier.today().await.payments.is_empty());
    assert!(world.sim.calls().is_empty(), "{:#?}", world.sim.calls());
}

/// A valid payment body with `field` set to `value` (or removed when `value` is `None`).
fn body_with(world: &World, field: &str, value: Option<Value>) -> Value {
    let mut body = json!({
        "attempt_id": new_attempt_id(),
        "amount_fen": 1230,
        "auth_code": world.sim.auth_code(Behaviour::PasswordFree),
    });
    match value {
        Some(value) => body[field] = value,
        None => {
            body.as_object_mut().unwrap().remove(field);
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401_and_touch_nothing() {
    let world = World::start().await;
    let revoked = world.new_cashier("revoked-counter").await;
    world.terminals.revoke("revoked-counter").await.unwrap();
    let unknown = TerminalToken::generate();
    let strangers = [
        world.stranger(None),
        world.stranger(Some("not-a-token")),
        world.stranger(Some(unknown.expose())),
        revoked,
    ];
    let body = body_with(&world, "amount_fen", Some(json!(1230)));

    for stranger in &strangers {
        let created = stranger.post_json("/payments", &body).await;
        let listed = stranger.get_raw("/payments").await;
        created.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", None);
        listed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", None);
    }

    assert_nothing_happened(&world).await;
    // The same body with a valid token goes through.
    let paid = world.cashier.post_json("/payments", &body).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{paid:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_amounts_are_refused_naming_the_field() {
    let world = World::start().await;
    let over_max = world.config.payments.max_amount_fen.get() + 1;

    for (amount, code) in [
        (json!(-1), "INVALID_REQUEST"),
        (json!(0), "INVALID_AMOUNT"),
        (json!(1.5), "INVALID_REQUEST"),
        (json!(12.30), "INVALID_REQUEST"),
        (json!(1e3), "INVALID_REQUEST"),
        (json!("12"), "INVALID_REQUEST"),
        (json!(null), "INVALID_REQUEST"),
        (json!(over_max), "INVALID_AMOUNT"),
        (json!(u64::MAX), "INVALID_AMOUNT"),
    ] {
        let body = body_with(&world, "amount_fen", Some(amount.clone()));
        let reply = world.cashier.post_json("/payments", &body).await;
        assert_refused(&reply, code, "amount_fen", &amount);
    }

    assert_nothing_happened(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_that_are_not_wechat_payment_codes_are_refused() {
    let world = World::start().await;

    for code in [
        json!("281234567890123456"),                 // Alipay
        json!("13456789012345678"),                  // 17 digits
        json!("1345678901234567890"),                // 19 digits
        json!("16456789012345678X"),                 // a letter
        json!("134567890123456 78"),                 // a space
        json!("１３４５６７８９０１２３４５６７８"), // full-width digits
        json!("620000000000000000"),                 // UnionPay prefix
        json!(""),
        json!(134567890123456789u64), // a number, not a string
    ] {
        let body = body_with(&world, "auth_code", Some(code.clone()));
        let reply = world.cashier.post_json("/payments", &body).await;
        assert_refused(&reply, "INVALID_REQUEST", "auth_code", &code);
    }

    assert_nothing_happened(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused_naming_the_field() {
    let world = World::start().await;
    let cashier = &world.cashier;
    let with = |field: &str, value: Option<Value>| body_with(&world, field, value);

    let unknown_field = cashier
        .post_json("/payments", &with("tip", Some(json!(100))))
        .await;
    let missing_code = cashier
        .post_json("/payments", &with("auth_code", None))
        .await;
    let bad_attempt = cashier
        .post_json("/payments", &with("attempt_id", Some(json!("attempt-1"))))
        .await;
    let long_description = cashier
        .post_json(
            "/payments",
            &with("description", Some(json!("商".repeat(50)))),
        )
        .await;
    let not_json = cashier
        .post_raw("/payments", "application/json", "{\"attempt_id\":")
        .await;
    let not_declared_json = cashier
        .post_raw("/payments", "text/plain", with("tip", None).to_string())
        .await;
    let oversized = cashier
        .post_json(
            "/payments",
            &with("description", Some(json!("x".repeat(64 * 1024)))),
        )
        .await;

    unknown_field.assert_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", Some("tip"));
    missing_code.assert_error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        Some("auth_code"),
    );
    bad_attempt.assert_error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        Some("attempt_id"),
    );
    long_description.assert_error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        Some("description"),
    );
    not_json.assert_error(StatusCode::BAD_REQUEST, "INVALID_JSON", None);
    not_declared_json.assert_error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        None,
    );
    oversized.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", None);
    assert_nothing_happened(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_payment_is_not_found() {
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;

    let unknown = world.cashier.get_raw("/payments/no-such-payment").await;
    let bad_wait = world
        .cashier
        .get_raw(&format!("/payments/{}?wait=soon", paid.id))
        .await;

    unknown.assert_error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", None);
    assert_eq!(bad_wait.status, StatusCode::BAD_REQUEST, "{bad_wait:?}");
    assert_eq!(paid.state, Paid);
}

fn assert_refused(reply: &Reply, code: &str, field: &str, value: &Value) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{value}: {reply:?}");
    let error = reply.error();
    assert_eq!(error.code, code, "{value}: {error:?}");
    assert_eq!(error.field.as_deref(), Some(field), "{value}: {error:?}");
}
