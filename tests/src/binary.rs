//! The real `paycode-proxy` binary as a child process, for crash tests: [`CrashRig`] holds
//! the simulator (in the test process), the data directory and the generated
//! `paycode.toml`; each [`ProxyProcess`] is one run of the binary on them, stopped with
//! SIGKILL ([`ProxyProcess::kill`]) so that nothing gets to flush or finish.
//!
//! Cargo does not build a dependency's binaries for another crate's tests, so
//! [`proxy_binary`] runs `cargo build -p paycode-proxy --bin paycode-proxy` once per test
//! process (a no-op when it is up to date) into the same target directory. Set
//! `PAYCODE_PROXY_BIN` to use a binary built elsewhere instead. Every test, soak, benchmark
//! and browser test finds the binary through [`proxy_binary`].
//!
//! With `TEST_LOG` set ([`test_log`](crate::test_log)), a child's log lines are copied to the
//! test's output as they come.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use paycode_proxy::auth::Terminals;
use paycode_proxy::config::Config;
use paycode_proxy::store;
use serde_json::json;
use tempfile::TempDir;
use tokio::time::Instant;
use wxpay::sim::SimHandle;

use crate::cashier::Cashier;
use crate::test_log;
use crate::world::{Shop, add_stores, scaled_config, start_simulator, stores_simulator};

/// The binary to run: built (once per process) by `cargo build -p paycode-proxy` into the
/// target directory and profile of the running test or example, or the file named by
/// `PAYCODE_PROXY_BIN`.
pub fn proxy_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("PAYCODE_PROXY_BIN") {
            return PathBuf::from(path);
        }
        // A test runs as <target>/<profile>/deps/<name>-<hash>, an example as
        // <target>/<profile>/examples/<name>.
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from <target>/<profile>/deps or …/examples");
        let target_dir = profile_dir.parent().expect("a target directory");
        let release = profile_dir
            .file_name()
            .is_some_and(|name| name == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "paycode-proxy",
                "--bin",
                "paycode-proxy",
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(workspace);
        if release {
            build.arg("--release");
        }
        let built = build.status().is_ok_and(|status| status.success());
        let binary = profile_dir.join(format!("paycode-proxy{}", std::env::consts::EXE_SUFFIX));
        assert!(
            built && binary.is_file(),
            "the test runs the real binary, and building it failed: run \
             `cargo build -p paycode-proxy` (or set PAYCODE_PROXY_BIN) and look at its errors; \
             expected {}",
            binary.display()
        );
        binary
    })
}

/// A simulator in the test process, and the data directory and configuration file that
/// successive runs of the binary share.
pub struct CrashRig {
    /// The simulated WeChat Pay.
    pub sim: SimHandle,
    /// How many times faster than real time simulated time runs (the configuration's waits
    /// are divided by it).
    pub scale: f64,
    /// The configuration written to `paycode.toml`.
    pub config: Config,
    token: String,
    config_path: PathBuf,
    _root: TempDir,
}

impl CrashRig {
    /// Starts the simulator at `scale`, writes `paycode.toml` for it (waits divided by
    /// `scale`, then adjusted by `tweak`) and adds the terminal `counter-1` to the database.
    pub async fn start(scale: f64, tweak: impl FnOnce(&mut Config)) -> CrashRig {
        let root = tempfile::tempdir().expect("a temporary directory");
        let sim = start_simulator(root.path(), scale).await;
        let config = scaled_config(&sim, root.path(), scale);
        CrashRig::prepare(root, sim, config, scale, &[], tweak).await
    }

    /// Like [`CrashRig::start`], with the simulator of
    /// [`World::start_with_stores`](crate::World::start_with_stores), the accounts `shops`
    /// use in `paycode.toml`, and `shops` in the database (`counter-1` in the default store).
    pub async fn start_with_stores(
        scale: f64,
        shops: &[Shop],
        tweak: impl FnOnce(&mut Config),
    ) -> CrashRig {
        let root = tempfile::tempdir().expect("a temporary directory");
        let (sim, config) = stores_simulator(root.path(), scale, shops).await;
        CrashRig::prepare(root, sim, config, scale, shops, tweak).await
    }

    async fn prepare(
        root: TempDir,
        sim: SimHandle,
        mut config: Config,
        scale: f64,
        shops: &[Shop],
        tweak: impl FnOnce(&mut Config),
    ) -> CrashRig {
        tweak(&mut config);
        config.validate().expect("the test configuration is valid");
        let config_path = root.path().join("paycode.toml");
        write_config(&config, &config_path);
        let store = store::connect(&config.store)
            .await
            .expect("the database opens");
        add_stores(&config, store.as_ref(), shops).await;
        store.close().await;
        let token = add_terminal(&config, "counter-1").await;
        CrashRig {
            sim,
            scale,
            config,
            token,
            config_path,
            _root: root,
        }
    }

    /// The bearer token of the terminal `counter-1`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The generated `paycode.toml`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Adds the terminal `name` to the database and returns its bearer token. Call it while
    /// no process of the binary runs.
    pub async fn add_terminal(&self, name: &str) -> String {
        add_terminal(&self.config, name).await
    }

