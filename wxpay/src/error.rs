//! The error taxonomy: what went wrong, and above all whether WeChat may have acted on it.
//!
//! The split follows the AWS SDK's `SdkError` and async-stripe: a payment client's caller
//! must know whether the request was **not sent** (resend freely), **may have been sent**
//! (query before doing anything else), or **answered** (WeChat said no, at the protocol or at
//! the business layer).

use crate::codes::{Api, ErrCode, ErrorClass};
use crate::params::Params;
use crate::sign::SignatureError;
use crate::xml::XmlError;

/// Everything a WeChat Pay call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing reached WeChat: building the request failed, or the connection (DNS, TCP, TLS)
    /// could not be made. Resending is safe, including to the backup host.
    #[error("not sent to WeChat: {0}")]
    NotSent(#[from] NotSent),
    /// The request may have reached WeChat but no usable reply came back: a timeout, a
    /// connection reset, an HTTP error page instead of XML. The outcome is unknown.
    #[error("may have been sent to WeChat, outcome unknown: {0}")]
    MaybeSent(#[from] MaybeSent),
    /// An XML reply came back but cannot be trusted: it does not parse, its signature is
    /// missing or wrong, or a field is malformed. The outcome is unknown.
    #[error("WeChat's reply cannot be trusted: {0}")]
    BadReply(#[from] BadReply),
    /// `return_code=FAIL`: WeChat rejected the request at the protocol layer (bad signature,
    /// bad format, unknown merchant…). No order was created. These replies are unsigned.
    #[error("WeChat rejected the request: {return_msg}")]
    Protocol {
        /// WeChat's `return_msg` (or the sandbox's `retmsg`).
        return_msg: String,
    },
    /// `result_code=FAIL`: WeChat answered with a business error.
    #[error("{0}")]
    Business(#[from] BusinessError),
}

/// How a call ended, in the one set of labels the client's call log and the proxy's
/// metrics both use (`outcome="…"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallOutcome {
    /// A verified `SUCCESS` reply.
    Success,
    /// A verified `result_code=FAIL` reply ([`Error::Business`]).
    BusinessError,
    /// `return_code=FAIL` ([`Error::Protocol`]).
    Rejected,
    /// The request never left ([`Error::NotSent`]).
    NotSent,
    /// Timeout, dropped connection, HTTP error page, or a reply that cannot be trusted
    /// ([`Error::MaybeSent`], [`Error::BadReply`]).
    Unknown,
}

impl CallOutcome {
    /// The outcome of a call that returned `result`.
    pub fn of<T>(result: &Result<T>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(Error::Business(_)) => CallOutcome::BusinessError,
            Err(Error::Protocol { .. }) => CallOutcome::Rejected,
            Err(Error::NotSent(_)) => CallOutcome::NotSent,
            Err(Error::MaybeSent(_) | Error::BadReply(_)) => CallOutcome::Unknown,
        }
    }

    /// The label: `success`, `business_error`, `rejected`, `not_sent` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::BusinessError => "business_error",
            CallOutcome::Rejected => "rejected",
            CallOutcome::NotSent => "not_sent",
            CallOutcome::Unknown => "unknown",
        }
    }
}

/// Why a request never reached WeChat.
#[derive(Debug, thiserror::Error)]
pub enum NotSent {
    /// The request could not be built (a field is invalid, the client has no certificate for
    /// a `/secapi` call, …).
    #[error("the request could not be built: {0}")]
    Build(String),
    /// The host name did not resolve.
    #[error("DNS lookup failed for {host}")]
    Dns {
        /// The host that did not resolve.
        host: String,
    },
    /// TCP or TLS connection setup failed (refused, unreachable, connect timeout, handshake).
    #[error("could not connect to {host}: {reason}")]
    Connect {
        /// The host that could not be reached.
        host: String,
        /// What the transport said.
        reason: String,
    },
}

/// Why the outcome of a request that may have been sent is unknown.
#[derive(Debug, thiserror::Error)]
pub enum MaybeSent {
    /// No complete reply within the read timeout.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection failed after the request started (reset, closed early).
    #[error("the connection failed mid-request: {0}")]
    Transport(String),
    /// An HTTP status other than 200 (typically a gateway's HTML 502 page).
    #[error("HTTP {status} instead of a WeChat reply")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// A 200 reply whose body is not XML at all (an HTML page, an empty body).
    #[error("the reply is not XML")]
    NotXml,
    /// The reply was larger than the client reads.
    #[error("the reply exceeded {0} bytes")]
    TooLarge(usize),
}

