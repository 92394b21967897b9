//! The camera reader on the page: a component with the camera's preview, a message line and
//! one button, which hands every decoded text to a callback (`docs/capture.md` §7). It knows
//! nothing of payment codes: the checkout passes texts through the wedge detector's rules
//! (`capture::on_camera_text`), and any other screen (pairing by a QR code) can use the same
//! reader with its own callback.
//!
//! The camera itself (getUserMedia, the decoder choice, the decoder worker, the frame loop,
//! and the reader's state written into its elements) is the camera bundle
//! (`src/bin/paycode-camera`), a wasm module of its own: the first reader adds its script,
//! [`BUNDLE_URL`], to the page, so the page's first load carries none of it. Until the
//! bundle runs the reader says the camera is starting; a bundle that cannot be fetched is a
//! decoder that did not load (重试 fetches it again).

use std::cell::{Cell, RefCell};

use js_sys::{Function, Promise};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Element, HtmlElement};

use crate::model::camera::CameraFailure;
use crate::model::i18n::{CameraText, Lang, camera_failure_text, camera_text};
use crate::ui::browser;
use crate::ui::context::ctx;

/// The camera bundle's script (wasm-bindgen's `no-modules` output, which fetches the
/// `paycode-camera_bg.wasm` next to it), written by Trunk next to the app (`www/index.html`).
pub const BUNDLE_URL: &str = "/paycode-camera.js";

// The camera bundle's functions, on the `wasm_bindgen` global its script defines
// (`src/bin/paycode-camera/main.rs`).
#[wasm_bindgen]
extern "C" {
    /// Fetches and starts the bundle's wasm; resolves when it runs.
    #[wasm_bindgen(js_name = wasm_bindgen, catch)]
    fn start_bundle() -> Result<Promise, JsValue>;
    /// Opens the camera of the reader `root`, shown in `lang`; `on_text` gets the texts.
    #[wasm_bindgen(js_namespace = wasm_bindgen, js_name = open)]
    fn bundle_open(root: &HtmlElement, lang: &str, on_text: &Function);
    /// Stops the camera.
    #[wasm_bindgen(js_namespace = wasm_bindgen, js_name = close)]
    fn bundle_close();
    /// The reader's button was pressed.
    #[wasm_bindgen(js_namespace = wasm_bindgen, js_name = pressed)]
    fn bundle_pressed();
}

/// Where the camera bundle is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bundle {
    Absent,
    Loading,
    Running,
}

/// The mounted reader.
struct Reader {
    id: u64,
    root: HtmlElement,
    lang: Lang,
    on_text: Closure<dyn FnMut(JsValue)>,
}

thread_local! {
    static MOUNTED: RefCell<Option<Reader>> = const { RefCell::new(None) };
    static READERS: Cell<u64> = const { Cell::new(0) };
    static BUNDLE: Cell<Bundle> = const { Cell::new(Bundle::Absent) };
}

/// The camera reader: the preview, its state, and one button (重试 after a failure a retry
/// can mend, the torch while running). `on_text` gets every decoded text (the same code
/// again in later frames too: the caller filters).
#[component]
pub fn CameraReader(on_text: Callback<String>) -> impl IntoView {
    // Read once: the reader is not rebuilt when settings change.
    let lang = ctx().settings.with_untracked(|settings| settings.lang);
    let id = READERS.with(|count| {
        count.set(count.get() + 1);
        count.get()
    });
    let root = NodeRef::<html::Div>::new();
    root.on_load(move |root| {
        let reader = Reader {
            id,
            root: root.into(),
            lang,
            // A `JsValue` rather than a `String`: that closure type's glue is in the page's
            // wasm already (its futures).
            on_text: Closure::new(move |text: JsValue| {
                if let Some(text) = text.as_string() {
                    on_text.run(text);
                }
            }),
        };
        MOUNTED.with(|cell| *cell.borrow_mut() = Some(reader));
        open();
    });
    on_cleanup(move || {
        // A reader mounted since is not this one's to stop.
        let mine = MOUNTED.with(|cell| {
            let mut cell = cell.borrow_mut();
            let mine = cell.as_ref().is_some_and(|reader| reader.id == id);
            mine.then(|| cell.take())
        });
        if mine.is_some() && BUNDLE.with(Cell::get) == Bundle::Running {
            bundle_close();
        }
    });
    view! {
        <div class="camera" data-testid="camera" data-state="starting" node_ref=root>
            <div class="camera-view">
                <video class="camera-video" data-testid="camera-video" autoplay muted playsinline></video>
                <div class="camera-aim" aria-hidden="true"></div>
            </div>
            <p class="camera-status" role="status" data-testid="camera-message">
                {camera_text(lang, CameraText::Starting)}
            </p>
            <button class="button secondary" data-testid="camera-button" hidden on:click=|_| pressed()></button>
        </div>
    }
}

