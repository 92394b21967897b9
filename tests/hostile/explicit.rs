//! Explicit hostile cases at the HTTP API: amounts, payment codes, oversized headers and
//! bodies, and bad terminal tokens on every route. Each refusal is checked for its status,
//! stable code and field, and for leaving the store and WeChat untouched.

use std::time::Duration;

use paycode_api::{ErrorBody, ErrorCode};
use paycode_proxy::auth::TerminalToken;
use paycode_tests::World;
use paycode_tests::cashier::new_attempt_id;
use paycode_tests::secrets::SecretScanner;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wxpay::sim::{Behaviour, DEMO_API_KEY};

use crate::{error_body_problem, footprint};

/// Amounts as they could be typed or sent: each as a raw JSON number and as a JSON string.
const AMOUNTS: &[&str] = &[
    "0.1",
    "1e3",
    "1E3",
    "-0",
    "-0.0",
    "00012.30",
    "012",
    "12.345",
    "12.30",
    "NaN",
    "Infinity",
    "-1",
    "1e400",
    "12345678901234567890",
    "99999999999999999999",
    "-12345678901234567890",
    "18446744073709551616",
    "0x10",
    "1_000",
    "",
];

/// Asserts a refusal of `amount_fen`: 400 with `INVALID_JSON` (not JSON at all), or
/// `INVALID_REQUEST` / `INVALID_AMOUNT` naming the field.
fn assert_amount_refused(what: &str, status: StatusCode, text: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {status} {text}");
    assert_eq!(error_body_problem(status, text), None, "{what}");
    let body: ErrorBody = serde_json::from_str(text).unwrap();
    match &body.code {
        ErrorCode::InvalidJson => {}
        ErrorCode::InvalidRequest | ErrorCode::InvalidAmount => {
            assert_eq!(
                body.field.as_deref(),
                Some("amount_fen"),
                "{what}: {body:?}"
            )
        }
        other => panic!("{what}: unexpected code {other}: {body:?}"),
    }
}

