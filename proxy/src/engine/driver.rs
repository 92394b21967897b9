//! The engine's driver: one task with a timer queue that starts each step (`steps`) when it
//! is due, and what the steps share: the store, the client, the schedule and the commit
//! bookkeeping ([`Shared::committed`]).
//!
//! How the rules of docs/design.md are kept:
//! - **Persist before acting.** A payment is stored (with its payment code and the action
//!   `micropay`) before anything is sent. Right before micropay leaves, `maybe_sent` is
//!   committed; a crash after that point resumes with a query, never a second micropay. A
//!   "not sent" failure restores the earlier value, so a resend stays possible.
//! - **Every transition is committed before the next call.** A step loads the payment,
//!   makes exactly the call its stored `next_action` names, and commits the machine's
//!   decision with an optimistic version check before scheduling anything else.
//! - **One step per payment at a time.** Keys in flight are not started again; a schedule
//!   change that arrives meanwhile (a cashier's cancel) is picked up when the step ends.
//! - **Concurrent changes win or are re-decided.** If the cashier cancels while a call is in
//!   flight, the step's commit finds a newer version. It re-reads the payment and, if the
//!   payment still owes the same action, re-decides the same WeChat outcome on the fresh
//!   facts; otherwise it drops the outcome, since the new action starts with a query anyway.
//! - **No sleeping task per payment.** Only calls in flight hold a task; waiting payments
//!   are entries in [`Schedule`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use paycode_api::PaymentState;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wxpay::CallOutcome;
use wxpay::client::CallOptions;
use wxpay::error::NotSent;
use wxpay::messages::Request;

use super::api::EngineSettings;
use super::limiter::{Claim, RateLimiter};
use super::schedule::{Key, Schedule};
use super::watch::{self, Watchers};
use crate::metrics::Metrics;
use crate::store::{MerchantIds, Millis, PaymentRecord, Store};
use crate::wechat::AccountClients;

/// How long a step waits before retrying after the database failed it.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// The longest the driver sleeps with nothing scheduled (it wakes earlier when told).
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

/// What every clone of an [`Engine`](super::Engine) shares: the store, the WeChat clients,
/// the timer queue and the bookkeeping of the steps in flight.
pub(super) struct Shared {
    pub(super) store: Arc<dyn Store>,
    /// A client per merchant account; each payment's calls go to the account it was made
    /// with.
    pub(super) accounts: Arc<AccountClients>,
    pub(super) settings: EngineSettings,
    pub(super) schedule: Mutex<Schedule>,
    /// Keys with a step running, and whether the schedule asked for them meanwhile.
    pub(super) in_flight: Mutex<HashMap<Key, bool>>,
    pub(super) wake: Notify,
    pub(super) watchers: Mutex<Watchers>,
    /// Payments whose micropay took its turn when they were stored, by id.
    pub(super) claimed_at_insert: Mutex<HashMap<String, ClaimedAtInsert>>,
    /// The micropay rate limit of each account, by `mch_id` (the provider's in provider
    /// mode: docs/design.md, "Load").
    pub(super) limiters: HashMap<String, RateLimiter>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) tasks: TaskTracker,
    pub(super) stopping: CancellationToken,
}

/// A payment whose first micropay took its rate-limit turn when it was stored, and which was
/// stored already marked "may have been sent" (its write-ahead shared the insert's commit):
/// its step sends at once, with this record in hand, instead of waiting for a turn and
/// committing a write-ahead of its own. Only this process knows; after a restart such a
/// payment is queried, as for any send that may have left.
pub(super) struct ClaimedAtInsert(pub(super) PaymentRecord, pub(super) Claim);

