//! The micropay rate limit: WeChat accepts 30 micropay calls per second per merchant.
//! Calls beyond the rate wait their turn (a queue, not a refusal), spaced evenly, with a
//! burst of up to one second's worth allowed after a quiet period.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A generic cell rate limiter (the "virtual scheduling" form of a token bucket).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: Duration,
    /// The theoretical arrival time of the next call.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// At most `per_second` calls per second on average (at least 1).
    pub fn per_second(per_second: u32) -> RateLimiter {
        let interval = Duration::from_secs(1) / per_second.max(1);
        RateLimiter {
            interval,
            burst: Duration::from_secs(1).saturating_sub(interval),
            next: Mutex::new(None),
        }
    }

    /// Waits until a call may be made, and takes its slot.
    pub async fn acquire(&self) {
        let start_at = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let theoretical = next.map_or(now, |next| next.max(now));
            *next = Some(theoretical + self.interval);
            // Calls may run ahead of the schedule by up to `burst`.
            theoretical.checked_sub(self.burst).unwrap_or(now).max(now)
        };
        tokio::time::sleep_until(start_at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_one_seconds_burst_then_spaces_calls_evenly() {
        let limiter = RateLimiter::per_second(10);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "a burst of 10 is immediate"
        );
        limiter.acquire().await;
        limiter.acquire().await;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(190) && elapsed < Duration::from_millis(210),
            "{elapsed:?}"
        );
    }
}
