//! What both store implementations share about rows: the column lists, how a row becomes a
//! record ([`Columns`] hides how each database spells a boolean or a date), how a payment's
//! mutable columns are bound, the integer conversions, and the idempotency comparison.
//!
//! Each implementation keeps its own SQL (placeholders and locking differ); the columns, the
//! records and the rules for reading them back exist once, here.

use chrono::NaiveDate;
use paycode_api::{ApprovalAction, AttemptId, AuthCode, Fen, PaymentState, Role};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use wxpay::messages::{OutRefundNo, OutTradeNo};

use std::time::Duration;

use super::records::{
    Action, ApprovedAction, CloseState, Failure, ManagerRecord, MerchantIds, Millis, PaymentEvent,
    PaymentRecord, RefundRecord, StoreRecord, TerminalRecord, parse_refund_state,
    refund_state_name,
};
use super::{Leased, StoreError};

/// The states of a settled payment, as SQL. It must read exactly like the predicate of the
/// partial index `payments_unsettled_by_next_action` (both migrations), or the database will
/// not use that index; a unit test checks it against [`PaymentState::is_settled`].
pub(super) const SETTLED_STATES_SQL: &str = "('paid', 'failed', 'cancelled')";

/// The states of an unfinished refund, as SQL, like the predicate of `refunds_unfinished`.
pub(super) const UNFINISHED_REFUND_STATES_SQL: &str = "('queued', 'submitting', 'processing')";

/// Every column of `payments`, in the order the records are read.
pub(super) const PAYMENT_COLUMNS: &str = "id, attempt_id, terminal_id, out_trade_no, amount_fen, \
     auth_code, auth_code_last4, description, state, version, maybe_sent, micropay_attempts, \
     query_count, reverse_count, cancel_requested, seen_paid, money_returned, transaction_id, \
     failure_code, failure_message, attention_reason, submitted_at, next_action_at, created_at, \
     updated_at, settled_at, business_day, lease_owner, lease_until, next_action, \
     pending_failure_code, pending_failure_message, retry_attempts, not_sent_attempts, \
     auth_code_fingerprint, close_state, store_id, appid, mch_id, sub_appid, sub_mch_id, \
     lease_epoch, time_expire, wechat_paid_at";

/// The columns a payment is created with and never changes, in the order the stores bind
/// them.
pub(super) const PAYMENT_IMMUTABLE_COLUMNS: &str = "id, attempt_id, terminal_id, out_trade_no, \
     amount_fen, auth_code_last4, created_at, business_day, auth_code_fingerprint, store_id, \
     appid, mch_id, sub_appid, sub_mch_id";

/// The columns every update rewrites, in the order [`bind_mutable`] binds them.
pub(super) const PAYMENT_MUTABLE_COLUMNS: &str = "auth_code, description, state, version, \
     maybe_sent, micropay_attempts, query_count, reverse_count, cancel_requested, seen_paid, \
     money_returned, transaction_id, failure_code, failure_message, attention_reason, \
     submitted_at, next_action_at, updated_at, settled_at, next_action, \
     pending_failure_code, pending_failure_message, retry_attempts, not_sent_attempts, \
     close_state, time_expire, wechat_paid_at";

/// The lease columns of `payments` and `refunds`, which only inserts and the stores' lease
/// operations (claim, renew, release) write, never an update: an update names the epoch it
/// holds instead (the fence), so a cashier's cancel does not take the lease and a renewal
/// does not move the version.
pub(super) const LEASE_COLUMNS: &str = "lease_owner, lease_until, lease_epoch";

/// Every column of `refunds`, in the order the stores insert them: [`bind_refund`] binds all
/// but the last three, the [`LEASE_COLUMNS`].
pub(super) const REFUND_COLUMNS: &str = "id, payment_id, refund_attempt_id, out_refund_no, \
     amount_fen, reason, state, version, wechat_refund_id, failure_code, failure_message, \
     attempts, next_action_at, created_at, updated_at, applied_at, store_id, appid, mch_id, \
     sub_appid, sub_mch_id, wechat_refunded_at, lease_owner, lease_until, lease_epoch";

