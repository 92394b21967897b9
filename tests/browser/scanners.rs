//! Scanners and keyboards as shops really have them: a prefix key before the digits, a
//! suffix other than Enter, keypad emulation (Alt + numpad), and digits that are not ASCII.
//! Each test drives real key events (or an input method's commit) through chromedriver and
//! checks what the proxy charged.

use paycode_api::{Fen, PaymentState};
use serde_json::json;

use crate::webdriver::{ENTER, KeyAction, Stroke, key};
use crate::{AIM_MS, Demo, Driver, TIME_SCALE, Till, WAIT, human_strokes, serial};

/// The scanner's key gap in these tests.
const GAP_MS: u64 = 8;

fn press(key: &str) -> [KeyAction; 2] {
    [
        KeyAction::Down(key.to_owned()),
        KeyAction::Up(key.to_owned()),
    ]
}

/// The code's digits `GAP_MS` apart.
fn digits(code: &str) -> Vec<KeyAction> {
    code.chars()
        .flat_map(|digit| {
            let [down, up] = press(&digit.to_string());
            [down, up, KeyAction::Pause(GAP_MS)]
        })
        .collect()
}

/// `text` typed by keypad emulation: per character, Alt held while its decimal ASCII value
/// is typed on the numpad.
fn keypad_emulation(text: &str) -> Vec<KeyAction> {
    let mut steps = Vec::new();
    for character in text.chars() {
        steps.push(KeyAction::Down(key::ALT.to_owned()));
        for digit in format!("{:03}", u32::from(character)).chars() {
            steps.extend(press(&key::numpad(digit.to_digit(10).unwrap_or(0))));
            steps.push(KeyAction::Pause(2));
        }
        steps.push(KeyAction::Up(key::ALT.to_owned()));
        steps.push(KeyAction::Pause(3));
    }
    steps
}

/// The code in another script's digits (`zero` is that script's 0).
fn in_script(code: &str, zero: u32) -> String {
    code.chars()
        .filter_map(|digit| char::from_u32(zero + digit.to_digit(10)?))
        .collect()
}

impl Till<'_> {
    fn wait_amount(&self, shown: &str) {
        self.page.wait_for(
            &format!("the amount {shown}"),
            WAIT,
            &format!(
                "return document.querySelector('[data-testid=amount]')?.innerText === {}",
                json!(shown)
            ),
        );
    }

    /// From a paid payment to the next sale (Enter = 下一单).
    fn next_sale(&self) {
        self.page.keys(&[Stroke {
            key: ENTER.to_owned(),
            pause_ms: 0,
        }]);
        self.wait_amount("¥0.00");
    }

    fn payments(&self) -> Vec<paycode_api::Payment> {
        self.demo.payments().payments
    }

    /// Performs `steps` after the cashier aims the scanner.
    fn scan_with(&self, steps: impl IntoIterator<Item = KeyAction>) {
        let mut aimed = vec![KeyAction::Pause(AIM_MS)];
        aimed.extend(steps);
        self.page.key_actions(&aimed);
    }

    /// Waits for the payment on screen to be paid, then checks that the demo terminal has
    /// `count` payments, one of them of `amount`.
    fn assert_paid(&self, count: usize, amount: Fen) {
        self.wait_state(PaymentState::Paid);
        let payments = self.payments();
        assert_eq!(payments.len(), count, "{payments:?}");
        assert!(
            payments.iter().any(|payment| payment.amount_fen == amount),
            "a payment of {amount}: {payments:?}"
        );
    }
}

/// Issue input 1 and the large-amount screen: a scanner's leading Enter never confirms.
#[test]
fn a_scanners_leading_enter_never_confirms_an_amount() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    // The cashier has typed 1 (meaning to go on to 12.50); 300 ms later the scanner sends
    // Enter, the 18 digits 8 ms apart, then Enter.
    till.page.keys(&human_strokes("1", false));
    till.wait_amount("¥1");
    let code = demo.code("password_free");
    let prefixed_scan = |code: &str| {
        let mut steps = vec![KeyAction::Pause(300)];
        steps.extend(press(ENTER));
        steps.push(KeyAction::Pause(GAP_MS));
        steps.extend(digits(code));
        steps.extend(press(ENTER));
        steps
    };
    till.page.key_actions(&prefixed_scan(&code));
    let notice = till.page.wait_text("[data-testid=notice]", WAIT);
    assert_eq!(notice, "检测到扫码，请先确认金额");
    assert_eq!(
        till.page.text("[data-testid=amount]").as_deref(),
        Some("¥1"),
        "the amount stays as typed, unconfirmed"
    );
    assert!(till.payments().is_empty(), "nothing was charged");
    till.shot("prefix_enter_amount_taken_back");

    // The cashier finishes the amount, confirms it, and the same scanner scans again.
    till.page.keys(&human_strokes("2.5", false));
    till.wait_amount("¥12.5");
    till.page.keys(&[Stroke {
        key: ENTER.to_owned(),
        pause_ms: 0,
    }]);
    till.page.wait_text("[data-testid=awaiting-code] h1", WAIT);
    till.page.key_actions(&prefixed_scan(&code));
    till.wait_state(PaymentState::Paid);
    let paid = till.only_payment();
    assert_eq!(paid.amount_fen, Fen(1250));

    // A large amount: the scanner's Enter must not answer "请确认大额收款" either.
    till.next_sale();
    till.page.keys(&human_strokes("2000", true));
    till.page.wait_text("[data-testid=dialog-yes]", WAIT);
    till.page
        .key_actions(&prefixed_scan(&demo.code("password_free")));
    let notice = till.page.wait_text("[data-testid=notice]", WAIT);
    assert_eq!(notice, "检测到扫码，请先确认金额");
    let title = till.page.text("#dialog-title").unwrap_or_default();
    assert!(title.contains("请确认大额收款"), "still asking: {title}");
    assert_eq!(till.payments().len(), 1, "no second payment");
    till.shot("prefix_enter_large_amount_taken_back");
}

