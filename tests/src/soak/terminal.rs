//! The soak's cashier terminals: each drives its share of the payments through the API,
//! retrying through kills, and records what it saw for the reconciliation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use paycode_api::{Payment, PaymentState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::plan::{Plan, pick_plan};
use super::{Figures, SimRef};
use crate::cashier::{Cashier, new_attempt_id};
use crate::reconcile::Observation;
use crate::secrets::SecretScanner;

/// How many approvals one soak refund asks for at most (each kill mid-request may use one
/// up).
const MAX_APPROVALS_PER_REFUND: usize = 5;

/// One terminal's HTTP clients with its shared scanner and counters.
pub(crate) struct Terminal {
    pub(crate) name: String,
    /// The terminal's token at every proxy it may reach (one proxy, or every instance of a
    /// chain): each request goes to one of them at random.
    pub(crate) cashiers: Vec<Cashier>,
    pub(crate) scanner: Arc<SecretScanner>,
    pub(crate) figures: Arc<Figures>,
    pub(crate) stop_at: Instant,
}

impl Terminal {
    /// Sends until the proxy answers (it may be down between a kill and a restart), scanning
    /// the answer for secrets; `None` once the soak's time is up.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<(StatusCode, Value)> {
        self.call_approved(method, path, body, None).await
    }

    /// A refund as at the counter: the terminal's manager approves it (`POST /approvals`,
    /// retried through kills like any call), then the refund goes with the approval. A
    /// one-use approval may be used up by a request the proxy was killed in the middle of
    /// (before the refund was stored): the manager is then asked again, as at a real
    /// counter, a few times at most.
    pub(crate) async fn refund(&self, path: &str, body: &Value) -> Option<(StatusCode, Value)> {
        let approval = self.cashiers[0]
            .approval_body("refund")
            .expect("soak terminals have a manager");
        let mut answer = None;
        for _ in 0..MAX_APPROVALS_PER_REFUND {
            let (status, reply) = self
                .call(Method::POST, "/approvals", Some(&approval))
                .await?;
            if status != StatusCode::CREATED {
                self.figures
                    .anomaly(format!("{} POST /approvals → {status}: {reply}", self.name));
                return Some((status, reply));
            }
            let token = reply["approval"].as_str().unwrap_or_default().to_owned();
            let (status, reply) = self
                .call_approved(Method::POST, path, Some(body), Some(&token))
                .await?;
            let used_up = status == StatusCode::FORBIDDEN && reply["code"] == "APPROVAL_REQUIRED";
            answer = Some((status, reply));
            if !used_up {
                break;
            }
        }
        answer
    }

    async fn call_approved(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        approval: Option<&str>,
    ) -> Option<(StatusCode, Value)> {
        loop {
            if Instant::now() > self.stop_at {
                return None;
            }
            let cashier = &self.cashiers[rand::thread_rng().gen_range(0..self.cashiers.len())];
            match cashier
                .try_request_approved(
                    method.clone(),
                    path,
                    body,
                    approval,
                    Duration::from_secs(10),
                )
                .await
            {
                Ok((reply, text)) => {
                    self.figures.responses.fetch_add(1, Ordering::Relaxed);
                    let source = format!("{} {method} {path} → {}", self.name, reply.status);
                    self.scanner.scan(&source, &text);
                    if reply.status.is_server_error() {
                        // The proxy answers 503 while it starts; anything else is a bug.
                        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                            self.figures.anomaly(format!("{source}: {text}"));
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    return Some((reply.status, reply.body));
                }
                Err(_) => {
                    self.figures
                        .transport_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
        }
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> Option<T> {
    serde_json::from_value(body.clone()).ok()
}

/// Drives `count` payments from one terminal.
pub(crate) async fn drive_terminal(
    terminal: Terminal,
    sim: Arc<SimRef>,
    count: usize,
    seed: u64,
) -> Vec<Observation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut observations = Vec::new();
    for _ in 0..count {
        if Instant::now() > terminal.stop_at {
            break;
        }
        let plan = pick_plan(&mut rng);
        let code = sim.auth_code(plan.behaviour());
        terminal.scanner.add_code(&code);
        let amount: u64 = rng.gen_range(1..=20_000);
        let mut observation = Observation {
            attempt_id: new_attempt_id(),
            label: plan.label(),
            ..Observation::default()
        };
        let body = json!({
            "attempt_id": observation.attempt_id,
            "amount_fen": amount,
            "auth_code": code,
        });
        terminal.figures.payments.fetch_add(1, Ordering::Relaxed);
        let taken = Instant::now();
        let Some((status, reply)) = terminal.call(Method::POST, "/payments", Some(&body)).await
        else {
            observations.push(observation);
            break;
        };
        let Some(mut payment) = parse::<Payment>(&reply).filter(|_| status.is_success()) else {
            terminal.figures.anomaly(format!(
                "{} POST /payments ({}) → {status}: {reply}",
                terminal.name, observation.label
            ));
            observations.push(observation);
            continue;
        };
        observation.payment_ids.insert(payment.id.clone());
        // A cashier who taps twice (or an app that retries): the same payment, never another.
        if rng.gen_bool(0.15) {
            terminal.figures.replays.fetch_add(1, Ordering::Relaxed);
            if let Some((status, reply)) =
                terminal.call(Method::POST, "/payments", Some(&body)).await
            {
                match parse::<Payment>(&reply).filter(|_| status.is_success()) {
                    Some(again) => {
                        observation.payment_ids.insert(again.id);
                    }
                    None => terminal.figures.anomaly(format!(
                        "{} replay of {} → {status}: {reply}",
                        terminal.name, observation.attempt_id
                    )),
                }
            }
        }

        // What the people do while it is pending.
        let act_after = Duration::from_millis(rng.gen_range(0..250));
        let random_cashier_cancel = rng.gen_bool(0.03);
        let path = format!("/payments/{}", payment.id);
        match plan {
            Plan::Confirm | Plan::CustomerCancels => {
                let sim = sim.clone();
                let out_trade_no = payment.out_trade_no.clone();
                let figures = terminal.figures.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(act_after).await;
                    // The order exists once micropay has reached WeChat; try for a while.
                    for _ in 0..50 {
                        let done = if matches!(plan, Plan::Confirm) {
                            sim.confirm_password(&out_trade_no)
                        } else {
                            sim.cancel_password(&out_trade_no)
                        };
                        if done.is_ok() {
                            figures.customer_actions.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            }
            _ => {}
        }
        let cancel_at = (matches!(plan, Plan::CashierCancels) || random_cashier_cancel)
            .then(|| Instant::now() + act_after);

        // The cashier's screen: long-poll until settled.
        let wait_until = Instant::now() + Duration::from_secs(20);
        let mut cancelled = false;
        while !payment.state.is_settled() && Instant::now() < wait_until {
            if let Some(at) = cancel_at.filter(|_| !cancelled) {
                if Instant::now() >= at {
                    cancelled = true;
                    terminal
                        .figures
                        .cashier_cancels
                        .fetch_add(1, Ordering::Relaxed);
                    if let Some((status, reply)) = terminal
                        .call(Method::POST, &format!("{path}/cancel"), None)
                        .await
                    {
                        if !(status.is_success() || status == StatusCode::CONFLICT) {
                            terminal.figures.anomaly(format!(
                                "{} cancel {} → {status}: {reply}",
                                terminal.name, payment.id
                            ));
                        }
                    }
                }
            }
            let wait = if cancel_at.is_some() && !cancelled {
                0
            } else {
                1
            };
            let poll = format!("{path}?wait={wait}&after_version={}", payment.version);
            let Some((status, reply)) = terminal.call(Method::GET, &poll, None).await else {
                break;
            };
            match parse::<Payment>(&reply).filter(|_| status == StatusCode::OK) {
                Some(seen) => payment = seen,
                None => {
                    terminal
                        .figures
                        .anomaly(format!("{} GET {poll} → {status}: {reply}", terminal.name));
                    break;
                }
            }
            if cancel_at.is_some() && !cancelled {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if payment.state.is_settled() {
            observation.shown_settled = Some(payment.state);
        }
        if std::env::var_os("SOAK_TRACE").is_some() {
            eprintln!(
                "{} {} {} → {} in {:?}",
                terminal.name,
                payment.id,
                observation.label,
                payment.state,
                taken.elapsed()
            );
        }

        // Some paid payments are refunded: in full, in two parts, or too much.
        if payment.state == PaymentState::Paid && rng.gen_bool(0.3) {
            let parts: Vec<u64> = match rng.gen_range(0..4) {
                0 if amount > 1 => {
                    let first = rng.gen_range(1..amount);
                    vec![first, amount - first]
                }
                1 => vec![amount + 1],
                2 if amount > 1 => vec![amount / 2, amount],
                _ => vec![amount],
            };
            for part in parts {
                let refund_attempt = new_attempt_id();
                let body = json!({"refund_attempt_id": refund_attempt, "amount_fen": part, "reason": "退货"});
                terminal
                    .figures
                    .refunds_requested
                    .fetch_add(1, Ordering::Relaxed);
                let Some((status, reply)) =
                    terminal.refund(&format!("{path}/refunds"), &body).await
                else {
                    break;
                };
                if status.is_success() {
                    observation.refund_attempts.push(refund_attempt);
                } else if status == StatusCode::CONFLICT
                    && reply["code"] == "REFUND_EXCEEDS_PAYMENT"
                {
                    terminal
                        .figures
                        .refunds_refused
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    terminal.figures.anomaly(format!(
                        "{} refund {part} of {} → {status}: {reply}",
                        terminal.name, payment.id
                    ));
                }
            }
        }
        observations.push(observation);
    }
    observations
}
