//! Payments and refunds as the app sees them: `POST /api/v1/payments`,
//! `GET /api/v1/payments/{id}`, `POST /api/v1/payments/{id}/refunds`, `GET /api/v1/payments`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AuthCode, FailureCode, Fen};

/// Where a payment stands, as the proxy reports it. Mirrors the server's state machine
/// (docs/design.md, "Payment states").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// The intent is stored and micropay is on its way to WeChat.
    Submitting,
    /// The customer is entering the payment password on the phone.
    WaitingForCustomer,
    /// The outcome is unknown (timeout, network or WeChat error); the proxy is querying.
    Confirming,
    /// The money was received.
    Paid,
    /// Definitely not charged; see [`Payment::failure`].
    Failed,
    /// The order is being reversed (timeout or cashier cancel).
    Cancelling,
    /// Reversed: nothing is charged, and any money taken was returned.
    Cancelled,
    /// The outcome could not be settled automatically; reconciliation continues in the
    /// background. The cashier must not charge again.
    NeedsAttention,
}

impl PaymentState {
    /// Every state, in the order above.
    pub const ALL: [PaymentState; 8] = [
        PaymentState::Submitting,
        PaymentState::WaitingForCustomer,
        PaymentState::Confirming,
        PaymentState::Paid,
        PaymentState::Failed,
        PaymentState::Cancelling,
        PaymentState::Cancelled,
        PaymentState::NeedsAttention,
    ];

    /// The wire name, e.g. `waiting_for_customer`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Submitting => "submitting",
            PaymentState::WaitingForCustomer => "waiting_for_customer",
            PaymentState::Confirming => "confirming",
            PaymentState::Paid => "paid",
            PaymentState::Failed => "failed",
            PaymentState::Cancelling => "cancelling",
            PaymentState::Cancelled => "cancelled",
            PaymentState::NeedsAttention => "needs_attention",
        }
    }

    /// Reads a wire name.
    pub fn parse(name: &str) -> Option<PaymentState> {
        PaymentState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }

    /// Whether the payment's outcome is settled: `paid`, `failed` or `cancelled`. A paid
    /// payment can still be refunded.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            PaymentState::Paid | PaymentState::Failed | PaymentState::Cancelled
        )
    }

    /// Whether the proxy is still working on the payment (everything not settled, including
    /// `needs_attention`, whose reconciliation continues).
    pub fn is_in_progress(self) -> bool {
        !self.is_settled()
    }
}

