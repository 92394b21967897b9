//! The rows the store keeps, as plain typed structs.
//!
//! Records carry domain types ([`Fen`], [`PaymentState`], [`AttemptId`], [`AuthCode`], the
//! order and refund numbers, validated once when read, and the engine's [`Action`] and
//! [`CloseState`], defined here so that the store needs nothing from the engine) and plain
//! `bool`s; how they are spelled in a particular database (INTEGER 0/1, epoch
//! milliseconds, wire names of states) is the business of that store implementation.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, Utc};
use paycode_api::{
    ApprovalAction, AttemptId, AuthCode, Fen, PaymentState, Role, payments::RefundState,
};
use wxpay::messages::{OutRefundNo, OutTradeNo};

/// An instant as whole milliseconds since the Unix epoch (UTC): the proxy's one time type,
/// used by the records, the state machine and the engine's timer queue alike, and the one
/// format the store uses, because every database stores a 64-bit integer the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    /// The current time.
    pub fn now() -> Millis {
        // A clock before 1970 is a broken clock; treating it as the epoch keeps the
        // arithmetic total instead of panicking in a payment path.
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// This instant plus `duration`, saturating instead of overflowing.
    pub fn plus(self, duration: std::time::Duration) -> Millis {
        let milliseconds = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Millis(self.0.saturating_add(milliseconds))
    }

    /// The instant as a UTC date-time (the epoch if it is out of chrono's range).
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// RFC 3339 text in UTC with milliseconds, as the JSON API reports times.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

impl std::ops::Add<std::time::Duration> for Millis {
    type Output = Millis;

    /// [`Millis::plus`].
    fn add(self, duration: std::time::Duration) -> Millis {
        self.plus(duration)
    }
}

/// The next WeChat call the engine owes a payment (decided by `engine::machine`, stored
/// as its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send (or, after a "not sent" failure, resend) micropay.
    Micropay,
    /// Query the order while waiting for its outcome.
    Query,
    /// Query immediately before reversing, so a last-moment payment is seen.
    PreReverseQuery,
    /// Reverse the order.
    Reverse,
    /// Query once more after a successful reverse, to confirm it is closed.
    FinalQuery,
    /// Re-examine a payment that needs attention: query, then reverse if still open.
    Recheck,
    /// Close the order of a payment that already ended (`failed`, or `cancelled` by a
    /// PAYERROR) by reversing it, without changing what the cashier sees.
    CloseReverse,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Micropay => "micropay",
            Action::Query => "query",
            Action::PreReverseQuery => "pre_reverse_query",
            Action::Reverse => "reverse",
            Action::FinalQuery => "final_query",
            Action::Recheck => "recheck",
            Action::CloseReverse => "close_reverse",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Action> {
        [
            Action::Micropay,
            Action::Query,
            Action::PreReverseQuery,
            Action::Reverse,
            Action::FinalQuery,
            Action::Recheck,
            Action::CloseReverse,
        ]
        .into_iter()
        .find(|action| action.as_str() == name)
    }
}

/// Where closing a settled payment's order at WeChat stands (the closed loop, docs/wechat-pay.md §7.1
/// item 6). `None` on a payment means no close is owed: the order was paid, never created,
/// or already closed by the payment's own reverse or by WeChat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseState {
    /// The order is left open (`PAYERROR`, `NOTPAY`): a reverse is owed
    /// ([`Action::CloseReverse`]).
    Pending,
    /// The reverse succeeded, or WeChat had nothing left to close (`ORDERNOTEXIST`).
    Closed,
    /// The reverse failed for good or `reverse_max_attempts` times; an operator must close
    /// the order in the merchant platform. The payment stays as the cashier saw it.
    NeedsAttention,
}

