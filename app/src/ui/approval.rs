//! Manager approvals in the app: a named manager types their PIN for one action
//! (`POST /api/v1/approvals`); the proxy checks it (rate-limited, locked after repeated
//! failures) and answers with the approval token the approved request carries.
//! [`ApprovalForm`] is the one form that asks (the refund dialog's approving step shows it,
//! and [`PinDialog`] shows it as a dialog of its own); [`ApprovalGate`] is how a back-office
//! page asks for and keeps approvals.

use std::future::Future;
use std::pin::Pin;

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::{Approval, ApprovalAction, ApprovalRequest, ApprovalUses};

use crate::model::books::failure_text;
use crate::model::i18n::{Lang, Text, text};
use crate::model::refund::ApprovalProblem;
use crate::model::remote::ApiFailure;
use crate::ui::context::{Ctx, Page, ctx};
use crate::ui::{api, browser};

/// The last manager name typed on this terminal, offered again next time.
const MANAGER_KEY: &str = "paycode.manager";

/// What to tell the manager when a PIN gave no approval.
fn approval_problem_text(lang: Lang, problem: ApprovalProblem) -> String {
    let key = match problem {
        ApprovalProblem::Malformed => Text::PinMalformed,
        ApprovalProblem::Incorrect => Text::PinIncorrect,
        ApprovalProblem::Locked => Text::PinLocked,
        ApprovalProblem::TooMany => Text::PinTooMany,
        ApprovalProblem::WrongStore => Text::ManagerWrongStore,
        ApprovalProblem::Other(message) => return message,
    };
    text(lang, key).to_owned()
}

/// The manager's name and PIN: the one form of the app that asks for an approval, in the
/// refund dialog (its approving step) and in [`PinDialog`].
#[component]
pub fn ApprovalForm(
    /// The first line: what needs the approval.
    heading: String,
    /// The line under it.
    help: Text,
    /// The name field.
    manager: Signal<String>,
    /// The name typed.
    on_manager: Callback<String>,
    /// The PIN field.
    pin: Signal<String>,
    /// The PIN typed.
    on_pin: Callback<String>,
    /// Why the last try gave no approval.
    problem: Signal<Option<ApprovalProblem>>,
    /// 授权.
    on_submit: Callback<()>,
    /// 关闭.
    on_close: Callback<()>,
) -> impl IntoView {
    let lang = ctx().lang();
    view! {
        <form class="refund-form" data-testid="approval-form" on:submit=move |event| {
            event.prevent_default();
            on_submit.run(());
        }>
            <p class="confirm-line">{heading}</p>
            <p class="muted">{text(lang, help)}</p>
            <label for="approval-manager">{text(lang, Text::ManagerName)}</label>
            <input
                id="approval-manager"
                type="text"
                autocomplete="off"
                data-testid="approval-manager"
                prop:value=move || manager.get()
                on:input=move |event| on_manager.run(event_target_value(&event))
            />
            <label for="approval-pin">{text(lang, Text::ManagerPin)}</label>
            <input
                id="approval-pin"
                type="password"
                inputmode="numeric"
                autocomplete="off"
                maxlength="12"
                data-testid="approval-pin"
                prop:value=move || pin.get()
                on:input=move |event| on_pin.run(event_target_value(&event))
            />
            {move || problem.get().map(|problem| view! {
                <p class="notice problem" role="alert" data-testid="approval-problem">{approval_problem_text(lang, problem)}</p>
            })}
            <div class="dialog-actions">
                <button type="button" class="button secondary" on:click=move |_| on_close.run(())>{text(lang, Text::Close)}</button>
                <button type="submit" class="button primary" data-testid="approval-submit">{text(lang, Text::ApprovalSubmit)}</button>
            </div>
        </form>
    }
}

