//! The refund rules, as pure functions beside the payment rules of [`machine`]:
//! given a stored refund, the time, and what WeChat said, what the refund becomes. They never
//! perform I/O or read the clock; the refund step (`steps::refund`) makes the calls and
//! commits what these functions return.
//!
//! A refund goes `submitting` (or `queued` behind the payment's previous refund, see
//! [`spacing`]) → refund call → `processing` → refundquery until
//! `succeeded` or `failed`.

use std::time::Duration;

use paycode_api::{CashierCopy, FailureCode, RefundState};

use super::classify::{RefundOutcome, RefundQueryOutcome};
use super::machine::{self, Timing};
use super::spacing;
use crate::store::{Millis, RefundRecord};

/// A refund as one decision left it, ready to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundDecision {
    /// The refund with its new state, times and failure.
    pub refund: RefundRecord,
    /// What happened, for the log, when it is worth a line of its own.
    pub note: Option<String>,
}

impl RefundDecision {
    fn quiet(refund: RefundRecord) -> RefundDecision {
        RefundDecision { refund, note: None }
    }

    fn noted(refund: RefundRecord, note: String) -> RefundDecision {
        RefundDecision {
            refund,
            note: Some(note),
        }
    }
}

/// A new refund as it is stored: `queued` until the time [`spacing::hold_until`] gives when
/// it is asked for within `spacing` of the payment's previous refund (so the cashier is told
/// at once), else due now.
pub fn planned(
    mut refund: RefundRecord,
    others: &[RefundRecord],
    spacing: Duration,
    now: Millis,
) -> RefundRecord {
    match spacing::hold_until(&refund, others, spacing, now) {
        Some(until) => queue(&mut refund, until),
        None => refund.next_action_at = Some(now),
    }
    refund
}

/// Holds `refund` back until `until` (WeChat's spacing), where the cashier sees it queued.
fn queue(refund: &mut RefundRecord, until: Millis) {
    refund.state = RefundState::Queued;
    refund.next_action_at = Some(until);
}

/// When the engine should next act on `refund`, or `None` when nothing more is owed.
pub fn next_step_at(refund: &RefundRecord) -> Option<Millis> {
    match refund.state {
        RefundState::Queued | RefundState::Submitting | RefundState::Processing => {
            refund.next_action_at
        }
        RefundState::Succeeded | RefundState::Failed => None,
    }
}

/// Whether `refund` was rescheduled to a later time since its step was queued.
pub fn not_yet_due(refund: &RefundRecord, now: Millis) -> bool {
    refund.next_action_at.is_some_and(|at| at > now)
}

/// What a refund about to be applied for does about the spacing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// No earlier refund holds it back: apply for it now.
    Go,
    /// It must wait, and is not yet stored as waiting for that time: commit this.
    Requeue(Box<RefundDecision>),
    /// It must wait, and is already stored `queued` until that time: only schedule it.
    AlreadyQueued,
}

/// Whether `refund` (`queued` or `submitting`) may be applied for now, given the payment's
/// other refunds (see [`spacing::hold_until`]).
pub fn hold(
    refund: &RefundRecord,
    others: &[RefundRecord],
    spacing: Duration,
    now: Millis,
) -> Hold {
    match spacing::hold_until(refund, others, spacing, now) {
        None => Hold::Go,
        Some(until)
            if refund.state == RefundState::Queued && refund.next_action_at == Some(until) =>
        {
            Hold::AlreadyQueued
        }
        Some(until) => {
            let mut held = refund.clone();
            queue(&mut held, until);
            Hold::Requeue(Box::new(RefundDecision::noted(
                held,
                "refund queued behind the payment's previous refund".to_owned(),
            )))
        }
    }
}

/// `refund` as it goes out for one more call (refund or refundquery).
pub fn attempted(refund: &RefundRecord) -> RefundRecord {
    let mut refund = refund.clone();
    refund.attempts += 1;
    refund
}

