//! Shared harness for Paycode's cross-crate tests: starting the simulator and the proxy
//! (in process or as the real binary), and reaching them over HTTP.
//!
//! - [`world`]: a [`World`] is one simulated WeChat Pay and one proxy serving its real HTTP
//!   API on a port, with SQLite on disk and a terminal's bearer token, all on simulated time.
//! - [`cashier`]: [`Cashier`], the JSON API as a cashier terminal calls it, with long-polling.
//! - [`ledger`]: the simulator's call log and books, and the checks that they agree with
//!   what the proxy shows.
//! - [`binary`]: the real `paycode-proxy` binary as a child process, for crash tests.
//! - [`fake_wechat`]: a plain-HTTP stand-in for WeChat that answers anything (hostile replies).
//! - [`secrets`]: scans response bodies and log lines for secrets (soaks, hostile tests).
//! - [`reconcile`]: the end-of-soak check of the proxy's store against WeChat's books.

pub mod binary;
pub mod cashier;
pub mod fake_wechat;
pub mod ledger;
pub mod reconcile;
pub mod secrets;
pub mod world;

pub use cashier::{Cashier, Reply};
pub use world::World;
