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
//! - [`field_path`]: the dotted name of the field a deserialization error concerns, for
//!   [`extract`] and [`config`].
//! - [`engine`]: the payments engine: the state machine and the driver that calls WeChat.
//! - [`wechat`]: the WeChat client built from `[wechat]`, and its readiness check.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`notify`]: several proxies on one PostgreSQL database: the wake-ups they send each other
//!   (LISTEN/NOTIFY) and the connections of their shared micropay limit.
//! - [`routes`]: the HTTP routes by resource (health, metrics, payments, terminal).
//! - [`readiness`]: the checks behind `/readyz`.
//! - [`state`]: [`AppState`](state::AppState), what every handler can reach.
//! - [`startup`]: [`router`](startup::router) and [`Application`](startup::Application).
//! - [`tls`]: HTTPS on the shop network: the local CA, the serving certificate, the TLS
//!   listener and the plain-HTTP CA page.
//! - [`pairing`]: one-time pairing codes, exchanged by a tablet for a terminal token.
//! - [`private_file`]: files readable by their owner only (keys, the database, tokens).
//! - [`approvals`]: managers, their PINs and the approvals that manager actions need
//!   (docs/approvals.md).
//! - [`cli`]: the command line (`serve`, `demo`, `check`, `terminal`, `tls`, `sim`).

pub mod approvals;
pub mod auth;
pub mod books;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod extract;
pub mod field_path;
pub mod instance;
pub mod metrics;
pub mod notify;
pub mod pairing;
pub mod private_file;
pub mod readiness;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod stores;
pub mod tls;
pub mod wechat;

#[cfg(test)]
pub(crate) mod test_support;