impl fmt::Display for PaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /api/v1/payments`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// The idempotency key: a UUID the app makes once per payment attempt and reuses when it
    /// retries. The same `attempt_id` always answers with the same payment.
    pub attempt_id: AttemptId,
    /// The amount to charge, in fen: at least 1 and at most the proxy's configured
    /// `payments.max_amount_fen` (the served document states this server's value; above it,
    /// 400 `INVALID_AMOUNT`). Written with digits only: `1230`, never `1230.0` or `1.23e3`
    /// (400 naming `amount_fen`), a rule JSON Schema, which compares values, cannot state.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 1, maximum = 1_000_000_000_000_u64, example = 1230)
    )]
    pub amount_fen: Fen,
    /// The scanned payment code.
    pub auth_code: AuthCode,
    /// What is sold; defaults to the shop's configured description. At most 127 bytes of
    /// UTF-8 (WeChat's limit on `body`: a Chinese character takes 3) and no control
    /// characters; otherwise 400 `INVALID_REQUEST` naming `description`.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 127, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A client-made UUID in its canonical text form (`8-4-4-4-12` hex digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(value_type = String, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", example = "3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a")
)]
#[serde(try_from = "String", into = "String")]
pub struct AttemptId(String);

/// A string that is not a canonical UUID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a UUID like 3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a")]
pub struct NotAUuid;

impl AttemptId {
    /// Validates a UUID string; upper-case hex is folded to lower case.
    pub fn parse(text: &str) -> Result<AttemptId, NotAUuid> {
        let groups: Vec<&str> = text.split('-').collect();
        let lengths_match = groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12]);
        if !lengths_match
            || !groups
                .iter()
                .all(|group| group.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(NotAUuid);
        }
        Ok(AttemptId(text.to_ascii_lowercase()))
    }

    /// The UUID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AttemptId {
    type Error = NotAUuid;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        AttemptId::parse(&value)
    }
}

impl From<AttemptId> for String {
    fn from(id: AttemptId) -> String {
        id.0
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a payment failed, for the cashier.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable code: WeChat's `err_code` (`AUTHCODEEXPIRE`, `NOTENOUGH`, …) or one of the
    /// proxy's own (`WECHAT_REJECTED`, `NOT_SENT`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: FailureCode,
    /// What to tell the customer or do next, in the terminal's language.
    pub message: String,
}

/// A payment, as every payment endpoint returns it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The proxy's id for the payment.
    pub id: String,
    /// The app's idempotency key.
    pub attempt_id: AttemptId,
    /// The terminal that took it.
    pub terminal_id: String,
    /// The order number sent to WeChat.
    pub out_trade_no: String,
    /// The amount.
    pub amount_fen: Fen,
    /// The last four digits of the payment code; the code itself never leaves the proxy.
    pub auth_code_last4: String,
    /// What was sold.
    pub description: String,
    /// The state.
    pub state: PaymentState,
    /// Increases with every change; pass it as `after_version` to long-poll for the next.
    pub version: u64,
    /// Why it failed, when `state` is `failed` (or the last problem while it was retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// WeChat's order number, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Whether the cashier asked to cancel it.
    pub cancel_requested: bool,
    /// For a cancelled payment: whether the customer had been charged and the reverse
    /// returned the money.
    pub money_returned: bool,
    /// While waiting for the customer or confirming: milliseconds until the proxy stops
    /// waiting and reverses the order (for the countdown on screen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_in_ms: Option<u64>,
    /// The total of successful refunds.
    pub refunded_fen: Fen,
    /// Refunds, oldest first.
    pub refunds: Vec<Refund>,
    /// When the payment was created (RFC 3339, UTC).
    pub created_at: String,
    /// When it was last changed (RFC 3339, UTC).
    pub updated_at: String,
}

/// The body of `POST /api/v1/payments/{id}/refunds`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// The idempotency key: a UUID the app makes once per refund and reuses when retrying.
    pub refund_attempt_id: AttemptId,
    /// The amount to return, in fen: at least 1, and at most what is left of the payment
    /// after its refunds not failed (more is 409 `REFUND_EXCEEDS_PAYMENT`, which depends on
    /// the payment, not on the request). Written with digits only, like a payment's.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 1, maximum = 1_000_000_000_000_u64, example = 100)
    )]
    pub amount_fen: Fen,
    /// Why, shown to the customer by WeChat: at most 80 characters, no control characters
    /// (otherwise 400 `INVALID_REQUEST` naming `reason`).
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 80, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a refund stands: `queued` (held until WeChat's one-minute spacing between refunds of
/// one order has passed, see `not_before`), `submitting`, `processing`, `succeeded` or
/// `failed`. Every state but `failed` counts against what is left to refund.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Held until WeChat's one-minute spacing between refunds of one order has passed (an
    /// earlier refund of the same payment was applied for less than a minute ago); then sent
    /// on its own. See `not_before`.
    Queued,
    /// Stored; the application to WeChat is being sent.
    Submitting,
    /// WeChat accepted it and is moving the money.
    Processing,
    /// The money is back with the customer.
    Succeeded,
    /// WeChat refused or closed it; see `failure`.
    Failed,
}

/// A refund of a payment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The proxy's id for the refund.
    pub id: String,
    /// The app's idempotency key.
    pub refund_attempt_id: AttemptId,
    /// The refund number sent to WeChat.
    pub out_refund_no: String,
    /// The amount.
    pub amount_fen: Fen,
    /// The reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The state.
    pub state: RefundState,
    /// While `queued`: the earliest time it is sent to WeChat (RFC 3339, UTC). It can move
    /// later if WeChat still asks for more time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// When it was requested (RFC 3339, UTC).
    pub created_at: String,
}

/// `GET /api/v1/payments?date=YYYY-MM-DD&terminal=ID`: one day's payments and totals.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentList {
    /// The day, `YYYY-MM-DD` in the shop's time zone.
    pub date: String,
    /// The payments, newest first.
    pub payments: Vec<Payment>,
    /// Totals over `payments`.
    pub totals: DailyTotals,
}

/// Totals of a day's payments.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyTotals {
    /// How many payments were paid.
    pub paid_count: u64,
    /// Their sum.
    pub paid_fen: Fen,
    /// The sum of successful refunds.
    pub refunded_fen: Fen,
    /// Paid minus refunded.
    pub net_fen: Fen,
    /// How many payments are still in progress or need attention.
    pub open_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_use_snake_case_names() {
        for state in PaymentState::ALL {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
            assert_eq!(PaymentState::parse(state.as_str()), Some(state));
        }
        assert!(PaymentState::NeedsAttention.is_in_progress());
        assert!(PaymentState::Cancelled.is_settled());
    }

    #[test]
    fn create_payment_rejects_unknown_fields_and_bad_values() {
        let good = r#"{"attempt_id":"3F2B8C1E-9D4A-4C7E-8B1F-2A6D5E9C0B7A","amount_fen":1230,"auth_code":"134567890123455678"}"#;
        let body: CreatePayment = serde_json::from_str(good).unwrap();
        assert_eq!(
            body.attempt_id.as_str(),
            "3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a"
        );
        assert_eq!(body.amount_fen, Fen(1230));
        let extra = good.replace("}", r#","tip":1}"#);
        assert!(serde_json::from_str::<CreatePayment>(&extra).is_err());
        let float = good.replace("1230", "12.3");
        assert!(serde_json::from_str::<CreatePayment>(&float).is_err());
        let number_code = good.replace("\"134567890123455678\"", "134567890123455678");
        assert!(serde_json::from_str::<CreatePayment>(&number_code).is_err());
    }

    #[test]
    fn attempt_ids_must_be_uuids() {
        assert!(AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a").is_ok());
        for bad in [
            "",
            "3f2b8c1e9d4a4c7e8b1f2a6d5e9c0b7a",
            "3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7g",
            "x-y-z-w-v",
        ] {
            assert_eq!(AttemptId::parse(bad), Err(NotAUuid), "{bad}");
        }
    }
}
