//! The JSON control API under `/_sim/`, and the state operations behind it that
//! [`SimHandle`](super::SimHandle) also calls.
//!
//! | method & path | body / query | does |
//! |---|---|---|
//! | `GET /_sim/state` | | everything below in one object |
//! | `GET /_sim/orders` | | every order (settled to now) |
//! | `GET /_sim/orders/{out_trade_no}` | | one order (404 if none) |
//! | `POST /_sim/orders/{out_trade_no}/confirm` | `?mch_id=` optional | customer enters the password |
//! | `POST /_sim/orders/{out_trade_no}/cancel` | `?mch_id=` optional | customer cancels the prompt |
//! | `GET /_sim/pending` | | open password prompts |
//! | `GET /_sim/calls` | | the call log `[{seq, endpoint, out_trade_no, sim_time, host, sandbox}]` |
//! | `GET /_sim/faults` | | queued faults |
//! | `POST /_sim/faults` | `{"endpoint":"micropay","fault":{"kind":"delay","ms":3000},"times":1}` | queue a fault |
//! | `DELETE /_sim/faults` | | clear all faults |
//! | `POST /_sim/outage` | `{"primary":true}` | primary host refuses connections (or not) |
//! | `GET /_sim/time` | | `{now, scale}` |
//! | `POST /_sim/time/advance` | `{"seconds":604800}` | jump simulated time |
//! | `POST /_sim/time/scale` | `{"scale":1000}` | set the time scale |
//! | `POST /_sim/settings` | `{"slow_reply_ms":300,"refund_delay_secs":5,"refund_spacing_secs":60,"bill_ready_at":"10:00"}` | change delays, the refund spacing and when bills are ready (Beijing time) |
//! | `GET /_sim/discrepancies` | | every injected discrepancy ([`Discrepancy`](super::Discrepancy)) |
//! | `POST /_sim/discrepancies` | `{"kind":"unseen_payment","total_fee":100}`, `{"kind":"foreign_trade","trade_type":"JSAPI","total_fee":100}`, `{"kind":"outside_refund","out_trade_no":"P1","refund_fee":50}`, `{"kind":"amount_difference","out_trade_no":"P1","bill_total_fee":90}` (optional `mch_id`, `sub_mch_id`, `out_trade_no`: [`Injection`](super::Injection)) | inject one; answers its record |
//! | `GET /_sim/code` | `?behaviour=password_waits` | a fresh payment code |
//!
//! Errors are `{"error": "...", "message": "..."}` with status 400, 404 or 409.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::behaviour::{Behaviour, auth_code_for};
use super::clock::beijing;
use super::discrepancy::{Discrepancy, Injection};
use super::faults::{Fault, api_by_name};
use super::ledger::{OrderView, PendingPrompt, Resolution};
use super::{SimState, auto_revoke_after};

/// Why a control operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No order has this out_trade_no (HTTP 404).
    #[error("no order {0}")]
    NotFound(String),
    /// Several merchants have a pending order with this number; pass `mch_id` (HTTP 409).
    #[error("several orders are numbered {0}; say which mch_id")]
    Ambiguous(String),
    /// The order has no open password prompt (HTTP 409).
    #[error("order {out_trade_no} has no open password prompt (trade_state {trade_state})")]
    NotPending {
        /// The order.
        out_trade_no: String,
        /// Its current trade_state.
        trade_state: String,
    },
    /// The order is not paid, so it cannot carry this discrepancy (HTTP 409).
    #[error("order {out_trade_no} is not paid (trade_state {trade_state})")]
    NotPaid {
        /// The order.
        out_trade_no: String,
        /// Its current trade_state.
        trade_state: String,
    },
    /// A request to the control API was malformed (HTTP 400).
    #[error("bad control request: {0}")]
    BadRequest(String),
}

