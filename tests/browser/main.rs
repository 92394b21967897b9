//! Browser tests of the cashier app: the built app (`dist/`) in real headless
//! Chromium, driven through chromedriver (W3C WebDriver) with real key events, against
//! `paycode-proxy demo` with its embedded WeChat Pay simulator on free ports.
//!
//! Nothing is skipped: without Chromium, chromedriver or the built app each test fails and
//! says which command installs or builds it. The tests run one at a time (one browser and
//! one demo each); every final state is saved as a screenshot under
//! `<target dir>/browser-screenshots/`.

mod books;
mod camera;
mod demo;
mod scanners;
mod webdriver;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use paycode_api::{Fen, PaymentState};
use serde_json::{Value, json};

use crate::demo::{Demo, screenshot_dir};
use crate::webdriver::{Driver, ENTER, KeyAction, Session, Stroke};

/// Simulated WeChat runs this many times faster than real time (the proxy's 40 s wait for a
/// password becomes 8 s, the 15 s reverse rule 3 s).
const TIME_SCALE: f64 = 5.0;
/// How long a screen may take to reach a state.
const WAIT: Duration = Duration::from_secs(20);
/// How long the cashier takes from confirming the amount to the scan (aiming the scanner).
const AIM_MS: u64 = 400;

/// One browser and one demo at a time: the machine is small and Chromium is heavy.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|error| error.into_inner())
}

/// Scanner timing: 18 digits with pauses of 5–15 ms (a fixed pseudo-random sequence),
/// then Enter.
fn scanner_strokes(code: &str) -> Vec<Stroke> {
    let mut seed: u32 = 0x2545_f491;
    let mut strokes: Vec<Stroke> = code
        .chars()
        .map(|digit| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            Stroke {
                key: digit.to_string(),
                pause_ms: 5 + u64::from((seed >> 16) % 11),
            }
        })
        .collect();
    strokes.push(Stroke {
        key: ENTER.to_owned(),
        pause_ms: 0,
    });
    strokes
}

/// Human timing: 130–190 ms between keys.
fn human_strokes(text: &str, enter: bool) -> Vec<Stroke> {
    let mut strokes: Vec<Stroke> = text
        .chars()
        .enumerate()
        .map(|(index, character)| Stroke {
            key: character.to_string(),
            pause_ms: 130 + (index as u64 * 37) % 61,
        })
        .collect();
    if enter {
        strokes.push(Stroke {
            key: ENTER.to_owned(),
            pause_ms: 0,
        });
    }
    strokes
}

/// The cashier page in a browser, with the demo behind it.
struct Till<'a> {
    page: Session<'a>,
    demo: &'a Demo,
}

