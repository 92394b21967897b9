//! Refunds from the payments list: what can be refunded, and the refund dialog's steps.
//!
//! The dialog is edit → confirm → send → result. When the proxy answers that the refund needs
//! a manager's approval (`APPROVAL_REQUIRED`, docs/approvals.md), the dialog asks for the
//! manager's name and PIN, gets an approval and sends the same refund again with it. Its
//! `refund_attempt_id` is made once when the dialog opens and reused for every retry of the
//! same refund, so a retried request never refunds twice.

use paycode_api::{
    ApprovalAction, ApprovalRequest, AttemptId, CreateRefund, ErrorCode, Fen, Payment,
    PaymentState, Refund, RefundState,
};

use crate::model::remote::ApiFailure;

/// What is left to refund of a payment: nothing unless it is paid. Every refund that has not
/// failed counts, also those still queued, submitting or processing, as the proxy's cap
/// counts them: offering their money again would only be refused later (409).
pub fn refundable(payment: &Payment) -> Fen {
    if payment.state != PaymentState::Paid {
        return Fen::ZERO;
    }
    let committed = payment
        .refunds
        .iter()
        .filter(|refund| refund.state != RefundState::Failed)
        .fold(Fen::ZERO, |sum, refund| {
            sum.checked_add(refund.amount_fen).unwrap_or(sum)
        })
        // `refunded_fen` (the refunds that succeeded) is part of it, unless the list and
        // the total disagree; the larger never offers too much.
        .max(payment.refunded_fen);
    payment
        .amount_fen
        .checked_sub(committed)
        .unwrap_or(Fen::ZERO)
}

/// Why the typed refund amount is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundProblem {
    /// Not an amount (`12.345`, letters, empty).
    NotAnAmount,
    /// Zero.
    Zero,
    /// More than is left to refund.
    TooMuch(Fen),
}

/// Why a manager's PIN did not give an approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalProblem {
    /// Not 4 to 12 digits (checked before sending).
    Malformed,
    /// Wrong name or PIN (`PIN_INCORRECT`).
    Incorrect,
    /// Locked after repeated wrong PINs (`PIN_LOCKED`).
    Locked,
    /// Too many checks from this terminal (`TOO_MANY_REQUESTS`).
    TooMany,
    /// The manager approves for another store (`MANAGER_WRONG_STORE`).
    WrongStore,
    /// Anything else: the proxy's message, or the code.
    Other(String),
}

impl ApprovalProblem {
    /// What is wrong with a typed manager name and PIN before sending them: a name is
    /// needed, and a PIN is 4 to 12 digits.
    pub fn check(manager: &str, pin: &str) -> Option<ApprovalProblem> {
        let pin = pin.trim();
        let digits = (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit());
        (!digits || manager.trim().is_empty()).then_some(ApprovalProblem::Malformed)
    }

    /// Why `POST /approvals` gave no approval.
    pub fn from_failure(failure: &ApiFailure) -> ApprovalProblem {
        match failure.code() {
            Some(ErrorCode::PinIncorrect) => ApprovalProblem::Incorrect,
            Some(ErrorCode::PinLocked) => ApprovalProblem::Locked,
            Some(ErrorCode::TooManyRequests) => ApprovalProblem::TooMany,
            Some(ErrorCode::ManagerWrongStore) => ApprovalProblem::WrongStore,
            Some(code) => ApprovalProblem::Other(
                failure
                    .message()
                    .map_or_else(|| code.to_string(), str::to_owned),
            ),
            None => ApprovalProblem::Other("NETWORK".to_owned()),
        }
    }
}

/// Where the dialog is.
#[derive(Clone, Debug, PartialEq)]
pub enum RefundStage {
    /// Typing the amount and reason.
    Editing(Option<RefundProblem>),
    /// "确认退款 ¥x.xx？".
    Confirming(Fen),
    /// The request is out.
    Sending(Fen),
    /// The proxy wants a manager's approval: name and PIN, and why the last try failed.
    Approving(Fen, Option<ApprovalProblem>),
    /// The PIN check is out.
    Authorizing(Fen),
    /// The proxy took the refund (it may still be processing).
    Done(Refund),
    /// The proxy refused it, or it could not be sent; the message to show.
    Failed(String),
}

