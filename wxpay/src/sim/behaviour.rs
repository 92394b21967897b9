//! The customer-behaviour table: what the "customer" behind a payment code does.
//!
//! A WeChat payment code is 18 digits starting with `10`–`15`. The simulator reads the
//! customer's behaviour from the code itself, so a test (or a person at the phone page) picks
//! the outcome by picking the code:
//!
//! ```text
//!   13 4821 7730  9999  RR  NN
//!   │  └─ free ─┘ mark  │   └─ parameter (seconds, 00 = the default)
//!   prefix 10–15        └─ row of the table below
//! ```
//!
//! Digits 11–14 must be the marker `9999` and digits 15–16 select the row. Any other
//! well-formed code (no marker, or an unassigned row) pays without a password, like most real
//! customers. A code that is not 18 digits with a `10`–`15` prefix is rejected with
//! `AUTH_CODE_INVALID` before any behaviour applies.
//!
//! | RR | [`Behaviour`] | micropay reply | what orderquery shows afterwards |
//! |----|---------------|----------------|----------------------------------|
//! | 00 | [`PasswordFree`](Behaviour::PasswordFree) | `SUCCESS` | `SUCCESS` |
//! | 01 | [`PasswordThenConfirm`](Behaviour::PasswordThenConfirm) (NN s, default 10) | `USERPAYING` | `USERPAYING`, then `SUCCESS` NN simulated seconds after the order was created |
//! | 02 | [`PasswordThenCancel`](Behaviour::PasswordThenCancel) (NN s, default 10) | `USERPAYING` | `USERPAYING`, then `PAYERROR` (支付失败,请撤销订单) after NN s |
//! | 03 | [`PasswordWaits`](Behaviour::PasswordWaits) | `USERPAYING` | `USERPAYING` until confirmed or cancelled through the control API / phone page |
//! | 04 | [`NotEnough`](Behaviour::NotEnough) | `NOTENOUGH` | `PAYERROR` (the order exists, nothing was charged) |
//! | 05 | [`Expired`](Behaviour::Expired) | `AUTHCODEEXPIRE` | `ORDERNOTEXIST` (rejected before an order is created) |
//! | 06 | [`Invalid`](Behaviour::Invalid) | `AUTH_CODE_INVALID` | `ORDERNOTEXIST` |
//! | 07 | [`SystemErrorPaid`](Behaviour::SystemErrorPaid) | `SYSTEMERROR` | `SUCCESS`: the error hides a completed payment |
//! | 08 | [`BankError`](Behaviour::BankError) (NN s, default 5) | `BANKERROR` | `USERPAYING` (银行处理中) for NN s, then `PAYERROR`: the bank finally declines |
//! | 09 | [`SlowReply`](Behaviour::SlowReply) (NN s real time, default: the simulator's slow-reply delay) | `SUCCESS`, sent only after the delay | `SUCCESS` at once |
//! | 10 | [`DropAfterCommit`](Behaviour::DropAfterCommit) | none: the connection is closed without a reply | `SUCCESS` |
//! | 11 | [`Gateway502`](Behaviour::Gateway502) | HTML `502 Bad Gateway` | `ORDERNOTEXIST`: the gateway failed before the request reached WeChat, so no order exists and the code stays unused |
//! | 12 | [`LostPaidReply`](Behaviour::LostPaidReply) | none: the connection is closed without a reply (again on a resubmission) | `ORDERNOTEXIST`, and reverse, refund and closeorder answer as for an unknown order, until the day's bill is ready (then they find it paid), while the customer **was charged** and the bill lists the payment: an injected discrepancy for reconciliation tests (docs/books.md §6) |
//!
//! Every unpaid order is still revoked automatically 45 simulated seconds after creation (so
//! a `PasswordThenConfirm` with NN ≥ 45 never pays). Each code is single-use: only the first
//! micropay that creates an order consumes it; rows 05, 06 and 11 create no order.
//! [`auth_code_for`] makes a fresh code for a behaviour.

use std::fmt;
use std::time::Duration;

use rand::Rng;

/// The digits (11–14, 0-based 10..14) that mark a code as carrying a behaviour row.
const MARKER: &str = "9999";

