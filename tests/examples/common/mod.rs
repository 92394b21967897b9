//! What the benchmarks share: the embedded simulator, the proxy (in this process or as the
//! real `paycode-proxy` binary in a child process), a cashier terminal's HTTP calls, and
//! figures (percentiles, RSS, tables).

#![allow(dead_code)] // Each example uses part of this module.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paycode_api::{Payment, PaymentState};
use paycode_proxy::auth::Terminals;
use paycode_proxy::cli::demo::simulator_wechat_config;
use paycode_proxy::config::Config;
use paycode_proxy::startup::{AppState, Application};
use paycode_proxy::store::SqliteStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxpay::sim::{DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID, SimHandle, Simulator};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Starts the simulator on loopback ports with certificates written under `root/sim-certs`.
pub async fn start_simulator(root: &Path, time_scale: f64) -> Result<SimHandle> {
    Ok(Simulator::builder()
        .merchant(DEMO_APPID, DEMO_MCH_ID, DEMO_API_KEY)
        .listen("127.0.0.1:0".parse()?)
        .backup_listen("127.0.0.1:0".parse()?)
        .cert_dir(root.join("sim-certs"))
        .time_scale(time_scale)
        .start()
        .await?)
}

/// A running proxy: where it listens and one bearer token per terminal.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// One token per virtual terminal.
    pub tokens: Vec<String>,
    /// The process id of the proxy (this process when it runs in process).
    pub pid: u32,
    kind: ProxyKind,
}

enum ProxyKind {
    InProcess {
        stop: oneshot::Sender<()>,
        server: JoinHandle<std::io::Result<()>>,
    },
    Child(Child),
}

/// How the configuration differs from the defaults for a benchmark.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// `payments.micropay_rate_per_second`.
    pub micropay_rate_per_second: u32,
    /// How many terminals (tokens) to create.
    pub terminals: usize,
}

/// The proxy's configuration for `sim`, with its data under `root/data`.
pub fn bench_config(root: &Path, sim: &SimHandle, settings: &ProxySettings) -> Config {
    let mut config = Config::new(simulator_wechat_config(sim));
    config.store.data_dir = root.join("data");
    config.server.app_dir = root.join("dist");
    config.server.listen = "127.0.0.1:0".parse().expect("a socket address");
    config.payments.micropay_rate_per_second = settings.micropay_rate_per_second;
    config
}

