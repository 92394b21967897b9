//! Today's payments: totals, the list, and refunds (full or partial, confirmed).

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::{Fen, Payment, PaymentList, PaymentState};

use crate::model::dates::shift_date;
use crate::model::i18n::{Lang, Text, masked_code, refund_state_label, state_label, text};
use crate::model::refund::{RefundDialog, RefundProblem, RefundStage, refundable};
use crate::model::remote::ApiFailure;
use crate::ui::api;
use crate::ui::approval::ApprovalForm;
use crate::ui::browser;
use crate::ui::context::{ctx, new_attempt_id};

/// What the list shows.
#[derive(Clone, Debug, PartialEq)]
enum Loaded {
    Loading,
    Ready(PaymentList),
    Failed(String),
}

/// The payments page.
#[component]
pub fn PaymentsPage() -> impl IntoView {
    let ctx = ctx();
    // `None` is "today" as the proxy's shop time zone defines it.
    let date = RwSignal::new(None::<String>);
    // This terminal's payments; every terminal's is a manager action (docs/approvals.md).
    let all_terminals = RwSignal::new(false);
    let loaded = RwSignal::new(Loaded::Loading);
    let dialog = RwSignal::new(None::<RefundDialog>);
    let generation = StoredValue::new(0u64);

    let reload = move || {
        let Some(token) = ctx.token() else { return };
        let date = date.get_untracked();
        let terminal = if all_terminals.get_untracked() {
            None
        } else {
            ctx.terminal.get_untracked().map(|terminal| terminal.id)
        };
        generation.update_value(|value| *value += 1);
        let this_generation = generation.get_value();
        spawn_local(async move {
            let result = api::list_payments(&token, date.as_deref(), terminal.as_deref()).await;
            ctx.note(&result);
            // A slower earlier answer must not overwrite a newer one; and the page may be
            // gone by now, its signals with it.
            if generation.try_get_value() != Some(this_generation) {
                return;
            }
            let _ = loaded.try_set(match result {
                Ok(list) => Loaded::Ready(list),
                Err(failure) => Loaded::Failed(failure_message(ctx.lang(), &failure)),
            });
        });
    };
    Effect::new(move |_| {
        date.track();
        all_terminals.track();
        reload();
    });

    // Only opening and closing rebuild the dialog; typing in it must not.
    let dialog_open = Memo::new(move |_| dialog.with(Option::is_some));

    let shown_date = move || match loaded.get() {
        Loaded::Ready(list) => Some(list.date),
        _ => date.get(),
    };
    let shift = move |days: i64| {
        if let Some(current) = shown_date()
            && let Some(next) = shift_date(&current, days)
        {
            date.set(Some(next));
        }
    };

    view! {
        <section class="payments">
            <div class="toolbar">
                <h1>{move || text(ctx.lang(), Text::TodayPayments)}</h1>
                <button class="button secondary small" on:click=move |_| shift(-1)>
                    {move || text(ctx.lang(), Text::PreviousDay)}
                </button>
                <span class="date" data-testid="list-date">{move || shown_date().unwrap_or_default()}</span>
                <button class="button secondary small" on:click=move |_| shift(1)>
                    {move || text(ctx.lang(), Text::NextDay)}
                </button>
                <label class="toggle">
                    <input
                        type="checkbox"
                        prop:checked=move || !all_terminals.get()
                        on:change=move |_| all_terminals.update(|all| *all = !*all)
                    />
                    {move || text(ctx.lang(), Text::ThisTerminal)}
                </label>
                <button class="button secondary small" data-testid="reload" on:click=move |_| reload()>
                    {move || text(ctx.lang(), Text::Reload)}
                </button>
            </div>
            {move || match loaded.get() {
                Loaded::Loading => view! { <p class="muted">{text(ctx.lang(), Text::Loading)}</p> }.into_any(),
                Loaded::Failed(message) => view! { <p class="notice problem" role="alert">{message}</p> }.into_any(),
                Loaded::Ready(list) => view! { <PaymentTable list=list dialog=dialog/> }.into_any(),
            }}
            {move || dialog_open.get().then(|| view! { <RefundDialogView dialog=dialog on_done=Callback::new(move |()| reload())/> })}
        </section>
    }
}

