//! Load benchmark of the proxy: password-free payments end to end through the real
//! HTTP API against the embedded WeChat Pay simulator, with durable SQLite on disk (the
//! store's own settings: WAL, `synchronous = FULL`) or, with `PAYCODE_TEST_STORE=postgres`,
//! a fresh PostgreSQL database, and the proxy's resident memory with 1,000 payments waiting
//! for a password.
//!
//! ```text
//! cargo run --release -p paycode-tests --example load
//! cargo run --release -p paycode-tests --example load -- --terminals 32 --seconds 20
//! ```
//!
//! Options (all optional):
//! - `--terminals N`      concurrent virtual terminals in the throughput run (default 16);
//!   each one loops: `POST /api/v1/payments`, then long-poll
//!   `GET /api/v1/payments/{id}?wait=5&after_version=V` until `paid`.
//! - `--seconds S`        measured duration (default 10), after `--warmup S` (default 2).
//! - `--micropay-rate R`  `payments.micropay_rate_per_second` for both runs (default
//!   100000). The product default, 30/s, is WeChat's per-merchant micropay limit and would
//!   cap the throughput run at 30 payments/s, so the benchmark raises it.
//! - `--proxy in-process|binary`  where the throughput run's proxy runs (default
//!   `in-process`: same process and runtime as the simulator and the terminals; `binary`:
//!   the real `paycode-proxy` as a child process, logging at `--log` level).
//! - `--log LEVEL`        `RUST_LOG` of the child proxy with `--proxy binary` (default
//!   `info`, the product's default; the harness keeps its log in memory, and `TEST_LOG=1`
//!   copies it to the terminal).
//! - `--pending N`        payments held waiting for a password in the RSS run (default 1000).
//! - `--no-throughput`, `--no-rss`  skip a run.
//!
//! The RSS run always uses the real `paycode-proxy` binary in a child process (built first
//! with `cargo build [--release] -p paycode-proxy`, or `$PAYCODE_PROXY_BIN`), so `VmRSS` from
//! `/proc/<pid>/status` is the proxy's alone; the simulator and the terminals run here. Each
//! waiting payment also has its terminal's long-poll open, as a real app would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use paycode_api::PaymentState;
use paycode_tests::bench::figures::{
    CpuSample, Percentiles, Row, load_average, metrics, ms, password_free_code, print_table,
    rss_kib,
};
use paycode_tests::bench::{Proxy, ProxySettings};
use paycode_tests::binary::proxy_binary;
use paycode_tests::test_store;
use paycode_tests::world::start_simulator;
use paycode_tests::{BoxError, Cashier};
use tokio::sync::Mutex;
use wxpay::sim::{Behaviour, auth_code_for};

const TARGET_PAYMENTS_PER_SEC: f64 = 1000.0;
const TARGET_P99: Duration = Duration::from_millis(20);
const TARGET_RSS_MIB: f64 = 64.0;

type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The options, described in the module docs.
#[derive(Debug, Parser)]
#[command(about = "Load benchmark of the proxy: throughput and resident memory")]
struct Args {
    /// Concurrent virtual terminals in the throughput run.
    #[arg(long, default_value_t = 16)]
    terminals: usize,
    /// Measured duration of the throughput run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up before the measured window, in seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// `payments.micropay_rate_per_second` for both runs.
    #[arg(long = "micropay-rate", default_value_t = 100_000)]
    micropay_rate: u32,
    /// Payments held waiting for a password in the RSS run.
    #[arg(long, default_value_t = 1000)]
    pending: usize,
    /// Where the throughput run's proxy runs: `in-process` or `binary`.
    #[arg(long = "proxy", default_value = "in-process")]
    proxy: String,
    /// `RUST_LOG` of the child proxy with `--proxy binary`.
    #[arg(long, default_value = "info")]
    log: String,
    /// Skip the throughput run.
    #[arg(long)]
    no_throughput: bool,
    /// Skip the RSS run.
    #[arg(long)]
    no_rss: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let Args {
        terminals,
        seconds,
        warmup,
        micropay_rate: rate,
        pending,
        proxy: mode,
        log,
        no_throughput,
        no_rss,
    } = Args::parse();