    /// Adds the manager `name` (every store) to the database and returns them with their
    /// PIN. Call it while no process of the binary runs.
    pub async fn add_manager(&self, name: &str) -> crate::world::TestManager {
        crate::world::TestManager::add_to_database(&self.config, name).await
    }

    /// Adds the terminal `name` to the store `store` and returns its bearer token. Call it
    /// while no process of the binary runs.
    pub async fn add_terminal_to(&self, name: &str, store: &str) -> String {
        add_terminal_to(&self.config, name, store).await
    }

    /// Starts the binary (`paycode-proxy --config paycode.toml serve`) and waits until it
    /// listens; it logs at `info`, or at the `TEST_LOG` filter when that is set.
    pub async fn spawn(&self) -> ProxyProcess {
        self.spawn_with_log_filter(&test_log::child_filter("info"))
            .await
    }

    /// Like [`CrashRig::spawn`], with `RUST_LOG` set to `filter` (e.g. `debug`, to scan
    /// every log line for secrets).
    pub async fn spawn_with_log_filter(&self, filter: &str) -> ProxyProcess {
        ProxyProcess::spawn(&self.config_path, Some(&self.token), filter).await
    }
}

/// One run of the binary.
pub struct ProxyProcess {
    /// A cashier holding the rig's terminal token, pointed at this run.
    pub cashier: Cashier,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    reader_done: Arc<std::sync::atomic::AtomicBool>,
}

