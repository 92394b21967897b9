//! Injected discrepancies between what a merchant's system saw and what WeChat's bill lists,
//! so that reconciliation can be tested end to end (docs/books.md §6).
//!
//! Each [`Injection`] changes the simulated WeChat side only (the merchant's system is never
//! told) and is recorded as a [`Discrepancy`], so a test can list what it injected
//! ([`SimHandle::injected_discrepancies`](super::SimHandle::injected_discrepancies), `GET
//! /_sim/discrepancies`) and compare a reconciliation report with it:
//!
//! | [`DiscrepancyKind`] | injected by | the bill of [`Discrepancy::bill_date`] shows |
//! |---|---|---|
//! | `unseen_payment` | [`Injection::UnseenPayment`] | a `MICROPAY` `SUCCESS` row no merchant call made |
//! | `foreign_trade` | [`Injection::ForeignTrade`] | a `SUCCESS` row of another trade type (`JSAPI`, `NATIVE`, …) |
//! | `outside_refund` | [`Injection::OutsideRefund`] | a `REFUND` row made outside the merchant's system |
//! | `amount_difference` | [`Injection::AmountDifference`] | the payment with another amount than charged |
//! | `lost_paid_reply` | a micropay with a [`Behaviour::LostPaidReply`](super::Behaviour::LostPaidReply) code | a payment the merchant's calls never found |
//!
//! Injected payments and refunds are real at the simulated WeChat: orderquery finds an
//! unseen payment, refundquery an outside refund, and an outside refund lowers what can
//! still be refunded. The amount difference is on the bill only: orderquery still answers
//! the amount charged.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize, Serializer};

use super::clock::{add_saturating, beijing};
use super::control::ControlError;
use super::ledger::{BookKey, Order, Refund, Status, serialize_time};
use super::{SimState, random_token};

/// What to inject; the JSON body of `POST /_sim/discrepancies` (tagged by `kind`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Injection {
    /// A micropay order paid now (simulated time) that no merchant call created.
    UnseenPayment {
        /// The merchant; absent means the first configured one.
        #[serde(default)]
        mch_id: Option<String>,
        /// The sub-merchant, required under a service provider.
        #[serde(default)]
        sub_mch_id: Option<String>,
        /// The order number, Paycode-looking or not; absent means a generated foreign one
        /// (`EXT…`).
        #[serde(default)]
        out_trade_no: Option<String>,
        /// The amount charged, in fen (above zero).
        total_fee: u64,
    },
    /// An online sale of the same merchant account, paid now: trade type `JSAPI`,
    /// `NATIVE`, `APP`, … (anything but `MICROPAY`), with a generated `out_trade_no`.
    ForeignTrade {
        /// The merchant; absent means the first configured one.
        #[serde(default)]
        mch_id: Option<String>,
        /// The sub-merchant, required under a service provider.
        #[serde(default)]
        sub_mch_id: Option<String>,
        /// The trade type, upper-case letters and `_`, not `MICROPAY`.
        trade_type: String,
        /// The amount, in fen (above zero).
        total_fee: u64,
    },
    /// A refund of a paid order made now in the merchant platform, outside the merchant's
    /// system: its `out_refund_no` is WeChat's `refund_id`, as for refunds made there.
    OutsideRefund {
        /// The merchant, when several have an order with this number.
        #[serde(default)]
        mch_id: Option<String>,
        /// The paid order to refund.
        out_trade_no: String,
        /// The amount, in fen: above zero and at most what is left to refund.
        refund_fee: u64,
    },
    /// The bill shows `bill_total_fee` for a paid order instead of the amount charged.
    AmountDifference {
        /// The merchant, when several have an order with this number.
        #[serde(default)]
        mch_id: Option<String>,
        /// The paid order.
        out_trade_no: String,
        /// The amount the bill shows, in fen: above zero and not the amount charged.
        bill_total_fee: u64,
    },
}

/// Which kind of discrepancy was injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// [`Injection::UnseenPayment`].
    UnseenPayment,
    /// [`Injection::ForeignTrade`].
    ForeignTrade,
    /// [`Injection::OutsideRefund`].
    OutsideRefund,
    /// [`Injection::AmountDifference`].
    AmountDifference,
    /// A micropay with a [`Behaviour::LostPaidReply`](super::Behaviour::LostPaidReply) code.
    LostPaidReply,
}