impl CloseState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseState::Pending => "pending",
            CloseState::Closed => "closed",
            CloseState::NeedsAttention => "needs_attention",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<CloseState> {
        [
            CloseState::Pending,
            CloseState::Closed,
            CloseState::NeedsAttention,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// Why a payment failed, or a micropay decline waiting to be confirmed: a code and a
/// sentence for the cashier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// WeChat's `err_code` or one of the proxy's own codes.
    pub code: String,
    /// A message for the cashier explaining `code`.
    pub message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The merchant fields a payment (and its refunds) was made with, sent with every WeChat
/// call about it: the account's `appid` and `mch_id` and, in service-provider mode, the
/// store's `sub_mch_id` and optional `sub_appid` (docs/wechat-pay.md §11).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MerchantIds {
    /// The account's appid (the provider's, in provider mode).
    pub appid: String,
    /// The account's merchant number (the provider's, in provider mode).
    pub mch_id: String,
    /// The sub-merchant's appid, when the store has one.
    pub sub_appid: Option<String>,
    /// The sub-merchant, in provider mode.
    pub sub_mch_id: Option<String>,
}

/// A store: a shop whose terminals take payments into one merchant account (a direct
/// merchant's, or a provider's for the store's sub-merchant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRecord {
    /// The proxy's id for the store; `default` for the store a wave-1 database became.
    pub id: String,
    /// The operator's name for it (`shop-east`); unique.
    pub name: String,
    /// The configuration's name of the account it collects into.
    pub account: String,
    /// Its sub-merchant, when the account is a service provider.
    pub sub_mch_id: Option<String>,
    /// The sub-merchant's appid, if it has one.
    pub sub_appid: Option<String>,
    /// Where the shop is, for people.
    pub address: Option<String>,
    /// When it was added.
    pub created_at: Millis,
    /// When it was disabled; a disabled store takes no new payments.
    pub disabled_at: Option<Millis>,
}

/// A payment, as stored. The payments engine owns every transition; the store only checks
/// versions and records what it is given.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The proxy's id for the payment (the path segment of `/api/v1/payments/{id}`).
    pub id: String,
    /// The app's idempotency key; unique.
    pub attempt_id: AttemptId,
    /// The terminal that took the payment.
    pub terminal_id: String,
    /// The terminal's store; only that store's terminals see the payment.
    pub store_id: String,
    /// The merchant fields the order was made with; every call about it sends them.
    pub merchant: MerchantIds,
    /// The order number sent to WeChat; unique, one per attempt.
    pub out_trade_no: OutTradeNo,
    /// The amount charged.
    pub amount_fen: Fen,
    /// The full payment code, kept only while micropay may still have to be (re)sent after a
    /// crash; the engine sets it to `None` once it is no longer needed. `Debug` masks it.
    pub auth_code: Option<AuthCode>,
    /// The last four digits of the payment code, kept for the cashier's screen.
    pub auth_code_last4: String,
    /// SHA-256 of the payment code (lower-case hex), kept after the code is wiped so that
    /// a repeated `attempt_id` can still be compared; `None` for rows stored before it
    /// existed.
    pub auth_code_fingerprint: Option<String>,
    /// The description (`body`) sent to WeChat.
    pub description: String,
    /// The state.
    pub state: PaymentState,
    /// Increases by one with every stored change; used for optimistic concurrency and as the
    /// long-poll cursor.
    pub version: u64,
    /// Whether micropay may have reached WeChat (it was handed to the network at least once),
    /// so the outcome must be queried before anything is resent.
    pub maybe_sent: bool,
    /// How many times micropay was sent.
    pub micropay_attempts: u32,
    /// How many order queries were made.
    pub query_count: u32,
    /// How many reverse calls were made.
    pub reverse_count: u32,
    /// Whether the cashier asked to cancel.
    pub cancel_requested: bool,
    /// Whether WeChat ever reported the order as paid (even if it was reversed later).
    pub seen_paid: bool,
    /// For a cancelled payment: whether money was taken and returned by the reverse.
    pub money_returned: bool,
    /// WeChat's order number, once known.
    pub transaction_id: Option<String>,
    /// WeChat's `err_code` or one of the proxy's own codes, when the payment failed or the
    /// last attempt had a problem.
    pub failure_code: Option<String>,
    /// A message for the cashier explaining `failure_code`.
    pub failure_message: Option<String>,
    /// Why the payment needs attention, when it does.
    pub attention_reason: Option<String>,
    /// When micropay was first sent; the query and reverse schedule counts from here.
    pub submitted_at: Option<Millis>,
    /// The WeChat call the engine owes the payment next; `None` once nothing more is owed.
    pub next_action: Option<Action>,
    /// When the engine should make that call.
    pub next_action_at: Option<Millis>,
    /// A micropay decline waiting to be confirmed by a query.
    pub pending_failure: Option<Failure>,
    /// Consecutive failed reverse or final-query attempts (the machine's
    /// `reverse_attempts`).
    pub reverse_attempts: u32,
    /// Consecutive micropay attempts that never reached WeChat.
    pub not_sent_attempts: u32,
    /// Whether the payment's order still has to be closed at WeChat, after the payment
    /// itself ended (`None`: no close owed). Never shown to the cashier.
    pub close_state: Option<CloseState>,
    /// When the payment was created.
    pub created_at: Millis,
    /// When it was last changed; the store sets it on every update.
    pub updated_at: Millis,
    /// When it reached a settled state (`paid`, `failed`, `cancelled`).
    pub settled_at: Option<Millis>,
    /// The shop's business day the payment belongs to.
    pub business_day: NaiveDate,
    /// The run of the proxy instance that last claimed the payment (its lease owner), if
    /// any; written only by the store's lease operations (`docs/postgresql.md` §4).
    pub lease_owner: Option<String>,
    /// Until when `lease_owner` holds the payment, on the database's clock.
    pub lease_until: Option<Millis>,
    /// How many times the payment was claimed: the fence every write names. A write whose
    /// `lease_epoch` is not the stored one is refused (`StoreError::LeaseLost`).
    pub lease_epoch: u64,
    /// The `time_expire` sent with micropay (whole seconds), set with the write-ahead
    /// commit: until it has passed, a micropay whose outcome is unknown may still reach
    /// WeChat.
    pub time_expire: Option<Millis>,
}