    println!("Paycode load benchmark");
    println!(
        "machine: {} CPU(s); profile: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        if cfg!(debug_assertions) {
            "debug (figures are not representative; use --release)"
        } else {
            "release"
        }
    );
    println!(
        "payments.micropay_rate_per_second = {rate} (the default, 30/s, is WeChat's per-merchant \
         micropay limit; raised here so the proxy, not the limiter, is measured)"
    );

    let mut rows = Vec::new();
    if !no_throughput {
        rows.extend(throughput(terminals, seconds, warmup, rate, &mode, &log).await?);
    }
    if !no_rss {
        rows.extend(rss(pending, rate).await?);
    }
    print_table("Results (targets for a 2-core machine)", &rows);
    Ok(())
}

/// What one virtual terminal measured.
#[derive(Default)]
struct Samples {
    /// POST → paid, for payments started inside the measured window.
    end_to_end: Vec<Duration>,
    /// POST → 201 response.
    create: Vec<Duration>,
    /// 201 → long-poll answered `paid`.
    to_paid: Vec<Duration>,
    /// Long-polls per payment.
    polls: u64,
    /// Payments that reached `paid` inside the window.
    paid_in_window: u64,
    errors: Vec<String>,
}

async fn throughput(
    terminals: usize,
    seconds: f64,
    warmup: f64,
    rate: u32,
    mode: &str,
    log: &str,
) -> Result<Vec<Row>> {
    let root = tempfile::tempdir()?;
    let sim = start_simulator(root.path(), 1.0).await;
    let settings = ProxySettings {
        micropay_rate_per_second: rate,
        terminals,
    };
    let proxy = match mode {
        "in-process" => Proxy::in_process(root.path(), &sim, &settings).await?,
        "binary" => Proxy::child(root.path(), &sim, &settings, log).await?,
        other => return Err(format!("--proxy {other}: expected in-process or binary").into()),
    };
    println!();
    let database = if test_store::postgres_requested() {
        "a fresh PostgreSQL database".to_owned()
    } else {
        format!(
            "SQLite at {} (WAL, synchronous=FULL)",
            root.path().join("data/paycode.sqlite").display()
        )
    };
    println!(
        "Throughput run: {terminals} terminals, proxy {mode}{}, {database}, \
         {warmup} s warm-up then {seconds} s measured",
        if mode == "binary" {
            format!(" (RUST_LOG={log})")
        } else {
            String::new()
        },
    );

    let sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let window_start = started + Duration::from_secs_f64(warmup);
    let window_end = window_start + Duration::from_secs_f64(seconds);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let mut tasks = Vec::new();
    for token in &proxy.tokens {
        let terminal = Cashier::new(&proxy.base, Some(token));
        let sequence = Arc::clone(&sequence);
        let samples = Arc::clone(&samples);
        tasks.push(tokio::spawn(async move {
            let mut mine = Samples::default();
            loop {
                let t0 = Instant::now();
                if t0 >= window_end {
                    break;
                }
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let code = password_free_code(3, n);
                let created = match terminal.try_pay(1 + n % 9999, &code).await {
                    Ok(payment) => payment,
                    Err(error) => {
                        mine.errors.push(error.to_string());
                        continue;
                    }
                };
                let t1 = Instant::now();
                match terminal
                    .try_poll_until(created, PaymentState::Paid, 5)
                    .await
                {
                    Ok((_, polls)) => {
                        let t2 = Instant::now();
                        if t0 >= window_start {
                            mine.end_to_end.push(t2 - t0);
                            mine.create.push(t1 - t0);
                            mine.to_paid.push(t2 - t1);
                            mine.polls += u64::from(polls);
                        }
                        if t2 >= window_start && t2 < window_end {
                            mine.paid_in_window += 1;
                        }
                    }
                    Err(error) => mine.errors.push(error.to_string()),
                }
            }
            let mut all = samples.lock().await;
            all.end_to_end.append(&mut mine.end_to_end);
            all.create.append(&mut mine.create);
            all.to_paid.append(&mut mine.to_paid);
            all.polls += mine.polls;
            all.paid_in_window += mine.paid_in_window;
            all.errors.append(&mut mine.errors);
        }));
    }
    // CPU and context switches over the measured window: the proxy's own (its process when
    // it runs as a child), and this process's (simulator and terminals, plus the proxy when
    // it runs in process).
    let proxy_pid = proxy.pid;
    let own_pid = std::process::id();
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(window_start.into()).await;
        let before = (CpuSample::of(proxy_pid), CpuSample::of(own_pid));
        tokio::time::sleep_until(window_end.into()).await;
        let after = (CpuSample::of(proxy_pid), CpuSample::of(own_pid));
        match (before, after) {
            ((Ok(p0), Ok(o0)), (Ok(p1), Ok(o1))) => Some((p1.since(&p0), o1.since(&o0))),
            _ => None,
        }
    });
    let load_before = load_average();
    for task in tasks {
        task.await?;
    }
    let cpu = cpu.await?;
    let load_after = load_average();
    let metrics = metrics(&proxy.base).await.unwrap_or_default();
    proxy.stop().await;
    let orders = sim.orders();
    sim.shutdown().await;

    let mut samples = Arc::try_unwrap(samples)
        .map_err(|_| "samples still shared")?
        .into_inner();
    let per_sec = samples.paid_in_window as f64 / seconds;
    let measured = samples.end_to_end.len();
    let polls_per_payment = samples.polls as f64 / measured.max(1) as f64;
    let e2e = Percentiles::of(&mut samples.end_to_end);
    let create = Percentiles::of(&mut samples.create);
    let to_paid = Percentiles::of(&mut samples.to_paid);
    println!(
        "  paid in the window: {} ({per_sec:.0}/s); errors: {}; simulator orders: {}; \
         long-polls per payment: {polls_per_payment:.2}",
        samples.paid_in_window,
        samples.errors.len(),
        orders.len(),
    );
    println!("  machine load average (1 min) before/after: {load_before} / {load_after} (2 cores)");
    if let Some((proxy_cpu, own_cpu)) = cpu {
        let paid = samples.paid_in_window.max(1) as f64;
        let per = |sample: &CpuSample, who: &str| {
            println!(
                "  {who}: CPU {:.0}% of one core = {:.3} ms per payment (user {:.3}, sys {:.3}); \
                 context switches per payment: {:.1} voluntary, {:.1} involuntary",
                (sample.user + sample.system).as_secs_f64() / seconds * 100.0,
                (sample.user + sample.system).as_secs_f64() * 1e3 / paid,
                sample.user.as_secs_f64() * 1e3 / paid,
                sample.system.as_secs_f64() * 1e3 / paid,
                sample.voluntary_switches as f64 / paid,
                sample.involuntary_switches as f64 / paid,
            );
        };
        if mode == "binary" {
            per(&proxy_cpu, "proxy process");
            per(&own_cpu, "benchmark process (simulator + terminals)");
        } else {
            per(
                &own_cpu,
                "benchmark process (proxy + simulator + terminals)",
            );
        }
    }
    for error in samples.errors.iter().take(5) {
        println!("  error: {error}");
    }
    println!("  latency breakdown    p50        p90        p99        max");
    for (name, p) in [
        ("POST→201", &create),
        ("201→paid", &to_paid),
        ("POST→paid", &e2e),
    ] {
        println!(
            "  {name:<18} {:>10} {:>10} {:>10} {:>10}",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        );
    }
    for line in metrics
        .lines()
        .filter(|line| !line.starts_with('#') && (line.contains("_sum") || line.contains("_count")))
    {
        println!("  metrics: {line}");
    }
    let ok = samples.errors.is_empty();
    Ok(vec![
        Row::new(
            &format!("throughput, {terminals} terminals (paid/s)"),
            ">= 1000 /s",
            format!("{per_sec:.0} /s"),
            Some(ok && per_sec >= TARGET_PAYMENTS_PER_SEC),
        ),
        Row::new("latency POST→paid p50", "", ms(e2e.p50), None),
        Row::new("latency POST→paid p90", "", ms(e2e.p90), None),
        Row::new(
            "latency POST→paid p99",
            "<= 20 ms",
            ms(e2e.p99),
            Some(e2e.p99 <= TARGET_P99),
        ),
        Row::new("latency POST→paid max", "", ms(e2e.max), None),
    ])
}

