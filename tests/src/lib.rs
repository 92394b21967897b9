//! Shared harness for Paycode's cross-crate tests: starting the simulator and the proxy
//! (in process or as the real binary), and reaching them over HTTP.
//!
//! - [`world`]: a [`World`] is one simulated WeChat Pay and one proxy serving its real HTTP
//!   API on a port, with SQLite on disk and a terminal's bearer token, all on simulated time.
//! - [`cashier`]: [`Cashier`], the JSON API as a cashier terminal calls it, with long-polling.
//! - [`ledger`]: the simulator's call log and books, and the checks that they agree with
//!   what the proxy shows.
//! - [`binary`]: the real `paycode-proxy` binary as a child process, for crash tests.

pub mod binary;
pub mod cashier;
pub mod ledger;
pub mod world;

pub use cashier::{Cashier, Reply};
pub use world::World;
