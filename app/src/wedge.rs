//! The keyboard-wedge scanner detector of `cashier-ux.md` §6.1, as a pure state machine.
//!
//! A wedge scanner is a keyboard: it "types" the 18 digits of the customer's payment code in a
//! burst of key events 5–15 ms apart, usually followed by Enter. People type the same digits
//! with gaps of 80 ms and more. [`WedgeDetector`] tells the two apart from key timestamps
//! alone, so it knows nothing of the DOM: the browser glue (`capture.rs`) turns every
//! `keydown` into a [`KeyInput`], calls [`WedgeDetector::on_key`], obeys the returned
//! [`KeyOutcome`] (`preventDefault`, `stopPropagation`, whether the page may see the key) and
//! calls [`WedgeDetector::on_timer`] when [`WedgeDetector::deadline`] passes. Native unit tests
//! feed it synthetic key traces.
//!
//! Digits are decoded from `KeyboardEvent.code` (`Digit0`–`Digit9`, `Numpad0`–`Numpad9`),
//! which does not depend on the keyboard layout, Shift, NumLock or an IME reporting
//! `key = "Process"`; `key` is the fallback for events that carry no `code`.

/// Timing limits. The defaults are the ones `cashier-ux.md` §6.1 recommends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WedgeConfig {
    /// The longest gap between two keys of one scan. Bluetooth scanners pause up to ~47 ms.
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

/// One `keydown`, reduced to what the detector needs.
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
    /// No suffix: the idle timeout finished it.
    Idle,
}

/// Timing figures of one burst, kept so a shop can tune the limits per scanner model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanStats {
    /// How many digits.
    pub digits: usize,
    /// First to last digit.
    pub duration_ms: f64,
    /// Average gap between digits.
    pub avg_gap_ms: f64,
    /// Largest gap between digits.
    pub max_gap_ms: f64,
    /// How it ended.
    pub terminator: Terminator,
}

/// What the detector tells the page.
#[derive(Clone, Debug, PartialEq)]
pub enum DetectorEvent {
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

fn classify(input: &KeyInput<'_>) -> KeyClass {
    let digit_code = input
        .code
        .strip_prefix("Digit")
        .or_else(|| input.code.strip_prefix("Numpad"));
    if let Some(rest) = digit_code
        && let [digit @ b'0'..=b'9'] = rest.as_bytes()
    {
        return KeyClass::Digit(digit - b'0');
    }
    if let [digit @ b'0'..=b'9'] = input.key.as_bytes() {
        return KeyClass::Digit(digit - b'0');
    }
    match (input.key, input.code) {
        ("Enter", _) | (_, "Enter") | (_, "NumpadEnter") => {
            return KeyClass::Terminator(Terminator::Enter);
        }
        ("Tab", _) | (_, "Tab") => return KeyClass::Terminator(Terminator::Tab),
        ("Shift" | "Alt" | "AltGraph" | "Control" | "CapsLock" | "NumLock", _) => {
            return KeyClass::Modifier;
        }
        _ => {}
    }
    if input.key_code == 229 || input.key == "Process" || input.key == "Unidentified" {
        return KeyClass::Ime;
    }
    KeyClass::Other
}

/// Whether `digits` is a WeChat payment code: `^1[0-5]\d{16}$`.
pub fn is_wechat_pattern(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    bytes.len() == 18
        && bytes[0] == b'1'
        && (b'0'..=b'5').contains(&bytes[1])
        && bytes.iter().all(u8::is_ascii_digit)
}

/// Whether `digits` looks like an Alipay payment code: `^(2[5-9]|30)\d{14,22}$`.
pub fn is_alipay_pattern(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    (16..=24).contains(&bytes.len())
        && bytes.iter().all(u8::is_ascii_digit)
        && matches!((bytes[0], bytes[1]), (b'2', b'5'..=b'9') | (b'3', b'0'))
}

/// The detector. One per page; see the module documentation.
#[derive(Clone, Debug)]
pub struct WedgeDetector {
    config: WedgeConfig,
    mode: Mode,
    /// The current run of digits whose gaps are all within `max_gap_ms` (or
    /// `amount_settle_ms` while the amount is typed).
    burst: Vec<(u8, f64)>,
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
    /// duplicate memory is kept, so a double trigger across a screen change is still caught.
    pub fn set_mode(&mut self, mode: Mode) {
        if mode != self.mode {
            self.mode = mode;
            self.reset();
        }
    }

    /// Whether an IME was noticed since the last reset of the flag.
    pub fn ime_suspected(&self) -> bool {
        self.ime_reported
    }

