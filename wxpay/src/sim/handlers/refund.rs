//! `/secapi/pay/refund` (docs/wechat-pay.md §3.4, §5.4): apply for a (partial) refund of a paid order.
//!
//! Idempotent on out_refund_no: the same number with the same amounts returns the same
//! refund_id; with other amounts REFUND_FEE_MISMATCH. Refunds together never exceed the
//! order's total, and an order takes at most 50. A new refund is `PROCESSING` until the
//! simulator's refund delay (simulated time) has passed, then `SUCCESS` (see refundquery).
//!
//! Spacing (docs/wechat-pay.md §3.4: partial refunds of one order "≥1 minute apart"): a *new* application
//! (an out_refund_no the order has not seen) that comes less than the simulator's refund
//! spacing (60 simulated s by default) after the order's previous application is refused
//! with `FREQUENCY_LIMITED`, and nothing is stored. The spec names no err_code for this rule;
//! `FREQUENCY_LIMITED` is the one WeChat documents for refund frequency limits (docs/wechat-pay.md §5.4, class
//! RETRY-SAME "slower"), so a client that retries the same request later is right. A retry
//! of an out_refund_no already applied for is idempotent and never refused.

use super::{Call, Reply, put};
use crate::params::Params;
use crate::sim::clock::add_saturating;
use crate::sim::ledger::{Order, Refund, Status};

/// WeChat's limit on partial refunds per order.
const MAX_REFUNDS_PER_ORDER: usize = 50;

pub(super) fn handle(call: &Call<'_>) -> Reply {
    match run(call) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn run(call: &Call<'_>) -> Result<Reply, Reply> {
    if call.client_cn.as_deref() != Some(call.merchant.mch_id.as_str()) {
        return Err(Reply::Fail("certificate not match".into()));
    }
    let out_refund_no = call.required("out_refund_no")?;
    let total_fee = call.amount("total_fee")?;
    let refund_fee = call.amount("refund_fee")?;
    let transaction_id = call.field("transaction_id");
    let out_trade_no = call.field("out_trade_no");
    if transaction_id.is_none() && out_trade_no.is_none() {
        return Err(call.fail("PARAM_ERROR", "transaction_id和out_trade_no至少填一个"));
    }
    if out_refund_no.len() > 64 {
        return Err(call.fail("PARAM_ERROR", "out_refund_no参数长度有误"));
    }
    if call
        .field("refund_fee_type")
        .is_some_and(|fee_type| fee_type != "CNY")
    {
        return Err(call.fail("PARAM_ERROR", "refund_fee_type与支付币种不一致"));
    }

    let settings = call.sim.settings();
    let (refund_delay, refund_spacing) = (settings.refund_delay, settings.refund_spacing);
    let mut ledger = call.sim.ledger();
    let refund_id = ledger.next_refund_id(call.now);
    let book = ledger.book(&call.book_key());
    let Some(order_key) = book.find_order(transaction_id, out_trade_no) else {
        return Err(call.fail("ORDERNOTEXIST", "订单不存在"));
    };
    if let Some(owner) = book.by_out_refund_no.get(out_refund_no) {
        if *owner != order_key {
            return Err(call.fail("INVALID_REQUEST", "退款单号已被其他订单使用"));
        }
    }
    let Some(order) = book.orders.get_mut(&order_key) else {
        return Err(call.fail("ORDERNOTEXIST", "订单不存在"));
    };
    order.settle(call.now);

    if let Some(existing) = order
        .refunds
        .iter()
        .find(|refund| refund.out_refund_no == out_refund_no)
    {
        if existing.total_fee != total_fee || existing.refund_fee != refund_fee {
            return Err(call.fail(
                "REFUND_FEE_MISMATCH",
                "订单金额或退款金额与之前请求不一致，请核实后再试",
            ));
        }
        return Ok(call.success(refund_fields(order, existing)));
    }

    match order.status {
        Status::Paid => {}
        Status::Revoked { .. } if order.paid_at.is_some() => {
            return Err(call.fail("INVALID_REQUEST", "订单已撤销，资金已退回"));
        }
        _ => return Err(call.fail("ORDERNOTEXIST", "订单不存在或未支付")),
    }
    if total_fee != order.total_fee {
        return Err(call.fail("INVALID_REQUEST", "订单金额total_fee与原订单不一致"));
    }
    if order.refunds.len() >= MAX_REFUNDS_PER_ORDER {
        return Err(call.fail("INVALID_REQUEST", "订单已经超过退款次数限制(50次)"));
    }
    if let Some(previous) = order.refunds.last() {
        if call.now < add_saturating(previous.created_at, refund_spacing) {
            return Err(call.fail(
                "FREQUENCY_LIMITED",
                "频率限制，同一订单的两次退款申请须间隔一分钟",
            ));
        }
    }
    if order.refunded_fee() + refund_fee > order.total_fee {
        return Err(call.fail("ERROR", "订单可退金额不足"));
    }

    let refund = Refund {
        out_refund_no: out_refund_no.to_owned(),
        refund_id,
        total_fee,
        refund_fee,
        created_at: call.now,
        completes_at: add_saturating(call.now, refund_delay),
    };
    let fields = refund_fields(order, &refund);
    book.insert_refund(&order_key, refund);
    Ok(call.success(fields))
}

fn refund_fields(order: &Order, refund: &Refund) -> Params {
    let mut fields = Params::new();
    fields.insert("transaction_id", order.transaction_id.as_str());
    fields.insert("out_trade_no", order.out_trade_no.as_str());
    fields.insert("out_refund_no", refund.out_refund_no.as_str());
    fields.insert("refund_id", refund.refund_id.as_str());
    put(&mut fields, "refund_fee", refund.refund_fee);
    put(&mut fields, "total_fee", order.total_fee);
    fields.insert("fee_type", "CNY");
    put(&mut fields, "cash_fee", order.total_fee);
    fields.insert("cash_fee_type", "CNY");
    put(&mut fields, "cash_refund_fee", refund.refund_fee);
    put(&mut fields, "coupon_refund_fee", 0);
    put(&mut fields, "coupon_refund_count", 0);
    fields
}
