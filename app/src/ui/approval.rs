//! The manager's PIN dialog: a named manager types their PIN for one action
//! (`POST /api/v1/approvals`); the proxy checks it (rate-limited, locked after repeated
//! failures) and answers with the approval token the approved request carries.

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::{ApprovalAction, CreateApproval};

use crate::model::books::failure_text;
use crate::model::i18n::{Text, text};
use crate::ui::context::ctx;
use crate::ui::{api, browser};

/// The last manager name typed on this terminal, offered again next time.
const MANAGER_KEY: &str = "paycode.manager";

/// Asks for a manager's name and PIN for `action`; `on_approved` gets the approval token,
/// `on_cancel` runs when the dialog is closed without one.
#[component]
pub fn PinDialog(
    /// What the approval is for.
    action: ApprovalAction,
    /// The sentence saying why the PIN is asked.
    why: Text,
    /// Approved: the token for `Paycode-Approval`.
    on_approved: Callback<String>,
    /// Closed without an approval.
    on_cancel: Callback<()>,
) -> impl IntoView {
    let ctx = ctx();
    let manager = RwSignal::new(browser::load(MANAGER_KEY).unwrap_or_default());
    let pin = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let name = manager.get_untracked().trim().to_owned();
        let code = pin.get_untracked().trim().to_owned();
        if name.is_empty() || code.is_empty() {
            problem.set(Some(text(ctx.lang(), Text::ManagerRequired).to_owned()));
            return;
        }
        let Some(token) = ctx.token() else { return };
        let why = reason.get_untracked().trim().to_owned();
        let body = CreateApproval {
            manager: name.clone(),
            pin: code,
            action,
            reason: (!why.is_empty()).then_some(why),
        };
        busy.set(true);
        problem.set(None);
        spawn_local(async move {
            let result = api::approve(&token, &body).await;
            ctx.note(&result);
            // The dialog may be gone by now, its signals with it.
            let _ = busy.try_set(false);
            let _ = pin.try_set(String::new());
            match result {
                Ok(approval) => {
                    browser::store(MANAGER_KEY, Some(&name));
                    on_approved.run(approval.approval);
                }
                Err(failure) => {
                    let _ = problem.try_set(Some(failure_text(ctx.lang(), &failure)));
                }
            }
        });
    };
    view! {
        <div class="backdrop">
            <div class="dialog pin-dialog" role="dialog" aria-modal="true" aria-labelledby="pin-title" data-testid="pin-dialog">
                <h2 id="pin-title">{move || text(ctx.lang(), Text::ApprovalTitle)}</h2>
                <p class="muted">{move || text(ctx.lang(), why)}</p>
                <form class="refund-form" on:submit=submit>
                    <label for="pin-manager">{move || text(ctx.lang(), Text::ManagerName)}</label>
                    <input
                        id="pin-manager"
                        type="text"
                        autocomplete="off"
                        data-testid="pin-manager"
                        prop:value=move || manager.get()
                        on:input=move |event| manager.set(event_target_value(&event))
                    />
                    <label for="pin-code">{move || text(ctx.lang(), Text::Pin)}</label>
                    <input
                        id="pin-code"
                        type="password"
                        inputmode="numeric"
                        autocomplete="off"
                        maxlength="12"
                        data-testid="pin-code"
                        prop:value=move || pin.get()
                        on:input=move |event| pin.set(event_target_value(&event))
                    />
                    <label for="pin-reason">{move || text(ctx.lang(), Text::ApprovalReason)}</label>
                    <input
                        id="pin-reason"
                        type="text"
                        maxlength="200"
                        autocomplete="off"
                        prop:value=move || reason.get()
                        on:input=move |event| reason.set(event_target_value(&event))
                    />
                    {move || problem.get().map(|message| view! {
                        <p class="notice problem" role="alert" data-testid="pin-problem">{message}</p>
                    })}
                    <div class="dialog-actions">
                        <button type="button" class="button secondary" on:click=move |_| on_cancel.run(())>
                            {move || text(ctx.lang(), Text::Close)}
                        </button>
                        <button type="submit" class="button primary" data-testid="pin-submit" disabled=move || busy.get()>
                            {move || text(ctx.lang(), Text::Approve)}
                        </button>
                    </div>
                </form>
            </div>
        </div>
    }
}

/// A back-office page's approval: the token while it works, and the page's last problem.
/// A call the proxy refuses for want of an approval (`APPROVAL_REQUIRED`: none, used up or
/// expired) clears the token, and the page asks for the PIN again.
#[derive(Clone, Copy)]
pub struct ApprovalGate {
    /// The approval token (`pca_…`), once a manager typed the PIN.
    pub token: RwSignal<Option<String>>,
    /// The last failure, in words; or the last action's outcome (`Ok`).
    pub outcome: RwSignal<Option<Result<String, String>>>,
}

impl ApprovalGate {
    /// A gate without an approval yet.
    pub fn new() -> ApprovalGate {
        ApprovalGate {
            token: RwSignal::new(None),
            outcome: RwSignal::new(None),
        }
    }

    /// Runs `call` with the terminal's token and the approval, then `done` with its answer;
    /// a failure is shown in words, or asks for the PIN again.
    pub fn run<T, Call, Fut>(self, call: Call, done: impl FnOnce(T) + 'static)
    where
        T: 'static,
        Call: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, crate::model::remote::ApiFailure>> + 'static,
    {
        let ctx = ctx();
        let (Some(token), Some(approval)) = (ctx.token(), self.token.get_untracked()) else {
            return;
        };
        let future = call(token, approval);
        spawn_local(async move {
            let result = future.await;
            ctx.note(&result);
            match result {
                Ok(answer) => done(answer),
                Err(failure) if crate::model::books::needs_approval(&failure) => {
                    let _ = self.token.try_set(None);
                }
                Err(failure) => {
                    let _ = self
                        .outcome
                        .try_set(Some(Err(failure_text(ctx.lang(), &failure))));
                }
            }
        });
    }

    /// The PIN dialog while there is no approval; closing it leaves the page for checkout.
    pub fn dialog(self, action: ApprovalAction, why: Text) -> impl IntoView {
        let ctx = ctx();
        move || {
            self.token.with(Option::is_none).then(|| {
                view! {
                    <PinDialog
                        action=action
                        why=why
                        on_approved=Callback::new(move |token| self.token.set(Some(token)))
                        on_cancel=Callback::new(move |()| ctx.page.set(crate::ui::context::Page::Checkout))
                    />
                }
            })
        }
    }

    /// The last outcome line, if any.
    pub fn outcome_line(self) -> impl IntoView {
        move || {
            self.outcome.get().map(|outcome| match outcome {
                Ok(message) => view! { <p class="notice" role="status" data-testid="books-outcome">{message}</p> }.into_any(),
                Err(message) => view! { <p class="notice problem" role="alert" data-testid="books-outcome">{message}</p> }.into_any(),
            })
        }
    }
}
