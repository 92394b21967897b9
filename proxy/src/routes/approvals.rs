//! Manager approvals and the manager actions on payments (docs/approvals.md):
//! `POST /api/v1/approvals` (a manager's PIN for an approval token),
//! `GET /api/v1/needs-attention` and `POST /api/v1/payments/{id}/settle`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use paycode_api::{
    Approval, ApprovalAction, ApprovalRequest, AttentionList, ErrorBody, ErrorCode, PaymentState,
    Role, SettleOutcome, SettleRequest, Settlement,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::payments::{payment_body, refunds_of};
use super::{BODY_TOO_LARGE, INTERNAL, UNAUTHORIZED, UNAVAILABLE, UNSUPPORTED_MEDIA_TYPE};
use crate::approvals::{ApprovalError, check_reason};
use crate::auth::AuthenticatedTerminal;
use crate::engine::verify::{Actor, Verdict};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::store::{PaymentRecord, StoreError};

/// What an approval for a request spanning every store names as its store: only a manager
/// of every store approves it.
pub(super) const EVERY_STORE: &str = "*";

/// 403 for the manager actions.
const FORBIDDEN: &str = "ROLE_REQUIRED: a cashier terminal asked for a manager action (the message names the rule); APPROVAL_REQUIRED: no usable Paycode-Approval header (none, malformed, unknown, used, expired, for another action, terminal or store); MANAGER_WRONG_STORE: the approving manager belongs to another store";

/// The approval routes, relative to `/api/v1`, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(approval_create))
        .routes(routes!(needs_attention_list))
        .routes(routes!(payment_settle))
}

/// A manager enters their name and PIN on this terminal to approve one action (or every
/// action of the kind for `approvals.window`): 201 with the approval token, which the
/// terminal sends as the `Paycode-Approval` header on the approved request. A cashier
/// terminal asking for a back-office action is refused before the PIN is checked. After
/// `approvals.max_failures` wrong PINs in a row the manager's PIN is locked for
/// `approvals.lockout`; each terminal may fail `approvals.failed_checks_per_minute` PIN checks a minute.
#[utoipa::path(
    post,
    path = "/approvals",
    tag = "approvals",
    request_body = ApprovalRequest,
    responses(
        (status = 201, description = "The approval", body = Approval),
        (status = 400, description = "Bad input, naming the field (INVALID_REQUEST: a PIN that is not 4 to 12 digits, a manager name over 64 characters, a reason over 200 characters; INVALID_JSON)", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "ROLE_REQUIRED: a cashier terminal asked for settle_payment, view_all_payments or books; PIN_INCORRECT: no such manager, or a wrong PIN (the message says how many attempts are left); MANAGER_WRONG_STORE: the manager approves for another store", body = ErrorBody),
        (status = 413, description = BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 423, description = "The manager's PIN is locked after repeated wrong PINs (PIN_LOCKED)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the lockout ends"))),
        (status = 429, description = "Too many PIN checks from this terminal this minute (TOO_MANY_REQUESTS)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the terminal may try again"))),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn approval_create(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    ApiJson(request): ApiJson<ApprovalRequest>,
) -> Result<(StatusCode, Json<Approval>)> {
    let approval = state.approvals.approve(&terminal, request).await?;
    Ok((StatusCode::CREATED, Json(approval)))
}

