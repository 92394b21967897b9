//! Turns what the WeChat client returned into the state machine's outcomes, and WeChat's
//! error codes into sentences a cashier can act on.
//!
//! The rule throughout: anything that cannot be trusted (a timeout, a dropped connection, an
//! HTML error page, a reply whose signature does not verify) is *unknown*, never "paid" and
//! never "failed".

use paycode_api::{CashierCopy, FailureCode};
use wxpay::codes::{Api, ErrCode, ErrorClass};
use wxpay::messages::{
    MicropayResponse, OrderQueryResponse, RefundQueryResponse, RefundResponse, RefundStatus,
    ReverseResponse, TradeState,
};
use wxpay::time::{parse_wechat_datetime, parse_wechat_time};

use super::machine::{MicropayOutcome, QueryOutcome, ReverseOutcome};
use crate::store::Millis;

/// Classifies a micropay call.
pub fn micropay(result: wxpay::Result<MicropayResponse>) -> MicropayOutcome {
    match result {
        Ok(reply) => MicropayOutcome::Paid {
            paid_at: wechat_time(reply.time_end.as_deref(), parse_wechat_time),
            transaction_id: reply.transaction_id,
        },
        Err(wxpay::Error::NotSent(reason)) => MicropayOutcome::NotSent {
            reason: reason.to_string(),
        },
        Err(wxpay::Error::Protocol { return_msg }) => MicropayOutcome::Rejected {
            message: format!("{REJECTED}：{return_msg}"),
        },
        Err(wxpay::Error::Business(business)) if business.err_code == ErrCode::UserPaying => {
            MicropayOutcome::UserPaying
        }
        Err(error @ wxpay::Error::Business(_)) => {
            let Some(code) = error.err_code().cloned() else {
                return unknown_micropay(&error);
            };
            match error.class(Api::Micropay) {
                ErrorClass::Final => MicropayOutcome::Declined {
                    message: decline_message(&code).to_owned(),
                    code: code.as_str().to_owned(),
                },
                ErrorClass::Configuration => MicropayOutcome::Rejected {
                    message: format!("{REJECTED}（{}），请联系管理员检查配置", code.as_str()),
                },
                ErrorClass::Unknown | ErrorClass::RetrySame => unknown_micropay(&error),
            }
        }
        Err(error) => unknown_micropay(&error),
    }
}

fn unknown_micropay(error: &wxpay::Error) -> MicropayOutcome {
    MicropayOutcome::Unknown {
        reason: error.to_string(),
    }
}

/// WeChat's timestamp `value` read by `parse` (docs/wechat-pay.md §6.4); `None` when absent
/// or unreadable: the books then date the record by the proxy's own time.
fn wechat_time(
    value: Option<&str>,
    parse: fn(&str) -> Option<chrono::DateTime<chrono::Utc>>,
) -> Option<Millis> {
    value.and_then(parse).map(Millis::from_datetime)
}

/// Classifies an orderquery call.
pub fn query(result: wxpay::Result<OrderQueryResponse>) -> QueryOutcome {
    match result {
        Ok(reply) => match (&reply.trade_state, reply.payment) {
            (TradeState::Success | TradeState::Refund, Some(payment)) => QueryOutcome::Paid {
                paid_at: wechat_time(payment.time_end.as_deref(), parse_wechat_time),
                transaction_id: payment.transaction_id,
            },
            (TradeState::Success | TradeState::Refund, None) => QueryOutcome::Unknown {
                reason: "a paid order without payment details".into(),
            },
            (TradeState::UserPaying, _) => QueryOutcome::UserPaying,
            (TradeState::NotPay | TradeState::Accept, _) => QueryOutcome::NotPaid,
            (TradeState::Closed | TradeState::Revoked, _) => QueryOutcome::Closed,
            (TradeState::PayError, _) => QueryOutcome::PayError,
            (TradeState::Other(state), _) => QueryOutcome::Unknown {
                reason: format!("unknown trade_state {state}"),
            },
        },
        Err(wxpay::Error::Business(business)) if business.err_code == ErrCode::OrderNotExist => {
            QueryOutcome::NotFound
        }
        Err(error) => QueryOutcome::Unknown {
            reason: error.to_string(),
        },
    }
}

/// Classifies a reverse call.
pub fn reverse(result: wxpay::Result<ReverseResponse>) -> ReverseOutcome {
    match result {
        Ok(reply) if reply.recall => ReverseOutcome::Retry {
            reason: "recall=Y".into(),
        },
        Ok(_) => ReverseOutcome::Done,
        Err(wxpay::Error::Business(business))
            if wxpay::messages::recall_requested(&business.reply) =>
        {
            ReverseOutcome::Retry {
                reason: format!("{} with recall=Y", business.err_code),
            }
        }
        // An order WeChat does not know was never created: nothing to reverse.
        Err(wxpay::Error::Business(business)) if business.err_code == ErrCode::OrderNotExist => {
            ReverseOutcome::Done
        }
        Err(error) => match error.class(Api::Reverse) {
            ErrorClass::Final | ErrorClass::Configuration => ReverseOutcome::Impossible {
                reason: error.to_string(),
            },
            ErrorClass::Unknown | ErrorClass::RetrySame => ReverseOutcome::Retry {
                reason: error.to_string(),
            },
        },
    }
}