/// Why an XML reply cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum BadReply {
    /// The reply looked like XML but did not decode.
    #[error("malformed XML: {0}")]
    Xml(#[from] XmlError),
    /// A `return_code=SUCCESS` reply without a valid signature.
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    /// `return_code` is missing or neither `SUCCESS` nor `FAIL`.
    #[error("return_code is {0:?}")]
    ReturnCode(Option<String>),
    /// A bill (`downloadbill`'s CSV) that does not parse.
    #[error("malformed bill: {0}")]
    Bill(#[from] crate::messages::BillError),
    /// A field required to read the reply is missing or malformed.
    #[error("field {field}: {problem}")]
    Field {
        /// The element name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// A `result_code=FAIL` reply.
#[derive(Debug, thiserror::Error)]
#[error("WeChat {api} failed: {err_code} ({err_code_des})")]
pub struct BusinessError {
    /// The API that answered.
    pub api: Api,
    /// The `err_code`.
    pub err_code: ErrCode,
    /// The `err_code_des`: WeChat's own description, often in Chinese.
    pub err_code_des: String,
    /// The whole verified reply (reverse replies carry `recall` here, for example).
    pub reply: Params,
}

impl BusinessError {
    /// What this failure means for the caller (docs/wechat-pay.md §5).
    pub fn class(&self) -> ErrorClass {
        self.err_code.class(self.api)
    }
}

impl Error {
    /// What the caller should do next, for a call to `api`.
    ///
    /// - [`Error::NotSent`] → [`ErrorClass::RetrySame`] (nothing happened).
    /// - [`Error::MaybeSent`] and [`Error::BadReply`] → [`ErrorClass::Unknown`].
    /// - [`Error::Protocol`] → [`ErrorClass::Configuration`]: WeChat refused the request
    ///   itself, so sending it again unchanged will be refused again.
    /// - [`Error::Business`] → the `err_code`'s class for `api`.
    pub fn class(&self, api: Api) -> ErrorClass {
        match self {
            Error::NotSent(_) => ErrorClass::RetrySame,
            Error::MaybeSent(_) | Error::BadReply(_) => ErrorClass::Unknown,
            Error::Protocol { .. } => ErrorClass::Configuration,
            Error::Business(business) => business.err_code.class(api),
        }
    }

    /// Whether WeChat certainly did not receive the request.
    pub fn is_not_sent(&self) -> bool {
        matches!(self, Error::NotSent(_))
    }

    /// Whether the request's outcome at WeChat is unknown (it may have taken effect).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::MaybeSent(_) | Error::BadReply(_))
    }

    /// The `err_code`, for a business error.
    pub fn err_code(&self) -> Option<&ErrCode> {
        match self {
            Error::Business(business) => Some(&business.err_code),
            _ => None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_layer() {
        let not_sent = Error::from(NotSent::Dns {
            host: "api.mch.weixin.qq.com".into(),
        });
        assert_eq!(not_sent.class(Api::Micropay), ErrorClass::RetrySame);
        assert!(not_sent.is_not_sent());
        let timeout = Error::from(MaybeSent::Timeout(std::time::Duration::from_secs(10)));
        assert_eq!(timeout.class(Api::Micropay), ErrorClass::Unknown);
        assert!(timeout.is_outcome_unknown());
        let bad_sign = Error::from(BadReply::Signature(SignatureError::Mismatch));
        assert_eq!(bad_sign.class(Api::Micropay), ErrorClass::Unknown);
        let protocol = Error::Protocol {
            return_msg: "签名错误".into(),
        };
        assert_eq!(protocol.class(Api::Micropay), ErrorClass::Configuration);
        let paying = Error::from(BusinessError {
            api: Api::Micropay,
            err_code: ErrCode::UserPaying,
            err_code_des: "需要用户输入支付密码".into(),
            reply: Params::new(),
        });
        assert_eq!(paying.class(Api::Micropay), ErrorClass::Unknown);
        assert_eq!(paying.err_code(), Some(&ErrCode::UserPaying));
        assert_eq!(
            paying.to_string(),
            "WeChat micropay failed: USERPAYING (需要用户输入支付密码)"
        );
    }
}