fn failure_message(lang: Lang, failure: &ApiFailure) -> String {
    match failure.message() {
        Some(message) => message.to_owned(),
        None => text(lang, Text::Offline).to_owned(),
    }
}

/// Totals and rows.
#[component]
fn PaymentTable(list: PaymentList, dialog: RwSignal<Option<RefundDialog>>) -> impl IntoView {
    let ctx = ctx();
    let lang = ctx.lang();
    let totals = list.totals.clone();
    let total = |label: Text, value: String, testid: &'static str| {
        view! {
            <div class="total">
                <span class="total-label">{text(lang, label)}</span>
                <span class="total-value" data-testid=testid>{value}</span>
            </div>
        }
    };
    let rows = list
        .payments
        .into_iter()
        .map(|payment| view! { <PaymentRow payment=payment dialog=dialog/> })
        .collect_view();
    let empty = list.totals.paid_count == 0 && list.totals.open_count == 0;
    view! {
        <div class="totals">
            {total(Text::PaidCount, totals.paid_count.to_string(), "total-count")}
            {total(Text::PaidTotal, totals.paid_fen.to_string(), "total-paid")}
            {total(Text::RefundedTotal, totals.refunded_fen.to_string(), "total-refunded")}
            {total(Text::NetTotal, totals.net_fen.to_string(), "total-net")}
            {total(Text::OpenCount, totals.open_count.to_string(), "total-open")}
        </div>
        <table class="payment-table">
            <thead>
                <tr>
                    <th>{text(lang, Text::Time)}</th>
                    <th class="num">{text(lang, Text::Amount)}</th>
                    <th>{text(lang, Text::State)}</th>
                    <th>{text(lang, Text::CodeLabel)}</th>
                    <th class="num">{text(lang, Text::Refunded)}</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        {empty.then(|| view! { <p class="muted">{text(lang, Text::NoPayments)}</p> })}
    }
}

