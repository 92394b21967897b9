//! Request extractors ([`ApiJson`], [`ApiQuery`]) whose rejections are [`ApiError`]s, so
//! that bad input answers with an [`ErrorBody`](paycode_api::ErrorBody) naming the field
//! instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::field_path::field_of;
use paycode_api::ErrorCode;

/// A JSON request body, like [`axum::Json`], but rejected with:
/// - 415 `UNSUPPORTED_MEDIA_TYPE` without a JSON `Content-Type`;
/// - 413 `BODY_TOO_LARGE` above the configured body limit;
/// - 400 `INVALID_JSON` when the body is not JSON;
/// - 400 `INVALID_REQUEST` with `field` set when a field is missing, unknown or has a bad
///   value (`amount_fen`, `auth_code`, …).
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::InvalidRequest {
                        code: ErrorCode::InvalidRequest,
                        message: "the request body could not be read".to_owned(),
                        field: None,
                    }
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A query string, like [`axum::extract::Query`], but rejected with 400 `INVALID_REQUEST`
/// saying what is wrong (an unknown parameter, a value that is not a number, …).
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(query) =
            Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| ApiError::InvalidRequest {
                    code: ErrorCode::InvalidRequest,
                    message: format!("bad query string: {}", rejection.body_text()),
                    field: None,
                })?;
        Ok(ApiQuery(query))
    }
}

/// Parses a JSON document into `T`, turning serde's errors into [`ApiError`]s that name the
/// offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().clone();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })?;
    // Trailing data after the document means the client sent something it did not mean.
    deserializer.end().map_err(|_| invalid_json())?;
    Ok(value)
}

fn json_error(path: &serde_path_to_error::Path, error: &serde_json::Error) -> ApiError {
    match error.classify() {
        serde_json::error::Category::Data => {
            let message = without_position(&error.to_string());
            ApiError::InvalidRequest {
                code: ErrorCode::InvalidRequest,
                field: field_of(path, &message),
                message,
            }
        }
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => invalid_json(),
    }
}

fn invalid_json() -> ApiError {
    ApiError::InvalidRequest {
        code: ErrorCode::InvalidJson,
        message: "the request body is not valid JSON".to_owned(),
        field: None,
    }
}

/// serde_json appends "at line 1 column 42" to data errors; the client's body is one line,
/// so the position says nothing the field name does not.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use paycode_api::{CreatePayment, ErrorBody};
    use tower::ServiceExt;

    use super::*;

    const GOOD: &str = r#"{"attempt_id":"3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a","amount_fen":1230,"auth_code":"134567890123455678"}"#;

    fn rejection(body: &str) -> (ErrorCode, Option<String>, String) {
        match parse_json::<CreatePayment>(body.as_bytes()) {
            Err(ApiError::InvalidRequest {
                code,
                field,
                message,
            }) => (code, field, message),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_good_body_parses() {
        let payment: CreatePayment = parse_json(GOOD.as_bytes()).unwrap();
        assert_eq!(payment.amount_fen.get(), 1230);
    }

    #[test]
    fn data_errors_name_the_field() {
        for (body, expected_field) in [
            (GOOD.replace("1230", "\"12.30\""), "amount_fen"),
            (GOOD.replace("1230", "-1"), "amount_fen"),
            (
                GOOD.replace("\"134567890123455678\"", "\"12\""),
                "auth_code",
            ),
            (GOOD.replace("3f2b8c1e-", ""), "attempt_id"),
            (GOOD.replace("}", r#","tip":1}"#), "tip"),
            (
                GOOD.replace(r#","auth_code":"134567890123455678""#, ""),
                "auth_code",
            ),
        ] {
            let (code, field, message) = rejection(&body);
            assert_eq!(code, "INVALID_REQUEST", "{body}");
            assert_eq!(field.as_deref(), Some(expected_field), "{body}: {message}");
            assert!(!message.contains("line 1"), "{message}");
        }
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        let trailing = format!("{GOOD} trailing");
        for body in ["{", "not json", "", &trailing] {
            let (code, field, _) = rejection(body);
            assert_eq!(code, "INVALID_JSON", "{body}");
            assert_eq!(field, None);
        }
    }

    async fn post(
        router: &axum::Router,
        content_type: &str,
        body: String,
    ) -> (StatusCode, ErrorBody) {
        let request = Request::post("/echo")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                code: ErrorCode::Other(String::from_utf8_lossy(&bytes).into_owned()),
                message: String::new(),
                field: None,
            }),
        )
    }

    #[tokio::test]
    async fn rejections_through_a_router_are_error_bodies() {
        // Arrange
        async fn echo(ApiJson(payment): ApiJson<CreatePayment>) -> String {
            payment.amount_fen.to_string()
        }
        let router = axum::Router::new()
            .route("/echo", axum::routing::post(echo))
            .layer(axum::extract::DefaultBodyLimit::max(1024));

        // Act & Assert
        let (status, body) = post(&router, "application/json", GOOD.to_owned()).await;
        assert_eq!((status, body.code.as_str()), (StatusCode::OK, "¥12.30"));
        let (status, body) = post(&router, "text/plain", GOOD.to_owned()).await;
        assert_eq!(
            (status, body.code.as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
        );
        let oversized = GOOD.replace("}", &format!(r#","description":"{}"}}"#, "x".repeat(2000)));
        let (status, body) = post(&router, "application/json", oversized).await;
        assert_eq!(
            (status, body.code.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE")
        );
        let (status, body) = post(&router, "application/json", GOOD.replace("1230", "\"x\"")).await;
        assert_eq!(
            (status, body.code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST")
        );
        assert_eq!(body.field.as_deref(), Some("amount_fen"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(has_json_content_type(&headers), expected, "{value}");
        }
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
