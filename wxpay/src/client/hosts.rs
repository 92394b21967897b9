//! Domain fail-over between WeChat's primary and backup hosts (docs/wechat-pay.md §10).
//!
//! [`HostSelector`] restates the official SDK's `WXPayDomainSimpleImpl` as a pure state
//! machine: the caller passes the current [`Instant`] in, so the three-minute rules are tested
//! without sleeping. Only connection-level failures (DNS, connect) move traffic; read timeouts
//! and everything after the request was sent count as "other" errors, which barely weigh in
//! the backup's score and never make the primary "bad".

use std::time::{Duration, Instant};

/// How long traffic stays on the backup after a switch before being forced back to the
/// primary (with both hosts' counters reset).
pub const SWITCH_BACK_AFTER: Duration = Duration::from_secs(3 * 60);

/// The most connect failures (and, separately, DNS errors) a host may have and still be good.
const MAX_GOOD_FAILURES: u32 = 2;

/// One of the two hosts a client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// `api.mch.weixin.qq.com` (or the configured primary base URL).
    Primary,
    /// `api2.mch.weixin.qq.com` (or the configured backup base URL).
    Backup,
}

impl Host {
    /// The other host: where a request that could not be sent is resent.
    pub fn other(self) -> Host {
        match self {
            Host::Primary => Host::Backup,
            Host::Backup => Host::Primary,
        }
    }

    /// `primary` or `backup`, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Host::Primary => "primary",
            Host::Backup => "backup",
        }
    }
}

/// What one attempt against a host showed about that host's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostOutcome {
    /// An HTTP 200 reply arrived (whatever it said at the protocol or business layer).
    Success,
    /// The TCP or TLS connection could not be set up, or timed out while connecting.
    ConnectFailure,
    /// The host name did not resolve.
    DnsFailure,
    /// Anything else: read timeout, reset mid-request, an HTTP error status.
    Other,
}

/// Per-host counters, as in `WXPayDomainSimpleImpl.DomainStatics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Consecutive successes (saturates at 2, when the error counters are cleared).
    pub successes: u32,
    /// Connect failures and connect timeouts since the last reset.
    pub connect_failures: u32,
    /// DNS errors since the last reset.
    pub dns_errors: u32,
    /// Other errors since the last reset.
    pub other_errors: u32,
}

impl HostStats {
    /// Good while at most 2 connect failures and at most 2 DNS errors were seen.
    pub fn is_good(&self) -> bool {
        self.connect_failures <= MAX_GOOD_FAILURES && self.dns_errors <= MAX_GOOD_FAILURES
    }

    /// The badness score: `connect + 5 × dns + other / 4` (integer division, as in the SDK).
    pub fn score(&self) -> u32 {
        self.connect_failures + 5 * self.dns_errors + self.other_errors / 4
    }

    fn record(&mut self, outcome: HostOutcome) {
        match outcome {
            // Two successes in a row earn a clean slate; the SDK counts to 2 and then clears
            // the error counters on every further success.
            HostOutcome::Success => {
                if self.successes >= 2 {
                    self.connect_failures = 0;
                    self.dns_errors = 0;
                    self.other_errors = 0;
                } else {
                    self.successes += 1;
                }
            }
            HostOutcome::ConnectFailure => {
                self.successes = 0;
                self.dns_errors = 0;
                self.connect_failures += 1;
            }
            HostOutcome::DnsFailure => {
                self.successes = 0;
                self.dns_errors += 1;
            }
            HostOutcome::Other => {
                self.successes = 0;
                self.other_errors += 1;
            }
        }
    }
}

/// Chooses the host for each call and learns from the outcomes (docs/wechat-pay.md §10).
///
/// Rules, from the official SDK's `WXPayDomainSimpleImpl`:
/// - The primary is used while it is good (≤ 2 connect failures and ≤ 2 DNS errors).
/// - When it turns bad, traffic switches to the backup and the switch time is recorded.
/// - Within [`SWITCH_BACK_AFTER`] (configurable) of the switch, the backup stays in use if it is good or its
///   score is lower than the primary's; otherwise the primary is used.
/// - After that, traffic is forced back to the primary and both hosts' counters are reset.
///
/// As in the SDK, the switch time is only cleared by the forced switch back, so a primary
/// that recovers and fails again more than three minutes after the first switch is retried
/// at once (with fresh counters) rather than abandoned for another three minutes.
#[derive(Clone, Debug)]
pub struct HostSelector {
    primary: HostStats,
    backup: HostStats,
    switched_at: Option<Instant>,
    switch_back_after: Duration,
}

