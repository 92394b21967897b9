//! Every word on screen, in Simplified Chinese (the default) and English.
//!
//! The Chinese payment-screen copy follows `docs/cashier-screens.md` §6.2. Texts are keyed by
//! [`Text`], so a missing translation is a compile error, and formatted messages are small
//! functions that take the values they show.

use paycode_api::{Failure, Fen, PaymentState, RefundState};

use crate::model::amount::AmountProblem;
use crate::model::camera::CameraFailure;
use crate::model::checkout::Notice;

/// The page language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Reads a stored tag; anything unknown is Chinese.
    pub fn from_tag(tag: &str) -> Lang {
        if tag == "en" { Lang::En } else { Lang::Zh }
    }
}

/// Declares [`Text`] and its copy from one table of `Key => ("中文", "English")` entries, so a
/// key without a translation cannot exist.
macro_rules! texts {
    ($($key:ident => ($zh:expr, $en:expr $(,)?),)*) => {
        /// A fixed piece of text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(missing_docs)] // Each variant is named after its text; the table is the doc.
        pub enum Text {
            $($key,)*
        }

        impl Text {
            /// Every key, in table order (the completeness test walks them).
            #[cfg(test)]
            const ALL: &[Text] = &[$(Text::$key,)*];

            /// The (Chinese, English) pair.
            fn pair(self) -> (&'static str, &'static str) {
                match self {
                    $(Text::$key => ($zh, $en),)*
                }
            }
        }
    };
}

