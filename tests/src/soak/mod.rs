//! The torture soak behind `cargo run -p paycode-tests --example soak`: K cashier terminals
//! take N payments with a random mix of customer behaviours against the real `paycode-proxy`
//! binary, while the proxy is killed with SIGKILL at random moments (`crash`) or the
//! simulator injects random network faults on every endpoint and takes the primary host down
//! now and then (`faults`). The simulator lives in this process, so its books survive every
//! kill. At the end the proxy's store is compared with WeChat's books and every inconsistency
//! is counted; every response body and every log line of the proxy is scanned for secrets.
//!
//! Layout: [`Args`] (the command line), `plan` (the behaviour mix), `terminal` (the cashier
//! terminals that drive payments), `chaos` (kills and injected faults), `report` (the figures
//! and the verdict); [`run`] ties them together.

mod chaos;
mod plan;
pub(crate) mod report;
pub(crate) mod terminal;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paycode_api::Payment;
use paycode_proxy::config::Config;
use paycode_proxy::store::{self, PaymentRecord, RefundRecord, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use wxpay::sim::{DEMO_API_KEY, SimHandle};

use self::chaos::{Supervisor, inject_faults};
use self::report::Report;
use self::terminal::{Terminal, drive_terminal, parse};
use crate::binary::CrashRig;
use crate::cashier::Cashier;
use crate::free_port;
use crate::reconcile::Reconciliation;
use crate::secrets::SecretScanner;
use crate::world::{OTHER_API_KEYS, SHOPS, Shop};

/// The stores the soak spreads its terminals over: the direct merchant's default store and
/// two sub-merchants of the provider (three stores, two accounts).
const SOAK_SHOPS: [Shop; 3] = [SHOPS[0], SHOPS[2], SHOPS[3]];

/// The proxy's log filter while soaking: debug for our crates, so every line they write is
/// scanned.
const LOG_FILTER: &str = "info,paycode_proxy=debug,wxpay=debug";

/// What goes wrong around the payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The proxy is killed with SIGKILL at random moments and restarted.
    Crash,
    /// The simulator injects network faults on every endpoint and takes the primary host
    /// down now and then.
    Faults,
}

impl Mode {
    /// `crash` or `faults`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Crash => "crash",
            Mode::Faults => "faults",
        }
    }
}

/// The soak's command line: `soak crash|faults --short|--long [--seed N] …`.
///
/// Exits 1 naming the payments if any inconsistency, secret leak or unexpected API answer
/// was found.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "soak",
    about = "The torture soak: payments through kills or faults, then the store against WeChat's books"
)]
pub struct Args {
    /// `crash` (SIGKILL the proxy) or `faults` (inject network faults and outages).
    #[arg(value_enum)]
    pub mode: Mode,
    /// The short run (the default): 400 payments from 4 terminals, 150 s of driving at most.
    #[arg(long, overrides_with = "long")]
    pub short: bool,
    /// The long run: 4000 payments from 8 terminals, 30 minutes of driving at most.
    #[arg(long, overrides_with = "short")]
    pub long: bool,
    /// The random seed (default: the current Unix time); print it to repeat a run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How many payments (default: 400 short, 4000 long).
    #[arg(long)]
    pub payments: Option<usize>,
    /// How many cashier terminals (default: 4 short, 8 long).
    #[arg(long)]
    pub terminals: Option<usize>,
    /// How many times faster than real time simulated time runs.
    #[arg(long, default_value_t = 100.0)]
    pub scale: f64,
    /// The share of calls to each endpoint that meet an injected fault.
    #[arg(long, default_value_t = 0.2)]
    pub fault_rate: f64,
    /// Crash mode also injects faults.
    #[arg(long)]
    pub with_faults: bool,
    /// Faults mode also kills the proxy.
    #[arg(long)]
    pub with_kills: bool,
}

/// The soak's settings, with the defaults of the short or long run filled in.
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
    /// Real time between kills, drawn uniformly (ms).
    kill_every: (u64, u64),
    /// How long the payments may take to settle after driving stops.
    drain: Duration,
}

impl From<Args> for Options {
    fn from(args: Args) -> Options {
        let long = args.long;
        Options {
            mode: args.mode,
            long,
            payments: args.payments.unwrap_or(if long { 4000 } else { 400 }),
            terminals: args.terminals.unwrap_or(if long { 8 } else { 4 }).max(1),
            seed: args.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs())
            }),
            scale: args.scale,
            fault_rate: args.fault_rate,
            kills: args.mode == Mode::Crash || args.with_kills,
            faults: args.mode == Mode::Faults || args.with_faults,
            kill_every: (50, 700),
            drain: Duration::from_secs(if long { 60 } else { 30 }),
        }
    }
}

