//! The books HTTP API (docs/books.md §7): a day reconciled with `paycode-proxy reconcile`
//! against the simulator's bill with injected differences, then read and acted on over
//! HTTP as the back office does: a cashier terminal is refused, a manager terminal needs an
//! approval per request, "mark explained" needs a note and is audited, "query now" asks
//! WeChat and runs the day again, and the CSV lists the mismatches.

use crate::books::{insert_ghost, make_bill_ready, reconcile_cli, sim_today};
use chrono::NaiveDate;
use paycode_api::books::{
    BooksDayDetail, BooksDayList, BooksStatus, DayStatus, MismatchClass, MismatchEntry,
    MismatchQueried, MismatchStatus, OwnerAction,
};
use paycode_api::{ApprovalAction, Role};
use paycode_proxy::routes::books::CSV_HEADER;
use paycode_proxy::store::Millis;
use paycode_tests::world::AMOUNT_FEN;
use paycode_tests::{Cashier, Reply, World};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wxpay::sim::{Behaviour, Injection};

/// A day with two differences, reconciled: a payment WeChat took that this store never made
/// (paid at WeChat but not here, 7.77) and a payment this store has as paid that WeChat
/// never saw (paid here but not at WeChat, the "ghost"). Returns the day.
async fn reconciled_day(world: &World) -> NaiveDate {
    let paid = world.pay_and_settle(Behaviour::PasswordFree).await;
    let day = sim_today(world);
    world
        .sim
        .inject_discrepancy(Injection::UnseenPayment {
            mch_id: None,
            sub_mch_id: None,
            out_trade_no: Some("PCUNSEEN000000000000000000000001".into()),
            total_fee: 777,
        })
        .unwrap();
    insert_ghost(world, &paid.id).await;
    make_bill_ready(world, day);
    reconcile_cli(world, day).await;
    day
}

/// A manager terminal of the default store.
async fn back_office(world: &World) -> Cashier {
    world
        .terminal_with_role("default", "back-office", Role::Manager)
        .await
}