texts! {
    AppTitle => ("微信收款", "WeChat Pay checkout"),
    NavCheckout => ("收款", "Checkout"),
    NavPayments => ("今日收款", "Today's payments"),
    NavSettings => ("设置", "Settings"),
    AmountDue => ("应收金额", "Amount due"),
    Charge => ("收款", "Charge"),
    Clear => ("清空", "Clear"),
    Backspace => ("删除", "Delete"),
    ConfirmLargeTitle => ("请确认大额收款", "Please confirm a large amount"),
    ConfirmLargeBody => (
        "金额较大，请与顾客核对",
        "This is a large amount; check it with the customer",
    ),
    ConfirmAmount => ("确认金额", "Confirm amount"),
    EditAmount => ("修改金额", "Change amount"),
    ShowCode => ("请出示付款码", "Please show your payment code"),
    ShowCodeHint => (
        "请将微信付款码对准扫码枪",
        "Hold the WeChat payment code to the scanner",
    ),
    ManualEntry => ("手动输入付款码", "Type the payment code"),
    ManualEntryHint => (
        "点击可查看付款码数字（18 位）",
        "Tap the code on the phone to see its 18 digits",
    ),
    ManualSubmit => ("确认付款码", "Use this code"),
    CameraOpenLabel => ("摄像头扫码", "Scan with the camera"),
    CameraClose => ("关闭摄像头", "Close the camera"),
    BackToAmount => ("返回修改金额", "Back to the amount"),
    Submitting => ("正在收款…", "Charging…"),
    Reconnecting => (
        "正在连接收款服务，请勿重复收款…",
        "Reconnecting to the payment service; do not charge again…",
    ),
    WaitingForCustomer => (
        "用户支付中，请提示顾客在手机上输入支付密码",
        "The customer is paying: ask them to enter their payment password on the phone",
    ),
    SecondsLeft => ("剩余", "Time left"),
    Confirming => (
        "网络异常，正在确认支付结果…",
        "Network problem: confirming the payment result…",
    ),
    Cancelling => ("正在撤销…", "Cancelling…"),
    Cancelled => (
        "已取消收款（如已扣款将原路退回）",
        "Payment cancelled (any money taken will be returned)",
    ),
    CancelledMoneyReturned => (
        "已撤销：顾客已付款项将原路退回",
        "Cancelled: the money the customer paid will be returned",
    ),
    NeedsAttention => (
        "支付结果未知，请勿重复收款",
        "Payment result unknown: do not charge again",
    ),
    NeedsAttentionDetail => (
        "请查看顾客手机或联系管理员，系统会继续核对结果",
        "Check the customer's phone or call a manager; the result is still being checked",
    ),
    Paid => ("收款成功", "Payment received"),
    Failed => ("收款失败", "Payment failed"),
    CancelPayment => ("取消收款", "Cancel payment"),
    CancelConfirmTitle => ("确定取消这笔收款？", "Cancel this payment?"),
    CancelConfirmBody => (
        "如顾客已付款，款项将原路退回",
        "If the customer has already paid, the money is returned",
    ),
    CancelConfirmYes => ("确定取消", "Yes, cancel"),
    KeepWaiting => ("继续等待", "Keep waiting"),
    Rescan => ("重新扫码", "Scan again"),
    ChangeAmount => ("修改金额", "Change amount"),
    NextSale => ("下一单", "Next sale"),
    PrintReceipt => ("打印小票", "Print receipt"),
    AutoNextIn => ("秒后开始下一单", "s until the next sale"),
    RefreshResult => ("刷新结果", "Refresh result"),
    LeaveAttention => ("稍后处理", "Deal with it later"),
    LeaveAttentionBody => (
        "这笔收款结果未知，请勿让顾客重复付款。可在“今日收款”中查看结果。",
        "The result of this payment is unknown: do not let the customer pay again. Its result appears under Today's payments.",
    ),
    LeaveAttentionYes => ("我知道了，返回收款", "Understood, back to checkout"),
    CodeLabel => ("付款码", "Payment code"),
    TransactionId => ("微信支付单号", "WeChat transaction"),
    OrderNumber => ("商户单号", "Order number"),
    Time => ("时间", "Time"),
    Amount => ("金额", "Amount"),
    State => ("状态", "State"),
    Receipt => ("收款小票", "Receipt"),
    ReceiptThanks => ("谢谢惠顾", "Thank you"),
    Terminal => ("收银台", "Terminal"),
    Store => ("门店", "Store"),
    TodayPayments => ("今日收款", "Today's payments"),
    AllTerminals => ("全部收银台", "All terminals"),
    ThisTerminal => ("本收银台", "This terminal"),
    PreviousDay => ("前一天", "Previous day"),
    NextDay => ("后一天", "Next day"),
    Reload => ("刷新", "Reload"),
    PaidCount => ("成功笔数", "Paid"),
    PaidTotal => ("收款总额", "Received"),
    RefundedTotal => ("退款总额", "Refunded"),
    NetTotal => ("净收入", "Net"),
    OpenCount => ("处理中", "Open"),
    NoPayments => ("这一天还没有收款", "No payments on this day"),
    Refund => ("退款", "Refund"),
    Refunded => ("已退", "Refunded"),
    RefundTitle => ("退款给顾客", "Refund to the customer"),
    RefundAmount => ("退款金额（元）", "Refund amount (yuan)"),
    RefundFull => ("全额", "Full amount"),
    Refundable => ("可退", "Refundable"),
    RefundReason => ("退款原因（可选）", "Reason (optional)"),
    RefundConfirm => ("确认退款", "Confirm refund"),
    RefundSubmit => ("退款", "Refund"),
    RefundDone => ("退款已受理", "Refund accepted"),
    RefundProcessing => ("退款处理中", "Refund in progress"),
    RefundFailedTitle => ("退款失败", "Refund failed"),
    ApprovalTitle => ("需要店长授权", "A manager's approval is needed"),
    ApprovalHelp => (
        "请店长输入姓名和 PIN 授权这笔退款",
        "Ask a manager to enter their name and PIN to approve this refund",
    ),
    ManagerName => ("店长姓名", "Manager"),
    ManagerPin => ("PIN", "PIN"),
    ApprovalSubmit => ("授权", "Approve"),
    ApprovalChecking => ("正在核对 PIN", "Checking the PIN"),
    PinIncorrect => ("店长姓名或 PIN 错误", "Wrong manager name or PIN"),
    PinLocked => (
        "PIN 输错次数过多，已锁定，请稍后再试",
        "Too many wrong PINs: the PIN is locked for a while",
    ),
    PinTooMany => ("尝试太频繁，请稍后再试", "Too many attempts: wait a minute"),
    ManagerWrongStore => ("该店长不能为本店授权", "This manager approves for another store"),
    PinMalformed => ("PIN 为 4 到 12 位数字", "A PIN has 4 to 12 digits"),
    Close => ("关闭", "Close"),
    Back => ("返回", "Back"),
    Settings => ("设置", "Settings"),
    Pairing => ("收银台配对", "Terminal pairing"),
    PairingHelp => (
        "请输入管理员用 paycode-proxy terminal add 生成的令牌（pct_ 开头）",
        "Enter the token an administrator made with paycode-proxy terminal add (starts with pct_)",
    ),
    PairingCodeRefused => (
        "配对二维码无效或已过期（只能用一次，几分钟内有效），请管理员用 paycode-proxy terminal pair 重新生成",
        "That pairing QR code was refused: it works once, for a few minutes. Ask for a new one (paycode-proxy terminal pair)",
    ),
    ScanToPair => ("扫码配对", "Scan the pairing QR code"),
    NotAPairingCode => (
        "这不是配对二维码，请扫描 paycode-proxy terminal add 或 terminal pair 打印的二维码",
        "That is not a pairing QR code: scan the one paycode-proxy terminal add or terminal pair prints",
    ),
    TokenLabel => ("终端令牌", "Terminal token"),
    SaveToken => ("验证并保存", "Check and save"),
    TokenSaved => ("已配对", "Paired"),
    TokenInvalid => (
        "令牌无效，请核对后重试",
        "That token was refused; check it and try again",
    ),
    Language => ("语言", "Language"),
    Sound => ("提示音", "Sound"),
    SoundOn => ("开", "On"),
    SoundOff => ("关", "Off"),
    Offline => (
        "无法连接收款服务，正在重试… 进行中的收款不会丢失",
        "Cannot reach the payment service; retrying… Payments in progress are not lost",
    ),
    ImeHint => (
        "检测到中文输入法，请切换为英文 (Shift)",
        "An input method is active: switch it to English (Shift)",
    ),
    Loading => ("加载中…", "Loading…"),
    Retry => ("重试", "Retry"),
    NavBooks => ("对账", "Books"),
    NavAttention => ("待处理", "Attention"),
    BooksTitle => ("对账", "Reconciliation"),
    StoreSide => ("本店记录", "Our records"),
    BillSide => ("微信账单", "WeChat's bill"),
    PaymentsCount => ("收款笔数", "Payments"),
    PaymentsSum => ("收款金额", "Paid"),
    RefundsCount => ("退款笔数", "Refunds"),
    RefundsSum => ("退款金额", "Refunded"),
    BillSummaryRow => ("账单汇总行（含非本系统交易）", "Bill summary row (all rows)"),
    Matched => ("已匹配", "Matched"),
    Differences => ("差异", "Differences"),
    NoDifferences => ("两边一致，没有差异", "Both sides agree: no differences"),
    Marks => ("账单证明的事实", "Facts the bill proves"),
    NotFromPaycode => ("非本系统交易（仅列出，无需处理）", "Not from Paycode (listed only)"),
    DownloadCsv => ("下载 CSV", "Download CSV"),
    StoreAmount => ("本店金额", "Our amount"),
    BillAmount => ("账单金额", "Bill amount"),
    CarriedFrom => ("结转自", "Carried over from"),
    SettledBy => ("处理人", "By"),
    NotReconciledYet => (
        "这一天还没有对账结果（微信账单约在次日 10 点后可下载）",
        "No reconciliation for this day yet (WeChat's bill is ready after about 10:00 the next day)",
    ),
    ExplainTitle => ("标记已核实", "Mark explained"),
    ExplainNote => ("说明（必填，最多 200 字）", "Note (required, at most 200 characters)"),
    AttentionTitle => ("结果未知的收款（全部收银台）", "Payments needing attention (all terminals)"),
    NoAttention => ("没有待处理的收款", "No payment needs attention"),
    Settle => ("结算", "Settle"),
    QueryNow => ("立即查询", "Query now"),
    ApprovalBooks => (
        "查看对账和待处理收款需要店长输入 PIN 码",
        "The books and the needs-attention list need a manager's PIN",
    ),
    OpenBooks => ("去对账", "Open the books"),
    NothingToRefund => (
        "本店记录这笔收款未收款，无可退金额：请先立即查询",
        "The shop has this payment as not paid, so there is nothing to refund: query now first",
    ),
    MerchantNumber => ("商户号", "Merchant"),
    BackOfficeFailed => (
        "后台页面加载失败，请检查网络后重试",
        "The back-office page did not load: check the network and try again",
    ),
    TradeType => ("交易类型", "Trade type"),
    Why => ("原因", "Why"),
    Missing => ("无", "none"),
    ApprovalAttention => (
        "查看全部收银台的待处理收款需要店长输入 PIN 码",
        "Seeing every terminal's payments needs a manager's PIN",
    ),
    ApprovalSettle => (
        "结算这笔收款需要店长输入 PIN 码",
        "Settling this payment needs a manager's PIN",
    ),
    SettleReason => ("结算原因（必填）", "Reason (required)"),
    SettleReasonRequired => ("请写明结算原因", "Write why the payment is settled"),
}