/// Every column of `terminals`, in the order the stores insert them.
pub(super) const TERMINAL_COLUMNS: &str =
    "id, name, token_hash, created_at, revoked_at, store_id, role";

/// Every column of `stores`, in the order the stores insert them.
pub(super) const STORE_COLUMNS: &str =
    "id, name, account, sub_mch_id, sub_appid, address, created_at, disabled_at";

/// The columns of `payment_events` a [`PaymentEvent`] is read from.
pub(super) const EVENT_COLUMNS: &str =
    "payment_id, at, from_state, to_state, detail, lease_owner, lease_epoch";

/// How many names a column list holds.
pub(super) fn column_count(list: &str) -> usize {
    list.split(',').count()
}

/// Typed access to a row's columns. The records are written in portable types (text,
/// 64-bit integers, booleans, a date), which each database keeps in its own way (SQLite:
/// INTEGER 0/1 and `YYYY-MM-DD` text; PostgreSQL: BOOLEAN and DATE).
pub(super) trait Columns {
    /// A text column.
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn optional_text(&self, column: &'static str) -> Result<Option<String>, StoreError>;
    /// A 64-bit integer column.
    fn integer(&self, column: &'static str) -> Result<i64, StoreError>;
    /// A nullable 64-bit integer column.
    fn optional_integer(&self, column: &'static str) -> Result<Option<i64>, StoreError>;
    /// A boolean column.
    fn flag(&self, column: &'static str) -> Result<bool, StoreError>;
    /// A calendar date column.
    fn day(&self, column: &'static str) -> Result<NaiveDate, StoreError>;
}

/// How a database keeps a calendar date column, the one [`Columns`] access that differs
/// between the back ends.
pub(super) trait DayColumn {
    /// The date in `column`.
    fn day_column(&self, column: &'static str) -> Result<NaiveDate, StoreError>;
}

/// [`Columns`] through sqlx's decoding, which reads text, 64-bit integers and booleans alike
/// on both databases (SQLite's INTEGER 0 or 1 decodes as a boolean).
impl<R> Columns for R
where
    R: Row + DayColumn,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn optional_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn integer(&self, column: &'static str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn optional_integer(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn flag(&self, column: &'static str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn day(&self, column: &'static str) -> Result<NaiveDate, StoreError> {
        self.day_column(column)
    }
}

/// Reads a row of [`PAYMENT_COLUMNS`].
pub(super) fn payment_from_row(row: &impl Columns) -> Result<PaymentRecord, StoreError> {
    let attempt_id = row.text("attempt_id")?;
    // Validated once, here: the engine sends the stored number as it is.
    let out_trade_no = row.text("out_trade_no")?;
    Ok(PaymentRecord {
        id: row.text("id")?,
        attempt_id: AttemptId::parse(&attempt_id).map_err(|_| StoreError::Corrupt {
            column: "payments.attempt_id",
            value: attempt_id.clone(),
        })?,
        terminal_id: row.text("terminal_id")?,
        store_id: row.text("store_id")?,
        merchant: merchant_from_row(row, "payments.mch_id")?,
        out_trade_no: OutTradeNo::new(out_trade_no.clone()).map_err(|_| StoreError::Corrupt {
            column: "payments.out_trade_no",
            value: out_trade_no,
        })?,
        amount_fen: i64_to_fen(row.integer("amount_fen")?, "payments.amount_fen")?,
        auth_code: row
            .optional_text("auth_code")?
            .map(|code| {
                AuthCode::parse(&code).map_err(|_| StoreError::Corrupt {
                    column: "payments.auth_code",
                    // The stored value is a payment code (or something else entirely);
                    // either way it must not reach a log, so only its length is reported.
                    value: format!("<{} characters>", code.len()),
                })
            })
            .transpose()?,
        auth_code_last4: row.text("auth_code_last4")?,
        auth_code_fingerprint: row.optional_text("auth_code_fingerprint")?,
        description: row.text("description")?,
        state: parse_payment_state(&row.text("state")?)?,
        version: i64_to_u64(row.integer("version")?, "payments.version")?,
        maybe_sent: row.flag("maybe_sent")?,
        micropay_attempts: counter(row, "micropay_attempts")?,
        query_count: counter(row, "query_count")?,
        reverse_count: counter(row, "reverse_count")?,
        cancel_requested: row.flag("cancel_requested")?,
        seen_paid: row.flag("seen_paid")?,
        money_returned: row.flag("money_returned")?,
        transaction_id: row.optional_text("transaction_id")?,
        failure_code: row.optional_text("failure_code")?,
        failure_message: row.optional_text("failure_message")?,
        attention_reason: row.optional_text("attention_reason")?,
        submitted_at: row.optional_integer("submitted_at")?.map(Millis),
        next_action_at: row.optional_integer("next_action_at")?.map(Millis),
        created_at: Millis(row.integer("created_at")?),
        updated_at: Millis(row.integer("updated_at")?),
        settled_at: row.optional_integer("settled_at")?.map(Millis),
        business_day: row.day("business_day")?,
        lease_owner: row.optional_text("lease_owner")?,
        lease_until: row.optional_integer("lease_until")?.map(Millis),
        lease_epoch: i64_to_u64(row.integer("lease_epoch")?, "payments.lease_epoch")?,
        time_expire: row.optional_integer("time_expire")?.map(Millis),
        wechat_paid_at: row.optional_integer("wechat_paid_at")?.map(Millis),
        next_action: row
            .optional_text("next_action")?
            .map(|name| {
                Action::parse(&name).ok_or(StoreError::Corrupt {
                    column: "payments.next_action",
                    value: name,
                })
            })
            .transpose()?,
        pending_failure: match (
            row.optional_text("pending_failure_code")?,
            row.optional_text("pending_failure_message")?,
        ) {
            (Some(code), message) => Some(Failure::new(code, message.unwrap_or_default())),
            (None, _) => None,
        },
        reverse_attempts: counter(row, "retry_attempts")?,
        not_sent_attempts: counter(row, "not_sent_attempts")?,
        close_state: row
            .optional_text("close_state")?
            .map(|name| {
                CloseState::parse(&name).ok_or(StoreError::Corrupt {
                    column: "payments.close_state",
                    value: name,
                })
            })
            .transpose()?,
    })
}

/// Reads a row of [`REFUND_COLUMNS`].
pub(super) fn refund_from_row(row: &impl Columns) -> Result<RefundRecord, StoreError> {
    let refund_attempt_id = row.text("refund_attempt_id")?;
    let state = row.text("state")?;
    // Validated once, here: the engine sends the stored number as it is.
    let out_refund_no = row.text("out_refund_no")?;
    Ok(RefundRecord {
        id: row.text("id")?,
        payment_id: row.text("payment_id")?,
        store_id: row.text("store_id")?,
        merchant: merchant_from_row(row, "refunds.mch_id")?,
        refund_attempt_id: AttemptId::parse(&refund_attempt_id).map_err(|_| {
            StoreError::Corrupt {
                column: "refunds.refund_attempt_id",
                value: refund_attempt_id.clone(),
            }
        })?,
        out_refund_no: OutRefundNo::new(out_refund_no.clone()).map_err(|_| {
            StoreError::Corrupt {
                column: "refunds.out_refund_no",
                value: out_refund_no,
            }
        })?,
        amount_fen: i64_to_fen(row.integer("amount_fen")?, "refunds.amount_fen")?,
        reason: row.optional_text("reason")?,
        state: parse_refund_state(&state).ok_or_else(|| StoreError::Corrupt {
            column: "refunds.state",
            value: state.clone(),
        })?,
        version: i64_to_u64(row.integer("version")?, "refunds.version")?,
        wechat_refund_id: row.optional_text("wechat_refund_id")?,
        failure_code: row.optional_text("failure_code")?,
        failure_message: row.optional_text("failure_message")?,
        attempts: counter(row, "attempts")?,
        next_action_at: row.optional_integer("next_action_at")?.map(Millis),
        applied_at: row.optional_integer("applied_at")?.map(Millis),
        wechat_refunded_at: row.optional_integer("wechat_refunded_at")?.map(Millis),
        created_at: Millis(row.integer("created_at")?),
        updated_at: Millis(row.integer("updated_at")?),
        lease_owner: row.optional_text("lease_owner")?,
        lease_until: row.optional_integer("lease_until")?.map(Millis),
        lease_epoch: i64_to_u64(row.integer("lease_epoch")?, "refunds.lease_epoch")?,
    })
}

/// What [`Store::claim_due`](super::Store::claim_due) leased: payments, then refunds.
pub(super) type Claimed = (Vec<Leased<PaymentRecord>>, Vec<Leased<RefundRecord>>);

/// What a claim leased, from its rows (those of [`PAYMENT_COLUMNS`], then those of
/// [`REFUND_COLUMNS`]), each with what its lease has left (`remaining`), soonest next action
/// first.
pub(super) fn claimed<R: Columns>(
    mut rows: Vec<Vec<R>>,
    remaining: impl Fn(&R) -> Result<Duration, StoreError>,
) -> Result<Claimed, StoreError> {
    let refunds = rows.pop().unwrap_or_default();
    let payments = rows.pop().unwrap_or_default();
    let mut payments = leased(&payments, payment_from_row, &remaining)?;
    payments.sort_by_key(|leased| leased.record.next_action_at);
    let mut refunds = leased(&refunds, refund_from_row, &remaining)?;
    refunds.sort_by_key(|leased| leased.record.next_action_at);
    Ok((payments, refunds))
}

fn leased<R, T>(
    rows: &[R],
    read: impl Fn(&R) -> Result<T, StoreError>,
    remaining: impl Fn(&R) -> Result<Duration, StoreError>,
) -> Result<Vec<Leased<T>>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(Leased {
                record: read(row)?,
                remaining: remaining(row)?,
            })
        })
        .collect()
}

/// Reads a row of [`TERMINAL_COLUMNS`].
pub(super) fn terminal_from_row(row: &impl Columns) -> Result<TerminalRecord, StoreError> {
    Ok(TerminalRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        store_id: row.text("store_id")?,
        token_hash: row.text("token_hash")?,
        created_at: Millis(row.integer("created_at")?),
        revoked_at: row.optional_integer("revoked_at")?.map(Millis),
        role: {
            let role = row.text("role")?;
            Role::parse(&role).ok_or(StoreError::Corrupt {
                column: "terminals.role",
                value: role,
            })?
        },
    })
}

/// The merchant fields of a payment or refund row (`column` names its `mch_id` in errors).
/// Rows written before stores existed have none until the proxy's first start fills them in
/// ([`Store::adopt_unbound_rows`](super::Store::adopt_unbound_rows)).
fn merchant_from_row(row: &impl Columns, column: &'static str) -> Result<MerchantIds, StoreError> {
    match (row.optional_text("appid")?, row.optional_text("mch_id")?) {
        (Some(appid), Some(mch_id)) => Ok(MerchantIds {
            appid,
            mch_id,
            sub_appid: row.optional_text("sub_appid")?,
            sub_mch_id: row.optional_text("sub_mch_id")?,
        }),
        _ => Err(StoreError::Corrupt {
            column,
            value: "NULL (a row from before stores, not yet adopted at start)".to_owned(),
        }),
    }
}

/// Reads a row of [`STORE_COLUMNS`].
pub(super) fn store_from_row(row: &impl Columns) -> Result<StoreRecord, StoreError> {
    Ok(StoreRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        account: row.text("account")?,
        sub_mch_id: row.optional_text("sub_mch_id")?,
        sub_appid: row.optional_text("sub_appid")?,
        address: row.optional_text("address")?,
        created_at: Millis(row.integer("created_at")?),
        disabled_at: row.optional_integer("disabled_at")?.map(Millis),
    })
}

/// Reads a row of [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &impl Columns) -> Result<PaymentEvent, StoreError> {
    Ok(PaymentEvent {
        payment_id: row.text("payment_id")?,
        at: Millis(row.integer("at")?),
        from_state: row
            .optional_text("from_state")?
            .as_deref()
            .map(parse_payment_state)
            .transpose()?,
        to_state: parse_payment_state(&row.text("to_state")?)?,
        detail: row.text("detail")?,
        lease_owner: row.optional_text("lease_owner")?,
        lease_epoch: row
            .optional_integer("lease_epoch")?
            .map(|epoch| u64::try_from(epoch).unwrap_or(0)),
    })
}

