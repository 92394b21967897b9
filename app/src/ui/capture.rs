//! Wires the pure [`WedgeDetector`] to the browser: capture-phase `keydown` and `keyup`
//! listeners on the window (so they run before any widget), its idle timer, the hidden
//! `inputmode="none"` field for IME / Android / DataWedge input, a `paste` listener for a code
//! pasted on the waiting screen, and the page's keyboard shortcuts.
//!
//! The detector's state lives in a thread-local, not in a signal: the hot path is plain Rust,
//! and only completed scans and notices reach the reactive checkout.

use std::cell::{Cell, RefCell};

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{
    AddEventListenerOptions, ClipboardEvent, Element, HtmlElement, HtmlInputElement, KeyboardEvent,
};

use crate::model::amount::AmountKey;
use crate::model::checkout::{CodeSource, Input, Shortcut};
use crate::model::digits::ascii_digits;
use crate::model::wedge::{DetectorEvent, KeyInput, Mode, WedgeDetector};
use crate::ui::browser;
use crate::ui::context::{Ctx, Page, Pairing, new_attempt_id};

/// Marks the manual-entry field (`data-scan-target` in the views): the detector watches it
/// passively.
pub const SCAN_TARGET_ATTR: &str = "data-scan-target";
/// Marks the hidden capture field of the fallback path (`data-capture` in the views).
pub const CAPTURE_ATTR: &str = "data-capture";

thread_local! {
    static DETECTOR: RefCell<WedgeDetector> = RefCell::new(WedgeDetector::default());
    static TIMER: Cell<Option<i32>> = const { Cell::new(None) };
    /// The element that had focus before a Tab the page was shown, and the Tab's time: if
    /// the Tab was a scanner's prefix, focus goes back there.
    static FOCUS_BEFORE_TAB: RefCell<Option<(Option<HtmlElement>, f64)>> =
        const { RefCell::new(None) };
}

/// Installs the listeners. Called once by the root component.
pub fn install(ctx: Ctx) {
    listen("keydown", move |event: KeyboardEvent| {
        on_keydown(ctx, &event)
    });
    listen("keyup", move |event: KeyboardEvent| on_keyup(ctx, &event));
    listen("paste", move |event: ClipboardEvent| on_paste(ctx, &event));
    listen("pointerup", |_: web_sys::Event| browser::unlock_audio());
}

