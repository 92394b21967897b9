//! The back office's two pages (对账 and 待处理) in the main page: a placeholder element into
//! which the back-office bundle (`src/bin/paycode-backoffice`, a wasm module of its own)
//! renders them. The bundle is fetched the first time a manager opens one of them, so the
//! page's first load carries none of their code (`scripts/size-report`); a cashier terminal
//! never fetches it.
//!
//! The bundle is an ES module (Trunk builds it with `data-bindgen-target="web"`,
//! `www/index.html`): [`BUNDLE_URL`] is imported once, initialised, and its `open(root,
//! page, on_leave)` renders `page` into `root`; `close()` takes it down. `on_leave` asks the
//! main page to leave (the PIN dialog closed before any approval).

use std::cell::RefCell;

use js_sys::{Function, Promise, Reflect};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::model::i18n::{Text, text};
use crate::ui::context::{Page, ctx};

/// The back-office bundle's module (wasm-bindgen's `web` output, which fetches
/// `paycode-backoffice_bg.wasm` next to it), written by Trunk next to the app.
pub const BUNDLE_URL: &str = "/paycode-backoffice.js";

#[wasm_bindgen(
    inline_js = "export function import_bundle(url) { return import(url).then(async (bundle) => { await bundle.default(); return bundle; }); }"
)]
extern "C" {
    /// Imports the ES module at `url` and runs its wasm-bindgen initialiser; resolves to
    /// the module.
    #[wasm_bindgen(catch)]
    fn import_bundle(url: &str) -> Result<Promise, JsValue>;
}

thread_local! {
    /// The bundle's module, once imported and started.
    static BUNDLE: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// The bundle's module, importing it on first use.
async fn bundle() -> Result<JsValue, JsValue> {
    if let Some(bundle) = BUNDLE.with(|cell| cell.borrow().clone()) {
        return Ok(bundle);
    }
    let bundle = JsFuture::from(import_bundle(BUNDLE_URL)?).await?;
    BUNDLE.with(|cell| *cell.borrow_mut() = Some(bundle.clone()));
    Ok(bundle)
}

/// Calls the bundle's function `name` with `args`.
fn call(bundle: &JsValue, name: &str, args: &js_sys::Array) -> Result<JsValue, JsValue> {
    Reflect::get(bundle, &JsValue::from_str(name))?
        .dyn_into::<Function>()?
        .apply(&JsValue::NULL, args)
}

/// The element the bundle renders `page` into; says so when the bundle cannot be fetched.
#[component]
pub fn BackOfficePage(page: Page) -> impl IntoView {
    let ctx = ctx();
    let root = NodeRef::<html::Div>::new();
    let failed = RwSignal::new(false);
    let open = move || {
        let Some(element) = root.get_untracked() else {
            return;
        };
        failed.set(false);
        spawn_local(async move {
            let opened = async {
                let bundle = bundle().await?;
                let on_leave = Closure::once_into_js(move || ctx.page.set(Page::Checkout));
                let name = JsValue::from_str(page.back_office_name().unwrap_or("books"));
                call(
                    &bundle,
                    "open",
                    &js_sys::Array::of3(&element, &name, &on_leave),
                )
            };
            if opened.await.is_err() {
                let _ = failed.try_set(true);
            }
        });
    };
    root.on_load(move |_| open());
    on_cleanup(|| {
        if let Some(bundle) = BUNDLE.with(|cell| cell.borrow().clone()) {
            let _ = call(&bundle, "close", &js_sys::Array::new());
        }
    });
    view! {
        <div class="back-office" data-testid="back-office" node_ref=root></div>
        {move || failed.get().then(|| view! {
            <p class="notice problem" role="alert" data-testid="back-office-failed">
                {text(ctx.lang(), Text::BackOfficeFailed)}" "
                <button class="button secondary small" on:click=move |_| open()>{text(ctx.lang(), Text::Retry)}</button>
            </p>
        })}
    }
}
