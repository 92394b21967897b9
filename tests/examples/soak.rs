//! The torture soak (issue #6): K cashier terminals take N payments with a random mix of
//! customer behaviours against the real `paycode-proxy` binary, while the proxy is killed with
//! SIGKILL at random moments (`crash`) or the simulator injects random network faults on
//! every endpoint and takes the primary host down now and then (`faults`). The simulator
//! lives in this process, so its books survive every kill. At the end the proxy's store is
//! compared with WeChat's books and every inconsistency is counted; every response body and
//! every log line of the proxy is scanned for secrets.
//!
//! ```text
//! cargo run --release -p paycode-tests --example soak -- crash  --short [--seed N]
//! cargo run --release -p paycode-tests --example soak -- faults --short [--seed N] [--fault-rate 0.2]
//! cargo run --release -p paycode-tests --example soak -- crash  --long
//! ```
//!
//! Other options: `--payments N`, `--terminals K`, `--scale S` (simulated time speed-up),
//! `--with-faults` (crash mode also injects faults), `--with-kills` (faults mode also kills).
//! Exits 1 naming the payments if any inconsistency, secret leak or unexpected API answer
//! was found.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paycode_api::{Payment, PaymentState};
use paycode_proxy::store::{PaymentRecord, RefundRecord, SqliteStore, Store};
use paycode_tests::binary::{CrashRig, ProxyProcess};
use paycode_tests::cashier::{Cashier, new_attempt_id};
use paycode_tests::reconcile::{Observation, Reconciliation};
use paycode_tests::secrets::SecretScanner;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, DEMO_API_KEY, Fault, SimHandle};

/// The proxy's log filter while soaking: debug for our crates, so every line they write is
/// scanned.
const LOG_FILTER: &str = "info,paycode_proxy=debug,wxpay=debug";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Crash,
    Faults,
}

#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    long: bool,
    payments: usize,
    terminals: usize,
    seed: u64,
    scale: f64,
    fault_rate: f64,
    kills: bool,
    faults: bool,
    /// Real time between kills, drawn uniformly.
    kill_every: (u64, u64),
    /// How long the payments may take to settle after driving stops.
    drain: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak crash|faults [--short|--long] [--seed N] [--payments N] [--terminals K] \
         [--scale S] [--fault-rate R] [--with-faults] [--with-kills]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("crash") => Mode::Crash,
        Some("faults") => Mode::Faults,
        _ => usage(),
    };
    let mut options = Options {
        mode,
        long: false,
        payments: 0,
        terminals: 0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
        scale: 100.0,
        fault_rate: 0.2,
        kills: mode == Mode::Crash,
        faults: mode == Mode::Faults,
        kill_every: (50, 700),
        drain: Duration::from_secs(30),
    };
    let mut payments = None;
    let mut terminals = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--short" => options.long = false,
            "--long" => options.long = true,
            "--seed" => options.seed = value("--seed").parse().unwrap_or_else(|_| usage()),
            "--payments" => {
                payments = Some(value("--payments").parse().unwrap_or_else(|_| usage()))
            }
            "--terminals" => {
                terminals = Some(value("--terminals").parse().unwrap_or_else(|_| usage()))
            }
            "--scale" => options.scale = value("--scale").parse().unwrap_or_else(|_| usage()),
            "--fault-rate" => {
                options.fault_rate = value("--fault-rate").parse().unwrap_or_else(|_| usage())
            }
            "--with-faults" => options.faults = true,
            "--with-kills" => options.kills = true,
            _ => usage(),
        }
    }
    options.payments = payments.unwrap_or(if options.long { 4000 } else { 400 });
    options.terminals = terminals.unwrap_or(if options.long { 8 } else { 4 }).max(1);
    if options.long {
        options.drain = Duration::from_secs(60);
    }
    options
}

/// What the soak does with one payment: the customer's behaviour (by payment code) and what
/// the customer or cashier does while it is pending.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Only the payment code's row decides.
    Row(Behaviour),
    /// `password_waits`, then the customer enters the password (via the control API).
    Confirm,
    /// `password_waits`, then the customer cancels on the phone.
    CustomerCancels,
    /// `password_waits`, then the cashier cancels through the API.
    CashierCancels,
    /// `password_waits`, and nobody does anything: the proxy's deadline reverses it.
    NobodyAnswers,
}