impl Proxy {
    /// Builds and serves the proxy inside this process (same tokio runtime).
    pub async fn in_process(
        root: &Path,
        sim: &SimHandle,
        settings: &ProxySettings,
    ) -> Result<Proxy> {
        let config = bench_config(root, sim, settings);
        config.validate()?;
        let store = Arc::new(SqliteStore::connect(&config.store).await?);
        let terminals = Terminals::new(store.clone());
        let mut tokens = Vec::with_capacity(settings.terminals);
        for n in 0..settings.terminals {
            let (_, token) = terminals.add(&format!("bench-{n}")).await?;
            tokens.push(token.expose().to_owned());
        }
        let state = AppState::new(Arc::new(config), store)?;
        let application = Application::build_with_state(state).await?;
        let base = format!("http://127.0.0.1:{}", application.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        Ok(Proxy {
            base,
            tokens,
            pid: std::process::id(),
            kind: ProxyKind::InProcess { stop, server },
        })
    }

    /// Runs the real `paycode-proxy` binary as a child process, configured by a generated
    /// `paycode.toml` in `root`; terminals are added with `paycode-proxy terminal add`.
    pub async fn child(
        binary: &Path,
        root: &Path,
        sim: &SimHandle,
        settings: &ProxySettings,
        log: &str,
    ) -> Result<Proxy> {
        let port = free_port()?;
        let files = sim
            .cert_files()
            .ok_or("the simulator wrote no certificate files")?;
        let config_path = root.join("paycode.toml");
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\napp_dir = {app_dir:?}\n\n\
             [store]\ndata_dir = {data_dir:?}\n\n\
             [wechat]\nappid = {appid:?}\nmch_id = {mch_id:?}\napi_key = {api_key:?}\n\
             primary_url = {primary:?}\nbackup_url = {backup:?}\n\
             cert_pem = {cert:?}\nkey_pem = {key:?}\nextra_ca_pem = {ca:?}\n\n\
             [payments]\nmicropay_rate_per_second = {rate}\n",
            app_dir = root.join("dist").display().to_string(),
            data_dir = root.join("data").display().to_string(),
            appid = DEMO_APPID,
            mch_id = DEMO_MCH_ID,
            api_key = DEMO_API_KEY,
            primary = sim.primary_url(),
            backup = sim.backup_url(),
            cert = files.client_cert_pem.display().to_string(),
            key = files.client_key_pem.display().to_string(),
            ca = files.ca_pem.display().to_string(),
            rate = settings.micropay_rate_per_second,
        );
        std::fs::write(&config_path, toml)?;
        let mut tokens = Vec::with_capacity(settings.terminals);
        for n in 0..settings.terminals {
            let output = Command::new(binary)
                .arg("--config")
                .arg(&config_path)
                .args(["terminal", "add", &format!("bench-{n}")])
                .env("RUST_LOG", "warn")
                .stderr(Stdio::inherit())
                .output()?;
            if !output.status.success() {
                return Err(
                    format!("`paycode-proxy terminal add` failed: {}", output.status).into(),
                );
            }
            let stdout = String::from_utf8(output.stdout)?;
            let token = stdout
                .split_whitespace()
                .find(|word| word.starts_with("pct_"))
                .ok_or("`paycode-proxy terminal add` printed no token")?;
            tokens.push(token.to_owned());
        }
        let log_file = std::fs::File::create(root.join("proxy.log"))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()?;
        let pid = child.id();
        let base = format!("http://127.0.0.1:{port}");
        let proxy = Proxy {
            base,
            tokens,
            pid,
            kind: ProxyKind::Child(child),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(response) = client.get(format!("{}/healthz", proxy.base)).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "the proxy did not answer /healthz within 30 s; see {}",
                    root.join("proxy.log").display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(proxy)
    }

    /// Stops the proxy (SIGTERM-free for the child: it is killed; pending payments stay in
    /// the throw-away database).
    pub async fn stop(self) {
        match self.kind {
            ProxyKind::InProcess { stop, server } => {
                let _ = stop.send(());
                let _ = server.await;
            }
            ProxyKind::Child(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A free loopback port (bound, read, released).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The `paycode-proxy` binary: `$PAYCODE_PROXY_BIN`, or the one next to this example in the
/// same target directory and profile, built first with `cargo build -p paycode-proxy` (a
/// no-op when it is up to date) so that the figure is never taken from a stale binary.
pub fn proxy_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PAYCODE_PROXY_BIN") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/examples/<this example> → target/<profile>/paycode-proxy
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory from the example's path")?;
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "-q",
        "-p",
        "paycode-proxy",
        "--bin",
        "paycode-proxy",
    ]);
    if release {
        build.arg("--release");
    }
    eprintln!(
        "building the proxy binary: cargo build -p paycode-proxy{}",
        if release { " --release" } else { "" }
    );
    let status = build.status()?;
    if !status.success() {
        return Err("cargo build -p paycode-proxy failed".into());
    }
    let binary = profile_dir.join("paycode-proxy");
    if !binary.is_file() {
        return Err(format!("{} does not exist", binary.display()).into());
    }
    Ok(binary)
}

/// A cashier terminal talking to the proxy's API.
#[derive(Clone)]
pub struct Terminal {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Terminal {
    pub fn new(base: &str, token: &str) -> Terminal {
        Terminal {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(4)
                .tcp_nodelay(true)
                .build()
                .expect("an HTTP client"),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    /// `POST /api/v1/payments` with a fresh attempt id.
    pub async fn create(&self, amount_fen: u64, auth_code: &str) -> Result<Payment> {
        let response = self
            .client
            .post(format!("{}/api/v1/payments", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({
                "attempt_id": uuid::Uuid::new_v4().to_string(),
                "amount_fen": amount_fen,
                "auth_code": auth_code,
            }))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("POST /payments: {status}: {body}").into());
        }
        Ok(response.json().await?)
    }

    /// `GET /api/v1/payments/{id}?wait=…&after_version=…`.
    pub async fn poll(&self, payment: &Payment, wait_secs: u64) -> Result<Payment> {
        let response = self
            .client
            .get(format!(
                "{}/api/v1/payments/{}?wait={wait_secs}&after_version={}",
                self.base, payment.id, payment.version
            ))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("GET /payments/{}: {status}: {body}", payment.id).into());
        }
        Ok(response.json().await?)
    }

    /// Long-polls until the payment reaches `until` or settles otherwise; returns it and the
    /// number of polls made.
    pub async fn poll_until(
        &self,
        mut payment: Payment,
        until: PaymentState,
        wait_secs: u64,
    ) -> Result<(Payment, u32)> {
        let mut polls = 0;
        while payment.state != until {
            if payment.state.is_settled() {
                return Err(format!(
                    "payment {} settled as {} ({:?}), not {until}",
                    payment.id, payment.state, payment.failure
                )
                .into());
            }
            payment = self.poll(&payment, wait_secs).await?;
            polls += 1;
        }
        Ok((payment, polls))
    }
}

/// A unique password-free payment code for sequence number `n` (< 10^7): `13`, eight zeros,
/// then `n` in eight digits, so digits 11–14 never read `9999` (the simulator's behaviour
/// marker) and no code is used twice in a run.
pub fn password_free_code(run: u8, n: u64) -> String {
    format!("1{}{:08}{n:08}", run % 6, 0)
}

/// A uniformly random number in `[0, 1)`.
pub fn random_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Latency figures of a sample.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    pub count: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub min: Duration,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            // Nearest rank.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1]
        };
        let total: Duration = samples.iter().sum();
        Percentiles {
            count: samples.len(),
            mean: if samples.is_empty() {
                Duration::ZERO
            } else {
                total / samples.len() as u32
            },
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: samples.last().copied().unwrap_or_default(),
            min: samples.first().copied().unwrap_or_default(),
        }
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .ok_or("malformed status line")?
            .parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Milliseconds with two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// Seconds with three decimals.
pub fn secs(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// One row of the results table.
pub struct Row {
    pub metric: String,
    pub target: String,
    pub measured: String,
    pub verdict: Option<bool>,
}

impl Row {
    pub fn new(metric: &str, target: &str, measured: String, verdict: Option<bool>) -> Row {
        Row {
            metric: metric.to_owned(),
            target: target.to_owned(),
            measured,
            verdict,
        }
    }
}

/// Prints rows as an aligned table.
pub fn print_table(title: &str, rows: &[Row]) {
    let width = |f: fn(&Row) -> usize, header: &str| {
        rows.iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .max(header.chars().count())
    };
    let w0 = width(|row| row.metric.chars().count(), "metric");
    let w1 = width(|row| row.target.chars().count(), "target");
    let w2 = width(|row| row.measured.chars().count(), "measured");
    println!();
    println!("{title}");
    println!(
        "{:<w0$}  {:<w1$}  {:>w2$}  result",
        "metric", "target", "measured"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 12));
    for row in rows {
        let verdict = match row.verdict {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        };
        println!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {verdict}",
            row.metric, row.target, row.measured
        );
    }
}

