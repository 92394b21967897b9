//! `POST /pay/orderquery`: the state of an order (docs/wechat-pay.md §3.2, §5.2).

use std::fmt;

use paycode_api::Fen;

use super::{
    OutTradeNo, Request, Response, indexed_fen, item_count, optional, optional_fen, required,
    required_fen,
};
use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// Which order a query, reverse or refund is about. WeChat prefers `transaction_id` when
/// both are known; this type sends exactly one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderRef {
    /// The merchant's order number.
    OutTradeNo(OutTradeNo),
    /// WeChat's order number.
    TransactionId(String),
}

impl OrderRef {
    pub(crate) fn add_to(&self, params: &mut Params) {
        match self {
            OrderRef::OutTradeNo(number) => params.insert("out_trade_no", number.as_str()),
            OrderRef::TransactionId(id) => params.insert("transaction_id", id.as_str()),
        };
    }
}

impl From<OutTradeNo> for OrderRef {
    fn from(number: OutTradeNo) -> OrderRef {
        OrderRef::OutTradeNo(number)
    }
}

/// Ask for an order's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderQueryRequest {
    /// The order.
    pub order: OrderRef,
}

impl Request for OrderQueryRequest {
    const API: Api = Api::OrderQuery;
    type Response = OrderQueryResponse;

    fn to_params(&self) -> Params {
        let mut params = Params::new();
        self.order.add_to(&mut params);
        params
    }
}

/// `trade_state` (docs/wechat-pay.md §5.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: paid, and a refund was requested since.
    Refund,
    /// `NOTPAY`: not paid (yet).
    NotPay,
    /// `CLOSED`: closed.
    Closed,
    /// `REVOKED`: reversed (micropay), by the merchant or by WeChat's 45-second auto-revoke.
    Revoked,
    /// `USERPAYING`: the customer is entering the password.
    UserPaying,
    /// `PAYERROR`: the payment failed.
    PayError,
    /// `ACCEPT`: received, awaiting deduction.
    Accept,
    /// A state this crate does not know.
    Other(String),
}

impl TradeState {
    /// Reads a wire value.
    pub fn parse(wire: &str) -> TradeState {
        match wire {
            "SUCCESS" => TradeState::Success,
            "REFUND" => TradeState::Refund,
            "NOTPAY" => TradeState::NotPay,
            "CLOSED" => TradeState::Closed,
            "REVOKED" => TradeState::Revoked,
            "USERPAYING" => TradeState::UserPaying,
            "PAYERROR" => TradeState::PayError,
            "ACCEPT" => TradeState::Accept,
            other => TradeState::Other(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::NotPay => "NOTPAY",
            TradeState::Closed => "CLOSED",
            TradeState::Revoked => "REVOKED",
            TradeState::UserPaying => "USERPAYING",
            TradeState::PayError => "PAYERROR",
            TradeState::Accept => "ACCEPT",
            TradeState::Other(other) => other,
        }
    }

    /// Whether the money was taken (`SUCCESS`, or `REFUND` after it).
    pub fn is_paid(&self) -> bool {
        matches!(self, TradeState::Success | TradeState::Refund)
    }

    /// Whether the order can no longer change by itself (docs/wechat-pay.md §5.2: SUCCESS, REFUND, CLOSED,
    /// REVOKED and PAYERROR are terminal; NOTPAY, USERPAYING and ACCEPT are not; unknown
    /// states are treated as not terminal).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TradeState::Success
                | TradeState::Refund
                | TradeState::Closed
                | TradeState::Revoked
                | TradeState::PayError
        )
    }
}

impl fmt::Display for TradeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One coupon applied to an order (`coupon_type_$n`, `coupon_id_$n`, `coupon_fee_$n`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    /// `CASH` (充值券) or `NO_CASH` (非充值券); may be absent.
    pub coupon_type: Option<String>,
    /// The coupon id.
    pub coupon_id: Option<String>,
    /// The coupon amount.
    pub coupon_fee: Fen,
}

/// The payment fields, present only once an order is paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// WeChat's order number.
    pub transaction_id: String,
    /// The order amount.
    pub total_fee: Fen,
    /// What the customer paid in cash.
    pub cash_fee: Fen,
    /// Total coupon amount.
    pub coupon_fee: Option<Fen>,
    /// The coupons used, in index order.
    pub coupons: Vec<Coupon>,
    /// The paying bank or balance.
    pub bank_type: Option<String>,
    /// The payer's id under the appid.
    pub openid: Option<String>,
    /// When payment completed, `yyyyMMddHHmmss` Beijing time.
    pub time_end: Option<String>,
}

/// An order's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderQueryResponse {
    /// The state.
    pub trade_state: TradeState,
    /// WeChat's description of the state.
    pub trade_state_desc: Option<String>,
    /// The merchant's order number.
    pub out_trade_no: Option<String>,
    /// The payment fields, when paid (`SUCCESS` or `REFUND`).
    pub payment: Option<Payment>,
    /// The whole verified reply.
    pub raw: Params,
}