/// Adds a capture-phase listener on the window (it runs before any widget's) for the
/// page's lifetime.
fn listen<E>(event: &str, handler: impl FnMut(E) + 'static)
where
    E: wasm_bindgen::convert::FromWasmAbi + 'static,
{
    let options = AddEventListenerOptions::new();
    options.set_capture(true);
    let closure = Closure::<dyn FnMut(E)>::wrap(Box::new(handler));
    let _ = browser::window().add_event_listener_with_callback_and_add_event_listener_options(
        event,
        closure.as_ref().unchecked_ref(),
        &options,
    );
    // The listener lives as long as the page.
    closure.forget();
}

fn is_editable(element: &Element) -> bool {
    let tag = element.tag_name();
    matches!(tag.as_str(), "INPUT" | "TEXTAREA" | "SELECT")
        || element
            .dyn_ref::<HtmlElement>()
            .is_some_and(HtmlElement::is_content_editable)
}

/// The detector mode for the current screen and focus.
fn current_mode(ctx: Ctx) -> Mode {
    if ctx.page.get_untracked() != Page::Checkout {
        return Mode::Off;
    }
    match ctx.pairing.get_untracked() {
        // The checkout shows while the token is looked for (render, then pair), and works
        // the same: a scanner burst is recognised from the first key, so it never reaches
        // the amount, and a code scanned before the token arrives is sent once it does
        // (`Ctx::run`, `Ctx::paired`).
        Pairing::Ready | Pairing::Starting => screen_mode(ctx),
        Pairing::Needed | Pairing::CodeRefused => Mode::Off,
    }
}

/// The detector mode for the checkout's screen and the focused element.
fn screen_mode(ctx: Ctx) -> Mode {
    let screen_mode = ctx
        .checkout
        .with_untracked(|checkout| checkout.detector_mode());
    let focused = browser::window()
        .document()
        .and_then(|document| document.active_element());
    match focused {
        Some(element) if element.has_attribute(SCAN_TARGET_ATTR) => {
            if screen_mode == Mode::Passive {
                Mode::Passive
            } else {
                Mode::Off
            }
        }
        Some(element) if is_editable(&element) && !element.has_attribute(CAPTURE_ATTR) => Mode::Off,
        // The manual field is open but not focused: the scanner still works.
        _ if screen_mode == Mode::Passive => Mode::Armed,
        _ => screen_mode,
    }
}

/// Runs one key event through the detector (`keydown`, or `keyup` when `up`) and obeys it.
fn on_key_event(
    ctx: Ctx,
    event: &KeyboardEvent,
    up: bool,
) -> (crate::model::wedge::KeyOutcome, Mode) {
    let mode = current_mode(ctx);
    let code = event.code();
    let key = event.key();
    let input = KeyInput {
        time_ms: event.time_stamp(),
        code: &code,
        key: &key,
        key_code: event.key_code(),
        repeat: event.repeat(),
        shortcut_modifier: event.ctrl_key() || event.meta_key(),
        alt: event.alt_key(),
    };
    let outcome = DETECTOR.with(|detector| {
        let mut detector = detector.borrow_mut();
        detector.set_mode(mode);
        if up {
            detector.on_key_up(&input)
        } else {
            detector.on_key(&input)
        }
    });
    if outcome.prevent_default {
        event.prevent_default();
    }
    if outcome.stop_propagation {
        event.stop_propagation();
    }
    (outcome, mode)
}

fn on_keydown(ctx: Ctx, event: &KeyboardEvent) {
    browser::unlock_audio();
    let (outcome, mode) = on_key_event(ctx, event, false);
    deliver(ctx, outcome.events);
    schedule_timer(ctx);
    if outcome.pass_to_page && mode != Mode::Off {
        if event.key() == "Tab" {
            remember_focus_before_tab(event.time_stamp());
        }
        if ctx.page.get_untracked() == Page::Checkout {
            shortcut(ctx, event, mode);
        }
    }
}

/// Alt's release completes a keypad-emulated character.
fn on_keyup(ctx: Ctx, event: &KeyboardEvent) {
    let (outcome, _) = on_key_event(ctx, event, true);
    deliver(ctx, outcome.events);
    schedule_timer(ctx);
}

/// A code pasted while the waiting screen has no field focused: read like the manual field
/// (digits of any script). Pastes into a field are the field's.
fn on_paste(ctx: Ctx, event: &ClipboardEvent) {
    if current_mode(ctx) != Mode::Armed
        || browser::window()
            .document()
            .and_then(|document| document.active_element())
            .is_some_and(|element| is_editable(&element))
    {
        return;
    }
    let Some(text) = event
        .clipboard_data()
        .and_then(|data| data.get_data("text").ok())
    else {
        return;
    };
    event.prevent_default();
    ctx.dispatch(Input::Code {
        digits: ascii_digits(&text),
        source: CodeSource::Manual,
        attempt_id: new_attempt_id(),
    });
}

fn remember_focus_before_tab(key_ms: f64) {
    let focused = browser::window()
        .document()
        .and_then(|document| document.active_element())
        .and_then(|element| element.dyn_into::<HtmlElement>().ok());
    FOCUS_BEFORE_TAB.with(|cell| *cell.borrow_mut() = Some((focused, key_ms)));
}

/// Puts focus back where it was before a Tab that turned out to be a scanner's prefix.
fn restore_focus_before_tab(since_ms: f64) {
    let Some((element, key_ms)) = FOCUS_BEFORE_TAB.with(|cell| cell.borrow_mut().take()) else {
        return;
    };
    if key_ms < since_ms {
        return;
    }
    match element {
        Some(element) => {
            let _ = element.focus();
        }
        None => {
            if let Some(active) = browser::window()
                .document()
                .and_then(|document| document.active_element())
                .and_then(|element| element.dyn_into::<HtmlElement>().ok())
            {
                let _ = active.blur();
            }
        }
    }
}

/// Lets the detector take the last code again at once (the page refused it for a reason the
/// cashier fixes before scanning again).
pub fn forget_last_scan() {
    DETECTOR.with(|detector| detector.borrow_mut().forget_last_scan());
}

/// Enter = primary, Esc = back/cancel, and the amount keys that are not digits. Bare digits
/// are never shortcuts: the scanner types digits.
fn shortcut(ctx: Ctx, event: &KeyboardEvent, mode: Mode) {
    if event.ctrl_key() || event.meta_key() || event.alt_key() {
        return;
    }
    let key = event.key();
    let action = match (mode, key.as_str()) {
        (Mode::Off, _) => return,
        (_, "Escape") => Shortcut::Back,
        // In the manual field, Enter submits the field's own form.
        (Mode::Passive, _) => return,
        (_, "Enter") => Shortcut::Proceed,
        (Mode::Amount, "Backspace") => Shortcut::Key(AmountKey::Backspace),
        (Mode::Amount, "Delete") => Shortcut::Key(AmountKey::Clear),
        (Mode::Amount, "." | ",") => Shortcut::Key(AmountKey::Point),
        _ if mode == Mode::Amount && event.code() == "NumpadDecimal" => {
            Shortcut::Key(AmountKey::Point)
        }
        _ => return,
    };
    event.prevent_default();
    ctx.dispatch(Input::Shortcut {
        action,
        key_ms: event.time_stamp(),
    });
}

/// Takes a text the camera decoded through the scanner's rules (`WedgeDetector::on_decoded`:
/// the same duplicate memory and screen rules) to the checkout's one code path.
pub fn on_camera_text(ctx: Ctx, text: &str) {
    let mode = current_mode(ctx);
    let event = DETECTOR.with(|detector| {
        let mut detector = detector.borrow_mut();
        detector.set_mode(mode);
        detector.on_decoded(text, browser::now_ms())
    });
    deliver_from(ctx, event.into_iter().collect(), CodeSource::Camera);
}

/// Hands detector events to the checkout.
fn deliver(ctx: Ctx, events: Vec<DetectorEvent>) {
    deliver_from(ctx, events, CodeSource::Scanner);
}

fn deliver_from(ctx: Ctx, events: Vec<DetectorEvent>, source: CodeSource) {
    for event in events {
        match event {
            DetectorEvent::Scanned { code, .. } => ctx.dispatch(Input::Code {
                digits: code,
                source,
                attempt_id: new_attempt_id(),
            }),
            DetectorEvent::ImeSuspected => {
                focus_capture_field();
                ctx.dispatch(Input::Detector(DetectorEvent::ImeSuspected));
            }
            DetectorEvent::PrefixTakeBack { since_ms } => {
                restore_focus_before_tab(since_ms);
                ctx.dispatch(Input::Detector(event));
            }
            other => ctx.dispatch(Input::Detector(other)),
        }
    }
}

/// Arms the idle timer for the detector's next deadline.
fn schedule_timer(ctx: Ctx) {
    let Some(deadline) = DETECTOR.with(|detector| detector.borrow().deadline()) else {
        return;
    };
    if let Some(previous) = TIMER.with(Cell::take) {
        browser::clear_timeout(previous);
    }
    let wait = (deadline - browser::now_ms()).max(0.0).ceil() as u32 + 1;
    let id = browser::set_timeout(wait, move || {
        TIMER.with(|timer| timer.set(None));
        let events = DETECTOR.with(|detector| detector.borrow_mut().on_timer(browser::now_ms()));
        deliver(ctx, events);
        schedule_timer(ctx);
    });
    TIMER.with(|timer| timer.set(Some(id)));
}

/// Moves focus to the hidden capture field (IME or touch devices), so characters arrive as
/// `input` events there instead of being lost or composed.
pub fn focus_capture_field() {
    if let Some(field) = browser::window()
        .document()
        .and_then(|document| document.query_selector(&format!("[{CAPTURE_ATTR}]")).ok())
        .flatten()
        .and_then(|element| element.dyn_into::<HtmlElement>().ok())
    {
        let _ = field.focus();
    }
}

/// Whether the device's main pointer is coarse (a tablet): there the capture field takes
/// focus up front, as Android scanners and IMEs type into a focused field.
pub fn prefers_capture_field() -> bool {
    browser::window()
        .match_media("(pointer: coarse)")
        .ok()
        .flatten()
        .is_some_and(|query| query.matches())
}

/// Handles an `input` event of the hidden capture field.
pub fn on_capture_input(ctx: Ctx, field: &HtmlInputElement, time_ms: f64) {
    let text = field.value();
    field.set_value("");
    let mode = current_mode(ctx);
    let events = DETECTOR.with(|detector| {
        let mut detector = detector.borrow_mut();
        detector.set_mode(mode);
        detector.on_text(time_ms, &text)
    });
    deliver(ctx, events);
    schedule_timer(ctx);
}
