//! The OpenAPI document at `/api/v1/openapi.json` stays in sync with the routes and with the
//! reviewed copy in `proxy/openapi.json`.

use std::path::PathBuf;

use paycode_api::Fen;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

/// The document `app` serves at `/api/v1/openapi.json`.
async fn served_document(app: &TestApp) -> serde_json::Value {
    let text = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_served_document_matches_the_reviewed_copy() {
    let app = spawn_app(|_| {}).await;
    let served = served_document(&app).await;
    let generated = serde_json::to_value(paycode_proxy::routes::openapi()).unwrap();
    assert_eq!(served, generated);
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("PAYCODE_UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == pretty,
        "proxy/openapi.json is out of date: review the API change, then run \
         `PAYCODE_UPDATE_OPENAPI=1 cargo test -p paycode-proxy --test proxy openapi` and commit it"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app(|_| {}).await;
    let document = serde_json::to_value(paycode_proxy::routes::openapi()).unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 5, "{paths:?}");
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let url = format!("{}{}", app.address, path.replace("{id}", "no-such-payment"));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            let unrouted = body["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("there is no API endpoint"));
            // The demo pairing endpoint exists but answers like an unknown path outside demo
            // mode, by design; everything else must reach its handler (401 without a token).
            // Pairing needs no token: its handler refuses the empty body (no `code`).
            if path != "/api/v1/demo/pairing" {
                assert!(!unrouted, "{method} {path} is documented but not routed");
                let expected = if path == "/api/v1/pairing" {
                    reqwest::StatusCode::BAD_REQUEST
                } else {
                    reqwest::StatusCode::UNAUTHORIZED
                };
                assert_eq!(status, expected, "{method} {path}");
            }
        }
    }
    app.stop().await.unwrap();
}

