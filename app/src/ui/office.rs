//! The back-office bundle's side (`src/bin/paycode-backoffice`): renders the 今日收款, 对账 or
//! 待处理 page into an element of the main page, with a context of its own (the stored token
//! and language, read from `localStorage` like the main page reads them, and the terminal
//! the main page passes). See `ui::back_office` for the main page's side.

use std::any::Any;
use std::cell::RefCell;

use js_sys::Function;
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlElement;

use crate::ui::context::{Ctx, Page, Pairing};
use crate::ui::pages::{AttentionPage, BooksPage, PaymentsPage};

thread_local! {
    /// The mounted page: dropping it takes the page down.
    static MOUNTED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Renders `page` (`payments`, `books` or `attention`; another name opens `books`) into
/// `root`, taking down any page mounted before; `on_leave()` is called when the page asks to
/// leave. `terminal` is the JSON of the main page's [`paycode_api::TerminalInfo`], if it
/// knows it (a page showing "this terminal's" payments needs its id).
pub fn open(root: HtmlElement, page: &str, on_leave: Function, terminal: Option<String>) {
    close();
    let page = Page::from_back_office_name(page).unwrap_or(Page::Books);
    let terminal = terminal.and_then(|json| serde_json::from_str(&json).ok());
    let handle = leptos::mount::mount_to(root, move || {
        let ctx = Ctx::new(page, Pairing::Ready);
        ctx.terminal.set(terminal);
        provide_context(ctx);
        Effect::new(move |_| {
            if ctx.page.get() != page {
                let _ = on_leave.call0(&JsValue::NULL);
            }
        });
        match page {
            Page::Payments => view! { <PaymentsPage/> }.into_any(),
            Page::Attention => view! { <AttentionPage/> }.into_any(),
            _ => view! { <BooksPage/> }.into_any(),
        }
    });
    MOUNTED.with(|cell| *cell.borrow_mut() = Some(Box::new(handle)));
}

/// Takes the mounted page down.
pub fn close() {
    let mounted = MOUNTED.with(|cell| cell.borrow_mut().take());
    drop(mounted);
}
