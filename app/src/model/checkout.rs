//! The checkout flow as a plain state machine: amount → "请出示付款码" → the payment → next.
//!
//! [`Checkout::handle`] takes an [`Input`] (a key, a scan, an answer from the proxy, a timer
//! tick) and returns the [`Effect`]s the browser glue must carry out (persist the attempt,
//! send a request, poll, beep). It does no I/O itself, so every rule below is tested natively:
//!
//! - One payment in flight: while a payment is on screen, scans are reported, never submitted.
//! - The attempt (its `attempt_id`, and the payment code until the proxy has acknowledged it)
//!   is persisted before the request is sent, so a reload resumes the same payment and never
//!   charges twice: a lost answer is resolved by sending the same `attempt_id` again.
//! - An answer that may or may not have taken effect (no answer, 5xx, 408, 429) is retried with the
//!   same key; only a definite 4xx rejection ends an attempt on the app side.
//! - What a keyboard shortcut did ([`Input::Shortcut`]) can be taken back while it changed
//!   nothing outside the page: a scanner's prefix Enter that "confirmed" the amount is undone
//!   when the detector says so ([`DetectorEvent::PrefixTakeBack`]), and its code is not
//!   charged, because the cashier never confirmed that amount.

use paycode_api::{AttemptId, AuthCode, AuthCodeError, CreatePayment, Fen, Payment, PaymentState};
use serde::{Deserialize, Serialize};

use crate::model::amount::{AmountEntry, AmountKey, AmountPolicy, AmountProblem, Proceed};
use crate::model::remote::ApiFailure;
use crate::model::wedge::{DetectorEvent, Mode};

/// How long "取消收款" stays disabled after a payment code is submitted: the micropay call is
/// in flight and a reverse is not allowed that early anyway.
pub const CANCEL_LOCK_MS: f64 = 5_000.0;
/// How long the success screen stays before the next sale starts by itself.
pub const AUTO_NEXT_MS: f64 = 5_000.0;
/// The longest wait between retries of an unanswered request.
pub const MAX_RETRY_DELAY_MS: u32 = 5_000;

/// The attempt kept in `localStorage` until its payment settles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttempt {
    /// The idempotency key of the attempt.
    pub attempt_id: AttemptId,
    /// The amount.
    pub amount_fen: Fen,
    /// The payment code, kept only until the proxy has acknowledged the payment, so a reload
    /// can send the identical request again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<AuthCode>,
    /// The code's last four digits, for the screen.
    pub last4: String,
    /// The proxy's payment id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

impl StoredAttempt {
    /// The request that creates (or replays) this attempt's payment, while the code is known.
    pub fn request(&self) -> Option<CreatePayment> {
        Some(CreatePayment {
            attempt_id: self.attempt_id.clone(),
            amount_fen: self.amount_fen,
            auth_code: self.auth_code.clone()?,
            description: None,
        })
    }

    /// Reads a stored attempt; anything unreadable counts as none.
    pub fn from_json(text: &str) -> Option<StoredAttempt> {
        serde_json::from_str(text).ok()
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Makes a version-4 UUID from 16 random bytes (from `crypto.getRandomValues`, which, unlike
/// `crypto.randomUUID`, also works on a plain-HTTP shop network).
pub fn attempt_id_from_random(mut bytes: [u8; 16]) -> AttemptId {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    AttemptId::parse(&text).expect("8-4-4-4-12 hex digits are a UUID")
}

/// Where a payment code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// The wedge scanner (or the hidden-input fallback).
    Scanner,
    /// Typed into the manual-entry field.
    Manual,
    /// Read by the camera (`docs/capture.md` §7).
    Camera,
}

/// A sound to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sound {
    /// A code was accepted (short 880 Hz beep).
    Scan,
    /// Money received.
    Success,
    /// Something needs the cashier's attention (double low beep).
    Error,
}

/// A one-line message on the current screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The amount cannot be charged.
    AmountRefused(AmountProblem),
    /// A scanner burst arrived while the amount was typed.
    ScanWhileEnteringAmount,
    /// A payment code was typed at human speed on the waiting screen.
    ManualLikeEntry,
    /// A scanner-speed burst that is no payment code.
    UnrecognisedCode,
    /// An Alipay code.
    AlipayCode,
    /// Digits that are no WeChat payment code (manual entry).
    NotWechatCode,
    /// A scan while a payment is in flight.
    ScanWhileBusy,
    /// An IME is active.
    ImeDetected,
    /// A code was scanned on a screen that is not waiting for one (after the take-back of a
    /// scanner's prefix key that had left the waiting screen): scan again.
    ScanAgain,
    /// The proxy refused the payment; its message.
    Rejected(String),
    /// The cancel request did not get through.
    CancelFailed,
}

/// What the glue must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Write the attempt to `localStorage` (or remove it).
    Persist(Option<StoredAttempt>),
    /// `POST /api/v1/payments` after `delay_ms`, answer with [`Input::PostAnswered`].
    Post {
        /// The body.
        body: CreatePayment,
        /// Wait this long first.
        delay_ms: u32,
    },
    /// `GET /api/v1/payments/{id}?wait=25&after_version=N` after `delay_ms`, answer with
    /// [`Input::PollAnswered`].
    Poll {
        /// The payment.
        payment_id: String,
        /// The version already seen.
        after_version: u64,
        /// Wait this long first.
        delay_ms: u32,
    },
    /// `POST /api/v1/payments/{id}/cancel`, answer with [`Input::CancelAnswered`].
    Cancel {
        /// The payment.
        payment_id: String,
    },
    /// Play a sound (if sound is on).
    Sound(Sound),
    /// The token was refused: show the pairing screen, then send [`Input::Retry`].
    Unauthorized,
    /// The scanned code was not taken (the amount was not confirmed): the detector must
    /// take the same code again at once instead of ignoring it as a double trigger.
    ForgetScan,
    /// A wedge scanner typed a code while the camera was the default: remember (in
    /// `localStorage`) that this terminal has a scanner, so the camera no longer opens by
    /// itself.
    ScannerSeen,
}

/// What a keyboard shortcut asks for (the keys the detector passes to the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Enter.
    Proceed,
    /// Esc.
    Back,
    /// Backspace, Delete, the decimal point.
    Key(AmountKey),
}

impl From<Shortcut> for Input {
    fn from(shortcut: Shortcut) -> Input {
        match shortcut {
            Shortcut::Proceed => Input::Proceed,
            Shortcut::Back => Input::Back,
            Shortcut::Key(key) => Input::Key(key),
        }
    }
}

/// Everything that can happen to the checkout.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A keypad key (on screen, or a physical non-digit key).
    Key(AmountKey),
    /// A quick-amount button.
    Quick(Fen),
    /// Enter / the primary button.
    Proceed,
    /// Esc / back.
    Back,
    /// A keyboard shortcut, applied at once and kept briefly so that it can be taken back if
    /// the key turns out to be a scanner's prefix.
    Shortcut {
        /// What the key asks for.
        action: Shortcut,
        /// The key's `Event.timeStamp` (the detector's clock).
        key_ms: f64,
    },
    /// Something the wedge detector noticed (not [`DetectorEvent::Scanned`], which the glue
    /// turns into [`Input::Code`] with a fresh attempt id).
    Detector(DetectorEvent),
    /// A payment code, with a fresh attempt id in case it starts a payment.
    Code {
        /// The digits.
        digits: String,
        /// Where they came from.
        source: CodeSource,
        /// A new UUID v4.
        attempt_id: AttemptId,
    },
    /// Open or close the manual-entry field.
    Manual(bool),
    /// Open or close the camera on the waiting screen (the cashier's choice, kept for the
    /// next sales).
    Camera(bool),
    /// Whether the waiting screen opens with the camera (decided by the glue at start-up:
    /// `model::camera::camera_by_default`).
    PreferCamera(bool),
    /// The answer to [`Effect::Post`].
    PostAnswered(Result<Payment, ApiFailure>),
    /// The answer to [`Effect::Poll`].
    PollAnswered(Result<Payment, ApiFailure>),
    /// "取消收款" pressed: asks for confirmation.
    CancelPressed,
    /// The cancel confirmed.
    CancelConfirmed,
    /// The confirmation dismissed.
    CancelDismissed,
    /// The answer to [`Effect::Cancel`].
    CancelAnswered(Result<Payment, ApiFailure>),
    /// "下一单": a new sale.
    Next,
    /// "重新扫码": the same amount, a new code.
    Rescan,
    /// Leave a payment that needs attention (after confirming).
    LeaveConfirmed,
    /// Keep the success screen up (printing).
    HoldAutoNext,
    /// The clock moved (monotonic milliseconds).
    Tick,
    /// Try the pending request again now (after pairing, or the "重试" button).
    Retry,
    /// A stored attempt found at start-up.
    Resume(StoredAttempt),
}

