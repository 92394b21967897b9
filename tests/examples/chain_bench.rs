//! The chain benchmarks ([`paycode_tests::chain::bench`]): throughput of three instances on
//! PostgreSQL beside one on PostgreSQL and one on SQLite, the cross-instance long-poll lag,
//! and the time another instance takes over a killed owner's payment. Figures, printed, not
//! asserted; on 2 cores three instances measure the cost of coordination, not scale-out.
//!
//! ```text
//! eval "$(scripts/pg-cluster start)"
//! cargo run --release -p paycode-tests --example chain_bench [-- --seconds 20 --terminals 16]
//! ```

use clap::Parser;
use paycode_tests::chain::bench::{self, Args};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    bench::run(Args::parse()).await;
}
