//! 待处理: the store's payments whose outcome is unknown (`needs_attention`), across its
//! terminals, behind a manager's PIN. Each can be settled from a fresh query of WeChat: the
//! payment moves only to what WeChat's verified answer proves.

use leptos::prelude::*;
use paycode_api::{ApprovalAction, AttentionList, Payment, SettleOutcome, SettleRequest};

use crate::model::books::settle_outcome_text;
use crate::model::i18n::{Text, failure_text, masked_code, state_label, text};
use crate::ui::api;
use crate::ui::approval::ApprovalGate;
use crate::ui::browser;
use crate::ui::context::ctx;

/// The reason a settlement carries when the manager pressed 立即查询 without writing one.
const QUERY_NOW_REASON: &str = "立即查询（待处理列表）";

/// The reason being written for one payment's settlement.
#[derive(Clone, Debug, PartialEq)]
struct Settling {
    payment_id: String,
    reason: String,
    problem: bool,
}

/// The needs-attention page.
#[component]
pub fn AttentionPage() -> impl IntoView {
    let ctx = ctx();
    let view_gate = ApprovalGate::new(ApprovalAction::ViewAllPayments);
    let settle_gate = ApprovalGate::new(ApprovalAction::SettlePayment);
    let list = RwSignal::new(None::<AttentionList>);
    let settling = RwSignal::new(None::<Settling>);

    let reload = move || {
        view_gate.run(
            |token, approval| async move { api::needs_attention(&token, &approval).await },
            move |answer| {
                let _ = list.try_set(Some(answer));
            },
        );
    };
    reload();

    let settle = Callback::new(move |(payment_id, reason): (String, String)| {
        settle_gate.outcome.set(None);
        let body = SettleRequest { reason };
        settle_gate.run(
            move |token, approval| async move {
                api::settle_payment(&token, &approval, &payment_id, &body).await
            },
            move |settlement| {
                let _ = settling.try_set(None);
                let message = format!(
                    "{} · {}",
                    settle_outcome_text(ctx.lang(), settlement.outcome),
                    state_label(ctx.lang(), settlement.payment.state)
                );
                let problem = matches!(settlement.outcome, SettleOutcome::Disagrees);
                let _ = settle_gate.outcome.try_set(Some(if problem {
                    Err(message)
                } else {
                    Ok(message)
                }));
                // A settled payment leaves the list; one still unknown stays, updated.
                let _ = list.try_update(|list| {
                    if let Some(list) = list {
                        let payment = settlement.payment;
                        list.payments
                            .retain(|known| known.id != payment.id || payment.state == known.state);
                    }
                });
            },
        );
    });
    let submit = move || {
        let Some(Settling {
            payment_id, reason, ..
        }) = settling.get_untracked()
        else {
            return;
        };
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            settling.update(|settling| {
                if let Some(settling) = settling {
                    settling.problem = true;
                }
            });
            return;
        }
        settle.run((payment_id, reason));
    };
    let settling_open = Memo::new(move |_| settling.with(Option::is_some));

    view! {
        <section class="payments attention" data-testid="attention">
            {view_gate.dialog(Text::ApprovalAttention)}
            {settle_gate.dialog(Text::ApprovalSettle)}
            <div class="toolbar">
                <h1>{move || text(ctx.lang(), Text::AttentionTitle)}</h1>
                <button class="button secondary small" data-testid="attention-reload" on:click=move |_| reload()>
                    {move || text(ctx.lang(), Text::Reload)}
                </button>
            </div>
            {view_gate.outcome_line()}
            {settle_gate.outcome_line()}
            {move || match list.get() {
                None => view_gate.unlocked.get().then(|| view! { <p class="muted">{text(ctx.lang(), Text::Loading)}</p> }).into_any(),
                Some(list) if list.payments.is_empty() => view! { <p class="notice" data-testid="attention-empty">{text(ctx.lang(), Text::NoAttention)}</p> }.into_any(),
                Some(list) => view! {
                    <table class="payment-table" data-testid="attention-table">
                        <thead>
                            <tr>
                                <th>{text(ctx.lang(), Text::Time)}</th>
                                <th>{text(ctx.lang(), Text::Terminal)}</th>
                                <th class="num">{text(ctx.lang(), Text::Amount)}</th>
                                <th>{text(ctx.lang(), Text::OrderNumber)}</th>
                                <th>{text(ctx.lang(), Text::State)}</th>
                                <th></th>
                            </tr>
                        </thead>
                        <tbody>
                            {list.payments.into_iter().map(|payment| view! { <AttentionRow payment=payment settle=settle settling=settling/> }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
            {move || settling_open.get().then(|| view! {
                <div class="backdrop">
                    <form class="dialog refund-form" role="dialog" aria-modal="true" aria-labelledby="settle-title" data-testid="settle-dialog"
                        on:submit=move |event| { event.prevent_default(); submit(); }>
                        <h2 id="settle-title">{text(ctx.lang(), Text::Settle)}</h2>
                        <p class="muted">{text(ctx.lang(), Text::SettleHelp)}</p>
                        <label for="settle-reason">{text(ctx.lang(), Text::SettleReason)}</label>
                        <input
                            id="settle-reason"
                            type="text"
                            maxlength="200"
                            autocomplete="off"
                            data-testid="settle-reason"
                            prop:value=move || settling.with(|settling| settling.as_ref().map(|settling| settling.reason.clone()).unwrap_or_default())
                            on:input=move |event| {
                                let value = event_target_value(&event);
                                settling.update(|settling| if let Some(settling) = settling { settling.reason = value; settling.problem = false; });
                            }
                        />
                        {move || settling.with(|settling| settling.as_ref().is_some_and(|settling| settling.problem)).then(|| view! {
                            <p class="notice problem" role="alert">{text(ctx.lang(), Text::SettleReasonRequired)}</p>
                        })}
                        <div class="dialog-actions">
                            <button type="button" class="button secondary" on:click=move |_| settling.set(None)>{text(ctx.lang(), Text::Close)}</button>
                            <button type="submit" class="button primary" data-testid="settle-submit">{text(ctx.lang(), Text::Settle)}</button>
                        </div>
                    </form>
                </div>
            })}
        </section>
    }
}

/// One payment that needs attention.
#[component]
fn AttentionRow(
    payment: Payment,
    settle: Callback<(String, String)>,
    settling: RwSignal<Option<Settling>>,
) -> impl IntoView {
    let lang = ctx().lang();
    let query_id = payment.id.clone();
    let settle_id = payment.id.clone();
    let why = payment
        .failure
        .as_ref()
        .map(|failure| failure_text(lang, failure));
    view! {
        <tr data-testid="attention-row" data-payment-id=payment.id.clone()>
            <td>{browser::local_date_time(&payment.created_at)}</td>
            <td>{payment.terminal_id.clone()}</td>
            <td class="num strong">{payment.amount_fen.to_string()}</td>
            <td class="mono small">{payment.out_trade_no.clone()}<div class="muted">{masked_code(&payment.auth_code_last4)}</div></td>
            <td>
                <span class="badge state-needs_attention">{state_label(lang, payment.state)}</span>
                {why.map(|why| view! { <div class="small muted">{why}</div> })}
            </td>
            <td class="row-actions">
                <button class="button secondary small" data-testid="attention-query" on:click=move |_| settle.run((query_id.clone(), QUERY_NOW_REASON.to_owned()))>
                    {text(lang, Text::QueryNow)}
                </button>
                <button class="button primary small" data-testid="attention-settle" on:click=move |_| settling.set(Some(Settling {
                    payment_id: settle_id.clone(),
                    reason: String::new(),
                    problem: false,
                }))>
                    {text(lang, Text::Settle)}
                </button>
            </td>
        </tr>
    }
}
