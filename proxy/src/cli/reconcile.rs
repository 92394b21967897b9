//! `paycode-proxy reconcile --date YYYY-MM-DD [--account NAME]`: reconciles one business
//! day of every account (or one) against WeChat's bill, stores the result as the daily run
//! would ([`Books::reconcile_day`]) and prints a readable summary. Mismatches are findings,
//! not failures: the command fails only when a day could not be reconciled (download or
//! store errors).

use std::io::Write;
use std::sync::Arc;

use chrono::NaiveDate;
use paycode_api::Fen;
use paycode_api::books::{BillStatus, DayReport};

use crate::books::reconcile::Rules;
use crate::books::run::{Books, DayRun, RunError, RunOutcome};
use crate::books::{BusinessDay, records::MismatchStatus};
use crate::config::Config;
use crate::engine::{Engine, EngineSettings};
use crate::instance::Instance;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::wechat::{AccountClients, WechatSetupError};

/// What `paycode-proxy reconcile` takes.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The business day, `YYYY-MM-DD`, in the shop's offset (`[shop] utc_offset`).
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
    /// Only this account (its name in the configuration, `default` for `[wechat]`, or its
    /// mch_id); every account when omitted.
    #[arg(long)]
    pub account: Option<String>,
}

/// Reads `--date`: exactly `YYYY-MM-DD`.
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|day| day.format("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| format!("{text:?} is not a date like 2026-11-30 (YYYY-MM-DD)"))
}

/// Why `reconcile` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileCommandError {
    /// The database could not be opened.
    #[error("cannot open the database")]
    Store(#[from] StoreError),
    /// The WeChat clients could not be built.
    #[error(transparent)]
    Wechat(#[from] WechatSetupError),
    /// `--account` names no configured account.
    #[error(transparent)]
    Account(RunError),
    /// A day could not be reconciled (the others were).
    #[error("{failed} of {accounts} account(s) could not be reconciled: {first}")]
    Runs {
        /// How many failed.
        failed: usize,
        /// How many were tried.
        accounts: usize,
        /// The first failure.
        first: RunError,
    },
    /// The summary could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// The reconciliation service built from `config`, over a fresh store connection, for the
/// command line (an engine that only verifies: it is never started).
pub async fn books_for(config: &Config) -> Result<Books, ReconcileCommandError> {
    let store = crate::store::connect(&config.store).await?;
    let instance = Instance::new(&config.server);
    let accounts = Arc::new(AccountClients::build(config, &instance)?);
    let engine = Engine::new(
        Arc::clone(&store),
        Arc::clone(&accounts),
        EngineSettings::from_config(config, &instance),
        Arc::new(Metrics::for_instance(&instance.name)),
    );
    Ok(Books::new(store, accounts, engine, rules(config)))
}

/// The matching rules `config` sets.
pub fn rules(config: &Config) -> Rules {
    Rules {
        days: BusinessDay::new(config.shop.utc_offset),
        edge: config.books.carry_over_edge,
    }
}

/// Runs the command, writing the summary to `out`.
pub async fn run(
    args: ReconcileArgs,
    config: &Config,
    out: &mut impl Write,
) -> Result<(), ReconcileCommandError> {
    let books = books_for(config).await?;
    let accounts = books
        .accounts(args.account.as_deref())
        .map_err(ReconcileCommandError::Account)?;
    let mut errors = Vec::new();
    for account in &accounts {
        write!(
            out,
            "{} — account {} (mch_id {}): ",
            args.date, account.name, account.mch_id
        )?;
        match books
            .reconcile_day(args.date, account, "paycode-proxy reconcile")
            .await
        {
            Ok(RunOutcome::WaitingForBill { detail }) => writeln!(
                out,
                "WeChat has not made the bill yet ({detail}); try again later"
            )?,
            Ok(RunOutcome::Reconciled(run)) => write_summary(out, &run)?,
            Err(error) => {
                writeln!(out, "FAILED: {}", crate::error::chain(&error))?;
                errors.push(error);
            }
        }
    }
    let failed = errors.len();
    match errors.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(ReconcileCommandError::Runs {
            failed,
            accounts: accounts.len(),
            first,
        }),
    }
}

fn yuan(amount: Fen) -> String {
    format!("¥{}.{:02}", amount.get() / 100, amount.get() % 100)
}

/// Writes one reconciled day in plain words.
pub fn write_summary(out: &mut impl Write, run: &DayRun) -> std::io::Result<()> {
    let report: &DayReport = &run.report;
    let open = run
        .mismatches
        .iter()
        .filter(|stored| stored.status == MismatchStatus::Open)
        .count();
    writeln!(
        out,
        "{}",
        match report.bill_status {
            BillStatus::Received => "reconciled",
            BillStatus::NoBillNoTrades => "no bill and no trades: an empty day",
            BillStatus::NoBillButStoreHasTrades =>
                "WeChat has NO bill for the day, but the store has trades",
        }
    )?;
    let (here, bill) = (&report.store_totals, &report.bill_totals);
    writeln!(
        out,
        "  here:   {} payments {}, {} refunds {}",
        here.payments,
        yuan(here.payment_fen),
        here.refunds,
        yuan(here.refund_fen)
    )?;
    writeln!(
        out,
        "  WeChat: {} payments {}, {} refunds {}",
        bill.payments,
        yuan(bill.payment_fen),
        bill.refunds,
        yuan(bill.refund_fen)
    )?;
    writeln!(
        out,
        "  matched: {} payments, {} refunds; carried to the next day: {} payments, {} refunds",
        report.matched_payments,
        report.matched_refunds,
        report.carried_to_next_day.payments.len(),
        report.carried_to_next_day.refunds.len()
    )?;
    writeln!(
        out,
        "  mismatches: {} found by this run; {} listed with their status, {open} open",
        run.mismatches.iter().filter(|m| m.in_latest_run).count(),
        run.mismatches.len()
    )?;
    for stored in &run.mismatches {
        let mismatch = &stored.mismatch;
        let amounts = match (mismatch.store_amount, mismatch.bill_amount) {
            (Some(here), Some(bill)) => format!("here {}, WeChat {}", yuan(here), yuan(bill)),
            (Some(here), None) => format!("here {}", yuan(here)),
            (None, Some(bill)) => format!("WeChat {}", yuan(bill)),
            (None, None) => String::new(),
        };
        writeln!(
            out,
            "    [{}] {} {}{}: {} ({amounts}, {}){}",
            stored.status.as_str(),
            stored.id,
            mismatch.out_trade_no,
            mismatch
                .out_refund_no
                .as_deref()
                .map(|refund| format!(" refund {refund}"))
                .unwrap_or_default(),
            mismatch.description,
            mismatch.time,
            stored
                .note
                .as_deref()
                .map(|note| format!(" — {note}"))
                .unwrap_or_default()
        )?;
    }
    for outcome in &run.verified {
        writeln!(
            out,
            "  queried {}: WeChat says {}; the payment is {} ({})",
            outcome.payment.out_trade_no.as_str(),
            outcome.wechat,
            outcome.payment.state,
            outcome.verdict.as_str()
        )?;
    }
    for order in &run.marked {
        writeln!(out, "  marked {order}: money was taken and returned")?;
    }
    writeln!(
        out,
        "  not from Paycode: {} row(s) (online sales, other sub-merchants)",
        report.not_from_paycode.len()
    )
}
