//! How a call to the proxy can fail, and what each failure means for the cashier.
//!
//! The browser glue (`ui/api.rs`) turns every fetch into `Result<T, ApiFailure>`; the pure
//! state machines decide from the failure alone whether the request may have taken effect.

use paycode_api::{ErrorBody, ErrorCode};

/// A failed call to the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiFailure {
    /// No answer: the proxy is unreachable, the connection dropped or the call timed out.
    /// The request may or may not have arrived.
    Network,
    /// The proxy answered with an error status.
    Http {
        /// The HTTP status.
        status: u16,
        /// The error body, when the answer carried one.
        body: Option<ErrorBody>,
    },
}

impl ApiFailure {
    /// The stable error code, when the proxy sent one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            ApiFailure::Http {
                body: Some(body), ..
            } => Some(&body.code),
            _ => None,
        }
    }

    /// The proxy's message, when it sent one.
    pub fn message(&self) -> Option<&str> {
        match self {
            ApiFailure::Http {
                body: Some(body), ..
            } => Some(&body.message),
            _ => None,
        }
    }

    /// The bearer token was refused: the terminal must be paired again.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiFailure::Http { status: 401, .. })
    }

    /// The request was refused for good and nothing was stored (400, 404, 409, 422, …).
    /// Everything else (no answer, 408, 429, 5xx) may be retried with the same idempotency
    /// key, and for a payment means "outcome unknown".
    pub fn is_definite_rejection(&self) -> bool {
        match self {
            ApiFailure::Network => false,
            ApiFailure::Http { status, .. } => {
                (400..500).contains(status) && !matches!(status, 401 | 408 | 429)
            }
        }
    }

    /// The request needs a (new) manager approval: none was sent, or the one sent was used
    /// up, expired or is for another terminal or action (`APPROVAL_REQUIRED`).
    pub fn needs_approval(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::ApprovalRequired))
    }

    /// The field the proxy named as wrong, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiFailure::Http {
                body: Some(body), ..
            } => body.field.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: &str) -> ApiFailure {
        ApiFailure::Http {
            status,
            body: Some(ErrorBody {
                code: ErrorCode::parse(code),
                message: "m".to_owned(),
                field: Some("auth_code".to_owned()),
            }),
        }
    }

    #[test]
    fn only_client_errors_are_definite() {
        assert!(http(400, "INVALID_REQUEST").is_definite_rejection());
        assert!(http(409, "IDEMPOTENCY_CONFLICT").is_definite_rejection());
        assert!(!http(429, "RATE_LIMITED").is_definite_rejection());
        assert!(!http(401, "UNAUTHORIZED").is_definite_rejection());
        assert!(http(401, "UNAUTHORIZED").is_unauthorized());
        assert!(!http(502, "WECHAT_UNAVAILABLE").is_definite_rejection());
        assert!(!ApiFailure::Network.is_definite_rejection());
        assert_eq!(http(400, "X").field(), Some("auth_code"));
        assert_eq!(http(400, "X").code(), Some(&ErrorCode::Other("X".into())));
        assert_eq!(
            http(409, "IDEMPOTENCY_CONFLICT").code(),
            Some(&ErrorCode::IdempotencyConflict)
        );
        assert_eq!(ApiFailure::Network.code(), None);
        assert!(http(403, "APPROVAL_REQUIRED").needs_approval());
        assert!(!http(403, "ROLE_REQUIRED").needs_approval());
    }
}
