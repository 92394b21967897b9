//! The store conformance suite: every promise of the `Store` trait, checked on both
//! implementations. Each test is an `async fn(Backend)` listed in [`conformance!`] (`main.rs`), which runs
//! it as `store::sqlite::NAME` (a fresh SQLite file) and `store::postgres::NAME` (a fresh
//! database on the PostgreSQL server at `PAYCODE_TEST_DATABASE_URL`; without it the
//! PostgreSQL half prints a notice and passes, unless `PAYCODE_REQUIRE_POSTGRES=1`, which
//! `scripts/test` sets, makes it fail). A few tests at the end concern one implementation.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use paycode_api::payments::RefundState;
use paycode_api::{Fen, PaymentState};
use paycode_proxy::config::StoreConfig;
use paycode_proxy::engine::machine::{Action, CloseState};
use paycode_proxy::store::records::auth_code_fingerprint;
use paycode_proxy::store::{
    self, ClaimRequest, HeldLeases, InsertOutcome, LeaseTerms, MerchantIds, Millis, RefundRecord,
    SqliteStore, Store, StoreError, StoreRecord,
};

use crate::helpers::{
    Backend, TestDatabase, attempt, config_in, day, new_store, payment, stored_payment,
};

conformance!(
    inserting_the_same_attempt_twice_returns_the_stored_payment,
    racing_inserts_of_one_attempt_store_one_payment,
    reusing_an_attempt_for_a_different_payment_is_a_conflict,
    once_the_code_is_wiped_a_replay_is_matched_by_its_fingerprint,
    a_second_payment_with_the_same_out_trade_no_is_refused,
    updates_bump_the_version_and_write_an_event_in_the_same_transaction,
    an_update_from_a_stale_copy_is_refused_and_changes_nothing,
    racing_updates_from_one_version_let_exactly_one_win,
    the_day_list_is_newest_first_and_filters_by_terminal,
    unsettled_payments_are_everything_the_engine_must_resume,
    settled_payments_owing_a_close_are_resumed_too,
    payments_are_counted_by_state,
    queued_refunds_count_against_the_cap_and_are_resumed,
    payments_survive_reopening_the_store,
    migrating_applies_every_migration_once,
    a_database_migrated_by_a_newer_binary_is_refused_in_words,
    refunds_are_idempotent_and_capped_at_the_payment_amount,
    a_refund_attempt_reused_for_another_payment_is_a_conflict,
    the_day_refunds_follow_the_day_list_filters,
    racing_refunds_for_the_last_fen_let_exactly_one_through,
    racing_replays_of_one_refund_store_it_once,
    refund_updates_are_versioned,
    terminals_are_added_found_listed_and_revoked,
    a_pairing_code_works_once_before_it_expires_and_replaces_the_token,
    racing_redemptions_of_one_pairing_code_let_exactly_one_through,
    stores_are_added_found_listed_and_disabled,
    the_day_lists_and_terminals_belong_to_one_store,
    adopting_unbound_rows_fills_in_the_merchant_fields_once,
    racing_claims_never_hand_a_row_to_two_owners,
    an_expired_lease_is_claimed_by_another_owner_and_fences_the_old_one,
    a_payment_inserted_leased_is_not_claimed_by_another_owner,
    renewal_extends_only_the_owners_current_leases_and_reports_versions,
    released_leases_are_claimed_at_once,
    lease_times_come_from_the_store_clock,
    claims_take_only_due_unfinished_work,
    refund_writes_are_fenced_by_their_lease,
);

fn refund(n: u32, payment_id: &str, amount: u64) -> RefundRecord {
    let mut of = payment(0, amount);
    of.id = payment_id.to_owned();
    RefundRecord::new_submitting(
        format!("ref_{n}"),
        &of,
        attempt(1000 + n),
        wxpay::messages::OutRefundNo::new(format!("RF{n:08}")).unwrap(),
        Fen(amount),
        Some("退货".to_owned()),
        Millis(1_709_340_100_000 + i64::from(n)),
    )
}

async fn inserting_the_same_attempt_twice_returns_the_stored_payment(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let first = payment(1, 1230);

    // Act
    let inserted = store.insert_payment(&first).await.unwrap();
    let again = store.insert_payment(&first).await.unwrap();

    // Assert
    assert_eq!(inserted, InsertOutcome::Inserted(first.clone()));
    assert_eq!(again, InsertOutcome::Existing(first.clone()));
    assert_eq!(
        store.get_payment("pay_1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store
            .get_payment_by_attempt(first.attempt_id.as_str())
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(store.payment_events("pay_1").await.unwrap().len(), 1);
    assert_eq!(store.get_payment("nope").await.unwrap(), None);
}

async fn racing_inserts_of_one_attempt_store_one_payment(backend: Backend) {
    // Every racer but one must be answered with the stored payment: not with an error about
    // the order number, which the racers share too.
    let (store, _database) = new_store(&backend).await;
    warm_up(&store).await;
    for n in 1..=20 {
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.insert_payment(&payment(n, 100)).await })
            })
            .collect();
        let mut inserted = 0;
        for task in tasks {
            if task.await.unwrap().unwrap().was_inserted() {
                inserted += 1;
            }
        }
        assert_eq!(inserted, 1, "payment {n}");
        let id = format!("pay_{n}");
        assert_eq!(store.payment_events(&id).await.unwrap().len(), 1);
    }
}

async fn reusing_an_attempt_for_a_different_payment_is_a_conflict(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let original = stored_payment(store.as_ref(), 1, 1230).await;
    let mut other_amount = original.clone();
    other_amount.amount_fen = Fen(1231);
    let mut other_code = original.clone();
    other_code.auth_code = Some(paycode_api::AuthCode::parse("134567890123450000").unwrap());
    other_code.auth_code_last4 = "0000".to_owned();
    let mut other_terminal = original.clone();
    other_terminal.terminal_id = "t2".to_owned();

    // Act & Assert
    for (request, expected) in [
        (other_amount, "amount_fen"),
        (other_code, "auth_code"),
        (other_terminal, "terminal_id"),
    ] {
        match store.insert_payment(&request).await {
            Err(StoreError::Conflict {
                entity: "payment",
                differs,
                ..
            }) => {
                assert_eq!(differs, expected);
            }
            other => panic!("expected a conflict on {expected}, got {other:?}"),
        }
    }
    assert_eq!(store.get_payment("pay_1").await.unwrap(), Some(original));
}

