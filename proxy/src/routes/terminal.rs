//! `/api/v1/terminal` (who am I) and `/api/v1/demo/pairing` (demo mode's automatic pairing
//! for a browser on the same machine).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::routing::get;
use axum::{Json, Router};
use paycode_api::{DemoPairing, TerminalInfo};

use crate::auth::AuthenticatedTerminal;
use crate::error::{ApiError, Result};
use crate::startup::AppState;

/// The terminal routes, relative to `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/terminal", get(terminal_show))
        .route("/demo/pairing", get(demo_pairing_show))
}

/// `GET /terminal`: the terminal the bearer token belongs to.
async fn terminal_show(terminal: AuthenticatedTerminal) -> Json<TerminalInfo> {
    Json(TerminalInfo {
        id: terminal.id,
        name: terminal.name,
    })
}

/// `GET /demo/pairing`: the demo terminal's token, in demo mode and to loopback clients
/// only. Everywhere else it does not exist (404), so it reveals nothing.
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
            code: "NOT_FOUND",
            message: "there is no API endpoint at /api/v1/demo/pairing".to_owned(),
        }),
    }
}