/// Locks `mutex`, using it even if a panic poisoned it (every guarded value stays valid).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(in crate::engine) fn schedule(&self) -> MutexGuard<'_, Schedule> {
        lock(&self.schedule)
    }

    pub(in crate::engine) fn schedule_at(&self, key: Key, at: Millis) {
        self.schedule().set(key, at);
        self.wake.notify_one();
    }

    /// Tries `key` again after [`STORE_RETRY`], when the database failed its step.
    pub(in crate::engine) fn retry_later(&self, key: Key) {
        self.schedule_at(key, Millis::now() + STORE_RETRY);
    }

    /// After a payment change is committed: tell long-polls, count the transition, and
    /// schedule (or forget) its next action.
    pub(in crate::engine) fn committed(&self, previous: PaymentState, saved: &PaymentRecord) {
        watch::publish(&lock(&self.watchers), saved);
        if saved.state != previous {
            self.metrics.observe_transition(saved.state);
            tracing::info!(
                payment = %saved.id,
                out_trade_no = %saved.out_trade_no,
                from = %previous,
                to = %saved.state,
                "payment state changed"
            );
        }
        let key = Key::Payment(saved.id.clone());
        match (saved.next_action, saved.next_action_at) {
            (Some(_), Some(at)) => self.schedule_at(key, at),
            _ => self.schedule().remove(&key),
        }
    }

    /// Re-reads a payment and schedules what it owes.
    pub(in crate::engine) async fn resync_payment(&self, payment_id: &str) {
        match self.store.get_payment(payment_id).await {
            Ok(Some(record)) => self.committed(record.state, &record),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(payment = %payment_id, error = %error, "cannot re-read payment; retrying");
                self.retry_later(Key::Payment(payment_id.to_owned()));
            }
        }
    }

    pub(super) async fn drive(self: Arc<Self>) {
        loop {
            let now = Millis::now();
            let due = self.schedule().take_due(now);
            for key in due {
                self.start_step(key);
            }
            let sleep = match self.schedule().next_due() {
                Some(at) => {
                    Duration::from_millis(u64::try_from(at.0 - Millis::now().0).unwrap_or(0))
                }
                None => IDLE_SLEEP,
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.notified() => {}
                () = self.stopping.cancelled() => break,
            }
        }
    }

    pub(in crate::engine) fn start_step(self: &Arc<Self>, key: Key) {
        {
            let mut in_flight = lock(&self.in_flight);
            if let Some(asked_again) = in_flight.get_mut(&key) {
                *asked_again = true;
                return;
            }
            in_flight.insert(key.clone(), false);
        }
        let shared = Arc::clone(self);
        self.tasks.spawn(async move {
            let result = match &key {
                Key::Payment(id) => shared.step_payment(id).await,
                Key::Refund(id) => shared.step_refund(id).await,
            };
            if let Err(error) = result {
                tracing::warn!(?key, error = %error, "step failed; retrying");
                shared.retry_later(key.clone());
            }
            let asked_again = lock(&shared.in_flight).remove(&key).unwrap_or(false);
            if asked_again {
                match &key {
                    Key::Payment(id) => shared.resync_payment(id).await,
                    Key::Refund(id) => shared.resync_refund(id).await,
                }
            }
        });
    }

    /// The micropay rate limit of the account `mch_id`, if it is configured.
    pub(in crate::engine) fn limiter(&self, mch_id: &str) -> Option<&RateLimiter> {
        self.limiters.get(mch_id)
    }

    /// Calls WeChat for a payment made with `merchant` (its account, with its sub-merchant)
    /// and records the call's outcome and latency. A payment whose account is no longer
    /// configured cannot be called about: that is "not sent", and the payment's rules run
    /// their course until an operator restores the account.
    pub(in crate::engine) async fn call<R: Request>(
        &self,
        merchant: &MerchantIds,
        request: &R,
        options: CallOptions,
    ) -> wxpay::Result<R::Response> {
        let started = Instant::now();
        let result = match self.accounts.client_for(merchant) {
            Some(client) => client.call_with(request, options).await,
            None => Err(wxpay::Error::NotSent(NotSent::Build(format!(
                "no configured account has mch_id {}",
                merchant.mch_id
            )))),
        };
        self.metrics
            .observe_call(R::API, CallOutcome::of(&result), started.elapsed());
        result
    }
}
