//! Pairing by QR code over HTTP: a code works once and only before it expires, the minted
//! token works and the previous one stops, refusals are rate-limited with 429, and
//! `terminal add|pair` print the QR code and write it as SVG.

use std::time::Duration;

use paycode_api::{ErrorBody, Paired};
use paycode_proxy::cli::terminal::{self, TerminalCommand};
use paycode_proxy::private_file::mode;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, config_in, spawn_app, spawn_app_with};

async fn exchange(app: &TestApp, code: &str) -> (StatusCode, String, Option<String>) {
    let response = app
        .client
        .post(format!("{}/api/v1/pairing", app.address))
        .header("content-type", "application/json")
        .body(json!({ "code": code }).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), retry_after)
}

async fn terminal_status(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/v1/terminal", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_code_works_once_mints_a_new_token_and_revokes_the_old_one() {
    // Arrange
    let app = spawn_app(|_| {}).await;
    let old_token = app.terminal_token("counter-1").await;
    let code = app
        .pairing_code("counter-1", Duration::from_secs(300))
        .await;

    // Act
    let (first_status, first_body, _) = exchange(&app, &code).await;
    let (second_status, second_body, _) = exchange(&app, &code).await;

    // Assert
    assert_eq!(first_status, StatusCode::OK, "{first_body}");
    let paired: Paired = serde_json::from_str(&first_body).unwrap();
    assert_eq!(paired.terminal.name, "counter-1");
    assert_ne!(paired.token, old_token);
    assert_eq!(terminal_status(&app, &paired.token).await, StatusCode::OK);
    assert_eq!(
        terminal_status(&app, &old_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(second_status, StatusCode::BAD_REQUEST);
    let refused: ErrorBody = serde_json::from_str(&second_body).unwrap();
    assert_eq!(refused.code, "PAIRING_CODE_INVALID");
    assert_eq!(refused.field.as_deref(), Some("code"));
    assert!(!second_body.contains(&code), "{second_body}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_code_or_one_replaced_by_a_newer_code_is_refused() {
    // Arrange
    let app = spawn_app(|_| {}).await;
    let token = app.terminal_token("counter-1").await;
    let expired = app
        .pairing_code("counter-1", Duration::from_millis(1))
        .await;
    // Let the 1 ms validity pass.
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Act
    let (expired_status, expired_body, _) = exchange(&app, &expired).await;
    let replaced = app
        .pairing_code("counter-1", Duration::from_secs(300))
        .await;
    let newer = app
        .pairing_code("counter-1", Duration::from_secs(300))
        .await;
    let (replaced_status, _, _) = exchange(&app, &replaced).await;
    let (malformed_status, _, _) = exchange(&app, "pcp_short").await;
    let (newer_status, _, _) = exchange(&app, &newer).await;

    // Assert
    assert_eq!(expired_status, StatusCode::BAD_REQUEST, "{expired_body}");
    assert!(
        expired_body.contains("PAIRING_CODE_INVALID"),
        "{expired_body}"
    );
    assert_eq!(replaced_status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed_status, StatusCode::BAD_REQUEST);
    assert_eq!(newer_status, StatusCode::OK);
    // The refused attempts did not touch the terminal's token; the successful one did.
    assert_eq!(
        terminal_status(&app, &token).await,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn exchanges_beyond_the_rate_limit_answer_429() {
    // Arrange
    let app = spawn_app_with(
        |_| {},
        |config| {
            config.pairing.exchanges_per_minute_per_ip = 2;
            config.pairing.exchanges_per_minute = 100;
        },
    )
    .await;
    app.terminal_token("counter-1").await;
    let code = app
        .pairing_code("counter-1", Duration::from_secs(300))
        .await;
    let wrong = "pcp_AAAAAAAAAAAAAAAAAAAAAA";

    // Act
    let (first, _, _) = exchange(&app, wrong).await;
    let (second, _, _) = exchange(&app, wrong).await;
    let (limited, body, retry_after) = exchange(&app, &code).await;

    // Assert: even the right code waits for the next minute.
    assert_eq!([first, second], [StatusCode::BAD_REQUEST; 2]);
    assert_eq!(limited, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let refused: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(refused.code, "TOO_MANY_REQUESTS");
    let retry_after: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn terminal_add_and_pair_print_a_qr_code_and_write_it_as_svg_or_png() {
    // Arrange
    let root = tempfile::tempdir().unwrap();
    let mut config = config_in(root.path());
    config.server.public_url = Some("https://paycode.local:3443".parse().unwrap());
    let svg = root.path().join("pair.svg");

    // Act
    let mut added = Vec::new();
    terminal::run(
        TerminalCommand::Add {
            name: "counter-1".into(),
            store: None,
            role: paycode_api::Role::Cashier,
            qr_file: None,
        },
        &config,
        &mut added,
    )
    .await
    .unwrap();
    // `terminal pair NAME [--qr-file FILE]`: what it printed, or why it failed.
    let pair = async |name: &str, qr_file: Option<std::path::PathBuf>| {
        let mut output = Vec::new();
        let command = TerminalCommand::Pair {
            name: name.into(),
            qr_file,
        };
        terminal::run(command, &config, &mut output)
            .await
            .map(|()| String::from_utf8(output).unwrap())
    };
    let paired = pair("counter-1", Some(svg.clone())).await.unwrap();
    let unknown = pair("nobody", None).await;
    let png = root.path().join("pair.PNG");
    let paired_png = pair("counter-1", Some(png.clone())).await.unwrap();
    let gif = pair("counter-1", Some(root.path().join("pair.gif"))).await;

    // Assert
    let added = String::from_utf8(added).unwrap();
    for output in [&added, &paired] {
        assert!(
            output.contains("https://paycode.local:3443/#pair=pcp_"),
            "{output}"
        );
        assert!(output.contains('▀') || output.contains('▄'), "{output}");
        assert!(output.contains("previous token stops working"), "{output}");
    }
    assert!(
        added.contains("pct_"),
        "the token can still be typed: {added}"
    );
    assert!(!paired.contains("pct_"), "{paired}");
    let code_of = |output: &str| output.split("#pair=").nth(1).unwrap()[..26].to_owned();
    assert_ne!(code_of(&added), code_of(&paired));
    let image = std::fs::read_to_string(&svg).unwrap();
    assert!(
        image.starts_with("<?xml") && image.contains("<svg"),
        "{image}"
    );
    if cfg!(unix) {
        assert_eq!(mode(&svg).unwrap(), Some(0o600));
    }
    // The PNG is a QR code of the printed address, as the tablet's own decoder reads it.
    let printed_url = paired_png
        .split_whitespace()
        .find(|word| word.contains("#pair="))
        .unwrap();
    let picture = image::open(&png).unwrap().to_luma8();
    assert!(picture.width() >= 256 && picture.height() >= 256);
    let frame = paycode_decoder::GreyFrame::from_luma(
        picture.width(),
        picture.height(),
        picture.into_raw(),
    )
    .unwrap();
    let read = paycode_decoder::decode(&frame).expect("the PNG reads as a QR code");
    assert_eq!(read.text, printed_url);
    if cfg!(unix) {
        assert_eq!(mode(&png).unwrap(), Some(0o600));
    }
    assert!(unknown.is_err());
    let refused = gif.unwrap_err().to_string();
    assert!(refused.contains(".svg or .png"), "{refused}");
}