    /// When the glue must call [`WedgeDetector::on_timer`] next (same clock as the key
    /// timestamps), if anything is pending.
    pub fn deadline(&self) -> Option<f64> {
        let &(_, last) = self.burst.last()?;
        let wait = match self.mode {
            Mode::Amount => self.config.amount_settle_ms,
            _ => self.config.end_idle_ms,
        };
        Some(last + wait)
    }

    /// Handles one `keydown`.
    pub fn on_key(&mut self, input: &KeyInput<'_>) -> KeyOutcome {
        if self.mode == Mode::Off {
            return KeyOutcome::passed(Vec::new());
        }
        // A held key or a Ctrl/Meta shortcut is never part of a scan.
        if input.repeat || input.shortcut_modifier {
            let events = self.settle_amount();
            self.reset();
            let mut outcome = KeyOutcome::passed(events);
            // Digits are never typed into the amount by auto-repeat: the keypad adds them
            // one press at a time.
            if self.mode == Mode::Amount && matches!(classify(input), KeyClass::Digit(_)) {
                outcome.prevent_default = true;
                outcome.pass_to_page = false;
            }
            return outcome;
        }
        match classify(input) {
            KeyClass::Digit(digit) => self.on_digit(digit, input.time_ms),
            KeyClass::Terminator(terminator) => self.on_terminator(terminator),
            KeyClass::Modifier => KeyOutcome::passed(Vec::new()),
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
            KeyClass::Other => {
                // A letter or any other key: whatever was buffered is not a payment code.
                let events = self.settle_amount();
                self.reset();
                KeyOutcome::passed(events)
            }
        }
    }