impl ControlError {
    fn status(&self) -> StatusCode {
        match self {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Ambiguous(_)
            | ControlError::NotPending { .. }
            | ControlError::NotPaid { .. } => StatusCode::CONFLICT,
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ControlError::NotFound(_) => "not_found",
            ControlError::Ambiguous(_) => "ambiguous",
            ControlError::NotPending { .. } => "not_pending",
            ControlError::NotPaid { .. } => "not_paid",
            ControlError::BadRequest(_) => "bad_request",
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(json!({ "error": self.code(), "message": self.to_string() })),
        )
            .into_response()
    }
}

impl SimState {
    /// Confirms (`confirm = true`) or cancels the open password prompt of `out_trade_no`.
    pub(crate) fn resolve_prompt(
        &self,
        mch_id: Option<&str>,
        out_trade_no: &str,
        confirm: bool,
    ) -> Result<OrderView, ControlError> {
        let now = self.clock.now();
        let mut ledger = self.ledger();
        let mut candidates: Vec<_> = ledger
            .books
            .iter_mut()
            .filter(|(key, _)| mch_id.is_none_or(|mch_id| key.mch_id == mch_id))
            .filter_map(|(_, book)| book.orders.get_mut(out_trade_no))
            .collect();
        for order in candidates.iter_mut() {
            order.settle(now);
        }
        if candidates.is_empty() {
            return Err(ControlError::NotFound(out_trade_no.to_owned()));
        }
        let pending = candidates
            .iter()
            .filter(|order| order.password_prompt_open())
            .count();
        if pending > 1 {
            return Err(ControlError::Ambiguous(out_trade_no.to_owned()));
        }
        let order = match candidates
            .iter_mut()
            .position(|order| order.password_prompt_open())
        {
            Some(index) => &mut candidates[index],
            None => {
                return Err(ControlError::NotPending {
                    out_trade_no: out_trade_no.to_owned(),
                    trade_state: candidates[0].trade_state().to_owned(),
                });
            }
        };
        let resolution = if confirm {
            Resolution::Confirm
        } else {
            Resolution::Cancel
        };
        order.resolve(resolution, now);
        Ok(order.view(now))
    }

    /// Every open password prompt, oldest first.
    pub(crate) fn pending_prompts(&self) -> Vec<PendingPrompt> {
        let now = self.clock.now();
        let mut ledger = self.ledger();
        ledger.settle_all(now);
        let mut prompts: Vec<PendingPrompt> = ledger
            .books
            .values()
            .flat_map(|book| book.orders.values())
            .filter(|order| order.password_prompt_open())
            .map(|order| PendingPrompt {
                mch_id: order.mch_id.clone(),
                sandbox: order.sandbox,
                out_trade_no: order.out_trade_no.clone(),
                total_fee: order.total_fee,
                body: order.body.clone(),
                created_at: order.created_at,
                revokes_at: order.created_at + auto_revoke_after(),
            })
            .collect();
        prompts.sort_by_key(|prompt| prompt.created_at);
        prompts
    }

    /// Every order, settled to now: production books before sandbox ones, by creation.
    pub(crate) fn orders(&self) -> Vec<OrderView> {
        let now = self.clock.now();
        let mut ledger = self.ledger();
        ledger.settle_all(now);
        let mut orders: Vec<OrderView> = ledger
            .books
            .values()
            .flat_map(|book| book.orders.values())
            .map(|order| order.view(now))
            .collect();
        orders.sort_by_key(|order| (order.sandbox, order.created_at));
        orders
    }

    fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in &self.ledger().calls {
            *counts.entry(call.endpoint.clone()).or_insert(0) += 1;
        }
        counts
    }

    fn time_json(&self) -> serde_json::Value {
        json!({
            "now": self.clock.now().with_timezone(&beijing()).to_rfc3339(),
            "scale": self.clock.scale(),
        })
    }
}

type SimRef = State<Arc<SimState>>;

