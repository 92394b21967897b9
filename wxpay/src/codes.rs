//! `err_code` values (docs/wechat-pay.md §5) and what a client should do about each.

use std::fmt;

/// The WeChat Pay v2 API a message belongs to. Error classes depend on it: `SYSTEMERROR`
/// from micropay means "the payment may have happened", from refundquery only "ask again".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/pay/micropay`
    Micropay,
    /// `/pay/orderquery`
    OrderQuery,
    /// `/secapi/pay/reverse` (client certificate)
    Reverse,
    /// `/secapi/pay/refund` (client certificate)
    Refund,
    /// `/pay/refundquery`
    RefundQuery,
    /// `/pay/closeorder`
    CloseOrder,
    /// `/pay/downloadbill`
    DownloadBill,
    /// The sandbox's `/xdc/apiv2getsignkey/sign/getsignkey`
    GetSignKey,
}

impl Api {
    /// Every API, in the order above.
    pub const ALL: [Api; 8] = [
        Api::Micropay,
        Api::OrderQuery,
        Api::Reverse,
        Api::Refund,
        Api::RefundQuery,
        Api::CloseOrder,
        Api::DownloadBill,
        Api::GetSignKey,
    ];

    /// The production path, without any sandbox prefix.
    pub fn path(self) -> &'static str {
        match self {
            Api::Micropay => "/pay/micropay",
            Api::OrderQuery => "/pay/orderquery",
            Api::Reverse => "/secapi/pay/reverse",
            Api::Refund => "/secapi/pay/refund",
            Api::RefundQuery => "/pay/refundquery",
            Api::CloseOrder => "/pay/closeorder",
            Api::DownloadBill => "/pay/downloadbill",
            Api::GetSignKey => "/xdc/apiv2getsignkey/sign/getsignkey",
        }
    }

    /// The API served at `path` (with or without the `/xdc/apiv2sandbox` prefix).
    pub fn from_path(path: &str) -> Option<Api> {
        let path = path.strip_prefix(crate::SANDBOX_PREFIX).unwrap_or(path);
        Api::ALL.into_iter().find(|api| api.path() == path)
    }

    /// Whether the call needs the merchant's client certificate (mTLS).
    pub fn needs_client_certificate(self) -> bool {
        matches!(self, Api::Reverse | Api::Refund)
    }

    /// A short lower-case name for logs and metrics: `micropay`, `orderquery`, …
    pub fn name(self) -> &'static str {
        match self {
            Api::Micropay => "micropay",
            Api::OrderQuery => "orderquery",
            Api::Reverse => "reverse",
            Api::Refund => "refund",
            Api::RefundQuery => "refundquery",
            Api::CloseOrder => "closeorder",
            Api::DownloadBill => "downloadbill",
            Api::GetSignKey => "getsignkey",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a `result_code=FAIL` means for the caller (docs/wechat-pay.md §5's "Class" column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A definite business failure: this request did not and will not succeed.
    Final,
    /// The outcome is unknown: query (and for micropay, possibly reverse) before deciding.
    Unknown,
    /// Nothing happened; send the identical request again later.
    RetrySame,
    /// A programming or configuration error: resending it unchanged cannot help.
    Configuration,
}

macro_rules! err_codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal, )*) => {
        /// A WeChat Pay v2 `err_code`. Codes this crate does not know are kept in
        /// [`ErrCode::Other`] so nothing is lost.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum ErrCode {
            $( $(#[$doc])* $variant, )*
            /// A code not listed above, as WeChat sent it.
            Other(String),
        }

        impl ErrCode {
            /// Reads a wire value; unknown values become [`ErrCode::Other`].
            pub fn parse(wire: &str) -> ErrCode {
                match wire {
                    $( $wire => ErrCode::$variant, )*
                    other => ErrCode::Other(other.to_owned()),
                }
            }

            /// The wire value, e.g. `"USERPAYING"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ErrCode::$variant => $wire, )*
                    ErrCode::Other(other) => other,
                }
            }
        }
    };
}

