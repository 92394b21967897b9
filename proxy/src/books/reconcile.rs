//! The two-pass match of one account's bill for one day against the store
//! (docs/books.md §3).
//!
//! Pass 1 is store-driven: every payment the store has as paid that day, and every refund
//! WeChat accepted that day, is looked for in the bill by `out_trade_no` / `out_refund_no`
//! and compared by amount. Pass 2 is bill-driven: every row of the bill that pass 1 did not
//! use is looked for in the store. Items the store has near the day's end that the bill
//! lacks are carried to the next day's run rather than reported, because WeChat dates a row
//! by its own success or acceptance time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::NaiveDate;
use paycode_api::{Fen, PaymentState, payments::RefundState};
use wxpay::messages::{Bill, BillRow};

use super::day::BusinessDay;
use crate::store::records::Millis;
use paycode_api::books::{
    BillStatus, CarriedPayment, CarriedRefund, CarryOver, DayReport, Mark, Mismatch, MismatchClass,
    NotFromPaycode, SideTotals,
};

/// The only trade type Paycode makes (付款码, docs/wechat-pay.md §3.7).
pub const MICROPAY: &str = "MICROPAY";
/// `交易状态` of a payment row.
pub const SUCCESS: &str = "SUCCESS";
/// `交易状态` of a refund row.
pub const REFUND: &str = "REFUND";
/// `交易状态` of an order paid and then reversed.
pub const REVOKED: &str = "REVOKED";

/// The tunable parts of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The shop's days.
    pub days: BusinessDay,
    /// How close to the day's end a store item must be to be carried to the next day
    /// instead of reported when the bill lacks it. Default 10 minutes: the store's time is
    /// its own clock at the moment it learnt of the success, which can trail WeChat's.
    pub edge: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            days: BusinessDay::default(),
            edge: Duration::from_secs(600),
        }
    }
}

/// Which bill rows belong to this deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountScope {
    /// The account's `mch_id` (the provider's, in provider mode).
    pub mch_id: String,
    /// In provider mode, the `sub_mch_id`s of this deployment's stores on the account;
    /// empty for a direct merchant.
    pub sub_mch_ids: BTreeSet<String>,
}

impl AccountScope {
    /// `None` when the row is Paycode's, else why not, in plain words.
    fn foreign_reason(&self, row: &BillRow) -> Option<String> {
        if !row.mch_id.is_empty() && row.mch_id != self.mch_id {
            return Some(format!("another merchant account ({})", row.mch_id));
        }
        if row.trade_type != MICROPAY {
            return Some(format!(
                "trade type {}, not a payment-code sale",
                row.trade_type
            ));
        }
        let sub = row.sub_mch_id.as_str();
        let direct_row = sub.is_empty() || sub == "0";
        match (self.sub_mch_ids.is_empty(), direct_row) {
            (true, true) => None,
            (true, false) => Some(format!("sub-merchant {sub} on a direct account")),
            (false, true) => Some("the provider's own sale, no sub-merchant".to_owned()),
            (false, false) if self.sub_mch_ids.contains(sub) => None,
            (false, false) => Some(format!(
                "sub-merchant {sub}, not one of this deployment's stores"
            )),
        }
    }
}

/// A payment as the store knows it; the proxy fills it from its payment record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorePayment {
    /// The order number sent to WeChat.
    pub out_trade_no: String,
    /// The amount.
    pub amount: Fen,
    /// The state.
    pub state: PaymentState,
    /// When the payment was created.
    pub created_at: Millis,
    /// When it was paid: WeChat's success time (the record's `wechat_paid_at`, from
    /// `time_end`) when known, else when the store learnt it (its `settled_at`); `None` if
    /// not paid (docs/books.md §2).
    pub paid_at: Option<Millis>,
    /// For a cancelled payment: whether the record already says money was returned.
    pub money_returned: bool,
}

impl StorePayment {
    fn time(&self) -> Millis {
        self.paid_at.unwrap_or(self.created_at)
    }
}

/// A refund as the store knows it; the proxy fills it from its refund record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRefund {
    /// The refund number sent to WeChat.
    pub out_refund_no: String,
    /// Its payment's order number.
    pub out_trade_no: String,
    /// The amount.
    pub amount: Fen,
    /// The state: `processing` and `succeeded` mean WeChat accepted it.
    pub state: RefundState,
    /// When WeChat took it: WeChat's success time (the record's `wechat_refunded_at`, from
    /// `refund_success_time_$n`) when known, else when the proxy saw it accepted (its
    /// `applied_at`); `None` if never accepted (docs/books.md §2).
    pub accepted_at: Option<Millis>,
    /// When the refund was created.
    pub created_at: Millis,
}

