//! `/pay/closeorder` (docs/wechat-pay.md §3.6, §5.6). WeChat meant it for non-micropay orders; the
//! simulator applies the same rules to its micropay orders: an unpaid order is closed, a
//! paid one answers ORDERPAID, a closed or revoked one ORDERCLOSED. The real 5-minute
//! minimum age is not enforced.

use super::{Call, Reply};
use crate::params::Params;
use crate::sim::ledger::Status;

pub(super) fn handle(call: &Call<'_>) -> Reply {
    let out_trade_no = match call.required("out_trade_no") {
        Ok(out_trade_no) => out_trade_no,
        Err(reply) => return reply,
    };
    let mut ledger = call.sim.ledger();
    let Some(order) = ledger
        .book(&call.book_key())
        .order_mut(None, Some(out_trade_no), call.now)
    else {
        return call.fail("ORDERNOTEXIST", "订单不存在");
    };
    match order.status {
        Status::Paid => call.fail("ORDERPAID", "订单已支付，不能发起关单"),
        Status::Closed { .. } => call.fail("ORDERCLOSED", "订单已关闭"),
        Status::Revoked { .. } => call.fail("ORDERCLOSED", "订单已撤销"),
        Status::Pending { .. } | Status::PayFailed { .. } => {
            order.status = Status::Closed { at: call.now };
            let mut fields = Params::new();
            fields.insert("result_msg", "OK");
            call.success(fields)
        }
    }
}
