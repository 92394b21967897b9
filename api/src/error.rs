//! The error body every failed `/api/v1` request answers with.

use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;

/// What the proxy answers when a request fails: a stable machine `code`, a sentence a
/// cashier can act on, and the offending field when the request itself was wrong.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, upper-snake-case code such as `INVALID_AMOUNT`, `UNAUTHORIZED` or
    /// `PAYMENT_NOT_FOUND`. Apps branch on this, never on `message`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// The request field that was rejected, e.g. `amount_fen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
