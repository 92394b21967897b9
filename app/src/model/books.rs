//! The back office's words and decisions (the 对账 page, the needs-attention list, the
//! manager's PIN), with no I/O: every class, status and failure in plain words, in both
//! languages (docs/books.md §4 names the classes; the product never says 长款/短款).

use paycode_api::books::{
    BillStatus, BooksStatus, DayStatus, MismatchClass, MismatchEntry, MismatchStatus, NoteError,
    OwnerAction,
};
use paycode_api::{SettleOutcome, TerminalInfo};

use crate::model::i18n::Lang;
use crate::model::remote::ApiFailure;

fn pick(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// Whether the terminal is a back-office one (manager or owner): only those show the 对账
/// page, the needs-attention list and the banner. The proxy enforces the same rule
/// (403 `ROLE_REQUIRED`); this only keeps the buttons off a cashier's screen.
pub fn is_back_office(terminal: &TerminalInfo) -> bool {
    terminal.role.is_back_office()
}

/// A mismatch class in plain words.
pub fn class_label(lang: Lang, class: MismatchClass) -> &'static str {
    match class {
        MismatchClass::PaidAtWechatNotHere => pick(
            lang,
            "微信已收款，本店记录未收款",
            "Paid at WeChat but not paid here",
        ),
        MismatchClass::PaidHereNotAtWechat => pick(
            lang,
            "本店记录已收款，微信账单没有这笔钱",
            "Paid here but not at WeChat",
        ),
        MismatchClass::AmountsDiffer => pick(lang, "两边金额不一致", "The amounts differ"),
        MismatchClass::RefundHereNotInBill => pick(
            lang,
            "本店有这笔退款，微信账单没有",
            "A refund here is not in the bill",
        ),
        MismatchClass::RefundInBillNotHere => pick(
            lang,
            "微信账单有这笔退款，本店没有",
            "A refund in the bill is not here",
        ),
    }
}

/// What a class means for the shop and what to do first.
pub fn class_hint(lang: Lang, class: MismatchClass) -> &'static str {
    match class {
        MismatchClass::PaidAtWechatNotHere => pick(
            lang,
            "顾客可能已被扣款。请先立即查询；若确认扣款而顾客未得到商品，请退款。",
            "The customer may have been charged. Query now first; if they were charged and did not get the goods, refund.",
        ),
        MismatchClass::PaidHereNotAtWechat => pick(
            lang,
            "钱可能没有到账。请立即查询，并核对收银记录。",
            "The money may never have arrived. Query now and check the till.",
        ),
        MismatchClass::AmountsDiffer => pick(
            lang,
            "请立即查询，以微信的核实结果为准。",
            "Query now: WeChat's verified answer decides.",
        ),
        MismatchClass::RefundHereNotInBill => pick(
            lang,
            "退款可能尚未完成。请立即查询退款状态。",
            "The refund may not have completed. Query its status now.",
        ),
        MismatchClass::RefundInBillNotHere => pick(
            lang,
            "可能是在商户平台上直接退的款。请立即查询，或写明原因后标记已核实。",
            "Perhaps refunded in the merchant platform. Query now, or mark it explained with a note.",
        ),
    }
}

/// A mismatch's status.
pub fn status_label(lang: Lang, status: MismatchStatus) -> &'static str {
    match status {
        MismatchStatus::Open => pick(lang, "待处理", "Open"),
        MismatchStatus::ResolvedByQuery => pick(lang, "已查询核实", "Resolved by query"),
        MismatchStatus::Explained => pick(lang, "已标记核实", "Explained"),
        MismatchStatus::Refunded => pick(lang, "已退款", "Refunded"),
        MismatchStatus::Cleared => pick(lang, "重新对账后已消除", "Gone in a later run"),
    }
}

/// A day's status.
pub fn day_status_label(lang: Lang, status: DayStatus) -> &'static str {
    match status {
        DayStatus::Unreconciled => pick(lang, "未对账", "Not reconciled"),
        DayStatus::WaitingForBill => pick(lang, "等待微信账单", "Waiting for the bill"),
        DayStatus::Reconciled => pick(lang, "已对账", "Reconciled"),
        DayStatus::Failed => pick(lang, "对账失败，将重试", "Run failed; retried"),
    }
}

