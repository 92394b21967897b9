//! The micropay rate limit: WeChat accepts 30 micropay calls per second per merchant. The
//! engine keeps one limiter per merchant account (a provider's is shared by its
//! sub-merchants: docs/design.md, "Load"). Calls beyond the rate wait their turn (a queue,
//! not a refusal).
//!
//! Two gates, because a payment commits "may have been sent" between taking its turn and
//! sending:
//! - [`RateLimiter::reserve`] hands out evenly spaced turns (one per `1/rate` seconds) and
//!   waits for this call's turn. It runs before the write-ahead commit, so a payment waiting
//!   in the queue is still safely "not sent" if the process stops.
//! - [`RateLimiter::admit`] runs right before the request leaves and holds it back while
//!   `rate` requests already left in the last second. Database delays between the two gates
//!   could otherwise bunch turns together; this gate makes the limit hold for every
//!   window of actual sends.
//!
//! A payment stored while a turn and a slot are free takes both at once
//! ([`RateLimiter::try_now`]) and skips the two gates; its slot is stamped again when its
//! request actually leaves ([`RateLimiter::sending`]), after the insert's commit, so the
//! window counts real sends on that path too.
//!
//! The window is a second plus [`ARRIVAL_GUARD`]: requests reach WeChat after different
//! delays (a new TLS connection takes longer than a pooled one), and WeChat counts arrivals.
//! At 30 per 1.1 s the limit still holds at WeChat with up to 100 ms of arrival jitter, for
//! a throughput of about 27 micropay calls per second.
//!
//! Several proxies on one PostgreSQL database share each account's limit
//! ([`Engine::share_micropay_limits`], docs/postgresql.md §4): both gates then ask the
//! database (`paycode_micropay_turn` and `paycode_micropay_admit`, migration 0009), which
//! hands out the turns and keeps the window for every proxy with its own clock.
//! [`RateLimiter::try_now`] still answers from this process's count (it runs inside a
//! synchronous insert), so its fast path survives; [`RateLimiter::sending`] then asks the
//! database's window before the request leaves, and the admitted call pushes the shared
//! turns back as if it had taken one. If the database cannot answer, a gate falls back to
//! this process's own count and says so in the log: the step could not commit its
//! write-ahead without the database either, so only a send that was already committed takes
//! that path.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;

use super::Engine;

/// Slack for the spread in network delays between sending and arriving at WeChat.
pub const ARRIVAL_GUARD: Duration = Duration::from_millis(100);
const WINDOW: Duration = Duration::from_millis(1000 + ARRIVAL_GUARD.as_millis() as u64);

#[derive(Debug)]
struct State {
    /// When the next turn starts.
    next_turn: Option<Instant>,
    /// When the requests of the last second left, oldest first.
    sent: VecDeque<Instant>,
}

/// A send slot taken at once by [`RateLimiter::try_now`], stamped when it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim(Instant);

/// Forgets the sends that left the window.
fn expire(sent: &mut VecDeque<Instant>, now: Instant) {
    while sent
        .front()
        .is_some_and(|at| now.duration_since(*at) >= WINDOW)
    {
        sent.pop_front();
    }
}

/// A per-second limit on calls, as evenly spaced turns plus a sliding-window check.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: usize,
    interval: Duration,
    state: Mutex<State>,
    /// Set when the limit is shared with other proxies through the database.
    shared: OnceLock<SharedLimit>,
}

/// An account's limit kept in PostgreSQL for every proxy on the database.
#[derive(Debug)]
struct SharedLimit {
    pool: PgPool,
    mch_id: String,
}

impl SharedLimit {
    /// Logs that the database could not answer a gate, which then counts locally.
    fn unreadable(&self, error: &sqlx::Error) {
        tracing::warn!(
            mch_id = %self.mch_id,
            %error,
            "the shared micropay limit cannot be read; counting this proxy's calls only"
        );
    }

