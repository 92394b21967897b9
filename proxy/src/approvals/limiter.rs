//! The per-terminal limit on PIN checks: fixed one-minute windows, counted in this process.
//! The lockout after repeated failures (counted in the database) protects each manager's
//! PIN whatever the number of proxies; this limit keeps one terminal from trying many
//! managers' PINs quickly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The length of a window.
const WINDOW: Duration = Duration::from_secs(60);

/// At most `per_minute` PIN checks per terminal per minute.
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

    /// Counts one check by `terminal_id` at `now`, or returns the seconds until the
    /// terminal may check again.
    pub fn admit(&self, terminal_id: &str, now: Instant) -> Result<(), u64> {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = match window.started {
            Some(started) if now.duration_since(started) < WINDOW => started,
            _ => {
                window.started = Some(now);
                window.counts.clear();
                now
            }
        };
        let count = window.counts.entry(terminal_id.to_owned()).or_insert(0);
        if *count >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(started));
            return Err(left.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_terminal_has_its_own_count_per_minute() {
        let limiter = CheckLimiter::new(2);
        let start = Instant::now();
        assert!(limiter.admit("a", start).is_ok());
        assert!(limiter.admit("a", start).is_ok());
        assert_eq!(limiter.admit("a", start + Duration::from_secs(20)), Err(40));
        assert!(limiter.admit("b", start).is_ok());
        assert!(limiter.admit("a", start + Duration::from_secs(61)).is_ok());
    }
}
