//! Settings (pairing token, language, sound) and the pairing screen.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::i18n::{Lang, Text, text};
use crate::model::settings::looks_like_token;
use crate::ui::api;
use crate::ui::browser;
use crate::ui::camera::CameraReader;
use crate::ui::context::{Pairing, ctx};

/// The token form: checks a token with the proxy before saving it.
#[component]
fn TokenForm() -> impl IntoView {
    let ctx = ctx();
    let token = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Result<String, String>>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let candidate = token.get_untracked().trim().to_owned();
        // A pairing link pasted here (from a QR code read elsewhere) pairs like the QR code.
        if crate::ui::pairing::pair_from_scanned(ctx, &candidate) {
            token.set(String::new());
            return;
        }
        if !looks_like_token(&candidate) {
            status.set(Some(Err(text(ctx.lang(), Text::TokenInvalid).to_owned())));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let result = api::terminal(&candidate).await;
            // The form may be gone by now (another page); its signals then no longer exist.
            let _ = busy.try_set(false);
            match result {
                Ok(terminal) => {
                    let _ = status.try_set(Some(Ok(format!(
                        "{} · {}",
                        text(ctx.lang(), Text::TokenSaved),
                        terminal.name
                    ))));
                    let _ = token.try_set(String::new());
                    ctx.online.set(true);
                    ctx.paired(candidate, terminal);
                }
                Err(failure) if failure.is_unauthorized() || failure.is_definite_rejection() => {
                    ctx.online.set(true);
                    let _ =
                        status.try_set(Some(Err(text(ctx.lang(), Text::TokenInvalid).to_owned())));
                }
                Err(_) => {
                    ctx.online.set(false);
                    let _ = status.try_set(Some(Err(text(ctx.lang(), Text::Offline).to_owned())));
                }
            }
        });
    };
    view! {
        <form class="token-form" on:submit=submit>
            <label for="token">{move || text(ctx.lang(), Text::TokenLabel)}</label>
            <div class="manual-row">
                <input
                    id="token"
                    type="password"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="pct_…"
                    data-testid="token"
                    prop:value=move || token.get()
                    on:input=move |event| token.set(event_target_value(&event))
                />
                <button class="button primary" type="submit" data-testid="token-save" disabled=move || busy.get()>
                    {move || text(ctx.lang(), Text::SaveToken)}
                </button>
            </div>
            {move || status.get().map(|status| match status {
                Ok(message) => view! { <p class="notice" role="status" data-testid="token-status">{message}</p> }.into_any(),
                Err(message) => view! { <p class="notice problem" role="alert" data-testid="token-status">{message}</p> }.into_any(),
            })}
        </form>
    }
}

/// 扫码配对: the camera reader, reading the pairing QR code that `paycode-proxy terminal
/// add|pair` prints (docs/tablets.md), for a tablet whose own camera app cannot open it.
#[component]
fn PairByCamera() -> impl IntoView {
    let ctx = ctx();
    let open = RwSignal::new(false);
    let wrong = RwSignal::new(false);
    let on_text = Callback::new(move |scanned: String| {
        // A code taken closes the reader: one read a moment later must not be sent again
        // (its second exchange would be refused).
        if !open.get_untracked() {
            return;
        }
        if crate::ui::pairing::pair_from_scanned(ctx, &scanned) {
            wrong.set(false);
            open.set(false);
        } else {
            wrong.set(true);
        }
    });
    let toggle = move |_| {
        wrong.set(false);
        open.update(|open| *open = !*open);
    };
    view! {
        <div class="pair-camera">
            <button class="button" type="button" data-testid="pair-camera" on:click=toggle>
                {move || text(ctx.lang(), if open.get() { Text::CameraClose } else { Text::ScanToPair })}
            </button>
            {move || open.get().then(|| view! { <CameraReader on_text=on_text/> })}
            {move || wrong.get().then(|| view! {
                <p class="notice problem" role="alert" data-testid="pair-camera-wrong">{text(ctx.lang(), Text::NotAPairingCode)}</p>
            })}
        </div>
    }
}

/// Pairing: a refused pairing code's message, the camera reader and the token form; on the
/// pairing screen and in the settings.
#[component]
fn PairingControls() -> impl IntoView {
    let ctx = ctx();
    view! {
        {move || (ctx.pairing.get() == Pairing::CodeRefused).then(|| view! {
            <p class="notice problem" role="alert" data-testid="pairing-refused">{text(ctx.lang(), Text::PairingCodeRefused)}</p>
        })}
        <p class="muted">{move || text(ctx.lang(), Text::PairingHelp)}</p>
        <PairByCamera/>
        <TokenForm/>
    }
}

/// Shown when the terminal has no working token.
#[component]
pub fn PairingPage() -> impl IntoView {
    let ctx = ctx();
    view! {
        <section class="panel narrow" data-testid="pairing">
            <h1>{move || text(ctx.lang(), Text::Pairing)}</h1>
            <PairingControls/>
            <LanguageSwitch/>
        </section>
    }
}

/// 中文 / English.
#[component]
fn LanguageSwitch() -> impl IntoView {
    let ctx = ctx();
    let choose = move |lang: Lang| {
        move |_| {
            ctx.settings.update(|settings| settings.lang = lang);
            for (key, value) in ctx.settings.with_untracked(|settings| settings.entries()) {
                browser::store(key, Some(value));
            }
        }
    };
    view! {
        <div class="setting">
            <span class="setting-label">{move || text(ctx.lang(), Text::Language)}</span>
            <div class="segmented" role="group">
                <button class="button" class:primary=move || ctx.lang() == Lang::Zh aria-pressed=move || (ctx.lang() == Lang::Zh).to_string() data-testid="lang-zh" on:click=choose(Lang::Zh)>"中文"</button>
                <button class="button" class:primary=move || ctx.lang() == Lang::En aria-pressed=move || (ctx.lang() == Lang::En).to_string() data-testid="lang-en" on:click=choose(Lang::En)>"English"</button>
            </div>
        </div>
    }
}

/// The settings page.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let ctx = ctx();
    let sound = move || ctx.settings.with(|settings| settings.sound);
    let set_sound = move |on: bool| {
        move |_| {
            ctx.settings.update(|settings| settings.sound = on);
            for (key, value) in ctx.settings.with_untracked(|settings| settings.entries()) {
                browser::store(key, Some(value));
            }
            if on {
                browser::unlock_audio();
                browser::play(crate::model::checkout::Sound::Scan);
            }
        }
    };
    view! {
        <section class="panel narrow" data-testid="settings">
            <h1>{move || text(ctx.lang(), Text::Settings)}</h1>
            <div class="setting">
                <span class="setting-label">{move || text(ctx.lang(), Text::Pairing)}</span>
                <span data-testid="terminal">
                    {move || ctx.terminal.get().map(|terminal| format!("{} ({})", terminal.name, terminal.id))}
                </span>
            </div>
            <PairingControls/>
            <LanguageSwitch/>
            <div class="setting">
                <span class="setting-label">{move || text(ctx.lang(), Text::Sound)}</span>
                <div class="segmented" role="group">
                    <button class="button" class:primary=sound aria-pressed=move || sound().to_string() data-testid="sound-on" on:click=set_sound(true)>
                        {move || text(ctx.lang(), Text::SoundOn)}
                    </button>
                    <button class="button" class:primary=move || !sound() aria-pressed=move || (!sound()).to_string() data-testid="sound-off" on:click=set_sound(false)>
                        {move || text(ctx.lang(), Text::SoundOff)}
                    </button>
                </div>
            </div>
        </section>
    }
}
