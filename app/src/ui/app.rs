//! The root component: it builds the shared [`Ctx`], resumes an interrupted payment, finds
//! a token and keeps checking the connection, and shows the page below the header.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::amount::AmountKey;
use crate::model::camera::camera_by_default;
use crate::model::checkout::{Input, StoredAttempt};
use crate::model::settings::{ATTEMPT_KEY, SCANNER_SEEN_KEY, TOKEN_KEY};
use crate::ui::back_office::{self, BackOfficePage};
use crate::ui::components::{BooksBanner, Header, OfflineBanner};
use crate::ui::context::{Ctx, Page, Pairing};
use crate::ui::pages::{CheckoutPage, PairingPage, SettingsPage};
use crate::ui::{api, browser, capture, pairing};

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

/// Makes the camera the waiting screen's default on a touch device with a camera, until a
/// scanner has been seen here (`model::camera::camera_by_default`).
async fn prefer_camera(ctx: Ctx) {
    let touch = capture::prefers_capture_field();
    let scanner_seen = browser::load(SCANNER_SEEN_KEY).is_some();
    if !touch || scanner_seen {
        return;
    }
    let Some(promise) = browser::window()
        .navigator()
        .media_devices()
        .ok()
        .and_then(|devices| devices.enumerate_devices().ok())
    else {
        return;
    };
    let has_camera = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map(|devices| {
            js_sys::Array::from(&devices).iter().any(|device| {
                js_sys::Reflect::get(&device, &"kind".into())
                    .ok()
                    .and_then(|kind| kind.as_string())
                    .is_some_and(|kind| kind == "videoinput")
            })
        })
        .unwrap_or(false);
    ctx.dispatch(Input::PreferCamera(camera_by_default(
        touch,
        has_camera,
        scanner_seen,
    )));
}

/// Finds a token: the pairing code from the address (exchanged for a new token), else the
/// stored one (verified in the background), else demo mode's.
async fn start(ctx: Ctx, code: Option<String>) {
    if let Some(code) = code
        && pairing::exchange(ctx, &code).await
    {
        return;
    }
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
    let ctx = Ctx::new(Page::Checkout, Pairing::Starting);
    provide_context(ctx);
    capture::install(ctx);

    // A payment interrupted by a reload comes back first: never a second charge.
    let stored = browser::load(ATTEMPT_KEY);
    if let Some(attempt) = stored.as_deref().and_then(StoredAttempt::from_json) {
        ctx.dispatch(Input::Resume(attempt));
    } else {
        if stored.is_some() {
            // Unreadable (from an older release): nothing to resume.
            browser::store(ATTEMPT_KEY, None);
        }
        apply_amount_from_address(ctx);
    }
    // A pairing code is exchanged before any page shows (it may be refused); otherwise the
    // page shows while the token is looked for.
    let code = pairing::take_code_from_address();
    let show_while_starting = code.is_none();
    spawn_local(start(ctx, code));
    spawn_local(prefer_camera(ctx));
    spawn_local(watch_connection(ctx));
    back_office::prefetch_later();
    // The page is built after the tasks above have sent their first requests (tasks run in
    // the order spawned), so the pairing request travels while the page renders.
    let built = RwSignal::new(false);
    spawn_local(async move { built.set(true) });

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

    // Render, then pair: a new tablet in demo mode does not wait for the pairing request
    // before its first screen (a code scanned before the token arrives is sent when it
    // does, `capture::current_mode`). The memo keeps the page from being rebuilt unless it really
    // changes, also when pairing completes.
    let shown = Memo::new(move |_| match ctx.pairing.get() {
        Pairing::Starting if !show_while_starting => Shown::Loading,
        Pairing::Needed | Pairing::CodeRefused => Shown::Pairing,
        Pairing::Starting | Pairing::Ready => Shown::Page(ctx.page.get()),
    });
    view! {
        <Header/>
        <OfflineBanner/>
        <BooksBanner/>
        <main class="main">
            {move || built.get().then(|| match shown.get() {
                Shown::Loading => view! { <div class="loading" aria-busy="true"></div> }.into_any(),
                Shown::Pairing => view! { <PairingPage/> }.into_any(),
                Shown::Page(Page::Checkout) => view! { <CheckoutPage/> }.into_any(),
                Shown::Page(Page::Settings) => view! { <SettingsPage/> }.into_any(),
                Shown::Page(page @ (Page::Payments | Page::Books | Page::Attention)) => view! { <BackOfficePage page=page/> }.into_any(),
            })}
        </main>
    }
}

/// What the page below the header shows.
#[derive(Clone, Copy, PartialEq)]
enum Shown {
    /// A pairing code from the address is being exchanged.
    Loading,
    /// The pairing screen.
    Pairing,
    /// A page of the app.
    Page(Page),
}
