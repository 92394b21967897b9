//! What `/readyz` checks: [`Readiness`], the list of [`ReadinessCheck`]s, and the report it
//! produces. The route lives in `routes::health`; the checks live with what they check (the
//! store's here, WeChat's in `wechat`), so nothing below the routes imports a route module.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use crate::config::StoreBackend;
use crate::store::Store;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One thing `/readyz` checks. Checks run on every probe and each is bounded by a 2 s
/// timeout, so they must be cheap: a check of a remote service remembers its last answer and
/// calls the service at most once per its own maximum age (WeChat's: 30 s, `wechat`), so
/// load balancers polling `/readyz` do not turn into traffic to that service.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short, stable name shown in the `/readyz` body (`store`, `wechat`).
    fn name(&self) -> &'static str;

    /// `Ok` when ready; otherwise why not. The reason is logged, never sent to the client
    /// (it may name hosts or carry a driver's message); the report gives only a check's
    /// time-out, in fixed words ([`CheckReport::reason`]).
    async fn check(&self) -> Result<(), String>;

    /// For a check that reaches a service on every probe (the database), what it reaches:
    /// the report then gives it as `backend`, with the check's latency. `None` (the default)
    /// for checks that answer from a remembered probe, whose latency would mean nothing.
    fn backend(&self) -> Option<&'static str> {
        None
    }
}

/// The checks behind `/readyz`, added with [`Readiness::with`]: `AppState::new` adds the
/// store's ([`StoreReachable`]) and WeChat's (`wechat::WechatReachable`), and names the
/// instance ([`Readiness::for_instance`]), so that a load balancer's view of several
/// proxies says which one answered.
/// Warnings ([`Readiness::with_warning`]) are reported on every probe without making the
/// proxy unready: a configuration that works but should be fixed (plain HTTP on the shop
/// network).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    warnings: Arc<Vec<String>>,
    instance: Option<Arc<str>>,
}

impl Readiness {
    /// No checks yet, reporting `instance` (`[server] instance`) as the proxy's name.
    pub fn for_instance(instance: &str) -> Readiness {
        Readiness {
            instance: Some(instance.into()),
            ..Readiness::default()
        }
    }

    /// These checks plus `check`.
    pub fn with(&self, check: Arc<dyn ReadinessCheck>) -> Readiness {
        let mut checks = self.checks.as_ref().clone();
        checks.push(check);
        Readiness {
            checks: Arc::new(checks),
            ..self.clone()
        }
    }

    /// These checks and warnings plus `warning`, shown in every report.
    pub fn with_warning(&self, warning: impl Into<String>) -> Readiness {
        let mut warnings = self.warnings.as_ref().clone();
        warnings.push(warning.into());
        Readiness {
            warnings: Arc::new(warnings),
            ..self.clone()
        }
    }

    /// Runs every check (each bounded by a timeout) and reports each by name.
    pub async fn run(&self) -> ReadinessReport {
        let mut checks = Vec::with_capacity(self.checks.len());
        for check in self.checks.iter() {
            let started = Instant::now();
            let mut timed_out = None;
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let reason = format!("no answer within {CHECK_TIMEOUT:?}");
                    timed_out = Some(reason.clone());
                    Err(reason)
                }
            };
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            if let Err(reason) = &outcome {
                tracing::warn!(check = check.name(), %reason, "not ready");
            }
            let backend = check.backend();
            checks.push(CheckReport {
                name: check.name(),
                ok: outcome.is_ok(),
                backend,
                // Rounded to a tenth of a millisecond: enough to read, stable to compare.
                latency_ms: backend.map(|_| (latency_ms * 10.0).round() / 10.0),
                reason: timed_out,
            });
        }
        ReadinessReport {
            ready: checks.iter().all(|check| check.ok),
            instance: self.instance.as_deref().map(str::to_owned),
            checks,
            warnings: self.warnings.as_ref().clone(),
        }
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|check| check.name()))
            .finish()
    }
}

/// The body of `/readyz`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// The proxy's name (`[server] instance`), when it was given one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Each check's result, in the order they were added.
    pub checks: Vec<CheckReport>,
    /// What works but should be fixed; absent when there is nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What the check reached, for a check of a service it reaches on every probe
    /// ([`ReadinessCheck::backend`]): `sqlite` or `postgresql` for the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<&'static str>,
    /// How long that check took, in milliseconds (to a tenth), beside `backend`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why a check failed, when it is safe to say: only "no answer within 2s" (the check's
    /// time-out). Other reasons are in the proxy's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The store answers a trivial query; the report names its back end and the query's
/// latency.
pub struct StoreReachable {
    store: Arc<dyn Store>,
    backend: StoreBackend,
}

impl StoreReachable {
    /// The check of `store`, which is a `backend` database.
    pub fn new(store: Arc<dyn Store>, backend: StoreBackend) -> StoreReachable {
        StoreReachable { store, backend }
    }
}

#[async_trait]
impl ReadinessCheck for StoreReachable {
    fn name(&self) -> &'static str {
        "store"
    }

    fn backend(&self) -> Option<&'static str> {
        Some(match self.backend {
            StoreBackend::Sqlite => "sqlite",
            StoreBackend::Postgres => "postgresql",
        })
    }

    async fn check(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|error| {
            let mut report = String::new();
            // Writing into a String cannot fail.
            let _ = crate::error::error_chain_fmt(&error, &mut report);
            report
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hangs;
    struct Fails;

    #[async_trait]
    impl ReadinessCheck for Hangs {
        fn name(&self) -> &'static str {
            "hangs"
        }
        async fn check(&self) -> Result<(), String> {
            std::future::pending().await
        }
    }

    #[async_trait]
    impl ReadinessCheck for Fails {
        fn name(&self) -> &'static str {
            "fails"
        }
        async fn check(&self) -> Result<(), String> {
            Err("connection to db.internal:5432 refused".to_owned())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_time_out_is_given_as_the_reason_and_any_other_failure_only_logged() {
        let readiness = Readiness::for_instance("till-a")
            .with(Arc::new(Hangs))
            .with(Arc::new(Fails));

        let report = readiness.run().await;

        assert!(!report.ready);
        assert!(!report.checks[0].ok);
        assert_eq!(
            report.checks[0].reason.as_deref(),
            Some("no answer within 2s")
        );
        assert!(!report.checks[1].ok);
        assert_eq!(report.checks[1].reason, None);
        let body = serde_json::to_string(&report).unwrap();
        assert!(!body.contains("db.internal"), "{body}");
    }
}
