//! The back-office bundle's side (`src/bin/paycode-backoffice`): renders the 对账 or 待处理
//! page into an element of the main page, with a context of its own (the stored token and
//! language, read from `localStorage` like the main page reads them). See
//! `ui::back_office` for the main page's side.

use std::any::Any;
use std::cell::RefCell;

use js_sys::Function;
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlElement;

use crate::ui::context::{Ctx, Page, Pairing};
use crate::ui::pages::{AttentionPage, BooksPage};

thread_local! {
    /// The mounted page: dropping it takes the page down.
    static MOUNTED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Renders `page` (`books` or `attention`) into `root`, taking down any page mounted
/// before; `on_leave()` is called when the page asks to leave.
pub fn open(root: HtmlElement, page: &str, on_leave: Function) {
    close();
    let page = if page == "attention" {
        Page::Attention
    } else {
        Page::Books
    };
    let handle = leptos::mount::mount_to(root, move || {
        let ctx = Ctx::new(page, Pairing::Ready);
        provide_context(ctx);
        Effect::new(move |_| {
            if ctx.page.get() != page {
                let _ = on_leave.call0(&JsValue::NULL);
            }
        });
        match page {
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
