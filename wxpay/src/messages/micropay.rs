//! `POST /pay/micropay` (付款码支付): charge a scanned payment code (docs/wechat-pay.md §3.1).

use paycode_api::{AuthCode, Fen};

use super::{OutTradeNo, Request, Response, optional, optional_fen, required, required_fen};
use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// Charge the customer whose payment code was scanned.
///
/// There is no notification for micropay: the synchronous reply and `orderquery` are the
/// only sources of truth. Debug output masks the payment code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicropayRequest {
    /// The merchant's order number; resending this same payment must reuse it.
    pub out_trade_no: OutTradeNo,
    /// The amount to charge.
    pub total_fee: Fen,
    /// The scanned payment code.
    pub auth_code: AuthCode,
    /// What is sold, ≤ 127 characters, recommended as `店名-销售商品类目`.
    pub body: String,
    /// The IP address of the machine calling WeChat (IPv4 or IPv6).
    pub spbill_create_ip: String,
    /// The terminal that took the payment; WeChat echoes it.
    pub device_info: Option<String>,
    /// Free merchant data echoed by queries, ≤ 127 characters.
    pub attach: Option<String>,
    /// A coupon tag (`goods_tag`).
    pub goods_tag: Option<String>,
    /// `no_credit` forbids credit cards.
    pub limit_pay: Option<String>,
    /// Order expiry, `yyyyMMddHHmmss` Beijing time; for micropay at least one minute ahead.
    pub time_expire: Option<String>,
    /// 单品优惠 detail JSON; requires `version=1.0`, which is then sent too.
    pub detail: Option<String>,
    /// Store information JSON (`scene_info`).
    pub scene_info: Option<String>,
}

impl MicropayRequest {
    /// A request with the required fields and no optional ones.
    pub fn new(
        out_trade_no: OutTradeNo,
        total_fee: Fen,
        auth_code: AuthCode,
        body: impl Into<String>,
        spbill_create_ip: impl Into<String>,
    ) -> Self {
        MicropayRequest {
            out_trade_no,
            total_fee,
            auth_code,
            body: body.into(),
            spbill_create_ip: spbill_create_ip.into(),
            device_info: None,
            attach: None,
            goods_tag: None,
            limit_pay: None,
            time_expire: None,
            detail: None,
            scene_info: None,
        }
    }
}

impl Request for MicropayRequest {
    const API: Api = Api::Micropay;
    type Response = MicropayResponse;

    fn to_params(&self) -> Params {
        let mut params = Params::new();
        params
            .insert("out_trade_no", self.out_trade_no.as_str())
            .insert("total_fee", self.total_fee.get().to_string())
            .insert("auth_code", self.auth_code.expose())
            .insert("body", self.body.as_str())
            .insert("spbill_create_ip", self.spbill_create_ip.as_str())
            .insert_opt("device_info", self.device_info.as_deref())
            .insert_opt("attach", self.attach.as_deref())
            .insert_opt("goods_tag", self.goods_tag.as_deref())
            .insert_opt("limit_pay", self.limit_pay.as_deref())
            .insert_opt("time_expire", self.time_expire.as_deref())
            .insert_opt("detail", self.detail.as_deref())
            .insert_opt("scene_info", self.scene_info.as_deref());
        if self.detail.is_some() {
            params.insert("version", "1.0");
        }
        params
    }
}

/// A paid micropay order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicropayResponse {
    /// WeChat's order number.
    pub transaction_id: String,
    /// The merchant's order number, echoed.
    pub out_trade_no: String,
    /// The payer's id under the appid.
    pub openid: Option<String>,
    /// The payer's id under the sub_appid (service-provider mode).
    pub sub_openid: Option<String>,
    /// Always `MICROPAY`.
    pub trade_type: Option<String>,
    /// The paying bank or balance, e.g. `CMC`, `CCB_DEBIT`.
    pub bank_type: Option<String>,
    /// The order amount.
    pub total_fee: Fen,
    /// What the customer paid in cash (after coupons).
    pub cash_fee: Fen,
    /// Coupon amount, if any.
    pub coupon_fee: Option<Fen>,
    /// Amount settled to the merchant, when a non-recharge coupon was used.
    pub settlement_total_fee: Option<Fen>,
    /// When payment completed, `yyyyMMddHHmmss` Beijing time.
    pub time_end: Option<String>,
    /// The echoed `attach`.
    pub attach: Option<String>,
    /// The echoed `device_info`.
    pub device_info: Option<String>,
    /// The whole verified reply.
    pub raw: Params,
}