err_codes! {
    /// `SYSTEMERROR`: WeChat-side error or timeout.
    SystemError = "SYSTEMERROR",
    /// `BANKERROR`: the bank's system failed.
    BankError = "BANKERROR",
    /// `USERPAYING`: the customer must enter the payment password.
    UserPaying = "USERPAYING",
    /// `PARAM_ERROR`: a request parameter is invalid.
    ParamError = "PARAM_ERROR",
    /// `ORDERPAID`: this out_trade_no is already paid.
    OrderPaid = "ORDERPAID",
    /// `NOAUTH`: the merchant lacks the permission (or the IP is not allowed).
    NoAuth = "NOAUTH",
    /// `AUTHCODEEXPIRE`: the payment code expired; the customer must refresh it.
    AuthCodeExpire = "AUTHCODEEXPIRE",
    /// `NOTENOUGH`: insufficient balance (for refunds: the merchant's).
    NotEnough = "NOTENOUGH",
    /// `NOTSUPORTCARD` (WeChat's spelling): the card type is not supported.
    NotSupportCard = "NOTSUPORTCARD",
    /// `ORDERCLOSED`: the order is closed.
    OrderClosed = "ORDERCLOSED",
    /// `ORDERREVERSED`: the order was reversed.
    OrderReversed = "ORDERREVERSED",
    /// `AUTH_CODE_ERROR`: the payment code is wrong or already used.
    AuthCodeError = "AUTH_CODE_ERROR",
    /// `AUTH_CODE_INVALID`: not a valid WeChat payment code.
    AuthCodeInvalid = "AUTH_CODE_INVALID",
    /// `XML_FORMAT_ERROR`: the request XML is malformed.
    XmlFormatError = "XML_FORMAT_ERROR",
    /// `REQUIRE_POST_METHOD`: the request was not a POST.
    RequirePostMethod = "REQUIRE_POST_METHOD",
    /// `SIGNERROR`: the request signature is wrong.
    SignError = "SIGNERROR",
    /// `LACK_PARAMS`: a required parameter is missing.
    LackParams = "LACK_PARAMS",
    /// `NOT_UTF8`: the request is not UTF-8.
    NotUtf8 = "NOT_UTF8",
    /// `BUYER_MISMATCH`: the payer does not match the order.
    BuyerMismatch = "BUYER_MISMATCH",
    /// `APPID_NOT_EXIST`: unknown appid.
    AppidNotExist = "APPID_NOT_EXIST",
    /// `MCHID_NOT_EXIST`: unknown mch_id.
    MchidNotExist = "MCHID_NOT_EXIST",
    /// `OUT_TRADE_NO_USED`: this out_trade_no was used for a different order.
    OutTradeNoUsed = "OUT_TRADE_NO_USED",
    /// `APPID_MCHID_NOT_MATCH`: the appid is not bound to the mch_id.
    AppidMchidNotMatch = "APPID_MCHID_NOT_MATCH",
    /// `INVALID_REQUEST`: the request breaks a business or permission rule.
    InvalidRequest = "INVALID_REQUEST",
    /// `TRADE_ERROR`: the account is abnormal or blocked by risk control.
    TradeError = "TRADE_ERROR",
    /// `ORDERNOTEXIST`: no such order (or it was never accepted).
    OrderNotExist = "ORDERNOTEXIST",
    /// `INVALID_TRANSACTIONID`: the transaction_id is wrong.
    InvalidTransactionId = "INVALID_TRANSACTIONID",
    /// `REVERSE_EXPIRE`: older than 7 days; refund instead.
    ReverseExpire = "REVERSE_EXPIRE",
    /// `BIZERR_NEED_RETRY`: a concurrency conflict; retry the same request.
    BizerrNeedRetry = "BIZERR_NEED_RETRY",
    /// `TRADE_OVERDUE`: beyond the one-year refund window.
    TradeOverdue = "TRADE_OVERDUE",
    /// `ERROR`: a generic business error; see `err_code_des`.
    Error = "ERROR",
    /// `USER_ACCOUNT_ABNORMAL`: the customer's account cannot receive the refund.
    UserAccountAbnormal = "USER_ACCOUNT_ABNORMAL",
    /// `INVALID_REQ_TOO_MUCH`: too many invalid requests; wait a minute.
    InvalidReqTooMuch = "INVALID_REQ_TOO_MUCH",
    /// `FREQUENCY_LIMITED`: rate limited; retry the same request more slowly.
    FrequencyLimited = "FREQUENCY_LIMITED",
    /// `CERT_ERROR`: the client certificate is invalid, expired or revoked.
    CertError = "CERT_ERROR",
    /// `REFUND_FEE_MISMATCH`: this out_refund_no was used with other amounts.
    RefundFeeMismatch = "REFUND_FEE_MISMATCH",
    /// `ORDER_NOT_READY`: the order is still being processed.
    OrderNotReady = "ORDER_NOT_READY",
    /// `REFUNDNOTEXIST`: no refund found (can be transient right after applying).
    RefundNotExist = "REFUNDNOTEXIST",
}

