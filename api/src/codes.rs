//! The codes the proxy answers with, and the cashier copy for each way a payment or refund
//! can fail.
//!
//! - [`ErrorCode`]: `ErrorBody.code`, why a request was refused (`INVALID_AMOUNT`, …).
//! - [`FailureCode`]: `Failure.code`, why a payment or refund failed: WeChat's `err_code`
//!   (`NOTENOUGH`, …) or one of the proxy's own (`NOT_SENT`, …).
//! - [`CashierCopy`]: what to tell the cashier for a failure, in Chinese and English. The
//!   proxy's `Failure.message` is the Chinese copy and the app shows the copy in the page's
//!   language, so both read the same table ([`FailureCode::copy`]).
//!
//! Both code types serialize as the plain upper-snake-case string. A code this version does
//! not know (a newer proxy's, or a WeChat `err_code` not listed) is kept unchanged in the
//! `Other` variant, so an older app still shows it and round-trips it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string code enum: its known variants with their wire strings, an `Other`
/// variant for any other string, and the conversions every code type shares.
macro_rules! string_codes {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$doc:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
            /// A code this version does not know, exactly as it was sent.
            Other(String),
        }

        impl $name {
            /// Every known code, in declaration order.
            pub const KNOWN: &'static [$name] = &[$( $name::$variant, )*];

            /// Reads a code; a string that names no known code becomes `Other`.
            pub fn parse(wire: &str) -> $name {
                match wire {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }

            /// The wire string, e.g. `"NOT_FOUND"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $name::Other(other) => other,
                    known => known.known_str().unwrap_or_default(),
                }
            }

            /// The wire string of a known code; `None` for `Other`. Usable in constants.
            pub const fn known_str(&self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($wire), )*
                    $name::Other(_) => None,
                }
            }

            /// Whether this version knows the code (it is not `Other`).
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl From<&str> for $name {
            fn from(wire: &str) -> $name {
                $name::parse(wire)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let wire = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok($name::parse(&wire))
            }
        }
    };
}

string_codes! {
    /// Why the proxy refused a request: `ErrorBody.code`. Apps branch on it, never on the
    /// message. Each code comes with one HTTP status ([`ErrorCode::status`]).
    ErrorCode {
        /// 400: a field has a value that is not allowed, or the request is malformed.
        InvalidRequest = "INVALID_REQUEST",
        /// 400: the body is not JSON.
        InvalidJson = "INVALID_JSON",
        /// 400: the amount is zero or above the configured maximum.
        InvalidAmount = "INVALID_AMOUNT",
        /// 400: a pairing code that is malformed, unknown, already used or expired.
        PairingCodeInvalid = "PAIRING_CODE_INVALID",
        /// 401: no bearer token, or one that is malformed, unknown or revoked.
        Unauthorized = "UNAUTHORIZED",
        /// 403: the terminal's role may not ask for this (a cashier terminal asking for a
        /// manager action); the message names the rule.
        RoleRequired = "ROLE_REQUIRED",
        /// 403: the request needs a manager's approval (header `Paycode-Approval`), and none
        /// was sent, or the one sent is unknown, used, expired, of another kind or another
        /// terminal's; the message names the rule.
        ApprovalRequired = "APPROVAL_REQUIRED",
        /// 403: the manager's name or PIN is wrong; the message says how many attempts are
        /// left before the PIN is locked.
        PinIncorrect = "PIN_INCORRECT",
        /// 403: the manager approves for another store only.
        ManagerWrongStore = "MANAGER_WRONG_STORE",
        /// 404: no such route.
        NotFound = "NOT_FOUND",
        /// 404: no such payment.
        PaymentNotFound = "PAYMENT_NOT_FOUND",
        /// 404: no such refund.
        RefundNotFound = "REFUND_NOT_FOUND",
        /// 404: no such terminal.
        TerminalNotFound = "TERMINAL_NOT_FOUND",
        /// 404: no such mismatch in the terminal's books.
        MismatchNotFound = "MISMATCH_NOT_FOUND",
        /// 405: the path exists but not with this method.
        MethodNotAllowed = "METHOD_NOT_ALLOWED",
        /// 409: an attempt id reused for a different request.
        IdempotencyConflict = "IDEMPOTENCY_CONFLICT",
        /// 409: the record changed at the same time; try again.
        ConcurrentChange = "CONCURRENT_CHANGE",
        /// 409: a refund larger than what is left of the payment.
        RefundExceedsPayment = "REFUND_EXCEEDS_PAYMENT",
        /// 409: the thing to create already exists.
        AlreadyExists = "ALREADY_EXISTS",
        /// 409: a paid payment cannot be cancelled (refund it instead).
        PaymentAlreadyPaid = "PAYMENT_ALREADY_PAID",
        /// 409: only a paid payment can be refunded.
        PaymentNotPaid = "PAYMENT_NOT_PAID",
        /// 409: only a payment that needs attention can be settled.
        PaymentNotInAttention = "PAYMENT_NOT_IN_ATTENTION",
        /// 409: the mismatch is no longer open (resolved, explained, refunded or cleared).
        MismatchSettled = "MISMATCH_SETTLED",
        /// 409: the terminal's store is disabled and takes no new payments (the message
        /// names the store); its payments in progress finish and can still be refunded.
        StoreDisabled = "STORE_DISABLED",
        /// 423: the manager's PIN is locked after repeated failures; `Retry-After` says
        /// when it opens again.
        PinLocked = "PIN_LOCKED",
        /// 413: the body is larger than the proxy accepts.
        BodyTooLarge = "BODY_TOO_LARGE",
        /// 415: a JSON endpoint got a body that is not `application/json`.
        UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
        /// 429: too many requests of this kind (pairing attempts); wait a minute.
        TooManyRequests = "TOO_MANY_REQUESTS",
        /// 500: a bug or an unexpected failure on the proxy.
        Internal = "INTERNAL",
        /// 502: WeChat Pay could not be reached or gave an unusable answer.
        WechatUnavailable = "WECHAT_UNAVAILABLE",
        /// 503: a dependency (the database) is unreachable; retrying later may succeed.
        Unavailable = "UNAVAILABLE",
    }
}