/// Binds a new payment's columns in the order of [`PAYMENT_IMMUTABLE_COLUMNS`], its business
/// day as `business_day` (each database keeps a day in its own type).
pub(super) fn bind_immutable<'q, DB, Day>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    payment: &'q PaymentRecord,
    business_day: Day,
) -> Result<Query<'q, DB, <DB as Database>::Arguments<'q>>, StoreError>
where
    DB: Database,
    Day: 'q + Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let query = query
        .bind(payment.id.as_str())
        .bind(payment.attempt_id.as_str())
        .bind(payment.terminal_id.as_str())
        .bind(payment.out_trade_no.as_str())
        .bind(fen_to_i64(payment.amount_fen, "amount_fen")?)
        .bind(payment.auth_code_last4.as_str())
        .bind(payment.created_at.0)
        .bind(business_day)
        .bind(payment.auth_code_fingerprint.as_deref());
    Ok(bind_merchant(query, &payment.store_id, &payment.merchant))
}

/// Binds a payment's mutable columns in the order of [`PAYMENT_MUTABLE_COLUMNS`], with the
/// version and update time to store.
pub(super) fn bind_mutable<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    payment: &'q PaymentRecord,
    version: u64,
    updated_at: Millis,
) -> Result<Query<'q, DB, <DB as Database>::Arguments<'q>>, StoreError>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    let pending = payment.pending_failure.as_ref();
    Ok(query
        .bind(payment.auth_code.as_ref().map(AuthCode::expose))
        .bind(payment.description.as_str())
        .bind(payment.state.as_str())
        .bind(u64_to_i64(version, "version")?)
        .bind(payment.maybe_sent)
        .bind(i64::from(payment.micropay_attempts))
        .bind(i64::from(payment.query_count))
        .bind(i64::from(payment.reverse_count))
        .bind(payment.cancel_requested)
        .bind(payment.seen_paid)
        .bind(payment.money_returned)
        .bind(payment.transaction_id.as_deref())
        .bind(payment.failure_code.as_deref())
        .bind(payment.failure_message.as_deref())
        .bind(payment.attention_reason.as_deref())
        .bind(payment.submitted_at.map(|at| at.0))
        .bind(payment.next_action_at.map(|at| at.0))
        .bind(updated_at.0)
        .bind(payment.settled_at.map(|at| at.0))
        .bind(payment.next_action.map(Action::as_str))
        .bind(pending.map(|failure| failure.code.as_str()))
        .bind(pending.map(|failure| failure.message.as_str()))
        .bind(i64::from(payment.reverse_attempts))
        .bind(i64::from(payment.not_sent_attempts))
        .bind(payment.close_state.map(CloseState::as_str))
        .bind(payment.time_expire.map(|at| at.0))
        .bind(payment.wechat_paid_at.map(|at| at.0)))
}

