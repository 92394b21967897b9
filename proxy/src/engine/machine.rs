//! The payment state machine, as pure functions: given what is stored about a payment and
//! what WeChat (or the cashier) just said, decide the next state and the next action.
//!
//! Nothing here does I/O or reads a clock; the driver passes `now` in. That keeps every rule
//! of docs/design.md and docs/wechat-pay.md §7 testable with plain unit tests, and keeps the driver a
//! thin loop: load → call WeChat → [`Transition`] → commit → schedule.
//!
//! The rules, in one place:
//! - A micropay that may have reached WeChat is never resent blindly: it is queried, and
//!   reversed if the answer does not come in time. Only a "not sent" failure is resent.
//! - Queries start 3 s after USERPAYING and 5 s after an unknown outcome, then repeat every
//!   `query_interval`, until `wait_deadline` after the first submission (below WeChat's
//!   45-second auto-revoke).
//! - Every reverse is preceded by a query with no gap, so a payment that completed at the last
//!   moment is seen (and, if the cashier cancelled, reversed with the refund noted).
//! - Reverse never runs earlier than `reverse_not_before` after submission, repeats while
//!   WeChat says `recall=Y` or on retryable errors with exponential backoff, and is followed
//!   by one final query. What still cannot be settled becomes `needs_attention`, which keeps
//!   rechecking in the background.
//! - Any micropay `result_code=FAIL`, even a "definite" one, is confirmed by one query
//!   before the cashier is told it failed (the POS guide: in extreme cases a FAIL hides a
//!   success).
//! - Every order ends `SUCCESS`, `CLOSED` or `REVOKED` at WeChat (the closed loop, docs/wechat-pay.md §7.1
//!   item 6). A payment that failed while its order is left open (`PAYERROR`, `NOTPAY`) is
//!   shown `failed` at once, and the order is closed in the background by reverse (micropay
//!   orders are closed by reverse, never closeorder: docs/wechat-pay.md §1.2, §3.6), no earlier than
//!   `reverse_not_before` after submission: [`Action::CloseReverse`], tracked by
//!   [`CloseState`]. The cashier-visible state and failure never change for it.
//! - A micropay that may have reached WeChat and was never answered may still arrive
//!   (delayed in the network, or sent by a proxy paused past its lease) until its
//!   `time_expire`, after which WeChat refuses it. Before `time_expire` plus
//!   `expire_skew_margin`, neither ORDERNOTEXIST nor a reverse of an order WeChat had not
//!   seen (which leaves nothing behind) proves it never will: the payment stays open and
//!   is queried again once that moment has passed ([`late_micropay_until`]).

use std::fmt;
use std::time::Duration;

use paycode_api::{FailureCode, PaymentState};

pub use crate::store::records::{Action, CloseState, Failure, Millis};

/// The durations that drive the machine. Production uses the spec's values; tests shrink
/// them together with the simulator's time scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// After USERPAYING, wait this long before the first query (3 s).
    pub first_query_after_userpaying: Duration,
    /// After an unknown outcome, wait this long before the first query (5 s).
    pub first_query_after_unknown: Duration,
    /// Between queries (3–5 s).
    pub query_interval: Duration,
    /// Stop waiting for the customer this long after the first submission (40 s; must stay
    /// under WeChat's 45-second auto-revoke).
    pub wait_deadline: Duration,
    /// Never reverse earlier than this after the first submission (15 s).
    pub reverse_not_before: Duration,
    /// The first retry delay for a failed reverse or final query; it doubles per attempt.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
    /// How many reverse (or final-query) attempts before the payment needs attention.
    pub reverse_max_attempts: u32,
    /// How often a payment that needs attention is checked again.
    pub attention_recheck_interval: Duration,
    /// The least time between two refunds of one payment reaching WeChat (60 s: partial
    /// refunds of one order at least one minute apart, docs/wechat-pay.md §3.4); see `engine::spacing`.
    pub refund_spacing: Duration,
    /// How far WeChat's clock may be off ours, added to a micropay's `time_expire` before
    /// "it can no longer arrive" is believed (15 s).
    pub expire_skew_margin: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            first_query_after_userpaying: Duration::from_secs(3),
            first_query_after_unknown: Duration::from_secs(5),
            query_interval: Duration::from_secs(3),
            wait_deadline: Duration::from_secs(40),
            reverse_not_before: Duration::from_secs(15),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(16),
            reverse_max_attempts: 10,
            attention_recheck_interval: Duration::from_secs(60),
            refund_spacing: Duration::from_secs(60),
            expire_skew_margin: Duration::from_secs(15),
        }
    }
}

/// What the machine needs to know about a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The current state.
    pub state: PaymentState,
    /// When micropay was first sent, if it was.
    pub submitted_at: Option<Millis>,
    /// Whether any micropay attempt may have reached WeChat.
    pub maybe_sent: bool,
    /// Whether WeChat was ever seen to have taken the money.
    pub seen_paid: bool,
    /// Whether the cashier asked to cancel.
    pub cancel_requested: bool,
    /// A micropay failure waiting to be confirmed by a query.
    pub pending_failure: Option<Failure>,
    /// Consecutive failed reverse or final-query attempts.
    pub reverse_attempts: u32,
    /// Consecutive micropay attempts that were not sent.
    pub not_sent_attempts: u32,
    /// The `time_expire` the last micropay that may have left was sent with.
    pub time_expire: Option<Millis>,
}

impl Facts {
    fn deadline(&self, timing: &Timing, now: Millis) -> Millis {
        self.submitted_at.unwrap_or(now) + timing.wait_deadline
    }

    fn earliest_reverse(&self, timing: &Timing, now: Millis) -> Millis {
        (self.submitted_at.unwrap_or(now) + timing.reverse_not_before).max(now)
    }
}

/// How a micropay call ended, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MicropayOutcome {
    /// `result_code=SUCCESS`.
    Paid {
        /// WeChat's order number.
        transaction_id: String,
        /// WeChat's success time (`time_end`), when the reply carried a readable one.
        paid_at: Option<Millis>,
    },
    /// `USERPAYING`: the customer is entering the password.
    UserPaying,
    /// The outcome is unknown: timeout, dropped connection, bad reply, SYSTEMERROR, BANKERROR…
    Unknown {
        /// What happened, for the audit trail.
        reason: String,
    },
    /// The request never reached WeChat.
    NotSent {
        /// What happened.
        reason: String,
    },
    /// `result_code=FAIL` with a definite code (to be confirmed by a query).
    Declined {
        /// WeChat's err_code.
        code: String,
        /// A message for the cashier.
        message: String,
    },
    /// `return_code=FAIL`: WeChat refused the request itself; no order exists.
    Rejected {
        /// A message for the cashier.
        message: String,
    },
}

/// How an orderquery ended, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryOutcome {
    /// `SUCCESS` or `REFUND`.
    Paid {
        /// WeChat's order number.
        transaction_id: String,
        /// WeChat's success time (`time_end`), when the reply carried a readable one.
        paid_at: Option<Millis>,
    },
    /// `USERPAYING`.
    UserPaying,
    /// `NOTPAY` or `ACCEPT`: an order exists and is not paid.
    NotPaid,
    /// `REVOKED` or `CLOSED`: the order is closed and cannot be paid.
    Closed,
    /// `PAYERROR`: the payment failed.
    PayError,
    /// `ORDERNOTEXIST`.
    NotFound,
    /// The query itself failed (transport, SYSTEMERROR, bad reply).
    Unknown {
        /// What happened.
        reason: String,
    },
}