/// After a refund call: `refund` as returned by [`attempted`], the call started at `now` and
/// ended at `ended` (WeChat's minute counts from no later than that).
pub fn after_refund(
    refund: &RefundRecord,
    outcome: RefundOutcome,
    timing: &Timing,
    query_interval: Duration,
    now: Millis,
    ended: Millis,
) -> RefundDecision {
    let mut refund = refund.clone();
    match outcome {
        RefundOutcome::Accepted { refund_id } => {
            refund.state = RefundState::Processing;
            refund.wechat_refund_id = Some(refund_id);
            refund.applied_at = Some(ended);
            refund.next_action_at = Some(now.plus(query_interval));
            RefundDecision::quiet(refund)
        }
        RefundOutcome::TooSoon => {
            // Clocks disagree, or WeChat limits more than the spacing: nothing was applied.
            // Hold it another spacing rather than fail it.
            queue(&mut refund, ended.plus(timing.refund_spacing));
            RefundDecision::noted(
                refund,
                "WeChat said FREQUENCY_LIMITED: refund queued again".to_owned(),
            )
        }
        RefundOutcome::Retry { reason } => {
            // It may have been applied for: later refunds wait from here.
            refund.state = RefundState::Submitting;
            refund.applied_at = Some(ended);
            refund.next_action_at = Some(retry_at(&refund, timing, now));
            RefundDecision::noted(refund, format!("refund to be sent again: {reason}"))
        }
        RefundOutcome::Refused { code, message } if refund.attempts > 1 => {
            // An earlier attempt may have been accepted; ask before failing.
            refund.state = RefundState::Processing;
            refund.next_action_at = Some(now);
            RefundDecision::noted(
                refund,
                format!("refund refused after an unclear attempt ({code}: {message}): querying"),
            )
        }
        RefundOutcome::Refused { code, message } => {
            refund.state = RefundState::Failed;
            refund.failure_code = Some(code);
            refund.failure_message = Some(message);
            refund.next_action_at = None;
            RefundDecision::quiet(refund)
        }
    }
}

/// After a refundquery made at `now`, for `refund` as returned by [`attempted`].
pub fn after_refund_query(
    refund: &RefundRecord,
    outcome: RefundQueryOutcome,
    timing: &Timing,
    query_interval: Duration,
    now: Millis,
) -> RefundDecision {
    let mut refund = refund.clone();
    match outcome {
        RefundQueryOutcome::Succeeded { refunded_at } => {
            refund.state = RefundState::Succeeded;
            refund.wechat_refunded_at = refunded_at.or(refund.wechat_refunded_at);
            refund.next_action_at = None;
        }
        RefundQueryOutcome::Processing => {
            refund.next_action_at = Some(now.plus(query_interval));
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
            refund.next_action_at = Some(retry_at(&refund, timing, now));
        }
    }
    RefundDecision::quiet(refund)
}

/// The next try after an unclear outcome, backing off with the refund's attempts.
fn retry_at(refund: &RefundRecord, timing: &Timing, now: Millis) -> Millis {
    now + machine::backoff(timing, refund.attempts)
}

