//! What `/readyz` checks: [`Readiness`], the list of [`ReadinessCheck`]s, and the report it
//! produces. The route lives in `routes::health`; the checks live with what they check (the
//! store's here, WeChat's in `wechat`), so nothing below the routes imports a route module.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

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

    /// `Ok` when ready; otherwise why not. The reason is logged, never sent to the client.
    async fn check(&self) -> Result<(), String>;
}

/// The checks behind `/readyz`, added with [`Readiness::with`]: `AppState::new` adds the
/// store's ([`StoreReachable`]) and WeChat's (`wechat::WechatReachable`).
/// Warnings ([`Readiness::with_warning`]) are reported on every probe without making the
/// proxy unready: a configuration that works but should be fixed (plain HTTP on the shop
/// network).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    warnings: Arc<Vec<String>>,
}

impl Readiness {
    /// These checks plus `check`.
    pub fn with(&self, check: Arc<dyn ReadinessCheck>) -> Readiness {
        let mut checks = self.checks.as_ref().clone();
        checks.push(check);
        Readiness {
            checks: Arc::new(checks),
            warnings: self.warnings.clone(),
        }
    }

    /// These checks and warnings plus `warning`, shown in every report.
    pub fn with_warning(&self, warning: impl Into<String>) -> Readiness {
        let mut warnings = self.warnings.as_ref().clone();
        warnings.push(warning.into());
        Readiness {
            checks: self.checks.clone(),
            warnings: Arc::new(warnings),
        }
    }

    /// Runs every check (each bounded by a timeout) and reports each by name.
    pub async fn run(&self) -> ReadinessReport {
        let mut checks = Vec::with_capacity(self.checks.len());
        for check in self.checks.iter() {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            if let Err(reason) = &outcome {
                tracing::warn!(check = check.name(), %reason, "not ready");
            }
            checks.push(CheckReport {
                name: check.name(),
                ok: outcome.is_ok(),
            });
        }
        ReadinessReport {
            ready: checks.iter().all(|check| check.ok),
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// Each check's result, in the order they were added.
    pub checks: Vec<CheckReport>,
    /// What works but should be fixed; absent when there is nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
}

/// The store answers a trivial query.
pub struct StoreReachable(pub Arc<dyn Store>);

#[async_trait]
impl ReadinessCheck for StoreReachable {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| {
            let mut report = String::new();
            // Writing into a String cannot fail.
            let _ = crate::error::error_chain_fmt(&error, &mut report);
            report
        })
    }
}