async fn once_the_code_is_wiped_a_replay_is_matched_by_its_fingerprint(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let mut stored = stored_payment(store.as_ref(), 1, 1230).await;
    stored.auth_code = None;
    store
        .update_payment(&stored, "micropay answered; code wiped")
        .await
        .unwrap();

    // Act
    let replay = store.insert_payment(&payment(1, 1230)).await.unwrap();
    // Another code with the same last four digits: only the fingerprint tells them apart.
    let other_code = paycode_api::AuthCode::parse("134567899999991234").unwrap();
    let mut different = payment(1, 1230);
    different.auth_code_fingerprint = Some(auth_code_fingerprint(&other_code));
    different.auth_code = Some(other_code);
    let conflict = store.insert_payment(&different).await;

    // Assert
    let InsertOutcome::Existing(existing) = replay else {
        panic!("expected the stored payment, got {replay:?}");
    };
    assert_eq!(existing.auth_code, None);
    assert_eq!(existing.auth_code_last4, different.auth_code_last4);
    assert!(matches!(
        conflict,
        Err(StoreError::Conflict {
            differs: "auth_code",
            ..
        })
    ));
}

async fn a_second_payment_with_the_same_out_trade_no_is_refused(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    let mut clash = payment(2, 100);
    clash.out_trade_no = payment(1, 100).out_trade_no;
    assert!(matches!(
        store.insert_payment(&clash).await,
        Err(StoreError::AlreadyExists {
            entity: "payment",
            ..
        })
    ));
}

async fn updates_bump_the_version_and_write_an_event_in_the_same_transaction(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let created = stored_payment(store.as_ref(), 1, 1230).await;
    let mut waiting = created.clone();
    waiting.state = PaymentState::WaitingForCustomer;
    waiting.maybe_sent = true;
    waiting.micropay_attempts = 1;
    waiting.submitted_at = Some(Millis(1_709_340_000_500));
    waiting.next_action_at = Some(Millis(1_709_340_003_500));
    // Immutable fields are ignored by updates.
    waiting.amount_fen = Fen(1);

    // Act
    let stored = store
        .update_payment(&waiting, "micropay: USERPAYING")
        .await
        .unwrap();
    let mut paid = stored.clone();
    paid.state = PaymentState::Paid;
    paid.seen_paid = true;
    paid.transaction_id = Some("4200000001202403020000000001".to_owned());
    paid.auth_code = None;
    paid.settled_at = Some(Millis(1_709_340_004_000));
    paid.wechat_paid_at = Some(Millis(1_709_340_003_000));
    let settled = store
        .update_payment(&paid, "orderquery: SUCCESS")
        .await
        .unwrap();

    // Assert
    assert_eq!(stored.version, 2);
    assert_eq!(stored.amount_fen, Fen(1230));
    assert!(stored.maybe_sent);
    assert_eq!(stored.micropay_attempts, 1);
    assert_eq!(stored.next_action_at, Some(Millis(1_709_340_003_500)));
    assert!(stored.updated_at >= created.updated_at);
    assert_eq!(settled.version, 3);
    assert_eq!(settled.state, PaymentState::Paid);
    assert_eq!(settled.auth_code, None);
    assert_eq!(settled.wechat_paid_at, Some(Millis(1_709_340_003_000)));
    assert_eq!(
        store.get_payment("pay_1").await.unwrap(),
        Some(settled.clone())
    );
    let events = store.payment_events("pay_1").await.unwrap();
    let trail: Vec<_> = events
        .iter()
        .map(|event| (event.from_state, event.to_state, event.detail.as_str()))
        .collect();
    assert_eq!(
        trail,
        vec![
            (None, PaymentState::Submitting, "created"),
            (
                Some(PaymentState::Submitting),
                PaymentState::WaitingForCustomer,
                "micropay: USERPAYING"
            ),
            (
                Some(PaymentState::WaitingForCustomer),
                PaymentState::Paid,
                "orderquery: SUCCESS"
            ),
        ]
    );
    assert_eq!(events[2].at, settled.updated_at);
}

