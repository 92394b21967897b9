//! The Paycode cashier page: a Leptos CSR app compiled to wasm by Trunk.
//!
//! The cashier types the amount, the customer shows the WeChat payment code, the wedge
//! scanner types it, and the page follows the payment the proxy drives until it is paid,
//! failed or cancelled; a reload resumes the same payment.
//!
//! # Layout
//! The folders show the split:
//! - [`model`]: pure logic, compiled everywhere and tested natively
//!   (`cargo test -p paycode-app`): amount entry, the wedge-scanner detector, the checkout
//!   and refund state machines, what a failed call means, stored settings, the copy in both
//!   languages, dates. It does no I/O; the state machines return effects for the glue to run.
//! - `ui`: the browser glue, compiled for wasm32 only: the API client, browser services, the
//!   key listener, the shared context, and the Leptos views (the root `App`, components and
//!   pages).
//!
//! Three binaries: `paycode-app` (`main.rs`, the page), `paycode-camera`
//! (`bin/paycode-camera`: the camera, its decoder choice and frame loop, a wasm module of its
//! own that the page fetches only when a camera reader opens) and `paycode-backoffice`
//! (`bin/paycode-backoffice`: the 今日收款, 对账 and 待处理 pages, a module the page imports
//! only when one of them opens).

pub mod model;

#[cfg(target_arch = "wasm32")]
mod ui;

#[cfg(target_arch = "wasm32")]
pub use ui::app::App;

/// Small wrappers over browser APIs, shared with the camera bundle (`src/bin/paycode-camera`).
#[cfg(target_arch = "wasm32")]
pub use ui::browser;

/// The back-office pages, for the back-office bundle (`src/bin/paycode-backoffice`).
#[cfg(target_arch = "wasm32")]
pub use ui::office as back_office;