/// How a refund application ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// WeChat accepted it; the money is on its way.
    Accepted {
        /// WeChat's refund id.
        refund_id: String,
    },
    /// WeChat refused it for now with `FREQUENCY_LIMITED`: too soon after the order's
    /// previous refund (the one-minute spacing, docs/wechat-pay.md §3.4) or another frequency limit. Nothing
    /// was applied; hold it and send the same application again after the spacing.
    TooSoon,
    /// Send the same application again later (it is idempotent on `out_refund_no`).
    Retry {
        /// What happened.
        reason: String,
    },
    /// WeChat refused it for good.
    Refused {
        /// WeChat's err_code or the proxy's own code.
        code: String,
        /// A sentence for the cashier.
        message: String,
    },
}

/// Classifies a refund call.
pub fn refund(result: wxpay::Result<RefundResponse>) -> RefundOutcome {
    match result {
        Ok(reply) => RefundOutcome::Accepted {
            refund_id: reply.refund_id,
        },
        Err(wxpay::Error::Protocol { return_msg }) => RefundOutcome::Refused {
            code: FailureCode::WechatRejected.as_str().into(),
            message: format!("{REJECTED}：{return_msg}"),
        },
        Err(wxpay::Error::Business(business)) if business.err_code == ErrCode::FrequencyLimited => {
            RefundOutcome::TooSoon
        }
        Err(error) => match (error.class(Api::Refund), error.err_code()) {
            (ErrorClass::Final | ErrorClass::Configuration, Some(code)) => RefundOutcome::Refused {
                message: refund_message(code).to_owned(),
                code: code.as_str().to_owned(),
            },
            _ => RefundOutcome::Retry {
                reason: error.to_string(),
            },
        },
    }
}

/// Where a refund stands according to refundquery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundQueryOutcome {
    /// The money is back with the customer.
    Succeeded {
        /// WeChat's success time (`refund_success_time_$n`), when the reply carried a
        /// readable one.
        refunded_at: Option<Millis>,
    },
    /// Still moving.
    Processing,
    /// WeChat closed it or it needs handling in the merchant platform.
    Failed {
        /// The refund status or err_code.
        code: String,
        /// A sentence for the cashier.
        message: String,
    },
    /// WeChat has no such refund: the application never arrived.
    NotFound,
    /// The query failed; ask again later.
    Unknown {
        /// What happened.
        reason: String,
    },
}

/// Classifies a refundquery call for the refund numbered `out_refund_no`.
pub fn refund_query(
    result: wxpay::Result<RefundQueryResponse>,
    out_refund_no: &str,
) -> RefundQueryOutcome {
    match result {
        Ok(reply) => {
            let Some(record) = reply
                .refunds
                .iter()
                .find(|record| record.out_refund_no == out_refund_no)
            else {
                return RefundQueryOutcome::NotFound;
            };
            match &record.refund_status {
                RefundStatus::Success => RefundQueryOutcome::Succeeded {
                    refunded_at: wechat_time(
                        record.refund_success_time.as_deref(),
                        parse_wechat_datetime,
                    ),
                },
                RefundStatus::Processing => RefundQueryOutcome::Processing,
                RefundStatus::RefundClose => refund_failed(FailureCode::RefundClose),
                RefundStatus::Change => refund_failed(FailureCode::Change),
                RefundStatus::Other(status) => RefundQueryOutcome::Unknown {
                    reason: format!("unknown refund_status {status}"),
                },
            }
        }
        Err(wxpay::Error::Business(business)) if business.err_code == ErrCode::RefundNotExist => {
            RefundQueryOutcome::NotFound
        }
        Err(error) => RefundQueryOutcome::Unknown {
            reason: error.to_string(),
        },
    }
}

/// The start of the message for a request WeChat refused: the copy of
/// [`FailureCode::WechatRejected`], followed by WeChat's reason.
const REJECTED: &str = FailureCode::WechatRejected
    .copy_or(CashierCopy::PAYMENT_FAILED)
    .zh;

/// A refund that refundquery shows failed with `code`, with its cashier copy.
fn refund_failed(code: FailureCode) -> RefundQueryOutcome {
    let (code, message) = code.with_copy(CashierCopy::REFUND_FAILED);
    RefundQueryOutcome::Failed {
        code: code.into(),
        message: message.into(),
    }
}