impl Default for HostSelector {
    fn default() -> Self {
        HostSelector::with_switch_back_after(SWITCH_BACK_AFTER)
    }
}

/// What [`HostSelector::choose`] must change besides returning a host.
enum Transition {
    None,
    StartSwitch,
    ForceBack,
}

impl HostSelector {
    /// A selector with clean counters, on the primary, switching back after
    /// [`SWITCH_BACK_AFTER`].
    pub fn new() -> Self {
        HostSelector::default()
    }

    /// A selector that forces traffic back to the primary `switch_back_after` a switch to
    /// the backup (tests shorten it; production keeps the SDK's three minutes).
    pub fn with_switch_back_after(switch_back_after: Duration) -> Self {
        HostSelector {
            primary: HostStats::default(),
            backup: HostStats::default(),
            switched_at: None,
            switch_back_after,
        }
    }

    /// The host for a call starting at `now`, recording a switch to the backup or a forced
    /// return to the primary when the rules say so.
    pub fn choose(&mut self, now: Instant) -> Host {
        let (host, transition) = self.decide(now);
        match transition {
            Transition::None => {}
            Transition::StartSwitch => self.switched_at = Some(now),
            Transition::ForceBack => {
                self.switched_at = None;
                self.primary = HostStats::default();
                self.backup = HostStats::default();
            }
        }
        host
    }

    /// The host [`choose`](Self::choose) would return at `now`, without changing anything.
    pub fn peek(&self, now: Instant) -> Host {
        self.decide(now).0
    }

    /// Records the outcome of an attempt against `host`.
    pub fn report(&mut self, host: Host, outcome: HostOutcome) {
        match host {
            Host::Primary => self.primary.record(outcome),
            Host::Backup => self.backup.record(outcome),
        }
    }

    /// The counters of `host`.
    pub fn stats(&self, host: Host) -> HostStats {
        match host {
            Host::Primary => self.primary,
            Host::Backup => self.backup,
        }
    }

    /// When traffic last switched to the backup, if a switch is in effect.
    pub fn switched_at(&self) -> Option<Instant> {
        self.switched_at
    }