async fn an_update_from_a_stale_copy_is_refused_and_changes_nothing(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let original = stored_payment(store.as_ref(), 1, 100).await;
    let mut first = original.clone();
    first.state = PaymentState::Confirming;
    let current = store.update_payment(&first, "timeout").await.unwrap();
    let mut stale = original.clone();
    stale.state = PaymentState::Failed;

    // Act
    let result = store.update_payment(&stale, "late writer").await;

    // Assert
    assert!(
        matches!(
            result,
            Err(StoreError::StaleVersion {
                entity: "payment",
                expected: 1,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(store.get_payment("pay_1").await.unwrap(), Some(current));
    assert_eq!(store.payment_events("pay_1").await.unwrap().len(), 2);
    let mut missing = original;
    missing.id = "nope".to_owned();
    assert!(matches!(
        store.update_payment(&missing, "x").await,
        Err(StoreError::NotFound {
            entity: "payment",
            ..
        })
    ));
}

async fn racing_updates_from_one_version_let_exactly_one_win(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    let original = stored_payment(store.as_ref(), 1, 100).await;
    warm_up(&store).await;
    let tasks: Vec<_> = [
        PaymentState::Paid,
        PaymentState::Cancelling,
        PaymentState::Confirming,
    ]
    .into_iter()
    .cycle()
    .take(RACERS)
    .map(|state| {
        let store = Arc::clone(&store);
        let mut changed = original.clone();
        changed.state = state;
        tokio::spawn(async move { store.update_payment(&changed, "race").await })
    })
    .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(stored) => {
                winners += 1;
                assert_eq!(stored.version, 2);
            }
            Err(StoreError::StaleVersion { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    // The audit trail has the creation and the one winning change.
    assert_eq!(store.payment_events("pay_1").await.unwrap().len(), 2);
}

/// How many tasks race in the racing tests.
const RACERS: usize = 8;

/// Opens [`RACERS`] pooled connections at once and returns them to the pool, so that racing
/// tasks start together instead of one after another while connections are opened.
async fn warm_up(store: &Arc<dyn Store>) {
    let mut pings = tokio::task::JoinSet::new();
    for _ in 0..RACERS {
        let store = Arc::clone(store);
        pings.spawn(async move { store.ping().await });
    }
    while let Some(ping) = pings.join_next().await {
        ping.unwrap().unwrap();
    }
}

/// `pay_1` and `pay_3` of terminal t1 and `pay_2` of t2 today, `pay_4` of t1 tomorrow.
async fn a_day_of_payments(store: &dyn Store) {
    for n in 1..=4 {
        let mut record = payment(n, 100);
        if n == 2 {
            record.terminal_id = "t2".to_owned();
        }
        if n == 4 {
            record.business_day = day().succ_opt().unwrap();
        }
        store.insert_payment(&record).await.unwrap();
    }
}

async fn the_day_list_is_newest_first_and_filters_by_terminal(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    a_day_of_payments(store.as_ref()).await;

    // Act
    let all = store.list_payments(day(), "default", None).await.unwrap();
    let t1 = store
        .list_payments(day(), "default", Some("t1"))
        .await
        .unwrap();

    // Assert
    let ids = |list: &[paycode_proxy::store::PaymentRecord]| {
        list.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&all), ["pay_3", "pay_2", "pay_1"]);
    assert_eq!(ids(&t1), ["pay_3", "pay_1"]);
    assert_eq!(all[0].business_day, day());
}

async fn unsettled_payments_are_everything_the_engine_must_resume(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    for (n, state) in (1..).zip(PaymentState::ALL) {
        let mut record = stored_payment(store.as_ref(), n, 100).await;
        if state != PaymentState::Submitting {
            record.state = state;
            store.update_payment(&record, "test").await.unwrap();
        }
    }

    // Act
    let unsettled = store.unsettled_payments().await.unwrap();

    // Assert
    let states: Vec<_> = unsettled.iter().map(|p| p.state).collect();
    assert_eq!(
        states,
        [
            PaymentState::Submitting,
            PaymentState::WaitingForCustomer,
            PaymentState::Confirming,
            PaymentState::Cancelling,
            PaymentState::NeedsAttention,
        ]
    );
}

async fn settled_payments_owing_a_close_are_resumed_too(backend: Backend) {
    // Arrange: a failed payment whose order is still owed a close, one already closed, and
    // one that owes nothing.
    let (store, _database) = new_store(&backend).await;
    let mut owing = stored_payment(store.as_ref(), 1, 100).await;
    owing.state = PaymentState::Failed;
    owing.close_state = Some(CloseState::Pending);
    owing.next_action = Some(Action::CloseReverse);
    owing.next_action_at = Some(Millis(5_000));
    let owing = store
        .update_payment(&owing, "failed; closing")
        .await
        .unwrap();
    let mut closed = stored_payment(store.as_ref(), 2, 100).await;
    closed.state = PaymentState::Failed;
    closed.close_state = Some(CloseState::Closed);
    store
        .update_payment(&closed, "failed; closed")
        .await
        .unwrap();
    let mut nothing = stored_payment(store.as_ref(), 3, 100).await;
    nothing.state = PaymentState::Failed;
    store.update_payment(&nothing, "failed").await.unwrap();

    // Act
    let to_close = store.payments_to_close().await.unwrap();

    // Assert: only the pending close, read back with its action, and not as unsettled.
    assert_eq!(to_close, vec![owing.clone()]);
    assert_eq!(to_close[0].close_state, Some(CloseState::Pending));
    assert_eq!(to_close[0].next_action, Some(Action::CloseReverse));
    assert!(store.unsettled_payments().await.unwrap().is_empty());
}

async fn queued_refunds_count_against_the_cap_and_are_resumed(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    let mut queued = refund(1, "pay_1", 70);
    queued.state = RefundState::Queued;
    queued.next_action_at = Some(Millis(60_000));
    store.insert_refund(&queued).await.unwrap();
    let mut applied = store.get_refund("ref_1").await.unwrap().unwrap();
    applied.applied_at = Some(Millis(61_000));
    applied.wechat_refunded_at = Some(Millis(62_000));
    let applied = store.update_refund(&applied).await.unwrap();

    assert!(matches!(
        store.insert_refund(&refund(2, "pay_1", 31)).await,
        Err(StoreError::RefundExceedsPayment {
            already_refunded: Fen(70),
            ..
        })
    ));
    assert_eq!(
        store.unfinished_refunds().await.unwrap(),
        vec![applied.clone()]
    );
    assert_eq!(applied.state, RefundState::Queued);
    assert_eq!(applied.applied_at, Some(Millis(61_000)));
    assert_eq!(applied.wechat_refunded_at, Some(Millis(62_000)));
}

async fn payments_survive_reopening_the_store(backend: Backend) {
    let database = TestDatabase::new(&backend).await;
    {
        let store = database.open().await;
        store.insert_payment(&payment(1, 100)).await.unwrap();
        store.close().await;
        assert!(store.ping().await.unwrap_err().is_transient());
    }
    let reopened = database.open().await;
    assert_eq!(
        reopened.unsettled_payments().await.unwrap(),
        vec![payment(1, 100)]
    );
}

async fn refunds_are_idempotent_and_capped_at_the_payment_amount(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    let first = refund(1, "pay_1", 60);

    // Act & Assert: a refund and its replay.
    assert_eq!(
        store.insert_refund(&first).await.unwrap(),
        InsertOutcome::Inserted(first.clone())
    );
    assert_eq!(
        store.insert_refund(&first).await.unwrap(),
        InsertOutcome::Existing(first.clone())
    );
    // The same key with another amount.
    let mut changed = first.clone();
    changed.amount_fen = Fen(61);
    assert!(matches!(
        store.insert_refund(&changed).await,
        Err(StoreError::Conflict {
            entity: "refund",
            differs: "amount_fen",
            ..
        })
    ));
    // More than what is left.
    match store.insert_refund(&refund(2, "pay_1", 41)).await {
        Err(StoreError::RefundExceedsPayment {
            payment_amount,
            already_refunded,
            requested,
        }) => {
            assert_eq!(
                (payment_amount, already_refunded, requested),
                (Fen(100), Fen(60), Fen(41))
            );
        }
        other => panic!("expected the cap, got {other:?}"),
    }
    // A failed refund no longer counts.
    let mut failed = first.clone();
    failed.state = RefundState::Failed;
    failed.failure_code = Some("NOTENOUGH".to_owned());
    let failed = store.update_refund(&failed).await.unwrap();
    assert_eq!(failed.version, 2);
    store.insert_refund(&refund(3, "pay_1", 100)).await.unwrap();
    // A refund of an unknown payment.
    assert!(matches!(
        store.insert_refund(&refund(4, "nope", 1)).await,
        Err(StoreError::NotFound {
            entity: "payment",
            ..
        })
    ));
    let refunds = store.refunds_for_payment("pay_1").await.unwrap();
    assert_eq!(
        refunds.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["ref_1", "ref_3"]
    );
    let unfinished = store.unfinished_refunds().await.unwrap();
    assert_eq!(
        unfinished.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["ref_3"]
    );
}

async fn the_day_refunds_follow_the_day_list_filters(backend: Backend) {
    // Arrange: two refunds of each payment.
    let (store, _database) = new_store(&backend).await;
    a_day_of_payments(store.as_ref()).await;
    for n in 1..=4 {
        for k in 0..2 {
            let refund = refund(n * 10 + k, &format!("pay_{n}"), 10);
            store.insert_refund(&refund).await.unwrap();
        }
    }

    // Act
    let all = store.refunds_for_day(day(), "default", None).await.unwrap();
    let t2 = store
        .refunds_for_day(day(), "default", Some("t2"))
        .await
        .unwrap();
    let nobody = store
        .refunds_for_day(day(), "default", Some("t9"))
        .await
        .unwrap();

    // Assert
    let ids = |list: &[RefundRecord]| list.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&all),
        ["ref_10", "ref_11", "ref_20", "ref_21", "ref_30", "ref_31"]
    );
    assert_eq!(ids(&t2), ["ref_20", "ref_21"]);
    assert!(nobody.is_empty());
}

async fn racing_refunds_for_the_last_fen_let_exactly_one_through(backend: Backend) {
    for round in 0..5u32 {
        // Arrange
        let (store, _database) = new_store(&backend).await;
        stored_payment(store.as_ref(), 1, 100).await;
        store
            .insert_refund(&refund(100, "pay_1", 99))
            .await
            .unwrap();
        warm_up(&store).await;

        // Act
        let tasks: Vec<_> = (1..=RACERS as u32)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.insert_refund(&refund(n, "pay_1", 1)).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }

        // Assert
        let inserted = results
            .iter()
            .filter(|r| matches!(r, Ok(o) if o.was_inserted()))
            .count();
        let capped = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::RefundExceedsPayment { .. })))
            .count();
        assert_eq!(
            (inserted, capped),
            (1, RACERS - 1),
            "round {round}: {results:?}"
        );
        let total: u64 = store
            .refunds_for_payment("pay_1")
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount_fen.get())
            .sum();
        assert_eq!(total, 100);
    }
}

