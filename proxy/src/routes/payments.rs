//! `/api/v1/payments`: take a payment, follow it (long-poll), cancel it, refund it, and list
//! a day's payments with totals.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{Datelike, NaiveDate};
use paycode_api::money::MAX_PARSED;
use paycode_api::{
    ApprovalAction, CreatePayment, CreateRefund, DailyTotals, ErrorBody, ErrorCode, Failure,
    FailureCode, Fen, Payment, PaymentList, PaymentState, Refund, RefundState, Role,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::approvals::EVERY_STORE;
use super::{BODY_TOO_LARGE, INTERNAL, UNAUTHORIZED, UNAVAILABLE, UNSUPPORTED_MEDIA_TYPE};
use crate::auth::AuthenticatedTerminal;
use crate::config::MAX_DESCRIPTION_BYTES;
use crate::error::{ApiError, Result};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::store::{Millis, PaymentRecord, RefundRecord, StoreError, StoreRecord};

/// WeChat's limit on `refund_desc`.
const MAX_REFUND_REASON_CHARS: usize = 80;

/// The longest `wait` a client may ask for, in seconds. The proxy waits at most
/// `payments.long_poll_max_wait` whatever is asked; a `wait` above this is refused (400) as
/// a client bug rather than clamped silently.
const MAX_WAIT_SECONDS: u64 = 3600;

/// The largest payment version a client can hold: versions are stored as SQLite integers.
const MAX_VERSION: u64 = i64::MAX as u64;

/// The payment routes, relative to `/api/v1`, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(payment_create, payment_list))
        .routes(routes!(payment_show))
        .routes(routes!(payment_cancel))
        .routes(routes!(refund_create))
}

/// Take a payment: 201 with the new payment, or 200 with the one already taken under the
/// same `attempt_id` (the idempotency key). Nothing is stored or sent for a rejected request.
#[utoipa::path(
    post,
    path = "/payments",
    tag = "payments",
    request_body = CreatePayment,
    responses(
        (status = 201, description = "A new payment; micropay is on its way", body = Payment),
        (status = 200, description = "The payment already taken under this attempt_id", body = Payment),
        (status = 400, description = "Bad input, naming the field: INVALID_AMOUNT (zero, or above this server's payments.max_amount_fen), INVALID_REQUEST (a missing, unknown or malformed field, a description over 127 bytes), INVALID_JSON", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 409, description = "Depends on what is stored, not on the request alone: attempt_id reused with other contents (IDEMPOTENCY_CONFLICT), or the terminal's store is disabled (STORE_DISABLED, naming the store)", body = ErrorBody),
        (status = 413, description = BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn payment_create(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    ApiJson(request): ApiJson<CreatePayment>,
) -> Result<(StatusCode, Json<Payment>)> {
    request
        .amount_fen
        .check_charge(state.config.payments.max_amount_fen)
        .map_err(|error| ApiError::InvalidRequest {
            code: ErrorCode::InvalidAmount,
            message: error.to_string(),
            field: Some("amount_fen".to_owned()),
        })?;
    if let Some(description) = &request.description {
        if description.len() > MAX_DESCRIPTION_BYTES || description.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "description",
                format!(
                    "must be at most {MAX_DESCRIPTION_BYTES} bytes of UTF-8 without control characters"
                ),
            ));
        }
    }
    let store = terminal_store(&state, &terminal).await?;
    let outcome = state
        .engine
        .create_payment(&terminal.id, &store, request)
        .await?;
    let status = if outcome.was_inserted() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let record = outcome.into_record();
    Ok((status, Json(payment_body(&state, &record, Vec::new()))))
}

/// The query of `GET /payments/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ShowQuery {
    /// Seconds to wait for a version newer than `after_version` (only with `after_version`).
    /// The proxy waits at most its `payments.long_poll_max_wait` (25 s by default): a longer
    /// `wait` is shortened to that, and the answer is then the current payment. Above 3600,
    /// 400 `INVALID_REQUEST` naming `wait`.
    #[serde(default)]
    #[param(minimum = 0, maximum = 3600)]
    wait: Option<u64>,
    /// The version the client already has (a payment's `version`).
    #[serde(default)]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    after_version: Option<u64>,
}

