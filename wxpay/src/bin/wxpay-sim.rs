//! `wxpay-sim`: the WeChat Pay simulator as a standalone HTTPS server.
//!
//! ```text
//! wxpay-sim --listen 127.0.0.1:8443 --backup-listen 127.0.0.1:8444 --cert-dir ./sim-certs \
//!           --appid wxd930ea5d5a258f4f --mch-id 10000100 --key 192006250b4c09247ec02edce69f6a2d
//! ```
//!
//! It prints the primary and backup URLs, the certificate files and the phone page, then
//! serves until Ctrl-C. See `wxpay/SIMULATOR.md` for the behaviour table and control API.

use std::process::ExitCode;

use clap::Parser;
use wxpay::sim::cli::{SimArgs, serve};

#[derive(Debug, Parser)]
#[command(name = "wxpay-sim", version, about)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    match serve(Cli::parse().sim).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wxpay-sim: {error}");
            ExitCode::FAILURE
        }
    }
}