async fn refund_updates_are_versioned(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    let original = store
        .insert_refund(&refund(1, "pay_1", 10))
        .await
        .unwrap()
        .into_record();
    let mut processing = original.clone();
    processing.state = RefundState::Processing;
    processing.wechat_refund_id = Some("50000000382019052709732678859".to_owned());
    processing.attempts = 1;
    let stored = store.update_refund(&processing).await.unwrap();
    assert_eq!(
        (stored.version, stored.state, stored.attempts),
        (2, RefundState::Processing, 1)
    );
    assert!(matches!(
        store.update_refund(&original).await,
        Err(StoreError::StaleVersion {
            entity: "refund",
            ..
        })
    ));
}

async fn a_pairing_code_works_once_before_it_expires_and_replaces_the_token(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let terminal = store
        .add_terminal("tablet-1", "old-token", "default")
        .await
        .unwrap();
    store
        .add_terminal("gone", "gone-token", "default")
        .await
        .unwrap();
    store.revoke_terminal("gone").await.unwrap();
    let now = Millis(1_000_000);
    let later = Millis(1_300_000);

    // Act
    let issued = store
        .add_pairing_code("tablet-1", "code-1", now, later)
        .await
        .unwrap();
    let replaced = store
        .add_pairing_code("tablet-1", "code-2", now, later)
        .await
        .unwrap();
    let first_code = store
        .redeem_pairing_code("code-1", now, "new-token-1")
        .await
        .unwrap();
    let second_code = store
        .redeem_pairing_code("code-2", now, "new-token-2")
        .await
        .unwrap();
    let second_code_again = store
        .redeem_pairing_code("code-2", now, "new-token-3")
        .await
        .unwrap();
    store
        .add_pairing_code("tablet-1", "code-3", now, later)
        .await
        .unwrap();
    let expired = store
        .redeem_pairing_code("code-3", later, "new-token-4")
        .await
        .unwrap();
    let for_revoked = store.add_pairing_code("gone", "code-4", now, later).await;

    // Assert
    assert_eq!(issued.id, terminal.id);
    assert_eq!(replaced.id, terminal.id);
    assert_eq!(first_code, None, "a newer code replaces the older one");
    assert_eq!(
        second_code.map(|paired| paired.id),
        Some(terminal.id.clone())
    );
    assert_eq!(second_code_again, None, "a code works once");
    assert_eq!(expired, None, "a code stops working when it expires");
    assert!(matches!(
        for_revoked,
        Err(StoreError::NotFound {
            entity: "terminal",
            ..
        })
    ));
    assert_eq!(
        store.terminal_by_token_hash("old-token").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .terminal_by_token_hash("new-token-2")
            .await
            .unwrap()
            .map(|paired| paired.id),
        Some(terminal.id)
    );
}

async fn racing_redemptions_of_one_pairing_code_let_exactly_one_through(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    store
        .add_terminal("tablet-1", "old-token", "default")
        .await
        .unwrap();
    let now = Millis(1_000_000);
    store
        .add_pairing_code("tablet-1", "code-1", now, Millis(1_300_000))
        .await
        .unwrap();

    warm_up(&store).await;

    // Act
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .redeem_pairing_code("code-1", now, &format!("new-token-{n}"))
                    .await
            })
        })
        .collect();
    let mut paired = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            paired += 1;
        }
    }

    // Assert
    assert_eq!(paired, 1, "exactly one exchange gets the terminal");
}

async fn terminals_are_added_found_listed_and_revoked(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;

    // Act
    let first = store
        .add_terminal("counter-1", "hash-1", "default")
        .await
        .unwrap();
    let second = store
        .add_terminal("counter-2", "hash-2", "default")
        .await
        .unwrap();
    let duplicate_name = store.add_terminal("counter-1", "hash-3", "default").await;
    let duplicate_hash = store.add_terminal("counter-3", "hash-1", "default").await;
    let revoked = store.revoke_terminal("counter-2").await.unwrap();
    let revoked_again = store.revoke_terminal("counter-2").await.unwrap();

    // Assert
    assert!(matches!(
        duplicate_name,
        Err(StoreError::AlreadyExists {
            entity: "terminal",
            ..
        })
    ));
    assert!(matches!(
        duplicate_hash,
        Err(StoreError::AlreadyExists {
            entity: "terminal",
            ..
        })
    ));
    assert_eq!(
        store.terminal_by_token_hash("hash-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.terminal_by_token_hash("hash-9").await.unwrap(), None);
    assert!(revoked.revoked_at.is_some());
    assert_eq!(revoked_again.revoked_at, revoked.revoked_at);
    assert_eq!(
        store
            .terminal_by_token_hash("hash-2")
            .await
            .unwrap()
            .map(|t| t.revoked_at),
        Some(revoked.revoked_at)
    );
    let names: Vec<_> = store
        .list_terminals()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["counter-1", "counter-2"]);
    assert_ne!(first.id, second.id);
    assert!(matches!(
        store.revoke_terminal("nobody").await,
        Err(StoreError::NotFound {
            entity: "terminal",
            ..
        })
    ));
}

async fn payments_are_counted_by_state(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    assert!(store.count_payments_by_state().await.unwrap().is_empty());
    for n in 1..=3 {
        let mut record = stored_payment(store.as_ref(), n, 100).await;
        if n > 1 {
            record.state = PaymentState::Paid;
            store.update_payment(&record, "paid").await.unwrap();
        }
    }
    let mut counts = store.count_payments_by_state().await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        [(PaymentState::Paid, 2), (PaymentState::Submitting, 1)]
    );
}

