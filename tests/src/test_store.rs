//! Which database the harness's proxies use: a SQLite file in the test's directory (the
//! default), or, with `PAYCODE_TEST_STORE=postgres`, a fresh database on the PostgreSQL server
//! at `PAYCODE_TEST_DATABASE_URL` (the throwaway cluster of `scripts/pg-cluster`). Every
//! configuration the harness makes goes through [`apply`] ([`crate::world::scaled_config`]),
//! so worlds, the real binary and benchmarks all follow the switch.

use paycode_proxy::config::StoreConfig;

/// `sqlite` (or unset) or `postgres`.
pub const STORE_VARIABLE: &str = "PAYCODE_TEST_STORE";

/// The PostgreSQL server fresh databases are created on.
pub const DATABASE_URL_VARIABLE: &str = "PAYCODE_TEST_DATABASE_URL";

/// Points `config` at the database the run asks for: unchanged for SQLite, a new database
/// for PostgreSQL. Panics when the switch has another value or PostgreSQL is asked for
/// without a server, so that a run cannot silently fall back to SQLite.
pub fn apply(config: &mut StoreConfig) {
    match std::env::var(STORE_VARIABLE).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => {}
        Ok("postgres") => {
            let server_url = std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| {
                panic!(
                    "{STORE_VARIABLE}=postgres needs {DATABASE_URL_VARIABLE}: start a \
                     throwaway cluster with `eval \"$(scripts/pg-cluster start)\"`"
                )
            });
            config.database_url = Some(fresh_database(&server_url));
        }
        Ok(other) => panic!("{STORE_VARIABLE}={other}: expected sqlite or postgres"),
    }
}

/// `PAYCODE_REQUIRE_POSTGRES=1`: a test that needs PostgreSQL fails, rather than skips,
/// without [`DATABASE_URL_VARIABLE`] (`scripts/test` sets it).
pub const REQUIRE_VARIABLE: &str = "PAYCODE_REQUIRE_POSTGRES";

/// Points `config` at a fresh PostgreSQL database whatever [`STORE_VARIABLE`] says, for tests
/// about several proxies on one database, which only PostgreSQL allows. Without a server
/// ([`DATABASE_URL_VARIABLE`] unset) it prints a notice and returns `false`, unless
/// [`REQUIRE_VARIABLE`]`=1`, which panics instead so that CI cannot skip.
pub fn shared_postgres(config: &mut StoreConfig) -> bool {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(server_url) if !server_url.is_empty() => {
            config.database_url = Some(fresh_database(&server_url));
            true
        }
        _ if std::env::var(REQUIRE_VARIABLE).as_deref() == Ok("1") => panic!(
            "{REQUIRE_VARIABLE}=1 but {DATABASE_URL_VARIABLE} is not set: start a throwaway \
             cluster with `eval \"$(scripts/pg-cluster start)\"`"
        ),
        _ => {
            eprintln!(
                "{DATABASE_URL_VARIABLE} is not set: skipping a test of several proxies on one \
                 PostgreSQL database (start one with `eval \"$(scripts/pg-cluster start)\"`)"
            );
            false
        }
    }
}

/// Whether the run asked for PostgreSQL (`PAYCODE_TEST_STORE=postgres`).
pub fn postgres_requested() -> bool {
    std::env::var(STORE_VARIABLE).as_deref() == Ok("postgres")
}

/// Points `config` back at its SQLite file for a test that is about SQLite itself (such as
/// upgrading a first-release database, which only ever ran on SQLite), saying so on stderr
/// when the run asked for PostgreSQL, so that such a run does not pass as a PostgreSQL one
/// unnoticed.
pub fn keep_sqlite(config: &mut StoreConfig, why: &str) {
    if postgres_requested() {
        eprintln!("{STORE_VARIABLE}=postgres: this test stays on SQLite ({why})");
    }
    config.database_url = None;
}

/// Points `config` at a fresh PostgreSQL database whatever the run asked for, for a test that
/// is about PostgreSQL itself (several proxies on one database). Returns `false`, saying so on
/// stderr, when no server is given (`PAYCODE_TEST_DATABASE_URL`), so that such a test can end
/// early in a run without PostgreSQL; panics instead when `PAYCODE_REQUIRE_POSTGRES=1` (set by
/// `scripts/test`), as the store conformance suite does.
pub fn use_postgres(config: &mut StoreConfig, why: &str) -> bool {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(server_url) if !server_url.is_empty() => {
            config.database_url = Some(fresh_database(&server_url));
            true
        }
        _ => {
            assert!(
                std::env::var("PAYCODE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PAYCODE_REQUIRE_POSTGRES=1 but {DATABASE_URL_VARIABLE} is not set ({why})"
            );
            eprintln!("{DATABASE_URL_VARIABLE} is not set: not run ({why})");
            false
        }
    }
}

/// Creates a database with a unique name on the server at `server_url` and returns its URL.
/// Synchronous (configurations are built outside async code too): it runs on a thread of
/// its own with its own runtime, so it may be called from inside a test's runtime.
pub fn fresh_database(server_url: &str) -> String {
    let server_url = server_url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            use sqlx::Connection;
            let name = format!("paycode_test_{}", uuid::Uuid::new_v4().simple());
            let mut connection = sqlx::PgConnection::connect(&server_url)
                .await
                .unwrap_or_else(|error| panic!("cannot reach {DATABASE_URL_VARIABLE}: {error}"));
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut connection)
                .await
                .expect("CREATE DATABASE");
            let _ = connection.close().await;
            let mut url = url::Url::parse(&server_url).expect("a database URL");
            url.set_path(&name);
            url.to_string()
        })
    })
    .join()
    .expect("the test database is created")
}
