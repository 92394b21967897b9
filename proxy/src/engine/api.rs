//! [`Engine`]: what the HTTP layer and the command line ask of the payments engine (create,
//! cancel, refund, watch, start and stop), with its settings and errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use paycode_api::{CreatePayment, CreateRefund, PaymentState};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wxpay::messages::{OutRefundNo, OutTradeNo};

use super::driver::{ClaimedAtInsert, Shared, lock};
use super::leases::{LeaseSettings, Leases};
use super::limiter::RateLimiter;
use super::machine::{self, CancelDecision, Timing};
use super::refunds;
use super::schedule::{Key, Schedule};
use super::steps::{Counter, apply_transition, facts_of};
use super::watch::Watch;
use crate::config::{Config, ShopConfig, StoreBackend};
use crate::instance::Instance;
use crate::metrics::{Metrics, Snapshot};
use crate::store::records::auth_code_fingerprint;
use crate::store::{
    InsertOutcome, Millis, PaymentRecord, RefundRecord, Store, StoreError, StoreRecord,
};
use crate::stores::{self, BindingError};
use crate::wechat::AccountClients;

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
    /// How far ahead of the send a micropay's `time_expire` is.
    pub micropay_expire_after: Duration,
    /// Who this engine is and how it holds its leases.
    pub leases: LeaseSettings,
}