async fn migrating_applies_every_migration_once(backend: Backend) {
    let database = TestDatabase::new(&backend).await;
    let first = store::migrate(&database.config).await.unwrap();
    let again = store::migrate(&database.config).await.unwrap();
    assert_eq!(first, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert!(again.is_empty(), "{again:?}");
    // A migrated database opens without migrating again, and works.
    let store = database.open().await;
    stored_payment(store.as_ref(), 1, 100).await;
}

async fn a_database_migrated_by_a_newer_binary_is_refused_in_words(backend: Backend) {
    let database = TestDatabase::new(&backend).await;
    store::migrate(&database.config).await.unwrap();
    // What a newer binary's migration 99 leaves behind.
    database
        .execute(
            "INSERT INTO _sqlx_migrations \
             (version, description, success, checksum, execution_time) \
             SELECT 99, 'from a newer binary', TRUE, checksum, 1 \
             FROM _sqlx_migrations WHERE version = 1",
        )
        .await;

    let opened = store::connect(&database.config).await.err();
    let migrated = store::migrate(&database.config).await.err();

    for error in [
        opened.expect("connect refuses"),
        migrated.expect("migrate refuses"),
    ] {
        assert!(
            matches!(error, StoreError::NewerSchema { version: 99 }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("migrated by a newer paycode-proxy")
                && message.contains("migration 99 is unknown to this binary")
                && message.contains("upgrade this binary")
                && message.contains("never run an older paycode-proxy"),
            "{message}"
        );
    }
}

async fn a_refund_attempt_reused_for_another_payment_is_a_conflict(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    stored_payment(store.as_ref(), 2, 100).await;
    let first = refund(1, "pay_1", 10);
    store.insert_refund(&first).await.unwrap();
    let mut elsewhere = first.clone();
    elsewhere.payment_id = "pay_2".to_owned();
    assert!(matches!(
        store.insert_refund(&elsewhere).await,
        Err(StoreError::Conflict {
            entity: "refund",
            differs: "payment_id",
            ..
        })
    ));
    assert!(store.refunds_for_payment("pay_2").await.unwrap().is_empty());
    assert_eq!(store.get_refund("ref_1").await.unwrap(), Some(first));
    assert_eq!(store.get_refund("nope").await.unwrap(), None);
}

async fn racing_replays_of_one_refund_store_it_once(backend: Backend) {
    // Each replay must be answered with the stored refund, never with the cap (which the
    // first one's amount, counted twice, would exceed).
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    warm_up(&store).await;
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.insert_refund(&refund(1, "pay_1", 60)).await })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().was_inserted() {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    assert_eq!(store.refunds_for_payment("pay_1").await.unwrap().len(), 1);
}

// What concerns one implementation only.

#[tokio::test]
async fn the_database_file_is_created_in_the_data_directory() {
    let directory = tempfile::tempdir().unwrap();
    let config = config_in(directory.path());
    let _store = SqliteStore::connect(&config.store).await.unwrap();
    assert!(config.store.data_dir.join("paycode.sqlite").is_file());
    // WAL mode keeps a write-ahead log next to the database while it is open.
    assert!(config.store.data_dir.join("paycode.sqlite-wal").is_file());
}

#[tokio::test]
async fn a_database_url_overrides_the_default_file() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("elsewhere.sqlite");
    let config = StoreConfig {
        data_dir: directory.path().join("data"),
        database_url: Some(format!("sqlite://{}", file.display())),
        pool_size: 2,
    };
    let store = SqliteStore::connect(&config).await.unwrap();
    store.ping().await.unwrap();
    assert!(file.is_file());
}

#[tokio::test]
async fn an_unreachable_postgresql_server_is_a_transient_error() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let directory = tempfile::tempdir().unwrap();
    let mut config = config_in(directory.path()).store;
    config.database_url = Some(format!("postgres://paycode@127.0.0.1:{port}/paycode"));
    let error = match store::connect(&config).await {
        Ok(_) => panic!("connected to a port nobody listens on"),
        Err(error) => error,
    };
    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn the_migrate_command_says_what_it_applied() {
    let directory = tempfile::tempdir().unwrap();
    let config = config_in(directory.path());
    let mut first = Vec::new();
    let mut again = Vec::new();

    paycode_proxy::cli::migrate(&config, &mut first)
        .await
        .unwrap();
    paycode_proxy::cli::migrate(&config, &mut again)
        .await
        .unwrap();

    let database = config.store.describe();
    assert_eq!(
        String::from_utf8(first).unwrap(),
        format!("{database}: applied migrations 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13\n")
    );
    assert_eq!(
        String::from_utf8(again).unwrap(),
        format!("{database}: the schema was already up to date\n")
    );
}

#[tokio::test]
async fn a_terminated_postgresql_session_is_replaced_by_the_next_call() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let (store, database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;

    // An administrator (or a fail-over) ends every session of the store's database.
    let url = database.config.database_url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|ended| *ended));

    // The pool notices the dead connections and opens new ones.
    assert_eq!(
        store.get_payment("pay_1").await.unwrap().map(|p| p.id),
        Some("pay_1".to_owned())
    );
    stored_payment(store.as_ref(), 2, 100).await;
}

/// A store `name` of the account `default`, added at `created_at`.
fn shop(name: &str, created_at: i64) -> StoreRecord {
    StoreRecord {
        id: format!("id-{name}"),
        name: name.to_owned(),
        account: "default".to_owned(),
        sub_mch_id: None,
        sub_appid: None,
        address: Some("1 Main St".to_owned()),
        created_at: Millis(created_at),
        disabled_at: None,
    }
}

