//! The end-of-soak ledger check: the proxy's store (read directly, through
//! [`store::connect`](paycode_proxy::store::connect)) against the simulator's books, plus what
//! the cashiers were shown along the way. Every inconsistency is counted in a class and named
//! by payment, so a soak can print a table and fail naming the payments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use paycode_api::{PaymentState, RefundState};
use paycode_proxy::store::{PaymentRecord, RefundRecord};
use wxpay::sim::OrderView;

/// What a soak's cashier saw of one payment attempt.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The attempt id posted (the idempotency key).
    pub attempt_id: String,
    /// What the soak chose for the customer (a behaviour key, maybe with the soak's action).
    pub label: String,
    /// Every payment id the API answered for this attempt (must be exactly one).
    pub payment_ids: BTreeSet<String>,
    /// The first settled state the cashier was shown (it must never change afterwards).
    pub shown_settled: Option<PaymentState>,
    /// Refund attempt ids the API accepted (201/200).
    pub refund_attempts: Vec<String>,
}

/// One class of inconsistency and the payments (or orders) in it.
#[derive(Clone, Debug)]
pub struct Class {
    /// What is wrong.
    pub name: &'static str,
    /// `payment id / out_trade_no: detail`, one per case.
    pub cases: Vec<String>,
}

/// The result: every class, in a fixed order, with counts.
#[derive(Clone, Debug)]
pub struct Reconciliation {
    /// The classes.
    pub classes: Vec<Class>,
    /// Payments in the store, by final state.
    pub by_state: BTreeMap<String, usize>,
    /// Refunds in the store, by final state.
    pub refunds_by_state: BTreeMap<String, usize>,
    /// Not inconsistencies, noted: cancelled payments whose customer had been charged and
    /// got the money back through the reverse, although the proxy never saw the charge (the
    /// reply showing it was lost), so `money_returned` is false: WeChat's answer for a
    /// REVOKED order does not say whether money had been taken.
    pub returned_unseen: Vec<String>,
}

/// The class names, in table order.
pub const CHARGED_SHOWN_UNPAID: &str = "charged but shown failed/cancelled, money not returned";
/// Cancelled, but `money_returned` does not say whether WeChat had taken and returned money.
pub const MONEY_RETURNED_WRONG: &str = "cancelled with a wrong money_returned flag";
/// Shown paid but WeChat does not hold the money (or another amount / transaction).
pub const PAID_NOT_CHARGED: &str = "shown paid but not charged";
/// More than one charge for one attempt.
pub const CHARGED_TWICE: &str = "charged twice for one attempt";
/// Still in progress after the drain period (payments or refunds).
pub const NON_TERMINAL: &str = "left non-terminal after the drain";
/// Refunds that disagree between the store and WeChat.
pub const REFUND_MISMATCH: &str = "refund mismatch";
/// An order WeChat has that the proxy does not know.
pub const UNKNOWN_ORDER: &str = "WeChat order unknown to the proxy";
/// A settled state shown to the cashier that later changed.
pub const SHOWN_OUTCOME_CHANGED: &str = "outcome shown to the cashier changed later";
/// An order in another account's (or sub-merchant's) books than the payment records, or a
/// refund recorded with other merchant fields than its payment.
pub const WRONG_ACCOUNT: &str = "order or refund under another account than its payment's";

