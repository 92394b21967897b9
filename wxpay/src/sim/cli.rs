//! The simulator's command line, shared by the `wxpay-sim` binary and `paycode-proxy sim`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{BillFormat, DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, SimError, Simulator};

/// A faithful WeChat Pay API v2 simulator (micropay, query, reverse, refund, bills).
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Address of the primary host (stands for api.mch.weixin.qq.com); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Address of the backup host (stands for api2.mch.weixin.qq.com); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub backup_listen: SocketAddr,
    /// Directory for ca.pem, apiclient_cert.pem, apiclient_key.pem and apiclient_cert.p12
    /// (password = mch_id). Regenerated on every start.
    #[arg(long, default_value = "./wxpay-sim-certs")]
    pub cert_dir: PathBuf,
    /// The merchant's appid.
    #[arg(long, default_value = DEMO_APPID)]
    pub appid: String,
    /// The merchant number.
    #[arg(long, default_value = DEMO_MCH_ID)]
    pub mch_id: String,
    /// The merchant's APIv2 key.
    #[arg(long, env = "WXPAY_SIM_KEY", default_value = DEMO_API_KEY, hide_default_value = true)]
    pub key: String,
    /// How many times faster than real time simulated time runs.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Real seconds the "slow reply" behaviour holds its reply back.
    #[arg(long, default_value_t = 15)]
    pub slow_reply_secs: u64,
    /// Simulated seconds until a refund turns from PROCESSING to SUCCESS.
    #[arg(long, default_value_t = 60)]
    pub refund_delay_secs: u64,
    /// Least simulated seconds between two refund applications of one order (0: no limit).
    #[arg(long, default_value_t = 60)]
    pub refund_spacing_secs: u64,
    /// The merchant's bill format: `settlement` (since 2018) or `legacy` (docs/books.md §1).
    #[arg(long, value_enum, default_value_t = BillFormat::Settlement)]
    pub bill_format: BillFormat,
    /// When a day's bill is ready on the next day, `HH:MM` Beijing time (simulated clock).
    #[arg(long, default_value = "10:00", value_parser = parse_time_of_day)]
    pub bill_ready_at: chrono::NaiveTime,
}

fn parse_time_of_day(text: &str) -> Result<chrono::NaiveTime, String> {
    chrono::NaiveTime::parse_from_str(text, "%H:%M").map_err(|error| format!("HH:MM: {error}"))
}

/// Starts the simulator, prints its URLs and certificate files, and serves until Ctrl-C.
pub async fn serve(args: SimArgs) -> Result<(), SimError> {
    let sim = Simulator::local(args.cert_dir)
        .merchant(args.appid, args.mch_id, args.key)
        .bill_format(args.bill_format)
        .bill_ready_at(args.bill_ready_at)
        .listen(args.listen)
        .backup_listen(args.backup_listen)
        .time_scale(args.time_scale)
        .slow_reply_delay(Duration::from_secs(args.slow_reply_secs))
        .refund_delay(Duration::from_secs(args.refund_delay_secs))
        .refund_spacing(Duration::from_secs(args.refund_spacing_secs))
        .start()
        .await?;
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
        eprintln!("cannot wait for Ctrl-C: {error}");
    }
    sim.shutdown().await;
    Ok(())
}