    /// Seconds until this call's turn (`paycode_micropay_turn`).
    async fn turn(&self, spacing: Duration) -> Result<Duration, sqlx::Error> {
        let wait: f64 =
            sqlx::query_scalar("SELECT paycode_micropay_turn($1, $2 * INTERVAL '1 microsecond')")
                .bind(&self.mch_id)
                .bind(micros(spacing))
                .fetch_one(&self.pool)
                .await?;
        Ok(Duration::from_secs_f64(wait.max(0.0)))
    }

    /// `None` when admitted (and recorded), else how long until a slot may be free
    /// (`paycode_micropay_admit`). A call that took no shared turn passes the turns'
    /// `spacing` (zero otherwise), which it then takes up.
    async fn admit(&self, most: usize, spacing: Duration) -> Result<Option<Duration>, sqlx::Error> {
        let wait: f64 = sqlx::query_scalar(
            "SELECT paycode_micropay_admit($1, $2, $3 * INTERVAL '1 microsecond', \
             $4 * INTERVAL '1 microsecond')",
        )
        .bind(&self.mch_id)
        .bind(i32::try_from(most).unwrap_or(i32::MAX))
        .bind(micros(WINDOW))
        .bind(micros(spacing))
        .fetch_one(&self.pool)
        .await?;
        Ok((wait > 0.0).then(|| Duration::from_secs_f64(wait)))
    }
}

/// `duration` in whole microseconds, for an SQL interval.
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl Engine {
    /// Shares every account's micropay limit with the other proxies on the PostgreSQL
    /// database behind `pool` (docs/postgresql.md §4): from now on, the limit counts the
    /// calls of all of them. Called once, while wiring the application, before the engine
    /// starts; a second call changes nothing.
    pub fn share_micropay_limits(&self, pool: &PgPool) {
        for (mch_id, limiter) in &self.shared.limiters {
            let _ = limiter.shared.set(SharedLimit {
                pool: pool.clone(),
                mch_id: mch_id.clone(),
            });
        }
    }
}

