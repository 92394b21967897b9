//! The proxy's Prometheus metrics, kept in memory and rendered as text at `/metrics`.
//!
//! Few and fixed, so a small hand-written registry is enough: WeChat calls by API and
//! outcome with a latency histogram, and payment state transitions. Gauges that describe the
//! present (payments by state, pending work, the books' open mismatches and unreconciled
//! days) are computed when scraped. Payments by state and the books' gauges count the whole
//! database, so every proxy on one PostgreSQL database reports the same numbers: aggregate
//! them with `max`, not `sum` (docs/chains.md §2.2). The counters, the histogram and the
//! engine's gauges (scheduled, in flight) are this proxy's own and add up.
//!
//! Every sample carries the proxy's name as `instance="NAME"` ([`Metrics::for_instance`]),
//! so that the series of several proxies on one database stay apart wherever they are
//! gathered (a Prometheus server adds its own `instance` target label: its configuration
//! then keeps ours with `honor_labels: true`, docs/chains.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::CloseState;
use paycode_api::PaymentState;
use wxpay::CallOutcome;
use wxpay::codes::Api;

/// Upper bounds of the WeChat call latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: BTreeMap<(&'static str, CallOutcome), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    transitions: BTreeMap<&'static str, u64>,
    closes: BTreeMap<&'static str, u64>,
}

/// The registry. Cheap to update from many tasks (one short lock per event).
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// The `instance` label of every sample; none when empty.
    instance: String,
}

/// What is true now, gathered when `/metrics` is scraped.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Stored payments by state.
    pub payments_by_state: Vec<(PaymentState, u64)>,
    /// Payments and refunds the engine has scheduled work for.
    pub scheduled: usize,
    /// WeChat calls in flight.
    pub in_flight: usize,
    /// The books: open mismatches per configured account (by name), every account listed.
    pub books_open_mismatches: Vec<(String, u64)>,
    /// The books: stored days of the last month (any account) not reconciled yet (waiting
    /// for the bill, or failed).
    pub books_days_unreconciled: u64,
}

impl Metrics {
    /// A registry whose every sample carries `instance="NAME"` (`[server] instance`: letters,
    /// digits, `.`, `_` and `-`, so the value needs no escaping).
    pub fn for_instance(name: &str) -> Metrics {
        Metrics {
            instance: name.to_owned(),
            ..Metrics::default()
        }
    }

