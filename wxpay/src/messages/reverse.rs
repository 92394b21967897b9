//! `POST /secapi/pay/reverse` (撤销订单, client certificate): close an unpaid micropay order,
//! or return the money of a paid one (docs/wechat-pay.md §3.3).

use super::{OrderRef, Request, Response};
use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// Reverse a micropay order. Call it no earlier than 15 s after micropay, repeat it while
/// [`ReverseResponse::recall`] is set, and only within 7 days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverseRequest {
    /// The order.
    pub order: OrderRef,
}

impl Request for ReverseRequest {
    const API: Api = Api::Reverse;
    type Response = ReverseResponse;

    fn to_params(&self) -> Params {
        let mut params = Params::new();
        self.order.add_to(&mut params);
        params
    }
}

/// A successful reverse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverseResponse {
    /// `recall=Y`: WeChat asks for the reverse to be called again.
    pub recall: bool,
    /// The whole verified reply.
    pub raw: Params,
}

impl Response for ReverseResponse {
    fn from_params(params: Params) -> Result<Self, BadReply> {
        Ok(ReverseResponse {
            recall: recall_requested(&params),
            raw: params,
        })
    }
}

/// Whether a reverse reply (successful or not: failures carry `recall` too) asks to be called
/// again.
pub fn recall_requested(reply: &Params) -> bool {
    reply.get("recall") == Some("Y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::OutTradeNo;

    #[test]
    fn sends_exactly_one_order_reference() {
        let request = ReverseRequest {
            order: OrderRef::TransactionId("4200".into()),
        };
        let params = request.to_params();
        assert_eq!(params.get("transaction_id"), Some("4200"));
        assert!(!params.contains("out_trade_no"));
        let request = ReverseRequest {
            order: OutTradeNo::new("A1").unwrap().into(),
        };
        assert_eq!(request.to_params().get("out_trade_no"), Some("A1"));
    }

    #[test]
    fn recall_flag() {
        let reply: Params = [("recall", "Y")].into_iter().collect();
        assert!(ReverseResponse::from_params(reply).unwrap().recall);
        assert!(
            !ReverseResponse::from_params([("recall", "N")].into_iter().collect())
                .unwrap()
                .recall
        );
        assert!(!recall_requested(&Params::new()));
    }
}
