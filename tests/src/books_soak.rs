//! The reconciliation soak (docs/books.md §5): simulated days of random traffic through an
//! in-process proxy (SQLite) and the simulator, with random injected discrepancies, each day
//! reconciled by `paycode-proxy reconcile --date D` as the command line runs it. The stored
//! reports must list exactly what was injected: no false positives, no misses.
//!
//! Each day runs from 10:00 to 23:59:50 by the simulator's clock, which jumps through it
//! (the proxy's clock does not move with it: the books date payments by WeChat's own
//! `time_end`, docs/books.md §2):
//! - payments: password-free, password-waits confirmed, or password-waits left to expire;
//! - refunds of some paid payments (matched, never mismatches);
//! - on the first day and on some others a payment created at 23:59:50 whose customer
//!   confirms at 00:00:05: it is the next day's, on both sides, and is no mismatch either;
//! - online sales of the same account (`ForeignTrade`, `JSAPI`): listed "not from Paycode";
//! - injected: a payment nobody here made (`UnseenPayment`), a refund made in the merchant
//!   platform (`OutsideRefund`), a bill amount that differs (`AmountDifference`), and a
//!   payment whose paid reply is lost (`Behaviour::LostPaidReply`: WeChat's queries find
//!   it only once the day's bill is out), which the run must re-query with an audit event
//!   and settle as paid from the verified reply, so it ends resolved by query, not open.
//!
//! The day's bill is then made ready (10:00 the next day) and the day reconciled.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use clap::Parser;
use paycode_api::books::{DayReport, MismatchClass};
use paycode_api::{Payment, PaymentState};
use paycode_proxy::books::records::MismatchStatus;
use paycode_proxy::cli::reconcile::{self, ReconcileArgs};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wxpay::sim::{Behaviour, Injection};
use wxpay::time::beijing;

use crate::World;
use crate::world::{AMOUNT_FEN, DEFAULT_SCALE};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "books_soak",
    about = "The reconciliation soak: simulated days of random traffic and injected discrepancies, each day's report against what was injected"
)]
pub struct Args {
    /// The short run for CI: 3 days of 4 payments.
    #[arg(long)]
    pub short: bool,
    /// How many simulated days (default: 7, or 3 with `--short`).
    #[arg(long)]
    pub days: Option<u32>,
    /// Payments through the proxy per day (default: 10, or 4 with `--short`).
    #[arg(long)]
    pub payments: Option<u32>,
    /// The random seed (default: the current Unix time); print it to repeat a run.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// One expected or reported difference: its class and order number.
type Entry = (MismatchClass, String);

/// What one day came to.
#[derive(Debug, Default)]
struct DayTally {
    payments: usize,
    injected: usize,
    reported: usize,
    matched: usize,
    false_positives: Vec<Entry>,
    misses: Vec<Entry>,
    foreign_injected: usize,
    foreign_listed: usize,
    /// Payments whose paid reply was lost (each must end resolved by the run's query).
    lost: usize,
    /// Lost paid replies the run did not resolve by a verified query.
    unresolved: Vec<String>,
}

impl DayTally {
    fn clean(&self) -> bool {
        self.false_positives.is_empty()
            && self.misses.is_empty()
            && self.foreign_injected == self.foreign_listed
            && self.unresolved.is_empty()
    }
}

/// Runs the soak; `true` when every day's report listed exactly what was injected.
pub async fn run(args: Args) -> bool {
    let days = args.days.unwrap_or(if args.short { 3 } else { 7 });
    let per_day = args.payments.unwrap_or(if args.short { 4 } else { 10 });
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or_default()
    });
    println!("books soak: {days} days, {per_day} payments a day, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let world = World::start_with(DEFAULT_SCALE, |_| {}).await;
    world.sim.set_refund_delay(Duration::from_secs(1));
    // Day 0 is today by the simulator's clock, which is also the proxy's day: there a
    // payment across midnight is paid on the proxy's day 0 by its own clock and on day 1 by
    // WeChat's, so dating it by the proxy's clock would report it on day 0. Later days lie
    // ahead of the proxy's clock altogether.
    let first = today(&world);
    let mut tallies = Vec::new();
    for offset in 0..days {
        let day = first + Days::new(u64::from(offset));
        advance_to(&world, at(day, 10, 0, 0));
        let cross_midnight = offset == 0 || rng.gen_bool(0.5);
        tallies.push(soak_day(&world, &mut rng, day, per_day, cross_midnight).await);
    }
    world.stop().await;
    print_table(first, &tallies)
}