/// Asks for a manager's name and PIN for `action` in a dialog of its own ([`ApprovalForm`]);
/// `on_approved` gets the approval, `on_cancel` runs when it is closed without one.
#[component]
pub fn PinDialog(
    /// What the approval is for.
    action: ApprovalAction,
    /// The sentence saying why the PIN is asked.
    why: Text,
    /// Approved: the token for `Paycode-Approval` and how often it works.
    on_approved: Callback<Approval>,
    /// Closed without an approval.
    on_cancel: Callback<()>,
) -> impl IntoView {
    let ctx = ctx();
    let manager = RwSignal::new(browser::load(MANAGER_KEY).unwrap_or_default());
    let pin = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<ApprovalProblem>);
    let busy = RwSignal::new(false);
    let submit = move || {
        if busy.get_untracked() {
            return;
        }
        let name = manager.get_untracked().trim().to_owned();
        let code = pin.get_untracked().trim().to_owned();
        if let Some(wrong) = ApprovalProblem::check(&name, &code) {
            problem.set(Some(wrong));
            return;
        }
        let Some(token) = ctx.token() else { return };
        // The why of an action is its own note or reason; the approval needs none.
        let body = ApprovalRequest {
            manager: name.clone(),
            pin: code,
            action,
            reason: None,
        };
        busy.set(true);
        problem.set(None);
        spawn_local(async move {
            let result = api::approve_for_window(&token, &body).await;
            ctx.note(&result);
            // The dialog may be gone by now, its signals with it.
            let _ = busy.try_set(false);
            let _ = pin.try_set(String::new());
            match result {
                Ok(approval) => {
                    browser::store(MANAGER_KEY, Some(&name));
                    on_approved.run(approval);
                }
                Err(failure) => {
                    let _ = problem.try_set(Some(ApprovalProblem::from_failure(&failure)));
                }
            }
        });
    };
    view! {
        <div class="backdrop pin-backdrop">
            <div class="dialog pin-dialog" role="dialog" aria-modal="true" data-testid="pin-dialog">
                <ApprovalForm
                    heading=text(ctx.lang(), Text::ApprovalTitle).to_owned()
                    help=why
                    manager=manager.into()
                    on_manager=Callback::new(move |value| manager.set(value))
                    pin=pin.into()
                    on_pin=Callback::new(move |value| pin.set(value))
                    problem=problem.into()
                    on_submit=Callback::new(move |()| submit())
                    on_close=on_cancel
                />
            </div>
        </div>
    }
}

/// What an approval is waiting to do: the action the manager clicked.
type Pending = Box<dyn FnOnce(String)>;

/// A back-office page's approvals. An action asks for the PIN when it has no approval to
/// use, then runs with the new one. An approval that works once is never kept; one that
/// works for a window (`approvals.window`) is reused until the proxy refuses it.
#[derive(Clone, Copy)]
pub struct ApprovalGate {
    /// The page's context, taken when the page was built: the gate's callbacks run outside
    /// the page's reactive owner, where `ctx()` finds none.
    ctx: Ctx,
    /// What is asked for.
    action: ApprovalAction,
    /// A window approval's token, while it works.
    window: StoredValue<Option<String>>,
    /// The action waiting for the PIN dialog.
    pending: StoredValue<Option<Pending>, LocalStorage>,
    /// Whether the PIN dialog is open.
    asking: RwSignal<bool>,
    /// Whether a manager approved once on this page (before that, it shows nothing).
    pub unlocked: RwSignal<bool>,
    /// The last failure, in words; or the last action's outcome (`Ok`).
    pub outcome: RwSignal<Option<Result<String, String>>>,
}

impl ApprovalGate {
    /// A gate for `action`'s approvals, with none yet.
    pub fn new(action: ApprovalAction) -> ApprovalGate {
        ApprovalGate {
            ctx: ctx(),
            action,
            window: StoredValue::new(None),
            pending: StoredValue::new_local(None),
            asking: RwSignal::new(false),
            unlocked: RwSignal::new(false),
            outcome: RwSignal::new(None),
        }
    }

    /// Runs `then` with an approval token: the window's, or a new one after the PIN.
    fn with_approval(self, then: impl FnOnce(String) + 'static) {
        match self.window.get_value() {
            Some(token) => then(token),
            None => {
                self.pending.set_value(Some(Box::new(then)));
                self.asking.set(true);
            }
        }
    }

    fn approved(self, approval: Approval) {
        self.unlocked.set(true);
        self.asking.set(false);
        if approval.uses == ApprovalUses::Window {
            self.window.set_value(Some(approval.approval.clone()));
        }
        if let Some(then) = self.pending.try_update_value(Option::take).flatten() {
            then(approval.approval);
        }
    }

