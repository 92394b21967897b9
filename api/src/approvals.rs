//! Manager approvals: terminal roles, and a manager's PIN turned into a short-lived approval
//! token (`POST /api/v1/approvals`) that a terminal sends on the one request it approves
//! (header [`APPROVAL_HEADER`]). The rules are in the proxy's `docs/approvals.md`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The request header that carries an approval token (`pca_…`) on the approved request.
pub const APPROVAL_HEADER: &str = "Paycode-Approval";

/// What a terminal may do without a manager's approval beyond taking payments.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A till: takes payments, cancels, refunds (with an approval above the configured
    /// amount), and lists its own payments.
    #[default]
    Cashier,
    /// A back-office terminal of one store: may ask for manager actions (seeing every
    /// terminal's payments, settling a payment that needs attention, the books), each with
    /// a manager's approval.
    Manager,
    /// Like `manager`, for every store.
    Owner,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Cashier, Role::Manager, Role::Owner];

    /// The wire name: `cashier`, `manager` or `owner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Manager => "manager",
            Role::Owner => "owner",
        }
    }

    /// Reads a wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether the role may ask for manager actions (`manager` or `owner`).
    pub fn is_back_office(self) -> bool {
        matches!(self, Role::Manager | Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of action an approval is for; an approval works for its kind only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalAction {
    /// A refund above `approvals.refund_above_fen` (any terminal role).
    Refund,
    /// Settling a payment that needs attention (manager or owner terminal).
    SettlePayment,
    /// Listing other terminals' payments (manager or owner terminal).
    ViewAllPayments,
    /// The reconciliation pages (manager or owner terminal).
    Books,
}

impl ApprovalAction {
    /// Every action.
    pub const ALL: [ApprovalAction; 4] = [
        ApprovalAction::Refund,
        ApprovalAction::SettlePayment,
        ApprovalAction::ViewAllPayments,
        ApprovalAction::Books,
    ];

    /// The wire name, e.g. `settle_payment`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalAction::Refund => "refund",
            ApprovalAction::SettlePayment => "settle_payment",
            ApprovalAction::ViewAllPayments => "view_all_payments",
            ApprovalAction::Books => "books",
        }
    }

    /// Reads a wire name; `None` for anything else.
    pub fn parse(text: &str) -> Option<ApprovalAction> {
        ApprovalAction::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    /// Whether only a manager or owner terminal may ask for it (everything but refunds).
    pub fn needs_back_office(self) -> bool {
        !matches!(self, ApprovalAction::Refund)
    }
}

impl fmt::Display for ApprovalAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /api/v1/approvals`: a manager types their name and PIN on the terminal to approve
/// one action of `action`'s kind (or several, for `approvals.window`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// The manager's name (`paycode-proxy manager add NAME`): 1 to 64 characters, no
    /// spaces or control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 64,
            pattern = r"^[^\s\u0000-\u001F\u007F-\u009F]{1,64}$"
        )
    )]
    pub manager: String,
    /// The manager's PIN: 4 to 12 digits.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 4, max_length = 12, pattern = "^[0-9]{4,12}$")
    )]
    pub pin: String,
    /// What is approved.
    pub action: ApprovalAction,
    /// Why, for the audit log (at most 200 characters, no control characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")
    )]
    pub reason: Option<String>,
}

/// How often an approval may be used.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalUses {
    /// For one request (`approvals.window` is 0, the default).
    Once,
    /// For any number of requests of its kind until `expires_at`.
    Window,
}

/// The answer to an [`ApprovalRequest`] (201).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approval token (`pca_` and 43 base64url characters): send it as the
    /// `Paycode-Approval` header on the approved request. It works only for the terminal
    /// that asked and only for `action`'s kind.
    pub approval: String,
    /// The manager who approved.
    pub manager: String,
    /// What was approved.
    pub action: ApprovalAction,
    /// Until when the token works (RFC 3339).
    pub expires_at: String,
    /// Whether it works once or until `expires_at`.
    pub uses: ApprovalUses,
}

/// `POST /api/v1/payments/{id}/settle`: a manager settles a payment that needs attention
/// from a fresh query of WeChat (the payment ends where the verified answer says).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// Why, for the audit log: 1 to 200 characters, no control characters, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub reason: String,
}

/// What a settlement found at WeChat.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleOutcome {
    /// The payment now follows WeChat's verified answer (paid, or cancelled with its order
    /// closed or being reversed).
    Changed,
    /// WeChat's answer agrees with what was stored; nothing changed.
    Agrees,
    /// WeChat's answer contradicts a paid payment, which never moves back; it stays for
    /// the books.
    Disagrees,
    /// The proxy is still working on the payment itself; nothing changed.
    InProgress,
}

/// The answer to [`SettleRequest`]: the payment afterwards and what WeChat's answer did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The payment as stored now.
    pub payment: crate::Payment,
    /// What WeChat's verified answer did.
    pub outcome: SettleOutcome,
}

/// `GET /api/v1/needs-attention`: the payments of the terminal's store (every store for an
/// owner terminal) that need attention, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionList {
    /// The payments, oldest first.
    pub payments: Vec<crate::Payment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_actions_read_back_their_wire_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        for action in ApprovalAction::ALL {
            assert_eq!(ApprovalAction::parse(action.as_str()), Some(action));
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{action}\"")
            );
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::default(), Role::Cashier);
        assert!(!ApprovalAction::Refund.needs_back_office());
        assert!(ApprovalAction::Books.needs_back_office());
    }
}