/// One payment.
#[component]
fn PaymentRow(payment: Payment, dialog: RwSignal<Option<RefundDialog>>) -> impl IntoView {
    let ctx = ctx();
    let lang = ctx.lang();
    let can_refund = refundable(&payment) > Fen::ZERO;
    let refunds = payment
        .refunds
        .iter()
        .map(|refund| {
            format!(
                "{} {}",
                refund.amount_fen,
                refund_state_label(lang, refund.state)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let refunds_title = refunds.clone();
    let state_class = format!("badge state-{}", payment.state.as_str());
    let attention = payment.state == PaymentState::NeedsAttention;
    let id = payment.id.clone();
    view! {
        <tr data-testid="payment-row" data-payment-id=id data-state=payment.state.as_str()>
            <td>{browser::local_time(&payment.created_at)}</td>
            <td class="num strong">{payment.amount_fen.to_string()}</td>
            <td>
                <span class=state_class>{state_label(lang, payment.state)}</span>
                {attention.then(|| view! { <span class="warn">{text(lang, Text::NeedsAttention)}</span> })}
            </td>
            <td class="mono">{masked_code(&payment.auth_code_last4)}</td>
            <td class="num" title=refunds_title>
                {(payment.refunded_fen > Fen::ZERO).then(|| payment.refunded_fen.to_string())}
                {(!refunds.is_empty()).then(|| view! { <div class="small muted">{refunds}</div> })}
            </td>
            <td>
                {can_refund.then(|| {
                    let payment = payment.clone();
                    view! {
                        <button class="button secondary small" data-testid="refund" on:click=move |_| {
                            dialog.set(RefundDialog::open(&payment, new_attempt_id()));
                        }>
                            {text(lang, Text::Refund)}
                        </button>
                    }
                })}
            </td>
        </tr>
    }
}

fn problem_text(lang: Lang, problem: RefundProblem) -> String {
    match (problem, lang) {
        (RefundProblem::NotAnAmount, Lang::Zh) => "请输入金额，最多两位小数".to_owned(),
        (RefundProblem::NotAnAmount, Lang::En) => {
            "Enter an amount with at most two decimals".to_owned()
        }
        (RefundProblem::Zero, Lang::Zh) => "退款金额必须大于 ¥0.00".to_owned(),
        (RefundProblem::Zero, Lang::En) => "The refund must be more than ¥0.00".to_owned(),
        (RefundProblem::TooMuch(left), Lang::Zh) => format!("最多可退 {left}"),
        (RefundProblem::TooMuch(left), Lang::En) => format!("At most {left} can be refunded"),
    }
}

/// The refund dialog: edit → confirm → send (→ a manager's PIN → send again) → result.
#[component]
pub(super) fn RefundDialogView(
    dialog: RwSignal<Option<RefundDialog>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let ctx = ctx();
    // A memo, so typing in the fields (which changes the dialog) does not rebuild the form.
    let stage = Memo::new(move |_| {
        dialog.with(|dialog| dialog.as_ref().map(|dialog| dialog.stage.clone()))
    });
    let close = move || {
        let finished = matches!(stage.get_untracked(), Some(RefundStage::Done(_)));
        dialog.set(None);
        if finished {
            on_done.run(());
        }
    };
    let send = move || {
        let Some(request) = dialog
            .try_update(|dialog| dialog.as_mut().and_then(RefundDialog::confirm))
            .flatten()
        else {
            return;
        };
        let Some(payment_id) =
            dialog.with_untracked(|dialog| dialog.as_ref().map(|dialog| dialog.payment_id.clone()))
        else {
            return;
        };
        let Some(token) = ctx.token() else { return };
        spawn_local(async move {
            let result = api::create_refund(&token, &payment_id, &request, None).await;
            ctx.note(&result);
            // The page may be gone by now, its signals with it.
            let _ = dialog.try_update(|dialog| {
                if let Some(dialog) = dialog {
                    dialog.answered(result);
                }
            });
        });
    };
    // The manager's name and PIN: an approval, then the same refund again with it.
    let authorize = move || {
        let Some(request) = dialog
            .try_update(|dialog| dialog.as_mut().and_then(RefundDialog::approval_request))
            .flatten()
        else {
            return;
        };
        let Some(payment_id) =
            dialog.with_untracked(|dialog| dialog.as_ref().map(|dialog| dialog.payment_id.clone()))
        else {
            return;
        };
        let Some(token) = ctx.token() else { return };
        spawn_local(async move {
            let approval = api::approve(&token, &request).await;
            let Some((refund, approval)) = dialog
                .try_update(|dialog| {
                    dialog
                        .as_mut()
                        .and_then(|dialog| dialog.authorized(approval))
                })
                .flatten()
            else {
                return;
            };
            let result = api::create_refund(&token, &payment_id, &refund, Some(&approval)).await;
            ctx.note(&result);
            let _ = dialog.try_update(|dialog| {
                if let Some(dialog) = dialog {
                    dialog.answered(result);
                }
            });
        });
    };
    let field = move |read: fn(&RefundDialog) -> String| {
        move || dialog.with(|dialog| dialog.as_ref().map(read).unwrap_or_default())
    };
    view! {
        <div class="backdrop">
            <div class="dialog refund-dialog" role="dialog" aria-modal="true" aria-labelledby="refund-title" data-testid="refund-dialog">
                <h2 id="refund-title">{move || text(ctx.lang(), Text::RefundTitle)}</h2>
                <p class="muted">
                    {move || dialog.with(|dialog| dialog.as_ref().map(|dialog| format!(
                        "{} {} · {} {}",
                        text(ctx.lang(), Text::Amount), dialog.paid,
                        text(ctx.lang(), Text::Refundable), dialog.remaining,
                    )))}
                </p>
                {move || match stage.get() {
                    Some(RefundStage::Editing(problem)) => view! {
                        <form class="refund-form" on:submit=move |event| {
                            event.prevent_default();
                            dialog.update(|dialog| if let Some(dialog) = dialog { dialog.submit() });
                        }>
                            <label for="refund-amount">{text(ctx.lang(), Text::RefundAmount)}</label>
                            <div class="manual-row">
                                <input
                                    id="refund-amount"
                                    type="text"
                                    inputmode="decimal"
                                    autocomplete="off"
                                    data-testid="refund-amount"
                                    prop:value=field(|dialog| dialog.amount_text.clone())
                                    on:input=move |event| {
                                        let value = event_target_value(&event);
                                        dialog.update(|dialog| if let Some(dialog) = dialog { dialog.amount_text = value });
                                    }
                                />
                                <button type="button" class="button secondary" on:click=move |_| {
                                    dialog.update(|dialog| if let Some(dialog) = dialog {
                                        dialog.amount_text = dialog.remaining.to_yuan_string();
                                    });
                                }>
                                    {text(ctx.lang(), Text::RefundFull)}
                                </button>
                            </div>
                            <label for="refund-reason">{text(ctx.lang(), Text::RefundReason)}</label>
                            <input
                                id="refund-reason"
                                type="text"
                                maxlength="80"
                                autocomplete="off"
                                prop:value=field(|dialog| dialog.reason.clone())
                                on:input=move |event| {
                                    let value = event_target_value(&event);
                                    dialog.update(|dialog| if let Some(dialog) = dialog { dialog.reason = value });
                                }
                            />
                            {problem.map(|problem| view! { <p class="notice problem" role="alert">{problem_text(ctx.lang(), problem)}</p> })}
                            <div class="dialog-actions">
                                <button type="button" class="button secondary" on:click=move |_| close()>{text(ctx.lang(), Text::Close)}</button>
                                <button type="submit" class="button primary" data-testid="refund-submit">{text(ctx.lang(), Text::RefundSubmit)}</button>
                            </div>
                        </form>
                    }.into_any(),
                    Some(RefundStage::Confirming(amount)) => view! {
                        <p class="confirm-line" data-testid="refund-confirm-line">{format!("{} {amount}?", text(ctx.lang(), Text::RefundConfirm))}</p>
                        <div class="dialog-actions">
                            <button class="button secondary" on:click=move |_| dialog.update(|dialog| if let Some(dialog) = dialog { dialog.edit() })>
                                {text(ctx.lang(), Text::Back)}
                            </button>
                            <button class="button danger" data-testid="refund-confirm" on:click=move |_| send()>
                                {text(ctx.lang(), Text::RefundConfirm)}
                            </button>
                        </div>
                    }.into_any(),
                    Some(RefundStage::Sending(amount)) => view! {
                        <p class="confirm-line" role="status">{format!("{} {amount}…", text(ctx.lang(), Text::RefundProcessing))}</p>
                    }.into_any(),
                    Some(RefundStage::Approving(amount, problem)) => view! {
                        <ApprovalForm
                            heading=format!("{} · {amount}", text(ctx.lang(), Text::ApprovalTitle))
                            help=Text::ApprovalHelp
                            manager=Signal::derive(field(|dialog| dialog.manager.clone()))
                            on_manager=Callback::new(move |value| dialog.update(|dialog| if let Some(dialog) = dialog { dialog.manager = value }))
                            pin=Signal::derive(field(|dialog| dialog.pin.clone()))
                            on_pin=Callback::new(move |value| dialog.update(|dialog| if let Some(dialog) = dialog { dialog.pin = value }))
                            problem=Signal::stored(problem)
                            on_submit=Callback::new(move |()| authorize())
                            on_close=Callback::new(move |()| close())
                        />
                    }.into_any(),
                    Some(RefundStage::Authorizing(_)) => view! {
                        <p class="confirm-line" role="status">{format!("{}…", text(ctx.lang(), Text::ApprovalChecking))}</p>
                    }.into_any(),
                    Some(RefundStage::Done(refund)) => view! {
                        <p class="confirm-line success" role="status" data-testid="refund-result">
                            {format!("{} {} · {}", text(ctx.lang(), Text::RefundDone), refund.amount_fen, refund_state_label(ctx.lang(), refund.state))}
                        </p>
                        <div class="dialog-actions">
                            <button class="button primary" data-testid="refund-close" on:click=move |_| close()>{text(ctx.lang(), Text::Close)}</button>
                        </div>
                    }.into_any(),
                    Some(RefundStage::Failed(message)) => view! {
                        <p class="notice problem" role="alert" data-testid="refund-result">
                            {format!("{}: {message}", text(ctx.lang(), Text::RefundFailedTitle))}
                        </p>
                        <div class="dialog-actions">
                            <button class="button secondary" on:click=move |_| close()>{text(ctx.lang(), Text::Close)}</button>
                            <button class="button primary" on:click=move |_| dialog.update(|dialog| if let Some(dialog) = dialog { dialog.edit() })>
                                {text(ctx.lang(), Text::Retry)}
                            </button>
                        </div>
                    }.into_any(),
                    None => ().into_any(),
                }}
            </div>
        </div>
    }
}