impl PaymentRecord {
    /// A payment just taken at the counter, before anything is sent: state `submitting`,
    /// version 1, every counter and flag zero, `created_at` and `updated_at` both `now`.
    #[allow(clippy::too_many_arguments)] // Each argument is a distinct fact of a new payment.
    pub fn new_submitting(
        id: String,
        attempt_id: AttemptId,
        terminal_id: String,
        store: (String, MerchantIds),
        out_trade_no: OutTradeNo,
        amount_fen: Fen,
        auth_code: AuthCode,
        description: String,
        now: Millis,
        business_day: NaiveDate,
    ) -> PaymentRecord {
        let (store_id, merchant) = store;
        PaymentRecord {
            id,
            attempt_id,
            terminal_id,
            store_id,
            merchant,
            out_trade_no,
            amount_fen,
            auth_code_last4: auth_code.last_four().to_owned(),
            auth_code_fingerprint: Some(auth_code_fingerprint(&auth_code)),
            auth_code: Some(auth_code),
            description,
            state: PaymentState::Submitting,
            version: 1,
            maybe_sent: false,
            micropay_attempts: 0,
            query_count: 0,
            reverse_count: 0,
            cancel_requested: false,
            seen_paid: false,
            money_returned: false,
            transaction_id: None,
            failure_code: None,
            failure_message: None,
            attention_reason: None,
            submitted_at: None,
            next_action: None,
            next_action_at: None,
            pending_failure: None,
            reverse_attempts: 0,
            not_sent_attempts: 0,
            close_state: None,
            created_at: now,
            updated_at: now,
            settled_at: None,
            business_day,
            lease_owner: None,
            lease_until: None,
            lease_epoch: 0,
            time_expire: None,
        }
    }
}

