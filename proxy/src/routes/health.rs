//! `/healthz` (the process is up) and `/readyz` (it can do its job, by the checks in
//! [`Readiness`](crate::readiness::Readiness)).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::state::AppState;

/// `GET /healthz` and `GET /readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health_show))
        .route("/readyz", get(readiness_show))
}

/// 200 while the process runs: liveness only, no dependencies.
async fn health_show() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// 200 when every readiness check passes, else 503; the body lists each check.
async fn readiness_show(State(state): State<AppState>) -> impl IntoResponse {
    let report = state.readiness.run().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::config::StoreBackend;
    use crate::readiness::{Readiness, ReadinessCheck, StoreReachable};
    use crate::test_support::test_state;

    struct AlwaysDown;

    #[async_trait]
    impl ReadinessCheck for AlwaysDown {
        fn name(&self) -> &'static str {
            "wechat"
        }

        async fn check(&self) -> Result<(), String> {
            Err("connect to 10.0.0.1:443 refused".to_owned())
        }
    }

    async fn get(router: Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn ready_when_the_store_answers() {
        let (mut state, _directory) = test_state().await;
        // Only the store's check: this test has no WeChat to reach.
        state.readiness = Readiness::for_instance("till-2").with(Arc::new(StoreReachable::new(
            Arc::clone(&state.store),
            StoreBackend::Sqlite,
        )));
        let (status, mut body) = get(router().with_state(state), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        let latency = body["checks"][0]
            .as_object_mut()
            .and_then(|check| check.remove("latency_ms"))
            .and_then(|latency| latency.as_f64())
            .expect("the store's check reports its latency");
        assert!((0.0..2000.0).contains(&latency), "{latency}");
        assert_eq!(
            body,
            serde_json::json!({
                "ready": true,
                "instance": "till-2",
                "checks": [{"name": "store", "ok": true, "backend": "sqlite"}]
            })
        );
    }

    #[tokio::test]
    async fn an_added_check_that_fails_makes_it_unready_without_saying_why() {
        // Arrange
        let (mut state, _directory) = test_state().await;
        state.readiness = Readiness::default()
            .with(Arc::new(StoreReachable::new(
                Arc::clone(&state.store),
                StoreBackend::Sqlite,
            )))
            .with(Arc::new(AlwaysDown));
        // Act
        let (status, body) = get(router().with_state(state.clone()), "/readyz").await;
        let (health_status, _) = get(router().with_state(state), "/healthz").await;
        // Assert
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["ready"], false);
        assert_eq!(
            body["checks"][1],
            serde_json::json!({"name": "wechat", "ok": false})
        );
        assert!(!body.to_string().contains("10.0.0.1"), "{body}");
        assert_eq!(health_status, StatusCode::OK);
    }

    #[tokio::test]
    async fn plain_http_beyond_loopback_stays_ready_but_says_so() {
        // Arrange: the state `serve` builds for a configuration listening on every address
        // without [server.tls]; its checks are then limited to the store's.
        let directory = tempfile::tempdir().unwrap();
        let mut config = crate::test_support::test_config(directory.path());
        config.server.listen = "0.0.0.0:0".parse().unwrap();
        // WeChat's check then fails at once, without leaving this machine.
        config.wechat.primary_url = "https://127.0.0.1:9".parse().unwrap();
        config.wechat.backup_url = None;
        let store = Arc::new(
            crate::store::SqliteStore::connect(&config.store)
                .await
                .unwrap(),
        );
        let state = AppState::new(Arc::new(config), store.clone()).unwrap();
        let warnings = state.readiness.run().await.warnings;
        let mut state = state;
        state.readiness = Readiness::default()
            .with(Arc::new(StoreReachable::new(store, StoreBackend::Sqlite)))
            .with_warning(warnings[0].clone());

        // Act
        let (status, body) = get(router().with_state(state), "/readyz").await;

        // Assert
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("plain HTTP on 0.0.0.0:0"),
            "{warnings:?}"
        );
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["ready"], true);
        assert_eq!(body["warnings"], serde_json::json!(warnings));
    }
}