impl fmt::Display for QueryOutcome {
    /// What WeChat said, in plain words (for reports and logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryOutcome::Paid {
                transaction_id,
                paid_at,
            } => {
                write!(f, "paid (transaction_id {transaction_id}")?;
                if let Some(at) = paid_at {
                    write!(f, ", at {}", at.to_rfc3339())?;
                }
                write!(f, ")")
            }
            QueryOutcome::UserPaying => write!(f, "the customer is still paying"),
            QueryOutcome::NotPaid => write!(f, "not paid"),
            QueryOutcome::Closed => write!(f, "closed or reversed"),
            QueryOutcome::PayError => write!(f, "the payment failed"),
            QueryOutcome::NotFound => write!(f, "no such order"),
            QueryOutcome::Unknown { reason } => write!(f, "no clear answer ({reason})"),
        }
    }
}

/// How a reverse call ended, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReverseOutcome {
    /// `result_code=SUCCESS`, `recall=N`.
    Done,
    /// WeChat asks to call again (`recall=Y`), or a retryable error (SYSTEMERROR,
    /// USERPAYING, transport failure, bad reply).
    Retry {
        /// What happened.
        reason: String,
    },
    /// A failure retrying cannot fix (REVERSE_EXPIRE, certificate or permission errors).
    Impossible {
        /// What happened.
        reason: String,
    },
}

/// What a [`Transition`] does to the micropay failure waiting for a query to confirm it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingFailure {
    /// Leave what is stored.
    Keep,
    /// Remember this decline until a query confirms it.
    Set(Failure),
    /// Forget it: the query answered.
    Clear,
}

/// The decision: the new state, what to remember, and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: PaymentState,
    /// The next action and when; `None` once nothing more is owed.
    pub next: Option<(Action, Millis)>,
    /// WeChat's order number, when learnt.
    pub transaction_id: Option<String>,
    /// WeChat's success time (`time_end`), when learnt.
    pub wechat_paid_at: Option<Millis>,
    /// Set `seen_paid`.
    pub seen_paid: bool,
    /// Set `maybe_sent`.
    pub maybe_sent: bool,
    /// The failure to show (code, message), or `None` to keep what is stored.
    pub failure: Option<Failure>,
    /// What to do with the micropay failure waiting for a query to confirm it.
    pub pending_failure: PendingFailure,
    /// The new count of consecutive failed reverse or final-query attempts.
    pub reverse_attempts: u32,
    /// The new count of consecutive not-sent micropay attempts.
    pub not_sent_attempts: u32,
    /// Set `money_returned` (a cancelled payment whose money had been taken).
    pub money_returned: bool,
    /// Why the payment needs attention.
    pub attention_reason: Option<String>,
    /// The new close state of the order at WeChat, or `None` to keep what is stored.
    pub close: Option<CloseState>,
    /// A line for the audit trail.
    pub note: String,
}

impl Transition {
    fn from(
        facts: &Facts,
        state: PaymentState,
        next: Option<(Action, Millis)>,
        note: impl Into<String>,
    ) -> Transition {
        Transition {
            state,
            next,
            transaction_id: None,
            wechat_paid_at: None,
            seen_paid: facts.seen_paid,
            maybe_sent: facts.maybe_sent,
            failure: None,
            pending_failure: PendingFailure::Keep,
            reverse_attempts: facts.reverse_attempts,
            not_sent_attempts: facts.not_sent_attempts,
            money_returned: false,
            attention_reason: None,
            close: None,
            note: note.into(),
        }
    }

    fn failing(mut self, code: impl Into<String>, message: impl Into<String>) -> Transition {
        self.failure = Some(Failure::new(code, message));
        self
    }

    /// The payment ends here on `outcome`. If that leaves its order open at WeChat
    /// ([`leaves_open_order`]), owe a reverse that closes it, no earlier than
    /// `reverse_not_before` after submission. The state and the failure shown to the cashier
    /// are those of `self`, unchanged by the close.
    fn closing_open_order(
        mut self,
        outcome: &QueryOutcome,
        facts: &Facts,
        timing: &Timing,
        now: Millis,
    ) -> Transition {
        if !leaves_open_order(outcome) {
            return self;
        }
        self.next = Some((Action::CloseReverse, facts.earliest_reverse(timing, now)));
        self.close = Some(CloseState::Pending);
        self.reverse_attempts = 0;
        self.note = format!(
            "{}; the order is left open: closing it by reverse",
            self.note
        );
        self
    }
}

/// Whether a payment that ends on this query answer leaves an open order behind, which the
/// closed loop (docs/wechat-pay.md §7.1 item 6) requires to be closed by reverse.
///
/// The query, made after every micropay failure, is the evidence: per err_code, what it finds
/// (docs/wechat-pay.md §5.1, §5.2 and the simulator's rows):
/// - `NOTENOUGH`, `NOTSUPORTCARD`, `BANKERROR`, `TRADE_ERROR`, `BUYER_MISMATCH`, and a
///   customer who cancels the password prompt: WeChat created the order and the payment failed
///   on it, so the order stays `PAYERROR` ("支付失败,请撤销订单": the desc WeChat itself gives)
///   or `NOTPAY`: **close it**.
/// - `AUTHCODEEXPIRE`, `AUTH_CODE_INVALID`, `AUTH_CODE_ERROR`, configuration errors, and
///   `return_code=FAIL`: the request is refused before an order exists (`ORDERNOTEXIST`):
///   nothing to close, and no call is made.
/// - `ORDERCLOSED`, `ORDERREVERSED`, or a query that finds `CLOSED`/`REVOKED`: already closed.
///
/// Deciding on the query's answer rather than on the err_code alone means an order is
/// reversed exactly when WeChat shows it open, whatever code the failure carried.
fn leaves_open_order(outcome: &QueryOutcome) -> bool {
    matches!(outcome, QueryOutcome::PayError | QueryOutcome::NotPaid)
}

/// Message and code for a payment the customer abandoned.
pub const CUSTOMER_CANCELLED: (&str, &str) = FailureCode::CustomerCancelled.code_and_copy();
/// Message and code for an order WeChat closed without payment.
pub const ORDER_CLOSED: (&str, &str) = FailureCode::OrderClosed.code_and_copy();
/// Message and code for WeChat's PAYERROR.
pub const PAY_ERROR: (&str, &str) = FailureCode::PayError.code_and_copy();
/// Message and code for a payment that could never be sent.
pub const NOT_SENT: (&str, &str) = FailureCode::NotSent.code_and_copy();

/// The first decision for a new payment: send micropay now.
pub fn created(now: Millis) -> (PaymentState, Action, Millis) {
    (PaymentState::Submitting, Action::Micropay, now)
}