/// One day's traffic, injections and reconciliation.
async fn soak_day(
    world: &World,
    rng: &mut StdRng,
    day: NaiveDate,
    per_day: u32,
    cross_midnight: bool,
) -> DayTally {
    let mut expected: BTreeSet<Entry> = BTreeSet::new();
    let mut lost: Vec<Payment> = Vec::new();
    let mut paid: Vec<Payment> = Vec::new();
    let mut tally = DayTally::default();
    let slot = Duration::from_secs(12 * 3600 / u64::from(per_day.max(1)));
    for n in 0..per_day {
        advance_to(world, at(day, 10, 0, 0) + slot * n);
        let payment = match rng.gen_range(0..10) {
            0..=3 => world.pay_and_settle(Behaviour::PasswordFree).await,
            4..=6 => {
                let payment = world.pay(Behaviour::PasswordWaits).await;
                world
                    .cashier
                    .wait_for(&payment, PaymentState::WaitingForCustomer)
                    .await;
                world
                    .sim
                    .confirm_password(&payment.out_trade_no)
                    .expect("the customer confirms");
                world.cashier.settled(&payment).await
            }
            7..=8 => world.pay_and_settle(Behaviour::PasswordWaits).await,
            _ => {
                let payment = world.pay_and_settle(Behaviour::LostPaidReply).await;
                lost.push(payment.clone());
                payment
            }
        };
        tally.payments += 1;
        if payment.state == PaymentState::Paid {
            paid.push(payment);
        }
    }
    // Refunds and injected differences on the day's paid payments, each payment used once.
    for payment in paid {
        match rng.gen_range(0..6) {
            0 => {
                world.cashier.refund(&payment.id, 230).await;
                world
                    .cashier
                    .wait_until(&payment, "refunded", |seen| seen.refunded_fen.0 == 230)
                    .await;
            }
            1 => {
                inject(
                    world,
                    Injection::OutsideRefund {
                        mch_id: None,
                        out_trade_no: payment.out_trade_no.clone(),
                        refund_fee: 100,
                    },
                );
                expected.insert((MismatchClass::RefundInBillNotHere, payment.out_trade_no));
            }
            2 => {
                inject(
                    world,
                    Injection::AmountDifference {
                        mch_id: None,
                        out_trade_no: payment.out_trade_no.clone(),
                        bill_total_fee: AMOUNT_FEN + 1,
                    },
                );
                expected.insert((MismatchClass::AmountsDiffer, payment.out_trade_no));
            }
            _ => {}
        }
    }
    if rng.gen_bool(0.5) {
        let unseen = inject(
            world,
            Injection::UnseenPayment {
                mch_id: None,
                sub_mch_id: None,
                out_trade_no: None,
                total_fee: rng.gen_range(1..10_000),
            },
        );
        expected.insert((MismatchClass::PaidAtWechatNotHere, unseen));
    }
    for _ in 0..rng.gen_range(0..3) {
        inject(
            world,
            Injection::ForeignTrade {
                mch_id: None,
                sub_mch_id: None,
                trade_type: "JSAPI".into(),
                total_fee: rng.gen_range(1..10_000),
            },
        );
        tally.foreign_injected += 1;
    }
    // Across midnight: WeChat's success at 00:00:05 puts it on the next day, on both sides.
    if cross_midnight {
        advance_to(world, at(day, 23, 59, 50));
        let payment = world.pay(Behaviour::PasswordWaits).await;
        world
            .cashier
            .wait_for(&payment, PaymentState::WaitingForCustomer)
            .await;
        advance_to(world, at(day + Days::new(1), 0, 0, 5));
        world
            .sim
            .confirm_password(&payment.out_trade_no)
            .expect("the customer confirms");
        world.cashier.wait_for(&payment, PaymentState::Paid).await;
        tally.payments += 1;
    }

    // The bill is ready at 10:00 the next day: reconcile.
    advance_to(world, at(day + Days::new(1), 10, 0, 0));
    let mut printed = Vec::new();
    reconcile::run(
        ReconcileArgs {
            date: day,
            account: None,
        },
        &world.config,
        &mut printed,
    )
    .await
    .expect("the day is reconciled");
    let report = stored_report(world, day).await;
    let reported: BTreeSet<Entry> = report
        .mismatches
        .iter()
        .map(|mismatch| (mismatch.class, mismatch.out_trade_no.clone()))
        .collect();
    tally.injected = expected.len();
    tally.reported = report.mismatches.len();
    tally.matched = expected.intersection(&reported).count();
    tally.false_positives = reported.difference(&expected).cloned().collect();
    tally.misses = expected.difference(&reported).cloned().collect();
    tally.foreign_listed = report.not_from_paycode.len();
    tally.lost = lost.len();
    for payment in lost {
        if !resolved_by_the_runs_query(world, &payment, day).await {
            tally.unresolved.push(payment.out_trade_no);
        }
    }
    if !tally.clean() {
        println!("{day}: {}", String::from_utf8_lossy(&printed));
    }
    tally
}