impl<'a> Till<'a> {
    /// Opens the app (demo mode pairs it by itself) and waits for the amount screen.
    fn open(page: Session<'a>, demo: &'a Demo) -> Till<'a> {
        page.goto(&demo.app_url);
        let till = Till { page, demo };
        till.page.wait_text("[data-testid=amount]", WAIT);
        till
    }

    /// Records every keydown the page sees after the app's own listener has run (time, code,
    /// key, trusted, whether the app prevented its default action).
    fn record_keys(&self) {
        self.page.execute(
            "window.__keys = []; window.addEventListener('keydown', (e) => \
             window.__keys.push([e.timeStamp, e.code, e.key, e.isTrusted, e.defaultPrevented]), \
             true);",
            json!([]),
        );
    }

    fn recorded_keys(&self) -> Vec<Value> {
        self.page
            .execute("return window.__keys || []", json!([]))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Types the amount at human speed on the physical keyboard and presses Enter.
    fn enter_amount(&self, yuan: &str) {
        self.page.keys(&human_strokes(yuan, false));
        let shown = self.page.wait_for(
            "the typed amount",
            WAIT,
            &format!(
                "const t = document.querySelector('[data-testid=amount]').innerText; \
                 return t === {} ? t : null",
                json!(format!("¥{yuan}"))
            ),
        );
        assert_eq!(shown, json!(format!("¥{yuan}")));
        self.page.keys(&[Stroke {
            key: ENTER.to_owned(),
            pause_ms: 0,
        }]);
        let headline = self.page.wait_text("[data-testid=awaiting-code] h1", WAIT);
        assert_eq!(headline, "请出示付款码");
    }

    /// Scans `code` as a wedge scanner does and returns the page-side gaps between digits.
    fn scan(&self, code: &str) -> Vec<f64> {
        // The cashier aims the scanner first: keys within the scanner's key gap before its
        // digits would be taken for the scanner's prefix (docs/capture.md).
        self.page.key_actions(&[KeyAction::Pause(AIM_MS)]);
        self.record_keys();
        self.page.keys(&scanner_strokes(code));
        let keys = self.recorded_keys();
        assert_eq!(
            keys.len(),
            19,
            "18 digits and Enter reached the page: {keys:?}"
        );
        assert!(
            keys.iter().all(|key| key[3] == json!(true)),
            "every key event is trusted (real input, not synthetic): {keys:?}"
        );
        assert_eq!(keys[18][1], json!("Enter"));
        let times: Vec<f64> = keys[..18]
            .iter()
            .filter_map(|key| key[0].as_f64())
            .collect();
        times.windows(2).map(|pair| pair[1] - pair[0]).collect()
    }

    /// Waits until the payment screen shows `state`.
    fn wait_state(&self, state: PaymentState) {
        self.page.wait_for(
            &format!("the payment to be {state}"),
            WAIT,
            &format!(
                "const e = document.querySelector('[data-testid=paying]'); \
                 return e && e.dataset.state === {} ? true : null",
                json!(state.as_str())
            ),
        );
    }

    fn headline(&self) -> String {
        self.page.text("[data-testid=headline]").unwrap_or_default()
    }

    /// The one payment the demo terminal has, checked to be the only one.
    fn only_payment(&self) -> paycode_api::Payment {
        let list = self.demo.payments();
        assert_eq!(
            list.payments.len(),
            1,
            "exactly one payment exists: {:?}",
            list.payments
        );
        list.payments[0].clone()
    }

    fn shot(&self, name: &str) {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.page.screenshot(&path);
        eprintln!("screenshot: {}", path.display());
    }
}

#[test]
fn password_free_payment_by_scanner_keystrokes() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("12.3");
    let code = demo.code("password_free");
    let gaps = till.scan(&code);
    till.wait_state(PaymentState::Paid);

    assert_eq!(till.headline(), "收款成功 ¥12.30");
    assert_eq!(
        till.page.text("[data-testid=masked-code]").as_deref(),
        Some(format!("••••{}", &code[14..]).as_str())
    );
    let receipt = till.page.text("[data-testid=receipt]").unwrap_or_default();
    assert!(receipt.contains("¥12.30"), "{receipt}");
    assert!(!receipt.contains(&code), "the full code is never shown");
    // The demo terminal belongs to the direct merchant's store, named on the receipt and
    // next to the terminal's name in the header.
    assert!(receipt.contains("门店"), "{receipt}");
    assert!(receipt.contains("default"), "{receipt}");
    let header = till
        .page
        .text("[data-testid=terminal-name]")
        .unwrap_or_default();
    assert!(header.starts_with("default · demo-counter"), "{header}");
    let payment = till.only_payment();
    assert_eq!(payment.state, PaymentState::Paid);
    assert_eq!(payment.amount_fen, Fen(1230));
    let stored = till
        .page
        .execute("return localStorage.getItem('paycode.attempt')", json!([]));
    assert_eq!(stored, Value::Null, "a settled attempt is forgotten");
    let max_gap = gaps.iter().copied().fold(0.0, f64::max);
    let average = gaps.iter().sum::<f64>() / gaps.len() as f64;
    eprintln!("scanner gaps seen by the page: average {average:.1} ms, max {max_gap:.1} ms");
    assert!(max_gap <= 80.0 && average <= 35.0, "{gaps:?}");
    till.shot("password_free_paid");

    // Auto-next: the success screen gives way to a new sale by itself.
    till.page
        .wait_text("[data-testid=amount]", Duration::from_secs(10));
    assert_eq!(
        till.page.text("[data-testid=amount]").as_deref(),
        Some("¥0.00")
    );
}