impl Response for OrderQueryResponse {
    fn from_params(params: Params) -> Result<Self, BadReply> {
        let trade_state = TradeState::parse(required(&params, "trade_state")?);
        let payment = if trade_state.is_paid() {
            Some(read_payment(&params)?)
        } else {
            None
        };
        Ok(OrderQueryResponse {
            trade_state,
            trade_state_desc: optional(&params, "trade_state_desc"),
            out_trade_no: optional(&params, "out_trade_no"),
            payment,
            raw: params,
        })
    }
}

fn read_payment(params: &Params) -> Result<Payment, BadReply> {
    let total_fee = required_fen(params, "total_fee")?;
    let coupon_count = item_count(params, "coupon_count", "coupon_count")?;
    let mut coupons = Vec::with_capacity(coupon_count.min(64));
    for index in 0..coupon_count {
        let Some(coupon_fee) = indexed_fen(params, &format!("coupon_fee_{index}"))? else {
            continue;
        };
        coupons.push(Coupon {
            coupon_type: optional(params, &format!("coupon_type_{index}")),
            coupon_id: optional(params, &format!("coupon_id_{index}")),
            coupon_fee,
        });
    }
    Ok(Payment {
        transaction_id: required(params, "transaction_id")?.to_owned(),
        total_fee,
        cash_fee: optional_fen(params, "cash_fee")?.unwrap_or(total_fee),
        coupon_fee: optional_fen(params, "coupon_fee")?,
        coupons,
        bank_type: optional(params, "bank_type"),
        openid: optional(params, "openid"),
        time_end: optional(params, "time_end"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaid_states_have_no_payment() {
        // The real PAYERROR reply seen in the wild carries no payment fields at all.
        let params: Params = [
            ("trade_state", "PAYERROR"),
            ("out_trade_no", "1415757673"),
            ("attach", ""),
            ("trade_state_desc", "支付失败,请撤销订单"),
        ]
        .into_iter()
        .collect();
        let reply = OrderQueryResponse::from_params(params).unwrap();
        assert_eq!(reply.trade_state, TradeState::PayError);
        assert!(reply.trade_state.is_terminal());
        assert!(!reply.trade_state.is_paid());
        assert_eq!(reply.payment, None);
    }

    #[test]
    fn paid_order_with_indexed_coupons() {
        let params: Params = [
            ("trade_state", "REFUND"),
            ("transaction_id", "4200000443201912243367650720"),
            ("total_fee", "300"),
            ("cash_fee", "200"),
            ("coupon_fee", "100"),
            ("coupon_count", "2"),
            ("coupon_id_0", "C0"),
            ("coupon_fee_0", "60"),
            ("coupon_type_1", "NO_CASH"),
            ("coupon_id_1", "C1"),
            ("coupon_fee_1", "40"),
        ]
        .into_iter()
        .collect();
        let reply = OrderQueryResponse::from_params(params).unwrap();
        let payment = reply.payment.unwrap();
        assert_eq!(payment.total_fee, Fen(300));
        assert_eq!(payment.coupons.len(), 2);
        assert_eq!(payment.coupons[0].coupon_type, None);
        assert_eq!(payment.coupons[1].coupon_fee, Fen(40));
    }

    #[test]
    fn a_coupon_count_beyond_the_reply_is_refused_not_looped_over() {
        // The fuzzer's hang: a count of 2^64−1 with no coupons made the reader spin.
        for count in ["18446744073709551615", "9"] {
            let params: Params = [
                ("trade_state", "SUCCESS"),
                ("transaction_id", "4200000443201912243367650720"),
                ("total_fee", "300"),
                ("coupon_count", count),
            ]
            .into_iter()
            .collect();
            match OrderQueryResponse::from_params(params) {
                Err(BadReply::Field {
                    field: "coupon_count",
                    problem,
                }) => assert!(
                    problem.contains("more than the reply's 4 fields"),
                    "{problem}"
                ),
                other => panic!("coupon_count {count}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_paid_state_without_transaction_id_is_a_bad_reply() {
        let params: Params = [("trade_state", "SUCCESS"), ("total_fee", "1")]
            .into_iter()
            .collect();
        assert!(matches!(
            OrderQueryResponse::from_params(params),
            Err(BadReply::Field {
                field: "transaction_id",
                ..
            })
        ));
    }

    #[test]
    fn trade_states_round_trip() {
        for wire in [
            "SUCCESS",
            "REFUND",
            "NOTPAY",
            "CLOSED",
            "REVOKED",
            "USERPAYING",
            "PAYERROR",
            "ACCEPT",
            "NEW",
        ] {
            assert_eq!(TradeState::parse(wire).as_str(), wire);
        }
        assert!(!TradeState::parse("NEW").is_terminal());
    }
}
