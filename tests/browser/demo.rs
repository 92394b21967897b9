//! `paycode-proxy demo` as a child process for the browser tests: free ports, a temporary
//! data directory, a time scale, the built app from `dist/`, and clients for the proxy's API
//! (as the demo terminal) and the simulator's control API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use paycode_api::{DemoPairing, PaymentList};
use paycode_tests::test_log;
use reqwest::blocking::Client;
use serde_json::Value;
use tempfile::TempDir;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The built app, or a failure that says how to build it.
pub fn app_dir() -> PathBuf {
    let dist = std::env::var_os("PAYCODE_APP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("dist"));
    assert!(
        dist.join("index.html").is_file(),
        "the browser tests need the built cashier app in {}: run `scripts/test` (it builds it), \
         or `source scripts/lib.sh && ensure_app_tools && build_app` (trunk build --release)",
        dist.display()
    );
    dist
}

/// Where screenshots go: `<target dir>/browser-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/<name>-<hash> or <target>/<profile>/examples/<name>
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("browser-screenshots"))
        .unwrap_or_else(|| std::env::temp_dir().join("paycode-browser-screenshots"))
}

/// A running demo.
pub struct Demo {
    /// The cashier app and API, `http://127.0.0.1:PORT`.
    pub app_url: String,
    /// The simulator, `https://127.0.0.1:PORT`.
    pub sim_url: String,
    /// The demo terminal's token.
    pub token: String,
    /// The demo terminal's id.
    pub terminal_id: String,
    /// The PIN of the demo manager 店长 for this run, from the banner.
    pub manager_pin: String,
    /// Over HTTPS, the demo's CA certificate (which browsers and clients must trust).
    pub https_ca: Option<PathBuf>,
    /// The demo's data directory (its database, certificates and token file).
    pub data_dir: PathBuf,
    /// HTTP client trusting the simulator's CA.
    pub client: Client,
    child: Child,
    log: Arc<Mutex<String>>,
    _data: TempDir,
}

/// Set to run the browser tests against the demo over HTTPS (`demo --tls`, the browser
/// trusting the demo's CA): `PAYCODE_BROWSER_HTTPS=1 cargo test -p paycode-tests --test browser`.
pub const HTTPS_VARIABLE: &str = "PAYCODE_BROWSER_HTTPS";

impl Demo {
    /// Starts `paycode-proxy demo` at `time_scale`, over HTTPS when [`HTTPS_VARIABLE`] is
    /// set, else plain HTTP on loopback.
    pub fn start(time_scale: f64) -> Demo {
        let https = std::env::var_os(HTTPS_VARIABLE).is_some_and(|value| value != "0");
        Demo::start_with(time_scale, https)
    }

    /// Starts `paycode-proxy demo` at `time_scale` over plain HTTP whatever the environment
    /// says.
    pub fn start_http(time_scale: f64) -> Demo {
        Demo::start_with(time_scale, false)
    }

    /// Starts `paycode-proxy demo` at `time_scale` over HTTPS (`--tls`) whatever the
    /// environment says.
    pub fn start_https(time_scale: f64) -> Demo {
        Demo::start_with(time_scale, true)
    }

