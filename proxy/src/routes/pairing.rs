//! `POST /api/v1/pairing`: a tablet exchanges a one-time pairing code from a QR code for
//! its terminal's token (the `pairing` module has the rules).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::{Extension, Json};
use paycode_api::{ErrorBody, ErrorCode, Paired, PairingRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::terminal::terminal_info;
use super::{BODY_TOO_LARGE, INTERNAL, UNAVAILABLE, UNSUPPORTED_MEDIA_TYPE};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::pairing::ExchangeError;
use crate::state::AppState;

/// The pairing route, relative to `/api/v1`, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pairing_create))
}

/// Exchanges a pairing code for a newly minted terminal token. The code works once and only
/// until it expires; the terminal's previous token stops working. Rate-limited per client
/// address and overall.
#[utoipa::path(
    post,
    path = "/pairing",
    tag = "terminals",
    request_body = PairingRequest,
    responses(
        (status = 200, description = "Paired: the terminal and its new token", body = Paired),
        (status = 400, description = "Malformed body (INVALID_JSON, INVALID_REQUEST), or a code that is malformed, unknown, used or expired (PAIRING_CODE_INVALID)", body = ErrorBody),
        (status = 413, description = BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 429, description = "Too many pairing attempts from this address or overall in the current minute (TOO_MANY_REQUESTS)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the limit resets"))),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    )
)]
async fn pairing_create(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(request): ApiJson<PairingRequest>,
) -> Result<Json<Paired>> {
    // Without connection information (in-process tests) every client shares one address.
    let client = connect_info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.0.ip());
    match state.pairing.exchange(&request.code, client).await {
        Ok((terminal, token)) => Ok(Json(Paired {
            token: token.expose().to_owned(),
            terminal: terminal_info(&state, terminal.into()).await?,
        })),
        Err(error @ ExchangeError::InvalidCode) => Err(ApiError::InvalidRequest {
            code: ErrorCode::PairingCodeInvalid,
            message: error.to_string(),
            field: Some("code".to_owned()),
        }),
        Err(error @ ExchangeError::RateLimited { retry_after_secs }) => {
            Err(ApiError::TooManyRequests {
                message: error.to_string(),
                retry_after_secs,
            })
        }
        Err(ExchangeError::Store(error)) => Err(error.into()),
    }
}
