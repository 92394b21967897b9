//! The checkout page: amount entry, "请出示付款码", and the payment screen in every state.

use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use paycode_api::{Fen, PaymentState};
use wasm_bindgen::JsCast;

use crate::model::amount::AmountKey;
use crate::model::checkout::{CodeSource, Input, Paying, Phase};
use crate::model::i18n::{
    Lang, Text, failure_text, masked_code, paid_headline, state_headline, text,
};
use crate::ui::browser;
use crate::ui::camera::CameraReader;
use crate::ui::capture;
use crate::ui::components::{ConfirmDialog, NoticeLine};
use crate::ui::context::{ctx, new_attempt_id};

/// Quick-amount buttons (yuan notes).
const QUICK_AMOUNTS: [Fen; 4] = [Fen(1_000), Fen(2_000), Fen(5_000), Fen(10_000)];

/// Which screen of the checkout to draw; changes only when the phase kind changes, so the
/// screens are not rebuilt on every state update.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Screen {
    Amount,
    ConfirmLarge,
    AwaitingCode,
    Paying,
}

/// The checkout page.
#[component]
pub fn CheckoutPage() -> impl IntoView {
    let ctx = ctx();
    let screen = Memo::new(move |_| {
        ctx.checkout.with(|checkout| match checkout.phase {
            Phase::EnterAmount => Screen::Amount,
            Phase::ConfirmLarge(_) => Screen::ConfirmLarge,
            Phase::AwaitingCode { .. } => Screen::AwaitingCode,
            Phase::Paying(_) => Screen::Paying,
        })
    });
    view! {
        <section class="checkout">
            {move || match screen.get() {
                Screen::Amount => view! { <AmountScreen/> }.into_any(),
                Screen::ConfirmLarge => view! { <AmountScreen/><ConfirmLargeDialog/> }.into_any(),
                Screen::AwaitingCode => view! { <AwaitingCodeScreen/> }.into_any(),
                Screen::Paying => view! { <PayingScreen/> }.into_any(),
            }}
        </section>
    }
}