/// What to tell the cashier when micropay declined with `code` (docs/cashier-screens.md §6.2): the
/// copy of that [`FailureCode`] (`paycode_api::codes`).
pub fn decline_message(code: &ErrCode) -> &'static str {
    match FailureCode::parse(code.as_str()) {
        code if !code.is_refund_failure() => code.copy_or(CashierCopy::PAYMENT_FAILED).zh,
        _ => CashierCopy::PAYMENT_FAILED.zh,
    }
}

/// What to tell the cashier when a refund was refused with `code`: the copy of that
/// [`FailureCode`] when it is a refund's.
pub fn refund_message(code: &ErrCode) -> &'static str {
    match FailureCode::parse(code.as_str()) {
        code if code.is_refund_failure() => code.copy_or(CashierCopy::REFUND_FAILED).zh,
        _ => CashierCopy::REFUND_FAILED.zh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxpay::Params;
    use wxpay::error::{BusinessError, MaybeSent, NotSent};

    fn business(api: Api, code: &str, recall: Option<&str>) -> wxpay::Error {
        let mut reply = Params::new();
        if let Some(recall) = recall {
            reply.insert("recall", recall);
        }
        wxpay::Error::Business(BusinessError {
            api,
            err_code: ErrCode::parse(code),
            err_code_des: String::new(),
            reply,
        })
    }

    #[test]
    fn micropay_errors_are_classified_by_what_wechat_may_have_done() {
        assert_eq!(
            micropay(Err(business(Api::Micropay, "USERPAYING", None))),
            MicropayOutcome::UserPaying
        );
        assert!(matches!(
            micropay(Err(business(Api::Micropay, "SYSTEMERROR", None))),
            MicropayOutcome::Unknown { .. }
        ));
        assert!(matches!(
            micropay(Err(business(Api::Micropay, "SOMETHING_NEW", None))),
            MicropayOutcome::Unknown { .. }
        ));
        assert_eq!(
            micropay(Err(business(Api::Micropay, "NOTENOUGH", None))),
            MicropayOutcome::Declined {
                code: "NOTENOUGH".into(),
                message: "余额不足，请顾客更换银行卡或使用其他付款方式".into(),
            }
        );
        assert!(matches!(
            micropay(Err(business(Api::Micropay, "SIGNERROR", None))),
            MicropayOutcome::Rejected { .. }
        ));
        assert!(matches!(
            micropay(Err(wxpay::Error::MaybeSent(MaybeSent::HttpStatus {
                status: 502
            }))),
            MicropayOutcome::Unknown { .. }
        ));
        assert!(matches!(
            micropay(Err(wxpay::Error::NotSent(NotSent::Dns {
                host: "h".into()
            }))),
            MicropayOutcome::NotSent { .. }
        ));
    }

    #[test]
    fn reverse_repeats_on_recall_and_gives_up_only_on_final_codes() {
        assert!(matches!(
            reverse(Err(business(Api::Reverse, "SYSTEMERROR", Some("Y")))),
            ReverseOutcome::Retry { .. }
        ));
        assert!(matches!(
            reverse(Err(business(Api::Reverse, "USERPAYING", None))),
            ReverseOutcome::Retry { .. }
        ));
        assert!(matches!(
            reverse(Err(business(Api::Reverse, "REVERSE_EXPIRE", Some("N")))),
            ReverseOutcome::Impossible { .. }
        ));
        assert_eq!(
            reverse(Err(business(Api::Reverse, "ORDERNOTEXIST", None))),
            ReverseOutcome::Done
        );
    }

    #[test]
    fn copy_comes_from_the_shared_table_for_its_kind_of_failure() {
        assert_eq!(
            decline_message(&ErrCode::NotEnough),
            "余额不足，请顾客更换银行卡或使用其他付款方式"
        );
        assert_eq!(
            refund_message(&ErrCode::TradeOverdue),
            "订单已超过退款期限（一年），无法退款"
        );
        // A payment's code refusing a refund, and the reverse, get the generic copy.
        assert_eq!(
            refund_message(&ErrCode::OrderClosed),
            CashierCopy::REFUND_FAILED.zh
        );
        assert_eq!(
            decline_message(&ErrCode::CertError),
            CashierCopy::PAYMENT_FAILED.zh
        );
        assert_eq!(
            refund_message(&ErrCode::parse("SOMETHING_NEW")),
            "退款失败，请联系管理员"
        );
    }

    #[test]
    fn refund_retries_what_can_be_retried() {
        assert!(matches!(
            refund(Err(business(Api::Refund, "NOTENOUGH", None))),
            RefundOutcome::Retry { .. }
        ));
        assert!(matches!(
            refund(Err(business(Api::Refund, "TRADE_OVERDUE", None))),
            RefundOutcome::Refused { .. }
        ));
        assert_eq!(
            refund(Err(business(Api::Refund, "FREQUENCY_LIMITED", None))),
            RefundOutcome::TooSoon
        );
        assert!(matches!(
            refund_query(
                Err(business(Api::RefundQuery, "REFUNDNOTEXIST", None)),
                "R1"
            ),
            RefundQueryOutcome::NotFound
        ));
    }
}