impl ShowQuery {
    /// Refuses what the document does not allow, naming the parameter.
    fn check(&self) -> Result<()> {
        if self.wait.is_some_and(|wait| wait > MAX_WAIT_SECONDS) {
            return Err(ApiError::invalid_field(
                "wait",
                format!("must be at most {MAX_WAIT_SECONDS} seconds"),
            ));
        }
        if self
            .after_version
            .is_some_and(|version| version > MAX_VERSION)
        {
            return Err(ApiError::invalid_field(
                "after_version",
                format!("must be at most {MAX_VERSION}"),
            ));
        }
        Ok(())
    }
}

/// Follow a payment (long-poll): answers as soon as the payment's version moves past
/// `after_version`, or with the current payment after `wait` seconds (at most the configured
/// `payments.long_poll_max_wait`). Without both parameters it answers at once.
#[utoipa::path(
    get,
    path = "/payments/{id}",
    tag = "payments",
    params(("id" = String, Path, description = "The payment's id"), ShowQuery),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 400, description = "Bad query string (INVALID_REQUEST): an unknown parameter, a value that is not a number, or one above its maximum (naming it)", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such payment in the terminal's store (PAYMENT_NOT_FOUND)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn payment_show(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ShowQuery>,
) -> Result<Json<Payment>> {
    query.check()?;
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut watch = state.engine.watch(&id);
    let mut record = store_payment(&state, &terminal, &id).await?;
    if let (Some(after), Some(wait)) = (query.after_version, query.wait) {
        let wait = Duration::from_secs(wait).min(state.config.payments.long_poll_max_wait);
        let deadline = tokio::time::Instant::now() + wait;
        while record.version <= after {
            match tokio::time::timeout_at(deadline, watch.changed()).await {
                Ok(changed) if changed.version > record.version => record = (*changed).clone(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    drop(watch);
    let refunds = refunds_of(&state, &record).await?;
    Ok(Json(payment_body(&state, &record, refunds)))
}

/// The cashier cancels: the order is reversed (never earlier than 15 s after submission).
/// A cancel can lose the race to the customer's payment; the payment then ends `cancelled`
/// with `money_returned: true`. Settled payments are returned unchanged.
#[utoipa::path(
    post,
    path = "/payments/{id}/cancel",
    tag = "payments",
    params(("id" = String, Path, description = "The payment's id")),
    responses(
        (status = 200, description = "The payment, now cancelling (or unchanged if settled)", body = Payment),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such payment in the terminal's store (PAYMENT_NOT_FOUND)", body = ErrorBody),
        (status = 409, description = "Depends on the payment's state, not on the request: already paid, refund it instead (PAYMENT_ALREADY_PAID), or changed at the same moment, try again (CONCURRENT_CHANGE)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn payment_cancel(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    Path(id): Path<String>,
) -> Result<Json<Payment>> {
    store_payment(&state, &terminal, &id).await?;
    let record = state.engine.cancel(&id).await?;
    let refunds = refunds_of(&state, &record).await?;
    Ok(Json(payment_body(&state, &record, refunds)))
}

/// Refund a paid payment, fully or partly: 201 with the new refund, or 200 with the one
/// already requested under the same `refund_attempt_id`. A refund asked for within a minute
/// of the payment's previous one is answered `queued` (with `not_before`): WeChat wants
/// refunds of one order at least a minute apart, so the proxy holds it and sends it then.
/// Refunds in progress (every one not `failed`) count against what is left to refund.
/// A refund above `approvals.refund_above_fen` (by default every refund) needs a manager's
/// `refund` approval in the `Paycode-Approval` header, from any terminal; a replay of a
/// `refund_attempt_id` already used needs none.
#[utoipa::path(
    post,
    path = "/payments/{id}/refunds",
    tag = "payments",
    params(
        ("id" = String, Path, description = "The payment's id"),
        ("Paycode-Approval" = Option<String>, Header, description = "A refund approval (pca_…), for a refund above approvals.refund_above_fen"),
    ),
    request_body = CreateRefund,
    responses(
        (status = 201, description = "A new refund, on its way to WeChat, or queued until a minute after the payment's previous refund (state queued, not_before)", body = Refund),
        (status = 200, description = "The refund already requested under this refund_attempt_id", body = Refund),
        (status = 400, description = "Bad input, naming the field: INVALID_AMOUNT (zero or above 1000000000000), INVALID_REQUEST (a missing, unknown or malformed field, a reason over 80 characters), INVALID_JSON", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The refund needs a manager's approval and none usable was sent (APPROVAL_REQUIRED: none, malformed, unknown, used, expired, for another action, terminal or store; the message names the rule); nothing was sent to WeChat", body = ErrorBody),
        (status = 404, description = "No such payment in the terminal's store (PAYMENT_NOT_FOUND)", body = ErrorBody),
        (status = 409, description = "Depends on the payment and its refunds, not on the request alone: not paid (PAYMENT_NOT_PAID), more than is left after the refunds not failed (REFUND_EXCEEDS_PAYMENT), a reused refund_attempt_id (IDEMPOTENCY_CONFLICT) or a change at the same moment (CONCURRENT_CHANGE)", body = ErrorBody),
        (status = 413, description = BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn refund_create(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateRefund>,
) -> Result<(StatusCode, Json<Refund>)> {
    if request.amount_fen == Fen::ZERO {
        return Err(ApiError::InvalidRequest {
            code: ErrorCode::InvalidAmount,
            message: "the refund amount must be more than zero".to_owned(),
            field: Some("amount_fen".to_owned()),
        });
    }
    // No payment can be larger (see `payments.max_amount_fen`), so no refund can either.
    if request.amount_fen > MAX_PARSED {
        return Err(ApiError::InvalidRequest {
            code: ErrorCode::InvalidAmount,
            message: format!("the refund amount must be at most {MAX_PARSED}"),
            field: Some("amount_fen".to_owned()),
        });
    }
    if let Some(reason) = &request.reason {
        if reason.chars().count() > MAX_REFUND_REASON_CHARS || reason.chars().any(char::is_control)
        {
            return Err(ApiError::invalid_field(
                "reason",
                format!(
                    "must be at most {MAX_REFUND_REASON_CHARS} characters without control characters"
                ),
            ));
        }
    }
    let payment = store_payment(&state, &terminal, &id).await?;
    // A replay of a refund already asked for needs no new approval: it changes nothing.
    if state.approvals.refund_needs_approval(request.amount_fen)
        && !state
            .store
            .refunds_for_payment(&id)
            .await?
            .iter()
            .any(|refund| refund.refund_attempt_id == request.refund_attempt_id)
    {
        state
            .approvals
            .require(
                &terminal,
                &headers,
                ApprovalAction::Refund,
                (&id, &payment.store_id),
                None,
            )
            .await?;
    }
    let outcome = state.engine.create_refund(&id, request).await?;
    let status = if outcome.was_inserted() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(refund_body(&outcome.into_record()))))
}

/// The query of `GET /payments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The business day, `YYYY-MM-DD` (an RFC 3339 full-date, year 0001 to 9999); today in
    /// the shop's time zone when absent. Anything else, even empty, is 400
    /// `INVALID_REQUEST` naming `date`.
    #[serde(default)]
    #[param(format = Date, example = "2026-11-30")]
    date: Option<String>,
    /// Only this terminal's payments (a terminal's id); every terminal's of the caller's
    /// store when absent (of every store for an owner terminal). Any terminal but the
    /// caller is a manager action: a manager or owner terminal with a `view_all_payments`
    /// approval.
    #[serde(default)]
    terminal: Option<String>,
}

/// A business day's payments of the calling terminal's store, newest first, with the day's
/// totals. A terminal lists its own payments with `terminal=<its id>`; every terminal's
/// (or another's) needs a manager or owner terminal and a `view_all_payments` approval.
#[utoipa::path(
    get,
    path = "/payments",
    tag = "payments",
    params(
        ListQuery,
        ("Paycode-Approval" = Option<String>, Header, description = "A view_all_payments approval (pca_…), unless terminal is the caller"),
    ),
    responses(
        (status = 200, description = "The day's payments and totals", body = PaymentList),
        (status = 400, description = "Bad query string (INVALID_REQUEST): a date that is not YYYY-MM-DD (naming date) or an unknown parameter", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Other terminals' payments are a manager action: ROLE_REQUIRED (a cashier terminal; the message names the rule) or APPROVAL_REQUIRED (no usable view_all_payments approval)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn payment_list(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PaymentList>> {
    let day = match &query.date {
        Some(text) => parse_day(text)
            .ok_or_else(|| ApiError::invalid_field("date", "must be a date written YYYY-MM-DD"))?,
        None => state.config.shop.business_day(Millis::now()),
    };
    let caller = terminal;
    let terminal = query.terminal.as_deref();
    // Its own payments a terminal always sees; anyone else's is a manager action.
    let own = terminal == Some(caller.id.as_str());
    let every_store = !own && caller.role == Role::Owner;
    if !own {
        let scope = if every_store {
            EVERY_STORE
        } else {
            caller.store_id.as_str()
        };
        state
            .approvals
            .require(
                &caller,
                &headers,
                ApprovalAction::ViewAllPayments,
                (&format!("payments of {day}"), scope),
                None,
            )
            .await?;
    }
    let stores = if every_store {
        state
            .store
            .list_stores()
            .await?
            .into_iter()
            .map(|store| store.id)
            .collect()
    } else {
        vec![caller.store_id.clone()]
    };
    let mut records = Vec::new();
    let mut refunds: HashMap<String, Vec<RefundRecord>> = HashMap::new();
    for store in &stores {
        records.extend(state.store.list_payments(day, store, terminal).await?);
        for refund in state.store.refunds_for_day(day, store, terminal).await? {
            refunds
                .entry(refund.payment_id.clone())
                .or_default()
                .push(refund);
        }
    }
    if stores.len() > 1 {
        records.sort_by_key(|record| std::cmp::Reverse(record.created_at));
    }
    let payments: Vec<Payment> = records
        .iter()
        .map(|record| {
            let refunds = refunds.remove(&record.id).unwrap_or_default();
            payment_body(&state, record, refunds)
        })
        .collect();
    let totals = totals_of(&payments);
    Ok(Json(PaymentList {
        date: day.format("%Y-%m-%d").to_string(),
        payments,
        totals,
    }))
}

/// Reads an RFC 3339 full-date (`2026-11-30`): exactly four, two and two digits, year 1 or
/// later, a day that exists. chrono alone would also take `2026-1-5` or `+2026-01-05`.
fn parse_day(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    (shaped && day.year() >= 1).then_some(day)
}

/// The payment `id` if it belongs to `terminal`'s store. Another store's payment is
/// `PAYMENT_NOT_FOUND`, exactly like a missing one, so a terminal learns nothing about other
/// stores.
async fn store_payment(
    state: &AppState,
    terminal: &AuthenticatedTerminal,
    id: &str,
) -> Result<PaymentRecord> {
    match state.store.get_payment(id).await? {
        Some(record) if record.store_id == terminal.store_id => Ok(record),
        _ => Err(StoreError::NotFound {
            entity: "payment",
            key: id.to_owned(),
        }
        .into()),
    }
}

/// The terminal's store, as stored now (it may have been disabled since the terminal
/// authenticated).
async fn terminal_store(state: &AppState, terminal: &AuthenticatedTerminal) -> Result<StoreRecord> {
    state
        .store
        .get_store(&terminal.store_id)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound {
                entity: "store",
                key: terminal.store_id.clone(),
            }
            .into()
        })
}

/// A payment's refunds; only a paid payment can have any, so others skip the query.
pub(super) async fn refunds_of(
    state: &AppState,
    record: &PaymentRecord,
) -> Result<Vec<RefundRecord>> {
    if record.state == PaymentState::Paid {
        Ok(state.store.refunds_for_payment(&record.id).await?)
    } else {
        Ok(Vec::new())
    }
}

/// The API's view of a stored payment: never the payment code, only its last four digits.
pub(super) fn payment_body(
    state: &AppState,
    record: &PaymentRecord,
    refunds: Vec<RefundRecord>,
) -> Payment {
    let refunded_fen = refunds
        .iter()
        .filter(|refund| refund.state == RefundState::Succeeded)
        .fold(Fen::ZERO, |sum, refund| {
            sum.checked_add(refund.amount_fen).unwrap_or(sum)
        });
    let failure = match (&record.failure_code, &record.failure_message) {
        (Some(code), message) if record.state != PaymentState::Paid => Some(Failure {
            code: FailureCode::parse(code),
            message: message.clone().unwrap_or_default(),
        }),
        _ => None,
    };
    Payment {
        id: record.id.clone(),
        attempt_id: record.attempt_id.clone(),
        terminal_id: record.terminal_id.clone(),
        out_trade_no: record.out_trade_no.to_string(),
        amount_fen: record.amount_fen,
        auth_code_last4: record.auth_code_last4.clone(),
        description: record.description.clone(),
        state: record.state,
        version: record.version,
        failure,
        transaction_id: record.transaction_id.clone(),
        cancel_requested: record.cancel_requested,
        money_returned: record.money_returned,
        deadline_in_ms: state
            .engine
            .deadline_in(record)
            .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
        refunded_fen,
        refunds: refunds.iter().map(refund_body).collect(),
        created_at: record.created_at.to_rfc3339(),
        updated_at: record.updated_at.to_rfc3339(),
    }
}

fn refund_body(record: &RefundRecord) -> Refund {
    Refund {
        id: record.id.clone(),
        refund_attempt_id: record.refund_attempt_id.clone(),
        out_refund_no: record.out_refund_no.to_string(),
        amount_fen: record.amount_fen,
        reason: record.reason.clone(),
        state: record.state,
        not_before: record
            .next_action_at
            .filter(|_| record.state == RefundState::Queued)
            .map(Millis::to_rfc3339),
        failure: record.failure_code.as_ref().map(|code| Failure {
            code: FailureCode::parse(code),
            message: record.failure_message.clone().unwrap_or_default(),
        }),
        created_at: record.created_at.to_rfc3339(),
    }
}

/// The day's totals: paid payments, their successful refunds, and what is still open.
fn totals_of(payments: &[Payment]) -> DailyTotals {
    let mut totals = DailyTotals::default();
    for payment in payments {
        match payment.state {
            PaymentState::Paid => {
                totals.paid_count += 1;
                totals.paid_fen = totals
                    .paid_fen
                    .checked_add(payment.amount_fen)
                    .unwrap_or(totals.paid_fen);
                totals.refunded_fen = totals
                    .refunded_fen
                    .checked_add(payment.refunded_fen)
                    .unwrap_or(totals.refunded_fen);
            }
            state if !state.is_settled() => totals.open_count += 1,
            _ => {}
        }
    }
    totals.net_fen = totals
        .paid_fen
        .checked_sub(totals.refunded_fen)
        .unwrap_or_default();
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(state: PaymentState, amount: u64, refunded: u64) -> Payment {
        Payment {
            id: "p".into(),
            attempt_id: paycode_api::AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a")
                .unwrap(),
            terminal_id: "t".into(),
            out_trade_no: "o".into(),
            amount_fen: Fen(amount),
            auth_code_last4: "5678".into(),
            description: "d".into(),
            state,
            version: 1,
            failure: None,
            transaction_id: None,
            cancel_requested: false,
            money_returned: false,
            deadline_in_ms: None,
            refunded_fen: Fen(refunded),
            refunds: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn totals_count_paid_money_net_of_refunds_and_open_payments() {
        let totals = totals_of(&[
            payment(PaymentState::Paid, 1230, 230),
            payment(PaymentState::Paid, 500, 0),
            payment(PaymentState::Failed, 9900, 0),
            payment(PaymentState::Cancelled, 100, 0),
            payment(PaymentState::WaitingForCustomer, 700, 0),
            payment(PaymentState::NeedsAttention, 800, 0),
        ]);
        assert_eq!(
            totals,
            DailyTotals {
                paid_count: 2,
                paid_fen: Fen(1730),
                refunded_fen: Fen(230),
                net_fen: Fen(1500),
                open_count: 2,
            }
        );
    }
}
