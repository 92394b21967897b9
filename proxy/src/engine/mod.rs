//! The payments engine: the rules that turn "a cashier scanned a code" into exactly one
//! correct outcome.
//!
//! - [`machine`]: the state machine as pure functions over stored facts and classified
//!   WeChat outcomes. It decides; it never performs I/O or reads the clock.

pub mod machine;
