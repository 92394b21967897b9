//! `POST /pay/refundquery` (查询退款): the refunds of an order (docs/wechat-pay.md §3.5, §5.5).

use std::fmt;

use paycode_api::Fen;

use super::{
    OutRefundNo, OutTradeNo, Request, Response, indexed_fen, item_count, optional, optional_count,
    optional_fen, required, required_fen,
};
use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// What to look refunds up by; WeChat's priority is the order listed here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundQueryBy {
    /// WeChat's refund number.
    RefundId(String),
    /// The merchant's refund number.
    OutRefundNo(OutRefundNo),
    /// WeChat's order number: all refunds of the order.
    TransactionId(String),
    /// The merchant's order number: all refunds of the order.
    OutTradeNo(OutTradeNo),
}

/// Ask for refunds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundQueryRequest {
    /// What to look up.
    pub by: RefundQueryBy,
    /// Start index, for orders with more than 10 refunds.
    pub offset: Option<u32>,
}

impl Request for RefundQueryRequest {
    const API: Api = Api::RefundQuery;
    type Response = RefundQueryResponse;

    fn to_params(&self) -> Params {
        let mut params = Params::new();
        match &self.by {
            RefundQueryBy::RefundId(id) => params.insert("refund_id", id.as_str()),
            RefundQueryBy::OutRefundNo(number) => params.insert("out_refund_no", number.as_str()),
            RefundQueryBy::TransactionId(id) => params.insert("transaction_id", id.as_str()),
            RefundQueryBy::OutTradeNo(number) => params.insert("out_trade_no", number.as_str()),
        };
        params.insert_opt("offset", self.offset.map(|offset| offset.to_string()));
        params
    }
}

/// `refund_status_$n`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// `SUCCESS`: the money is back with the customer.
    Success,
    /// `REFUNDCLOSE`: closed; the refund failed.
    RefundClose,
    /// `PROCESSING`: under way.
    Processing,
    /// `CHANGE`: the customer's card is invalid or frozen; needs handling in the merchant
    /// platform.
    Change,
    /// A status this crate does not know.
    Other(String),
}

impl RefundStatus {
    /// Reads a wire value.
    pub fn parse(wire: &str) -> RefundStatus {
        match wire {
            "SUCCESS" => RefundStatus::Success,
            "REFUNDCLOSE" => RefundStatus::RefundClose,
            "PROCESSING" => RefundStatus::Processing,
            "CHANGE" => RefundStatus::Change,
            other => RefundStatus::Other(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            RefundStatus::Success => "SUCCESS",
            RefundStatus::RefundClose => "REFUNDCLOSE",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Change => "CHANGE",
            RefundStatus::Other(other) => other,
        }
    }

    /// Whether the status will not change any more without a person acting.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RefundStatus::Success | RefundStatus::RefundClose | RefundStatus::Change
        )
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One coupon inside one refund (`*_$n_$m`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundCoupon {
    /// `coupon_type_$n_$m`.
    pub coupon_type: Option<String>,
    /// `coupon_refund_id_$n_$m`.
    pub coupon_refund_id: Option<String>,
    /// `coupon_refund_fee_$n_$m`.
    pub coupon_refund_fee: Fen,
}

/// One refund of the order (`*_$n`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRecord {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund number.
    pub refund_id: String,
    /// `ORIGINAL` or `BALANCE` (and others in some documents).
    pub refund_channel: Option<String>,
    /// The amount refunded.
    pub refund_fee: Fen,
    /// The amount settled back, when coupons are involved.
    pub settlement_refund_fee: Option<Fen>,
    /// The coupon part.
    pub coupon_refund_fee: Option<Fen>,
    /// The coupons refunded.
    pub coupons: Vec<RefundCoupon>,
    /// The status.
    pub refund_status: RefundStatus,
    /// The funds account the refund came from.
    pub refund_account: Option<String>,
    /// Where the money went (WeChat spells the field `refund_recv_accout`).
    pub refund_recv_account: Option<String>,
    /// When the refund succeeded, `yyyy-MM-dd HH:mm:ss`.
    pub refund_success_time: Option<String>,
}

/// The refunds of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundQueryResponse {
    /// WeChat's order number.
    pub transaction_id: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// The order total.
    pub total_fee: Fen,
    /// What the customer paid in cash.
    pub cash_fee: Option<Fen>,
    /// All refunds of the order, when WeChat says (may exceed `refunds.len()` with paging).
    pub total_refund_count: Option<usize>,
    /// The refunds in this reply, in index order.
    pub refunds: Vec<RefundRecord>,
    /// The whole verified reply.
    pub raw: Params,
}

impl Response for RefundQueryResponse {
    fn from_params(params: Params) -> Result<Self, BadReply> {
        let refund_count = item_count(&params, "refund_count", "refund_count")?;
        let mut refunds = Vec::with_capacity(refund_count.min(64));
        for n in 0..refund_count {
            refunds.push(read_refund(&params, n)?);
        }
        Ok(RefundQueryResponse {
            transaction_id: required(&params, "transaction_id")?.to_owned(),
            out_trade_no: required(&params, "out_trade_no")?.to_owned(),
            total_fee: required_fen(&params, "total_fee")?,
            cash_fee: optional_fen(&params, "cash_fee")?,
            total_refund_count: optional_count(
                &params,
                "total_refund_count",
                "total_refund_count",
            )?,
            refunds,
            raw: params,
        })
    }
}