impl EngineSettings {
    /// The settings `config` describes, for the run `instance`.
    pub fn from_config(config: &Config, instance: &Instance) -> EngineSettings {
        let payments = &config.payments;
        let leases = &config.leases;
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
                expire_skew_margin: payments.expire_skew_margin,
            },
            micropay_timeout: config.wechat.micropay_read_timeout,
            spbill_create_ip: payments.spbill_create_ip.to_string(),
            default_description: payments.default_description.clone(),
            micropay_rate_per_second: payments.micropay_rate_per_second,
            refund_query_interval: payments.query_interval,
            shop: config.shop.clone(),
            micropay_expire_after: payments.micropay_expire_after,
            leases: LeaseSettings {
                owner: instance.run_id.clone(),
                shared: config.store.backend() == StoreBackend::Postgres,
                duration: leases.duration,
                renew_interval: leases.renew_interval,
                safety_margin: leases.safety_margin,
                claim_interval: leases.claim_interval,
            },
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
    /// The terminal's store is disabled: it takes no new payments.
    #[error("store {0} is disabled and takes no new payments")]
    StoreDisabled(String),
    /// The terminal's store does not fit the configured accounts (checked at start, so
    /// only a store changed since then gets here).
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The payments engine. Cheap to clone; every clone drives the same payments.
#[derive(Clone)]
pub struct Engine {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scheduled", &self.shared.schedule().len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store` that calls WeChat through the `accounts`' clients. Nothing
    /// runs until [`Engine::start`].
    pub fn new(
        store: Arc<dyn Store>,
        accounts: Arc<AccountClients>,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> Engine {
        // One limit per merchant account, counted on its mch_id (the provider's in provider
        // mode): docs/design.md, "Load".
        let limiters = accounts
            .iter()
            .map(|client| {
                (
                    client.account.mch_id.clone(),
                    RateLimiter::per_second(settings.micropay_rate_per_second),
                )
            })
            .collect();
        let leases = Leases::new(settings.leases.clone());
        Engine {
            shared: Arc::new(Shared {
                leases,
                claim_now: Notify::new(),
                store,
                accounts,
                limiters,
                settings,
                schedule: Mutex::new(Schedule::default()),
                in_flight: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                watchers: Mutex::default(),
                claimed_at_insert: Mutex::new(HashMap::new()),
                metrics,
                tasks: TaskTracker::new(),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// Claims the work this engine drives and starts the driver task: on SQLite (one owner)
    /// every unsettled payment, pending close and unfinished refund, taken over from the
    /// previous run; on PostgreSQL only what is due and nobody holds, and then, every
    /// `claim_interval` (and on [`Engine::claim_now`]), more as it comes due, renewing the
    /// leases held meanwhile (docs/postgresql.md §4). Returns how many payments and refunds
    /// were claimed at start.
    pub async fn start(&self) -> Result<(usize, usize), StoreError> {
        let shared = &self.shared;
        let (payments, refunds) = shared.claim(!shared.leases.settings.shared).await?;
        if payments + refunds > 0 {
            tracing::info!(payments, refunds, "claimed unfinished work");
        }
        let expire_after = shared.settings.micropay_expire_after;
        if expire_after <= Duration::from_secs(60) {
            tracing::warn!(
                ?expire_after,
                "payments.micropay_expire_after is not more than a minute: WeChat refuses such a \
                 time_expire (docs/wechat-pay.md §6.4); only a simulator on scaled time accepts it"
            );
        }
        let driver = Arc::clone(&self.shared);
        self.shared.tasks.spawn(async move { driver.drive().await });
        if shared.leases.settings.shared {
            let keeper = Arc::clone(&self.shared);
            self.shared
                .tasks
                .spawn(async move { keeper.keep_leases().await });
        }
        Ok((payments, refunds))
    }

    /// Asks the engine to look for due work nobody holds now rather than at its next
    /// `claim_interval` (a wake-up: another instance stopped, or wrote a change).
    pub fn claim_now(&self) {
        self.shared.claim_now.notify_one();
    }

    /// How many payments and refunds this engine holds leases on.
    pub fn leases_held(&self) -> usize {
        self.shared.leases.len()
    }

    /// Stops starting new WeChat calls, waits for those in flight to finish and commit, and
    /// hands back the leases held, so that another instance may take the work at once.
    /// Pending payments stay in the store and resume on the next start (or claim).
    pub async fn shutdown(&self) {
        self.shared.stopping.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        self.shared.release_all().await;
    }

    /// Stores a new payment of `terminal_id` at `store`, made with the store's merchant
    /// fields, and schedules its micropay; or returns the payment already stored under the
    /// same `attempt_id` (see [`Store::insert_payment`]). A disabled store takes no new
    /// payment ([`EngineError::StoreDisabled`]), though a repeated `attempt_id` still gets
    /// its payment back.
    pub async fn create_payment(
        &self,
        terminal_id: &str,
        store: &StoreRecord,
        request: CreatePayment,
    ) -> Result<InsertOutcome<PaymentRecord>, EngineError> {
        let shared = &self.shared;
        if store.disabled_at.is_some() {
            let existing = shared
                .store
                .get_payment_by_attempt(request.attempt_id.as_str())
                .await?;
            let Some(existing) = existing else {
                return Err(EngineError::StoreDisabled(store.name.clone()));
            };
            // A replay of a payment taken before the store was disabled: the same answer as
            // the store's idempotency check would give.
            let same = existing.terminal_id == terminal_id
                && existing.amount_fen == request.amount_fen
                && existing.auth_code_fingerprint.as_deref()
                    == Some(auth_code_fingerprint(&request.auth_code).as_str());
            return if same {
                Ok(InsertOutcome::Existing(existing))
            } else {
                Err(StoreError::Conflict {
                    entity: "payment",
                    attempt_id: request.attempt_id.to_string(),
                    differs: "terminal_id, amount_fen or auth_code",
                }
                .into())
            };
        }
        let merchant = stores::merchant_ids(&shared.accounts.accounts(), store)?;
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
            (store.id.clone(), merchant),
            new_out_trade_no(business_day),
            request.amount_fen,
            request.auth_code,
            description,
            now,
            business_day,
        );
        let (state, action, at) = machine::created(now);
        record.state = state;
        record.next_action = Some(action);
        record.next_action_at = Some(at);
        let expire_after = shared.settings.micropay_expire_after;
        // When micropay may leave at once, the insert doubles as its write-ahead: one commit
        // instead of two on the counter's critical path. Otherwise the payment waits for its
        // turn stored as "not sent", and the step commits the write-ahead when it is due.
        let claimed = shared
            .limiter(&record.merchant.mch_id)
            .and_then(|limiter| limiter.try_now());
        if claimed.is_some() {
            record.maybe_sent = true;
            record.micropay_attempts = 1;
            record.submitted_at = Some(now);
            record.time_expire = Some(machine::time_expire(now, expire_after));
        }
        // Inserted already leased to this instance: it drives the payment without a claim.
        let sent = tokio::time::Instant::now();
        let outcome = shared
            .store
            .insert_leased_payment(&record, shared.leases.terms())
            .await?;
        if let InsertOutcome::Inserted(stored) = &outcome {
            shared.metrics.observe_transition(stored.state);
            let key = Key::Payment(stored.id.clone());
            shared.leases.hold(
                key.clone(),
                stored.lease_epoch,
                stored.version,
                sent,
                shared.leases.settings.duration,
            );
            if let Some(claim) = claimed {
                // Its turn is now: send straight away, with the record in hand.
                lock(&shared.claimed_at_insert)
                    .insert(stored.id.clone(), ClaimedAtInsert(stored.clone(), claim));
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
            let now = Millis::now();
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
                // Not the engine: a cancel changes the plan without taking the lease, so a
                // claim by another instance meanwhile only means reading again.
                Err(StoreError::StaleVersion { .. } | StoreError::LeaseLost { .. }) => continue,
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
        let refund = RefundRecord::new_submitting(
            uuid::Uuid::new_v4().to_string(),
            &payment,
            request.refund_attempt_id,
            new_out_refund_no(shared.settings.shop.business_day(now)),
            request.amount_fen,
            request.reason,
            now,
        );
        // A refund asked for within a minute of the payment's previous one is stored
        // `queued` with the time it may go, so the cashier is told at once.
        let others = shared.store.refunds_for_payment(&payment.id).await?;
        let refund = refunds::planned(refund, &others, shared.settings.timing.refund_spacing, now);
        let sent = tokio::time::Instant::now();
        let outcome = shared
            .store
            .insert_leased_refund(&refund, shared.leases.terms())
            .await?;
        if let InsertOutcome::Inserted(stored) = &outcome {
            shared.leases.hold(
                Key::Refund(stored.id.clone()),
                stored.lease_epoch,
                stored.version,
                sent,
                shared.leases.settings.duration,
            );
            shared.refund_committed(stored);
        }
        Ok(outcome)
    }

    /// Subscribes to a payment: the subscription sees every version the engine or a cancel
    /// commits, as committed. Subscribe *before* reading the payment so no change is missed.
    pub fn watch(&self, payment_id: &str) -> Watch {
        Watch::subscribe(&self.shared, payment_id)
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
        let store = &self.shared.store;
        let open = store.count_open_books_mismatches().await?;
        let books_open_mismatches = self
            .shared
            .accounts
            .iter()
            .map(|client| {
                let account = &client.account;
                let count = open
                    .iter()
                    .find(|(mch_id, _)| *mch_id == account.mch_id)
                    .map_or(0, |(_, count)| *count);
                (account.name.clone(), count)
            })
            .collect();
        let today = self.shared.settings.shop.business_day(Millis::now());
        let month_ago = today - chrono::Days::new(31);
        let books_days_unreconciled = store
            .books_days(month_ago, today)
            .await?
            .iter()
            .filter(|day| day.status != crate::books::records::DayStatus::Reconciled)
            .count() as u64;
        Ok(Snapshot {
            payments_by_state: store.count_payments_by_state().await?,
            scheduled: self.shared.schedule().len(),
            in_flight: lock(&self.shared.in_flight).len(),
            books_open_mismatches,
            books_days_unreconciled,
        })
    }
}

/// A unique order number: `PC`, the business day, 22 random alphanumerics (32 characters).
fn new_out_trade_no(day: NaiveDate) -> OutTradeNo {
    OutTradeNo::new(new_number("PC", day)).expect("32 ASCII alphanumerics are an out_trade_no")
}

/// A unique refund number: `RF`, the business day, 22 random alphanumerics (32 characters).
fn new_out_refund_no(day: NaiveDate) -> OutRefundNo {
    OutRefundNo::new(new_number("RF", day)).expect("32 ASCII alphanumerics are an out_refund_no")
}

/// `prefix`, the day as `YYYYMMDD`, and 22 random lower-case hex digits.
fn new_number(prefix: &str, day: NaiveDate) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}{}", day.format("%Y%m%d"), &random[..22])
}
