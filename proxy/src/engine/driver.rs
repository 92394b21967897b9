//! The engine's driver: one task with a timer queue that makes each WeChat call when it is
//! due, commits its outcome through the state machine, and schedules the next one.
//!
//! How the rules of DESIGN.md are kept:
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

use chrono::NaiveDate;
use paycode_api::{
    CashierCopy, CreatePayment, CreateRefund, FailureCode, PaymentState, RefundState,
};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use wxpay::client::CallOptions;
use wxpay::messages::{
    MicropayRequest, OrderQueryRequest, OrderRef, OutRefundNo, OutTradeNo, RefundQueryBy,
    RefundQueryRequest, RefundRequest, Request, ReverseRequest,
};

use super::classify::{self, RefundOutcome, RefundQueryOutcome};
use super::limiter::RateLimiter;
use super::machine::{self, Action, CancelDecision, CloseState, Facts, Timing, Transition};
use super::schedule::{Key, Schedule};
use super::spacing;
use crate::config::{Config, ShopConfig};
use crate::metrics::{CallOutcome, Metrics, Snapshot};
use crate::store::{InsertOutcome, Millis, PaymentRecord, RefundRecord, Store, StoreError};

/// How long a step waits before retrying after the database failed it.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// The longest the driver sleeps with nothing scheduled (it wakes earlier when told).
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

/// What the engine needs from the configuration.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// The state machine's durations.
    pub timing: Timing,
    /// The read timeout of a micropay call.
    pub micropay_timeout: Duration,
    /// `spbill_create_ip` sent with micropay.
    pub spbill_create_ip: String,
    /// The description used when a payment has none.
    pub default_description: String,
    /// The most micropay calls per second.
    pub micropay_rate_per_second: u32,
    /// How often a refund in progress is queried.
    pub refund_query_interval: Duration,
    /// The shop's business day.
    pub shop: ShopConfig,
}

impl EngineSettings {
    /// The settings `config` describes.
    pub fn from_config(config: &Config) -> EngineSettings {
        let payments = &config.payments;
        EngineSettings {
            timing: Timing {
                first_query_after_userpaying: payments.first_query_after_userpaying,
                first_query_after_unknown: payments.first_query_after_unknown,
                query_interval: payments.query_interval,
                wait_deadline: payments.wait_deadline,
                reverse_not_before: payments.reverse_not_before,
                retry_base: payments.reverse_retry_base,
                retry_max: payments.reverse_retry_base * 16,
                reverse_max_attempts: payments.reverse_max_attempts,
                attention_recheck_interval: payments.attention_recheck_interval,
                refund_spacing: payments.refund_spacing,
            },
            micropay_timeout: config.wechat.micropay_read_timeout,
            spbill_create_ip: payments.spbill_create_ip.to_string(),
            default_description: payments.default_description.clone(),
            micropay_rate_per_second: payments.micropay_rate_per_second,
            refund_query_interval: payments.query_interval,
            shop: config.shop.clone(),
        }
    }
}

/// Why an engine request was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A paid payment cannot be cancelled; it can be refunded.
    #[error("the payment is already paid; refund it instead")]
    AlreadyPaid,
    /// Only a paid payment can be refunded.
    #[error("the payment is {0}, not paid, so it cannot be refunded")]
    NotPaid(PaymentState),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The payments engine. Cheap to clone; every clone drives the same payments.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scheduled", &self.shared.schedule().len())
            .finish_non_exhaustive()
    }
}

