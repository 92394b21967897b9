//! The Paycode cashier page: a Leptos CSR app compiled to wasm by Trunk.
//!
//! The cashier types the amount, the customer shows the WeChat payment code, the wedge
//! scanner types it, and the page follows the payment the proxy drives until it is paid,
//! failed or cancelled; a reload resumes the same payment.
//!
//! # Layout
//! Pure logic, compiled everywhere and tested natively (`cargo test -p paycode-app`):
//! - [`amount`]: the amount being typed, parsed exactly into fen.
//! - [`wedge`]: the keyboard-wedge scanner detector (`docs/capture.md`).
//! - [`checkout`]: the checkout state machine, which returns effects for the glue to run.
//! - [`refund`]: the refund dialog's steps.
//! - [`dates`]: calendar days for the payments list.
//! - [`digits`]: decimal digits of any script read as ASCII (full-width IME input).
//! - [`remote`]: what a failed call to the proxy means.
//! - [`settings`]: stored settings and keys.
//! - [`i18n`]: every text in Chinese and English.
//!
//! Browser glue, compiled for wasm32 only:
//! - `api`: the only module that knows URLs (fetch with the bearer token).
//! - `browser`: `localStorage`, the monotonic clock, UUIDs, Web Audio.
//! - `capture`: the window key listener that feeds the detector.
//! - `components` and `pages`: the Leptos views; `app` holds the root and the effect runner.

pub mod amount;
pub mod checkout;
pub mod dates;
pub mod digits;
pub mod i18n;
pub mod refund;
pub mod remote;
pub mod settings;
pub mod wedge;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
mod capture;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod pages;

#[cfg(target_arch = "wasm32")]
pub use app::App;
