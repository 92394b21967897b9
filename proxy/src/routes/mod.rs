//! HTTP routes, one module per resource, each exposing `router() -> Router<AppState>`.
//!
//! The JSON API lives under `/api/v1` ([`api_router`]); health checks and metrics sit at the
//! root where load balancers, orchestrators and Prometheus expect them.

pub mod health;
pub mod metrics;
pub mod payments;
pub mod terminal;

use axum::Router;
use axum::extract::OriginalUri;

use crate::error::ApiError;
use crate::startup::AppState;

/// The `/api/v1` routes. Unknown paths under it answer a JSON 404 rather than the app's
/// `index.html`, so a client calling a wrong URL gets an error it can parse.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .merge(payments::router())
        .merge(terminal::router())
        .fallback(api_not_found)
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound {
        code: "NOT_FOUND",
        message: format!("there is no API endpoint at {}", uri.path()),
    }
}
