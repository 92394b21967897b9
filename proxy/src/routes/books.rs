//! `/api/v1/books/…`: the owner's books for the back office (docs/books.md §7): the days
//! and where each stands, a day's reports with each mismatch's id and status, the day as
//! CSV, and the two actions on a mismatch: "query now" (a verified query, then the day run
//! again) and "mark explained" (a note). Refunds go through the refund endpoint.
//!
//! Every endpoint needs a manager or owner terminal (403 `ROLE_REQUIRED` for a cashier's,
//! before anything else) and, but for the banner's counts (`GET /books/status`), an
//! approval for `books` in `Paycode-Approval`, used up by the request and written to the
//! audit log with the manager, the terminal and the day or mismatch (`crate::approvals`).
//! A manager terminal sees the accounts of its store's merchant account; an owner
//! terminal every account.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use paycode_api::books::{
    AccountDay, BooksDayDetail, BooksDayList, BooksDaySummary, BooksStatus, DayStatus,
    ExplainMismatch, MismatchEntry, MismatchQueried, MismatchStatus, OwnerAction,
};
use paycode_api::{ApprovalAction, ErrorBody, ErrorCode, Fen, Role};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::approvals::EVERY_STORE;
use super::{BODY_TOO_LARGE, INTERNAL, UNAUTHORIZED, UNAVAILABLE, UNSUPPORTED_MEDIA_TYPE};
use crate::approvals::require_role;
use crate::auth::AuthenticatedTerminal;
use crate::books::records::{self, BooksDay, BooksMismatch};
use crate::books::run::RunOutcome;
use crate::config::Account;
use crate::engine::verify::{Actor, Verdict};
use crate::error::{ApiError, Result};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::store::{Millis, PaymentRecord};

/// 403 for the books.
const FORBIDDEN: &str = "ROLE_REQUIRED: a cashier terminal asked for the books (the message names the rule); APPROVAL_REQUIRED: no usable Paycode-Approval header for books (none, malformed, unknown, used, expired, for another action, terminal or store); MANAGER_WRONG_STORE: the approving manager belongs to another store";

/// The days the day list and a day's `recent` cover by default: a week.
const WEEK: u64 = 7;

/// The longest span the day list takes: WeChat keeps bills for three months.
const MAX_SPAN_DAYS: u64 = 92;

/// The books routes, relative to `/api/v1`, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(books_status))
        .routes(routes!(books_days))
        .routes(routes!(books_day))
        .routes(routes!(books_day_csv))
        .routes(routes!(mismatch_query))
        .routes(routes!(mismatch_explain))
}

/// What a terminal's books cover: the merchant accounts, and the store its approvals are
/// for (every store's, for an owner terminal).
struct Scope {
    accounts: Vec<Account>,
    store: String,
}

impl Scope {
    fn account(&self, mch_id: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|account| account.mch_id == mch_id)
    }
}

/// The terminal's scope; refuses a cashier terminal (`ROLE_REQUIRED`) first.
async fn scope(state: &AppState, terminal: &AuthenticatedTerminal) -> Result<Scope> {
    require_role(terminal, ApprovalAction::Books)?;
    if terminal.role == Role::Owner {
        return Ok(Scope {
            accounts: state.books.accounts(None).map_err(internal)?,
            store: EVERY_STORE.to_owned(),
        });
    }
    let store = state
        .store
        .get_store(&terminal.store_id)
        .await?
        .ok_or_else(|| internal(format!("terminal's store {} is gone", terminal.store_id)))?;
    // A store's account is one of the configured ones (checked when the store was bound);
    // its mch_id is the bill the store's payments are on.
    let accounts = state
        .books
        .accounts(Some(&store.account))
        .map_err(internal)?;
    Ok(Scope {
        accounts,
        store: terminal.store_id.clone(),
    })
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(error.to_string().into())
}