/// One injected discrepancy, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    /// What was injected.
    pub kind: DiscrepancyKind,
    /// The merchant whose bill lists it (the provider, under a service provider).
    pub mch_id: String,
    /// The sub-merchant (`特约商户号` on the bill), under a service provider.
    pub sub_mch_id: Option<String>,
    /// The order.
    pub out_trade_no: String,
    /// WeChat's order number.
    pub transaction_id: String,
    /// The order's trade type (`MICROPAY`, `JSAPI`, …).
    pub trade_type: String,
    /// For an outside refund, its number (WeChat's `refund_id`).
    pub out_refund_no: Option<String>,
    /// The amount the bill's row shows, in fen (the refund's amount for a refund).
    pub bill_fee: u64,
    /// The amount charged (or refunded), in fen; differs from `bill_fee` only for an
    /// amount difference.
    pub actual_fee: u64,
    /// The time that dates the row: the payment's success or the refund's acceptance.
    #[serde(serialize_with = "serialize_time")]
    pub at: DateTime<Utc>,
    /// The day (Beijing time) whose bill lists the row.
    #[serde(serialize_with = "serialize_date")]
    pub bill_date: NaiveDate,
}

impl Discrepancy {
    fn of_order(kind: DiscrepancyKind, order: &Order, at: DateTime<Utc>) -> Discrepancy {
        Discrepancy {
            kind,
            mch_id: order.mch_id.clone(),
            sub_mch_id: order.sub_mch_id.clone(),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: order.transaction_id.clone(),
            trade_type: order.trade_type.clone(),
            out_refund_no: None,
            bill_fee: order.billed_fee.unwrap_or(order.total_fee),
            actual_fee: order.total_fee,
            at,
            bill_date: at.with_timezone(&beijing()).date_naive(),
        }
    }

    /// The record of a micropay made with a `LostPaidReply` code (paid when created).
    pub(crate) fn lost_paid_reply(order: &Order) -> Discrepancy {
        let at = order.paid_at.unwrap_or(order.created_at);
        Discrepancy::of_order(DiscrepancyKind::LostPaidReply, order, at)
    }
}

fn serialize_date<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&date.format("%Y-%m-%d").to_string())
}

fn bad(message: impl Into<String>) -> ControlError {
    ControlError::BadRequest(message.into())
}

