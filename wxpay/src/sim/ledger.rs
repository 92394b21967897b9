//! The simulated WeChat side's books: orders, refunds and used payment codes per merchant,
//! plus the log of every API call.
//!
//! Time-dependent states are not stored as timers. An order stores *when* its pending
//! password prompt resolves (if the behaviour says so), and [`Order::settle`] applies that,
//! or the 45-second auto-revoke, whenever the order is read. Refunds store when they
//! complete and report `PROCESSING` or `SUCCESS` by comparing with the clock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::behaviour::Behaviour;
use super::clock::beijing;

/// Which books a request is recorded in: per merchant (and, under a service provider, per
/// sub-merchant), production and sandbox kept apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BookKey {
    pub(crate) mch_id: String,
    pub(crate) sub_mch_id: Option<String>,
    pub(crate) sandbox: bool,
}

/// One merchant's orders and the indexes WeChat enforces uniqueness with.
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Orders by out_trade_no.
    pub(crate) orders: BTreeMap<String, Order>,
    /// transaction_id → out_trade_no.
    pub(crate) by_transaction_id: HashMap<String, String>,
    /// auth_code → the out_trade_no that consumed it.
    pub(crate) used_auth_codes: HashMap<String, String>,
    /// out_refund_no → out_trade_no.
    pub(crate) by_out_refund_no: HashMap<String, String>,
    /// refund_id → out_trade_no.
    pub(crate) by_refund_id: HashMap<String, String>,
}

impl Book {
    /// The order named by `transaction_id` (preferred) or `out_trade_no`, settled to `now`
    /// (see [`Order::settle`]) so that what a handler reads is current.
    pub(crate) fn order_mut(
        &mut self,
        transaction_id: Option<&str>,
        out_trade_no: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<&mut Order> {
        let key = self.find_order(transaction_id, out_trade_no)?;
        let order = self.orders.get_mut(&key)?;
        order.settle(now);
        Some(order)
    }

    /// Settles every order of this book (see [`Order::settle`]).
    pub(crate) fn settle_all(&mut self, now: DateTime<Utc>) {
        for order in self.orders.values_mut() {
            order.settle(now);
        }
    }

    /// The out_trade_no of the order named by `transaction_id` (preferred) or `out_trade_no`.
    pub(crate) fn find_order(
        &self,
        transaction_id: Option<&str>,
        out_trade_no: Option<&str>,
    ) -> Option<String> {
        let key = match (transaction_id, out_trade_no) {
            (Some(transaction_id), _) => self.by_transaction_id.get(transaction_id).cloned(),
            (None, Some(out_trade_no)) => self
                .orders
                .contains_key(out_trade_no)
                .then(|| out_trade_no.to_owned()),
            (None, None) => None,
        }?;
        // An order whose paid reply was lost on purpose is invisible to the merchant's calls.
        (!self.orders.get(&key)?.hidden_from_merchant).then_some(key)
    }

    /// Adds a new order and indexes it (an order paid without a payment code, such as an
    /// injected online sale, has an empty `auth_code` and consumes none).
    pub(crate) fn insert(&mut self, order: Order) {
        self.by_transaction_id
            .insert(order.transaction_id.clone(), order.out_trade_no.clone());
        if !order.auth_code.is_empty() {
            self.used_auth_codes
                .insert(order.auth_code.clone(), order.out_trade_no.clone());
        }
        self.orders.insert(order.out_trade_no.clone(), order);
    }

    /// Adds a refund to the order `out_trade_no` and indexes it.
    pub(crate) fn insert_refund(&mut self, out_trade_no: &str, refund: Refund) {
        self.by_out_refund_no
            .insert(refund.out_refund_no.clone(), out_trade_no.to_owned());
        self.by_refund_id
            .insert(refund.refund_id.clone(), out_trade_no.to_owned());
        if let Some(order) = self.orders.get_mut(out_trade_no) {
            order.refunds.push(refund);
        }
    }
}

/// Why an order is waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingKind {
    /// The customer's phone shows the password prompt.
    Password,
    /// The bank has not answered yet (the `BANKERROR` behaviour).
    Bank,
}

