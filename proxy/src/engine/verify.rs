//! Acting on evidence (docs/books.md §4): [`Engine::verify_payment`] asks WeChat about one
//! payment (orderquery, the same call the payment steps make) and changes the record only
//! from that verified reply, with an audit event naming who asked ([`Actor`]). The daily
//! reconciliation calls it when the bill shows a payment paid that the store does not, and
//! for every payment that needs attention; a manager calls it through "query now" and
//! "settle".
//!
//! What the reply may change, by what the store says ([`decide`]):
//! - **The engine still owes the payment a call** (it is being sent, queried, reversed or
//!   closed): nothing is written; the engine's own steps settle it ([`Verdict::InProgress`]).
//! - **Needs attention**, waiting for its next recheck: the reply is the recheck
//!   ([`machine::after_recheck`]): paid → `paid`; closed, reversed, not found or failed →
//!   `cancelled` (with the close of an open order owed); still open → reversed now.
//! - **Failed or cancelled**, and WeChat says the order is paid: `paid` (WeChat holds the
//!   customer's money, so the record must say so; a refund then returns it).
//! - **Paid**, and WeChat says it is not: the record stays `paid` (the machine never takes a
//!   paid payment back) and the disagreement stays visible for a manager
//!   ([`Verdict::Disagrees`]).
//! - Otherwise the reply agrees with the record: only the audit event is written.
//!
//! A query that gets no answer (transport failure, `SYSTEMERROR`) writes nothing.
//!
//! **Several proxies.** The query is read-only at WeChat, so it needs no lease; the write
//! is fenced and versioned like a cashier's cancel: it names the lease epoch and version it
//! read, and if the payment moved meanwhile it is read again and the same reply decided on
//! the fresh record. The instance holding the payment's lease meets the new version at its
//! next commit or through the change announcement (docs/postgresql.md §4) and re-plans.

use std::fmt;

use chrono::NaiveDate;
use paycode_api::PaymentState;

use super::api::{Engine, EngineError};
use super::machine::{self, Action, PendingFailure, QueryOutcome, Timing, Transition};
use super::steps::{Counter, apply_transition, facts_of};
use crate::store::{Millis, PaymentRecord, StoreError};

/// Who asked for a verification, written into the audit event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A named manager, through an approval given at a terminal.
    Manager {
        /// The manager's name.
        name: String,
        /// The terminal the approval was given at.
        terminal: String,
    },
    /// The reconciliation of one business day for one merchant account (the daily run or
    /// `paycode-proxy reconcile`).
    Reconciliation {
        /// The business day reconciled.
        day: NaiveDate,
        /// The account's `mch_id`.
        mch_id: String,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Manager { name, terminal } => {
                write!(f, "manager {name} at terminal {terminal}")
            }
            Actor::Reconciliation { day, mch_id } => {
                write!(f, "the reconciliation of {day} for mch_id {mch_id}")
            }
        }
    }
}

/// What a verification concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The record was changed to follow WeChat's reply (a new state, or a new plan for a
    /// payment that needs attention).
    Changed,
    /// WeChat's reply agrees with the record; only the audit event was written.
    Agrees,
    /// WeChat's reply contradicts the record, which may not move (a `paid` payment WeChat
    /// shows not paid): recorded in the audit event, left for a manager.
    Disagrees,
    /// The engine still owes the payment a call of its own; nothing was written.
    InProgress,
    /// WeChat gave no answer; nothing was written.
    NoAnswer,
}

impl Verdict {
    /// The stable name, e.g. `agrees`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Changed => "changed",
            Verdict::Agrees => "agrees",
            Verdict::Disagrees => "disagrees",
            Verdict::InProgress => "in_progress",
            Verdict::NoAnswer => "no_answer",
        }
    }
}

/// What [`Engine::verify_payment`] found and did.
#[derive(Clone, Debug)]
pub struct VerifyOutcome {
    /// The payment as stored afterwards.
    pub payment: PaymentRecord,
    /// Its state before.
    pub previous: PaymentState,
    /// WeChat's reply, classified.
    pub wechat: QueryOutcome,
    /// What the reply meant for the record.
    pub verdict: Verdict,
}

/// What one verified reply does to one stored payment: the transition to commit (with
/// its verdict), or the verdict alone when nothing is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Commit this transition.
    Write(Transition, Verdict),
    /// Write nothing.
    Leave(Verdict),
}