/// The control routes (merged into the main router by `handlers::router`).
pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/state", get(state_show))
        .route("/_sim/orders", get(orders_list))
        .route("/_sim/orders/{out_trade_no}", get(orders_show))
        .route("/_sim/orders/{out_trade_no}/confirm", post(orders_confirm))
        .route("/_sim/orders/{out_trade_no}/cancel", post(orders_cancel))
        .route("/_sim/pending", get(pending_list))
        .route("/_sim/calls", get(calls_list))
        .route(
            "/_sim/faults",
            get(faults_list).post(faults_create).delete(faults_clear),
        )
        .route("/_sim/outage", post(outage_set))
        .route("/_sim/time", get(time_show))
        .route("/_sim/time/advance", post(time_advance))
        .route("/_sim/time/scale", post(time_scale))
        .route("/_sim/settings", post(settings_update))
        .route("/_sim/code", get(code_create))
        .route(
            "/_sim/discrepancies",
            get(discrepancies_list).post(discrepancies_create),
        )
}

async fn discrepancies_list(State(sim): SimRef) -> Json<Vec<Discrepancy>> {
    Json(sim.ledger().discrepancies.clone())
}

async fn discrepancies_create(
    State(sim): SimRef,
    Json(injection): Json<Injection>,
) -> Result<Json<Discrepancy>, ControlError> {
    sim.inject_discrepancy(injection).map(Json)
}

async fn state_show(State(sim): SimRef) -> Json<serde_json::Value> {
    Json(json!({
        "time": sim.time_json(),
        "primary_outage": sim.primary_outage(),
        "orders": sim.orders(),
        "pending": sim.pending_prompts(),
        "call_counts": sim.call_counts(),
        "calls": sim.ledger().calls.clone(),
        "faults": sim.faults().pending(),
        "discrepancies": sim.ledger().discrepancies.clone(),
    }))
}

async fn orders_list(State(sim): SimRef) -> Json<Vec<OrderView>> {
    Json(sim.orders())
}

async fn orders_show(
    State(sim): SimRef,
    Path(out_trade_no): Path<String>,
) -> Result<Json<OrderView>, ControlError> {
    sim.orders()
        .into_iter()
        .find(|order| order.out_trade_no == out_trade_no)
        .map(Json)
        .ok_or(ControlError::NotFound(out_trade_no))
}

/// `?mch_id=` on confirm and cancel.
#[derive(Debug, Deserialize)]
struct MerchantQuery {
    mch_id: Option<String>,
}

async fn orders_confirm(
    State(sim): SimRef,
    Path(out_trade_no): Path<String>,
    Query(query): Query<MerchantQuery>,
) -> Result<Json<OrderView>, ControlError> {
    sim.resolve_prompt(query.mch_id.as_deref(), &out_trade_no, true)
        .map(Json)
}

async fn orders_cancel(
    State(sim): SimRef,
    Path(out_trade_no): Path<String>,
    Query(query): Query<MerchantQuery>,
) -> Result<Json<OrderView>, ControlError> {
    sim.resolve_prompt(query.mch_id.as_deref(), &out_trade_no, false)
        .map(Json)
}

async fn pending_list(State(sim): SimRef) -> Json<Vec<PendingPrompt>> {
    Json(sim.pending_prompts())
}

async fn calls_list(State(sim): SimRef) -> Json<serde_json::Value> {
    Json(json!({
        "counts": sim.call_counts(),
        "calls": sim.ledger().calls.clone(),
    }))
}

async fn faults_list(State(sim): SimRef) -> Json<serde_json::Value> {
    Json(json!(sim.faults().pending()))
}