impl ErrorCode {
    /// The HTTP status the proxy answers this code with; `None` for an unknown code.
    pub fn status(&self) -> Option<u16> {
        use ErrorCode::*;
        Some(match self {
            InvalidRequest | InvalidJson | InvalidAmount | PairingCodeInvalid => 400,
            Unauthorized => 401,
            RoleRequired | ApprovalRequired | PinIncorrect | ManagerWrongStore => 403,
            NotFound | PaymentNotFound | RefundNotFound | TerminalNotFound | MismatchNotFound => {
                404
            }
            MethodNotAllowed => 405,
            IdempotencyConflict
            | ConcurrentChange
            | RefundExceedsPayment
            | AlreadyExists
            | PaymentAlreadyPaid
            | PaymentNotPaid
            | StoreDisabled
            | PaymentNotInAttention
            | MismatchSettled => 409,
            BodyTooLarge => 413,
            UnsupportedMediaType => 415,
            PinLocked => 423,
            TooManyRequests => 429,
            Internal => 500,
            WechatUnavailable => 502,
            Unavailable => 503,
            Other(_) => return None,
        })
    }
}

string_codes! {
    /// Why a payment or refund failed: `Failure.code`. WeChat's `err_code` when WeChat
    /// declined (its spelling, e.g. `NOTSUPORTCARD`), else one of the proxy's own codes.
    FailureCode {
        /// WeChat: the payment code expired; the customer must refresh it.
        AuthCodeExpire = "AUTHCODEEXPIRE",
        /// WeChat: not a valid payment code (each code pays once).
        AuthCodeInvalid = "AUTH_CODE_INVALID",
        /// WeChat: the payment code is wrong or already used.
        AuthCodeError = "AUTH_CODE_ERROR",
        /// WeChat: the customer's balance is insufficient.
        NotEnough = "NOTENOUGH",
        /// WeChat (its spelling): the card type is not supported.
        NotSupportCard = "NOTSUPORTCARD",
        /// WeChat: the payer does not match the order.
        BuyerMismatch = "BUYER_MISMATCH",
        /// WeChat: the order is closed.
        OrderClosedByWechat = "ORDERCLOSED",
        /// WeChat: the order was reversed.
        OrderReversed = "ORDERREVERSED",
        /// WeChat: the order number was used for a different order.
        OutTradeNoUsed = "OUT_TRADE_NO_USED",
        /// WeChat: the customer's account is restricted.
        TradeError = "TRADE_ERROR",
        /// WeChat's trade state `PAYERROR`: the payment failed.
        PayError = "PAYERROR",
        /// Proxy: WeChat closed the order without payment.
        OrderClosed = "ORDER_CLOSED",
        /// Proxy: the customer did not finish paying, or the cashier cancelled.
        CustomerCancelled = "CUSTOMER_CANCELLED",
        /// Proxy: WeChat could not be reached, so nothing was charged.
        NotSent = "NOT_SENT",
        /// Proxy: WeChat refused the request itself; the message carries WeChat's reason.
        WechatRejected = "WECHAT_REJECTED",
        /// WeChat refund status `REFUNDCLOSE`: the refund was closed, no money moved.
        RefundClose = "REFUNDCLOSE",
        /// WeChat refund status `CHANGE`: the customer's card cannot take the refund.
        Change = "CHANGE",
        /// Proxy: WeChat never accepted the refund application.
        RefundNotAccepted = "REFUND_NOT_ACCEPTED",
        /// WeChat: the order is past the one-year refund window.
        TradeOverdue = "TRADE_OVERDUE",
        /// WeChat: the customer's account cannot take the refund.
        UserAccountAbnormal = "USER_ACCOUNT_ABNORMAL",
        /// WeChat's generic business error (`ERROR`) for a refund.
        Error = "ERROR",
        /// WeChat: the merchant's client certificate is invalid.
        CertError = "CERT_ERROR",
    }
}