async fn stores_are_added_found_listed_and_disabled(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let east = shop("shop-east", i64::MAX - 1);
    let mut mall = shop("mall-1", i64::MAX);
    mall.sub_mch_id = Some("1900000109".to_owned());

    // Act
    let added = store.add_store(&east).await.unwrap();
    store.add_store(&mall).await.unwrap();
    let same_name = store.add_store(&shop("shop-east", 1)).await;
    let mut same_id = shop("shop-west", 1);
    same_id.id = east.id.clone();
    let same_id = store.add_store(&same_id).await;
    let disabled = store.disable_store("shop-east").await.unwrap();
    let disabled_again = store.disable_store("shop-east").await.unwrap();
    let unknown = store.disable_store("shop-north").await;

    // Assert
    assert_eq!(added, east);
    for refused in [same_name, same_id] {
        assert!(
            matches!(
                refused,
                Err(StoreError::AlreadyExists {
                    entity: "store",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    assert!(disabled.disabled_at.is_some());
    assert_eq!(disabled_again.disabled_at, disabled.disabled_at);
    assert!(matches!(
        unknown,
        Err(StoreError::NotFound {
            entity: "store",
            ..
        })
    ));
    assert_eq!(store.get_store(&east.id).await.unwrap(), Some(disabled));
    assert_eq!(store.get_store("id-shop-north").await.unwrap(), None);
    let listed = store.list_stores().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    // The migration's default store first: the others were added "later".
    assert_eq!(names, ["default", "shop-east", "mall-1"]);
    assert_eq!(listed[2], mall);
    assert_eq!(listed[0].account, "default");
    assert_eq!(listed[0].disabled_at, None);
}

async fn the_day_lists_and_terminals_belong_to_one_store(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let east = store.add_store(&shop("shop-east", 1)).await.unwrap();
    a_day_of_payments(store.as_ref()).await;
    let mut other = payment(5, 300);
    other.store_id = east.id.clone();
    other.merchant.sub_mch_id = Some("1900000109".to_owned());
    let other = store.insert_payment(&other).await.unwrap().into_record();
    store.insert_refund(&refund(1, "pay_1", 50)).await.unwrap();
    let east_refund = RefundRecord::new_submitting(
        "ref_east".to_owned(),
        &other,
        attempt(2000),
        wxpay::messages::OutRefundNo::new("RFEAST01").unwrap(),
        Fen(100),
        Some("damaged".to_owned()),
        Millis(1_709_340_100_000),
    );
    store.insert_refund(&east_refund).await.unwrap();

    // Act
    let default_day = store.list_payments(day(), "default", None).await.unwrap();
    let east_day = store.list_payments(day(), &east.id, None).await.unwrap();
    let east_t2 = store
        .list_payments(day(), &east.id, Some("t2"))
        .await
        .unwrap();
    let default_refunds = store.refunds_for_day(day(), "default", None).await.unwrap();
    let east_refunds = store.refunds_for_day(day(), &east.id, None).await.unwrap();
    let terminal = store
        .add_terminal("east-1", "hash-east", &east.id)
        .await
        .unwrap();

    // Assert
    let ids = |list: &[paycode_proxy::store::PaymentRecord]| {
        list.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&default_day), ["pay_3", "pay_2", "pay_1"]);
    assert_eq!(east_day, std::slice::from_ref(&other));
    assert_eq!(
        east_day[0].merchant.sub_mch_id.as_deref(),
        Some("1900000109")
    );
    assert!(east_t2.is_empty());
    let refund_ids = |list: &[RefundRecord]| list.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(refund_ids(&default_refunds), ["ref_1"]);
    assert_eq!(east_refunds, [east_refund]);
    assert_eq!(east_refunds[0].store_id, east.id);
    assert_eq!(east_refunds[0].merchant, other.merchant);
    assert_eq!(terminal.store_id, east.id);
    assert_eq!(
        store.terminal_by_token_hash("hash-east").await.unwrap(),
        Some(terminal)
    );
}

async fn adopting_unbound_rows_fills_in_the_merchant_fields_once(backend: Backend) {
    // Arrange: a payment and a refund as a database from before stores holds them, with no
    // merchant fields.
    let database = TestDatabase::new(&backend).await;
    let store = database.open().await;
    stored_payment(store.as_ref(), 1, 200).await;
    store.insert_refund(&refund(1, "pay_1", 50)).await.unwrap();
    for table in ["payments", "refunds"] {
        database
            .execute(&format!(
                "UPDATE {table} SET appid = NULL, mch_id = NULL, sub_appid = NULL, \
                 sub_mch_id = NULL"
            ))
            .await;
    }
    let unreadable = store.get_payment("pay_1").await;
    let default = store.get_store("default").await.unwrap().unwrap();
    let merchant = MerchantIds {
        appid: "wx2421b1c4370ec43b".to_owned(),
        mch_id: "10000100".to_owned(),
        sub_appid: None,
        sub_mch_id: Some("1900000109".to_owned()),
    };

    // Act
    let adopted = store.adopt_unbound_rows(&default, &merchant).await.unwrap();
    let adopted_again = store.adopt_unbound_rows(&default, &merchant).await.unwrap();

    // Assert
    assert!(
        matches!(
            unreadable,
            Err(StoreError::Corrupt {
                column: "payments.mch_id",
                ..
            })
        ),
        "{unreadable:?}"
    );
    assert_eq!((adopted, adopted_again), (2, 0));
    let payment = store.get_payment("pay_1").await.unwrap().unwrap();
    assert_eq!(payment.merchant, merchant);
    assert_eq!(payment.store_id, "default");
    let refunds = store.refunds_for_payment("pay_1").await.unwrap();
    assert_eq!(refunds[0].merchant, merchant);
    let default = store.get_store("default").await.unwrap().unwrap();
    assert_eq!(default.sub_mch_id.as_deref(), Some("1900000109"));
}

// Leases (docs/postgresql.md §4).

/// A lease of `duration` for `owner`.
fn terms(owner: &str, duration: Duration) -> LeaseTerms<'_> {
    LeaseTerms { owner, duration }
}

/// A claim of everything due by the far future, at most `limit` rows of each kind.
fn claim_all(owner: &str, duration: Duration, limit: u32) -> ClaimRequest<'_> {
    ClaimRequest {
        terms: terms(owner, duration),
        due_before: Millis(i64::MAX),
        limit,
        take_over: false,
    }
}

const LONG: Duration = Duration::from_secs(60);

async fn racing_claims_never_hand_a_row_to_two_owners(backend: Backend) {
    // Arrange: 20 unsettled payments, and 8 claimers that may take 5 each (room for 40).
    let (store, _database) = new_store(&backend).await;
    warm_up(&store).await;
    for n in 1..=20 {
        stored_payment(store.as_ref(), n, 100).await;
    }

    // Act
    let tasks: Vec<_> = (0..RACERS)
        .map(|claimer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let owner = format!("claimer-{claimer}");
                let (payments, _) = store.claim_due(claim_all(&owner, LONG, 5)).await.unwrap();
                (owner, payments)
            })
        })
        .collect();
    let mut claimed = HashSet::new();
    for task in tasks {
        let (owner, payments) = task.await.unwrap();
        for leased in payments {
            // Assert: nobody else got it, and it is recorded as this claimer's.
            assert!(
                claimed.insert(leased.record.id.clone()),
                "{} twice",
                leased.record.id
            );
            assert_eq!(leased.record.lease_owner.as_deref(), Some(owner.as_str()));
            assert_eq!(leased.record.lease_epoch, 1);
            let stored = store.existing_payment(&leased.record.id).await.unwrap();
            assert_eq!(stored.lease_owner, Some(owner.clone()));
        }
    }
    // A row skipped by every racer (locked by one that was claiming it) is still free; what
    // was claimed is not.
    let (rest, _) = store.claim_due(claim_all("late", LONG, 100)).await.unwrap();
    assert_eq!(claimed.len() + rest.len(), 20);
    assert!(
        rest.iter()
            .all(|leased| !claimed.contains(&leased.record.id))
    );
}

