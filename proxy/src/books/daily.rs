//! The daily run inside `serve` (docs/books.md §5): after `[books] run_at` shop time,
//! yesterday's business day is reconciled for every account ([`Books::reconcile_day`]).
//!
//! - **Not ready yet.** A day stored as waiting for the bill (or failed) is tried again once
//!   `[books] retry_after` has passed since that attempt.
//! - **Once per day and account across proxies.** Before running, a proxy claims the day's
//!   run in the database ([`Store::claim_books_run`](crate::store::Store::claim_books_run),
//!   for `retry_after`, on the database's clock); a proxy that does not get the claim leaves
//!   the day to the one that did, and a claimer re-reads the day after claiming, so a day
//!   another proxy has just reconciled is not run again. A proxy that stops mid-run leaves a
//!   claim that lapses after `retry_after`.
//! - Times are the proxy's clock, days the shop's (`[shop] utc_offset`,
//!   [`BusinessDay`](super::BusinessDay)), whatever the server's time zone.

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Timelike};
use tokio_util::sync::CancellationToken;

use super::records::DayStatus;
use super::run::{Books, RunOutcome};
use crate::config::BooksConfig;
use crate::store::Millis;

/// How the daily run is timed, and who this proxy is.
#[derive(Clone, Debug)]
pub struct DailySettings {
    /// The shop time after which yesterday's bill is fetched.
    pub run_at: NaiveTime,
    /// The wait before a day that waits for its bill (or failed) is tried again; also the
    /// length of a claim.
    pub retry_after: Duration,
    /// The claim's owner: this run of the proxy (`Instance::run_id`).
    pub owner: String,
}

impl DailySettings {
    /// The settings `[books]` gives, for the proxy run `owner`.
    pub fn new(config: &BooksConfig, owner: &str) -> DailySettings {
        DailySettings {
            run_at: config.run_at,
            retry_after: config.retry_after,
            owner: owner.to_owned(),
        }
    }
}

/// Runs the daily reconciliation until `stop` is cancelled.
pub async fn run(books: Books, settings: DailySettings, stop: CancellationToken) {
    loop {
        let wait = tick(&books, &settings, Millis::now()).await;
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One look at the clock and the stored days: runs what is due, and returns how long to
/// wait before looking again.
pub async fn tick(books: &Books, settings: &DailySettings, now: Millis) -> Duration {
    let days = books.rules().days;
    let today = days.day_of(now);
    let run_at = at_time(days.start_of(today), settings.run_at);
    if now < run_at {
        return until(now, run_at);
    }
    let tomorrow = at_time(days.end_of(today), settings.run_at);
    let Some(yesterday) = today.pred_opt() else {
        return until(now, tomorrow);
    };
    let accounts = match books.accounts(None) {
        Ok(accounts) => accounts,
        Err(error) => {
            tracing::warn!(%error, "books: no account to reconcile");
            return until(now, tomorrow);
        }
    };
    let mut wait = until(now, tomorrow);
    for account in &accounts {
        match run_due(books, settings, yesterday, account, now).await {
            Ok(None) => {}
            Ok(Some(again)) => wait = wait.min(again),
            Err(error) => {
                tracing::warn!(%yesterday, mch_id = %account.mch_id, %error, "books: the daily run failed; trying again later");
                wait = wait.min(settings.retry_after);
            }
        }
    }
    wait
}

/// Runs `day` for `account` if it is due; returns when to look at it again (`None`: it is
/// reconciled).
async fn run_due(
    books: &Books,
    settings: &DailySettings,
    day: NaiveDate,
    account: &crate::config::Account,
    now: Millis,
) -> Result<Option<Duration>, super::run::RunError> {
    let store = books.store();
    let retry = settings.retry_after;
    match store.books_day(day, &account.mch_id).await? {
        Some(stored) if stored.status == DayStatus::Reconciled => return Ok(None),
        Some(stored) if now < stored.run_at.plus(retry) => {
            return Ok(Some(until(now, stored.run_at.plus(retry))));
        }
        _ => {}
    }
    if !store
        .claim_books_run(day, &account.mch_id, &settings.owner, retry)
        .await?
    {
        // Another proxy runs it now.
        return Ok(Some(retry));
    }
    // Another proxy may have finished it between the read and the claim.
    let done = store
        .books_day(day, &account.mch_id)
        .await?
        .is_some_and(|stored| stored.status == DayStatus::Reconciled);
    let result = if done {
        Ok(None)
    } else {
        let run_by = format!("the daily run ({})", settings.owner);
        match books.reconcile_day(day, account, &run_by).await {
            Ok(RunOutcome::Reconciled(_)) => Ok(None),
            Ok(RunOutcome::WaitingForBill { detail }) => {
                tracing::info!(%day, mch_id = %account.mch_id, %detail, "books: the bill is not ready; trying again later");
                Ok(Some(retry))
            }
            Err(error) => Err(error),
        }
    };
    if let Err(error) = store
        .release_books_run(day, &account.mch_id, &settings.owner)
        .await
    {
        tracing::warn!(%day, %error, "books: cannot hand back the run's claim; it lapses");
    }
    result
}

/// `midnight` plus the time of day `time`.
fn at_time(midnight: Millis, time: NaiveTime) -> Millis {
    Millis(midnight.0 + i64::from(time.num_seconds_from_midnight()) * 1000)
}

/// The wait from `now` to `at` (at least a second, so a loop never spins).
fn until(now: Millis, at: Millis) -> Duration {
    Duration::from_millis(u64::try_from(at.0 - now.0).unwrap_or(0)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::BusinessDay;

    #[test]
    fn the_run_time_is_shop_time() {
        let days = BusinessDay::default();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let at = at_time(
            days.start_of(day),
            NaiveTime::from_hms_opt(10, 30, 0).unwrap(),
        );
        assert_eq!(days.format(at), "2026-12-01 10:30:00");
        assert_eq!(until(at, Millis(at.0 + 90_000)), Duration::from_secs(90));
        assert_eq!(until(at, at), Duration::from_secs(1));
    }
}
