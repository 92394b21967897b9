//! The pages below the header.

mod checkout;
mod payments;
mod settings;

pub use checkout::CheckoutPage;
pub use payments::PaymentsPage;
pub use settings::{PairingPage, SettingsPage};
