//! Paycode end to end, in process: the proxy's real HTTP API with a terminal's bearer token,
//! SQLite on disk, and the WeChat Pay simulator over HTTPS on simulated time (100× unless a
//! test says otherwise, with the proxy's waits scaled to match).
//!
//! - `approvals`: manager approvals: terminal roles, PINs with their lockout and rate limit,
//!   one-use approvals, refunds and back-office actions that need one, and their audit.
//! - `rows`: one test per row of the simulator's behaviour table (wxpay/SIMULATOR.md).
//! - `faults`: transport and reply faults, host fail-over, reverse retries, needs_attention.
//! - `expiry`: a micropay that may still arrive keeps its payment open until its `time_expire`.
//! - `cancel`: the cashier's cancel, including the race with a payment that succeeds.
//! - `closing`: failed payments whose order WeChat kept open are closed by reverse in the
//!   background (the closed loop), without changing what the cashier sees.
//! - `refunds`: full, partial, idempotent and refused refunds.
//! - `idempotency`: the same `attempt_id` posted twice.
//! - `leases`: two proxies on one PostgreSQL database; a payment taken over with a query.
//! - `concurrency`: 200 terminals at once, and the 30/s micropay limit.
//! - `books`: `paycode-proxy reconcile` against the simulator's bills: every mismatch class,
//!   re-runs, bills not ready, no bill, a lost paid reply and a needs-attention payment
//!   queried, the `REVOKED` mark, the carry-over across midnight, the daily run.
//! - `bad_input`: what the API refuses, and that a refusal stores and sends nothing.
//! - `shutdown`: calls in flight finish on shutdown; the next start resumes the rest.
//! - `stores`: two direct merchants and a provider with two sub-merchants in one deployment:
//!   each store pays into its own account, sees only its own payments, and can be disabled.
//! - `upgrade`: a database of the first release (no stores) resumes every payment on the
//!   `[wechat]` account, as the default store.
//!
//! Every test checks the outcome three ways: the payment the API shows, the calls the
//! simulator received for its order (which, in which order, and when in simulated time), and
//! the simulator's books (`paycode_tests::ledger::assert_ledger_agrees`).

mod approvals;
mod bad_input;
mod books;
mod books_api;
mod cancel;
mod closing;
mod concurrency;
mod expiry;
mod faults;
mod idempotency;
mod leases;
mod refunds;
mod rows;
mod shutdown;
mod stores;
mod upgrade;

use std::time::Duration;

use paycode_api::{FailureCode, Payment, PaymentState};
use paycode_tests::World;
use paycode_tests::ledger::{self, assert_ledger_agrees};

/// How far a simulated-time comparison may be off because the proxy measures its waits in
/// real time from just before micropay leaves, and the simulator stamps a call when it
/// arrives: a few milliseconds of real time, multiplied by the time scale.
fn slack(world: &World) -> Duration {
    world.simulated(Duration::from_millis(20))
}

/// Asserts a settled payment's state and failure code, and that the simulator agrees.
fn assert_outcome(
    world: &World,
    payment: &Payment,
    state: PaymentState,
    failure: Option<FailureCode>,
) {
    assert_eq!(payment.state, state, "{payment:#?}");
    assert_eq!(
        payment.failure.as_ref().map(|failure| &failure.code),
        failure.as_ref(),
        "{payment:#?}"
    );
    if state == PaymentState::Failed {
        assert!(
            !payment
                .failure
                .as_ref()
                .is_some_and(|f| f.message.is_empty()),
            "a failure tells the cashier what to do"
        );
    }
    assert_ledger_agrees(&world.sim, payment);
}

/// Asserts the endpoints called for the payment's order, in order (runs of repeats written
/// once), and that micropay was sent exactly once: a payment never resubmits blindly.
fn assert_calls(world: &World, payment: &Payment, expected_shape: &str) {
    let calls = world.calls(payment);
    assert_eq!(ledger::shape(&calls), expected_shape, "{calls:#?}");
    assert_eq!(ledger::count(&calls, "micropay"), 1, "{calls:#?}");
}

/// Asserts that the first `later` call came at least `at_least` of simulated time (less the
/// clock slack) after the first `earlier` call for the payment's order.
fn assert_not_before(
    world: &World,
    payment: &Payment,
    earlier: &str,
    later: &str,
    at_least: Duration,
) {
    let calls = world.calls(payment);
    let gap = ledger::sim_between(ledger::first(&calls, earlier), ledger::first(&calls, later));
    assert!(
        gap + slack(world) >= at_least,
        "{later} came {gap:?} of simulated time after {earlier}, before {at_least:?}: {calls:#?}"
    );
}