/// The payments that need attention, from every terminal of this terminal's store (of
/// every store for an owner terminal), oldest first. A manager action: a manager or owner
/// terminal, with a `view_all_payments` approval.
#[utoipa::path(
    get,
    path = "/needs-attention",
    tag = "approvals",
    params(("Paycode-Approval" = String, Header, description = "A view_all_payments approval (pca_…)")),
    responses(
        (status = 200, description = "The payments that need attention", body = AttentionList),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn needs_attention_list(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
) -> Result<Json<AttentionList>> {
    let every_store = terminal.role == Role::Owner;
    let scope = if every_store {
        EVERY_STORE
    } else {
        terminal.store_id.as_str()
    };
    state
        .approvals
        .require(
            &terminal,
            &headers,
            ApprovalAction::ViewAllPayments,
            ("needs-attention", scope),
            None,
        )
        .await?;
    let payments = state
        .store
        .unsettled_payments()
        .await?
        .into_iter()
        .filter(|record| record.state == PaymentState::NeedsAttention)
        .filter(|record| every_store || record.store_id == terminal.store_id)
        .map(|record| payment_body(&state, &record, Vec::new()))
        .collect();
    Ok(Json(AttentionList { payments }))
}

/// A manager settles a payment that needs attention: the proxy asks WeChat about the order
/// now (orderquery) and settles the payment only to what the verified answer proves (paid;
/// or cancelled, the order reversed or closed), with an audit event naming the manager and
/// the reason. A manager action: a manager or owner terminal of the payment's store (any
/// store for an owner terminal), with a `settle_payment` approval.
#[utoipa::path(
    post,
    path = "/payments/{id}/settle",
    tag = "approvals",
    params(
        ("id" = String, Path, description = "The payment's id"),
        ("Paycode-Approval" = String, Header, description = "A settle_payment approval (pca_…)"),
    ),
    request_body = SettleRequest,
    responses(
        (status = 200, description = "The payment after the query, and what WeChat's answer did", body = Settlement),
        (status = 400, description = "Bad input, naming the field (INVALID_REQUEST: an empty reason, or one over 200 characters; INVALID_JSON)", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such payment in the terminal's store (PAYMENT_NOT_FOUND)", body = ErrorBody),
        (status = 409, description = "The payment does not need attention (PAYMENT_NOT_IN_ATTENTION)", body = ErrorBody),
        (status = 413, description = BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 502, description = "WeChat did not answer the query; nothing changed, try again (WECHAT_UNAVAILABLE)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn payment_settle(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SettleRequest>,
) -> Result<Json<Settlement>> {
    let reason = check_reason(Some(request.reason), "reason")?.ok_or_else(|| {
        ApiError::from(ApprovalError::InvalidField {
            field: "reason",
            message: "must say why the payment is settled".to_owned(),
        })
    })?;
    crate::approvals::require_role(&terminal, ApprovalAction::SettlePayment)?;
    state
        .approvals
        .presented(&headers, ApprovalAction::SettlePayment)?;
    let record = visible_payment(&state, &terminal, &id).await?;
    if record.state != PaymentState::NeedsAttention {
        return Err(ApiError::Conflict {
            code: ErrorCode::PaymentNotInAttention,
            message: format!(
                "only a payment that needs attention can be settled; this one is {}",
                record.state
            ),
            field: None,
        });
    }
    let approved = state
        .approvals
        .require(
            &terminal,
            &headers,
            ApprovalAction::SettlePayment,
            (&id, &record.store_id),
            Some(&reason),
        )
        .await?;
    let actor = Actor::Manager {
        name: approved.manager_name,
        terminal: terminal.name.clone(),
    };
    tracing::info!(payment = %id, %actor, %reason, "settling a payment that needs attention");
    let verified = state.engine.verify_payment(&id, &actor).await?;
    let outcome = match verified.verdict {
        Verdict::Changed => SettleOutcome::Changed,
        Verdict::Agrees => SettleOutcome::Agrees,
        Verdict::Disagrees => SettleOutcome::Disagrees,
        Verdict::InProgress => SettleOutcome::InProgress,
        Verdict::NoAnswer => {
            return Err(ApiError::WechatNoAnswer {
                message: "WeChat did not answer the query; nothing changed: try again shortly"
                    .to_owned(),
            });
        }
    };
    let refunds = refunds_of(&state, &verified.payment).await?;
    Ok(Json(Settlement {
        payment: payment_body(&state, &verified.payment, refunds),
        outcome,
    }))
}

/// The payment `id` if the terminal may act on it: its own store's, or any for an owner
/// terminal. Anything else is `PAYMENT_NOT_FOUND`, like a missing payment.
async fn visible_payment(
    state: &AppState,
    terminal: &AuthenticatedTerminal,
    id: &str,
) -> Result<PaymentRecord> {
    match state.store.get_payment(id).await? {
        Some(record) if terminal.role == Role::Owner || record.store_id == terminal.store_id => {
            Ok(record)
        }
        _ => Err(StoreError::NotFound {
            entity: "payment",
            key: id.to_owned(),
        }
        .into()),
    }
}
