//! The chain soak's own end-of-run checks, read from the simulator's call log (which names
//! the sending instance in each call's `User-Agent`) and the final books and store, on top of
//! the one-proxy reconciliation ([`crate::reconcile`]):
//!
//! - no `out_trade_no` got micropay from two instances;
//! - every micropay that reached WeChat after another instance had taken the payment over
//!   (its sender had lost the lease) was refused for its `time_expire`, or its order ended
//!   reversed, or the payment is shown paid;
//! - no merchant account (`mch_id`) got more than [`RATE_LIMIT`] micropay calls in any one
//!   second of real time;
//! - no state was written by an instance after it lost its lease: each audit event names the
//!   lease (owner and epoch) it was written under, and within a payment the epochs never go
//!   backwards and each epoch has one owner.
//!
//! Each class lists its cases, so that a failing run names the payments.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use paycode_api::PaymentState;
use paycode_proxy::store::{PaymentEvent, PaymentRecord};
use wxpay::sim::{CallRecord, OrderView};

use crate::reconcile::Class;

/// WeChat's micropay limit per merchant account (docs/postgresql.md §4).
pub const RATE_LIMIT: usize = 30;

/// An out_trade_no whose micropay calls came from two instances.
pub const TWO_SENDERS: &str = "out_trade_no that got micropay from two instances";
/// A micropay that arrived after a takeover and charged an order nobody reversed or showed.
pub const LATE_CHARGED: &str = "late micropay (after a takeover) that charged unseen";
/// A one-second window of real time with too many micropay calls on one account.
pub const OVER_RATE: &str = "1-second windows over 30 micropays on one account";
/// A payment change written under a lease that had already passed to another owner.
pub const WRITE_AFTER_LOSS: &str = "writes by an instance after it lost its lease";

/// The checks' result: the classes (all must be empty) and the figures behind them.
#[derive(Clone, Debug)]
pub struct ChainChecks {
    /// [`TWO_SENDERS`], [`LATE_CHARGED`], [`OVER_RATE`], [`WRITE_AFTER_LOSS`], in that
    /// order.
    pub classes: Vec<Class>,
    /// Micropay calls per instance name (`?` for a call without a proxy User-Agent).
    pub micropays_by_instance: BTreeMap<String, usize>,
    /// Micropays refused because they arrived after their `time_expire`.
    pub expired_micropays: usize,
    /// Micropays that arrived after another instance had called WeChat for the payment.
    pub late_micropays: usize,
    /// … of which were refused for their `time_expire`.
    pub late_refused: usize,
    /// … of which came from an instance after it was resumed from a pause.
    pub late_after_pause: usize,
    /// The most micropay calls one account got in one second of real time, per mch_id.
    pub busiest_second: BTreeMap<String, usize>,
}

/// When an instance was frozen (SIGSTOP) and resumed, in real time.
#[derive(Clone, Debug)]
pub struct Pause {
    /// The instance's name.
    pub instance: String,
    /// When it was frozen.
    pub from: DateTime<Utc>,
    /// When it was resumed.
    pub until: DateTime<Utc>,
}

