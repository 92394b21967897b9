//! [`ApiError`]: every way an `/api/v1` request can fail, and how each becomes a response.
//!
//! Every error answers with a [`paycode_api::ErrorBody`]: a stable `code` apps branch on, a
//! message a cashier can act on, and the offending field when the request was wrong. Server
//! errors (5xx) never show their cause to the client; the cause travels in a response
//! extension to [`log_server_errors`], which logs it exactly once.

use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use paycode_api::{ErrorBody, ErrorCode};

use crate::store::StoreError;

/// The result of a handler.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Why an API request failed. Each variant names the status it answers with.
#[derive(thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field has a value that is not allowed. `code` is
    /// `INVALID_REQUEST`, `INVALID_JSON` or a more specific code such as `INVALID_AMOUNT`.
    #[error("{message}")]
    InvalidRequest {
        /// The stable machine code.
        code: ErrorCode,
        /// What is wrong, for the cashier.
        message: String,
        /// The rejected field, when one is to blame.
        field: Option<String>,
    },
    /// 401 `UNAUTHORIZED`: no bearer token, or one that is malformed, unknown or revoked.
    /// The answer is the same in every case, so it reveals nothing about which tokens exist.
    #[error("this terminal is not authorised; ask the shop's administrator for a terminal token")]
    Unauthorized,
    /// 403: the terminal may not do this now: its role does not allow it (`ROLE_REQUIRED`),
    /// it needs a manager's approval (`APPROVAL_REQUIRED`), the manager's PIN is wrong
    /// (`PIN_INCORRECT`) or the manager approves for another store (`MANAGER_WRONG_STORE`).
    #[error("{message}")]
    Forbidden {
        /// The stable machine code.
        code: ErrorCode,
        /// What is refused and which rule refuses it, for the cashier.
        message: String,
        /// The field to change, when one is to blame.
        field: Option<String>,
    },
    /// 423 `PIN_LOCKED`: the manager's PIN is locked after repeated failures;
    /// `Retry-After` says when it opens.
    #[error("{message}")]
    Locked {
        /// What to do, for the cashier.
        message: String,
        /// Seconds until the lockout ends.
        retry_after_secs: u64,
    },
    /// 404: the payment, refund or route does not exist (`PAYMENT_NOT_FOUND`, `NOT_FOUND`, …).
    #[error("{message}")]
    NotFound {
        /// The stable machine code.
        code: ErrorCode,
        /// What was not found.
        message: String,
    },
    /// 409: the request contradicts what is stored, e.g. an `attempt_id` reused for another
    /// payment (`IDEMPOTENCY_CONFLICT`) or a refund larger than what is left
    /// (`REFUND_EXCEEDS_PAYMENT`).
    #[error("{message}")]
    Conflict {
        /// The stable machine code.
        code: ErrorCode,
        /// What conflicts, for the cashier.
        message: String,
        /// The field to change, when one is to blame.
        field: Option<String>,
    },
    /// 405 `METHOD_NOT_ALLOWED`: the path exists but not with this method.
    #[error("{message}")]
    MethodNotAllowed {
        /// What was asked, and what the path allows.
        message: String,
    },
    /// 413 `BODY_TOO_LARGE`: the body is larger than `server.body_limit_bytes`.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 415 `UNSUPPORTED_MEDIA_TYPE`: a JSON endpoint got a body that is not
    /// `application/json`.
    #[error("send the request body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 429 `TOO_MANY_REQUESTS`: a rate limit (pairing attempts) is reached; `Retry-After`
    /// says when to try again.
    #[error("{message}")]
    TooManyRequests {
        /// What to do, for the cashier.
        message: String,
        /// Seconds until the limit resets.
        retry_after_secs: u64,
    },
    /// 502 `WECHAT_UNAVAILABLE`: WeChat Pay could not be reached or gave an unusable answer
    /// to a call whose failure the engine cannot turn into a payment state.
    #[error("WeChat Pay cannot be reached right now; try again shortly")]
    Wechat(#[source] wxpay::Error),
    /// 502 `WECHAT_UNAVAILABLE`: WeChat gave no usable answer to a query a manager asked
    /// for; nothing changed.
    #[error("{message}")]
    WechatNoAnswer {
        /// What did not happen, for the manager.
        message: String,
    },
    /// 503 `UNAVAILABLE`: a dependency (the database) is unreachable; retrying later may
    /// succeed.
    #[error("the payment service is temporarily unavailable; try again shortly")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500 `INTERNAL`: a bug or an unexpected failure. The cause is logged, never shown.
    #[error(
        "something went wrong on the payment server; check the payment's state before charging again"
    )]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A server error's full cause chain, carried from [`ApiError::into_response`] to
