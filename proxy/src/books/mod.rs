//! The owner's books: daily reconciliation of WeChat's bill against the store
//! (docs/books.md).
//!
//! This module is pure: it takes a parsed bill ([`wxpay::messages::download_bill::Bill`]),
//! the store's payments and refunds as small input structs, and what the previous day's run
//! carried over, and returns a serialisable [`DayReport`] (defined in the wire contract,
//! [`paycode_api::books`], since the back office shows it). Downloading the bill, reading
//! the store and keeping the reports are the callers' business.

pub mod day;
pub mod reconcile;
pub mod records;

pub use day::{BEIJING_OFFSET_SECONDS, BusinessDay};
pub use paycode_api::books::{
    BillStatus, CarriedPayment, CarriedRefund, CarryOver, DayReport, Mark, Mismatch, MismatchClass,
    NotFromPaycode, OwnerAction, SideTotals,
};
pub use reconcile::{
    AccountScope, BillInput, ReconcileInput, Rules, StorePayment, StoreRefund, reconcile,
};
