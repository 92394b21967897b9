//! The chain soak behind `cargo run -p paycode-tests --example chain_soak`: the one-proxy
//! soak's terminals, behaviour mix, refunds and replays ([`crate::soak`]) against a
//! [`Chain`] of real binaries on one PostgreSQL database, every request sent to an instance
//! picked at random, while instances are SIGKILLed and restarted at random, one instance is
//! frozen (SIGSTOP) past its lease and resumed, a burst of payments on one account hits
//! every instance at once, some micropays are held on the way (the simulator's `hold`
//! fault), and a few are held while their sender is SIGKILLed so that another instance takes
//! the payment over before they arrive. At the end: the soak's reconciliation against the simulator's
//! books, the secret scan, and the chain's own checks ([`ChainChecks`]); the tables are
//! printed and the run fails if any count that must be 0 is not (docs/chains.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use paycode_api::Payment;
use paycode_proxy::store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use wxpay::codes::Api;
use wxpay::sim::{Behaviour, Fault};

use super::checks::{ChainChecks, Pause};
use super::{Backend, Chain, DEFAULT_PAUSE, Node};
use crate::cashier::{Cashier, new_attempt_id};
use crate::reconcile::{Observation, Reconciliation};
use crate::secrets::SecretScanner;
use crate::soak::report::Report;
use crate::soak::terminal::{Terminal, drive_terminal, parse};
use crate::soak::{
    Figures, SimRef, drain, fast_wechat_timeouts, prepare_simulator, print_stores, read_store,
};
use crate::world::{SHOPS, Shop};

/// The stores: the direct merchant's default store and two sub-merchants of the provider
/// (three stores on two accounts), as in the one-proxy soak.
const CHAIN_SHOPS: [Shop; 3] = [SHOPS[0], SHOPS[2], SHOPS[3]];

/// Every instance logs debug for our crates, so every line they write is scanned.
const LOG_FILTER: &str = "info,paycode_proxy=debug,wxpay=debug";

/// The chain soak's command line: `chain_soak --short|--long [--seed N] …`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "chain_soak",
    about = "Several paycode-proxy binaries on one PostgreSQL: payments through kills, a pause past the lease and a burst, then the books, the senders and the rate"
)]
pub struct Args {
    /// The short run (the default): 240 payments from 6 terminals, 90 s of driving at most.
    #[arg(long, overrides_with = "long")]
    pub short: bool,
    /// The long run: 3000 payments from 12 terminals, 30 minutes of driving at most.
    #[arg(long, overrides_with = "short")]
    pub long: bool,
    /// The random seed (default: the current Unix time); print it to repeat a run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How many instances of the binary.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// How many payments (default: 240 short, 3000 long).
    #[arg(long)]
    pub payments: Option<usize>,
    /// How many cashier terminals (default: 6 short, 12 long).
    #[arg(long)]
    pub terminals: Option<usize>,
    /// How many times faster than real time simulated time runs.
    #[arg(long, default_value_t = 100.0)]
    pub scale: f64,
    /// How long (s) the frozen instance stays frozen: longer than the lease.
    #[arg(long, default_value_t = DEFAULT_PAUSE.as_secs())]
    pub pause_secs: u64,
    /// How many payments the burst posts at once on one account (0: no burst).
    #[arg(long, default_value_t = 90)]
    pub burst: usize,
    /// No SIGKILLs (the pause and the burst still happen).
    #[arg(long)]
    pub no_kills: bool,
    /// The share of micropay calls the simulator holds on the way (`hold` fault), so that
    /// they reach WeChat late: after the sender's timeout, maybe after its reverse.
    #[arg(long, default_value_t = 0.03)]
    pub hold_rate: f64,
    /// How long (ms, real time) a held micropay takes to arrive.
    #[arg(long, default_value_t = 3000)]
    pub hold_ms: u64,
    /// How many times the soak holds one instance's micropay on the way and SIGKILLs that
    /// instance at once, so another instance takes the payment over before the micropay
    /// arrives (the dangerous case time_expire closes).
    #[arg(long, default_value_t = 3)]
    pub held_takeovers: usize,
}

