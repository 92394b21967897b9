//! Daily transaction bills in WeChat's CSV format (docs/wechat-pay.md §3.7, docs/books.md §1).
//!
//! A bill has a header row, one row per transaction in which **every field starts with a
//! backtick** (so spreadsheet programs keep long numbers as text), then a summary header and
//! one summary row (also backticked). Amounts are in yuan with two decimals. The simulator
//! charges a 0.60% fee, rounded half-up to the fen. Each merchant account gets one of the two
//! formats ([`BillFormat`]); the column names are the ones `messages::Bill` reads.
//!
//! Rows of a day (Beijing time, docs/books.md §2): a `SUCCESS` row for each order whose
//! payment succeeded that day, a `REFUND` row for each refund WeChat accepted that day, and a
//! `REVOKED` row for each paid order reversed that day (the whole remaining amount goes back
//! to the customer). The bill is a snapshot taken when it is made: a refund's status is the
//! one it had then.

use std::io::Write;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};

use super::clock::beijing;
use super::ledger::{Order, Status};
use crate::messages::{
    ALL_COLUMNS, BillType, LEGACY_COLUMNS, LEGACY_SUMMARY_COLUMNS, SUMMARY_COLUMNS,
};

/// Which of WeChat's two bill formats a merchant account receives (docs/books.md §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum BillFormat {
    /// The settlement bill of merchants onboarded since 2018 (`应结订单金额`, `订单金额`,
    /// `申请退款金额`, `特约商户号`, …; `messages::ALL_COLUMNS`). The default.
    #[default]
    Settlement,
    /// The older bill (`总金额`, `子商户号`, the coupon columns under their older names, no
    /// `订单金额`; `messages::LEGACY_COLUMNS`).
    Legacy,
}

/// Reads `bill_type`; absent means `ALL`.
pub(crate) fn bill_type(value: Option<&str>) -> Option<BillType> {
    value.map_or(Some(BillType::All), BillType::parse)
}

/// The columns of a bill of `bill_type` in `format`, in WeChat's order.
fn columns(format: BillFormat, bill_type: BillType) -> &'static [&'static str] {
    // The parser in `messages` reads exactly the `ALL` names; the other bills are built from
    // them, so both ends agree. All start with the same 14 order columns; a `SUCCESS` bill
    // then has the goods and fee columns, a `REFUND` bill the refund's two times and then
    // the columns `ALL` has after the order ones.
    const ORDER_COLUMNS: usize = 14;
    const REFUND_TIMES: [&str; 2] = ["退款申请时间", "退款成功时间"];
    static SUCCESS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        [
            &ALL_COLUMNS[..ORDER_COLUMNS],
            &[
                "商品名称",
                "商户数据包",
                "手续费",
                "费率",
                "订单金额",
                "费率备注",
            ],
        ]
        .concat()
    });
    static REFUND: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        [
            &ALL_COLUMNS[..ORDER_COLUMNS],
            &REFUND_TIMES,
            &ALL_COLUMNS[ORDER_COLUMNS..],
        ]
        .concat()
    });
    static LEGACY_SUCCESS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        [
            &LEGACY_COLUMNS[..ORDER_COLUMNS],
            &["商品名称", "商户数据包", "手续费", "费率"],
        ]
        .concat()
    });
    static LEGACY_REFUND: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        [
            &LEGACY_COLUMNS[..ORDER_COLUMNS],
            &REFUND_TIMES,
            &LEGACY_COLUMNS[ORDER_COLUMNS..],
        ]
        .concat()
    });
    match (format, bill_type) {
        (BillFormat::Settlement, BillType::All | BillType::RechargeRefund) => &ALL_COLUMNS,
        (BillFormat::Settlement, BillType::Success) => &SUCCESS,
        (BillFormat::Settlement, BillType::Refund) => &REFUND,
        (BillFormat::Legacy, BillType::All | BillType::RechargeRefund) => &LEGACY_COLUMNS,
        (BillFormat::Legacy, BillType::Success) => &LEGACY_SUCCESS,
        (BillFormat::Legacy, BillType::Refund) => &LEGACY_REFUND,
    }
}

