//! `POST /pay/downloadbill` (下载交易账单): a day's transactions as CSV (docs/wechat-pay.md §3.7).
//!
//! The bill is WeChat's one non-XML reply: a header row, data rows whose every field starts
//! with a backtick, then a summary header and a summary row. Amounts are in **yuan** with two
//! decimals and are parsed exactly into [`Fen`]. Columns are found by their header names, so
//! a bill type with fewer columns, or a column WeChat adds later, still parses.

use std::fmt;

use paycode_api::Fen;

use crate::params::Params;

/// Which transactions the bill lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BillType {
    /// `ALL`: every transaction of the day, payments and refunds.
    #[default]
    All,
    /// `SUCCESS`: paid orders.
    Success,
    /// `REFUND`: refunds.
    Refund,
    /// `RECHARGE_REFUND`: refunds of recharge coupons.
    RechargeRefund,
}

impl BillType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            BillType::All => "ALL",
            BillType::Success => "SUCCESS",
            BillType::Refund => "REFUND",
            BillType::RechargeRefund => "RECHARGE_REFUND",
        }
    }

    /// Reads a wire value.
    pub fn parse(wire: &str) -> Option<BillType> {
        [
            BillType::All,
            BillType::Success,
            BillType::Refund,
            BillType::RechargeRefund,
        ]
        .into_iter()
        .find(|bill_type| bill_type.as_str() == wire)
    }
}

impl fmt::Display for BillType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ask for the bill of one day (available from 10:00 Beijing time the next day, for three
/// months).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadBillRequest {
    /// The day, as `yyyyMMdd`.
    pub bill_date: chrono::NaiveDate,
    /// Which transactions.
    pub bill_type: BillType,
}

impl DownloadBillRequest {
    /// The request's own fields.
    pub fn to_params(&self) -> Params {
        [
            ("bill_date", self.bill_date.format("%Y%m%d").to_string()),
            ("bill_type", self.bill_type.as_str().to_owned()),
        ]
        .into_iter()
        .collect()
    }
}

/// The column names of an `ALL` bill, in WeChat's order. The simulator writes these.
pub const ALL_COLUMNS: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

/// The column names of the summary row.
pub const SUMMARY_COLUMNS: [&str; 7] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

/// One transaction line of a bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillRow {
    /// `交易时间`, `yyyy-MM-dd HH:mm:ss`.
    pub trade_time: String,
    /// `公众账号ID`.
    pub appid: String,
    /// `商户号`.
    pub mch_id: String,
    /// `特约商户号` (`0` when not a service provider).
    pub sub_mch_id: String,
    /// `设备号`.
    pub device_info: String,
    /// `微信订单号`.
    pub transaction_id: String,
    /// `商户订单号`.
    pub out_trade_no: String,
    /// `用户标识`.
    pub openid: String,
    /// `交易类型`, `MICROPAY` for payment-code orders.
    pub trade_type: String,
    /// `交易状态`: `SUCCESS`, `REFUND`, `REVOKED`, …
    pub trade_state: String,
    /// `付款银行`.
    pub bank_type: String,
    /// `货币种类`.
    pub fee_type: String,
    /// `应结订单金额`.
    pub settlement_total_fee: Fen,
    /// `代金券金额`.
    pub coupon_fee: Fen,
    /// `微信退款单号` (`0` when not a refund line).
    pub refund_id: String,
    /// `商户退款单号`.
    pub out_refund_no: String,
    /// `退款金额`.
    pub refund_fee: Fen,
    /// `充值券退款金额`.
    pub coupon_refund_fee: Fen,
    /// `退款状态`.
    pub refund_status: String,
    /// `商品名称`.
    pub body: String,
    /// `商户数据包`.
    pub attach: String,
    /// `手续费`, in yuan with up to five decimals (kept as text: it is not whole fen).
    pub service_charge: String,
    /// `费率`, e.g. `0.60%`.
    pub rate: String,
    /// `订单金额`, when the bill has the column.
    pub total_fee: Option<Fen>,
    /// `申请退款金额`, when the bill has the column.
    pub applied_refund_fee: Option<Fen>,
}

/// The summary line of a bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillSummary {
    /// `总交易单数`.
    pub trade_count: u64,
    /// `应结订单总金额`.
    pub settlement_total_fee: Fen,
    /// `退款总金额`.
    pub refund_fee: Fen,
    /// `充值券退款总金额`.
    pub coupon_refund_fee: Fen,
    /// `手续费总金额` (text, up to five decimals).
    pub service_charge: String,
    /// `订单总金额`, when present.
    pub total_fee: Option<Fen>,
    /// `申请退款总金额`, when present.
    pub applied_refund_fee: Option<Fen>,
}

