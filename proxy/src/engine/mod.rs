//! The payments engine: the rules that turn "a cashier scanned a code" into exactly one
//! correct outcome, and the driver that applies them.
//!
//! - [`machine`]: the state machine as pure functions over stored facts and classified
//!   WeChat outcomes. It decides; it never performs I/O or reads the clock.
//! - [`classify`]: WeChat client results → the machine's outcomes, and err_codes → cashier
//!   messages.
//! - [`driver`]: [`Engine`], one task with a timer queue ([`schedule`]) that makes each
//!   WeChat call when due, commits every decision before the next call, and resumes
//!   unfinished payments on start.
//! - [`limiter`]: the per-merchant micropay rate limit.
//! - [`spacing`]: when a refund may go to WeChat, a minute after the previous refund of the
//!   same payment (spec §3.4).

pub mod classify;
pub mod driver;
pub mod limiter;
pub mod machine;
pub mod schedule;
pub mod spacing;

pub use driver::{Engine, EngineError, EngineSettings, Watch};