/// Decides after a micropay attempt.
pub fn after_micropay(
    facts: &Facts,
    outcome: MicropayOutcome,
    timing: &Timing,
    now: Millis,
) -> Transition {
    let deadline = facts.deadline(timing, now);
    match outcome {
        MicropayOutcome::Paid {
            transaction_id,
            paid_at,
        } => {
            let mut transition = if facts.cancel_requested {
                // The cashier cancelled while micropay was in flight and lost the race: the
                // money is taken, so it is returned by reverse.
                Transition::from(
                    facts,
                    PaymentState::Cancelling,
                    Some((Action::PreReverseQuery, facts.earliest_reverse(timing, now))),
                    "paid, but the cashier had cancelled: reversing",
                )
            } else {
                Transition::from(facts, PaymentState::Paid, None, "micropay: paid")
            };
            transition.transaction_id = Some(transaction_id);
            transition.wechat_paid_at = paid_at;
            transition.seen_paid = true;
            reached_wechat(transition)
        }
        MicropayOutcome::UserPaying => reached_wechat(waiting(
            facts,
            PaymentState::WaitingForCustomer,
            now + timing.first_query_after_userpaying,
            timing,
            now,
            "micropay: USERPAYING",
        )),
        MicropayOutcome::Unknown { reason } => reached_wechat(waiting(
            facts,
            PaymentState::Confirming,
            now + timing.first_query_after_unknown,
            timing,
            now,
            format!("micropay outcome unknown: {reason}"),
        )),
        MicropayOutcome::Declined { code, message } => {
            // Confirm with one immediate query before telling the cashier.
            let mut transition = Transition::from(
                facts,
                PaymentState::Submitting,
                Some((Action::Query, now)),
                format!("micropay declined ({code}): confirming by query"),
            );
            transition.pending_failure = PendingFailure::Set(Failure::new(code, message));
            reached_wechat(transition)
        }
        MicropayOutcome::Rejected { message } => {
            if facts.maybe_sent {
                // An earlier attempt may have created the order; it must be settled, not
                // abandoned.
                return waiting(
                    facts,
                    PaymentState::Confirming,
                    now,
                    timing,
                    now,
                    format!("micropay rejected after an earlier unknown attempt: {message}"),
                );
            }
            Transition::from(
                facts,
                PaymentState::Failed,
                None,
                "micropay rejected by WeChat",
            )
            .failing(FailureCode::WechatRejected.as_str(), message)
        }
        MicropayOutcome::NotSent { reason } => {
            let attempts = facts.not_sent_attempts + 1;
            let retry_at = now + backoff(timing, attempts);
            if retry_at < deadline {
                let mut transition = Transition::from(
                    facts,
                    PaymentState::Submitting,
                    Some((Action::Micropay, retry_at)),
                    format!("micropay not sent ({reason}): resending"),
                );
                transition.not_sent_attempts = attempts;
                transition
            } else if facts.maybe_sent {
                waiting(
                    facts,
                    PaymentState::Confirming,
                    now,
                    timing,
                    now,
                    format!("micropay not sent ({reason}) after an earlier unknown attempt"),
                )
            } else {
                let mut transition = Transition::from(
                    facts,
                    PaymentState::Failed,
                    None,
                    format!("micropay never reached WeChat: {reason}"),
                )
                .failing(NOT_SENT.0, NOT_SENT.1);
                transition.not_sent_attempts = attempts;
                transition
            }
        }
    }
}

/// Marks a transition that follows a micropay WeChat answered (or may have received): the
/// order may exist, and the run of not-sent attempts is over.
fn reached_wechat(mut transition: Transition) -> Transition {
    transition.maybe_sent = true;
    transition.not_sent_attempts = 0;
    transition
}

/// Keeps waiting in `state` with the next query at `query_at`, or, once the deadline has
/// come, moves to the query-then-reverse sequence.
fn waiting(
    facts: &Facts,
    state: PaymentState,
    query_at: Millis,
    timing: &Timing,
    now: Millis,
    note: impl Into<String>,
) -> Transition {
    let deadline = facts.deadline(timing, now);
    if facts.cancel_requested {
        return Transition::from(
            facts,
            PaymentState::Cancelling,
            Some((Action::PreReverseQuery, facts.earliest_reverse(timing, now))),
            note,
        );
    }
    if now >= deadline {
        return Transition::from(
            facts,
            PaymentState::Cancelling,
            Some((Action::PreReverseQuery, facts.earliest_reverse(timing, now))),
            format!("{}; wait deadline reached: reversing", note.into()),
        );
    }
    // The last query lands exactly on the deadline, so "query, then reverse" has no gap.
    Transition::from(
        facts,
        state,
        Some((Action::Query, query_at.min(deadline))),
        note,
    )
}

/// Decides after a query made while waiting (actions [`Action::Query`]).
pub fn after_query(
    facts: &Facts,
    outcome: QueryOutcome,
    timing: &Timing,
    now: Millis,
) -> Transition {
    let next_query = now + timing.query_interval;
    let confirming_decline =
        facts.state == PaymentState::Submitting && facts.pending_failure.is_some();
    let mut transition = match outcome {
        QueryOutcome::Paid {
            transaction_id,
            paid_at,
        } => {
            let mut transition = after_micropay(
                facts,
                MicropayOutcome::Paid {
                    transaction_id,
                    paid_at,
                },
                timing,
                now,
            );
            transition.note = "query: paid".into();
            transition.pending_failure = PendingFailure::Clear;
            return transition;
        }
        QueryOutcome::UserPaying => waiting(
            facts,
            PaymentState::WaitingForCustomer,
            next_query,
            timing,
            now,
            "query: USERPAYING",
        ),
        QueryOutcome::Closed
        | QueryOutcome::PayError
        | QueryOutcome::NotFound
        | QueryOutcome::NotPaid
            if confirming_decline =>
        {
            let Failure { code, message } = facts
                .pending_failure
                .clone()
                .unwrap_or_else(|| Failure::new(PAY_ERROR.0, PAY_ERROR.1));
            let mut transition = Transition::from(
                facts,
                PaymentState::Failed,
                None,
                format!("query confirmed the decline ({code})"),
            )
            .failing(code, message);
            transition.pending_failure = PendingFailure::Clear;
            return transition.closing_open_order(&outcome, facts, timing, now);
        }
        QueryOutcome::Closed | QueryOutcome::PayError => {
            if facts.cancel_requested {
                return Transition::from(
                    facts,
                    PaymentState::Cancelled,
                    None,
                    "query: closed after the cashier cancelled",
                )
                .closing_open_order(&outcome, facts, timing, now);
            }
            let (code, message) = if outcome == QueryOutcome::PayError {
                PAY_ERROR
            } else if facts.state == PaymentState::WaitingForCustomer {
                CUSTOMER_CANCELLED
            } else {
                ORDER_CLOSED
            };
            return Transition::from(
                facts,
                PaymentState::Failed,
                None,
                format!("query: {outcome:?}"),
            )
            .failing(code, message)
            .closing_open_order(&outcome, facts, timing, now);
        }
        QueryOutcome::NotPaid if facts.state == PaymentState::WaitingForCustomer => {
            // The password prompt is gone without a payment: the customer cancelled. Close the
            // order now (as soon as reverse is allowed) rather than waiting out the deadline.
            let mut transition = Transition::from(
                facts,
                PaymentState::Cancelling,
                Some((Action::PreReverseQuery, facts.earliest_reverse(timing, now))),
                "query: NOTPAY after USERPAYING, customer cancelled: reversing",
            );
            transition.failure = Some(Failure::new(CUSTOMER_CANCELLED.0, CUSTOMER_CANCELLED.1));
            return transition;
        }
        QueryOutcome::NotPaid => waiting(
            facts,
            still_waiting(facts),
            next_query,
            timing,
            now,
            "query: NOTPAY",
        ),
        QueryOutcome::NotFound => waiting(
            facts,
            still_waiting(facts),
            next_query,
            timing,
            now,
            "query: ORDERNOTEXIST",
        ),
        QueryOutcome::Unknown { reason } => waiting(
            facts,
            still_waiting(facts),
            next_query,
            timing,
            now,
            format!("query failed: {reason}"),
        ),
    };
    // The arms that fall through here never stay in `submitting`, so a decline that was
    // being confirmed is no longer pending.
    if confirming_decline {
        transition.pending_failure = PendingFailure::Clear;
    }
    transition
}