/// One bill row: every column's value, plus the amounts the summary adds up.
struct Row {
    at: DateTime<Utc>,
    values: Vec<(&'static str, String)>,
    is_payment: bool,
    settled_fee: i64,
    refund_fee: i64,
    service_fee: i64,
    order_fee: i64,
}

impl Row {
    fn value(&self, column: &str) -> &str {
        self.values
            .iter()
            .find(|(name, _)| *name == column)
            .map_or("", |(_, value)| value.as_str())
    }
}

/// The bill of `date` (Beijing) over `orders` (settled), as made at `snapshot`, or `None`
/// when it has no rows.
pub(crate) fn render<'a>(
    orders: impl IntoIterator<Item = &'a Order>,
    date: NaiveDate,
    bill_type: BillType,
    format: BillFormat,
    snapshot: DateTime<Utc>,
) -> Option<String> {
    let on_date = |time: DateTime<Utc>| time.with_timezone(&beijing()).date_naive() == date;
    let mut rows = Vec::new();
    for order in orders {
        let Some(paid_at) = order.paid_at else {
            continue;
        };
        if matches!(bill_type, BillType::All | BillType::Success) && on_date(paid_at) {
            rows.push(payment_row(order, paid_at));
        }
        if matches!(bill_type, BillType::All | BillType::Refund) {
            for refund in order
                .refunds
                .iter()
                .filter(|refund| on_date(refund.created_at))
            {
                let status = refund.status(snapshot);
                let success_time = (status == "SUCCESS").then_some(refund.completes_at);
                rows.push(refund_row(
                    order,
                    refund.created_at,
                    success_time,
                    "REFUND",
                    &refund.refund_id,
                    &refund.out_refund_no,
                    refund.refund_fee,
                    status,
                ));
            }
            if let Status::Revoked {
                at,
                automatic: false,
            } = order.status
            {
                let returned = order.total_fee.saturating_sub(order.refunded_fee());
                if on_date(at) && returned > 0 {
                    rows.push(refund_row(
                        order,
                        at,
                        Some(at),
                        "REVOKED",
                        "0",
                        "0",
                        returned,
                        "SUCCESS",
                    ));
                }
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    rows.sort_by_key(|row| row.at);

    let columns = columns(format, bill_type);
    let mut csv = columns.join(",");
    csv.push_str("\r\n");
    for row in &rows {
        let fields: Vec<String> = columns
            .iter()
            .map(|column| format!("`{}", row.value(column)))
            .collect();
        csv.push_str(&fields.join(","));
        csv.push_str("\r\n");
    }
    let sum = |pick: fn(&Row) -> i64| rows.iter().map(pick).sum::<i64>();
    let count = rows.len().to_string();
    let settled = yuan(sum(|row| if row.is_payment { row.settled_fee } else { 0 }));
    let refunded = yuan(sum(|row| row.refund_fee));
    let service = yuan(sum(|row| row.service_fee));
    let (summary_columns, summary): (&[&str], Vec<String>) = match format {
        BillFormat::Settlement => (
            &SUMMARY_COLUMNS,
            vec![
                count,
                settled,
                refunded.clone(),
                yuan(0),
                service,
                yuan(sum(|row| if row.is_payment { row.order_fee } else { 0 })),
                refunded,
            ],
        ),
        BillFormat::Legacy => (
            &LEGACY_SUMMARY_COLUMNS,
            vec![count, settled, refunded, yuan(0), service],
        ),
    };
    csv.push_str(&summary_columns.join(","));
    csv.push_str("\r\n");
    let summary: Vec<String> = summary.iter().map(|value| format!("`{value}")).collect();
    csv.push_str(&summary.join(","));
    csv.push_str("\r\n");
    Some(csv)
}

/// `text` gzipped, as WeChat sends a bill asked for with `tar_type=GZIP`.
pub(crate) fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(text.as_bytes());
    encoder.finish().unwrap_or_default()
}

/// The values every row has, under the names of both formats. `amount` is the payment's
/// amount as the bill shows it.
fn common_values(
    order: &Order,
    at: DateTime<Utc>,
    state: &str,
    amount: u64,
) -> Vec<(&'static str, String)> {
    let sub_mch_id = order.sub_mch_id.clone().unwrap_or_else(|| "0".to_owned());
    vec![
        ("交易时间", bill_time(at)),
        ("公众账号ID", order.appid.clone()),
        ("商户号", order.mch_id.clone()),
        ("特约商户号", sub_mch_id.clone()),
        ("子商户号", sub_mch_id),
        ("设备号", order.device_info.clone().unwrap_or_default()),
        ("微信订单号", order.transaction_id.clone()),
        ("商户订单号", order.out_trade_no.clone()),
        ("用户标识", order.openid.clone()),
        ("交易类型", order.trade_type.clone()),
        ("交易状态", state.to_owned()),
        ("付款银行", "CMC".to_owned()),
        ("货币种类", "CNY".to_owned()),
        ("应结订单金额", yuan(amount as i64)),
        ("总金额", yuan(amount as i64)),
        ("代金券金额", yuan(0)),
        ("代金券或立减优惠金额", yuan(0)),
        ("代金券或立减优惠退款金额", yuan(0)),
        ("商品名称", csv_safe(&order.body)),
        (
            "商户数据包",
            csv_safe(order.attach.as_deref().unwrap_or("")),
        ),
        ("费率", "0.60%".to_owned()),
        ("订单金额", yuan(amount as i64)),
        ("费率备注", String::new()),
    ]
}

fn payment_row(order: &Order, paid_at: DateTime<Utc>) -> Row {
    let amount = order.billed_fee.unwrap_or(order.total_fee);
    let service_fee = fee(amount);
    let mut values = common_values(order, paid_at, "SUCCESS", amount);
    values.extend([
        ("微信退款单号", "0".to_owned()),
        ("商户退款单号", "0".to_owned()),
        ("退款金额", yuan(0)),
        ("充值券退款金额", yuan(0)),
        ("退款类型", String::new()),
        ("退款状态", String::new()),
        ("手续费", yuan(service_fee)),
        ("申请退款金额", yuan(0)),
    ]);
    Row {
        at: paid_at,
        values,
        is_payment: true,
        settled_fee: amount as i64,
        refund_fee: 0,
        service_fee,
        order_fee: amount as i64,
    }
}

#[allow(clippy::too_many_arguments)] // One call site per row kind; a struct would only rename them.
fn refund_row(
    order: &Order,
    at: DateTime<Utc>,
    success_at: Option<DateTime<Utc>>,
    state: &str,
    refund_id: &str,
    out_refund_no: &str,
    refund_fee: u64,
    refund_status: &str,
) -> Row {
    let service_fee = -fee(refund_fee);
    let mut values = common_values(order, at, state, order.total_fee);
    values.extend([
        ("退款申请时间", bill_time(at)),
        (
            "退款成功时间",
            success_at.map(bill_time).unwrap_or_default(),
        ),
        ("微信退款单号", refund_id.to_owned()),
        ("商户退款单号", out_refund_no.to_owned()),
        ("退款金额", yuan(refund_fee as i64)),
        ("充值券退款金额", yuan(0)),
        ("退款类型", "ORIGINAL".to_owned()),
        ("退款状态", refund_status.to_owned()),
        ("手续费", yuan(service_fee)),
        ("申请退款金额", yuan(refund_fee as i64)),
    ]);
    Row {
        at,
        values,
        is_payment: false,
        settled_fee: 0,
        refund_fee: refund_fee as i64,
        service_fee,
        order_fee: 0,
    }
}

/// The 0.60% service fee in fen, rounded half-up.
fn fee(amount_fen: u64) -> i64 {
    ((amount_fen as i64) * 6 + 500) / 1000
}

/// Fen as yuan with two decimals: `1234` → `12.34`, `-5` → `-0.05`.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}{}.{:02}", fen / 100, fen % 100)
}

fn bill_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&beijing())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Merchant text cannot break the CSV: commas and line breaks become spaces.
fn csv_safe(text: &str) -> String {
    text.replace([',', '\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_yuan_with_two_decimals() {
        assert_eq!(yuan(1234), "12.34");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-5), "-0.05");
        assert_eq!(fee(10_000), 60);
        assert_eq!(fee(83), 0);
        assert_eq!(fee(84), 1);
    }

    use crate::messages::Bill;
    use crate::sim::behaviour::Behaviour;
    use crate::sim::ledger::Refund;
    use paycode_api::Fen;

    /// A time in Beijing.
    fn beijing_time(text: &str) -> DateTime<Utc> {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .expect("a time")
            .and_local_timezone(beijing())
            .single()
            .expect("one time")
            .to_utc()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a day")
    }

    fn paid(out_trade_no: &str, total_fee: u64, created: &str, paid: &str) -> Order {
        Order {
            out_trade_no: out_trade_no.into(),
            transaction_id: format!("4200{out_trade_no}"),
            appid: "wx2421b1c4370ec43b".into(),
            mch_id: "10000100".into(),
            sub_mch_id: None,
            sub_appid: None,
            sandbox: false,
            trade_type: "MICROPAY".into(),
            device_info: Some("POS-1".into()),
            body: "早餐, 两份".into(),
            attach: None,
            total_fee,
            auth_code: String::new(),
            behaviour: Behaviour::PasswordFree,
            openid: "oSIM".into(),
            created_at: beijing_time(created),
            paid_at: Some(beijing_time(paid)),
            status: Status::Paid,
            refunds: Vec::new(),
            billed_fee: None,
            hidden_from_merchant: false,
        }
    }

    fn refund(out_refund_no: &str, refund_fee: u64, at: &str, completes: &str) -> Refund {
        Refund {
            out_refund_no: out_refund_no.into(),
            refund_id: format!("5030{out_refund_no}"),
            total_fee: 0,
            refund_fee,
            created_at: beijing_time(at),
            completes_at: beijing_time(completes),
        }
    }

    /// A day with a payment, a refund of it, a payment reversed after it was paid, an
    /// order of the next day, and an online sale.
    fn orders() -> Vec<Order> {
        let mut refunded = paid("P1", 1234, "2026-11-28 09:00:00", "2026-11-28 09:00:02");
        refunded.refunds.push(refund(
            "R1",
            234,
            "2026-11-28 12:00:00",
            "2026-11-28 12:01:00",
        ));
        let mut reversed = paid("P2", 500, "2026-11-28 10:00:00", "2026-11-28 10:00:01");
        reversed.status = Status::Revoked {
            at: beijing_time("2026-11-28 10:00:30"),
            automatic: false,
        };
        let next_day = paid("P3", 700, "2026-11-29 08:00:00", "2026-11-29 08:00:01");
        let mut online = paid("ONL1", 990, "2026-11-28 20:00:00", "2026-11-28 20:00:00");
        online.trade_type = "JSAPI".into();
        vec![refunded, reversed, next_day, online]
    }

    #[test]
    fn both_formats_round_trip_through_the_parser_plain_and_gzipped() {
        let orders = orders();
        let snapshot = beijing_time("2026-11-29 10:00:00");
        for format in [BillFormat::Settlement, BillFormat::Legacy] {
            let csv = render(&orders, day("2026-11-28"), BillType::All, format, snapshot)
                .expect("a bill");
            let header = csv.lines().next().expect("a header");
            let expected_header = match format {
                BillFormat::Settlement => ALL_COLUMNS.join(","),
                BillFormat::Legacy => LEGACY_COLUMNS.join(","),
            };
            assert_eq!(header, expected_header, "{format:?}");
            let bill = Bill::parse(&csv).expect("the parser reads the simulator's bill");
            assert_eq!(
                Bill::parse_bytes(&gzip(&csv)),
                Ok(bill.clone()),
                "{format:?}"
            );

            let states: Vec<(&str, &str)> = bill
                .rows
                .iter()
                .map(|row| (row.out_trade_no.as_str(), row.trade_state.as_str()))
                .collect();
            assert_eq!(
                states,
                [
                    ("P1", "SUCCESS"),
                    ("P2", "SUCCESS"),
                    ("P2", "REVOKED"),
                    ("P1", "REFUND"),
                    ("ONL1", "SUCCESS")
                ],
                "{format:?}: rows by time; P3 is the next day's"
            );
            let p1 = &bill.rows[0];
            assert_eq!(p1.settlement_total_fee, Fen(1234));
            assert_eq!(
                p1.trade_time, "2026-11-28 09:00:02",
                "dated by success time"
            );
            assert_eq!(
                p1.body, "早餐  两份",
                "a comma in the body cannot split a field"
            );
            assert_eq!(p1.sub_mch_id, "0");
            let refund = &bill.rows[3];
            assert_eq!(refund.out_refund_no, "R1");
            assert_eq!(refund.refund_fee, Fen(234));
            assert_eq!(
                refund.refund_status, "SUCCESS",
                "the status at the snapshot"
            );
            assert_eq!(
                bill.rows[2].refund_fee,
                Fen(500),
                "the reversal returns it all"
            );
            assert_eq!(bill.rows[4].trade_type, "JSAPI");
            assert_eq!(bill.summary.trade_count, 5);
            assert_eq!(bill.summary.settlement_total_fee, Fen(1234 + 500 + 990));
            assert_eq!(bill.summary.refund_fee, Fen(234 + 500));
            match format {
                BillFormat::Settlement => {
                    assert_eq!(p1.total_fee, Some(Fen(1234)));
                    assert_eq!(refund.applied_refund_fee, Some(Fen(234)));
                    assert_eq!(bill.summary.total_fee, Some(Fen(1234 + 500 + 990)));
                }
                BillFormat::Legacy => {
                    assert_eq!(p1.total_fee, None, "the older format has no 订单金额");
                    assert_eq!(bill.summary.total_fee, None);
                }
            }
        }
    }

    #[test]
    fn success_and_refund_bills_parse_in_both_formats() {
        let orders = orders();
        let snapshot = beijing_time("2026-11-29 10:00:00");
        for format in [BillFormat::Settlement, BillFormat::Legacy] {
            let bill = |bill_type| {
                let csv = render(&orders, day("2026-11-28"), bill_type, format, snapshot)
                    .expect("a bill");
                Bill::parse(&csv).expect("parses")
            };
            let success = bill(BillType::Success);
            assert_eq!(success.rows.len(), 3, "{format:?}");
            assert!(success.rows.iter().all(|row| row.trade_state == "SUCCESS"));
            let refunds = bill(BillType::Refund);
            assert_eq!(
                refunds.rows.len(),
                2,
                "{format:?}: the refund and the reversal"
            );
            assert_eq!(refunds.rows[1].out_refund_no, "R1");
        }
    }

    #[test]
    fn a_payment_that_succeeds_after_midnight_is_on_the_next_days_bill() {
        let late = paid("LATE", 100, "2026-11-28 23:59:50", "2026-11-29 00:00:05");
        let snapshot = beijing_time("2026-11-30 10:00:00");
        let orders = [late];
        assert_eq!(
            render(
                &orders,
                day("2026-11-28"),
                BillType::All,
                BillFormat::Settlement,
                snapshot
            ),
            None,
            "created on the 28th, but not paid then"
        );
        let csv = render(
            &orders,
            day("2026-11-29"),
            BillType::All,
            BillFormat::Settlement,
            snapshot,
        )
        .expect("the 29th's bill");
        let bill = Bill::parse(&csv).expect("parses");
        assert_eq!(bill.rows[0].out_trade_no, "LATE");
        assert_eq!(bill.rows[0].trade_time, "2026-11-29 00:00:05");
    }

    #[test]
    fn refund_rows_are_snapshots_and_sub_merchants_are_named() {
        let mut order = paid("P9", 800, "2026-11-28 09:00:00", "2026-11-28 09:00:01");
        order.mch_id = "1900000001".into();
        order.sub_mch_id = Some("1900000109".into());
        order.refunds.push(refund(
            "R9",
            100,
            "2026-11-28 23:59:00",
            "2026-11-29 10:30:00",
        ));
        let orders = [order];
        for format in [BillFormat::Settlement, BillFormat::Legacy] {
            let csv = render(
                &orders,
                day("2026-11-28"),
                BillType::All,
                format,
                beijing_time("2026-11-29 10:00:00"),
            )
            .expect("a bill");
            let bill = Bill::parse(&csv).expect("parses");
            assert!(
                bill.rows.iter().all(|row| row.sub_mch_id == "1900000109"),
                "{format:?}"
            );
            assert_eq!(bill.rows[1].refund_status, "PROCESSING", "{format:?}");
        }
    }

    #[test]
    fn an_amount_difference_is_on_the_bill_only() {
        let mut order = paid("P5", 1000, "2026-11-28 09:00:00", "2026-11-28 09:00:01");
        order.billed_fee = Some(990);
        let orders = [order];
        let csv = render(
            &orders,
            day("2026-11-28"),
            BillType::All,
            BillFormat::Settlement,
            beijing_time("2026-11-29 10:00:00"),
        )
        .expect("a bill");
        let bill = Bill::parse(&csv).expect("parses");
        assert_eq!(bill.rows[0].settlement_total_fee, Fen(990));
        assert_eq!(bill.rows[0].total_fee, Some(Fen(990)));
        assert_eq!(bill.summary.settlement_total_fee, Fen(990));
    }

    #[test]
    fn bill_types_parse() {
        assert_eq!(bill_type(None), Some(BillType::All));
        assert_eq!(bill_type(Some("REFUND")), Some(BillType::Refund));
        assert_eq!(bill_type(Some("NOPE")), None);
    }
}
