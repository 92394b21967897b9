//! The back office's read-only views as HTML text: a day of the books and the
//! needs-attention list. They are rendered here, as escaped strings, rather than as Leptos
//! views because they only show what the proxy answered and are rebuilt whole on every
//! answer: a Leptos view per row and cell costs its own compiled code, and the page's main
//! bundle has a budget (`scripts/size-report`). Buttons carry `data-action` and `data-id`;
//! the page listens for clicks once on the container (`ui/pages/books.rs`).
//!
//! Every text from the proxy goes through [`escape`]: a bill row's order number is whatever
//! the merchant's other systems wrote.

use std::fmt::Write;

use paycode_api::Payment;
use paycode_api::books::{
    AccountDay, BooksDayDetail, DayStatus, MismatchEntry, OwnerAction, SideTotals,
};

use crate::model::books::{
    action_label, bill_status_note, can_refund, class_hint, class_label, day_status_label,
    mark_label, status_label,
};
use crate::model::i18n::{Lang, Text, failure_text, masked_code, state_label, text};

/// `data-action` of a day chip.
pub const ACTION_DAY: &str = "day";
/// `data-action` of 立即查询 on a mismatch.
pub const ACTION_QUERY: &str = "query";
/// `data-action` of 退款 on a mismatch.
pub const ACTION_REFUND: &str = "refund";
/// `data-action` of 标记已核实 on a mismatch.
pub const ACTION_EXPLAIN: &str = "explain";
/// `data-action` of 立即查询 on a payment that needs attention.
pub const ACTION_SETTLE_QUERY: &str = "settle-query";
/// `data-action` of 结算 on a payment that needs attention.
pub const ACTION_SETTLE: &str = "settle";

/// Escapes text for an HTML element or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn button(out: &mut String, class: &str, testid: &str, action: &str, id: &str, label: &str) {
    let _ = write!(
        out,
        r#"<button type="button" class="{class}" data-testid="{testid}" data-action="{action}" data-id="{}">{}</button>"#,
        escape(id),
        escape(label)
    );
}

