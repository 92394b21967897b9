//! The `TEST_LOG` switch: the proxy's logs in a test's output.
//!
//! Tests are quiet by default. With `TEST_LOG` set, every proxy a test starts logs, and the
//! test runner shows those lines with the output of a failing test (`--nocapture` shows them
//! always):
//!
//! ```text
//! TEST_LOG=1 cargo test -p paycode-tests --test scenarios                 # the default filter
//! TEST_LOG=paycode_proxy=trace cargo test -p paycode-tests --test crash   # a filter of your own
//! ```
//!
//! A proxy in the test process ([`World`](crate::World)) logs through a `tracing`
//! subscriber with the test writer ([`init`]); a proxy binary in a child process
//! ([`binary`](crate::binary), the browser tests' demo) runs with `RUST_LOG` set to the
//! filter and has its lines copied to the test's output as they come.

use std::sync::Once;

/// The filter `TEST_LOG=1` (or `true`) stands for: the proxy and the WeChat client at debug.
pub const DEFAULT_FILTER: &str = "info,paycode_proxy=debug,wxpay=debug";

/// The log filter `TEST_LOG` asks for: `None` when it is unset, empty or `0`;
/// [`DEFAULT_FILTER`] for `1` or `true`; any other value is itself an `EnvFilter`/`RUST_LOG`
/// directive list.
pub fn filter() -> Option<String> {
    let value = std::env::var("TEST_LOG").ok()?;
    match value.trim() {
        "" | "0" | "false" => None,
        "1" | "true" => Some(DEFAULT_FILTER.to_owned()),
        filter => Some(filter.to_owned()),
    }
}

/// Installs, once per test process, a `tracing` subscriber that writes through the test
/// runner's capture when `TEST_LOG` is set; does nothing otherwise.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Some(filter) = filter() {
            // Another subscriber may already be installed (by the test itself): keep it.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// The `RUST_LOG` filter for a proxy binary a test starts: the `TEST_LOG` filter when it is
/// set, else `quiet` (what the test needs to read from the log, e.g. the listening line).
pub fn child_filter(quiet: &str) -> String {
    filter().unwrap_or_else(|| quiet.to_owned())
}

/// Copies a line of a child proxy's log to the test's output when `TEST_LOG` is set.
pub fn echo(line: &str) {
    if filter().is_some() {
        eprintln!("{line}");
    }
}
