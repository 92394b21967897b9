//! What a day's reconciliation found: the serialisable report the proxy stores and the
//! back office shows (docs/books.md §3, §4), and the bodies of the books HTTP API
//! (`/api/v1/books/…`): the day list, a day's detail with each
//! mismatch's id and status, the note that explains a mismatch, the banner's counts.

use crate::money::Fen;
use crate::payments::PaymentState;
use serde::{Deserialize, Serialize};

/// What the owner can do about a mismatch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerAction {
    /// Ask WeChat now (orderquery or refundquery) and settle the record from its verified
    /// reply; the bill alone never changes a record.
    QueryNow,
    /// Give the customer's money back with a real refund.
    Refund,
    /// Close the item with a note saying why it is not a problem.
    MarkExplained,
}

/// A difference between WeChat's bill and the store, in plain words.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchClass {
    /// WeChat took the customer's money, but this store has the payment as not paid (or has
    /// no such payment).
    PaidAtWechatNotHere,
    /// This store has the payment as paid, but WeChat's bill does not show the money.
    PaidHereNotAtWechat,
    /// Both sides have the payment or refund, with different amounts.
    AmountsDiffer,
    /// This store has a refund WeChat accepted that the bill does not list.
    RefundHereNotInBill,
    /// The bill lists a refund this store did not make, or has as failed.
    RefundInBillNotHere,
}

impl MismatchClass {
    /// The sentence the owner reads.
    pub fn describe(self) -> &'static str {
        match self {
            MismatchClass::PaidAtWechatNotHere => "paid at WeChat but not paid here",
            MismatchClass::PaidHereNotAtWechat => "paid here but not at WeChat",
            MismatchClass::AmountsDiffer => "amounts differ",
            MismatchClass::RefundHereNotInBill => "a refund here is not in the bill",
            MismatchClass::RefundInBillNotHere => "a refund in the bill is not here",
        }
    }

    /// What the owner can do, first choice first.
    pub fn actions(self) -> Vec<OwnerAction> {
        match self {
            MismatchClass::PaidAtWechatNotHere => vec![
                OwnerAction::QueryNow,
                OwnerAction::Refund,
                OwnerAction::MarkExplained,
            ],
            MismatchClass::PaidHereNotAtWechat
            | MismatchClass::AmountsDiffer
            | MismatchClass::RefundHereNotInBill
            | MismatchClass::RefundInBillNotHere => {
                vec![OwnerAction::QueryNow, OwnerAction::MarkExplained]
            }
        }
    }
}

/// One difference the owner must look at.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Which kind.
    pub class: MismatchClass,
    /// [`MismatchClass::describe`].
    pub description: String,
    /// The order.
    pub out_trade_no: String,
    /// The refund, for refund mismatches and refund amounts.
    pub out_refund_no: Option<String>,
    /// The store's amount (the payment's, or the refund's), if the store has the item.
    pub store_amount: Option<Fen>,
    /// The bill's amount, if the bill has the item.
    pub bill_amount: Option<Fen>,
    /// The store's payment state, if the store has the payment.
    pub store_state: Option<PaymentState>,
    /// The bill's `交易状态`, if the bill has the item.
    pub bill_state: Option<String>,
    /// When: the bill's `交易时间`, else the store's time in the shop's offset.
    pub time: String,
    /// The day whose run carried the item over to this one, if it was carried.
    pub carried_from: Option<String>,
    /// [`MismatchClass::actions`].
    pub actions: Vec<OwnerAction>,
}

/// A fact the bill proves that moves no money, to be written onto the record.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The order.
    pub out_trade_no: String,
    /// "money was taken and returned": the bill lists the order as `REVOKED` (paid, then
    /// reversed) while the store has it as not paid.
    pub fact: String,
    /// The amount taken and returned.
    pub amount: Fen,
    /// The store's state of the payment.
    pub store_state: PaymentState,
    /// Whether the record already says the money was returned (then nothing to write).
    pub already_recorded: bool,
}

/// A bill row Paycode never made: another trade type of the same merchant (JSAPI, NATIVE,
/// …) or another sub-merchant of the same provider. Listed apart, never a mismatch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotFromPaycode {
    /// `交易时间`.
    pub time: String,
    /// `商户订单号`.
    pub out_trade_no: String,
    /// `商户退款单号`, for a refund row.
    pub out_refund_no: Option<String>,
    /// `交易类型`.
    pub trade_type: String,
    /// `交易状态`.
    pub trade_state: String,
    /// `商户号`.
    pub mch_id: String,
    /// `特约商户号` / `子商户号`.
    pub sub_mch_id: String,
    /// The payment's or the refund's amount.
    pub amount: Fen,
    /// Why it is not Paycode's, in plain words.
    pub reason: String,
}