/// The recent days as buttons (one per day: the least finished status of its accounts and
/// their open differences), then every account's part of the day.
pub fn day_html(lang: Lang, detail: &BooksDayDetail) -> String {
    let mut out = String::new();
    let mut chips: Vec<(&str, DayStatus, u64)> = Vec::new();
    for row in &detail.recent.days {
        match chips.iter_mut().find(|(day, _, _)| *day == row.day) {
            Some((_, status, open)) => {
                if row.status != DayStatus::Reconciled {
                    *status = row.status;
                }
                *open += row.open_mismatches;
            }
            None => chips.push((&row.day, row.status, row.open_mismatches)),
        }
    }
    out.push_str(r#"<div class="day-chips" role="group">"#);
    for (day, status, open) in chips {
        let active = day == detail.day;
        let _ = write!(
            out,
            r#"<button type="button" class="day-chip status-{}{}{}" aria-pressed="{active}" data-testid="day-chip" data-action="{ACTION_DAY}" data-id="{}"><span class="mono">{}</span><span class="small">{}</span>"#,
            status.as_str(),
            if open > 0 { " open" } else { "" },
            if active { " active" } else { "" },
            escape(day),
            escape(day),
            day_status_label(lang, status),
        );
        if open > 0 {
            let _ = write!(out, r#"<span class="small strong">⚠ {open}</span>"#);
        }
        out.push_str("</button>");
    }
    out.push_str("</div>");
    for account in &detail.accounts {
        account_html(&mut out, lang, account);
    }
    out
}

fn account_html(out: &mut String, lang: Lang, account: &AccountDay) {
    let _ = write!(
        out,
        r#"<article class="account" data-testid="account" data-mch-id="{mch}"><div class="account-heading"><h2>{} {mch}</h2><span class="badge day-{}" data-testid="day-status">{}</span>"#,
        text(lang, Text::MerchantNumber),
        account.status.as_str(),
        day_status_label(lang, account.status),
        mch = escape(&account.mch_id),
    );
    if let Some(detail) = &account.detail {
        let _ = write!(
            out,
            r#"<span class="small muted">{}</span>"#,
            escape(detail)
        );
    }
    out.push_str("</div>");
    let Some(report) = &account.report else {
        let _ = write!(
            out,
            r#"<p class="muted">{}</p></article>"#,
            text(lang, Text::NotReconciledYet)
        );
        return;
    };
    if let Some(note) = bill_status_note(lang, report.bill_status) {
        let _ = write!(out, r#"<p class="notice problem" role="alert">{note}</p>"#);
    }
    totals_html(out, lang, &report.store_totals, &report.bill_totals);
    let _ = write!(
        out,
        r#"<p class="muted small" data-testid="matched">{}: {} / {} · {}: {}{}</p>"#,
        text(lang, Text::Matched),
        report.matched_payments,
        report.matched_refunds,
        text(lang, Text::BillSummaryRow),
        report
            .bill_summary_count
            .map_or_else(|| "—".to_owned(), |count| count.to_string()),
        report
            .bill_summary_settlement_fen
            .map(|fen| format!(" · {fen}"))
            .unwrap_or_default(),
    );
    let _ = write!(
        out,
        "<h3>{} ({})</h3>",
        text(lang, Text::Differences),
        account.mismatches.len()
    );
    if account.mismatches.is_empty() {
        let _ = write!(
            out,
            r#"<p class="notice" data-testid="no-mismatches">{}</p>"#,
            text(lang, Text::NoDifferences)
        );
    }
    out.push_str(r#"<ul class="mismatches">"#);
    for entry in &account.mismatches {
        mismatch_html(out, lang, entry);
    }
    out.push_str("</ul>");
    if !report.marks.is_empty() {
        let _ = write!(
            out,
            r#"<h3>{}</h3><ul class="marks">"#,
            text(lang, Text::Marks)
        );
        for mark in &report.marks {
            let _ = write!(
                out,
                r#"<li data-testid="mark"><span class="mono">{}</span> <strong>{}</strong> · {} · {}</li>"#,
                escape(&mark.out_trade_no),
                mark.amount,
                mark_label(lang, mark.already_recorded),
                state_label(lang, mark.store_state),
            );
        }
        out.push_str("</ul>");
    }
    if !report.not_from_paycode.is_empty() {
        let _ = write!(
            out,
            r#"<h3>{}</h3><table class="payment-table not-from-paycode" data-testid="not-from-paycode"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class="num">{}</th><th>{}</th></tr></thead><tbody>"#,
            text(lang, Text::NotFromPaycode),
            text(lang, Text::Time),
            text(lang, Text::OrderNumber),
            text(lang, Text::TradeType),
            text(lang, Text::Amount),
            text(lang, Text::Why),
        );
        for row in &report.not_from_paycode {
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="mono">{}</td><td>{} {}</td><td class="num">{}</td><td>{}</td></tr>"#,
                escape(&row.time),
                escape(row.out_refund_no.as_deref().unwrap_or(&row.out_trade_no)),
                escape(&row.trade_type),
                escape(&row.trade_state),
                row.amount,
                escape(&row.reason),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</article>");
}

fn totals_html(out: &mut String, lang: Lang, store: &SideTotals, bill: &SideTotals) {
    let _ = write!(
        out,
        r#"<table class="payment-table side-by-side" data-testid="totals"><thead><tr><th></th><th class="num">{}</th><th class="num">{}</th></tr></thead><tbody>"#,
        text(lang, Text::StoreSide),
        text(lang, Text::BillSide),
    );
    let rows = [
        (
            Text::PaymentsCount,
            store.payments.to_string(),
            bill.payments.to_string(),
            "totals-payments",
        ),
        (
            Text::PaymentsSum,
            store.payment_fen.to_string(),
            bill.payment_fen.to_string(),
            "totals-paid",
        ),
        (
            Text::RefundsCount,
            store.refunds.to_string(),
            bill.refunds.to_string(),
            "totals-refunds",
        ),
        (
            Text::RefundsSum,
            store.refund_fen.to_string(),
            bill.refund_fen.to_string(),
            "totals-refunded",
        ),
    ];
    for (label, ours, theirs, testid) in rows {
        let _ = write!(
            out,
            r#"<tr class="{}" data-testid="{testid}"><th>{}</th><td class="num">{ours}</td><td class="num">{theirs}</td></tr>"#,
            if ours == theirs { "" } else { "differs" },
            text(lang, label),
        );
    }
    out.push_str("</tbody></table>");
}

fn mismatch_html(out: &mut String, lang: Lang, entry: &MismatchEntry) {
    let mismatch = &entry.mismatch;
    let amount = |fen: Option<paycode_api::Fen>| {
        fen.map_or_else(
            || text(lang, Text::Missing).to_owned(),
            |fen| fen.to_string(),
        )
    };
    let _ = write!(
        out,
        r#"<li class="mismatch status-{status}" data-testid="mismatch" data-mismatch-id="{id}" data-status="{status}"><div class="mismatch-head"><strong>{}</strong><span class="badge mismatch-{status}" data-testid="mismatch-status">{}</span></div><div class="mono small">{}{} · {}</div><div>{} {} ({}) · {} {} ({})</div>"#,
        class_label(lang, mismatch.class),
        status_label(lang, entry.status),
        escape(&mismatch.out_trade_no),
        mismatch
            .out_refund_no
            .as_ref()
            .map(|refund| format!(" · {}", escape(refund)))
            .unwrap_or_default(),
        escape(&mismatch.time),
        text(lang, Text::StoreAmount),
        amount(mismatch.store_amount),
        mismatch
            .store_state
            .map_or("—", |state| state_label(lang, state)),
        text(lang, Text::BillAmount),
        amount(mismatch.bill_amount),
        escape(mismatch.bill_state.as_deref().unwrap_or("—")),
        status = entry.status.as_str(),
        id = escape(&entry.id),
    );
    if let Some(day) = &mismatch.carried_from {
        let _ = write!(
            out,
            r#"<div class="small muted">{} {}</div>"#,
            text(lang, Text::CarriedFrom),
            escape(day)
        );
    }
    if entry.status.is_open() {
        let _ = write!(
            out,
            r#"<div class="small muted">{}</div>"#,
            class_hint(lang, mismatch.class)
        );
    }
    if entry.settled_by.is_some() || entry.note.is_some() {
        out.push_str(r#"<div class="small" data-testid="mismatch-note">"#);
        if let Some(by) = &entry.settled_by {
            let _ = write!(out, "{}: {} ", text(lang, Text::SettledBy), escape(by));
        }
        if let Some(note) = &entry.note {
            out.push_str(&escape(note));
        }
        out.push_str("</div>");
    }
    out.push_str(r#"<div class="mismatch-actions">"#);
    for action in &entry.actions {
        let (class, testid, data) = match action {
            OwnerAction::QueryNow => ("button secondary small", "mismatch-query", ACTION_QUERY),
            OwnerAction::Refund if can_refund(entry) => {
                ("button danger small", "mismatch-refund", ACTION_REFUND)
            }
            OwnerAction::Refund => continue,
            OwnerAction::MarkExplained => {
                ("button secondary small", "mismatch-explain", ACTION_EXPLAIN)
            }
        };
        button(
            out,
            class,
            testid,
            data,
            &entry.id,
            action_label(lang, *action),
        );
    }
    out.push_str("</div></li>");
}

/// The payments that need attention, with 立即查询 and 结算 on each; `local_time` renders an
/// RFC 3339 instant in the terminal's time.
pub fn attention_html(
    lang: Lang,
    payments: &[Payment],
    local_time: impl Fn(&str) -> String,
) -> String {
    if payments.is_empty() {
        return format!(
            r#"<p class="notice" data-testid="attention-empty">{}</p>"#,
            text(lang, Text::NoAttention)
        );
    }
    let mut out = format!(
        r#"<table class="payment-table" data-testid="attention-table"><thead><tr><th>{}</th><th>{}</th><th class="num">{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>"#,
        text(lang, Text::Time),
        text(lang, Text::Terminal),
        text(lang, Text::Amount),
        text(lang, Text::OrderNumber),
        text(lang, Text::State),
    );
    for payment in payments {
        let _ = write!(
            out,
            r#"<tr data-testid="attention-row" data-payment-id="{id}"><td>{}</td><td>{}</td><td class="num strong">{}</td><td class="mono small">{}<div class="muted">{}</div></td><td><span class="badge state-{}">{}</span>"#,
            escape(&local_time(&payment.created_at)),
            escape(&payment.terminal_id),
            payment.amount_fen,
            escape(&payment.out_trade_no),
            escape(&masked_code(&payment.auth_code_last4)),
            payment.state.as_str(),
            state_label(lang, payment.state),
            id = escape(&payment.id),
        );
        if let Some(failure) = &payment.failure {
            let _ = write!(
                out,
                r#"<div class="small muted">{}</div>"#,
                escape(&failure_text(lang, failure))
            );
        }
        out.push_str(r#"</td><td class="row-actions">"#);
        button(
            &mut out,
            "button secondary small",
            "attention-query",
            ACTION_SETTLE_QUERY,
            &payment.id,
            text(lang, Text::QueryNow),
        );
        button(
            &mut out,
            "button primary small",
            "attention-settle",
            ACTION_SETTLE,
            &payment.id,
            text(lang, Text::Settle),
        );
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::Fen;
    use paycode_api::books::{
        BillStatus, BooksDayList, BooksDaySummary, DayReport, Mismatch, MismatchClass,
        MismatchStatus, NotFromPaycode,
    };

    fn entry(id: &str, class: MismatchClass, status: MismatchStatus) -> MismatchEntry {
        MismatchEntry {
            id: id.to_owned(),
            status,
            mismatch: Mismatch {
                class,
                description: class.describe().to_owned(),
                out_trade_no: "PC<1>".to_owned(),
                out_refund_no: None,
                store_amount: None,
                bill_amount: Some(Fen(1230)),
                store_state: None,
                bill_state: Some("SUCCESS".to_owned()),
                time: "2026-11-30 12:00:00".to_owned(),
                carried_from: None,
                actions: class.actions(),
            },
            payment_id: None,
            actions: if status.is_open() {
                class.actions()
            } else {
                Vec::new()
            },
            note: (status == MismatchStatus::Explained).then(|| "顾客退了现金 <b>".to_owned()),
            settled_by: (status == MismatchStatus::Explained).then(|| "店长".to_owned()),
            settled_at: None,
        }
    }

    fn detail() -> BooksDayDetail {
        let totals = |payments, fen| SideTotals {
            payments,
            payment_fen: Fen(fen),
            refunds: 0,
            refund_fen: Fen::ZERO,
        };
        BooksDayDetail {
            day: "2026-11-30".to_owned(),
            accounts: vec![AccountDay {
                mch_id: "1900000109".to_owned(),
                status: DayStatus::Reconciled,
                detail: None,
                report: Some(DayReport {
                    day: "2026-11-30".to_owned(),
                    mch_id: "1900000109".to_owned(),
                    bill_status: BillStatus::Received,
                    store_totals: totals(2, 2460),
                    bill_totals: totals(3, 3690),
                    bill_summary_count: Some(4),
                    bill_summary_settlement_fen: Some(Fen(4690)),
                    bill_summary_refund_fen: Some(Fen::ZERO),
                    matched_payments: 2,
                    matched_refunds: 0,
                    mismatches: Vec::new(),
                    marks: Vec::new(),
                    not_from_paycode: vec![NotFromPaycode {
                        time: "2026-11-30 13:00:00".to_owned(),
                        out_trade_no: "WEB1".to_owned(),
                        out_refund_no: None,
                        trade_type: "JSAPI".to_owned(),
                        trade_state: "SUCCESS".to_owned(),
                        mch_id: "1900000109".to_owned(),
                        sub_mch_id: String::new(),
                        amount: Fen(1000),
                        reason: "an online sale".to_owned(),
                    }],
                    carried_to_next_day: Default::default(),
                }),
                mismatches: vec![
                    entry(
                        "bm_1",
                        MismatchClass::PaidAtWechatNotHere,
                        MismatchStatus::Open,
                    ),
                    entry(
                        "bm_2",
                        MismatchClass::PaidHereNotAtWechat,
                        MismatchStatus::Explained,
                    ),
                ],
                reconciled_at: None,
            }],
            recent: BooksDayList {
                from: "2026-11-24".to_owned(),
                to: "2026-11-30".to_owned(),
                days: vec![
                    BooksDaySummary {
                        day: "2026-11-30".to_owned(),
                        mch_id: "1900000109".to_owned(),
                        status: DayStatus::Reconciled,
                        store_totals: None,
                        bill_totals: None,
                        bill_status: None,
                        open_mismatches: 1,
                        detail: None,
                    },
                    BooksDaySummary {
                        day: "2026-11-29".to_owned(),
                        mch_id: "1900000109".to_owned(),
                        status: DayStatus::Unreconciled,
                        store_totals: None,
                        bill_totals: None,
                        bill_status: None,
                        open_mismatches: 0,
                        detail: None,
                    },
                ],
            },
        }
    }

    #[test]
    fn text_from_the_proxy_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let html = day_html(Lang::Zh, &detail());
        assert!(html.contains("PC&lt;1&gt;") && !html.contains("PC<1>"));
        assert!(html.contains("顾客退了现金 &lt;b&gt;"));
    }

    #[test]
    fn a_day_shows_both_sides_the_differences_and_their_actions() {
        let html = day_html(Lang::Zh, &detail());
        // The chips: the chosen day active, with its open count.
        assert!(
            html.contains(r#"class="day-chip status-reconciled open active" aria-pressed="true""#)
        );
        assert!(html.contains(r#"class="day-chip status-unreconciled" aria-pressed="false""#));
        // The totals side by side, the differing rows marked.
        assert!(html.contains(
            r#"<tr class="differs" data-testid="totals-paid"><th>收款金额</th><td class="num">¥24.60</td><td class="num">¥36.90</td></tr>"#
        ));
        assert!(html.contains(r#"<tr class="" data-testid="totals-refunds">"#));
        // The open mismatch in plain words, with its three actions; no refund without a
        // payment in the store.
        assert!(html.contains("微信已收款，本店记录未收款"));
        assert!(html.contains(r#"data-action="query" data-id="bm_1""#));
        assert!(html.contains(r#"data-action="explain" data-id="bm_1""#));
        assert!(!html.contains(r#"data-action="refund""#));
        // The explained one: who and the note, no actions.
        assert!(html.contains("处理人: 店长"));
        assert!(!html.contains(r#"data-id="bm_2""#));
        // The row not from Paycode, listed apart without any button.
        let apart = &html[html.find("not-from-paycode").unwrap()..];
        assert!(apart.contains("WEB1") && !apart.contains("<button"));
    }

    #[test]
    fn a_day_without_a_report_says_so() {
        let mut day = detail();
        day.accounts[0].report = None;
        day.accounts[0].status = DayStatus::WaitingForBill;
        day.accounts[0].detail = Some("Bill Creating".to_owned());
        let html = day_html(Lang::En, &day);
        assert!(html.contains("Waiting for the bill"));
        assert!(html.contains("Bill Creating"));
        assert!(html.contains("No reconciliation for this day yet"));
    }

    #[test]
    fn the_attention_list_has_both_actions_per_payment() {
        assert!(attention_html(Lang::Zh, &[], |time| time.to_owned()).contains("没有待处理的收款"));
        let payment: Payment = serde_json::from_str(
            r#"{"id":"pay_1","attempt_id":"3f2b8c1e-9d4a-4c7e-8b1f-2a6d5e9c0b7a","terminal_id":"t_2","out_trade_no":"PC1","amount_fen":1230,"auth_code_last4":"1234","description":"d","state":"needs_attention","version":4,"failure":null,"transaction_id":null,"cancel_requested":false,"money_returned":false,"deadline_in_ms":null,"refunded_fen":0,"refunds":[],"created_at":"2026-11-30T04:00:00Z","updated_at":"2026-11-30T04:00:00Z"}"#,
        )
        .unwrap();
        let html = attention_html(Lang::Zh, &[payment], |_| "12:00:00".to_owned());
        assert!(html.contains(r#"data-testid="attention-row" data-payment-id="pay_1""#));
        assert!(html.contains(r#"data-action="settle-query" data-id="pay_1""#));
        assert!(html.contains(r#"data-action="settle" data-id="pay_1""#));
        assert!(html.contains("¥12.30") && html.contains("••••1234") && html.contains("t_2"));
    }
}
