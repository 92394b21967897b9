//! `/api/v1/terminal` (who am I) and `/api/v1/demo/pairing` (demo mode's automatic pairing
//! for a browser on the same machine).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use paycode_api::{DemoPairing, ErrorBody, ErrorCode, StoreInfo, TerminalInfo};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{INTERNAL, UNAUTHORIZED, UNAVAILABLE};
use crate::auth::AuthenticatedTerminal;
use crate::error::{ApiError, Result};
use crate::state::AppState;

/// The terminal routes, relative to `/api/v1`, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(terminal_show))
        .routes(routes!(demo_pairing_show))
}

/// The terminal the bearer token belongs to, with its store (the app checks a token with it
/// before saving, and shows the store's name next to the terminal's and on receipts).
#[utoipa::path(
    get,
    path = "/terminal",
    tag = "terminals",
    responses(
        (status = 200, description = "The calling terminal", body = TerminalInfo),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn terminal_show(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
) -> Result<Json<TerminalInfo>> {
    Ok(Json(terminal_info(&state, terminal).await?))
}

/// What the app is told about a terminal: its id, name and role, and its store's id and name.
pub(super) async fn terminal_info(
    state: &AppState,
    terminal: AuthenticatedTerminal,
) -> Result<TerminalInfo> {
    let store = state.store.get_store(&terminal.store_id).await?;
    Ok(TerminalInfo {
        id: terminal.id,
        name: terminal.name,
        store: StoreInfo {
            name: store.map_or_else(|| terminal.store_id.clone(), |store| store.name),
            id: terminal.store_id,
        },
        role: terminal.role,
    })
}

/// The demo terminal's token, in demo mode and to loopback clients only. Everywhere else it
/// does not exist (404), so it reveals nothing.
#[utoipa::path(
    get,
    path = "/demo/pairing",
    tag = "terminals",
    responses(
        (status = 200, description = "The demo terminal and its token", body = DemoPairing),
        (status = 404, description = "Not demo mode, or not a loopback client (NOT_FOUND)", body = ErrorBody),
    )
)]
async fn demo_pairing_show(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<DemoPairing>> {
    let from_loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    match (&state.demo_pairing, from_loopback) {
        (Some(pairing), true) => Ok(Json(pairing.as_ref().clone())),
        _ => Err(ApiError::NotFound {
            code: ErrorCode::NotFound,
            message: "there is no API endpoint at /api/v1/demo/pairing".to_owned(),
        }),
    }
}