impl RateLimiter {
    /// At most `per_second` calls in any window of a second plus [`ARRIVAL_GUARD`] (at
    /// least 1).
    pub fn per_second(per_second: u32) -> RateLimiter {
        let per_second = per_second.max(1);
        RateLimiter {
            per_second: per_second as usize,
            interval: WINDOW / per_second,
            state: Mutex::new(State {
                next_turn: None,
                sent: VecDeque::new(),
            }),
            shared: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next turn and waits until it starts. With a shared limit, this process's
    /// turn comes first, then the database's: a burst here reaches the database one call per
    /// turn rather than all at once, and a proxy alone on the database finds its shared turn
    /// free.
    pub async fn reserve(&self) {
        let turn = {
            let mut state = self.lock();
            let now = Instant::now();
            let turn = state.next_turn.map_or(now, |next| next.max(now));
            state.next_turn = Some(turn + self.interval);
            turn
        };
        tokio::time::sleep_until(turn).await;
        if let Some(shared) = self.shared.get() {
            match shared.turn(self.interval).await {
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(error) => shared.unreadable(&error),
            }
        }
    }

    /// Takes a turn and a send slot at once if both are free right now, without waiting.
    /// The caller skips [`reserve`](Self::reserve) and [`admit`](Self::admit), and calls
    /// [`sending`](Self::sending) with the claim right before the request leaves.
    pub fn try_now(&self) -> Option<Claim> {
        let mut state = self.lock();
        let now = Instant::now();
        if state.next_turn.is_some_and(|next| next > now) {
            return None;
        }
        expire(&mut state.sent, now);
        if state.sent.len() >= self.per_second {
            return None;
        }
        state.next_turn = Some(now + self.interval);
        state.sent.push_back(now);
        Some(Claim(now))
    }

    /// A claimed request is leaving now: its slot, held since [`try_now`](Self::try_now)
    /// (across the commit between the two), is stamped with the moment it actually leaves,
    /// so that the window counts actual sends. If the slot expired meanwhile (a commit slower
    /// than the window), the request waits for a free one like any other. With a shared
    /// limit, the database's window has the last word: the request waits there until it
    /// admits it, and takes up a shared turn.
    pub async fn sending(&self, claim: Claim) {
        if let Some(shared) = self.shared.get() {
            {
                let mut state = self.lock();
                let now = Instant::now();
                expire(&mut state.sent, now);
                if let Some(index) = state.sent.iter().position(|sent| *sent == claim.0) {
                    state.sent.remove(index);
                    state.sent.push_back(now);
                }
            }
            if self.admit_shared(shared, self.interval).await {
                return;
            }
        }
        {
            let mut state = self.lock();
            let now = Instant::now();
            expire(&mut state.sent, now);
            if let Some(index) = state.sent.iter().position(|sent| *sent == claim.0) {
                state.sent.remove(index);
                state.sent.push_back(now);
                return;
            }
        }
        self.admit().await;
    }

    /// Waits until fewer than the limit left in the last second, then records this send.
    pub async fn admit(&self) {
        if let Some(shared) = self.shared.get()
            && self.admit_shared(shared, Duration::ZERO).await
        {
            return;
        }
        self.admit_local().await;
    }

    /// Waits until the database's window admits this send (`true`), or `false` when the
    /// database cannot answer (logged; the caller counts locally instead).
    async fn admit_shared(&self, shared: &SharedLimit, spacing: Duration) -> bool {
        loop {
            match shared.admit(self.per_second, spacing).await {
                Ok(None) => return true,
                Ok(Some(wait)) => tokio::time::sleep(wait).await,
                Err(error) => {
                    shared.unreadable(&error);
                    return false;
                }
            }
        }
    }

    /// The in-process window: waits until fewer than the limit left in the last second
    /// here, then records this send.
    async fn admit_local(&self) {
        loop {
            let wait_until = {
                let mut state = self.lock();
                let now = Instant::now();
                expire(&mut state.sent, now);
                if state.sent.len() < self.per_second {
                    state.sent.push_back(now);
                    return;
                }
                state.sent.front().map(|oldest| *oldest + WINDOW)
            };
            if let Some(at) = wait_until {
                tokio::time::sleep_until(at).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_immediate_turn_is_taken_only_when_free() {
        let limiter = RateLimiter::per_second(10);
        assert!(limiter.try_now().is_some());
        assert!(
            limiter.try_now().is_none(),
            "the next turn is an interval away"
        );
        tokio::time::advance(WINDOW / 10).await;
        assert!(limiter.try_now().is_some());
        limiter.reserve().await;
        assert!(limiter.try_now().is_none(), "a reserved turn is not free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_claimed_slot_counts_from_when_its_request_leaves() {
        let limiter = RateLimiter::per_second(2);
        let start = Instant::now();
        let claim = limiter.try_now().unwrap();
        // The claim's commit takes half a window; meanwhile another request is admitted.
        tokio::time::advance(WINDOW / 2).await;
        limiter.admit().await;
        limiter.sending(claim).await;
        // Both slots are now stamped half a window in: a third request waits until then
        // plus a whole window, not until a window after the claim was taken.
        limiter.admit().await;
        assert_eq!(start.elapsed(), WINDOW / 2 + WINDOW);
        // A claim whose slot expired before it was sent waits for a free slot.
        let late = RateLimiter::per_second(1);
        let claim = late.try_now().unwrap();
        tokio::time::advance(WINDOW).await;
        late.admit().await;
        let before = Instant::now();
        late.sending(claim).await;
        assert_eq!(before.elapsed(), WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_evenly_spaced() {
        let limiter = RateLimiter::per_second(10);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.reserve().await;
        }
        assert_eq!(start.elapsed(), WINDOW / 10 * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_admits_more_than_the_limit() {
        let limiter = RateLimiter::per_second(3);
        let start = Instant::now();
        let mut admitted = Vec::new();
        for _ in 0..7 {
            limiter.admit().await;
            admitted.push(start.elapsed());
        }
        let zero = Duration::ZERO;
        assert_eq!(
            admitted,
            vec![zero, zero, zero, WINDOW, WINDOW, WINDOW, WINDOW * 2]
        );
    }
}