/// Issue input 2 and the rest of its kind: F12 and a line feed typed as Ctrl+J end a scan.
#[test]
fn a_suffix_other_than_enter_ends_the_scan_and_does_nothing_else() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("12.5");
    till.record_keys();
    let mut steps = digits(&demo.code("password_free"));
    steps.extend(press(key::F12));
    till.scan_with(steps);
    till.assert_paid(1, Fen(1250));
    let keys = till.recorded_keys();
    let f12 = keys
        .iter()
        .find(|key| key[1] == json!("F12"))
        .expect("the page saw F12");
    assert_eq!(f12[4], json!(true), "F12's default action is prevented");
    till.shot("suffix_f12_paid");

    // A line feed as Ctrl+J (some scanners send CR LF as Ctrl+M Ctrl+J).
    till.next_sale();
    till.enter_amount("3");
    let mut steps = digits(&demo.code("password_free"));
    steps.push(KeyAction::Down(key::CONTROL.to_owned()));
    steps.extend(press("j"));
    steps.push(KeyAction::Up(key::CONTROL.to_owned()));
    till.scan_with(steps);
    till.assert_paid(2, Fen(300));
    till.shot("suffix_ctrl_j_paid");
}

/// Issue input 3: a scanner in keypad emulation (Alt + numpad), with Enter and then with CR
/// typed the same way as its suffix.
#[test]
fn keypad_emulation_is_decoded() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("8.8");
    let mut steps = keypad_emulation(&demo.code("password_free"));
    steps.extend(press(ENTER));
    till.scan_with(steps);
    till.assert_paid(1, Fen(880));
    till.shot("keypad_emulation_paid");

    till.next_sale();
    till.enter_amount("9");
    let code = demo.code("password_free");
    till.scan_with(keypad_emulation(&format!("{code}\r")));
    till.assert_paid(2, Fen(900));
}

/// Issue input 4: full-width digits typed into 手动输入付款码; Arabic-Indic digits committed
/// by an input method into the hidden capture field; Persian digits pasted.
#[test]
fn digits_of_any_script_are_the_same_code() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session(1280, 800), &demo);

    till.enter_amount("6.6");
    till.page.click("[data-testid=manual-open]");
    let code = demo.code("password_free");
    // A Chinese IME in 全角 mode commits full-width digits into the focused field.
    till.page.wait_for(
        "the manual field to have focus",
        WAIT,
        "return document.activeElement?.dataset.testid === 'manual-code' || null",
    );
    till.page.insert_text(&in_script(&code, 0xFF10));
    till.page.click(".manual button[type=submit]");
    till.wait_state(PaymentState::Paid);
    let paid = till.only_payment();
    assert_eq!(paid.amount_fen, Fen(660));
    assert_eq!(paid.auth_code_last4, &code[14..]);
    till.shot("full_width_manual_paid");

    till.next_sale();
    till.enter_amount("7");
    till.page.execute(
        "document.querySelector('[data-capture]').focus()",
        json!([]),
    );
    till.page.key_actions(&[KeyAction::Pause(AIM_MS)]);
    till.page
        .insert_text(&in_script(&demo.code("password_free"), 0x0660));
    till.assert_paid(2, Fen(700));
    till.shot("arabic_indic_capture_field_paid");

    // A code pasted on the waiting screen, in Persian digits. (A paste event carrying the
    // clipboard's text, as the browser sends for Ctrl+V; headless Chromium has no clipboard.)
    till.next_sale();
    till.enter_amount("5");
    let pasted = in_script(&demo.code("password_free"), 0x06F0);
    till.page.execute(
        "const data = new DataTransfer(); data.setData('text/plain', arguments[0]); \
         document.body.dispatchEvent(new ClipboardEvent('paste', \
             {clipboardData: data, bubbles: true, cancelable: true}));",
        json!([pasted]),
    );
    till.assert_paid(3, Fen(500));
}
