//! 待处理: the store's payments whose outcome is unknown (`needs_attention`), across its
//! terminals, behind a manager's PIN. Each can be settled from a fresh query of WeChat: the
//! payment moves only to what WeChat's verified answer proves.

use leptos::prelude::*;
use paycode_api::{ApprovalAction, AttentionList, SettleOutcome, SettleRequest};

use crate::model::books::settle_outcome_text;
use crate::model::books_html::{ACTION_SETTLE, ACTION_SETTLE_QUERY, attention_html};
use crate::model::i18n::{Text, state_label, text};
use crate::ui::api;
use crate::ui::approval::{ApprovalGate, NoteDialog, clicked_action};
use crate::ui::browser;
use crate::ui::context::ctx;

/// The reason a settlement carries when the manager pressed 立即查询 without writing one.
const QUERY_NOW_REASON: &str = "立即查询（待处理列表）";

/// The needs-attention page.
#[component]
pub fn AttentionPage() -> impl IntoView {
    let ctx = ctx();
    let view_gate = ApprovalGate::new(ApprovalAction::ViewAllPayments);
    let settle_gate = ApprovalGate::new(ApprovalAction::SettlePayment);
    let list = RwSignal::new(None::<AttentionList>);
    // The payment whose settlement reason is being written.
    let settling = RwSignal::new(None::<String>);

    let reload = move || {
        view_gate.run(
            |token, approval| async move { api::needs_attention(&token, &approval).await },
            move |answer| {
                let _ = list.try_set(Some(answer));
            },
        );
    };
    reload();

    let settle = move |payment_id: String, reason: String| {
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
    };
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
            {move || (view_gate.unlocked.get() && list.with(Option::is_none)).then(|| view! { <p class="muted">{text(ctx.lang(), Text::Loading)}</p> })}
            <div
                inner_html=move || list.with(|list| list.as_ref().map(|list| attention_html(ctx.lang(), &list.payments, browser::local_date_time)).unwrap_or_default())
                on:click=move |event| match clicked_action(&event) {
                    Some((action, id)) if action == ACTION_SETTLE_QUERY => settle(id, QUERY_NOW_REASON.to_owned()),
                    Some((action, id)) if action == ACTION_SETTLE => settling.set(Some(id)),
                    _ => {}
                }
            ></div>
            {move || settling.get().map(|id| view! {
                <NoteDialog
                    title=Text::Settle
                    label=Text::SettleReason
                    testid="settle"
                    check=Callback::new(move |reason: String| reason.trim().is_empty().then(|| text(ctx.lang(), Text::SettleReasonRequired).to_owned()))
                    on_submit=Callback::new(move |reason: String| settle(id.clone(), reason.trim().to_owned()))
                    on_close=Callback::new(move |()| settling.set(None))
                />
            })}
        </section>
    }
}
