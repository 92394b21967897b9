//! The owner's books end to end (docs/books.md): payments through the proxy's API, the
//! simulator's bill of the day (gzip, dated by its clock) with injected discrepancies, and
//! `paycode-proxy reconcile --date D` run as the command line runs it, against the same
//! database. Each test checks the printed summary, the stored day and its mismatches, and
//! what the run wrote onto the records.

use std::time::Duration;

use chrono::NaiveDate;
use paycode_api::books::{BillStatus, DayReport, MismatchClass};
use paycode_api::{Fen, PaymentState};
use paycode_proxy::books::records::{DayStatus, MismatchStatus};
use paycode_proxy::cli::reconcile::{self, ReconcileArgs};
use paycode_proxy::store::Millis;
use paycode_tests::World;
use paycode_tests::world::{AMOUNT_FEN, DEFAULT_SCALE};
use wxpay::sim::{Behaviour, Injection, clock::beijing};

/// The simulator's business day now (Beijing time, its clock).
pub(crate) fn sim_today(world: &World) -> NaiveDate {
    world.sim.now().with_timezone(&beijing()).date_naive()
}

/// Stores a "ghost": a copy of the paid payment `copy_of` under a number WeChat never saw
/// (`PCGHOST…1`), so the day's run finds it paid here but not at WeChat. It is dated at noon
/// of its business day: one paid within the last minutes of a day is carried to the next
/// day's run instead (`Rules::edge`), which would make the test depend on the hour it runs.
pub(crate) async fn insert_ghost(world: &World, copy_of: &str) {
    let store = world.store.as_ref();
    let mut ghost = store.existing_payment(copy_of).await.unwrap();
    ghost.id = "ghost-payment".into();
    ghost.attempt_id =
        paycode_api::AttemptId::parse("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a").expect("a UUID");
    ghost.out_trade_no =
        wxpay::messages::OutTradeNo::new("PCGHOST0000000000000000000000001").unwrap();
    ghost.auth_code_fingerprint = None;
    let noon = Millis(beijing_time(ghost.business_day, 12, 0, 0).timestamp_millis());
    ghost.created_at = noon;
    ghost.settled_at = Some(noon);
    ghost.wechat_paid_at = Some(noon);
    store.insert_payment(&ghost).await.unwrap();
}

/// Moves the simulator to 10:00 Beijing time on the day after `day`, when `day`'s bill is
/// ready.
pub(crate) fn make_bill_ready(world: &World, day: NaiveDate) {
    let ready = (day + chrono::Days::new(1))
        .and_hms_opt(10, 0, 0)
        .and_then(|time| time.and_local_timezone(beijing()).single())
        .expect("a time")
        .to_utc();
    if let Ok(ahead) = (ready - world.sim.now()).to_std() {
        world.sim.advance(ahead);
    }
}

/// Runs `paycode-proxy reconcile --date day` and returns what it printed.
pub(crate) async fn reconcile_cli(world: &World, day: NaiveDate) -> String {
    let mut out = Vec::new();
    reconcile::run(
        ReconcileArgs {
            date: day,
            account: None,
        },
        &world.config,
        &mut out,
    )
    .await
    .expect("the day is reconciled");
    String::from_utf8(out).expect("UTF-8")
}

fn mch_id(world: &World) -> String {
    world.config.wechat.mch_id.clone()
}