impl SimState {
    /// Applies `injection` to the simulated WeChat side and records it.
    pub(crate) fn inject_discrepancy(
        &self,
        injection: Injection,
    ) -> Result<Discrepancy, ControlError> {
        let now = self.clock.now();
        let discrepancy = match injection {
            Injection::UnseenPayment {
                mch_id,
                sub_mch_id,
                out_trade_no,
                total_fee,
            } => {
                let out_trade_no =
                    out_trade_no.unwrap_or_else(|| format!("EXT{}", random_digits(20)));
                self.insert_paid_order(
                    DiscrepancyKind::UnseenPayment,
                    mch_id.as_deref(),
                    sub_mch_id,
                    out_trade_no,
                    "MICROPAY".to_owned(),
                    total_fee,
                    now,
                )?
            }
            Injection::ForeignTrade {
                mch_id,
                sub_mch_id,
                trade_type,
                total_fee,
            } => {
                let well_formed = !trade_type.is_empty()
                    && trade_type
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'_');
                if !well_formed || trade_type == "MICROPAY" {
                    return Err(bad(format!(
                        "trade_type {trade_type:?}: upper-case letters, not MICROPAY"
                    )));
                }
                let out_trade_no = format!("ONL{}", random_digits(20));
                self.insert_paid_order(
                    DiscrepancyKind::ForeignTrade,
                    mch_id.as_deref(),
                    sub_mch_id,
                    out_trade_no,
                    trade_type,
                    total_fee,
                    now,
                )?
            }
            Injection::OutsideRefund {
                mch_id,
                out_trade_no,
                refund_fee,
            } => self.refund_outside(mch_id.as_deref(), &out_trade_no, refund_fee, now)?,
            Injection::AmountDifference {
                mch_id,
                out_trade_no,
                bill_total_fee,
            } => {
                let mut ledger = self.ledger();
                let (_, order) =
                    paid_order(&mut ledger.books, mch_id.as_deref(), &out_trade_no, now)?;
                if bill_total_fee == 0 || bill_total_fee == order.total_fee {
                    return Err(bad(format!(
                        "bill_total_fee must be above zero and differ from the {} fen charged",
                        order.total_fee
                    )));
                }
                order.billed_fee = Some(bill_total_fee);
                let at = order.paid_at.unwrap_or(order.created_at);
                Discrepancy::of_order(DiscrepancyKind::AmountDifference, order, at)
            }
        };
        self.ledger().record_discrepancy(discrepancy.clone());
        Ok(discrepancy)
    }

    #[allow(clippy::too_many_arguments)] // Two call sites, each naming every field.
    fn insert_paid_order(
        &self,
        kind: DiscrepancyKind,
        mch_id: Option<&str>,
        sub_mch_id: Option<String>,
        out_trade_no: String,
        trade_type: String,
        total_fee: u64,
        now: DateTime<Utc>,
    ) -> Result<Discrepancy, ControlError> {
        let merchant = match mch_id {
            Some(mch_id) => self
                .merchant(mch_id)
                .ok_or_else(|| bad(format!("mch_id {mch_id} is not configured")))?,
            None => self
                .merchants
                .first()
                .ok_or_else(|| bad("no merchant is configured"))?,
        };
        match (&sub_mch_id, merchant.provider) {
            (None, true) => return Err(bad("sub_mch_id is required under a service provider")),
            (Some(sub), true) if !merchant.sub_mch_ids.contains(sub) => {
                return Err(bad(format!(
                    "sub_mch_id {sub} is not bound to {}",
                    merchant.mch_id
                )));
            }
            (Some(_), false) => return Err(bad("a direct merchant has no sub_mch_id")),
            _ => {}
        }
        if total_fee == 0 {
            return Err(bad("total_fee must be above zero"));
        }
        let valid_number = !out_trade_no.is_empty()
            && out_trade_no.len() <= 32
            && out_trade_no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'));
        if !valid_number {
            return Err(bad(format!("out_trade_no {out_trade_no:?} is not valid")));
        }
        let key = BookKey {
            mch_id: merchant.mch_id.clone(),
            sub_mch_id: sub_mch_id.clone(),
            sandbox: false,
        };
        let mut ledger = self.ledger();
        if ledger.book(&key).orders.contains_key(&out_trade_no) {
            return Err(bad(format!("out_trade_no {out_trade_no} is already used")));
        }
        let transaction_id = ledger.next_transaction_id(now);
        let order = Order {
            out_trade_no,
            transaction_id,
            appid: merchant.appid.clone(),
            mch_id: merchant.mch_id.clone(),
            sub_mch_id,
            sub_appid: None,
            sandbox: false,
            trade_type,
            device_info: None,
            body: "外部订单".to_owned(),
            attach: None,
            total_fee,
            auth_code: String::new(),
            behaviour: super::Behaviour::PasswordFree,
            openid: format!("oSIM{}", random_token(24)),
            created_at: now,
            paid_at: Some(now),
            status: Status::Paid,
            refunds: Vec::new(),
            billed_fee: None,
            hidden_from_merchant: false,
        };
        let discrepancy = Discrepancy::of_order(kind, &order, now);
        ledger.book(&key).insert(order);
        Ok(discrepancy)
    }

    fn refund_outside(
        &self,
        mch_id: Option<&str>,
        out_trade_no: &str,
        refund_fee: u64,
        now: DateTime<Utc>,
    ) -> Result<Discrepancy, ControlError> {
        let refund_delay = self.settings().refund_delay;
        let mut ledger = self.ledger();
        let refund_id = ledger.next_refund_id(now);
        let (key, order) = paid_order(&mut ledger.books, mch_id, out_trade_no, now)?;
        let left = order.total_fee.saturating_sub(order.refunded_fee());
        if refund_fee == 0 || refund_fee > left {
            return Err(bad(format!(
                "refund_fee must be above zero and at most the {left} fen left to refund"
            )));
        }
        let mut discrepancy = Discrepancy::of_order(DiscrepancyKind::OutsideRefund, order, now);
        discrepancy.out_refund_no = Some(refund_id.clone());
        discrepancy.bill_fee = refund_fee;
        discrepancy.actual_fee = refund_fee;
        let refund = Refund {
            out_refund_no: refund_id.clone(),
            refund_id,
            total_fee: order.total_fee,
            refund_fee,
            created_at: now,
            completes_at: add_saturating(now, refund_delay),
        };
        ledger.book(&key).insert_refund(out_trade_no, refund);
        Ok(discrepancy)
    }
}

