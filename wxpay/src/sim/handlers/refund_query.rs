//! `/pay/refundquery` (docs/wechat-pay.md §3.5): an order's refunds with `*_$n` fields.
//!
//! Looked up by refund_id, out_refund_no, transaction_id or out_trade_no (that priority).
//! By refund number only that refund is listed; by order number all of them, ten per page
//! from `offset`.

use super::{Call, Reply, put};
use crate::params::Params;
use crate::sim::clock::beijing;

/// Refunds listed per reply when querying by order.
const PAGE: usize = 10;

pub(super) fn handle(call: &Call<'_>) -> Reply {
    let offset = match call.field("offset") {
        None => 0,
        Some(offset) => match offset.parse::<usize>() {
            Ok(offset) => offset,
            Err(_) => return call.fail("PARAM_ERROR", "offset参数错误"),
        },
    };
    let refund_id = call.field("refund_id");
    let out_refund_no = call.field("out_refund_no");
    let transaction_id = call.field("transaction_id");
    let out_trade_no = call.field("out_trade_no");
    if [refund_id, out_refund_no, transaction_id, out_trade_no]
        .iter()
        .all(Option::is_none)
    {
        return call.fail(
            "PARAM_ERROR",
            "refund_id、out_refund_no、transaction_id、out_trade_no至少填一个",
        );
    }

    let mut ledger = call.sim.ledger();
    let book = ledger.book(&call.book_key());
    let order_key = if let Some(refund_id) = refund_id {
        book.by_refund_id.get(refund_id).cloned()
    } else if let Some(out_refund_no) = out_refund_no {
        book.by_out_refund_no.get(out_refund_no).cloned()
    } else {
        book.find_order(transaction_id, out_trade_no, call.now)
    };
    let Some(order) = order_key.and_then(|key| book.orders.get_mut(&key)) else {
        return call.fail("REFUNDNOTEXIST", "not exist");
    };
    order.settle(call.now);

    let selected: Vec<_> = order
        .refunds
        .iter()
        .filter(|refund| match (refund_id, out_refund_no) {
            (Some(refund_id), _) => refund.refund_id == refund_id,
            (None, Some(out_refund_no)) => refund.out_refund_no == out_refund_no,
            (None, None) => true,
        })
        .collect();
    if selected.is_empty() || offset >= selected.len() {
        return call.fail("REFUNDNOTEXIST", "not exist");
    }
    let total = selected.len();
    let page: Vec<_> = selected.into_iter().skip(offset).take(PAGE).collect();

    let mut fields = Params::new();
    fields.insert("transaction_id", order.transaction_id.as_str());
    fields.insert("out_trade_no", order.out_trade_no.as_str());
    put(&mut fields, "total_fee", order.total_fee);
    fields.insert("fee_type", "CNY");
    put(&mut fields, "cash_fee", order.total_fee);
    put(&mut fields, "total_refund_count", total);
    put(&mut fields, "refund_count", page.len());
    for (n, refund) in page.iter().enumerate() {
        fields.insert(format!("out_refund_no_{n}"), refund.out_refund_no.as_str());
        fields.insert(format!("refund_id_{n}"), refund.refund_id.as_str());
        fields.insert(format!("refund_channel_{n}"), "ORIGINAL");
        put(&mut fields, &format!("refund_fee_{n}"), refund.refund_fee);
        put(
            &mut fields,
            &format!("settlement_refund_fee_{n}"),
            refund.refund_fee,
        );
        let status = refund.status(call.now);
        fields.insert(format!("refund_status_{n}"), status);
        fields.insert(
            format!("refund_account_{n}"),
            "REFUND_SOURCE_UNSETTLED_FUNDS",
        );
        // WeChat's own misspelling "accout" is the real field name (docs/wechat-pay.md §12.15).
        fields.insert(format!("refund_recv_accout_{n}"), "支付用户的零钱");
        if status == "SUCCESS" {
            fields.insert(
                format!("refund_success_time_{n}"),
                refund
                    .completes_at
                    .with_timezone(&beijing())
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
            );
        }
    }
    call.success(fields)
}
