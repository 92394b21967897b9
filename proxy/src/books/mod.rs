//! The owner's books: daily reconciliation of WeChat's bill against the store
//! (docs/books.md).
//!
//! - [`day`], [`reconcile`]: pure. A parsed bill ([`wxpay::messages::download_bill::Bill`]),
//!   the store's payments and refunds as small input structs and what the previous day's
//!   run carried over go in; a serialisable [`DayReport`] (defined in the wire contract,
//!   [`paycode_api::books`], since the back office shows it) comes out.
//! - [`records`]: what the store keeps per day and account, and per mismatch.
//! - [`run`]: one run of a day and account, end to end: download, read the store, reconcile,
//!   act on evidence, store ([`run::Books`]), for `paycode-proxy reconcile` and the daily
//!   run.
//! - [`daily`]: the daily run inside `serve`.

pub mod daily;
pub mod day;
pub mod reconcile;
pub mod records;
pub mod run;

pub use day::{BEIJING_OFFSET_SECONDS, BusinessDay};
pub use paycode_api::books::{
    BillStatus, CarriedPayment, CarriedRefund, CarryOver, DayReport, Mark, Mismatch, MismatchClass,
    NotFromPaycode, OwnerAction, SideTotals,
};
pub use reconcile::{
    AccountScope, BillInput, ReconcileInput, Rules, StorePayment, StoreRefund, reconcile,
};
