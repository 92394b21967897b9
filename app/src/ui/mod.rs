//! The browser glue, compiled for wasm32 only (declared once, in `lib.rs`).
//!
//! - `api`: the only module that knows URLs (fetch with the bearer token, long-poll).
//! - `browser`: `localStorage`, the monotonic clock, UUIDs, Web Audio.
//! - `camera`: the camera reader on the page (preview, status, button), which loads the camera
//!   bundle (`bin/paycode-camera`) when it opens and yields decoded text.
//! - `capture`: the window key listener that feeds the detector (`model::wedge`), and the
//!   camera's texts on the checkout's waiting screen.
//! - `back_office` and `office`: the two sides of the back-office bundle (the main page's
//!   placeholder that imports it, and what the bundle renders into it).
//! - `approval`: the manager's PIN dialog and the approval a back-office page holds.
//! - `context`: `Ctx`, the signals every view shares, and the runner of the checkout's
//!   effects.
//! - `pairing`: pairing by QR code (the address's `#pair=` code, or a scanned one).
//! - `app`: the root view and its start-up (resume, pairing, connection watch).
//! - `components` and `pages`: the Leptos views below the root.

pub mod api;
pub mod app;
pub mod approval;
pub mod back_office;
pub mod browser;
pub mod camera;
pub mod capture;
pub mod components;
pub mod context;
pub mod office;
pub mod pages;
pub mod pairing;