/// How a pending order resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// The customer entered the password: paid.
    Confirm,
    /// The customer cancelled the prompt: PAYERROR.
    Cancel,
    /// The bank declined: PAYERROR.
    Decline,
}

/// An order's stored state. `trade_state` is derived from it by [`Order::trade_state`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for the customer or the bank; resolves at the given time if scheduled.
    Pending {
        kind: PendingKind,
        resolves: Option<(DateTime<Utc>, Resolution)>,
    },
    /// Paid (possibly partly refunded since).
    Paid,
    /// The payment failed for good; replays of the same micropay get this error again.
    PayFailed {
        err_code: &'static str,
        err_code_des: &'static str,
    },
    /// Reversed by the merchant or revoked automatically 45 s after creation.
    Revoked { at: DateTime<Utc>, automatic: bool },
    /// Closed with closeorder.
    Closed { at: DateTime<Utc> },
}

/// One micropay order.
#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub(crate) out_trade_no: String,
    pub(crate) transaction_id: String,
    pub(crate) appid: String,
    pub(crate) mch_id: String,
    pub(crate) sub_mch_id: Option<String>,
    pub(crate) sub_appid: Option<String>,
    pub(crate) sandbox: bool,
    /// `MICROPAY` for orders made through micropay; an injected online sale has `JSAPI`,
    /// `NATIVE`, … (`sim::discrepancy`).
    pub(crate) trade_type: String,
    pub(crate) device_info: Option<String>,
    pub(crate) body: String,
    pub(crate) attach: Option<String>,
    pub(crate) total_fee: u64,
    pub(crate) auth_code: String,
    pub(crate) behaviour: Behaviour,
    pub(crate) openid: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) paid_at: Option<DateTime<Utc>>,
    pub(crate) status: Status,
    pub(crate) refunds: Vec<Refund>,
    /// The amount the bill shows for the payment, when an injected discrepancy makes it
    /// differ from `total_fee`, the amount charged.
    pub(crate) billed_fee: Option<u64>,
    /// Whether the merchant's calls (orderquery, reverse, refund, …) answer as if the
    /// order did not exist: the [`Behaviour::LostPaidReply`] row. The bill and the
    /// control API still show it.
    pub(crate) hidden_from_merchant: bool,
}

/// One refund of an order.
#[derive(Clone, Debug)]
pub(crate) struct Refund {
    pub(crate) out_refund_no: String,
    pub(crate) refund_id: String,
    pub(crate) total_fee: u64,
    pub(crate) refund_fee: u64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) completes_at: DateTime<Utc>,
}

impl Refund {
    /// `PROCESSING` until the configured refund delay has passed, then `SUCCESS`.
    pub(crate) fn status(&self, now: DateTime<Utc>) -> &'static str {
        if now >= self.completes_at {
            "SUCCESS"
        } else {
            "PROCESSING"
        }
    }
}

impl Order {
    /// Applies every time-dependent change due by `now`: a scheduled confirmation,
    /// cancellation or decline, and the auto-revoke of unpaid orders
    /// [`auto_revoke_after`](crate::sim::auto_revoke_after) their creation. Whatever was due
    /// first wins.
    pub(crate) fn settle(&mut self, now: DateTime<Utc>) {
        let Status::Pending { resolves, .. } = self.status else {
            return;
        };
        let revoke_at = self.created_at + crate::sim::auto_revoke_after();
        match resolves {
            Some((at, resolution)) if at <= now && at < revoke_at => {
                self.resolve(resolution, at);
            }
            _ if now >= revoke_at => {
                self.status = Status::Revoked {
                    at: revoke_at,
                    automatic: true,
                };
            }
            _ => {}
        }
    }

    /// Resolves a pending order at `at`.
    pub(crate) fn resolve(&mut self, resolution: Resolution, at: DateTime<Utc>) {
        self.status = match resolution {
            Resolution::Confirm => {
                self.paid_at = Some(at);
                Status::Paid
            }
            Resolution::Cancel => Status::PayFailed {
                err_code: "TRADE_ERROR",
                err_code_des: "用户取消支付",
            },
            Resolution::Decline => Status::PayFailed {
                err_code: "BANKERROR",
                err_code_des: "银行系统异常,支付失败",
            },
        };
    }