/// Runs the chain soak, prints its tables, and tells whether it passed.
pub async fn run(args: Args) -> bool {
    let long = args.long;
    let payments = args.payments.unwrap_or(if long { 3000 } else { 240 });
    let terminals = args.terminals.unwrap_or(if long { 12 } else { 6 }).max(1);
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let drive_limit = Duration::from_secs(if long { 1800 } else { 90 });
    let drain_limit = Duration::from_secs(if long { 120 } else { 90 });
    let pause_for = Duration::from_secs(args.pause_secs);
    let started = Instant::now();
    println!(
        "chain soak ({}, seed {seed}): {} instances on PostgreSQL, {payments} payments from \
         {terminals} terminals, simulated time ×{}, kills {}, one pause of {} s, burst {}",
        if long { "long" } else { "short" },
        args.instances,
        args.scale,
        if args.no_kills { "off" } else { "on" },
        pause_for.as_secs(),
        args.burst,
    );

    let chain = Chain::new(
        args.instances,
        Backend::Postgres,
        args.scale,
        &CHAIN_SHOPS,
        fast_wechat_timeouts,
    )
    .await;
    let manager = chain.add_manager("soak-manager").await;
    let scanner = Arc::new(prepare_simulator(&chain.sim));
    let mut tokens = Vec::new();
    for index in 1..=terminals {
        let shop = CHAIN_SHOPS[(index - 1) % CHAIN_SHOPS.len()];
        let token = chain
            .add_terminal(&format!("counter-{index}"), shop.name)
            .await;
        scanner.add_token(&token);
        tokens.push(token);
    }
    chain.start_all(LOG_FILTER).await;
    let chain = Arc::new(chain);
    // A terminal's cashiers at every instance, the manager at the counter to approve refunds.
    let approved_cashiers = |token: &str| -> Vec<Cashier> {
        chain
            .cashiers(token)
            .into_iter()
            .map(|cashier| manager.at(cashier))
            .collect()
    };
    let sim = Arc::new(SimRef(chain.clone()));
    let figures = Arc::new(Figures::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Steps an instance dropped because its fenced write was refused (it had lost the
    // lease), counted from the instances' logs.
    let lost_steps = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + drive_limit;
    let driving = Instant::now();

    // Chaos: SIGKILL and restart a random running instance now and then.
    let killer = (!args.no_kills).then(|| {
        tokio::spawn(kill_at_random(
            chain.clone(),
            scanner.clone(),
            figures.clone(),
            lost_steps.clone(),
            stop.clone(),
            seed,
        ))
    });
    // An instance frozen past its lease, then resumed (again every 30 s in a long run).
    let pauser = tokio::spawn(pause_one(
        chain.clone(),
        Duration::from_secs(10),
        pause_for,
        stop.clone(),
    ));

    // Some micropays arrive late.
    let holder = (args.hold_rate > 0.0).then(|| {
        tokio::spawn(hold_some_micropays(
            sim.clone(),
            args.hold_rate,
            args.hold_ms,
            stop.clone(),
        ))
    });

    // The terminals, each request to a random instance.
    let per_terminal = payments.div_ceil(terminals);
    let mut drivers = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let count = per_terminal.min(payments.saturating_sub(index * per_terminal));
        let terminal = Terminal {
            name: format!("counter-{}", index + 1),
            cashiers: approved_cashiers(token),
            scanner: scanner.clone(),
            figures: figures.clone(),
            stop_at,
        };
        drivers.push(tokio::spawn(drive_terminal(
            terminal,
            sim.clone(),
            count,
            seed.wrapping_add(index as u64 * 7919),
        )));
    }
    // The burst: many payments at once on the default store's account, spread over every
    // instance, so the account's 30/s limit is met from all of them together.
    let burst = (args.burst > 0).then(|| {
        let terminal = Terminal {
            name: "burst".to_owned(),
            cashiers: approved_cashiers(&tokens[0]),
            scanner: scanner.clone(),
            figures: figures.clone(),
            stop_at,
        };
        tokio::spawn(burst_payments(
            terminal,
            sim.clone(),
            args.burst,
            Duration::from_secs(20),
        ))
    });

    let mut observations = Vec::new();
    let mut ids_by_token: Vec<(&String, Vec<String>)> = Vec::new();
    for (driver, token) in drivers.into_iter().zip(&tokens) {
        let observed = driver.await.expect("a terminal task");
        ids_by_token.push((token, payment_ids(&observed)));
        observations.extend(observed);
    }
    if let Some(burst) = burst {
        let observed = burst.await.expect("the burst task");
        ids_by_token.push((&tokens[0], payment_ids(&observed)));
        observations.extend(observed);
    }
    let driven_for = driving.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(killer) = killer {
        killer.await.expect("the killer task");
    }
    let pauses = pauser.await.expect("the pause task");
    let held = match holder {
        Some(holder) => holder.await.expect("the hold task"),
        None => 0,
    };
    chain.sim.clear_faults();
    // With the other terminals done, the held micropay is this payment's own.
    if args.held_takeovers > 0 {
        let terminal = Terminal {
            name: "held-takeover".to_owned(),
            cashiers: approved_cashiers(&tokens[0]),
            scanner: scanner.clone(),
            figures: figures.clone(),
            stop_at: Instant::now() + Duration::from_secs(60),
        };
        let observed = held_takeovers(
            chain.clone(),
            terminal,
            sim.clone(),
            args.held_takeovers,
            args.hold_ms,
        )
        .await;
        ids_by_token.push((&tokens[0], payment_ids(&observed)));
        observations.extend(observed);
    }
    for node in &chain.nodes {
        node.resume().await;
    }
    chain.start_all(LOG_FILTER).await;

    // Drain: every payment and refund must settle without help, asked at random instances.
    let drainers: Vec<(Terminal, &Vec<String>)> = ids_by_token
        .iter()
        .map(|(token, ids)| {
            let drainer = Terminal {
                name: "drain".to_owned(),
                cashiers: approved_cashiers(token),
                scanner: scanner.clone(),
                figures: figures.clone(),
                stop_at: Instant::now() + drain_limit + Duration::from_secs(10),
            };
            (drainer, ids)
        })
        .collect();
    let drained_in = drain(&drainers, drain_limit).await;
    for (name, log) in chain.kill_all().await {
        scanner.scan(&format!("{name} log, last run"), &log);
        lost_steps.fetch_add(lost_lease_lines(&log), Ordering::Relaxed);
    }

    // The store, read directly, against WeChat's books.
    let ids: Vec<String> = payment_ids(&observations);
    let database = store::connect(&chain.config.store)
        .await
        .expect("the database opens");
    let (payments, refunds) = read_store(database.as_ref(), &ids).await;
    let mut events = Vec::with_capacity(payments.len());
    for payment in &payments {
        events.push(
            database
                .payment_events(&payment.id)
                .await
                .expect("the payment's events"),
        );
    }
    print_stores(database.as_ref(), &payments).await;
    database.close().await;
    let orders = chain.sim.orders();
    let calls = chain.sim.calls();
    let reconciliation = Reconciliation::check(&payments, &refunds, &orders, &observations);
    let passed_soak = Report {
        mode: "chain",
        started,
        driven_for,
        drained_in,
        figures: &figures,
        payments: &payments,
        orders: &orders,
        calls: calls.len(),
        reconciliation: &reconciliation,
        scanner: &scanner,
        observations: &observations,
    }
    .print();

    let checks = ChainChecks::check(&calls, &orders, &payments, &events, &pauses);
    let passed_chain = print_checks(
        &chain,
        &checks,
        &pauses,
        held,
        lost_steps.load(Ordering::Relaxed),
    );
    let passed = passed_soak && passed_chain;
    println!(
        "\nchain soak: {} in {:.1} s (seed {seed})",
        if passed { "PASSED" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    passed
}

/// How many lines of an instance's log say it dropped a step because its lease was lost.
fn lost_lease_lines(log: &str) -> u64 {
    log.lines()
        .filter(|line| line.contains("lease lost"))
        .count() as u64
}

fn payment_ids(observations: &[Observation]) -> Vec<String> {
    observations
        .iter()
        .flat_map(|observation| observation.payment_ids.iter().cloned())
        .collect()
}

/// SIGKILLs a random running, unfrozen instance every 1–4 s and restarts it 0–300 ms later,
/// scanning what it logged, until `stop`.
async fn kill_at_random(
    chain: Arc<Chain>,
    scanner: Arc<SecretScanner>,
    figures: Arc<Figures>,
    lost_steps: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc4a1);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..4000))).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let candidates: Vec<&Arc<Node>> = chain
            .nodes
            .iter()
            .filter(|node| !node.is_paused())
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let node = candidates[rng.gen_range(0..candidates.len())];
        let killing = Instant::now();
        if let Some(log) = node.kill().await {
            figures.kills.fetch_add(1, Ordering::Relaxed);
            figures
                .kill_ms
                .fetch_add(killing.elapsed().as_millis() as u64, Ordering::Relaxed);
            scanner.scan(&format!("{} log, run {}", node.name, node.runs()), &log);
            lost_steps.fetch_add(lost_lease_lines(&log), Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        let starting = Instant::now();
        node.start(LOG_FILTER).await;
        figures
            .restart_ms
            .fetch_add(starting.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// After `after`, and then every 30 s until `stop`, freezes an instance (the last one first,
/// then the others in turn) for `pause_for` (real time) and resumes it; returns the pauses.
async fn pause_one(
    chain: Arc<Chain>,
    after: Duration,
    pause_for: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<Pause> {
    let mut pauses = Vec::new();
    let mut next = Instant::now() + after;
    let count = chain.nodes.len();
    while count > 0 && !stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let node = &chain.nodes[(count - 1 + pauses.len()) % count];
        if node.pause().await {
            let from = chrono::Utc::now();
            println!(
                "chain soak: {} frozen (SIGSTOP) for {} s",
                node.name,
                pause_for.as_secs()
            );
            tokio::time::sleep(pause_for).await;
            node.resume().await;
            println!("chain soak: {} resumed (SIGCONT)", node.name);
            pauses.push(Pause {
                instance: node.name.clone(),
                from,
                until: chrono::Utc::now(),
            });
        }
        next = Instant::now() + Duration::from_secs(30);
    }
    pauses
}

/// After `after`, posts `count` password-free payments at once through `terminal` (each to
/// a random instance) and records them; the drain settles them.
async fn burst_payments(
    terminal: Terminal,
    sim: Arc<SimRef>,
    count: usize,
    after: Duration,
) -> Vec<Observation> {
    tokio::time::sleep(after).await;
    let terminal = Arc::new(terminal);
    let posts: Vec<_> = (0..count)
        .map(|_| {
            let terminal = terminal.clone();
            let code = sim.auth_code(Behaviour::PasswordFree);
            terminal.scanner.add_code(&code);
            tokio::spawn(async move {
                let mut observation = Observation {
                    attempt_id: new_attempt_id(),
                    label: "burst password_free".to_owned(),
                    ..Observation::default()
                };
                let body = json!({
                    "attempt_id": observation.attempt_id,
                    "amount_fen": 100,
                    "auth_code": code,
                });
                terminal.figures.payments.fetch_add(1, Ordering::Relaxed);
                if let Some((status, reply)) =
                    terminal.call(Method::POST, "/payments", Some(&body)).await
                {
                    match parse::<Payment>(&reply).filter(|_| status.is_success()) {
                        Some(payment) => {
                            observation.payment_ids.insert(payment.id);
                        }
                        None => terminal
                            .figures
                            .anomaly(format!("burst POST /payments → {status}: {reply}")),
                    }
                }
                observation
            })
        })
        .collect();
    let mut observations = Vec::new();
    for post in posts {
        observations.push(post.await.expect("a burst payment"));
    }
    observations
}

/// `count` times, 1 s apart: holds the next micropay on the way for `hold_ms`,
/// posts a password-free payment to the first instance, and SIGKILLs that instance 300 ms
/// later (restarting it 500 ms after), so that another instance takes the payment over
/// while its micropay is still on the way.
async fn held_takeovers(
    chain: Arc<Chain>,
    terminal: Terminal,
    sim: Arc<SimRef>,
    count: usize,
    hold_ms: u64,
) -> Vec<Observation> {
    let node = chain.nodes[0].clone();
    let mut observations = Vec::new();
    for _ in 0..count {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let code = sim.auth_code(Behaviour::PasswordFree);
        terminal.scanner.add_code(&code);
        let mut observation = Observation {
            attempt_id: new_attempt_id(),
            label: "password_free+held+owner_killed".to_owned(),
            ..Observation::default()
        };
        let body = json!({
            "attempt_id": observation.attempt_id,
            "amount_fen": 100,
            "auth_code": code,
        });
        node.start(LOG_FILTER).await;
        sim.inject_fault(Api::Micropay, Fault::Hold { ms: hold_ms }, 1);
        terminal.figures.payments.fetch_add(1, Ordering::Relaxed);
        let post = {
            let cashier = Cashier::new(&node.base, terminal.cashiers[0].token());
            let body = body.clone();
            tokio::spawn(async move {
                cashier
                    .try_request(
                        Method::POST,
                        "/payments",
                        Some(&body),
                        Duration::from_secs(5),
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        if node.kill().await.is_some() {
            terminal.figures.kills.fetch_add(1, Ordering::Relaxed);
        }
        let answered = post.await.ok().and_then(Result::ok);
        tokio::time::sleep(Duration::from_millis(500)).await;
        node.start(LOG_FILTER).await;
        // The POST may have died with the instance: the same attempt again finds the payment.
        let reply = match answered {
            Some((reply, _)) if reply.status.is_success() => Some((reply.status, reply.body)),
            _ => terminal.call(Method::POST, "/payments", Some(&body)).await,
        };
        match reply
            .and_then(|(status, body)| parse::<Payment>(&body).filter(|_| status.is_success()))
        {
            Some(payment) => {
                observation.payment_ids.insert(payment.id);
            }
            None => terminal.figures.anomaly(format!(
                "held takeover: {} was never answered",
                observation.attempt_id
            )),
        }
        observations.push(observation);
    }
    observations
}

/// Queues a `hold` fault for about `rate` of the micropay calls, one at a time, until
/// `stop`; returns how many it queued.
async fn hold_some_micropays(sim: Arc<SimRef>, rate: f64, ms: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut held = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let queued = sim
            .pending_faults()
            .iter()
            .any(|fault| fault.endpoint == Api::Micropay.name());
        let calls = sim.call_count(Api::Micropay) as f64;
        if !queued && (held as f64) < rate * (calls + 1.0) {
            sim.inject_fault(Api::Micropay, Fault::Hold { ms }, 1);
            held += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    held
}

/// Prints the chain's table; true when every class is empty.
fn print_checks(
    chain: &Chain,
    checks: &ChainChecks,
    pauses: &[Pause],
    held: u64,
    lost_steps: u64,
) -> bool {
    let row = |name: &str, value: String| println!("  {name:<58} {value:>6}");
    println!("\nchain soak: instances");
    for node in &chain.nodes {
        row(
            &format!("{} runs (starts)", node.name),
            node.runs().to_string(),
        );
    }
    for (instance, count) in &checks.micropays_by_instance {
        row(
            &format!("micropay calls from {instance}"),
            count.to_string(),
        );
    }
    for pause in pauses {
        row(
            &format!("{} frozen (SIGSTOP) for (s)", pause.instance),
            format!(
                "{:.1}",
                (pause.until - pause.from).num_milliseconds() as f64 / 1000.0
            ),
        );
    }
    row("micropays held on the way (hold fault)", held.to_string());
    row(
        "micropays refused for their time_expire (all)",
        checks.expired_micropays.to_string(),
    );
    row(
        "micropays that arrived after another instance took over",
        checks.late_micropays.to_string(),
    );
    row(
        "  … refused for their time_expire",
        checks.late_refused.to_string(),
    );
    row(
        "  … sent by the frozen instance after it resumed",
        checks.late_after_pause.to_string(),
    );
    for (mch_id, busiest) in &checks.busiest_second {
        row(
            &format!("most micropays in one second on mch_id {mch_id}"),
            busiest.to_string(),
        );
    }
    row(
        "steps dropped because a fenced write was refused (logs)",
        lost_steps.to_string(),
    );
    println!("\nchain soak: chain inconsistencies (all must be 0)");
    for class in &checks.classes {
        row(class.name, class.cases.len().to_string());
        for case in class.cases.iter().take(10) {
            println!("    ✗ {case}");
        }
    }
    checks.total() == 0
}