/// Whether WeChat had a bill for the day.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    /// The bill was downloaded and read.
    Received,
    /// WeChat has no bill for the day and the store has no trade that day either: an empty
    /// day.
    NoBillNoTrades,
    /// WeChat has no bill for the day but the store has trades that day: reported, and the
    /// store's items are listed as mismatches against an empty bill.
    NoBillButStoreHasTrades,
}

/// Counts and sums of one side.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideTotals {
    /// Paid payments.
    pub payments: u64,
    /// Their amounts.
    pub payment_fen: Fen,
    /// Refunds (accepted by WeChat).
    pub refunds: u64,
    /// Their amounts.
    pub refund_fen: Fen,
}

impl SideTotals {
    /// Counts one more payment of `amount`.
    pub fn add_payment(&mut self, amount: Fen) {
        self.payments += 1;
        self.payment_fen = Fen(self.payment_fen.0.saturating_add(amount.0));
    }

    /// Counts one more refund of `amount`.
    pub fn add_refund(&mut self, amount: Fen) {
        self.refunds += 1;
        self.refund_fen = Fen(self.refund_fen.0.saturating_add(amount.0));
    }
}

/// A store payment paid near the end of the day that the day's bill did not list, looked
/// for again in the next day's bill.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CarriedPayment {
    /// The order.
    pub out_trade_no: String,
    /// The store's amount.
    pub amount: Fen,
    /// The day it was carried from (`YYYY-MM-DD`).
    pub from_day: String,
    /// When it was paid, by the store's record, in the shop's offset.
    pub time: String,
}

/// A store refund accepted near the end of the day that the day's bill did not list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CarriedRefund {
    /// The refund.
    pub out_refund_no: String,
    /// Its order.
    pub out_trade_no: String,
    /// The store's amount.
    pub amount: Fen,
    /// The day it was carried from (`YYYY-MM-DD`).
    pub from_day: String,
    /// When it was accepted, by the store's record, in the shop's offset.
    pub time: String,
}

/// What one day's run hands to the next day's run of the same account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarryOver {
    /// Paid here, not yet in a bill: a mismatch only if the next bill lacks them too.
    pub payments: Vec<CarriedPayment>,
    /// Accepted here, not yet in a bill.
    pub refunds: Vec<CarriedRefund>,
    /// Orders the bill listed a day before the store's own day for them (the store's clock
    /// put the success after midnight): already matched, not to be looked for again.
    pub matched_early_payments: Vec<String>,
    /// Refunds matched a day early, the same way.
    pub matched_early_refunds: Vec<String>,
}

/// One day's reconciliation of one merchant account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayReport {
    /// The business day (`YYYY-MM-DD`).
    pub day: String,
    /// The account's `mch_id`.
    pub mch_id: String,
    /// Whether there was a bill.
    pub bill_status: BillStatus,
    /// The store's side: payments paid and refunds accepted that day.
    pub store_totals: SideTotals,
    /// The bill's side, Paycode's rows only (`SUCCESS` payments and `REFUND` rows).
    pub bill_totals: SideTotals,
    /// The bill's own summary row: `总交易单数`, all rows including those not from Paycode.
    pub bill_summary_count: Option<u64>,
    /// The summary's `应结订单总金额` (`总交易额` in the older format).
    pub bill_summary_settlement_fen: Option<Fen>,
    /// The summary's `退款总金额`.
    pub bill_summary_refund_fen: Option<Fen>,
    /// Payments found on both sides with the same amount.
    pub matched_payments: u64,
    /// Refunds found on both sides with the same amount.
    pub matched_refunds: u64,
    /// The differences, sorted.
    pub mismatches: Vec<Mismatch>,
    /// Facts to write onto records, sorted.
    pub marks: Vec<Mark>,
    /// Rows Paycode never made, sorted.
    pub not_from_paycode: Vec<NotFromPaycode>,
    /// What the next day's run must look for.
    pub carried_to_next_day: CarryOver,
}

// ---------------------------------------------------------------------------------------
// The books HTTP API (`/api/v1/books/…`): what the back office asks and is answered. Every
// endpoint needs a manager or owner terminal and an approval for `books`.

/// Where one day of one merchant account stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// No reconciliation has run for the day yet (the day is not over, or the run has not
    /// happened).
    Unreconciled,
    /// The run found that WeChat is still making the day's bill (`Bill Creating`); it is
    /// retried later.
    WaitingForBill,
    /// A report is stored for the day.
    Reconciled,
    /// The last run failed (a download or store error other than "not ready"); it is
    /// tried again, and `detail` says why.
    Failed,
}