impl fmt::Debug for PaymentRecord {
    /// Every field, with the payment code masked (`1300…5678`): a full code is a bearer
    /// instrument and must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentRecord")
            .field("id", &self.id)
            .field("attempt_id", &self.attempt_id)
            .field("terminal_id", &self.terminal_id)
            .field("store_id", &self.store_id)
            .field("merchant", &self.merchant)
            .field("out_trade_no", &self.out_trade_no)
            .field("amount_fen", &self.amount_fen)
            .field("auth_code", &self.auth_code.as_ref().map(AuthCode::masked))
            .field("auth_code_last4", &self.auth_code_last4)
            .field("auth_code_fingerprint", &self.auth_code_fingerprint)
            .field("description", &self.description)
            .field("state", &self.state)
            .field("version", &self.version)
            .field("maybe_sent", &self.maybe_sent)
            .field("micropay_attempts", &self.micropay_attempts)
            .field("query_count", &self.query_count)
            .field("reverse_count", &self.reverse_count)
            .field("cancel_requested", &self.cancel_requested)
            .field("seen_paid", &self.seen_paid)
            .field("money_returned", &self.money_returned)
            .field("transaction_id", &self.transaction_id)
            .field("failure_code", &self.failure_code)
            .field("failure_message", &self.failure_message)
            .field("attention_reason", &self.attention_reason)
            .field("submitted_at", &self.submitted_at)
            .field("next_action", &self.next_action)
            .field("next_action_at", &self.next_action_at)
            .field("pending_failure", &self.pending_failure)
            .field("reverse_attempts", &self.reverse_attempts)
            .field("not_sent_attempts", &self.not_sent_attempts)
            .field("close_state", &self.close_state)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("settled_at", &self.settled_at)
            .field("business_day", &self.business_day)
            .field("lease_owner", &self.lease_owner)
            .field("lease_until", &self.lease_until)
            .field("lease_epoch", &self.lease_epoch)
            .field("time_expire", &self.time_expire)
            .finish()
    }
}

/// The fingerprint stored for a payment code: SHA-256, lower-case hex.
pub fn auth_code_fingerprint(code: &AuthCode) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(code.expose().as_bytes()))
}

/// A refund of a paid payment, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRecord {
    /// The proxy's id for the refund.
    pub id: String,
    /// The payment it returns money from.
    pub payment_id: String,
    /// The payment's store.
    pub store_id: String,
    /// The payment's merchant fields, sent with the refund and its queries.
    pub merchant: MerchantIds,
    /// The app's idempotency key; unique.
    pub refund_attempt_id: AttemptId,
    /// The refund number sent to WeChat; unique.
    pub out_refund_no: OutRefundNo,
    /// The amount returned.
    pub amount_fen: Fen,
    /// The reason shown to the customer.
    pub reason: Option<String>,
    /// The state.
    pub state: RefundState,
    /// Increases by one with every stored change.
    pub version: u64,
    /// WeChat's refund id, once known.
    pub wechat_refund_id: Option<String>,
    /// WeChat's `err_code` or the proxy's own code, when it failed.
    pub failure_code: Option<String>,
    /// A message explaining `failure_code`.
    pub failure_message: Option<String>,
    /// How many refund calls were made.
    pub attempts: u32,
    /// When the engine should next act on the refund; while `queued`, when it may be sent.
    pub next_action_at: Option<Millis>,
    /// When an application for this refund last ended at WeChat in a way that may have
    /// started WeChat's one-minute spacing (accepted, or outcome unknown); `None` if none
    /// did. The next refund of the payment waits `refund_spacing` from here.
    pub applied_at: Option<Millis>,
    /// When it was requested.
    pub created_at: Millis,
    /// When it was last changed; the store sets it on every update.
    pub updated_at: Millis,
    /// The run of the proxy instance that last claimed the refund, if any.
    pub lease_owner: Option<String>,
    /// Until when `lease_owner` holds the refund, on the database's clock.
    pub lease_until: Option<Millis>,
    /// How many times the refund was claimed: the fence every write names, as for payments.
    pub lease_epoch: u64,
}