/// A payment on screen.
#[derive(Clone, Debug, PartialEq)]
pub struct Paying {
    /// The attempt.
    pub attempt: StoredAttempt,
    /// The latest payment the proxy reported; `None` until the first answer.
    pub payment: Option<Payment>,
    /// When this screen started (monotonic ms).
    pub started_ms: f64,
    /// When the proxy stops waiting for the customer (monotonic ms), for the countdown.
    pub deadline_ms: Option<f64>,
    /// When the payment settled; `None` while in progress or when auto-next is held.
    pub auto_next_from_ms: Option<f64>,
    /// Consecutive requests without an answer (drives the back-off and the "reconnecting" line).
    pub failures: u32,
    /// A poll is outstanding.
    pub poll_in_flight: bool,
    /// The cancel confirmation is open.
    pub confirm_cancel: bool,
    /// A cancel request is outstanding.
    pub cancel_in_flight: bool,
    /// The "leave a payment that needs attention" confirmation is open.
    pub confirm_leave: bool,
}

impl Paying {
    /// The state to show: the proxy's, or `submitting` before its first answer.
    pub fn state(&self) -> PaymentState {
        self.payment
            .as_ref()
            .map_or(PaymentState::Submitting, |payment| payment.state)
    }

    /// Whether the outcome is settled.
    pub fn is_settled(&self) -> bool {
        self.state().is_settled()
    }

    /// Whole seconds left on the customer's countdown.
    pub fn seconds_left(&self, now_ms: f64) -> Option<u64> {
        let deadline = self.deadline_ms?;
        Some(((deadline - now_ms).max(0.0) / 1000.0).ceil() as u64)
    }

    /// Whether "取消收款" is offered now.
    pub fn can_cancel(&self, now_ms: f64) -> bool {
        let Some(payment) = &self.payment else {
            return false;
        };
        if self.cancel_in_flight || payment.cancel_requested {
            return false;
        }
        match payment.state {
            PaymentState::WaitingForCustomer | PaymentState::Confirming => true,
            PaymentState::Submitting => now_ms - self.started_ms >= CANCEL_LOCK_MS,
            _ => false,
        }
    }
}

/// Where the checkout is.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// Typing the amount.
    EnterAmount,
    /// Confirming a large amount.
    ConfirmLarge(Fen),
    /// "请出示付款码".
    AwaitingCode {
        /// The amount to charge.
        amount: Fen,
        /// The manual-entry field is open.
        manual: bool,
    },
    /// A payment is on screen.
    Paying(Box<Paying>),
}

/// The checkout: phase, amount entry and the current notice.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkout {
    /// Where it is.
    pub phase: Phase,
    /// The amount being typed (kept when going back from the waiting screen).
    pub entry: AmountEntry,
    /// The message under the main line, if any.
    pub notice: Option<Notice>,
    /// Amount limits.
    pub policy: AmountPolicy,
    /// Whether the waiting screen opens with the camera.
    camera_preferred: bool,
    /// Whether the waiting screen shows the camera now.
    camera_open: bool,
    /// What recent shortcuts changed, oldest first, while nothing left the page since.
    undo: Vec<Undo>,
}

/// The screen before one keyboard shortcut.
#[derive(Clone, Debug, PartialEq)]
struct Undo {
    key_ms: f64,
    phase: Phase,
    entry: AmountEntry,
    notice: Option<Notice>,
}

/// How long a shortcut can be taken back (a scanner's prefix comes milliseconds before its
/// digits, and the take-back at the end of the burst).
const UNDO_WINDOW_MS: f64 = 2_000.0;
/// The most shortcuts kept for taking back.
const UNDO_DEPTH: usize = 8;

impl Default for Checkout {
    fn default() -> Self {
        Checkout::new(AmountPolicy::default())
    }
}

fn retry_delay(failures: u32) -> u32 {
    let exponent = failures.saturating_sub(1).min(8);
    (500u32 << exponent).min(MAX_RETRY_DELAY_MS)
}

impl Checkout {
    /// A checkout at the amount screen.
    pub fn new(policy: AmountPolicy) -> Checkout {
        Checkout {
            phase: Phase::EnterAmount,
            entry: AmountEntry::new(),
            notice: None,
            policy,
            camera_preferred: false,
            camera_open: false,
            undo: Vec::new(),
        }
    }

    /// Whether the camera is open: only on the waiting screen, never with the manual field.
    pub fn camera_open(&self) -> bool {
        self.camera_open && matches!(self.phase, Phase::AwaitingCode { manual: false, .. })
    }

    /// "请出示付款码" for `amount`, with the camera if that is the default.
    fn await_code(&mut self, amount: Fen) {
        self.phase = Phase::AwaitingCode {
            amount,
            manual: false,
        };
        self.camera_open = self.camera_preferred;
    }

    /// What the wedge detector should do on this screen.
    pub fn detector_mode(&self) -> Mode {
        match &self.phase {
            Phase::EnterAmount | Phase::ConfirmLarge(_) => Mode::Amount,
            Phase::AwaitingCode { manual: false, .. } => Mode::Armed,
            Phase::AwaitingCode { manual: true, .. } => Mode::Passive,
            Phase::Paying(_) => Mode::Busy,
        }
    }

    /// The payment on screen, if any.
    pub fn paying(&self) -> Option<&Paying> {
        match &self.phase {
            Phase::Paying(paying) => Some(paying),
            _ => None,
        }
    }

    /// When the success screen gives way to the next sale (monotonic ms).
    pub fn auto_next_at(&self) -> Option<f64> {
        let paying = self.paying()?;
        (paying.state() == PaymentState::Paid).then_some(paying.auto_next_from_ms? + AUTO_NEXT_MS)
    }