async fn rss(pending: usize, rate: u32) -> Result<Vec<Row>> {
    let root = tempfile::tempdir()?;
    let sim = start_simulator(root.path(), 1.0).await;
    let terminals = 10;
    let binary = proxy_binary();
    let proxy = Proxy::child(
        root.path(),
        &sim,
        &ProxySettings {
            micropay_rate_per_second: rate,
            terminals,
        },
        "info",
    )
    .await?;
    println!();
    println!(
        "RSS run: real binary {} (pid {}), {pending} password-waits payments from {terminals} \
         terminals, each with a long-poll open; default query schedule (every 3 s)",
        binary.display(),
        proxy.pid
    );
    let (idle_rss, _) = rss_kib(proxy.pid)?;
    println!(
        "  idle after start: VmRSS {:.1} MiB",
        idle_rss as f64 / 1024.0
    );

    let clients: Vec<Cashier> = proxy
        .tokens
        .iter()
        .map(|token| Cashier::new(&proxy.base, Some(token)))
        .collect();
    let waiting = Arc::new(AtomicU64::new(0));
    let stop = tokio_util_free_cancel();
    let mut pollers = Vec::new();
    let creators = 50;
    let next = Arc::new(AtomicU64::new(0));
    let created_at = Instant::now();
    let mut creating = Vec::new();
    for _ in 0..creators {
        let clients = clients.clone();
        let next = Arc::clone(&next);
        creating.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= pending {
                    break;
                }
                let terminal = clients[n % clients.len()].clone();
                let code = auth_code_for(Behaviour::PasswordWaits);
                match terminal.try_pay(100, &code).await {
                    Ok(payment) => made.push((terminal, payment)),
                    Err(error) => eprintln!("create failed: {error}"),
                }
            }
            made
        }));
    }
    let mut made = Vec::new();
    for task in creating {
        made.extend(task.await?);
    }
    for (terminal, payment) in made {
        let waiting = Arc::clone(&waiting);
        let stop = stop.clone();
        pollers.push(tokio::spawn(async move {
            let mut payment = payment;
            let mut counted = false;
            loop {
                if !counted && payment.state == PaymentState::WaitingForCustomer {
                    waiting.fetch_add(1, Ordering::Relaxed);
                    counted = true;
                }
                if payment.state.is_settled() {
                    break;
                }
                tokio::select! {
                    polled = terminal.try_poll(&payment, 25) => match polled {
                        Ok(next) => payment = next,
                        Err(_) => break,
                    },
                    () = stop.notified() => break,
                }
            }
        }));
    }
    // All waiting for the customer (micropay answered USERPAYING) ...
    while (waiting.load(Ordering::Relaxed) as usize) < pending {
        if created_at.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "only {} of {pending} payments reached waiting_for_customer in 30 s",
                waiting.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_waiting = created_at.elapsed();
    println!(
        "  {pending} payments waiting_for_customer {:.1} s after the first POST; simulator prompts open: {}",
        all_waiting.as_secs_f64(),
        sim.pending_prompts().len()
    );
    // ... then through two rounds of queries (first at 3 s, then every 3 s), sampling RSS,
    // well before the 40 s wait deadline.
    let mut peak = 0;
    let mut samples = Vec::new();
    let sample_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < sample_until {
        let (rss, _) = rss_kib(proxy.pid)?;
        peak = peak.max(rss);
        samples.push(rss);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (rss_now, hwm) = rss_kib(proxy.pid)?;
    let queries = sim.call_count(wxpay::codes::Api::OrderQuery);
    let still_waiting = sim.pending_prompts().len();
    println!(
        "  over 8 s: VmRSS now {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB; orderquery calls so far: {queries}; prompts still open: {still_waiting}",
        rss_now as f64 / 1024.0,
        peak as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    stop.notify_waiters();
    for poller in pollers {
        poller.abort();
    }
    proxy.stop().await;
    sim.shutdown().await;
    let peak_mib = peak as f64 / 1024.0;
    Ok(vec![
        Row::new(
            "RSS idle after start",
            "",
            format!("{:.1} MiB", idle_rss as f64 / 1024.0),
            None,
        ),
        Row::new(
            &format!("RSS with {pending} waiting for a password"),
            "<= 64 MiB",
            format!("{peak_mib:.1} MiB"),
            Some(still_waiting >= pending && peak_mib <= TARGET_RSS_MIB),
        ),
        Row::new(
            "VmHWM (peak RSS of the whole run)",
            "",
            format!("{:.1} MiB", hwm as f64 / 1024.0),
            None,
        ),
    ])
}

/// A broadcast "stop" for the pollers.
fn tokio_util_free_cancel() -> Arc<tokio::sync::Notify> {
    Arc::new(tokio::sync::Notify::new())
}
