//! The pages away from the counter (今日收款 with its refunds, and a manager's 对账 and 待处理)
//! in the main page: a placeholder element into which the back-office bundle
//! (`src/bin/paycode-backoffice`, a wasm module of its own) renders them. The bundle is
//! fetched the first time one of them opens, so the page's first load, which a tablet waits
//! for, carries none of their code (`scripts/size-report`, docs/tablets.md §5).
//!
//! The bundle is an ES module (Trunk builds it with `data-bindgen-target="web"`,
//! `www/index.html`): [`BUNDLE_URL`] is imported once, initialised, and its `open(root,
//! page, on_leave, terminal)` renders `page` into `root`; `close()` takes it down.
//! `on_leave` asks the main page to leave (the PIN dialog closed before any approval);
//! `terminal` is the terminal the main page knows (`GET /api/v1/terminal`'s JSON, or
//! `undefined`), so the bundle need not ask for it again.

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
/// [`BUNDLE_WASM_URL`] next to it), written by Trunk next to the app.
pub const BUNDLE_URL: &str = "/paycode-backoffice.js";

/// The back-office bundle's wasm.
const BUNDLE_WASM_URL: &str = "/paycode-backoffice_bg.wasm";

/// How long after the page starts the bundle is fetched ahead ([`prefetch_later`]): well
/// after the first screen, which is ready in about half a second on a tablet.
const PREFETCH_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

#[wasm_bindgen(inline_js = "
export function import_bundle(url) {
  return import(url).then(async (bundle) => { await bundle.default(); return bundle; });
}
export function prefetch(urls) {
  for (const url of urls) {
    fetch(url, { priority: 'low' }).then((response) => response.arrayBuffer()).catch(() => {});
  }
}
")]
extern "C" {
    /// Imports the ES module at `url` and runs its wasm-bindgen initialiser; resolves to
    /// the module.
    #[wasm_bindgen(catch)]
    fn import_bundle(url: &str) -> Result<Promise, JsValue>;

    /// Fetches each of `urls` in full at low priority (`fetch`'s `priority`, a hint browsers
    /// without it ignore), for the browser's cache; failures are left to the real fetch.
    fn prefetch(urls: Vec<JsValue>);
}

/// Fetches the bundle ahead, once the page has settled, so the first of its pages (今日收款
/// on any terminal) opens without waiting for the network, while the page's own first load
/// never shares the network with it. A plain `fetch` rather than `<link rel=prefetch>`,
/// which Safari (iPadOS) lacks; nothing is compiled or run until a page opens. The cached
/// copies are what [`BackOfficePage`] then imports (revalidated: the bundle's names carry no
/// hash).
pub fn prefetch_later() {
    set_timeout(
        || prefetch(vec![BUNDLE_URL.into(), BUNDLE_WASM_URL.into()]),
        PREFETCH_AFTER,
    );
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

/// The element the bundle renders `page` into, with 加载中… while the bundle loads; says so
/// when the bundle cannot be fetched. The page opens again when the main page learns a
/// different terminal (it may not know it yet when the page first opens).
#[component]
pub fn BackOfficePage(page: Page) -> impl IntoView {
    let ctx = ctx();
    let root = NodeRef::<html::Div>::new();
    let loading = RwSignal::new(true);
    let failed = RwSignal::new(false);
    let open = move || {
        let Some(element) = root.get_untracked() else {
            return;
        };
        failed.set(false);
        loading.set(true);
        spawn_local(async move {
            let opened = async {
                let bundle = bundle().await?;
                if loading.try_get_untracked().is_none() {
                    // The page was left while the bundle loaded: nothing to open.
                    return Ok(JsValue::UNDEFINED);
                }
                let on_leave = Closure::once_into_js(move || ctx.page.set(Page::Checkout));
                let name = JsValue::from_str(page.back_office_name().unwrap_or("books"));
                let terminal = ctx
                    .terminal
                    .with_untracked(|terminal| serde_json::to_string(terminal.as_ref()?).ok())
                    .map_or(JsValue::UNDEFINED, |json| JsValue::from_str(&json));
                let args = js_sys::Array::of4(&element, &name, &on_leave, &terminal);
                call(&bundle, "open", &args)
            };
            let result = opened.await;
            let _ = loading.try_set(false);
            if result.is_err() {
                let _ = failed.try_set(true);
            }
        });
    };
    root.on_load(move |_| open());
    Effect::new(move |opened_before: Option<()>| {
        ctx.terminal.track();
        if opened_before.is_some() {
            open();
        }
    });
    on_cleanup(|| {
        if let Some(bundle) = BUNDLE.with(|cell| cell.borrow().clone()) {
            let _ = call(&bundle, "close", &js_sys::Array::new());
        }
    });
    view! {
        {move || (loading.get() && !failed.get()).then(|| view! {
            <p class="muted" data-testid="back-office-loading">{text(ctx.lang(), Text::Loading)}</p>
        })}
        <div class="back-office" data-testid="back-office" aria-busy=move || loading.get().to_string() node_ref=root></div>
        {move || failed.get().then(|| view! {
            <p class="notice problem" role="alert" data-testid="back-office-failed">
                {text(ctx.lang(), Text::BackOfficeFailed)}" "
                <button class="button secondary small" on:click=move |_| open()>{text(ctx.lang(), Text::Retry)}</button>
            </p>
        })}
    }
}
