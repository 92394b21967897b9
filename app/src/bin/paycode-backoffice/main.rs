//! The back-office bundle's entry point (wasm32): Trunk builds this binary as an ES module
//! of its own (`www/index.html`), which the page imports only when the 今日收款, 对账 or 待处理
//! page opens (`ui::back_office`), so the page's first load carries none of their code.
//! Off wasm32 it only says so.
//!
//! Its interface is two exported functions:
//! - `open(root, page, on_leave, terminal)`: renders `page` (`payments`, `books` or
//!   `attention`) into the element `root`, taking down any page it rendered before;
//!   `on_leave()` asks the main page to leave; `terminal` is the terminal's JSON as the main
//!   page knows it (`GET /api/v1/terminal`), or `undefined`;
//! - `close()`: takes the page down.

#[cfg(target_arch = "wasm32")]
mod exports {
    use wasm_bindgen::prelude::wasm_bindgen;

    /// Renders `page` into `root`.
    #[wasm_bindgen]
    pub fn open(
        root: web_sys::HtmlElement,
        page: &str,
        on_leave: js_sys::Function,
        terminal: Option<String>,
    ) {
        console_error_panic_hook::set_once();
        paycode_app::back_office::open(root, page, on_leave, terminal);
    }

    /// Takes the page down.
    #[wasm_bindgen]
    pub fn close() {
        paycode_app::back_office::close();
    }
}

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!(
        "paycode-backoffice runs in the browser: `trunk build --release` builds it (see README.md)"
    );
}