/// Decides what WeChat's verified `outcome` does to `record` (the rules in the module
/// documentation). Pure.
pub(super) fn decide(
    record: &PaymentRecord,
    outcome: &QueryOutcome,
    timing: &Timing,
    now: Millis,
) -> Decision {
    if let QueryOutcome::Unknown { .. } = outcome {
        return Decision::Leave(Verdict::NoAnswer);
    }
    let facts = facts_of(record);
    match (record.state, record.next_action) {
        (PaymentState::NeedsAttention, None | Some(Action::Recheck)) => {
            let transition = machine::after_recheck(&facts, outcome.clone(), timing, now);
            Decision::Write(transition, Verdict::Changed)
        }
        (PaymentState::Paid | PaymentState::Failed | PaymentState::Cancelled, None) => {
            let mut transition = unchanged(record, format!("WeChat says {outcome:?}"));
            let verdict = match (record.state, outcome) {
                (PaymentState::Paid, QueryOutcome::Paid { transaction_id }) => {
                    transition.transaction_id = Some(transaction_id.clone());
                    Verdict::Agrees
                }
                (PaymentState::Paid, _) => {
                    transition
                        .note
                        .push_str("; the record stays paid, for a manager");
                    Verdict::Disagrees
                }
                (_, QueryOutcome::Paid { transaction_id }) => {
                    transition.state = PaymentState::Paid;
                    transition.transaction_id = Some(transaction_id.clone());
                    transition.seen_paid = true;
                    transition.pending_failure = PendingFailure::Clear;
                    transition
                        .note
                        .push_str("; WeChat holds the money: the payment is paid");
                    Verdict::Changed
                }
                _ => Verdict::Agrees,
            };
            Decision::Write(transition, verdict)
        }
        _ => Decision::Leave(Verdict::InProgress),
    }
}

/// A transition that keeps `record` as it is (state, plan, counters), with `note`.
fn unchanged(record: &PaymentRecord, note: String) -> Transition {
    Transition {
        state: record.state,
        next: record.next_action.zip(record.next_action_at),
        transaction_id: None,
        seen_paid: record.seen_paid,
        maybe_sent: record.maybe_sent,
        failure: None,
        pending_failure: PendingFailure::Keep,
        reverse_attempts: record.reverse_attempts,
        not_sent_attempts: record.not_sent_attempts,
        money_returned: false,
        attention_reason: None,
        close: None,
        note,
    }
}