/// [`log_server_errors`] in the response's extensions.
#[derive(Clone, Debug)]
struct ServerErrorReport(Arc<str>);

impl ApiError {
    /// A 400 `INVALID_REQUEST` naming `field`.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            code: ErrorCode::InvalidRequest,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 500 carrying `error` as its (logged, never shown) cause.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(error))
    }

    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Locked { .. } => StatusCode::LOCKED,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Wechat(_) | ApiError::WechatNoAnswer { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidRequest { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. } => code.clone(),
            ApiError::Locked { .. } => ErrorCode::PinLocked,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge => ErrorCode::BodyTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            ApiError::Wechat(_) | ApiError::WechatNoAnswer { .. } => ErrorCode::WechatUnavailable,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::InvalidRequest { field, .. }
            | ApiError::Conflict { field, .. }
            | ApiError::Forbidden { field, .. } => field.clone(),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        debug_assert_eq!(
            Some(status.as_u16()),
            self.code().status(),
            "{} answers with the status its contract names",
            self.code()
        );
        let body = ErrorBody {
            code: self.code(),
            // Display is the public message; causes stay in `source()` and are never shown.
            message: self.to_string(),
            field: self.field(),
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        }
        | ApiError::Locked {
            retry_after_secs, ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status.is_server_error() {
            let mut report = String::new();
            // Writing into a String cannot fail.
            let _ = error_chain_fmt(&self, &mut report);
            response
                .extensions_mut()
                .insert(ServerErrorReport(report.into()));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound { entity, key } => ApiError::NotFound {
                code: match entity {
                    "payment" => ErrorCode::PaymentNotFound,
                    "refund" => ErrorCode::RefundNotFound,
                    "terminal" => ErrorCode::TerminalNotFound,
                    _ => ErrorCode::NotFound,
                },
                message: format!("{entity} {key} does not exist"),
            },
            StoreError::Conflict { entity, .. } => ApiError::Conflict {
                code: ErrorCode::IdempotencyConflict,
                message: format!(
                    "this attempt id was already used for a different {entity}; start a new attempt"
                ),
                field: Some(
                    if entity == "refund" {
                        "refund_attempt_id"
                    } else {
                        "attempt_id"
                    }
                    .to_owned(),
                ),
            },
            StoreError::StaleVersion { entity, .. } => ApiError::Conflict {
                code: ErrorCode::ConcurrentChange,
                message: format!("the {entity} changed at the same time; try again"),
                field: None,
            },
            StoreError::RefundExceedsPayment {
                payment_amount,
                already_refunded,
                ..
            } => ApiError::Conflict {
                code: ErrorCode::RefundExceedsPayment,
                message: format!(
                    "at most {} can still be refunded from this payment of {payment_amount}",
                    payment_amount
                        .checked_sub(already_refunded)
                        .unwrap_or_default()
                ),
                field: Some("amount_fen".to_owned()),
            },
            StoreError::AlreadyExists { entity, .. } => ApiError::Conflict {
                code: ErrorCode::AlreadyExists,
                message: format!("that {entity} already exists"),
                field: None,
            },
            error if error.is_transient() => ApiError::Unavailable(Box::new(error)),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<wxpay::Error> for ApiError {
    fn from(error: wxpay::Error) -> ApiError {
        ApiError::Wechat(error)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        error_chain_fmt(self, f)
    }
}

/// Writes an error and each of its causes on its own line ("Caused by: …").
pub fn error_chain_fmt(error: &dyn std::error::Error, out: &mut dyn fmt::Write) -> fmt::Result {
    write!(out, "{error}")?;
    let mut cause = error.source();
    while let Some(inner) = cause {
        write!(out, "\n  caused by: {inner}")?;
        cause = inner.source();
    }
    Ok(())
}

/// An error and its causes as one string, for command-line reports.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut report = String::new();
    // Writing into a String cannot fail.
    let _ = error_chain_fmt(error, &mut report);
    report
}

/// Middleware that logs each 5xx response's cause once, with the request it answered.
pub async fn log_server_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(ServerErrorReport(report)) = response.extensions().get::<ServerErrorReport>() {
        tracing::error!(
            %method,
            %path,
            status = response.status().as_u16(),
            "request failed: {report}"
        );
    }
    response
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(error: crate::engine::EngineError) -> ApiError {
        use crate::engine::EngineError;
        match error {
            EngineError::AlreadyPaid => ApiError::Conflict {
                code: ErrorCode::PaymentAlreadyPaid,
                message: "this payment is already paid and cannot be cancelled; refund it instead"
                    .to_owned(),
                field: None,
            },
            EngineError::NotPaid(state) => ApiError::Conflict {
                code: ErrorCode::PaymentNotPaid,
                message: format!("only a paid payment can be refunded; this one is {state}"),
                field: None,
            },
            EngineError::StoreDisabled(store) => ApiError::Conflict {
                code: ErrorCode::StoreDisabled,
                message: format!(
                    "store {store} is disabled and takes no new payments; ask the manager"
                ),
                field: None,
            },
            EngineError::Binding(error) => ApiError::Internal(Box::new(error)),
            EngineError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response) -> ErrorBody {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn server_errors_hide_their_cause() {
        // Arrange
        let cause = std::io::Error::other("disk /secret/path is full");
        // Act
        let response = ApiError::internal(cause).into_response();
        // Assert
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = response
            .extensions()
            .get::<ServerErrorReport>()
            .cloned()
            .unwrap();
        assert!(report.0.contains("/secret/path"), "the log keeps the cause");
        let body = body_of(response).await;
        assert_eq!(body.code, "INTERNAL");
        assert!(!body.message.contains("secret"), "{}", body.message);
    }

    #[tokio::test]
    async fn client_errors_name_their_field_and_are_not_logged() {
        let response = ApiError::invalid_field("amount_fen", "must be positive").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.extensions().get::<ServerErrorReport>().is_none());
        let body = body_of(response).await;
        assert_eq!(body.field.as_deref(), Some("amount_fen"));
        assert_eq!(body.code, "INVALID_REQUEST");
    }

    #[tokio::test]
    async fn store_errors_map_to_statuses() {
        use paycode_api::Fen;
        let cases = [
            (
                StoreError::NotFound {
                    entity: "payment",
                    key: "p1".into(),
                },
                StatusCode::NOT_FOUND,
                "PAYMENT_NOT_FOUND",
            ),
            (
                StoreError::Conflict {
                    entity: "payment",
                    attempt_id: "a".into(),
                    differs: "amount_fen",
                },
                StatusCode::CONFLICT,
                "IDEMPOTENCY_CONFLICT",
            ),
            (
                StoreError::RefundExceedsPayment {
                    payment_amount: Fen(100),
                    already_refunded: Fen(60),
                    requested: Fen(50),
                },
                StatusCode::CONFLICT,
                "REFUND_EXCEEDS_PAYMENT",
            ),
            (
                StoreError::Database(sqlx::Error::PoolTimedOut),
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
            ),
            (
                StoreError::Corrupt {
                    column: "state",
                    value: "x".into(),
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
            ),
        ];
        for (error, status, code) in cases {
            let response = ApiError::from(error).into_response();
            assert_eq!(response.status(), status);
            assert_eq!(body_of(response).await.code, code);
        }
    }

    #[tokio::test]
    async fn unauthorized_asks_for_a_bearer_token() {
        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body_of(response).await.code, "UNAUTHORIZED");
    }
}
