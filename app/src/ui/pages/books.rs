//! 对账: one day of the owner's books, behind a manager's PIN. The totals of both sides side
//! by side, the differences in plain words with what can be done about each (立即查询,
//! 退款, 标记已核实), the facts the bill proves, the rows not from Paycode, and the day as
//! CSV (docs/books.md §4).

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::ApprovalAction;
use paycode_api::books::{BooksDayDetail, ExplainMismatch, MismatchEntry, OwnerAction};

use crate::model::books::{csv_file_name, failure_text, note_problem};
use crate::model::books_html::{ACTION_DAY, ACTION_EXPLAIN, ACTION_QUERY, ACTION_REFUND, day_html};
use crate::model::i18n::{Text, text};
use crate::model::refund::RefundDialog;
use crate::ui::api;
use crate::ui::approval::{ApprovalGate, NoteDialog, clicked_action};
use crate::ui::browser;
use crate::ui::context::{ctx, new_attempt_id};
use crate::ui::pages::payments::RefundDialogView;

/// The 对账 page.
#[component]
pub fn BooksPage() -> impl IntoView {
    let ctx = ctx();
    let gate = ApprovalGate::new(ApprovalAction::Books);
    // `None` until the books status names the last finished day (yesterday in the shop's
    // offset), the day the page opens on.
    let day = RwSignal::new(None::<String>);
    let detail = RwSignal::new(None::<BooksDayDetail>);
    // The mismatch whose note is being written.
    let explaining = RwSignal::new(None::<String>);
    let refund = RwSignal::new(None::<RefundDialog>);

    if let Some(token) = ctx.token() {
        spawn_local(async move {
            let result = api::books_status(&token).await;
            ctx.note(&result);
            match result {
                Ok(status) => {
                    let _ = day.try_set(Some(status.last_day));
                }
                Err(failure) => {
                    let _ = gate
                        .outcome
                        .try_set(Some(Err(failure_text(ctx.lang(), &failure))));
                }
            }
        });
    }
    let load = move |chosen: String| {
        gate.run(
            move |token, approval| async move { api::books_day(&token, &approval, &chosen).await },
            move |answer| {
                let _ = detail.try_set(Some(answer));
            },
        );
    };
    let reload = move || {
        if let Some(chosen) = day.get_untracked() {
            load(chosen);
        }
    };
    // A day chosen, or the first one known: show it (after the PIN).
    Effect::new(move |_| {
        if let Some(chosen) = day.get() {
            load(chosen);
        }
    });

    // An answered action: the mismatch as it stands now, and its day's open count.
    let replace = move |entry: MismatchEntry| {
        detail.update(|detail| {
            let Some(detail) = detail else { return };
            for account in &mut detail.accounts {
                let Some(known) = account
                    .mismatches
                    .iter_mut()
                    .find(|known| known.id == entry.id)
                else {
                    continue;
                };
                *known = entry.clone();
                let open = account
                    .mismatches
                    .iter()
                    .filter(|known| known.status.is_open())
                    .count() as u64;
                for row in &mut detail.recent.days {
                    if row.day == detail.day && row.mch_id == account.mch_id {
                        row.open_mismatches = open;
                    }
                }
            }
        });
    };
    let act = move |action: OwnerAction, entry: MismatchEntry| {
        gate.outcome.set(None);
        match action {
            OwnerAction::QueryNow => gate.run(
                move |token, approval| async move {
                    api::query_mismatch(&token, &approval, &entry.id).await
                },
                move |answer| {
                    gate.outcome.set(Some(Ok(answer.message)));
                    replace(answer.mismatch);
                },
            ),
            OwnerAction::MarkExplained => explaining.set(Some(entry.id)),
            OwnerAction::Refund => {
                // The refund itself goes through the refund dialog and its own approval.
                let (Some(payment_id), Some(token)) = (entry.payment_id, ctx.token()) else {
                    return;
                };
                spawn_local(async move {
                    let result = api::payment(&token, &payment_id).await;
                    ctx.note(&result);
                    let outcome = match result {
                        Ok(payment) => match RefundDialog::open(&payment, new_attempt_id()) {
                            Some(dialog) => {
                                let _ = refund.try_set(Some(dialog));
                                return;
                            }
                            None => text(ctx.lang(), Text::NothingToRefund).to_owned(),
                        },
                        Err(failure) => failure_text(ctx.lang(), &failure),
                    };
                    let _ = gate.outcome.try_set(Some(Err(outcome)));
                });
            }
        }
    };
    let explain = move |id: String, note: String| {
        let body = ExplainMismatch { note };
        gate.run(
            move |token, approval| async move {
                api::explain_mismatch(&token, &approval, &id, &body).await
            },
            move |entry| {
                let _ = explaining.try_set(None);
                replace(entry);
            },
        );
    };
    let download = move || {
        let Some(chosen) = day.get_untracked() else {
            return;
        };
        gate.run(
            {
                let chosen = chosen.clone();
                move |token, approval| async move {
                    api::books_day_csv(&token, &approval, &chosen).await
                }
            },
            move |csv| browser::download_text(&csv_file_name(&chosen), "text/csv", &csv),
        );
    };
    let refund_open = Memo::new(move |_| refund.with(Option::is_some));

    view! {
        <section class="payments books" data-testid="books">
            {gate.dialog(Text::ApprovalBooks)}
            <div class="toolbar">
                <h1>{move || text(ctx.lang(), Text::BooksTitle)}</h1>
                <input
                    type="date"
                    class="date-input"
                    data-testid="books-date"
                    prop:value=move || day.get().unwrap_or_default()
                    on:change=move |event| {
                        let value = event_target_value(&event);
                        if !value.is_empty() {
                            day.set(Some(value));
                        }
                    }
                />
                <button class="button secondary small" data-testid="books-reload" on:click=move |_| reload()>
                    {move || text(ctx.lang(), Text::Reload)}
                </button>
                <button class="button secondary small" data-testid="books-csv" disabled=move || day.with(Option::is_none) on:click=move |_| download()>
                    {move || text(ctx.lang(), Text::DownloadCsv)}
                </button>
            </div>
            {gate.outcome_line()}
            {move || (gate.unlocked.get() && detail.with(Option::is_none)).then(|| view! { <p class="muted">{text(ctx.lang(), Text::Loading)}</p> })}
            <div
                class="books-day"
                inner_html=move || detail.with(|detail| detail.as_ref().map(|detail| day_html(ctx.lang(), detail)).unwrap_or_default())
                on:click=move |event| {
                    let Some((action, id)) = clicked_action(&event) else { return };
                    if action == ACTION_DAY {
                        day.set(Some(id));
                        return;
                    }
                    let entry = detail.with_untracked(|detail| {
                        detail
                            .iter()
                            .flat_map(|detail| detail.accounts.iter())
                            .flat_map(|account| account.mismatches.iter())
                            .find(|entry| entry.id == id)
                            .cloned()
                    });
                    let action = match action.as_str() {
                        ACTION_QUERY => OwnerAction::QueryNow,
                        ACTION_REFUND => OwnerAction::Refund,
                        ACTION_EXPLAIN => OwnerAction::MarkExplained,
                        _ => return,
                    };
                    if let Some(entry) = entry {
                        act(action, entry);
                    }
                }
            ></div>
            {move || explaining.get().map(|id| view! {
                <NoteDialog
                    title=Text::ExplainTitle
                    label=Text::ExplainNote
                    testid="explain"
                    check=Callback::new(move |note: String| ExplainMismatch { note }.check().err().map(|problem| note_problem(ctx.lang(), problem).to_owned()))
                    on_submit=Callback::new(move |note| explain(id.clone(), note))
                    on_close=Callback::new(move |()| explaining.set(None))
                />
            })}
            {move || refund_open.get().then(|| view! { <RefundDialogView dialog=refund on_done=Callback::new(move |()| reload())/> })}
        </section>
    }
}