#[test]
fn password_flow_confirmed_through_the_simulator() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("88");
    till.scan(&demo.code("password_waits"));
    till.wait_state(PaymentState::WaitingForCustomer);
    assert_eq!(
        till.headline(),
        "用户支付中，请提示顾客在手机上输入支付密码"
    );
    let countdown = till.page.wait_text("[data-testid=countdown] strong", WAIT);
    assert!(countdown.ends_with('s'), "{countdown}");
    till.shot("password_waiting");

    let payment = till.only_payment();
    assert!(
        demo.pending_prompts().contains(&payment.out_trade_no),
        "the simulator shows the password prompt"
    );
    demo.confirm_password(&payment.out_trade_no);
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.headline(), "收款成功 ¥88.00");
    assert_eq!(till.only_payment().state, PaymentState::Paid);
    till.shot("password_paid");
}

#[test]
fn cashier_cancel_with_confirmation() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("25.5");
    till.scan(&demo.code("password_waits"));
    till.wait_state(PaymentState::WaitingForCustomer);
    till.page.wait_for(
        "the cancel button to be enabled",
        WAIT,
        "const b = document.querySelector('[data-testid=cancel]'); return b && !b.disabled",
    );
    till.page.click("[data-testid=cancel]");
    let dialog = till.page.wait_text("[role=alertdialog]", WAIT);
    assert!(dialog.contains("确定取消这笔收款"), "{dialog}");
    till.shot("cancel_confirmation");
    till.page.click("[data-testid=dialog-yes]");
    till.wait_state(PaymentState::Cancelled);
    assert!(till.headline().starts_with("已"), "{}", till.headline());
    let payment = till.only_payment();
    assert_eq!(payment.state, PaymentState::Cancelled);
    assert!(payment.cancel_requested);
    assert!(
        till.page.text("[data-testid=rescan]").is_some(),
        "rescanning is offered"
    );
    till.shot("cancelled");
}

#[test]
fn an_expired_code_fails_with_an_actionable_reason() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("9.9");
    till.scan(&demo.code("expired"));
    till.wait_state(PaymentState::Failed);
    assert_eq!(till.headline(), "收款失败");
    assert_eq!(
        till.page.text("[data-testid=detail]").as_deref(),
        Some("付款码已过期，请顾客刷新付款码后重新扫码")
    );
    let role = till.page.execute(
        "return document.querySelector('[data-testid=headline]').getAttribute('role')",
        json!([]),
    );
    assert_eq!(role, json!("alert"));
    till.shot("expired_failed");

    // 重新扫码 keeps the amount and arms the scanner again.
    till.page.click("[data-testid=rescan]");
    assert_eq!(
        till.page.wait_text("[data-testid=charge-amount]", WAIT),
        "¥9.90"
    );
}

#[test]
fn human_speed_typing_of_a_code_is_not_a_scan() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("12");
    let code = demo.code("password_free");
    till.page.keys(&human_strokes(&code, true));
    let notice = till.page.wait_text("[data-testid=notice]", WAIT);
    assert_eq!(notice, "请使用扫码枪或在手动输入框输入");
    assert!(till.page.text("[data-testid=awaiting-code]").is_some());
    assert!(till.page.text("[data-testid=paying]").is_none());
    assert!(
        demo.payments().payments.is_empty(),
        "no payment was created"
    );
    till.shot("human_typing_rejected");

    // The explicit manual-entry field takes the same code.
    till.page.click("[data-testid=manual-open]");
    till.page
        .type_into("[data-testid=manual-code]", &format!("{code}{ENTER}"));
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.only_payment().state, PaymentState::Paid);
}

