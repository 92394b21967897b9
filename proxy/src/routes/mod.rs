//! HTTP routes, one module per resource, each exposing `router()`.
//!
//! The JSON API lives under `/api/v1` ([`api_router`]); its routes are registered together
//! with their OpenAPI description (utoipa), so the document served at
//! `/api/v1/openapi.json` ([`openapi_for`]) cannot list a route that does not exist or miss
//! one that does. The limits that come from configuration (`payments.max_amount_fen`) are
//! written into the served document as this server enforces them. Health checks and metrics sit at the root, where load balancers, orchestrators
//! and Prometheus expect them.

pub mod approvals;
pub mod books;
pub mod health;
pub mod metrics;
pub mod pairing;
pub mod payments;
pub mod terminal;

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::Method;
use axum::routing::{any, get};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContactBuilder, InfoBuilder, OpenApi, RefOr, Schema};
use utoipa_axum::router::OpenApiRouter;

use crate::config::PaymentsConfig;
use crate::error::ApiError;
use paycode_api::ErrorCode;

use crate::state::AppState;

// Response descriptions shared by several operations.
/// 401, with `WWW-Authenticate: Bearer`.
pub(crate) const UNAUTHORIZED: &str = "No valid terminal token (UNAUTHORIZED)";
/// 413, for a JSON body.
pub(crate) const BODY_TOO_LARGE: &str = "Body larger than server.body_limit_bytes (BODY_TOO_LARGE)";
/// 415, for a JSON body.
pub(crate) const UNSUPPORTED_MEDIA_TYPE: &str =
    "No JSON Content-Type: application/json or application/*+json (UNSUPPORTED_MEDIA_TYPE)";
/// 500, the cause logged and never shown.
pub(crate) const INTERNAL: &str =
    "A bug or an unexpected failure (INTERNAL); check the payment before charging again";
/// 503, when the database cannot be reached.
pub(crate) const UNAVAILABLE: &str =
    "The database is unreachable for now (UNAVAILABLE); retry shortly";

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
            get(move |State(state): State<AppState>| {
                let mut document = document.as_ref().clone();
                state_limits(&mut document, &state.config.payments);
                async move { Json(document) }
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .route(API_PREFIX, any(api_not_found))
        .route(&format!("{API_PREFIX}/{{*rest}}"), any(api_not_found))
}

/// The OpenAPI document of `/api/v1` as a server with these payment rules serves it.
pub fn openapi_for(payments: &PaymentsConfig) -> OpenApi {
    let mut document = documented_routes().into_openapi();
    state_limits(&mut document, payments);
    document
}

/// The OpenAPI document of `/api/v1` with the default configuration (the reviewed copy in
/// `proxy/openapi.json`).
pub fn openapi() -> OpenApi {
    openapi_for(&PaymentsConfig::default())
}

/// Writes the configured limits into the document: the largest amount a payment may have.
fn state_limits(document: &mut OpenApi, payments: &PaymentsConfig) {
    let amount = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("CreatePayment"))
        .and_then(|schema| match schema {
            RefOr::T(Schema::Object(object)) => object.properties.get_mut("amount_fen"),
            _ => None,
        });
    // The schema is derived from `CreatePayment`, whose `amount_fen` is an inline integer.
    if let Some(RefOr::T(Schema::Object(amount))) = amount {
        let max = usize::try_from(payments.max_amount_fen.get()).unwrap_or(usize::MAX);
        amount.maximum = Some(utoipa::Number::UInt(max));
    }
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
            .merge(terminal::router())
            .merge(pairing::router())
            .merge(approvals::router())
            .merge(books::router()),
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
