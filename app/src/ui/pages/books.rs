//! 对账: one day of the owner's books, behind a manager's PIN. The totals of both sides side
//! by side, the differences in plain words with what can be done about each (立即查询,
//! 退款, 标记已核实), the facts the bill proves, the rows not from Paycode, and the day as
//! CSV (docs/books.md §4).

use leptos::prelude::*;
use leptos::task::spawn_local;
use paycode_api::books::{
    AccountDay, BooksDayDetail, DayStatus, ExplainMismatch, MismatchEntry, OwnerAction, SideTotals,
};
use paycode_api::{ApprovalAction, Fen};

use crate::model::books::{
    action_label, bill_status_note, can_refund, class_hint, class_label, csv_file_name,
    day_status_label, failure_text, mark_label, note_problem, status_label,
};
use crate::model::i18n::{Lang, Text, state_label, text};
use crate::model::refund::RefundDialog;
use crate::ui::api;
use crate::ui::approval::ApprovalGate;
use crate::ui::browser;
use crate::ui::context::{ctx, new_attempt_id};
use crate::ui::pages::payments::RefundDialogView;

/// The note being written for one mismatch.
#[derive(Clone, Debug, PartialEq)]
struct Explaining {
    id: String,
    note: String,
    problem: Option<String>,
}

/// The 对账 page.
#[component]
pub fn BooksPage() -> impl IntoView {
    let ctx = ctx();
    let gate = ApprovalGate::new(ApprovalAction::Books);
    // `None` until the books status names the last finished day (yesterday in the shop's
    // offset), the day the page opens on.
    let day = RwSignal::new(None::<String>);
    let detail = RwSignal::new(None::<BooksDayDetail>);
    let explaining = RwSignal::new(None::<Explaining>);
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

    let replace = move |entry: MismatchEntry| {
        detail.update(|detail| {
            let found = detail
                .iter_mut()
                .flat_map(|detail| detail.accounts.iter_mut())
                .flat_map(|account| account.mismatches.iter_mut())
                .find(|known| known.id == entry.id);
            if let Some(known) = found {
                *known = entry;
            }
        });
    };
    let act = Callback::new(move |(action, entry): (OwnerAction, MismatchEntry)| {
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
            OwnerAction::MarkExplained => explaining.set(Some(Explaining {
                id: entry.id,
                note: String::new(),
                problem: None,
            })),
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
    });
    let explain = move || {
        let Some(Explaining { id, note, .. }) = explaining.get_untracked() else {
            return;
        };
        let body = ExplainMismatch { note };
        if let Err(problem) = body.check() {
            explaining.update(|explaining| {
                if let Some(explaining) = explaining {
                    explaining.problem = Some(note_problem(ctx.lang(), problem).to_owned());
                }
            });
            return;
        }
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
    let explaining_open = Memo::new(move |_| explaining.with(Option::is_some));

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
            <DayChips detail=detail day=day/>
            {gate.outcome_line()}
            {move || match detail.get() {
                None => gate.unlocked.get().then(|| view! { <p class="muted">{text(ctx.lang(), Text::Loading)}</p> }).into_any(),
                Some(detail) => detail
                    .accounts
                    .into_iter()
                    .map(|account| view! { <AccountView account=account act=act/> })
                    .collect_view()
                    .into_any(),
            }}
            {move || explaining_open.get().then(|| view! {
                <div class="backdrop">
                    <form class="dialog refund-form" role="dialog" aria-modal="true" aria-labelledby="explain-title" data-testid="explain-dialog"
                        on:submit=move |event| { event.prevent_default(); explain(); }>
                        <h2 id="explain-title">{text(ctx.lang(), Text::ExplainTitle)}</h2>
                        <label for="explain-note">{text(ctx.lang(), Text::ExplainNote)}</label>
                        <input
                            id="explain-note"
                            type="text"
                            maxlength="200"
                            autocomplete="off"
                            data-testid="explain-note"
                            prop:value=move || explaining.with(|explaining| explaining.as_ref().map(|explaining| explaining.note.clone()).unwrap_or_default())
                            on:input=move |event| {
                                let value = event_target_value(&event);
                                explaining.update(|explaining| if let Some(explaining) = explaining { explaining.note = value; explaining.problem = None; });
                            }
                        />
                        {move || explaining.with(|explaining| explaining.as_ref().and_then(|explaining| explaining.problem.clone())).map(|problem| view! {
                            <p class="notice problem" role="alert" data-testid="explain-problem">{problem}</p>
                        })}
                        <div class="dialog-actions">
                            <button type="button" class="button secondary" on:click=move |_| explaining.set(None)>{text(ctx.lang(), Text::Close)}</button>
                            <button type="submit" class="button primary" data-testid="explain-submit">{text(ctx.lang(), Text::ExplainSubmit)}</button>
                        </div>
                    </form>
                </div>
            })}
            {move || refund_open.get().then(|| view! { <RefundDialogView dialog=refund on_done=Callback::new(move |()| reload())/> })}
        </section>
    }
}