/// The state to keep waiting in: a submission whose outcome is not yet clear is
/// `confirming`.
fn still_waiting(facts: &Facts) -> PaymentState {
    if facts.state == PaymentState::Submitting {
        PaymentState::Confirming
    } else {
        facts.state
    }
}

/// Decides after the query that immediately precedes a reverse ([`Action::PreReverseQuery`]).
pub fn after_pre_reverse_query(facts: &Facts, outcome: QueryOutcome, now: Millis) -> Transition {
    match outcome {
        QueryOutcome::Paid {
            transaction_id,
            paid_at,
        } if !facts.cancel_requested => {
            let mut transition = Transition::from(
                facts,
                PaymentState::Paid,
                None,
                "pre-reverse query: paid at the last moment",
            );
            transition.transaction_id = Some(transaction_id);
            transition.wechat_paid_at = paid_at;
            transition.seen_paid = true;
            transition
        }
        QueryOutcome::Paid {
            transaction_id,
            paid_at,
        } => {
            let mut transition = Transition::from(
                facts,
                PaymentState::Cancelling,
                Some((Action::Reverse, now)),
                "pre-reverse query: paid; reversing returns the money",
            );
            transition.transaction_id = Some(transaction_id);
            transition.wechat_paid_at = paid_at;
            transition.seen_paid = true;
            transition
        }
        other => Transition::from(
            facts,
            PaymentState::Cancelling,
            Some((Action::Reverse, now)),
            format!("pre-reverse query: {other:?}; reversing"),
        ),
    }
}

/// Decides after a reverse attempt.
pub fn after_reverse(
    facts: &Facts,
    outcome: ReverseOutcome,
    timing: &Timing,
    now: Millis,
) -> Transition {
    match outcome {
        ReverseOutcome::Done => {
            let mut transition = Transition::from(
                facts,
                PaymentState::Cancelling,
                Some((Action::FinalQuery, now)),
                "reverse: done",
            );
            transition.reverse_attempts = 0;
            transition
        }
        ReverseOutcome::Retry { reason } => retry_or_attention(
            facts,
            Action::Reverse,
            timing,
            now,
            format!("reverse must be repeated: {reason}"),
        ),
        ReverseOutcome::Impossible { reason } => {
            attention(facts, timing, now, format!("reverse impossible: {reason}"))
        }
    }
}

/// The `time_expire` for a micropay sent at `now`: `after` later, in whole seconds (the
/// wire format has no fraction: docs/wechat-pay.md §6.4), rounded up, so what is stored is
/// exactly what WeChat was told and the gap is never shorter than `after` (rounding down
/// could leave a scaled test's sub-second gap with almost nothing).
pub fn time_expire(now: Millis, after: Duration) -> Millis {
    let at = now + after;
    Millis(at.0 + (1000 - at.0.rem_euclid(1000)) % 1000)
}

/// Until when a micropay of this payment that may have left without an answer could still
/// reach WeChat and create its order: its `time_expire` plus the skew margin. `None` when
/// none can (nothing may have been sent, WeChat was seen to take the money, or no
/// `time_expire` was recorded: a payment from before it was sent).
pub fn late_micropay_until(facts: &Facts, timing: &Timing) -> Option<Millis> {
    if !facts.maybe_sent || facts.seen_paid {
        return None;
    }
    facts
        .time_expire
        .map(|expire| expire + timing.expire_skew_margin)
}

/// Keeps a payment open on an ORDERNOTEXIST that may be premature: before
/// [`late_micropay_until`], the micropay may still arrive, so `action` (a final query or a
/// recheck) is repeated once that moment has passed. `None` when the answer is final.
fn not_before_expiry(
    facts: &Facts,
    outcome: &QueryOutcome,
    action: Action,
    timing: &Timing,
    now: Millis,
) -> Option<Transition> {
    let until = late_micropay_until(facts, timing)?;
    if *outcome != QueryOutcome::NotFound || now >= until {
        return None;
    }
    Some(Transition::from(
        facts,
        facts.state,
        Some((action, until)),
        "ORDERNOTEXIST before the micropay's time_expire: it may still arrive; \
         querying again after it",
    ))
}

/// Decides after the query that follows a successful reverse ([`Action::FinalQuery`]).
pub fn after_final_query(
    facts: &Facts,
    outcome: QueryOutcome,
    timing: &Timing,
    now: Millis,
) -> Transition {
    if let Some(wait) = not_before_expiry(facts, &outcome, Action::FinalQuery, timing, now) {
        return wait;
    }
    match outcome {
        QueryOutcome::Closed
        | QueryOutcome::NotFound
        | QueryOutcome::PayError
        | QueryOutcome::NotPaid => {
            let mut transition = Transition::from(
                facts,
                PaymentState::Cancelled,
                None,
                format!("final query: {outcome:?}; cancelled"),
            );
            transition.money_returned = facts.seen_paid;
            transition.reverse_attempts = 0;
            transition
        }
        QueryOutcome::Paid {
            transaction_id,
            paid_at,
        } => {
            // The reverse was accepted but the order still shows paid: reverse again.
            let mut transition = retry_or_attention(
                facts,
                Action::PreReverseQuery,
                timing,
                now,
                "final query still shows paid",
            );
            transition.transaction_id = Some(transaction_id);
            transition.wechat_paid_at = paid_at;
            transition.seen_paid = true;
            transition
        }
        QueryOutcome::UserPaying => retry_or_attention(
            facts,
            Action::PreReverseQuery,
            timing,
            now,
            "final query: USERPAYING",
        ),
        QueryOutcome::Unknown { reason } => retry_or_attention(
            facts,
            Action::FinalQuery,
            timing,
            now,
            format!("final query failed: {reason}"),
        ),
    }
}

