//! `/pay/downloadbill` (docs/wechat-pay.md §3.7): the day's bill as CSV, or an unsigned XML error with
//! `return_code=FAIL`, `return_msg` and `error_code`.
//!
//! The simulator serves a day's bill at once (WeChat only from 09:00 the next day) and
//! does not compress: `tar_type=GZIP` is refused with error_code 20001.

use chrono::NaiveDate;

use super::{Call, Reply};
use crate::params::Params;
use crate::sim::bill;

fn error(return_msg: &str, error_code: &str) -> Reply {
    let mut params = Params::new();
    params.insert("return_code", "FAIL");
    params.insert("return_msg", return_msg);
    params.insert("error_code", error_code);
    Reply::Unsigned(params)
}

pub(super) fn handle(call: &Call<'_>) -> Reply {
    let Some(bill_date) = call.field("bill_date") else {
        return error("invalid bill_date", "20001");
    };
    let date = match NaiveDate::parse_from_str(bill_date, "%Y%m%d") {
        Ok(date) if bill_date.len() == 8 => date,
        _ => return error("invalid bill_date", "20001"),
    };
    let Some(bill_type) = bill::bill_type(call.field("bill_type")) else {
        return error("invalid bill_type", "20001");
    };
    match call.field("tar_type") {
        None => {}
        Some("GZIP") => return error("tar_type GZIP is not supported by the simulator", "20001"),
        Some(_) => return error("invalid tar_type, Only GZIP supported", "20001"),
    }
    let mut ledger = call.sim.ledger();
    let book = ledger.book(&call.book_key());
    book.settle_all(call.now);
    match bill::render(book, date, bill_type, call.now) {
        Some(csv) => Reply::Csv(csv),
        None => error("No Bill Exist", "20002"),
    }
}
