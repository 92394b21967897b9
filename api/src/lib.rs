//! The wire contract between the Paycode cashier app (wasm) and the Paycode proxy.
//!
//! This crate holds types only: newtypes that parse rather than validate ([`Fen`],
//! [`AuthCode`]) and the JSON shapes both sides exchange. It has no I/O dependencies, so it
//! compiles for `wasm32-unknown-unknown` as well as natively.
//!
//! # Layout
//! - [`money`]: [`Fen`], exact integer amounts in the smallest unit of CNY, and the decimal
//!   parser used for cashier input.
//! - [`auth_code`]: [`AuthCode`], a scanned WeChat Pay payment code, never a number.
//! - [`payments`]: the payment and refund bodies and states.
//! - [`books`]: what a day's reconciliation found ([`books::DayReport`]) and the books
//!   HTTP API's bodies (day list, day detail, mismatch statuses, [`books::ExplainMismatch`]).
//! - [`session`]: the calling terminal and demo-mode pairing.
//! - [`approvals`]: terminal roles and manager approvals ([`Role`], [`ApprovalRequest`],
//!   [`Approval`]).
//! - [`error`]: [`ErrorBody`], the shape of every failed request.
//! - [`codes`]: [`ErrorCode`] and [`FailureCode`], every code the proxy answers with, and
//!   [`CashierCopy`], the one table of what to tell the cashier for each failure.

pub mod approvals;
pub mod auth_code;
pub mod books;
pub mod codes;
pub mod error;
pub mod money;
pub mod payments;
pub mod session;

pub use approvals::{
    APPROVAL_HEADER, Approval, ApprovalAction, ApprovalRequest, ApprovalUses, AttentionList, Role,
    SettleOutcome, SettleRequest, Settlement,
};
pub use auth_code::{AuthCode, AuthCodeError};
pub use codes::{CashierCopy, ErrorCode, FailureCode};
pub use error::ErrorBody;
pub use money::{ChargeAmountError, Fen, FenParseError};
pub use payments::{
    AttemptId, CreatePayment, CreateRefund, DailyTotals, Failure, Payment, PaymentList,
    PaymentState, Refund, RefundState,
};
pub use session::{DemoPairing, Paired, PairingRequest, StoreInfo, TerminalInfo};