impl RefundRecord {
    /// A refund of `payment` just requested: state `submitting`, version 1, no attempts
    /// yet; its store and merchant fields are the payment's.
    pub fn new_submitting(
        id: String,
        payment: &PaymentRecord,
        refund_attempt_id: AttemptId,
        out_refund_no: OutRefundNo,
        amount_fen: Fen,
        reason: Option<String>,
        now: Millis,
    ) -> RefundRecord {
        RefundRecord {
            id,
            payment_id: payment.id.clone(),
            store_id: payment.store_id.clone(),
            merchant: payment.merchant.clone(),
            refund_attempt_id,
            out_refund_no,
            amount_fen,
            reason,
            state: RefundState::Submitting,
            version: 1,
            wechat_refund_id: None,
            failure_code: None,
            failure_message: None,
            attempts: 0,
            next_action_at: None,
            applied_at: None,
            created_at: now,
            updated_at: now,
            lease_owner: None,
            lease_until: None,
            lease_epoch: 0,
        }
    }
}

/// A cashier terminal allowed to use the API. Only a hash of its token is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalRecord {
    /// The proxy's id for the terminal, recorded on its payments.
    pub id: String,
    /// The name given by the operator (`counter-1`); unique.
    pub name: String,
    /// The store the terminal belongs to; it sees only that store's payments.
    pub store_id: String,
    /// SHA-256 of the token, in lower-case hex.
    pub token_hash: String,
    /// When it was added.
    pub created_at: Millis,
    /// When it was revoked; a revoked terminal's token is refused.
    pub revoked_at: Option<Millis>,
    /// What it may ask for (`cashier` unless `terminal add --role` said otherwise).
    pub role: Role,
}

/// One entry of a payment's audit trail, written with each change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentEvent {
    /// The payment.
    pub payment_id: String,
    /// When the change was stored.
    pub at: Millis,
    /// The state before the change; `None` for the creation.
    pub from_state: Option<PaymentState>,
    /// The state after the change.
    pub to_state: PaymentState,
    /// What happened, in words (never a full payment code or a secret).
    pub detail: String,
    /// The lease owner (a proxy's run id) the change was written under; `None` for events
    /// written before leases were recorded (migration 0010).
    pub lease_owner: Option<String>,
    /// The lease epoch the change was written under (the fence it passed); `None` as above.
    pub lease_epoch: Option<u64>,
}

/// The store's name for a refund state (the same as the JSON API's).
pub fn refund_state_name(state: RefundState) -> &'static str {
    match state {
        RefundState::Queued => "queued",
        RefundState::Submitting => "submitting",
        RefundState::Processing => "processing",
        RefundState::Succeeded => "succeeded",
        RefundState::Failed => "failed",
    }
}

/// Reads a refund state name written by [`refund_state_name`].
pub fn parse_refund_state(name: &str) -> Option<RefundState> {
    [
        RefundState::Queued,
        RefundState::Submitting,
        RefundState::Processing,
        RefundState::Succeeded,
        RefundState::Failed,
    ]
    .into_iter()
    .find(|state| refund_state_name(*state) == name)
}