/// What to tell the cashier about a failure, in both of the page's languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CashierCopy {
    /// Simplified Chinese: also the proxy's `Failure.message`.
    pub zh: &'static str,
    /// English.
    pub en: &'static str,
}

impl CashierCopy {
    /// For a declined payment whose code has no copy of its own.
    pub const PAYMENT_FAILED: CashierCopy = CashierCopy {
        zh: "支付失败，未扣款，请重新收款",
        en: "The payment failed and nothing was charged: charge again",
    };
    /// For a refused refund whose code has no copy of its own.
    pub const REFUND_FAILED: CashierCopy = CashierCopy {
        zh: "退款失败，请联系管理员",
        en: "The refund failed: ask the administrator",
    };
}

impl FailureCode {
    /// The cashier copy for this code (the one table both the proxy and the app read);
    /// `None` for a code this version does not know. For
    /// [`FailureCode::WechatRejected`] the proxy's message adds WeChat's reason to the
    /// copy, so prefer that message where it is in the same language
    /// ([`FailureCode::message_has_detail`]).
    pub const fn copy(&self) -> Option<CashierCopy> {
        use FailureCode::*;
        let (zh, en) = match self {
            AuthCodeExpire => (
                "付款码已过期，请顾客刷新付款码后重新扫码",
                "The payment code has expired: ask the customer to refresh it and scan again",
            ),
            AuthCodeInvalid | AuthCodeError => (
                "付款码无效（每个付款码仅限使用一次），请顾客刷新付款码后重新扫码",
                "The payment code is not valid: ask the customer to refresh it and scan again",
            ),
            NotEnough => (
                "余额不足，请顾客更换银行卡或使用其他付款方式",
                "Insufficient balance: ask for another payment method",
            ),
            NotSupportCard => (
                "该卡不支持当前支付，请顾客更换银行卡或使用其他付款方式",
                "This card is not supported: ask the customer to choose another card",
            ),
            BuyerMismatch => (
                "付款人与订单不符，请重新收款",
                "The payer changed: charge again",
            ),
            OrderClosedByWechat | OrderReversed | OrderClosed => (
                "订单已关闭，未扣款，请重新收款",
                "The order is closed and nothing was charged: charge again",
            ),
            OutTradeNoUsed => (
                "订单号重复，未扣款，请重新收款",
                "The order number was already used and nothing was charged: charge again",
            ),
            TradeError => (
                "顾客账户交易受限，请顾客使用其他付款方式",
                "The customer's account is restricted: ask for another payment method",
            ),
            PayError => return Some(CashierCopy::PAYMENT_FAILED),
            CustomerCancelled => (
                "顾客未完成支付，订单已关闭",
                "The customer did not complete the payment; the order is closed",
            ),
            NotSent => (
                "无法连接微信支付，未扣款，请检查网络后重新收款",
                "WeChat Pay could not be reached and nothing was charged: check the network and charge again",
            ),
            WechatRejected => (
                "微信支付拒绝了请求",
                "WeChat Pay refused the request: ask the administrator to check the configuration",
            ),
            RefundClose => (
                "退款已关闭，款项未退回，请重新发起退款",
                "The refund was closed and no money went back: refund again",
            ),
            Change => (
                "退款异常：顾客的银行卡无效或已冻结，请在微信支付商户平台处理",
                "The customer's card cannot take the refund: handle it in the WeChat Pay merchant platform",
            ),
            RefundNotAccepted => (
                "微信支付未受理该退款，款项未退回，请重新发起退款",
                "WeChat Pay did not accept the refund and no money went back: refund again",
            ),
            TradeOverdue => (
                "订单已超过退款期限（一年），无法退款",
                "The payment is more than a year old and cannot be refunded",
            ),
            UserAccountAbnormal => (
                "顾客账户异常，无法原路退款，请在商户平台处理",
                "The customer's account cannot take the refund: handle it in the merchant platform",
            ),
            Error => (
                "微信支付拒绝了退款，请在商户平台查看原因",
                "WeChat Pay refused the refund: see why in the merchant platform",
            ),
            CertError => (
                "商户证书无效，请联系管理员检查证书",
                "The merchant certificate is not valid: ask the administrator to check it",
            ),
            Other(_) => return None,
        };
        Some(CashierCopy { zh, en })
    }

