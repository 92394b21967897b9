//! The back office in Chromium (docs/books.md §7): a day of the demo's books reconciled
//! with `paycode-proxy reconcile` against the simulator's bill with injected differences,
//! then the 对账 page on the demo's manager terminal, behind the demo manager's PIN: the
//! banner, both sides' totals, the differences in plain words, the rows not from Paycode,
//! marking one explained with a note, querying one, and the 待处理 list.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use wxpay::sim::clock::beijing;

use crate::demo::{Demo, screenshot_dir};
use crate::serial;
use crate::webdriver::{Driver, Session};

/// How long a screen may take to reach a state (the back-office bundle is fetched once).
const WAIT: Duration = Duration::from_secs(30);

/// The order the simulator's bill lists but no merchant call made.
const UNSEEN: &str = "PCUNSEEN000000000000000000000042";

fn shot(page: &Session<'_>, name: &str) {
    let path = screenshot_dir().join(format!("{name}.png"));
    page.screenshot(&path);
    eprintln!("screenshot: {}", path.display());
}

/// Answers the PIN dialog as the demo manager and waits for it to close.
fn enter_pin(page: &Session<'_>, pin: &str) {
    page.wait_text("[data-testid=pin-dialog]", WAIT);
    page.type_into("[data-testid=approval-manager]", "店长");
    page.type_into("[data-testid=approval-pin]", pin);
    page.click("[data-testid=approval-submit]");
    page.wait_for(
        "the PIN to be accepted",
        WAIT,
        "return document.querySelector('[data-testid=pin-dialog]') ? null : true",
    );
}

