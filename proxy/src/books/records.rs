//! What the store keeps of the books (migration 0012): one [`BooksDay`] per business day
//! and merchant account, and one [`BooksMismatch`] per difference found, with its own
//! status (docs/books.md §5).

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::store::records::Millis;
/// Where a day's reconciliation of one account stands: the wire contract's, stored by its
/// name ([`DayStatus::as_str`]); a stored day is never `Unreconciled` (that is a day with
/// no row).
pub use paycode_api::books::DayStatus;
/// The status of one mismatch: the wire contract's, stored by its name
/// ([`MismatchStatus::as_str`]).
pub use paycode_api::books::MismatchStatus;
use paycode_api::books::{DayReport, Mismatch};

/// One business day of one merchant account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BooksDay {
    /// The business day, in the shop's offset.
    pub day: NaiveDate,
    /// The account's `mch_id`.
    pub mch_id: String,
    /// Where the run stands.
    pub status: DayStatus,
    /// The report, once reconciled. Its `carried_to_next_day` is the carry-over the next
    /// day's run of the account takes.
    pub report: Option<DayReport>,
    /// Why the run waits or failed.
    pub detail: Option<String>,
    /// When the run (or the attempt) was made.
    pub run_at: Millis,
    /// Who ran it, e.g. `the daily run (proxy-a/…)` or `paycode-proxy reconcile`.
    pub run_by: String,
}

/// One mismatch as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BooksMismatch {
    /// The stable id ([`mismatch_id`]).
    pub id: String,
    /// The business day whose run found it.
    pub day: NaiveDate,
    /// The account's `mch_id`.
    pub mch_id: String,
    /// What was found, as the report says it.
    pub mismatch: Mismatch,
    /// Its status.
    pub status: MismatchStatus,
    /// Whether the latest run of the day still lists it.
    pub in_latest_run: bool,
    /// The manager's note (explained), or what settled it.
    pub note: Option<String>,
    /// Who settled it ([`crate::engine::verify::Actor`] in words).
    pub settled_by: Option<String>,
    /// When it was settled.
    pub settled_at: Option<Millis>,
    /// When a run first found it.
    pub first_seen_at: Millis,
    /// When a run last found it.
    pub last_seen_at: Millis,
}

impl BooksMismatch {
    /// A mismatch `mismatch` found on `day` of `mch_id` at `now`, open.
    pub fn open(day: NaiveDate, mch_id: &str, mismatch: Mismatch, now: Millis) -> BooksMismatch {
        BooksMismatch {
            id: mismatch_id(day, mch_id, &mismatch),
            day,
            mch_id: mch_id.to_owned(),
            mismatch,
            status: MismatchStatus::Open,
            in_latest_run: true,
            note: None,
            settled_by: None,
            settled_at: None,
            first_seen_at: now,
            last_seen_at: now,
        }
    }
}

/// The stable id of a mismatch: `bm_` and 24 hex digits of the SHA-256 of the day, the
/// account, the class and the order (and refund) number. The same difference found by a
/// re-run has the same id; amounts are left out so that a corrected amount is the same
/// item.
pub fn mismatch_id(day: NaiveDate, mch_id: &str, mismatch: &Mismatch) -> String {
    let class = serde_json::to_string(&mismatch.class).unwrap_or_default();
    let key = format!(
        "{day}\n{mch_id}\n{class}\n{}\n{}",
        mismatch.out_trade_no,
        mismatch.out_refund_no.as_deref().unwrap_or("")
    );
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("bm_{}", &digest[..24])
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::books::{MismatchClass, OwnerAction};

    fn mismatch(class: MismatchClass, amount: u64) -> Mismatch {
        Mismatch {
            class,
            description: class.describe().into(),
            out_trade_no: "PC1".into(),
            out_refund_no: None,
            store_amount: Some(paycode_api::Fen(amount)),
            bill_amount: None,
            store_state: None,
            bill_state: None,
            time: "2026-11-30 10:00:00".into(),
            carried_from: None,
            actions: vec![OwnerAction::QueryNow],
        }
    }

    #[test]
    fn a_mismatch_keeps_its_id_across_runs_and_differs_by_class_and_day() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let a = mismatch_id(day, "1900", &mismatch(MismatchClass::AmountsDiffer, 1));
        assert_eq!(
            a,
            mismatch_id(day, "1900", &mismatch(MismatchClass::AmountsDiffer, 2))
        );
        assert!(a.starts_with("bm_") && a.len() == 27);
        assert_ne!(
            a,
            mismatch_id(
                day,
                "1900",
                &mismatch(MismatchClass::PaidHereNotAtWechat, 1)
            )
        );
        assert_ne!(
            a,
            mismatch_id(
                day.succ_opt().unwrap(),
                "1900",
                &mismatch(MismatchClass::AmountsDiffer, 1)
            )
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in MismatchStatus::ALL {
            assert_eq!(MismatchStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DayStatus::parse("reconciled"), Some(DayStatus::Reconciled));
        assert_eq!(DayStatus::parse("done"), None);
    }
}
