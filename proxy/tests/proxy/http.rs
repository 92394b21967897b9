//! The HTTP surface of a running application.

use std::fs;

use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(|_| {}).await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(body["ready"], true);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_api_paths_answer_a_json_404() {
    let app = spawn_app(|_| {}).await;
    let response = app
        .client
        .get(format!("{}/api/v1/nothing-here", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: paycode_api::ErrorBody =
        serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body.code, "NOT_FOUND");
    assert!(
        body.message.contains("/api/v1/nothing-here"),
        "{}",
        body.message
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_built_app_the_root_explains_how_to_build_it() {
    let app = spawn_app(|_| {}).await;
    let root = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert!(root.text().await.unwrap().contains("scripts/demo"));
    let other = app
        .client
        .get(format!("{}/history", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_built_app_is_served_with_a_fallback_to_index_html() {
    // Arrange
    let app = spawn_app(|root| {
        let dist = root.join("dist");
        fs::create_dir_all(&dist).unwrap();
        fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Paycode</title>",
        )
        .unwrap();
        fs::write(dist.join("app.js"), "console.log('paycode')").unwrap();
    })
    .await;

    // Act
    let get = |path: &str| app.client.get(format!("{}{path}", app.address)).send();
    let index = get("/").await.unwrap();
    let script = get("/app.js").await.unwrap();
    let deep_link = get("/history/2024-03-02").await.unwrap();

    // Assert
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index
            .text()
            .await
            .unwrap()
            .contains("<title>Paycode</title>")
    );
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.text().await.unwrap(), "console.log('paycode')");
    assert_eq!(deep_link.status(), StatusCode::OK);
    assert!(
        deep_link
            .text()
            .await
            .unwrap()
            .contains("<title>Paycode</title>")
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_server_stops_gracefully_and_releases_its_port() {
    let app = spawn_app(|_| {}).await;
    let address = app.address.clone();
    app.stop().await.unwrap();
    let after = reqwest::Client::new()
        .get(format!("{address}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "the server still answers after stopping");
}

#[tokio::test]
async fn the_app_is_compressed_and_hashed_assets_are_cached_for_a_year() {
    // Arrange: a built app with Trunk-style hashed names.
    let wasm = "paycode-app-b3aceb16c2715634_bg.wasm";
    let wasm_bytes = "(module) ".repeat(4000);
    let app = spawn_app(|root| {
        let dist = root.join("dist");
        fs::create_dir_all(&dist).unwrap();
        fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Paycode</title>",
        )
        .unwrap();
        fs::write(dist.join(wasm), &wasm_bytes).unwrap();
        fs::write(dist.join("style-6c952b743834b71e.css"), "body{}").unwrap();
        // A release build's precompressed copy (scripts/precompress): sent as it is.
        fs::write(dist.join("paycode-app-b3aceb16c2715634.js"), "export {};").unwrap();
        fs::write(
            dist.join("paycode-app-b3aceb16c2715634.js.br"),
            "brotli made at build time",
        )
        .unwrap();
        fs::write(
            dist.join("sw.js"),
            "self.addEventListener('fetch', () => {});",
        )
        .unwrap();
    })
    .await;
    let get = |path: &str, encoding: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("accept-encoding", encoding)
            .send()
    };

    // Act
    let brotli = get(&format!("/{wasm}"), "br, gzip").await.unwrap();
    let gzip = get(&format!("/{wasm}"), "gzip").await.unwrap();
    let css = get("/style-6c952b743834b71e.css", "identity")
        .await
        .unwrap();
    let precompressed = get("/paycode-app-b3aceb16c2715634.js", "gzip, br")
        .await
        .unwrap();
    let index = get("/", "identity").await.unwrap();
    let deep_link = get("/history", "identity").await.unwrap();
    let worker = get("/sw.js", "identity").await.unwrap();
    let api = app
        .client
        .get(format!("{}/api/v1/terminal", app.address))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();

    // Assert
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let immutable = Some("public, max-age=31536000, immutable".to_owned());
    assert_eq!(header(&brotli, "content-encoding").as_deref(), Some("br"));
    assert_eq!(header(&brotli, "cache-control"), immutable);
    assert!(brotli.bytes().await.unwrap().len() < wasm_bytes.len() / 10);
    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&css, "cache-control"), immutable);
    assert_eq!(
        header(&precompressed, "content-encoding").as_deref(),
        Some("br")
    );
    assert_eq!(header(&precompressed, "cache-control"), immutable);
    assert_eq!(
        precompressed.bytes().await.unwrap().as_ref(),
        b"brotli made at build time"
    );
    for response in [&index, &deep_link, &worker] {
        assert_eq!(
            header(response, "cache-control").as_deref(),
            Some("no-cache")
        );
    }
    assert_eq!(header(&api, "cache-control"), None);
    assert_eq!(header(&api, "content-encoding"), None);
    app.stop().await.unwrap();
}