impl Response for MicropayResponse {
    fn from_params(params: Params) -> Result<Self, BadReply> {
        Ok(MicropayResponse {
            transaction_id: required(&params, "transaction_id")?.to_owned(),
            out_trade_no: required(&params, "out_trade_no")?.to_owned(),
            openid: optional(&params, "openid"),
            sub_openid: optional(&params, "sub_openid"),
            trade_type: optional(&params, "trade_type"),
            bank_type: optional(&params, "bank_type"),
            total_fee: required_fen(&params, "total_fee")?,
            // Some replies omit cash_fee when no coupon is involved; it then equals the total.
            cash_fee: optional_fen(&params, "cash_fee")?
                .map_or_else(|| required_fen(&params, "total_fee"), Ok)?,
            coupon_fee: optional_fen(&params, "coupon_fee")?,
            settlement_total_fee: optional_fen(&params, "settlement_total_fee")?,
            time_end: optional(&params, "time_end"),
            attach: optional(&params, "attach"),
            device_info: optional(&params, "device_info"),
            raw: params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> MicropayRequest {
        MicropayRequest::new(
            OutTradeNo::new("1217752501201407033233368018").unwrap(),
            Fen(888),
            AuthCode::parse("120061098828009406").unwrap(),
            "image形象店-深圳腾大-QQ公仔",
            "8.8.8.8",
        )
    }

    #[test]
    fn request_fields() {
        let mut request = request();
        let params = request.to_params();
        assert_eq!(params.get("total_fee"), Some("888"));
        assert_eq!(params.get("auth_code"), Some("120061098828009406"));
        assert!(!params.contains("attach"));
        assert!(!params.contains("version"));
        request.detail = Some("{}".into());
        request.attach = Some(String::new());
        let params = request.to_params();
        assert_eq!(params.get("version"), Some("1.0"));
        assert!(
            !params.contains("attach"),
            "empty optional fields are not sent"
        );
        assert!(
            !format!("{request:?}").contains("120061098828009406"),
            "Debug masks the payment code"
        );
    }

    #[test]
    fn reads_the_official_example_reply() {
        let params: Params = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wx2421b1c4370ec43b"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("openid", "oUpF8uN95-Ptaags6E_roPHg7AG0"),
            ("is_subscribe", "Y"),
            ("trade_type", "MICROPAY"),
            ("bank_type", "CCB_DEBIT"),
            ("total_fee", "1"),
            ("coupon_fee", "0"),
            ("fee_type", "CNY"),
            ("transaction_id", "1008450740201411110005820873"),
            ("out_trade_no", "1415757673"),
            ("attach", "订单额外描述"),
            ("time_end", "20141111170043"),
        ]
        .into_iter()
        .collect();
        let reply = MicropayResponse::from_params(params).unwrap();
        assert_eq!(reply.transaction_id, "1008450740201411110005820873");
        assert_eq!(reply.total_fee, Fen(1));
        assert_eq!(reply.cash_fee, Fen(1));
        assert_eq!(reply.coupon_fee, Some(Fen(0)));
        assert_eq!(reply.attach.as_deref(), Some("订单额外描述"));
    }

    #[test]
    fn a_reply_without_transaction_id_is_not_a_payment() {
        let params: Params = [("out_trade_no", "1"), ("total_fee", "1")]
            .into_iter()
            .collect();
        assert!(matches!(
            MicropayResponse::from_params(params),
            Err(BadReply::Field {
                field: "transaction_id",
                ..
            })
        ));
    }
}