/// Decides after the query of a payment that needs attention ([`Action::Recheck`]).
pub fn after_recheck(
    facts: &Facts,
    outcome: QueryOutcome,
    timing: &Timing,
    now: Millis,
) -> Transition {
    let recheck_at = now + timing.attention_recheck_interval;
    if let Some(wait) = not_before_expiry(facts, &outcome, Action::Recheck, timing, now) {
        return wait;
    }
    match outcome {
        QueryOutcome::Paid {
            transaction_id,
            paid_at,
        } if !facts.cancel_requested => {
            let mut transition = Transition::from(facts, PaymentState::Paid, None, "recheck: paid");
            transition.transaction_id = Some(transaction_id);
            transition.wechat_paid_at = paid_at;
            transition.seen_paid = true;
            transition
        }
        QueryOutcome::Closed | QueryOutcome::NotFound | QueryOutcome::PayError => {
            let mut transition = Transition::from(
                facts,
                PaymentState::Cancelled,
                None,
                format!("recheck: {outcome:?}; cancelled"),
            );
            transition.money_returned = facts.seen_paid;
            transition.closing_open_order(&outcome, facts, timing, now)
        }
        QueryOutcome::Unknown { reason } => Transition::from(
            facts,
            PaymentState::NeedsAttention,
            Some((Action::Recheck, recheck_at)),
            format!("recheck failed: {reason}"),
        ),
        other => {
            // Still open (or paid after a cashier cancel): try reversing again.
            let mut transition = Transition::from(
                facts,
                PaymentState::NeedsAttention,
                Some((Action::Reverse, now)),
                format!("recheck: {other:?}; reversing again"),
            );
            if let QueryOutcome::Paid {
                transaction_id,
                paid_at,
            } = other
            {
                transition.transaction_id = Some(transaction_id);
                transition.wechat_paid_at = paid_at;
                transition.seen_paid = true;
            }
            transition.reverse_attempts = 0;
            transition
        }
    }
}

/// Decides after the reverse that closes a settled payment's open order
/// ([`Action::CloseReverse`]). The state and failure the cashier sees never change here;
/// only the close state, the retry count and the schedule do.
///
/// `ORDERNOTEXIST` reaches here as [`ReverseOutcome::Done`]: nothing left to close. Retries
/// back off like every reverse and stop after `reverse_max_attempts`; a close that cannot be
/// made is recorded as needing attention (audit trail and log), never looped on forever.
pub fn after_close_reverse(
    facts: &Facts,
    outcome: ReverseOutcome,
    timing: &Timing,
    now: Millis,
) -> Transition {
    match outcome {
        ReverseOutcome::Done => {
            let mut transition =
                Transition::from(facts, facts.state, None, "close: order reversed at WeChat");
            transition.close = Some(CloseState::Closed);
            transition.reverse_attempts = 0;
            transition
        }
        ReverseOutcome::Retry { reason } => {
            let attempts = facts.reverse_attempts + 1;
            if attempts >= timing.reverse_max_attempts {
                return close_needs_attention(
                    facts,
                    attempts,
                    format!("close: reverse failed {attempts} times ({reason}); needs attention"),
                );
            }
            let mut transition = Transition::from(
                facts,
                facts.state,
                Some((Action::CloseReverse, now + backoff(timing, attempts))),
                format!("close: reverse must be repeated: {reason}"),
            );
            transition.reverse_attempts = attempts;
            transition
        }
        ReverseOutcome::Impossible { reason } => close_needs_attention(
            facts,
            facts.reverse_attempts + 1,
            format!("close: reverse impossible ({reason}); needs attention"),
        ),
    }
}

fn close_needs_attention(facts: &Facts, attempts: u32, note: String) -> Transition {
    let mut transition = Transition::from(facts, facts.state, None, note);
    transition.close = Some(CloseState::NeedsAttention);
    transition.reverse_attempts = attempts;
    transition
}

/// What a cashier's cancel request does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelDecision {
    /// micropay is in flight: only record `cancel_requested`; the outcome handlers act on it
    /// and the payment keeps its schedule.
    RecordOnly,
    /// Reverse the order: commit this transition together with `cancel_requested` (boxed:
    /// a transition is large beside the other variants).
    Reverse(Box<Transition>),
    /// The payment is settled or already being cancelled: nothing changes.
    Unchanged,
}

/// Decides on a cashier's cancel request.
pub fn cancel_requested(facts: &Facts, timing: &Timing, now: Millis) -> CancelDecision {
    match facts.state {
        PaymentState::Submitting | PaymentState::NeedsAttention => CancelDecision::RecordOnly,
        PaymentState::WaitingForCustomer | PaymentState::Confirming => {
            CancelDecision::Reverse(Box::new(Transition::from(
                facts,
                PaymentState::Cancelling,
                Some((Action::PreReverseQuery, facts.earliest_reverse(timing, now))),
                "cashier cancelled: reversing",
            )))
        }
        _ => CancelDecision::Unchanged,
    }
}

/// The pause before retry number `attempt` (1-based) of a failed call: `retry_base`,
/// doubling per attempt, at most `retry_max`.
pub fn backoff(timing: &Timing, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    timing
        .retry_base
        .saturating_mul(factor)
        .min(timing.retry_max)
}

fn retry_or_attention(
    facts: &Facts,
    action: Action,
    timing: &Timing,
    now: Millis,
    note: impl Into<String>,
) -> Transition {
    let attempts = facts.reverse_attempts + 1;
    let note = note.into();
    if attempts >= timing.reverse_max_attempts {
        let mut transition = attention(facts, timing, now, format!("{note} ({attempts} attempts)"));
        transition.reverse_attempts = attempts;
        return transition;
    }
    let state = if facts.state == PaymentState::NeedsAttention {
        PaymentState::NeedsAttention
    } else {
        PaymentState::Cancelling
    };
    let mut transition = Transition::from(
        facts,
        state,
        Some((action, now + backoff(timing, attempts))),
        note,
    );
    transition.reverse_attempts = attempts;
    transition
}

fn attention(facts: &Facts, timing: &Timing, now: Millis, reason: String) -> Transition {
    let mut transition = Transition::from(
        facts,
        PaymentState::NeedsAttention,
        Some((Action::Recheck, now + timing.attention_recheck_interval)),
        reason.clone(),
    );
    transition.attention_reason = Some(reason);
    transition
}