/// Sends `method path` with the token (and a JSON body, if any); answers the status and the
/// body's `code` and `field`.
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String, Option<String>) {
    let mut request = app
        .client
        .request(method, format!("{}/api/v1{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    (status, text("code").unwrap_or_default(), text("field"))
}

#[tokio::test]
async fn query_parameters_are_held_to_the_documented_bounds() {
    // Arrange
    let app = spawn_app(|_| {}).await;
    let token = app.terminal_token("counter-1").await;
    let show = |query: &str| format!("/payments/no-such-payment?{query}");
    let invalid = |field: &str| (400, "INVALID_REQUEST".to_owned(), Some(field.to_owned()));
    let not_found = (404, "PAYMENT_NOT_FOUND".to_owned(), None);

    // Act & Assert: `wait` at most an hour, `after_version` at most i64::MAX, named.
    for (query, expected) in [
        ("after_version=1&wait=3600", not_found.clone()),
        ("after_version=1&wait=3601", invalid("wait")),
        ("after_version=1&wait=9223372036854775808", invalid("wait")),
        (
            "after_version=9223372036854775807&wait=0",
            not_found.clone(),
        ),
        (
            "after_version=9223372036854775808&wait=0",
            invalid("after_version"),
        ),
    ] {
        assert_eq!(
            call(&app, &token, Method::GET, &show(query), None).await,
            expected,
            "{query}"
        );
    }
    // `date` is an RFC 3339 full-date or absent; empty is not absent.
    for date in [
        "",
        "2026-1-5",
        "+2026-01-05",
        "0000-01-01",
        "2026-02-30",
        "20261130",
    ] {
        let path = format!("/payments?date={date}");
        assert_eq!(
            call(&app, &token, Method::GET, &path, None).await,
            invalid("date"),
            "{date:?}"
        );
    }
    // A cashier terminal lists its own payments; every terminal's is a manager action.
    let own: paycode_api::TerminalInfo = serde_json::from_str(
        &app.client
            .get(format!("{}/api/v1/terminal", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    for date in ["2026-11-30", "0001-01-01", "9999-12-31"] {
        let path = format!("/payments?date={date}&terminal={}", own.id);
        let (status, ..) = call(&app, &token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{date}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn refund_amounts_are_held_to_the_documented_bounds() {
    // Arrange
    let app = spawn_app(|_| {}).await;
    let token = app.terminal_token("counter-1").await;
    let refund = |amount: serde_json::Value| {
        json!({
            "refund_attempt_id": "3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a",
            "amount_fen": amount,
        })
    };
    let path = "/payments/no-such-payment/refunds";

    // Act & Assert: 1 to 10^12 fen, written with digits only, reach the payment (which does
    // not exist); anything else is refused naming the field.
    let not_found = (404, "PAYMENT_NOT_FOUND".to_owned(), None);
    let refused = |code: &str| (400, code.to_owned(), Some("amount_fen".to_owned()));
    for (amount, expected) in [
        (json!(1), not_found.clone()),
        (json!(1_000_000_000_000_u64), not_found),
        (json!(0), refused("INVALID_AMOUNT")),
        (json!(1_000_000_000_001_u64), refused("INVALID_AMOUNT")),
        (json!(u64::MAX), refused("INVALID_AMOUNT")),
        (json!(5.5), refused("INVALID_REQUEST")),
        (json!(5.0), refused("INVALID_REQUEST")),
    ] {
        let body = Some(refund(amount.clone()));
        let answer = call(&app, &token, Method::POST, path, body).await;
        assert_eq!(answer, expected, "{amount}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_served_document_states_this_servers_maximum_amount() {
    let app = spawn_app_with(|_| {}, |config| config.payments.max_amount_fen = Fen(777)).await;
    let document = served_document(&app).await;
    let amount = &document["components"]["schemas"]["CreatePayment"]["properties"]["amount_fen"];
    assert_eq!(
        (&amount["minimum"], &amount["maximum"]),
        (&json!(1), &json!(777))
    );
    let token = app.terminal_token("counter-1").await;
    let payment = |amount: u64| {
        json!({
            "attempt_id": "3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a",
            "amount_fen": amount,
            "auth_code": "134567890123455678",
        })
    };
    let (status, code, field) =
        call(&app, &token, Method::POST, "/payments", Some(payment(778))).await;
    assert_eq!(
        (status, code.as_str(), field.as_deref()),
        (400, "INVALID_AMOUNT", Some("amount_fen"))
    );
    app.stop().await.unwrap();
}

#[test]
fn every_status_an_operation_can_answer_is_documented() {
    let document = serde_json::to_value(paycode_proxy::routes::openapi()).unwrap();
    let documented = |method: &str, path: &str| -> Vec<String> {
        let responses = document["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is documented"));
        responses.keys().cloned().collect()
    };
    // Every operation behind a terminal token reads the database (the token is checked there).
    let guarded = ["401", "500", "503"];
    let json_body = ["400", "413", "415"];
    for (method, path, own) in [
        ("get", "/api/v1/terminal", &[][..]),
        ("get", "/api/v1/payments", &["400"][..]),
        ("post", "/api/v1/payments", &["409"][..]),
        ("get", "/api/v1/payments/{id}", &["400", "404"][..]),
        ("post", "/api/v1/payments/{id}/cancel", &["404", "409"][..]),
        ("post", "/api/v1/payments/{id}/refunds", &["404", "409"][..]),
    ] {
        let statuses = documented(method, path);
        let body = if method == "post" && !path.ends_with("/cancel") {
            &json_body[..]
        } else {
            &[][..]
        };
        for status in guarded.iter().chain(body).chain(own) {
            assert!(
                statuses.iter().any(|documented| documented == status),
                "{method} {path} can answer {status} but documents only {statuses:?}"
            );
        }
    }
    let pairing = documented("post", "/api/v1/pairing");
    for status in ["200", "400", "413", "415", "429", "500", "503"] {
        assert!(
            pairing.iter().any(|documented| documented == status),
            "POST /api/v1/pairing can answer {status} but documents only {pairing:?}"
        );
    }
}