impl Plan {
    fn behaviour(self) -> Behaviour {
        match self {
            Plan::Row(behaviour) => behaviour,
            _ => Behaviour::PasswordWaits,
        }
    }

    fn label(self) -> String {
        match self {
            Plan::Row(behaviour) => behaviour.key().to_owned(),
            Plan::Confirm => "password_waits+confirm".to_owned(),
            Plan::CustomerCancels => "password_waits+customer_cancels".to_owned(),
            Plan::CashierCancels => "password_waits+cashier_cancels".to_owned(),
            Plan::NobodyAnswers => "password_waits+nobody".to_owned(),
        }
    }
}

/// The behaviour mix, with weights.
fn pick_plan(rng: &mut StdRng) -> Plan {
    let secs = Duration::from_secs;
    let table: [(u32, Plan); 16] = [
        (22, Plan::Row(Behaviour::PasswordFree)),
        (
            8,
            Plan::Row(Behaviour::PasswordThenConfirm { after: secs(10) }),
        ),
        (
            4,
            Plan::Row(Behaviour::PasswordThenCancel { after: secs(10) }),
        ),
        (8, Plan::Confirm),
        (4, Plan::CustomerCancels),
        (6, Plan::CashierCancels),
        (3, Plan::NobodyAnswers),
        (5, Plan::Row(Behaviour::NotEnough)),
        (4, Plan::Row(Behaviour::Expired)),
        (3, Plan::Row(Behaviour::Invalid)),
        (8, Plan::Row(Behaviour::SystemErrorPaid)),
        (
            4,
            Plan::Row(Behaviour::BankError {
                decline_after: secs(5),
            }),
        ),
        (4, Plan::Row(Behaviour::SlowReply { delay: None })),
        (6, Plan::Row(Behaviour::DropAfterCommit)),
        (4, Plan::Row(Behaviour::Gateway502)),
        (
            7,
            Plan::Row(Behaviour::PasswordThenConfirm { after: secs(30) }),
        ),
    ];
    let total: u32 = table.iter().map(|(weight, _)| weight).sum();
    let mut roll = rng.gen_range(0..total);
    for (weight, plan) in table {
        if roll < weight {
            return plan;
        }
        roll -= weight;
    }
    Plan::Row(Behaviour::PasswordFree)
}

/// Counters shared by every task.
#[derive(Default)]
struct Figures {
    payments: AtomicU64,
    replays: AtomicU64,
    cashier_cancels: AtomicU64,
    customer_actions: AtomicU64,
    refunds_requested: AtomicU64,
    refunds_refused: AtomicU64,
    kills: AtomicU64,
    /// Milliseconds spent killing (and reaping) and restarting the proxy.
    kill_ms: AtomicU64,
    restart_ms: AtomicU64,
    outages: AtomicU64,
    responses: AtomicU64,
    transport_errors: AtomicU64,
    faults: Mutex<BTreeMap<String, u64>>,
    /// API answers that must never happen (5xx, unexpected 4xx, a replay with another id).
    anomalies: Mutex<Vec<String>>,
}