/// Reads `--name value` from the command line, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|arg| arg == name) {
        Some(index) => {
            let value = args
                .get(index + 1)
                .unwrap_or_else(|| panic!("{name} needs a value"));
            value
                .parse()
                .unwrap_or_else(|error| panic!("{name} {value}: {error}"))
        }
        None => default,
    }
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|arg| arg == name)
}

/// The Prometheus `/metrics` text.
pub async fn metrics(base: &str) -> Result<String> {
    Ok(reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?)
}

/// CPU time (user, system) and context switches (voluntary, involuntary) of a process, all
/// threads included, from `/proc/<pid>/stat` and `/proc/<pid>/task/*/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    pub user: Duration,
    pub system: Duration,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

impl CpuSample {
    pub fn of(pid: u32) -> Result<CpuSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which is in parentheses and may contain spaces).
        let rest = &stat[stat.rfind(')').ok_or("malformed stat")? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the state.
        let ticks = |index: usize| -> Result<Duration> {
            let ticks: u64 = fields.get(index).ok_or("short stat")?.parse()?;
            // USER_HZ is 100 on Linux.
            Ok(Duration::from_millis(ticks * 10))
        };
        let mut sample = CpuSample {
            user: ticks(11)?,
            system: ticks(12)?,
            ..CpuSample::default()
        };
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                let mut words = line.split_whitespace();
                match (
                    words.next(),
                    words.next().and_then(|n| n.parse::<u64>().ok()),
                ) {
                    (Some("voluntary_ctxt_switches:"), Some(n)) => sample.voluntary_switches += n,
                    (Some("nonvoluntary_ctxt_switches:"), Some(n)) => {
                        sample.involuntary_switches += n;
                    }
                    _ => {}
                }
            }
        }
        Ok(sample)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            voluntary_switches: self.voluntary_switches - earlier.voluntary_switches,
            involuntary_switches: self.involuntary_switches - earlier.involuntary_switches,
        }
    }
}

/// The 1-minute load average (other work on the machine disturbs the figures).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