impl StoreRefund {
    fn accepted(&self) -> bool {
        matches!(self.state, RefundState::Processing | RefundState::Succeeded)
    }

    fn time(&self) -> Millis {
        self.accepted_at.unwrap_or(self.created_at)
    }
}

/// What WeChat answered for the day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BillInput {
    /// The parsed `ALL` bill.
    Bill(Bill),
    /// `No Bill Exist` (error code 20002 once the bill should exist).
    NoBill,
}

/// Everything one run needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileInput {
    /// The business day.
    pub day: NaiveDate,
    /// The account.
    pub scope: AccountScope,
    /// WeChat's bill for the day.
    pub bill: BillInput,
    /// The store's payments that could appear in the day's bill: at least those created
    /// from the start of the day before to the end of this day, plus any the bill names.
    pub payments: Vec<StorePayment>,
    /// The store's refunds that could appear, chosen the same way.
    pub refunds: Vec<StoreRefund>,
    /// The previous day's [`DayReport::carried_to_next_day`].
    pub carried_in: CarryOver,
}

/// Reconciles one account's bill for one day against the store. Pure and deterministic:
/// the same input gives the same report.
pub fn reconcile(input: &ReconcileInput, rules: &Rules) -> DayReport {
    Run::new(input, rules).finish()
}

struct Run<'a> {
    input: &'a ReconcileInput,
    rules: &'a Rules,
    payments: BTreeMap<&'a str, &'a StorePayment>,
    refunds: BTreeMap<&'a str, &'a StoreRefund>,
    /// Paycode's payment rows (not `REFUND`) by `out_trade_no`, not yet used.
    payment_rows: BTreeMap<&'a str, &'a BillRow>,
    /// Paycode's refund rows by `out_refund_no`, not yet used.
    refund_rows: BTreeMap<&'a str, &'a BillRow>,
    report: DayReport,
}

