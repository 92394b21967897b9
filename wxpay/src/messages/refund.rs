//! `POST /secapi/pay/refund` (申请退款, client certificate): return part or all of a paid
//! order (docs/wechat-pay.md §3.4). A success reply only means "accepted"; the refund's fate comes from
//! `refundquery`.

use paycode_api::Fen;

use super::{OrderRef, OutRefundNo, Request, Response, optional_fen, required, required_fen};
use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// Apply for a refund. Retrying must reuse the same `out_refund_no` and the same amounts;
/// WeChat then refunds once. Different amounts under one number get `REFUND_FEE_MISMATCH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    /// The paid order.
    pub order: OrderRef,
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// The order's total, which must match the order.
    pub total_fee: Fen,
    /// The amount to refund now.
    pub refund_fee: Fen,
    /// Reason shown to the customer, ≤ 80 characters.
    pub refund_desc: Option<String>,
    /// `REFUND_SOURCE_RECHARGE_FUNDS` for old fund-flow merchants; default unsettled funds.
    pub refund_account: Option<String>,
    /// Where WeChat posts the refund result.
    pub notify_url: Option<String>,
}

impl Request for RefundRequest {
    const API: Api = Api::Refund;
    type Response = RefundResponse;

    fn to_params(&self) -> Params {
        let mut params = Params::new();
        self.order.add_to(&mut params);
        params
            .insert("out_refund_no", self.out_refund_no.as_str())
            .insert("total_fee", self.total_fee.get().to_string())
            .insert("refund_fee", self.refund_fee.get().to_string())
            .insert_opt("refund_desc", self.refund_desc.as_deref())
            .insert_opt("refund_account", self.refund_account.as_deref())
            .insert_opt("notify_url", self.notify_url.as_deref());
        params
    }
}

/// An accepted refund application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundResponse {
    /// WeChat's order number.
    pub transaction_id: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund number.
    pub refund_id: String,
    /// The amount being refunded.
    pub refund_fee: Fen,
    /// The order total.
    pub total_fee: Fen,
    /// What the customer paid in cash.
    pub cash_fee: Option<Fen>,
    /// The cash part of this refund.
    pub cash_refund_fee: Option<Fen>,
    /// The coupon part of this refund.
    pub coupon_refund_fee: Option<Fen>,
    /// The whole verified reply.
    pub raw: Params,
}

impl Response for RefundResponse {
    fn from_params(params: Params) -> Result<Self, BadReply> {
        Ok(RefundResponse {
            transaction_id: required(&params, "transaction_id")?.to_owned(),
            out_trade_no: required(&params, "out_trade_no")?.to_owned(),
            out_refund_no: required(&params, "out_refund_no")?.to_owned(),
            refund_id: required(&params, "refund_id")?.to_owned(),
            refund_fee: required_fen(&params, "refund_fee")?,
            total_fee: required_fen(&params, "total_fee")?,
            cash_fee: optional_fen(&params, "cash_fee")?,
            cash_refund_fee: optional_fen(&params, "cash_refund_fee")?,
            coupon_refund_fee: optional_fen(&params, "coupon_refund_fee")?,
            raw: params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::OutTradeNo;

    #[test]
    fn request_and_reply() {
        let request = RefundRequest {
            order: OutTradeNo::new("A1").unwrap().into(),
            out_refund_no: OutRefundNo::new("R1").unwrap(),
            total_fee: Fen(1230),
            refund_fee: Fen(230),
            refund_desc: Some("退货".into()),
            refund_account: None,
            notify_url: None,
        };
        let params = request.to_params();
        assert_eq!(params.get("total_fee"), Some("1230"));
        assert_eq!(params.get("refund_fee"), Some("230"));
        assert_eq!(params.get("refund_desc"), Some("退货"));
        assert!(!params.contains("notify_url"));

        let reply: Params = [
            ("transaction_id", "4200"),
            ("out_trade_no", "A1"),
            ("out_refund_no", "R1"),
            ("refund_id", "5030"),
            ("refund_fee", "230"),
            ("total_fee", "1230"),
            ("cash_fee", "1230"),
        ]
        .into_iter()
        .collect();
        let reply = RefundResponse::from_params(reply).unwrap();
        assert_eq!(reply.refund_fee, Fen(230));
        assert_eq!(reply.refund_id, "5030");
    }
}