    fn decide(&self, now: Instant) -> (Host, Transition) {
        if self.primary.is_good() {
            return (Host::Primary, Transition::None);
        }
        match self.switched_at {
            None => (Host::Backup, Transition::StartSwitch),
            Some(switched_at)
                if now.saturating_duration_since(switched_at) < self.switch_back_after =>
            {
                if self.backup.is_good() || self.backup.score() < self.primary.score() {
                    (Host::Backup, Transition::None)
                } else {
                    (Host::Primary, Transition::None)
                }
            }
            Some(_) => (Host::Primary, Transition::ForceBack),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(selector: &mut HostSelector, host: Host, outcome: HostOutcome, times: u32) {
        for _ in 0..times {
            selector.report(host, outcome);
        }
    }

    #[test]
    fn a_healthy_primary_is_always_chosen() {
        // Arrange
        let start = Instant::now();
        let mut selector = HostSelector::new();
        // Act: successes, two connect failures and many "other" errors keep it good.
        fail(&mut selector, Host::Primary, HostOutcome::Success, 5);
        fail(&mut selector, Host::Primary, HostOutcome::ConnectFailure, 2);
        fail(&mut selector, Host::Primary, HostOutcome::Other, 50);
        // Assert
        assert_eq!(selector.choose(start), Host::Primary);
        assert_eq!(selector.switched_at(), None);
    }

    #[test]
    fn three_connect_failures_switch_to_the_backup() {
        let start = Instant::now();
        let mut selector = HostSelector::new();
        fail(&mut selector, Host::Primary, HostOutcome::ConnectFailure, 3);
        assert_eq!(selector.peek(start), Host::Backup);
        assert_eq!(selector.switched_at(), None, "peek changes nothing");
        assert_eq!(selector.choose(start), Host::Backup);
        assert_eq!(selector.switched_at(), Some(start));
        // The backup stays in use while it is good, within three minutes.
        let later = start + Duration::from_secs(170);
        assert_eq!(selector.choose(later), Host::Backup);
        assert_eq!(selector.switched_at(), Some(start));
    }

    #[test]
    fn traffic_returns_to_the_primary_after_three_minutes_with_reset_counters() {
        let start = Instant::now();
        let mut selector = HostSelector::new();
        fail(&mut selector, Host::Primary, HostOutcome::ConnectFailure, 3);
        fail(&mut selector, Host::Backup, HostOutcome::Other, 3);
        assert_eq!(selector.choose(start), Host::Backup);
        assert_eq!(
            selector.choose(start + SWITCH_BACK_AFTER - Duration::from_millis(1)),
            Host::Backup
        );
        assert_eq!(selector.choose(start + SWITCH_BACK_AFTER), Host::Primary);
        assert_eq!(selector.stats(Host::Primary), HostStats::default());
        assert_eq!(selector.stats(Host::Backup), HostStats::default());
        assert_eq!(selector.switched_at(), None);
        assert_eq!(
            selector.choose(start + SWITCH_BACK_AFTER + Duration::from_secs(1)),
            Host::Primary
        );
    }

    #[test]
    fn a_bad_backup_is_kept_only_while_its_score_is_lower() {
        let start = Instant::now();
        let mut selector = HostSelector::new();
        // Primary: 3 connect failures → bad, score 3.
        fail(&mut selector, Host::Primary, HostOutcome::ConnectFailure, 3);
        assert_eq!(selector.choose(start), Host::Backup);
        // Backup: 3 connect failures → bad, score 3, not lower than 3 → primary.
        fail(&mut selector, Host::Backup, HostOutcome::ConnectFailure, 3);
        assert_eq!(selector.stats(Host::Backup).score(), 3);
        assert_eq!(
            selector.choose(start + Duration::from_secs(1)),
            Host::Primary
        );
        // The primary now also has a DNS error: its score is 3 (a connect failure clears
        // earlier DNS errors, but not later ones) + 5 = 8 > 3 → back to the backup.
        selector.report(Host::Primary, HostOutcome::DnsFailure);
        assert_eq!(selector.stats(Host::Primary).score(), 8);
        assert_eq!(
            selector.choose(start + Duration::from_secs(2)),
            Host::Backup
        );
    }

    #[test]
    fn dns_errors_weigh_five_times_a_connect_failure() {
        let start = Instant::now();
        let mut selector = HostSelector::new();
        // Three DNS errors make the primary bad: score 15.
        fail(&mut selector, Host::Primary, HostOutcome::DnsFailure, 3);
        assert!(!selector.stats(Host::Primary).is_good());
        assert_eq!(selector.stats(Host::Primary).score(), 15);
        assert_eq!(selector.choose(start), Host::Backup);
        // Backup: 14 connect failures (score 14 < 15) keeps it in use although it is bad …
        fail(&mut selector, Host::Backup, HostOutcome::ConnectFailure, 14);
        assert!(!selector.stats(Host::Backup).is_good());
        assert_eq!(
            selector.choose(start + Duration::from_secs(1)),
            Host::Backup
        );
        // … one more (15, not lower) does not.
        selector.report(Host::Backup, HostOutcome::ConnectFailure);
        assert_eq!(
            selector.choose(start + Duration::from_secs(2)),
            Host::Primary
        );
        // "Other" errors count a quarter, rounded down.
        let stats = HostStats {
            other_errors: 7,
            ..HostStats::default()
        };
        assert_eq!(stats.score(), 1);
    }

    #[test]
    fn successes_clear_error_counters_after_two_in_a_row() {
        let mut selector = HostSelector::new();
        fail(&mut selector, Host::Primary, HostOutcome::ConnectFailure, 2);
        fail(&mut selector, Host::Primary, HostOutcome::Success, 2);
        assert_eq!(selector.stats(Host::Primary).connect_failures, 2);
        selector.report(Host::Primary, HostOutcome::Success);
        assert_eq!(selector.stats(Host::Primary).connect_failures, 0);
        // A connect failure resets the DNS counter, a DNS error does not reset connects.
        selector.report(Host::Primary, HostOutcome::DnsFailure);
        selector.report(Host::Primary, HostOutcome::ConnectFailure);
        assert_eq!(selector.stats(Host::Primary).dns_errors, 0);
        selector.report(Host::Primary, HostOutcome::DnsFailure);
        assert_eq!(selector.stats(Host::Primary).connect_failures, 1);
        assert_eq!(selector.stats(Host::Primary).successes, 0);
    }

    #[test]
    fn other_host_flips() {
        assert_eq!(Host::Primary.other(), Host::Backup);
        assert_eq!(Host::Backup.other(), Host::Primary);
        assert_eq!(Host::Backup.name(), "backup");
    }
}