    /// `{name="value",…,instance="NAME"}` for a sample with `labels`, or nothing for a
    /// sample without labels in a registry without an instance.
    fn labels(&self, labels: &[(&str, &str)]) -> String {
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(name, value)| format!("{name}=\"{value}\""))
            .collect();
        if !self.instance.is_empty() {
            pairs.push(format!("instance=\"{}\"", self.instance));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", pairs.join(","))
        }
    }

    /// Records one WeChat call.
    pub fn observe_call(&self, api: Api, outcome: CallOutcome, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut counters = self.lock();
        *counters.calls.entry((api.name(), outcome)).or_default() += 1;
        let histogram = counters.latency.entry(api.name()).or_default();
        histogram.count += 1;
        histogram.sum_seconds += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Records a payment entering `state`.
    pub fn observe_transition(&self, state: PaymentState) {
        *self.lock().transitions.entry(state.as_str()).or_default() += 1;
    }

    /// Records a settled payment's order entering close state `close` at WeChat.
    pub fn observe_close(&self, close: CloseState) {
        *self.lock().closes.entry(close.as_str()).or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters, so a poisoned lock is simply used.
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let counters = self.lock();
        let mut out = String::new();
        out.push_str(
            "# HELP paycode_payments Stored payments by state, in the whole database (every proxy on it reports the same: aggregate with max, not sum).\n# TYPE paycode_payments gauge\n",
        );
        for state in PaymentState::ALL {
            let count = snapshot
                .payments_by_state
                .iter()
                .find(|(stored, _)| *stored == state)
                .map_or(0, |(_, count)| *count);
            let labels = self.labels(&[("state", state.as_str())]);
            let _ = writeln!(out, "paycode_payments{labels} {count}");
        }
        out.push_str(
            "# HELP paycode_payment_transitions_total Payments that entered each state since start.\n\
             # TYPE paycode_payment_transitions_total counter\n",
        );
        for state in PaymentState::ALL {
            let count = counters
                .transitions
                .get(state.as_str())
                .copied()
                .unwrap_or(0);
            let labels = self.labels(&[("state", state.as_str())]);
            let _ = writeln!(out, "paycode_payment_transitions_total{labels} {count}");
        }
        out.push_str(
            "# HELP paycode_order_closes_total Orders of failed payments closed at WeChat by reverse, by close state (pending, closed, needs_attention), since start.\n\
             # TYPE paycode_order_closes_total counter\n",
        );
        for close in [
            CloseState::Pending,
            CloseState::Closed,
            CloseState::NeedsAttention,
        ] {
            let count = counters.closes.get(close.as_str()).copied().unwrap_or(0);
            let labels = self.labels(&[("close", close.as_str())]);
            let _ = writeln!(out, "paycode_order_closes_total{labels} {count}");
        }
        let _ = write!(
            out,
            "# HELP paycode_engine_scheduled Payments and refunds with a WeChat call scheduled on this proxy.\n\
             # TYPE paycode_engine_scheduled gauge\npaycode_engine_scheduled{labels} {}\n\
             # HELP paycode_engine_in_flight WeChat calls in flight.\n\
             # TYPE paycode_engine_in_flight gauge\npaycode_engine_in_flight{labels} {}\n",
            snapshot.scheduled,
            snapshot.in_flight,
            labels = self.labels(&[]),
        );
        out.push_str(
            "# HELP paycode_books_open_mismatches Reconciliation mismatches nobody has settled, by account, in the whole database (aggregate with max, not sum).\n\
             # TYPE paycode_books_open_mismatches gauge\n",
        );
        for (account, count) in &snapshot.books_open_mismatches {
            let labels = self.labels(&[("account", account)]);
            let _ = writeln!(out, "paycode_books_open_mismatches{labels} {count}");
        }
        let _ = write!(
            out,
            "# HELP paycode_books_days_unreconciled Days of the last month whose reconciliation waits for the bill or failed, in the whole database (aggregate with max, not sum).\n\
             # TYPE paycode_books_days_unreconciled gauge\npaycode_books_days_unreconciled{labels} {}\n",
            snapshot.books_days_unreconciled,
            labels = self.labels(&[]),
        );
        out.push_str(
            "# HELP paycode_wechat_calls_total WeChat Pay calls by API and outcome.\n\
             # TYPE paycode_wechat_calls_total counter\n",
        );
        for ((api, outcome), count) in &counters.calls {
            let labels = self.labels(&[("api", api), ("outcome", outcome.as_str())]);
            let _ = writeln!(out, "paycode_wechat_calls_total{labels} {count}");
        }
        out.push_str(
            "# HELP paycode_wechat_call_seconds WeChat Pay call latency.\n\
             # TYPE paycode_wechat_call_seconds histogram\n",
        );
        for (api, histogram) in &counters.latency {
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let labels = self.labels(&[("api", api), ("le", &bound.to_string())]);
                let _ = writeln!(out, "paycode_wechat_call_seconds_bucket{labels} {count}");
            }
            let _ = write!(
                out,
                "paycode_wechat_call_seconds_bucket{infinity} {count}\n\
                 paycode_wechat_call_seconds_sum{labels} {sum}\n\
                 paycode_wechat_call_seconds_count{labels} {count}\n",
                infinity = self.labels(&[("api", api), ("le", "+Inf")]),
                labels = self.labels(&[("api", api)]),
                count = histogram.count,
                sum = histogram.sum_seconds,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::default();
        metrics.observe_call(
            Api::Micropay,
            CallOutcome::Success,
            Duration::from_millis(20),
        );
        metrics.observe_call(Api::Micropay, CallOutcome::Unknown, Duration::from_secs(11));
        metrics.observe_transition(PaymentState::Paid);
        let text = metrics.render(&Snapshot {
            payments_by_state: vec![(PaymentState::Paid, 3)],
            scheduled: 2,
            in_flight: 1,
            books_open_mismatches: vec![("default".into(), 4), ("vendor".into(), 0)],
            books_days_unreconciled: 1,
        });
        assert!(
            text.contains("paycode_payments{state=\"paid\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("paycode_payments{state=\"failed\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("paycode_payment_transitions_total{state=\"paid\"} 1\n"));
        assert!(
            text.contains("paycode_wechat_calls_total{api=\"micropay\",outcome=\"success\"} 1\n")
        );
        assert!(
            text.contains("paycode_wechat_call_seconds_bucket{api=\"micropay\",le=\"0.025\"} 1\n")
        );
        assert!(
            text.contains("paycode_wechat_call_seconds_bucket{api=\"micropay\",le=\"10\"} 1\n")
        );
        assert!(
            text.contains("paycode_wechat_call_seconds_bucket{api=\"micropay\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("paycode_wechat_call_seconds_count{api=\"micropay\"} 2\n"));
        assert!(text.contains("paycode_engine_scheduled 2\n"));
        assert!(text.contains("paycode_books_open_mismatches{account=\"default\"} 4\n"));
        assert!(text.contains("paycode_books_open_mismatches{account=\"vendor\"} 0\n"));
        assert!(text.contains("paycode_books_days_unreconciled 1\n"));
    }

    #[test]
    fn every_sample_of_a_named_instance_carries_its_name() {
        let metrics = Metrics::for_instance("till-2");
        metrics.observe_call(
            Api::Micropay,
            CallOutcome::Success,
            Duration::from_millis(20),
        );
        metrics.observe_transition(PaymentState::Paid);
        metrics.observe_close(CloseState::Closed);
        let text = metrics.render(&Snapshot::default());
        let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        assert!(samples.len() > 20, "{text}");
        for sample in &samples {
            assert!(sample.contains("instance=\"till-2\"}"), "{sample}");
        }
        assert!(text.contains("paycode_payments{state=\"paid\",instance=\"till-2\"} 0\n"));
        assert!(text.contains("paycode_engine_in_flight{instance=\"till-2\"} 0\n"));
        assert!(text.contains(
            "paycode_wechat_call_seconds_bucket{api=\"micropay\",le=\"+Inf\",instance=\"till-2\"} 1\n"
        ));
    }
}