/// The amount display, quick amounts and keypad.
#[component]
fn AmountScreen() -> impl IntoView {
    let ctx = ctx();
    let press = move |key: AmountKey| move |_| ctx.dispatch(Input::Key(key));
    let digit = move |value: u8| {
        view! {
            <button class="key" data-testid=format!("key-{value}") on:click=press(AmountKey::Digit(value))>
                {value.to_string()}
            </button>
        }
    };
    view! {
        <div class="amount-layout">
            <div class="amount-panel">
                <div class="label">{move || text(ctx.lang(), Text::AmountDue)}</div>
                <div class="amount-display" data-testid="amount" aria-live="polite">
                    {move || ctx.checkout.with(|checkout| checkout.entry.display())}
                </div>
                <NoticeLine/>
                <div class="quick-amounts">
                    {QUICK_AMOUNTS
                        .into_iter()
                        .map(|amount| {
                            view! {
                                <button class="button quick" on:click=move |_| ctx.dispatch(Input::Quick(amount))>
                                    {format!("¥{}", amount.get() / 100)}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </div>
            <div class="keypad" role="group" aria-label=move || text(ctx.lang(), Text::AmountDue)>
                {digit(1)} {digit(2)} {digit(3)}
                {digit(4)} {digit(5)} {digit(6)}
                {digit(7)} {digit(8)} {digit(9)}
                <button class="key" data-testid="key-point" on:click=press(AmountKey::Point)>"."</button>
                {digit(0)}
                <button class="key" on:click=press(AmountKey::DoubleZero)>"00"</button>
                <button
                    class="key secondary"
                    aria-label=move || text(ctx.lang(), Text::Backspace)
                    on:click=press(AmountKey::Backspace)
                >
                    "⌫"
                </button>
                <button class="key secondary" on:click=press(AmountKey::Clear)>
                    {move || text(ctx.lang(), Text::Clear)}
                </button>
                <button class="key charge" data-testid="charge" on:click=move |_| ctx.dispatch(Input::Proceed)>
                    {move || text(ctx.lang(), Text::Charge)}
                </button>
            </div>
        </div>
    }
}

/// "请确认大额收款".
#[component]
fn ConfirmLargeDialog() -> impl IntoView {
    let ctx = ctx();
    let lang = ctx.lang();
    let amount = ctx
        .checkout
        .with_untracked(|checkout| match checkout.phase {
            Phase::ConfirmLarge(amount) => amount,
            _ => Fen::ZERO,
        });
    view! {
        <ConfirmDialog
            title=format!("{} {amount}", text(lang, Text::ConfirmLargeTitle))
            body=text(lang, Text::ConfirmLargeBody).to_owned()
            yes=text(lang, Text::ConfirmAmount).to_owned()
            no=text(lang, Text::EditAmount).to_owned()
            on_yes=Callback::new(move |()| ctx.dispatch(Input::Proceed))
            on_no=Callback::new(move |()| ctx.dispatch(Input::Back))
        />
    }
}

/// "请出示付款码": the scanner is armed.
#[component]
fn AwaitingCodeScreen() -> impl IntoView {
    let ctx = ctx();
    let amount = move || {
        ctx.checkout.with(|checkout| match checkout.phase {
            Phase::AwaitingCode { amount, .. } => amount,
            _ => Fen::ZERO,
        })
    };
    let manual = Memo::new(move |_| {
        ctx.checkout
            .with(|checkout| matches!(checkout.phase, Phase::AwaitingCode { manual: true, .. }))
    });
    let camera = Memo::new(move |_| ctx.checkout.with(|checkout| checkout.camera_open()));
    let on_camera_text = Callback::new(move |text: String| capture::on_camera_text(ctx, &text));
    let capture_ref = NodeRef::<html::Input>::new();
    // Nothing editable keeps focus while waiting (a clicked button would otherwise take
    // Enter or Space); tablets focus the capture field so their scanners and IMEs type there.
    Effect::new(move |_| {
        if let Some(active) = browser::window()
            .document()
            .and_then(|document| document.active_element())
            .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = active.blur();
        }
        if capture::prefers_capture_field() {
            capture::focus_capture_field();
        }
        if let Some(performance) = browser::window().performance() {
            let _ = performance.mark("paycode-ready");
        }
    });
    view! {
        <div class="await" data-testid="awaiting-code">
            <div class="amount-big" data-testid="charge-amount">{move || amount().to_string()}</div>
            <h1 class="headline" role="status">{move || text(ctx.lang(), Text::ShowCode)}</h1>
            // The camera's preview takes the illustration's place (style.css hides it).
            {move || camera.get().then(|| view! { <CameraReader on_text=on_camera_text/> })}
            <div class="scan-illustration" aria-hidden="true">
                <span class="beam"></span>
            </div>
            <p class="hint">{move || text(ctx.lang(), Text::ShowCodeHint)}</p>
            <NoticeLine/>
            {move || if manual.get() { view! { <ManualEntry/> }.into_any() } else {
                view! {
                    <div class="await-modes">
                        <button
                            class="link-button"
                            data-testid="camera-toggle"
                            on:click=move |_| ctx.dispatch(Input::Camera(!camera.get_untracked()))
                        >
                            {move || text(ctx.lang(), if camera.get() { Text::CameraClose } else { Text::CameraOpenLabel })}
                        </button>
                        <button class="link-button" data-testid="manual-open" on:click=move |_| ctx.dispatch(Input::Manual(true))>
                            {move || text(ctx.lang(), Text::ManualEntry)}
                        </button>
                    </div>
                }.into_any()
            }}
            <button class="button secondary" data-testid="back-to-amount" on:click=move |_| ctx.dispatch(Input::Back)>
                {move || text(ctx.lang(), Text::BackToAmount)}
            </button>
            <input
                node_ref=capture_ref
                class="capture-field"
                type="text"
                inputmode="none"
                autocomplete="off"
                aria-hidden="true"
                tabindex="-1"
                data-capture=""
                on:input=move |event| {
                    if let Some(field) = capture_ref.get() {
                        capture::on_capture_input(ctx, &field, event.time_stamp());
                    }
                }
                on:compositionstart=move |_| {
                    ctx.dispatch(Input::Detector(crate::model::wedge::DetectorEvent::ImeSuspected));
                }
            />
        </div>
    }
}

/// The explicit manual-entry field (the code is shown on the phone when tapped).
#[component]
fn ManualEntry() -> impl IntoView {
    let ctx = ctx();
    let field = NodeRef::<html::Input>::new();
    Effect::new(move |_| {
        if let Some(field) = field.get() {
            let _ = field.focus();
        }
    });
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(input) = field.get() else { return };
        // A full-width IME types １３４８…: digits of any script are the same code.
        let digits = crate::model::digits::ascii_digits(&input.value());
        ctx.dispatch(Input::Code {
            digits,
            source: CodeSource::Manual,
            attempt_id: new_attempt_id(),
        });
    };
    view! {
        <form class="manual" on:submit=submit>
            <label for="manual-code">{move || text(ctx.lang(), Text::ManualEntryHint)}</label>
            <div class="manual-row">
                <input
                    id="manual-code"
                    node_ref=field
                    type="text"
                    inputmode="numeric"
                    autocomplete="off"
                    maxlength="24"
                    data-testid="manual-code"
                    data-scan-target=""
                />
                <button class="button primary" type="submit">{move || text(ctx.lang(), Text::ManualSubmit)}</button>
            </div>
        </form>
    }
}

fn paying_with<T>(ctx: crate::ui::context::Ctx, read: impl Fn(&Paying) -> T) -> Option<T> {
    ctx.checkout.with(|checkout| checkout.paying().map(&read))
}

/// The payment screen, for every state.
#[component]
fn PayingScreen() -> impl IntoView {
    let ctx = ctx();
    let state =
        Memo::new(move |_| paying_with(ctx, Paying::state).unwrap_or(PaymentState::Submitting));
    let amount = move || paying_with(ctx, |paying| paying.attempt.amount_fen).unwrap_or(Fen::ZERO);
    let last4 = move || paying_with(ctx, |paying| paying.attempt.last4.clone()).unwrap_or_default();
    let reconnecting = move || paying_with(ctx, |paying| paying.failures > 0).unwrap_or(false);
    let money_returned = move || {
        paying_with(ctx, |paying| {
            paying.payment.as_ref().is_some_and(|p| p.money_returned)
        })
        .unwrap_or(false)
    };
    let urgent = move || {
        matches!(
            state.get(),
            PaymentState::Failed | PaymentState::NeedsAttention
        )
    };
    let headline = move || {
        let lang = ctx.lang();
        match state.get() {
            PaymentState::Paid => paid_headline(lang, amount()),
            other => state_headline(lang, other, money_returned()).to_owned(),
        }
    };
    let detail = move || {
        let lang = ctx.lang();
        match state.get() {
            PaymentState::Failed => paying_with(ctx, |paying| {
                paying.payment.as_ref().and_then(|p| p.failure.clone())
            })
            .flatten()
            .map(|failure| failure_text(lang, &failure)),
            PaymentState::NeedsAttention => Some(text(lang, Text::NeedsAttentionDetail).to_owned()),
            _ => None,
        }
    };
    let seconds_left = move || {
        let now = ctx.clock.get();
        paying_with(ctx, |paying| paying.seconds_left(now)).flatten()
    };
    view! {
        <div class=move || format!("paying state-{}", state.get().as_str()) data-testid="paying" data-state=move || state.get().as_str()>
            <div class="state-icon" aria-hidden="true">{move || state_icon(state.get())}</div>
            <div class="amount-big">{move || amount().to_string()}</div>
            <h1
                class="headline"
                data-testid="headline"
                role=move || if urgent() { "alert" } else { "status" }
            >
                {headline}
            </h1>
            {move || detail().map(|detail| view! { <p class="detail" data-testid="detail">{detail}</p> })}
            {move || (state.get() == PaymentState::WaitingForCustomer).then(|| view! {
                <div class="countdown" data-testid="countdown">
                    <span>{move || text(ctx.lang(), Text::SecondsLeft)}</span>
                    <strong>{move || seconds_left().map(|s| format!("{s}s")).unwrap_or_default()}</strong>
                </div>
            })}
            <p class="code-line">
                {move || text(ctx.lang(), Text::CodeLabel)} " "
                <span class="mono" data-testid="masked-code">{move || masked_code(&last4())}</span>
            </p>
            {move || reconnecting().then(|| view! {
                <p class="reconnecting" role="status">{text(ctx.lang(), Text::Reconnecting)}</p>
            })}
            <NoticeLine/>
            <PayingActions state=state/>
            {move || (state.get() == PaymentState::Paid).then(|| view! { <Receipt/> })}
            <PayingDialogs/>
        </div>
    }
}

fn state_icon(state: PaymentState) -> &'static str {
    match state {
        PaymentState::Paid => "✓",
        PaymentState::Failed => "✕",
        PaymentState::Cancelled => "↺",
        PaymentState::NeedsAttention => "!",
        _ => "…",
    }
}

/// The buttons under the payment, by state.
#[component]
fn PayingActions(state: Memo<PaymentState>) -> impl IntoView {
    let ctx = ctx();
    let can_cancel = move || {
        let now = ctx.clock.get();
        paying_with(ctx, |paying| paying.can_cancel(now)).unwrap_or(false)
    };
    let auto_next_left = move || {
        let now = ctx.clock.get();
        ctx.checkout
            .with(|checkout| checkout.auto_next_at())
            .map(|due| ((due - now).max(0.0) / 1000.0).ceil() as u64)
    };
    let button = move |label: Text, testid: &'static str, class: &'static str, input: Input| {
        view! {
            <button class=format!("button {class}") data-testid=testid on:click=move |_| ctx.dispatch(input.clone())>
                {move || text(ctx.lang(), label)}
            </button>
        }
    };
    move || {
        let lang: Lang = ctx.lang();
        match state.get() {
            PaymentState::Paid => view! {
                <div class="actions">
                    <button class="button secondary" data-testid="print" on:click=move |_| {
                        ctx.dispatch(Input::HoldAutoNext);
                        let _ = browser::window().print();
                    }>
                        {text(lang, Text::PrintReceipt)}
                    </button>
                    {button(Text::NextSale, "next", "primary", Input::Next)}
                </div>
                <p class="auto-next" data-testid="auto-next">
                    {move || auto_next_left().map(|left| format!("{left} {}", text(ctx.lang(), Text::AutoNextIn)))}
                </p>
            }
            .into_any(),
            PaymentState::Failed | PaymentState::Cancelled => view! {
                <div class="actions">
                    {button(Text::ChangeAmount, "change-amount", "secondary", Input::Next)}
                    {button(Text::Rescan, "rescan", "primary", Input::Rescan)}
                </div>
            }
            .into_any(),
            PaymentState::NeedsAttention => view! {
                <div class="actions">
                    {button(Text::LeaveAttention, "leave", "secondary", Input::Next)}
                    {button(Text::RefreshResult, "refresh", "primary", Input::Retry)}
                </div>
            }
            .into_any(),
            _ => view! {
                <div class="actions">
                    <button
                        class="button danger"
                        data-testid="cancel"
                        disabled=move || !can_cancel()
                        on:click=move |_| ctx.dispatch(Input::CancelPressed)
                    >
                        {move || text(ctx.lang(), Text::CancelPayment)}
                    </button>
                </div>
            }
            .into_any(),
        }
    }
}

/// The cancel and leave confirmations.
#[component]
fn PayingDialogs() -> impl IntoView {
    let ctx = ctx();
    let open = Memo::new(move |_| {
        paying_with(ctx, |paying| (paying.confirm_cancel, paying.confirm_leave)).unwrap_or_default()
    });
    move || {
        let lang = ctx.lang();
        match open.get() {
            (true, _) => Some(view! {
                <ConfirmDialog
                    title=text(lang, Text::CancelConfirmTitle).to_owned()
                    body=text(lang, Text::CancelConfirmBody).to_owned()
                    yes=text(lang, Text::CancelConfirmYes).to_owned()
                    no=text(lang, Text::KeepWaiting).to_owned()
                    on_yes=Callback::new(move |()| ctx.dispatch(Input::CancelConfirmed))
                    on_no=Callback::new(move |()| ctx.dispatch(Input::CancelDismissed))
                    danger=true
                />
            }),
            (false, true) => Some(view! {
                <ConfirmDialog
                    title=text(lang, Text::NeedsAttention).to_owned()
                    body=text(lang, Text::LeaveAttentionBody).to_owned()
                    yes=text(lang, Text::LeaveAttentionYes).to_owned()
                    no=text(lang, Text::Back).to_owned()
                    on_yes=Callback::new(move |()| ctx.dispatch(Input::LeaveConfirmed))
                    on_no=Callback::new(move |()| ctx.dispatch(Input::CancelDismissed))
                />
            }),
            (false, false) => None,
        }
    }
}

/// The printable receipt of a paid payment.
#[component]
fn Receipt() -> impl IntoView {
    let ctx = ctx();
    let lang = ctx.lang();
    let payment = ctx
        .checkout
        .with_untracked(|checkout| checkout.paying().and_then(|paying| paying.payment.clone()));
    let (store, terminal) = ctx
        .terminal
        .get_untracked()
        .map(|terminal| (terminal.store.name, terminal.name))
        .unwrap_or_default();
    payment.map(|payment| {
        let row = move |label: Text, value: String| {
            view! { <div class="receipt-row"><span>{text(lang, label)}</span><span>{value}</span></div> }
        };
        view! {
            <section class="receipt" data-testid="receipt" aria-label=text(lang, Text::Receipt)>
                <h2>{text(lang, Text::Receipt)}</h2>
                <div class="receipt-amount">{payment.amount_fen.to_string()}</div>
                {row(Text::Store, store)}
                {row(Text::Terminal, terminal)}
                {row(Text::Time, browser::local_date_time(&payment.updated_at))}
                {row(Text::CodeLabel, masked_code(&payment.auth_code_last4))}
                {row(Text::TransactionId, payment.transaction_id.clone().unwrap_or_default())}
                {row(Text::OrderNumber, payment.out_trade_no.clone())}
                <p class="receipt-thanks">{text(lang, Text::ReceiptThanks)}</p>
            </section>
        }
    })
}