async fn an_expired_lease_is_claimed_by_another_owner_and_fences_the_old_one(backend: Backend) {
    // Arrange: A holds pay_1 under a lease that is over as soon as it is written.
    let (store, _database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    let (by_a, _) = store
        .claim_due(claim_all("a", Duration::ZERO, 10))
        .await
        .unwrap();
    assert_eq!(by_a.len(), 1);
    let a_copy = by_a[0].record.clone();

    // Act
    let (by_b, _) = store.claim_due(claim_all("b", LONG, 10)).await.unwrap();

    // Assert: B holds it at the next epoch; A's write is refused, B's goes through.
    assert_eq!(by_b.len(), 1);
    assert_eq!(by_b[0].record.lease_epoch, a_copy.lease_epoch + 1);
    assert_eq!(by_b[0].record.lease_owner.as_deref(), Some("b"));
    let mut late = a_copy.clone();
    late.state = PaymentState::Confirming;
    match store.update_payment(&late, "late write from a").await {
        Err(StoreError::LeaseLost {
            entity: "payment",
            expected,
            ..
        }) => assert_eq!(expected, a_copy.lease_epoch),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    let stored = store.existing_payment("pay_1").await.unwrap();
    assert_eq!(stored.state, PaymentState::Submitting);
    assert_eq!(stored.version, a_copy.version);
    assert_eq!(store.payment_events("pay_1").await.unwrap().len(), 1);
    let mut by_owner = by_b[0].record.clone();
    by_owner.state = PaymentState::Confirming;
    let saved = store.update_payment(&by_owner, "b decides").await.unwrap();
    assert_eq!(saved.state, PaymentState::Confirming);
    // Each event names the lease it was written under: the creation none, B's its epoch.
    let writers: Vec<(Option<String>, Option<u64>)> = store
        .payment_events("pay_1")
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.lease_owner, event.lease_epoch))
        .collect();
    assert_eq!(
        writers,
        [
            (None, Some(0)),
            (Some("b".to_owned()), Some(by_b[0].record.lease_epoch))
        ]
    );
    // B's unexpired lease is not taken by a third claimer, except by a take-over.
    let (by_c, _) = store.claim_due(claim_all("c", LONG, 10)).await.unwrap();
    assert!(by_c.is_empty());
    let mut take_over = claim_all("c", LONG, 10);
    take_over.take_over = true;
    let (by_c, _) = store.claim_due(take_over).await.unwrap();
    assert_eq!(by_c[0].record.lease_epoch, by_b[0].record.lease_epoch + 1);
}

async fn a_payment_inserted_leased_is_not_claimed_by_another_owner(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let record = payment(1, 100);

    // Act
    let inserted = store
        .insert_leased_payment(&record, terms("creator", LONG))
        .await
        .unwrap();
    let replayed = store
        .insert_leased_payment(&record, terms("another", LONG))
        .await
        .unwrap();

    // Assert
    let InsertOutcome::Inserted(inserted) = inserted else {
        panic!("the first insert stores the payment");
    };
    assert_eq!(inserted.lease_owner.as_deref(), Some("creator"));
    assert_eq!(inserted.lease_epoch, 1);
    assert_eq!(
        store.existing_payment("pay_1").await.unwrap().lease_until,
        inserted.lease_until
    );
    assert_eq!(
        replayed.into_record().lease_owner.as_deref(),
        Some("creator")
    );
    let (claimed, _) = store
        .claim_due(claim_all("another", LONG, 10))
        .await
        .unwrap();
    assert!(claimed.is_empty());
    // The creator writes under the epoch it was inserted with.
    let mut next = inserted.clone();
    next.maybe_sent = true;
    store.update_payment(&next, "sending").await.unwrap();
}