#[test]
fn a_scan_while_typing_the_amount_never_reaches_it() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.page.keys(&human_strokes("7", false));
    till.page.wait_for(
        "the amount 7",
        WAIT,
        "return document.querySelector('[data-testid=amount]').innerText === '¥7'",
    );
    till.scan(&demo.code("password_free"));
    let notice = till.page.wait_text("[data-testid=notice]", WAIT);
    assert_eq!(notice, "检测到扫码，请先确认金额");
    assert_eq!(
        till.page.text("[data-testid=amount]").as_deref(),
        Some("¥7")
    );
    assert!(demo.payments().payments.is_empty());
    till.shot("scan_during_amount");
}

/// Holds the app's demo pairing request (`GET /api/v1/demo/pairing`) until the test calls
/// `window.__paycodeReleasePairing()`: the checkout shows before the terminal has a token
/// (render, then pair), and this keeps that window open.
const HOLD_DEMO_PAIRING: &str = "(() => { \
    const fetch = window.fetch.bind(window); let release; \
    const held = new Promise((resolve) => { release = resolve; }); \
    window.__paycodeReleasePairing = release; window.__paycodePairingAsked = false; \
    window.fetch = (request, init) => { \
        const url = typeof request === 'string' ? request : request.url; \
        if (!url.includes('/api/v1/demo/pairing')) return fetch(request, init); \
        window.__paycodePairingAsked = true; \
        return held.then(() => fetch(request, init)); }; })();";

/// A code scanned before the terminal has its token is neither lost nor typed into the
/// amount, and no pairing screen shows: the payment screen waits, and the payment is sent
/// once the token arrives.
#[test]
fn a_scan_before_the_token_arrives_is_paid_once_it_does() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let page = driver.session(1280, 800);
    page.script_before_start(HOLD_DEMO_PAIRING);
    let till = Till::open(page, &demo);
    till.enter_amount("7");
    let asked = till
        .page
        .execute("return window.__paycodePairingAsked", json!([]));
    assert_eq!(asked, json!(true), "the pairing request is out and held");

    till.scan(&demo.code("password_free"));
    till.page.wait_for(
        "the payment screen",
        WAIT,
        "return document.querySelector('[data-testid=paying]') ? true : null",
    );
    assert!(
        till.page.text("[data-testid=pairing]").is_none(),
        "no pairing screen while the token is on its way"
    );
    assert!(
        demo.payments().payments.is_empty(),
        "nothing is sent without a token"
    );

    till.page
        .execute("window.__paycodeReleasePairing()", json!([]));
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.only_payment().amount_fen, Fen(700));
    assert_eq!(till.headline(), "收款成功 ¥7.00");
}

#[test]
fn a_reload_mid_payment_resumes_the_same_payment() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("66.6");
    till.scan(&demo.code("password_waits"));
    till.wait_state(PaymentState::WaitingForCustomer);
    let before = till.only_payment();
    let stored = till
        .page
        .execute("return localStorage.getItem('paycode.attempt')", json!([]));
    let stored: Value = serde_json::from_str(stored.as_str().expect("an attempt is stored"))
        .expect("the attempt is JSON");
    assert_eq!(stored["attempt_id"], json!(before.attempt_id.as_str()));
    assert!(
        stored.get("auth_code").is_none(),
        "the code is forgotten once acknowledged"
    );

    till.page.refresh();
    till.wait_state(PaymentState::WaitingForCustomer);
    assert_eq!(
        till.headline(),
        "用户支付中，请提示顾客在手机上输入支付密码"
    );
    let after = till.only_payment();
    assert_eq!(after.id, before.id, "the same payment, not a second one");

    demo.confirm_password(&before.out_trade_no);
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.headline(), "收款成功 ¥66.60");
    assert_eq!(till.only_payment().state, PaymentState::Paid);
    till.shot("reload_resumed_paid");
}

