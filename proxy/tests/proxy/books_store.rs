//! The books' part of the store conformance suite (migration 0012): a day's run is stored
//! once per day and account and replaced on a re-run, mismatch statuses a person or a query
//! set survive re-runs, a run is claimed by one owner at a time, and the store's payments
//! and refunds of a bill's window are found. Run on both back ends like `store.rs`.

use std::time::Duration;

use chrono::NaiveDate;
use paycode_api::Fen;
use paycode_api::books::{BillStatus, CarryOver, DayReport, Mismatch, MismatchClass, SideTotals};
use paycode_proxy::books::records::{BooksDay, BooksMismatch, DayStatus, MismatchStatus};
use paycode_proxy::store::{Millis, RefundRecord};

use crate::helpers::{Backend, attempt, new_store, payment, stored_payment};

conformance!(
    a_books_day_is_replaced_on_a_rerun_and_keeps_settled_statuses,
    a_run_that_did_not_reconcile_never_replaces_a_reconciled_day,
    a_books_run_is_claimed_by_one_owner_at_a_time,
    the_payments_and_refunds_of_a_bill_window_are_found,
);

const MCH: &str = "10000100";

fn the_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
}

fn mismatch(class: MismatchClass, out_trade_no: &str) -> Mismatch {
    Mismatch {
        class,
        description: class.describe().to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        out_refund_no: None,
        store_amount: Some(Fen(100)),
        bill_amount: None,
        store_state: None,
        bill_state: None,
        time: "2026-11-30 12:00:00".to_owned(),
        carried_from: None,
        actions: class.actions(),
    }
}

fn report(mismatches: Vec<Mismatch>) -> DayReport {
    DayReport {
        day: "2026-11-30".to_owned(),
        mch_id: MCH.to_owned(),
        bill_status: BillStatus::Received,
        store_totals: SideTotals::default(),
        bill_totals: SideTotals::default(),
        bill_summary_count: Some(0),
        bill_summary_settlement_fen: Some(Fen(0)),
        bill_summary_refund_fen: Some(Fen(0)),
        matched_payments: 0,
        matched_refunds: 0,
        mismatches,
        marks: Vec::new(),
        not_from_paycode: Vec::new(),
        carried_to_next_day: CarryOver::default(),
    }
}

fn reconciled(report: DayReport, at: i64) -> BooksDay {
    BooksDay {
        day: the_day(),
        mch_id: MCH.to_owned(),
        status: DayStatus::Reconciled,
        report: Some(report),
        detail: None,
        run_at: Millis(at),
        run_by: format!("run at {at}"),
    }
}

fn found(report: &DayReport, at: i64) -> Vec<BooksMismatch> {
    report
        .mismatches
        .iter()
        .map(|m| BooksMismatch::open(the_day(), MCH, m.clone(), Millis(at)))
        .collect()
}

