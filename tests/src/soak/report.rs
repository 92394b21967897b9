//! The soak's figures and verdict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use paycode_proxy::store::PaymentRecord;
use wxpay::sim::OrderView;

use super::Figures;
use crate::reconcile::{Observation, Reconciliation};
use crate::secrets::SecretScanner;

/// What a finished soak saw.
pub(crate) struct Report<'a> {
    pub(crate) mode: &'static str,
    pub(crate) started: Instant,
    pub(crate) driven_for: Duration,
    pub(crate) drained_in: Duration,
    pub(crate) figures: &'a Figures,
    pub(crate) payments: &'a [PaymentRecord],
    pub(crate) orders: &'a [OrderView],
    pub(crate) calls: usize,
    pub(crate) reconciliation: &'a Reconciliation,
    pub(crate) scanner: &'a SecretScanner,
    pub(crate) observations: &'a [Observation],
}

impl Report<'_> {
    /// Prints the figures, the inconsistencies, leaks and anomalies, and the verdict; true
    /// when the soak passed.
    pub(crate) fn print(&self) -> bool {
        let Report {
            mode,
            started,
            driven_for,
            drained_in,
            figures,
            payments,
            orders,
            calls,
            reconciliation,
            scanner,
            observations,
        } = *self;
        let leaks = scanner.leaks();
        let anomalies = figures
            .anomalies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let faults = figures
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let faults_total: u64 = faults.values().sum();
        let (texts, bytes) = scanner.scanned();
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
        let row = |name: &str, value: String| println!("  {name:<58} {value:>6}");
        println!("\nsoak {mode}: figures");
        row("payments driven", count(&figures.payments));
        row("payments in the store", payments.len().to_string());
        for (state, count) in &reconciliation.by_state {
            row(&format!("  … {state}"), count.to_string());
        }
        row("WeChat orders", orders.len().to_string());
        row(
            "replayed attempts (same attempt_id)",
            count(&figures.replays),
        );
        row("cashier cancels", count(&figures.cashier_cancels));
        row(
            "customer confirms/cancels on the phone",
            count(&figures.customer_actions),
        );
        row("refunds requested", count(&figures.refunds_requested));
        row(
            "  … refused (over the payment)",
            count(&figures.refunds_refused),
        );
        for (state, count) in &reconciliation.refunds_by_state {
            row(&format!("  … stored {state}"), count.to_string());
        }
        row("proxy kills (SIGKILL) survived", count(&figures.kills));
        let kills = figures.kills.load(Ordering::Relaxed).max(1);
        row(
            "  … mean time to kill and reap (ms)",
            (figures.kill_ms.load(Ordering::Relaxed) / kills).to_string(),
        );
        row(
            "  … mean time to restart until listening (ms)",
            (figures.restart_ms.load(Ordering::Relaxed) / kills).to_string(),
        );
        row("faults injected", faults_total.to_string());
        for (kind, count) in &faults {
            row(&format!("  … {kind}"), count.to_string());
        }
        row("primary-host outages", count(&figures.outages));
        row("WeChat calls received", calls.to_string());
        row("API responses received", count(&figures.responses));
        row(
            "requests that met a dead proxy (retried)",
            count(&figures.transport_errors),
        );
        row(
            "texts scanned for secrets (responses + logs)",
            texts.to_string(),
        );
        row("  … bytes", bytes.to_string());
        row(
            "driving time (s)",
            format!("{:.1}", driven_for.as_secs_f64()),
        );
        row("drain time (s)", format!("{:.1}", drained_in.as_secs_f64()));
        row(
            "cancelled, charged and returned, but the proxy never saw the charge",
            reconciliation.returned_unseen.len().to_string(),
        );
        for case in reconciliation.returned_unseen.iter().take(5) {
            println!("    (note) {case}");
        }
        println!("\nsoak {mode}: inconsistencies (all must be 0)");
        print!("{}", reconciliation.table());
        row(
            "secret leaks (API key, certificate, token, payment code)",
            leaks.len().to_string(),
        );
        for leak in leaks.iter().take(20) {
            println!(
                "  ✗ leak of a {} in {}: {}",
                leak.what, leak.source, leak.line
            );
        }
        row(
            "unexpected API answers (5xx, refused valid requests)",
            anomalies.len().to_string(),
        );
        for anomaly in anomalies.iter().take(20) {
            println!("  ✗ {anomaly}");
        }
        let failures = reconciliation.total() + leaks.len() + anomalies.len();
        let undriven = observations
            .iter()
            .filter(|o| o.payment_ids.is_empty())
            .count();
        if undriven > 0 {
            row("attempts the proxy never answered", undriven.to_string());
        }
        println!(
            "\nsoak {mode}: {} in {:.1} s — {} payments, {} kills, {} faults, {} inconsistencies, {} leaks",
            if failures + undriven == 0 {
                "PASSED"
            } else {
                "FAILED"
            },
            started.elapsed().as_secs_f64(),
            payments.len(),
            figures.kills.load(Ordering::Relaxed),
            faults_total,
            reconciliation.total(),
            leaks.len(),
        );
        failures + undriven == 0
    }
}