#[test]
fn the_network_going_down_mid_payment_loses_nothing() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("30");
    till.scan(&demo.code("password_waits"));
    till.wait_state(PaymentState::WaitingForCustomer);
    let payment = till.only_payment();

    till.page.set_offline(true);
    let banner = till.page.wait_text("[data-testid=offline]", WAIT);
    assert!(banner.contains("无法连接收款服务"), "{banner}");
    // The customer pays while the till is cut off.
    demo.confirm_password(&payment.out_trade_no);
    till.shot("offline_banner");

    till.page.set_offline(false);
    till.wait_state(PaymentState::Paid);
    till.page.wait_for(
        "the banner to go",
        WAIT,
        "return document.querySelector('[data-testid=offline]') === null",
    );
    assert_eq!(till.only_payment().id, payment.id);
}

#[test]
fn refund_from_the_list() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    demo.sim_settings(json!({"refund_delay_secs": 1}));
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("20");
    till.scan(&demo.code("password_free"));
    till.wait_state(PaymentState::Paid);
    till.page.click("[data-testid=next]");
    till.page.wait_text("[data-testid=amount]", WAIT);

    till.page.click(".tabs .tab:nth-child(2)");
    till.page.wait_text("[data-testid=payment-row]", WAIT);
    assert_eq!(
        till.page.text("[data-testid=total-paid]").as_deref(),
        Some("¥20.00")
    );
    till.page.click("[data-testid=refund]");
    let prefilled = till.page.execute(
        "return document.querySelector('[data-testid=refund-amount]').value",
        json!([]),
    );
    assert_eq!(prefilled, json!("20.00"), "the full amount is offered");
    till.page.type_into("[data-testid=refund-amount]", "5.5");
    till.page.click("[data-testid=refund-submit]");
    let confirm = till
        .page
        .wait_text("[data-testid=refund-confirm-line]", WAIT);
    assert_eq!(confirm, "确认退款 ¥5.50?");
    till.page.click("[data-testid=refund-confirm]");
    // Every refund needs a manager's approval: the dialog asks for the name and PIN.
    let asking = till.page.wait_text("[data-testid=approval-form]", WAIT);
    assert!(asking.contains("需要店长授权 · ¥5.50"), "{asking}");
    till.page
        .type_into("[data-testid=approval-manager]", "店长");
    let wrong = if demo.manager_pin == "000000" {
        "111111"
    } else {
        "000000"
    };
    till.page.type_into("[data-testid=approval-pin]", wrong);
    till.page.click("[data-testid=approval-submit]");
    let problem = till.page.wait_text("[data-testid=approval-problem]", WAIT);
    assert_eq!(problem, "店长姓名或 PIN 错误");
    assert!(
        demo.payments().payments[0].refunds.is_empty(),
        "nothing is refunded without the right PIN"
    );
    till.page
        .type_into("[data-testid=approval-pin]", &demo.manager_pin);
    till.page.click("[data-testid=approval-submit]");
    let result = till.page.wait_text("[data-testid=refund-result]", WAIT);
    assert!(result.starts_with("退款已受理 ¥5.50"), "{result}");
    till.page.click("[data-testid=refund-close]");

    // The list reloads; once WeChat has moved the money the totals show it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if till.page.text("[data-testid=total-refunded]").as_deref() == Some("¥5.50") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refund never showed in the totals: {:?}",
            demo.payments().payments
        );
        std::thread::sleep(Duration::from_millis(500));
        till.page.click("[data-testid=reload]");
    }
    assert_eq!(
        till.page.text("[data-testid=total-net]").as_deref(),
        Some("¥14.50")
    );
    let payment = till.only_payment();
    assert_eq!(payment.refunded_fen, Fen(550));
    till.shot("refund_list");
}