impl ChainChecks {
    /// Runs the checks over the simulator's `calls` and `orders`, the store's `payments` and
    /// their audit `events` (each payment's, oldest first), and the `pauses` the soak made.
    pub fn check(
        calls: &[CallRecord],
        orders: &[OrderView],
        payments: &[PaymentRecord],
        events: &[Vec<PaymentEvent>],
        pauses: &[Pause],
    ) -> ChainChecks {
        let micropays: Vec<&CallRecord> = calls
            .iter()
            .filter(|call| call.endpoint == "micropay" && !call.sandbox)
            .collect();
        let instance = |call: &CallRecord| call.instance().unwrap_or("?").to_owned();
        let mut micropays_by_instance = BTreeMap::new();
        for call in &micropays {
            *micropays_by_instance.entry(instance(call)).or_insert(0) += 1;
        }

        // Two senders for one out_trade_no.
        let mut senders: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for call in &micropays {
            if let Some(no) = call.out_trade_no.as_deref() {
                senders.entry(no).or_default().insert(instance(call));
            }
        }
        let two_senders = senders
            .iter()
            .filter(|(_, instances)| instances.len() > 1)
            .map(|(no, instances)| format!("{no}: micropay from {instances:?}"))
            .collect();

        // Late micropays: after a call for the same out_trade_no from another instance.
        let orders_by_no: HashMap<&str, &OrderView> = orders
            .iter()
            .map(|order| (order.out_trade_no.as_str(), order))
            .collect();
        let payments_by_no: HashMap<&str, &PaymentRecord> = payments
            .iter()
            .map(|payment| (payment.out_trade_no.as_str(), payment))
            .collect();
        let mut first_call_by: HashMap<(&str, String), u64> = HashMap::new();
        for call in calls {
            if let Some(no) = call.out_trade_no.as_deref() {
                first_call_by
                    .entry((no, instance(call)))
                    .or_insert(call.seq);
            }
        }
        let mut late_charged = Vec::new();
        let (mut late_micropays, mut late_refused, mut late_after_pause) = (0, 0, 0);
        for call in &micropays {
            let Some(no) = call.out_trade_no.as_deref() else {
                continue;
            };
            let sender = instance(call);
            let taken_over = first_call_by.iter().any(|((other_no, other), seq)| {
                *other_no == no && *other != sender && *seq < call.seq
            });
            if !taken_over {
                continue;
            }
            late_micropays += 1;
            if pauses
                .iter()
                .any(|pause| pause.instance == sender && call.real_time >= pause.until)
            {
                late_after_pause += 1;
            }
            if call.expired() == Some(true) {
                late_refused += 1;
                continue;
            }
            let order = orders_by_no.get(no);
            let reversed = order.is_some_and(|order| {
                matches!(
                    order.trade_state.as_str(),
                    "REVOKED" | "CLOSED" | "PAYERROR" | "NOTPAY"
                )
            });
            let shown_paid = payments_by_no
                .get(no)
                .is_some_and(|payment| payment.state == PaymentState::Paid);
            if order.is_some() && !reversed && !shown_paid {
                late_charged.push(format!(
                    "{no}: micropay #{} from {sender} after a takeover; WeChat {}, store {}",
                    call.seq,
                    order.map_or("-", |order| order.trade_state.as_str()),
                    payments_by_no
                        .get(no)
                        .map_or("missing".to_owned(), |payment| payment.state.to_string()),
                ));
            }
        }

        // The busiest second of real time per account.
        let mut arrivals: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
        for call in &micropays {
            if let Some(mch_id) = &call.mch_id {
                arrivals
                    .entry(mch_id.clone())
                    .or_default()
                    .push(call.real_time);
            }
        }
        let mut busiest_second = BTreeMap::new();
        let mut over_rate = Vec::new();
        for (mch_id, mut times) in arrivals {
            times.sort();
            let (busiest, windows) = busiest_window(&times, chrono::Duration::seconds(1));
            busiest_second.insert(mch_id.clone(), busiest);
            for (start, count) in windows.into_iter().filter(|(_, count)| *count > RATE_LIMIT) {
                over_rate.push(format!(
                    "{mch_id}: {count} micropays in the second from {start}"
                ));
            }
        }

        let class = |name, cases| Class { name, cases };
        ChainChecks {
            classes: vec![
                class(TWO_SENDERS, two_senders),
                class(LATE_CHARGED, late_charged),
                class(OVER_RATE, over_rate),
                class(WRITE_AFTER_LOSS, writes_after_loss(events)),
            ],
            micropays_by_instance,
            expired_micropays: micropays
                .iter()
                .filter(|call| call.expired() == Some(true))
                .count(),
            late_micropays,
            late_refused,
            late_after_pause,
            busiest_second,
        }
    }

    /// How many cases in all classes.
    pub fn total(&self) -> usize {
        self.classes.iter().map(|class| class.cases.len()).sum()
    }
}

