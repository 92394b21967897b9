//! Small wrappers over browser APIs: the window, timers, the monotonic clock,
//! `localStorage`, random bytes, local time formatting and Web Audio beeps.

use std::cell::RefCell;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{AudioContext, OscillatorType, Storage, Window};

use crate::model::checkout::Sound;

/// The window (the app only runs in a window).
pub fn window() -> Window {
    web_sys::window().expect("the app runs in a browser window")
}

/// Milliseconds on the page's monotonic clock, the clock `Event.timeStamp` uses.
pub fn now_ms() -> f64 {
    window()
        .performance()
        .map_or_else(js_sys::Date::now, |performance| performance.now())
}

/// Runs `callback` once after `ms`; returns the timer id.
pub fn set_timeout(ms: u32, callback: impl FnOnce() + 'static) -> i32 {
    let closure = Closure::once_into_js(callback);
    window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(
            closure.unchecked_ref(),
            i32::try_from(ms).unwrap_or(i32::MAX),
        )
        .unwrap_or(0)
}

/// Cancels a timer from [`set_timeout`].
pub fn clear_timeout(id: i32) {
    window().clear_timeout_with_handle(id);
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    if ms == 0 {
        return;
    }
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        set_timeout(ms, move || {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        });
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Percent-encodes a URL path segment or query value.
pub fn encode_component(text: &str) -> String {
    String::from(js_sys::encode_uri_component(text))
}

fn storage() -> Option<Storage> {
    window().local_storage().ok().flatten()
}

/// Reads a `localStorage` value.
pub fn load(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Writes (or, with `None`, removes) a `localStorage` value.
pub fn store(key: &str, value: Option<&str>) {
    if let Some(storage) = storage() {
        let _ = match value {
            Some(value) => storage.set_item(key, value),
            None => storage.remove_item(key),
        };
    }
}

/// 16 random bytes from `crypto.getRandomValues` (falls back to `Math.random`, which is
/// only ever needed by very old browsers and still makes a distinct attempt id).
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let filled = window()
        .crypto()
        .ok()
        .and_then(|crypto| crypto.get_random_values_with_u8_array(&mut bytes).ok())
        .is_some();
    if !filled {
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

/// `HH:MM:SS` in local time of an RFC 3339 timestamp.
pub fn local_time(rfc3339: &str) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
    if date.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    format!(
        "{:02}:{:02}:{:02}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}

/// `YYYY-MM-DD HH:MM:SS` in local time of an RFC 3339 timestamp.
pub fn local_date_time(rfc3339: &str) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
    if date.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    format!(
        "{:04}-{:02}-{:02} {}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        local_time(rfc3339)
    )
}

/// Saves `contents` as a download named `file_name` (a Blob behind a temporary link), so a
/// file fetched with the terminal's token reaches the Downloads folder like any other.
pub fn download_text(file_name: &str, mime: &str, contents: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(contents));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(&format!("{mime};charset=utf-8"));
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(document) = window().document()
        && let Ok(link) = document.create_element("a")
        && let Ok(link) = link.dyn_into::<web_sys::HtmlAnchorElement>()
    {
        link.set_href(&url);
        link.set_download(file_name);
        link.click();
    }
    // The click has handed the Blob to the download; the address is no longer needed.
    set_timeout(1_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
}

thread_local! {
    static AUDIO: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
}

/// Creates or resumes the `AudioContext`. Browsers allow audio only after a user
/// activation; a key press or tap is one, so the key and pointer listeners call this.
pub fn unlock_audio() {
    AUDIO.with(|audio| {
        let mut audio = audio.borrow_mut();
        if audio.is_none() {
            *audio = AudioContext::new().ok();
        }
        if let Some(context) = audio.as_ref()
            && context.state() == web_sys::AudioContextState::Suspended
        {
            let _ = context.resume();
        }
    });
}

/// Plays a sound: 880 Hz for a scan, a rising pair for success, a low double beep for
/// errors (`docs/cashier-screens.md` §6.2).
pub fn play(sound: Sound) {
    let tones: &[(f32, f64, f64)] = match sound {
        Sound::Scan => &[(880.0, 0.0, 0.08)],
        Sound::Success => &[(880.0, 0.0, 0.1), (1320.0, 0.12, 0.16)],
        Sound::Error => &[(220.0, 0.0, 0.12), (220.0, 0.18, 0.12)],
    };
    AUDIO.with(|audio| {
        let audio = audio.borrow();
        let Some(context) = audio.as_ref() else {
            return;
        };
        let start = context.current_time();
        for &(frequency, offset, length) in tones {
            let _ = beep(context, frequency, start + offset, length);
        }
    });
}

fn beep(
    context: &AudioContext,
    frequency: f32,
    at: f64,
    length: f64,
) -> Result<(), wasm_bindgen::JsValue> {
    let oscillator = context.create_oscillator()?;
    let gain = context.create_gain()?;
    oscillator.set_type(OscillatorType::Square);
    oscillator.frequency().set_value(frequency);
    gain.gain().set_value_at_time(0.08, at)?;
    gain.gain().set_value_at_time(0.0, at + length)?;
    oscillator.connect_with_audio_node(&gain)?;
    gain.connect_with_audio_node(&context.destination())?;
    oscillator.start_with_when(at)?;
    oscillator.stop_with_when(at + length + 0.02)?;
    Ok(())
}
