//! The payment step: load the payment, make exactly the WeChat call its stored `next_action`
//! names (micropay, orderquery or reverse), classify the reply, let
//! [`machine`](crate::engine::machine) decide, and commit the decision with a version check.

use paycode_api::PaymentState;
use tokio::time::Instant;
use tracing::Instrument;
use wxpay::client::CallOptions;
use wxpay::messages::{MicropayRequest, OrderQueryRequest, OrderRef, ReverseRequest};

use crate::engine::classify;
use crate::engine::driver::{ClaimedAtInsert, Shared, lock};
use crate::engine::limiter::Claim;
use crate::engine::machine::{self, Action, CloseState, Facts, PendingFailure, Transition};
use crate::engine::schedule::Key;
use crate::store::{Millis, PaymentRecord, StoreError};

/// How a micropay step got its turn under the rate limit.
enum MicropayTurn {
    /// Stored as "not sent": wait for a turn, then commit the write-ahead before sending.
    Waiting(PaymentRecord),
    /// Took its turn and wrote its write-ahead with the insert ([`ClaimedAtInsert`]): send
    /// at once.
    ClaimedAtInsert(PaymentRecord, Claim),
}

impl Shared {
    pub(in crate::engine) async fn step_payment(&self, payment_id: &str) -> Result<(), StoreError> {
        let key = Key::Payment(payment_id.to_owned());
        let claimed = lock(&self.claimed_at_insert).remove(payment_id);
        let Some(epoch) = self.leases.epoch(&key) else {
            // Not (or no longer) this engine's to drive: its holder, or the next claim, does.
            return Ok(());
        };
        let (record, claim) = match claimed {
            Some(ClaimedAtInsert(record, claim)) => (record, Some(claim)),
            None => match self.store.get_payment(payment_id).await? {
                Some(record) => (record, None),
                None => return Ok(()),
            },
        };
        if record.lease_epoch != epoch {
            // Claimed by another instance since this engine took it.
            return Err(lease_lost(&record.id, epoch));
        }
        let (Some(action), Some(at)) = (record.next_action, record.next_action_at) else {
            return Ok(());
        };
        if at > Millis::now() {
            // Rescheduled later since this entry was queued.
            self.schedule_at(Key::Payment(record.id.clone()), at);
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
                Action::Micropay if claim.is_some() => {
                    let claim = claim.expect("checked by the guard");
                    self.micropay(MicropayTurn::ClaimedAtInsert(record, claim))
                        .await
                }
                Action::Micropay => self.micropay(MicropayTurn::Waiting(record)).await,
                Action::Reverse | Action::CloseReverse => self.reverse(record, action).await,
                Action::Query | Action::PreReverseQuery | Action::FinalQuery | Action::Recheck => {
                    self.query(record, action).await
                }
            }
        };
        step.instrument(span).await
    }

    /// Sends micropay, after waiting for the payment's turn unless it was claimed at insert.
    async fn micropay(&self, turn: MicropayTurn) -> Result<(), StoreError> {
        let (record, claim) = match turn {
            MicropayTurn::Waiting(record) => (record, None),
            MicropayTurn::ClaimedAtInsert(record, claim) => (record, Some(claim)),
        };
        let key = Key::Payment(record.id.clone());
        let claimed = claim.is_some();
        if !claimed && !self.may_call(&key).await {
            return Ok(());
        }
        let limiter = self.limiter(&record.merchant.mch_id);
        if let (false, Some(limiter)) = (claimed, limiter) {
            // Wait for this payment's turn while it is still "not sent".
            limiter.reserve().await;
            if self.stopping.is_cancelled() {
                // Shutting down: no new call starts. It is still "not sent" in the store
                // and is sent after the next start.
                return Ok(());
            }
        }
        // What "may have been sent" was before this attempt, restored if it never leaves.
        let was_maybe_sent = record.maybe_sent && !claimed;
        let mut request = match self.micropay_request(&record) {
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
        let (ahead, claim) = if let Some(claim) = claim {
            (record, Some(claim))
        } else {
            // Write-ahead: from here on, a crash means "may have been sent". The
            // time_expire goes with it, so whoever owns the payment later knows until when
            // this micropay could still arrive.
            let now = Millis::now();
            let mut ahead = record.clone();
            ahead.maybe_sent = true;
            ahead.micropay_attempts += 1;
            ahead.submitted_at.get_or_insert(now);
            let expire = machine::time_expire(now, self.settings.micropay_expire_after);
            ahead.time_expire = Some(ahead.time_expire.map_or(expire, |at| at.max(expire)));
            match self.store.update_payment(&ahead, "micropay: sending").await {
                Ok(saved) => (saved, None),
                Err(StoreError::StaleVersion { .. }) => {
                    self.resync_payment(&record.id).await;
                    return Ok(());
                }
                Err(error) => return Err(error),
            }
        };
        request.time_expire = ahead.time_expire.map(beijing_time);
        // The lease is checked (and renewed on the spot if short) before the rate limit's
        // send slot is taken, so a database round trip never bunches sends; after the
        // slot's wait it is checked once more on the local clock alone, the last moment to
        // notice a lost lease before the request leaves.
        // What the payment's times count from (`submitted_at`: the 15 s before a reverse,
        // the deadline). WeChat's order starts when micropay arrives, which is after the
        // write-ahead's stamp (the gates below can hold the request) and after it left (its
        // transit). An answered micropay counts from the answer, when the order surely
        // exists; an unanswered one from when it left.
        let mut counted_from = None;
        let outcome = if self.may_call(&key).await {
            if let Some(limiter) = limiter {
                match claim {
                    Some(claim) => limiter.sending(claim).await,
                    None => limiter.admit().await,
                }
            }
            if self.leases.may_call(&key, Instant::now()) {
                let sent_at = Millis::now();
                let result = self
                    .call(
                        &ahead.merchant,
                        &request,
                        CallOptions::with_read_timeout(self.settings.micropay_timeout),
                    )
                    .await;
                counted_from = Some(match &result {
                    Err(wxpay::Error::NotSent(_) | wxpay::Error::MaybeSent(_)) => sent_at,
                    _ => Millis::now(),
                });
                classify::micropay(result)
            } else {
                lease_too_short()
            }
        } else {
            lease_too_short()
        };
        let mut ahead = ahead;
        if let Some(counted_from) = counted_from {
            // Stored with the decision, so later steps (a cancel's reverse) count from it too.
            ahead.submitted_at = Some(counted_from);
        }
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
        let mut request = MicropayRequest::new(
            record.out_trade_no.clone(),
            record.amount_fen,
            auth_code,
            record.description.clone(),
            self.settings.spbill_create_ip.clone(),
        );
        request.device_info = Some(record.terminal_id.replace('-', ""));
        Ok(request)
    }

    async fn query(&self, record: PaymentRecord, action: Action) -> Result<(), StoreError> {
        if !self.may_call(&Key::Payment(record.id.clone())).await {
            return Ok(());
        }
        let outcome = self.order_query(&record).await;
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

    /// Asks WeChat about `record`'s order (orderquery by `out_trade_no`, with the account
    /// and sub-merchant it was made with) and classifies the reply. Read-only at WeChat:
    /// the caller decides what the answer changes.
    pub(in crate::engine) async fn order_query(
        &self,
        record: &PaymentRecord,
    ) -> machine::QueryOutcome {
        let request = OrderQueryRequest {
            order: OrderRef::OutTradeNo(record.out_trade_no.clone()),
        };
        classify::query(
            self.call(&record.merchant, &request, CallOptions::default())
                .await,
        )
    }

    /// Reverses the order: to cancel the payment ([`Action::Reverse`]), or to close the
    /// order of a payment that already ended ([`Action::CloseReverse`]).
    async fn reverse(&self, record: PaymentRecord, action: Action) -> Result<(), StoreError> {
        if !self.may_call(&Key::Payment(record.id.clone())).await {
            return Ok(());
        }
        let request = ReverseRequest {
            order: OrderRef::OutTradeNo(record.out_trade_no.clone()),
        };
        let outcome = classify::reverse(
            self.call(&record.merchant, &request, CallOptions::default())
                .await,
        );
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
        decide: impl Fn(&Facts, Millis) -> Transition,
    ) -> Result<(), StoreError> {
        loop {
            let now = Millis::now();
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
                    if fresh.lease_epoch != record.lease_epoch {
                        return Err(lease_lost(&record.id, record.lease_epoch));
                    }
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
}

/// Which per-payment counter a step bumps when it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::engine) enum Counter {
    /// No counter.
    None,
    /// `query_count`.
    Query,
    /// `reverse_count`.
    Reverse,
}

/// The machine's view of a stored payment.
pub(in crate::engine) fn facts_of(record: &PaymentRecord) -> Facts {
    Facts {
        state: record.state,
        submitted_at: record.submitted_at,
        maybe_sent: record.maybe_sent,
        seen_paid: record.seen_paid,
        cancel_requested: record.cancel_requested,
        pending_failure: record.pending_failure.clone(),
        reverse_attempts: record.reverse_attempts,
        not_sent_attempts: record.not_sent_attempts,
        time_expire: record.time_expire,
    }
}

/// A micropay not sent because the lease had too little left: "not sent", so the machine
/// may resend it (under a lease) within the deadline.
fn lease_too_short() -> machine::MicropayOutcome {
    machine::MicropayOutcome::NotSent {
        reason: "the lease is too close to its end".to_owned(),
    }
}

/// The refusal of a write by an engine that no longer holds `id` at `epoch`.
fn lease_lost(id: &str, epoch: u64) -> StoreError {
    StoreError::LeaseLost {
        entity: "payment",
        id: id.to_owned(),
        expected: epoch,
    }
}

/// `at` as WeChat's `yyyyMMddHHmmss` in Beijing time (UTC+8), the format of `time_expire`
/// (docs/wechat-pay.md §6.4).
fn beijing_time(at: Millis) -> String {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    at.to_datetime()
        .with_timezone(&beijing)
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// The record after `transition`, ready to commit.
pub(in crate::engine) fn apply_transition(
    record: &PaymentRecord,
    transition: &Transition,
    counter: Counter,
    now: Millis,
) -> PaymentRecord {
    let mut next = record.clone();
    next.state = transition.state;
    next.next_action = transition.next.map(|(action, _)| action);
    next.next_action_at = transition.next.map(|(_, at)| at);
    if let Some(transaction_id) = &transition.transaction_id {
        next.transaction_id = Some(transaction_id.clone());
    }
    next.seen_paid = transition.seen_paid;
    next.maybe_sent = transition.maybe_sent;
    if let Some(failure) = &transition.failure {
        next.failure_code = Some(failure.code.clone());
        next.failure_message = Some(failure.message.clone());
    }
    match &transition.pending_failure {
        PendingFailure::Keep => {}
        PendingFailure::Set(failure) => next.pending_failure = Some(failure.clone()),
        PendingFailure::Clear => next.pending_failure = None,
    }
    next.reverse_attempts = transition.reverse_attempts;
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
        next.settled_at = Some(now);
    }
    match counter {
        Counter::None => {}
        Counter::Query => next.query_count += 1,
        Counter::Reverse => next.reverse_count += 1,
    }
    next
}