#[test]
fn todays_payments_are_fetched_ahead_and_open_from_the_cache() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);
    // The page's requests go to the browser's HTTP cache and the network without the
    // service worker, so Resource Timing shows what crossed the network.
    till.page.cdp("Network.enable", json!({}));
    till.page
        .cdp("Network.setBypassServiceWorker", json!({ "bypass": true }));
    // 今日收款 lives in the back-office bundle, which the first load does not carry; a few
    // seconds after it, the page fetches the bundle ahead at low priority.
    // The bundle's wasm as fetched, in order: bytes that crossed the network.
    let wasm_transfers = "return performance.getEntriesByType('resource') \
        .filter((e) => /paycode-backoffice_bg\\.wasm$/.test(e.name) && e.responseEnd > 0) \
        .map((e) => e.transferSize)";
    till.page.wait_for(
        "the back-office bundle fetched ahead",
        WAIT,
        &format!("{wasm_transfers}.length === 1 || null"),
    );
    till.page.click(".tabs .tab:nth-child(2)");
    till.page.wait_text("[data-testid=reload]", WAIT);
    let transfers: Vec<u64> =
        serde_json::from_value(till.page.execute(wasm_transfers, json!([]))).unwrap();
    // Fetched ahead in full (brotli, about 145 KB), then only revalidated when the page
    // opened (the bundle's names carry no hash, so it is `no-cache`): a few hundred bytes
    // of headers, not the bundle again.
    assert!(
        matches!(transfers[..], [ahead, opening] if ahead > 100_000 && opening < 2_000),
        "{transfers:?}"
    );
    assert_eq!(till.page.text("[data-testid=back-office-loading]"), None);
}

#[test]
fn the_layout_fits_a_tablet_and_a_desktop() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    // Landscape screens show the whole amount screen; portrait ones (a tablet held upright,
    // a phone) may scroll down but never sideways.
    for (width, height) in [(1280, 800), (1920, 1080), (800, 1280), (412, 915)] {
        let landscape = width > height;
        let till = Till::open(driver.session(width, height), &demo);
        // The demo terminal is a manager's: five tabs once its details have arrived.
        till.page.wait_for(
            "the manager's five tabs",
            WAIT,
            "return document.querySelectorAll('.tabs .tab').length === 5 ? true : null",
        );
        let fits = "return [document.documentElement.scrollWidth <= window.innerWidth, \
                    document.documentElement.scrollHeight <= window.innerHeight, \
                    window.innerWidth, window.innerHeight]";
        let measured = till.page.execute(fits, json!([]));
        assert_eq!(measured[2], json!(width));
        assert_eq!(measured[3], json!(height));
        assert_eq!(
            measured[0],
            json!(true),
            "the amount screen never scrolls sideways at {width}x{height}"
        );
        if landscape {
            assert_eq!(
                measured[1],
                json!(true),
                "the amount screen fits {width}x{height} without scrolling"
            );
        }
        let tabs_inside = till.page.execute(
            "return [...document.querySelectorAll('.tabs .tab')].every(t => { \
             const r = t.getBoundingClientRect(); \
             return r.left >= 0 && r.right <= window.innerWidth && r.height >= 44; })",
            json!([]),
        );
        assert_eq!(
            tabs_inside,
            json!(true),
            "every tab is on screen and at least 44 px tall at {width}x{height}"
        );
        let smallest_key = till.page.execute(
            "return Math.min(...[...document.querySelectorAll('.key')].map(k => \
             Math.min(k.getBoundingClientRect().width, k.getBoundingClientRect().height)))",
            json!([]),
        );
        assert!(
            smallest_key.as_f64().unwrap_or(0.0) >= 48.0,
            "keypad keys are at least 48 px at {width}x{height}: {smallest_key}"
        );
        till.shot(&format!("amount_{width}x{height}"));
        till.enter_amount("12.3");
        let measured = till.page.execute(fits, json!([]));
        assert_eq!(
            measured[0],
            json!(true),
            "the waiting screen never scrolls sideways at {width}x{height}"
        );
        if landscape {
            assert_eq!(
                measured[1],
                json!(true),
                "the waiting screen fits {width}x{height}"
            );
        }
        till.shot(&format!("awaiting_code_{width}x{height}"));
    }
}