    /// Handles one input at monotonic time `now_ms`.
    pub fn handle(&mut self, input: Input, now_ms: f64) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::Key(key) => self.on_amount_key(key, &mut effects),
            Input::Quick(amount) => {
                if self.phase == Phase::EnterAmount {
                    self.entry.set(amount);
                    self.notice = None;
                }
            }
            Input::Proceed => self.on_proceed(now_ms, &mut effects),
            Input::Back => self.on_back(now_ms),
            Input::Shortcut { action, key_ms } => {
                self.on_shortcut(action, key_ms, now_ms, &mut effects);
            }
            Input::Detector(event) => self.on_detector(event, &mut effects),
            Input::Code {
                digits,
                source,
                attempt_id,
            } => self.on_code(&digits, source, attempt_id, now_ms, &mut effects),
            Input::Manual(open) => {
                if let Phase::AwaitingCode { manual, .. } = &mut self.phase {
                    *manual = open;
                    self.notice = None;
                    if open {
                        self.camera_open = false;
                    }
                }
            }
            Input::Camera(open) => {
                if let Phase::AwaitingCode { manual, .. } = &mut self.phase {
                    *manual = false;
                    self.camera_open = open;
                    self.camera_preferred = open;
                    self.notice = None;
                }
            }
            Input::PreferCamera(prefer) => {
                self.camera_preferred = prefer;
                if matches!(self.phase, Phase::AwaitingCode { manual: false, .. }) {
                    self.camera_open = prefer;
                }
            }
            Input::PostAnswered(result) => self.on_post_answered(result, now_ms, &mut effects),
            Input::PollAnswered(result) => self.on_poll_answered(result, now_ms, &mut effects),
            Input::CancelPressed => {
                if let Phase::Paying(paying) = &mut self.phase
                    && paying.can_cancel(now_ms)
                {
                    paying.confirm_cancel = true;
                }
            }
            Input::CancelConfirmed => self.on_cancel_confirmed(&mut effects),
            Input::CancelDismissed => {
                if let Phase::Paying(paying) = &mut self.phase {
                    paying.confirm_cancel = false;
                    paying.confirm_leave = false;
                }
            }
            Input::CancelAnswered(result) => self.on_cancel_answered(result, now_ms, &mut effects),
            Input::Next => self.on_next(),
            Input::Rescan => {
                if let Phase::Paying(paying) = &self.phase
                    && paying.is_settled()
                    && paying.state() != PaymentState::Paid
                {
                    let amount = paying.attempt.amount_fen;
                    self.await_code(amount);
                    self.notice = None;
                }
            }
            Input::LeaveConfirmed => {
                if let Phase::Paying(paying) = &self.phase
                    && paying.confirm_leave
                {
                    self.start_new_sale();
                    effects.push(Effect::Persist(None));
                }
            }
            Input::HoldAutoNext => {
                if let Phase::Paying(paying) = &mut self.phase {
                    paying.auto_next_from_ms = None;
                }
            }
            Input::Tick => {
                if self.auto_next_at().is_some_and(|due| now_ms >= due) {
                    self.start_new_sale();
                }
            }
            Input::Retry => self.on_retry(&mut effects),
            Input::Resume(attempt) => self.on_resume(attempt, now_ms, &mut effects),
        }
        // Past a request, a stored attempt or a sign-in, nothing can be taken back.
        if effects
            .iter()
            .any(|effect| !matches!(effect, Effect::Sound(_)))
        {
            self.undo.clear();
        }
        effects
    }

    /// Applies a keyboard shortcut at once, keeping the screen before it for a take-back.
    fn on_shortcut(
        &mut self,
        action: Shortcut,
        key_ms: f64,
        now_ms: f64,
        effects: &mut Vec<Effect>,
    ) {
        let before = Undo {
            key_ms,
            phase: self.phase.clone(),
            entry: self.entry.clone(),
            notice: self.notice.clone(),
        };
        // A payment in progress moves on by itself: its screen is never restored.
        let restorable = self.paying().is_none_or(Paying::is_settled);
        let mut own = self.handle(action.into(), now_ms);
        let local = own.iter().all(|effect| matches!(effect, Effect::Sound(_)));
        effects.append(&mut own);
        if !(restorable && local) {
            self.undo.clear();
            return;
        }
        self.undo
            .retain(|undo| undo.key_ms >= key_ms - UNDO_WINDOW_MS && undo.key_ms <= key_ms);
        if self.undo.len() == UNDO_DEPTH {
            self.undo.remove(0);
        }
        self.undo.push(before);
    }

    /// Restores the screen from before the first shortcut at or after `since_ms`: those keys
    /// were a scanner's prefix, not the cashier's.
    fn take_back(&mut self, since_ms: f64) {
        if let Some(index) = self.undo.iter().position(|undo| undo.key_ms >= since_ms) {
            let undo = self.undo.swap_remove(index);
            self.phase = undo.phase;
            self.entry = undo.entry;
            self.notice = undo.notice;
        }
        self.undo.clear();
    }

    fn start_new_sale(&mut self) {
        self.phase = Phase::EnterAmount;
        self.entry = AmountEntry::new();
        self.notice = None;
    }

    fn on_amount_key(&mut self, key: AmountKey, effects: &mut Vec<Effect>) {
        if self.phase != Phase::EnterAmount {
            return;
        }
        if self.entry.press(key) {
            self.notice = None;
        } else if key != AmountKey::Clear {
            effects.push(Effect::Sound(Sound::Error));
        }
    }

    fn on_proceed(&mut self, now_ms: f64, effects: &mut Vec<Effect>) {
        match &mut self.phase {
            Phase::EnterAmount => match self.entry.proceed(&self.policy) {
                Proceed::Charge(amount) => {
                    self.await_code(amount);
                    self.notice = None;
                }
                Proceed::ConfirmLarge(amount) => {
                    self.phase = Phase::ConfirmLarge(amount);
                    self.notice = None;
                }
                Proceed::Refuse(problem) => {
                    self.notice = Some(Notice::AmountRefused(problem));
                    effects.push(Effect::Sound(Sound::Error));
                }
            },
            Phase::ConfirmLarge(amount) => {
                let amount = *amount;
                self.await_code(amount);
            }
            Phase::AwaitingCode { .. } => {}
            Phase::Paying(paying) => {
                if paying.confirm_cancel {
                    self.on_cancel_confirmed(effects);
                } else if paying.confirm_leave {
                    self.start_new_sale();
                    effects.push(Effect::Persist(None));
                } else if paying.is_settled() {
                    if paying.state() == PaymentState::Paid {
                        self.start_new_sale();
                    } else {
                        self.handle(Input::Rescan, now_ms);
                    }
                }
            }
        }
    }

    fn on_back(&mut self, now_ms: f64) {
        match &mut self.phase {
            Phase::EnterAmount => {
                self.entry.press(AmountKey::Clear);
                self.notice = None;
            }
            Phase::ConfirmLarge(_) => self.phase = Phase::EnterAmount,
            Phase::AwaitingCode { manual: true, .. } => {
                self.handle(Input::Manual(false), now_ms);
            }
            Phase::AwaitingCode { .. } => {
                self.phase = Phase::EnterAmount;
                self.notice = None;
            }
            Phase::Paying(paying) => {
                if paying.confirm_cancel || paying.confirm_leave {
                    paying.confirm_cancel = false;
                    paying.confirm_leave = false;
                } else if paying.can_cancel(now_ms) {
                    paying.confirm_cancel = true;
                } else if paying.is_settled() {
                    if paying.state() == PaymentState::Paid {
                        self.start_new_sale();
                    } else {
                        // Back to the amount, to change it or start over.
                        self.phase = Phase::EnterAmount;
                        self.notice = None;
                    }
                } else if paying.state() == PaymentState::NeedsAttention {
                    paying.confirm_leave = true;
                }
            }
        }
    }

    fn on_next(&mut self) {
        match &mut self.phase {
            Phase::Paying(paying) if paying.is_settled() => self.start_new_sale(),
            Phase::Paying(paying) if paying.state() == PaymentState::NeedsAttention => {
                paying.confirm_leave = true;
            }
            Phase::Paying(_) => {}
            _ => self.start_new_sale(),
        }
    }

    fn on_detector(&mut self, event: DetectorEvent, effects: &mut Vec<Effect>) {
        let (notice, sound) = match event {
            DetectorEvent::PrefixTakeBack { since_ms } => {
                // The burst's own event follows and says what the scan meets on this screen.
                self.take_back(since_ms);
                return;
            }
            DetectorEvent::ScanWhileEnteringAmount
                if matches!(self.phase, Phase::AwaitingCode { .. }) =>
            {
                (Notice::ScanAgain, true)
            }
            DetectorEvent::AmountDigits(digits) => {
                for digit in digits.bytes() {
                    self.on_amount_key(AmountKey::Digit(digit - b'0'), effects);
                }
                return;
            }
            DetectorEvent::ScanWhileEnteringAmount => (Notice::ScanWhileEnteringAmount, true),
            DetectorEvent::ManualLikeEntry => (Notice::ManualLikeEntry, true),
            DetectorEvent::Unrecognised(_) => (Notice::UnrecognisedCode, true),
            DetectorEvent::ScanWhileBusy => (Notice::ScanWhileBusy, true),
            DetectorEvent::ImeSuspected => (Notice::ImeDetected, false),
            // A double trigger of the code just taken: nothing to say.
            DetectorEvent::Duplicate | DetectorEvent::Scanned { .. } => return,
        };
        self.notice = Some(notice);
        if sound {
            effects.push(Effect::Sound(Sound::Error));
        }
    }

    fn on_code(
        &mut self,
        digits: &str,
        source: CodeSource,
        attempt_id: AttemptId,
        now_ms: f64,
        effects: &mut Vec<Effect>,
    ) {
        if source == CodeSource::Scanner && self.camera_preferred {
            // A scanner is at this counter: the camera stops opening by itself.
            self.camera_preferred = false;
            effects.push(Effect::ScannerSeen);
        }
        let amount = match &self.phase {
            Phase::AwaitingCode { amount, .. } => *amount,
            Phase::Paying(_) => {
                self.notice = Some(Notice::ScanWhileBusy);
                effects.push(Effect::Sound(Sound::Error));
                return;
            }
            Phase::EnterAmount | Phase::ConfirmLarge(_) => {
                // The amount is not confirmed (a scanner's prefix Enter was taken back): the
                // cashier confirms it and scans the same code again.
                self.notice = Some(Notice::ScanWhileEnteringAmount);
                effects.push(Effect::Sound(Sound::Error));
                effects.push(Effect::ForgetScan);
                return;
            }
        };
        let code = match AuthCode::parse(digits) {
            Ok(code) => code,
            Err(error) => {
                self.notice = Some(match (error, source) {
                    (AuthCodeError::Alipay, _) => Notice::AlipayCode,
                    (_, CodeSource::Scanner | CodeSource::Camera) => Notice::UnrecognisedCode,
                    (_, CodeSource::Manual) => Notice::NotWechatCode,
                });
                effects.push(Effect::Sound(Sound::Error));
                return;
            }
        };
        let attempt = StoredAttempt {
            attempt_id,
            amount_fen: amount,
            last4: code.last_four().to_owned(),
            auth_code: Some(code),
            payment_id: None,
        };
        // Persist before sending: a reload from here on replays the same attempt.
        effects.push(Effect::Persist(Some(attempt.clone())));
        effects.push(Effect::Sound(Sound::Scan));
        if let Some(body) = attempt.request() {
            effects.push(Effect::Post { body, delay_ms: 0 });
        }
        self.notice = None;
        self.phase = Phase::Paying(Box::new(Paying {
            attempt,
            payment: None,
            started_ms: now_ms,
            deadline_ms: None,
            auto_next_from_ms: None,
            failures: 0,
            poll_in_flight: false,
            confirm_cancel: false,
            cancel_in_flight: false,
            confirm_leave: false,
        }));
    }

    fn on_post_answered(
        &mut self,
        result: Result<Payment, ApiFailure>,
        now_ms: f64,
        effects: &mut Vec<Effect>,
    ) {
        let Phase::Paying(paying) = &mut self.phase else {
            return;
        };
        if paying.payment.is_some() {
            // A late answer to a retried request: polls already carry the payment.
            if let Ok(payment) = result {
                self.apply_payment(payment, now_ms, effects);
            }
            return;
        }
        match result {
            Ok(payment) => self.apply_payment(payment, now_ms, effects),
            Err(failure) if failure.is_unauthorized() => effects.push(Effect::Unauthorized),
            Err(failure) if failure.is_definite_rejection() => {
                let amount = paying.attempt.amount_fen;
                let message = failure.message().unwrap_or_default().to_owned();
                effects.push(Effect::Persist(None));
                effects.push(Effect::Sound(Sound::Error));
                if failure.field() == Some("amount_fen") {
                    self.phase = Phase::EnterAmount;
                } else {
                    self.await_code(amount);
                }
                self.notice = Some(Notice::Rejected(message));
            }
            Err(_) => {
                paying.failures += 1;
                let delay_ms = retry_delay(paying.failures);
                if let Some(body) = paying.attempt.request() {
                    effects.push(Effect::Post { body, delay_ms });
                }
            }
        }
    }

    fn on_poll_answered(
        &mut self,
        result: Result<Payment, ApiFailure>,
        now_ms: f64,
        effects: &mut Vec<Effect>,
    ) {
        let Phase::Paying(paying) = &mut self.phase else {
            return;
        };
        paying.poll_in_flight = false;
        match result {
            Ok(payment) => self.apply_payment(payment, now_ms, effects),
            Err(failure) if failure.is_unauthorized() => effects.push(Effect::Unauthorized),
            Err(failure)
                if failure.is_definite_rejection() && paying.attempt.request().is_none() =>
            {
                // The proxy no longer knows the payment and the code is gone: nothing left
                // to follow on this screen; the list still shows whatever the proxy has.
                effects.push(Effect::Persist(None));
                effects.push(Effect::Sound(Sound::Error));
                let message = failure.message().unwrap_or_default().to_owned();
                self.start_new_sale();
                self.notice = Some(Notice::Rejected(message));
            }
            Err(_) => {
                paying.failures += 1;
                let delay_ms = retry_delay(paying.failures);
                match (&paying.payment, &paying.attempt.payment_id) {
                    (Some(payment), _) if !payment.state.is_settled() => {
                        paying.poll_in_flight = true;
                        effects.push(Effect::Poll {
                            payment_id: payment.id.clone(),
                            after_version: payment.version,
                            delay_ms,
                        });
                    }
                    (None, Some(payment_id)) => {
                        paying.poll_in_flight = true;
                        effects.push(Effect::Poll {
                            payment_id: payment_id.clone(),
                            after_version: 0,
                            delay_ms,
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_cancel_confirmed(&mut self, effects: &mut Vec<Effect>) {
        let Phase::Paying(paying) = &mut self.phase else {
            return;
        };
        if !paying.confirm_cancel {
            return;
        }
        paying.confirm_cancel = false;
        if let Some(payment) = &paying.payment {
            paying.cancel_in_flight = true;
            effects.push(Effect::Cancel {
                payment_id: payment.id.clone(),
            });
        }
    }

    fn on_cancel_answered(
        &mut self,
        result: Result<Payment, ApiFailure>,
        now_ms: f64,
        effects: &mut Vec<Effect>,
    ) {
        let Phase::Paying(paying) = &mut self.phase else {
            return;
        };
        paying.cancel_in_flight = false;
        match result {
            Ok(payment) => self.apply_payment(payment, now_ms, effects),
            Err(failure) if failure.is_unauthorized() => effects.push(Effect::Unauthorized),
            Err(_) => {
                // The payment may have settled meanwhile; the long-poll shows it. Otherwise
                // the cashier can press cancel again.
                self.notice = Some(Notice::CancelFailed);
                effects.push(Effect::Sound(Sound::Error));
            }
        }
    }

    fn on_retry(&mut self, effects: &mut Vec<Effect>) {
        let Phase::Paying(paying) = &mut self.phase else {
            return;
        };
        match &paying.payment {
            None => {
                if let Some(body) = paying.attempt.request() {
                    effects.push(Effect::Post { body, delay_ms: 0 });
                } else if let Some(payment_id) = &paying.attempt.payment_id {
                    paying.poll_in_flight = true;
                    effects.push(Effect::Poll {
                        payment_id: payment_id.clone(),
                        after_version: 0,
                        delay_ms: 0,
                    });
                }
            }
            Some(payment) if !payment.state.is_settled() && !paying.poll_in_flight => {
                paying.poll_in_flight = true;
                effects.push(Effect::Poll {
                    payment_id: payment.id.clone(),
                    after_version: payment.version,
                    delay_ms: 0,
                });
            }
            Some(_) => {}
        }
    }

    fn on_resume(&mut self, attempt: StoredAttempt, now_ms: f64, effects: &mut Vec<Effect>) {
        if !matches!(
            self.phase,
            Phase::EnterAmount | Phase::AwaitingCode { .. } | Phase::ConfirmLarge(_)
        ) {
            return;
        }
        if attempt.payment_id.is_none() && attempt.auth_code.is_none() {
            effects.push(Effect::Persist(None));
            return;
        }
        self.notice = None;
        self.phase = Phase::Paying(Box::new(Paying {
            attempt,
            payment: None,
            started_ms: now_ms - CANCEL_LOCK_MS,
            deadline_ms: None,
            auto_next_from_ms: None,
            failures: 0,
            poll_in_flight: false,
            confirm_cancel: false,
            cancel_in_flight: false,
            confirm_leave: false,
        }));
        // The code, if still stored, means the proxy may never have answered: replay the
        // identical request (same attempt_id). Otherwise follow the known payment.
        self.on_retry(effects);
    }

    /// Takes a payment from any answer, if it is news, and keeps the long-poll going.
    fn apply_payment(&mut self, payment: Payment, now_ms: f64, effects: &mut Vec<Effect>) {
        let Phase::Paying(paying) = &mut self.phase else {
            return;
        };
        if payment.attempt_id != paying.attempt.attempt_id {
            return;
        }
        paying.failures = 0;
        let newer = paying
            .payment
            .as_ref()
            .is_none_or(|known| payment.version > known.version);
        if newer {
            let previous_state = paying.payment.as_ref().map(|known| known.state);
            paying.deadline_ms = payment
                .deadline_in_ms
                .map(|remaining| now_ms + remaining as f64);
            if paying.attempt.auth_code.is_some() || paying.attempt.payment_id.is_none() {
                // The proxy has it: forget the code, keep the id.
                paying.attempt.auth_code = None;
                paying.attempt.payment_id = Some(payment.id.clone());
                if !payment.state.is_settled() {
                    effects.push(Effect::Persist(Some(paying.attempt.clone())));
                }
            }
            let state = payment.state;
            if previous_state != Some(state) {
                match state {
                    PaymentState::Paid => effects.push(Effect::Sound(Sound::Success)),
                    PaymentState::Failed
                    | PaymentState::Cancelled
                    | PaymentState::NeedsAttention => effects.push(Effect::Sound(Sound::Error)),
                    _ => {}
                }
            }
            if state.is_settled() {
                paying.confirm_cancel = false;
                paying.confirm_leave = false;
                paying.auto_next_from_ms = Some(now_ms);
                if previous_state.is_none_or(|previous| !previous.is_settled()) {
                    effects.push(Effect::Persist(None));
                }
            }
            paying.payment = Some(payment);
        }
        if let Some(known) = &paying.payment
            && !known.state.is_settled()
            && !paying.poll_in_flight
        {
            paying.poll_in_flight = true;
            effects.push(Effect::Poll {
                payment_id: known.id.clone(),
                after_version: known.version,
                delay_ms: 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::{ErrorBody, Failure, FailureCode};

    const CODE: &str = "134567890123455678";
    const NOW: f64 = 10_000.0;

    fn attempt_id(n: u8) -> AttemptId {
        AttemptId::parse(&format!("3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b{n:02x}")).unwrap()
    }

    fn payment(state: PaymentState, version: u64) -> Payment {
        Payment {
            id: "pay_1".to_owned(),
            attempt_id: attempt_id(1),
            terminal_id: "term_1".to_owned(),
            out_trade_no: "PC1".to_owned(),
            amount_fen: Fen(1230),
            auth_code_last4: "5678".to_owned(),
            description: "Paycode".to_owned(),
            state,
            version,
            failure: None,
            transaction_id: None,
            cancel_requested: false,
            money_returned: false,
            deadline_in_ms: None,
            refunded_fen: Fen(0),
            refunds: Vec::new(),
            created_at: "2025-11-28T05:00:00Z".to_owned(),
            updated_at: "2025-11-28T05:00:00Z".to_owned(),
        }
    }

    fn http(status: u16, code: &str, field: Option<&str>) -> ApiFailure {
        ApiFailure::Http {
            status,
            body: Some(ErrorBody {
                code: code.into(),
                message: format!("{code} message"),
                field: field.map(str::to_owned),
            }),
        }
    }

    fn code(digits: &str, source: CodeSource) -> Input {
        Input::Code {
            digits: digits.to_owned(),
            source,
            attempt_id: attempt_id(2),
        }
    }

    #[test]
    fn a_camera_code_takes_the_one_path_to_post_payments() {
        let mut checkout = awaiting_code();
        checkout.handle(Input::Camera(true), NOW);
        assert!(checkout.camera_open());
        let effects = checkout.handle(code(CODE, CodeSource::Camera), NOW);
        assert!(
            matches!(&effects[0], Effect::Persist(Some(attempt)) if attempt.amount_fen == Fen(1230))
        );
        assert!(effects.iter().any(|effect| matches!(
            effect,
            Effect::Post { body, delay_ms: 0 } if body.auth_code.expose() == CODE
        )));
        // The payment screen: the camera is closed.
        assert!(!checkout.camera_open());
    }

    #[test]
    fn a_camera_alipay_code_gets_the_alipay_message_and_no_request() {
        let mut checkout = awaiting_code();
        checkout.handle(Input::Camera(true), NOW);
        let effects = checkout.handle(code("2812345678901234", CodeSource::Camera), NOW);
        assert_eq!(effects, vec![Effect::Sound(Sound::Error)]);
        assert_eq!(checkout.notice, Some(Notice::AlipayCode));
        assert!(checkout.camera_open());
    }

    #[test]
    fn the_camera_opens_by_default_until_a_scanner_is_seen() {
        let mut checkout = Checkout::default();
        checkout.handle(Input::PreferCamera(true), NOW);
        checkout.handle(Input::Quick(Fen(1_000)), NOW);
        checkout.handle(Input::Proceed, NOW);
        assert!(checkout.camera_open());
        // The manual field closes the camera; the camera closes the manual field.
        checkout.handle(Input::Manual(true), NOW);
        assert!(!checkout.camera_open());
        checkout.handle(Input::Camera(true), NOW);
        assert!(checkout.camera_open());
        assert_eq!(checkout.detector_mode(), Mode::Armed);
        // A wedge scanner types a code: remembered, and the next sale waits without camera.
        let effects = checkout.handle(code(CODE, CodeSource::Scanner), NOW);
        assert!(effects.contains(&Effect::ScannerSeen));
        checkout.phase = Phase::EnterAmount;
        checkout.handle(Input::Quick(Fen(1_000)), NOW);
        checkout.handle(Input::Proceed, NOW);
        assert!(!checkout.camera_open());
    }

    #[test]
    fn closing_the_camera_sticks_for_the_next_sale() {
        let mut checkout = Checkout::default();
        checkout.handle(Input::PreferCamera(true), NOW);
        checkout.handle(Input::Quick(Fen(1_000)), NOW);
        checkout.handle(Input::Proceed, NOW);
        checkout.handle(Input::Camera(false), NOW);
        checkout.handle(Input::Back, NOW);
        checkout.handle(Input::Proceed, NOW);
        assert!(matches!(checkout.phase, Phase::AwaitingCode { .. }));
        assert!(!checkout.camera_open());
    }

    /// A checkout that has typed 12.30 and armed the scanner.
    fn awaiting_code() -> Checkout {
        let mut checkout = Checkout::default();
        for key in [1, 2] {
            checkout.handle(Input::Key(AmountKey::Digit(key)), NOW);
        }
        checkout.handle(Input::Key(AmountKey::Point), NOW);
        checkout.handle(
            Input::Detector(DetectorEvent::AmountDigits("3".into())),
            NOW,
        );
        assert!(checkout.handle(Input::Proceed, NOW).is_empty());
        assert_eq!(
            checkout.phase,
            Phase::AwaitingCode {
                amount: Fen(1230),
                manual: false
            }
        );
        checkout
    }

    fn scan(checkout: &mut Checkout) -> Vec<Effect> {
        checkout.handle(
            Input::Code {
                digits: CODE.to_owned(),
                source: CodeSource::Scanner,
                attempt_id: attempt_id(1),
            },
            NOW,
        )
    }

    fn posts(effects: &[Effect]) -> Vec<(CreatePayment, u32)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Post { body, delay_ms } => Some((body.clone(), *delay_ms)),
                _ => None,
            })
            .collect()
    }

    fn polls(effects: &[Effect]) -> Vec<(String, u64, u32)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Poll {
                    payment_id,
                    after_version,
                    delay_ms,
                } => Some((payment_id.clone(), *after_version, *delay_ms)),
                _ => None,
            })
            .collect()
    }

    fn persisted(effects: &[Effect]) -> Vec<Option<StoredAttempt>> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Persist(attempt) => Some(attempt.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn attempt_ids_are_version_4_uuids() {
        let id = attempt_id_from_random([0xff; 16]);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = attempt_id_from_random([0; 16]);
        assert_eq!(id.as_str(), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn a_scan_persists_the_attempt_before_posting_it() {
        let mut checkout = awaiting_code();
        let effects = scan(&mut checkout);
        let persist_at = effects
            .iter()
            .position(|effect| matches!(effect, Effect::Persist(Some(_))))
            .unwrap();
        let post_at = effects
            .iter()
            .position(|effect| matches!(effect, Effect::Post { .. }))
            .unwrap();
        assert!(persist_at < post_at);
        let (body, delay) = &posts(&effects)[0];
        assert_eq!(*delay, 0);
        assert_eq!(body.amount_fen, Fen(1230));
        assert_eq!(body.auth_code.expose(), CODE);
        assert_eq!(body.attempt_id, attempt_id(1));
        assert!(effects.contains(&Effect::Sound(Sound::Scan)));
        assert_eq!(checkout.detector_mode(), Mode::Busy);
        let paying = checkout.paying().unwrap();
        assert_eq!(paying.state(), PaymentState::Submitting);
        assert!(
            !paying.can_cancel(NOW),
            "no cancel before the proxy answers"
        );
    }

    #[test]
    fn the_acknowledged_attempt_forgets_the_code_and_long_polls() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let mut waiting = payment(PaymentState::WaitingForCustomer, 2);
        waiting.deadline_in_ms = Some(30_000);
        let effects = checkout.handle(Input::PostAnswered(Ok(waiting)), NOW);
        let stored = persisted(&effects);
        assert_eq!(stored.len(), 1);
        let stored = stored[0].clone().unwrap();
        assert_eq!(stored.auth_code, None);
        assert_eq!(stored.payment_id.as_deref(), Some("pay_1"));
        assert!(!stored.to_json().contains(CODE));
        assert_eq!(polls(&effects), vec![("pay_1".to_owned(), 2, 0)]);
        let paying = checkout.paying().unwrap();
        assert_eq!(paying.seconds_left(NOW + 1500.0), Some(29));
        assert_eq!(paying.seconds_left(NOW + 40_000.0), Some(0));
        assert!(paying.can_cancel(NOW));
    }

    #[test]
    fn a_password_free_payment_settles_with_the_success_sound_and_auto_next() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let effects = checkout.handle(Input::PostAnswered(Ok(payment(PaymentState::Paid, 3))), NOW);
        assert!(effects.contains(&Effect::Sound(Sound::Success)));
        assert_eq!(persisted(&effects), vec![None]);
        assert!(polls(&effects).is_empty());
        assert_eq!(checkout.auto_next_at(), Some(NOW + AUTO_NEXT_MS));
        checkout.handle(Input::Tick, NOW + 4_000.0);
        assert!(checkout.paying().is_some());
        checkout.handle(Input::Tick, NOW + AUTO_NEXT_MS);
        assert_eq!(checkout.phase, Phase::EnterAmount);
        assert!(checkout.entry.is_empty());
    }

    #[test]
    fn printing_holds_the_success_screen() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        checkout.handle(Input::PostAnswered(Ok(payment(PaymentState::Paid, 3))), NOW);
        checkout.handle(Input::HoldAutoNext, NOW);
        checkout.handle(Input::Tick, NOW + 60_000.0);
        assert!(checkout.paying().is_some());
        checkout.handle(Input::Proceed, NOW + 60_000.0);
        assert_eq!(checkout.phase, Phase::EnterAmount);
    }

    #[test]
    fn polls_follow_versions_and_ignore_stale_answers() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        checkout.handle(
            Input::PostAnswered(Ok(payment(PaymentState::WaitingForCustomer, 2))),
            NOW,
        );
        // A stale answer (older version) changes nothing but keeps polling.
        let effects = checkout.handle(
            Input::PollAnswered(Ok(payment(PaymentState::Submitting, 1))),
            NOW,
        );
        assert_eq!(
            checkout.paying().unwrap().state(),
            PaymentState::WaitingForCustomer
        );
        assert_eq!(polls(&effects), vec![("pay_1".to_owned(), 2, 0)]);
        let effects = checkout.handle(Input::PollAnswered(Ok(payment(PaymentState::Paid, 4))), NOW);
        assert!(effects.contains(&Effect::Sound(Sound::Success)));
        assert!(polls(&effects).is_empty());
    }

    #[test]
    fn an_unanswered_post_is_replayed_with_the_same_attempt_and_backs_off() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let mut delays = Vec::new();
        for _ in 0..6 {
            let effects = checkout.handle(Input::PostAnswered(Err(ApiFailure::Network)), NOW);
            let post = posts(&effects);
            assert_eq!(post.len(), 1);
            assert_eq!(post[0].0.attempt_id, attempt_id(1));
            delays.push(post[0].1);
        }
        assert_eq!(delays, vec![500, 1000, 2000, 4000, 5000, 5000]);
        // A 502 from the proxy is just as uncertain.
        let effects = checkout.handle(
            Input::PostAnswered(Err(http(502, "WECHAT_UNAVAILABLE", None))),
            NOW,
        );
        assert_eq!(posts(&effects).len(), 1);
        assert_eq!(checkout.paying().unwrap().failures, 7);
        // When the proxy is back the replay answers with the one payment.
        checkout.handle(Input::PostAnswered(Ok(payment(PaymentState::Paid, 3))), NOW);
        assert_eq!(checkout.paying().unwrap().failures, 0);
    }

    #[test]
    fn a_429_is_retried_like_any_unanswered_request() {
        // The proxy never answers 429 (it is not in `ErrorCode`), but something in front of
        // it may: nothing was stored, so the same request goes again after the usual delay.
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let effects = checkout.handle(
            Input::PostAnswered(Err(http(429, "RATE_LIMITED", None))),
            NOW,
        );
        assert_eq!(posts(&effects)[0].1, retry_delay(1));
        assert_eq!(checkout.notice, None);
    }

    #[test]
    fn a_definite_rejection_ends_the_attempt_and_rearms() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let effects = checkout.handle(
            Input::PostAnswered(Err(http(400, "INVALID_REQUEST", Some("auth_code")))),
            NOW,
        );
        assert_eq!(persisted(&effects), vec![None]);
        assert!(effects.contains(&Effect::Sound(Sound::Error)));
        assert_eq!(
            checkout.phase,
            Phase::AwaitingCode {
                amount: Fen(1230),
                manual: false
            }
        );
        assert_eq!(
            checkout.notice,
            Some(Notice::Rejected("INVALID_REQUEST message".into()))
        );
        // An amount problem goes back to the amount.
        scan(&mut checkout);
        checkout.handle(
            Input::PostAnswered(Err(http(400, "INVALID_AMOUNT", Some("amount_fen")))),
            NOW,
        );
        assert_eq!(checkout.phase, Phase::EnterAmount);
    }

    #[test]
    fn unauthorized_asks_for_pairing_and_keeps_the_attempt() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let effects = checkout.handle(
            Input::PostAnswered(Err(http(401, "UNAUTHORIZED", None))),
            NOW,
        );
        assert_eq!(effects, vec![Effect::Unauthorized]);
        let effects = checkout.handle(Input::Retry, NOW);
        assert_eq!(posts(&effects)[0].0.attempt_id, attempt_id(1));
    }

    #[test]
    fn one_payment_in_flight() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let effects = checkout.handle(
            Input::Code {
                digits: "104567890123455678".to_owned(),
                source: CodeSource::Scanner,
                attempt_id: attempt_id(2),
            },
            NOW,
        );
        assert_eq!(effects, vec![Effect::Sound(Sound::Error)]);
        assert_eq!(checkout.notice, Some(Notice::ScanWhileBusy));
        assert_eq!(checkout.paying().unwrap().attempt.attempt_id, attempt_id(1));
        checkout.handle(Input::Detector(DetectorEvent::ScanWhileBusy), NOW);
        assert_eq!(checkout.notice, Some(Notice::ScanWhileBusy));
        // Next does nothing while the payment is open.
        checkout.handle(Input::Next, NOW);
        assert!(checkout.paying().is_some());
    }

    #[test]
    fn codes_are_validated_with_the_api_parser() {
        let mut checkout = awaiting_code();
        let alipay = checkout.handle(
            Input::Code {
                digits: "287654321098765432".to_owned(),
                source: CodeSource::Scanner,
                attempt_id: attempt_id(2),
            },
            NOW,
        );
        assert_eq!(alipay, vec![Effect::Sound(Sound::Error)]);
        assert_eq!(checkout.notice, Some(Notice::AlipayCode));
        checkout.handle(
            Input::Code {
                digits: "12345".to_owned(),
                source: CodeSource::Manual,
                attempt_id: attempt_id(2),
            },
            NOW,
        );
        assert_eq!(checkout.notice, Some(Notice::NotWechatCode));
        assert!(matches!(checkout.phase, Phase::AwaitingCode { .. }));
    }

    #[test]
    fn a_code_while_typing_the_amount_is_not_charged() {
        let mut checkout = Checkout::default();
        let effects = checkout.handle(
            Input::Code {
                digits: CODE.to_owned(),
                source: CodeSource::Scanner,
                attempt_id: attempt_id(2),
            },
            NOW,
        );
        // Not charged, and the detector may take the same code again once the amount is
        // confirmed.
        assert_eq!(
            effects,
            vec![Effect::Sound(Sound::Error), Effect::ForgetScan]
        );
        assert_eq!(checkout.notice, Some(Notice::ScanWhileEnteringAmount));
        assert_eq!(checkout.phase, Phase::EnterAmount);
    }

    #[test]
    fn cancel_needs_confirmation_and_is_locked_at_first() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        checkout.handle(
            Input::PostAnswered(Ok(payment(PaymentState::Submitting, 1))),
            NOW,
        );
        checkout.handle(Input::CancelPressed, NOW + 1000.0);
        assert!(!checkout.paying().unwrap().confirm_cancel, "locked for 5 s");
        checkout.handle(Input::CancelPressed, NOW + CANCEL_LOCK_MS);
        assert!(checkout.paying().unwrap().confirm_cancel);
        checkout.handle(Input::CancelDismissed, NOW + CANCEL_LOCK_MS);
        assert!(!checkout.paying().unwrap().confirm_cancel);
        // Esc opens the confirmation, Enter confirms.
        checkout.handle(Input::Back, NOW + CANCEL_LOCK_MS);
        assert!(checkout.paying().unwrap().confirm_cancel);
        let effects = checkout.handle(Input::Proceed, NOW + CANCEL_LOCK_MS);
        assert_eq!(
            effects,
            vec![Effect::Cancel {
                payment_id: "pay_1".to_owned()
            }]
        );
        assert!(!checkout.paying().unwrap().can_cancel(NOW + 9_000.0));
        let mut cancelling = payment(PaymentState::Cancelling, 5);
        cancelling.cancel_requested = true;
        checkout.handle(Input::CancelAnswered(Ok(cancelling)), NOW + 6_000.0);
        assert_eq!(checkout.paying().unwrap().state(), PaymentState::Cancelling);
        let mut cancelled = payment(PaymentState::Cancelled, 6);
        cancelled.money_returned = true;
        let effects = checkout.handle(Input::PollAnswered(Ok(cancelled)), NOW + 7_000.0);
        assert_eq!(persisted(&effects), vec![None]);
        // Rescanning keeps the amount.
        checkout.handle(Input::Proceed, NOW + 8_000.0);
        assert_eq!(
            checkout.phase,
            Phase::AwaitingCode {
                amount: Fen(1230),
                manual: false
            }
        );
    }

    #[test]
    fn a_cancel_that_does_not_get_through_can_be_repeated() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        checkout.handle(
            Input::PostAnswered(Ok(payment(PaymentState::WaitingForCustomer, 2))),
            NOW,
        );
        checkout.handle(Input::CancelPressed, NOW);
        checkout.handle(Input::CancelConfirmed, NOW);
        let effects = checkout.handle(Input::CancelAnswered(Err(ApiFailure::Network)), NOW);
        assert!(effects.contains(&Effect::Sound(Sound::Error)));
        assert_eq!(checkout.notice, Some(Notice::CancelFailed));
        assert!(checkout.paying().unwrap().can_cancel(NOW));
    }

    #[test]
    fn a_failed_payment_offers_a_rescan_of_the_same_amount() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let mut failed = payment(PaymentState::Failed, 2);
        failed.failure = Some(Failure {
            code: FailureCode::AuthCodeExpire,
            message: "付款码已过期".to_owned(),
        });
        let effects = checkout.handle(Input::PostAnswered(Ok(failed)), NOW);
        assert!(effects.contains(&Effect::Sound(Sound::Error)));
        assert_eq!(persisted(&effects), vec![None]);
        assert_eq!(
            checkout.auto_next_at(),
            None,
            "only success moves on by itself"
        );
        checkout.handle(Input::Rescan, NOW);
        assert_eq!(
            checkout.phase,
            Phase::AwaitingCode {
                amount: Fen(1230),
                manual: false
            }
        );
        let effects = checkout.handle(
            Input::Code {
                digits: "104567890123455678".to_owned(),
                source: CodeSource::Manual,
                attempt_id: attempt_id(2),
            },
            NOW,
        );
        assert_eq!(
            posts(&effects)[0].0.attempt_id,
            attempt_id(2),
            "a new attempt"
        );
    }

    #[test]
    fn needs_attention_keeps_polling_and_leaving_needs_confirmation() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        let effects = checkout.handle(
            Input::PostAnswered(Ok(payment(PaymentState::NeedsAttention, 2))),
            NOW,
        );
        assert!(effects.contains(&Effect::Sound(Sound::Error)));
        assert_eq!(polls(&effects).len(), 1);
        checkout.handle(Input::Next, NOW);
        assert!(checkout.paying().unwrap().confirm_leave);
        checkout.handle(Input::Back, NOW);
        assert!(!checkout.paying().unwrap().confirm_leave);
        checkout.handle(Input::Back, NOW);
        checkout.handle(Input::LeaveConfirmed, NOW);
        assert_eq!(checkout.phase, Phase::EnterAmount);
    }

    #[test]
    fn poll_failures_back_off_and_resume() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        checkout.handle(
            Input::PostAnswered(Ok(payment(PaymentState::Confirming, 2))),
            NOW,
        );
        let effects = checkout.handle(Input::PollAnswered(Err(ApiFailure::Network)), NOW);
        assert_eq!(polls(&effects), vec![("pay_1".to_owned(), 2, 500)]);
        let effects = checkout.handle(Input::PollAnswered(Err(ApiFailure::Network)), NOW);
        assert_eq!(polls(&effects), vec![("pay_1".to_owned(), 2, 1000)]);
        // A cancel answer while a poll is out does not start a second poll.
        checkout.handle(Input::CancelPressed, NOW);
        checkout.handle(Input::CancelConfirmed, NOW);
        let effects = checkout.handle(
            Input::CancelAnswered(Ok(payment(PaymentState::Cancelling, 3))),
            NOW,
        );
        assert!(polls(&effects).is_empty());
    }

    #[test]
    fn a_reload_before_the_answer_replays_the_same_request() {
        let mut first = awaiting_code();
        let effects = scan(&mut first);
        let stored = persisted(&effects)[0].clone().unwrap();
        let reloaded = StoredAttempt::from_json(&stored.to_json()).unwrap();
        assert_eq!(reloaded, stored);

        let mut checkout = Checkout::default();
        let effects = checkout.handle(Input::Resume(reloaded), NOW);
        let post = posts(&effects);
        assert_eq!(post.len(), 1);
        assert_eq!(post[0].0.attempt_id, attempt_id(1));
        assert_eq!(post[0].0.auth_code.expose(), CODE);
        assert_eq!(checkout.detector_mode(), Mode::Busy);
    }

    #[test]
    fn a_reload_after_the_answer_follows_the_payment() {
        let stored = StoredAttempt {
            attempt_id: attempt_id(1),
            amount_fen: Fen(1230),
            auth_code: None,
            last4: "5678".to_owned(),
            payment_id: Some("pay_1".to_owned()),
        };
        let mut checkout = Checkout::default();
        let effects = checkout.handle(Input::Resume(stored), NOW);
        assert_eq!(polls(&effects), vec![("pay_1".to_owned(), 0, 0)]);
        assert!(posts(&effects).is_empty());
        let mut waiting = payment(PaymentState::WaitingForCustomer, 4);
        waiting.deadline_in_ms = Some(12_000);
        checkout.handle(Input::PollAnswered(Ok(waiting)), NOW);
        let paying = checkout.paying().unwrap();
        assert_eq!(paying.seconds_left(NOW), Some(12));
        assert!(paying.can_cancel(NOW));
        assert!(StoredAttempt::from_json("{not json").is_none());
    }

    #[test]
    fn amount_entry_and_large_amounts() {
        let mut checkout = Checkout::default();
        let effects = checkout.handle(Input::Proceed, NOW);
        assert_eq!(effects, vec![Effect::Sound(Sound::Error)]);
        assert_eq!(
            checkout.notice,
            Some(Notice::AmountRefused(AmountProblem::Empty))
        );
        checkout.handle(Input::Quick(Fen(200_000)), NOW);
        assert_eq!(checkout.notice, None);
        checkout.handle(Input::Proceed, NOW);
        assert_eq!(checkout.phase, Phase::ConfirmLarge(Fen(200_000)));
        // Digits do not change a confirmed amount; Esc goes back to edit it.
        checkout.handle(
            Input::Detector(DetectorEvent::AmountDigits("5".into())),
            NOW,
        );
        checkout.handle(Input::Back, NOW);
        assert_eq!(checkout.phase, Phase::EnterAmount);
        assert_eq!(checkout.entry.text(), "2000");
        checkout.handle(Input::Proceed, NOW);
        checkout.handle(Input::Proceed, NOW);
        assert_eq!(
            checkout.phase,
            Phase::AwaitingCode {
                amount: Fen(200_000),
                manual: false
            }
        );
        assert_eq!(checkout.detector_mode(), Mode::Armed);
        checkout.handle(Input::Manual(true), NOW);
        assert_eq!(checkout.detector_mode(), Mode::Passive);
        checkout.handle(Input::Back, NOW);
        assert_eq!(checkout.detector_mode(), Mode::Armed);
        checkout.handle(Input::Back, NOW);
        assert_eq!(checkout.phase, Phase::EnterAmount);
        assert_eq!(checkout.entry.text(), "2000", "the amount is kept");
        checkout.handle(Input::Back, NOW);
        assert!(checkout.entry.is_empty(), "Esc clears");
    }

    #[test]
    fn detector_notices() {
        let mut checkout = Checkout::default();
        let effects = checkout.handle(Input::Detector(DetectorEvent::ScanWhileEnteringAmount), NOW);
        assert_eq!(effects, vec![Effect::Sound(Sound::Error)]);
        assert_eq!(checkout.notice, Some(Notice::ScanWhileEnteringAmount));
        let mut checkout = awaiting_code();
        checkout.handle(Input::Detector(DetectorEvent::ManualLikeEntry), NOW);
        assert_eq!(checkout.notice, Some(Notice::ManualLikeEntry));
        let effects = checkout.handle(Input::Detector(DetectorEvent::ImeSuspected), NOW);
        assert!(effects.is_empty());
        assert_eq!(checkout.notice, Some(Notice::ImeDetected));
        assert!(
            checkout
                .handle(Input::Detector(DetectorEvent::Duplicate), NOW)
                .is_empty()
        );
    }

    // --- Taking back a scanner's prefix keys -------------------------------------------------

    fn key(action: Shortcut, key_ms: f64) -> Input {
        Input::Shortcut { action, key_ms }
    }

    fn take_back(since_ms: f64) -> Input {
        Input::Detector(DetectorEvent::PrefixTakeBack { since_ms })
    }

    fn scanned_code(attempt: u8) -> Input {
        Input::Code {
            digits: CODE.to_owned(),
            source: CodeSource::Scanner,
            attempt_id: attempt_id(attempt),
        }
    }

    /// Issue input 1: the cashier typed `1`; a scanner's leading Enter "confirms" ¥1.00 and
    /// its code follows. Nothing is charged, the amount stays as typed and the notice asks
    /// for the amount first; confirming and scanning again then charges the real amount.
    #[test]
    fn a_scanners_leading_enter_does_not_confirm_the_amount() {
        let mut checkout = Checkout::default();
        checkout.handle(Input::Key(AmountKey::Digit(1)), NOW);
        // The Enter confirms at once, like any Enter.
        assert!(
            checkout
                .handle(key(Shortcut::Proceed, 300.0), NOW)
                .is_empty()
        );
        assert!(matches!(checkout.phase, Phase::AwaitingCode { .. }));
        // The burst says the Enter was the scanner's.
        assert!(checkout.handle(take_back(300.0), NOW).is_empty());
        let effects = checkout.handle(scanned_code(1), NOW);
        assert!(posts(&effects).is_empty(), "{effects:?}");
        assert!(!effects.iter().any(|e| matches!(e, Effect::Persist(_))));
        assert!(effects.contains(&Effect::ForgetScan));
        assert_eq!(checkout.phase, Phase::EnterAmount);
        assert_eq!(checkout.entry.text(), "1");
        assert_eq!(checkout.notice, Some(Notice::ScanWhileEnteringAmount));
        // The cashier finishes the amount, confirms, and scans again.
        checkout.handle(Input::Key(AmountKey::Digit(2)), NOW);
        checkout.handle(Input::Key(AmountKey::Point), NOW);
        checkout.handle(Input::Key(AmountKey::Digit(5)), NOW);
        checkout.handle(key(Shortcut::Proceed, 9000.0), NOW);
        let effects = checkout.handle(scanned_code(2), NOW);
        let posted = posts(&effects);
        assert_eq!(posted.len(), 1);
        assert_eq!(posted[0].0.amount_fen, Fen(1250));
    }

    #[test]
    fn a_scanners_enter_does_not_confirm_a_large_amount() {
        let mut checkout = Checkout::default();
        checkout.handle(Input::Quick(Fen(200_000)), NOW);
        // The cashier's Enter asks for the large-amount confirmation…
        checkout.handle(key(Shortcut::Proceed, 1000.0), NOW);
        assert_eq!(checkout.phase, Phase::ConfirmLarge(Fen(200_000)));
        // …which the scanner's Enter gives, and takes back with its burst.
        checkout.handle(key(Shortcut::Proceed, 4000.0), NOW);
        assert!(matches!(checkout.phase, Phase::AwaitingCode { .. }));
        checkout.handle(take_back(4000.0), NOW);
        assert_eq!(checkout.phase, Phase::ConfirmLarge(Fen(200_000)));
        let effects = checkout.handle(scanned_code(1), NOW);
        assert!(posts(&effects).is_empty());
        assert_eq!(checkout.phase, Phase::ConfirmLarge(Fen(200_000)));
        assert_eq!(checkout.notice, Some(Notice::ScanWhileEnteringAmount));
    }

    #[test]
    fn a_cashiers_enter_before_a_prefixed_scan_stands() {
        // The cashier confirmed; later a scanner's Enter (which does nothing on the waiting
        // screen) leads the scan: the take-back restores the same waiting screen.
        let mut checkout = awaiting_code();
        checkout.handle(key(Shortcut::Proceed, 5000.0), NOW);
        checkout.handle(take_back(5000.0), NOW);
        let effects = checkout.handle(scanned_code(1), NOW);
        assert_eq!(posts(&effects)[0].0.amount_fen, Fen(1230));
    }

    #[test]
    fn only_the_keys_from_the_prefix_on_are_taken_back() {
        let mut checkout = Checkout::default();
        checkout.handle(Input::Key(AmountKey::Digit(8)), NOW);
        checkout.handle(key(Shortcut::Proceed, 1000.0), NOW);
        // A take-back of later keys (none) leaves the cashier's confirmation alone.
        checkout.handle(take_back(1500.0), NOW);
        assert!(matches!(
            checkout.phase,
            Phase::AwaitingCode {
                amount: Fen(800),
                ..
            }
        ));
    }

    #[test]
    fn a_prefix_escape_on_the_amount_screen_gives_the_amount_back() {
        let mut checkout = Checkout::default();
        checkout.handle(Input::Key(AmountKey::Digit(4)), NOW);
        checkout.handle(key(Shortcut::Back, 700.0), NOW);
        assert_eq!(checkout.entry.text(), "");
        checkout.handle(take_back(700.0), NOW);
        assert_eq!(checkout.entry.text(), "4");
    }

    #[test]
    fn a_shortcut_that_sent_a_request_is_never_taken_back() {
        let mut checkout = awaiting_code();
        scan(&mut checkout);
        checkout.handle(
            Input::PostAnswered(Ok(payment(PaymentState::WaitingForCustomer, 1))),
            NOW,
        );
        checkout.handle(Input::CancelPressed, NOW);
        let effects = checkout.handle(key(Shortcut::Proceed, 8000.0), NOW);
        assert!(effects.iter().any(|e| matches!(e, Effect::Cancel { .. })));
        let before = checkout.clone();
        checkout.handle(take_back(8000.0), NOW);
        assert_eq!(checkout, before);
    }

    #[test]
    fn a_scan_on_the_waiting_screen_after_a_prefix_escape_asks_to_scan_again() {
        // Esc (the scanner's prefix) went back to the amount; its burst was then dropped as
        // a scan during amount entry, and the take-back restores the waiting screen.
        let mut checkout = awaiting_code();
        checkout.handle(key(Shortcut::Back, 2000.0), NOW);
        assert_eq!(checkout.phase, Phase::EnterAmount);
        checkout.handle(take_back(2000.0), NOW);
        checkout.handle(Input::Detector(DetectorEvent::ScanWhileEnteringAmount), NOW);
        assert!(matches!(checkout.phase, Phase::AwaitingCode { .. }));
        assert_eq!(checkout.notice, Some(Notice::ScanAgain));
    }
}