impl Reconciliation {
    /// Compares `payments` (with their `refunds`) in the store with the simulator's
    /// `orders`, and with what the cashiers were shown (`observations`).
    pub fn check(
        payments: &[PaymentRecord],
        refunds: &[RefundRecord],
        orders: &[OrderView],
        observations: &[Observation],
    ) -> Reconciliation {
        let mut classes: Vec<Class> = [
            CHARGED_SHOWN_UNPAID,
            MONEY_RETURNED_WRONG,
            PAID_NOT_CHARGED,
            CHARGED_TWICE,
            NON_TERMINAL,
            REFUND_MISMATCH,
            UNKNOWN_ORDER,
            SHOWN_OUTCOME_CHANGED,
            WRONG_ACCOUNT,
        ]
        .into_iter()
        .map(|name| Class {
            name,
            cases: Vec::new(),
        })
        .collect();
        let mut add = |name: &str, case: String| {
            if let Some(class) = classes.iter_mut().find(|class| class.name == name) {
                class.cases.push(case);
            }
        };

        let orders_by_no: HashMap<&str, &OrderView> = orders
            .iter()
            .map(|order| (order.out_trade_no.as_str(), order))
            .collect();
        let payments_by_no: HashMap<&str, &PaymentRecord> = payments
            .iter()
            .map(|payment| (payment.out_trade_no.as_str(), payment))
            .collect();
        let payments_by_id: HashMap<&str, &PaymentRecord> = payments
            .iter()
            .map(|payment| (payment.id.as_str(), payment))
            .collect();
        let mut refunds_by_payment: HashMap<&str, Vec<&RefundRecord>> = HashMap::new();
        for refund in refunds {
            refunds_by_payment
                .entry(refund.payment_id.as_str())
                .or_default()
                .push(refund);
        }
        let name = |payment: &PaymentRecord| format!("{} / {}", payment.id, payment.out_trade_no);
        let kept = |order: &OrderView| matches!(order.trade_state.as_str(), "SUCCESS" | "REFUND");

        let mut by_state = BTreeMap::new();
        let mut returned_unseen = Vec::new();
        let mut paid_orders_per_attempt: BTreeMap<&str, usize> = BTreeMap::new();
        let mut payments_per_attempt: BTreeMap<&str, usize> = BTreeMap::new();
        for payment in payments {
            *by_state.entry(payment.state.to_string()).or_insert(0) += 1;
            *payments_per_attempt
                .entry(payment.attempt_id.as_str())
                .or_insert(0) += 1;
            let order = orders_by_no.get(payment.out_trade_no.as_str()).copied();
            if let Some(order) = order.filter(|order| {
                order.mch_id != payment.merchant.mch_id
                    || order.sub_mch_id != payment.merchant.sub_mch_id
            }) {
                add(
                    WRONG_ACCOUNT,
                    format!(
                        "{}: recorded {}/{:?}, WeChat's books {}/{:?}",
                        name(payment),
                        payment.merchant.mch_id,
                        payment.merchant.sub_mch_id,
                        order.mch_id,
                        order.sub_mch_id
                    ),
                );
            }
            for refund in refunds_by_payment
                .get(payment.id.as_str())
                .into_iter()
                .flatten()
            {
                if refund.merchant != payment.merchant || refund.store_id != payment.store_id {
                    add(
                        WRONG_ACCOUNT,
                        format!(
                            "{}: refund {} recorded with other fields",
                            name(payment),
                            refund.id
                        ),
                    );
                }
            }
            if order.is_some_and(|order| order.paid_at.is_some()) {
                *paid_orders_per_attempt
                    .entry(payment.attempt_id.as_str())
                    .or_insert(0) += 1;
            }
            let state = payment.state;
            let detail = || {
                format!(
                    "{}: proxy {state} (money_returned={}), WeChat {}",
                    name(payment),
                    payment.money_returned,
                    order.map_or("no order".to_owned(), |order| format!(
                        "{} paid_at={:?}",
                        order.trade_state, order.paid_at
                    ))
                )
            };
            match state {
                PaymentState::Paid => {
                    let agrees = order.is_some_and(|order| {
                        kept(order)
                            && order.total_fee == payment.amount_fen.get()
                            && payment.transaction_id.as_deref()
                                == Some(order.transaction_id.as_str())
                    });
                    if !agrees {
                        add(PAID_NOT_CHARGED, detail());
                    }
                }
                PaymentState::Failed | PaymentState::Cancelled => {
                    if order.is_some_and(kept) {
                        add(CHARGED_SHOWN_UNPAID, detail());
                    } else if let Some(order) = order {
                        let charged = order.paid_at.is_some();
                        // REVOKED is how a failed payment's order ends once the proxy has
                        // closed it by reverse (the closed loop); PAYERROR is allowed too,
                        // since that close runs in the background after the cashier is told.
                        let open = !matches!(
                            order.trade_state.as_str(),
                            "PAYERROR" | "CLOSED" | "REVOKED"
                        );
                        if open {
                            add(
                                NON_TERMINAL,
                                format!("{} (WeChat order still open)", detail()),
                            );
                        } else if state == PaymentState::Failed && charged {
                            add(
                                MONEY_RETURNED_WRONG,
                                format!("{} (failed, yet charged and returned)", detail()),
                            );
                        } else if state == PaymentState::Cancelled
                            && charged
                            && !payment.money_returned
                            && !payment.seen_paid
                        {
                            returned_unseen.push(detail());
                        } else if state == PaymentState::Cancelled
                            && payment.money_returned != charged
                        {
                            add(MONEY_RETURNED_WRONG, detail());
                        }
                    } else if payment.money_returned {
                        add(MONEY_RETURNED_WRONG, detail());
                    }
                }
                _ => add(NON_TERMINAL, detail()),
            }

            // Refunds of this payment, against WeChat's refunds of its order.
            let stored = refunds_by_payment
                .get(payment.id.as_str())
                .cloned()
                .unwrap_or_default();
            let wechat: Vec<_> = order.map(|order| order.refunds.clone()).unwrap_or_default();
            for refund in &stored {
                let at_wechat = wechat
                    .iter()
                    .find(|candidate| candidate.out_refund_no == refund.out_refund_no.as_str());
                let what = || {
                    format!(
                        "{}: refund {} {} of {} fen, WeChat {:?}",
                        name(payment),
                        refund.out_refund_no,
                        refund_state_name(refund.state),
                        refund.amount_fen.get(),
                        at_wechat.map(|r| (r.refund_fee, r.refund_status.clone()))
                    )
                };
                match refund.state {
                    RefundState::Succeeded => {
                        if !at_wechat.is_some_and(|r| {
                            r.refund_fee == refund.amount_fen.get() && r.refund_status == "SUCCESS"
                        }) {
                            add(REFUND_MISMATCH, what());
                        }
                    }
                    RefundState::Failed => {
                        if at_wechat.is_some() {
                            add(REFUND_MISMATCH, what());
                        }
                    }
                    _ => add(NON_TERMINAL, what()),
                }
            }
            for refund in &wechat {
                if !stored
                    .iter()
                    .any(|candidate| candidate.out_refund_no.as_str() == refund.out_refund_no)
                {
                    add(
                        REFUND_MISMATCH,
                        format!(
                            "{}: WeChat refund {} of {} fen unknown to the proxy",
                            name(payment),
                            refund.out_refund_no,
                            refund.refund_fee
                        ),
                    );
                }
            }
        }
        for (attempt, count) in &paid_orders_per_attempt {
            if *count > 1 {
                add(
                    CHARGED_TWICE,
                    format!("attempt {attempt}: {count} paid orders"),
                );
            }
        }
        for (attempt, count) in &payments_per_attempt {
            if *count > 1 {
                add(
                    CHARGED_TWICE,
                    format!("attempt {attempt}: {count} payments stored"),
                );
            }
        }
        // One payment code paying twice would be a second charge of the same customer.
        let mut paid_per_code: BTreeMap<&str, usize> = BTreeMap::new();
        for order in orders.iter().filter(|order| order.paid_at.is_some()) {
            *paid_per_code.entry(order.auth_code.as_str()).or_insert(0) += 1;
        }
        for (code, count) in paid_per_code {
            if count > 1 {
                let masked = format!(
                    "{}…{}",
                    &code[..4.min(code.len())],
                    &code[code.len().saturating_sub(4)..]
                );
                add(
                    CHARGED_TWICE,
                    format!("payment code {masked}: {count} paid orders"),
                );
            }
        }
        for order in orders {
            if !payments_by_no.contains_key(order.out_trade_no.as_str()) {
                add(
                    UNKNOWN_ORDER,
                    format!(
                        "{}: {} paid_at={:?}",
                        order.out_trade_no, order.trade_state, order.paid_at
                    ),
                );
            }
        }
        for observation in observations {
            if observation.payment_ids.len() > 1 {
                add(
                    CHARGED_TWICE,
                    format!(
                        "attempt {}: the API answered with payments {:?}",
                        observation.attempt_id, observation.payment_ids
                    ),
                );
            }
            for id in &observation.payment_ids {
                let Some(payment) = payments_by_id.get(id.as_str()) else {
                    add(
                        NON_TERMINAL,
                        format!("{id}: shown to the cashier, missing from the store"),
                    );
                    continue;
                };
                if let Some(shown) = observation.shown_settled {
                    if shown != payment.state {
                        add(
                            SHOWN_OUTCOME_CHANGED,
                            format!(
                                "{} ({}): shown {shown}, now {}",
                                name(payment),
                                observation.label,
                                payment.state
                            ),
                        );
                    }
                }
                let stored = refunds_by_payment
                    .get(payment.id.as_str())
                    .cloned()
                    .unwrap_or_default();
                for attempt in &observation.refund_attempts {
                    if !stored
                        .iter()
                        .any(|refund| refund.refund_attempt_id.as_str() == attempt)
                    {
                        add(
                            REFUND_MISMATCH,
                            format!("{}: accepted refund {attempt} not stored", name(payment)),
                        );
                    }
                }
            }
        }
        let mut refunds_by_state = BTreeMap::new();
        for refund in refunds {
            *refunds_by_state
                .entry(refund_state_name(refund.state).to_owned())
                .or_insert(0) += 1;
        }
        Reconciliation {
            classes,
            by_state,
            refunds_by_state,
            returned_unseen,
        }
    }

    /// The total number of inconsistencies.
    pub fn total(&self) -> usize {
        self.classes.iter().map(|class| class.cases.len()).sum()
    }

    /// The table of classes and counts, then every case.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for class in &self.classes {
            let _ = writeln!(out, "  {:<58} {:>6}", class.name, class.cases.len());
        }
        for class in &self.classes {
            for case in &class.cases {
                let _ = writeln!(out, "  ✗ {}: {case}", class.name);
            }
        }
        out
    }
}

fn refund_state_name(state: RefundState) -> &'static str {
    paycode_proxy::store::records::refund_state_name(state)
}
