//! `/pay/micropay` (docs/wechat-pay.md §3.1): take a payment with a scanned payment code.
//!
//! Resubmitting an existing out_trade_no never creates a second order. With the same
//! payment code and amount it is idempotent: the reply reflects the order's current state
//! (the same transaction_id once paid, USERPAYING while the prompt is open). With a
//! different code or amount it is ORDERPAID / ORDERREVERSED / ORDERCLOSED / OUT_TRADE_NO_USED.
//! Transport behaviours (slow reply, dropped connection) apply only to the first submission.
//!
//! A new order whose `time_expire` (Beijing `yyyyMMddHHmmss`) has passed in real time when
//! the call arrives is refused with `ORDERCLOSED` and leaves nothing in the books;
//! a `time_expire` that is not such a time is `PARAM_ERROR`.

use std::time::Duration;

use super::{Call, Outcome, Reply, Transport, put, wechat_time};
use crate::params::Params;
use crate::sim::behaviour::{Behaviour, is_wechat_auth_code};
use crate::sim::clock::{add_saturating, parse_wechat_time};
use crate::sim::discrepancy::Discrepancy;
use crate::sim::ledger::{Order, PendingKind, Resolution, Status};

/// The charset WeChat allows in out_trade_no (docs/wechat-pay.md §6.3; `@` accepted as some pages list it).
fn is_valid_out_trade_no(value: &str) -> bool {
    value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@'))
}

pub(super) fn handle(call: &Call<'_>) -> Outcome {
    match run(call) {
        Ok(outcome) => outcome,
        Err(reply) => reply.into(),
    }
}

fn run(call: &Call<'_>) -> Result<Outcome, Reply> {
    let body = call.required("body")?;
    let out_trade_no = call.required("out_trade_no")?;
    call.required("total_fee")?;
    call.required("spbill_create_ip")?;
    let auth_code = call.required("auth_code")?;
    let total_fee = call.amount("total_fee")?;
    if !is_valid_out_trade_no(out_trade_no) {
        return Err(call.fail("PARAM_ERROR", "out_trade_no参数长度有误或含有非法字符"));
    }
    if body.chars().count() > 128 {
        return Err(call.fail("PARAM_ERROR", "body参数长度有误"));
    }
    if auth_code.len() > 128 {
        return Err(call.fail("PARAM_ERROR", "auth_code参数长度有误"));
    }
    if call
        .field("fee_type")
        .is_some_and(|fee_type| fee_type != "CNY")
    {
        return Err(call.fail("PARAM_ERROR", "fee_type参数错误,境内商户仅支持CNY"));
    }
    if call.sandbox && !(1..=3).contains(&total_fee) {
        return Err(Reply::Fail(format!(
            "沙箱支付金额({total_fee})无效，请检查需要验收的case"
        )));
    }

    let time_expire = match call.field("time_expire") {
        Some(value) => Some(
            parse_wechat_time(value)
                .ok_or_else(|| call.fail("PARAM_ERROR", "time_expire时间格式错误"))?,
        ),
        None => None,
    };

    let now = call.now;
    let mut ledger = call.sim.ledger();
    let book_key = call.book_key();
    if let Some(order) = ledger.book(&book_key).orders.get_mut(out_trade_no) {
        order.settle(now);
        if order.hidden_from_merchant {
            // The LostPaidReply row: every reply about this order is lost on the way.
            return Ok(Outcome {
                reply: replay(call, order, auth_code, total_fee),
                transport: Transport::Drop,
            });
        }
        return Ok(replay(call, order, auth_code, total_fee).into());
    }
    // A new order arriving after its own time_expire is refused and nothing is kept, so
    // orderquery still answers ORDERNOTEXIST (a modelling choice, docs/wechat-pay.md §13).
    // The sender wrote time_expire on its own clock, which runs in real time: it is compared
    // with the real time of arrival, not the (possibly faster) simulated clock.
    if time_expire.is_some_and(|expire| chrono::Utc::now() > expire) {
        return Err(call.fail("ORDERCLOSED", "订单已关闭"));
    }
    if !is_wechat_auth_code(auth_code) {
        return Err(call.fail("AUTH_CODE_INVALID", "101 付款码无效,请重新扫码"));
    }
    if ledger
        .book(&book_key)
        .used_auth_codes
        .contains_key(auth_code)
    {
        return Err(call.fail("AUTH_CODE_ERROR", "每个二维码仅限使用一次，请刷新再试"));
    }

    let behaviour = negative_test(call).unwrap_or_else(|| Behaviour::of(auth_code));
    let after = |duration: Duration| add_saturating(now, duration);
    let status = match behaviour {
        Behaviour::Expired => {
            return Err(call.fail("AUTHCODEEXPIRE", "二维码已过期，请用户在微信上刷新后再试"));
        }
        Behaviour::Invalid => {
            return Err(call.fail("AUTH_CODE_INVALID", "101 付款码无效,请重新扫码"));
        }
        Behaviour::Gateway502 => {
            return Ok(Reply::Html(502).into());
        }
        Behaviour::PasswordFree
        | Behaviour::SystemErrorPaid
        | Behaviour::SlowReply { .. }
        | Behaviour::DropAfterCommit
        | Behaviour::LostPaidReply => Status::Paid,
        Behaviour::PasswordThenConfirm { after: delay } => Status::Pending {
            kind: PendingKind::Password,
            resolves: Some((after(delay), Resolution::Confirm)),
        },
        Behaviour::PasswordThenCancel { after: delay } => Status::Pending {
            kind: PendingKind::Password,
            resolves: Some((after(delay), Resolution::Cancel)),
        },
        Behaviour::PasswordWaits => Status::Pending {
            kind: PendingKind::Password,
            resolves: None,
        },
        Behaviour::NotEnough => Status::PayFailed {
            err_code: "NOTENOUGH",
            err_code_des: "余额不足",
        },
        Behaviour::BankError { decline_after } => Status::Pending {
            kind: PendingKind::Bank,
            resolves: Some((after(decline_after), Resolution::Decline)),
        },
    };

    let transaction_id = ledger.next_transaction_id(now);
    let order = Order {
        out_trade_no: out_trade_no.to_owned(),
        transaction_id,
        appid: call
            .field("appid")
            .unwrap_or(&call.merchant.appid)
            .to_owned(),
        mch_id: call.merchant.mch_id.clone(),
        sub_mch_id: call.field("sub_mch_id").map(str::to_owned),
        sub_appid: call.field("sub_appid").map(str::to_owned),
        sandbox: call.sandbox,
        trade_type: "MICROPAY".to_owned(),
        device_info: call.field("device_info").map(str::to_owned),
        body: body.to_owned(),
        attach: call.field("attach").map(str::to_owned),
        total_fee,
        auth_code: auth_code.to_owned(),
        behaviour,
        openid: openid_for(auth_code),
        created_at: now,
        paid_at: (status == Status::Paid).then_some(now),
        status,
        refunds: Vec::new(),
        billed_fee: None,
        hidden_from_merchant: behaviour == Behaviour::LostPaidReply,
    };
    let reply = match behaviour {
        Behaviour::SystemErrorPaid => call.fail("SYSTEMERROR", "系统超时"),
        Behaviour::BankError { .. } => call.fail("BANKERROR", "银行系统异常"),
        _ => reply_for(call, &order),
    };
    if behaviour == Behaviour::LostPaidReply {
        ledger.record_discrepancy(Discrepancy::lost_paid_reply(&order));
    }
    ledger.book(&book_key).insert(order);
    drop(ledger);

    let transport = match behaviour {
        Behaviour::SlowReply { delay } => {
            Transport::Delay(delay.unwrap_or(call.sim.settings().slow_reply_delay))
        }
        Behaviour::DropAfterCommit | Behaviour::LostPaidReply => Transport::Drop,
        _ => Transport::Reply,
    };
    Ok(Outcome { reply, transport })
}

