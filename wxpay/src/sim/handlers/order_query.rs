//! `/pay/orderquery` (docs/wechat-pay.md §3.2): the state of an order, by transaction_id or out_trade_no.
//!
//! Payment fields (openid, transaction_id, total_fee, time_end, …) appear only while the
//! order counts as paid (`SUCCESS` or `REFUND`); other states carry just out_trade_no,
//! attach, trade_state and trade_state_desc, like the real PAYERROR reply in the spec.

use super::micropay::paid_fields;
use super::{Call, Reply};
use crate::params::Params;

pub(super) fn handle(call: &Call<'_>) -> Reply {
    let transaction_id = call.field("transaction_id");
    let out_trade_no = call.field("out_trade_no");
    if transaction_id.is_none() && out_trade_no.is_none() {
        return call.fail("PARAM_ERROR", "transaction_id和out_trade_no至少填一个");
    }
    let mut ledger = call.sim.ledger();
    let book = ledger.book(&call.book_key());
    let Some(order) = book.order_mut(transaction_id, out_trade_no, call.now) else {
        return call.fail("ORDERNOTEXIST", "订单不存在");
    };

    let trade_state = order.trade_state();
    let mut fields = match trade_state {
        "SUCCESS" | "REFUND" => paid_fields(order),
        _ => {
            let mut fields = Params::new();
            fields.insert("out_trade_no", order.out_trade_no.as_str());
            fields.insert_opt("attach", order.attach.as_deref());
            fields
        }
    };
    fields.insert("trade_state", trade_state);
    fields.insert("trade_state_desc", order.trade_state_desc());
    fields.insert_opt("device_info", order.device_info.as_deref());
    call.success(fields)
}
