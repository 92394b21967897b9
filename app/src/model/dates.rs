//! Calendar days for the payments list (`YYYY-MM-DD`), without a date library.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<(i64, i64, i64)> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && civil_from_days(days_from_civil(year, month, day)) == (year, month, day);
    valid.then_some((year, month, day))
}

/// `date` moved by `days` (negative for earlier), or `None` if `date` is not a date.
pub fn shift_date(date: &str, days: i64) -> Option<String> {
    let (year, month, day) = parse_date(date)?;
    let (year, month, day) = civil_from_days(days_from_civil(year, month, day) + days);
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_across_months_years_and_leap_days() {
        assert_eq!(shift_date("2025-11-28", -1).as_deref(), Some("2025-11-27"));
        assert_eq!(shift_date("2025-03-01", -1).as_deref(), Some("2025-02-28"));
        assert_eq!(shift_date("2024-03-01", -1).as_deref(), Some("2024-02-29"));
        assert_eq!(shift_date("2025-12-31", 1).as_deref(), Some("2026-01-01"));
        assert_eq!(shift_date("1970-01-01", 0).as_deref(), Some("1970-01-01"));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rejects_non_dates() {
        for bad in [
            "",
            "2025-13-01",
            "2025-02-30",
            "2025-1",
            "abc",
            "2025-11-28x",
        ] {
            assert_eq!(shift_date(bad, 1), None, "{bad}");
        }
    }
}
