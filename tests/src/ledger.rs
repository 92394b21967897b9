//! The simulator's side of a payment: the calls it received and its books, and the checks
//! that they agree with what the proxy shows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use paycode_api::{Payment, PaymentState};
use tokio::time::Instant;
use wxpay::sim::{CallRecord, SimHandle};

/// The calls the simulator received for `out_trade_no`, oldest first.
pub fn calls_for(sim: &SimHandle, out_trade_no: &str) -> Vec<CallRecord> {
    sim.calls()
        .into_iter()
        .filter(|call| call.out_trade_no.as_deref() == Some(out_trade_no))
        .collect()
}

/// How many of `calls` went to `endpoint`.
pub fn count(calls: &[CallRecord], endpoint: &str) -> usize {
    calls
        .iter()
        .filter(|call| call.endpoint == endpoint)
        .count()
}

/// The order of endpoints called, each run of repeats written once:
/// `micropay orderquery reverse orderquery`. Counts are asserted separately with [`count`]
/// where they matter, so that a test does not depend on how many polls fit in a wait.
pub fn shape(calls: &[CallRecord]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for call in calls {
        if names.last() != Some(&call.endpoint.as_str()) {
            names.push(&call.endpoint);
        }
    }
    names.join(" ")
}

/// The first call to `endpoint` in `calls`, failing the test if there is none.
pub fn first<'a>(calls: &'a [CallRecord], endpoint: &str) -> &'a CallRecord {
    calls
        .iter()
        .find(|call| call.endpoint == endpoint)
        .unwrap_or_else(|| panic!("no {endpoint} call in {calls:#?}"))
}

/// The most of `arrivals` (sorted, e.g. the call log's real arrival times of micropay on one
/// account) within any one second: what WeChat's 30-per-second limit is counted over.
pub fn busiest_second(arrivals: &[DateTime<Utc>]) -> usize {
    arrivals
        .iter()
        .enumerate()
        .map(|(i, start)| {
            arrivals[i..]
                .iter()
                .take_while(|at| **at - *start < chrono::TimeDelta::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Simulated time from `earlier` to `later`.
pub fn sim_between(earlier: &CallRecord, later: &CallRecord) -> Duration {
    (later.sim_time - earlier.sim_time)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

/// Simulated time from `earlier` to `later` (zero if `later` is not later).
pub fn sim_between_times(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or(Duration::ZERO)
}

/// Waits (polling every 5 ms, at most 10 s of real time) until the simulator has received an
/// `endpoint` call for `out_trade_no`, and returns it.
pub async fn until_call(sim: &SimHandle, out_trade_no: &str, endpoint: &str) -> CallRecord {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(call) = calls_for(sim, out_trade_no)
            .into_iter()
            .find(|call| call.endpoint == endpoint)
        {
            return call;
        }
        assert!(
            Instant::now() < deadline,
            "no {endpoint} call for {out_trade_no} arrived; calls: {:#?}",
            calls_for(sim, out_trade_no)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts that the simulator's books agree with a settled payment:
/// - paid ⇔ WeChat kept the money (`SUCCESS`/`REFUND`), for the same amount and transaction;
/// - failed ⇒ WeChat never took money (no order, or `PAYERROR`/`CLOSED`/`REVOKED` unpaid);
/// - cancelled ⇒ the order is closed or reversed, and `money_returned` says exactly whether
///   money had been taken (and given back by the reverse).
pub fn assert_ledger_agrees(sim: &SimHandle, payment: &Payment) {
    let order = sim.order(&payment.out_trade_no);
    let context = || format!("proxy: {payment:#?}\nsimulator: {order:#?}");
    let kept = order
        .as_ref()
        .is_some_and(|order| matches!(order.trade_state.as_str(), "SUCCESS" | "REFUND"));
    match payment.state {
        PaymentState::Paid => {
            let order = order.as_ref().unwrap_or_else(|| panic!("{}", context()));
            assert!(
                kept,
                "paid, but WeChat did not keep the money\n{}",
                context()
            );
            assert_eq!(order.total_fee, payment.amount_fen.get(), "{}", context());
            assert_eq!(
                payment.transaction_id.as_deref(),
                Some(order.transaction_id.as_str()),
                "{}",
                context()
            );
        }
        PaymentState::Failed | PaymentState::Cancelled => {
            assert!(
                !kept,
                "shown {}, but WeChat kept the money\n{}",
                payment.state,
                context()
            );
            if let Some(order) = &order {
                assert!(
                    matches!(
                        order.trade_state.as_str(),
                        "PAYERROR" | "CLOSED" | "REVOKED"
                    ),
                    "shown {}, but the order is still open\n{}",
                    payment.state,
                    context()
                );
            }
            let charged = order.as_ref().is_some_and(|order| order.paid_at.is_some());
            if payment.state == PaymentState::Failed {
                assert!(
                    !charged,
                    "failed, but the customer was charged\n{}",
                    context()
                );
                assert!(!payment.money_returned, "{}", context());
            } else {
                assert_eq!(
                    payment.money_returned,
                    charged,
                    "money_returned must say whether the reverse returned money\n{}",
                    context()
                );
            }
        }
        other => panic!("the payment is not settled ({other})\n{}", context()),
    }
}
