//! The per-terminal limit on failed PIN checks (a wrong PIN, an unknown manager): fixed
//! one-minute windows, counted in this process. The lockout after repeated failures
//! (counted in the database) protects each manager's PIN whatever the number of proxies;
//! this limit keeps one terminal from trying many managers' PINs quickly. Right PINs are
//! not counted: a manager working through the back office, one PIN per action, is never
//! slowed down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The length of a window.
const WINDOW: Duration = Duration::from_secs(60);

/// At most `per_minute` failed PIN checks per terminal per minute.
#[derive(Debug)]
pub struct CheckLimiter {
    per_minute: u32,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    counts: HashMap<String, u32>,
}

impl CheckLimiter {
    /// A limiter allowing `per_minute` checks per terminal.
    pub fn new(per_minute: u32) -> CheckLimiter {
        CheckLimiter {
            per_minute,
            window: Mutex::new(Window::default()),
        }
    }

    /// Whether `terminal_id` may check a PIN at `now`: `Err` with the seconds until it may,
    /// once it has failed `per_minute` checks in the current window.
    pub fn admit(&self, terminal_id: &str, now: Instant) -> Result<(), u64> {
        let window = self.window_at(now);
        let failed = window.counts.get(terminal_id).copied().unwrap_or(0);
        if failed >= self.per_minute {
            let started = window.started.unwrap_or(now);
            let left = WINDOW.saturating_sub(now.duration_since(started));
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }

    /// Counts a failed check by `terminal_id` at `now`.
    pub fn failed(&self, terminal_id: &str, now: Instant) {
        *self
            .window_at(now)
            .counts
            .entry(terminal_id.to_owned())
            .or_insert(0) += 1;
    }

    /// The current window, a fresh one once a minute has passed.
    fn window_at(&self, now: Instant) -> std::sync::MutexGuard<'_, Window> {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window
            .started
            .is_none_or(|started| now.duration_since(started) >= WINDOW)
        {
            window.started = Some(now);
            window.counts.clear();
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_count_and_each_terminal_has_its_own_per_minute() {
        let limiter = CheckLimiter::new(2);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(
                limiter.admit("a", start).is_ok(),
                "right PINs are not counted"
            );
        }
        limiter.failed("a", start);
        limiter.failed("a", start);
        assert_eq!(limiter.admit("a", start + Duration::from_secs(20)), Err(40));
        assert!(limiter.admit("b", start).is_ok());
        assert!(limiter.admit("a", start + Duration::from_secs(61)).is_ok());
    }
}
