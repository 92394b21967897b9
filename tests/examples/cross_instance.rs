//! Benchmark of several proxies on one PostgreSQL database (docs/postgresql.md §4), in
//! process, real time (simulator time scale 1). Needs a PostgreSQL server:
//!
//! ```text
//! eval "$(scripts/pg-cluster start)"
//! cargo run --release -p paycode-tests --example cross_instance
//! cargo run --release -p paycode-tests --example cross_instance -- --samples 300 --instances 3
//! ```
//!
//! 1. **Wake-up latency.** A payment waits for its customer; proxy B holds a long-poll on
//!    it; proxy A takes the cashier's cancel. The clock starts just before A's cancel request
//!    is sent and stops when B's long-poll answer has been read; the commit is inside that
//!    span, so the figure is an upper bound on commit→answer. A's own long-poll on the same
//!    payment is timed beside it (the in-process path). Target: p99 ≤ 200 ms. A sample whose
//!    answer is not the cancel's commit (a query's commit came first) is taken again.
//! 2. **The shared micropay limit.** (a) `--burst` password-free payments of one account
//!    through proxy A alone while the others idle, then (b) the same number spread over every
//!    proxy: the micropay rate at the simulator and the busiest one-second window (limit 30).
//!    An enforced per-instance share would cap (a) at 30/N per second; the shared limit lets
//!    one busy proxy use the whole account. (c) The cost of the two database gates
//!    (`paycode_micropay_turn`, `paycode_micropay_admit`), timed directly: p50/p99 per call.
//!
//! On two cores the proxies, the simulator and PostgreSQL share the machine: the figures
//! measure the overhead of coordination, not scale-out.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use paycode_api::Payment;
use paycode_api::PaymentState::{Paid, WaitingForCustomer};
use paycode_tests::bench::figures::{Percentiles, Row, load_average, ms, print_table};
use paycode_tests::instances::Instances;
use paycode_tests::world::AMOUNT_FEN;
use paycode_tests::{BoxError, Cashier};
use tokio::task::JoinSet;
use wxpay::sim::{Behaviour, SimHandle};

type Result<T> = std::result::Result<T, BoxError>;

const TARGET_P99: Duration = Duration::from_millis(200);

#[derive(Debug, Parser)]
struct Args {
    /// Wake-up latency samples.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Proxies on the database (at least 2).
    #[arg(long, default_value_t = 3)]
    instances: usize,
    /// Payments per limiter run.
    #[arg(long, default_value_t = 90)]
    burst: usize,
    /// Calls of each database gate timed directly.
    #[arg(long, default_value_t = 1000)]
    gate_calls: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let names: Vec<String> = (0..args.instances.max(2))
        .map(|n| format!("proxy-{}", n + 1))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let chain = Instances::start(&names, 1.0, |_| {})
        .await
        .ok_or("no PostgreSQL server: eval \"$(scripts/pg-cluster start)\"")?;
    let mut rows = Vec::new();

    let (mut remote, mut local, retaken) = wake_ups(&chain, args.samples).await?;
    let remote = Percentiles::of(&mut remote);
    let local = Percentiles::of(&mut local);
    rows.push(Row::new(
        "cancel on A → long-poll answer on B, p50",
        "",
        ms(remote.p50),
        None,
    ));
    rows.push(Row::new(
        "cancel on A → long-poll answer on B, p99",
        "≤ 200 ms",
        ms(remote.p99),
        Some(remote.p99 <= TARGET_P99),
    ));
    rows.push(Row::new(
        "cancel on A → long-poll answer on B, max",
        "",
        ms(remote.max),
        None,
    ));
    rows.push(Row::new(
        "cancel on A → long-poll answer on A, p50 / p99",
        "",
        format!("{} / {}", ms(local.p50), ms(local.p99)),
        None,
    ));
    rows.push(Row::new(
        "samples (taken again: a query committed first)",
        "",
        format!("{} ({retaken})", remote.count),
        None,
    ));

    let one = &chain.cashiers[..1];
    let (rate, busiest) = saturate(&chain.sim, one, args.burst).await?;
    rows.push(Row::new(
        &format!("{} payments through A alone: micropay rate", args.burst),
        &format!(
            "> {:.0}/s (a 1/{} share)",
            30.0 / names.len() as f64,
            names.len()
        ),
        format!("{rate:.1}/s"),
        Some(rate > 30.0 / names.len() as f64),
    ));
    rows.push(Row::new(
        "  busiest one-second window",
        "≤ 30",
        busiest.to_string(),
        Some(busiest <= 30),
    ));
    let (rate, busiest) = saturate(&chain.sim, &chain.cashiers, args.burst).await?;
    rows.push(Row::new(
        &format!(
            "{} payments spread over {} proxies: micropay rate",
            args.burst,
            names.len()
        ),
        "",
        format!("{rate:.1}/s"),
        None,
    ));
    rows.push(Row::new(
        "  busiest one-second window",
        "≤ 30",
        busiest.to_string(),
        Some(busiest <= 30),
    ));

