//! HTTP routes, one module per resource, each exposing `router() -> Router<AppState>`.
//!
//! The JSON API lives under `/api/v1` ([`api_router`]); health checks sit at the root where
//! load balancers and orchestrators expect them.

pub mod health;

use axum::Router;
use axum::extract::OriginalUri;

use crate::error::ApiError;
use crate::startup::AppState;

/// The `/api/v1` routes. Unknown paths under it answer a JSON 404 rather than the app's
/// `index.html`, so a client calling a wrong URL gets an error it can parse.
pub fn api_router() -> Router<AppState> {
    Router::new().fallback(api_not_found)
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound {
        code: "NOT_FOUND",
        message: format!("there is no API endpoint at {}", uri.path()),
    }
}