/// A payment `id` of ¥1.00 at the default store, for the unit tests of refunds.
#[cfg(test)]
pub(crate) fn sample_payment(id: &str) -> PaymentRecord {
    PaymentRecord::new_submitting(
        id.into(),
        AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7b").unwrap(),
        "t1".into(),
        (
            "default".into(),
            MerchantIds {
                appid: "wx".into(),
                mch_id: "10000100".into(),
                sub_appid: None,
                sub_mch_id: None,
            },
        ),
        OutTradeNo::new(format!("PC{id}")).unwrap(),
        Fen(100),
        AuthCode::parse("134567890123455678").unwrap(),
        "test".into(),
        Millis(0),
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_payment_code() {
        let code = AuthCode::parse("134567890123455678").unwrap();
        let record = PaymentRecord::new_submitting(
            "p1".into(),
            AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a").unwrap(),
            "t1".into(),
            (
                "default".into(),
                MerchantIds {
                    appid: "wx".into(),
                    mch_id: "10000100".into(),
                    sub_appid: None,
                    sub_mch_id: None,
                },
            ),
            OutTradeNo::new("PC1").unwrap(),
            Fen(100),
            code,
            "test".into(),
            Millis(0),
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        );
        let debug = format!("{record:?}");
        assert!(!debug.contains("134567890123455678"), "{debug}");
        assert!(debug.contains("1345…5678"), "{debug}");
        assert_eq!(record.auth_code_last4, "5678");
    }

    #[test]
    fn refund_state_names_match_the_json_api() {
        for state in [
            RefundState::Queued,
            RefundState::Submitting,
            RefundState::Processing,
            RefundState::Succeeded,
            RefundState::Failed,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", refund_state_name(state)));
            assert_eq!(parse_refund_state(refund_state_name(state)), Some(state));
        }
    }

    #[test]
    fn action_names_round_trip() {
        for action in [
            Action::Micropay,
            Action::Query,
            Action::PreReverseQuery,
            Action::Reverse,
            Action::FinalQuery,
            Action::Recheck,
            Action::CloseReverse,
        ] {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        for close in [
            CloseState::Pending,
            CloseState::Closed,
            CloseState::NeedsAttention,
        ] {
            assert_eq!(CloseState::parse(close.as_str()), Some(close));
        }
        assert_eq!(CloseState::parse("open"), None);
        assert_eq!(Action::parse("sleep"), None);
    }

    #[test]
    fn millis_format_as_rfc3339() {
        assert_eq!(
            Millis(1_709_310_600_123).to_rfc3339(),
            "2024-03-01T16:30:00.123Z"
        );
    }
}

// ---- Manager approvals (migration 0011, docs/approvals.md) ----

/// A manager: a named person whose PIN approves manager actions. Only an argon2id hash of
/// the PIN is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagerRecord {
    /// The proxy's id for the manager, recorded with each approval.
    pub id: String,
    /// The name the manager types (`店长`); unique among managers not removed.
    pub name: String,
    /// The store the manager approves for; `None`: every store.
    pub store_id: Option<String>,
    /// The PIN's argon2id hash, PHC string format.
    pub pin_hash: String,
    /// Failed PIN checks in a row.
    pub failed_attempts: u32,
    /// Until when PIN checks are refused (the store's clock).
    pub locked_until: Option<Millis>,
    /// When the manager was added.
    pub created_at: Millis,
    /// When the manager was removed; a removed manager approves nothing.
    pub removed_at: Option<Millis>,
}

impl fmt::Debug for ManagerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("store_id", &self.store_id)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked_until", &self.locked_until)
            .field("removed_at", &self.removed_at)
            .finish_non_exhaustive()
    }
}

/// When repeated PIN failures lock a manager out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures in a row that lock the PIN (`approvals.max_failures`).
    pub max_failures: u32,
    /// How long a lockout lasts (`approvals.lockout`), from the failure that started it.
    pub lockout: std::time::Duration,
}

/// What a PIN check counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// The PIN was right; the failure count is back to zero.
    Accepted,
    /// The PIN was wrong; `remaining` more failures lock it.
    Incorrect {
        /// Failures left before the lockout.
        remaining: u32,
    },
    /// The PIN is locked (by this failure or an earlier one) until `until`; `now` is the
    /// store's clock when it answered. A right PIN is refused too while locked.
    Locked {
        /// The end of the lockout.
        until: Millis,
        /// The store's clock.
        now: Millis,
    },
}

