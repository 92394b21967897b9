//! Integration tests of `paycode-proxy`: the SQLite store on real files, and the HTTP
//! surface served by a real [`Application`](paycode_proxy::startup::Application) on port 0.

mod check;
mod helpers;
mod http;
mod openapi;
mod pairing;
mod store;
mod tls;