impl ProxyProcess {
    /// Starts `paycode-proxy --config <config_path> serve` with `RUST_LOG=filter` (which must
    /// let through `info` from `paycode_proxy`: the listening line tells the address) and
    /// waits until it listens; its cashier holds `token`. The file alone decides the
    /// configuration (`PAYCODE_*` variables are removed); stderr is kept ([`ProxyProcess::log`]).
    pub async fn spawn(config_path: &Path, token: Option<&str>, filter: &str) -> ProxyProcess {
        let mut command = Command::new(proxy_binary());
        command
            .arg("--config")
            .arg(config_path)
            .arg("serve")
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PAYCODE_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().expect("the proxy binary starts");
        let stderr = child.stderr.take().expect("a stderr pipe");
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let log_writer = Arc::clone(&log);
        let reader_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader_done_writer = Arc::clone(&reader_done);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("paycode-proxy listening") {
                    if let Some(address) = line
                        .split("address=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                    {
                        let _ = address_tx.send(address.to_owned());
                    }
                }
                test_log::echo(&line);
                let mut log = log_writer.lock().unwrap_or_else(|error| error.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
            reader_done_writer.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut process = ProxyProcess {
            child: Some(child),
            log,
            reader_done,
            cashier: Cashier::new("http://127.0.0.1:9", None),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            if let Ok(address) = address_rx.try_recv() {
                break address;
            }
            let exited = process
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the proxy binary did not start listening ({exited:?}); its log:\n{}",
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        process.cashier = Cashier::new(&format!("http://{address}"), token);
        process
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process with SIGKILL, reaps it, and returns everything it wrote to stderr
    /// (the reader thread is given a moment to drain the pipe).
    pub fn kill_and_collect_log(mut self) -> String {
        self.kill_now();
        // The pipe reaches end of file once the process is gone; wait (briefly) for the
        // reader thread to take the last lines.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !self.reader_done.load(std::sync::atomic::Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.log()
    }

    /// Kills the process with SIGKILL and reaps it: no shutdown code runs.
    pub fn kill(mut self) {
        self.kill_now();
    }

    /// Freezes the process with SIGSTOP (as a long GC pause or a VM hiccup would): it keeps
    /// its sockets and state and does nothing until [`ProxyProcess::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends `SIG<name>` with `kill(1)`; a process that is already gone is not an error.
    fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            let sent = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status();
            assert!(sent.is_ok(), "kill -{name} {pid} could not run: {sent:?}");
        }
    }

    /// What the process has written to stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|error| error.into_inner())
            .clone()
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Adds the terminal `name` to the database of `config` (opened and closed again, so call it
/// while no process of the binary runs) and returns its bearer token.
pub async fn add_terminal(config: &Config, name: &str) -> String {
    let store = store::connect(&config.store)
        .await
        .expect("the database opens");
    let (_, token) = Terminals::new(store.clone())
        .add(name)
        .await
        .expect("a terminal");
    store.close().await;
    token.expose().to_owned()
}

/// Adds the terminal `name` to the store `store` of the database `config` names and returns
/// its bearer token (on SQLite, while no proxy has the file open).
pub async fn add_terminal_to(config: &Config, name: &str, store: &str) -> String {
    let database = store::connect(&config.store)
        .await
        .expect("the database opens");
    let shop = paycode_proxy::stores::find(database.as_ref(), Some(store))
        .await
        .expect("the store exists");
    let (_, token) = Terminals::new(Arc::clone(&database))
        .add_to(name, &shop.id)
        .await
        .expect("a terminal");
    database.close().await;
    token.expose().to_owned()
}

/// Writes `config` to `path` as a `paycode.toml` the binary loads.
pub fn write_config(config: &Config, path: &Path) {
    std::fs::write(path, config_toml(config)).expect("paycode.toml is written");
}

/// `config` as a `paycode.toml` the binary loads.
fn config_toml(config: &Config) -> String {
    let text = |value: &str| json!(value).to_string();
    let path = |value: &Path| text(&value.to_string_lossy());
    let optional_path =
        |value: &Option<PathBuf>| value.as_deref().map_or_else(|| "\"\"".to_owned(), &path);
    let duration = |value: Duration| text(&format!("{}ms", value.as_millis().max(1)));
    let wechat = &config.wechat;
    let payments = &config.payments;
    let mut accounts = String::new();
    for (name, account) in &config.accounts {
        accounts.push_str(&format!(
            "[accounts.{name}]\nprovider = {}\nappid = {}\nmch_id = {}\napi_key = {}\n\
             cert_pem = {}\nkey_pem = {}\n\n",
            account.provider,
            text(&account.appid),
            text(&account.mch_id),
            text(account.api_key.expose()),
            optional_path(&account.cert_pem),
            optional_path(&account.key_pem),
        ));
    }
    let instance = config
        .server
        .instance
        .as_deref()
        .map_or_else(String::new, |name| format!("instance = {}\n", text(name)));
    let main = format!(
        "[server]\nlisten = {listen}\napp_dir = {app_dir}\n{instance}\n\
         [store]\ndata_dir = {data_dir}\ndatabase_url = {database_url}\npool_size = {pool_size}\n\n\
         [wechat]\nappid = {appid}\nmch_id = {mch_id}\napi_key = {api_key}\n\
         primary_url = {primary}\nbackup_url = {backup}\n\
         cert_pem = {cert}\nkey_pem = {key}\nextra_ca_pem = {ca}\n\
         connect_timeout = {connect}\nread_timeout = {read}\nmicropay_read_timeout = {micropay}\n\n\
         [payments]\n\
         first_query_after_userpaying = {fq_user}\nfirst_query_after_unknown = {fq_unknown}\n\
         query_interval = {interval}\nwait_deadline = {deadline}\n\
         reverse_not_before = {not_before}\nreverse_retry_base = {retry}\n\
         reverse_max_attempts = {attempts}\nattention_recheck_interval = {recheck}\n\
         refund_spacing = {spacing}\n\
         micropay_rate_per_second = {rate}\nmax_amount_fen = {max}\n\
         micropay_expire_after = {expire_after}\nexpire_skew_margin = {skew}\n\n\
         [leases]\nduration = {lease}\nrenew_interval = {renew}\n\
         safety_margin = {safety}\nclaim_interval = {claim}\n\n\
         [approvals]\nrefund_above_fen = {refund_above}\nwindow = {window}\n\
         lockout = {lockout}\nmax_failures = {max_failures}\n\
         failed_checks_per_minute = {checks}\n",
        listen = text(&config.server.listen.to_string()),
        app_dir = path(&config.server.app_dir),
        data_dir = path(&config.store.data_dir),
        database_url = text(config.store.database_url.as_deref().unwrap_or_default()),
        pool_size = config.store.pool_size,
        appid = text(&wechat.appid),
        mch_id = text(&wechat.mch_id),
        api_key = text(wechat.api_key.expose()),
        primary = text(wechat.primary_url.as_str()),
        backup = text(wechat.backup_url.as_ref().map_or("", |url| url.as_str())),
        cert = optional_path(&wechat.cert_pem),
        key = optional_path(&wechat.key_pem),
        ca = optional_path(&wechat.extra_ca_pem),
        connect = duration(wechat.connect_timeout),
        read = duration(wechat.read_timeout),
        micropay = duration(wechat.micropay_read_timeout),
        fq_user = duration(payments.first_query_after_userpaying),
        fq_unknown = duration(payments.first_query_after_unknown),
        interval = duration(payments.query_interval),
        deadline = duration(payments.wait_deadline),
        not_before = duration(payments.reverse_not_before),
        retry = duration(payments.reverse_retry_base),
        attempts = payments.reverse_max_attempts,
        recheck = duration(payments.attention_recheck_interval),
        spacing = duration(payments.refund_spacing),
        rate = payments.micropay_rate_per_second,
        max = payments.max_amount_fen.get(),
        expire_after = duration(payments.micropay_expire_after),
        skew = duration(payments.expire_skew_margin),
        lease = duration(config.leases.duration),
        renew = duration(config.leases.renew_interval),
        safety = duration(config.leases.safety_margin),
        claim = duration(config.leases.claim_interval),
        refund_above = config.approvals.refund_above_fen.get(),
        // Zero is allowed here: one action per approval.
        window = text(&format!("{}ms", config.approvals.window.as_millis())),
        lockout = duration(config.approvals.lockout),
        max_failures = config.approvals.max_failures,
        checks = config.approvals.failed_checks_per_minute,
    );
    format!("{main}\n{accounts}")
}