impl<'a> Run<'a> {
    fn new(input: &'a ReconcileInput, rules: &'a Rules) -> Run<'a> {
        let mut run = Run {
            input,
            rules,
            payments: input
                .payments
                .iter()
                .map(|payment| (payment.out_trade_no.as_str(), payment))
                .collect(),
            refunds: input
                .refunds
                .iter()
                .map(|refund| (refund.out_refund_no.as_str(), refund))
                .collect(),
            payment_rows: BTreeMap::new(),
            refund_rows: BTreeMap::new(),
            report: DayReport {
                day: input.day.format("%Y-%m-%d").to_string(),
                mch_id: input.scope.mch_id.clone(),
                bill_status: BillStatus::Received,
                store_totals: SideTotals::default(),
                bill_totals: SideTotals::default(),
                bill_summary_count: None,
                bill_summary_settlement_fen: None,
                bill_summary_refund_fen: None,
                matched_payments: 0,
                matched_refunds: 0,
                mismatches: Vec::new(),
                marks: Vec::new(),
                not_from_paycode: Vec::new(),
                carried_to_next_day: CarryOver::default(),
            },
        };
        run.read_bill();
        run
    }

    fn read_bill(&mut self) {
        let BillInput::Bill(bill) = &self.input.bill else {
            let store_has_trades = self.due_payments().next().is_some()
                || self.due_refunds().next().is_some()
                || !self.input.carried_in.payments.is_empty()
                || !self.input.carried_in.refunds.is_empty();
            self.report.bill_status = if store_has_trades {
                BillStatus::NoBillButStoreHasTrades
            } else {
                BillStatus::NoBillNoTrades
            };
            return;
        };
        self.report.bill_summary_count = Some(bill.summary.trade_count);
        self.report.bill_summary_settlement_fen = Some(bill.summary.settlement_total_fee);
        self.report.bill_summary_refund_fen = Some(bill.summary.refund_fee);
        for row in &bill.rows {
            let is_refund = row.trade_state == REFUND;
            if let Some(reason) = self.input.scope.foreign_reason(row) {
                self.report.not_from_paycode.push(NotFromPaycode {
                    time: row.trade_time.clone(),
                    out_trade_no: row.out_trade_no.clone(),
                    out_refund_no: is_refund.then(|| row.out_refund_no.clone()),
                    trade_type: row.trade_type.clone(),
                    trade_state: row.trade_state.clone(),
                    mch_id: row.mch_id.clone(),
                    sub_mch_id: row.sub_mch_id.clone(),
                    amount: if is_refund {
                        refund_amount(row)
                    } else {
                        payment_amount(row)
                    },
                    reason,
                });
            } else if is_refund {
                self.report.bill_totals.add_refund(refund_amount(row));
                self.refund_rows.insert(row.out_refund_no.as_str(), row);
            } else {
                if row.trade_state != REVOKED {
                    self.report.bill_totals.add_payment(payment_amount(row));
                }
                // Should an order be listed both as paid and as reversed, the reversal is
                // its final state, whatever the rows' order.
                let key = row.out_trade_no.as_str();
                if self
                    .payment_rows
                    .get(key)
                    .is_none_or(|kept| kept.trade_state != REVOKED)
                {
                    self.payment_rows.insert(key, row);
                }
            }
        }
    }

    /// Paid store payments whose day is this day and that no earlier bill matched.
    fn due_payments(&self) -> impl Iterator<Item = &'a StorePayment> + '_ {
        let early = &self.input.carried_in.matched_early_payments;
        self.input.payments.iter().filter(move |payment| {
            payment.state == PaymentState::Paid
                && self.rules.days.day_of(payment.time()) == self.input.day
                && !early.contains(&payment.out_trade_no)
        })
    }

    /// Accepted store refunds whose day is this day and that no earlier bill matched.
    fn due_refunds(&self) -> impl Iterator<Item = &'a StoreRefund> + '_ {
        let early = &self.input.carried_in.matched_early_refunds;
        self.input.refunds.iter().filter(move |refund| {
            refund.accepted()
                && self.rules.days.day_of(refund.time()) == self.input.day
                && !early.contains(&refund.out_refund_no)
        })
    }

    fn near_day_end(&self, at: Millis) -> bool {
        let end = self.rules.days.end_of(self.input.day);
        let edge = i64::try_from(self.rules.edge.as_millis()).unwrap_or(i64::MAX);
        end.0.saturating_sub(at.0) <= edge
    }

    fn finish(mut self) -> DayReport {
        self.store_payments_pass();
        self.store_refunds_pass();
        self.bill_payments_pass();
        self.bill_refunds_pass();
        let report = &mut self.report;
        report.mismatches.sort_by(|a, b| {
            (a.class, &a.out_trade_no, &a.out_refund_no, &a.time).cmp(&(
                b.class,
                &b.out_trade_no,
                &b.out_refund_no,
                &b.time,
            ))
        });
        report
            .marks
            .sort_by(|a, b| a.out_trade_no.cmp(&b.out_trade_no));
        report.not_from_paycode.sort();
        let carry = &mut report.carried_to_next_day;
        carry.payments.sort();
        carry.refunds.sort();
        carry.matched_early_payments.sort();
        carry.matched_early_refunds.sort();
        self.report
    }

    /// Pass 1 for payments: the store's paid payments of the day, then those carried in.
    fn store_payments_pass(&mut self) {
        let due: Vec<&StorePayment> = self.due_payments().collect();
        for payment in due {
            self.report.store_totals.add_payment(payment.amount);
            let time = self.rules.days.format(payment.time());
            match self.payment_rows.remove(payment.out_trade_no.as_str()) {
                Some(row) => self.compare_payment(payment_side(payment), row, None),
                None if self.near_day_end(payment.time()) => {
                    self.report
                        .carried_to_next_day
                        .payments
                        .push(CarriedPayment {
                            out_trade_no: payment.out_trade_no.clone(),
                            amount: payment.amount,
                            from_day: self.report.day.clone(),
                            time,
                        });
                }
                None => self.mismatch(
                    MismatchClass::PaidHereNotAtWechat,
                    payment_side(payment),
                    None,
                    time,
                    None,
                ),
            }
        }
        for carried in &self.input.carried_in.payments {
            let stored = self.payments.get(carried.out_trade_no.as_str()).copied();
            if stored.is_some_and(|payment| payment.state != PaymentState::Paid) {
                // The store no longer has it as paid: pass 2 compares it like any other.
                continue;
            }
            let side = stored.map(payment_side).unwrap_or_else(|| Side {
                out_trade_no: carried.out_trade_no.clone(),
                out_refund_no: None,
                amount: Some(carried.amount),
                state: None,
            });
            let from_day = Some(carried.from_day.clone());
            match self.payment_rows.remove(carried.out_trade_no.as_str()) {
                Some(row) => self.compare_payment(side, row, from_day),
                None => self.mismatch(
                    MismatchClass::PaidHereNotAtWechat,
                    side,
                    None,
                    carried.time.clone(),
                    from_day,
                ),
            }
        }
    }

    /// A payment the store has as paid against its bill row.
    fn compare_payment(&mut self, side: Side, row: &BillRow, carried: Option<String>) {
        if row.trade_state == REVOKED {
            // WeChat took the money and gave it back; the store still says paid.
            self.mismatch(
                MismatchClass::PaidHereNotAtWechat,
                side,
                Some(row),
                row.trade_time.clone(),
                carried,
            );
        } else {
            let bill_amount = payment_amount(row);
            self.compare_amounts(side, row, bill_amount, carried);
        }
    }

    fn compare_amounts(
        &mut self,
        side: Side,
        row: &BillRow,
        bill_amount: Fen,
        carried: Option<String>,
    ) {
        if side.amount == Some(bill_amount) {
            if side.out_refund_no.is_some() {
                self.report.matched_refunds += 1;
            } else {
                self.report.matched_payments += 1;
            }
        } else {
            self.mismatch(
                MismatchClass::AmountsDiffer,
                side,
                Some(row),
                row.trade_time.clone(),
                carried,
            );
        }
    }

    /// Pass 1 for refunds.
    fn store_refunds_pass(&mut self) {
        let due: Vec<&StoreRefund> = self.due_refunds().collect();
        for refund in due {
            self.report.store_totals.add_refund(refund.amount);
            let time = self.rules.days.format(refund.time());
            match self.refund_rows.remove(refund.out_refund_no.as_str()) {
                Some(row) => self.compare_amounts(
                    refund_side(refund, &self.payments),
                    row,
                    refund_amount(row),
                    None,
                ),
                None if self.near_day_end(refund.time()) => {
                    self.report.carried_to_next_day.refunds.push(CarriedRefund {
                        out_refund_no: refund.out_refund_no.clone(),
                        out_trade_no: refund.out_trade_no.clone(),
                        amount: refund.amount,
                        from_day: self.report.day.clone(),
                        time,
                    });
                }
                None => self.mismatch(
                    MismatchClass::RefundHereNotInBill,
                    refund_side(refund, &self.payments),
                    None,
                    time,
                    None,
                ),
            }
        }
        for carried in &self.input.carried_in.refunds {
            let side = Side {
                out_trade_no: carried.out_trade_no.clone(),
                out_refund_no: Some(carried.out_refund_no.clone()),
                amount: Some(carried.amount),
                state: self
                    .payments
                    .get(carried.out_trade_no.as_str())
                    .map(|payment| payment.state),
            };
            match self.refund_rows.remove(carried.out_refund_no.as_str()) {
                Some(row) => self.compare_amounts(
                    side,
                    row,
                    refund_amount(row),
                    Some(carried.from_day.clone()),
                ),
                None => self.mismatch(
                    MismatchClass::RefundHereNotInBill,
                    side,
                    None,
                    carried.time.clone(),
                    Some(carried.from_day.clone()),
                ),
            }
        }
    }

    /// Pass 2 for payments: the bill's payment rows pass 1 did not use.
    fn bill_payments_pass(&mut self) {
        let rows: Vec<&BillRow> = std::mem::take(&mut self.payment_rows)
            .into_values()
            .collect();
        for row in rows {
            let revoked = row.trade_state == REVOKED;
            let Some(payment) = self.payments.get(row.out_trade_no.as_str()).copied() else {
                self.mismatch(
                    MismatchClass::PaidAtWechatNotHere,
                    Side {
                        out_trade_no: row.out_trade_no.clone(),
                        out_refund_no: None,
                        amount: None,
                        state: None,
                    },
                    Some(row),
                    row.trade_time.clone(),
                    None,
                );
                continue;
            };
            match (payment.state, revoked) {
                (PaymentState::Paid, _) => {
                    // Paid on another day by the store's clock.
                    if self.rules.days.day_of(payment.time()) > self.input.day {
                        self.report
                            .carried_to_next_day
                            .matched_early_payments
                            .push(payment.out_trade_no.clone());
                    }
                    self.compare_payment(payment_side(payment), row, None);
                }
                (state, true) => self.report.marks.push(Mark {
                    out_trade_no: payment.out_trade_no.clone(),
                    fact: "money was taken and returned".to_owned(),
                    amount: payment_amount(row),
                    store_state: state,
                    already_recorded: payment.money_returned,
                }),
                (_, false) => self.mismatch(
                    MismatchClass::PaidAtWechatNotHere,
                    payment_side(payment),
                    Some(row),
                    row.trade_time.clone(),
                    None,
                ),
            }
        }
    }

    /// Pass 2 for refunds: the bill's refund rows pass 1 did not use.
    fn bill_refunds_pass(&mut self) {
        let rows: Vec<&BillRow> = std::mem::take(&mut self.refund_rows)
            .into_values()
            .collect();
        for row in rows {
            match self.refunds.get(row.out_refund_no.as_str()).copied() {
                Some(refund) if refund.accepted() => {
                    if self.rules.days.day_of(refund.time()) > self.input.day {
                        self.report
                            .carried_to_next_day
                            .matched_early_refunds
                            .push(refund.out_refund_no.clone());
                    }
                    let side = refund_side(refund, &self.payments);
                    self.compare_amounts(side, row, refund_amount(row), None);
                }
                stored => {
                    let side = match stored {
                        Some(refund) => refund_side(refund, &self.payments),
                        None => Side {
                            out_trade_no: row.out_trade_no.clone(),
                            out_refund_no: Some(row.out_refund_no.clone()),
                            amount: None,
                            state: self
                                .payments
                                .get(row.out_trade_no.as_str())
                                .map(|payment| payment.state),
                        },
                    };
                    self.mismatch(
                        MismatchClass::RefundInBillNotHere,
                        side,
                        Some(row),
                        row.trade_time.clone(),
                        None,
                    );
                }
            }
        }
    }

    fn mismatch(
        &mut self,
        class: MismatchClass,
        side: Side,
        row: Option<&BillRow>,
        time: String,
        carried_from: Option<String>,
    ) {
        let bill_amount = row.map(|row| {
            if row.trade_state == REFUND {
                refund_amount(row)
            } else {
                payment_amount(row)
            }
        });
        self.report.mismatches.push(Mismatch {
            class,
            description: class.describe().to_owned(),
            out_trade_no: side.out_trade_no,
            out_refund_no: side.out_refund_no,
            store_amount: side.amount,
            bill_amount,
            store_state: side.state,
            bill_state: row.map(|row| row.trade_state.clone()),
            time,
            carried_from,
            actions: class.actions(),
        });
    }
}

