//! Simulated time: `now() = start + real elapsed × scale + manual advances`.
//!
//! Every time-dependent state in the simulator (the 45 s auto-revoke, a customer confirming the
//! password after N seconds, refunds finishing, the 7-day reverse window) is derived from this
//! clock when it is read, so speeding the clock up or jumping it forward changes all of them at
//! once and no timer task per order is needed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use crate::time::{beijing, parse_wechat_time};

/// The simulator's clock. Cheap to read, safe to share between threads.
#[derive(Debug)]
pub struct SimClock {
    anchor: Mutex<Anchor>,
}

/// The clock's state: at real instant `real`, simulated time was `simulated`, and since then it
/// runs `scale` times as fast as real time.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    real: Instant,
    simulated: DateTime<Utc>,
    scale: f64,
}

impl SimClock {
    /// A clock that starts at `start` and runs `scale` times as fast as real time.
    pub fn new(start: DateTime<Utc>, scale: f64) -> SimClock {
        SimClock {
            anchor: Mutex::new(Anchor {
                real: Instant::now(),
                simulated: start,
                scale: sanitize_scale(scale),
            }),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        let anchor = *self.lock();
        simulated_at(anchor, Instant::now())
    }

    /// Jumps simulated time forward by `by`. Simulated time never passes the start of the
    /// year 9999, so date arithmetic on it (expiry windows, refund delays) cannot overflow.
    pub fn advance(&self, by: Duration) {
        let mut anchor = self.lock();
        anchor.simulated = add_saturating(anchor.simulated, by);
    }

    /// Makes simulated time run `scale` times as fast as real time from now on (1.0 = real
    /// time, 1000.0 = 45 simulated seconds in 45 ms). Values that are not finite and positive
    /// are replaced by 1.0; values above 1 000 000 are capped.
    pub fn set_scale(&self, scale: f64) {
        let mut anchor = self.lock();
        let real = Instant::now();
        // Re-anchor first so the time already elapsed keeps the old rate.
        anchor.simulated = simulated_at(*anchor, real);
        anchor.real = real;
        anchor.scale = sanitize_scale(scale);
    }

    /// The current time scale.
    pub fn scale(&self) -> f64 {
        self.lock().scale
    }

    /// How much real time passes while `simulated` passes on this clock (at the current scale).
    pub fn real_duration(&self, simulated: Duration) -> Duration {
        Duration::try_from_secs_f64(simulated.as_secs_f64() / self.scale()).unwrap_or(Duration::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Anchor> {
        // The anchor is plain data that is always left consistent, so a panic elsewhere while
        // the lock was held cannot have corrupted it.
        self.anchor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn simulated_at(anchor: Anchor, real: Instant) -> DateTime<Utc> {
    let real_elapsed = real.saturating_duration_since(anchor.real).as_secs_f64();
    let elapsed = Duration::try_from_secs_f64(real_elapsed * anchor.scale).unwrap_or(Duration::MAX);
    add_saturating(anchor.simulated, elapsed)
}

/// The latest simulated time: the start of 9999, far from chrono's limits.
fn latest() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(9999, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `time + by`, saturating at the latest simulated time.
pub(crate) fn add_saturating(time: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| time.checked_add_signed(by))
        .map_or_else(latest, |later| later.min(latest()))
}

/// The fastest supported scale: a million simulated seconds per real second.
const MAX_SCALE: f64 = 1e6;

fn sanitize_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale.min(MAX_SCALE)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_time_forward() {
        // Arrange
        let start = Utc::now();
        let clock = SimClock::new(start, 1.0);

        // Act
        clock.advance(Duration::from_secs(7 * 24 * 3600));

        // Assert
        let elapsed = clock.now() - start;
        assert!(elapsed >= chrono::Duration::days(7));
        assert!(elapsed < chrono::Duration::days(7) + chrono::Duration::seconds(5));
    }

    #[test]
    fn scale_speeds_time_up() {
        let start = Utc::now();
        let clock = SimClock::new(start, 1.0);
        clock.set_scale(10_000.0);
        std::thread::sleep(Duration::from_millis(10));
        assert!(clock.now() - start >= chrono::Duration::seconds(90));
        assert_eq!(
            clock.real_duration(Duration::from_secs(10)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn bad_scales_fall_back_to_real_time() {
        let clock = SimClock::new(Utc::now(), f64::NAN);
        assert_eq!(clock.scale(), 1.0);
        clock.set_scale(-3.0);
        assert_eq!(clock.scale(), 1.0);
        clock.set_scale(1e300);
        assert_eq!(clock.scale(), MAX_SCALE);
    }

    #[test]
    fn huge_advances_saturate_instead_of_overflowing() {
        let clock = SimClock::new(Utc::now(), 1.0);
        clock.advance(Duration::MAX);
        clock.advance(Duration::from_secs(u64::MAX / 2));
        assert_eq!(clock.now(), latest());
    }
}