/// What the customer behind a payment code does. See the [module docs](self) for the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Pays at once, no password (row 00, and every code that matches no row).
    PasswordFree,
    /// Must enter the password, and does so `after` the order was created (row 01).
    PasswordThenConfirm {
        /// Simulated time from the micropay call to the confirmation.
        after: Duration,
    },
    /// Must enter the password, and cancels the prompt `after` the order was created (row 02).
    PasswordThenCancel {
        /// Simulated time from the micropay call to the cancellation.
        after: Duration,
    },
    /// Must enter the password and waits for a person or a test to confirm or cancel
    /// (control API, [`SimHandle`](super::SimHandle) or the phone page) (row 03).
    PasswordWaits,
    /// Insufficient balance: `NOTENOUGH` (row 04).
    NotEnough,
    /// The code expired: `AUTHCODEEXPIRE` (row 05).
    Expired,
    /// The code is not valid: `AUTH_CODE_INVALID` (row 06).
    Invalid,
    /// `SYSTEMERROR`, although the payment went through (row 07).
    SystemErrorPaid,
    /// `BANKERROR`; the bank declines `decline_after` the order was created (row 08).
    BankError {
        /// Simulated time until the order turns `PAYERROR`.
        decline_after: Duration,
    },
    /// Pays at once but replies only after `delay` of real time (row 09); `None` uses the
    /// simulator's configured slow-reply delay.
    SlowReply {
        /// Real time to hold the reply back.
        delay: Option<Duration>,
    },
    /// Pays, then closes the connection without replying (row 10).
    DropAfterCommit,
    /// A gateway in front of WeChat answers an HTML 502 page; nothing reaches WeChat (row 11).
    Gateway502,
    /// Pays, the reply never arrives, and every later call about the order answers as if
    /// WeChat had no such order until the day's bill is ready, so the merchant settles it as
    /// not paid while WeChat holds the money (row 12); from then on queries find it paid. Not a real WeChat behaviour: an injected discrepancy that only the
    /// daily bill reveals; recorded in [`SimHandle::injected_discrepancies`](super::SimHandle::injected_discrepancies).
    LostPaidReply,
}

/// Default seconds for rows whose parameter digits are `00`.
const DEFAULT_CONFIRM_SECS: u64 = 10;
const DEFAULT_CANCEL_SECS: u64 = 10;
const DEFAULT_DECLINE_SECS: u64 = 5;

impl Behaviour {
    /// Every behaviour with its default parameter, in table order (for the phone page).
    pub const ALL: [Behaviour; 13] = [
        Behaviour::PasswordFree,
        Behaviour::PasswordThenConfirm {
            after: Duration::from_secs(DEFAULT_CONFIRM_SECS),
        },
        Behaviour::PasswordThenCancel {
            after: Duration::from_secs(DEFAULT_CANCEL_SECS),
        },
        Behaviour::PasswordWaits,
        Behaviour::NotEnough,
        Behaviour::Expired,
        Behaviour::Invalid,
        Behaviour::SystemErrorPaid,
        Behaviour::BankError {
            decline_after: Duration::from_secs(DEFAULT_DECLINE_SECS),
        },
        Behaviour::SlowReply { delay: None },
        Behaviour::DropAfterCommit,
        Behaviour::Gateway502,
        Behaviour::LostPaidReply,
    ];

    /// The behaviour encoded in a payment code. Codes without the marker, or with an
    /// unassigned row, pay without a password. The caller checks the code's format first.
    pub fn of(auth_code: &str) -> Behaviour {
        let digits = auth_code.as_bytes();
        if digits.len() != 18
            || !digits.iter().all(u8::is_ascii_digit)
            || &auth_code[10..14] != MARKER
        {
            return Behaviour::PasswordFree;
        }
        let row = &auth_code[14..16];
        // Two ASCII digits always parse.
        let seconds: u64 = auth_code[16..18].parse().unwrap_or(0);
        let or_default =
            |default: u64| Duration::from_secs(if seconds == 0 { default } else { seconds });
        match row {
            "01" => Behaviour::PasswordThenConfirm {
                after: or_default(DEFAULT_CONFIRM_SECS),
            },
            "02" => Behaviour::PasswordThenCancel {
                after: or_default(DEFAULT_CANCEL_SECS),
            },
            "03" => Behaviour::PasswordWaits,
            "04" => Behaviour::NotEnough,
            "05" => Behaviour::Expired,
            "06" => Behaviour::Invalid,
            "07" => Behaviour::SystemErrorPaid,
            "08" => Behaviour::BankError {
                decline_after: or_default(DEFAULT_DECLINE_SECS),
            },
            "09" => Behaviour::SlowReply {
                delay: (seconds > 0).then(|| Duration::from_secs(seconds)),
            },
            "10" => Behaviour::DropAfterCommit,
            "11" => Behaviour::Gateway502,
            "12" => Behaviour::LostPaidReply,
            _ => Behaviour::PasswordFree,
        }
    }

    /// The table row (`RR`) and parameter (`NN`) digits of this behaviour. Durations are
    /// clamped to 1–99 whole seconds, the range two digits can carry.
    fn row_and_parameter(self) -> (&'static str, u64) {
        let seconds = |duration: Duration| duration.as_secs().clamp(1, 99);
        match self {
            Behaviour::PasswordFree => ("00", 0),
            Behaviour::PasswordThenConfirm { after } => ("01", seconds(after)),
            Behaviour::PasswordThenCancel { after } => ("02", seconds(after)),
            Behaviour::PasswordWaits => ("03", 0),
            Behaviour::NotEnough => ("04", 0),
            Behaviour::Expired => ("05", 0),
            Behaviour::Invalid => ("06", 0),
            Behaviour::SystemErrorPaid => ("07", 0),
            Behaviour::BankError { decline_after } => ("08", seconds(decline_after)),
            Behaviour::SlowReply { delay } => ("09", delay.map_or(0, seconds)),
            Behaviour::DropAfterCommit => ("10", 0),
            Behaviour::Gateway502 => ("11", 0),
            Behaviour::LostPaidReply => ("12", 0),
        }
    }