    fn start_with(time_scale: f64, https: bool) -> Demo {
        let app = app_dir();
        let data = tempfile::tempdir().expect("a data directory");
        let binary = paycode_tests::binary::proxy_binary();
        let mut command = Command::new(binary);
        command.arg("demo");
        if https {
            command.arg("--tls");
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--app-dir")
            .arg(&app)
            .arg("--time-scale")
            .arg(time_scale.to_string())
            .env("RUST_LOG", test_log::child_filter("warn"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (stream, forward) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, true),
            (Box::new(stderr), false),
        ] {
            let log = Arc::clone(&log);
            let lines_tx = lines_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    test_log::echo(&line);
                    if forward {
                        let _ = lines_tx.send(line.clone());
                    }
                    let mut log = log.lock().unwrap_or_else(|error| error.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        drop(lines_tx);
        let mut app_url = None;
        let mut sim = None;
        let mut https_ca = None;
        let mut manager_pin = None;
        while app_url.is_none()
            || sim.is_none()
            || manager_pin.is_none()
            || (https && https_ca.is_none())
        {
            let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(60)) else {
                let log = log
                    .lock()
                    .unwrap_or_else(|error| error.into_inner())
                    .clone();
                let _ = child.kill();
                panic!("paycode-proxy demo did not print its banner; its output:\n{log}");
            };
            // "HTTPS certificate: /path/server.pem (trust its CA /path/ca.pem to open …)"
            if let Some(rest) = line.strip_prefix("HTTPS certificate: ")
                && let Some((_, ca)) = rest.split_once("(trust its CA ")
                && let Some((ca, _)) = ca.split_once(' ')
            {
                https_ca = Some(PathBuf::from(ca));
            }
            // "Demo manager: 店长, PIN 123456 (every store; …)"
            if let Some(rest) = line.strip_prefix("Demo manager: ")
                && let Some((_, pin)) = rest.split_once(", PIN ")
            {
                manager_pin = pin.split_whitespace().next().map(str::to_owned);
            }
            if let Some(url) = line.strip_prefix("Paycode demo ready: ") {
                app_url = Some(url.trim().to_owned());
            }
            // "WeChat simulator: https://127.0.0.1:PORT (CA: /path/ca.pem)"
            if let Some(rest) = line.strip_prefix("WeChat simulator: ")
                && let Some((url, ca)) = rest.split_once(" (CA: ")
            {
                sim = Some((
                    url.trim().to_owned(),
                    PathBuf::from(ca.trim_end_matches(')')),
                ));
            }
        }
        let (sim_url, ca_path) = sim.expect("checked above");
        let ca = std::fs::read(&ca_path).expect("the simulator's CA certificate");
        let mut client = Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM certificate"))
            .timeout(Duration::from_secs(60));
        if let Some(https_ca) = &https_ca {
            let pem = std::fs::read(https_ca).expect("the demo's CA certificate");
            client = client.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"),
            );
        }
        let client = client.build().expect("an HTTP client");
        let app_url = app_url.expect("checked above");
        let pairing: DemoPairing = client
            .get(format!("{app_url}/api/v1/demo/pairing"))
            .send()
            .and_then(|response| response.error_for_status())
            .and_then(|response| response.json())
            .expect("demo pairing answers on loopback");
        Demo {
            app_url,
            sim_url,
            token: pairing.token,
            terminal_id: pairing.terminal.id,
            manager_pin: manager_pin.expect("checked above"),
            https_ca,
            data_dir: data.path().to_path_buf(),
            client,
            child,
            log,
            _data: data,
        }
    }

    /// A pairing address for a new terminal called `name` in the demo's default store, as
    /// the administrator's `paycode-proxy terminal add NAME --store default` prints it (run against the demo's database, with
    /// `server.public_url` set to the demo's address).
    pub fn pairing_url(&self, name: &str) -> String {
        let config = self.data_dir.join("pairing.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\npublic_url = \"{}\"\n\n[store]\ndata_dir = \"{}\"\n\n\
                 [wechat]\nappid = \"wx2421b1c4370ec43b\"\nmch_id = \"10000100\"\n\
                 api_key = \"192006250b4c09247ec02edce69f6a2d\"\n",
                self.app_url,
                self.data_dir.display()
            ),
        )
        .expect("a configuration file");
        let output = Command::new(paycode_tests::binary::proxy_binary())
            .arg("--config")
            .arg(&config)
            .args(["terminal", "add", name, "--store", "default"])
            .output()
            .expect("paycode-proxy terminal add runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "terminal add failed: {printed}");
        printed
            .split_whitespace()
            .find(|word| word.contains("#pair="))
            .unwrap_or_else(|| panic!("terminal add printed no pairing URL: {printed}"))
            .to_owned()
    }

    /// Everything the demo printed so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|error| error.into_inner())
            .clone()
    }

