//! The torture soak ([`paycode_tests::soak`]): payments from several terminals against the
//! real `paycode-proxy` binary while it is killed (`crash`) or WeChat misbehaves (`faults`),
//! then the store against WeChat's books and a scan for leaked secrets.
//!
//! ```text
//! cargo run --release -p paycode-tests --example soak -- crash  --short [--seed N]
//! cargo run --release -p paycode-tests --example soak -- faults --short [--seed N] [--fault-rate 0.2]
//! cargo run --release -p paycode-tests --example soak -- crash  --long
//! ```
//!
//! `--help` lists the other options. Exits 1 when the soak found anything wrong.

use clap::Parser;
use paycode_tests::soak::{self, Args};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    if soak::run(Args::parse()).await {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