/// A parsed bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    /// The transaction lines.
    pub rows: Vec<BillRow>,
    /// The summary line.
    pub summary: BillSummary,
}

/// Why a bill could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    /// The body is empty or has no header row.
    #[error("the bill has no header row")]
    NoHeader,
    /// A column needed to read rows is missing from the header.
    #[error("the bill has no column {0}")]
    MissingColumn(&'static str),
    /// A line does not fit the header.
    #[error("bill line {line}: {problem}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The summary header or row is missing.
    #[error("the bill has no summary")]
    NoSummary,
}

impl Bill {
    /// Parses a bill's CSV text.
    pub fn parse(csv: &str) -> Result<Bill, BillError> {
        let mut lines = csv
            .trim_start_matches('\u{feff}')
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        let (_, header) = lines.next().ok_or(BillError::NoHeader)?;
        let header = Header::new(header);
        let mut rows = Vec::new();
        let mut summary = None;
        while let Some((index, line)) = lines.next() {
            let line_number = index + 1;
            if line.starts_with(SUMMARY_COLUMNS[0]) {
                let summary_header = Header::new(line);
                let (index, values) = lines.next().ok_or(BillError::NoSummary)?;
                summary = Some(summary_header.summary(&fields(values), index + 1)?);
                break;
            }
            rows.push(header.row(&fields(line), line_number)?);
        }
        Ok(Bill {
            rows,
            summary: summary.ok_or(BillError::NoSummary)?,
        })
    }
}

/// Splits one line into fields. Every field starts with a backtick, so `,` followed by a
/// backtick separates fields even when a product name itself contains a comma.
fn fields(line: &str) -> Vec<&str> {
    let line = line.trim_end_matches('\r');
    match line.strip_prefix('`') {
        Some(rest) => rest.split(",`").collect(),
        None => line.split(',').collect(),
    }
}

struct Header<'a> {
    names: Vec<&'a str>,
}