/// Binds the columns of a new refund in the order of [`REFUND_COLUMNS`], all but the
/// [`LEASE_COLUMNS`], which each store binds after them.
pub(super) fn bind_refund<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    refund: &'q RefundRecord,
) -> Result<Query<'q, DB, <DB as Database>::Arguments<'q>>, StoreError>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
{
    let query = query
        .bind(refund.id.as_str())
        .bind(refund.payment_id.as_str())
        .bind(refund.refund_attempt_id.as_str())
        .bind(refund.out_refund_no.as_str())
        .bind(fen_to_i64(refund.amount_fen, "amount_fen")?)
        .bind(refund.reason.as_deref())
        .bind(refund_state_name(refund.state))
        .bind(u64_to_i64(refund.version, "version")?)
        .bind(refund.wechat_refund_id.as_deref())
        .bind(refund.failure_code.as_deref())
        .bind(refund.failure_message.as_deref())
        .bind(i64::from(refund.attempts))
        .bind(refund.next_action_at.map(|at| at.0))
        .bind(refund.created_at.0)
        .bind(refund.updated_at.0)
        .bind(refund.applied_at.map(|at| at.0));
    Ok(bind_merchant(query, &refund.store_id, &refund.merchant)
        .bind(refund.wechat_refunded_at.map(|at| at.0)))
}

