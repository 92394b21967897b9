//! The refund step: load the refund and its payment, hold it behind the payment's previous
//! refund if the spacing says so, make the refund or refundquery call, and commit what
//! [`refunds`](crate::engine::refunds) decides. A refund change the cashier should see also
//! touches its payment, so the payment's long-polls wake.

use paycode_api::RefundState;
use wxpay::client::CallOptions;
use wxpay::messages::{OrderRef, RefundQueryBy, RefundQueryRequest, RefundRequest};

use crate::engine::classify;
use crate::engine::driver::Shared;
use crate::engine::refunds::{self, Hold, RefundDecision};
use crate::engine::schedule::Key;
use crate::store::{Millis, PaymentRecord, RefundRecord, StoreError};

impl Shared {
    /// Re-reads a refund and schedules what it owes.
    pub(in crate::engine) async fn resync_refund(&self, refund_id: &str) {
        match self.store.get_refund(refund_id).await {
            Ok(Some(refund)) => self.refund_committed(&refund),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(refund = %refund_id, error = %error, "cannot re-read refund; retrying");
                self.retry_later(Key::Refund(refund_id.to_owned()));
            }
        }
    }

    /// After a refund change is committed: schedule (or forget) its next step.
    pub(in crate::engine) fn refund_committed(&self, refund: &RefundRecord) {
        let key = Key::Refund(refund.id.clone());
        match refunds::next_step_at(refund) {
            Some(at) => self.schedule_at(key, at),
            None => self.schedule().remove(&key),
        }
    }

    pub(in crate::engine) async fn step_refund(&self, refund_id: &str) -> Result<(), StoreError> {
        let key = Key::Refund(refund_id.to_owned());
        let Some(epoch) = self.leases.epoch(&key) else {
            return Ok(());
        };
        let Some(refund) = self.store.get_refund(refund_id).await? else {
            return Ok(());
        };
        if refund.lease_epoch != epoch {
            return Err(StoreError::LeaseLost {
                entity: "refund",
                id: refund.id,
                expected: epoch,
            });
        }
        let Some(payment) = self.store.get_payment(&refund.payment_id).await? else {
            return Ok(());
        };
        let now = Millis::now();
        if refunds::not_yet_due(&refund, now) {
            self.refund_committed(&refund);
            return Ok(());
        }
        let before = refund.state;
        if matches!(refund.state, RefundState::Queued | RefundState::Submitting) {
            let others = self.store.refunds_for_payment(&payment.id).await?;
            match refunds::hold(&refund, &others, self.settings.timing.refund_spacing, now) {
                Hold::Go => {}
                Hold::Requeue(decision) => {
                    return self.commit_refund(*decision, &payment, before).await;
                }
                Hold::AlreadyQueued => {
                    self.refund_committed(&refund);
                    return Ok(());
                }
            }
        }
        if !self.may_call(&key).await {
            return Ok(());
        }
        let refund = refunds::attempted(&refund);
        let timing = &self.settings.timing;
        let query_interval = self.settings.refund_query_interval;
        let decision = match refund.state {
            RefundState::Queued | RefundState::Submitting => {
                let request = RefundRequest {
                    order: OrderRef::OutTradeNo(payment.out_trade_no.clone()),
                    out_refund_no: refund.out_refund_no.clone(),
                    total_fee: payment.amount_fen,
                    refund_fee: refund.amount_fen,
                    refund_desc: refund.reason.clone(),
                    refund_account: None,
                    notify_url: None,
                };
                let result = self
                    .call(&refund.merchant, &request, CallOptions::default())
                    .await;
                // When the application ended: WeChat's minute counts from no later than this.
                let ended = Millis::now();
                let outcome = classify::refund(result);
                refunds::after_refund(&refund, outcome, timing, query_interval, now, ended)
            }
            RefundState::Processing => {
                let request = RefundQueryRequest {
                    by: RefundQueryBy::OutRefundNo(refund.out_refund_no.clone()),
                    offset: None,
                };
                let result = self
                    .call(&refund.merchant, &request, CallOptions::default())
                    .await;
                let outcome = classify::refund_query(result, refund.out_refund_no.as_str());
                refunds::after_refund_query(&refund, outcome, timing, query_interval, now)
            }
            RefundState::Succeeded | RefundState::Failed => return Ok(()),
        };
        self.commit_refund(decision, &payment, before).await
    }

    /// Logs a decision's note, then commits its refund.
    async fn commit_refund(
        &self,
        decision: RefundDecision,
        payment: &PaymentRecord,
        before: RefundState,
    ) -> Result<(), StoreError> {
        if let Some(note) = &decision.note {
            tracing::info!(refund = %decision.refund.id, "{note}");
        }
        self.save_refund(decision.refund, payment, before).await
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
        let Some(note) = refunds::payment_note(&saved, before) else {
            return Ok(());
        };
        let mut payment = payment.clone();
        loop {
            match self.store.update_payment(&payment, &note).await {
                Ok(stored) => {
                    self.committed(payment.state, &stored);
                    return Ok(());
                }
                // Only a touch of the payment (its long-polls see the refund), not a step of
                // it: whoever holds the payment, if anyone, the touch goes on the fresh copy.
                Err(StoreError::StaleVersion { .. } | StoreError::LeaseLost { .. }) => {
                    match self.store.get_payment(&payment.id).await? {
                        Some(fresh) => payment = fresh,
                        None => return Ok(()),
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}
