//! Hostile input at every boundary of the proxy, beyond the cases in
//! `scenarios/bad_input.rs` and wxpay's own tests:
//!
//! - `api_fuzz`: the HTTP API under property-based fuzzing, driven by the served
//!   `/api/v1/openapi.json` (every documented operation, plus unknown ones): no 5xx, no
//!   panic, every 4xx an `ErrorBody` with a stable code, and no state change (store and
//!   WeChat calls) from a rejected request. `PAYCODE_HOSTILE_CASES` sets the number of cases.
//! - `explicit`: amounts (`0.1`, `1e3`, `-0`, `00012.30`, `12.345`, `NaN`, 20 digits, as JSON
//!   numbers and strings), payment codes (letters, full-width digits, 17/19 digits, Alipay
//!   and other wallets' prefixes), headers and bodies over the limits, and missing, wrong,
//!   malformed or revoked terminal tokens on every route.
//! - `wechat_replies`: hostile WeChat replies from a fake server: DOCTYPE, external
//!   entities, billion laughs, 10 MB bodies (sized and unsized), replies forged with the wrong
//!   key, fed to the wxpay client, the XML decoder, and to the proxy, which must never show
//!   such a payment as paid.

mod api_fuzz;
mod explicit;
mod wechat_replies;

use paycode_api::ErrorCode;
use paycode_tests::World;
use reqwest::StatusCode;
use serde_json::Value;

/// What the proxy and WeChat hold: (payments, refunds, WeChat calls). A rejected request
/// must leave it unchanged.
pub async fn footprint(world: &World) -> (usize, usize, usize) {
    let list = world.cashier.today().await;
    let refunds = list.payments.iter().map(|p| p.refunds.len()).sum();
    (list.payments.len(), refunds, world.sim.calls().len())
}

/// Checks a 4xx answer: a JSON `ErrorBody` with a known code and a message. Returns the
/// problem, if any.
pub fn error_body_problem(status: StatusCode, text: &str) -> Option<String> {
    let body: Value = match serde_json::from_str(text) {
        Ok(body) => body,
        Err(_) => return Some(format!("{status} without a JSON error body: {text:.200}")),
    };
    // Every code the API documents is an `ErrorCode` with the status it answers with, so a
    // new or misspelt code, a server error's code, or one answered with another status is
    // caught.
    let code = ErrorCode::parse(body["code"].as_str().unwrap_or_default());
    if !status.is_client_error() || code.status() != Some(status.as_u16()) {
        return Some(format!("{status} with an unknown error code: {body}"));
    }
    if body["message"].as_str().is_none_or(str::is_empty) {
        return Some(format!("{status} without a message: {body}"));
    }
    None
}
