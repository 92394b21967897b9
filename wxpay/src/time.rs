//! WeChat's timestamps. Every time WeChat Pay v2 writes is Beijing time (UTC+8), either
//! compact `yyyyMMddHHmmss` (`time_end`, `time_expire`) or `yyyy-MM-dd HH:mm:ss`
//! (`refund_success_time_$n`), docs/wechat-pay.md §6.4.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

/// Beijing time (UTC+8), in which WeChat writes every timestamp.
pub fn beijing() -> FixedOffset {
    // 8 hours is well within the ±24 h range `east_opt` accepts.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

/// Reads WeChat's compact `yyyyMMddHHmmss` timestamp (Beijing time, docs/wechat-pay.md §6.4),
/// such as micropay's and orderquery's `time_end`; `None` when `value` is not exactly 14
/// digits of a real date and time.
pub fn parse_wechat_time(value: &str) -> Option<DateTime<Utc>> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    in_beijing(NaiveDateTime::parse_from_str(value, "%Y%m%d%H%M%S").ok()?)
}

/// Reads WeChat's `yyyy-MM-dd HH:mm:ss` timestamp (Beijing time), such as refundquery's
/// `refund_success_time_$n`; `None` when `value` is not exactly that shape of a real date
/// and time.
pub fn parse_wechat_datetime(value: &str) -> Option<DateTime<Utc>> {
    if value.len() != 19 {
        return None;
    }
    in_beijing(NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S").ok()?)
}

fn in_beijing(naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    naive
        .and_local_timezone(beijing())
        .single()
        .map(|time| time.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_times_are_beijing_time() {
        let parsed = parse_wechat_time("20261201083000").expect("a time");
        assert_eq!(parsed.to_rfc3339(), "2026-12-01T00:30:00+00:00");
        assert_eq!(parse_wechat_time("2026120108300"), None);
        assert_eq!(parse_wechat_time("20261301083000"), None);
        assert_eq!(parse_wechat_time("2026120108300x"), None);
    }

    #[test]
    fn refund_success_times_are_beijing_time() {
        let parsed = parse_wechat_datetime("2026-12-01 00:00:05").expect("a time");
        assert_eq!(parsed.to_rfc3339(), "2026-11-30T16:00:05+00:00");
        assert_eq!(parse_wechat_datetime("2026-12-01 00:00:5"), None);
        assert_eq!(parse_wechat_datetime("2026-13-01 00:00:05"), None);
        assert_eq!(parse_wechat_datetime("20261201000005"), None);
    }
}