    /// Whether this is a code a refund fails with; the others are a payment's. A WeChat
    /// `err_code` names a failure of either kind, so its copy is for that kind only.
    pub fn is_refund_failure(&self) -> bool {
        use FailureCode::*;
        matches!(
            self,
            RefundClose
                | Change
                | RefundNotAccepted
                | TradeOverdue
                | UserAccountAbnormal
                | Error
                | CertError
                | WechatRejected
        )
    }

    /// Whether the proxy's message for this code says more than its copy (WeChat's own
    /// reason), so a page in the message's language (Chinese) should show the message.
    pub fn message_has_detail(&self) -> bool {
        matches!(self, FailureCode::WechatRejected)
    }

    /// The code and its Chinese copy, as the proxy stores a failure: `(code, message)`.
    /// An unknown code gets `fallback`'s copy.
    pub fn with_copy(&self, fallback: CashierCopy) -> (&str, &'static str) {
        (self.as_str(), self.copy_or(fallback).zh)
    }

    /// [`FailureCode::with_copy`] for a known code, in a constant.
    ///
    /// # Panics
    /// For [`FailureCode::Other`], which has no copy; in a constant that fails the build.
    pub const fn code_and_copy(&self) -> (&'static str, &'static str) {
        match (self.known_str(), self.copy()) {
            (Some(code), Some(copy)) => (code, copy.zh),
            _ => panic!("only a known failure code has copy"),
        }
    }

    /// The copy for this code, or `fallback` for a code without copy of its own.
    pub const fn copy_or(&self, fallback: CashierCopy) -> CashierCopy {
        match self.copy() {
            Some(copy) => copy,
            None => fallback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip_as_their_plain_string() {
        for code in ErrorCode::KNOWN {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(&serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!(code.status().is_some(), "{code} has a status");
        }
        for code in FailureCode::KNOWN {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(&serde_json::from_str::<FailureCode>(&json).unwrap(), code);
        }
        assert_eq!(
            serde_json::to_string(&ErrorCode::PaymentNotFound).unwrap(),
            r#""PAYMENT_NOT_FOUND""#
        );
        assert_eq!(
            FailureCode::parse("NOTSUPORTCARD"),
            FailureCode::NotSupportCard
        );
    }

    #[test]
    fn unknown_codes_round_trip_unchanged() {
        let error: ErrorCode = serde_json::from_str(r#""RATE_LIMITED""#).unwrap();
        assert_eq!(error, ErrorCode::Other("RATE_LIMITED".into()));
        assert!(!error.is_known());
        assert_eq!(error.status(), None);
        assert_eq!(serde_json::to_string(&error).unwrap(), r#""RATE_LIMITED""#);
        let failure: FailureCode = serde_json::from_str(r#""SOMETHING_NEW""#).unwrap();
        assert_eq!(failure, "SOMETHING_NEW");
        assert_eq!(failure.copy(), None);
        assert_eq!(
            serde_json::to_string(&failure).unwrap(),
            r#""SOMETHING_NEW""#
        );
        assert_eq!(
            failure.with_copy(CashierCopy::REFUND_FAILED),
            ("SOMETHING_NEW", CashierCopy::REFUND_FAILED.zh)
        );
    }

    #[test]
    fn codes_are_distinct_and_upper_snake_case() {
        let wires: Vec<&str> = ErrorCode::KNOWN
            .iter()
            .map(ErrorCode::as_str)
            .chain(FailureCode::KNOWN.iter().map(FailureCode::as_str))
            .collect();
        for wire in &wires {
            assert!(
                wire.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{wire}"
            );
        }
        let error_wires = &wires[..ErrorCode::KNOWN.len()];
        let mut unique = error_wires.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), error_wires.len());
        let failure_wires = &wires[ErrorCode::KNOWN.len()..];
        let mut unique = failure_wires.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), failure_wires.len());
    }

    #[test]
    fn every_known_failure_code_has_copy_in_both_languages() {
        for code in FailureCode::KNOWN {
            let copy = code.copy().unwrap_or_else(|| panic!("{code} has no copy"));
            assert!(!copy.zh.is_empty() && !copy.en.is_empty(), "{code}");
            assert!(!copy.zh.is_ascii(), "{code}: the zh copy is Chinese");
            assert!(copy.en.is_ascii(), "{code}: the en copy is English");
        }
        for copy in [CashierCopy::PAYMENT_FAILED, CashierCopy::REFUND_FAILED] {
            assert!(!copy.zh.is_ascii() && copy.en.is_ascii());
        }
    }
}