/// The largest number of `times` (sorted) in any half-open window `[t, t + width)`, and each
/// window that starts at one of the times with its count (only windows over the limit are
/// of interest, so every start is listed once).
/// The events written under a lease that had already passed on: an epoch lower than one
/// the payment was already written under, or an epoch written by a second owner. Events
/// outside any lease (no owner) only count for the order of epochs.
fn writes_after_loss(events: &[Vec<PaymentEvent>]) -> Vec<String> {
    let mut cases = Vec::new();
    for payment_events in events {
        let mut highest: Option<u64> = None;
        let mut owners: HashMap<u64, &str> = HashMap::new();
        for event in payment_events {
            let Some(epoch) = event.lease_epoch else {
                continue;
            };
            if let Some(highest) = highest.filter(|highest| epoch < *highest) {
                cases.push(format!(
                    "{}: \"{}\" written under epoch {epoch} after epoch {highest}",
                    event.payment_id, event.detail
                ));
            }
            highest = highest.max(Some(epoch));
            if let Some(owner) = event.lease_owner.as_deref()
                && let Some(first) = owners.insert(epoch, owner).filter(|first| *first != owner)
            {
                cases.push(format!(
                    "{}: epoch {epoch} written by {first} and by {owner}",
                    event.payment_id
                ));
            }
        }
    }
    cases
}