/// Binds the columns a payment and a refund both carry: `store_id, appid, mch_id,
/// sub_appid, sub_mch_id`, in that order.
fn bind_merchant<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    store_id: &'q str,
    merchant: &'q MerchantIds,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    query
        .bind(store_id)
        .bind(merchant.appid.as_str())
        .bind(merchant.mch_id.as_str())
        .bind(merchant.sub_appid.as_deref())
        .bind(merchant.sub_mch_id.as_deref())
}

/// Which field makes `requested` a different payment from `existing`, if any. The payment
/// code is compared in full while both records still hold it; once the engine has wiped the
/// stored code, by fingerprint; for rows older than the fingerprint, by last four digits.
pub(super) fn payment_difference(
    existing: &PaymentRecord,
    requested: &PaymentRecord,
) -> Option<&'static str> {
    let same_code = match (
        (&existing.auth_code, &existing.auth_code_fingerprint),
        (&requested.auth_code, &requested.auth_code_fingerprint),
    ) {
        ((Some(stored), _), (Some(given), _)) => stored == given,
        ((_, Some(stored)), (_, Some(given))) => stored == given,
        _ => existing.auth_code_last4 == requested.auth_code_last4,
    };
    if existing.amount_fen != requested.amount_fen {
        Some("amount_fen")
    } else if !same_code {
        Some("auth_code")
    } else if existing.terminal_id != requested.terminal_id {
        Some("terminal_id")
    } else {
        None
    }
}