    /// A stable snake_case name, used by the control API and the phone page.
    pub fn key(self) -> &'static str {
        match self {
            Behaviour::PasswordFree => "password_free",
            Behaviour::PasswordThenConfirm { .. } => "password_then_confirm",
            Behaviour::PasswordThenCancel { .. } => "password_then_cancel",
            Behaviour::PasswordWaits => "password_waits",
            Behaviour::NotEnough => "not_enough",
            Behaviour::Expired => "expired",
            Behaviour::Invalid => "invalid",
            Behaviour::SystemErrorPaid => "system_error_paid",
            Behaviour::BankError { .. } => "bank_error",
            Behaviour::SlowReply { .. } => "slow_reply",
            Behaviour::DropAfterCommit => "drop_after_commit",
            Behaviour::Gateway502 => "gateway_502",
            Behaviour::LostPaidReply => "lost_paid_reply",
        }
    }

    /// The behaviour named by [`Behaviour::key`], with its default parameter.
    pub fn from_key(key: &str) -> Option<Behaviour> {
        Behaviour::ALL
            .into_iter()
            .find(|behaviour| behaviour.key() == key)
    }

    /// A short bilingual label for the phone page.
    pub fn label(self) -> &'static str {
        match self {
            Behaviour::PasswordFree => "免密支付 · Pays without password",
            Behaviour::PasswordThenConfirm { .. } => "输入密码后支付 · Password, then pays",
            Behaviour::PasswordThenCancel { .. } => "输入密码时取消 · Password, then cancels",
            Behaviour::PasswordWaits => "等待我输入密码 · Password, I decide here",
            Behaviour::NotEnough => "余额不足 · Insufficient balance",
            Behaviour::Expired => "付款码已过期 · Expired code",
            Behaviour::Invalid => "付款码无效 · Invalid code",
            Behaviour::SystemErrorPaid => "系统错误(实际已支付) · SYSTEMERROR, actually paid",
            Behaviour::BankError { .. } => "银行错误 · BANKERROR, then declined",
            Behaviour::SlowReply { .. } => "响应超时(实际已支付) · Slow reply, paid",
            Behaviour::DropAfterCommit => "断开连接(实际已支付) · Connection dropped, paid",
            Behaviour::Gateway502 => "网关502 · Gateway 502, not paid",
            Behaviour::LostPaidReply => {
                "已扣款但查询不到 · Charged, reply lost, queries say no order"
            }
        }
    }

    /// Whether this customer must enter a password (the order starts as `USERPAYING`).
    pub fn asks_for_password(self) -> bool {
        matches!(
            self,
            Behaviour::PasswordThenConfirm { .. }
                | Behaviour::PasswordThenCancel { .. }
                | Behaviour::PasswordWaits
        )
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A fresh 18-digit payment code that makes the simulator behave as `behaviour`.
///
/// The prefix (10–15) and the eight free digits are random, so successive codes differ and
/// the single-use rule does not get in the way of tests.
pub fn auth_code_for(behaviour: Behaviour) -> String {
    let mut rng = rand::thread_rng();
    let prefix: u8 = rng.gen_range(10..=15);
    let free: u32 = rng.gen_range(0..100_000_000);
    let (row, parameter) = behaviour.row_and_parameter();
    format!("{prefix}{free:08}{MARKER}{row}{parameter:02}")
}

/// Whether `auth_code` has the shape of a WeChat payment code: 18 digits, prefix 10–15.
pub fn is_wechat_auth_code(auth_code: &str) -> bool {
    let bytes = auth_code.as_bytes();
    bytes.len() == 18
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'0'..=b'5').contains(&bytes[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_behaviour_round_trips_through_a_code() {
        for behaviour in Behaviour::ALL {
            let code = auth_code_for(behaviour);
            assert!(is_wechat_auth_code(&code), "{code}");
            assert_eq!(Behaviour::of(&code), behaviour, "{code}");
            assert_eq!(Behaviour::from_key(behaviour.key()), Some(behaviour));
        }
    }

    #[test]
    fn parameters_are_carried_in_the_last_two_digits() {
        let code = auth_code_for(Behaviour::PasswordThenConfirm {
            after: Duration::from_secs(3),
        });
        assert_eq!(&code[10..], "99990103");
        assert_eq!(
            Behaviour::of(&code),
            Behaviour::PasswordThenConfirm {
                after: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn unmarked_codes_pay_without_password() {
        assert_eq!(Behaviour::of("134567890123456789"), Behaviour::PasswordFree);
        assert_eq!(Behaviour::of("134567890199995500"), Behaviour::PasswordFree);
        assert!(!is_wechat_auth_code("284567890123456789"));
        assert!(!is_wechat_auth_code("13456789012345678"));
        assert!(!is_wechat_auth_code("13456789012345678x"));
    }
}