/// The refund dialog for one payment.
#[derive(Clone, Debug, PartialEq)]
pub struct RefundDialog {
    /// The payment.
    pub payment_id: String,
    /// Its amount.
    pub paid: Fen,
    /// What is left to refund.
    pub remaining: Fen,
    /// The amount field (yuan).
    pub amount_text: String,
    /// The reason field.
    pub reason: String,
    /// The manager's name, when an approval is needed.
    pub manager: String,
    /// The manager's PIN, cleared after each try.
    pub pin: String,
    /// The idempotency key of this refund.
    pub refund_attempt_id: AttemptId,
    /// The step.
    pub stage: RefundStage,
}

impl RefundDialog {
    /// Opens the dialog for `payment`, prefilled with the full remaining amount, or `None` if
    /// nothing can be refunded.
    pub fn open(payment: &Payment, refund_attempt_id: AttemptId) -> Option<RefundDialog> {
        let remaining = refundable(payment);
        if remaining == Fen::ZERO {
            return None;
        }
        Some(RefundDialog {
            payment_id: payment.id.clone(),
            paid: payment.amount_fen,
            remaining,
            amount_text: remaining.to_yuan_string(),
            reason: String::new(),
            manager: String::new(),
            pin: String::new(),
            refund_attempt_id,
            stage: RefundStage::Editing(None),
        })
    }

    /// Checks the typed amount.
    pub fn amount(&self) -> Result<Fen, RefundProblem> {
        let amount: Fen = self
            .amount_text
            .trim()
            .parse()
            .map_err(|_| RefundProblem::NotAnAmount)?;
        if amount == Fen::ZERO {
            Err(RefundProblem::Zero)
        } else if amount > self.remaining {
            Err(RefundProblem::TooMuch(self.remaining))
        } else {
            Ok(amount)
        }
    }

    /// "退款": checks the amount and asks for confirmation.
    pub fn submit(&mut self) {
        if !matches!(self.stage, RefundStage::Editing(_)) {
            return;
        }
        self.stage = match self.amount() {
            Ok(amount) => RefundStage::Confirming(amount),
            Err(problem) => RefundStage::Editing(Some(problem)),
        };
    }

    /// Back from the confirmation to editing.
    pub fn edit(&mut self) {
        if matches!(
            self.stage,
            RefundStage::Confirming(_) | RefundStage::Failed(_)
        ) {
            self.stage = RefundStage::Editing(None);
        }
    }

    /// "确认退款": the request to send, if confirming.
    pub fn confirm(&mut self) -> Option<CreateRefund> {
        let RefundStage::Confirming(amount) = self.stage else {
            return None;
        };
        self.stage = RefundStage::Sending(amount);
        Some(self.request(amount))
    }

    /// The refund request for `amount`: always this dialog's `refund_attempt_id`.
    fn request(&self, amount: Fen) -> CreateRefund {
        let reason = self.reason.trim();
        CreateRefund {
            refund_attempt_id: self.refund_attempt_id.clone(),
            amount_fen: amount,
            reason: (!reason.is_empty()).then(|| reason.chars().take(80).collect()),
        }
    }

    /// "授权": the approval request for the typed name and PIN, if asking for one; a PIN
    /// that is not 4 to 12 digits is refused here.
    pub fn approval_request(&mut self) -> Option<ApprovalRequest> {
        let RefundStage::Approving(amount, _) = self.stage else {
            return None;
        };
        if let Some(problem) = ApprovalProblem::check(&self.manager, &self.pin) {
            self.stage = RefundStage::Approving(amount, Some(problem));
            return None;
        }
        let pin = self.pin.trim().to_owned();
        self.stage = RefundStage::Authorizing(amount);
        let reason = self.reason.trim();
        Some(ApprovalRequest {
            manager: self.manager.trim().to_owned(),
            pin,
            action: ApprovalAction::Refund,
            reason: (!reason.is_empty()).then(|| reason.chars().take(200).collect()),
        })
    }

    /// The answer to the approval request (the approval token): with one, the refund to
    /// send again (the same attempt) and the token; otherwise back to the PIN with the problem.
    /// The PIN is cleared either way.
    pub fn authorized(
        &mut self,
        result: Result<String, ApiFailure>,
    ) -> Option<(CreateRefund, String)> {
        let RefundStage::Authorizing(amount) = self.stage else {
            return None;
        };
        self.pin.clear();
        match result {
            Ok(approval) => {
                self.stage = RefundStage::Sending(amount);
                Some((self.request(amount), approval))
            }
            Err(failure) => {
                self.stage =
                    RefundStage::Approving(amount, Some(ApprovalProblem::from_failure(&failure)));
                None
            }
        }
    }