async fn post_text(world: &World, path: &str, body: String) -> (StatusCode, String) {
    let reply = reqwest::Client::new()
        .post(format!("{}/api/v1{path}", world.address()))
        .bearer_auth(world.cashier.token().unwrap())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the proxy answers");
    let status = reply.status();
    (status, reply.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_that_are_not_whole_positive_fen_are_refused_for_payments_and_refunds() {
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let before = footprint(&world).await;

    for amount in AMOUNTS {
        for literal in [amount.to_string(), json!(amount).to_string()] {
            let code = world.sim.auth_code(Behaviour::PasswordFree);
            let payment = format!(
                r#"{{"attempt_id":"{}","amount_fen":{literal},"auth_code":"{code}"}}"#,
                new_attempt_id()
            );
            let (status, text) = post_text(&world, "/payments", payment).await;
            assert_amount_refused(&format!("payment amount {literal}"), status, &text);

            let refund = format!(
                r#"{{"refund_attempt_id":"{}","amount_fen":{literal}}}"#,
                new_attempt_id()
            );
            let path = format!("/payments/{}/refunds", paid.id);
            let (status, text) = post_text(&world, &path, refund).await;
            let whole_fen = literal.parse::<u64>().is_ok_and(|fen| fen > 0);
            if whole_fen && status == StatusCode::CONFLICT {
                // A whole number of fen above what is left: refused as too much, naming the field.
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["code"], "REFUND_EXCEEDS_PAYMENT", "{literal}: {body}");
                assert_eq!(body["field"], "amount_fen", "{literal}: {body}");
            } else {
                assert_amount_refused(&format!("refund amount {literal}"), status, &text);
            }
        }
    }

    assert_eq!(
        footprint(&world).await,
        before,
        "a refused amount changed state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_of_other_wallets_and_lookalikes_are_refused() {
    let world = World::start().await;
    let before = footprint(&world).await;
    let codes = [
        "251234567890123456", // Alipay 25–30 prefixes, 16 to 24 digits
        "261234567890123456",
        "271234567890123456",
        "281234567890123456",
        "291234567890123456",
        "301234567890123456",
        "2812345678901234",
        "281234567890123456789012",
        "161234567890123456", // 16–19: not WeChat
        "191234567890123456",
        "091234567890123456",
        "62123456789012345678",                 // UnionPay
        "13456789012345678",                    // 17 digits
        "1345678901234567890",                  // 19 digits
        "13456789012345678A",                   // a letter
        "1345678901234567８9",                  // one full-width digit
        "１３４５６７８９０１２３４５６７８９", // all full-width
        "١٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩",                   // Arabic-Indic digits
        "13456789012345678\u{200b}9",           // a zero-width space
        " 134567890123456789",
        "134567890123456789\n",
        "134567890123456789\0",
        "+13456789012345678",
        "-134567890123456789",
        "1345-6789-0123-4567-89",
        "13456789012345678.9",
    ];
    for code in codes {
        let body = json!({"attempt_id": new_attempt_id(), "amount_fen": 1230, "auth_code": code});
        let reply = world.cashier.post_json("/payments", &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{code:?}: {reply:?}");
        let error = reply.error();
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{code:?}: {error:?}");
        assert_eq!(
            error.field.as_deref(),
            Some("auth_code"),
            "{code:?}: {error:?}"
        );
        // The refusal never echoes the code it refused.
        assert!(!error.message.contains(code.trim()), "{code:?}: {error:?}");
    }
    // 18-digit codes as JSON numbers (beyond 2^53: a float would round them).
    for literal in [
        "134567890123456789",
        "1.34567890123456789e17",
        "134567890123456789.0",
    ] {
        let body = format!(
            r#"{{"attempt_id":"{}","amount_fen":1230,"auth_code":{literal}}}"#,
            new_attempt_id()
        );
        let (status, text) = post_text(&world, "/payments", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{literal}: {text}");
        assert_eq!(error_body_problem(status, &text), None);
    }
    assert_eq!(footprint(&world).await, before);
    assert!(world.sim.calls().is_empty());
}

/// Sends raw bytes to the proxy and returns the status line's code (0 if it hung up).
async fn raw_exchange(world: &World, request: &[u8]) -> (u16, String) {
    let address = world.address().trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer and close before reading everything: the answer is read while the
    // request is still being written (reading only afterwards raced the close, whose reset
    // can discard an answer not yet read), and write errors are ignored.
    let (mut reader, mut writer) = stream.into_split();
    let request = request.to_vec();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    // `read_to_end` keeps what it read when the connection is reset.
    let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
    writing.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_bodies_over_the_limits_are_refused_and_the_proxy_carries_on() {
    let world = World::start().await;
    let token = world.cashier.token().unwrap().to_owned();
    let before = footprint(&world).await;
    let valid_body = |description: &str| {
        json!({
            "attempt_id": new_attempt_id(),
            "amount_fen": 1230,
            "auth_code": world.sim.auth_code(Behaviour::PasswordFree),
            "description": description,
        })
        .to_string()
    };

    // A 10 MB body, declared.
    let big = valid_body(&"x".repeat(10 * 1024 * 1024));
    let declared = format!(
        "POST /api/v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
        big.len()
    );
    let (status, text) = raw_exchange(&world, declared.as_bytes()).await;
    assert_eq!(status, 413, "{text:.300}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    assert_eq!(
        error_body_problem(StatusCode::PAYLOAD_TOO_LARGE, body),
        None
    );

    // A 10 MB body, chunked (no Content-Length): the limit holds while reading.
    let mut chunked = format!(
        "POST /api/v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..160 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, text) = raw_exchange(&world, &chunked).await;
    assert!(status == 413 || status == 400, "chunked 10 MB: {text:.300}");

    // Headers: one of 1 MB (hyper's default read buffer is ~400 KB; 100 KB is accepted), and
    // 500 small ones (hyper allows 100).
    let long_header = format!(
        "GET /api/v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let (status, text) = raw_exchange(&world, long_header.as_bytes()).await;
    assert!(
        status == 431 || status == 400 || status == 0,
        "a 1 MB header: {text:.300}"
    );
    let mut many =
        format!("GET /api/v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n");
    for index in 0..500 {
        many.push_str(&format!("X-H{index}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let (status, text) = raw_exchange(&world, many.as_bytes()).await;
    assert!(
        status == 431 || status == 400 || status == 0,
        "500 headers: {text:.300}"
    );
    // A 1 MB bearer token.
    let huge_token = format!(
        "GET /api/v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pct_{}\r\nConnection: close\r\n\r\n",
        "A".repeat(1024 * 1024)
    );
    let (status, text) = raw_exchange(&world, huge_token.as_bytes()).await;
    assert!(
        status == 431 || status == 400 || status == 401 || status == 0,
        "a 1 MB token: {text:.300}"
    );
    // A body just over the configured limit, and one just under it.
    let limit = world.config.server.body_limit_bytes;
    let over = valid_body(&"y".repeat(limit));
    let (status, _) = post_text(&world, "/payments", over).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(footprint(&world).await, before);
    // The proxy carries on.
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    assert_eq!(paid.state, paycode_api::PaymentState::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_missing_wrong_and_revoked_tokens() {
    let world = World::start().await;
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let other = world.new_cashier("counter-2").await;
    let revoked = world.new_cashier("revoked").await;
    world.terminals.revoke("revoked").await.unwrap();
    let valid = world.cashier.token().unwrap().to_owned();
    let scanner = SecretScanner::new(DEMO_API_KEY, None);
    for token in [&valid, other.token().unwrap(), revoked.token().unwrap()] {
        scanner.add_token(token);
    }
    let unknown = TerminalToken::generate();
    let authorizations: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer pct_".to_owned()),
        Some(format!("Bearer {}", unknown.expose())),
        Some(format!("Bearer {valid}x")),
        Some(format!("Bearer {}", &valid[..valid.len() - 1])),
        Some(format!("Bearer {}", valid.to_uppercase())),
        Some(format!("Basic {valid}")),
        Some(format!("Token {valid}")),
        Some(valid.clone()),
        Some(format!("Bearer {valid} {valid}")),
        Some(format!("Bearer {}", revoked.token().unwrap())),
        Some("Bearer pct_' OR '1'='1".to_owned()),
    ];
    let routes = [
        ("GET", "/api/v1/payments".to_owned()),
        ("POST", "/api/v1/payments".to_owned()),
        ("GET", format!("/api/v1/payments/{}", paid.id)),
        ("POST", format!("/api/v1/payments/{}/cancel", paid.id)),
        ("POST", format!("/api/v1/payments/{}/refunds", paid.id)),
        ("GET", "/api/v1/terminal".to_owned()),
    ];
    let before = footprint(&world).await;
    let http = reqwest::Client::new();
    for (method, path) in &routes {
        for authorization in &authorizations {
            let body = if path.ends_with("/refunds") {
                json!({"refund_attempt_id": new_attempt_id(), "amount_fen": 1})
            } else {
                json!({
                    "attempt_id": new_attempt_id(),
                    "amount_fen": 1230,
                    "auth_code": world.sim.auth_code(Behaviour::PasswordFree),
                })
            };
            let mut request = http
                .request(
                    method.parse().unwrap(),
                    format!("{}{path}", world.address()),
                )
                .header("content-type", "application/json");
            if *method == "POST" {
                request = request.body(body.to_string());
            }
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            let reply = request.send().await.expect("an answer");
            let status = reply.status();
            let text = reply.text().await.unwrap();
            let what = format!("{method} {path} with {authorization:?}");
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {text}");
            assert_eq!(error_body_problem(status, &text), None, "{what}");
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap()["code"],
                "UNAUTHORIZED",
                "{what}"
            );
            assert_eq!(
                scanner.scan(&what, &text),
                0,
                "{what}: the refusal echoes a token"
            );
        }
    }
    // A token in the query string is not a credential.
    let reply = http
        .get(format!(
            "{}/api/v1/payments?access_token={valid}",
            world.address()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        footprint(&world).await,
        before,
        "a refused request changed state"
    );
}

/// A method a route does not support gets a 405 with an `ErrorBody` (`METHOD_NOT_ALLOWED`),
/// not axum's bare 405 with an empty body (which this suite found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_methods_get_an_error_body() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    for (method, path) in [
        ("PUT", "/api/v1/payments"),
        ("DELETE", "/api/v1/payments"),
        ("PATCH", "/api/v1/terminal"),
        ("GET", "/api/v1/payments/x/cancel"),
    ] {
        let reply = http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", world.address()),
            )
            .bearer_auth(world.cashier.token().unwrap())
            .send()
            .await
            .unwrap();
        let status = reply.status();
        let text = reply.text().await.unwrap();
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(error_body_problem(status, &text), None, "{method} {path}");
    }
}