async fn renewal_extends_only_the_owners_current_leases_and_reports_versions(backend: Backend) {
    // Arrange: A claims pay_1 and pay_2; pay_2 is then taken over by B; pay_1 is changed by
    // someone who is not the engine (a cashier's cancel, under the same epoch).
    let (store, _database) = new_store(&backend).await;
    for n in 1..=2 {
        stored_payment(store.as_ref(), n, 100).await;
    }
    let (by_a, _) = store
        .claim_due(claim_all("a", Duration::from_secs(5), 10))
        .await
        .unwrap();
    assert_eq!(by_a.len(), 2);
    let mut take_over = claim_all("b", LONG, 10);
    take_over.take_over = true;
    take_over.due_before = Millis(i64::MAX);
    let (by_b, _) = store.claim_due(take_over).await.unwrap();
    assert_eq!(by_b.len(), 2);
    // Give pay_1 back to A: release B's lease on it and let A claim it again.
    let pay_1 = by_b.iter().find(|l| l.record.id == "pay_1").unwrap();
    let released = store
        .release_leases(
            "b",
            &HeldLeases {
                payments: vec![("pay_1".to_owned(), pay_1.record.lease_epoch)],
                refunds: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(released, 1);
    let (again, _) = store
        .claim_due(claim_all("a", Duration::from_secs(5), 10))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    let a_pay_1 = again[0].record.clone();
    let mut cancelled = a_pay_1.clone();
    cancelled.cancel_requested = true;
    store
        .update_payment(&cancelled, "cashier asked to cancel")
        .await
        .unwrap();
    let before = store
        .existing_payment("pay_1")
        .await
        .unwrap()
        .lease_until
        .unwrap();

    // Act: A renews what it believes it holds (pay_1 at its new epoch, pay_2 at the old).
    let held = HeldLeases {
        payments: vec![
            ("pay_1".to_owned(), a_pay_1.lease_epoch),
            ("pay_2".to_owned(), by_a[1].record.lease_epoch),
        ],
        refunds: vec![],
    };
    let renewal = store.renew_leases(terms("a", LONG), &held).await.unwrap();

    // Assert
    assert_eq!(renewal.payments.len(), 1, "{renewal:?}");
    assert_eq!(renewal.payments[0].id, "pay_1");
    assert_eq!(renewal.payments[0].version, a_pay_1.version + 1);
    assert!(renewal.payments[0].remaining > Duration::from_secs(50));
    let pay_1 = store.existing_payment("pay_1").await.unwrap();
    assert!(pay_1.lease_until.unwrap() > before);
    assert_eq!(
        pay_1.version,
        a_pay_1.version + 1,
        "a renewal moves no version"
    );
    let pay_2 = store.existing_payment("pay_2").await.unwrap();
    assert_eq!(pay_2.lease_owner.as_deref(), Some("b"));
}

async fn released_leases_are_claimed_at_once(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;
    let mut record = stored_payment(store.as_ref(), 1, 100).await;
    record.state = PaymentState::Paid;
    let paid = store.update_payment(&record, "paid").await.unwrap();
    store.insert_refund(&refund(1, &paid.id, 50)).await.unwrap();
    stored_payment(store.as_ref(), 2, 100).await;
    let (payments, refunds) = store.claim_due(claim_all("a", LONG, 10)).await.unwrap();
    assert_eq!((payments.len(), refunds.len()), (1, 1));
    let (none, none_refunds) = store.claim_due(claim_all("b", LONG, 10)).await.unwrap();
    assert!(none.is_empty() && none_refunds.is_empty());

    // Act
    let held = HeldLeases {
        payments: vec![("pay_2".to_owned(), payments[0].record.lease_epoch)],
        refunds: vec![("ref_1".to_owned(), refunds[0].record.lease_epoch)],
    };
    let released = store.release_leases("a", &held).await.unwrap();

    // Assert
    assert_eq!(released, 2);
    let stored = store.existing_payment("pay_2").await.unwrap();
    assert_eq!((stored.lease_owner, stored.lease_until), (None, None));
    let (payments, refunds) = store.claim_due(claim_all("b", LONG, 10)).await.unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].record.lease_epoch, 2);
    assert_eq!(refunds[0].record.lease_owner.as_deref(), Some("b"));
    // Handing back what one no longer holds does nothing.
    assert_eq!(store.release_leases("a", &held).await.unwrap(), 0);
}

async fn lease_times_come_from_the_store_clock(backend: Backend) {
    // Arrange
    let (store, database) = new_store(&backend).await;
    stored_payment(store.as_ref(), 1, 100).await;
    let lease = Duration::from_secs(10);

    // Act
    let before = store.clock().await.unwrap();
    let (claimed, _) = store.claim_due(claim_all("a", lease, 10)).await.unwrap();
    let after = store.clock().await.unwrap();

    // Assert: the lease ends `lease` after a moment of the store's clock between the two
    // readings, and what it has left was measured on that clock too.
    let until = claimed[0].record.lease_until.unwrap();
    assert!(before.plus(lease) <= until && until <= after.plus(lease));
    assert!(claimed[0].remaining <= lease);
    assert!(claimed[0].remaining + Duration::from_millis((after.0 - before.0 + 1) as u64) >= lease);
    if let Some(url) = database.config.database_url.as_deref() {
        // The store's clock is the server's: compare with `SELECT now()` on the server.
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let server: f64 = sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM now())::FLOAT8")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        let clock = store.clock().await.unwrap();
        assert!((clock.0 as f64 - server * 1000.0).abs() < 5_000.0);
    }
}

async fn claims_take_only_due_unfinished_work(backend: Backend) {
    // Arrange: pay_1 due now, pay_2 due in an hour, pay_3 paid (settled, owes nothing).
    let (store, _database) = new_store(&backend).await;
    let now = Millis::now();
    for (n, at, state) in [
        (1, now, PaymentState::Submitting),
        (
            2,
            now.plus(Duration::from_secs(3600)),
            PaymentState::Confirming,
        ),
        (3, now, PaymentState::Paid),
    ] {
        let mut record = stored_payment(store.as_ref(), n, 100).await;
        record.state = state;
        record.next_action = (state != PaymentState::Paid).then_some(Action::Query);
        record.next_action_at = Some(at);
        store.update_payment(&record, "planned").await.unwrap();
    }

    // Act
    let mut request = claim_all("a", LONG, 10);
    request.due_before = now.plus(Duration::from_secs(1));
    let (claimed, _) = store.claim_due(request).await.unwrap();

    // Assert
    let ids: Vec<_> = claimed.iter().map(|l| l.record.id.as_str()).collect();
    assert_eq!(ids, ["pay_1"]);
}

async fn refund_writes_are_fenced_by_their_lease(backend: Backend) {
    // Arrange: a refund inserted leased to A, then taken over by B.
    let (store, _database) = new_store(&backend).await;
    let mut record = stored_payment(store.as_ref(), 1, 100).await;
    record.state = PaymentState::Paid;
    store.update_payment(&record, "paid").await.unwrap();
    let by_a = store
        .insert_leased_refund(&refund(1, "pay_1", 50), terms("a", Duration::ZERO))
        .await
        .unwrap()
        .into_record();
    assert_eq!(
        (by_a.lease_owner.as_deref(), by_a.lease_epoch),
        (Some("a"), 1)
    );
    let (_, by_b) = store.claim_due(claim_all("b", LONG, 10)).await.unwrap();
    assert_eq!(by_b.len(), 1);

    // Act
    let mut late = by_a.clone();
    late.state = RefundState::Processing;
    let refused = store.update_refund(&late).await;
    let mut current = by_b[0].record.clone();
    current.state = RefundState::Processing;
    let accepted = store.update_refund(&current).await;

    // Assert
    assert!(
        matches!(
            refused,
            Err(StoreError::LeaseLost {
                entity: "refund",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(accepted.unwrap().state, RefundState::Processing);
}
