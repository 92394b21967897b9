//! Pieces shared by the pages: the header with navigation, the offline banner, the books
//! banner of a manager terminal, notices and the confirmation dialog.

use leptos::prelude::*;

use crate::model::books::{banner_text, is_back_office};
use crate::model::checkout::Notice;
use crate::model::i18n::{Text, notice_text, text};
use crate::ui::context::{Page, Pairing, ctx};

/// The top bar: title, terminal, navigation.
#[component]
pub fn Header() -> impl IntoView {
    let ctx = ctx();
    let back_office = move || {
        ctx.terminal
            .with(|terminal| terminal.as_ref().is_some_and(is_back_office))
    };
    let tab = move |page: Page, label: Text| {
        view! {
            <button
                class="tab"
                class:active=move || ctx.page.get() == page
                aria-current=move || (ctx.page.get() == page).then_some("page")
                disabled=move || ctx.pairing.get() != Pairing::Ready
                on:click=move |_| ctx.page.set(page)
            >
                {move || text(ctx.lang(), label)}
            </button>
        }
    };
    view! {
        <header class="header">
            <div class="brand">
                <span class="logo" aria-hidden="true">"¥"</span>
                <span>{move || text(ctx.lang(), Text::AppTitle)}</span>
                <span class="terminal-name" data-testid="terminal-name">
                    {move || {
                        ctx.terminal
                            .get()
                            .map(|terminal| format!("{} · {}", terminal.store.name, terminal.name))
                    }}
                </span>
            </div>
            <nav class="tabs">
                {tab(Page::Checkout, Text::NavCheckout)}
                {tab(Page::Payments, Text::NavPayments)}
                {tab(Page::Settings, Text::NavSettings)}
                {move || back_office().then(|| view! {
                    {tab(Page::Books, Text::NavBooks)}
                    {tab(Page::Attention, Text::NavAttention)}
                })}
            </nav>
        </header>
    }
}

/// "无法连接收款服务…" while the proxy does not answer.
#[component]
pub fn OfflineBanner() -> impl IntoView {
    let ctx = ctx();
    view! {
        <Show when=move || !ctx.online.get()>
            <div class="offline-banner" role="alert" data-testid="offline">
                {move || text(ctx.lang(), Text::Offline)}
            </div>
        </Show>
    }
}

/// On a manager or owner terminal, while a finished day is not reconciled or differences
/// are open: a banner that leads to the 对账 page. Checked at start and every few minutes;
/// `/readyz` stays ready meanwhile, the banner is where it shows.
#[component]
pub fn BooksBanner() -> impl IntoView {
    let ctx = ctx();
    let status = RwSignal::new(None::<paycode_api::books::BooksStatus>);
    let check = move || {
        let back_office = ctx
            .terminal
            .with_untracked(|terminal| terminal.as_ref().is_some_and(is_back_office));
        let Some(token) = ctx.token().filter(|_| back_office) else {
            status.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            // A failure leaves the banner as it was: the offline banner covers no answer.
            if let Ok(answer) = crate::ui::api::books_status(&token).await {
                let _ = status.try_set(Some(answer));
            }
        });
    };
    // The terminal (and so its role) is known, or changed; and again every five minutes,
    // and on coming back from the 对账 page.
    Effect::new(move |_| {
        ctx.terminal.track();
        ctx.page.track();
        check();
    });
    set_interval(check, std::time::Duration::from_secs(300));
    move || {
        let message = status.with(|status| {
            status
                .as_ref()
                .and_then(|status| banner_text(ctx.lang(), status))
        })?;
        (ctx.page.get() != Page::Books).then(|| {
            view! {
                <div class="books-banner" role="status" data-testid="books-banner">
                    <span>{message}</span>
                    <button class="button small" on:click=move |_| ctx.page.set(Page::Books)>
                        {text(ctx.lang(), Text::OpenBooks)}
                    </button>
                </div>
            }
        })
    }
}

/// Whether a notice is a problem (announced as an alert) or a hint (a status).
pub fn notice_is_problem(notice: &Notice) -> bool {
    !matches!(notice, Notice::ImeDetected)
}

/// The current notice of the checkout, if any.
#[component]
pub fn NoticeLine() -> impl IntoView {
    let ctx = ctx();
    move || {
        ctx.checkout.with(|checkout| checkout.notice.clone()).map(|notice| {
            let role = if notice_is_problem(&notice) { "alert" } else { "status" };
            view! {
                <p class="notice" class:problem=notice_is_problem(&notice) role=role data-testid="notice">
                    {notice_text(ctx.lang(), &notice)}
                </p>
            }
        })
    }
}

/// A modal confirmation: a title, a body, and two buttons.
#[component]
pub fn ConfirmDialog(
    /// The question.
    title: String,
    /// What it means.
    body: String,
    /// The confirming button's label.
    yes: String,
    /// The other button's label.
    no: String,
    /// Confirmed.
    on_yes: Callback<()>,
    /// Dismissed.
    on_no: Callback<()>,
    /// Whether confirming is destructive (styled as a warning).
    #[prop(optional)]
    danger: bool,
) -> impl IntoView {
    view! {
        <div class="backdrop">
            <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="dialog-title">
                <h2 id="dialog-title">{title}</h2>
                <p>{body}</p>
                <div class="dialog-actions">
                    <button class="button secondary" data-testid="dialog-no" on:click=move |_| on_no.run(())>
                        {no}
                    </button>
                    <button
                        class="button"
                        class:danger=danger
                        class:primary=!danger
                        data-testid="dialog-yes"
                        on:click=move |_| on_yes.run(())
                    >
                        {yes}
                    </button>
                </div>
            </div>
        </div>
    }
}
