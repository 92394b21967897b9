//! What the soak does with each payment: the customer's behaviour and the mix of them.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use wxpay::sim::Behaviour;

/// What the soak does with one payment: the customer's behaviour (by payment code) and what
/// the customer or cashier does while it is pending.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Plan {
    /// Only the payment code's row decides.
    Row(Behaviour),
    /// `password_waits`, then the customer enters the password (via the control API).
    Confirm,
    /// `password_waits`, then the customer cancels on the phone.
    CustomerCancels,
    /// `password_waits`, then the cashier cancels through the API.
    CashierCancels,
    /// `password_waits`, and nobody does anything: the proxy's deadline reverses it.
    NobodyAnswers,
}

impl Plan {
    pub(crate) fn behaviour(self) -> Behaviour {
        match self {
            Plan::Row(behaviour) => behaviour,
            _ => Behaviour::PasswordWaits,
        }
    }

    pub(crate) fn label(self) -> String {
        match self {
            Plan::Row(behaviour) => behaviour.key().to_owned(),
            Plan::Confirm => "password_waits+confirm".to_owned(),
            Plan::CustomerCancels => "password_waits+customer_cancels".to_owned(),
            Plan::CashierCancels => "password_waits+cashier_cancels".to_owned(),
            Plan::NobodyAnswers => "password_waits+nobody".to_owned(),
        }
    }
}

/// The behaviour mix, with weights.
pub(crate) fn pick_plan(rng: &mut StdRng) -> Plan {
    let secs = Duration::from_secs;
    let table: [(u32, Plan); 16] = [
        (22, Plan::Row(Behaviour::PasswordFree)),
        (
            8,
            Plan::Row(Behaviour::PasswordThenConfirm { after: secs(10) }),
        ),
        (
            4,
            Plan::Row(Behaviour::PasswordThenCancel { after: secs(10) }),
        ),
        (8, Plan::Confirm),
        (4, Plan::CustomerCancels),
        (6, Plan::CashierCancels),
        (3, Plan::NobodyAnswers),
        (5, Plan::Row(Behaviour::NotEnough)),
        (4, Plan::Row(Behaviour::Expired)),
        (3, Plan::Row(Behaviour::Invalid)),
        (8, Plan::Row(Behaviour::SystemErrorPaid)),
        (
            4,
            Plan::Row(Behaviour::BankError {
                decline_after: secs(5),
            }),
        ),
        (4, Plan::Row(Behaviour::SlowReply { delay: None })),
        (6, Plan::Row(Behaviour::DropAfterCommit)),
        (4, Plan::Row(Behaviour::Gateway502)),
        (
            7,
            Plan::Row(Behaviour::PasswordThenConfirm { after: secs(30) }),
        ),
    ];
    let total: u32 = table.iter().map(|(weight, _)| weight).sum();
    let mut roll = rng.gen_range(0..total);
    for (weight, plan) in table {
        if roll < weight {
            return plan;
        }
        roll -= weight;
    }
    Plan::Row(Behaviour::PasswordFree)
}
