//! What a day's reconciliation found: the serialisable report the proxy stores and the
//! back office shows (docs/books.md §3, §4).

use crate::money::Fen;
use crate::payments::PaymentState;
use serde::{Deserialize, Serialize};

/// What the owner can do about a mismatch.
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