impl Engine {
    /// Re-queries the payment `payment_id` at WeChat (orderquery) and settles its record
    /// from the verified reply only, writing an audit event that names `actor` (the rules
    /// are in this module's documentation). Returns the record afterwards, WeChat's reply
    /// and the verdict.
    ///
    /// # Errors
    /// [`EngineError::Store`] with [`StoreError::NotFound`] for an unknown payment, or any
    /// other failure of the store. A WeChat failure is not an error: it is
    /// [`Verdict::NoAnswer`].
    pub async fn verify_payment(
        &self,
        payment_id: &str,
        actor: &Actor,
    ) -> Result<VerifyOutcome, EngineError> {
        let shared = &self.shared;
        let mut record = shared.store.existing_payment(payment_id).await?;
        let previous = record.state;
        let wechat = shared.order_query(&record).await;
        loop {
            let now = Millis::now();
            let (transition, verdict) = match decide(&record, &wechat, &shared.settings.timing, now)
            {
                Decision::Leave(verdict) => {
                    tracing::info!(
                        payment = %record.id,
                        out_trade_no = %record.out_trade_no,
                        %actor,
                        verdict = verdict.as_str(),
                        ?wechat,
                        "payment verified; nothing written"
                    );
                    return Ok(VerifyOutcome {
                        payment: record,
                        previous,
                        wechat,
                        verdict,
                    });
                }
                Decision::Write(transition, verdict) => (transition, verdict),
            };
            let mut next = apply_transition(&record, &transition, Counter::Query, now);
            if next.state == PaymentState::Paid {
                // Paid now: any earlier "money returned" no longer holds.
                next.money_returned = false;
            }
            let detail = format!(
                "verified by orderquery for {actor} ({}): {}",
                verdict.as_str(),
                transition.note
            );
            match shared.store.update_payment(&next, &detail).await {
                Ok(saved) => {
                    tracing::info!(
                        payment = %saved.id,
                        out_trade_no = %saved.out_trade_no,
                        %actor,
                        verdict = verdict.as_str(),
                        from = %record.state,
                        to = %saved.state,
                        "payment verified"
                    );
                    shared.committed(record.state, &saved);
                    return Ok(VerifyOutcome {
                        payment: saved,
                        previous,
                        wechat,
                        verdict,
                    });
                }
                // Moved meanwhile (a step of the engine, a cancel, another instance's
                // claim): decide the same reply on the fresh record.
                Err(StoreError::StaleVersion { .. } | StoreError::LeaseLost { .. }) => {
                    record = shared.store.existing_payment(payment_id).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MerchantIds;

    fn record(state: PaymentState, next: Option<Action>) -> PaymentRecord {
        let mut record = PaymentRecord::new_submitting(
            "p1".into(),
            paycode_api::AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a").expect("a UUID"),
            "till-1".into(),
            (
                "store-1".into(),
                MerchantIds {
                    appid: "wx2421b1c4370ec43b".into(),
                    mch_id: "1900000109".into(),
                    sub_appid: None,
                    sub_mch_id: None,
                },
            ),
            wxpay::messages::OutTradeNo::new("PC20261130abcdef".to_owned()).expect("valid"),
            paycode_api::Fen(100),
            paycode_api::AuthCode::parse("134567890123456789").expect("a payment code"),
            "test".into(),
            Millis(1_000),
            NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date"),
        );
        record.state = state;
        record.next_action = next;
        record.next_action_at = next.map(|_| Millis(2_000));
        record
    }

    fn paid() -> QueryOutcome {
        QueryOutcome::Paid {
            transaction_id: "4200000001".into(),
        }
    }

    fn decided(record: &PaymentRecord, outcome: QueryOutcome) -> Decision {
        decide(record, &outcome, &Timing::default(), Millis(10_000_000))
    }

    #[test]
    fn a_needs_attention_payment_follows_the_recheck_rules() {
        let waiting = record(PaymentState::NeedsAttention, Some(Action::Recheck));
        let Decision::Write(to_paid, Verdict::Changed) = decided(&waiting, paid()) else {
            panic!("paid at WeChat settles it");
        };
        assert_eq!(to_paid.state, PaymentState::Paid);
        assert_eq!(to_paid.next, None);
        let Decision::Write(closed, Verdict::Changed) = decided(&waiting, QueryOutcome::Closed)
        else {
            panic!("closed at WeChat settles it");
        };
        assert_eq!(closed.state, PaymentState::Cancelled);
    }

    #[test]
    fn a_failed_or_cancelled_payment_becomes_paid_only_on_a_paid_reply() {
        for state in [PaymentState::Failed, PaymentState::Cancelled] {
            let settled = record(state, None);
            let Decision::Write(transition, Verdict::Changed) = decided(&settled, paid()) else {
                panic!("{state}: a paid reply changes it");
            };
            assert_eq!(transition.state, PaymentState::Paid);
            assert!(transition.seen_paid);
            assert_eq!(transition.transaction_id.as_deref(), Some("4200000001"));
            for outcome in [
                QueryOutcome::Closed,
                QueryOutcome::NotPaid,
                QueryOutcome::NotFound,
            ] {
                let Decision::Write(transition, Verdict::Agrees) = decided(&settled, outcome)
                else {
                    panic!("{state}: an unpaid reply agrees");
                };
                assert_eq!(transition.state, state);
            }
        }
    }

    #[test]
    fn a_paid_payment_never_moves_back() {
        let paid_here = record(PaymentState::Paid, None);
        let Decision::Write(transition, Verdict::Disagrees) =
            decided(&paid_here, QueryOutcome::Closed)
        else {
            panic!("a closed reply disagrees");
        };
        assert_eq!(transition.state, PaymentState::Paid);
        assert!(matches!(
            decided(&paid_here, paid()),
            Decision::Write(_, Verdict::Agrees)
        ));
    }

    #[test]
    fn nothing_is_written_while_the_engine_works_or_without_an_answer() {
        for (state, next) in [
            (PaymentState::Confirming, Some(Action::Query)),
            (PaymentState::Cancelling, Some(Action::Reverse)),
            (PaymentState::NeedsAttention, Some(Action::Reverse)),
            (PaymentState::Failed, Some(Action::CloseReverse)),
        ] {
            assert_eq!(
                decided(&record(state, next), paid()),
                Decision::Leave(Verdict::InProgress),
                "{state}"
            );
        }
        let unknown = QueryOutcome::Unknown {
            reason: "timeout".into(),
        };
        assert_eq!(
            decided(&record(PaymentState::Failed, None), unknown),
            Decision::Leave(Verdict::NoAnswer)
        );
    }

    #[test]
    fn the_actor_is_named_in_words() {
        let manager = Actor::Manager {
            name: "店长".into(),
            terminal: "back-office".into(),
        };
        assert_eq!(manager.to_string(), "manager 店长 at terminal back-office");
        let run = Actor::Reconciliation {
            day: NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date"),
            mch_id: "1900000109".into(),
        };
        assert_eq!(
            run.to_string(),
            "the reconciliation of 2026-11-30 for mch_id 1900000109"
        );
    }
}
