//! `POST /pay/downloadbill` (下载交易账单): a day's transactions as CSV (docs/wechat-pay.md §3.7).
//!
//! The bill is WeChat's one non-XML reply: a header row, data rows whose every field starts
//! with a backtick, then a summary header and a summary row. Amounts are in **yuan** with two
//! decimals and are parsed exactly into [`Fen`]. Columns are found by their header names, so
//! both formats WeChat issues (the settlement bill of merchants onboarded since 2018,
//! [`ALL_COLUMNS`], and the older one, [`LEGACY_COLUMNS`]), a bill type with fewer columns,
//! or a column WeChat adds later, all parse (docs/books.md §1). With `tar_type=GZIP` the
//! reply is gzip; [`Bill::parse_bytes`] reads either.

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

/// The column names of the older bill format (merchants onboarded before 2018): `总金额`
/// instead of `应结订单金额`, `子商户号` instead of `特约商户号`, coupon columns under their old
/// names, and no `订单金额`, `申请退款金额`, `费率备注` (docs/books.md §1).
pub const LEGACY_COLUMNS: [&str; 24] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "子商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "总金额",
    "代金券或立减优惠金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "代金券或立减优惠退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
];

/// The column names of the older format's summary row.
pub const LEGACY_SUMMARY_COLUMNS: [&str; 5] = [
    "总交易单数",
    "总交易额",
    "总退款金额",
    "总代金券或立减优惠退款金额",
    "手续费总金额",
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
    /// `特约商户号` (`子商户号` in the older format; `0` when not a service provider).
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
    /// `应结订单金额` (`总金额` in the older format).
    pub settlement_total_fee: Fen,
    /// `代金券金额` (`代金券或立减优惠金额` in the older format).
    pub coupon_fee: Fen,
    /// `微信退款单号` (`0` when not a refund line).
    pub refund_id: String,
    /// `商户退款单号`.
    pub out_refund_no: String,
    /// `退款金额`.
    pub refund_fee: Fen,
    /// `充值券退款金额` (`代金券或立减优惠退款金额` in the older format).
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
    /// `应结订单总金额` (`总交易额` in the older format).
    pub settlement_total_fee: Fen,
    /// `退款总金额` (`总退款金额` in the older format).
    pub refund_fee: Fen,
    /// `充值券退款总金额` (`总代金券或立减优惠退款金额` in the older format).
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
    /// A line does not fit the header (a wrong number of fields).
    #[error("bill line {line}: {problem}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// One field of a line cannot be read.
    #[error("bill line {line}, column {column}: {value:?} {problem}")]
    BadField {
        /// 1-based line number.
        line: usize,
        /// The column's header name.
        column: &'static str,
        /// The field as written (without its backtick).
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// The summary header or row is missing.
    #[error("the bill has no summary")]
    NoSummary,
    /// The body starts like gzip but does not decompress, or decompresses to more than
    /// [`MAX_BILL_TEXT_BYTES`].
    #[error("the gzip bill does not decompress: {0}")]
    Gzip(String),
    /// The (decompressed) body is not UTF-8 text.
    #[error("the bill is not UTF-8 text (byte {valid_up_to} is not)")]
    NotUtf8 {
        /// How many leading bytes were valid.
        valid_up_to: usize,
    },
}

/// The first two bytes of every gzip stream (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most text a gzip bill may decompress to: 256 MiB, far above a busy merchant's day,
/// so that a hostile or broken body cannot exhaust memory.
pub const MAX_BILL_TEXT_BYTES: u64 = 256 * 1024 * 1024;

impl Bill {
    /// Parses a bill as downloaded: gzip (`tar_type=GZIP`) when it starts with the gzip
    /// magic bytes, plain CSV text otherwise.
    ///
    /// # Errors
    /// [`BillError::Gzip`] for a broken gzip stream, [`BillError::NotUtf8`] for text that is
    /// not UTF-8, and every error of [`Bill::parse`].
    pub fn parse_bytes(body: &[u8]) -> Result<Bill, BillError> {
        Bill::parse_bytes_within(body, MAX_BILL_TEXT_BYTES)
    }

    fn parse_bytes_within(body: &[u8], max_text_bytes: u64) -> Result<Bill, BillError> {
        if body.starts_with(&GZIP_MAGIC) {
            use std::io::Read;
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(max_text_bytes + 1)
                .read_to_end(&mut text)
                .map_err(|error| BillError::Gzip(error.to_string()))?;
            if text.len() as u64 > max_text_bytes {
                return Err(BillError::Gzip(format!(
                    "more than {max_text_bytes} bytes of text"
                )));
            }
            return Bill::parse_bytes_text(&text);
        }
        Bill::parse_bytes_text(body)
    }

    fn parse_bytes_text(body: &[u8]) -> Result<Bill, BillError> {
        let text = std::str::from_utf8(body).map_err(|error| BillError::NotUtf8 {
            valid_up_to: error.valid_up_to(),
        })?;
        Bill::parse(text)
    }

    /// Parses a bill's CSV text. A bill with no transactions (header, summary header and a
    /// zero summary) is valid and has no rows.
    ///
    /// # Errors
    /// [`BillError`], naming the 1-based line and, for a field, its column.
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

    /// The first of `names` (the current name, then older ones) that the header has.
    fn pick(&self, names: &[&'static str]) -> &'static str {
        names
            .iter()
            .copied()
            .find(|name| self.index(name).is_some())
            .unwrap_or(names[0])
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
            .map_err(|error| BillError::BadField {
                line,
                column: name,
                value: text.to_owned(),
                problem: error.to_string(),
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
        let settlement = self.pick(&["应结订单金额", "总金额"]);
        let coupon = self.pick(&["代金券金额", "代金券或立减优惠金额", "企业红包金额"]);
        let coupon_refund = self.pick(&[
            "充值券退款金额",
            "代金券或立减优惠退款金额",
            "企业红包退款金额",
        ]);
        Ok(BillRow {
            trade_time: self.required_text(values, "交易时间")?,
            appid: self.text(values, "公众账号ID"),
            mch_id: self.text(values, "商户号"),
            sub_mch_id: self.text(values, self.pick(&["特约商户号", "子商户号"])),
            device_info: self.text(values, "设备号"),
            transaction_id: self.required_text(values, "微信订单号")?,
            out_trade_no: self.required_text(values, "商户订单号")?,
            openid: self.text(values, "用户标识"),
            trade_type: self.text(values, "交易类型"),
            trade_state: self.required_text(values, "交易状态")?,
            bank_type: self.text(values, "付款银行"),
            fee_type: self.text(values, "货币种类"),
            settlement_total_fee: self.required_amount(values, settlement, line)?,
            coupon_fee: self.amount(values, coupon, line)?.unwrap_or_default(),
            refund_id: self.text(values, "微信退款单号"),
            out_refund_no: self.text(values, "商户退款单号"),
            refund_fee: self.amount(values, "退款金额", line)?.unwrap_or_default(),
            coupon_refund_fee: self
                .amount(values, coupon_refund, line)?
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
        if values.len() != self.names.len() {
            return Err(BillError::BadLine {
                line,
                problem: format!(
                    "the summary has {} fields for {} columns",
                    values.len(),
                    self.names.len()
                ),
            });
        }
        let count_text = self.required_text(values, "总交易单数")?;
        let settlement = self.pick(&["应结订单总金额", "总交易额"]);
        let refund = self.pick(&["退款总金额", "总退款金额"]);
        let coupon_refund = self.pick(&[
            "充值券退款总金额",
            "总代金券或立减优惠退款金额",
            "总企业红包退款金额",
        ]);
        Ok(BillSummary {
            trade_count: count_text.parse().map_err(|_| BillError::BadField {
                line,
                column: "总交易单数",
                value: count_text.clone(),
                problem: "is not a count".to_owned(),
            })?,
            settlement_total_fee: self.required_amount(values, settlement, line)?,
            refund_fee: self.amount(values, refund, line)?.unwrap_or_default(),
            coupon_refund_fee: self
                .amount(values, coupon_refund, line)?
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
        let error = Bill::parse(&bad_amount).unwrap_err();
        assert!(matches!(
            &error,
            BillError::BadField { line: 2, column: "应结订单金额", value, .. } if value == "12.3x"
        ));
        assert!(
            error
                .to_string()
                .starts_with("bill line 2, column 应结订单金额: \"12.3x\""),
            "the message names the line and column: {error}"
        );
        let bad_count = BILL.replacen("`2,`12.30", "`two,`12.30", 1);
        assert!(matches!(
            Bill::parse(&bad_count),
            Err(BillError::BadField {
                line: 5,
                column: "总交易单数",
                ..
            })
        ));
        let short = BILL.replacen("`,`0.07380,", "", 1);
        let error = Bill::parse(&short).unwrap_err();
        assert_eq!(
            error,
            BillError::BadLine {
                line: 2,
                problem: "25 fields for 27 columns".to_owned()
            }
        );
        let no_order_number = BILL.replacen("商户订单号", "订单号", 1);
        assert_eq!(
            Bill::parse(&no_order_number),
            Err(BillError::MissingColumn("商户订单号"))
        );
    }

    /// The older format, as merchants onboarded before 2018 receive it.
    const LEGACY_BILL: &str = "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率\r\n\
`2026-11-28 09:30:00,`wx2421b1c4370ec43b,`10000100,`1900000109,`T2,`4200000002,`P2,`oUpF8u,`MICROPAY,`SUCCESS,`CMC,`CNY,`8.00,`1.00,`0,`0,`0.00,`0.00,`,`,`早餐,`,`0.04800,`0.60%\r\n\
总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额\r\n\
`1,`8.00,`0.00,`1.00,`0.04800\r\n";

    #[test]
    fn parses_the_older_format_by_its_header() {
        assert_eq!(
            LEGACY_BILL.lines().next().unwrap(),
            LEGACY_COLUMNS.join(",")
        );
        assert!(LEGACY_BILL.contains(&LEGACY_SUMMARY_COLUMNS.join(",")));
        let bill = Bill::parse(LEGACY_BILL).unwrap();
        let row = &bill.rows[0];
        assert_eq!(row.sub_mch_id, "1900000109");
        assert_eq!(row.settlement_total_fee, Fen(800));
        assert_eq!(row.coupon_fee, Fen(100));
        assert_eq!(row.total_fee, None, "the older format has no 订单金额");
        assert_eq!(row.applied_refund_fee, None);
        assert_eq!(bill.summary.trade_count, 1);
        assert_eq!(bill.summary.settlement_total_fee, Fen(800));
        assert_eq!(bill.summary.coupon_refund_fee, Fen(100));
        assert_eq!(bill.summary.total_fee, None);
    }

    #[test]
    fn columns_are_found_by_name_not_position() {
        // The same bill with two columns swapped in the header and in every line.
        let swap = |line: &str| {
            let mut parts: Vec<&str> = line.split(',').collect();
            parts.swap(5, 6);
            parts.join(",")
        };
        let lines: Vec<&str> = LEGACY_BILL.lines().collect();
        let swapped = [
            swap(lines[0]),
            swap(lines[1]),
            lines[2].into(),
            lines[3].into(),
        ]
        .join("\n");
        let bill = Bill::parse(&swapped).unwrap();
        assert_eq!(bill.rows[0].out_trade_no, "P2");
        assert_eq!(bill.rows[0].transaction_id, "4200000002");
    }

    #[test]
    fn an_empty_bill_has_no_rows() {
        let empty = format!(
            "{}\r\n{}\r\n`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00\r\n",
            ALL_COLUMNS.join(","),
            SUMMARY_COLUMNS.join(",")
        );
        let bill = Bill::parse(&empty).unwrap();
        assert!(bill.rows.is_empty());
        assert_eq!(bill.summary.trade_count, 0);
        assert_eq!(bill.summary.settlement_total_fee, Fen::ZERO);
    }

    #[test]
    fn reads_a_gzip_bill_and_plain_bytes() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(BILL.as_bytes()).unwrap();
        let gzip = encoder.finish().unwrap();
        assert_eq!(gzip[..2], GZIP_MAGIC);
        assert_eq!(Bill::parse_bytes(&gzip), Bill::parse(BILL));
        assert_eq!(Bill::parse_bytes(BILL.as_bytes()), Bill::parse(BILL));
        assert!(Bill::parse_bytes(&gzip).unwrap().rows.len() == 2);

        assert_eq!(
            Bill::parse_bytes_within(&gzip, BILL.len() as u64 - 1),
            Err(BillError::Gzip(format!(
                "more than {} bytes of text",
                BILL.len() - 1
            ))),
            "a body that decompresses past the limit is refused"
        );
        assert!(Bill::parse_bytes_within(&gzip, BILL.len() as u64).is_ok());

        let truncated = &gzip[..gzip.len() / 2];
        assert!(matches!(
            Bill::parse_bytes(truncated),
            Err(BillError::Gzip(_))
        ));
        assert_eq!(
            Bill::parse_bytes(b"\xff\xfe bill"),
            Err(BillError::NotUtf8 { valid_up_to: 0 })
        );
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