/// Which field makes `requested` a different refund from `existing`, if any.
pub(super) fn refund_difference(
    existing: &RefundRecord,
    requested: &RefundRecord,
) -> Option<&'static str> {
    if existing.payment_id != requested.payment_id {
        Some("payment_id")
    } else if existing.amount_fen != requested.amount_fen {
        Some("amount_fen")
    } else {
        None
    }
}

/// What an idempotent insert answers when `existing` holds the key already: the stored
/// record if the contents match, else [`StoreError::Conflict`] naming the first difference.
pub(super) fn existing_or_conflict<T>(
    existing: T,
    differs: Option<&'static str>,
    entity: &'static str,
    attempt_id: &AttemptId,
) -> Result<super::InsertOutcome<T>, StoreError> {
    match differs {
        None => Ok(super::InsertOutcome::Existing(existing)),
        Some(differs) => Err(StoreError::Conflict {
            entity,
            attempt_id: attempt_id.to_string(),
            differs,
        }),
    }
}

/// Turns a unique-constraint failure into [`StoreError::AlreadyExists`]; other errors pass
/// through.
pub(super) fn unique_violation_as_exists(
    error: sqlx::Error,
    entity: &'static str,
    key: &str,
) -> StoreError {
    match &error {
        sqlx::Error::Database(database_error) if database_error.is_unique_violation() => {
            StoreError::AlreadyExists {
                entity,
                key: key.to_owned(),
            }
        }
        _ => StoreError::Database(error),
    }
}

/// Whether the refund cap allows `requested` on top of `already_refunded`.
pub(super) fn check_refund_cap(
    payment_amount: i64,
    already_refunded: i64,
    requested: Fen,
) -> Result<(), StoreError> {
    let payment_amount = i64_to_fen(payment_amount, "payments.amount_fen")?;
    let already_refunded = i64_to_fen(already_refunded, "refunds.amount_fen")?;
    let fits = already_refunded
        .checked_add(requested)
        .is_some_and(|total| total <= payment_amount);
    if fits {
        Ok(())
    } else {
        Err(StoreError::RefundExceedsPayment {
            payment_amount,
            already_refunded,
            requested,
        })
    }
}

/// Reads a state name.
pub(super) fn parse_payment_state(name: &str) -> Result<PaymentState, StoreError> {
    PaymentState::parse(name).ok_or_else(|| StoreError::Corrupt {
        column: "state",
        value: name.to_owned(),
    })
}

fn counter(row: &impl Columns, column: &'static str) -> Result<u32, StoreError> {
    let value = row.integer(column)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        column,
        value: value.to_string(),
    })
}