impl<'a> Header<'a> {
    fn new(line: &'a str) -> Header<'a> {
        Header {
            names: line
                .trim_end_matches('\r')
                .split(',')
                .map(str::trim)
                .collect(),
        }
    }

    fn index(&self, name: &'static str) -> Option<usize> {
        self.names.iter().position(|candidate| *candidate == name)
    }

    fn text(&self, values: &[&str], name: &'static str) -> String {
        self.index(name)
            .and_then(|index| values.get(index))
            .map(|value| value.to_string())
            .unwrap_or_default()
    }

    fn required_text(&self, values: &[&str], name: &'static str) -> Result<String, BillError> {
        self.index(name).ok_or(BillError::MissingColumn(name))?;
        Ok(self.text(values, name))
    }

    fn amount(
        &self,
        values: &[&str],
        name: &'static str,
        line: usize,
    ) -> Result<Option<Fen>, BillError> {
        let Some(index) = self.index(name) else {
            return Ok(None);
        };
        let text = values.get(index).copied().unwrap_or_default();
        if text.is_empty() {
            return Ok(Some(Fen::ZERO));
        }
        text.parse::<Fen>()
            .map(Some)
            .map_err(|error| BillError::BadLine {
                line,
                problem: format!("{name} {text:?}: {error}"),
            })
    }

    fn required_amount(
        &self,
        values: &[&str],
        name: &'static str,
        line: usize,
    ) -> Result<Fen, BillError> {
        self.amount(values, name, line)?
            .ok_or(BillError::MissingColumn(name))
    }

    fn row(&self, values: &[&str], line: usize) -> Result<BillRow, BillError> {
        if values.len() != self.names.len() {
            return Err(BillError::BadLine {
                line,
                problem: format!("{} fields for {} columns", values.len(), self.names.len()),
            });
        }
        Ok(BillRow {
            trade_time: self.required_text(values, "交易时间")?,
            appid: self.text(values, "公众账号ID"),
            mch_id: self.text(values, "商户号"),
            sub_mch_id: self.text(values, "特约商户号"),
            device_info: self.text(values, "设备号"),
            transaction_id: self.required_text(values, "微信订单号")?,
            out_trade_no: self.required_text(values, "商户订单号")?,
            openid: self.text(values, "用户标识"),
            trade_type: self.text(values, "交易类型"),
            trade_state: self.required_text(values, "交易状态")?,
            bank_type: self.text(values, "付款银行"),
            fee_type: self.text(values, "货币种类"),
            settlement_total_fee: self.required_amount(values, "应结订单金额", line)?,
            coupon_fee: self.amount(values, "代金券金额", line)?.unwrap_or_default(),
            refund_id: self.text(values, "微信退款单号"),
            out_refund_no: self.text(values, "商户退款单号"),
            refund_fee: self.amount(values, "退款金额", line)?.unwrap_or_default(),
            coupon_refund_fee: self
                .amount(values, "充值券退款金额", line)?
                .unwrap_or_default(),
            refund_status: self.text(values, "退款状态"),
            body: self.text(values, "商品名称"),
            attach: self.text(values, "商户数据包"),
            service_charge: self.text(values, "手续费"),
            rate: self.text(values, "费率"),
            total_fee: self.amount(values, "订单金额", line)?,
            applied_refund_fee: self.amount(values, "申请退款金额", line)?,
        })
    }

    fn summary(&self, values: &[&str], line: usize) -> Result<BillSummary, BillError> {
        let count_text = self.required_text(values, "总交易单数")?;
        Ok(BillSummary {
            trade_count: count_text.parse().map_err(|_| BillError::BadLine {
                line,
                problem: format!("总交易单数 {count_text:?} is not a count"),
            })?,
            settlement_total_fee: self.required_amount(values, "应结订单总金额", line)?,
            refund_fee: self.amount(values, "退款总金额", line)?.unwrap_or_default(),
            coupon_refund_fee: self
                .amount(values, "充值券退款总金额", line)?
                .unwrap_or_default(),
            service_charge: self.text(values, "手续费总金额"),
            total_fee: self.amount(values, "订单总金额", line)?,
            applied_refund_fee: self.amount(values, "申请退款总金额", line)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BILL: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n\
`2026-11-28 12:00:01,`wx2421b1c4370ec43b,`10000100,`0,`T1,`4200000001,`P1,`oUpF8u,`MICROPAY,`SUCCESS,`CMC,`CNY,`12.30,`0.00,`0,`0,`0.00,`0.00,`,`,`小张南山店-超市, 零食,`,`0.07380,`0.60%,`12.30,`0.00,`\r\n\
`2026-11-28 12:05:00,`wx2421b1c4370ec43b,`10000100,`0,`T1,`4200000001,`P1,`oUpF8u,`MICROPAY,`REFUND,`CMC,`CNY,`0.00,`0.00,`5030001,`R1,`2.30,`0.00,`ORIGINAL,`SUCCESS,`小张南山店-超市, 零食,`,`-0.01380,`0.60%,`0.00,`2.30,`\r\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n\
`2,`12.30,`2.30,`0.00,`0.06000,`12.30,`2.30\r\n";

    #[test]
    fn parses_rows_and_summary_exactly() {
        let bill = Bill::parse(BILL).unwrap();
        assert_eq!(bill.rows.len(), 2);
        assert_eq!(bill.rows[0].settlement_total_fee, Fen(1230));
        assert_eq!(
            bill.rows[0].body, "小张南山店-超市, 零食",
            "a comma inside a field does not split it"
        );
        assert_eq!(bill.rows[1].trade_state, "REFUND");
        assert_eq!(bill.rows[1].refund_fee, Fen(230));
        assert_eq!(bill.rows[1].applied_refund_fee, Some(Fen(230)));
        assert_eq!(bill.summary.trade_count, 2);
        assert_eq!(bill.summary.refund_fee, Fen(230));
        assert_eq!(bill.summary.service_charge, "0.06000");
    }

    #[test]
    fn header_matches_the_published_column_list() {
        assert_eq!(BILL.lines().next().unwrap(), ALL_COLUMNS.join(","));
    }

    #[test]
    fn rejects_broken_bills() {
        assert_eq!(Bill::parse(""), Err(BillError::NoHeader));
        let no_summary: String = BILL.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(Bill::parse(&no_summary), Err(BillError::NoSummary));
        let bad_amount = BILL.replacen("`12.30,`0.00,`0,", "`12.3x,`0.00,`0,", 1);
        assert!(matches!(
            Bill::parse(&bad_amount),
            Err(BillError::BadLine { line: 2, .. })
        ));
        let short = BILL.replacen("`,`0.07380,", "", 1);
        assert!(matches!(
            Bill::parse(&short),
            Err(BillError::BadLine { .. })
        ));
    }

    #[test]
    fn request_fields() {
        let request = DownloadBillRequest {
            bill_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            bill_type: BillType::All,
        };
        let params = request.to_params();
        assert_eq!(params.get("bill_date"), Some("20261128"));
        assert_eq!(params.get("bill_type"), Some("ALL"));
    }
}