    /// Runs `call` with the terminal's token and an approval, then `done` with its answer;
    /// a failure is shown in words. A refused approval is forgotten, so the next action
    /// asks for the PIN again.
    pub fn run<T, Call, Fut>(self, call: Call, done: impl FnOnce(T) + 'static)
    where
        T: 'static,
        Call: FnOnce(String, String) -> Fut + 'static,
        Fut: Future<Output = Result<T, ApiFailure>> + 'static,
    {
        let ctx = self.ctx;
        self.with_approval(move |approval| {
            let Some(token) = ctx.token() else { return };
            let future = call(token, approval);
            self.spawn(Box::pin(async move { future.await.map(done) }));
        });
    }

    /// The part of [`ApprovalGate::run`] that does not depend on the answer's type, compiled
    /// once.
    fn spawn(self, call: Pin<Box<dyn Future<Output = Result<(), ApiFailure>>>>) {
        let ctx = self.ctx;
        spawn_local(async move {
            let result = call.await;
            ctx.note(&result);
            if let Err(failure) = result {
                if failure.needs_approval() {
                    let _ = self.window.try_set_value(None);
                }
                let _ = self
                    .outcome
                    .try_set(Some(Err(failure_text(ctx.lang(), &failure))));
            }
        });
    }

    /// The PIN dialog while an action waits for it. Closing it before any approval leaves
    /// the page for checkout; later, it only drops the waiting action.
    pub fn dialog(self, why: Text) -> impl IntoView {
        let ctx = self.ctx;
        move || {
            self.asking.get().then(|| {
                view! {
                    <PinDialog
                        action=self.action
                        why=why
                        on_approved=Callback::new(move |approval| self.approved(approval))
                        on_cancel=Callback::new(move |()| {
                            self.asking.set(false);
                            self.pending.set_value(None);
                            if !self.unlocked.get_untracked() {
                                ctx.page.set(Page::Checkout);
                            }
                        })
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

/// The `data-action` and `data-id` of the button a click inside HTML-rendered content
/// (`model::books_html`) landed on, if any.
pub fn clicked_action(event: &leptos::ev::MouseEvent) -> Option<(String, String)> {
    use wasm_bindgen::JsCast;
    let target = event.target()?.dyn_into::<web_sys::Element>().ok()?;
    let button = target.closest("[data-action]").ok()??;
    Some((
        button.get_attribute("data-action")?,
        button.get_attribute("data-id")?,
    ))
}

/// A dialog asking for one line of text (a mismatch's note, a settlement's reason):
/// `check` says what is wrong with it, if anything; `on_submit` gets it once it passes.
#[component]
pub fn NoteDialog(
    /// The title.
    title: Text,
    /// The field's label.
    label: Text,
    /// `data-testid` of the dialog; its field and button add `-text` and `-submit`.
    testid: &'static str,
    /// What is wrong with the text, in words; `None` when it can be sent.
    check: Callback<String, Option<String>>,
    /// The text, checked.
    on_submit: Callback<String>,
    /// Closed.
    on_close: Callback<()>,
) -> impl IntoView {
    let lang = ctx().lang();
    let value = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    view! {
        <div class="backdrop">
            <form class="dialog refund-form" role="dialog" aria-modal="true" aria-labelledby="note-title" data-testid=testid
                on:submit=move |event| {
                    event.prevent_default();
                    let text = value.get_untracked();
                    match check.run(text.clone()) {
                        Some(wrong) => problem.set(Some(wrong)),
                        None => on_submit.run(text),
                    }
                }>
                <h2 id="note-title">{text(lang, title)}</h2>
                <label for="note-text">{text(lang, label)}</label>
                <input
                    id="note-text"
                    type="text"
                    maxlength="200"
                    autocomplete="off"
                    data-testid=format!("{testid}-text")
                    prop:value=move || value.get()
                    on:input=move |event| {
                        value.set(event_target_value(&event));
                        problem.set(None);
                    }
                />
                {move || problem.get().map(|problem| view! { <p class="notice problem" role="alert" data-testid=format!("{testid}-problem")>{problem}</p> })}
                <div class="dialog-actions">
                    <button type="button" class="button secondary" on:click=move |_| on_close.run(())>{text(lang, Text::Close)}</button>
                    <button type="submit" class="button primary" data-testid=format!("{testid}-submit")>{text(lang, title)}</button>
                </div>
            </form>
        </div>
    }
}