    /// `POST {sim}/_sim/{path}` with `body` (the simulator's control API); its answer.
    pub fn sim_post(&self, path: &str, body: Value) -> Value {
        self.client
            .post(format!("{}/_sim/{path}", self.sim_url))
            .json(&body)
            .send()
            .and_then(|response| response.error_for_status())
            .and_then(|response| response.json())
            .unwrap_or_else(|error| panic!("the simulator takes {path}: {error}"))
    }

    /// Runs `paycode-proxy reconcile --date day` against the demo's database and simulator,
    /// as an administrator would; returns what it printed.
    pub fn reconcile(&self, day: &str) -> String {
        let config = self.data_dir.join("reconcile.toml");
        let ca = self.data_dir.join("sim-certs").join("ca.pem");
        assert!(ca.is_file(), "the simulator's CA is at {}", ca.display());
        std::fs::write(
            &config,
            format!(
                "[store]\ndata_dir = \"{}\"\n\n\
                 [wechat]\nappid = \"{}\"\nmch_id = \"{}\"\napi_key = \"{}\"\n\
                 primary_url = \"{}\"\nextra_ca_pem = \"{}\"\n",
                self.data_dir.display(),
                wxpay::sim::DEMO_APPID,
                wxpay::sim::DEMO_MCH_ID,
                wxpay::sim::DEMO_API_KEY,
                self.sim_url,
                ca.display()
            ),
        )
        .expect("a configuration file");
        let output = Command::new(paycode_tests::binary::proxy_binary())
            .arg("--config")
            .arg(&config)
            .args(["reconcile", "--date", day])
            .output()
            .expect("paycode-proxy reconcile runs");
        let printed = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "reconcile failed: {printed}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed
    }

    /// A fresh payment code for a behaviour row (`password_free`, `password_waits`, …).
    pub fn code(&self, behaviour: &str) -> String {
        let reply: Value = self
            .client
            .get(format!("{}/_sim/code?behaviour={behaviour}", self.sim_url))
            .send()
            .and_then(|response| response.error_for_status())
            .and_then(|response| response.json())
            .expect("the simulator makes a code");
        reply["auth_code"]
            .as_str()
            .expect("the reply has auth_code")
            .to_owned()
    }

    /// The open password prompts' order numbers.
    pub fn pending_prompts(&self) -> Vec<String> {
        let reply: Value = self
            .client
            .get(format!("{}/_sim/pending", self.sim_url))
            .send()
            .and_then(|response| response.json())
            .expect("the simulator lists prompts");
        let items = reply
            .as_array()
            .cloned()
            .or_else(|| reply["pending"].as_array().cloned())
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|item| {
                item.as_str()
                    .or_else(|| item["out_trade_no"].as_str())
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The customer enters the password on the phone.
    pub fn confirm_password(&self, out_trade_no: &str) {
        self.client
            .post(format!(
                "{}/_sim/orders/{out_trade_no}/confirm",
                self.sim_url
            ))
            .send()
            .and_then(|response| response.error_for_status())
            .expect("the simulator confirms the password");
    }

    /// Changes simulator settings (`{"refund_delay_secs": 1}`).
    pub fn sim_settings(&self, settings: Value) {
        self.client
            .post(format!("{}/_sim/settings", self.sim_url))
            .json(&settings)
            .send()
            .and_then(|response| response.error_for_status())
            .expect("the simulator takes the settings");
    }

    /// Today's payments of the demo terminal.
    pub fn payments(&self) -> PaymentList {
        self.client
            .get(format!(
                "{}/api/v1/payments?terminal={}",
                self.app_url, self.terminal_id
            ))
            .bearer_auth(&self.token)
            .send()
            .and_then(|response| response.error_for_status())
            .and_then(|response| response.json())
            .expect("the payments list")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("paycode-proxy demo output:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