fn busiest_window(
    times: &[DateTime<Utc>],
    width: chrono::Duration,
) -> (usize, Vec<(DateTime<Utc>, usize)>) {
    let mut windows = Vec::new();
    let mut end = 0;
    let mut busiest = 0;
    for (start, at) in times.iter().enumerate() {
        while end < times.len() && times[end] < *at + width {
            end += 1;
        }
        let count = end - start;
        busiest = busiest.max(count);
        windows.push((*at, count));
    }
    // Report one window per burst: the first start of each run over the limit.
    let mut reported: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for (at, count) in windows {
        if count > RATE_LIMIT && reported.last().is_none_or(|(last, _)| at >= *last + width) {
            reported.push((at, count));
        }
    }
    (busiest, reported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxpay::sim::Host;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("a time")
            + chrono::Duration::milliseconds(ms)
    }

    /// A call `seq` to `endpoint` about `no` from `instance`, `ms` into the run.
    fn call(seq: u64, endpoint: &str, no: &str, instance: &str, ms: i64) -> CallRecord {
        CallRecord {
            seq,
            endpoint: endpoint.to_owned(),
            mch_id: Some("10000100".to_owned()),
            sub_mch_id: None,
            out_trade_no: Some(no.to_owned()),
            time_expire: None,
            user_agent: Some(format!("paycode-proxy/0.1.0 ({instance})")),
            sim_time: at(ms),
            real_time: at(ms),
            host: Host::Primary,
            sandbox: false,
        }
    }

    fn order(no: &str, trade_state: &str) -> OrderView {
        OrderView {
            mch_id: "10000100".to_owned(),
            sub_mch_id: None,
            sub_appid: None,
            appid: "wxd930ea5d5a258f4f".to_owned(),
            sandbox: false,
            out_trade_no: no.to_owned(),
            transaction_id: "4200000001".to_owned(),
            total_fee: 100,
            body: "shop".to_owned(),
            auth_code: "134567890123456789".to_owned(),
            behaviour: "password_free".to_owned(),
            trade_state: trade_state.to_owned(),
            trade_state_desc: String::new(),
            password_prompt_open: false,
            created_at: at(0),
            paid_at: None,
            refunds: Vec::new(),
        }
    }

    fn cases(checks: &ChainChecks, name: &str) -> usize {
        checks
            .classes
            .iter()
            .find(|class| class.name == name)
            .map_or(0, |class| class.cases.len())
    }

    #[test]
    fn a_micropay_from_a_second_instance_is_counted() {
        let calls = [
            call(1, "micropay", "A", "node-1", 0),
            call(2, "orderquery", "A", "node-2", 10),
            call(3, "micropay", "B", "node-2", 20),
            call(4, "micropay", "A", "node-2", 30),
        ];

        let checks = ChainChecks::check(&calls, &[order("A", "REVOKED")], &[], &[], &[]);

        assert_eq!(cases(&checks, TWO_SENDERS), 1);
        assert_eq!(checks.micropays_by_instance["node-2"], 2);
    }

    #[test]
    fn a_late_micropay_that_charged_unseen_is_counted_and_a_refused_one_is_not() {
        // A and B: node-1's micropay arrives after node-2 has queried (and reversed) it.
        let mut refused = call(5, "micropay", "B", "node-1", 40);
        refused.time_expire = Some("20231115061300".to_owned());
        let calls = [
            call(1, "orderquery", "A", "node-2", 0),
            call(2, "reverse", "A", "node-2", 10),
            call(3, "micropay", "A", "node-1", 20),
            call(4, "orderquery", "B", "node-2", 30),
            refused,
        ];
        let pauses = [Pause {
            instance: "node-1".to_owned(),
            from: at(-1000),
            until: at(15),
        }];

        let charged = ChainChecks::check(&calls, &[order("A", "SUCCESS")], &[], &[], &pauses);
        let reversed = ChainChecks::check(&calls, &[order("A", "REVOKED")], &[], &[], &pauses);

        assert_eq!(cases(&charged, LATE_CHARGED), 1);
        assert_eq!(cases(&reversed, LATE_CHARGED), 0);
        assert_eq!(charged.late_micropays, 2);
        assert_eq!(charged.late_refused, 1);
        assert_eq!(charged.late_after_pause, 2);
    }

    #[test]
    fn thirty_one_micropays_on_one_account_within_a_second_are_counted() {
        let calls: Vec<CallRecord> = (0..31)
            .map(|i| call(i + 1, "micropay", &format!("P{i}"), "node-1", i as i64 * 30))
            .collect();

        let over = ChainChecks::check(&calls, &[], &[], &[], &[]);
        let within = ChainChecks::check(&calls[..30], &[], &[], &[], &[]);

        assert_eq!(cases(&over, OVER_RATE), 1);
        assert_eq!(over.busiest_second["10000100"], 31);
        assert_eq!(cases(&within, OVER_RATE), 0);
    }

    #[test]
    fn the_busiest_window_counts_arrivals_within_one_second() {
        let start = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("a time");
        let at = |ms: i64| start + chrono::Duration::milliseconds(ms);
        // 31 arrivals 30 ms apart (900 ms), then one 2 s later.
        let mut times: Vec<_> = (0..31).map(|i| at(i * 30)).collect();
        times.push(at(3000));

        let (busiest, over) = busiest_window(&times, chrono::Duration::seconds(1));

        assert_eq!(busiest, 31);
        assert_eq!(over, vec![(at(0), 31)]);
        let (busiest, over) = busiest_window(&times[..30], chrono::Duration::seconds(1));
        assert_eq!(busiest, 30);
        assert!(over.is_empty());
    }

    fn event(detail: &str, owner: Option<&str>, epoch: u64) -> PaymentEvent {
        PaymentEvent {
            payment_id: "pay_1".to_owned(),
            at: paycode_proxy::store::Millis(0),
            from_state: None,
            to_state: PaymentState::Confirming,
            detail: detail.to_owned(),
            lease_owner: owner.map(str::to_owned),
            lease_epoch: Some(epoch),
        }
    }

    #[test]
    fn a_write_under_an_epoch_already_passed_on_is_counted() {
        let in_order = vec![
            event("created", Some("node-1/a"), 1),
            event("micropay: sending", Some("node-1/a"), 1),
            event("handed back", None, 1),
            event("query: paid", Some("node-2/b"), 2),
        ];
        let late = vec![
            event("created", Some("node-1/a"), 1),
            event("query: paid", Some("node-2/b"), 2),
            event("micropay: answer", Some("node-1/a"), 1),
        ];
        let two_owners = vec![
            event("created", Some("node-1/a"), 1),
            event("query: waiting", Some("node-3/c"), 1),
        ];

        let clean = ChainChecks::check(&[], &[], &[], &[in_order], &[]);
        let caught = ChainChecks::check(&[], &[], &[], &[late, two_owners], &[]);

        assert_eq!(cases(&clean, WRITE_AFTER_LOSS), 0);
        assert_eq!(cases(&caught, WRITE_AFTER_LOSS), 2);
    }
}
