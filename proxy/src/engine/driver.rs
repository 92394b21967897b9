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
//! - **One owner per payment, fenced.** The engine drives only what it holds a lease on
//!   ([`Leases`]): claimed at start (and, on PostgreSQL, as work comes due), or inserted
//!   already leased. Every write names the lease's epoch; a refused write
//!   ([`StoreError::LeaseLost`]) drops the step and forgets the payment here. No WeChat call
//!   starts with less than the safety margin of lease left. A payment taken over starts from
//!   [`machine::resume`]: a micropay that may have left is queried, never sent again.

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
use super::leases::Leases;
use super::limiter::{Claim, RateLimiter};
use super::machine::{self, Action};
use super::schedule::{Key, Schedule};
use super::steps::facts_of;
use super::watch::{self, Watchers};
use crate::metrics::Metrics;
use crate::store::{
    ClaimRequest, HeldLeases, MerchantIds, Millis, PaymentRecord, Store, StoreError,
};
use crate::wechat::AccountClients;

/// How long a step waits before retrying after the database failed it.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// The longest the driver sleeps with nothing scheduled (it wakes earlier when told).
const IDLE_SLEEP: Duration = Duration::from_secs(3600);
/// The most payments (and the most refunds) one periodic claim takes on a shared store, so
/// that instances starting together share the backlog instead of one taking it all.
const CLAIM_BATCH: u32 = 100;

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
    /// The leases held: what this engine drives.
    pub(super) leases: Leases,
    /// Wakes the lease keeper to claim at once.
    pub(super) claim_now: Notify,
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
        self.leases.saw_version(&key, saved.version);
        match (saved.next_action, saved.next_action_at) {
            (Some(_), Some(at)) => self.schedule_at(key, at),
            _ => {
                // Nothing more is owed: stop renewing (the lease lapses in the store).
                self.leases.forget(&key);
                self.schedule().remove(&key);
            }
        }
    }

    /// Drops `key` after its lease at `epoch` was lost: no more steps or writes as its
    /// owner under that lease (a lease taken since, at a later epoch, is kept).
    pub(in crate::engine) fn lost(&self, key: &Key, epoch: u64) {
        if self.leases.forget_epoch(key, epoch) {
            self.schedule().remove(key);
            tracing::warn!(?key, epoch, "lease lost to another instance; dropped");
        }
    }

    /// Claims due work nobody holds (all of it, taking over the previous run's leases, when
    /// `take_over`: a store with one owner) and plans each claimed row. Returns how many
    /// payments and refunds were claimed.
    pub(in crate::engine) async fn claim(
        &self,
        take_over: bool,
    ) -> Result<(usize, usize), StoreError> {
        let settings = &self.leases.settings;
        let (due_before, limit) = if take_over {
            (Millis(i64::MAX), u32::MAX)
        } else {
            (Millis::now() + settings.claim_interval, CLAIM_BATCH)
        };
        let sent = Instant::now();
        let (payments, refunds) = self
            .store
            .claim_due(ClaimRequest {
                terms: self.leases.terms(),
                due_before,
                limit,
                take_over,
            })
            .await?;
        for leased in &payments {
            let record = &leased.record;
            tracing::info!(
                payment = %record.id,
                out_trade_no = %record.out_trade_no,
                state = record.state.as_str(),
                epoch = record.lease_epoch,
                "claimed a payment"
            );
            let key = Key::Payment(record.id.clone());
            self.leases.hold(
                key.clone(),
                record.lease_epoch,
                record.version,
                sent,
                leased.remaining,
            );
            if let Err(error) = self.take_over(record).await {
                match error {
                    StoreError::LeaseLost { expected, .. } => self.lost(&key, expected),
                    error => {
                        tracing::warn!(payment = %record.id, error = %error, "cannot plan a claimed payment; retrying");
                        self.retry_later(key);
                    }
                }
            }
        }
        for leased in &refunds {
            let refund = &leased.record;
            tracing::info!(
                refund = %refund.id,
                out_refund_no = %refund.out_refund_no,
                epoch = refund.lease_epoch,
                "claimed a refund"
            );
            self.leases.hold(
                Key::Refund(refund.id.clone()),
                refund.lease_epoch,
                refund.version,
                sent,
                leased.remaining,
            );
            self.refund_committed(refund);
        }
        Ok((payments.len(), refunds.len()))
    }

    /// Plans a payment this engine has just claimed: its stored action as it is, except that
    /// a micropay that may have left is queried instead ([`machine::resume`]), which is
    /// committed (under the new lease) before it is acted on.
    async fn take_over(&self, record: &PaymentRecord) -> Result<(), StoreError> {
        let key = Key::Payment(record.id.clone());
        let now = Millis::now();
        if record.state.is_settled() {
            // Settled, claimed because its order is still owed a close at WeChat: resume the
            // close at its stored time (never before the 15-second rule it was planned with).
            match record.next_action.zip(record.next_action_at) {
                Some((Action::CloseReverse, at)) => self.schedule_at(key, at.max(now)),
                _ => {
                    tracing::warn!(
                        payment = %record.id,
                        out_trade_no = %record.out_trade_no,
                        "a close is pending without a close_reverse action; left for an operator"
                    );
                    self.leases.forget(&key);
                }
            }
            return Ok(());
        }
        let stored = record.next_action.zip(record.next_action_at);
        let (state, action, at) =
            machine::resume(&facts_of(record), stored, &self.settings.timing, now);
        if record.next_action == Some(action) && state == record.state {
            self.schedule_at(key, at);
            return Ok(());
        }
        let mut resumed = record.clone();
        resumed.state = state;
        resumed.next_action = Some(action);
        resumed.next_action_at = Some(at);
        if action != Action::Micropay {
            resumed.auth_code = None;
        }
        match self
            .store
            .update_payment(&resumed, &format!("taken over: {}", action.as_str()))
            .await
        {
            Ok(saved) => self.committed(record.state, &saved),
            Err(StoreError::StaleVersion { .. }) => self.resync_payment(&record.id).await,
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// On a shared store: renews the leases held every `renew_interval` and claims due work
    /// every `claim_interval` (and when woken), until the engine stops.
    pub(super) async fn keep_leases(self: Arc<Self>) {
        let settings = self.leases.settings.clone();
        let mut renew = tokio::time::interval(settings.renew_interval);
        let mut claim = tokio::time::interval(settings.claim_interval);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        claim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = renew.tick() => self.renew().await,
                _ = claim.tick() => self.claim_due_work().await,
                () = self.claim_now.notified() => self.claim_due_work().await,
                () = self.stopping.cancelled() => break,
            }
        }
    }

    /// Claims what came due, batch after batch while batches come back full.
    async fn claim_due_work(&self) {
        loop {
            match self.claim(false).await {
                Ok((payments, refunds)) => {
                    if payments > 0 || refunds > 0 {
                        tracing::info!(payments, refunds, "claimed due work");
                    }
                    let full = u32::try_from(payments.max(refunds)).unwrap_or(u32::MAX);
                    if full < CLAIM_BATCH || self.stopping.is_cancelled() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "cannot claim due work; trying again later");
                    return;
                }
            }
        }
    }

    /// Renews every lease held. What the store no longer gives this engine is dropped; a
    /// held payment whose version moved without this engine (a cancel written by another
    /// instance) is read again and re-planned.
    async fn renew(&self) {
        let asked = self.leases.held();
        if asked.payments.is_empty() && asked.refunds.is_empty() {
            return;
        }
        let sent = Instant::now();
        let renewal = match self.store.renew_leases(self.leases.terms(), &asked).await {
            Ok(renewal) => renewal,
            Err(error) => {
                // The leases run out locally; calls stop at the safety margin until a
                // renewal goes through.
                tracing::warn!(error = %error, "cannot renew leases; trying again");
                return;
            }
        };
        let (changed, lost) = self.leases.renewed(&asked, &renewal, sent);
        for key in &lost {
            self.schedule().remove(key);
            tracing::warn!(?key, "lease lost to another instance; dropped");
        }
        for key in changed {
            self.changed_elsewhere(&key).await;
        }
    }

    /// A held payment or refund whose version moved without this engine (a cancel written
    /// by another instance, seen by a renewal or announced by the database): re-read and
    /// re-planned, or, while a step runs, looked at again after it.
    pub(in crate::engine) async fn changed_elsewhere(&self, key: &Key) {
        let in_flight = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get_mut(key) {
                // The running step meets the new version at its commit; look again after.
                Some(asked_again) => {
                    *asked_again = true;
                    true
                }
                None => false,
            }
        };
        if !in_flight {
            match key {
                Key::Payment(id) => self.resync_payment(id).await,
                Key::Refund(id) => self.resync_refund(id).await,
            }
        }
    }

    /// Hands back every lease held (graceful shutdown, after the last step committed).
    pub(super) async fn release_all(&self) {
        let held = self.leases.held();
        if held.payments.is_empty() && held.refunds.is_empty() {
            return;
        }
        match self
            .store
            .release_leases(&self.leases.settings.owner, &held)
            .await
        {
            Ok(released) => tracing::info!(released, "leases handed back"),
            Err(error) => tracing::warn!(
                error = %error,
                "cannot hand back leases; they lapse after their duration"
            ),
        }
    }

    /// Whether a WeChat call for `key` may start now: the lease is held with more than the
    /// safety margin left. When less is left (the renewals fell behind: a busy machine, a
    /// slow database), this lease alone is renewed on the spot and checked again. If it
    /// still may not, the step is tried again after the margin (or dropped, when the lease
    /// turned out lost) and `false` is returned.
    pub(in crate::engine) async fn may_call(&self, key: &Key) -> bool {
        if self.leases.may_call(key, Instant::now()) {
            return true;
        }
        let Some(epoch) = self.leases.epoch(key) else {
            return false;
        };
        let mut asked = HeldLeases::default();
        match key {
            Key::Payment(id) => asked.payments.push((id.clone(), epoch)),
            Key::Refund(id) => asked.refunds.push((id.clone(), epoch)),
        }
        let sent = Instant::now();
        match self.store.renew_leases(self.leases.terms(), &asked).await {
            Ok(renewal) => {
                let (_, lost) = self.leases.renewed(&asked, &renewal, sent);
                if !lost.is_empty() {
                    self.schedule().remove(key);
                    tracing::warn!(?key, epoch, "lease lost to another instance; dropped");
                    return false;
                }
                if self.leases.may_call(key, Instant::now()) {
                    return true;
                }
            }
            Err(error) => tracing::warn!(?key, error = %error, "cannot renew a lease"),
        }
        tracing::info!(
            ?key,
            "lease too close to its end for a WeChat call; trying again after the margin"
        );
        self.schedule_at(
            key.clone(),
            Millis::now() + self.leases.settings.safety_margin,
        );
        false
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
            match result {
                Ok(()) => {}
                Err(StoreError::LeaseLost { expected, .. }) => shared.lost(&key, expected),
                Err(error) => {
                    tracing::warn!(?key, error = %error, "step failed; retrying");
                    shared.retry_later(key.clone());
                }
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