impl DayStatus {
    /// The wire and stored name, e.g. `waiting_for_bill`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Unreconciled => "unreconciled",
            DayStatus::WaitingForBill => "waiting_for_bill",
            DayStatus::Reconciled => "reconciled",
            DayStatus::Failed => "failed",
        }
    }

    /// The status named `name` ([`DayStatus::as_str`]).
    pub fn parse(name: &str) -> Option<DayStatus> {
        [
            DayStatus::Unreconciled,
            DayStatus::WaitingForBill,
            DayStatus::Reconciled,
            DayStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }
}

/// One row of `GET /api/v1/books/days`: a day of one merchant account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksDaySummary {
    /// The business day (`YYYY-MM-DD`, in the shop's UTC offset).
    pub day: String,
    /// The account's `mch_id`.
    pub mch_id: String,
    /// Where the day stands.
    pub status: DayStatus,
    /// The store's side (payments paid and refunds accepted that day), once reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_totals: Option<SideTotals>,
    /// The bill's side (Paycode's rows only), once reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_totals: Option<SideTotals>,
    /// Whether there was a bill, once reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_status: Option<BillStatus>,
    /// Mismatches still open (neither resolved, explained, refunded nor cleared).
    pub open_mismatches: u64,
    /// Why the run waits or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/v1/books/days?from=D&to=D`: the days from `from` to `to` (inclusive), newest
/// first, one row per day and merchant account of the caller's store (every store's for an
/// owner terminal).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksDayList {
    /// The first day (`YYYY-MM-DD`).
    pub from: String,
    /// The last day (`YYYY-MM-DD`).
    pub to: String,
    /// The rows.
    pub days: Vec<BooksDaySummary>,
}

/// Where a mismatch stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchStatus {
    /// Nobody has settled it yet: the owner must look at it.
    Open,
    /// A query to WeChat ("query now") settled the record from WeChat's verified reply,
    /// and the two sides now agree.
    ResolvedByQuery,
    /// A manager closed it with a note saying why it is not a problem.
    Explained,
    /// The customer's money was given back with a real refund.
    Refunded,
    /// A later run of the same day no longer found it: the store or the bill changed.
    Cleared,
}

impl MismatchStatus {
    /// Every status.
    pub const ALL: [MismatchStatus; 5] = [
        MismatchStatus::Open,
        MismatchStatus::ResolvedByQuery,
        MismatchStatus::Explained,
        MismatchStatus::Refunded,
        MismatchStatus::Cleared,
    ];

    /// The wire and stored name, e.g. `resolved_by_query`.
    pub fn as_str(self) -> &'static str {
        match self {
            MismatchStatus::Open => "open",
            MismatchStatus::ResolvedByQuery => "resolved_by_query",
            MismatchStatus::Explained => "explained",
            MismatchStatus::Refunded => "refunded",
            MismatchStatus::Cleared => "cleared",
        }
    }

    /// Whether the owner still has to act.
    pub fn is_open(self) -> bool {
        self == MismatchStatus::Open
    }

    /// The status named `name` ([`MismatchStatus::as_str`]).
    pub fn parse(name: &str) -> Option<MismatchStatus> {
        MismatchStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// A stored mismatch: what the run found ([`Mismatch`]), its id for the actions, and where
/// it stands now.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchEntry {
    /// The id the actions take (`POST /api/v1/books/mismatches/{id}/…`).
    pub id: String,
    /// Where it stands.
    pub status: MismatchStatus,
    /// What the run found.
    pub mismatch: Mismatch,
    /// The store's payment the mismatch is about, if the store has it: its id for the
    /// refund (`POST /api/v1/payments/{id}/refunds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// What the owner can do now: the class's actions while open, none once settled.
    pub actions: Vec<OwnerAction>,
    /// The manager's note, for an explained mismatch; for one resolved by query, what
    /// WeChat's verified reply said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who settled it: the approving manager and terminal, or the run that did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_by: Option<String>,
    /// When it was settled (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<String>,
}

/// One merchant account's part of `GET /api/v1/books/days/{date}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDay {
    /// The account's `mch_id`.
    pub mch_id: String,
    /// Where the day stands for this account.
    pub status: DayStatus,
    /// Why the run waits or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stored report, once reconciled. Its `mismatches` are as the run found them;
    /// [`AccountDay::mismatches`] has the same items with their ids and statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DayReport>,
    /// The report's mismatches, each with its id and status, in the report's order.
    pub mismatches: Vec<MismatchEntry>,
    /// When the report was stored (RFC 3339, UTC), once reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<String>,
}

