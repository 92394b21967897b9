//! `wxpay-sim`: the WeChat Pay simulator as a standalone HTTPS server.
//!
//! ```text
//! wxpay-sim --listen 127.0.0.1:8443 --backup-listen 127.0.0.1:8444 --cert-dir ./sim-certs \
//!           --appid wxd930ea5d5a258f4f --mch-id 10000100 --key 192006250b4c09247ec02edce69f6a2d
//! ```
//!
//! It prints the primary and backup URLs, the certificate files and the phone page, then
//! serves until Ctrl-C. See `wxpay/SIMULATOR.md` for the behaviour table and control API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wxpay::sim::{DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, Simulator};

/// A faithful WeChat Pay API v2 simulator (micropay, query, reverse, refund, bills).
#[derive(Debug, Parser)]
#[command(name = "wxpay-sim", version)]
struct Args {
    /// Address of the primary host (stands for api.mch.weixin.qq.com); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Address of the backup host (stands for api2.mch.weixin.qq.com); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:0")]
    backup_listen: SocketAddr,
    /// Directory for ca.pem, apiclient_cert.pem, apiclient_key.pem and apiclient_cert.p12
    /// (password = mch_id). Regenerated on every start.
    #[arg(long, default_value = "./wxpay-sim-certs")]
    cert_dir: PathBuf,
    /// The merchant's appid.
    #[arg(long, default_value = DEMO_APPID)]
    appid: String,
    /// The merchant number.
    #[arg(long, default_value = DEMO_MCH_ID)]
    mch_id: String,
    /// The merchant's APIv2 key.
    #[arg(long, env = "WXPAY_SIM_KEY", default_value = DEMO_API_KEY, hide_default_value = true)]
    key: String,
    /// How many times faster than real time simulated time runs.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Real seconds the "slow reply" behaviour holds its reply back.
    #[arg(long, default_value_t = 15)]
    slow_reply_secs: u64,
    /// Simulated seconds until a refund turns from PROCESSING to SUCCESS.
    #[arg(long, default_value_t = 60)]
    refund_delay_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let started = Simulator::builder()
        .merchant(args.appid, args.mch_id, args.key)
        .listen(args.listen)
        .backup_listen(args.backup_listen)
        .cert_dir(args.cert_dir)
        .time_scale(args.time_scale)
        .slow_reply_delay(Duration::from_secs(args.slow_reply_secs))
        .refund_delay(Duration::from_secs(args.refund_delay_secs))
        .start()
        .await;
    let sim = match started {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("wxpay-sim: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("primary: {}", sim.primary_url());
    println!("backup:  {}", sim.backup_url());
    println!("phone:   {}/_sim/phone", sim.primary_url());
    println!("control: {}/_sim/state", sim.primary_url());
    if let Some(files) = sim.cert_files() {
        println!("ca:      {}", files.ca_pem.display());
        println!("cert:    {}", files.client_cert_pem.display());
        println!("key:     {}", files.client_key_pem.display());
        println!("p12:     {}", files.client_p12.display());
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("wxpay-sim: cannot wait for Ctrl-C: {error}");
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}
