//! The Paycode proxy: the only place that holds the merchant's WeChat Pay secrets. It
//! stores payments, serves the cashier app and its JSON API (`/api/v1`), and talks to
//! WeChat through the `wxpay` crate.
//!
//! # Layout
//! - [`config`]: [`Config`](config::Config), loaded once from `paycode.toml` plus
//!   `PAYCODE_*` environment overrides.
//! - [`store`]: the [`Store`](store::Store) trait, its records, and the SQLite
//!   implementation.
//! - [`auth`]: terminal tokens and the [`AuthenticatedTerminal`](auth::AuthenticatedTerminal)
//!   extractor.
//! - [`error`]: [`ApiError`](error::ApiError), how every failure becomes an `ErrorBody`.
//! - [`extract`]: [`ApiJson`](extract::ApiJson), a JSON body extractor with field-naming
//!   rejections.
//! - [`routes`]: the HTTP routes by resource (`health` so far).
//! - [`startup`]: [`AppState`](startup::AppState), [`router`](startup::router) and
//!   [`Application`](startup::Application).
//! - [`cli`]: the command line (`serve`, `terminal add|list|revoke`).

pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod extract;
pub mod routes;
pub mod startup;
pub mod store;

#[cfg(test)]
pub(crate) mod test_support;