/// `GET /api/v1/books/days/{date}`: the day of every merchant account of the caller's
/// store (every store's for an owner terminal), and the week before it, so that one
/// approval shows a page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksDayDetail {
    /// The business day (`YYYY-MM-DD`).
    pub day: String,
    /// One entry per merchant account.
    pub accounts: Vec<AccountDay>,
    /// The seven days ending with `day`, as `GET /api/v1/books/days` lists them.
    pub recent: BooksDayList,
}

/// The longest note [`ExplainMismatch`] takes, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// The body of `POST /api/v1/books/mismatches/{id}/explain`: closes an open mismatch with
/// a note saying why it is not a problem. Moves no money.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainMismatch {
    /// Why the difference is not a problem: 1 to 200 characters, not only spaces, no
    /// control characters; otherwise 400 `INVALID_REQUEST` naming `note`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub note: String,
}

/// Why a note was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Empty, or only spaces.
    #[error("write a note saying why the difference is not a problem")]
    Empty,
    /// Longer than [`MAX_NOTE_CHARS`].
    #[error("must be at most 200 characters")]
    TooLong,
    /// A control character (a line break, a tab).
    #[error("must not contain control characters such as line breaks")]
    ControlCharacter,
}

impl ExplainMismatch {
    /// The field [`ExplainMismatch::check`]'s errors name.
    pub const FIELD: &'static str = "note";

    /// Checks the note: what the proxy refuses, the app refuses before sending.
    pub fn check(&self) -> Result<(), NoteError> {
        if self.note.trim().is_empty() {
            Err(NoteError::Empty)
        } else if self.note.chars().count() > MAX_NOTE_CHARS {
            Err(NoteError::TooLong)
        } else if self.note.chars().any(char::is_control) {
            Err(NoteError::ControlCharacter)
        } else {
            Ok(())
        }
    }
}

/// The answer to `POST /api/v1/books/mismatches/{id}/query`: WeChat was asked about the
/// order (or refund) and the record was settled from its verified reply only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchQueried {
    /// The mismatch as it stands after the query: `resolved_by_query` when the two sides
    /// now agree, still `open` otherwise.
    pub mismatch: MismatchEntry,
    /// What WeChat's verified reply said, in plain words (`WeChat says the order is paid;
    /// the payment is now paid`).
    pub message: String,
}

/// `GET /api/v1/books/status`: what the manager terminal's banner says, and the day the 对账
/// page opens on. Counts only, so a manager or owner terminal reads it without an approval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksStatus {
    /// The last finished business day (`YYYY-MM-DD`): yesterday in the shop's UTC offset,
    /// the day the 对账 page opens on.
    pub last_day: String,
    /// Finished days of the last week (`YYYY-MM-DD`, oldest first) on which the store took
    /// payments but some account of the store has no stored report.
    pub unreconciled_days: Vec<String>,
    /// Open mismatches over every stored day of the store.
    pub open_mismatches: u64,
}

impl BooksStatus {
    /// Whether the banner shows.
    pub fn needs_attention(&self) -> bool {
        !self.unreconciled_days.is_empty() || self.open_mismatches > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_one_to_two_hundred_characters_without_control_characters() {
        let note = |text: &str| ExplainMismatch {
            note: text.to_owned(),
        };
        assert_eq!(note("").check(), Err(NoteError::Empty));
        assert_eq!(note("   ").check(), Err(NoteError::Empty));
        assert_eq!(note("顾客当场退了现金").check(), Ok(()));
        assert_eq!(note(&"账".repeat(200)).check(), Ok(()));
        assert_eq!(note(&"账".repeat(201)).check(), Err(NoteError::TooLong));
        assert_eq!(note("a\nb").check(), Err(NoteError::ControlCharacter));
        let refused: Result<ExplainMismatch, _> = serde_json::from_str(r#"{"note":"x","extra":1}"#);
        assert!(refused.is_err(), "unknown fields are refused");
    }

    #[test]
    fn statuses_serialise_as_their_wire_names() {
        for status in [
            MismatchStatus::Open,
            MismatchStatus::ResolvedByQuery,
            MismatchStatus::Explained,
            MismatchStatus::Refunded,
            MismatchStatus::Cleared,
        ] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
        for status in [
            DayStatus::Unreconciled,
            DayStatus::WaitingForBill,
            DayStatus::Reconciled,
            DayStatus::Failed,
        ] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
    }
}
