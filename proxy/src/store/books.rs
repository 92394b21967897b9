//! What both store implementations share about the books' tables (migration 0012): the
//! SQL (written with `?` placeholders; PostgreSQL numbers them with [`numbered`]), the
//! column lists and how a row becomes a [`BooksDay`] or a [`BooksMismatch`].
//!
//! A day is kept as `YYYY-MM-DD` text in both databases, so that the SQL is the same.

use chrono::NaiveDate;

use super::StoreError;
use super::records::Millis;
use super::rows::Columns;
use crate::books::records::{BooksDay, BooksMismatch, DayStatus, MismatchStatus};

/// The columns of `books_days`, in the order [`UPSERT_DAY`] binds them.
pub(super) const DAY_COLUMNS: &str = "business_day, mch_id, status, report, detail, run_at, run_by";

/// The columns of `books_mismatches`, in the order [`UPSERT_MISMATCH`] binds them.
pub(super) const MISMATCH_COLUMNS: &str = "id, business_day, mch_id, mismatch, status, \
     in_latest_run, note, settled_by, settled_at, first_seen_at, last_seen_at";

/// Stores a day, replacing the stored one, except that an attempt that did not reconcile
/// (waiting for the bill, failed) never replaces a reconciled day.
pub(super) const UPSERT_DAY: &str = "INSERT INTO books_days \
     (business_day, mch_id, status, report, detail, run_at, run_by) \
     VALUES (?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (business_day, mch_id) DO UPDATE SET status = excluded.status, \
     report = excluded.report, detail = excluded.detail, run_at = excluded.run_at, \
     run_by = excluded.run_by \
     WHERE books_days.status <> 'reconciled' OR excluded.status = 'reconciled'";

/// Before a reconciled run's mismatches are written: every stored mismatch of the day is no
/// longer in the latest run, and an open one is cleared (by the run, `?` 1 and 2: who and
/// when), until the upserts below find it again. Binds: by, at, by, at, day, mch_id.
pub(super) const UNLIST_MISMATCHES: &str = "UPDATE books_mismatches SET in_latest_run = ?, \
     settled_by = CASE WHEN status = 'open' THEN ? ELSE settled_by END, \
     settled_at = CASE WHEN status = 'open' THEN ? ELSE settled_at END, \
     status = CASE WHEN status = 'open' THEN 'cleared' ELSE status END \
     WHERE business_day = ? AND mch_id = ?";

/// Writes one mismatch a run found: new ones as given; a stored one takes the new text and
/// listing, and the given status only while it is open or cleared, so that what a manager
/// (or an earlier run's query) settled stays settled.
pub(super) const UPSERT_MISMATCH: &str = "INSERT INTO books_mismatches \
     (id, business_day, mch_id, mismatch, status, in_latest_run, note, settled_by, settled_at, \
      first_seen_at, last_seen_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (id) DO UPDATE SET mismatch = excluded.mismatch, \
     in_latest_run = excluded.in_latest_run, last_seen_at = excluded.last_seen_at, \
     note = CASE WHEN books_mismatches.status IN ('open', 'cleared') \
         THEN excluded.note ELSE books_mismatches.note END, \
     settled_by = CASE WHEN books_mismatches.status IN ('open', 'cleared') \
         THEN excluded.settled_by ELSE books_mismatches.settled_by END, \
     settled_at = CASE WHEN books_mismatches.status IN ('open', 'cleared') \
         THEN excluded.settled_at ELSE books_mismatches.settled_at END, \
     status = CASE WHEN books_mismatches.status IN ('open', 'cleared') \
         THEN excluded.status ELSE books_mismatches.status END";

/// Settles one mismatch. Binds: status, note, by, at, id.
pub(super) const SETTLE_MISMATCH: &str = "UPDATE books_mismatches SET status = ?, note = ?, settled_by = ?, settled_at = ? \
     WHERE id = ?";

/// Counts the open mismatches per account.
pub(super) const COUNT_OPEN: &str = "SELECT mch_id, COUNT(*) AS open_count FROM books_mismatches \
     WHERE status = 'open' GROUP BY mch_id ORDER BY mch_id";

/// Hands back a run claim. Binds: day, mch_id, owner.
pub(super) const RELEASE_RUN: &str =
    "DELETE FROM books_runs WHERE business_day = ? AND mch_id = ? AND owner = ?";

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … (PostgreSQL's spelling). The SQL
/// it is given (the books' here, the stores' shared queries in `shared.rs`) has no `?`
/// inside a literal.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A day as stored (`YYYY-MM-DD`).
pub(super) fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// A day as stored (`YYYY-MM-DD`) in `column`.
pub(super) fn parse_day(column: &'static str, text: String) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
        column,
        value: text,
    })
}

fn json<T: serde::de::DeserializeOwned>(
    column: &'static str,
    text: String,
) -> Result<T, StoreError> {
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
        column,
        value: text.chars().take(80).collect(),
    })
}

/// A value as stored JSON.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("books records serialise")
}

/// Reads a row of [`DAY_COLUMNS`].
pub(super) fn day_from_row(row: &impl Columns) -> Result<BooksDay, StoreError> {
    let status = row.text("status")?;
    Ok(BooksDay {
        day: parse_day("business_day", row.text("business_day")?)?,
        mch_id: row.text("mch_id")?,
        status: DayStatus::parse(&status).ok_or(StoreError::Corrupt {
            column: "status",
            value: status,
        })?,
        report: row
            .optional_text("report")?
            .map(|text| json("report", text))
            .transpose()?,
        detail: row.optional_text("detail")?,
        run_at: Millis(row.integer("run_at")?),
        run_by: row.text("run_by")?,
    })
}

/// Reads a row of [`MISMATCH_COLUMNS`].
pub(super) fn mismatch_from_row(row: &impl Columns) -> Result<BooksMismatch, StoreError> {
    let status = row.text("status")?;
    Ok(BooksMismatch {
        id: row.text("id")?,
        day: parse_day("business_day", row.text("business_day")?)?,
        mch_id: row.text("mch_id")?,
        mismatch: json("mismatch", row.text("mismatch")?)?,
        status: MismatchStatus::parse(&status).ok_or(StoreError::Corrupt {
            column: "status",
            value: status,
        })?,
        in_latest_run: row.flag("in_latest_run")?,
        note: row.optional_text("note")?,
        settled_by: row.optional_text("settled_by")?,
        settled_at: row.optional_integer("settled_at")?.map(Millis),
        first_seen_at: Millis(row.integer("first_seen_at")?),
        last_seen_at: Millis(row.integer("last_seen_at")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgresql() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(numbered(SETTLE_MISMATCH).matches('$').count(), 5);
    }
}