/// Whether the day's run re-queried `payment` (its audit event names the reconciliation),
/// settled it as paid from the verified reply, and stored its difference as resolved by
/// that query.
async fn resolved_by_the_runs_query(world: &World, payment: &Payment, day: NaiveDate) -> bool {
    let store = world.store.as_ref();
    let events = store
        .payment_events(&payment.id)
        .await
        .expect("the payment's events");
    let by_run = format!("verified by orderquery for the reconciliation of {day}");
    let queried = events.iter().any(|event| event.detail.contains(&by_run));
    let paid = store
        .existing_payment(&payment.id)
        .await
        .expect("the payment")
        .state
        == PaymentState::Paid;
    let resolved = store
        .books_mismatches(day, &world.config.wechat.mch_id)
        .await
        .expect("the day's mismatches")
        .iter()
        .any(|stored| {
            stored.mismatch.out_trade_no == payment.out_trade_no
                && stored.status == MismatchStatus::ResolvedByQuery
        });
    queried && paid && resolved
}

async fn stored_report(world: &World, day: NaiveDate) -> DayReport {
    world
        .store
        .books_day(day, &world.config.wechat.mch_id)
        .await
        .expect("the store answers")
        .and_then(|stored| stored.report)
        .expect("the day is stored with its report")
}

/// Injects `injection` at the simulator; returns the order number it names.
fn inject(world: &World, injection: Injection) -> String {
    world
        .sim
        .inject_discrepancy(injection)
        .expect("the simulator takes the injection")
        .out_trade_no
}

/// Prints the table; `true` when every day is clean.
fn print_table(first: NaiveDate, tallies: &[DayTally]) -> bool {
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "day",
        "payments",
        "injected",
        "reported",
        "matched",
        "false+",
        "misses",
        "foreign",
        "by query"
    );
    let mut clean = true;
    for (offset, tally) in (0u64..).zip(tallies) {
        println!(
            "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}/{:<2} {:>6}/{:<2}",
            (first + Days::new(offset)).to_string(),
            tally.payments,
            tally.injected,
            tally.reported,
            tally.matched,
            tally.false_positives.len(),
            tally.misses.len(),
            tally.foreign_listed,
            tally.foreign_injected,
            tally.lost - tally.unresolved.len(),
            tally.lost,
        );
        for (class, order) in &tally.false_positives {
            println!("  false positive: {class:?} {order}");
        }
        for (class, order) in &tally.misses {
            println!("  missed: {class:?} {order}");
        }
        for order in &tally.unresolved {
            println!("  lost paid reply {order} was not resolved by the run's verified query");
        }
        clean &= tally.clean();
    }
    let total = |field: fn(&DayTally) -> usize| tallies.iter().map(field).sum::<usize>();
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "total",
        total(|t| t.payments),
        total(|t| t.injected),
        total(|t| t.reported),
        total(|t| t.matched),
        total(|t| t.false_positives.len()),
        total(|t| t.misses.len()),
    );
    println!(
        "{}",
        if clean {
            "books soak: OK"
        } else {
            "books soak: DIFFERENCES"
        }
    );
    clean
}

/// The simulator's business day now (Beijing time).
fn today(world: &World) -> NaiveDate {
    world.sim.now().with_timezone(&beijing()).date_naive()
}

/// Beijing time `h:m:s` on `day`, in UTC.
fn at(day: NaiveDate, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    day.and_hms_opt(h, m, s)
        .and_then(|time| time.and_local_timezone(beijing()).single())
        .expect("a Beijing time")
        .to_utc()
}

/// Moves the simulator's clock forward to `when` (never back).
fn advance_to(world: &World, when: DateTime<Utc>) {
    if let Ok(ahead) = (when - world.sim.now()).to_std() {
        world.sim.advance(ahead);
    }
}