struct Shared {
    store: Arc<dyn Store>,
    client: wxpay::Client,
    settings: EngineSettings,
    schedule: Mutex<Schedule>,
    /// Keys with a step running, and whether the schedule asked for them meanwhile.
    in_flight: Mutex<HashMap<Key, bool>>,
    wake: Notify,
    watchers: Mutex<HashMap<String, watch::Sender<Option<Arc<PaymentRecord>>>>>,
    /// Payments whose first micropay took its rate-limit turn when they were stored, and
    /// were stored already marked "may have been sent": their step sends at once. Only this
    /// process knows; after a restart such a payment is queried, as for any send that may
    /// have left.
    claimed_at_insert: Mutex<HashMap<String, PaymentRecord>>,
    limiter: RateLimiter,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    stopping: CancellationToken,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The current time in the machine's unit.
fn now_ms() -> machine::Millis {
    Millis::now().0
}

impl Engine {
    /// An engine over `store` that calls WeChat through `client`. Nothing runs until
    /// [`Engine::start`].
    pub fn new(
        store: Arc<dyn Store>,
        client: wxpay::Client,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> Engine {
        Engine {
            shared: Arc::new(Shared {
                store,
                client,
                limiter: RateLimiter::per_second(settings.micropay_rate_per_second),
                settings,
                schedule: Mutex::new(Schedule::default()),
                in_flight: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                watchers: Mutex::new(HashMap::new()),
                claimed_at_insert: Mutex::new(HashMap::new()),
                metrics,
                tasks: TaskTracker::new(),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// Resumes every unsettled payment and unfinished refund from the store, then starts
    /// the driver task. Returns how many payments and refunds were resumed.
    pub async fn start(&self) -> Result<(usize, usize), StoreError> {
        let shared = &self.shared;
        let now = now_ms();
        let payments = shared.store.unsettled_payments().await?;
        for record in &payments {
            let stored = record.next_action.zip(record.next_action_at.map(|at| at.0));
            let (state, action, at) =
                machine::resume(&facts_of(record), stored, &shared.settings.timing, now);
            if record.next_action == Some(action) && state == record.state {
                shared.schedule_at(Key::Payment(record.id.clone()), at);
                continue;
            }
            // The stored action cannot be taken as it is (a micropay that may have been
            // sent, which must be queried instead): commit the new plan before acting on it.
            let mut resumed = record.clone();
            resumed.state = state;
            resumed.next_action = Some(action);
            resumed.next_action_at = Some(Millis(at));
            if action != Action::Micropay {
                resumed.auth_code = None;
            }
            match shared
                .store
                .update_payment(
                    &resumed,
                    &format!("resumed after a restart: {}", action.as_str()),
                )
                .await
            {
                Ok(saved) => shared.committed(record.state, &saved),
                Err(StoreError::StaleVersion { .. }) => shared.resync_payment(&record.id).await,
                Err(error) => return Err(error),
            }
        }
        // Settled payments whose order is still owed a close at WeChat: resume the close at
        // its stored time (never before the 15-second rule it was planned with).
        let closing = shared.store.payments_to_close().await?;
        for record in &closing {
            match record.next_action.zip(record.next_action_at) {
                Some((Action::CloseReverse, at)) => {
                    shared.schedule_at(Key::Payment(record.id.clone()), at.0.max(now));
                }
                _ => tracing::warn!(
                    payment = %record.id,
                    out_trade_no = %record.out_trade_no,
                    "a close is pending without a close_reverse action; left for an operator"
                ),
            }
        }
        let refunds = shared.store.unfinished_refunds().await?;
        for refund in &refunds {
            let at = refund.next_action_at.map_or(now, |at| at.0);
            shared.schedule_at(Key::Refund(refund.id.clone()), at);
        }
        if !payments.is_empty() || !refunds.is_empty() || !closing.is_empty() {
            tracing::info!(
                payments = payments.len(),
                closing = closing.len(),
                refunds = refunds.len(),
                "resumed unfinished work"
            );
        }
        let driver = Arc::clone(&self.shared);
        self.shared.tasks.spawn(async move { driver.drive().await });
        Ok((payments.len(), refunds.len()))
    }

    /// Stops starting new WeChat calls and waits for those in flight to finish and commit.
    /// Pending payments stay in the store and resume on the next start.
    pub async fn shutdown(&self) {
        self.shared.stopping.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    /// Stores a new payment and schedules its micropay, or returns the payment already
    /// stored under the same `attempt_id` (see [`Store::insert_payment`]).
    pub async fn create_payment(
        &self,
        terminal_id: &str,
        request: CreatePayment,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
        let shared = &self.shared;
        let now = Millis::now();
        let business_day = shared.settings.shop.business_day(now);
        let description = request
            .description
            .filter(|description| !description.trim().is_empty())
            .unwrap_or_else(|| shared.settings.default_description.clone());
        let mut record = PaymentRecord::new_submitting(
            uuid::Uuid::new_v4().to_string(),
            request.attempt_id,
            terminal_id.to_owned(),
            new_out_trade_no("PC", business_day),
            request.amount_fen,
            request.auth_code,
            description,
            now,
            business_day,
        );
        let (state, action, at) = machine::created(now.0);
        record.state = state;
        record.next_action = Some(action);
        record.next_action_at = Some(Millis(at));
        // When micropay may leave at once, the insert doubles as its write-ahead: one commit
        // instead of two on the counter's critical path. Otherwise the payment waits for its
        // turn stored as "not sent", and the step commits the write-ahead when it is due.
        let claimed = shared.limiter.try_now();
        if claimed {
            record.maybe_sent = true;
            record.micropay_attempts = 1;
            record.submitted_at = Some(now);
        }
        let outcome = shared.store.insert_payment(&record).await?;
        if let InsertOutcome::Inserted(stored) = &outcome {
            shared.metrics.observe_transition(stored.state);
            let key = Key::Payment(stored.id.clone());
            if claimed {
                // Its turn is now: send straight away, with the record in hand.
                lock(&shared.claimed_at_insert).insert(stored.id.clone(), stored.clone());
                shared.start_step(key);
            } else {
                shared.schedule_at(key, at);
            }
        }
        Ok(outcome)
    }

    /// The cashier asks to cancel: reverses the order if it may exist, or remembers the
    /// request until micropay answers. Settled payments are returned unchanged, except a paid
    /// one, which must be refunded instead.
    pub async fn cancel(&self, payment_id: &str) -> Result<PaymentRecord, EngineError> {
        let shared = &self.shared;
        loop {
            let record = shared.store.existing_payment(payment_id).await?;
            if record.state == PaymentState::Paid {
                return Err(EngineError::AlreadyPaid);
            }
            let now = now_ms();
            let (updated, note) =
                match machine::cancel_requested(&facts_of(&record), &shared.settings.timing, now) {
                    CancelDecision::Unchanged => return Ok(record),
                    CancelDecision::RecordOnly if record.cancel_requested => return Ok(record),
                    CancelDecision::RecordOnly => {
                        let mut updated = record.clone();
                        updated.cancel_requested = true;
                        (updated, "cashier asked to cancel".to_owned())
                    }
                    CancelDecision::Reverse(transition) => {
                        let mut updated =
                            apply_transition(&record, &transition, Counter::None, now);
                        updated.cancel_requested = true;
                        (updated, transition.note)
                    }
                };
            match shared.store.update_payment(&updated, &note).await {
                Ok(saved) => {
                    shared.committed(record.state, &saved);
                    return Ok(saved);
                }
                Err(StoreError::StaleVersion { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Stores a refund of a paid payment and schedules it, or returns the refund already
    /// stored under the same `refund_attempt_id`.
    pub async fn create_refund(
        &self,
        payment_id: &str,
        request: CreateRefund,
    ) -> Result<InsertOutcome<RefundRecord>, EngineError> {
        let shared = &self.shared;
        let payment = shared.store.existing_payment(payment_id).await?;
        // A replay needs no check of its own: `paid` is final, so a payment that has refunds
        // passes this one, and the insert answers a repeated refund_attempt_id.
        if payment.state != PaymentState::Paid {
            return Err(EngineError::NotPaid(payment.state));
        }
        let now = Millis::now();
        let mut refund = RefundRecord::new_submitting(
            uuid::Uuid::new_v4().to_string(),
            payment.id.clone(),
            request.refund_attempt_id,
            new_out_trade_no("RF", shared.settings.shop.business_day(now)),
            request.amount_fen,
            request.reason,
            now,
        );
        // A refund asked for within a minute of the payment's previous one is stored
        // `queued` with the time it may go, so the cashier is told at once.
        let others = shared.store.refunds_for_payment(&payment.id).await?;
        match spacing::hold_until(&refund, &others, shared.settings.timing.refund_spacing, now) {
            Some(until) => {
                refund.state = RefundState::Queued;
                refund.next_action_at = Some(until);
            }
            None => refund.next_action_at = Some(now),
        }
        let outcome = shared.store.insert_refund(&refund).await?;
        if let InsertOutcome::Inserted(stored) = &outcome {
            shared.refund_committed(stored);
        }
        Ok(outcome)
    }

    /// Subscribes to a payment: the subscription sees every version the engine or a cancel
    /// commits, as committed. Subscribe *before* reading the payment so no change is missed.
    pub fn watch(&self, payment_id: &str) -> Watch {
        let mut watchers = lock(&self.shared.watchers);
        let sender = watchers
            .entry(payment_id.to_owned())
            .or_insert_with(|| watch::channel(None).0);
        Watch {
            receiver: sender.subscribe(),
            shared: Arc::clone(&self.shared),
            payment_id: payment_id.to_owned(),
        }
    }

    /// The remaining wait before the engine stops waiting for the customer, for a payment
    /// that is still waiting.
    pub fn deadline_in(&self, record: &PaymentRecord) -> Option<Duration> {
        if !matches!(
            record.state,
            PaymentState::Submitting | PaymentState::WaitingForCustomer | PaymentState::Confirming
        ) {
            return None;
        }
        let submitted_at = record.submitted_at.unwrap_or(record.created_at);
        let deadline = submitted_at.plus(self.shared.settings.timing.wait_deadline);
        Some(Duration::from_millis(
            u64::try_from(deadline.0 - Millis::now().0).unwrap_or(0),
        ))
    }

    /// The metrics registry the engine records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// What `/metrics` reports about the engine right now.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            payments_by_state: self.shared.store.count_payments_by_state().await?,
            scheduled: self.shared.schedule().len(),
            in_flight: lock(&self.shared.in_flight).len(),
        })
    }

    /// The WeChat client (for the readiness check).
    pub fn client(&self) -> &wxpay::Client {
        &self.shared.client
    }
}

/// A subscription to one payment's version, from [`Engine::watch`].
pub struct Watch {
    receiver: watch::Receiver<Option<Arc<PaymentRecord>>>,
    shared: Arc<Shared>,
    payment_id: String,
}

impl Watch {
    /// Waits until a change is committed after the last one seen, and returns the payment
    /// as that change left it.
    pub async fn changed(&mut self) -> Arc<PaymentRecord> {
        loop {
            if self.receiver.changed().await.is_err() {
                // The sender lives as long as a subscription does; this cannot end early,
                // but if it did, waiting forever is the correct "no change" answer.
                return std::future::pending().await;
            }
            if let Some(record) = self.receiver.borrow_and_update().clone() {
                return record;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = lock(&self.shared.watchers);
        if let Some(sender) = watchers.get(&self.payment_id) {
            // This subscription is still counted while it is being dropped.
            if sender.receiver_count() <= 1 {
                watchers.remove(&self.payment_id);
            }
        }
    }
}

/// Which per-payment counter a step bumps when it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    None,
    Query,
    Reverse,
}

fn facts_of(record: &PaymentRecord) -> Facts {
    Facts {
        state: record.state,
        submitted_at: record.submitted_at.map(|at| at.0),
        maybe_sent: record.maybe_sent,
        seen_paid: record.seen_paid,
        cancel_requested: record.cancel_requested,
        pending_failure: record.pending_failure.clone(),
        reverse_attempts: record.retry_attempts,
        not_sent_attempts: record.not_sent_attempts,
    }
}

/// The record after `transition`, ready to commit.
fn apply_transition(
    record: &PaymentRecord,
    transition: &Transition,
    counter: Counter,
    now: machine::Millis,
) -> PaymentRecord {
    let mut next = record.clone();
    next.state = transition.state;
    next.next_action = transition.next.map(|(action, _)| action);
    next.next_action_at = transition.next.map(|(_, at)| Millis(at));
    if let Some(transaction_id) = &transition.transaction_id {
        next.transaction_id = Some(transaction_id.clone());
    }
    next.seen_paid = transition.seen_paid;
    next.maybe_sent = transition.maybe_sent;
    if let Some((code, message)) = &transition.failure {
        next.failure_code = Some(code.clone());
        next.failure_message = Some(message.clone());
    }
    if let Some(pending) = &transition.pending_failure {
        next.pending_failure = pending.clone();
    }
    next.retry_attempts = transition.reverse_attempts;
    next.not_sent_attempts = transition.not_sent_attempts;
    next.money_returned |= transition.money_returned;
    if let Some(reason) = &transition.attention_reason {
        next.attention_reason = Some(reason.clone());
    }
    if let Some(close) = transition.close {
        next.close_state = Some(close);
    }
    if next.state == PaymentState::Paid {
        // A paid payment shows no failure, whatever was suspected on the way.
        next.failure_code = None;
        next.failure_message = None;
        next.pending_failure = None;
    }
    if next.next_action != Some(Action::Micropay) {
        // The full code is kept only while micropay may have to be sent again.
        next.auth_code = None;
    }
    if next.state.is_settled() && next.settled_at.is_none() {
        next.settled_at = Some(Millis(now));
    }
    match counter {
        Counter::None => {}
        Counter::Query => next.query_count += 1,
        Counter::Reverse => next.reverse_count += 1,
    }
    next
}

/// A unique, WeChat-valid order or refund number: prefix, business day, 22 random
/// alphanumerics (32 characters in all).
fn new_out_trade_no(prefix: &str, day: NaiveDate) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}{}", day.format("%Y%m%d"), &random[..22])
}

impl Shared {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        lock(&self.schedule)
    }

    fn schedule_at(&self, key: Key, at: machine::Millis) {
        self.schedule().set(key, at);
        self.wake.notify_one();
    }

    /// Tries `key` again after [`STORE_RETRY`], when the database failed its step.
    fn retry_later(&self, key: Key) {
        self.schedule_at(key, Millis::now().plus(STORE_RETRY).0);
    }

    /// After a payment change is committed: tell long-polls, count the transition, and
    /// schedule (or forget) its next action.
    fn committed(&self, previous: PaymentState, saved: &PaymentRecord) {
        if let Some(sender) = lock(&self.watchers).get(&saved.id) {
            sender.send_replace(Some(Arc::new(saved.clone())));
        }
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
            (Some(_), Some(at)) => self.schedule_at(key, at.0),
            _ => self.schedule().remove(&key),
        }
    }

    /// Re-reads a payment and schedules what it owes.
    async fn resync_payment(&self, payment_id: &str) {
        match self.store.get_payment(payment_id).await {
            Ok(Some(record)) => self.committed(record.state, &record),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(payment = %payment_id, error = %error, "cannot re-read payment; retrying");
                self.retry_later(Key::Payment(payment_id.to_owned()));
            }
        }
    }

    async fn drive(self: Arc<Self>) {
        loop {
            let now = now_ms();
            let due = self.schedule().take_due(now);
            for key in due {
                self.start_step(key);
            }
            let sleep = match self.schedule().next_due() {
                Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
                None => IDLE_SLEEP,
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.notified() => {}
                () = self.stopping.cancelled() => break,
            }
        }
    }

    fn start_step(self: &Arc<Self>, key: Key) {
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

    /// Calls WeChat and records the call's outcome and latency.
    async fn call<R: Request>(
        &self,
        request: &R,
        options: CallOptions,
    ) -> wxpay::Result<R::Response> {
        let started = Instant::now();
        let result = self.client.call_with(request, options).await;
        self.metrics
            .observe_call(R::API, CallOutcome::of(&result), started.elapsed());
        result
    }

    async fn step_payment(&self, payment_id: &str) -> Result<(), StoreError> {
        let claimed = lock(&self.claimed_at_insert).remove(payment_id);
        let is_claimed = claimed.is_some();
        let record = match claimed {
            Some(record) => record,
            None => match self.store.get_payment(payment_id).await? {
                Some(record) => record,
                None => return Ok(()),
            },
        };
        let (Some(action), Some(at)) = (record.next_action, record.next_action_at) else {
            return Ok(());
        };
        if at.0 > now_ms() {
            // Rescheduled later since this entry was queued.
            self.schedule_at(Key::Payment(record.id.clone()), at.0);
            return Ok(());
        }
        let span = tracing::info_span!(
            "payment",
            id = %record.id,
            out_trade_no = %record.out_trade_no,
            action = action.as_str()
        );
        let step = async move {
            match action {
                Action::Micropay => self.micropay(record, is_claimed).await,
                Action::Reverse | Action::CloseReverse => self.reverse(record, action).await,
                Action::Query | Action::PreReverseQuery | Action::FinalQuery | Action::Recheck => {
                    self.query(record, action).await
                }
            }
        };
        step.instrument(span).await
    }

    /// Sends micropay. `claimed`: the payment's insert took its turn and wrote its
    /// write-ahead, so it sends at once.
    async fn micropay(&self, record: PaymentRecord, claimed: bool) -> Result<(), StoreError> {
        if !claimed {
            // Wait for this payment's turn while it is still "not sent".
            self.limiter.reserve().await;
            if self.stopping.is_cancelled() {
                // Shutting down: no new call starts. It is still "not sent" in the store
                // and is sent after the next start.
                return Ok(());
            }
        }
        // What "may have been sent" was before this attempt, restored if it never leaves.
        let was_maybe_sent = record.maybe_sent && !claimed;
        let request = match self.micropay_request(&record) {
            Ok(request) => request,
            Err(message) => {
                let outcome = machine::MicropayOutcome::Rejected { message };
                return self
                    .decide(
                        record,
                        Action::Micropay,
                        Counter::None,
                        move |facts, now| {
                            let mut facts = facts.clone();
                            facts.maybe_sent = was_maybe_sent;
                            machine::after_micropay(
                                &facts,
                                outcome.clone(),
                                &self.settings.timing,
                                now,
                            )
                        },
                    )
                    .await;
            }
        };
        let ahead = if claimed {
            record
        } else {
            // Write-ahead: from here on, a crash means "may have been sent".
            let mut ahead = record.clone();
            ahead.maybe_sent = true;
            ahead.micropay_attempts += 1;
            ahead.submitted_at.get_or_insert(Millis::now());
            match self.store.update_payment(&ahead, "micropay: sending").await {
                Ok(saved) => {
                    self.limiter.admit().await;
                    saved
                }
                Err(StoreError::StaleVersion { .. }) => {
                    self.resync_payment(&record.id).await;
                    return Ok(());
                }
                Err(error) => return Err(error),
            }
        };
        let result = self
            .call(
                &request,
                CallOptions::with_read_timeout(self.settings.micropay_timeout),
            )
            .await;
        let outcome = classify::micropay(result);
        self.decide(ahead, Action::Micropay, Counter::None, move |facts, now| {
            let mut facts = facts.clone();
            // A request that never left does not count as "may have been sent".
            facts.maybe_sent = was_maybe_sent;
            machine::after_micropay(&facts, outcome.clone(), &self.settings.timing, now)
        })
        .await
    }

    /// The micropay request for `record`, or why it cannot be made.
    fn micropay_request(&self, record: &PaymentRecord) -> Result<MicropayRequest, String> {
        let auth_code = record
            .auth_code
            .clone()
            .ok_or_else(|| "付款码已不在记录中，无法重新发送".to_owned())?;
        let out_trade_no = OutTradeNo::new(record.out_trade_no.clone())
            .map_err(|error| format!("订单号无效：{error}"))?;
        let mut request = MicropayRequest::new(
            out_trade_no,
            record.amount_fen,
            auth_code,
            record.description.clone(),
            self.settings.spbill_create_ip.clone(),
        );
        request.device_info = Some(record.terminal_id.replace('-', ""));
        Ok(request)
    }

    async fn query(&self, record: PaymentRecord, action: Action) -> Result<(), StoreError> {
        let outcome = match OutTradeNo::new(record.out_trade_no.clone()) {
            Ok(number) => {
                let request = OrderQueryRequest {
                    order: OrderRef::OutTradeNo(number),
                };
                let result = self.call(&request, CallOptions::default()).await;
                classify::query(result)
            }
            Err(error) => machine::QueryOutcome::Unknown {
                reason: error.to_string(),
            },
        };
        let timing = &self.settings.timing;
        self.decide(record, action, Counter::Query, move |facts, now| {
            let outcome = outcome.clone();
            match action {
                Action::PreReverseQuery => machine::after_pre_reverse_query(facts, outcome, now),
                Action::FinalQuery => machine::after_final_query(facts, outcome, timing, now),
                Action::Recheck => machine::after_recheck(facts, outcome, timing, now),
                Action::Query | Action::Micropay | Action::Reverse | Action::CloseReverse => {
                    machine::after_query(facts, outcome, timing, now)
                }
            }
        })
        .await
    }

    /// Reverses the order: to cancel the payment ([`Action::Reverse`]), or to close the
    /// order of a payment that already ended ([`Action::CloseReverse`]).
    async fn reverse(&self, record: PaymentRecord, action: Action) -> Result<(), StoreError> {
        let outcome = match OutTradeNo::new(record.out_trade_no.clone()) {
            Ok(number) => {
                let request = ReverseRequest {
                    order: OrderRef::OutTradeNo(number),
                };
                let result = self.call(&request, CallOptions::default()).await;
                classify::reverse(result)
            }
            Err(error) => machine::ReverseOutcome::Impossible {
                reason: error.to_string(),
            },
        };
        let timing = &self.settings.timing;
        self.decide(record, action, Counter::Reverse, move |facts, now| {
            if action == Action::CloseReverse {
                machine::after_close_reverse(facts, outcome.clone(), timing, now)
            } else {
                machine::after_reverse(facts, outcome.clone(), timing, now)
            }
        })
        .await
    }

    /// Commits the machine's decision about an outcome of `action`, re-deciding on fresh
    /// facts if the payment changed meanwhile but still owes the same action.
    async fn decide(
        &self,
        mut record: PaymentRecord,
        action: Action,
        counter: Counter,
        decide: impl Fn(&Facts, machine::Millis) -> Transition,
    ) -> Result<(), StoreError> {
        loop {
            let now = now_ms();
            let transition = decide(&facts_of(&record), now);
            let next = apply_transition(&record, &transition, counter, now);
            match self.store.update_payment(&next, &transition.note).await {
                Ok(saved) => {
                    if let Some(close) = transition
                        .close
                        .filter(|_| record.close_state != saved.close_state)
                    {
                        self.closed(&saved, close, &transition.note);
                    }
                    self.committed(record.state, &saved);
                    return Ok(());
                }
                Err(StoreError::StaleVersion { .. }) => {
                    let Some(fresh) = self.store.get_payment(&record.id).await? else {
                        return Ok(());
                    };
                    if fresh.next_action != Some(action) {
                        tracing::info!(
                            payment = %fresh.id,
                            "payment changed during the call; its new plan starts afresh"
                        );
                        self.committed(fresh.state, &fresh);
                        return Ok(());
                    }
                    record = fresh;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Logs and counts a change of a payment's close state (the audit event is written with
    /// the change itself).
    fn closed(&self, saved: &PaymentRecord, close: CloseState, note: &str) {
        self.metrics.observe_close(close);
        match close {
            CloseState::NeedsAttention => tracing::warn!(
                payment = %saved.id,
                out_trade_no = %saved.out_trade_no,
                state = %saved.state,
                %note,
                "order left open at WeChat needs attention: close it in the merchant platform"
            ),
            CloseState::Pending | CloseState::Closed => tracing::info!(
                payment = %saved.id,
                out_trade_no = %saved.out_trade_no,
                close = close.as_str(),
                "order close at WeChat"
            ),
        }
    }

    async fn resync_refund(&self, refund_id: &str) {
        match self.store.get_refund(refund_id).await {
            Ok(Some(refund)) => self.refund_committed(&refund),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(refund = %refund_id, error = %error, "cannot re-read refund; retrying");
                self.retry_later(Key::Refund(refund_id.to_owned()));
            }
        }
    }

    fn refund_committed(&self, refund: &RefundRecord) {
        let key = Key::Refund(refund.id.clone());
        match (refund.state, refund.next_action_at) {
            (RefundState::Queued | RefundState::Submitting | RefundState::Processing, Some(at)) => {
                self.schedule_at(key, at.0);
            }
            _ => self.schedule().remove(&key),
        }
    }

    async fn step_refund(&self, refund_id: &str) -> Result<(), StoreError> {
        let Some(mut refund) = self.store.get_refund(refund_id).await? else {
            return Ok(());
        };
        let Some(payment) = self.store.get_payment(&refund.payment_id).await? else {
            return Ok(());
        };
        let now = Millis::now();
        if let Some(at) = refund.next_action_at {
            if at > now {
                self.refund_committed(&refund);
                return Ok(());
            }
        }
        let out_trade_no = OutTradeNo::new(payment.out_trade_no.clone());
        let out_refund_no = OutRefundNo::new(refund.out_refund_no.clone());
        let (Ok(out_trade_no), Ok(out_refund_no)) = (out_trade_no, out_refund_no) else {
            refund.state = RefundState::Failed;
            let (code, message) = FailureCode::InvalidNumber.with_copy(CashierCopy::REFUND_FAILED);
            refund.failure_code = Some(code.into());
            refund.failure_message = Some(message.into());
            refund.next_action_at = None;
            let before = refund.state;
            return self.save_refund(refund, &payment, before).await;
        };
        let before = refund.state;
        let spacing = self.settings.timing.refund_spacing;
        if matches!(refund.state, RefundState::Queued | RefundState::Submitting) {
            let others = self.store.refunds_for_payment(&payment.id).await?;
            if let Some(until) = spacing::hold_until(&refund, &others, spacing, now) {
                if refund.state != RefundState::Queued || refund.next_action_at != Some(until) {
                    tracing::info!(refund = %refund.id, "refund queued behind the payment's previous refund");
                    refund.state = RefundState::Queued;
                    refund.next_action_at = Some(until);
                    return self.save_refund(refund, &payment, before).await;
                }
                self.refund_committed(&refund);
                return Ok(());
            }
        }
        refund.attempts += 1;
        let retry_at = |attempts: u32| {
            Some(Millis(
                now.0 + machine::backoff(&self.settings.timing, attempts),
            ))
        };
        match refund.state {
            RefundState::Queued | RefundState::Submitting => {
                let request = RefundRequest {
                    order: OrderRef::OutTradeNo(out_trade_no),
                    out_refund_no,
                    total_fee: payment.amount_fen,
                    refund_fee: refund.amount_fen,
                    refund_desc: refund.reason.clone(),
                    refund_account: None,
                    notify_url: None,
                };
                let result = self.call(&request, CallOptions::default()).await;
                // When the application ended: WeChat's minute counts from no later than this.
                let ended = Millis::now();
                match classify::refund(result) {
                    RefundOutcome::Accepted { refund_id } => {
                        refund.state = RefundState::Processing;
                        refund.wechat_refund_id = Some(refund_id);
                        refund.applied_at = Some(ended);
                        refund.next_action_at = Some(now.plus(self.settings.refund_query_interval));
                    }
                    RefundOutcome::TooSoon => {
                        // Clocks disagree, or WeChat limits more than the spacing: nothing
                        // was applied. Hold it another spacing rather than fail it.
                        tracing::info!(refund = %refund.id, "WeChat said FREQUENCY_LIMITED: refund queued again");
                        refund.state = RefundState::Queued;
                        refund.next_action_at = Some(ended.plus(spacing));
                    }
                    RefundOutcome::Retry { reason } => {
                        tracing::info!(refund = %refund.id, %reason, "refund to be sent again");
                        // It may have been applied for: later refunds wait from here.
                        refund.state = RefundState::Submitting;
                        refund.applied_at = Some(ended);
                        refund.next_action_at = retry_at(refund.attempts);
                    }
                    RefundOutcome::Refused { code, message } if refund.attempts > 1 => {
                        // An earlier attempt may have been accepted; ask before failing.
                        tracing::info!(refund = %refund.id, %code, %message, "refund refused after an unclear attempt: querying");
                        refund.state = RefundState::Processing;
                        refund.next_action_at = Some(now);
                    }
                    RefundOutcome::Refused { code, message } => {
                        refund.state = RefundState::Failed;
                        refund.failure_code = Some(code);
                        refund.failure_message = Some(message);
                        refund.next_action_at = None;
                    }
                }
            }
            RefundState::Processing => {
                let request = RefundQueryRequest {
                    by: RefundQueryBy::OutRefundNo(out_refund_no),
                    offset: None,
                };
                let result = self.call(&request, CallOptions::default()).await;
                match classify::refund_query(result, &refund.out_refund_no) {
                    RefundQueryOutcome::Succeeded => {
                        refund.state = RefundState::Succeeded;
                        refund.next_action_at = None;
                    }
                    RefundQueryOutcome::Processing => {
                        refund.next_action_at = Some(now.plus(self.settings.refund_query_interval));
                    }
                    RefundQueryOutcome::Failed { code, message } => {
                        refund.state = RefundState::Failed;
                        refund.failure_code = Some(code);
                        refund.failure_message = Some(message);
                        refund.next_action_at = None;
                    }
                    RefundQueryOutcome::NotFound if refund.wechat_refund_id.is_none() => {
                        refund.state = RefundState::Failed;
                        let (code, message) =
                            FailureCode::RefundNotAccepted.with_copy(CashierCopy::REFUND_FAILED);
                        refund.failure_code = Some(code.into());
                        refund.failure_message = Some(message.into());
                        refund.next_action_at = None;
                    }
                    RefundQueryOutcome::NotFound | RefundQueryOutcome::Unknown { .. } => {
                        refund.next_action_at = retry_at(refund.attempts);
                    }
                }
            }
            RefundState::Succeeded | RefundState::Failed => return Ok(()),
        }
        self.save_refund(refund, &payment, before).await
    }

    /// Commits a refund change. A refund that settles, or enters or leaves `queued`, also
    /// touches its payment, so the payment's version moves and long-polls see the refund.
    async fn save_refund(
        &self,
        refund: RefundRecord,
        payment: &PaymentRecord,
        before: RefundState,
    ) -> Result<(), StoreError> {
        let saved = match self.store.update_refund(&refund).await {
            Ok(saved) => saved,
            Err(StoreError::StaleVersion { .. }) => {
                self.resync_refund(&refund.id).await;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        self.refund_committed(&saved);
        let queue_changed = saved.state != before
            && (saved.state == RefundState::Queued || before == RefundState::Queued);
        if matches!(saved.state, RefundState::Succeeded | RefundState::Failed) || queue_changed {
            let note = format!(
                "refund {} of {} {}",
                saved.out_refund_no,
                saved.amount_fen,
                match saved.state {
                    RefundState::Succeeded => "succeeded",
                    RefundState::Failed => "failed",
                    RefundState::Queued => "queued behind the previous refund",
                    RefundState::Submitting | RefundState::Processing => "sent after its wait",
                }
            );
            let mut payment = payment.clone();
            loop {
                match self.store.update_payment(&payment, &note).await {
                    Ok(stored) => {
                        self.committed(payment.state, &stored);
                        break;
                    }
                    Err(StoreError::StaleVersion { .. }) => {
                        match self.store.get_payment(&payment.id).await? {
                            Some(fresh) => payment = fresh,
                            None => break,
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }
}