/// The PIN check rule both stores apply in one transaction, on the store's clock: a locked
/// PIN stays locked whatever was typed; a success resets the count; the `max_failures`-th
/// failure in a row locks until `now + lockout` and starts the count afresh. Returns the new
/// `(failed_attempts, locked_until)` and the outcome.
pub fn pin_transition(
    failed_attempts: u32,
    locked_until: Option<Millis>,
    now: Millis,
    accepted: bool,
    policy: LockoutPolicy,
) -> (u32, Option<Millis>, PinCheck) {
    if let Some(until) = locked_until.filter(|until| *until > now) {
        return (
            failed_attempts,
            Some(until),
            PinCheck::Locked { until, now },
        );
    }
    if accepted {
        return (0, None, PinCheck::Accepted);
    }
    let failed = failed_attempts.saturating_add(1);
    if failed >= policy.max_failures {
        let lockout = i64::try_from(policy.lockout.as_millis()).unwrap_or(i64::MAX);
        let until = Millis(now.0.saturating_add(lockout));
        (0, Some(until), PinCheck::Locked { until, now })
    } else {
        (
            failed,
            None,
            PinCheck::Incorrect {
                remaining: policy.max_failures - failed,
            },
        )
    }
}

/// A new approval to store: the token's hash, who asked and who approved, for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApproval {
    /// SHA-256 of the `pca_` token, lower-case hex.
    pub token_hash: String,
    /// The terminal that asked; the token works for it only.
    pub terminal_id: String,
    /// The manager whose PIN was checked.
    pub manager_id: String,
    /// The kind of action it approves.
    pub action: ApprovalAction,
    /// Why, as the manager typed it.
    pub reason: Option<String>,
    /// One use (`true`) or any number until it expires.
    pub once: bool,
    /// How long it works from the moment the store writes it (the store's clock).
    pub ttl: std::time::Duration,
}

/// One use of an approval: the terminal presenting the token, the action it performs and on
/// what.
#[derive(Clone, Copy, Debug)]
pub struct ApprovalUse<'a> {
    /// SHA-256 of the presented token.
    pub token_hash: &'a str,
    /// The terminal presenting it.
    pub terminal_id: &'a str,
    /// The action performed.
    pub action: ApprovalAction,
    /// What it is performed on (a payment id, a day), for the audit row.
    pub target: &'a str,
    /// The store of what it is performed on: the manager must approve for it (their store,
    /// or every store).
    pub store_id: &'a str,
    /// Why, when the request itself says (a settlement's reason); the audit row keeps it
    /// instead of the approval's.
    pub reason: Option<&'a str>,
}

/// An approved action, as the audit log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedAction {
    /// When the approval was used (the store's clock).
    pub at: Millis,
    /// The manager who approved.
    pub manager_id: String,
    /// Their name at the time.
    pub manager_name: String,
    /// The terminal that performed it.
    pub terminal_id: String,
    /// What kind of action.
    pub action: ApprovalAction,
    /// What it was performed on (a payment id, a day).
    pub target: String,
    /// Why, as the manager typed it.
    pub reason: Option<String>,
}

#[cfg(test)]
mod approval_tests {
    use std::time::Duration;

    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        max_failures: 3,
        lockout: Duration::from_secs(60),
    };

    #[test]
    fn failures_in_a_row_lock_and_a_lock_refuses_even_the_right_pin() {
        let now = Millis(1_000_000);
        assert_eq!(
            pin_transition(0, None, now, false, POLICY),
            (1, None, PinCheck::Incorrect { remaining: 2 })
        );
        assert_eq!(
            pin_transition(1, None, now, true, POLICY),
            (0, None, PinCheck::Accepted)
        );
        let until = Millis(now.0 + 60_000);
        assert_eq!(
            pin_transition(2, None, now, false, POLICY),
            (0, Some(until), PinCheck::Locked { until, now })
        );
        let later = Millis(now.0 + 59_999);
        assert_eq!(
            pin_transition(0, Some(until), later, true, POLICY).2,
            PinCheck::Locked { until, now: later }
        );
        // Once the lockout has passed, the right PIN works again.
        assert_eq!(
            pin_transition(0, Some(until), until, true, POLICY),
            (0, None, PinCheck::Accepted)
        );
    }
}