impl ErrCode {
    /// What this code means for a call to `api`, following docs/wechat-pay.md §5.
    ///
    /// Codes the spec does not list for that API are treated as [`ErrorClass::Unknown`] for
    /// micropay (the POS guide: even a FAIL can hide a success, so query before telling the
    /// cashier "failed") and as [`ErrorClass::Final`] elsewhere.
    pub fn class(&self, api: Api) -> ErrorClass {
        use ErrCode::*;
        use ErrorClass::*;
        let configuration = matches!(
            self,
            ParamError
                | NoAuth
                | XmlFormatError
                | RequirePostMethod
                | SignError
                | LackParams
                | NotUtf8
                | AppidNotExist
                | MchidNotExist
                | AppidMchidNotMatch
                | InvalidTransactionId
                | CertError
                | RefundFeeMismatch
        );
        match api {
            Api::Micropay => match self {
                SystemError | BankError | UserPaying => Unknown,
                // The order number is paid: for a retried request that means *this* payment
                // succeeded, so the caller must query rather than report a failure.
                OrderPaid => Unknown,
                InvalidRequest => Configuration,
                _ if configuration => Configuration,
                AuthCodeExpire | NotEnough | NotSupportCard | OrderClosed | OrderReversed
                | AuthCodeError | AuthCodeInvalid | BuyerMismatch | OutTradeNoUsed | TradeError => {
                    Final
                }
                _ => Unknown,
            },
            Api::OrderQuery => match self {
                SystemError => RetrySame,
                OrderNotExist => Final,
                _ if configuration => Configuration,
                _ => Final,
            },
            Api::Reverse => match self {
                SystemError | UserPaying => RetrySame,
                InvalidRequest => Configuration,
                _ if configuration => Configuration,
                _ => Final,
            },
            Api::Refund => match self {
                SystemError | BizerrNeedRetry | InvalidReqTooMuch | NotEnough
                | FrequencyLimited | OrderNotReady => RetrySame,
                _ if configuration => Configuration,
                _ => Final,
            },
            Api::RefundQuery | Api::CloseOrder | Api::DownloadBill | Api::GetSignKey => {
                match self {
                    SystemError => RetrySame,
                    _ if configuration => Configuration,
                    _ => Final,
                }
            }
        }
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for wire in [
            "SYSTEMERROR",
            "USERPAYING",
            "NOTSUPORTCARD",
            "REFUND_FEE_MISMATCH",
            "SOMETHING_NEW",
        ] {
            assert_eq!(ErrCode::parse(wire).as_str(), wire);
        }
        assert_eq!(
            ErrCode::parse("SOMETHING_NEW"),
            ErrCode::Other("SOMETHING_NEW".into())
        );
    }

    #[test]
    fn micropay_classes_follow_the_spec_table() {
        use ErrorClass::*;
        for (code, class) in [
            ("SYSTEMERROR", Unknown),
            ("BANKERROR", Unknown),
            ("USERPAYING", Unknown),
            ("ORDERPAID", Unknown),
            ("AUTHCODEEXPIRE", Final),
            ("NOTENOUGH", Final),
            ("AUTH_CODE_INVALID", Final),
            ("OUT_TRADE_NO_USED", Final),
            ("SIGNERROR", Configuration),
            ("NOAUTH", Configuration),
            ("SOMETHING_NEW", Unknown),
        ] {
            assert_eq!(ErrCode::parse(code).class(Api::Micropay), class, "{code}");
        }
    }

    #[test]
    fn other_apis_classes() {
        use ErrorClass::*;
        assert_eq!(ErrCode::SystemError.class(Api::OrderQuery), RetrySame);
        assert_eq!(ErrCode::OrderNotExist.class(Api::OrderQuery), Final);
        assert_eq!(ErrCode::UserPaying.class(Api::Reverse), RetrySame);
        assert_eq!(ErrCode::ReverseExpire.class(Api::Reverse), Final);
        assert_eq!(ErrCode::FrequencyLimited.class(Api::Refund), RetrySame);
        assert_eq!(ErrCode::RefundFeeMismatch.class(Api::Refund), Configuration);
        assert_eq!(ErrCode::Error.class(Api::Refund), Final);
    }

    #[test]
    fn paths_map_back_to_apis() {
        for api in Api::ALL {
            assert_eq!(Api::from_path(api.path()), Some(api));
        }
        assert_eq!(
            Api::from_path("/xdc/apiv2sandbox/pay/micropay"),
            Some(Api::Micropay)
        );
        assert_eq!(Api::from_path("/pay/unknown"), None);
        assert!(Api::Reverse.needs_client_certificate());
        assert!(!Api::OrderQuery.needs_client_certificate());
    }
}
