//! The pages below the header.

mod attention;
mod books;
mod checkout;
mod payments;
mod settings;

pub use attention::AttentionPage;
pub use books::BooksPage;
pub use checkout::CheckoutPage;
pub use payments::PaymentsPage;
pub use settings::{PairingPage, SettingsPage};