/// The report stored for `day` of the world's default account (it must be there).
async fn stored_report(world: &World, day: NaiveDate) -> DayReport {
    world
        .store
        .books_day(day, &mch_id(world))
        .await
        .unwrap()
        .expect("the day is stored")
        .report
        .expect("with its report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mismatch_class_is_reported_and_a_rerun_keeps_what_a_manager_explained() {
    // Arrange: three payments through the proxy, refunded one in part; at WeChat only, a
    // payment nobody here made, an online sale, a refund made in the merchant platform and
    // a bill amount that differs; in the store only, a payment WeChat never saw paid and a
    // refund WeChat never listed.
    let world = World::start_with(DEFAULT_SCALE, |_| {}).await;
    world.sim.set_refund_delay(Duration::from_secs(1));
    let first = world.pay_and_settle(Behaviour::PasswordFree).await;
    let second = world.pay_and_settle(Behaviour::PasswordFree).await;
    let third = world.pay_and_settle(Behaviour::PasswordFree).await;
    let refund = world.cashier.refund(&first.id, 300).await;
    world
        .cashier
        .wait_until(&first, "refund succeeded", |seen| {
            seen.refunds
                .iter()
                .any(|seen| seen.state == paycode_api::RefundState::Succeeded)
        })
        .await;
    // The refundquery that found it SUCCESS gave WeChat's refund_success_time.
    let refunded = world.store.get_refund(&refund.id).await.unwrap().unwrap();
    assert!(refunded.wechat_refunded_at.is_some(), "{refunded:#?}");
    let day = sim_today(&world);
    let unseen = world
        .sim
        .inject_discrepancy(Injection::UnseenPayment {
            mch_id: None,
            sub_mch_id: None,
            out_trade_no: None,
            total_fee: 777,
        })
        .unwrap();
    world
        .sim
        .inject_discrepancy(Injection::ForeignTrade {
            mch_id: None,
            sub_mch_id: None,
            trade_type: "JSAPI".into(),
            total_fee: 4500,
        })
        .unwrap();
    let outside = world
        .sim
        .inject_discrepancy(Injection::OutsideRefund {
            mch_id: None,
            out_trade_no: second.out_trade_no.clone(),
            refund_fee: 200,
        })
        .unwrap();
    world
        .sim
        .inject_discrepancy(Injection::AmountDifference {
            mch_id: None,
            out_trade_no: third.out_trade_no.clone(),
            bill_total_fee: AMOUNT_FEN + 1,
        })
        .unwrap();
    // Paid here only: a copy of the second payment under a number WeChat never saw.
    insert_ghost(&world, &second.id).await;
    let store = world.store.as_ref();
    make_bill_ready(&world, day);

    // Act
    let printed = reconcile_cli(&world, day).await;

    // Assert: the report lists exactly the injected differences, by class.
    let stored = store
        .books_day(day, &mch_id(&world))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DayStatus::Reconciled, "{printed}");
    let report = stored.report.clone().unwrap();
    assert_eq!(report.bill_status, BillStatus::Received);
    let mut found: Vec<(MismatchClass, String)> = report
        .mismatches
        .iter()
        .map(|m| (m.class, m.out_trade_no.clone()))
        .collect();
    found.sort();
    let mut expected = vec![
        (
            MismatchClass::PaidAtWechatNotHere,
            unseen.out_trade_no.clone(),
        ),
        (
            MismatchClass::PaidHereNotAtWechat,
            "PCGHOST0000000000000000000000001".to_owned(),
        ),
        (MismatchClass::AmountsDiffer, third.out_trade_no.clone()),
        (
            MismatchClass::RefundInBillNotHere,
            second.out_trade_no.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected, "{printed}");
    let outside_refund = report
        .mismatches
        .iter()
        .find(|m| m.class == MismatchClass::RefundInBillNotHere)
        .unwrap();
    assert_eq!(outside_refund.out_refund_no, outside.out_refund_no);
    assert_eq!(report.not_from_paycode.len(), 1, "{printed}");
    assert_eq!(report.not_from_paycode[0].trade_type, "JSAPI");
    assert_eq!(report.matched_payments, 2);
    assert_eq!(report.matched_refunds, 1);
    assert_eq!(report.store_totals.payments, 4);
    assert_eq!(report.store_totals.refund_fen, Fen(300));
    assert!(
        printed.contains("paid at WeChat but not paid here"),
        "{printed}"
    );
    assert!(printed.contains("not from Paycode: 1 row(s)"), "{printed}");
    assert!(
        !printed.contains(&refund.out_refund_no),
        "a matched refund is no mismatch"
    );
    let mismatches = store.books_mismatches(day, &mch_id(&world)).await.unwrap();
    assert_eq!(mismatches.len(), 4);
    assert!(mismatches.iter().all(|m| m.status == MismatchStatus::Open));

    // Act: a manager explains the ghost; the day is run again.
    let ghost_mismatch = mismatches
        .iter()
        .find(|m| m.mismatch.class == MismatchClass::PaidHereNotAtWechat)
        .unwrap();
    store
        .settle_books_mismatch(
            &ghost_mismatch.id,
            MismatchStatus::Explained,
            Some("a test record"),
            "manager 店长 at terminal office",
            Millis::now(),
        )
        .await
        .unwrap();
    reconcile_cli(&world, day).await;

    // Assert: replaced, not duplicated; the explanation kept.
    assert_eq!(store.books_days(day, day).await.unwrap().len(), 1);
    let again = store.books_mismatches(day, &mch_id(&world)).await.unwrap();
    assert_eq!(again.len(), 4);
    let kept = again.iter().find(|m| m.id == ghost_mismatch.id).unwrap();
    assert_eq!(kept.status, MismatchStatus::Explained);
    assert_eq!(kept.note.as_deref(), Some("a test record"));
    assert_eq!(
        again
            .iter()
            .filter(|m| m.status == MismatchStatus::Open)
            .count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_not_ready_waits_and_no_bill_is_an_empty_day_only_without_trades() {
    // Arrange
    let world = World::start().await;
    let day = sim_today(&world);
    let mch_id = mch_id(&world);

    // Act: today's bill is not made yet.
    let printed = reconcile_cli(&world, day).await;

    // Assert
    assert!(printed.contains("not made the bill yet"), "{printed}");
    let waiting = world.store.books_day(day, &mch_id).await.unwrap().unwrap();
    assert_eq!(waiting.status, DayStatus::WaitingForBill);
    assert!(waiting.report.is_none());

    // Act: the bill is ready, and the day had no trade: "No Bill Exist" is an empty day.
    make_bill_ready(&world, day);
    let printed = reconcile_cli(&world, day).await;
    let empty = world.store.books_day(day, &mch_id).await.unwrap().unwrap();

    // Assert
    assert!(printed.contains("no bill and no trades"), "{printed}");
    assert_eq!(empty.status, DayStatus::Reconciled);
    assert_eq!(
        empty.report.unwrap().bill_status,
        BillStatus::NoBillNoTrades
    );

    // Arrange: the store has a paid payment that day, WeChat has no bill.
    let payment = world.pay_and_settle(Behaviour::PasswordFree).await;
    let mut record = world.store.existing_payment(&payment.id).await.unwrap();
    let paid_at = record.wechat_paid_at.expect("WeChat's success time");
    let store_day = paycode_proxy::books::BusinessDay::default().day_of(paid_at);
    // Move its success to a day whose bill has no rows: the day before the simulator's.
    let earlier = store_day.pred_opt().unwrap();
    record.wechat_paid_at = Some(Millis(paid_at.0 - 86_400_000));
    record.settled_at = record.wechat_paid_at;
    world
        .store
        .update_payment(&record, "test: paid a day earlier")
        .await
        .unwrap();
    make_bill_ready(&world, sim_today(&world));

    // Act
    let printed = reconcile_cli(&world, earlier).await;

    // Assert
    let reported = world
        .store
        .books_day(earlier, &mch_id)
        .await
        .unwrap()
        .unwrap();
    let report = reported.report.unwrap();
    assert_eq!(
        report.bill_status,
        BillStatus::NoBillButStoreHasTrades,
        "{printed}"
    );
    assert_eq!(report.mismatches.len(), 1);
    assert_eq!(
        report.mismatches[0].class,
        MismatchClass::PaidHereNotAtWechat
    );
    assert!(printed.contains("WeChat has NO bill"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_paid_reply_is_settled_as_paid_by_the_runs_verified_query() {
    // Arrange: a payment whose paid reply is lost: while it lives, WeChat's queries answer
    // ORDERNOTEXIST, so the proxy settles it as not paid while WeChat holds the money; by
    // the time the day's bill is out WeChat's queries find it paid.
    let world = World::start().await;
    let lost = world.pay_and_settle(Behaviour::LostPaidReply).await;
    assert_ne!(lost.state, PaymentState::Paid);
    let store = world.store.as_ref();
    let day = sim_today(&world);
    make_bill_ready(&world, day);
    let before = store.payment_events(&lost.id).await.unwrap().len();

    // Act
    let printed = reconcile_cli(&world, day).await;

    // Assert: the bill only triggered the query; the verified reply settled the payment as
    // paid (an audit event naming the run), and the difference is stored as resolved by
    // that query, not left open.
    let events = store.payment_events(&lost.id).await.unwrap();
    assert_eq!(events.len(), before + 1, "{events:#?}");
    let last = events.last().unwrap();
    assert!(
        last.detail
            .contains("verified by orderquery for the reconciliation of"),
        "{}",
        last.detail
    );
    assert_eq!(
        store.existing_payment(&lost.id).await.unwrap().state,
        PaymentState::Paid,
        "{printed}"
    );
    let report = stored_report(&world, day).await;
    assert!(
        !report
            .mismatches
            .iter()
            .any(|m| m.out_trade_no == lost.out_trade_no),
        "{printed}"
    );
    let stored = store.books_mismatches(day, &mch_id(&world)).await.unwrap();
    let resolved = stored
        .iter()
        .find(|m| m.mismatch.out_trade_no == lost.out_trade_no)
        .expect("the difference the first pass found is kept");
    assert_eq!(
        (resolved.mismatch.class, resolved.status),
        (
            MismatchClass::PaidAtWechatNotHere,
            MismatchStatus::ResolvedByQuery
        ),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "queried {}: WeChat says paid (transaction_id",
            lost.out_trade_no
        )),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_needs_attention_is_settled_by_the_runs_verified_query() {
    // Arrange: every reverse fails, so the payment needs attention; its own recheck is an
    // hour away. The customer never pays: WeChat auto-revokes the order.
    let world = World::start_with(DEFAULT_SCALE, |config| {
        config.payments.reverse_max_attempts = 2;
        config.payments.attention_recheck_interval = Duration::from_secs(3600);
    })
    .await;
    world.sim.inject_fault(
        wxpay::codes::Api::Reverse,
        wxpay::sim::Fault::Html5xx { status: 503 },
        1000,
    );
    let payment = world.pay(Behaviour::PasswordWaits).await;
    let stuck = world
        .cashier
        .wait_for(&payment, PaymentState::NeedsAttention)
        .await;
    let day = sim_today(&world);
    make_bill_ready(&world, day);

    // Act
    let printed = reconcile_cli(&world, day).await;

    // Assert: the run's query found the order closed, and the machine's rule for that
    // answer settled it, with an audit event naming the run.
    let record = world.store.existing_payment(&stuck.id).await.unwrap();
    assert_eq!(record.state, PaymentState::Cancelled, "{printed}");
    let events = world.store.payment_events(&stuck.id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.from_state, Some(PaymentState::NeedsAttention));
    assert_eq!(last.to_state, PaymentState::Cancelled);
    assert!(
        last.detail.contains(&format!(
            "the reconciliation of {day} for mch_id {}",
            mch_id(&world)
        )),
        "{}",
        last.detail
    );
    assert!(
        printed.contains(&format!("queried {}", stuck.out_trade_no)),
        "{printed}"
    );
    assert!(printed.contains("(changed)"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_run_waits_for_its_hour_leaves_a_claimed_day_and_runs_each_day_once() {
    use paycode_proxy::books::{BusinessDay, daily};

    // Arrange: yesterday (the proxy's clock, in the shop's offset) had no trade; its bill is
    // ready at the simulator.
    let world = World::start().await;
    let books = reconcile::books_for(&world.config).await.unwrap();
    let days = BusinessDay::default();
    let today = days.day_of(Millis::now());
    let yesterday = today.pred_opt().unwrap();
    make_bill_ready(&world, yesterday);
    let settings = daily::DailySettings::new(&world.config.books, "this-proxy");
    let at =
        |hh: u32, mm: u32| Millis(days.start_of(today).0 + i64::from(hh * 3600 + mm * 60) * 1000);
    let store = world.store.as_ref();
    let mch_id = mch_id(&world);

    // Act / Assert: before 10:30 nothing runs; the wait ends at 10:30.
    let wait = daily::tick(&books, &settings, at(10, 0)).await;
    assert_eq!(wait, Duration::from_secs(30 * 60));
    assert!(store.books_day(yesterday, &mch_id).await.unwrap().is_none());

    // Another proxy holds the day's claim: this one leaves the day to it.
    assert!(
        store
            .claim_books_run(yesterday, &mch_id, "other-proxy", Duration::from_secs(60))
            .await
            .unwrap()
    );
    daily::tick(&books, &settings, at(10, 31)).await;
    assert!(store.books_day(yesterday, &mch_id).await.unwrap().is_none());

    // The claim is handed back: this proxy runs the day, once.
    store
        .release_books_run(yesterday, &mch_id, "other-proxy")
        .await
        .unwrap();
    let wait = daily::tick(&books, &settings, at(10, 32)).await;
    let done = store.books_day(yesterday, &mch_id).await.unwrap().unwrap();
    assert_eq!(done.status, DayStatus::Reconciled);
    assert_eq!(done.run_by, "the daily run (this-proxy)");
    assert_eq!(done.report.unwrap().bill_status, BillStatus::NoBillNoTrades);
    assert_eq!(wait, Duration::from_secs(24 * 3600 - 2 * 60));
    daily::tick(&books, &settings, at(11, 0)).await;
    let again = store.books_day(yesterday, &mch_id).await.unwrap().unwrap();
    assert_eq!(
        again.run_at, done.run_at,
        "a reconciled day is not run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_order_marks_its_cancelled_payment_money_returned() {
    // Arrange: the cashier cancels, the customer pays before the reverse, the reverse
    // returns the money: the bill lists the order REVOKED. The record's mark is taken off,
    // as for a payment whose reverse the proxy never saw succeed after a payment.
    let world = World::start().await;
    let payment = world.pay(Behaviour::PasswordWaits).await;
    let waiting = world
        .cashier
        .wait_for(&payment, PaymentState::WaitingForCustomer)
        .await;
    world.cashier.cancel(&waiting.id).await;
    world.sim.confirm_password(&payment.out_trade_no).unwrap();
    let cancelled = world.cashier.settled(&payment).await;
    assert_eq!(cancelled.state, PaymentState::Cancelled);
    let store = world.store.as_ref();
    let mut record = store.existing_payment(&payment.id).await.unwrap();
    record.money_returned = false;
    store
        .update_payment(&record, "test: the mark taken off")
        .await
        .unwrap();
    let day = sim_today(&world);
    make_bill_ready(&world, day);

    // Act
    let printed = reconcile_cli(&world, day).await;

    // Assert: a mark, not a mismatch, written onto the record with an audit event.
    let report = stored_report(&world, day).await;
    assert!(report.mismatches.is_empty(), "{printed}");
    assert_eq!(report.marks.len(), 1, "{printed}");
    assert_eq!(report.marks[0].out_trade_no, payment.out_trade_no);
    let marked = store.existing_payment(&payment.id).await.unwrap();
    assert!(marked.money_returned);
    assert_eq!(marked.state, PaymentState::Cancelled);
    let events = store.payment_events(&payment.id).await.unwrap();
    assert!(
        events
            .last()
            .unwrap()
            .detail
            .contains("lists the order REVOKED"),
        "{events:#?}"
    );
    assert!(
        printed.contains(&format!("marked {}", payment.out_trade_no)),
        "{printed}"
    );
    // A re-run finds the mark already recorded and writes nothing.
    let printed = reconcile_cli(&world, day).await;
    assert!(!printed.contains("marked "), "{printed}");
    assert_eq!(
        store.payment_events(&payment.id).await.unwrap().len(),
        events.len()
    );
}

/// Beijing time `h:m:s` on `date`, in UTC.
fn beijing_time(date: NaiveDate, h: u32, m: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
    date.and_hms_opt(h, m, s)
        .and_then(|time| time.and_local_timezone(beijing()).single())
        .expect("a time")
        .to_utc()
}

/// A password payment created at 23:59:50 on `day` by the simulator's clock, whose customer
/// confirms at 00:00:05 on the next day; returns it paid.
async fn pay_across_midnight(world: &World, day: NaiveDate) -> paycode_api::Payment {
    world.sim.advance(
        (beijing_time(day, 23, 59, 50) - world.sim.now())
            .to_std()
            .expect("the simulator is before 23:59:50"),
    );
    let payment = world.pay(Behaviour::PasswordWaits).await;
    world
        .cashier
        .wait_for(&payment, PaymentState::WaitingForCustomer)
        .await;
    let next_day = day.succ_opt().unwrap();
    if let Ok(ahead) = (beijing_time(next_day, 0, 0, 5) - world.sim.now()).to_std() {
        world.sim.advance(ahead);
    }
    world.sim.confirm_password(&payment.out_trade_no).unwrap();
    world.cashier.wait_for(&payment, PaymentState::Paid).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_across_midnight_is_dated_by_wechats_time_and_matched_on_the_next_days_bill() {
    // Arrange: at the simulator, a payment created at 23:59:50 whose customer confirms at
    // 00:00:05 (Beijing): WeChat dates it on the next day, and so does the proxy's record,
    // by the `time_end` of the verified SUCCESS reply, whatever the proxy's own clock says.
    // Nothing edits the record.
    let world = World::start().await;
    let day = sim_today(&world);
    let next_day = day.succ_opt().unwrap();
    let paid = pay_across_midnight(&world, day).await;
    let store = world.store.as_ref();
    let record = store.existing_payment(&paid.id).await.unwrap();
    let wechat_paid_at = record.wechat_paid_at.expect("WeChat's time_end is stored");
    let confirmed = Millis::from_datetime(beijing_time(next_day, 0, 0, 5));
    assert!(
        wechat_paid_at >= Millis(confirmed.0 - 1_000)
            && wechat_paid_at < confirmed.plus(Duration::from_secs(60)),
        "time_end {} is the confirmation at 00:00:05",
        wechat_paid_at.to_rfc3339()
    );
    make_bill_ready(&world, next_day);

    // Act
    reconcile_cli(&world, day).await;
    let printed = reconcile_cli(&world, next_day).await;

    // Assert: the first day shows nothing missing and carries nothing; the next day's bill
    // matches it.
    let first = stored_report(&world, day).await;
    assert!(first.mismatches.is_empty(), "{first:#?}");
    assert!(first.carried_to_next_day.payments.is_empty(), "{first:#?}");
    assert_eq!(first.matched_payments, 0, "{first:#?}");
    let second = stored_report(&world, next_day).await;
    assert!(second.mismatches.is_empty(), "{printed}");
    assert_eq!(second.matched_payments, 1, "{printed}");
    assert!(second.carried_to_next_day.payments.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_without_wechats_time_is_carried_over_midnight_and_matched_on_the_next_days_bill()
{
    // Arrange: the same payment across midnight, but its record has no WeChat time (paid
    // before migration 0013, or a reply without a readable `time_end`) and the proxy learnt
    // of the success at 23:59:59 by its own clock, 6 s before WeChat's: the case the
    // carry-over exists for (docs/books.md §2).
    let world = World::start().await;
    let day = sim_today(&world);
    let next_day = day.succ_opt().unwrap();
    let paid = pay_across_midnight(&world, day).await;
    let store = world.store.as_ref();
    let mut record = store.existing_payment(&paid.id).await.unwrap();
    record.wechat_paid_at = None;
    record.settled_at = Some(Millis::from_datetime(beijing_time(day, 23, 59, 59)));
    store
        .update_payment(
            &record,
            "test: no WeChat time; the proxy's clock 6 s behind",
        )
        .await
        .unwrap();
    make_bill_ready(&world, next_day);

    // Act
    reconcile_cli(&world, day).await;
    let printed = reconcile_cli(&world, next_day).await;

    // Assert: not a mismatch on either day; carried from the first to the second, and
    // matched there.
    let first = stored_report(&world, day).await;
    assert!(first.mismatches.is_empty(), "{first:#?}");
    assert_eq!(first.carried_to_next_day.payments.len(), 1);
    assert_eq!(
        first.carried_to_next_day.payments[0].out_trade_no,
        paid.out_trade_no
    );
    let second = stored_report(&world, next_day).await;
    assert!(second.mismatches.is_empty(), "{printed}");
    assert_eq!(second.matched_payments, 1, "{printed}");
    assert!(second.carried_to_next_day.payments.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_fails_is_an_error_and_never_replaces_a_reconciled_day() {
    // Arrange: the day is reconciled once; then WeChat's bill download fails.
    let world = World::start().await;
    world.pay_and_settle(Behaviour::PasswordFree).await;
    let day = sim_today(&world);
    make_bill_ready(&world, day);
    reconcile_cli(&world, day).await;
    let reconciled = world
        .store
        .books_day(day, &mch_id(&world))
        .await
        .unwrap()
        .unwrap();
    world.sim.inject_fault(
        wxpay::codes::Api::DownloadBill,
        wxpay::sim::Fault::Html5xx { status: 503 },
        100,
    );

    // Act
    let mut out = Vec::new();
    let result = reconcile::run(
        ReconcileArgs {
            date: day,
            account: Some("default".into()),
        },
        &world.config,
        &mut out,
    )
    .await;

    // Assert: the command fails, says so, and the stored day is untouched.
    let printed = String::from_utf8(out).unwrap();
    assert!(result.is_err(), "{printed}");
    assert!(printed.contains("FAILED"), "{printed}");
    assert!(
        printed.contains("caused by") && printed.contains("503"),
        "the failure says why: {printed}"
    );
    let after = world
        .store
        .books_day(day, &mch_id(&world))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, reconciled);
    let unknown = reconcile::run(
        ReconcileArgs {
            date: day,
            account: Some("nobody".into()),
        },
        &world.config,
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(unknown.to_string().contains("nobody"), "{unknown}");
}
