//! The payments engine: the rules that turn "a cashier scanned a code" into exactly one
//! correct outcome, and the driver that applies them.
//!
//! - [`machine`]: the state machine as pure functions over stored facts and classified
//!   WeChat outcomes. It decides; it never performs I/O or reads the clock.
//! - [`classify`]: WeChat client results → the machine's outcomes, and err_codes → cashier
//!   messages.
//! - [`refunds`]: the refund rules, as pure functions beside the payment rules.
//! - [`Engine`] (`api`): what the HTTP layer and the CLI ask of the engine, and the resume
//!   of unfinished work on start.
//! - `driver`: one task with a timer queue ([`schedule`]) that starts each step when due.
//! - `steps`: the payment and refund steps, which make one WeChat call each and commit every
//!   decision before the next call.
//! - `watch`: the long-poll channels ([`Watch`]).
//! - [`limiter`]: the per-merchant micropay rate limit.
//! - [`verify`]: acting on evidence: re-query one payment and settle it from WeChat's
//!   verified reply only, naming who asked (docs/books.md §4).
//! - [`spacing`]: when a refund may go to WeChat, a minute after the previous refund of the
//!   same payment (docs/wechat-pay.md §3.4).

mod api;
pub mod classify;
mod driver;
mod leases;
pub mod limiter;
pub mod machine;
pub mod refunds;
pub mod schedule;
pub mod spacing;
mod steps;
pub mod verify;
mod watch;

pub use api::{Engine, EngineError, EngineSettings};
pub use leases::LeaseSettings;
pub use watch::{Change, Watch};