    /// The answer to the request.
    pub fn answered(&mut self, result: Result<Refund, ApiFailure>) {
        let RefundStage::Sending(amount) = self.stage else {
            return;
        };
        self.stage = match result {
            Ok(refund) => RefundStage::Done(refund),
            Err(failure) if failure.code() == Some(&ErrorCode::ApprovalRequired) => {
                RefundStage::Approving(amount, None)
            }
            Err(failure) => {
                RefundStage::Failed(failure.message().map(str::to_owned).unwrap_or_else(|| {
                    match failure.code() {
                        Some(code) => code.to_string(),
                        None => "NETWORK".to_owned(),
                    }
                }))
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paycode_api::{ErrorBody, ErrorCode};

    fn attempt(n: u8) -> AttemptId {
        AttemptId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
    }

    fn paid(amount: u64, refunded: u64) -> Payment {
        Payment {
            id: "pay_9".to_owned(),
            attempt_id: attempt(9),
            terminal_id: "t".to_owned(),
            out_trade_no: "PC9".to_owned(),
            amount_fen: Fen(amount),
            auth_code_last4: "1234".to_owned(),
            description: "d".to_owned(),
            state: PaymentState::Paid,
            version: 3,
            failure: None,
            transaction_id: Some("4200".to_owned()),
            cancel_requested: false,
            money_returned: false,
            deadline_in_ms: None,
            refunded_fen: Fen(refunded),
            refunds: Vec::new(),
            created_at: "2025-11-28T05:00:00Z".to_owned(),
            updated_at: "2025-11-28T05:00:00Z".to_owned(),
        }
    }

    #[test]
    fn only_paid_payments_with_money_left_are_refundable() {
        assert_eq!(refundable(&paid(1230, 0)), Fen(1230));
        assert_eq!(refundable(&paid(1230, 230)), Fen(1000));
        assert_eq!(refundable(&paid(1230, 1230)), Fen::ZERO);
        let mut failed = paid(1230, 0);
        failed.state = PaymentState::Failed;
        assert_eq!(refundable(&failed), Fen::ZERO);
        assert!(RefundDialog::open(&failed, attempt(1)).is_none());
    }

    fn refund(n: u8, amount: u64, state: RefundState) -> Refund {
        Refund {
            id: format!("ref_{n}"),
            refund_attempt_id: attempt(n),
            out_refund_no: format!("R{n}"),
            amount_fen: Fen(amount),
            reason: None,
            state,
            not_before: None,
            failure: None,
            created_at: "2025-11-28T05:01:00Z".to_owned(),
        }
    }

    #[test]
    fn refunds_in_progress_are_not_offered_again() {
        let mut payment = paid(1230, 100);
        payment.refunds = vec![
            refund(1, 100, RefundState::Succeeded),
            refund(2, 200, RefundState::Processing),
            refund(3, 300, RefundState::Queued),
            refund(4, 400, RefundState::Submitting),
            refund(5, 1000, RefundState::Failed),
        ];
        // 1230 − (100 + 200 + 300 + 400); the failed one gives its money back to refund.
        assert_eq!(refundable(&payment), Fen(230));
        let dialog = RefundDialog::open(&payment, attempt(6)).unwrap();
        assert_eq!(dialog.remaining, Fen(230));
        assert_eq!(dialog.amount_text, "2.30");
        // Everything committed: nothing to offer, no dialog.
        payment
            .refunds
            .push(refund(6, 230, RefundState::Processing));
        assert_eq!(refundable(&payment), Fen::ZERO);
        assert!(RefundDialog::open(&payment, attempt(7)).is_none());
        // A total that runs ahead of the list still never offers too much.
        let mut ahead = paid(1230, 1000);
        ahead.refunds = vec![refund(1, 200, RefundState::Succeeded)];
        assert_eq!(refundable(&ahead), Fen(230));
    }

    #[test]
    fn a_partial_refund_goes_through_confirmation_with_one_key() {
        let mut dialog = RefundDialog::open(&paid(1230, 230), attempt(1)).unwrap();
        assert_eq!(dialog.amount_text, "10.00");
        dialog.amount_text = "10.01".to_owned();
        dialog.submit();
        assert_eq!(
            dialog.stage,
            RefundStage::Editing(Some(RefundProblem::TooMuch(Fen(1000))))
        );
        dialog.amount_text = "3.5".to_owned();
        dialog.reason = "  退货 ".to_owned();
        dialog.submit();
        assert_eq!(dialog.stage, RefundStage::Confirming(Fen(350)));
        let request = dialog.confirm().unwrap();
        assert_eq!(request.amount_fen, Fen(350));
        assert_eq!(request.reason.as_deref(), Some("退货"));
        assert_eq!(request.refund_attempt_id, attempt(1));
        assert_eq!(dialog.confirm(), None, "no second request while sending");
        dialog.answered(Err(ApiFailure::Network));
        assert_eq!(dialog.stage, RefundStage::Failed("NETWORK".to_owned()));
        // Retrying keeps the same idempotency key.
        dialog.edit();
        dialog.submit();
        assert_eq!(dialog.confirm().unwrap().refund_attempt_id, attempt(1));
        dialog.answered(Ok(Refund {
            id: "ref_1".to_owned(),
            refund_attempt_id: attempt(1),
            out_refund_no: "R1".to_owned(),
            amount_fen: Fen(350),
            reason: Some("退货".to_owned()),
            state: RefundState::Processing,
            not_before: None,
            failure: None,
            created_at: "2025-11-28T05:01:00Z".to_owned(),
        }));
        assert!(matches!(dialog.stage, RefundStage::Done(_)));
    }

    #[test]
    fn bad_amounts_are_refused() {
        let mut dialog = RefundDialog::open(&paid(1230, 0), attempt(1)).unwrap();
        for (text, problem) in [
            ("12.345", RefundProblem::NotAnAmount),
            ("abc", RefundProblem::NotAnAmount),
            ("", RefundProblem::NotAnAmount),
            ("0", RefundProblem::Zero),
        ] {
            dialog.amount_text = text.to_owned();
            assert_eq!(dialog.amount(), Err(problem), "{text}");
        }
        dialog.amount_text = "12.30".to_owned();
        assert_eq!(dialog.amount(), Ok(Fen(1230)));
        dialog.stage = RefundStage::Sending(Fen(1230));
        dialog.answered(Err(ApiFailure::Http {
            status: 409,
            body: Some(ErrorBody {
                code: ErrorCode::RefundExceedsPayment,
                message: "退款金额超过可退金额".to_owned(),
                field: Some("amount_fen".to_owned()),
            }),
        }));
        assert_eq!(
            dialog.stage,
            RefundStage::Failed("退款金额超过可退金额".to_owned())
        );
    }

    #[test]
    fn a_refund_the_proxy_wants_approved_asks_for_the_pin_and_resends_the_same_attempt() {
        let refused = |code: &str| ApiFailure::Http {
            status: 403,
            body: Some(ErrorBody {
                code: ErrorCode::parse(code),
                message: "m".to_owned(),
                field: None,
            }),
        };
        let mut dialog = RefundDialog::open(&paid(1230, 0), attempt(1)).unwrap();
        dialog.submit();
        let first = dialog.confirm().unwrap();
        dialog.answered(Err(refused("APPROVAL_REQUIRED")));
        assert_eq!(dialog.stage, RefundStage::Approving(Fen(1230), None));

        // A PIN that is not digits is refused before anything is sent.
        dialog.manager = "店长".to_owned();
        dialog.pin = "12ab".to_owned();
        assert!(dialog.approval_request().is_none());
        assert_eq!(
            dialog.stage,
            RefundStage::Approving(Fen(1230), Some(ApprovalProblem::Malformed))
        );
        // A wrong PIN comes back to the PIN, cleared.
        dialog.pin = "123456".to_owned();
        let request = dialog.approval_request().unwrap();
        assert_eq!(request.manager, "店长");
        assert_eq!(request.action, ApprovalAction::Refund);
        assert_eq!(dialog.authorized(Err(refused("PIN_INCORRECT"))), None);
        assert_eq!(
            dialog.stage,
            RefundStage::Approving(Fen(1230), Some(ApprovalProblem::Incorrect))
        );
        assert!(dialog.pin.is_empty());
        dialog.pin = "123456".to_owned();
        dialog.approval_request().unwrap();
        dialog.authorized(Err(ApiFailure::Http {
            status: 423,
            body: Some(ErrorBody {
                code: ErrorCode::PinLocked,
                message: "locked".to_owned(),
                field: None,
            }),
        }));
        assert_eq!(
            dialog.stage,
            RefundStage::Approving(Fen(1230), Some(ApprovalProblem::Locked))
        );
        // The right PIN: the same refund attempt goes again, with the approval.
        dialog.pin = "654321".to_owned();
        dialog.approval_request().unwrap();
        let (again, token) = dialog.authorized(Ok("pca_x".to_owned())).unwrap();
        assert_eq!(again, first);
        assert_eq!(token, "pca_x");
        assert_eq!(dialog.stage, RefundStage::Sending(Fen(1230)));
    }
}
