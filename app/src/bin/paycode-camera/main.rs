//! The camera bundle's entry point (wasm32): Trunk builds this binary as a wasm module of its
//! own (`www/index.html`), which the page fetches only when a camera reader opens
//! (`ui::camera`), so the page's first load carries none of the camera's code. Off wasm32 it
//! only says so.
//!
//! Its interface is three functions on the `wasm_bindgen` global that wasm-bindgen's
//! `no-modules` output (`/paycode-camera.js`) defines in the page:
//! - `open(root, lang, on_text)`: opens the camera of the page's reader `root` (its `<video>`,
//!   message line and button: `ui::camera::CameraReader`), writes its state in `lang` (a
//!   language tag) into those elements, and calls `on_text(text)` with every decoded text;
//!   any camera already open is closed first;
//! - `close()`: stops the camera, its decoder and the frame loop;
//! - `pressed()`: the reader's button (the torch while running, else a retry).

#[cfg(target_arch = "wasm32")]
mod reader;

#[cfg(target_arch = "wasm32")]
mod exports {
    use paycode_app::model::i18n::Lang;
    use wasm_bindgen::prelude::wasm_bindgen;

    /// Opens the camera of the reader `root`, shown in `lang`; `on_text` gets the texts.
    #[wasm_bindgen]
    pub fn open(root: web_sys::HtmlElement, lang: &str, on_text: js_sys::Function) {
        super::reader::open(root, Lang::from_tag(lang), on_text);
    }

    /// Stops the camera.
    #[wasm_bindgen]
    pub fn close() {
        super::reader::close();
    }

    /// The reader's button was pressed.
    #[wasm_bindgen]
    pub fn pressed() {
        super::reader::pressed();
    }
}

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!(
        "paycode-camera runs in the browser: `trunk build --release` builds it (see README.md)"
    );
}
