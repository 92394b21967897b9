//! The keyboard-wedge scanner detector (`docs/capture.md`), as a pure state machine.
//!
//! A wedge scanner is a keyboard: it "types" the 18 digits of the customer's payment code in a
//! burst of key events 5–15 ms apart, usually followed by Enter. People type the same digits
//! with gaps of 80 ms and more. [`WedgeDetector`] tells the two apart from key timestamps
//! alone, so it knows nothing of the DOM: the browser glue (`ui/capture.rs`) turns every
//! `keydown` (and the `keyup` of Alt) into a [`KeyInput`], calls [`WedgeDetector::on_key`]
//! ([`WedgeDetector::on_key_up`]), obeys the returned [`KeyOutcome`] (`preventDefault`,
//! `stopPropagation`, whether the page may see the key) and calls [`WedgeDetector::on_timer`]
//! when [`WedgeDetector::deadline`] passes. Native unit tests feed it synthetic key traces.
//!
//! Digits are decoded from `KeyboardEvent.code` (`Digit0`–`Digit9`, `Numpad0`–`Numpad9`),
//! which does not depend on the keyboard layout, Shift, NumLock or an IME reporting
//! `key = "Process"`; `key` is the fallback for events that carry no `code`, and it may be a
//! digit of any script (`crate::model::digits`).
//!
//! # What real scanners send around the digits
//! - **Suffixes.** Most scanners end with Enter; others with Tab, NumpadEnter, an F-key, Esc,
//!   an arrow, or a line feed typed as Ctrl+J / Ctrl+M; some with nothing. Whatever non-digit
//!   key arrives while a scanner-speed burst is still open (before its idle deadline) ends the
//!   burst *before* the key means anything else, and is swallowed (`preventDefault` and
//!   `stopPropagation`), as is every further non-digit key that follows it within the
//!   scanner's key gap (CR LF, Tab Enter).
//! - **Prefixes.** Some scanners send a key *before* the digits (a leading Enter or Tab, a
//!   configured character). When that key arrives, nothing says it is not the cashier's: a
//!   cashier's Enter on the amount screen must confirm at once, with no visible delay. So the
//!   detector lets the page act on it and remembers it. If a burst of scanner-speed digits
//!   starts within the scanner's key gap (`max_gap_ms`) after such keys, they were the
//!   scanner's prefix: the burst's report starts with [`DetectorEvent::PrefixTakeBack`],
//!   and the page restores what those keys did (an amount "confirmed" by the scanner's Enter
//!   goes back to unconfirmed, and the scan is not charged). Nothing real is undone: no
//!   request leaves before a code is complete, and the take-back comes with the code. A
//!   person cannot start a burst of digits at 5–15 ms intervals within 80 ms of pressing
//!   Enter, so a deliberate Enter is never taken back.
//! - **Keypad emulation.** A scanner in "Alt + numpad" mode types each character as Alt held
//!   while its decimal ASCII value is typed on the numpad (Alt, Numpad0, Numpad4, Numpad9 =
//!   `1`), and the character is due when Alt is released. Numpad keys while Alt is held are
//!   swallowed and summed, and the character is decoded at Alt's `keyup`. On Windows the
//!   system also composes that character and delivers it after the `keyup`; that echo is
//!   recognised (the same character, no physical digit key, within the key gap) and dropped,
//!   so no character counts twice. The timing of such a burst is judged per key event (a
//!   character takes four or five of them), so a fast emulating scanner is still a scanner.

use crate::model::digits::decimal_value;

/// Timing limits. The defaults are the ones `docs/capture.md` recommends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WedgeConfig {
    /// The longest gap between two keys of one scan. Bluetooth scanners pause up to ~47 ms.
    /// Also the longest gap between a scanner's prefix or suffix keys and its digits.
    pub max_gap_ms: f64,
    /// The longest average gap of a scan; people type slower than this.
    pub max_avg_ms: f64,
    /// How long after the last digit a scan without a terminator counts as finished.
    pub end_idle_ms: f64,
    /// Scanner-speed bursts shorter than this are never reported as unrecognised codes.
    pub min_len: usize,
    /// The same code scanned again within this window is a double trigger and ignored.
    pub dup_window_ms: f64,
    /// While the amount is typed, digits wait this long for a following key before they are
    /// applied; a burst arriving within it is a scan, not an amount.
    pub amount_settle_ms: f64,
    /// This many scanner-speed digits in a row while the amount is typed are a scan
    /// (Odoo's number buffer applies at most two keys per window).
    pub amount_burst_len: usize,
    /// Human-typed digits further apart than this start a new manual sequence.
    pub human_reset_ms: f64,
}

impl Default for WedgeConfig {
    fn default() -> Self {
        WedgeConfig {
            max_gap_ms: 80.0,
            max_avg_ms: 35.0,
            end_idle_ms: 100.0,
            min_len: 12,
            dup_window_ms: 3000.0,
            amount_settle_ms: 80.0,
            amount_burst_len: 3,
            human_reset_ms: 3000.0,
        }
    }
}

/// What the page is doing, which decides what the detector does with digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Not listening: an editable field (refund amount, token, …) or a dialog has the keys.
    #[default]
    Off,
    /// The amount is being typed: human digits go to the amount (slightly delayed), bursts
    /// are reported as a scan and never reach the amount.
    Amount,
    /// "请出示付款码": nothing editable is focused; digits are swallowed and a valid fast burst
    /// is a scan.
    Armed,
    /// The manual-entry field is focused: keys flow into it, and a scanner burst ending in a
    /// terminator is still recognised (and its terminator swallowed).
    Passive,
    /// A payment is in flight: bursts are recognised and reported, never submitted.
    Busy,
}

/// One `keydown` (or `keyup`), reduced to what the detector needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyInput<'a> {
    /// `Event.timeStamp` in milliseconds (one clock for every event and timer).
    pub time_ms: f64,
    /// `KeyboardEvent.code`, the physical key (`Digit1`, `Numpad1`, `Enter`); may be empty.
    pub code: &'a str,
    /// `KeyboardEvent.key` (`1`, `End`, `Process`, `Unidentified`); may be empty.
    pub key: &'a str,
    /// The deprecated `keyCode` (229 while an IME owns the key).
    pub key_code: u32,
    /// `KeyboardEvent.repeat`: the key is held down.
    pub repeat: bool,
    /// Control or Meta is held: a shortcut, never part of a scan.
    pub shortcut_modifier: bool,
    /// `KeyboardEvent.altKey`: Alt is held (keypad emulation types digits with it).
    pub alt: bool,
}

impl<'a> KeyInput<'a> {
    /// A plain key press with no modifiers.
    pub fn new(time_ms: f64, code: &'a str, key: &'a str) -> KeyInput<'a> {
        KeyInput {
            time_ms,
            code,
            key,
            key_code: 0,
            repeat: false,
            shortcut_modifier: false,
            alt: false,
        }
    }
}

/// How a scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// Enter or NumpadEnter after the digits.
    Enter,
    /// Tab after the digits.
    Tab,
    /// Any other key after the digits: an F-key, Esc, an arrow, Ctrl+J / Ctrl+M…
    OtherKey,
    /// No suffix: the idle timeout finished it.
    Idle,
    /// No keys: the camera read the code ([`WedgeDetector::on_decoded`]).
    Camera,
}

/// Timing figures of one burst, kept so a shop can tune the limits per scanner model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanStats {
    /// How many digits.
    pub digits: usize,
    /// First to last digit.
    pub duration_ms: f64,
    /// Average gap between key events (a keypad-emulated digit counts each of its keys).
    pub avg_gap_ms: f64,
    /// Largest gap between key events.
    pub max_gap_ms: f64,
    /// How it ended.
    pub terminator: Terminator,
}

/// What the detector tells the page.
#[derive(Clone, Debug, PartialEq)]
pub enum DetectorEvent {
    /// The keys the page was shown from `since_ms` on (their `time_ms`) were a scanner's
    /// prefix: the page takes back whatever they did. Always followed by the burst's own
    /// event.
    PrefixTakeBack {
        /// The time of the first prefix key.
        since_ms: f64,
    },
    /// A scanner-speed burst of a well-formed payment code (WeChat, or an Alipay-shaped code
    /// the page rejects with its own message). Digits only; the page still parses it.
    Scanned {
        /// The digits.
        code: String,
        /// How the burst looked.
        stats: ScanStats,
    },
    /// The same code again within the duplicate window: a double trigger, ignored.
    Duplicate,
    /// A payment code typed at human speed on the waiting screen: not taken as a scan; the
    /// page points the cashier to the scanner or the manual-entry field.
    ManualLikeEntry,
    /// A scanner-speed burst of `min_len` or more digits that is no payment code.
    Unrecognised(ScanStats),
    /// A scanner burst while the amount was being typed: dropped from the amount.
    ScanWhileEnteringAmount,
    /// A payment code scanned while a payment is in flight: not submitted.
    ScanWhileBusy,
    /// Human-typed digits for the amount, in order, to apply before the key that came with
    /// this outcome.
    AmountDigits(String),
    /// Key events owned by an IME (`Process`, `Unidentified`, keyCode 229) without a digit
    /// `code`: the page should switch to the hidden-input fallback and show the IME hint.
    ImeSuspected,
}

