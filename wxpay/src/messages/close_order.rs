//! `POST /pay/closeorder` (关闭订单). Not for micropay orders, which are closed by reverse;
//! included because a merchant account serves other trade types too (docs/wechat-pay.md §3.6).

use super::{OutTradeNo, Request, Response, optional};
use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// Close an unpaid order (no earlier than 5 minutes after it was created).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseOrderRequest {
    /// The order.
    pub out_trade_no: OutTradeNo,
}

impl Request for CloseOrderRequest {
    const API: Api = Api::CloseOrder;
    type Response = CloseOrderResponse;

    fn to_params(&self) -> Params {
        [("out_trade_no", self.out_trade_no.as_str())]
            .into_iter()
            .collect()
    }
}

/// A closed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseOrderResponse {
    /// `result_msg`, when WeChat sends one.
    pub result_msg: Option<String>,
    /// The whole verified reply.
    pub raw: Params,
}

impl Response for CloseOrderResponse {
    fn from_params(params: Params) -> Result<Self, BadReply> {
        Ok(CloseOrderResponse {
            result_msg: optional(&params, "result_msg"),
            raw: params,
        })
    }
}
