//! Integration tests of `paycode-proxy`: the store on both back ends (a SQLite file, a
//! PostgreSQL database), and the HTTP surface served by a real
//! [`Application`](paycode_proxy::startup::Application) on port 0.

/// Runs each listed `async fn(Backend)` as a test on SQLite and on PostgreSQL.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(backend) = crate::helpers::Backend::postgres() {
                        super::$test(backend).await;
                    }
                }
            )*
        }
    };
}

mod approvals;
mod books_store;
mod check;
mod helpers;
mod http;
mod openapi;
mod pairing;
mod store;
mod stores;
mod tls;
