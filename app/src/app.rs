//! The root component, the shared context and the runner that carries out the checkout's
//! effects (storage, requests, sounds).

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::{AttemptId, TerminalInfo};

use crate::amount::AmountKey;
use crate::api;
use crate::browser;
use crate::capture;
use crate::checkout::{Checkout, Effect, Input, StoredAttempt, attempt_id_from_random};
use crate::components::{Header, OfflineBanner};
use crate::pages::{CheckoutPage, PairingPage, PaymentsPage, SettingsPage};
use crate::remote::ApiFailure;
use crate::settings::{ATTEMPT_KEY, Settings, TOKEN_KEY};

/// The page shown below the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Amount, code, payment.
    Checkout,
    /// Today's payments and refunds.
    Payments,
    /// Pairing, language, sound.
    Settings,
}

/// Whether the terminal has a working token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Looking for a token (stored, or demo mode's).
    Starting,
    /// No token: the pairing screen is shown.
    Needed,
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
    /// The language in effect.
    pub fn lang(self) -> crate::i18n::Lang {
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
            Effect::Post { body, delay_ms } => spawn_local(async move {
                browser::sleep(delay_ms).await;
                let result = match self.token() {
                    Some(token) => api::create_payment(&token, &body).await,
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

fn unauthorized() -> ApiFailure {
    ApiFailure::Http {
        status: 401,
        body: None,
    }
}

/// Applies `?amount=12.30` from the address (a till or ERP opening the page for one sale):
/// the amount is typed and confirmed as if by hand.
fn apply_amount_from_address(ctx: Ctx) {
    let Ok(search) = browser::window().location().search() else {
        return;
    };
    let Some(amount) = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("amount="))
    else {
        return;
    };
    for character in amount.chars() {
        let key = match character {
            '.' => AmountKey::Point,
            digit @ '0'..='9' => AmountKey::Digit(digit as u8 - b'0'),
            _ => return,
        };
        ctx.dispatch(Input::Key(key));
    }
    ctx.dispatch(Input::Proceed);
}

/// Finds a token: the stored one (verified in the background), else demo mode's.
async fn start(ctx: Ctx) {
    if let Some(token) = ctx.token() {
        // Optimistic: the stored token was valid when saved, so the app is usable at once.
        ctx.pairing.set(Pairing::Ready);
        match api::terminal(&token).await {
            Ok(terminal) => {
                ctx.online.set(true);
                ctx.terminal.set(Some(terminal));
                return;
            }
            Err(failure) if failure.is_unauthorized() => {
                // Revoked or from another proxy: forget it and look for a new one below.
                browser::store(TOKEN_KEY, None);
                ctx.settings.update(|settings| settings.token = None);
                ctx.pairing.set(Pairing::Starting);
            }
            Err(failure) => {
                ctx.note(&Err::<(), _>(failure));
                return;
            }
        }
    }
    let result = api::demo_pairing().await;
    ctx.note(&result);
    match result {
        Ok(pairing) => ctx.paired(pairing.token, pairing.terminal),
        Err(_) => ctx.pairing.set(Pairing::Needed),
    }
}

/// Checks the proxy now and then, so the offline banner appears (and clears) even when no
/// payment is running, and a revoked token is noticed.
async fn watch_connection(ctx: Ctx) {
    loop {
        let delay = if ctx.online.get_untracked() {
            10_000
        } else {
            2_000
        };
        browser::sleep(delay).await;
        if let Some(token) = ctx.token() {
            let result = api::terminal(&token).await;
            ctx.note(&result);
            if let Ok(terminal) = result
                && ctx
                    .terminal
                    .with_untracked(|known| known.as_ref() != Some(&terminal))
            {
                ctx.terminal.set(Some(terminal));
            }
        }
    }
}

/// The page: header, offline banner, and the current page.
#[component]
pub fn App() -> impl IntoView {
    let settings = Settings::load(browser::load);
    let ctx = Ctx {
        checkout: RwSignal::new(Checkout::default()),
        settings: RwSignal::new(settings),
        page: RwSignal::new(Page::Checkout),
        pairing: RwSignal::new(Pairing::Starting),
        terminal: RwSignal::new(None),
        online: RwSignal::new(true),
        clock: RwSignal::new(browser::now_ms()),
    };
    provide_context(ctx);
    capture::install(ctx);

    // A payment interrupted by a reload comes back first: never a second charge.
    if let Some(attempt) =
        browser::load(ATTEMPT_KEY).and_then(|json| StoredAttempt::from_json(&json))
    {
        ctx.dispatch(Input::Resume(attempt));
    } else {
        browser::store(ATTEMPT_KEY, None);
        apply_amount_from_address(ctx);
    }
    spawn_local(start(ctx));
    spawn_local(watch_connection(ctx));

    // The clock drives countdowns and the success screen's auto-next.
    set_interval(
        move || {
            if ctx
                .checkout
                .with_untracked(|checkout| checkout.paying().is_some())
            {
                ctx.clock.set(browser::now_ms());
                if ctx
                    .checkout
                    .with_untracked(|checkout| checkout.auto_next_at().is_some())
                {
                    ctx.dispatch(Input::Tick);
                }
            }
        },
        std::time::Duration::from_millis(250),
    );

    leptos::prelude::Effect::new(move |_| {
        let lang = ctx.lang();
        if let Some(root) = browser::window()
            .document()
            .and_then(|document| document.document_element())
        {
            let _ = root.set_attribute("lang", lang.tag());
        }
    });

    // Setting a signal to the value it has still notifies; the memo keeps the page from
    // being rebuilt unless pairing or page really change.
    let shown = Memo::new(move |_| (ctx.pairing.get(), ctx.page.get()));
    view! {
        <Header/>
        <OfflineBanner/>
        <main class="main">
            {move || match shown.get() {
                (Pairing::Starting, _) => view! { <div class="loading" aria-busy="true"></div> }.into_any(),
                (Pairing::Needed, _) => view! { <PairingPage/> }.into_any(),
                (Pairing::Ready, Page::Checkout) => view! { <CheckoutPage/> }.into_any(),
                (Pairing::Ready, Page::Payments) => view! { <PaymentsPage/> }.into_any(),
                (Pairing::Ready, Page::Settings) => view! { <SettingsPage/> }.into_any(),
            }}
        </main>
    }
}