#[test]
fn settings_pairing_language_and_sound() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.page.click(".tabs .tab:nth-child(3)");
    let terminal = till.page.wait_text("[data-testid=terminal]", WAIT);
    assert!(terminal.starts_with("demo-counter"), "{terminal}");

    // A token is checked with the proxy before it is saved.
    till.page
        .type_into("[data-testid=token]", &format!("pct_notarealtoken{ENTER}"));
    assert_eq!(
        till.page.wait_text("[data-testid=token-status]", WAIT),
        "令牌无效，请核对后重试"
    );
    till.page
        .type_into("[data-testid=token]", &format!("{}{ENTER}", demo.token));
    till.page.wait_for(
        "the token to be accepted",
        WAIT,
        "const e = document.querySelector('[data-testid=token-status]'); \
         return e && e.innerText.startsWith('已配对') ? e.innerText : null",
    );

    till.page.click("[data-testid=lang-en]");
    till.page.click("[data-testid=sound-off]");
    let stored = till.page.execute(
        "return [localStorage.getItem('paycode.lang'), localStorage.getItem('paycode.sound'), \
         document.documentElement.lang]",
        json!([]),
    );
    assert_eq!(stored, json!(["en", "off", "en"]));
    till.shot("settings_english");

    // The choice survives a reload, and the checkout speaks English.
    till.page.refresh();
    till.page.wait_text("[data-testid=amount]", WAIT);
    till.page.keys(&human_strokes("5", true));
    assert_eq!(
        till.page.wait_text("[data-testid=awaiting-code] h1", WAIT),
        "Please show your payment code"
    );
    assert_eq!(
        till.page.text(".tabs .tab:nth-child(1)").as_deref(),
        Some("Checkout")
    );
}

#[test]
fn a_fresh_tablet_opens_the_pairing_url_over_https_and_lands_paired_on_the_amount_screen() {
    let _serial = serial();
    let demo = Demo::start_https(TIME_SCALE);
    assert!(demo.app_url.starts_with("https://"), "{}", demo.app_url);
    let url = demo.pairing_url("tablet-1");
    let driver = Driver::for_demo(&demo);
    let page = driver.session(1280, 800);

    // The tablet's own camera app opens the QR code's address in a fresh browser, on the
    // shop's Wi-Fi.
    page.emulate_shop_wifi();
    page.goto(&url);
    page.wait_text("[data-testid=amount]", WAIT);
    let state = page.execute(
        "return [location.href, window.isSecureContext, localStorage.getItem('paycode.token')]",
        json!([]),
    );
    page.screenshot(&screenshot_dir().join("pairing-https.png"));

    // The page is HTTPS without a certificate error (a secure context), the code left the
    // address bar, and the stored token is the new terminal's, not the demo terminal's.
    assert_eq!(state[0], json!(format!("{}/", demo.app_url)));
    assert_eq!(state[1], json!(true));
    let token = state[2].as_str().expect("a stored token").to_owned();
    assert_ne!(token, demo.token);
    let terminal: Value = demo
        .client
        .get(format!("{}/api/v1/terminal", demo.app_url))
        .bearer_auth(&token)
        .send()
        .and_then(|response| response.json())
        .expect("the new token works");
    assert_eq!(terminal["name"], json!("tablet-1"));
    // The same code a second time (a photo of the QR code) is refused.
    let code = url.split("#pair=").nth(1).expect("a code");
    let replay = demo
        .client
        .post(format!("{}/api/v1/pairing", demo.app_url))
        .json(&json!({ "code": code }))
        .send()
        .expect("the proxy answers");
    assert_eq!(replay.status().as_u16(), 400);
}
