//! `GET /metrics`: Prometheus text exposition.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::error::Result;
use crate::state::AppState;

/// `GET /metrics`.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_show))
}

async fn metrics_show(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let snapshot = state.engine.snapshot().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.engine.metrics().render(&snapshot),
    ))
}
