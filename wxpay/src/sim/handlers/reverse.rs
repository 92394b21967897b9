//! `/secapi/pay/reverse` (docs/wechat-pay.md §3.3, §5.3): close an unpaid micropay order or refund a
//! paid one. Every SUCCESS-envelope reply carries `recall`.
//!
//! - unknown order → SUCCESS, `recall=N` (WeChat treats it as nothing to do);
//! - older than 7 simulated days → REVERSE_EXPIRE;
//! - password prompt open → USERPAYING (正在支付中不能发起撤销), `recall=Y`;
//! - anything else → REVOKED (money returned if it was paid), SUCCESS, `recall=N`;
//!   reversing again is SUCCESS again (re-entrant).
//!
//! The client certificate must belong to the merchant in `mch_id`; otherwise the reply is
//! `return_code=FAIL` `certificate not match`, as WeChat answers a provider that uses a
//! sub-merchant's certificate.

use super::{Call, Reply};
use crate::params::Params;
use crate::sim::ledger::{PendingKind, Status};

fn recall(value: &str) -> Params {
    let mut params = Params::new();
    params.insert("recall", value);
    params
}

pub(super) fn handle(call: &Call<'_>) -> Reply {
    if call.client_cn.as_deref() != Some(call.merchant.mch_id.as_str()) {
        return Reply::Fail("certificate not match".into());
    }
    let transaction_id = call.field("transaction_id");
    let out_trade_no = call.field("out_trade_no");
    if transaction_id.is_none() && out_trade_no.is_none() {
        return call.fail_with(
            "PARAM_ERROR",
            "transaction_id和out_trade_no至少填一个",
            recall("N"),
        );
    }
    let mut ledger = call.sim.ledger();
    let book = ledger.book(&call.book_key());
    let Some(order) = book.order_mut(transaction_id, out_trade_no, call.now) else {
        return call.success(recall("N"));
    };
    if call.now > order.created_at + crate::sim::reverse_window() {
        return call.fail_with(
            "REVERSE_EXPIRE",
            "订单已超过撤销期限,请使用退款接口",
            recall("N"),
        );
    }
    match order.status {
        Status::Pending {
            kind: PendingKind::Password,
            ..
        } => call.fail_with("USERPAYING", "正在支付中不能发起撤销", recall("Y")),
        // Already final without money held: nothing to return, the reverse is a no-op.
        Status::Revoked { .. } | Status::Closed { .. } => call.success(recall("N")),
        Status::Pending { .. } | Status::Paid | Status::PayFailed { .. } => {
            order.status = Status::Revoked {
                at: call.now,
                automatic: false,
            };
            call.success(recall("N"))
        }
    }
}