/// The audit note written on the refund's payment when a committed refund change concerns
/// the cashier (it settled, or entered or left `queued`), so that the payment's version
/// moves and its long-polls see the refund; `None` when the payment is left alone.
pub fn payment_note(saved: &RefundRecord, before: RefundState) -> Option<String> {
    let queue_changed = saved.state != before
        && (saved.state == RefundState::Queued || before == RefundState::Queued);
    let settled = matches!(saved.state, RefundState::Succeeded | RefundState::Failed);
    (settled || queue_changed).then(|| {
        format!(
            "refund {} of {} {}",
            saved.out_refund_no,
            saved.amount_fen,
            match saved.state {
                RefundState::Succeeded => "succeeded",
                RefundState::Failed => "failed",
                RefundState::Queued => "queued behind the previous refund",
                RefundState::Submitting | RefundState::Processing => "sent after its wait",
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use paycode_api::{AttemptId, Fen};
    use wxpay::messages::OutRefundNo;

    use super::*;

    const SECOND: i64 = 1_000;
    const MINUTE: Duration = Duration::from_secs(60);
    const QUERY_INTERVAL: Duration = Duration::from_secs(5);

    fn refund(id: &str, created_at: i64) -> RefundRecord {
        RefundRecord::new_submitting(
            id.into(),
            &crate::store::records::sample_payment("p1"),
            AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a").unwrap(),
            OutRefundNo::new(format!("RF20240301{id:0>22}")).unwrap(),
            Fen(100),
            None,
            Millis(created_at),
        )
    }

    fn timing() -> Timing {
        Timing {
            refund_spacing: MINUTE,
            ..Timing::default()
        }
    }

    fn sent(refund: &RefundRecord) -> RefundRecord {
        attempted(refund)
    }

    #[test]
    fn a_first_refund_is_due_at_once_and_a_second_waits_a_minute_after_the_first() {
        let now = Millis(100 * SECOND);
        let first = planned(refund("a", 0), &[], MINUTE, now);
        assert_eq!(first.state, RefundState::Submitting);
        assert_eq!(first.next_action_at, Some(now));
        assert_eq!(next_step_at(&first), Some(now));

        let mut applied = first.clone();
        applied.state = RefundState::Processing;
        applied.applied_at = Some(now);
        let second = planned(refund("b", 101 * SECOND), &[applied], MINUTE, now);
        assert_eq!(second.state, RefundState::Queued);
        assert_eq!(second.next_action_at, Some(now.plus(MINUTE)));
    }

    #[test]
    fn a_held_refund_is_requeued_once_then_only_scheduled() {
        let now = Millis(10 * SECOND);
        let mut applied = refund("a", 0);
        applied.state = RefundState::Processing;
        applied.applied_at = Some(Millis(5 * SECOND));
        let others = [applied];
        let waiting = refund("b", 6 * SECOND);

        let Hold::Requeue(decision) = hold(&waiting, &others, MINUTE, now) else {
            panic!("a refund within the minute is held");
        };
        assert_eq!(decision.refund.state, RefundState::Queued);
        assert_eq!(decision.refund.next_action_at, Some(Millis(65 * SECOND)));
        assert_eq!(
            hold(&decision.refund, &others, MINUTE, now),
            Hold::AlreadyQueued
        );
        assert_eq!(
            hold(&waiting, &others, MINUTE, Millis(65 * SECOND)),
            Hold::Go
        );
    }

    #[test]
    fn an_accepted_refund_is_queried_after_the_interval_and_counts_as_applied() {
        let now = Millis(10 * SECOND);
        let ended = Millis(11 * SECOND);
        let decision = after_refund(
            &sent(&refund("a", 0)),
            RefundOutcome::Accepted {
                refund_id: "50000".into(),
            },
            &timing(),
            QUERY_INTERVAL,
            now,
            ended,
        );
        let refund = decision.refund;
        assert_eq!(refund.state, RefundState::Processing);
        assert_eq!(refund.wechat_refund_id.as_deref(), Some("50000"));
        assert_eq!(refund.applied_at, Some(ended));
        assert_eq!(refund.next_action_at, Some(now.plus(QUERY_INTERVAL)));
        assert_eq!(refund.attempts, 1);
    }

    #[test]
    fn frequency_limited_requeues_a_spacing_after_the_call_and_never_fails() {
        let ended = Millis(11 * SECOND);
        let decision = after_refund(
            &sent(&refund("a", 0)),
            RefundOutcome::TooSoon,
            &timing(),
            QUERY_INTERVAL,
            Millis(10 * SECOND),
            ended,
        );
        assert_eq!(decision.refund.state, RefundState::Queued);
        assert_eq!(decision.refund.next_action_at, Some(ended.plus(MINUTE)));
        assert_eq!(decision.refund.applied_at, None);
        assert_eq!(decision.refund.failure_code, None);
        assert!(decision.note.is_some());
    }

    #[test]
    fn an_unclear_refund_is_sent_again_with_backoff_and_holds_later_refunds() {
        let timing = timing();
        let now = Millis(10 * SECOND);
        let ended = Millis(12 * SECOND);
        let timed_out = |refund: &RefundRecord| {
            let outcome = RefundOutcome::Retry {
                reason: "timeout".into(),
            };
            after_refund(&sent(refund), outcome, &timing, QUERY_INTERVAL, now, ended)
        };
        let first = timed_out(&refund("a", 0));
        assert_eq!(first.refund.state, RefundState::Submitting);
        assert_eq!(first.refund.applied_at, Some(ended));
        assert_eq!(
            first.refund.next_action_at,
            Some(now + machine::backoff(&timing, 1))
        );
        let second = timed_out(&first.refund);
        assert_eq!(
            second.refund.next_action_at,
            Some(now + machine::backoff(&timing, 2))
        );
        assert!(machine::backoff(&timing, 2) > machine::backoff(&timing, 1));
    }

    #[test]
    fn a_refusal_fails_a_first_attempt_but_is_queried_after_an_unclear_one() {
        let refused = || RefundOutcome::Refused {
            code: "NOTENOUGH".into(),
            message: "余额不足".into(),
        };
        let now = Millis(10 * SECOND);
        let first = after_refund(
            &sent(&refund("a", 0)),
            refused(),
            &timing(),
            QUERY_INTERVAL,
            now,
            now,
        );
        assert_eq!(first.refund.state, RefundState::Failed);
        assert_eq!(first.refund.failure_code.as_deref(), Some("NOTENOUGH"));
        assert_eq!(first.refund.failure_message.as_deref(), Some("余额不足"));
        assert_eq!(next_step_at(&first.refund), None);

        let again = after_refund(
            &sent(&sent(&refund("a", 0))),
            refused(),
            &timing(),
            QUERY_INTERVAL,
            now,
            now,
        );
        assert_eq!(again.refund.state, RefundState::Processing);
        assert_eq!(again.refund.next_action_at, Some(now));
        assert_eq!(again.refund.failure_code, None);
    }

    #[test]
    fn queries_settle_the_refund_or_ask_again() {
        let timing = timing();
        let now = Millis(20 * SECOND);
        let mut processing = sent(&refund("a", 0));
        processing.state = RefundState::Processing;
        processing.wechat_refund_id = Some("50000".into());
        let query =
            |outcome| after_refund_query(&processing, outcome, &timing, QUERY_INTERVAL, now);

        let succeeded = query(RefundQueryOutcome::Succeeded {
            refunded_at: Some(Millis(1_800_000)),
        })
        .refund;
        assert_eq!(succeeded.state, RefundState::Succeeded);
        assert_eq!(succeeded.wechat_refunded_at, Some(Millis(1_800_000)));
        assert_eq!(next_step_at(&succeeded), None);

        let moving = query(RefundQueryOutcome::Processing).refund;
        assert_eq!(moving.state, RefundState::Processing);
        assert_eq!(moving.next_action_at, Some(now.plus(QUERY_INTERVAL)));

        let failed = query(RefundQueryOutcome::Failed {
            code: "REFUNDCLOSE".into(),
            message: "退款已关闭".into(),
        })
        .refund;
        assert_eq!(failed.state, RefundState::Failed);
        assert_eq!(failed.failure_code.as_deref(), Some("REFUNDCLOSE"));

        // WeChat accepted it once, so "not found" is a glitch: ask again, never fail it.
        let retried = query(RefundQueryOutcome::NotFound).refund;
        assert_eq!(retried.state, RefundState::Processing);
        assert_eq!(
            retried.next_action_at,
            Some(now + machine::backoff(&timing, 1))
        );
        let unknown = query(RefundQueryOutcome::Unknown {
            reason: "timeout".into(),
        })
        .refund;
        assert_eq!(unknown.next_action_at, retried.next_action_at);
    }

    #[test]
    fn a_refund_wechat_never_accepted_fails_when_it_is_not_found() {
        let mut processing = sent(&refund("a", 0));
        processing.state = RefundState::Processing;
        let decision = after_refund_query(
            &processing,
            RefundQueryOutcome::NotFound,
            &timing(),
            QUERY_INTERVAL,
            Millis(0),
        );
        assert_eq!(decision.refund.state, RefundState::Failed);
        assert_eq!(
            decision.refund.failure_code.as_deref(),
            Some("REFUND_NOT_ACCEPTED")
        );
    }

    #[test]
    fn the_payment_hears_of_settled_refunds_and_of_the_queue_only() {
        let mut saved = refund("a", 0);
        saved.state = RefundState::Succeeded;
        let note = payment_note(&saved, RefundState::Processing).unwrap();
        assert!(note.ends_with("succeeded"), "{note}");

        saved.state = RefundState::Queued;
        assert!(payment_note(&saved, RefundState::Submitting).is_some());
        assert_eq!(payment_note(&saved, RefundState::Queued), None);

        saved.state = RefundState::Submitting;
        let note = payment_note(&saved, RefundState::Queued).unwrap();
        assert!(note.ends_with("sent after its wait"), "{note}");

        saved.state = RefundState::Processing;
        assert_eq!(payment_note(&saved, RefundState::Submitting), None);
    }

    #[test]
    fn a_refund_rescheduled_later_is_not_yet_due() {
        let mut later = refund("a", 0);
        later.next_action_at = Some(Millis(10));
        assert!(not_yet_due(&later, Millis(9)));
        assert!(!not_yet_due(&later, Millis(10)));
        later.next_action_at = None;
        assert!(!not_yet_due(&later, Millis(0)));
    }
}