/// The text of `key` in `lang`.
pub fn text(lang: Lang, key: Text) -> &'static str {
    let (zh, en) = key.pair();
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// The main line for a payment state.
pub fn state_headline(lang: Lang, state: PaymentState, money_returned: bool) -> &'static str {
    let key = match state {
        PaymentState::Submitting => Text::Submitting,
        PaymentState::WaitingForCustomer => Text::WaitingForCustomer,
        PaymentState::Confirming => Text::Confirming,
        PaymentState::Paid => Text::Paid,
        PaymentState::Failed => Text::Failed,
        PaymentState::Cancelling => Text::Cancelling,
        PaymentState::Cancelled if money_returned => Text::CancelledMoneyReturned,
        PaymentState::Cancelled => Text::Cancelled,
        PaymentState::NeedsAttention => Text::NeedsAttention,
    };
    text(lang, key)
}

/// A short label for a state in the payments list.
pub fn state_label(lang: Lang, state: PaymentState) -> &'static str {
    let (zh, en) = match state {
        PaymentState::Submitting => ("收款中", "Submitting"),
        PaymentState::WaitingForCustomer => ("等待输密码", "Awaiting password"),
        PaymentState::Confirming => ("确认中", "Confirming"),
        PaymentState::Paid => ("已收款", "Paid"),
        PaymentState::Failed => ("失败", "Failed"),
        PaymentState::Cancelling => ("撤销中", "Cancelling"),
        PaymentState::Cancelled => ("已取消", "Cancelled"),
        PaymentState::NeedsAttention => ("结果未知", "Needs attention"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// A label for a refund state.
pub fn refund_state_label(lang: Lang, state: RefundState) -> &'static str {
    let (zh, en) = match state {
        RefundState::Queued => ("排队中（一分钟后提交）", "Queued (sent after one minute)"),
        RefundState::Submitting => ("提交中", "Submitting"),
        RefundState::Processing => ("处理中", "Processing"),
        RefundState::Succeeded => ("已退款", "Refunded"),
        RefundState::Failed => ("退款失败", "Failed"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// What a failed payment means for the cashier: the copy of its code in `lang` (the table
/// the proxy's message comes from, `paycode_api::codes`), else the proxy's own message.
pub fn failure_text(lang: Lang, failure: &Failure) -> String {
    let detailed = failure.code.message_has_detail() && !failure.message.is_empty();
    match (failure.code.copy(), lang) {
        (Some(_), Lang::Zh) if detailed => failure.message.clone(),
        (Some(copy), Lang::Zh) => copy.zh.to_owned(),
        (Some(copy), Lang::En) => copy.en.to_owned(),
        (None, _) if !failure.message.is_empty() => failure.message.clone(),
        (None, Lang::Zh) => format!("收款失败（{}）", failure.code),
        (None, Lang::En) => format!("Payment failed ({})", failure.code),
    }
}

/// The camera reader's own copy, apart from [`Text`]: the camera bundle
/// (`src/bin/paycode-camera`) shows it, and the page only the first state and 重试, so the
/// rest stays out of the page's wasm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraText {
    /// The camera is being opened.
    Starting,
    /// The camera runs: what the cashier asks of the customer.
    Hint,
    /// The torch button, light off.
    TorchOn,
    /// The torch button, light on.
    TorchOff,
    /// The button after a failure a retry can mend.
    Retry,
}

impl CameraText {
    /// Every camera text.
    pub const ALL: [CameraText; 5] = [
        CameraText::Starting,
        CameraText::Hint,
        CameraText::TorchOn,
        CameraText::TorchOff,
        CameraText::Retry,
    ];
}

/// The camera reader's text `key` in `lang`.
pub fn camera_text(lang: Lang, key: CameraText) -> &'static str {
    let (zh, en) = match key {
        CameraText::Starting => ("正在打开摄像头…", "Opening the camera…"),
        CameraText::Hint => (
            "请顾客将付款码对准摄像头",
            "Ask the customer to hold the payment code up to the camera",
        ),
        CameraText::TorchOn => ("打开补光灯", "Light on"),
        CameraText::TorchOff => ("关闭补光灯", "Light off"),
        CameraText::Retry => ("重试", "Try again"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// Why the camera is not running, and the way on (`docs/cashier-screens.md` §2).
pub fn camera_failure_text(lang: Lang, failure: CameraFailure) -> &'static str {
    let (zh, en) = match failure {
        CameraFailure::Denied => (
            "摄像头权限被拒绝：请在浏览器的网站设置中允许使用摄像头后重试，或使用扫码枪、手动输入",
            "Camera permission was refused: allow the camera in the browser's site settings and try again, or use the scanner or type the code",
        ),
        CameraFailure::NoCamera => (
            "未找到摄像头：请使用扫码枪或手动输入付款码",
            "No camera was found: use the scanner or type the payment code",
        ),
        CameraFailure::InUse => (
            "摄像头正被其他应用使用：请关闭该应用后重试，或使用扫码枪",
            "The camera is in use by another app: close it and try again, or use the scanner",
        ),
        CameraFailure::Insecure => (
            "摄像头需要安全连接：请在平板上打开收款服务的 https:// 地址并信任其证书（管理员用 paycode-proxy tls init 生成）",
            "The camera needs a secure connection: open the payment service's https:// address on this tablet and trust its certificate (an administrator makes it with paycode-proxy tls init)",
        ),
        CameraFailure::DecoderFailed => (
            "扫码组件加载失败：请检查网络后重试，或使用扫码枪",
            "The code reader did not load: check the network and try again, or use the scanner",
        ),
        CameraFailure::Other => (
            "无法打开摄像头：请重试，或使用扫码枪、手动输入",
            "The camera could not be opened: try again, or use the scanner or type the code",
        ),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// The text of a notice.
pub fn notice_text(lang: Lang, notice: &Notice) -> String {
    let fixed = |zh: &str, en: &str| match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    };
    match notice {
        Notice::AmountRefused(AmountProblem::Empty) => fixed("请输入金额", "Enter an amount"),
        Notice::AmountRefused(AmountProblem::Zero) => {
            fixed("金额必须大于 ¥0.00", "The amount must be more than ¥0.00")
        }
        Notice::AmountRefused(AmountProblem::AboveMaximum(max)) => match lang {
            Lang::Zh => format!("单笔金额不能超过 {max}"),
            Lang::En => format!("One payment cannot exceed {max}"),
        },
        Notice::ScanWhileEnteringAmount => fixed(
            "检测到扫码，请先确认金额",
            "A scan was detected: confirm the amount first",
        ),
        Notice::ScanAgain => fixed(
            "扫码未完成，请重新扫码",
            "The scan did not complete: scan again",
        ),
        Notice::ManualLikeEntry => fixed(
            "请使用扫码枪或在手动输入框输入",
            "Use the scanner, or type the code in the manual-entry field",
        ),
        Notice::UnrecognisedCode => fixed(
            "无法识别的条码，请扫描顾客的微信付款码",
            "That barcode is not a payment code: scan the customer's WeChat payment code",
        ),
        Notice::AlipayCode => fixed(
            "这是支付宝付款码，请顾客出示微信付款码",
            "This is an Alipay code: ask for the WeChat payment code",
        ),
        Notice::NotWechatCode => fixed(
            "付款码应为 18 位数字，以 10–15 开头",
            "A payment code has 18 digits starting with 10–15",
        ),
        Notice::ScanWhileBusy => fixed(
            "正在处理上一笔，请勿重复扫码",
            "The previous payment is still in progress: do not scan again",
        ),
        Notice::ImeDetected => text(lang, Text::ImeHint).to_owned(),
        Notice::Rejected(message) if !message.is_empty() => message.clone(),
        Notice::Rejected(_) => fixed("收款请求被拒绝", "The payment was refused"),
        Notice::CancelFailed => fixed(
            "取消请求未送达，请重试",
            "The cancel request did not get through; try again",
        ),
    }
}

/// "收款成功 ¥12.30".
pub fn paid_headline(lang: Lang, amount: Fen) -> String {
    format!("{} {amount}", text(lang, Text::Paid))
}

/// A payment code as the cashier sees it: `••••5678`.
pub fn masked_code(last4: &str) -> String {
    format!("••••{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::FailureCode;

    #[test]
    fn every_camera_text_exists_in_both_languages() {
        for key in CameraText::ALL {
            let zh = camera_text(Lang::Zh, key);
            let en = camera_text(Lang::En, key);
            assert!(!zh.is_empty() && !en.is_empty() && zh != en, "{key:?}");
        }
    }

    #[test]
    fn every_text_exists_in_both_languages() {
        for &key in Text::ALL {
            let zh = text(Lang::Zh, key);
            let en = text(Lang::En, key);
            assert!(!zh.is_empty() && !en.is_empty(), "{key:?}");
            assert!(
                en.is_ascii() || en.contains('…') || en.contains('’') || en.contains('–'),
                "{key:?}: {en}"
            );
        }
    }

    #[test]
    fn the_payment_screen_copy_is_the_one_in_cashier_ux() {
        assert_eq!(text(Lang::Zh, Text::ShowCode), "请出示付款码");
        assert_eq!(
            state_headline(Lang::Zh, PaymentState::WaitingForCustomer, false),
            "用户支付中，请提示顾客在手机上输入支付密码"
        );
        assert_eq!(
            state_headline(Lang::Zh, PaymentState::Confirming, false),
            "网络异常，正在确认支付结果…"
        );
        assert_eq!(
            state_headline(Lang::Zh, PaymentState::Cancelling, false),
            "正在撤销…"
        );
        assert_eq!(
            state_headline(Lang::Zh, PaymentState::Cancelled, false),
            "已取消收款（如已扣款将原路退回）"
        );
        assert!(
            state_headline(Lang::Zh, PaymentState::NeedsAttention, false).contains("请勿重复收款")
        );
        assert_eq!(paid_headline(Lang::Zh, Fen(1230)), "收款成功 ¥12.30");
        assert_eq!(paid_headline(Lang::En, Fen(5)), "Payment received ¥0.05");
        assert_eq!(masked_code("5678"), "••••5678");
        for state in PaymentState::ALL {
            assert!(!state_label(Lang::Zh, state).is_empty());
            assert!(!state_headline(Lang::En, state, true).is_empty());
        }
    }

    #[test]
    fn failure_text_is_the_shared_copy_of_the_code() {
        for code in FailureCode::KNOWN {
            let copy = code.copy().unwrap();
            let failure = Failure {
                code: code.clone(),
                message: String::new(),
            };
            assert_eq!(failure_text(Lang::Zh, &failure), copy.zh, "{code}");
            assert_eq!(failure_text(Lang::En, &failure), copy.en, "{code}");
        }
    }

    #[test]
    fn failures_are_actionable() {
        let failure = |code: &str, message: &str| Failure {
            code: FailureCode::parse(code),
            message: message.to_owned(),
        };
        assert_eq!(
            failure_text(Lang::Zh, &failure("AUTHCODEEXPIRE", "x")),
            "付款码已过期，请顾客刷新付款码后重新扫码"
        );
        assert_eq!(
            failure_text(Lang::Zh, &failure("NOTENOUGH", "余额不足")),
            "余额不足，请顾客更换银行卡或使用其他付款方式"
        );
        assert!(
            failure_text(Lang::En, &failure("NOTENOUGH", "余额不足")).starts_with("Insufficient")
        );
        assert_eq!(
            failure_text(Lang::Zh, &failure("WECHAT_REJECTED", "微信支付拒绝了请求")),
            "微信支付拒绝了请求"
        );
        assert_eq!(
            failure_text(Lang::Zh, &failure("NEW", "")),
            "收款失败（NEW）"
        );
    }

    #[test]
    fn notices_in_both_languages() {
        let notices = [
            Notice::AmountRefused(AmountProblem::Empty),
            Notice::AmountRefused(AmountProblem::Zero),
            Notice::AmountRefused(AmountProblem::AboveMaximum(Fen(5_000_000))),
            Notice::ScanWhileEnteringAmount,
            Notice::ManualLikeEntry,
            Notice::UnrecognisedCode,
            Notice::AlipayCode,
            Notice::NotWechatCode,
            Notice::ScanWhileBusy,
            Notice::ImeDetected,
            Notice::Rejected(String::new()),
            Notice::CancelFailed,
        ];
        for notice in &notices {
            assert!(!notice_text(Lang::Zh, notice).is_empty());
            assert!(!notice_text(Lang::En, notice).is_empty());
        }
        assert_eq!(
            notice_text(Lang::Zh, &Notice::ScanWhileBusy),
            "正在处理上一笔，请勿重复扫码"
        );
        assert_eq!(
            notice_text(
                Lang::Zh,
                &Notice::AmountRefused(AmountProblem::AboveMaximum(Fen(5_000_000)))
            ),
            "单笔金额不能超过 ¥50000.00"
        );
        assert_eq!(Lang::from_tag("en"), Lang::En);
        assert_eq!(Lang::from_tag("fr"), Lang::Zh);
        assert_eq!(Lang::default().tag(), "zh-CN");
    }
}
