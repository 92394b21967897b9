//! `/healthz` (the process is up) and `/readyz` (it can do its job), plus [`Readiness`],
//! the list of checks behind `/readyz`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::startup::AppState;
use crate::store::Store;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` and `GET /readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health_show))
        .route("/readyz", get(readiness_show))
}

/// One thing `/readyz` checks. Checks run on every probe, so they must be cheap: a check
/// of a remote service should report a status observed in the background rather than call
/// the service itself.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short, stable name shown in the `/readyz` body (`store`, `wechat`).
    fn name(&self) -> &'static str;

    /// `Ok` when ready; otherwise why not. The reason is logged, never sent to the client.
    async fn check(&self) -> Result<(), String>;
}

/// The checks behind `/readyz`. The store's check is always present; the payments engine
/// adds its WeChat reachability check with [`Readiness::with`].
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
}

impl Readiness {
    /// These checks plus `check`.
    pub fn with(&self, check: Arc<dyn ReadinessCheck>) -> Readiness {
        let mut checks = self.checks.as_ref().clone();
        checks.push(check);
        Readiness {
            checks: Arc::new(checks),
        }
    }

    /// Runs every check (each bounded by a timeout) and reports each by name.
    pub async fn run(&self) -> ReadinessReport {
        let mut checks = Vec::with_capacity(self.checks.len());
        for check in self.checks.iter() {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            if let Err(reason) = &outcome {
                tracing::warn!(check = check.name(), %reason, "not ready");
            }
            checks.push(CheckReport {
                name: check.name(),
                ok: outcome.is_ok(),
            });
        }
        ReadinessReport {
            ready: checks.iter().all(|check| check.ok),
            checks,
        }
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|check| check.name()))
            .finish()
    }
}

/// The body of `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// Each check's result, in the order they were added.
    pub checks: Vec<CheckReport>,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
}

/// The store answers a trivial query.
pub struct StoreReachable(pub Arc<dyn Store>);

#[async_trait]
impl ReadinessCheck for StoreReachable {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| {
            let mut report = String::new();
            // Writing into a String cannot fail.
            let _ = crate::error::error_chain_fmt(&error, &mut report);
            report
        })
    }
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

    use super::*;
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
        state.readiness =
            Readiness::default().with(Arc::new(StoreReachable(Arc::clone(&state.store))));
        let (status, body) = get(router().with_state(state), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::json!({"ready": true, "checks": [{"name": "store", "ok": true}]})
        );
    }

    #[tokio::test]
    async fn an_added_check_that_fails_makes_it_unready_without_saying_why() {
        // Arrange
        let (mut state, _directory) = test_state().await;
        state.readiness = Readiness::default()
            .with(Arc::new(StoreReachable(Arc::clone(&state.store))))
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
}