async fn a_books_day_is_replaced_on_a_rerun_and_keeps_settled_statuses(backend: Backend) {
    // Arrange: a first run finds three mismatches; a manager explains one.
    let (store, _database) = new_store(&backend).await;
    let first = report(vec![
        mismatch(MismatchClass::PaidAtWechatNotHere, "PC1"),
        mismatch(MismatchClass::PaidHereNotAtWechat, "PC2"),
        mismatch(MismatchClass::AmountsDiffer, "PC3"),
    ]);
    let stored = store
        .save_books_day(&reconciled(first.clone(), 1_000), &found(&first, 1_000))
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|m| m.status == MismatchStatus::Open));
    let explained_id = stored
        .iter()
        .find(|m| m.mismatch.out_trade_no == "PC2")
        .unwrap()
        .id
        .clone();
    let explained = store
        .settle_books_mismatch(
            &explained_id,
            MismatchStatus::Explained,
            Some("test order, money given back in cash"),
            "manager 店长 at terminal office",
            Millis(1_500),
        )
        .await
        .unwrap();
    assert_eq!(explained.status, MismatchStatus::Explained);

    // Act: a re-run no longer finds PC1 nor PC2 (its amount differs too now), still finds PC3.
    let second = report(vec![mismatch(MismatchClass::AmountsDiffer, "PC3")]);
    let after = store
        .save_books_day(&reconciled(second.clone(), 2_000), &found(&second, 2_000))
        .await
        .unwrap();
    // And a third run finds PC2 again.
    let third = report(vec![
        mismatch(MismatchClass::PaidHereNotAtWechat, "PC2"),
        mismatch(MismatchClass::AmountsDiffer, "PC3"),
    ]);
    let last = store
        .save_books_day(&reconciled(third.clone(), 3_000), &found(&third, 3_000))
        .await
        .unwrap();

    // Assert: one day row, replaced; the explained one kept its status, note and who; the
    // open one no longer found was cleared by the re-run; nothing duplicated.
    let days = store.books_days(the_day(), the_day()).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].run_at, Millis(3_000));
    assert_eq!(days[0].report.as_ref().unwrap().mismatches.len(), 2);
    assert_eq!(after.len(), 3);
    let by_order = |list: &[BooksMismatch], order: &str| {
        list.iter()
            .find(|m| m.mismatch.out_trade_no == order)
            .unwrap()
            .clone()
    };
    let pc1 = by_order(&after, "PC1");
    assert_eq!(pc1.status, MismatchStatus::Cleared);
    assert!(!pc1.in_latest_run);
    assert_eq!(pc1.settled_by.as_deref(), Some("run at 2000"));
    assert_eq!(last.len(), 3);
    let pc2 = by_order(&last, "PC2");
    assert_eq!(pc2.id, explained_id);
    assert_eq!(pc2.status, MismatchStatus::Explained);
    assert!(pc2.in_latest_run);
    assert_eq!(
        pc2.note.as_deref(),
        Some("test order, money given back in cash")
    );
    assert_eq!(
        pc2.settled_by.as_deref(),
        Some("manager 店长 at terminal office")
    );
    assert_eq!(pc2.first_seen_at, Millis(1_000));
    assert_eq!(pc2.last_seen_at, Millis(3_000));
    let pc3 = by_order(&last, "PC3");
    assert_eq!(pc3.status, MismatchStatus::Open);
    assert_eq!(
        store.count_open_books_mismatches().await.unwrap(),
        vec![(MCH.to_owned(), 1)]
    );
    assert_eq!(store.books_mismatch(&pc3.id).await.unwrap().unwrap(), pc3);
    assert!(
        store
            .settle_books_mismatch("bm_none", MismatchStatus::Explained, None, "x", Millis(1))
            .await
            .is_err()
    );
}

async fn a_run_that_did_not_reconcile_never_replaces_a_reconciled_day(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let waiting = BooksDay {
        day: the_day(),
        mch_id: MCH.to_owned(),
        status: DayStatus::WaitingForBill,
        report: None,
        detail: Some("Bill Creating".to_owned()),
        run_at: Millis(1_000),
        run_by: "daily run".to_owned(),
    };
    store.save_books_day(&waiting, &[]).await.unwrap();
    assert_eq!(
        store.books_day(the_day(), MCH).await.unwrap().unwrap(),
        waiting
    );

    // Act: reconciled, then a later attempt fails.
    let done = reconciled(report(Vec::new()), 2_000);
    store.save_books_day(&done, &[]).await.unwrap();
    let failed = BooksDay {
        status: DayStatus::Failed,
        detail: Some("download failed".to_owned()),
        run_at: Millis(3_000),
        ..waiting.clone()
    };
    store.save_books_day(&failed, &[]).await.unwrap();

    // Assert
    assert_eq!(
        store.books_day(the_day(), MCH).await.unwrap().unwrap(),
        done
    );
    assert_eq!(store.books_day(the_day(), "other").await.unwrap(), None);
}