/// A `u64` (a version) as the database's signed 64-bit integer.
pub(super) fn u64_to_i64(value: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field })
}

/// An amount as the database's signed 64-bit integer.
pub(super) fn fen_to_i64(amount: Fen, field: &'static str) -> Result<i64, StoreError> {
    u64_to_i64(amount.get(), field)
}

/// A stored count or version, which must not be negative.
pub(super) fn i64_to_u64(value: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        column,
        value: value.to_string(),
    })
}

/// A stored amount, which must not be negative.
pub(super) fn i64_to_fen(value: i64, column: &'static str) -> Result<Fen, StoreError> {
    i64_to_u64(value, column).map(Fen)
}

// ---- Manager approvals (migration 0011) ----

/// Every column of `managers`, in the order the stores insert them.
pub(super) const MANAGER_COLUMNS: &str =
    "id, name, store_id, pin_hash, failed_attempts, locked_until, created_at, removed_at";

/// Every column of `approved_actions` but its id.
pub(super) const APPROVED_ACTION_COLUMNS: &str =
    "at, manager_id, manager_name, terminal_id, action, target, reason";

/// Reads a row of [`MANAGER_COLUMNS`].
pub(super) fn manager_from_row(row: &impl Columns) -> Result<ManagerRecord, StoreError> {
    Ok(ManagerRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        store_id: row.optional_text("store_id")?,
        pin_hash: row.text("pin_hash")?,
        failed_attempts: u32::try_from(row.integer("failed_attempts")?).map_err(|_| {
            StoreError::Corrupt {
                column: "managers.failed_attempts",
                value: "out of range".to_owned(),
            }
        })?,
        locked_until: row.optional_integer("locked_until")?.map(Millis),
        created_at: Millis(row.integer("created_at")?),
        removed_at: row.optional_integer("removed_at")?.map(Millis),
    })
}

/// Reads an approval's `action` column.
pub(super) fn approval_action(text: String) -> Result<ApprovalAction, StoreError> {
    ApprovalAction::parse(&text).ok_or(StoreError::Corrupt {
        column: "action",
        value: text,
    })
}

/// Reads a row of [`APPROVED_ACTION_COLUMNS`].
pub(super) fn approved_action_from_row(row: &impl Columns) -> Result<ApprovedAction, StoreError> {
    Ok(ApprovedAction {
        at: Millis(row.integer("at")?),
        manager_id: row.text("manager_id")?,
        manager_name: row.text("manager_name")?,
        terminal_id: row.text("terminal_id")?,
        action: approval_action(row.text("action")?)?,
        target: row.text("target")?,
        reason: row.optional_text("reason")?,
    })
}

/// Milliseconds of `duration` for adding to a stored time.
pub(super) fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        let mut names: Vec<String> = list.split(',').map(|name| name.trim().to_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_insert_and_update_column_lists_cover_every_column_once() {
        let mut written = names(PAYMENT_IMMUTABLE_COLUMNS);
        written.extend(names(PAYMENT_MUTABLE_COLUMNS));
        written.extend(names(LEASE_COLUMNS));
        written.sort();
        assert_eq!(written, names(PAYMENT_COLUMNS));
    }

    #[test]
    fn the_refund_columns_end_with_the_lease_columns() {
        assert!(REFUND_COLUMNS.ends_with(LEASE_COLUMNS));
    }

    #[test]
    fn the_settled_states_sql_matches_the_api_and_both_migrations() {
        let settled: Vec<String> = PaymentState::ALL
            .into_iter()
            .filter(|state| state.is_settled())
            .map(|state| format!("'{}'", state.as_str()))
            .collect();
        assert_eq!(SETTLED_STATES_SQL, format!("({})", settled.join(", ")));
        for migration in [
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/postgres/0001_init.sql"),
        ] {
            assert!(migration.contains(&format!("WHERE state NOT IN {SETTLED_STATES_SQL}")));
        }
        for migration in [
            include_str!("../../migrations/sqlite/0005_refund_queue.sql"),
            include_str!("../../migrations/postgres/0005_refund_queue.sql"),
        ] {
            assert!(migration.contains(&format!("WHERE state IN {UNFINISHED_REFUND_STATES_SQL}")));
        }
    }
}