impl Figures {
    fn anomaly(&self, what: String) {
        self.anomalies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

/// One terminal's HTTP client with its shared scanner and counters.
struct Terminal {
    name: String,
    cashier: Cashier,
    scanner: Arc<SecretScanner>,
    figures: Arc<Figures>,
    stop_at: Instant,
}

impl Terminal {
    /// Sends until the proxy answers (it may be down between a kill and a restart), scanning
    /// the answer for secrets; `None` once the soak's time is up.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<(StatusCode, Value)> {
        loop {
            if Instant::now() > self.stop_at {
                return None;
            }
            match self
                .cashier
                .try_request(method.clone(), path, body, Duration::from_secs(10))
                .await
            {
                Ok((reply, text)) => {
                    self.figures.responses.fetch_add(1, Ordering::Relaxed);
                    let source = format!("{} {method} {path} → {}", self.name, reply.status);
                    self.scanner.scan(&source, &text);
                    if reply.status.is_server_error() {
                        // The proxy answers 503 while it starts; anything else is a bug.
                        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                            self.figures.anomaly(format!("{source}: {text}"));
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    return Some((reply.status, reply.body));
                }
                Err(_) => {
                    self.figures
                        .transport_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> Option<T> {
    serde_json::from_value(body.clone()).ok()
}

/// Drives `count` payments from one terminal.
async fn drive_terminal(
    terminal: Terminal,
    sim: Arc<SimRef>,
    count: usize,
    seed: u64,
) -> Vec<Observation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut observations = Vec::new();
    for _ in 0..count {
        if Instant::now() > terminal.stop_at {
            break;
        }
        let plan = pick_plan(&mut rng);
        let code = sim.auth_code(plan.behaviour());
        terminal.scanner.add_code(&code);
        let amount: u64 = rng.gen_range(1..=20_000);
        let mut observation = Observation {
            attempt_id: new_attempt_id(),
            label: plan.label(),
            ..Observation::default()
        };
        let body = json!({
            "attempt_id": observation.attempt_id,
            "amount_fen": amount,
            "auth_code": code,
        });
        terminal.figures.payments.fetch_add(1, Ordering::Relaxed);
        let taken = Instant::now();
        let Some((status, reply)) = terminal.call(Method::POST, "/payments", Some(&body)).await
        else {
            observations.push(observation);
            break;
        };
        let Some(mut payment) = parse::<Payment>(&reply).filter(|_| status.is_success()) else {
            terminal.figures.anomaly(format!(
                "{} POST /payments ({}) → {status}: {reply}",
                terminal.name, observation.label
            ));
            observations.push(observation);
            continue;
        };
        observation.payment_ids.insert(payment.id.clone());
        // A cashier who taps twice (or an app that retries): the same payment, never another.
        if rng.gen_bool(0.15) {
            terminal.figures.replays.fetch_add(1, Ordering::Relaxed);
            if let Some((status, reply)) =
                terminal.call(Method::POST, "/payments", Some(&body)).await
            {
                match parse::<Payment>(&reply).filter(|_| status.is_success()) {
                    Some(again) => {
                        observation.payment_ids.insert(again.id);
                    }
                    None => terminal.figures.anomaly(format!(
                        "{} replay of {} → {status}: {reply}",
                        terminal.name, observation.attempt_id
                    )),
                }
            }
        }

        // What the people do while it is pending.
        let act_after = Duration::from_millis(rng.gen_range(0..250));
        let random_cashier_cancel = rng.gen_bool(0.03);
        let path = format!("/payments/{}", payment.id);
        match plan {
            Plan::Confirm | Plan::CustomerCancels => {
                let sim = sim.clone();
                let out_trade_no = payment.out_trade_no.clone();
                let figures = terminal.figures.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(act_after).await;
                    // The order exists once micropay has reached WeChat; try for a while.
                    for _ in 0..50 {
                        let done = if matches!(plan, Plan::Confirm) {
                            sim.confirm_password(&out_trade_no)
                        } else {
                            sim.cancel_password(&out_trade_no)
                        };
                        if done.is_ok() {
                            figures.customer_actions.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            }
            _ => {}
        }
        let cancel_at = (matches!(plan, Plan::CashierCancels) || random_cashier_cancel)
            .then(|| Instant::now() + act_after);

        // The cashier's screen: long-poll until settled.
        let wait_until = Instant::now() + Duration::from_secs(20);
        let mut cancelled = false;
        while !payment.state.is_settled() && Instant::now() < wait_until {
            if let Some(at) = cancel_at.filter(|_| !cancelled) {
                if Instant::now() >= at {
                    cancelled = true;
                    terminal
                        .figures
                        .cashier_cancels
                        .fetch_add(1, Ordering::Relaxed);
                    if let Some((status, reply)) = terminal
                        .call(Method::POST, &format!("{path}/cancel"), None)
                        .await
                    {
                        if !(status.is_success() || status == StatusCode::CONFLICT) {
                            terminal.figures.anomaly(format!(
                                "{} cancel {} → {status}: {reply}",
                                terminal.name, payment.id
                            ));
                        }
                    }
                }
            }
            let wait = if cancel_at.is_some() && !cancelled {
                0
            } else {
                1
            };
            let poll = format!("{path}?wait={wait}&after_version={}", payment.version);
            let Some((status, reply)) = terminal.call(Method::GET, &poll, None).await else {
                break;
            };
            match parse::<Payment>(&reply).filter(|_| status == StatusCode::OK) {
                Some(seen) => payment = seen,
                None => {
                    terminal
                        .figures
                        .anomaly(format!("{} GET {poll} → {status}: {reply}", terminal.name));
                    break;
                }
            }
            if cancel_at.is_some() && !cancelled {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if payment.state.is_settled() {
            observation.shown_settled = Some(payment.state);
        }
        if std::env::var_os("SOAK_TRACE").is_some() {
            eprintln!(
                "{} {} {} → {} in {:?}",
                terminal.name,
                payment.id,
                observation.label,
                payment.state,
                taken.elapsed()
            );
        }

        // Some paid payments are refunded: in full, in two parts, or too much.
        if payment.state == PaymentState::Paid && rng.gen_bool(0.3) {
            let parts: Vec<u64> = match rng.gen_range(0..4) {
                0 if amount > 1 => {
                    let first = rng.gen_range(1..amount);
                    vec![first, amount - first]
                }
                1 => vec![amount + 1],
                2 if amount > 1 => vec![amount / 2, amount],
                _ => vec![amount],
            };
            for part in parts {
                let refund_attempt = new_attempt_id();
                let body = json!({"refund_attempt_id": refund_attempt, "amount_fen": part, "reason": "退货"});
                terminal
                    .figures
                    .refunds_requested
                    .fetch_add(1, Ordering::Relaxed);
                let Some((status, reply)) = terminal
                    .call(Method::POST, &format!("{path}/refunds"), Some(&body))
                    .await
                else {
                    break;
                };
                if status.is_success() {
                    observation.refund_attempts.push(refund_attempt);
                } else if status == StatusCode::CONFLICT
                    && reply["code"] == "REFUND_EXCEEDS_PAYMENT"
                {
                    terminal
                        .figures
                        .refunds_refused
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    terminal.figures.anomaly(format!(
                        "{} refund {part} of {} → {status}: {reply}",
                        terminal.name, payment.id
                    ));
                }
            }
        }
        observations.push(observation);
    }
    observations
}

/// The proxy process, replaced at every kill.
struct Supervisor {
    rig: Arc<CrashRig>,
    process: tokio::sync::Mutex<Option<ProxyProcess>>,
    scanner: Arc<SecretScanner>,
    runs: AtomicU64,
}

impl Supervisor {
    async fn start(&self) {
        let process = self.rig.spawn_with_log_filter(LOG_FILTER).await;
        *self.process.lock().await = Some(process);
    }

    /// SIGKILLs the running process and scans everything it logged.
    async fn kill(&self) {
        let process = self.process.lock().await.take();
        if let Some(process) = process {
            let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
            let log = tokio::task::spawn_blocking(move || process.kill_and_collect_log())
                .await
                .unwrap_or_default();
            self.scanner.scan(&format!("proxy log, run {run}"), &log);
        }
    }
}

/// Queues faults so that about `rate` of the calls to every endpoint meet one, and takes the
/// primary host down now and then, until `stop`.
async fn inject_faults(
    sim: Arc<SimRef>,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
    figures: Arc<Figures>,
    timeout: Duration,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let apis = [
        Api::Micropay,
        Api::OrderQuery,
        Api::Reverse,
        Api::Refund,
        Api::RefundQuery,
    ];
    let mut injected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut next_outage = Instant::now() + Duration::from_millis(rng.gen_range(500..2000));
    let mut outage_ends: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let pending = sim.pending_faults();
        for api in apis {
            let calls = sim.call_count(api) as f64;
            let done = injected.entry(api.name()).or_insert(0);
            let queued = pending.iter().any(|fault| fault.endpoint == api.name());
            if !queued && (*done as f64) < rate * (calls + 1.0) {
                let delay_ms = timeout.as_millis() as u64 + 300;
                let fault = match rng.gen_range(0..7) {
                    0 => Fault::Delay { ms: delay_ms },
                    1 => Fault::DropBeforeProcessing,
                    2 => Fault::DropAfterCommit,
                    3 => Fault::ConnectionReset,
                    4 => Fault::Html5xx {
                        status: [500, 502, 503, 504][rng.gen_range(0..4)],
                    },
                    5 => Fault::GarbageXml,
                    _ => Fault::BadSignature,
                };
                sim.inject_fault(api, fault, 1);
                *done += 1;
                let kind = serde_json::to_value(fault)
                    .ok()
                    .and_then(|value| value["kind"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                *figures
                    .faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(format!("{} {kind}", api.name()))
                    .or_insert(0) += 1;
            }
        }
        let now = Instant::now();
        match outage_ends {
            Some(end) if now >= end => {
                sim.set_primary_outage(false);
                outage_ends = None;
                next_outage = now + Duration::from_millis(rng.gen_range(500..2500));
            }
            None if now >= next_outage => {
                sim.set_primary_outage(true);
                figures.outages.fetch_add(1, Ordering::Relaxed);
                outage_ends = Some(now + Duration::from_millis(rng.gen_range(100..500)));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.set_primary_outage(false);
}

/// A free loopback port for the proxy, kept across restarts so the terminals keep their
/// address.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    let started = Instant::now();
    let mode = match options.mode {
        Mode::Crash => "crash",
        Mode::Faults => "faults",
    };
    println!(
        "soak {mode} ({}, seed {}): {} payments from {} terminals, simulated time ×{}, kills {}, faults {}",
        if options.long { "long" } else { "short" },
        options.seed,
        options.payments,
        options.terminals,
        options.scale,
        if options.kills { "on" } else { "off" },
        if options.faults {
            format!(
                "{:.0}% of calls + primary outages",
                options.fault_rate * 100.0
            )
        } else {
            "off".to_owned()
        },
    );

    // Replies from the loopback simulator take milliseconds; 1 s timeouts let "delay past
    // the timeout" faults and slow replies run fast.
    let timeout = Duration::from_millis(1000);
    let port = free_port();
    let rig = CrashRig::start(options.scale, move |config| {
        config.server.listen = format!("127.0.0.1:{port}").parse().expect("an address");
        config.wechat.connect_timeout = timeout;
        config.wechat.read_timeout = timeout;
        config.wechat.micropay_read_timeout = timeout;
    })
    .await;
    rig.sim
        .set_slow_reply_delay(timeout + Duration::from_millis(200));
    rig.sim.set_refund_delay(Duration::from_secs(5));
    let cert_dir = rig.sim.cert_files().map(|files| {
        files
            .client_key_pem
            .parent()
            .expect("the certificate directory")
            .to_path_buf()
    });
    let scanner = Arc::new(SecretScanner::new(DEMO_API_KEY, cert_dir.as_deref()));
    let mut tokens = vec![rig.token().to_owned()];
    for index in 2..=options.terminals {
        tokens.push(rig.add_terminal(&format!("counter-{index}")).await);
    }
    for token in &tokens {
        scanner.add_token(token);
    }
    let rig = Arc::new(rig);
    let sim = Arc::new(clone_handle(&rig));
    let figures = Arc::new(Figures::default());
    let supervisor = Arc::new(Supervisor {
        rig: rig.clone(),
        process: tokio::sync::Mutex::new(None),
        scanner: scanner.clone(),
        runs: AtomicU64::new(0),
    });
    supervisor.start().await;

    let base = format!("http://127.0.0.1:{port}");
    let driving = Instant::now();
    let drive_limit = if options.long {
        Duration::from_secs(1800)
    } else {
        Duration::from_secs(150)
    };
    let stop_at = Instant::now() + drive_limit;
    let stop = Arc::new(AtomicBool::new(false));

    // Chaos: kills and faults.
    let killer = options.kills.then(|| {
        let supervisor = supervisor.clone();
        let stop = stop.clone();
        let figures = figures.clone();
        let (low, high) = options.kill_every;
        let seed = options.seed;
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x4b111);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(low..high))).await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let killing = Instant::now();
                supervisor.kill().await;
                figures.kills.fetch_add(1, Ordering::Relaxed);
                figures
                    .kill_ms
                    .fetch_add(killing.elapsed().as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..200))).await;
                let starting = Instant::now();
                supervisor.start().await;
                figures
                    .restart_ms
                    .fetch_add(starting.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        })
    });
    let injector = options.faults.then(|| {
        tokio::spawn(inject_faults(
            sim.clone(),
            options.fault_rate,
            options.seed,
            stop.clone(),
            figures.clone(),
            timeout,
        ))
    });

    // The terminals.
    let per_terminal = options.payments.div_ceil(options.terminals);
    let mut drivers = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let count = per_terminal.min(options.payments.saturating_sub(index * per_terminal));
        let terminal = Terminal {
            name: format!("counter-{}", index + 1),
            cashier: Cashier::new(&base, Some(token)),
            scanner: scanner.clone(),
            figures: figures.clone(),
            stop_at,
        };
        drivers.push(tokio::spawn(drive_terminal(
            terminal,
            sim.clone(),
            count,
            options.seed.wrapping_add(index as u64 * 7919),
        )));
    }
    let mut observations = Vec::new();
    for driver in drivers {
        observations.extend(driver.await.expect("a terminal task"));
    }
    let driven_for = driving.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(killer) = killer {
        killer.await.expect("the killer task");
    }
    if let Some(injector) = injector {
        injector.await.expect("the fault injector");
    }
    sim.clear_faults();
    sim.set_primary_outage(false);
    if supervisor.process.lock().await.is_none() {
        supervisor.start().await;
    }

    // Drain: every payment and refund must settle without help.
    let drain_started = Instant::now();
    let drainer = Terminal {
        name: "drain".to_owned(),
        cashier: Cashier::new(&base, Some(&tokens[0])),
        scanner: scanner.clone(),
        figures: figures.clone(),
        stop_at: Instant::now() + options.drain + Duration::from_secs(10),
    };
    let ids: Vec<String> = observations
        .iter()
        .flat_map(|observation| observation.payment_ids.iter().cloned())
        .collect();
    loop {
        let mut open = 0;
        for id in &ids {
            if let Some((StatusCode::OK, body)) = drainer
                .call(Method::GET, &format!("/payments/{id}"), None)
                .await
            {
                if let Some(payment) = parse::<Payment>(&body) {
                    let refunds_open = payment.refunds.iter().any(|refund| {
                        !matches!(
                            refund.state,
                            paycode_api::RefundState::Succeeded | paycode_api::RefundState::Failed
                        )
                    });
                    if !payment.state.is_settled() || refunds_open {
                        open += 1;
                    }
                }
            }
        }
        if open == 0 || drain_started.elapsed() > options.drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_in = drain_started.elapsed();
    supervisor.kill().await;

    // The proxy's store, read directly, against WeChat's books.
    let store = SqliteStore::connect(&rig.config.store)
        .await
        .expect("the database opens");
    let (payments, refunds) = read_store(&store, &ids).await;
    store.close().await;
    let orders = sim.orders();
    let reconciliation = Reconciliation::check(&payments, &refunds, &orders, &observations);

    // The table.
    let leaks = scanner.leaks();
    let anomalies = figures
        .anomalies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let faults = figures
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let faults_total: u64 = faults.values().sum();
    let (texts, bytes) = scanner.scanned();
    let row = |name: &str, value: String| println!("  {name:<58} {value:>6}");
    println!("\nsoak {mode}: figures");
    row(
        "payments driven",
        figures.payments.load(Ordering::Relaxed).to_string(),
    );
    row("payments in the store", payments.len().to_string());
    for (state, count) in &reconciliation.by_state {
        row(&format!("  … {state}"), count.to_string());
    }
    row("WeChat orders", orders.len().to_string());
    row(
        "replayed attempts (same attempt_id)",
        figures.replays.load(Ordering::Relaxed).to_string(),
    );
    row(
        "cashier cancels",
        figures.cashier_cancels.load(Ordering::Relaxed).to_string(),
    );
    row(
        "customer confirms/cancels on the phone",
        figures.customer_actions.load(Ordering::Relaxed).to_string(),
    );
    row(
        "refunds requested",
        figures
            .refunds_requested
            .load(Ordering::Relaxed)
            .to_string(),
    );
    row(
        "  … refused (over the payment)",
        figures.refunds_refused.load(Ordering::Relaxed).to_string(),
    );
    for (state, count) in &reconciliation.refunds_by_state {
        row(&format!("  … stored {state}"), count.to_string());
    }
    row(
        "proxy kills (SIGKILL) survived",
        figures.kills.load(Ordering::Relaxed).to_string(),
    );
    let kills = figures.kills.load(Ordering::Relaxed).max(1);
    row(
        "  … mean time to kill and reap (ms)",
        (figures.kill_ms.load(Ordering::Relaxed) / kills).to_string(),
    );
    row(
        "  … mean time to restart until listening (ms)",
        (figures.restart_ms.load(Ordering::Relaxed) / kills).to_string(),
    );
    row("faults injected", faults_total.to_string());
    for (kind, count) in &faults {
        row(&format!("  … {kind}"), count.to_string());
    }
    row(
        "primary-host outages",
        figures.outages.load(Ordering::Relaxed).to_string(),
    );
    row("WeChat calls received", sim.calls().len().to_string());
    row(
        "API responses received",
        figures.responses.load(Ordering::Relaxed).to_string(),
    );
    row(
        "requests that met a dead proxy (retried)",
        figures.transport_errors.load(Ordering::Relaxed).to_string(),
    );
    row(
        "texts scanned for secrets (responses + logs)",
        texts.to_string(),
    );
    row("  … bytes", bytes.to_string());
    row(
        "driving time (s)",
        format!("{:.1}", driven_for.as_secs_f64()),
    );
    row("drain time (s)", format!("{:.1}", drained_in.as_secs_f64()));
    row(
        "cancelled, charged and returned, but the proxy never saw the charge",
        reconciliation.returned_unseen.len().to_string(),
    );
    for case in reconciliation.returned_unseen.iter().take(5) {
        println!("    (note) {case}");
    }
    println!("\nsoak {mode}: inconsistencies (all must be 0)");
    print!("{}", reconciliation.table());
    row(
        "secret leaks (API key, certificate, token, payment code)",
        leaks.len().to_string(),
    );
    for leak in leaks.iter().take(20) {
        println!(
            "  ✗ leak of a {} in {}: {}",
            leak.what, leak.source, leak.line
        );
    }
    row(
        "unexpected API answers (5xx, refused valid requests)",
        anomalies.len().to_string(),
    );
    for anomaly in anomalies.iter().take(20) {
        println!("  ✗ {anomaly}");
    }
    let failures = reconciliation.total() + leaks.len() + anomalies.len();
    let undriven = observations
        .iter()
        .filter(|o| o.payment_ids.is_empty())
        .count();
    if undriven > 0 {
        row("attempts the proxy never answered", undriven.to_string());
    }
    println!(
        "\nsoak {mode}: {} in {:.1} s — {} payments, {} kills, {} faults, {} inconsistencies, {} leaks",
        if failures + undriven == 0 {
            "PASSED"
        } else {
            "FAILED"
        },
        started.elapsed().as_secs_f64(),
        payments.len(),
        figures.kills.load(Ordering::Relaxed),
        faults_total,
        reconciliation.total(),
        leaks.len(),
    );
    if failures + undriven > 0 {
        std::process::exit(1);
    }
}

/// Every payment of the days the soak's payments belong to (so that a payment the soak never
/// heard of is seen too), and their refunds.
async fn read_store(
    store: &SqliteStore,
    ids: &[String],
) -> (Vec<PaymentRecord>, Vec<RefundRecord>) {
    let mut days = std::collections::BTreeSet::new();
    for id in ids {
        if let Some(payment) = store.get_payment(id).await.expect("the store answers") {
            days.insert(payment.business_day);
        }
    }
    for payment in store.unsettled_payments().await.expect("the store answers") {
        days.insert(payment.business_day);
    }
    let mut payments = Vec::new();
    for day in days {
        payments.extend(
            store
                .list_payments(day, None)
                .await
                .expect("the store answers"),
        );
    }
    let mut refunds = Vec::new();
    for payment in &payments {
        refunds.extend(
            store
                .refunds_for_payment(&payment.id)
                .await
                .expect("the store answers"),
        );
    }
    (payments, refunds)
}

/// The rig owns the simulator; the tasks need a shared handle to it.
fn clone_handle(rig: &Arc<CrashRig>) -> SimRef {
    SimRef(rig.clone())
}

/// A cheap, shareable reference to the rig's simulator.
struct SimRef(Arc<CrashRig>);

impl std::ops::Deref for SimRef {
    type Target = SimHandle;
    fn deref(&self) -> &SimHandle {
        &self.0.sim
    }
}