async fn a_books_run_is_claimed_by_one_owner_at_a_time(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let short = Duration::from_millis(300);
    let day = the_day();

    // Act / Assert
    assert!(store.claim_books_run(day, MCH, "a", short).await.unwrap());
    assert!(!store.claim_books_run(day, MCH, "b", short).await.unwrap());
    // The owner extends its own claim; another account or day is a separate claim.
    assert!(store.claim_books_run(day, MCH, "a", short).await.unwrap());
    assert!(
        store
            .claim_books_run(day, "other", "b", Duration::from_secs(60))
            .await
            .unwrap()
    );
    // A lapsed claim is taken by another owner.
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert!(store.claim_books_run(day, MCH, "b", short).await.unwrap());
    assert!(!store.claim_books_run(day, MCH, "a", short).await.unwrap());
    // A handed-back claim is free at once; handing back another's claim does nothing.
    store.release_books_run(day, "other", "a").await.unwrap();
    assert!(
        !store
            .claim_books_run(day, "other", "a", short)
            .await
            .unwrap()
    );
    store.release_books_run(day, MCH, "b").await.unwrap();
    assert!(store.claim_books_run(day, MCH, "a", short).await.unwrap());
    // Racing claimers: exactly one wins.
    let day2 = day.succ_opt().unwrap();
    let long = Duration::from_secs(60);
    let claims: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_books_run(day2, MCH, &format!("owner-{n}"), long)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = Vec::new();
    for claim in claims {
        won.push(claim.await.unwrap());
    }
    assert_eq!(won.iter().filter(|won| **won).count(), 1);
}

async fn the_payments_and_refunds_of_a_bill_window_are_found(backend: Backend) {
    // Arrange: payments created at 1_709_340_000_00n; one settled later, one elsewhere.
    let (store, _database) = new_store(&backend).await;
    let inside = stored_payment(store.as_ref(), 1, 100).await;
    let mut late = payment(2, 200);
    late.created_at = Millis(1_000);
    let late = store.insert_payment(&late).await.unwrap().into_record();
    let mut settled = late.clone();
    settled.state = paycode_api::PaymentState::Paid;
    settled.settled_at = Some(Millis(1_709_340_000_500));
    store.update_payment(&settled, "paid").await.unwrap();
    let mut named = payment(3, 300);
    named.created_at = Millis(2_000);
    store.insert_payment(&named).await.unwrap();
    let mut other_account = payment(4, 400);
    other_account.merchant.mch_id = "20000200".to_owned();
    store.insert_payment(&other_account).await.unwrap();
    let refund = RefundRecord::new_submitting(
        "ref_1".to_owned(),
        &settled,
        attempt(1001),
        wxpay::messages::OutRefundNo::new("RF00000001").unwrap(),
        Fen(50),
        None,
        Millis(1_709_340_000_900),
    );
    store.insert_refund(&refund).await.unwrap();
    let (from, to) = (Millis(1_709_340_000_000), Millis(1_709_340_001_000));

    // Act
    let window = store.books_payments(MCH, from, to, &[]).await.unwrap();
    let with_named = store
        .books_payments(MCH, from, to, &["PC00000003".to_owned()])
        .await
        .unwrap();
    let refunds = store.books_refunds(MCH, from, to, &[]).await.unwrap();
    let none = store
        .books_refunds(MCH, Millis(0), Millis(10), &[])
        .await
        .unwrap();
    let named_refund = store
        .books_refunds(MCH, Millis(0), Millis(10), &["RF00000001".to_owned()])
        .await
        .unwrap();

    // Assert
    let ids = |list: &[paycode_proxy::store::PaymentRecord]| {
        list.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&window), [late.id.clone(), inside.id.clone()]);
    assert_eq!(ids(&with_named), [late.id, named.id, inside.id]);
    assert_eq!(refunds.len(), 1);
    assert!(none.is_empty());
    assert_eq!(named_refund.len(), 1);
}
