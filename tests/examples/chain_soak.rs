//! The chain soak ([`paycode_tests::chain::soak`]): three real `paycode-proxy` binaries on one
//! PostgreSQL database, requests spread over them at random, kills, a pause past the lease
//! and a burst on one account; then the books, the senders and the rate (docs/chains.md).
//!
//! ```text
//! eval "$(scripts/pg-cluster start)"
//! cargo run --release -p paycode-tests --example chain_soak -- --short [--seed N]
//! cargo run --release -p paycode-tests --example chain_soak -- --long
//! ```
//!
//! `--help` lists the other options. Exits 1 when the soak found anything wrong.

use clap::Parser;
use paycode_tests::chain::soak::{self, Args};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    if soak::run(Args::parse()).await {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