    /// Handles the text of an `input` event on the hidden capture field (IME, Android soft
    /// keyboard, DataWedge injection). Only ASCII digits count; composed CJK is dropped.
    pub fn on_text(&mut self, time_ms: f64, text: &str) -> Vec<DetectorEvent> {
        if !matches!(self.mode, Mode::Armed | Mode::Busy) {
            return Vec::new();
        }
        let mut events = Vec::new();
        for byte in text.bytes().filter(u8::is_ascii_digit) {
            events.extend(self.push_digit(byte - b'0', time_ms));
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
        self.typed.clear();
    }

    fn on_digit(&mut self, digit: u8, time_ms: f64) -> KeyOutcome {
        let events = self.push_digit(digit, time_ms);
        match self.mode {
            // The manual-entry field types the digit itself.
            Mode::Passive => KeyOutcome::passed(events),
            _ => KeyOutcome {
                prevent_default: true,
                stop_propagation: false,
                pass_to_page: false,
                events,
            },
        }
    }

    fn push_digit(&mut self, digit: u8, time_ms: f64) -> Vec<DetectorEvent> {
        let mut events = Vec::new();
        let split_gap = match self.mode {
            Mode::Amount => self.config.amount_settle_ms,
            _ => self.config.max_gap_ms,
        };
        if let Some(&(_, last)) = self.burst.last()
            && time_ms - last > split_gap
        {
            // Too slow to continue the burst: finish the old one, start a new one.
            if self.mode == Mode::Amount {
                events.extend(self.settle_amount());
            } else {
                events.extend(self.finish_scan_burst(Terminator::Idle));
                self.burst.clear();
            }
        }
        if self.mode == Mode::Armed {
            if !self.typed.is_empty() && time_ms - self.typed_last_ms > self.config.human_reset_ms {
                self.typed.clear();
            }
            self.typed.push(char::from(b'0' + digit));
            self.typed_last_ms = time_ms;
        }
        self.burst.push((digit, time_ms));
        events
    }

    fn on_terminator(&mut self, terminator: Terminator) -> KeyOutcome {
        match self.mode {
            Mode::Amount => {
                if self.burst_is_scan_speed() && self.burst.len() >= self.config.amount_burst_len {
                    self.burst.clear();
                    KeyOutcome::swallowed(vec![DetectorEvent::ScanWhileEnteringAmount])
                } else {
                    KeyOutcome::passed(self.settle_amount())
                }
            }
            Mode::Passive => {
                let scan_like =
                    self.burst_is_scan_speed() && self.burst.len() >= self.config.min_len;
                let events = self.finish_burst(terminator);
                if scan_like {
                    KeyOutcome::swallowed(events)
                } else {
                    KeyOutcome::passed(events)
                }
            }
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
            self.typed.clear();
            return events;
        }
        self.burst.clear();
        if self.mode == Mode::Armed && is_wechat_pattern(&self.typed) {
            self.typed.clear();
            events.push(DetectorEvent::ManualLikeEntry);
        }
        events
    }

    /// Reports a scanner-speed burst: a scan, a duplicate, a busy scan or an unrecognised
    /// code. Slow bursts report nothing here.
    fn finish_scan_burst(&mut self, terminator: Terminator) -> Option<DetectorEvent> {
        if !self.burst_is_scan_speed() {
            return None;
        }
        let stats = self.burst_stats(terminator);
        let code: String = self
            .burst
            .iter()
            .map(|&(digit, _)| char::from(b'0' + digit))
            .collect();
        let at = self.burst.last().map_or(0.0, |&(_, time)| time);
        if !is_wechat_pattern(&code) && !is_alipay_pattern(&code) {
            return (stats.digits >= self.config.min_len)
                .then_some(DetectorEvent::Unrecognised(stats));
        }
        if let Some((previous, previous_at)) = &self.last_scan
            && *previous == code
            && at - previous_at <= self.config.dup_window_ms
        {
            return Some(DetectorEvent::Duplicate);
        }
        self.last_scan = Some((code.clone(), at));
        match self.mode {
            Mode::Busy => Some(DetectorEvent::ScanWhileBusy),
            _ => Some(DetectorEvent::Scanned { code, stats }),
        }
    }

    /// While the amount is typed: applies human digits, drops scanner bursts.
    fn settle_amount(&mut self) -> Vec<DetectorEvent> {
        if self.mode != Mode::Amount || self.burst.is_empty() {
            return Vec::new();
        }
        let event =
            if self.burst_is_scan_speed() && self.burst.len() >= self.config.amount_burst_len {
                DetectorEvent::ScanWhileEnteringAmount
            } else {
                DetectorEvent::AmountDigits(
                    self.burst
                        .iter()
                        .map(|&(digit, _)| char::from(b'0' + digit))
                        .collect(),
                )
            };
        self.burst.clear();
        vec![event]
    }

    fn burst_stats(&self, terminator: Terminator) -> ScanStats {
        let gaps = self.burst.windows(2).map(|pair| pair[1].1 - pair[0].1);
        let max_gap_ms = gaps.clone().fold(0.0, f64::max);
        let duration_ms = match (self.burst.first(), self.burst.last()) {
            (Some(first), Some(last)) => last.1 - first.1,
            _ => 0.0,
        };
        let gap_count = self.burst.len().saturating_sub(1);
        ScanStats {
            digits: self.burst.len(),
            duration_ms,
            avg_gap_ms: if gap_count == 0 {
                0.0
            } else {
                duration_ms / gap_count as f64
            },
            max_gap_ms,
            terminator,
        }
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
    }

    fn digit_key(at: f64, digit: char) -> Key {
        Key {
            at,
            code: format!("Digit{digit}"),
            key: digit.to_string(),
            key_code: 48 + digit.to_digit(10).unwrap(),
            repeat: false,
            shortcut: false,
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
            // Timers due before this key fire first, as in a browser.
            if let Some(deadline) = detector.deadline()
                && deadline <= key.at
            {
                events.extend(detector.on_timer(deadline));
            }
            let outcome = detector.on_key(&KeyInput {
                time_ms: key.at,
                code: &key.code,
                key: &key.key,
                key_code: key.key_code,
                repeat: key.repeat,
                shortcut_modifier: key.shortcut,
            });
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

    fn scanned(events: &[DetectorEvent]) -> Vec<(String, Terminator)> {
        events
            .iter()
            .filter_map(|event| match event {
                DetectorEvent::Scanned { code, stats } => Some((code.clone(), stats.terminator)),
                _ => None,
            })
            .collect()
    }

    // §6.3 case 1: 18 digits at 5 ms + Enter → accept.
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

    // §6.3 case 2: the same with Tab.
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

    // §6.3 case 3: no suffix → accept after 100 ms idle, not before.
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

    // §6.3 case 4: numpad codes with NumLock off (key=End, code=Numpad1) → accept.
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

    // §6.3 case 5: key="Process", keyCode 229, digit codes → accept.
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

    // §6.3 case 6: 18 digits at 120 ms → ManualLikeEntry, never a scan.
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

    // §6.3 case 7: Bluetooth burst pattern (6,6,6,47,6,…) → accept.
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

    // §6.3 case 8: leading Enter → accept (the leading Enter passes through).
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

    // §6.3 case 9: Shift/Alt interleaved → accept.
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

    // §6.3 case 10: letters → reset.
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

    // §6.3 case 11: duplicate within 3 s → ignored.
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

    // §6.3 case 12: bursts in the amount field → not applied to the amount.
    #[test]
    fn a_scanner_burst_never_reaches_the_amount() {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Amount);
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
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Amount);
        let (events, _) = run(&mut detector, &burst(CODE, 0.0, &[9.0]));
        assert_eq!(events, vec![DetectorEvent::ScanWhileEnteringAmount]);
    }

    #[test]
    fn typed_amount_digits_are_applied_in_order_before_enter() {
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Amount);
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
        let mut detector = WedgeDetector::default();
        detector.set_mode(Mode::Amount);
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
}