/// The reader's button: the bundle's once it runs, else a new try at fetching it.
fn pressed() {
    if BUNDLE.with(Cell::get) == Bundle::Running {
        bundle_pressed();
    } else {
        open();
    }
}

/// Opens the camera of the mounted reader, fetching the bundle first if need be.
fn open() {
    match BUNDLE.with(Cell::get) {
        Bundle::Running => {
            MOUNTED.with(|cell| {
                if let Some(reader) = cell.borrow().as_ref() {
                    bundle_open(
                        &reader.root,
                        reader.lang.tag(),
                        reader.on_text.as_ref().unchecked_ref(),
                    );
                }
            });
        }
        // The reader mounted now is opened when it has loaded.
        Bundle::Loading => {}
        Bundle::Absent => load_bundle(),
    }
}

/// Adds the bundle's script to the page and starts it; then opens the mounted reader's
/// camera, or says the decoder did not load.
fn load_bundle() {
    let Some(script) = browser::window()
        .document()
        .and_then(|document| document.create_element("script").ok())
    else {
        return;
    };
    BUNDLE.with(|cell| cell.set(Bundle::Loading));
    let _ = script.set_attribute("src", BUNDLE_URL);
    let loaded = script.clone();
    let on_load = Closure::once_into_js(move || {
        spawn_local(async move {
            let started = match start_bundle() {
                Ok(promise) => JsFuture::from(promise).await.is_ok(),
                Err(_) => false,
            };
            bundle_done(&loaded, started);
        });
    });
    let failed = script.clone();
    let on_error = Closure::once_into_js(move || bundle_done(&failed, false));
    let _ = script.add_event_listener_with_callback("load", on_load.unchecked_ref());
    let _ = script.add_event_listener_with_callback("error", on_error.unchecked_ref());
    if let Some(body) = browser::window().document().and_then(|d| d.body()) {
        let _ = body.append_child(&script);
    }
}

fn bundle_done(script: &Element, started: bool) {
    if started {
        BUNDLE.with(|cell| cell.set(Bundle::Running));
        open();
        return;
    }
    // Forgotten: the next reader (or 重试) fetches it again.
    script.remove();
    BUNDLE.with(|cell| cell.set(Bundle::Absent));
    MOUNTED.with(|cell| {
        if let Some(reader) = cell.borrow().as_ref() {
            failed(reader, CameraFailure::DecoderFailed);
        }
    });
}

/// Shows that the camera bundle did not load (the bundle shows every other state).
fn failed(reader: &Reader, failure: CameraFailure) {
    let root = &reader.root;
    let _ = root.set_attribute("data-state", "failed");
    if let Ok(Some(line)) = root.query_selector("[data-testid=camera-message]") {
        line.set_text_content(Some(camera_failure_text(reader.lang, failure)));
        let _ = line.set_attribute("role", "alert");
        let _ = line.set_attribute("class", "camera-failure");
        let _ = line.set_attribute("data-failure", failure.name());
    }
    if let Ok(Some(button)) = root.query_selector("[data-testid=camera-button]") {
        let _ = button.remove_attribute("hidden");
        button.set_text_content(Some(camera_text(reader.lang, CameraText::Retry)));
    }
}