/// Runs the soak described by `args`, prints its figures, and tells whether it passed (no
/// inconsistency, leak, unexpected answer or unanswered attempt).
pub async fn run(args: Args) -> bool {
    let options = Options::from(args);
    let started = Instant::now();
    let mode = options.mode.name();
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

    let port = free_port();
    let rig = CrashRig::start_with_stores(options.scale, &SOAK_SHOPS, move |config| {
        config.server.listen = format!("127.0.0.1:{port}").parse().expect("an address");
        fast_wechat_timeouts(config);
    })
    .await;
    let manager = rig.add_manager("soak-manager").await;
    let scanner = Arc::new(prepare_simulator(&rig.sim));
    // Terminals take turns over the stores: counter-1 at the default store, counter-2 at
    // the first sub-merchant, counter-3 at the second, and so on.
    let mut tokens = vec![rig.token().to_owned()];
    for index in 2..=options.terminals {
        let shop = SOAK_SHOPS[(index - 1) % SOAK_SHOPS.len()];
        tokens.push(
            rig.add_terminal_to(&format!("counter-{index}"), shop.name)
                .await,
        );
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
            SOAK_WECHAT_TIMEOUT,
        ))
    });

    // The terminals.
    let per_terminal = options.payments.div_ceil(options.terminals);
    let mut drivers = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let count = per_terminal.min(options.payments.saturating_sub(index * per_terminal));
        let terminal = Terminal {
            name: format!("counter-{}", index + 1),
            cashiers: vec![manager.at(Cashier::new(&base, Some(token)))],
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
    // Each terminal sees only its store's payments: the drain asks through the terminal
    // that took them.
    let mut ids_by_token: Vec<(&String, Vec<String>)> = Vec::new();
    for (driver, token) in drivers.into_iter().zip(&tokens) {
        let observed = driver.await.expect("a terminal task");
        let ids = observed
            .iter()
            .flat_map(|observation| observation.payment_ids.iter().cloned())
            .collect();
        ids_by_token.push((token, ids));
        observations.extend(observed);
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
    let drainers: Vec<(Terminal, &Vec<String>)> = ids_by_token
        .iter()
        .map(|(token, ids)| {
            let drainer = Terminal {
                name: "drain".to_owned(),
                cashiers: vec![Cashier::new(&base, Some(token))],
                scanner: scanner.clone(),
                figures: figures.clone(),
                stop_at: Instant::now() + options.drain + Duration::from_secs(10),
            };
            (drainer, ids)
        })
        .collect();
    let ids: Vec<String> = observations
        .iter()
        .flat_map(|observation| observation.payment_ids.iter().cloned())
        .collect();
    let drained_in = drain(&drainers, options.drain).await;
    supervisor.kill().await;

    // The proxy's store, read directly, against WeChat's books.
    let store = store::connect(&rig.config.store)
        .await
        .expect("the database opens");
    let (payments, refunds) = read_store(store.as_ref(), &ids).await;
    print_stores(store.as_ref(), &payments).await;
    store.close().await;
    let orders = sim.orders();
    let reconciliation = Reconciliation::check(&payments, &refunds, &orders, &observations);

    Report {
        mode,
        started,
        driven_for,
        drained_in,
        figures: &figures,
        payments: &payments,
        orders: &orders,
        calls: sim.calls().len(),
        reconciliation: &reconciliation,
        scanner: &scanner,
        observations: &observations,
    }
    .print()
}

/// Polls every payment through the terminal that took it until none is open (payment not
/// settled or refund not finished) or `limit` has passed; returns how long it took.
pub(crate) async fn drain(drainers: &[(Terminal, &Vec<String>)], limit: Duration) -> Duration {
    let drain_started = Instant::now();
    loop {
        let mut open = 0;
        for (drainer, id) in drainers
            .iter()
            .flat_map(|(drainer, ids)| ids.iter().map(move |id| (drainer, id)))
        {
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
        if open == 0 || drain_started.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drain_started.elapsed()
}

/// Prints one line per store of the database: its account, payments and what was paid.
pub(crate) async fn print_stores(store: &dyn Store, payments: &[PaymentRecord]) {
    let shops = store.list_stores().await.expect("the store answers");
    for shop in &shops {
        let of_shop: Vec<&PaymentRecord> = payments
            .iter()
            .filter(|payment| payment.store_id == shop.id)
            .collect();
        let paid: Vec<&&PaymentRecord> = of_shop
            .iter()
            .filter(|payment| payment.state == paycode_api::PaymentState::Paid)
            .collect();
        println!(
            "store {:<8} account {:<12} sub_mch_id {:<10} payments {:>4}  paid {:>4} ({} fen)",
            shop.name,
            shop.account,
            shop.sub_mch_id.as_deref().unwrap_or("-"),
            of_shop.len(),
            paid.len(),
            paid.iter()
                .map(|payment| payment.amount_fen.get())
                .sum::<u64>()
        );
    }
}

/// Counters shared by every task.
#[derive(Default)]
pub(crate) struct Figures {
    pub(crate) payments: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) cashier_cancels: AtomicU64,
    pub(crate) customer_actions: AtomicU64,
    pub(crate) refunds_requested: AtomicU64,
    pub(crate) refunds_refused: AtomicU64,
    pub(crate) kills: AtomicU64,
    /// Milliseconds spent killing (and reaping) and restarting the proxy.
    pub(crate) kill_ms: AtomicU64,
    pub(crate) restart_ms: AtomicU64,
    pub(crate) outages: AtomicU64,
    pub(crate) responses: AtomicU64,
    pub(crate) transport_errors: AtomicU64,
    pub(crate) faults: Mutex<BTreeMap<String, u64>>,
    /// API answers that must never happen (5xx, unexpected 4xx, a replay with another id).
    pub(crate) anomalies: Mutex<Vec<String>>,
}

impl Figures {
    pub(crate) fn anomaly(&self, what: String) {
        self.anomalies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

/// Every payment of the days the soak's payments belong to (so that a payment the soak never
/// heard of is seen too), and their refunds.
pub(crate) async fn read_store(
    store: &dyn Store,
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
    let stores = store.list_stores().await.expect("the store answers");
    let mut payments = Vec::new();
    for day in days {
        for shop in &stores {
            payments.extend(
                store
                    .list_payments(day, &shop.id, None)
                    .await
                    .expect("the store answers"),
            );
        }
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

/// Whatever owns the simulator a soak drives (the one-proxy rig, or a chain).
pub(crate) trait SimOwner: Send + Sync {
    fn sim(&self) -> &SimHandle;
}

impl SimOwner for CrashRig {
    fn sim(&self) -> &SimHandle {
        &self.sim
    }
}

/// A cheap, shareable reference to the simulator.
pub(crate) struct SimRef(pub(crate) Arc<dyn SimOwner>);

impl std::ops::Deref for SimRef {
    type Target = SimHandle;
    fn deref(&self) -> &SimHandle {
        self.0.sim()
    }
}

/// Replies from the loopback simulator take milliseconds; 1 s timeouts let "delay past the
/// timeout" faults and slow replies run fast.
const SOAK_WECHAT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The soaks' WeChat timeouts ([`SOAK_WECHAT_TIMEOUT`]), for a proxy's configuration.
pub(crate) fn fast_wechat_timeouts(config: &mut Config) {
    config.wechat.connect_timeout = SOAK_WECHAT_TIMEOUT;
    config.wechat.read_timeout = SOAK_WECHAT_TIMEOUT;
    config.wechat.micropay_read_timeout = SOAK_WECHAT_TIMEOUT;
}

/// Sets the soaks' simulator timing (slow replies just past [`SOAK_WECHAT_TIMEOUT`], refunds
/// taking 5 s) and returns the leak scanner that knows every secret of `sim` (its API keys
/// and certificate files); the caller adds the terminals' tokens.
pub(crate) fn prepare_simulator(sim: &SimHandle) -> SecretScanner {
    sim.set_slow_reply_delay(SOAK_WECHAT_TIMEOUT + Duration::from_millis(200));
    sim.set_refund_delay(Duration::from_secs(5));
    let cert_dir = sim.cert_files().map(|files| {
        files
            .client_key_pem
            .parent()
            .expect("the certificate directory")
            .to_path_buf()
    });
    let scanner = SecretScanner::new(DEMO_API_KEY, cert_dir.as_deref());
    for key in OTHER_API_KEYS {
        scanner.add_token(key);
    }
    scanner
}
