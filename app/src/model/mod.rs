//! The page's logic, with no I/O: compiled everywhere and tested natively
//! (`cargo test -p paycode-app`). The browser glue (`ui`) feeds these modules inputs and
//! carries out the effects they return.
//!
//! - [`amount`]: the amount being typed, parsed exactly into fen.
//! - [`wedge`]: the keyboard-wedge scanner detector (`docs/capture.md`); it also takes the
//!   camera's codes through the same rules.
//! - [`camera`]: the camera reader's decisions (decoder choice, frame pacing and size,
//!   failures).
//! - [`digits`]: decimal digits of any script read as ASCII (full-width IME input).
//! - [`checkout`]: the checkout state machine, which returns effects for the glue to run.
//! - [`refund`]: the refund dialog's steps.
//! - [`books`]: the back office's words and decisions (对账, needs attention, the PIN).
//! - [`books_html`]: the back office's read-only views as escaped HTML text.
//! - [`remote`]: what a failed call to the proxy means.
//! - [`settings`]: stored settings and keys.
//! - [`i18n`]: every text in Chinese and English (failure copy comes from
//!   `paycode_api::codes`).
//! - [`dates`]: calendar days for the payments list.
//! - [`pairing`]: the one-time pairing code in a pairing QR code's address.

pub mod amount;
pub mod books;
pub mod books_html;
pub mod camera;
pub mod checkout;
pub mod dates;
pub mod digits;
pub mod i18n;
pub mod pairing;
pub mod refund;
pub mod remote;
pub mod settings;
pub mod wedge;