/// The recent days as buttons, each with its status and open differences.
#[component]
fn DayChips(
    detail: RwSignal<Option<BooksDayDetail>>,
    day: RwSignal<Option<String>>,
) -> impl IntoView {
    let ctx = ctx();
    move || {
        let lang = ctx.lang();
        let list = detail.get()?.recent;
        // One chip per day: the least finished status of its accounts, their open sum.
        let mut chips: Vec<(String, DayStatus, u64)> = Vec::new();
        for row in list.days {
            match chips.iter_mut().find(|(known, _, _)| *known == row.day) {
                Some((_, status, open)) => {
                    if row.status != DayStatus::Reconciled {
                        *status = row.status;
                    }
                    *open += row.open_mismatches;
                }
                None => chips.push((row.day, row.status, row.open_mismatches)),
            }
        }
        Some(view! {
            <div class="day-chips" role="group">
                {chips.into_iter().map(|(chip_day, status, open)| {
                    let selected = {
                        let chip_day = chip_day.clone();
                        move || day.with(|day| day.as_deref() == Some(chip_day.as_str()))
                    };
                    let choose = chip_day.clone();
                    let testid_day = chip_day.clone();
                    let has_open = open > 0;
                    view! {
                        <button
                            class=format!("day-chip status-{}", status.as_str())
                            class:open=has_open
                            class:active=selected.clone()
                            aria-pressed=move || selected().to_string()
                            data-testid="day-chip"
                            data-day=testid_day
                            on:click=move |_| day.set(Some(choose.clone()))
                        >
                            <span class="mono">{chip_day}</span>
                            <span class="small">{day_status_label(lang, status)}</span>
                            {has_open.then(|| view! { <span class="small strong">{format!("⚠ {open}")}</span> })}
                        </button>
                    }
                }).collect_view()}
            </div>
        })
    }
}