/// `method path` with a fresh `books` approval from the world's manager.
async fn approved(
    office: &Cashier,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Reply {
    let approval = office.approve(ApprovalAction::Books.as_str()).await;
    office.send_approved(method, path, &approval, body).await
}

fn entry<'a>(day: &'a BooksDayDetail, out_trade_no: &str) -> &'a MismatchEntry {
    day.accounts
        .iter()
        .flat_map(|account| account.mismatches.iter())
        .find(|entry| entry.mismatch.out_trade_no == out_trade_no)
        .unwrap_or_else(|| panic!("{out_trade_no} is listed: {day:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_terminal_is_refused_the_books_naming_the_rule() {
    // Arrange
    let world = World::start().await;
    let day = reconciled_day(&world).await;
    let path = format!("/books/days/{day}");

    // Act: every books endpoint, from the world's cashier terminal.
    let replies = [
        world.cashier.get_raw("/books/status").await,
        world.cashier.get_raw("/books/days").await,
        world.cashier.get_raw(&path).await,
        world.cashier.get_raw(&format!("{path}/csv")).await,
        world
            .cashier
            .post_json("/books/mismatches/bm_x/query", &json!({}))
            .await,
        world
            .cashier
            .post_json("/books/mismatches/bm_x/explain", &json!({"note": "x"}))
            .await,
        world
            .cashier
            .approve_raw(&world.manager.name, &world.manager.pin, "books")
            .await,
    ];

    // Assert: 403 naming the rule, before any PIN is checked or anything is audited.
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        let error = reply.error();
        assert_eq!(error.code, "ROLE_REQUIRED", "{error:?}");
        assert!(
            error.message.contains("books") && error.message.contains("manager or owner terminal"),
            "{error:?}"
        );
    }
    assert!(
        world
            .store
            .approved_actions(Millis(0))
            .await
            .unwrap()
            .is_empty()
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_with_an_approval_sees_the_day_and_explaining_needs_a_note_and_is_audited() {
    // Arrange
    let world = World::start().await;
    let day = reconciled_day(&world).await;
    let office = back_office(&world).await;
    let path = format!("/books/days/{day}");

    // Act: the banner's counts need no approval; the day needs one, used up by one request.
    let status: BooksStatus = office.get_raw("/books/status").await.expect(StatusCode::OK);
    let unapproved = office.get_raw(&path).await;
    let approval = office.approve("books").await;
    let first = office
        .send_approved(Method::GET, &path, &approval, None)
        .await;
    let again = office
        .send_approved(Method::GET, &path, &approval, None)
        .await;
    let shown: BooksDayDetail = first.expect(StatusCode::OK);
    let unseen = entry(&shown, "PCUNSEEN000000000000000000000001").clone();
    let ghost = entry(&shown, "PCGHOST0000000000000000000000001").clone();
    let explain = format!("/books/mismatches/{}/explain", unseen.id);
    let no_note = approved(
        &office,
        Method::POST,
        &explain,
        Some(&json!({"note": "  "})),
    )
    .await;
    let too_long = approved(
        &office,
        Method::POST,
        &explain,
        Some(&json!({"note": "账".repeat(201)})),
    )
    .await;
    let explained = approved(
        &office,
        Method::POST,
        &explain,
        Some(&json!({"note": "网店订单，走错了商户号"})),
    )
    .await;
    let twice = approved(
        &office,
        Method::POST,
        &explain,
        Some(&json!({"note": "再次"})),
    )
    .await;
    let list: BooksDayList = approved(
        &office,
        Method::GET,
        &format!("/books/days?from={day}&to={day}"),
        None,
    )
    .await
    .expect(StatusCode::OK);

    // Assert
    assert!(status.open_mismatches >= 2, "{status:?}");
    for reply in [&unapproved, &again] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert_eq!(reply.error().code, "APPROVAL_REQUIRED", "{reply:?}");
    }
    let account = &shown.accounts[0];
    assert_eq!(account.status, DayStatus::Reconciled);
    assert!(account.report.is_some() && account.reconciled_at.is_some());
    assert_eq!(unseen.mismatch.class, MismatchClass::PaidAtWechatNotHere);
    assert_eq!(unseen.status, MismatchStatus::Open);
    assert_eq!(unseen.payment_id, None, "the store has no such payment");
    assert_eq!(
        unseen.actions,
        [OwnerAction::QueryNow, OwnerAction::MarkExplained],
        "no refund without a payment here to refund"
    );
    assert_eq!(ghost.mismatch.class, MismatchClass::PaidHereNotAtWechat);
    assert_eq!(ghost.payment_id.as_deref(), Some("ghost-payment"));
    assert!(
        shown
            .recent
            .days
            .iter()
            .any(|row| row.day == day.to_string())
    );
    no_note.assert_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", Some("note"));
    too_long.assert_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", Some("note"));
    let explained: MismatchEntry = explained.expect(StatusCode::OK);
    assert_eq!(explained.status, MismatchStatus::Explained);
    assert_eq!(explained.note.as_deref(), Some("网店订单，走错了商户号"));
    assert!(explained.actions.is_empty());
    let by = explained.settled_by.clone().unwrap_or_default();
    assert!(
        by.contains(&world.manager.name) && by.contains("back-office"),
        "{by}"
    );
    twice.assert_error(StatusCode::CONFLICT, "MISMATCH_SETTLED", None);
    let row = list
        .days
        .iter()
        .find(|row| row.day == day.to_string())
        .unwrap();
    assert_eq!(row.status, DayStatus::Reconciled);
    assert_eq!(row.open_mismatches, 1, "the ghost is still open: {row:?}");
    // Every approved request is audited with who, which terminal and what; the explanation
    // with its note.
    let audit = world.store.approved_actions(Millis(0)).await.unwrap();
    let office_id = office.terminal().await.id;
    let explained_audit: Vec<_> = audit.iter().filter(|row| row.target == unseen.id).collect();
    assert_eq!(
        explained_audit.len(),
        1,
        "refused explanations use up no approval: {audit:#?}"
    );
    assert!(
        explained_audit
            .iter()
            .all(|row| row.action == ApprovalAction::Books
                && row.manager_name == world.manager.name
                && row.terminal_id == office_id)
    );
    assert!(
        explained_audit
            .iter()
            .any(|row| row.reason.as_deref() == Some("网店订单，走错了商户号")),
        "{explained_audit:#?}"
    );
    assert!(audit.iter().any(|row| row.target == format!("books {day}")));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_now_asks_wechat_with_an_audit_event_and_keeps_what_it_cannot_resolve_open() {
    // Arrange
    let world = World::start().await;
    let day = reconciled_day(&world).await;
    let office = back_office(&world).await;
    let shown: BooksDayDetail = approved(&office, Method::GET, &format!("/books/days/{day}"), None)
        .await
        .expect(StatusCode::OK);
    let ghost = entry(&shown, "PCGHOST0000000000000000000000001").clone();
    let events_before = world
        .store
        .payment_events("ghost-payment")
        .await
        .unwrap()
        .len();

    // Act: WeChat has never heard of the ghost payment.
    let queried: MismatchQueried = approved(
        &office,
        Method::POST,
        &format!("/books/mismatches/{}/query", ghost.id),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let unknown = approved(
        &office,
        Method::POST,
        "/books/mismatches/bm_000000000000000000000000/query",
        None,
    )
    .await;

    // Assert: the verified answer contradicts a paid record, which never moves back: the
    // difference stays open for a manager, and the query is in the payment's audit events
    // with the manager's name.
    assert_eq!(queried.mismatch.id, ghost.id);
    assert_eq!(queried.mismatch.status, MismatchStatus::Open, "{queried:?}");
    assert!(
        queried.message.contains("contradicts"),
        "{}",
        queried.message
    );
    assert!(
        queried.message.contains("still finds"),
        "{}",
        queried.message
    );
    let events = world.store.payment_events("ghost-payment").await.unwrap();
    assert!(events.len() > events_before, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|event| event.detail.contains(&world.manager.name)),
        "{events:#?}"
    );
    let payment = world.store.existing_payment("ghost-payment").await.unwrap();
    assert_eq!(payment.state, paycode_api::PaymentState::Paid);
    unknown.assert_error(StatusCode::NOT_FOUND, "MISMATCH_NOT_FOUND", None);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_of_a_day_parses_and_lists_its_mismatches() {
    // Arrange
    let world = World::start().await;
    let day = reconciled_day(&world).await;
    let office = back_office(&world).await;
    let approval = office.approve("books").await;

    // Act
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/books/days/{day}/csv", office.base()))
        .bearer_auth(office.token().unwrap())
        .header("Paycode-Approval", approval)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();

    // Assert
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(
        disposition,
        format!("attachment; filename=\"paycode-books-{day}.csv\"")
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let unseen = rows
        .iter()
        .find(|row| &row[3] == "PCUNSEEN000000000000000000000001")
        .expect("the unseen payment is a row");
    assert_eq!(&unseen[0], day.to_string());
    assert_eq!(&unseen[1], world.config.wechat.mch_id);
    assert_eq!(&unseen[2], "paid at WeChat but not paid here");
    assert_eq!(&unseen[5], "", "no store amount");
    assert_eq!(&unseen[6], "7.77");
    assert_eq!(&unseen[9], "open");
    let ghost = rows
        .iter()
        .find(|row| &row[3] == "PCGHOST0000000000000000000000001")
        .expect("the ghost is a row");
    assert_eq!(&ghost[2], "paid here but not at WeChat");
    assert_eq!(&ghost[5], paycode_api::Fen(AMOUNT_FEN).to_yuan_string());
    assert_eq!(&ghost[7], "paid");
    world.stop().await;
}
