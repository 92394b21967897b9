//! Business days: which day's bill a payment or refund belongs to (docs/books.md §2).
//!
//! WeChat cuts its bills at midnight and dates a row by the payment's success time or the
//! refund's acceptance time, not by when the order was created. The day is taken in the
//! shop's UTC offset (Beijing time, UTC+8, unless configured), never in the server's time
//! zone.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

use crate::store::records::Millis;

/// Beijing time's offset east of UTC, in seconds: the offset of WeChat's bills.
pub const BEIJING_OFFSET_SECONDS: i32 = 8 * 3600;

/// Days in one UTC offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusinessDay {
    offset: FixedOffset,
}

impl Default for BusinessDay {
    /// Beijing time.
    fn default() -> Self {
        BusinessDay::new(
            FixedOffset::east_opt(BEIJING_OFFSET_SECONDS).expect("UTC+8 is a valid offset"),
        )
    }
}

impl BusinessDay {
    /// Days in `offset` (the shop's `utc_offset` setting).
    pub fn new(offset: FixedOffset) -> BusinessDay {
        BusinessDay { offset }
    }

    /// The offset.
    pub fn offset(self) -> FixedOffset {
        self.offset
    }

    /// The day an instant falls on.
    pub fn day_of(self, at: Millis) -> NaiveDate {
        at.to_datetime().with_timezone(&self.offset).date_naive()
    }

    /// The first instant of `day` (its midnight).
    pub fn start_of(self, day: NaiveDate) -> Millis {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        Millis(self.local(midnight).timestamp_millis())
    }

    /// The first instant after `day` (the next midnight).
    pub fn end_of(self, day: NaiveDate) -> Millis {
        self.start_of(day.succ_opt().unwrap_or(day))
    }

    /// Reads a bill's `交易时间` (`yyyy-MM-dd HH:mm:ss`, local time in this offset).
    /// `None` when the text is not such a time.
    pub fn bill_time(self, text: &str) -> Option<Millis> {
        let local = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
        Some(Millis(self.local(local).timestamp_millis()))
    }

    /// An instant as local text, `yyyy-MM-dd HH:mm:ss` like the bill's.
    pub fn format(self, at: Millis) -> String {
        at.to_datetime()
            .with_timezone(&self.offset)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    fn local(self, local: NaiveDateTime) -> DateTime<FixedOffset> {
        // A fixed offset has exactly one instant for every local time.
        self.offset
            .from_local_datetime(&local)
            .single()
            .unwrap_or_else(|| self.offset.from_utc_datetime(&local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_day_is_the_shops_not_utcs() {
        let beijing = BusinessDay::default();
        // 2026-11-28 16:30 UTC is 2026-11-29 00:30 in Beijing.
        let at = Millis(
            DateTime::parse_from_rfc3339("2026-11-28T16:30:00Z")
                .unwrap()
                .timestamp_millis(),
        );
        assert_eq!(beijing.day_of(at), date(2026, 11, 29));
        let utc = BusinessDay::new(FixedOffset::east_opt(0).unwrap());
        assert_eq!(utc.day_of(at), date(2026, 11, 28));
    }

    #[test]
    fn day_edges_and_bill_times() {
        let beijing = BusinessDay::default();
        let day = date(2026, 11, 28);
        let start = beijing.start_of(day);
        assert_eq!(beijing.format(start), "2026-11-28 00:00:00");
        assert_eq!(beijing.end_of(day).0 - start.0, 86_400_000);
        assert_eq!(beijing.day_of(Millis(beijing.end_of(day).0 - 1)), day);
        assert_eq!(beijing.day_of(beijing.end_of(day)), date(2026, 11, 29));
        let at = beijing.bill_time("2026-11-28 23:59:50").unwrap();
        assert_eq!(beijing.end_of(day).0 - at.0, 10_000);
        assert_eq!(beijing.format(at), "2026-11-28 23:59:50");
        assert_eq!(beijing.bill_time("28/11/2026"), None);
    }
}