/// What a day without a received bill means; `None` when the bill was read.
pub fn bill_status_note(lang: Lang, status: BillStatus) -> Option<&'static str> {
    match status {
        BillStatus::Received => None,
        BillStatus::NoBillNoTrades => Some(pick(
            lang,
            "微信当天没有账单，本店当天也没有交易",
            "WeChat has no bill for the day, and the shop had no trades",
        )),
        BillStatus::NoBillButStoreHasTrades => Some(pick(
            lang,
            "微信当天没有账单，但本店当天有交易：请联系微信支付核实",
            "WeChat has no bill for the day, but the shop had trades: check with WeChat Pay",
        )),
    }
}

/// An action's button label.
pub fn action_label(lang: Lang, action: OwnerAction) -> &'static str {
    match action {
        OwnerAction::QueryNow => pick(lang, "立即查询", "Query now"),
        OwnerAction::Refund => pick(lang, "退款", "Refund"),
        OwnerAction::MarkExplained => pick(lang, "标记已核实", "Mark explained"),
    }
}

/// The mark a `REVOKED` row proves: the money was taken and returned.
pub fn mark_label(lang: Lang, already_recorded: bool) -> &'static str {
    match already_recorded {
        true => pick(
            lang,
            "款项曾被扣除并已退回（记录已注明）",
            "Money taken and returned (already on the record)",
        ),
        false => pick(
            lang,
            "款项曾被扣除并已退回（将写入记录）",
            "Money taken and returned (to be written on the record)",
        ),
    }
}

/// Why a note was refused, before sending it.
pub fn note_problem(lang: Lang, problem: NoteError) -> &'static str {
    match problem {
        NoteError::Empty => pick(
            lang,
            "请写明为什么这笔差异没有问题",
            "Write why this difference is not a problem",
        ),
        NoteError::TooLong => pick(lang, "说明最多 200 个字", "At most 200 characters"),
        NoteError::ControlCharacter => {
            pick(lang, "说明不能换行", "The note cannot contain line breaks")
        }
    }
}

/// The banner on a back-office terminal, if it shows.
pub fn banner_text(lang: Lang, status: &BooksStatus) -> Option<String> {
    if !status.needs_attention() {
        return None;
    }
    let days = status.unreconciled_days.len();
    let open = status.open_mismatches;
    Some(match (lang, days, open) {
        (Lang::Zh, 0, open) => format!("对账有 {open} 笔差异待处理"),
        (Lang::Zh, days, 0) => format!("有 {days} 天尚未对账"),
        (Lang::Zh, days, open) => format!("有 {days} 天尚未对账，{open} 笔差异待处理"),
        (Lang::En, 0, open) => format!("The books have {open} open difference(s)"),
        (Lang::En, days, 0) => format!("{days} day(s) not reconciled yet"),
        (Lang::En, days, open) => {
            format!("{days} day(s) not reconciled yet; {open} open difference(s)")
        }
    })
}

/// The file name of a day's CSV download.
pub fn csv_file_name(day: &str) -> String {
    format!("paycode-books-{day}.csv")
}

/// What to tell the manager when a back-office call fails.
pub fn failure_text(lang: Lang, failure: &ApiFailure) -> String {
    match failure {
        ApiFailure::Network => pick(
            lang,
            "无法连接收款服务，请检查网络后重试",
            "Cannot reach the payment service: check the network and try again",
        )
        .to_owned(),
        ApiFailure::Http {
            body: Some(body), ..
        } if !body.message.is_empty() => body.message.clone(),
        ApiFailure::Http { status, .. } => match lang {
            Lang::Zh => format!("请求失败（HTTP {status}），请重试"),
            Lang::En => format!("The request failed (HTTP {status}); try again"),
        },
    }
}

/// What a settlement's fresh query of WeChat did.
pub fn settle_outcome_text(lang: Lang, outcome: SettleOutcome) -> &'static str {
    match outcome {
        SettleOutcome::Changed => pick(
            lang,
            "已按微信核实的结果结算",
            "Settled to WeChat's verified answer",
        ),
        SettleOutcome::Agrees => pick(
            lang,
            "微信的结果与记录一致，无需更改",
            "WeChat agrees with the record; nothing changed",
        ),
        SettleOutcome::Disagrees => pick(
            lang,
            "微信的结果与已收款记录不符，记录不变：请在对账中处理",
            "WeChat contradicts the paid record, which stays: deal with it in the books",
        ),
        SettleOutcome::InProgress => pick(
            lang,
            "系统仍在处理这笔收款，请稍后再查",
            "The payment is still being worked on; query again shortly",
        ),
    }
}

