//! `/pay/downloadbill` (docs/wechat-pay.md §3.7, docs/books.md §1 and §6): a day's bill as
//! CSV text, or gzipped with `tar_type=GZIP`; otherwise an unsigned XML error with
//! `return_code=FAIL`, `return_msg` and `error_code`.
//!
//! - The bill of day D (Beijing time, on the simulator's clock) exists from the bill-ready
//!   time of day D+1 (10:00 by default, [`Simulator::bill_ready_at`](crate::sim::Simulator::bill_ready_at)):
//!   before that, and for D itself, the answer is `20002` `Bill Creating`; a day after today
//!   is `20001` `invalid bill_date`.
//! - A day without rows is `20002` `No Bill Exist`.
//! - The merchant's [`BillFormat`](crate::sim::BillFormat) picks the columns.
//! - A service provider may leave `sub_mch_id` out: the bill then lists every sub-merchant's
//!   rows, each with its `特约商户号`; with `sub_mch_id`, only that sub-merchant's.

use chrono::{Duration, NaiveDate};

use super::{Call, Reply};
use crate::params::Params;
use crate::sim::bill;
use crate::sim::clock::beijing;

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
    let gzip = match call.field("tar_type") {
        None => false,
        Some("GZIP") => true,
        Some(_) => return error("invalid tar_type, Only GZIP supported", "20001"),
    };
    let today = call.now.with_timezone(&beijing()).date_naive();
    if date > today {
        return error("invalid bill_date", "20001");
    }
    let ready_at = (date + Duration::days(1))
        .and_time(call.sim.settings().bill_ready_at)
        .and_local_timezone(beijing())
        .single()
        .map(|time| time.to_utc());
    let Some(ready_at) = ready_at.filter(|ready_at| call.now >= *ready_at) else {
        return error("Bill Creating", "20002");
    };

    let key = call.book_key();
    let mut ledger = call.sim.ledger();
    let books = ledger.books.iter_mut().filter(|(book, _)| {
        book.mch_id == key.mch_id
            && book.sandbox == key.sandbox
            && (key.sub_mch_id.is_none() || book.sub_mch_id == key.sub_mch_id)
    });
    let mut orders = Vec::new();
    for (_, book) in books {
        book.settle_all(call.now);
        orders.extend(book.orders.values());
    }
    match bill::render(orders, date, bill_type, call.merchant.bill_format, ready_at) {
        Some(csv) if gzip => Reply::Gzip(bill::gzip(&csv)),
        Some(csv) => Reply::Csv(csv),
        None => error("No Bill Exist", "20002"),
    }
}