fn read_refund(params: &Params, n: usize) -> Result<RefundRecord, BadReply> {
    let field = |name: &str| format!("{name}_{n}");
    let missing = |name: &'static str| BadReply::Field {
        field: name,
        problem: format!("missing for refund {n}"),
    };
    let coupon_count = item_count(
        params,
        &field("coupon_refund_count"),
        "coupon_refund_count_$n",
    )?;
    let mut coupons = Vec::with_capacity(coupon_count.min(64));
    for m in 0..coupon_count {
        let Some(coupon_refund_fee) = indexed_fen(params, &format!("coupon_refund_fee_{n}_{m}"))?
        else {
            continue;
        };
        coupons.push(RefundCoupon {
            coupon_type: optional(params, &format!("coupon_type_{n}_{m}")),
            coupon_refund_id: optional(params, &format!("coupon_refund_id_{n}_{m}")),
            coupon_refund_fee,
        });
    }
    Ok(RefundRecord {
        out_refund_no: optional(params, &field("out_refund_no"))
            .ok_or_else(|| missing("out_refund_no_$n"))?,
        refund_id: optional(params, &field("refund_id")).ok_or_else(|| missing("refund_id_$n"))?,
        refund_channel: optional(params, &field("refund_channel")),
        refund_fee: indexed_fen(params, &field("refund_fee"))?
            .ok_or_else(|| missing("refund_fee_$n"))?,
        settlement_refund_fee: indexed_fen(params, &field("settlement_refund_fee"))?,
        coupon_refund_fee: indexed_fen(params, &field("coupon_refund_fee"))?,
        coupons,
        refund_status: RefundStatus::parse(
            &optional(params, &field("refund_status"))
                .ok_or_else(|| missing("refund_status_$n"))?,
        ),
        refund_account: optional(params, &field("refund_account")),
        refund_recv_account: optional(params, &field("refund_recv_accout")),
        refund_success_time: optional(params, &field("refund_success_time")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_indexed_refunds_and_coupons() {
        let params: Params = [
            ("transaction_id", "4200"),
            ("out_trade_no", "A1"),
            ("total_fee", "1000"),
            ("cash_fee", "900"),
            ("refund_count", "2"),
            ("out_refund_no_0", "R0"),
            ("refund_id_0", "50"),
            ("refund_fee_0", "300"),
            ("refund_status_0", "SUCCESS"),
            ("refund_recv_accout_0", "支付用户零钱"),
            ("refund_success_time_0", "2026-11-28 12:00:00"),
            ("out_refund_no_1", "R1"),
            ("refund_id_1", "51"),
            ("refund_fee_1", "200"),
            ("refund_status_1", "PROCESSING"),
            ("coupon_refund_count_1", "1"),
            ("coupon_refund_fee_1_0", "20"),
            ("coupon_refund_id_1_0", "C9"),
        ]
        .into_iter()
        .collect();
        let reply = RefundQueryResponse::from_params(params).unwrap();
        assert_eq!(reply.refunds.len(), 2);
        assert_eq!(reply.refunds[0].refund_status, RefundStatus::Success);
        assert_eq!(
            reply.refunds[0].refund_recv_account.as_deref(),
            Some("支付用户零钱")
        );
        assert_eq!(reply.refunds[1].refund_status, RefundStatus::Processing);
        assert!(!reply.refunds[1].refund_status.is_final());
        assert_eq!(reply.refunds[1].coupons[0].coupon_refund_fee, Fen(20));
    }

    /// A reply with one refund, without its status, plus `extra`.
    fn one_refund(extra: &[(&str, &str)]) -> Params {
        [
            ("transaction_id", "4200"),
            ("out_trade_no", "A1"),
            ("total_fee", "1000"),
            ("refund_count", "1"),
            ("out_refund_no_0", "R0"),
            ("refund_id_0", "50"),
            ("refund_fee_0", "300"),
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect()
    }

    #[test]
    fn a_coupon_refund_count_beyond_the_reply_is_refused_not_looped_over() {
        let params = one_refund(&[
            ("refund_status_0", "SUCCESS"),
            ("coupon_refund_count_0", "18446744073709551615"),
        ]);
        assert!(matches!(
            RefundQueryResponse::from_params(params),
            Err(BadReply::Field {
                field: "coupon_refund_count_$n",
                ..
            })
        ));
    }

    #[test]
    fn a_refund_without_status_is_a_bad_reply() {
        assert!(matches!(
            RefundQueryResponse::from_params(one_refund(&[])),
            Err(BadReply::Field {
                field: "refund_status_$n",
                ..
            })
        ));
    }

    #[test]
    fn query_keys() {
        let request = RefundQueryRequest {
            by: RefundQueryBy::OutRefundNo(OutRefundNo::new("R1").unwrap()),
            offset: Some(10),
        };
        let params = request.to_params();
        assert_eq!(params.get("out_refund_no"), Some("R1"));
        assert_eq!(params.get("offset"), Some("10"));
    }
}