    /// The orderquery `trade_state` (docs/wechat-pay.md §5.2).
    pub(crate) fn trade_state(&self) -> &'static str {
        match self.status {
            Status::Pending { .. } => "USERPAYING",
            Status::Paid if !self.refunds.is_empty() => "REFUND",
            Status::Paid => "SUCCESS",
            Status::PayFailed { .. } => "PAYERROR",
            Status::Revoked { .. } => "REVOKED",
            Status::Closed { .. } => "CLOSED",
        }
    }

    /// The orderquery `trade_state_desc`.
    pub(crate) fn trade_state_desc(&self) -> &'static str {
        match self.status {
            Status::Pending {
                kind: PendingKind::Password,
                ..
            } => "需要用户输入支付密码",
            Status::Pending {
                kind: PendingKind::Bank,
                ..
            } => "银行处理中",
            Status::Paid if !self.refunds.is_empty() => "订单发生过退款，退款详情请查询退款单",
            Status::Paid => "支付成功",
            Status::PayFailed { .. } => "支付失败,请撤销订单",
            Status::Revoked { .. } => "订单已撤销",
            Status::Closed { .. } => "订单已关闭",
        }
    }

    /// Whether the customer's password prompt is open.
    pub(crate) fn password_prompt_open(&self) -> bool {
        matches!(
            self.status,
            Status::Pending {
                kind: PendingKind::Password,
                ..
            }
        )
    }

    /// The sum of all refunds so far.
    pub(crate) fn refunded_fee(&self) -> u64 {
        self.refunds.iter().map(|refund| refund.refund_fee).sum()
    }

    /// A snapshot for the control API.
    pub(crate) fn view(&self, now: DateTime<Utc>) -> OrderView {
        OrderView {
            mch_id: self.mch_id.clone(),
            sub_mch_id: self.sub_mch_id.clone(),
            sub_appid: self.sub_appid.clone(),
            appid: self.appid.clone(),
            sandbox: self.sandbox,
            out_trade_no: self.out_trade_no.clone(),
            transaction_id: self.transaction_id.clone(),
            total_fee: self.total_fee,
            body: self.body.clone(),
            auth_code: self.auth_code.clone(),
            behaviour: self.behaviour.key().to_owned(),
            trade_state: self.trade_state().to_owned(),
            trade_state_desc: self.trade_state_desc().to_owned(),
            password_prompt_open: self.password_prompt_open(),
            created_at: self.created_at,
            paid_at: self.paid_at,
            refunds: self
                .refunds
                .iter()
                .map(|refund| RefundView {
                    out_refund_no: refund.out_refund_no.clone(),
                    refund_id: refund.refund_id.clone(),
                    out_trade_no: self.out_trade_no.clone(),
                    refund_fee: refund.refund_fee,
                    refund_status: refund.status(now).to_owned(),
                    created_at: refund.created_at,
                    completes_at: refund.completes_at,
                })
                .collect(),
        }
    }
}

/// An order as the control API and [`SimHandle`](super::SimHandle) show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderView {
    /// The merchant (the service provider, for a sub-merchant's order).
    pub mch_id: String,
    /// The sub-merchant whose books hold the order, under a service provider.
    pub sub_mch_id: Option<String>,
    /// The sub-merchant's appid, when the order was made with one.
    pub sub_appid: Option<String>,
    /// The appid the order was created with.
    pub appid: String,
    /// Whether the order was created through the sandbox paths.
    pub sandbox: bool,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat's order number (assigned even before payment, shown to clients only once paid).
    pub transaction_id: String,
    /// The amount in fen.
    pub total_fee: u64,
    /// The product description.
    pub body: String,
    /// The payment code used.
    pub auth_code: String,
    /// The customer behaviour read from the payment code ([`Behaviour::key`]).
    pub behaviour: String,
    /// The current `trade_state` (`SUCCESS`, `USERPAYING`, `REVOKED`, …).
    pub trade_state: String,
    /// The current `trade_state_desc`.
    pub trade_state_desc: String,
    /// Whether the customer's password prompt is open (confirm or cancel it).
    pub password_prompt_open: bool,
    /// When the order was created (simulated time).
    #[serde(serialize_with = "serialize_time")]
    pub created_at: DateTime<Utc>,
    /// When it was paid, if it was.
    #[serde(serialize_with = "serialize_optional_time")]
    pub paid_at: Option<DateTime<Utc>>,
    /// Its refunds, oldest first.
    pub refunds: Vec<RefundView>,
}

