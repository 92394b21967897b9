//! The simulator's command line, shared by the `wxpay-sim` binary and `paycode-proxy sim`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{BillFormat, DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, SimError, SimHandle, Simulator};

/// A faithful WeChat Pay API v2 simulator (micropay, query, reverse, refund, bills).
///
/// Its one merchant is `--appid`, `--mch-id` and `--key`; the defaults are the example values
/// of `proxy/paycode.example.toml`, so that file works with it once its `[wechat]` hosts and
/// certificates point here. At start it prints the `[wechat]` block to paste.
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

/// The `[wechat]` section of a `paycode-proxy` configuration (`paycode.toml`) that takes
/// payments from `sim`'s first merchant: its appid and mch_id, both hosts, the client
/// certificate and key and the CA, as TOML to paste. The API key is never printed: a comment
/// says to give `api_key` the simulator's `--key`.
pub fn proxy_config(sim: &SimHandle) -> String {
    let merchant = &sim.merchants()[0];
    let mut block = format!(
        "# paycode-proxy: paste into paycode.toml in place of its [wechat] section.\n\
         [wechat]\n\
         appid = {}\n\
         mch_id = {}\n\
         # api_key = the value you gave --key / WXPAY_SIM_KEY (without --key:\n\
         # proxy/paycode.example.toml's); better given as PAYCODE_WECHAT__API_KEY.\n\
         primary_url = {}\n\
         backup_url = {}\n",
        toml_string(&merchant.appid),
        toml_string(&merchant.mch_id),
        toml_string(sim.primary_url()),
        toml_string(sim.backup_url()),
    );
    if let Some(files) = sim.cert_files() {
        for (key, path) in [
            ("cert_pem", &files.client_cert_pem),
            ("key_pem", &files.client_key_pem),
            ("extra_ca_pem", &files.ca_pem),
        ] {
            block.push_str(&format!(
                "{key} = {}\n",
                toml_string(&path.display().to_string())
            ));
        }
    }
    block
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn parse_time_of_day(text: &str) -> Result<chrono::NaiveTime, String> {
    chrono::NaiveTime::parse_from_str(text, "%H:%M").map_err(|error| format!("HH:MM: {error}"))
}

/// Starts the simulator, prints its URLs, its certificate files and the `[wechat]` block of
/// a `paycode-proxy` configuration that uses it ([`proxy_config`]), and serves until Ctrl-C.
pub async fn serve(args: SimArgs) -> Result<(), SimError> {
    // Absolute, so that the printed paths work from any directory the proxy starts in.
    let cert_dir = std::path::absolute(&args.cert_dir).unwrap_or(args.cert_dir);
    let sim = Simulator::local(cert_dir)
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
    println!();
    print!("{}", proxy_config(&sim));
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {error}");
    }
    sim.shutdown().await;
    Ok(())
}
