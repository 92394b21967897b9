//! HTTP routes, one module per resource, each exposing `router()`.
//!
//! The JSON API lives under `/api/v1` ([`api_router`]); its routes are registered together
//! with their OpenAPI description (utoipa), so the document served at
//! `/api/v1/openapi.json` ([`openapi`]) cannot list a route that does not exist or miss one
//! that does. Health checks and metrics sit at the root, where load balancers, orchestrators
//! and Prometheus expect them.

pub mod health;
pub mod metrics;
pub mod payments;
pub mod terminal;

use std::sync::Arc;

use axum::extract::OriginalUri;
use axum::http::Method;
use axum::routing::{any, get};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContactBuilder, InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::startup::AppState;
use paycode_api::ErrorCode;

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1";

/// The `/api/v1` routes and their OpenAPI document (served at `/api/v1/openapi.json`).
/// Unknown paths under the prefix answer a JSON 404 rather than the app's `index.html`, and
/// a known path called with the wrong method a JSON 405, so a client calling a wrong URL
/// gets an error it can parse.
pub fn api_router() -> Router<AppState> {
    let (routes, document) = documented_routes().split_for_parts();
    let document = Arc::new(document);
    routes
        .route(
            &format!("{API_PREFIX}/openapi.json"),
            get(move || {
                let document = Arc::clone(&document);
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .route(API_PREFIX, any(api_not_found))
        .route(&format!("{API_PREFIX}/{{*rest}}"), any(api_not_found))
}

/// The OpenAPI document of `/api/v1`.
pub fn openapi() -> OpenApi {
    documented_routes().into_openapi()
}

fn documented_routes() -> OpenApiRouter<AppState> {
    let mut document = OpenApi::new(
        InfoBuilder::new()
            .title("Paycode API")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "The cashier app's API: take WeChat Pay payment-code payments, follow them \
                 (long-poll), cancel and refund them. Amounts are integer fen. Every error is an \
                 ErrorBody with a stable code.",
            ))
            .contact(Some(ContactBuilder::new().name(Some("Paycode")).build()))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "terminal_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A terminal token (pct_…) from `paycode-proxy terminal add NAME`",
                ))
                .build(),
        ),
    );
    OpenApiRouter::with_openapi(document).nest(
        API_PREFIX,
        OpenApiRouter::new()
            .merge(payments::router())
            .merge(terminal::router()),
    )
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::MethodNotAllowed {
        message: format!("{} does not accept {method}", uri.path()),
    }
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound {
        code: ErrorCode::NotFound,
        message: format!("there is no API endpoint at {}", uri.path()),
    }
}