/// A refund as the control API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundView {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund number.
    pub refund_id: String,
    /// The refunded order.
    pub out_trade_no: String,
    /// The amount refunded, in fen.
    pub refund_fee: u64,
    /// `PROCESSING` or `SUCCESS`.
    pub refund_status: String,
    /// When the refund was requested (simulated time).
    #[serde(serialize_with = "serialize_time")]
    pub created_at: DateTime<Utc>,
    /// When it completes (simulated time).
    #[serde(serialize_with = "serialize_time")]
    pub completes_at: DateTime<Utc>,
}

/// An open password prompt, waiting for the customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingPrompt {
    /// The merchant.
    pub mch_id: String,
    /// Whether the order is in the sandbox books.
    pub sandbox: bool,
    /// The order waiting for the password.
    pub out_trade_no: String,
    /// The amount in fen.
    pub total_fee: u64,
    /// The product description.
    pub body: String,
    /// When the order was created (simulated time).
    #[serde(serialize_with = "serialize_time")]
    pub created_at: DateTime<Utc>,
    /// When WeChat revokes it if nobody answers (simulated time).
    #[serde(serialize_with = "serialize_time")]
    pub revokes_at: DateTime<Utc>,
}

/// Which listener a call arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    /// The primary host (`api.mch.weixin.qq.com`).
    Primary,
    /// The backup host (`api2.mch.weixin.qq.com`).
    Backup,
}

/// One API call, as recorded in the call log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// 1 for the first call, counting up.
    pub seq: u64,
    /// The endpoint's short name (`micropay`, `orderquery`, …).
    pub endpoint: String,
    /// The request's `mch_id`, when it had one.
    pub mch_id: Option<String>,
    /// The request's `sub_mch_id`, when it had one (service-provider calls).
    pub sub_mch_id: Option<String>,
    /// The request's `out_trade_no`, when it had one.
    pub out_trade_no: Option<String>,
    /// The request's `time_expire` as sent (`yyyyMMddHHmmss`, Beijing time), when it had one;
    /// [`CallRecord::expired`] tells whether the call arrived after it.
    pub time_expire: Option<String>,
    /// The request's `User-Agent` header, when it had one: the proxy sends
    /// `paycode-proxy/VERSION (INSTANCE)`, so the log tells the instances apart.
    pub user_agent: Option<String>,
    /// The simulated time the call arrived.
    #[serde(serialize_with = "serialize_time")]
    pub sim_time: DateTime<Utc>,
    /// The real (wall-clock) time the call arrived, for rate checks in real time.
    #[serde(serialize_with = "serialize_time")]
    pub real_time: DateTime<Utc>,
    /// The listener it arrived on.
    pub host: Host,
    /// Whether it used the sandbox paths.
    pub sandbox: bool,
}

impl CallRecord {
    /// Whether the call carried a `time_expire` that had passed (in real time) when it
    /// arrived: such a micropay is refused (docs/wechat-pay.md §13). `None` when it carried
    /// none, or one that is not a `yyyyMMddHHmmss` time.
    pub fn expired(&self) -> Option<bool> {
        let time_expire = super::clock::parse_wechat_time(self.time_expire.as_deref()?)?;
        Some(self.real_time > time_expire)
    }

    /// The instance name in a `paycode-proxy/VERSION (INSTANCE)` User-Agent.
    pub fn instance(&self) -> Option<&str> {
        let agent = self.user_agent.as_deref()?;
        let rest = agent.strip_prefix("paycode-proxy/")?;
        let (_, name) = rest.split_once(" (")?;
        name.strip_suffix(')')
    }
}

/// Writes a time as RFC 3339 in Beijing time, the zone WeChat uses.
pub(crate) fn serialize_time<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.with_timezone(&beijing()).to_rfc3339())
}

fn serialize_optional_time<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serialize_time(time, serializer),
        None => serializer.serialize_none(),
    }
}