/// Whether the refund button applies: the class offers it and the store's payment is known.
pub fn can_refund(entry: &MismatchEntry) -> bool {
    entry.payment_id.is_some() && entry.actions.contains(&OwnerAction::Refund)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::books::Mismatch;
    use paycode_api::{ErrorBody, ErrorCode, Role, StoreInfo};

    const CLASSES: [MismatchClass; 5] = [
        MismatchClass::PaidAtWechatNotHere,
        MismatchClass::PaidHereNotAtWechat,
        MismatchClass::AmountsDiffer,
        MismatchClass::RefundHereNotInBill,
        MismatchClass::RefundInBillNotHere,
    ];

    #[test]
    fn every_class_is_in_plain_words_in_both_languages() {
        for class in CLASSES {
            for lang in [Lang::Zh, Lang::En] {
                let label = class_label(lang, class);
                assert!(
                    !label.contains("长款") && !label.contains("短款"),
                    "{label}"
                );
                assert!(!class_hint(lang, class).is_empty());
            }
            assert_ne!(class_label(Lang::Zh, class), class_label(Lang::En, class));
        }
    }

    #[test]
    fn the_banner_shows_only_when_there_is_something_to_do() {
        assert_eq!(banner_text(Lang::Zh, &BooksStatus::default()), None);
        let status = BooksStatus {
            last_day: "2026-11-30".to_owned(),
            unreconciled_days: vec!["2026-11-29".to_owned()],
            open_mismatches: 2,
        };
        assert_eq!(
            banner_text(Lang::Zh, &status).as_deref(),
            Some("有 1 天尚未对账，2 笔差异待处理")
        );
        let open_only = BooksStatus {
            last_day: "2026-11-30".to_owned(),
            unreconciled_days: Vec::new(),
            open_mismatches: 3,
        };
        assert_eq!(
            banner_text(Lang::En, &open_only).as_deref(),
            Some("The books have 3 open difference(s)")
        );
    }

    #[test]
    fn only_manager_and_owner_terminals_are_back_office() {
        let terminal = |role| TerminalInfo {
            id: "t".to_owned(),
            name: "n".to_owned(),
            store: StoreInfo {
                id: "s".to_owned(),
                name: "s".to_owned(),
            },
            role,
        };
        assert!(!is_back_office(&terminal(Role::Cashier)));
        assert!(is_back_office(&terminal(Role::Manager)));
        assert!(is_back_office(&terminal(Role::Owner)));
    }

    #[test]
    fn a_failure_says_why() {
        let refused = |code: &str, message: &str| ApiFailure::Http {
            status: 403,
            body: Some(ErrorBody {
                code: ErrorCode::parse(code),
                message: message.to_owned(),
                field: None,
            }),
        };
        assert_eq!(
            failure_text(Lang::Zh, &refused("ROLE_REQUIRED", "仅限店长终端")),
            "仅限店长终端"
        );
        assert!(failure_text(Lang::En, &ApiFailure::Network).contains("network"));
        let bare = ApiFailure::Http {
            status: 500,
            body: None,
        };
        assert_eq!(
            failure_text(Lang::Zh, &bare),
            "请求失败（HTTP 500），请重试"
        );
    }

    #[test]
    fn refund_needs_the_class_and_a_payment() {
        let class = MismatchClass::PaidAtWechatNotHere;
        let mut entry = MismatchEntry {
            id: "mm_1".to_owned(),
            status: MismatchStatus::Open,
            mismatch: Mismatch {
                class,
                description: class.describe().to_owned(),
                out_trade_no: "PC1".to_owned(),
                out_refund_no: None,
                store_amount: None,
                bill_amount: None,
                store_state: None,
                bill_state: Some("SUCCESS".to_owned()),
                time: "2026-11-30 12:00:00".to_owned(),
                carried_from: None,
                actions: class.actions(),
            },
            payment_id: None,
            actions: class.actions(),
            note: None,
            settled_by: None,
            settled_at: None,
        };
        assert!(
            !can_refund(&entry),
            "no payment in the store: nothing to refund"
        );
        entry.payment_id = Some("pay_1".to_owned());
        assert!(can_refund(&entry));
        entry.actions = Vec::new();
        assert!(!can_refund(&entry), "settled: no action");
        assert_eq!(csv_file_name("2026-11-30"), "paycode-books-2026-11-30.csv");
    }
}
