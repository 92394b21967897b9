//! The reconciliation soak ([`paycode_tests::books_soak`]): simulated days of random traffic
//! through an in-process proxy and the simulator, with random injected discrepancies; each
//! day's stored report must list exactly what was injected.
//!
//! ```text
//! cargo run --release -p paycode-tests --example books_soak              # 7 days
//! cargo run --release -p paycode-tests --example books_soak -- --short   # 3 days, for CI
//! cargo run --release -p paycode-tests --example books_soak -- --seed N --days 14 --payments 20
//! ```
//!
//! Prints a table per day and exits 1 on any false positive, miss or unverified lost reply.

use clap::Parser;
use paycode_tests::books_soak::{self, Args};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    if books_soak::run(Args::parse()).await {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