    let (mut turns, mut admits) = gates(&chain, args.gate_calls).await?;
    let turns = Percentiles::of(&mut turns);
    let admits = Percentiles::of(&mut admits);
    rows.push(Row::new(
        "database gate `turn`, p50 / p99",
        "",
        format!("{} / {}", ms(turns.p50), ms(turns.p99)),
        None,
    ));
    rows.push(Row::new(
        "database gate `admit`, p50 / p99",
        "",
        format!("{} / {}", ms(admits.p50), ms(admits.p99)),
        None,
    ));

    print_table(
        &format!(
            "{} proxies on one PostgreSQL database, in process (load average {})",
            names.len(),
            load_average()
        ),
        &rows,
    );
    println!(
        "\nOn 2 cores the proxies, the simulator and PostgreSQL share the machine: these figures \
         measure the overhead of coordination, not scale-out."
    );
    chain.stop().await;
    Ok(())
}

/// `samples` wake-up latencies (B's and A's long-poll answers after A's cancel), and how
/// many samples were taken again.
async fn wake_ups(
    chain: &Instances,
    samples: usize,
) -> Result<(Vec<Duration>, Vec<Duration>, usize)> {
    let (a, b) = (&chain.cashiers[0], &chain.cashiers[1]);
    let (mut remote, mut local, mut retaken) = (Vec::new(), Vec::new(), 0);
    while remote.len() < samples {
        let code = chain.sim.auth_code(Behaviour::PasswordWaits);
        let created = a.try_pay(AMOUNT_FEN, &code).await?;
        let (waiting, _) = a.try_poll_until(created, WaitingForCustomer, 10).await?;
        let poll = |cashier: &Cashier| {
            let (cashier, waiting) = (cashier.clone(), waiting.clone());
            tokio::spawn(async move {
                let answer = cashier.try_poll(&waiting, 10).await;
                (answer, Instant::now())
            })
        };
        let (on_b, on_a) = (poll(b), poll(a));
        // Both requests reach their handlers and subscribe before the cancel.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let cancelled: Payment = a.cancel(&waiting.id).await.json();
        let (answer_b, at_b) = on_b.await?;
        let (answer_a, at_a) = on_a.await?;
        if answer_b?.version != cancelled.version || answer_a?.version != cancelled.version {
            retaken += 1;
            continue;
        }
        remote.push(at_b.saturating_duration_since(started));
        local.push(at_a.saturating_duration_since(started));
    }
    Ok((remote, local, retaken))
}

/// Takes `count` password-free payments of the demo account at once, spread round-robin over
/// `cashiers`, and returns the micropay rate at the simulator (calls/s from first to last)
/// and the most calls within any one second.
async fn saturate(sim: &SimHandle, cashiers: &[Cashier], count: usize) -> Result<(f64, usize)> {
    let since = Utc::now();
    let mut payments = JoinSet::new();
    for n in 0..count {
        let cashier = cashiers[n % cashiers.len()].clone();
        let code = sim.auth_code(Behaviour::PasswordFree);
        payments.spawn(async move {
            let payment = cashier.try_pay(AMOUNT_FEN, &code).await?;
            cashier.try_poll_until(payment, Paid, 10).await
        });
    }
    for payment in payments.join_all().await {
        payment?;
    }
    let mut arrivals: Vec<DateTime<Utc>> = sim
        .calls()
        .into_iter()
        .filter(|call| call.endpoint == "micropay" && call.sim_time >= since)
        .map(|call| call.sim_time)
        .collect();
    arrivals.sort();
    let span = (arrivals[arrivals.len() - 1] - arrivals[0]).to_std()?;
    let rate = (arrivals.len() - 1) as f64 / span.as_secs_f64();
    let busiest = arrivals
        .iter()
        .enumerate()
        .map(|(i, start)| {
            arrivals[i..]
                .iter()
                .take_while(|at| **at - *start < chrono::TimeDelta::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    Ok((rate, busiest))
}

/// Times `calls` calls of each database gate on an account of its own, with a spacing and
/// a limit that never make them wait.
async fn gates(chain: &Instances, calls: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    use sqlx::Connection;
    let url = chain
        .config
        .store
        .database_url
        .as_deref()
        .ok_or("no database URL")?;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let (mut turns, mut admits) = (Vec::new(), Vec::new());
    for _ in 0..calls {
        let started = Instant::now();
        let _: f64 =
            sqlx::query_scalar("SELECT paycode_micropay_turn('bench', INTERVAL '1 microsecond')")
                .fetch_one(&mut connection)
                .await?;
        turns.push(started.elapsed());
        let started = Instant::now();
        let _: f64 = sqlx::query_scalar(
            "SELECT paycode_micropay_admit('bench', 1000000, INTERVAL '1.1 s', INTERVAL '0')",
        )
        .fetch_one(&mut connection)
        .await?;
        admits.push(started.elapsed());
    }
    connection.close().await?;
    Ok((turns, admits))
}