/// Uses up the `books` approval of the request for `target`, writing the audit row with
/// `reason` (the why of an action: a note); returns the manager and terminal, as the audit
/// event and the mismatch record name them.
async fn approve(
    state: &AppState,
    terminal: &AuthenticatedTerminal,
    headers: &HeaderMap,
    scope: &Scope,
    target: &str,
    reason: Option<&str>,
) -> Result<Actor> {
    let approved = state
        .approvals
        .require(
            terminal,
            headers,
            ApprovalAction::Books,
            (target, &scope.store),
            reason,
        )
        .await?;
    Ok(Actor::Manager {
        name: approved.manager_name,
        terminal: terminal.name.clone(),
    })
}

/// The last finished business day: yesterday in the shop's offset.
fn last_day(state: &AppState) -> NaiveDate {
    let today = state.config.shop.business_day(Millis::now());
    today.pred_opt().unwrap_or(today)
}

fn parse_day(text: &str, field: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|day| day.format("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| ApiError::invalid_field(field, "must be a date like 2026-11-30"))
}

fn rfc3339(at: Millis) -> String {
    at.to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One day of one account as the day list shows it.
async fn summary(
    state: &AppState,
    day: NaiveDate,
    mch_id: &str,
    stored: Option<&BooksDay>,
) -> Result<BooksDaySummary> {
    let open = state
        .store
        .books_mismatches(day, mch_id)
        .await?
        .iter()
        .filter(|mismatch| mismatch.status == MismatchStatus::Open)
        .count();
    let report = stored.and_then(|stored| stored.report.as_ref());
    Ok(BooksDaySummary {
        day: day.to_string(),
        mch_id: mch_id.to_owned(),
        status: stored.map_or(DayStatus::Unreconciled, |stored| stored.status),
        store_totals: report.map(|report| report.store_totals),
        bill_totals: report.map(|report| report.bill_totals),
        bill_status: report.map(|report| report.bill_status),
        open_mismatches: open as u64,
        detail: stored.and_then(|stored| stored.detail.clone()),
    })
}

/// The days `from` to `to`, newest first, each account of `scope`.
async fn day_list(
    state: &AppState,
    scope: &Scope,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BooksDayList> {
    let stored: HashMap<(NaiveDate, String), BooksDay> = state
        .store
        .books_days(from, to)
        .await?
        .into_iter()
        .map(|day| ((day.day, day.mch_id.clone()), day))
        .collect();
    let mut days = Vec::new();
    let mut day = to;
    while day >= from {
        for account in &scope.accounts {
            let key = (day, account.mch_id.clone());
            days.push(summary(state, day, &account.mch_id, stored.get(&key)).await?);
        }
        let Some(before) = day.pred_opt() else { break };
        day = before;
    }
    Ok(BooksDayList {
        from: from.to_string(),
        to: to.to_string(),
        days,
    })
}

/// The store's payments with these orders, by `out_trade_no`.
async fn payments_by_order(
    state: &AppState,
    mch_id: &str,
    mismatches: &[BooksMismatch],
) -> Result<HashMap<String, PaymentRecord>> {
    let orders: Vec<String> = mismatches
        .iter()
        .map(|mismatch| mismatch.mismatch.out_trade_no.clone())
        .collect();
    if orders.is_empty() {
        return Ok(HashMap::new());
    }
    // An empty window: only the payments the list names.
    let found = state
        .store
        .books_payments(mch_id, Millis(0), Millis(0), &orders)
        .await?;
    Ok(found
        .into_iter()
        .map(|payment| (payment.out_trade_no.as_str().to_owned(), payment))
        .collect())
}

/// A stored mismatch on the wire: its actions while open (a refund only when the store has
/// the payment to refund).
fn entry(mismatch: BooksMismatch, payment: Option<&PaymentRecord>) -> MismatchEntry {
    let status = mismatch.status;
    let actions = if status.is_open() {
        mismatch
            .mismatch
            .actions
            .iter()
            .copied()
            .filter(|action| *action != OwnerAction::Refund || payment.is_some())
            .collect()
    } else {
        Vec::new()
    };
    MismatchEntry {
        id: mismatch.id,
        status,
        mismatch: mismatch.mismatch,
        payment_id: payment.map(|payment| payment.id.clone()),
        actions,
        note: mismatch.note,
        settled_by: mismatch.settled_by,
        settled_at: mismatch.settled_at.map(rfc3339),
    }
}

/// `day` of every account of `scope`, with the week before it.
async fn day_detail(state: &AppState, scope: &Scope, day: NaiveDate) -> Result<BooksDayDetail> {
    let mut accounts = Vec::new();
    for account in &scope.accounts {
        let stored = state.store.books_day(day, &account.mch_id).await?;
        let mismatches = state.store.books_mismatches(day, &account.mch_id).await?;
        let payments = payments_by_order(state, &account.mch_id, &mismatches).await?;
        // The report's order, then any the latest run no longer lists.
        let order = |mismatch: &BooksMismatch| {
            stored
                .as_ref()
                .and_then(|stored| stored.report.as_ref())
                .and_then(|report| {
                    report.mismatches.iter().position(|found| {
                        records::mismatch_id(day, &account.mch_id, found) == mismatch.id
                    })
                })
                .unwrap_or(usize::MAX)
        };
        let mut mismatches = mismatches;
        mismatches.sort_by_key(|mismatch| (order(mismatch), mismatch.id.clone()));
        let entries = mismatches
            .into_iter()
            .map(|mismatch| {
                let payment = payments.get(&mismatch.mismatch.out_trade_no);
                entry(mismatch, payment)
            })
            .collect();
        let reconciled = stored
            .as_ref()
            .filter(|stored| stored.status == DayStatus::Reconciled);
        accounts.push(AccountDay {
            mch_id: account.mch_id.clone(),
            status: stored
                .as_ref()
                .map_or(DayStatus::Unreconciled, |stored| stored.status),
            detail: stored.as_ref().and_then(|stored| stored.detail.clone()),
            report: stored.as_ref().and_then(|stored| stored.report.clone()),
            mismatches: entries,
            reconciled_at: reconciled.map(|stored| rfc3339(stored.run_at)),
        });
    }
    let from = day.checked_sub_days(Days::new(WEEK - 1)).unwrap_or(day);
    Ok(BooksDayDetail {
        day: day.to_string(),
        accounts,
        recent: day_list(state, scope, from, day).await?,
    })
}

/// What the manager terminal's banner says: finished days of the last week on which the
/// store took payments but some account has no report, and open mismatches. Counts only: a manager or owner terminal
/// reads them without an approval.
#[utoipa::path(
    get,
    path = "/books/status",
    tag = "books",
    responses(
        (status = 200, description = "The banner's counts and the day the 对账 page opens on", body = BooksStatus),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "ROLE_REQUIRED: a cashier terminal (the message names the rule)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn books_status(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
) -> Result<Json<BooksStatus>> {
    let scope = scope(&state, &terminal).await?;
    let last = last_day(&state);
    let from = last.checked_sub_days(Days::new(WEEK - 1)).unwrap_or(last);
    let reconciled: Vec<(NaiveDate, String)> = state
        .store
        .books_days(from, last)
        .await?
        .into_iter()
        .filter(|day| day.status == DayStatus::Reconciled)
        .map(|day| (day.day, day.mch_id))
        .collect();
    // A finished day counts when some account has no report for it although the store
    // took payments that day: days without trades (before the shop opened, or closed) have
    // no bill to reconcile.
    let days = state.books.rules().days;
    let mut unreconciled_days = Vec::new();
    for offset in (0..WEEK).rev() {
        let Some(day) = last.checked_sub_days(Days::new(offset)) else {
            continue;
        };
        for account in &scope.accounts {
            if reconciled.contains(&(day, account.mch_id.clone())) {
                continue;
            }
            let traded = !state
                .store
                .books_payments(&account.mch_id, days.start_of(day), days.end_of(day), &[])
                .await?
                .is_empty();
            if traded {
                unreconciled_days.push(day.to_string());
                break;
            }
        }
    }
    let open_mismatches = state
        .store
        .count_open_books_mismatches()
        .await?
        .into_iter()
        .filter(|(mch_id, _)| scope.account(mch_id).is_some())
        .map(|(_, count)| count)
        .sum();
    Ok(Json(BooksStatus {
        last_day: last.to_string(),
        unreconciled_days,
        open_mismatches,
    }))
}

/// The query of `GET /books/days`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DaysQuery {
    /// The first day, `YYYY-MM-DD`; default: six days before `to`.
    #[serde(default)]
    #[param(format = Date, example = "2026-11-24")]
    from: Option<String>,
    /// The last day, `YYYY-MM-DD`; default: yesterday in the shop's offset.
    #[serde(default)]
    #[param(format = Date, example = "2026-11-30")]
    to: Option<String>,
}

/// The days from `from` to `to` (at most 92), newest first: per day and merchant account,
/// whether it is reconciled, waiting for WeChat's bill or not yet run, the totals of both
/// sides once reconciled, and the mismatches still open. Uses up a `books` approval.
#[utoipa::path(
    get,
    path = "/books/days",
    tag = "books",
    params(
        DaysQuery,
        ("Paycode-Approval" = String, Header, description = "A books approval (pca_…)"),
    ),
    responses(
        (status = 200, description = "The days", body = BooksDayList),
        (status = 400, description = "Bad query string (INVALID_REQUEST, naming the parameter): not a date, from after to, more than 92 days, an unknown parameter", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn books_days(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<DaysQuery>,
) -> Result<Json<BooksDayList>> {
    let scope = scope(&state, &terminal).await?;
    let to = match &query.to {
        Some(to) => parse_day(to, "to")?,
        None => last_day(&state),
    };
    let from = match &query.from {
        Some(from) => parse_day(from, "from")?,
        None => to.checked_sub_days(Days::new(WEEK - 1)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::invalid_field("from", "must not be after to"));
    }
    if (to - from).num_days() >= MAX_SPAN_DAYS as i64 {
        return Err(ApiError::invalid_field(
            "from",
            format!("must be at most {MAX_SPAN_DAYS} days before to"),
        ));
    }
    approve(
        &state,
        &terminal,
        &headers,
        &scope,
        &format!("books {from}..{to}"),
        None,
    )
    .await?;
    Ok(Json(day_list(&state, &scope, from, to).await?))
}

/// One day of every merchant account of the terminal's store (every account for an owner
/// terminal): the stored report with each mismatch's id, status and actions, and the week
/// before it. Uses up a `books` approval.
#[utoipa::path(
    get,
    path = "/books/days/{date}",
    tag = "books",
    params(
        ("date" = String, Path, description = "The business day, YYYY-MM-DD", format = Date, example = "2026-11-30"),
        ("Paycode-Approval" = String, Header, description = "A books approval (pca_…)"),
    ),
    responses(
        (status = 200, description = "The day", body = BooksDayDetail),
        (status = 400, description = "The date is not a date like 2026-11-30 (INVALID_REQUEST naming date)", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn books_day(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
    Path(date): Path<String>,
) -> Result<Json<BooksDayDetail>> {
    let scope = scope(&state, &terminal).await?;
    let day = parse_day(&date, "date")?;
    approve(
        &state,
        &terminal,
        &headers,
        &scope,
        &format!("books {day}"),
        None,
    )
    .await?;
    Ok(Json(day_detail(&state, &scope, day).await?))
}

/// The CSV's header row.
pub const CSV_HEADER: [&str; 12] = [
    "day",
    "account",
    "class",
    "out_trade_no",
    "out_refund_no",
    "store_amount",
    "bill_amount",
    "store_state",
    "bill_state",
    "status",
    "note",
    "who",
];

/// A day's mismatches as CSV (RFC 4180, UTF-8, amounts in yuan), one row each.
fn day_csv(detail: &BooksDayDetail) -> Result<Vec<u8>> {
    let yuan = |fen: Option<Fen>| fen.map(Fen::to_yuan_string).unwrap_or_default();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER).map_err(internal)?;
    for account in &detail.accounts {
        for entry in &account.mismatches {
            let mismatch = &entry.mismatch;
            writer
                .write_record([
                    detail.day.as_str(),
                    account.mch_id.as_str(),
                    mismatch.class.describe(),
                    mismatch.out_trade_no.as_str(),
                    mismatch.out_refund_no.as_deref().unwrap_or(""),
                    &yuan(mismatch.store_amount),
                    &yuan(mismatch.bill_amount),
                    mismatch.store_state.map_or("", |state| state.as_str()),
                    mismatch.bill_state.as_deref().unwrap_or(""),
                    entry.status.as_str(),
                    entry.note.as_deref().unwrap_or(""),
                    entry.settled_by.as_deref().unwrap_or(""),
                ])
                .map_err(internal)?;
        }
    }
    writer.into_inner().map_err(internal)
}

/// The day's mismatches as CSV (`text/csv`, UTF-8), one row per mismatch of every account,
/// with the columns day, account, class (in plain words), out_trade_no, out_refund_no,
/// store_amount and bill_amount (yuan), store_state, bill_state, status, note, who. Uses up
/// a `books` approval.
#[utoipa::path(
    get,
    path = "/books/days/{date}/csv",
    tag = "books",
    params(
        ("date" = String, Path, description = "The business day, YYYY-MM-DD", format = Date, example = "2026-11-30"),
        ("Paycode-Approval" = String, Header, description = "A books approval (pca_…)"),
    ),
    responses(
        (status = 200, description = "The day's mismatches as CSV", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"paycode-books-YYYY-MM-DD.csv\""))),
        (status = 400, description = "The date is not a date like 2026-11-30 (INVALID_REQUEST naming date)", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn books_day_csv(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
    Path(date): Path<String>,
) -> Result<Response> {
    let scope = scope(&state, &terminal).await?;
    let day = parse_day(&date, "date")?;
    approve(
        &state,
        &terminal,
        &headers,
        &scope,
        &format!("books {day} csv"),
        None,
    )
    .await?;
    let body = day_csv(&day_detail(&state, &scope, day).await?)?;
    let disposition = format!("attachment; filename=\"paycode-books-{day}.csv\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(internal)?,
            ),
        ],
        body,
    )
        .into_response())
}

/// The stored mismatch `id` if the terminal's books cover it; anything else is
/// `MISMATCH_NOT_FOUND`, like a missing one.
async fn visible_mismatch<'a>(
    state: &AppState,
    scope: &'a Scope,
    id: &str,
) -> Result<(BooksMismatch, &'a Account)> {
    let not_found = || ApiError::NotFound {
        code: ErrorCode::MismatchNotFound,
        message: format!("there is no mismatch {id} in this terminal's books"),
    };
    let mismatch = state
        .store
        .books_mismatch(id)
        .await?
        .ok_or_else(not_found)?;
    let account = scope.account(&mismatch.mch_id).ok_or_else(not_found)?;
    Ok((mismatch, account))
}

/// Refuses an action on a mismatch that is no longer open.
fn require_open(mismatch: &BooksMismatch) -> Result<()> {
    if mismatch.status == MismatchStatus::Open {
        return Ok(());
    }
    Err(ApiError::Conflict {
        code: ErrorCode::MismatchSettled,
        message: format!(
            "mismatch {} is already {}{}",
            mismatch.id,
            mismatch.status.as_str(),
            mismatch
                .settled_by
                .as_deref()
                .map(|by| format!(" (by {by})"))
                .unwrap_or_default()
        ),
        field: None,
    })
}

/// What WeChat's verified answer meant, in plain words.
fn verdict_words(verdict: Verdict, payment: &PaymentRecord) -> String {
    match verdict {
        Verdict::Changed => format!(
            "WeChat's verified answer changed the payment: it is now {}",
            payment.state
        ),
        Verdict::Agrees => format!(
            "WeChat's verified answer agrees with the payment ({})",
            payment.state
        ),
        Verdict::Disagrees => format!(
            "WeChat's verified answer contradicts the payment, which stays {} for a manager",
            payment.state
        ),
        Verdict::InProgress => format!(
            "the proxy is still working on the payment ({}); query again shortly",
            payment.state
        ),
        Verdict::NoAnswer => "WeChat did not answer the query".to_owned(),
    }
}

/// "Query now": asks WeChat about the mismatch's order (orderquery; the record changes only
/// from the verified reply, with an audit event naming the manager), then runs the day's
/// reconciliation again against WeChat's bill and the fresh store (claimed in the database
/// like the daily run, so never twice at once). A mismatch the new run no
/// longer finds is `resolved_by_query`, with what WeChat said as its note; one it still
/// finds stays open. A refund's state comes from the engine's own refund queries: "query
/// now" on a refund mismatch runs the day again. Uses up a `books` approval.
#[utoipa::path(
    post,
    path = "/books/mismatches/{id}/query",
    tag = "books",
    params(
        ("id" = String, Path, description = "The mismatch's id (bm_…)"),
        ("Paycode-Approval" = String, Header, description = "A books approval (pca_…)"),
    ),
    responses(
        (status = 200, description = "The mismatch after the query and the run, and what WeChat said", body = MismatchQueried),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such mismatch in the terminal's books (MISMATCH_NOT_FOUND)", body = ErrorBody),
        (status = 409, description = "The mismatch is no longer open (MISMATCH_SETTLED)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 502, description = "WeChat did not answer the query or the bill download; nothing changed, try again (WECHAT_UNAVAILABLE)", body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn mismatch_query(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<MismatchQueried>> {
    let scope = scope(&state, &terminal).await?;
    let (mismatch, account) = visible_mismatch(&state, &scope, &id).await?;
    require_open(&mismatch)?;
    let actor = approve(&state, &terminal, &headers, &scope, &id, Some("query now")).await?;
    tracing::info!(mismatch = %id, %actor, "query now");
    let payments =
        payments_by_order(&state, &account.mch_id, std::slice::from_ref(&mismatch)).await?;
    let mut words = Vec::new();
    if let Some(payment) = payments.get(&mismatch.mismatch.out_trade_no) {
        let verified = state.engine.verify_payment(&payment.id, &actor).await?;
        if verified.verdict == Verdict::NoAnswer {
            return Err(ApiError::WechatNoAnswer {
                message: "WeChat did not answer the query; nothing changed: try again shortly"
                    .to_owned(),
            });
        }
        words.push(verdict_words(verified.verdict, &verified.payment));
    } else {
        words.push("this store has no payment with that order number".to_owned());
    }
    // The day's run is claimed like the daily run's, so that it is not run twice at once
    // across proxies; a run under way elsewhere answers for itself shortly.
    let owner = format!("{} (query now)", state.instance.run_id);
    let claimed = state
        .store
        .claim_books_run(
            mismatch.day,
            &account.mch_id,
            &owner,
            state.config.books.retry_after,
        )
        .await?;
    if !claimed {
        words.push("the day is being reconciled right now; query again shortly".to_owned());
    }
    let outcome = if claimed {
        let outcome = state
            .books
            .reconcile_day(mismatch.day, account, &actor.to_string())
            .await;
        state
            .store
            .release_books_run(mismatch.day, &account.mch_id, &owner)
            .await?;
        Some(outcome.map_err(|error| ApiError::WechatNoAnswer {
            message: format!("the day could not be run again: {error}; try again shortly"),
        })?)
    } else {
        None
    };
    let still_open = match &outcome {
        Some(RunOutcome::Reconciled(run)) => run
            .mismatches
            .iter()
            .any(|found| found.id == id && found.in_latest_run),
        Some(RunOutcome::WaitingForBill { .. }) | None => true,
    };
    let message = if still_open {
        if outcome.is_some() {
            words.push("the run still finds the difference".to_owned());
        }
        words.join("; ")
    } else {
        words.push("the day's run no longer finds the difference".to_owned());
        let message = words.join("; ");
        state
            .store
            .settle_books_mismatch(
                &id,
                MismatchStatus::ResolvedByQuery,
                Some(&message),
                &actor.to_string(),
                Millis::now(),
            )
            .await?;
        message
    };
    let stored = visible_mismatch(&state, &scope, &id).await?.0;
    let payment = payments.get(&stored.mismatch.out_trade_no);
    Ok(Json(MismatchQueried {
        mismatch: entry(stored, payment),
        message,
    }))
}

/// "Mark explained": closes an open mismatch with the manager's note saying why it is not
/// a problem. Moves no money; the note, the manager and the time are stored on the mismatch
/// and the approval's audit row names the manager, the terminal and the mismatch. Uses up a
/// `books` approval.
#[utoipa::path(
    post,
    path = "/books/mismatches/{id}/explain",
    tag = "books",
    params(
        ("id" = String, Path, description = "The mismatch's id (bm_…)"),
        ("Paycode-Approval" = String, Header, description = "A books approval (pca_…)"),
    ),
    request_body = ExplainMismatch,
    responses(
        (status = 200, description = "The mismatch, explained", body = MismatchEntry),
        (status = 400, description = "Bad input, naming the field: INVALID_REQUEST (note empty, over 200 characters or with a control character; an unknown field), INVALID_JSON", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = "No such mismatch in the terminal's books (MISMATCH_NOT_FOUND)", body = ErrorBody),
        (status = 409, description = "The mismatch is no longer open (MISMATCH_SETTLED)", body = ErrorBody),
        (status = 413, description = BODY_TOO_LARGE, body = ErrorBody),
        (status = 415, description = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ),
    security(("terminal_token" = []))
)]
async fn mismatch_explain(
    State(state): State<AppState>,
    terminal: AuthenticatedTerminal,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ExplainMismatch>,
) -> Result<Json<MismatchEntry>> {
    let scope = scope(&state, &terminal).await?;
    request
        .check()
        .map_err(|problem| ApiError::invalid_field(ExplainMismatch::FIELD, problem.to_string()))?;
    let (mismatch, account) = visible_mismatch(&state, &scope, &id).await?;
    require_open(&mismatch)?;
    let note = request.note.trim();
    let actor = approve(&state, &terminal, &headers, &scope, &id, Some(note)).await?;
    tracing::info!(mismatch = %id, %actor, note, "mismatch explained");
    let stored = state
        .store
        .settle_books_mismatch(
            &id,
            MismatchStatus::Explained,
            Some(note),
            &actor.to_string(),
            Millis::now(),
        )
        .await?;
    let payments =
        payments_by_order(&state, &account.mch_id, std::slice::from_ref(&stored)).await?;
    let payment = payments.get(&stored.mismatch.out_trade_no);
    Ok(Json(entry(stored, payment)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_strictly() {
        assert_eq!(
            parse_day("2026-11-30", "date").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
        for bad in ["2026-11-31", "2026-1-30", "30-11-2026", "", "2026-11-30x"] {
            let error = parse_day(bad, "date").unwrap_err();
            assert!(
                matches!(&error, ApiError::InvalidRequest { field: Some(field), .. } if field == "date"),
                "{bad}: {error}"
            );
        }
    }
}