/// The paid production order `out_trade_no` (of `mch_id`, if given), settled to `now`,
/// with the key of its book.
fn paid_order<'a>(
    books: &'a mut std::collections::BTreeMap<BookKey, super::ledger::Book>,
    mch_id: Option<&str>,
    out_trade_no: &str,
    now: DateTime<Utc>,
) -> Result<(BookKey, &'a mut Order), ControlError> {
    let mut found: Vec<(BookKey, &mut Order)> = books
        .iter_mut()
        .filter(|(key, _)| !key.sandbox && mch_id.is_none_or(|mch_id| key.mch_id == mch_id))
        .filter_map(|(key, book)| Some((key.clone(), book.orders.get_mut(out_trade_no)?)))
        .collect();
    if found.len() > 1 {
        return Err(ControlError::Ambiguous(out_trade_no.to_owned()));
    }
    let (key, order) = found
        .pop()
        .ok_or_else(|| ControlError::NotFound(out_trade_no.to_owned()))?;
    order.settle(now);
    if order.status != Status::Paid {
        return Err(ControlError::NotPaid {
            out_trade_no: out_trade_no.to_owned(),
            trade_state: order.trade_state().to_owned(),
        });
    }
    Ok((key, order))
}

/// `count` random decimal digits.
fn random_digits(count: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..count)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Simulator;

    #[tokio::test]
    async fn injections_refuse_what_cannot_be_and_record_nothing_then() {
        let sim = Simulator::builder()
            .merchant("wx1", "1000", "k1")
            .merchant("wx2", "2000", "k2")
            .provider("wx3", "3000", "k3", &["3001"])
            .start()
            .await
            .expect("starts");
        let unseen = |mch_id: Option<&str>, sub: Option<&str>, no: Option<&str>, fee| {
            sim.inject_discrepancy(Injection::UnseenPayment {
                mch_id: mch_id.map(str::to_owned),
                sub_mch_id: sub.map(str::to_owned),
                out_trade_no: no.map(str::to_owned),
                total_fee: fee,
            })
        };
        let first = unseen(None, None, Some("SAME"), 100).expect("the first merchant");
        assert_eq!(first.mch_id, "1000");
        assert_eq!(first.sub_mch_id, None);
        unseen(Some("2000"), None, Some("SAME"), 100).expect("another merchant's books");
        let sub = unseen(Some("3000"), Some("3001"), None, 100).expect("a sub-merchant's");
        assert!(sub.out_trade_no.starts_with("EXT"), "{}", sub.out_trade_no);
        let before = sim.injected_discrepancies().len();

        let bad_request = |result: Result<Discrepancy, ControlError>| {
            assert!(
                matches!(result, Err(ControlError::BadRequest(_))),
                "{result:?}"
            );
        };
        bad_request(unseen(Some("9999"), None, None, 1));
        bad_request(unseen(Some("3000"), None, None, 1));
        bad_request(unseen(Some("3000"), Some("3999"), None, 1));
        bad_request(unseen(Some("1000"), Some("3001"), None, 1));
        bad_request(unseen(None, None, None, 0));
        bad_request(unseen(None, None, Some("SAME"), 1));
        bad_request(unseen(None, None, Some("not valid!"), 1));
        bad_request(sim.inject_discrepancy(Injection::ForeignTrade {
            mch_id: None,
            sub_mch_id: None,
            trade_type: "jsapi".into(),
            total_fee: 1,
        }));
        let refund = |mch_id: Option<&str>, no: &str, fee| {
            sim.inject_discrepancy(Injection::OutsideRefund {
                mch_id: mch_id.map(str::to_owned),
                out_trade_no: no.into(),
                refund_fee: fee,
            })
        };
        assert_eq!(
            refund(None, "SAME", 1),
            Err(ControlError::Ambiguous("SAME".into()))
        );
        assert_eq!(
            refund(None, "NONE", 1),
            Err(ControlError::NotFound("NONE".into()))
        );
        bad_request(refund(Some("1000"), "SAME", 101));
        bad_request(sim.inject_discrepancy(Injection::AmountDifference {
            mch_id: Some("1000".into()),
            out_trade_no: "SAME".into(),
            bill_total_fee: 100,
        }));
        assert_eq!(sim.injected_discrepancies().len(), before);

        let refunded = refund(Some("1000"), "SAME", 100).expect("the whole amount");
        assert_eq!(refunded.kind, DiscrepancyKind::OutsideRefund);
        assert_eq!(refunded.bill_fee, 100);
        let order = sim
            .orders()
            .into_iter()
            .find(|order| order.mch_id == "1000")
            .expect("the order");
        assert_eq!(order.trade_state, "REFUND");
        assert_eq!(
            Some(order.refunds[0].out_refund_no.clone()),
            refunded.out_refund_no
        );
        bad_request(refund(Some("1000"), "SAME", 1));
    }
}