/// Everything the simulator remembers, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) books: BTreeMap<BookKey, Book>,
    pub(crate) calls: Vec<CallRecord>,
    /// Every injected discrepancy, oldest first (`sim::discrepancy`).
    pub(crate) discrepancies: Vec<super::discrepancy::Discrepancy>,
    /// A counter mixed into generated ids so they never repeat within one simulator.
    pub(crate) id_counter: u64,
}

impl Ledger {
    /// The book for `key`, created on first use.
    pub(crate) fn book(&mut self, key: &BookKey) -> &mut Book {
        self.books.entry(key.clone()).or_default()
    }

    /// Records an injected discrepancy.
    pub(crate) fn record_discrepancy(&mut self, discrepancy: super::discrepancy::Discrepancy) {
        self.discrepancies.push(discrepancy);
    }

    /// Settles every order of every book (see [`Order::settle`]).
    pub(crate) fn settle_all(&mut self, now: DateTime<Utc>) {
        for book in self.books.values_mut() {
            book.settle_all(now);
        }
    }

    /// A fresh 28-digit transaction_id in WeChat's shape (`4200…` + date + serial).
    pub(crate) fn next_transaction_id(&mut self, now: DateTime<Utc>) -> String {
        self.id_counter += 1;
        let date = now.with_timezone(&beijing()).format("%Y%m%d");
        let random: u32 = rand::random::<u32>() % 100_000;
        format!(
            "4200000{:03}{date}{random:05}{:05}",
            self.id_counter % 1000,
            self.id_counter % 100_000
        )
    }

    /// A fresh 29-digit refund_id in WeChat's shape (`5030…` + date + serial).
    pub(crate) fn next_refund_id(&mut self, now: DateTime<Utc>) -> String {
        self.id_counter += 1;
        let date = now.with_timezone(&beijing()).format("%Y%m%d");
        let random: u32 = rand::random::<u32>() % 1_000_000;
        format!(
            "503000{:03}{date}{random:06}{:06}",
            self.id_counter % 1000,
            self.id_counter % 1_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: Status, created_at: DateTime<Utc>) -> Order {
        Order {
            out_trade_no: "T1".into(),
            transaction_id: "4200".into(),
            appid: "wx".into(),
            mch_id: "1".into(),
            sub_mch_id: None,
            sub_appid: None,
            sandbox: false,
            trade_type: "MICROPAY".into(),
            device_info: None,
            body: "b".into(),
            attach: None,
            total_fee: 1,
            auth_code: "134567890123456789".into(),
            behaviour: Behaviour::PasswordWaits,
            openid: "o".into(),
            created_at,
            paid_at: None,
            status,
            refunds: Vec::new(),
            billed_fee: None,
            hidden_from_merchant: false,
        }
    }

    #[test]
    fn pending_orders_resolve_or_revoke_lazily() {
        // Arrange
        let start = Utc::now();
        let mut confirming = order(
            Status::Pending {
                kind: PendingKind::Password,
                resolves: Some((start + chrono::Duration::seconds(10), Resolution::Confirm)),
            },
            start,
        );
        let mut waiting = order(
            Status::Pending {
                kind: PendingKind::Password,
                resolves: None,
            },
            start,
        );

        // Act
        confirming.settle(start + chrono::Duration::seconds(9));
        let before = confirming.trade_state();
        confirming.settle(start + chrono::Duration::seconds(60));
        waiting.settle(start + chrono::Duration::seconds(44));
        let waiting_before = waiting.trade_state();
        waiting.settle(start + chrono::Duration::seconds(45));

        // Assert
        assert_eq!(before, "USERPAYING");
        assert_eq!(confirming.trade_state(), "SUCCESS");
        assert_eq!(
            confirming.paid_at,
            Some(start + chrono::Duration::seconds(10))
        );
        assert_eq!(waiting_before, "USERPAYING");
        assert_eq!(waiting.trade_state(), "REVOKED");
    }

    #[test]
    fn ids_have_wechat_lengths() {
        let mut ledger = Ledger::default();
        let now = Utc::now();
        assert_eq!(ledger.next_transaction_id(now).len(), 28);
        assert_eq!(ledger.next_refund_id(now).len(), 29);
    }
}
