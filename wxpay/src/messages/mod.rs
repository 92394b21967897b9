//! Typed messages, one file per API, like mini-redis's `cmd/`.
//!
//! Each request type knows its [`Api`] and turns itself into [`Params`]; each response type
//! reads itself from the *verified* reply [`Params`] and keeps them whole in `raw`, so
//! indexed fields (`coupon_fee_$n`, `refund_fee_$n`, …) and fields this crate does not know
//! are never lost. Amounts are [`Fen`] everywhere.

mod close_order;
mod download_bill;
mod ids;
mod micropay;
mod order_query;
mod refund;
mod refund_query;
mod reverse;

pub use close_order::{CloseOrderRequest, CloseOrderResponse};
pub use download_bill::{
    ALL_COLUMNS, Bill, BillError, BillRow, BillSummary, BillType, DownloadBillRequest,
    LEGACY_COLUMNS, LEGACY_SUMMARY_COLUMNS, MAX_BILL_TEXT_BYTES, SUMMARY_COLUMNS,
};
pub use ids::{IdError, OutRefundNo, OutTradeNo};
pub use micropay::{MicropayRequest, MicropayResponse};
pub use order_query::{
    Coupon, OrderQueryRequest, OrderQueryResponse, OrderRef, Payment, TradeState,
};
pub use refund::{RefundRequest, RefundResponse};
pub use refund_query::{
    RefundCoupon, RefundQueryBy, RefundQueryRequest, RefundQueryResponse, RefundRecord,
    RefundStatus,
};
pub use reverse::{ReverseRequest, ReverseResponse, recall_requested};

use paycode_api::Fen;

use crate::codes::Api;
use crate::error::BadReply;
use crate::params::Params;

/// A request to one WeChat Pay API.
pub trait Request {
    /// The API this request is sent to.
    const API: Api;
    /// What a successful (`result_code=SUCCESS`) reply is read into.
    type Response: Response;
    /// The request's own fields. The client adds `appid`, `mch_id`, the service-provider
    /// fields, `nonce_str`, `sign_type` and `sign`.
    fn to_params(&self) -> Params;
}

/// A successful reply, read from verified [`Params`].
pub trait Response: Sized {
    /// Reads the reply. Fails if a field needed to act on it is missing or malformed.
    fn from_params(params: Params) -> Result<Self, BadReply>;
}

/// A required field: present and not empty.
pub(crate) fn required<'a>(params: &'a Params, field: &'static str) -> Result<&'a str, BadReply> {
    params.get_non_empty(field).ok_or(BadReply::Field {
        field,
        problem: "missing".into(),
    })
}

/// An optional field, `None` when absent or empty.
pub(crate) fn optional(params: &Params, field: &str) -> Option<String> {
    params.get_non_empty(field).map(str::to_owned)
}

/// A required integer amount in fen.
pub(crate) fn required_fen(params: &Params, field: &'static str) -> Result<Fen, BadReply> {
    parse_fen(field, required(params, field)?)
}

/// An optional integer amount in fen; present but malformed is an error.
pub(crate) fn optional_fen(params: &Params, field: &'static str) -> Result<Option<Fen>, BadReply> {
    params
        .get_non_empty(field)
        .map(|value| parse_fen(field, value))
        .transpose()
}

fn parse_fen(field: &'static str, value: &str) -> Result<Fen, BadReply> {
    fen_from_text(value).map_err(|problem| BadReply::Field { field, problem })
}

/// Reads an integer amount in fen. Only ASCII digits are accepted: Rust's integer parser
/// would also take `+1`, which WeChat never sends.
fn fen_from_text(value: &str) -> Result<Fen, String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{value:?} is not an integer amount in fen"));
    }
    value
        .parse()
        .map(Fen)
        .map_err(|_| format!("{value:?} is out of range"))
}

/// An optional integer amount in fen under a field name built at run time (`coupon_fee_0`).
pub(crate) fn indexed_fen(params: &Params, field: &str) -> Result<Option<Fen>, BadReply> {
    params
        .get_non_empty(field)
        .map(|value| {
            fen_from_text(value).map_err(|problem| BadReply::Field {
                field: "indexed amount",
                problem: format!("{field}: {problem}"),
            })
        })
        .transpose()
}

/// A count read from `key` (reported as `field`), or `None` when the reply has none.
pub(crate) fn optional_count(
    params: &Params,
    key: &str,
    field: &'static str,
) -> Result<Option<usize>, BadReply> {
    params
        .get_non_empty(key)
        .map(|value| {
            value.parse().map_err(|_| BadReply::Field {
                field,
                problem: format!("{key} = {value:?} is not a count"),
            })
        })
        .transpose()
}

/// How many indexed items (`coupon_fee_$n`, `refund_fee_$n`…) a reply says it carries, read
/// from `key` and reported as `field`; 0 when absent. Every item takes at least one field, so a
/// count above the reply's field count is refused rather than looped over: a `coupon_count`
/// of 2^64−1 would otherwise keep the reader busy for hours.
pub(crate) fn item_count(
    params: &Params,
    key: &str,
    field: &'static str,
) -> Result<usize, BadReply> {
    let count = optional_count(params, key, field)?.unwrap_or(0);
    if count > params.len() {
        return Err(BadReply::Field {
            field,
            problem: format!(
                "{key} = {count} is more than the reply's {} fields",
                params.len()
            ),
        });
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_helpers() {
        let params: Params = [("total_fee", "888"), ("cash_fee", "x"), ("coupon_fee", "")]
            .into_iter()
            .collect();
        assert_eq!(required_fen(&params, "total_fee").unwrap(), Fen(888));
        assert!(matches!(
            required_fen(&params, "cash_fee"),
            Err(BadReply::Field {
                field: "cash_fee",
                ..
            })
        ));
        assert!(matches!(
            required_fen(&params, "settlement_total_fee"),
            Err(BadReply::Field { .. })
        ));
        assert_eq!(optional_fen(&params, "coupon_fee").unwrap(), None);
        assert!(optional_fen(&params, "cash_fee").is_err());
        let negative: Params = [("total_fee", "-1")].into_iter().collect();
        assert!(required_fen(&negative, "total_fee").is_err());
        let signed: Params = [("coupon_fee_0", "+1"), ("coupon_fee_1", "7")]
            .into_iter()
            .collect();
        assert!(indexed_fen(&signed, "coupon_fee_0").is_err());
        assert_eq!(indexed_fen(&signed, "coupon_fee_1").unwrap(), Some(Fen(7)));
        assert_eq!(indexed_fen(&signed, "coupon_fee_2").unwrap(), None);
    }
}