/// A paid payment of ¥12.30 by the demo terminal; its `out_trade_no`.
fn paid_payment(demo: &Demo) -> String {
    let code = demo.code("password_free");
    let created: Value = demo
        .client
        .post(format!("{}/api/v1/payments", demo.app_url))
        .bearer_auth(&demo.token)
        .json(&json!({
            "attempt_id": "7d1c3a52-6f0e-4b8a-9c2d-1e5f3a7b9c0d",
            "amount_fen": 1230,
            "auth_code": code,
        }))
        .send()
        .and_then(|response| response.error_for_status())
        .and_then(|response| response.json())
        .expect("the payment is taken");
    let id = created["id"].as_str().expect("an id").to_owned();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let payment: Value = demo
            .client
            .get(format!("{}/api/v1/payments/{id}", demo.app_url))
            .bearer_auth(&demo.token)
            .send()
            .and_then(|response| response.json())
            .expect("the payment");
        if payment["state"] == "paid" {
            return payment["out_trade_no"]
                .as_str()
                .expect("an order")
                .to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never paid: {payment}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The simulator's clock.
fn sim_now(demo: &Demo) -> DateTime<Utc> {
    let time: Value = demo
        .client
        .get(format!("{}/_sim/time", demo.sim_url))
        .send()
        .and_then(|response| response.json())
        .expect("the simulator's time");
    time["now"]
        .as_str()
        .and_then(|now| now.parse().ok())
        .unwrap_or_else(|| panic!("a time: {time}"))
}

/// The simulator's business day now (Beijing time).
fn sim_day(demo: &Demo) -> String {
    sim_now(demo)
        .with_timezone(&beijing())
        .date_naive()
        .to_string()
}

/// Moves the simulator to noon (Beijing time) of the day after `day`, when `day`'s bill is
/// ready (the demo's bills are out at 10:00), whatever the hour the test runs at.
fn make_bill_ready(demo: &Demo, day: &str) {
    let noon = day
        .parse::<NaiveDate>()
        .expect("a date")
        .succ_opt()
        .and_then(|next| next.and_hms_opt(12, 0, 0))
        .and_then(|noon| noon.and_local_timezone(beijing()).single())
        .expect("a time");
    let seconds = (noon.to_utc() - sim_now(demo)).num_seconds().max(0);
    demo.sim_post("time/advance", json!({ "seconds": seconds }));
}

/// The id of the mismatch whose order is `out_trade_no`, once the page lists it.
fn mismatch_id(page: &Session<'_>, out_trade_no: &str) -> String {
    page.wait_for(
        &format!("the mismatch of {out_trade_no}"),
        WAIT,
        &format!(
            "const li = [...document.querySelectorAll('[data-testid=mismatch]')]\
             .find((li) => li.innerText.includes({})); return li ? li.dataset.mismatchId : null",
            json!(out_trade_no)
        ),
    )
    .as_str()
    .expect("an id")
    .to_owned()
}

fn wait_status(page: &Session<'_>, id: &str, status: &str) {
    page.wait_for(
        &format!("mismatch {id} to be {status}"),
        WAIT,
        &format!(
            "const li = document.querySelector('[data-mismatch-id=\"{id}\"]'); \
             return li && li.dataset.status === {} ? true : null",
            json!(status)
        ),
    );
}

#[test]
fn the_books_page_shows_the_differences_and_a_manager_acts_on_them() {
    let _serial = serial();
    let demo = Demo::start(crate::TIME_SCALE);
    let pin = demo.manager_pin.clone();
    // A day at the demo's WeChat: a payment made here, whose amount the bill gets wrong; a
    // payment nobody here made; an online sale of the same merchant.
    let paid = paid_payment(&demo);
    let day = sim_day(&demo);
    demo.sim_post(
        "discrepancies",
        json!({"kind": "unseen_payment", "total_fee": 777, "out_trade_no": UNSEEN}),
    );
    demo.sim_post(
        "discrepancies",
        json!({"kind": "amount_difference", "out_trade_no": paid, "bill_total_fee": 1200}),
    );
    demo.sim_post(
        "discrepancies",
        json!({"kind": "foreign_trade", "trade_type": "JSAPI", "total_fee": 4500}),
    );
    // The next day at noon the bill is ready, and the administrator reconciles the day.
    make_bill_ready(&demo, &day);
    let printed = demo.reconcile(&day);
    assert!(printed.contains(&day), "{printed}");

    let driver = Driver::for_demo(&demo);
    let page = driver.session(1280, 800);
    page.goto(&demo.app_url);
    page.wait_text("[data-testid=amount]", WAIT);

    // The manager terminal's banner says there is something to do, and leads to 对账.
    let banner = page.wait_text("[data-testid=books-banner]", WAIT);
    assert!(banner.contains("差异待处理"), "{banner}");
    page.click("[data-testid=books-banner] button");
    // The page asks for the PIN before it shows anything.
    page.wait_text("[data-testid=pin-dialog]", WAIT);
    assert!(page.text("[data-testid=account]").is_none());
    enter_pin(&page, &pin);
    page.wait_text("[data-testid=account]", WAIT);
    // It opens on yesterday; the reconciled day is chosen with the date field (another view
    // of the books: another PIN, approvals being one-use by default).
    page.execute(
        "const input = document.querySelector('[data-testid=books-date]'); \
         input.value = arguments[0]; input.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([day]),
    );
    enter_pin(&page, &pin);
    let unseen = mismatch_id(&page, UNSEEN);
    let differs = mismatch_id(&page, &paid);
    let text = page.text("[data-testid=books]").unwrap_or_default();
    for words in [
        "微信已收款，本店记录未收款",
        "两边金额不一致",
        "本店记录",
        "微信账单",
        "非本系统交易",
        "JSAPI",
    ] {
        assert!(text.contains(words), "the page shows {words}:\n{text}");
    }
    // Paid here: the ¥12.30 payment; on the bill: it at ¥12.00, and the unseen ¥7.77.
    let paid_totals = page.text("[data-testid=totals-paid]").unwrap_or_default();
    assert!(
        paid_totals.contains("¥12.30") && paid_totals.contains("¥19.77"),
        "both sides' totals side by side: {paid_totals}"
    );
    assert!(
        page.text("[data-testid=not-from-paycode] button").is_none(),
        "rows not from Paycode have no actions"
    );
    shot(&page, "books_day");

    // Mark the unseen payment explained: a note is required.
    page.click(&format!(
        "[data-mismatch-id=\"{unseen}\"] [data-testid=mismatch-explain]"
    ));
    page.wait_text("[data-testid=explain]", WAIT);
    page.click("[data-testid=explain-submit]");
    let problem = page.wait_text("[data-testid=explain-problem]", WAIT);
    assert_eq!(problem, "请写明为什么这笔差异没有问题");
    page.type_into("[data-testid=explain-text]", "网店订单，记在了门店商户号");
    page.click("[data-testid=explain-submit]");
    enter_pin(&page, &pin);
    wait_status(&page, &unseen, "explained");
    let note = page
        .text(&format!(
            "[data-mismatch-id=\"{unseen}\"] [data-testid=mismatch-note]"
        ))
        .unwrap_or_default();
    assert!(note.contains("店长") && note.contains("网店订单"), "{note}");
    // The day's chip counts one open difference now.
    page.wait_for(
        "the day's chip to count one open difference",
        WAIT,
        &format!(
            "const chip = document.querySelector('[data-testid=day-chip][data-id=\"{day}\"]'); \
             return chip && chip.innerText.includes('⚠ 1') ? true : null"
        ),
    );
    shot(&page, "books_explained");

    // Query the amount difference: WeChat confirms the payment, the bill's amount still
    // differs, so it stays open and the page says what WeChat said.
    page.click(&format!(
        "[data-mismatch-id=\"{differs}\"] [data-testid=mismatch-query]"
    ));
    enter_pin(&page, &pin);
    let outcome = page.wait_text("[data-testid=books-outcome]", WAIT);
    assert!(
        outcome.contains("agrees") && outcome.contains("still finds"),
        "{outcome}"
    );
    wait_status(&page, &differs, "open");
    shot(&page, "books_queried");

    // The needs-attention list across the store's terminals, behind its own approval.
    page.click(".tabs .tab:nth-child(5)");
    enter_pin(&page, &pin);
    let list = page.wait_text(
        "[data-testid=attention-empty], [data-testid=attention-table]",
        WAIT,
    );
    assert!(list.contains("没有待处理的收款"), "{list}");
    shot(&page, "books_attention");
}