/// What to do with one key event.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct KeyOutcome {
    /// Call `preventDefault()`: the key must not type, click or submit anything.
    pub prevent_default: bool,
    /// Call `stopPropagation()`: no other handler may see the key (a scan's terminator).
    pub stop_propagation: bool,
    /// The page's own shortcuts (Enter, Esc, Backspace, …) may handle the key, after the
    /// events below are applied.
    pub pass_to_page: bool,
    /// What happened, in order.
    pub events: Vec<DetectorEvent>,
}

impl KeyOutcome {
    fn passed(events: Vec<DetectorEvent>) -> KeyOutcome {
        KeyOutcome {
            prevent_default: false,
            stop_propagation: false,
            pass_to_page: true,
            events,
        }
    }

    fn swallowed(events: Vec<DetectorEvent>) -> KeyOutcome {
        KeyOutcome {
            prevent_default: true,
            stop_propagation: true,
            pass_to_page: false,
            events,
        }
    }

    /// Kept from the page but not from other listeners (a digit the detector owns).
    fn withheld(events: Vec<DetectorEvent>) -> KeyOutcome {
        KeyOutcome {
            prevent_default: true,
            stop_propagation: false,
            pass_to_page: false,
            events,
        }
    }
}

/// What a key is, for the detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyClass {
    Digit(u8),
    Terminator(Terminator),
    Modifier,
    Ime,
    Other,
}

/// The digit of a `Digit0`–`Digit9` or `Numpad0`–`Numpad9` code.
fn digit_code(code: &str) -> Option<u8> {
    let rest = code
        .strip_prefix("Digit")
        .or_else(|| code.strip_prefix("Numpad"))?;
    match rest.as_bytes() {
        [digit @ b'0'..=b'9'] => Some(digit - b'0'),
        _ => None,
    }
}

/// The one character a `key` value stands for, if it is a single character.
fn single_char(key: &str) -> Option<char> {
    let mut chars = key.chars();
    let character = chars.next()?;
    chars.next().is_none().then_some(character)
}

fn is_alt(input: &KeyInput<'_>) -> bool {
    input.key == "Alt" || input.code == "AltLeft" || input.code == "AltRight"
}

fn classify(input: &KeyInput<'_>) -> KeyClass {
    if let Some(digit) = digit_code(input.code) {
        return KeyClass::Digit(digit);
    }
    if let Some(digit) = single_char(input.key).and_then(decimal_value) {
        return KeyClass::Digit(digit);
    }
    match (input.key, input.code) {
        ("Enter", _) | (_, "Enter") | (_, "NumpadEnter") => {
            return KeyClass::Terminator(Terminator::Enter);
        }
        ("Tab", _) | (_, "Tab") => return KeyClass::Terminator(Terminator::Tab),
        ("Shift" | "Alt" | "AltGraph" | "Control" | "Meta" | "CapsLock" | "NumLock", _) => {
            return KeyClass::Modifier;
        }
        _ => {}
    }
    if input.key_code == 229 || input.key == "Process" || input.key == "Unidentified" {
        return KeyClass::Ime;
    }
    KeyClass::Other
}

/// What a character typed by keypad emulation is.
fn keypad_class(value: u32) -> KeyClass {
    match value % 256 {
        digit @ 48..=57 => KeyClass::Digit((digit - 48) as u8),
        10 | 13 => KeyClass::Terminator(Terminator::Enter),
        9 => KeyClass::Terminator(Terminator::Tab),
        _ => KeyClass::Other,
    }
}

/// Whether `digits` is a WeChat payment code: `^1[0-5]\d{16}$`.
pub fn is_wechat_pattern(digits: &str) -> bool {
    paycode_api::AuthCode::parse(digits).is_ok()
}

/// Whether `digits` looks like an Alipay payment code: `^(2[5-9]|30)\d{14,22}$`.
pub fn is_alipay_pattern(digits: &str) -> bool {
    matches!(
        paycode_api::AuthCode::parse(digits),
        Err(paycode_api::AuthCodeError::Alipay)
    )
}

/// One digit of a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BurstDigit {
    value: u8,
    /// When it was complete (the key, or Alt's release for keypad emulation).
    at_ms: f64,
    /// How many key events made it: 1, or the numpad keys plus Alt for keypad emulation.
    keys: u32,
}

/// Keys the page was shown, which may turn out to be a scanner's prefix.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PassedKeys {
    first_ms: f64,
    last_ms: f64,
}

/// An Alt + numpad character being typed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct KeypadChar {
    value: u32,
    keys: u32,
    /// Its first numpad key.
    started_ms: f64,
}

/// The detector. One per page; see the module documentation.
#[derive(Clone, Debug)]
pub struct WedgeDetector {
    config: WedgeConfig,
    mode: Mode,
    /// The current run of digits whose gaps are all within `max_gap_ms` (or
    /// `amount_settle_ms` while the amount is typed).
    burst: Vec<BurstDigit>,
    /// When the current burst started within the key gap of keys the page was shown: the
    /// time of the first of those keys.
    burst_prefix_ms: Option<f64>,
    /// Non-digit keys recently shown to the page.
    passed: Option<PassedKeys>,
    /// When the last swallowed suffix key came: non-digit keys right after it are the
    /// scanner's too.
    suffix_ms: Option<f64>,
    /// The Alt + numpad character being typed.
    keypad: Option<KeypadChar>,
    /// The character keypad emulation just produced, whose composed echo must not count.
    echo: Option<(char, f64)>,
    /// Every digit typed on the waiting screen since the last reset, whatever the gaps, to
    /// notice a payment code typed by hand.
    typed: String,
    typed_last_ms: f64,
    ime_reported: bool,
    last_scan: Option<(String, f64)>,
}

impl Default for WedgeDetector {
    fn default() -> Self {
        WedgeDetector::new(WedgeConfig::default())
    }
}

impl WedgeDetector {
    /// A detector with the given limits, starting in [`Mode::Off`].
    pub fn new(config: WedgeConfig) -> WedgeDetector {
        WedgeDetector {
            config,
            mode: Mode::Off,
            burst: Vec::new(),
            burst_prefix_ms: None,
            passed: None,
            suffix_ms: None,
            keypad: None,
            echo: None,
            typed: String::new(),
            typed_last_ms: 0.0,
            ime_reported: false,
            last_scan: None,
        }
    }