/// `POST /_sim/faults` body.
#[derive(Debug, Deserialize)]
struct FaultRequest {
    endpoint: String,
    fault: Fault,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

async fn faults_create(
    State(sim): SimRef,
    Json(request): Json<FaultRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let api = api_by_name(&request.endpoint).ok_or_else(|| {
        ControlError::BadRequest(format!("unknown endpoint {:?}", request.endpoint))
    })?;
    sim.faults().inject(api, request.fault, request.times);
    Ok(Json(json!(sim.faults().pending())))
}

async fn faults_clear(State(sim): SimRef) -> StatusCode {
    sim.faults().clear();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/outage` body.
#[derive(Debug, Deserialize)]
struct OutageRequest {
    primary: bool,
}

async fn outage_set(
    State(sim): SimRef,
    Json(request): Json<OutageRequest>,
) -> Json<serde_json::Value> {
    sim.primary_outage
        .store(request.primary, std::sync::atomic::Ordering::Relaxed);
    Json(json!({ "primary_outage": request.primary }))
}

async fn time_show(State(sim): SimRef) -> Json<serde_json::Value> {
    Json(sim.time_json())
}

/// `POST /_sim/time/advance` body.
#[derive(Debug, Deserialize)]
struct AdvanceRequest {
    seconds: f64,
}

async fn time_advance(
    State(sim): SimRef,
    Json(request): Json<AdvanceRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let by = Duration::try_from_secs_f64(request.seconds)
        .map_err(|error| ControlError::BadRequest(format!("seconds: {error}")))?;
    sim.clock.advance(by);
    Ok(Json(sim.time_json()))
}

/// `POST /_sim/time/scale` body.
#[derive(Debug, Deserialize)]
struct ScaleRequest {
    scale: f64,
}

async fn time_scale(
    State(sim): SimRef,
    Json(request): Json<ScaleRequest>,
) -> Result<Json<serde_json::Value>, ControlError> {
    if !(request.scale.is_finite() && request.scale > 0.0) {
        return Err(ControlError::BadRequest(
            "scale must be a positive number".into(),
        ));
    }
    sim.clock.set_scale(request.scale);
    Ok(Json(sim.time_json()))
}

/// `POST /_sim/settings` body; absent fields are left unchanged.
#[derive(Debug, Deserialize)]
struct SettingsRequest {
    slow_reply_ms: Option<u64>,
    refund_delay_secs: Option<u64>,
    refund_spacing_secs: Option<u64>,
    /// `HH:MM`, Beijing time.
    bill_ready_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct SettingsView {
    slow_reply_ms: u128,
    refund_delay_secs: u64,
    refund_spacing_secs: u64,
    bill_ready_at: String,
}

async fn settings_update(
    State(sim): SimRef,
    Json(request): Json<SettingsRequest>,
) -> Result<Json<SettingsView>, ControlError> {
    let bill_ready_at = match request.bill_ready_at.as_deref() {
        Some(text) => Some(
            chrono::NaiveTime::parse_from_str(text, "%H:%M").map_err(|error| {
                ControlError::BadRequest(format!("bill_ready_at {text:?} (HH:MM): {error}"))
            })?,
        ),
        None => None,
    };
    // Caps keep later arithmetic on these delays far from any overflow.
    sim.update_settings(|settings| {
        if let Some(ms) = request.slow_reply_ms {
            settings.slow_reply_delay = Duration::from_millis(ms.min(3_600_000));
        }
        if let Some(secs) = request.refund_delay_secs {
            settings.refund_delay = Duration::from_secs(secs.min(365 * 24 * 3600));
        }
        if let Some(secs) = request.refund_spacing_secs {
            settings.refund_spacing = Duration::from_secs(secs.min(365 * 24 * 3600));
        }
        if let Some(time) = bill_ready_at {
            settings.bill_ready_at = time;
        }
    });
    let settings = sim.settings();
    Ok(Json(SettingsView {
        slow_reply_ms: settings.slow_reply_delay.as_millis(),
        refund_delay_secs: settings.refund_delay.as_secs(),
        refund_spacing_secs: settings.refund_spacing.as_secs(),
        bill_ready_at: settings.bill_ready_at.format("%H:%M").to_string(),
    }))
}

/// `GET /_sim/code` query.
#[derive(Debug, Deserialize)]
struct CodeQuery {
    behaviour: Option<String>,
}

async fn code_create(
    Query(query): Query<CodeQuery>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let behaviour = match query.behaviour.as_deref() {
        None => Behaviour::PasswordFree,
        Some(key) => Behaviour::from_key(key)
            .ok_or_else(|| ControlError::BadRequest(format!("unknown behaviour {key:?}")))?,
    };
    Ok(Json(json!({
        "auth_code": auth_code_for(behaviour),
        "behaviour": behaviour.key(),
    })))
}
