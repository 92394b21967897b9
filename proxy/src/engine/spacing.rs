//! WeChat's spacing between refunds of one order (docs/wechat-pay.md §3.4: partial refunds "≥1 minute
//! apart"), as a pure decision: given a payment's other refunds, when may this one be sent?
//!
//! The rule the engine keeps, so that WeChat never has to refuse a refund for coming too soon:
//! - a refund waits until `refund_spacing` after the latest moment any other refund of the
//!   payment was applied for ([`RefundRecord::applied_at`]: accepted, or an outcome unknown,
//!   which may have been accepted);
//! - refunds of one payment go to WeChat in the order they were asked for: one that is still
//!   `queued` or `submitting` and not yet applied holds every later one back until
//!   `refund_spacing` after it is due itself.
//!
//! The waiting refund is stored `queued` with that time, so the cashier can read it and a
//! restart resumes it. If WeChat still answers `FREQUENCY_LIMITED` (clocks disagree), the
//! refund is queued again for another `refund_spacing`, never failed.

use std::time::Duration;

use paycode_api::RefundState;

use crate::store::{Millis, RefundRecord};

/// When `refund` may be sent, given the other refunds of its payment (`others` may include
/// `refund` itself, which is skipped): `None` if it may go now, else the time to wait for.
pub fn hold_until(
    refund: &RefundRecord,
    others: &[RefundRecord],
    spacing: Duration,
    now: Millis,
) -> Option<Millis> {
    let mut until: Option<Millis> = None;
    for other in others.iter().filter(|other| other.id != refund.id) {
        let free_at = match applied_at(other) {
            Some(applied) => applied.plus(spacing),
            None if waiting(other) && asked_before(other, refund) => {
                other.next_action_at.unwrap_or(now).max(now).plus(spacing)
            }
            None => continue,
        };
        if free_at > now {
            until = Some(until.map_or(free_at, |until| until.max(free_at)));
        }
    }
    until
}

/// When an application for `refund` may have started WeChat's spacing. Refunds stored before
/// `applied_at` existed count from their creation once WeChat accepted them.
fn applied_at(refund: &RefundRecord) -> Option<Millis> {
    refund.applied_at.or(match refund.state {
        RefundState::Processing | RefundState::Succeeded => Some(refund.created_at),
        _ => None,
    })
}

/// Not yet applied for, and still to be sent.
fn waiting(refund: &RefundRecord) -> bool {
    matches!(refund.state, RefundState::Queued | RefundState::Submitting)
}

/// Whether `earlier` was asked for before `later` (ties broken by id, so that two refunds
/// always agree which goes first).
fn asked_before(earlier: &RefundRecord, later: &RefundRecord) -> bool {
    (earlier.created_at, &earlier.id) < (later.created_at, &later.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::{AttemptId, Fen};

    const MINUTE: Duration = Duration::from_secs(60);

    fn refund(
        id: &str,
        created_at: i64,
        state: RefundState,
        applied_at: Option<i64>,
    ) -> RefundRecord {
        let mut refund = RefundRecord::new_submitting(
            id.into(),
            &crate::store::records::sample_payment("p1"),
            AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a").unwrap(),
            wxpay::messages::OutRefundNo::new(format!("RF{id}")).unwrap(),
            Fen(100),
            None,
            Millis(created_at),
        );
        refund.state = state;
        refund.applied_at = applied_at.map(Millis);
        refund
    }

    #[test]
    fn the_first_refund_goes_at_once() {
        let first = refund("a", 1_000, RefundState::Submitting, None);
        assert_eq!(
            hold_until(&first, std::slice::from_ref(&first), MINUTE, Millis(1_000)),
            None
        );
    }

    #[test]
    fn the_next_refund_waits_a_minute_from_the_last_application() {
        let applied = refund("a", 1_000, RefundState::Processing, Some(2_000));
        let next = refund("b", 3_000, RefundState::Submitting, None);
        assert_eq!(
            hold_until(&next, std::slice::from_ref(&applied), MINUTE, Millis(3_000)),
            Some(Millis(62_000))
        );
        assert_eq!(hold_until(&next, &[applied], MINUTE, Millis(62_000)), None);
        // A refund that failed at WeChat after being accepted still counted.
        let closed = refund("c", 1_000, RefundState::Failed, Some(50_000));
        assert_eq!(
            hold_until(&next, &[closed], MINUTE, Millis(60_000)),
            Some(Millis(110_000))
        );
        // One refused outright (never applied) does not hold anything back.
        let refused = refund("d", 1_000, RefundState::Failed, None);
        assert_eq!(hold_until(&next, &[refused], MINUTE, Millis(3_000)), None);
    }

    #[test]
    fn refunds_go_in_the_order_they_were_asked_for() {
        let mut queued = refund("a", 1_000, RefundState::Queued, None);
        queued.next_action_at = Some(Millis(40_000));
        let later = refund("b", 2_000, RefundState::Submitting, None);
        // The earlier one goes at 40 s; the later one a minute after that.
        assert_eq!(
            hold_until(
                &later,
                &[queued.clone(), later.clone()],
                MINUTE,
                Millis(2_000)
            ),
            Some(Millis(100_000))
        );
        // The earlier one is not held back by the later one that has not been sent.
        assert_eq!(
            hold_until(&queued, &[queued.clone(), later], MINUTE, Millis(40_000)),
            None
        );
    }

    #[test]
    fn refunds_stored_before_applied_at_count_from_their_creation() {
        let legacy = refund("a", 10_000, RefundState::Succeeded, None);
        let next = refund("b", 20_000, RefundState::Submitting, None);
        assert_eq!(
            hold_until(&next, &[legacy], MINUTE, Millis(20_000)),
            Some(Millis(70_000))
        );
    }
}