/// The reply for an order in its current state, as the first submission would have got it.
fn reply_for(call: &Call<'_>, order: &Order) -> Reply {
    match order.status {
        Status::Paid => call.success(paid_fields(order)),
        Status::Pending {
            kind: PendingKind::Password,
            ..
        } => call.fail("USERPAYING", "需要用户输入支付密码"),
        Status::Pending {
            kind: PendingKind::Bank,
            ..
        } => call.fail("BANKERROR", "银行系统异常"),
        Status::PayFailed {
            err_code,
            err_code_des,
        } => call.fail(err_code, err_code_des),
        Status::Revoked { .. } => call.fail("ORDERREVERSED", "订单已撤销,请重新下单支付"),
        Status::Closed { .. } => call.fail("ORDERCLOSED", "订单已关闭"),
    }
}

/// A resubmission of an existing out_trade_no.
fn replay(call: &Call<'_>, order: &Order, auth_code: &str, total_fee: u64) -> Reply {
    let identical = order.auth_code == auth_code && order.total_fee == total_fee;
    match order.status {
        _ if identical => reply_for(call, order),
        Status::Paid => call.fail("ORDERPAID", "该订单已支付"),
        Status::Revoked { .. } => call.fail("ORDERREVERSED", "订单已撤销,请重新下单支付"),
        Status::Closed { .. } => call.fail("ORDERCLOSED", "订单已关闭"),
        _ => call.fail("OUT_TRADE_NO_USED", "商户订单号重复"),
    }
}

/// The payment fields of a paid micropay reply (docs/wechat-pay.md §3.1).
pub(super) fn paid_fields(order: &Order) -> Params {
    let mut fields = Params::new();
    fields.insert("openid", order.openid.as_str());
    fields.insert("is_subscribe", "N");
    fields.insert("trade_type", order.trade_type.as_str());
    fields.insert("bank_type", "CMC");
    put(&mut fields, "total_fee", order.total_fee);
    fields.insert("fee_type", "CNY");
    put(&mut fields, "cash_fee", order.total_fee);
    fields.insert("cash_fee_type", "CNY");
    fields.insert("transaction_id", order.transaction_id.as_str());
    fields.insert("out_trade_no", order.out_trade_no.as_str());
    fields.insert_opt("attach", order.attach.as_deref());
    if let Some(paid_at) = order.paid_at {
        fields.insert("time_end", wechat_time(paid_at));
    }
    fields
}

/// A stable openid per customer: the code's prefix and free digits stand for the customer.
fn openid_for(auth_code: &str) -> String {
    use md5::{Digest, Md5};
    let customer = auth_code.get(..10).unwrap_or(auth_code);
    let digest = hex::encode(Md5::digest(customer.as_bytes()));
    format!("oSIM{}", &digest[..24])
}

/// The sandbox's `Wechatpay-Negative-Test` header cases (docs/wechat-pay.md §1.3), mapped onto behaviours.
fn negative_test(call: &Call<'_>) -> Option<Behaviour> {
    if !call.sandbox {
        return None;
    }
    let case = call.headers.get("Wechatpay-Negative-Test")?.to_str().ok()?;
    match case {
        "MICROPAY_USERPAYING" => Some(Behaviour::PasswordWaits),
        "MICROPAY_TIMEOUT" => Some(Behaviour::SlowReply { delay: None }),
        "MICROPAY_PAYERROR" => Some(Behaviour::BankError {
            decline_after: Duration::from_secs(5),
        }),
        "MICROPAY_PAY_QUERY_TIMEOUT" => Some(Behaviour::DropAfterCommit),
        _ => None,
    }
}