/// The store's side of a comparison.
struct Side {
    out_trade_no: String,
    out_refund_no: Option<String>,
    /// The store's amount of the payment or refund; `None` when the store lacks it.
    amount: Option<Fen>,
    /// The payment's state; `None` when the store has no such payment.
    state: Option<PaymentState>,
}

fn payment_side(payment: &StorePayment) -> Side {
    Side {
        out_trade_no: payment.out_trade_no.clone(),
        out_refund_no: None,
        amount: Some(payment.amount),
        state: Some(payment.state),
    }
}

fn refund_side(refund: &StoreRefund, payments: &BTreeMap<&str, &StorePayment>) -> Side {
    Side {
        out_trade_no: refund.out_trade_no.clone(),
        out_refund_no: Some(refund.out_refund_no.clone()),
        amount: Some(refund.amount),
        state: payments
            .get(refund.out_trade_no.as_str())
            .map(|payment| payment.state),
    }
}

/// What the customer was charged: `订单金额` when the bill has it (the settlement amount
/// leaves out vouchers WeChat funds), else `应结订单金额` / the older `总金额`.
fn payment_amount(row: &BillRow) -> Fen {
    row.total_fee.unwrap_or(row.settlement_total_fee)
}

/// What the merchant asked to refund: `申请退款金额` when present, else `退款金额`.
fn refund_amount(row: &BillRow) -> Fen {
    row.applied_refund_fee.unwrap_or(row.refund_fee)
}

#[cfg(test)]
mod tests;
