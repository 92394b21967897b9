//! The context every component shares ([`Ctx`]: signals only, so it is `Copy`), and the
//! runner that carries out the checkout's effects (storage, requests, sounds).

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::{AttemptId, TerminalInfo};

use crate::model::checkout::{Checkout, Effect, Input, StoredAttempt, attempt_id_from_random};
use crate::model::i18n::Lang;
use crate::model::remote::ApiFailure;
use crate::model::settings::{ATTEMPT_KEY, SCANNER_SEEN_KEY, Settings, TOKEN_KEY};
use crate::ui::{api, browser, capture};

/// The page shown below the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Amount, code, payment.
    Checkout,
    /// Today's payments and refunds.
    Payments,
    /// Pairing, language, sound.
    Settings,
    /// 对账: a day of the owner's books (manager and owner terminals).
    Books,
    /// 待处理: the store's payments whose outcome needs a manager (manager and owner
    /// terminals).
    Attention,
}

impl Page {
    /// The name the back-office bundle's `open` takes (`payments`, `books`, `attention`);
    /// `None` for the pages of the main bundle.
    pub fn back_office_name(self) -> Option<&'static str> {
        match self {
            Page::Payments => Some("payments"),
            Page::Books => Some("books"),
            Page::Attention => Some("attention"),
            Page::Checkout | Page::Settings => None,
        }
    }

    /// The page the back-office bundle's `open` was given by `name`, if it is one of its
    /// pages.
    pub fn from_back_office_name(name: &str) -> Option<Page> {
        [Page::Payments, Page::Books, Page::Attention]
            .into_iter()
            .find(|page| page.back_office_name() == Some(name))
    }
}

/// Whether the terminal has a working token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Looking for a token (stored, or demo mode's).
    Starting,
    /// No token: the pairing screen is shown.
    Needed,
    /// A pairing code was refused (used, expired or unknown): the pairing screen says so.
    CodeRefused,
    /// Paired.
    Ready,
}

/// Everything the components share. All fields are signals, so the context is `Copy`.
#[derive(Clone, Copy)]
pub struct Ctx {
    /// The checkout state machine.
    pub checkout: RwSignal<Checkout>,
    /// Token, language, sound.
    pub settings: RwSignal<Settings>,
    /// The page below the header.
    pub page: RwSignal<Page>,
    /// Pairing state.
    pub pairing: RwSignal<Pairing>,
    /// The paired terminal.
    pub terminal: RwSignal<Option<TerminalInfo>>,
    /// Whether the last call reached the proxy.
    pub online: RwSignal<bool>,
    /// The monotonic clock, ticking while a payment is on screen (countdowns).
    pub clock: RwSignal<f64>,
}

/// The context of the running app.
pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// A fresh attempt id.
pub fn new_attempt_id() -> AttemptId {
    attempt_id_from_random(browser::random_bytes())
}

impl Ctx {
    /// A fresh context showing `page`, with the stored settings; provided to the views
    /// below by the caller.
    pub fn new(page: Page, pairing: Pairing) -> Ctx {
        Ctx {
            checkout: RwSignal::new(Checkout::default()),
            settings: RwSignal::new(Settings::load(browser::load)),
            page: RwSignal::new(page),
            pairing: RwSignal::new(pairing),
            terminal: RwSignal::new(None),
            online: RwSignal::new(true),
            clock: RwSignal::new(browser::now_ms()),
        }
    }

    /// The language in effect.
    pub fn lang(self) -> Lang {
        self.settings.with(|settings| settings.lang)
    }

    /// The token, if paired.
    pub fn token(self) -> Option<String> {
        self.settings
            .with_untracked(|settings| settings.token.clone())
    }

    /// Feeds an input to the checkout and runs the effects it asks for.
    pub fn dispatch(self, input: Input) {
        let now = browser::now_ms();
        let effects = self
            .checkout
            .try_update(|checkout| checkout.handle(input, now))
            .unwrap_or_default();
        for effect in effects {
            self.run(effect);
        }
    }

    /// Records whether a call reached the proxy (for the offline banner).
    pub fn note<T>(self, result: &Result<T, ApiFailure>) {
        let reached = !matches!(result, Err(ApiFailure::Network));
        if self.online.get_untracked() != reached {
            self.online.set(reached);
        }
        if matches!(result, Err(failure) if failure.is_unauthorized()) {
            self.unpair();
        }
    }

    /// Forgets the token and shows the pairing screen.
    pub fn unpair(self) {
        browser::store(TOKEN_KEY, None);
        self.settings.update(|settings| settings.token = None);
        self.terminal.set(None);
        self.pairing.set(Pairing::Needed);
    }

    /// Stores a verified token and resumes whatever was waiting for it.
    pub fn paired(self, token: String, terminal: TerminalInfo) {
        browser::store(TOKEN_KEY, Some(&token));
        self.settings
            .update(|settings| settings.token = Some(token));
        if self
            .terminal
            .with_untracked(|known| known.as_ref() != Some(&terminal))
        {
            self.terminal.set(Some(terminal));
        }
        if self.pairing.get_untracked() != Pairing::Ready {
            self.pairing.set(Pairing::Ready);
        }
        self.dispatch(Input::Retry);
    }

    fn run(self, effect: Effect) {
        match effect {
            Effect::Persist(attempt) => {
                let json = attempt.as_ref().map(StoredAttempt::to_json);
                browser::store(ATTEMPT_KEY, json.as_deref());
            }
            Effect::Sound(sound) => {
                if self.settings.with_untracked(|settings| settings.sound) {
                    browser::play(sound);
                }
            }
            Effect::Unauthorized => self.unpair(),
            Effect::ForgetScan => capture::forget_last_scan(),
            Effect::ScannerSeen => browser::store(SCANNER_SEEN_KEY, Some("1")),
            Effect::Post { body, delay_ms } => spawn_local(async move {
                browser::sleep(delay_ms).await;
                let result = match self.token() {
                    Some(token) => api::create_payment(&token, &body).await,
                    // Scanned while the token is still looked for: `paired` sends
                    // `Input::Retry`, which posts the same attempt.
                    None if self.pairing.get_untracked() == Pairing::Starting => return,
                    None => Err(unauthorized()),
                };
                self.note(&result);
                self.dispatch(Input::PostAnswered(result));
            }),
            Effect::Poll {
                payment_id,
                after_version,
                delay_ms,
            } => spawn_local(async move {
                browser::sleep(delay_ms).await;
                let result = match self.token() {
                    Some(token) => api::wait_for_payment(&token, &payment_id, after_version).await,
                    None => Err(unauthorized()),
                };
                self.note(&result);
                self.dispatch(Input::PollAnswered(result));
            }),
            Effect::Cancel { payment_id } => spawn_local(async move {
                let result = match self.token() {
                    Some(token) => api::cancel_payment(&token, &payment_id).await,
                    None => Err(unauthorized()),
                };
                self.note(&result);
                self.dispatch(Input::CancelAnswered(result));
            }),
        }
    }
}

/// A 401 without a body: what a call without a token would get.
fn unauthorized() -> ApiFailure {
    ApiFailure::Http {
        status: 401,
        body: None,
    }
}
