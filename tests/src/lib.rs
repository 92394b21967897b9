//! The one harness for Paycode's cross-crate tests, soaks and benchmarks: starting the
//! simulator and the proxy (in process or as the real binary), and reaching them over HTTP.
//!
//! - [`world`]: a [`World`] is one simulated WeChat Pay and one proxy serving its real HTTP
//!   API on a port, with SQLite on disk (or PostgreSQL, [`test_store`]) and a terminal's
//!   bearer token, all on simulated time.
//! - [`instances`]: [`Instances`](instances::Instances), several proxies in process on one
//!   PostgreSQL database and one simulator, each with a cashier holding the same terminal.
//! - [`cashier`]: [`Cashier`], the JSON API as a cashier terminal calls it, with long-polling
//!   (asserting forms for tests, `try_*` forms for soaks and benchmarks).
//! - [`ledger`]: the simulator's call log and books, and the checks that they agree with
//!   what the proxy shows.
//! - [`binary`]: the real `paycode-proxy` binary as a child process ([`binary::proxy_binary`]
//!   is the one way to find it), for crash tests, the soak, benchmarks and browser tests.
//! - [`fake_camera`]: videos of a phone showing a payment code, for Chromium's fake camera.
//! - [`fake_wechat`]: a plain-HTTP stand-in for WeChat that answers anything (hostile replies).
//! - [`secrets`]: scans response bodies and log lines for secrets (soaks, hostile tests).
//! - [`reconcile`]: the end-of-soak check of the proxy's store against WeChat's books.
//! - [`soak`]: the torture soak behind `--example soak`.
//! - [`books_soak`]: the reconciliation soak behind `--example books_soak`.
//! - [`chain`]: several real binaries on one PostgreSQL database ([`chain::Chain`]), the chain
//!   soak behind `--example chain_soak` and what `--example chain_bench` starts.
//! - [`bench`]: what the benchmark examples share (a proxy in process or as a child, figures).
//! - [`test_log`]: the `TEST_LOG` switch that shows the proxy's logs in a test's output.
//! - [`test_store`]: the `PAYCODE_TEST_STORE` switch that runs every proxy on PostgreSQL.
//!
//! The simulator itself starts in one place, [`wxpay::sim::Simulator::local`], and the
//! proxy's configuration for it in one place, `paycode_proxy::cli::demo::simulator_config`.

pub mod bench;
pub mod binary;
pub mod books_soak;
pub mod cashier;
pub mod chain;
pub mod fake_camera;
pub mod fake_wechat;
pub mod instances;
pub mod ledger;
pub mod reconcile;
pub mod secrets;
pub mod soak;
pub mod test_log;
pub mod test_store;
pub mod world;

pub use cashier::{Cashier, Reply};
pub use world::World;

/// Any error, for the harness's fallible (non-asserting) helpers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A free TCP port on loopback (bound, read and released; another process may take it before
/// the caller binds it, which on a test machine does not happen in practice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}
