//! The soak's chaos: the proxy process killed with SIGKILL and restarted ([`Supervisor`]),
//! and faults and primary-host outages injected into the simulator ([`inject_faults`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wxpay::codes::Api;
use wxpay::sim::Fault;

use super::{Figures, LOG_FILTER, SimRef};
use crate::binary::{CrashRig, ProxyProcess};
use crate::secrets::SecretScanner;

/// The proxy process, replaced at every kill.
pub(crate) struct Supervisor {
    pub(crate) rig: Arc<CrashRig>,
    pub(crate) process: tokio::sync::Mutex<Option<ProxyProcess>>,
    pub(crate) scanner: Arc<SecretScanner>,
    pub(crate) runs: AtomicU64,
}

impl Supervisor {
    pub(crate) async fn start(&self) {
        let process = self.rig.spawn_with_log_filter(LOG_FILTER).await;
        *self.process.lock().await = Some(process);
    }

    /// SIGKILLs the running process and scans everything it logged.
    pub(crate) async fn kill(&self) {
        let process = self.process.lock().await.take();
        if let Some(process) = process {
            let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
            let log = tokio::task::spawn_blocking(move || process.kill_and_collect_log())
                .await
                .unwrap_or_default();
            self.scanner.scan(&format!("proxy log, run {run}"), &log);
        }
    }
}

/// Queues faults so that about `rate` of the calls to every endpoint meet one, and takes the
/// primary host down now and then, until `stop`.
pub(crate) async fn inject_faults(
    sim: Arc<SimRef>,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
    figures: Arc<Figures>,
    timeout: Duration,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let apis = [
        Api::Micropay,
        Api::OrderQuery,
        Api::Reverse,
        Api::Refund,
        Api::RefundQuery,
    ];
    let mut injected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut next_outage = Instant::now() + Duration::from_millis(rng.gen_range(500..2000));
    let mut outage_ends: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let pending = sim.pending_faults();
        for api in apis {
            let calls = sim.call_count(api) as f64;
            let done = injected.entry(api.name()).or_insert(0);
            let queued = pending.iter().any(|fault| fault.endpoint == api.name());
            if !queued && (*done as f64) < rate * (calls + 1.0) {
                let delay_ms = timeout.as_millis() as u64 + 300;
                let fault = match rng.gen_range(0..7) {
                    0 => Fault::Delay { ms: delay_ms },
                    1 => Fault::DropBeforeProcessing,
                    2 => Fault::DropAfterCommit,
                    3 => Fault::ConnectionReset,
                    4 => Fault::Html5xx {
                        status: [500, 502, 503, 504][rng.gen_range(0..4)],
                    },
                    5 => Fault::GarbageXml,
                    _ => Fault::BadSignature,
                };
                sim.inject_fault(api, fault, 1);
                *done += 1;
                let kind = serde_json::to_value(fault)
                    .ok()
                    .and_then(|value| value["kind"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                *figures
                    .faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(format!("{} {kind}", api.name()))
                    .or_insert(0) += 1;
            }
        }
        let now = Instant::now();
        match outage_ends {
            Some(end) if now >= end => {
                sim.set_primary_outage(false);
                outage_ends = None;
                next_outage = now + Duration::from_millis(rng.gen_range(500..2500));
            }
            None if now >= next_outage => {
                sim.set_primary_outage(true);
                figures.outages.fetch_add(1, Ordering::Relaxed);
                outage_ends = Some(now + Duration::from_millis(rng.gen_range(100..500)));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.set_primary_outage(false);
}