/// What to do with a payment found unsettled when the proxy starts: resume its stored
/// action, except that a micropay that was being sent when the process stopped may have
/// reached WeChat, so it is queried rather than resent.
pub fn resume(
    facts: &Facts,
    stored: Option<(Action, Millis)>,
    timing: &Timing,
    now: Millis,
) -> (PaymentState, Action, Millis) {
    match stored {
        Some((Action::Micropay, _)) if facts.maybe_sent => {
            let transition = waiting(
                facts,
                PaymentState::Confirming,
                now,
                timing,
                now,
                "resumed after a stop mid-submission",
            );
            let (action, at) = transition.next.unwrap_or((Action::Query, now));
            (transition.state, action, at)
        }
        Some((action, at)) => (facts.state, action, at.max(now)),
        None => (facts.state, Action::Recheck, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WeChat's "try again" to a reverse.
    fn system_error() -> ReverseOutcome {
        ReverseOutcome::Retry {
            reason: "SYSTEMERROR".into(),
        }
    }

    const SUBMITTED: Millis = Millis(1_000_000);

    fn timing() -> Timing {
        Timing::default()
    }

    fn facts(state: PaymentState) -> Facts {
        Facts {
            state,
            submitted_at: Some(SUBMITTED),
            maybe_sent: true,
            seen_paid: false,
            cancel_requested: false,
            pending_failure: None,
            reverse_attempts: 0,
            not_sent_attempts: 0,
            time_expire: None,
        }
    }

    fn secs(seconds: i64) -> Millis {
        Millis(SUBMITTED.0 + seconds * 1000)
    }

    fn paid() -> QueryOutcome {
        QueryOutcome::Paid {
            transaction_id: "4200".into(),
            paid_at: None,
        }
    }

    #[test]
    fn password_free_payment_is_paid_at_once() {
        let transition = after_micropay(
            &facts(PaymentState::Submitting),
            MicropayOutcome::Paid {
                transaction_id: "4200".into(),
                paid_at: Some(secs(-1)),
            },
            &timing(),
            secs(0),
        );
        assert_eq!(transition.state, PaymentState::Paid);
        assert_eq!(transition.next, None);
        assert_eq!(transition.transaction_id.as_deref(), Some("4200"));
        assert_eq!(
            transition.wechat_paid_at,
            Some(secs(-1)),
            "WeChat's time_end"
        );
        assert!(transition.seen_paid);
    }

    #[test]
    fn userpaying_queries_after_3s_and_unknown_after_5s() {
        let waiting = after_micropay(
            &facts(PaymentState::Submitting),
            MicropayOutcome::UserPaying,
            &timing(),
            secs(1),
        );
        assert_eq!(waiting.state, PaymentState::WaitingForCustomer);
        assert_eq!(waiting.next, Some((Action::Query, secs(4))));
        let unknown = after_micropay(
            &facts(PaymentState::Submitting),
            MicropayOutcome::Unknown {
                reason: "timeout".into(),
            },
            &timing(),
            secs(10),
        );
        assert_eq!(unknown.state, PaymentState::Confirming);
        assert_eq!(unknown.next, Some((Action::Query, secs(15))));
        assert!(unknown.maybe_sent);
    }

    #[test]
    fn queries_repeat_until_the_deadline_then_query_and_reverse_without_gap() {
        let waiting = facts(PaymentState::WaitingForCustomer);
        let next = after_query(&waiting, QueryOutcome::UserPaying, &timing(), secs(30));
        assert_eq!(next.next, Some((Action::Query, secs(33))));
        // The last query is pulled onto the deadline itself.
        let last = after_query(&waiting, QueryOutcome::UserPaying, &timing(), secs(39));
        assert_eq!(last.next, Some((Action::Query, secs(40))));
        // At the deadline: a query immediately followed by the reverse.
        let at_deadline = after_query(&waiting, QueryOutcome::UserPaying, &timing(), secs(40));
        assert_eq!(at_deadline.state, PaymentState::Cancelling);
        assert_eq!(at_deadline.next, Some((Action::PreReverseQuery, secs(40))));
        let reverse = after_pre_reverse_query(
            &facts(PaymentState::Cancelling),
            QueryOutcome::UserPaying,
            secs(40),
        );
        assert_eq!(reverse.next, Some((Action::Reverse, secs(40))));
    }

    #[test]
    fn a_last_moment_payment_seen_before_reversing_is_paid() {
        let transition =
            after_pre_reverse_query(&facts(PaymentState::Cancelling), paid(), secs(40));
        assert_eq!(transition.state, PaymentState::Paid);
        assert_eq!(transition.next, None);
    }

    #[test]
    fn cashier_cancel_never_reverses_before_15s_and_loses_the_race_with_money_returned() {
        let CancelDecision::Reverse(cancel) =
            cancel_requested(&facts(PaymentState::WaitingForCustomer), &timing(), secs(5))
        else {
            panic!("a cancel while waiting for the customer reverses");
        };
        assert_eq!(cancel.state, PaymentState::Cancelling);
        assert_eq!(cancel.next, Some((Action::PreReverseQuery, secs(15))));
        let mut cancelling = facts(PaymentState::Cancelling);
        cancelling.cancel_requested = true;
        // The customer paid meanwhile: the reverse still runs and returns the money.
        let reverse = after_pre_reverse_query(&cancelling, paid(), secs(15));
        assert_eq!(reverse.state, PaymentState::Cancelling);
        assert_eq!(reverse.next, Some((Action::Reverse, secs(15))));
        assert!(reverse.seen_paid);
        cancelling.seen_paid = true;
        let done = after_reverse(&cancelling, ReverseOutcome::Done, &timing(), secs(16));
        assert_eq!(done.next, Some((Action::FinalQuery, secs(16))));
        let closed = after_final_query(&cancelling, QueryOutcome::Closed, &timing(), secs(16));
        assert_eq!(closed.state, PaymentState::Cancelled);
        assert!(closed.money_returned);
    }

    #[test]
    fn cancel_during_submission_is_remembered_and_applied_to_the_outcome() {
        assert_eq!(
            cancel_requested(&facts(PaymentState::Submitting), &timing(), secs(0)),
            CancelDecision::RecordOnly,
            "the micropay in flight keeps its own schedule"
        );
        let mut submitting = facts(PaymentState::Submitting);
        submitting.cancel_requested = true;
        let paid = after_micropay(
            &submitting,
            MicropayOutcome::Paid {
                transaction_id: "4200".into(),
                paid_at: None,
            },
            &timing(),
            secs(1),
        );
        assert_eq!(paid.state, PaymentState::Cancelling);
        assert_eq!(paid.next, Some((Action::PreReverseQuery, secs(15))));
        assert_eq!(
            cancel_requested(&facts(PaymentState::Paid), &timing(), secs(1)),
            CancelDecision::Unchanged
        );
        assert_eq!(
            cancel_requested(&facts(PaymentState::Cancelling), &timing(), secs(1)),
            CancelDecision::Unchanged
        );
    }

    #[test]
    fn a_decline_is_confirmed_by_one_query_before_failing() {
        let declined = after_micropay(
            &facts(PaymentState::Submitting),
            MicropayOutcome::Declined {
                code: "NOTENOUGH".into(),
                message: "余额不足".into(),
            },
            &timing(),
            secs(0),
        );
        assert_eq!(declined.state, PaymentState::Submitting);
        assert_eq!(declined.next, Some((Action::Query, secs(0))));
        let mut confirming = facts(PaymentState::Submitting);
        confirming.pending_failure = Some(Failure::new("NOTENOUGH", "余额不足"));
        let failed = after_query(&confirming, QueryOutcome::PayError, &timing(), secs(0));
        assert_eq!(failed.state, PaymentState::Failed);
        assert_eq!(failed.failure, Some(Failure::new("NOTENOUGH", "余额不足")));
        // The query can overturn the decline: a hidden success is a success.
        let overturned = after_query(&confirming, paid(), &timing(), secs(0));
        assert_eq!(overturned.state, PaymentState::Paid);
        assert_eq!(overturned.pending_failure, PendingFailure::Clear);
        // A failed confirming query leaves the outcome unknown: keep confirming.
        let unknown = after_query(
            &confirming,
            QueryOutcome::Unknown {
                reason: "timeout".into(),
            },
            &timing(),
            secs(0),
        );
        assert_eq!(unknown.state, PaymentState::Confirming);
        assert_eq!(unknown.pending_failure, PendingFailure::Clear);
    }

    #[test]
    fn protocol_rejection_fails_unless_an_earlier_attempt_may_have_landed() {
        let mut first = facts(PaymentState::Submitting);
        first.maybe_sent = false;
        let failed = after_micropay(
            &first,
            MicropayOutcome::Rejected {
                message: "签名错误".into(),
            },
            &timing(),
            secs(0),
        );
        assert_eq!(failed.state, PaymentState::Failed);
        assert_eq!(failed.failure.unwrap().code, "WECHAT_REJECTED");
        let after_unknown = after_micropay(
            &facts(PaymentState::Submitting),
            MicropayOutcome::Rejected {
                message: "x".into(),
            },
            &timing(),
            secs(0),
        );
        assert_eq!(after_unknown.state, PaymentState::Confirming);
    }

    #[test]
    fn not_sent_is_resent_with_backoff_and_fails_cleanly_at_the_deadline() {
        let mut never_sent = facts(PaymentState::Submitting);
        never_sent.maybe_sent = false;
        let retry = after_micropay(
            &never_sent,
            MicropayOutcome::NotSent {
                reason: "refused".into(),
            },
            &timing(),
            secs(0),
        );
        assert_eq!(retry.state, PaymentState::Submitting);
        assert_eq!(retry.next, Some((Action::Micropay, secs(1))));
        assert!(!retry.maybe_sent);
        never_sent.not_sent_attempts = 3;
        let later = after_micropay(
            &never_sent,
            MicropayOutcome::NotSent {
                reason: "refused".into(),
            },
            &timing(),
            secs(10),
        );
        assert_eq!(later.next, Some((Action::Micropay, secs(18))));
        let too_late = after_micropay(
            &never_sent,
            MicropayOutcome::NotSent {
                reason: "refused".into(),
            },
            &timing(),
            secs(39),
        );
        assert_eq!(too_late.state, PaymentState::Failed);
        assert_eq!(too_late.failure.unwrap().code, NOT_SENT.0);
        // If an earlier attempt may have reached WeChat, it is settled, never abandoned.
        let mut maybe = never_sent.clone();
        maybe.maybe_sent = true;
        let settled = after_micropay(
            &maybe,
            MicropayOutcome::NotSent {
                reason: "refused".into(),
            },
            &timing(),
            secs(39),
        );
        assert_eq!(settled.state, PaymentState::Confirming);
    }

    #[test]
    fn customer_cancelling_the_prompt_closes_the_order_early() {
        let closed = after_query(
            &facts(PaymentState::WaitingForCustomer),
            QueryOutcome::PayError,
            &timing(),
            secs(8),
        );
        assert_eq!(closed.state, PaymentState::Failed);
        assert_eq!(closed.failure.unwrap().code, PAY_ERROR.0);
        let notpay = after_query(
            &facts(PaymentState::WaitingForCustomer),
            QueryOutcome::NotPaid,
            &timing(),
            secs(8),
        );
        assert_eq!(notpay.state, PaymentState::Cancelling);
        assert_eq!(notpay.next, Some((Action::PreReverseQuery, secs(15))));
        let revoked = after_query(
            &facts(PaymentState::WaitingForCustomer),
            QueryOutcome::Closed,
            &timing(),
            secs(8),
        );
        assert_eq!(revoked.failure.unwrap().code, CUSTOMER_CANCELLED.0);
    }

    #[test]
    fn reverse_retries_with_backoff_then_needs_attention_and_keeps_checking() {
        let mut cancelling = facts(PaymentState::Cancelling);
        let first = after_reverse(
            &cancelling,
            ReverseOutcome::Retry {
                reason: "recall=Y".into(),
            },
            &timing(),
            secs(20),
        );
        assert_eq!(first.next, Some((Action::Reverse, secs(21))));
        cancelling.reverse_attempts = 4;
        let fifth = after_reverse(&cancelling, system_error(), &timing(), secs(20));
        assert_eq!(fifth.next, Some((Action::Reverse, secs(36))));
        cancelling.reverse_attempts = 9;
        let gave_up = after_reverse(&cancelling, system_error(), &timing(), secs(60));
        assert_eq!(gave_up.state, PaymentState::NeedsAttention);
        assert_eq!(gave_up.next, Some((Action::Recheck, secs(120))));
        assert!(gave_up.attention_reason.is_some());
        let impossible = after_reverse(
            &facts(PaymentState::Cancelling),
            ReverseOutcome::Impossible {
                reason: "CERT_ERROR".into(),
            },
            &timing(),
            secs(20),
        );
        assert_eq!(impossible.state, PaymentState::NeedsAttention);

        let attention = facts(PaymentState::NeedsAttention);
        assert_eq!(
            after_recheck(&attention, paid(), &timing(), secs(120)).state,
            PaymentState::Paid
        );
        assert_eq!(
            after_recheck(&attention, QueryOutcome::Closed, &timing(), secs(120)).state,
            PaymentState::Cancelled
        );
        let again = after_recheck(&attention, QueryOutcome::UserPaying, &timing(), secs(120));
        assert_eq!(again.next, Some((Action::Reverse, secs(120))));
        let unknown = after_recheck(
            &attention,
            QueryOutcome::Unknown {
                reason: "timeout".into(),
            },
            &timing(),
            secs(120),
        );
        assert_eq!(unknown.next, Some((Action::Recheck, secs(180))));
    }

    #[test]
    fn a_final_query_still_showing_paid_reverses_again() {
        let transition = after_final_query(
            &facts(PaymentState::Cancelling),
            paid(),
            &timing(),
            secs(20),
        );
        assert_eq!(transition.state, PaymentState::Cancelling);
        assert_eq!(transition.next, Some((Action::PreReverseQuery, secs(21))));
        assert!(transition.seen_paid);
    }

    #[test]
    fn resume_queries_a_submission_that_may_have_been_sent_and_resends_one_that_was_not() {
        let (state, action, _) = resume(
            &facts(PaymentState::Submitting),
            Some((Action::Micropay, secs(0))),
            &timing(),
            secs(3),
        );
        assert_eq!((state, action), (PaymentState::Confirming, Action::Query));
        let mut never_sent = facts(PaymentState::Submitting);
        never_sent.maybe_sent = false;
        let (state, action, at) = resume(
            &never_sent,
            Some((Action::Micropay, secs(0))),
            &timing(),
            secs(3),
        );
        assert_eq!(
            (state, action, at),
            (PaymentState::Submitting, Action::Micropay, secs(3))
        );
        let (_, action, at) = resume(
            &facts(PaymentState::Cancelling),
            Some((Action::Reverse, secs(20))),
            &timing(),
            secs(3),
        );
        assert_eq!((action, at), (Action::Reverse, secs(20)));
    }

    #[test]
    fn a_failure_that_leaves_an_open_order_closes_it_by_reverse_after_15s() {
        // Row 02: the customer cancels the password prompt; the order is PAYERROR.
        let cancelled = after_query(
            &facts(PaymentState::WaitingForCustomer),
            QueryOutcome::PayError,
            &timing(),
            secs(8),
        );
        assert_eq!(cancelled.state, PaymentState::Failed);
        assert_eq!(cancelled.failure.clone().unwrap().code, PAY_ERROR.0);
        assert_eq!(cancelled.next, Some((Action::CloseReverse, secs(15))));
        assert_eq!(cancelled.close, Some(CloseState::Pending));
        // Later than 15 s after submission, at once.
        let late = after_query(
            &facts(PaymentState::WaitingForCustomer),
            QueryOutcome::PayError,
            &timing(),
            secs(20),
        );
        assert_eq!(late.next, Some((Action::CloseReverse, secs(20))));

        // Row 04: NOTENOUGH confirmed by a query that finds the order PAYERROR.
        let mut confirming = facts(PaymentState::Submitting);
        confirming.pending_failure = Some(Failure::new("NOTENOUGH", "余额不足"));
        let declined = after_query(&confirming, QueryOutcome::PayError, &timing(), secs(0));
        assert_eq!(declined.state, PaymentState::Failed);
        assert_eq!(declined.failure.unwrap().code, "NOTENOUGH");
        assert_eq!(declined.next, Some((Action::CloseReverse, secs(15))));
        assert_eq!(declined.close, Some(CloseState::Pending));

        // Rows 05/06: the code was refused before any order existed: no call is owed.
        let mut expired = facts(PaymentState::Submitting);
        expired.pending_failure = Some(Failure::new("AUTHCODEEXPIRE", "过期"));
        let no_order = after_query(&expired, QueryOutcome::NotFound, &timing(), secs(0));
        assert_eq!(no_order.state, PaymentState::Failed);
        assert_eq!((no_order.next, no_order.close), (None, None));
        // An order WeChat already closed needs nothing either.
        let closed = after_query(
            &facts(PaymentState::WaitingForCustomer),
            QueryOutcome::Closed,
            &timing(),
            secs(8),
        );
        assert_eq!((closed.next, closed.close), (None, None));
        // A PAYERROR after the cashier cancelled: cancelled, and the order is closed too.
        let mut cancel = facts(PaymentState::WaitingForCustomer);
        cancel.cancel_requested = true;
        let by_cashier = after_query(&cancel, QueryOutcome::PayError, &timing(), secs(8));
        assert_eq!(by_cashier.state, PaymentState::Cancelled);
        assert_eq!(by_cashier.next, Some((Action::CloseReverse, secs(15))));
    }

    #[test]
    fn closing_reverse_keeps_what_the_cashier_sees_and_gives_up_after_bounded_retries() {
        let mut failed = facts(PaymentState::Failed);
        let done = after_close_reverse(&failed, ReverseOutcome::Done, &timing(), secs(15));
        assert_eq!(done.state, PaymentState::Failed);
        assert_eq!(done.failure, None, "the stored failure is kept as it is");
        assert_eq!(done.next, None);
        assert_eq!(done.close, Some(CloseState::Closed));

        let retry = after_close_reverse(&failed, system_error(), &timing(), secs(15));
        assert_eq!(retry.state, PaymentState::Failed);
        assert_eq!(retry.next, Some((Action::CloseReverse, secs(16))));
        assert_eq!(retry.reverse_attempts, 1);
        assert_eq!(retry.close, None, "still pending");
        failed.reverse_attempts = 4;
        let fifth = after_close_reverse(&failed, system_error(), &timing(), secs(30));
        assert_eq!(fifth.next, Some((Action::CloseReverse, secs(46))));
        failed.reverse_attempts = 9;
        let gave_up = after_close_reverse(&failed, system_error(), &timing(), secs(120));
        assert_eq!(gave_up.state, PaymentState::Failed);
        assert_eq!(gave_up.next, None, "no endless loop");
        assert_eq!(gave_up.close, Some(CloseState::NeedsAttention));
        assert!(gave_up.note.contains("needs attention"), "{}", gave_up.note);
        let impossible = after_close_reverse(
            &facts(PaymentState::Failed),
            ReverseOutcome::Impossible {
                reason: "CERT_ERROR".into(),
            },
            &timing(),
            secs(15),
        );
        assert_eq!(impossible.state, PaymentState::Failed);
        assert_eq!(
            (impossible.next, impossible.close),
            (None, Some(CloseState::NeedsAttention))
        );
        // A restart resumes the close where it was, never earlier than planned.
        let (state, action, at) = resume(
            &facts(PaymentState::Failed),
            Some((Action::CloseReverse, secs(15))),
            &timing(),
            secs(3),
        );
        assert_eq!(
            (state, action, at),
            (PaymentState::Failed, Action::CloseReverse, secs(15))
        );
    }

    #[test]
    fn time_expire_is_whole_seconds_after_the_send() {
        assert_eq!(
            time_expire(Millis(1_000_999), Duration::from_secs(120)),
            Millis(1_121_000)
        );
        assert_eq!(
            time_expire(Millis(1_000_001), Duration::from_millis(900)),
            Millis(1_001_000)
        );
        assert_eq!(
            time_expire(Millis(1_000_000), Duration::from_secs(120)),
            Millis(1_120_000)
        );
    }

    #[test]
    fn an_unanswered_micropay_is_not_settled_as_missing_before_its_time_expire() {
        // Arrange: micropay timed out (maybe sent, time_expire 120 s after the send); the
        // deadline passed, the reverse of an order WeChat had not seen answered SUCCESS.
        let timing = timing();
        let mut cancelling = facts(PaymentState::Cancelling);
        cancelling.time_expire = Some(time_expire(SUBMITTED, Duration::from_secs(120)));
        let until = secs(120 + 15);
        let reversed = after_reverse(&cancelling, ReverseOutcome::Done, &timing, secs(41));
        assert_eq!(reversed.next, Some((Action::FinalQuery, secs(41))));

        // Act: the final query finds no order, before time_expire + skew.
        let early = after_final_query(&cancelling, QueryOutcome::NotFound, &timing, secs(41));

        // Assert: still open (the cashier sees "cancelling", never a wrong outcome), asked
        // again once the micropay can no longer arrive.
        assert_eq!(early.state, PaymentState::Cancelling);
        assert_eq!(early.next, Some((Action::FinalQuery, until)));
        assert!(!early.money_returned);
        // After it: no order is final.
        let late = after_final_query(&cancelling, QueryOutcome::NotFound, &timing, until);
        assert_eq!(late.state, PaymentState::Cancelled);
        assert_eq!(late.next, None);
        // The late micropay arrived and was paid meanwhile: reverse it.
        let arrived = after_final_query(&cancelling, paid(), &timing, until);
        assert_eq!(arrived.state, PaymentState::Cancelling);
        assert!(matches!(arrived.next, Some((Action::PreReverseQuery, _))));
        assert!(arrived.seen_paid);
        // A payment needing attention is rechecked after it too.
        let mut attention = cancelling.clone();
        attention.state = PaymentState::NeedsAttention;
        let recheck = after_recheck(&attention, QueryOutcome::NotFound, &timing, secs(60));
        assert_eq!(recheck.state, PaymentState::NeedsAttention);
        assert_eq!(recheck.next, Some((Action::Recheck, until)));
        // Other answers are final at once: an order WeChat shows closed cannot be paid.
        let closed = after_final_query(&cancelling, QueryOutcome::Closed, &timing, secs(41));
        assert_eq!(closed.state, PaymentState::Cancelled);
    }

    #[test]
    fn without_a_micropay_in_the_air_no_order_is_final_at_once() {
        let timing = timing();
        let mut never_sent = facts(PaymentState::Cancelling);
        never_sent.maybe_sent = false;
        never_sent.time_expire = Some(secs(120));
        let mut seen_paid = facts(PaymentState::Cancelling);
        seen_paid.seen_paid = true;
        seen_paid.time_expire = Some(secs(120));
        // From before time_expire was recorded.
        let legacy = facts(PaymentState::Cancelling);
        for facts in [never_sent, seen_paid, legacy] {
            let decided = after_final_query(&facts, QueryOutcome::NotFound, &timing, secs(41));
            assert_eq!(decided.state, PaymentState::Cancelled, "{facts:?}");
        }
    }
}