/// One merchant account's day.
#[component]
fn AccountView(account: AccountDay, act: Callback<(OwnerAction, MismatchEntry)>) -> impl IntoView {
    let ctx = ctx();
    let lang = ctx.lang();
    let heading = view! {
        <div class="account-heading">
            <h2>{format!("{} {}", text(lang, Text::MerchantNumber), account.mch_id)}</h2>
            <span class=format!("badge day-{}", account.status.as_str()) data-testid="day-status">{day_status_label(lang, account.status)}</span>
        </div>
    };
    let Some(report) = account.report else {
        return view! {
            <article class="account" data-testid="account" data-mch-id=account.mch_id.clone()>
                {heading}
                <p class="muted">{text(lang, Text::NotReconciledYet)}</p>
            </article>
        }
        .into_any();
    };
    let mismatches = account.mismatches;
    let no_mismatches = mismatches.is_empty();
    view! {
        <article class="account" data-testid="account" data-mch-id=account.mch_id.clone()>
            {heading}
            {bill_status_note(lang, report.bill_status).map(|note| view! { <p class="notice problem" role="alert">{note}</p> })}
            <TotalsTable store=report.store_totals bill=report.bill_totals/>
            <p class="muted small" data-testid="matched">
                {format!(
                    "{}: {} / {} · {}: {}{}",
                    text(lang, Text::Matched),
                    report.matched_payments,
                    report.matched_refunds,
                    text(lang, Text::BillSummaryRow),
                    report.bill_summary_count.map(|count| count.to_string()).unwrap_or_else(|| "—".to_owned()),
                    report.bill_summary_settlement_fen.map(|fen| format!(" · {fen}")).unwrap_or_default(),
                )}
            </p>
            <h3>{format!("{} ({})", text(lang, Text::Differences), mismatches.len())}</h3>
            {no_mismatches.then(|| view! { <p class="notice" data-testid="no-mismatches">{text(lang, Text::NoDifferences)}</p> })}
            <ul class="mismatches">
                {mismatches.into_iter().map(|entry| view! { <MismatchView entry=entry act=act/> }).collect_view()}
            </ul>
            {(!report.marks.is_empty()).then(|| view! {
                <h3>{text(lang, Text::Marks)}</h3>
                <ul class="marks">
                    {report.marks.into_iter().map(|mark| view! {
                        <li data-testid="mark">
                            <span class="mono">{mark.out_trade_no}</span>" "
                            <strong>{mark.amount.to_string()}</strong>" · "
                            {mark_label(lang, mark.already_recorded)}" · "
                            {state_label(lang, mark.store_state)}
                        </li>
                    }).collect_view()}
                </ul>
            })}
            {(!report.not_from_paycode.is_empty()).then(|| view! {
                <h3>{text(lang, Text::NotFromPaycode)}</h3>
                <table class="payment-table not-from-paycode" data-testid="not-from-paycode">
                    <thead>
                        <tr>
                            <th>{text(lang, Text::Time)}</th>
                            <th>{text(lang, Text::OrderNumber)}</th>
                            <th>{text(lang, Text::TradeType)}</th>
                            <th class="num">{text(lang, Text::Amount)}</th>
                            <th>{text(lang, Text::Why)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {report.not_from_paycode.into_iter().map(|row| view! {
                            <tr>
                                <td>{row.time}</td>
                                <td class="mono">{row.out_refund_no.unwrap_or(row.out_trade_no)}</td>
                                <td>{format!("{} {}", row.trade_type, row.trade_state)}</td>
                                <td class="num">{row.amount.to_string()}</td>
                                <td>{row.reason}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </article>
    }
    .into_any()
}

/// The two sides' totals next to each other; a row whose sides differ is marked.
#[component]
fn TotalsTable(store: SideTotals, bill: SideTotals) -> impl IntoView {
    let lang = ctx().lang();
    let row = |label: Text, ours: String, theirs: String, testid: &'static str| {
        let differs = ours != theirs;
        view! {
            <tr class:differs=differs data-testid=testid>
                <th>{text(lang, label)}</th>
                <td class="num">{ours}</td>
                <td class="num">{theirs}</td>
            </tr>
        }
    };
    view! {
        <table class="payment-table side-by-side" data-testid="totals">
            <thead>
                <tr><th></th><th class="num">{text(lang, Text::StoreSide)}</th><th class="num">{text(lang, Text::BillSide)}</th></tr>
            </thead>
            <tbody>
                {row(Text::PaymentsCount, store.payments.to_string(), bill.payments.to_string(), "totals-payments")}
                {row(Text::PaymentsSum, store.payment_fen.to_string(), bill.payment_fen.to_string(), "totals-paid")}
                {row(Text::RefundsCount, store.refunds.to_string(), bill.refunds.to_string(), "totals-refunds")}
                {row(Text::RefundsSum, store.refund_fen.to_string(), bill.refund_fen.to_string(), "totals-refunded")}
            </tbody>
        </table>
    }
}

fn amount(lang: Lang, fen: Option<Fen>) -> String {
    fen.map_or_else(
        || text(lang, Text::Missing).to_owned(),
        |fen| fen.to_string(),
    )
}

/// One difference, in plain words, with its actions while open.
#[component]
fn MismatchView(
    entry: MismatchEntry,
    act: Callback<(OwnerAction, MismatchEntry)>,
) -> impl IntoView {
    let lang = ctx().lang();
    let mismatch = &entry.mismatch;
    let number = match &mismatch.out_refund_no {
        Some(refund) => format!("{} · {refund}", mismatch.out_trade_no),
        None => mismatch.out_trade_no.clone(),
    };
    let sides = format!(
        "{} {} ({}) · {} {} ({})",
        text(lang, Text::StoreAmount),
        amount(lang, mismatch.store_amount),
        mismatch
            .store_state
            .map_or("—", |state| state_label(lang, state)),
        text(lang, Text::BillAmount),
        amount(lang, mismatch.bill_amount),
        mismatch.bill_state.as_deref().unwrap_or("—"),
    );
    let settled = match (&entry.settled_by, &entry.note) {
        (None, None) => None,
        (by, note) => Some(format!(
            "{}{}",
            by.as_ref()
                .map(|by| format!("{}: {by} ", text(lang, Text::SettledBy)))
                .unwrap_or_default(),
            note.as_deref().unwrap_or_default(),
        )),
    };
    let buttons = entry
        .actions
        .iter()
        .copied()
        .filter(|action| *action != OwnerAction::Refund || can_refund(&entry))
        .map(|action| {
            let entry = entry.clone();
            let testid = match action {
                OwnerAction::QueryNow => "mismatch-query",
                OwnerAction::Refund => "mismatch-refund",
                OwnerAction::MarkExplained => "mismatch-explain",
            };
            view! {
                <button class="button secondary small" class:danger=action == OwnerAction::Refund data-testid=testid on:click=move |_| act.run((action, entry.clone()))>
                    {action_label(lang, action)}
                </button>
            }
        })
        .collect_view();
    view! {
        <li class=format!("mismatch status-{}", entry.status.as_str()) data-testid="mismatch" data-mismatch-id=entry.id.clone() data-status=entry.status.as_str()>
            <div class="mismatch-head">
                <strong>{class_label(lang, mismatch.class)}</strong>
                <span class=format!("badge mismatch-{}", entry.status.as_str()) data-testid="mismatch-status">{status_label(lang, entry.status)}</span>
            </div>
            <div class="mono small">{format!("{number} · {}", mismatch.time)}</div>
            <div>{sides}</div>
            {mismatch.carried_from.clone().map(|day| view! { <div class="small muted">{format!("{} {day}", text(lang, Text::CarriedFrom))}</div> })}
            {entry.status.is_open().then(|| view! { <div class="small muted">{class_hint(lang, mismatch.class)}</div> })}
            {settled.map(|settled| view! { <div class="small" data-testid="mismatch-note">{settled}</div> })}
            <div class="mismatch-actions">{buttons}</div>
        </li>
    }
}