    /// The limits in use.
    pub fn config(&self) -> &WedgeConfig {
        &self.config
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switches mode. Pending digits are dropped (a screen change ends any burst); the
    /// duplicate memory is kept, so a double trigger across a screen change is still caught,
    /// and so are the keys the page was just shown (a scanner's prefix Enter is what changes
    /// the screen).
    pub fn set_mode(&mut self, mode: Mode) {
        if mode != self.mode {
            self.mode = mode;
            self.reset();
        }
    }

    /// Forgets the last scan, so the same code is taken again at once: the page refused it
    /// for a reason the cashier fixes before scanning again (the amount was not confirmed).
    pub fn forget_last_scan(&mut self) {
        self.last_scan = None;
    }

    /// Whether an IME was noticed since the last reset of the flag.
    pub fn ime_suspected(&self) -> bool {
        self.ime_reported
    }

    /// When the glue must call [`WedgeDetector::on_timer`] next (same clock as the key
    /// timestamps), if anything is pending.
    pub fn deadline(&self) -> Option<f64> {
        let last = self.burst.last()?;
        let wait = match self.mode {
            Mode::Amount => self.config.amount_settle_ms,
            _ => self.config.end_idle_ms,
        };
        Some(last.at_ms + wait)
    }

    /// Handles one `keydown`.
    pub fn on_key(&mut self, input: &KeyInput<'_>) -> KeyOutcome {
        if self.mode == Mode::Off {
            return KeyOutcome::passed(Vec::new());
        }
        let time_ms = input.time_ms;
        // A burst whose idle time passed ended before this key, even if the timer is late.
        let mut events = self.on_timer(time_ms);
        let class = classify(input);
        if is_alt(input) && !input.repeat {
            // A new Alt press starts a new keypad character.
            self.keypad = None;
        }
        if input.alt
            && input.code.starts_with("Numpad")
            && let KeyClass::Digit(digit) = class
        {
            let keypad = self.keypad.get_or_insert(KeypadChar {
                value: 0,
                keys: 1,
                started_ms: time_ms,
            });
            keypad.value = keypad
                .value
                .saturating_mul(10)
                .saturating_add(u32::from(digit));
            keypad.keys += 1;
            return KeyOutcome::withheld(events);
        }
        if let Some((character, at_ms)) = self.echo.take()
            && single_char(input.key) == Some(character)
            && digit_code(input.code).is_none()
            && time_ms - at_ms <= self.config.max_gap_ms
        {
            // The system's composed copy of a keypad-emulated character: counted already.
            return KeyOutcome::withheld(events);
        }
        match class {
            KeyClass::Modifier => return KeyOutcome::passed(events),
            KeyClass::Digit(digit) if !input.repeat && !input.shortcut_modifier => {
                self.suffix_ms = None;
                events.extend(self.push_digit(digit, time_ms, time_ms, 1));
                return match self.mode {
                    // The manual-entry field types the digit itself.
                    Mode::Passive => KeyOutcome::passed(events),
                    _ => KeyOutcome::withheld(events),
                };
            }
            _ => {}
        }
        let mut outcome = self.on_non_digit(class, input, time_ms);
        events.append(&mut outcome.events);
        outcome.events = events;
        if outcome.pass_to_page {
            self.note_passed(time_ms);
        } else {
            self.passed = None;
        }
        outcome
    }

    /// Handles one `keyup`: only Alt's matters, which completes a keypad-emulated character.
    pub fn on_key_up(&mut self, input: &KeyInput<'_>) -> KeyOutcome {
        if self.mode == Mode::Off || !is_alt(input) {
            return KeyOutcome::default();
        }
        let Some(keypad) = self.keypad.take() else {
            return KeyOutcome::default();
        };
        let time_ms = input.time_ms;
        let mut events = self.on_timer(time_ms);
        match keypad_class(keypad.value) {
            KeyClass::Digit(digit) => {
                self.suffix_ms = None;
                self.echo = Some((char::from(b'0' + digit), time_ms));
                events.extend(self.push_digit(digit, keypad.started_ms, time_ms, keypad.keys));
            }
            class => {
                let mut outcome = self.on_non_digit(class, input, time_ms);
                events.append(&mut outcome.events);
            }
        }
        // Alt's release must not open a menu; the page never sees a keyup as a shortcut.
        KeyOutcome::withheld(events)
    }

    /// Handles the text of an `input` event on the hidden capture field (IME, Android soft
    /// keyboard, DataWedge injection, paste). Decimal digits of any script count (a full-width
    /// IME types `１`); composed CJK and everything else is dropped.
    pub fn on_text(&mut self, time_ms: f64, text: &str) -> Vec<DetectorEvent> {
        if !matches!(self.mode, Mode::Armed | Mode::Busy) {
            return Vec::new();
        }
        let mut events = self.on_timer(time_ms);
        let mut characters = text.chars().peekable();
        if let Some((character, at_ms)) = self.echo.take()
            && characters.peek() == Some(&character)
            && time_ms - at_ms <= self.config.max_gap_ms
        {
            // The composed copy of a keypad-emulated character, typed into the field.
            characters.next();
        }
        for digit in characters.filter_map(decimal_value) {
            events.extend(self.push_digit(digit, time_ms, time_ms, 1));
        }
        events
    }

    /// Finishes a burst whose idle time has passed. Call it at [`WedgeDetector::deadline`];
    /// calling it early does nothing.
    pub fn on_timer(&mut self, now_ms: f64) -> Vec<DetectorEvent> {
        match self.deadline() {
            Some(deadline) if now_ms >= deadline => {}
            _ => return Vec::new(),
        }
        if self.mode == Mode::Amount {
            return self.settle_amount();
        }
        self.finish_burst(Terminator::Idle)
    }

    fn reset(&mut self) {
        self.burst.clear();
        self.burst_prefix_ms = None;
        self.typed.clear();
        self.keypad = None;
    }

    fn note_passed(&mut self, time_ms: f64) {
        self.passed = Some(match self.passed {
            Some(passed) if time_ms - passed.last_ms <= self.config.max_gap_ms => PassedKeys {
                first_ms: passed.first_ms,
                last_ms: time_ms,
            },
            _ => PassedKeys {
                first_ms: time_ms,
                last_ms: time_ms,
            },
        });
    }

    /// Whether the open burst is a scan that a following key ends: scanner speed, and long
    /// enough to be a code (a scan at all while the amount is typed).
    fn scan_pending(&self) -> bool {
        let needed = match self.mode {
            Mode::Amount => self.config.amount_burst_len,
            _ => self.config.min_len,
        };
        self.burst.len() >= needed && self.burst_is_scan_speed()
    }

    /// Any key that is not a digit of the burst (and not a modifier).
    fn on_non_digit(&mut self, class: KeyClass, input: &KeyInput<'_>, time_ms: f64) -> KeyOutcome {
        let terminator = match class {
            KeyClass::Terminator(terminator) => terminator,
            _ => Terminator::OtherKey,
        };
        // A suffix: the scan is evaluated before the key means anything else.
        if self.scan_pending() {
            self.suffix_ms = Some(time_ms);
            let events = if self.mode == Mode::Amount {
                self.settle_amount()
            } else {
                self.typed.clear();
                self.finish_burst(terminator)
            };
            return KeyOutcome::swallowed(events);
        }
        // The rest of a multi-key suffix (CR LF, Tab Enter).
        if let Some(last) = self.suffix_ms
            && time_ms - last <= self.config.max_gap_ms
        {
            self.suffix_ms = Some(time_ms);
            return KeyOutcome::swallowed(Vec::new());
        }
        self.suffix_ms = None;
        // A held key or a Ctrl/Meta shortcut is never part of a scan.
        if input.repeat || input.shortcut_modifier {
            let events = self.settle_amount();
            self.reset();
            let mut outcome = KeyOutcome::passed(events);
            // Digits are never typed into the amount by auto-repeat: the keypad adds them
            // one press at a time.
            if self.mode == Mode::Amount && matches!(class, KeyClass::Digit(_)) {
                outcome.prevent_default = true;
                outcome.pass_to_page = false;
            }
            return outcome;
        }
        match class {
            KeyClass::Terminator(terminator) => self.on_terminator(terminator),
            KeyClass::Ime => {
                let mut events = Vec::new();
                if !self.ime_reported {
                    self.ime_reported = true;
                    events.push(DetectorEvent::ImeSuspected);
                }
                // The character (if any) arrives through the hidden input's `input` event.
                KeyOutcome {
                    prevent_default: false,
                    stop_propagation: false,
                    pass_to_page: false,
                    events,
                }
            }
            _ => {
                // A letter or any other key: whatever was buffered is not a payment code.
                let events = self.settle_amount();
                self.reset();
                KeyOutcome::passed(events)
            }
        }
    }

    /// Adds a digit made of `keys` key events, the first at `started_ms`, complete at
    /// `time_ms`.
    fn push_digit(
        &mut self,
        digit: u8,
        started_ms: f64,
        time_ms: f64,
        keys: u32,
    ) -> Vec<DetectorEvent> {
        let mut events = Vec::new();
        let split_gap = match self.mode {
            Mode::Amount => self.config.amount_settle_ms,
            _ => self.config.max_gap_ms,
        };
        let per_key = |last: f64| (time_ms - last) / f64::from(keys.max(1));
        if let Some(last) = self.burst.last()
            && per_key(last.at_ms) > split_gap
        {
            // Too slow to continue the burst: finish the old one, start a new one.
            if self.mode == Mode::Amount {
                events.extend(self.settle_amount());
            } else {
                events.extend(self.finish_scan_burst(Terminator::Idle));
                self.burst.clear();
                self.burst_prefix_ms = None;
            }
        }
        if self.burst.is_empty() {
            // Prefix keys come within the key gap of the digit's first key.
            self.burst_prefix_ms = self
                .passed
                .filter(|passed| started_ms - passed.last_ms <= self.config.max_gap_ms)
                .map(|passed| passed.first_ms);
        }
        self.passed = None;
        if self.mode == Mode::Armed {
            if !self.typed.is_empty() && time_ms - self.typed_last_ms > self.config.human_reset_ms {
                self.typed.clear();
            }
            self.typed.push(char::from(b'0' + digit));
            self.typed_last_ms = time_ms;
        }
        self.burst.push(BurstDigit {
            value: digit,
            at_ms: time_ms,
            keys,
        });
        events
    }

    /// A terminator with no scan pending.
    fn on_terminator(&mut self, terminator: Terminator) -> KeyOutcome {
        match self.mode {
            Mode::Amount => KeyOutcome::passed(self.settle_amount()),
            Mode::Passive => KeyOutcome::passed(self.finish_burst(terminator)),
            Mode::Armed | Mode::Busy => {
                // A leading terminator (empty buffer) passes through harmlessly.
                if self.burst.is_empty() && self.typed.is_empty() {
                    return KeyOutcome::passed(Vec::new());
                }
                let events = self.finish_burst(terminator);
                self.typed.clear();
                KeyOutcome::swallowed(events)
            }
            Mode::Off => KeyOutcome::passed(Vec::new()),
        }
    }

    /// Ends the current burst (terminator or idle) outside amount entry.
    fn finish_burst(&mut self, terminator: Terminator) -> Vec<DetectorEvent> {
        let mut events = Vec::new();
        if self.burst_is_scan_speed() {
            events.extend(self.finish_scan_burst(terminator));
            self.burst.clear();
            self.burst_prefix_ms = None;
            self.typed.clear();
            return events;
        }
        self.burst.clear();
        self.burst_prefix_ms = None;
        if self.mode == Mode::Armed && is_wechat_pattern(&self.typed) {
            self.typed.clear();
            events.push(DetectorEvent::ManualLikeEntry);
        }
        events
    }

    /// The take-back of the burst's prefix keys, once the burst is known to be a scan.
    fn take_back_prefix(&mut self) -> Option<DetectorEvent> {
        self.burst_prefix_ms
            .take()
            .map(|since_ms| DetectorEvent::PrefixTakeBack { since_ms })
    }

    /// Reports a scanner-speed burst: a scan, a duplicate, a busy scan or an unrecognised
    /// code, after the take-back of its prefix keys. Slow bursts report nothing here.
    fn finish_scan_burst(&mut self, terminator: Terminator) -> Vec<DetectorEvent> {
        if !self.burst_is_scan_speed() {
            return Vec::new();
        }
        let stats = self.burst_stats(terminator);
        let code: String = self
            .burst
            .iter()
            .map(|digit| char::from(b'0' + digit.value))
            .collect();
        let at = self.burst.last().map_or(0.0, |digit| digit.at_ms);
        let event = if !is_wechat_pattern(&code) && !is_alipay_pattern(&code) {
            if stats.digits < self.config.min_len {
                return Vec::new();
            }
            DetectorEvent::Unrecognised(stats)
        } else if let Some((previous, previous_at)) = &self.last_scan
            && *previous == code
            && at - previous_at <= self.config.dup_window_ms
        {
            DetectorEvent::Duplicate
        } else {
            self.last_scan = Some((code.clone(), at));
            match self.mode {
                Mode::Busy => DetectorEvent::ScanWhileBusy,
                _ => DetectorEvent::Scanned { code, stats },
            }
        };
        self.take_back_prefix().into_iter().chain([event]).collect()
    }

    /// While the amount is typed: applies human digits, drops scanner bursts.
    fn settle_amount(&mut self) -> Vec<DetectorEvent> {
        if self.mode != Mode::Amount || self.burst.is_empty() {
            return Vec::new();
        }
        let events =
            if self.burst_is_scan_speed() && self.burst.len() >= self.config.amount_burst_len {
                self.take_back_prefix()
                    .into_iter()
                    .chain([DetectorEvent::ScanWhileEnteringAmount])
                    .collect()
            } else {
                vec![DetectorEvent::AmountDigits(
                    self.burst
                        .iter()
                        .map(|digit| char::from(b'0' + digit.value))
                        .collect(),
                )]
            };
        self.burst.clear();
        self.burst_prefix_ms = None;
        events
    }

    fn burst_stats(&self, terminator: Terminator) -> ScanStats {
        // A gap is judged per key event: a keypad-emulated digit is several keys.
        let gaps = self
            .burst
            .windows(2)
            .map(|pair| (pair[1].at_ms - pair[0].at_ms) / f64::from(pair[1].keys.max(1)));
        let max_gap_ms = gaps.clone().fold(0.0, f64::max);
        let duration_ms = match (self.burst.first(), self.burst.last()) {
            (Some(first), Some(last)) => last.at_ms - first.at_ms,
            _ => 0.0,
        };
        let gap_count = self.burst.len().saturating_sub(1);
        ScanStats {
            digits: self.burst.len(),
            duration_ms,
            avg_gap_ms: if gap_count == 0 {
                0.0
            } else {
                gaps.sum::<f64>() / gap_count as f64
            },
            max_gap_ms,
            terminator,
        }
    }

    /// Takes a code the camera decoded at `at_ms` (same clock as key timestamps) through the
    /// rules a scanner's code meets: the same duplicate memory (a camera sees the code in
    /// frame after frame, and a code the scanner just read is not taken again from the
    /// camera), and the same screen rules. Text that is no WeChat- or Alipay-shaped code is
    /// [`DetectorEvent::Unrecognised`] once, then a duplicate while it stays in view.
    /// Nothing is reported while the detector is [`Mode::Off`].
    pub fn on_decoded(&mut self, text: &str, at_ms: f64) -> Option<DetectorEvent> {
        if self.mode == Mode::Off {
            return None;
        }
        let code = text.trim();
        if let Some((previous, previous_at)) = &self.last_scan
            && previous == code
            && at_ms - previous_at <= self.config.dup_window_ms
        {
            return Some(DetectorEvent::Duplicate);
        }
        self.last_scan = Some((code.to_owned(), at_ms));
        let stats = ScanStats {
            digits: code.len(),
            duration_ms: 0.0,
            avg_gap_ms: 0.0,
            max_gap_ms: 0.0,
            terminator: Terminator::Camera,
        };
        if !is_wechat_pattern(code) && !is_alipay_pattern(code) {
            return Some(DetectorEvent::Unrecognised(stats));
        }
        Some(match self.mode {
            Mode::Busy => DetectorEvent::ScanWhileBusy,
            Mode::Amount => DetectorEvent::ScanWhileEnteringAmount,
            _ => DetectorEvent::Scanned {
                code: code.to_owned(),
                stats,
            },
        })
    }

    fn burst_is_scan_speed(&self) -> bool {
        if self.burst.len() < 2 {
            return false;
        }
        let stats = self.burst_stats(Terminator::Idle);
        stats.avg_gap_ms <= self.config.max_avg_ms && stats.max_gap_ms <= self.config.max_gap_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_code_meets_the_scanner_rules_and_duplicate_memory() {
        let mut detector = WedgeDetector::default();
        // Off: nothing.
        assert_eq!(detector.on_decoded(CODE, 0.0), None);
        detector.set_mode(Mode::Armed);
        let Some(DetectorEvent::Scanned { code, stats }) = detector.on_decoded(CODE, 10.0) else {
            panic!("a WeChat code from the camera is a scan");
        };
        assert_eq!(
            (code.as_str(), stats.terminator),
            (CODE, Terminator::Camera)
        );
        // The next frames show the same code: duplicates, for the scanner's window.
        assert_eq!(
            detector.on_decoded(CODE, 200.0),
            Some(DetectorEvent::Duplicate)
        );
        assert_eq!(
            detector.on_decoded(CODE, 3_010.0),
            Some(DetectorEvent::Duplicate)
        );
        assert!(matches!(
            detector.on_decoded(CODE, 3_011.0),
            Some(DetectorEvent::Scanned { .. })
        ));
        // An Alipay code reaches the page, which refuses it with its own message.
        assert!(matches!(
            detector.on_decoded("2812345678901234", 4_000.0),
            Some(DetectorEvent::Scanned { .. })
        ));
        // Other text (a QR holding a link) is unrecognised once, then a duplicate.
        assert!(matches!(
            detector.on_decoded("https://example.com/", 5_000.0),
            Some(DetectorEvent::Unrecognised(_))
        ));
        assert_eq!(
            detector.on_decoded("https://example.com/", 5_100.0),
            Some(DetectorEvent::Duplicate)
        );
        detector.set_mode(Mode::Busy);
        assert_eq!(
            detector.on_decoded("134567890123450000", 6_000.0),
            Some(DetectorEvent::ScanWhileBusy)
        );
    }

    #[test]
    fn a_code_the_scanner_just_read_is_a_duplicate_for_the_camera() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events).len(), 1);
        assert_eq!(
            detector.on_decoded(CODE, 500.0),
            Some(DetectorEvent::Duplicate)
        );
    }

    const CODE: &str = "134567890123455678";

    /// One synthetic key event of a trace.
    #[derive(Clone)]
    struct Key {
        at: f64,
        code: String,
        key: String,
        key_code: u32,
        repeat: bool,
        shortcut: bool,
        /// Alt is held.
        alt: bool,
        /// A `keyup` (only Alt's reaches the detector).
        up: bool,
        /// The page switches the detector to this mode before the key (a screen change).
        mode: Option<Mode>,
    }

    fn digit_key(at: f64, digit: char) -> Key {
        Key {
            at,
            code: format!("Digit{digit}"),
            key: digit.to_string(),
            key_code: 48 + digit.to_digit(10).unwrap(),
            repeat: false,
            shortcut: false,
            alt: false,
            up: false,
            mode: None,
        }
    }

    fn named_key(at: f64, code: &str, key: &str) -> Key {
        Key {
            at,
            code: code.to_owned(),
            key: key.to_owned(),
            key_code: 0,
            repeat: false,
            shortcut: false,
            alt: false,
            up: false,
            mode: None,
        }
    }

    /// The digits of `code` starting at `start`, `gaps[i % gaps.len()]` ms apart.
    fn burst(code: &str, start: f64, gaps: &[f64]) -> Vec<Key> {
        let mut at = start;
        code.chars()
            .enumerate()
            .map(|(index, digit)| {
                if index > 0 {
                    at += gaps[(index - 1) % gaps.len()];
                }
                digit_key(at, digit)
            })
            .collect()
    }

    fn last_time(keys: &[Key]) -> f64 {
        keys.last().map_or(0.0, |key| key.at)
    }

    /// Feeds a trace, then fires the idle timer as the glue would, and collects
    /// every event and outcome.
    fn run(detector: &mut WedgeDetector, keys: &[Key]) -> (Vec<DetectorEvent>, Vec<KeyOutcome>) {
        let mut events = Vec::new();
        let mut outcomes = Vec::new();
        for key in keys {
            if let Some(mode) = key.mode {
                detector.set_mode(mode);
            }
            // Timers due before this key fire first, as in a browser.
            if let Some(deadline) = detector.deadline()
                && deadline <= key.at
            {
                events.extend(detector.on_timer(deadline));
            }
            let input = KeyInput {
                time_ms: key.at,
                code: &key.code,
                key: &key.key,
                key_code: key.key_code,
                repeat: key.repeat,
                shortcut_modifier: key.shortcut,
                alt: key.alt,
            };
            let outcome = if key.up {
                detector.on_key_up(&input)
            } else {
                detector.on_key(&input)
            };
            events.extend(outcome.events.clone());
            outcomes.push(outcome);
        }
        if let Some(deadline) = detector.deadline() {
            events.extend(detector.on_timer(deadline));
        }
        (events, outcomes)
    }

    fn armed() -> WedgeDetector {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Armed);
        detector
    }

    fn amount_screen() -> WedgeDetector {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Amount);
        detector
    }

    /// An Enter at `at` on the amount screen, which arms the scanner for the keys `after` it.
    fn enter_then(at: f64, mut after: Vec<Key>) -> Vec<Key> {
        after[0].mode = Some(Mode::Armed);
        let mut keys = vec![named_key(at, "Enter", "Enter")];
        keys.extend(after);
        keys
    }

    fn scanned(events: &[DetectorEvent]) -> Vec<(String, Terminator)> {
        events
            .iter()
            .filter_map(|event| match event {
                DetectorEvent::Scanned { code, stats } => Some((code.clone(), stats.terminator)),
                _ => None,
            })
            .collect()
    }

    // docs/cashier-screens.md §6.3 case 1: 18 digits at 5 ms + Enter → accept.
    #[test]
    fn digits_at_5ms_with_enter_are_a_scan() {
        // Arrange
        let mut detector = armed();
        let mut keys = burst(CODE, 1000.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        // Act
        let (events, outcomes) = run(&mut detector, &keys);
        // Assert
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        assert_eq!(events.len(), 1);
        // Every digit and the Enter are swallowed; the Enter also stops propagation.
        assert!(
            outcomes
                .iter()
                .all(|o| o.prevent_default && !o.pass_to_page)
        );
        assert!(outcomes.last().unwrap().stop_propagation);
        let DetectorEvent::Scanned { stats, .. } = &events[0] else {
            unreachable!("checked above")
        };
        assert_eq!(stats.digits, 18);
        assert!((stats.duration_ms - 85.0).abs() < 1e-9);
        assert!((stats.avg_gap_ms - 5.0).abs() < 1e-9);
    }

    // docs/cashier-screens.md §6.3 case 2: the same with Tab.
    #[test]
    fn tab_terminates_a_scan_and_is_swallowed() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 6.0, "Tab", "Tab"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Tab)]);
        let tab = outcomes.last().unwrap();
        assert!(tab.prevent_default && tab.stop_propagation && !tab.pass_to_page);
    }

    // docs/cashier-screens.md §6.3 case 3: no suffix → accept after 100 ms idle, not before.
    #[test]
    fn a_scan_without_suffix_ends_after_the_idle_time() {
        let mut detector = armed();
        let keys = burst(CODE, 0.0, &[7.0]);
        for key in &keys {
            detector.on_key(&KeyInput::new(key.at, &key.code, &key.key));
        }
        let last = last_time(&keys);
        assert_eq!(detector.deadline(), Some(last + 100.0));
        assert!(detector.on_timer(last + 99.0).is_empty());
        let events = detector.on_timer(last + 100.0);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Idle)]);
        assert_eq!(detector.deadline(), None);
    }

    // docs/cashier-screens.md §6.3 case 4: numpad codes with NumLock off (key=End, code=Numpad1) → accept.
    #[test]
    fn numpad_codes_with_numlock_off_are_digits() {
        let numlock_off_keys = [
            "Insert",
            "End",
            "ArrowDown",
            "PageDown",
            "ArrowLeft",
            "Clear",
            "ArrowRight",
            "Home",
            "ArrowUp",
            "PageUp",
        ];
        let mut keys: Vec<Key> = CODE
            .chars()
            .enumerate()
            .map(|(index, digit)| {
                let value = digit.to_digit(10).unwrap() as usize;
                named_key(
                    index as f64 * 6.0,
                    &format!("Numpad{digit}"),
                    numlock_off_keys[value],
                )
            })
            .collect();
        keys.push(named_key(last_time(&keys) + 6.0, "NumpadEnter", "Enter"));
        let mut detector = armed();
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    // docs/cashier-screens.md §6.3 case 5: key="Process", keyCode 229, digit codes → accept.
    #[test]
    fn ime_processed_keys_with_digit_codes_are_digits() {
        let mut keys: Vec<Key> = burst(CODE, 0.0, &[8.0])
            .into_iter()
            .map(|mut key| {
                key.key = "Process".to_owned();
                key.key_code = 229;
                key
            })
            .collect();
        keys.push(Key {
            key_code: 229,
            ..named_key(last_time(&keys) + 8.0, "Enter", "Enter")
        });
        let mut detector = armed();
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        assert!(!events.contains(&DetectorEvent::ImeSuspected));
        assert!(outcomes.iter().all(|o| o.prevent_default));
    }

    // docs/cashier-screens.md §6.3 case 6: 18 digits at 120 ms → ManualLikeEntry, never a scan.
    #[test]
    fn human_speed_typing_of_a_code_is_not_a_scan() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[120.0]);
        keys.push(named_key(last_time(&keys) + 60.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert!(scanned(&events).is_empty());
        assert_eq!(events, vec![DetectorEvent::ManualLikeEntry]);
        // The Enter ends the typed sequence and is swallowed, so it cannot submit anything.
        assert!(outcomes.last().unwrap().prevent_default);
    }

    #[test]
    fn human_speed_typing_without_enter_is_reported_once_after_the_idle_time() {
        let mut detector = armed();
        let keys = burst(CODE, 0.0, &[140.0, 95.0, 210.0]);
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::ManualLikeEntry]);
    }

    #[test]
    fn digits_at_50ms_are_too_slow_on_average() {
        // Every gap is under the 80 ms limit, but the average is above 35 ms.
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[50.0]);
        keys.push(named_key(last_time(&keys) + 50.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::ManualLikeEntry]);
    }

    // docs/cashier-screens.md §6.3 case 7: Bluetooth burst pattern (6,6,6,47,6,…) → accept.
    #[test]
    fn bluetooth_bursts_with_an_outlier_gap_are_a_scan() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[6.0, 6.0, 6.0, 47.0]);
        // The Datalogic trace also pauses 47 ms before Enter.
        keys.push(named_key(last_time(&keys) + 47.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    #[test]
    fn a_gap_above_the_maximum_splits_the_burst() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys[9].at += 90.0;
        for key in keys.iter_mut().skip(10) {
            key.at += 90.0;
        }
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert!(scanned(&events).is_empty(), "{events:?}");
    }

    // docs/cashier-screens.md §6.3 case 8: leading Enter → accept (the leading Enter passes through).
    #[test]
    fn a_leading_enter_is_harmless() {
        let mut detector = armed();
        let mut keys = vec![named_key(0.0, "Enter", "Enter")];
        keys.extend(burst(CODE, 10.0, &[5.0]));
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        assert!(outcomes[0].pass_to_page && !outcomes[0].prevent_default);
    }

    #[test]
    fn a_leading_enter_before_a_suffixless_scan_is_harmless() {
        let mut detector = armed();
        let mut keys = vec![named_key(0.0, "Enter", "Enter")];
        keys.extend(burst(CODE, 4.0, &[5.0]));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Idle)]);
    }

    // docs/cashier-screens.md §6.3 case 9: Shift/Alt interleaved → accept.
    #[test]
    fn shift_and_alt_between_digits_are_ignored() {
        let mut keys = Vec::new();
        for (index, key) in burst(CODE, 0.0, &[6.0]).into_iter().enumerate() {
            let at = key.at;
            if index % 3 == 0 {
                keys.push(named_key(at - 2.0, "ShiftLeft", "Shift"));
            }
            if index % 5 == 0 {
                keys.push(named_key(at - 1.0, "AltLeft", "Alt"));
            }
            // Shift turns the key into a symbol on most layouts; the code stays a digit.
            let shifted = Key {
                key: if index % 3 == 0 {
                    "!".to_owned()
                } else {
                    key.key.clone()
                },
                ..key
            };
            keys.push(shifted);
        }
        keys.push(named_key(last_time(&keys) + 6.0, "Enter", "Enter"));
        let mut detector = armed();
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    // docs/cashier-screens.md §6.3 case 10: letters → reset.
    #[test]
    fn a_letter_resets_the_buffer() {
        let mut detector = armed();
        let mut keys = burst(&CODE[..9], 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "KeyA", "a"));
        let rest = burst(&CODE[9..], last_time(&keys) + 5.0, &[5.0]);
        keys.extend(rest);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert!(scanned(&events).is_empty(), "{events:?}");
        // The letter itself is left to the page.
        assert!(outcomes[9].pass_to_page && !outcomes[9].prevent_default);
    }

    #[test]
    fn a_fast_burst_that_is_no_payment_code_is_reported_unrecognised() {
        let mut detector = armed();
        let mut keys = burst("6901234567892", 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert!(
            matches!(events.as_slice(), [DetectorEvent::Unrecognised(stats)] if stats.digits == 13),
            "{events:?}"
        );
    }

    #[test]
    fn a_short_fast_burst_reports_nothing() {
        let mut detector = armed();
        let (events, _) = run(&mut detector, &burst("12345", 0.0, &[5.0]));
        assert!(events.is_empty());
    }

    #[test]
    fn alipay_codes_are_reported_for_the_page_to_reject() {
        let alipay = "287654321098765432";
        let mut detector = armed();
        let (events, _) = run(&mut detector, &burst(alipay, 0.0, &[5.0]));
        assert_eq!(
            scanned(&events),
            vec![(alipay.to_owned(), Terminator::Idle)]
        );
    }

    // docs/cashier-screens.md §6.3 case 11: duplicate within 3 s → ignored.
    #[test]
    fn the_same_code_within_three_seconds_is_a_duplicate() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let second_start = last_time(&keys) + 500.0;
        keys.extend(burst(CODE, second_start, &[5.0]));
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let third_start = last_time(&keys) + 3100.0;
        keys.extend(burst(CODE, third_start, &[5.0]));
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(
            events
                .iter()
                .map(|event| matches!(event, DetectorEvent::Scanned { .. }))
                .collect::<Vec<_>>(),
            vec![true, false, true]
        );
        assert_eq!(events[1], DetectorEvent::Duplicate);
    }

    #[test]
    fn the_duplicate_memory_survives_a_mode_change() {
        let mut detector = armed();
        run(&mut detector, &burst(CODE, 0.0, &[5.0]));
        detector.set_mode(Mode::Busy);
        detector.set_mode(Mode::Armed);
        let (events, _) = run(&mut detector, &burst(CODE, 1000.0, &[5.0]));
        assert_eq!(events, vec![DetectorEvent::Duplicate]);
    }

    // docs/cashier-screens.md §6.3 case 12: bursts in the amount field → not applied to the amount.
    #[test]
    fn a_scanner_burst_never_reaches_the_amount() {
        let mut detector = amount_screen();
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::ScanWhileEnteringAmount]);
        // The scanner's Enter must not confirm the amount.
        let enter = outcomes.last().unwrap();
        assert!(!enter.pass_to_page && enter.prevent_default && enter.stop_propagation);
        assert!(outcomes.iter().all(|o| !o.pass_to_page));
    }

    #[test]
    fn a_suffixless_burst_in_the_amount_is_dropped_too() {
        let mut detector = amount_screen();
        let (events, _) = run(&mut detector, &burst(CODE, 0.0, &[9.0]));
        assert_eq!(events, vec![DetectorEvent::ScanWhileEnteringAmount]);
    }

    #[test]
    fn typed_amount_digits_are_applied_in_order_before_enter() {
        let mut detector = amount_screen();
        let mut keys = vec![
            digit_key(0.0, '1'),
            digit_key(150.0, '2'),
            named_key(300.0, "Period", "."),
            digit_key(420.0, '3'),
            digit_key(470.0, '0'),
        ];
        keys.push(named_key(520.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(
            events,
            vec![
                DetectorEvent::AmountDigits("1".into()),
                DetectorEvent::AmountDigits("2".into()),
                DetectorEvent::AmountDigits("30".into()),
            ]
        );
        // The point and the Enter go to the page (after the digits before them).
        assert!(outcomes[2].pass_to_page);
        assert!(outcomes[5].pass_to_page && !outcomes[5].prevent_default);
        // Digits themselves never type anywhere.
        assert!(outcomes[0].prevent_default && !outcomes[0].pass_to_page);
    }

    #[test]
    fn two_quick_amount_digits_still_count() {
        // Odoo's rule: at most two keys in one window are typing, e.g. a quick "00".
        let mut detector = amount_screen();
        let (events, _) = run(&mut detector, &[digit_key(0.0, '0'), digit_key(20.0, '0')]);
        assert_eq!(events, vec![DetectorEvent::AmountDigits("00".into())]);
    }

    #[test]
    fn busy_mode_reports_scans_without_submitting_them() {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Busy);
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::ScanWhileBusy]);
        assert!(!outcomes.last().unwrap().pass_to_page);
        // Escape still reaches the page's shortcuts.
        let escape = detector.on_key(&KeyInput::new(2000.0, "Escape", "Escape"));
        assert!(escape.pass_to_page);
    }

    #[test]
    fn passive_mode_lets_keys_type_but_catches_a_scan() {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Passive);
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        assert!(outcomes[..18].iter().all(|o| !o.prevent_default));
        assert!(outcomes[18].stop_propagation && outcomes[18].prevent_default);
    }

    #[test]
    fn passive_mode_leaves_typed_codes_to_the_field() {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Passive);
        let mut keys = burst(CODE, 0.0, &[130.0]);
        keys.push(named_key(last_time(&keys) + 200.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert!(events.is_empty());
        assert!(outcomes.last().unwrap().pass_to_page);
    }

    #[test]
    fn off_mode_passes_everything() {
        let mut detector = WedgeDetector::default();
        let (events, outcomes) = run(&mut detector, &burst(CODE, 0.0, &[5.0]));
        assert!(events.is_empty());
        assert!(
            outcomes
                .iter()
                .all(|o| o.pass_to_page && !o.prevent_default)
        );
    }

    #[test]
    fn repeat_and_shortcuts_reset_the_buffer() {
        let mut detector = armed();
        let mut keys = burst(&CODE[..10], 0.0, &[5.0]);
        let mut shortcut = digit_key(last_time(&keys) + 5.0, '5');
        shortcut.shortcut = true;
        keys.push(shortcut);
        keys.extend(burst(&CODE[10..], last_time(&keys) + 5.0, &[5.0]));
        let (events, outcomes) = run(&mut detector, &keys);
        assert!(scanned(&events).is_empty());
        assert!(outcomes[10].pass_to_page && !outcomes[10].prevent_default);
    }

    #[test]
    fn ime_keys_without_digit_codes_ask_for_the_fallback_once() {
        let mut detector = armed();
        let unidentified = KeyInput {
            key_code: 229,
            ..KeyInput::new(0.0, "", "Unidentified")
        };
        let first = detector.on_key(&unidentified);
        assert_eq!(first.events, vec![DetectorEvent::ImeSuspected]);
        assert!(
            !first.prevent_default,
            "the hidden input must receive the character"
        );
        let second = detector.on_key(&KeyInput {
            time_ms: 5.0,
            ..unidentified
        });
        assert!(second.events.is_empty());
        assert!(detector.ime_suspected());
    }

    #[test]
    fn hidden_input_text_is_evaluated_like_keys() {
        // Android delivers one character per `input` event, DataWedge the whole code at once;
        // composed CJK text is dropped.
        let mut detector = armed();
        let mut events = Vec::new();
        for (index, digit) in CODE.chars().enumerate() {
            events.extend(detector.on_text(index as f64 * 9.0, &digit.to_string()));
        }
        events.extend(detector.on_text(200.0, "中文"));
        assert!(events.is_empty());
        let deadline = detector.deadline().unwrap();
        let events = detector.on_timer(deadline);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Idle)]);

        let mut detector = armed();
        let other = "104567890123455678";
        assert!(detector.on_text(0.0, other).is_empty());
        // All digits arrived at once: zero gaps, which is scanner speed.
        let events = detector.on_timer(detector.deadline().unwrap());
        assert_eq!(scanned(&events), vec![(other.to_owned(), Terminator::Idle)]);
    }

    #[test]
    fn human_digits_before_a_scan_do_not_spoil_it() {
        let mut detector = armed();
        let mut keys = vec![digit_key(0.0, '7'), digit_key(400.0, '3')];
        keys.extend(burst(CODE, 1500.0, &[5.0]));
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    #[test]
    fn patterns() {
        assert!(is_wechat_pattern(CODE));
        assert!(is_wechat_pattern("154567890123455678"));
        assert!(!is_wechat_pattern("164567890123455678"));
        assert!(!is_wechat_pattern("13456789012345567"));
        assert!(is_alipay_pattern("2876543210987654"));
        assert!(is_alipay_pattern("300000000000000000000000"));
        assert!(!is_alipay_pattern("3100000000000000"));
        assert!(!is_alipay_pattern("287654321098765"));
    }

    // --- Prefixes: keys a scanner sends before its digits ----------------------------------

    fn in_mode(mode: Mode, key: Key) -> Key {
        Key {
            mode: Some(mode),
            ..key
        }
    }

    /// The cashier typed `1`; 300 ms later a scanner with a leading Enter sends Enter, the
    /// code 8 ms apart and Enter. The page confirms ¥1.00 on the Enter (as for any Enter) and
    /// arms the scanner; the burst then says the Enter was the scanner's.
    #[test]
    fn a_scanners_leading_enter_on_the_amount_screen_is_taken_back() {
        let mut detector = amount_screen();
        let mut keys = vec![digit_key(0.0, '1'), named_key(300.0, "Enter", "Enter")];
        let mut code = burst(CODE, 308.0, &[8.0]);
        code[0].mode = Some(Mode::Armed);
        keys.extend(code);
        keys.push(named_key(last_time(&keys) + 8.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(events[0], DetectorEvent::AmountDigits("1".into()));
        assert_eq!(events[1], DetectorEvent::PrefixTakeBack { since_ms: 300.0 });
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        assert_eq!(events.len(), 3);
        // The leading Enter reached the page at once: no delay on a cashier's Enter.
        assert!(outcomes[1].pass_to_page && !outcomes[1].prevent_default);
    }

    #[test]
    fn a_leading_enter_before_a_burst_on_the_amount_screen_is_taken_back_too() {
        // The large-amount screen: the Enter does not leave amount mode.
        let mut detector = amount_screen();
        let mut keys = vec![named_key(5000.0, "Enter", "Enter")];
        keys.extend(burst(CODE, 5006.0, &[6.0]));
        keys.push(named_key(last_time(&keys) + 6.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(
            events,
            vec![
                DetectorEvent::PrefixTakeBack { since_ms: 5000.0 },
                DetectorEvent::ScanWhileEnteringAmount,
            ]
        );
        // The suffix Enter never reaches the page (it would confirm).
        let suffix = outcomes.last().unwrap();
        assert!(suffix.prevent_default && suffix.stop_propagation && !suffix.pass_to_page);
    }

    #[test]
    fn tab_escape_and_other_keys_before_a_scan_are_a_prefix() {
        for (code, key) in [
            ("Tab", "Tab"),
            ("Escape", "Escape"),
            ("F9", "F9"),
            ("KeyA", "A"),
            ("NumpadEnter", "Enter"),
        ] {
            let mut detector = armed();
            // Two prefix keys 5 ms apart: the take-back starts at the first.
            let mut keys = vec![named_key(100.0, code, key), named_key(105.0, code, key)];
            keys.extend(burst(CODE, 110.0, &[5.0]));
            keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
            let (events, _) = run(&mut detector, &keys);
            assert_eq!(
                events[0],
                DetectorEvent::PrefixTakeBack { since_ms: 100.0 },
                "{code}"
            );
            assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        }
    }

    #[test]
    fn a_deliberate_enter_is_never_taken_back() {
        // The cashier's Enter, then the scan 0.5 s later: the Enter was the cashier's.
        let mut detector = amount_screen();
        let mut keys = enter_then(0.0, burst(CODE, 500.0, &[8.0]));
        keys.push(named_key(last_time(&keys) + 8.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    #[test]
    fn digits_typed_by_hand_right_after_enter_do_not_take_it_back() {
        // A fast typist: Enter, then digits at human speed starting 40 ms later.
        let mut detector = amount_screen();
        let keys = enter_then(0.0, burst(CODE, 40.0, &[120.0]));
        let (events, _) = run(&mut detector, &keys);
        assert!(
            !events
                .iter()
                .any(|event| matches!(event, DetectorEvent::PrefixTakeBack { .. })),
            "{events:?}"
        );
        // And on the amount screen: Enter, then a human's two digits.
        let mut detector = amount_screen();
        let keys = vec![
            named_key(0.0, "Enter", "Enter"),
            digit_key(30.0, '5'),
            digit_key(60.0, '0'),
        ];
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::AmountDigits("50".into())]);
    }

    #[test]
    fn a_double_trigger_with_a_prefix_takes_its_prefix_back_and_is_a_duplicate() {
        let mut detector = armed();
        let mut keys = vec![named_key(0.0, "Enter", "Enter")];
        keys.extend(burst(CODE, 8.0, &[8.0]));
        keys.push(named_key(last_time(&keys) + 8.0, "Enter", "Enter"));
        let start = last_time(&keys) + 300.0;
        keys.push(in_mode(Mode::Busy, named_key(start, "Enter", "Enter")));
        keys.extend(burst(CODE, start + 8.0, &[8.0]));
        keys.push(named_key(last_time(&keys) + 8.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events).len(), 1);
        assert_eq!(
            &events[events.len() - 2..],
            &[
                DetectorEvent::PrefixTakeBack { since_ms: start },
                DetectorEvent::Duplicate
            ]
        );
    }

    #[test]
    fn a_forgotten_scan_is_taken_again_at_once() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[5.0]);
        keys.push(named_key(last_time(&keys) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events).len(), 1);
        detector.forget_last_scan();
        let mut again = burst(CODE, 1000.0, &[5.0]);
        again.push(named_key(last_time(&again) + 5.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &again);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    // --- Suffixes: any key that ends a burst ---------------------------------------------

    fn suffixed(suffix: Key) -> (Vec<DetectorEvent>, KeyOutcome) {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[8.0]);
        keys.push(Key {
            at: last_time(&keys) + 8.0,
            ..suffix
        });
        let (events, outcomes) = run(&mut detector, &keys);
        (events, outcomes.last().cloned().unwrap())
    }

    #[test]
    fn any_non_digit_key_after_a_burst_ends_the_scan_and_is_swallowed() {
        let ctrl = |code: &str, key: &str| Key {
            shortcut: true,
            ..named_key(0.0, code, key)
        };
        for (suffix, terminator) in [
            (named_key(0.0, "F12", "F12"), Terminator::OtherKey),
            (named_key(0.0, "F8", "F8"), Terminator::OtherKey),
            (named_key(0.0, "Escape", "Escape"), Terminator::OtherKey),
            (
                named_key(0.0, "ArrowDown", "ArrowDown"),
                Terminator::OtherKey,
            ),
            (named_key(0.0, "End", "End"), Terminator::OtherKey),
            (ctrl("KeyJ", "j"), Terminator::OtherKey),
            (ctrl("KeyM", "m"), Terminator::OtherKey),
            (named_key(0.0, "NumpadEnter", "Enter"), Terminator::Enter),
            (named_key(0.0, "Tab", "Tab"), Terminator::Tab),
            (named_key(0.0, "Enter", "Enter"), Terminator::Enter),
        ] {
            let name = suffix.code.clone();
            let (events, outcome) = suffixed(suffix);
            assert_eq!(
                scanned(&events),
                vec![(CODE.to_owned(), terminator)],
                "{name}"
            );
            assert!(
                outcome.prevent_default && outcome.stop_propagation && !outcome.pass_to_page,
                "{name}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_two_key_suffix_is_swallowed_whole() {
        for second in [
            named_key(0.0, "Enter", "Enter"),
            Key {
                shortcut: true,
                ..named_key(0.0, "KeyJ", "j")
            },
        ] {
            let mut detector = WedgeDetector::default();
            detector.set_mode(Mode::Amount);
            let mut keys = burst(CODE, 0.0, &[8.0]);
            keys.push(named_key(last_time(&keys) + 8.0, "Tab", "Tab"));
            keys.push(Key {
                at: last_time(&keys) + 8.0,
                ..second
            });
            let (events, outcomes) = run(&mut detector, &keys);
            assert_eq!(events, vec![DetectorEvent::ScanWhileEnteringAmount]);
            // The second suffix key would confirm the amount if the page saw it.
            for outcome in &outcomes[outcomes.len() - 2..] {
                assert!(
                    outcome.prevent_default && !outcome.pass_to_page,
                    "{outcome:?}"
                );
            }
        }
    }

    #[test]
    fn a_burst_with_an_f12_suffix_while_typing_the_amount_is_dropped_and_f12_swallowed() {
        let mut detector = amount_screen();
        let mut keys = burst(CODE, 0.0, &[8.0]);
        keys.push(named_key(last_time(&keys) + 8.0, "F12", "F12"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::ScanWhileEnteringAmount]);
        assert!(outcomes.last().unwrap().stop_propagation);
    }

    #[test]
    fn a_key_after_the_idle_time_is_not_a_suffix() {
        let mut detector = armed();
        let mut keys = burst(CODE, 0.0, &[8.0]);
        keys.push(named_key(last_time(&keys) + 400.0, "Escape", "Escape"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Idle)]);
        assert!(outcomes.last().unwrap().pass_to_page);
    }

    #[test]
    fn keys_after_human_typing_are_the_pages() {
        // Two quick digits of an amount, then Backspace and Escape: all the page's.
        let mut detector = amount_screen();
        let keys = vec![
            digit_key(0.0, '1'),
            digit_key(20.0, '2'),
            named_key(40.0, "Backspace", "Backspace"),
            named_key(200.0, "Escape", "Escape"),
        ];
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(events, vec![DetectorEvent::AmountDigits("12".into())]);
        assert!(outcomes[2].pass_to_page && !outcomes[2].prevent_default);
        assert!(outcomes[3].pass_to_page);
        // On the waiting screen, a person's F5 after a few digits reloads as usual.
        let mut detector = armed();
        let keys = vec![
            digit_key(0.0, '1'),
            digit_key(150.0, '2'),
            named_key(300.0, "F5", "F5"),
        ];
        let (_, outcomes) = run(&mut detector, &keys);
        assert!(outcomes[2].pass_to_page && !outcomes[2].prevent_default);
    }

    // --- Keypad emulation: Alt + the character's number on the numpad --------------------

    /// `text` typed as Alt + numpad: for each character Alt goes down, its decimal ASCII
    /// value is typed on the numpad (three digits), and Alt goes up; `gap` ms between key
    /// events. `echo` adds the character Windows composes after Alt's release.
    fn keypad_emulation(text: &str, start: f64, gap: f64, echo: bool) -> Vec<Key> {
        let mut keys = Vec::new();
        let mut at = start;
        for character in text.chars() {
            let alt = |at: f64, code: &str, key: &str| Key {
                alt: true,
                ..named_key(at, code, key)
            };
            keys.push(alt(at, "AltLeft", "Alt"));
            for digit in format!("{:03}", u32::from(character)).chars() {
                at += gap;
                keys.push(alt(at, &format!("Numpad{digit}"), &digit.to_string()));
            }
            at += gap;
            keys.push(Key {
                up: true,
                ..named_key(at, "AltLeft", "Alt")
            });
            if echo {
                keys.push(named_key(at + 1.0, "", &character.to_string()));
            }
            at += gap;
        }
        keys
    }

    #[test]
    fn alt_numpad_characters_are_decoded_as_digits() {
        let mut detector = armed();
        let mut keys = keypad_emulation(CODE, 0.0, 4.0, false);
        keys.push(named_key(last_time(&keys) + 4.0, "Enter", "Enter"));
        let (events, outcomes) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        assert_eq!(events.len(), 1, "{events:?}");
        // Numpad keys under Alt never type or reach the page.
        assert!(
            outcomes
                .iter()
                .filter(|outcome| !outcome.pass_to_page)
                .count()
                >= CODE.len() * 4
        );
    }

    #[test]
    fn the_character_windows_composes_after_alt_is_not_counted_twice() {
        let mut detector = armed();
        let mut keys = keypad_emulation(CODE, 0.0, 4.0, true);
        keys.push(named_key(last_time(&keys) + 4.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
        // The same through the hidden capture field: the composed character is its input.
        let mut detector = armed();
        let mut events = Vec::new();
        for key in keypad_emulation(CODE, 0.0, 4.0, true) {
            let input = KeyInput {
                alt: key.alt,
                ..KeyInput::new(key.at, &key.code, &key.key)
            };
            if key.up {
                events.extend(detector.on_key_up(&input).events);
            } else if key.code.is_empty() {
                events.extend(detector.on_text(key.at, &key.key));
            } else {
                events.extend(detector.on_key(&input).events);
            }
        }
        events.extend(detector.on_timer(f64::MAX));
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Idle)]);
    }

    #[test]
    fn a_keypad_scan_is_led_by_a_key_only_within_the_key_gap_of_its_first_key() {
        // The cashier's Enter 300 ms before the first Alt: not a prefix, although the first
        // character completes within four keys' worth of gaps.
        let mut detector = amount_screen();
        let keys = enter_then(0.0, keypad_emulation(CODE, 300.0, 4.0, false));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Idle)]);
        // The scanner's own Enter 4 ms before its first Alt: a prefix.
        let mut detector = amount_screen();
        let keys = enter_then(296.0, keypad_emulation(CODE, 300.0, 4.0, false));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(events[0], DetectorEvent::PrefixTakeBack { since_ms: 296.0 });
    }

    #[test]
    fn alt_numpad_enter_ends_the_scan() {
        let mut detector = armed();
        let mut keys = keypad_emulation(CODE, 0.0, 4.0, false);
        keys.extend(keypad_emulation("\r", last_time(&keys) + 4.0, 4.0, false));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }

    #[test]
    fn alt_numpad_typed_by_hand_is_not_a_scan() {
        let mut detector = armed();
        let keys = keypad_emulation(CODE, 0.0, 150.0, false);
        let (events, _) = run(&mut detector, &keys);
        assert!(scanned(&events).is_empty(), "{events:?}");
    }

    // --- Digits that are not ASCII -------------------------------------------------------

    #[test]
    fn full_width_and_other_script_digits_in_the_capture_field_are_a_scan() {
        for text in [
            "１３４５６７８９０１２３４５５６７８",
            "١٣٤٥٦٧٨٩٠١٢٣٤٥٥٦٧٨",
            "१३४५६७८९०१२३४५५६७८",
        ] {
            let mut detector = armed();
            let mut events = Vec::new();
            for (index, character) in text.chars().enumerate() {
                events.extend(detector.on_text(index as f64 * 6.0, &character.to_string()));
            }
            events.extend(detector.on_timer(1000.0));
            assert_eq!(
                scanned(&events),
                vec![(CODE.to_owned(), Terminator::Idle)],
                "{text}"
            );
        }
    }

    #[test]
    fn a_digit_key_value_in_another_script_is_a_digit() {
        let mut detector = armed();
        let mut keys: Vec<Key> = CODE
            .chars()
            .enumerate()
            .map(|(index, digit)| {
                let value = digit.to_digit(10).unwrap();
                let full_width = char::from_u32(0xFF10 + value).unwrap();
                named_key(index as f64 * 7.0, "", &full_width.to_string())
            })
            .collect();
        keys.push(named_key(last_time(&keys) + 7.0, "Enter", "Enter"));
        let (events, _) = run(&mut detector, &keys);
        assert_eq!(scanned(&events), vec![(CODE.to_owned(), Terminator::Enter)]);
    }
}
