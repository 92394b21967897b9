//! How fast the cashier page is ready to scan: the time from navigation to "请出示付款码"
//! (the app's `paycode-ready` performance mark, made when the waiting screen is mounted and
//! the scanner armed) in headless Chromium against `paycode-proxy demo` on loopback.
//!
//! `cargo run -p paycode-tests --example app_ready_bench [-- RUNS]` (default 10 warm runs).
//! The page is opened as `/?amount=12.30`, the way a till opens it for one sale. The first
//! run is cold (new profile: no cache, no token, demo pairing); the others reuse the cache
//! and the stored token. Target: ≤ 500 ms.

// Shared with the browser tests, which use all of both.
#[allow(dead_code)]
#[path = "demo.rs"]
mod demo;
#[allow(dead_code)]
#[path = "webdriver.rs"]
mod webdriver;

use std::time::Duration;

use serde_json::json;

use crate::demo::Demo;
use crate::webdriver::{Driver, Session};

const TARGET_MS: f64 = 500.0;

/// Navigates and returns the milliseconds from navigation start to the ready mark.
fn ready_time(page: &Session<'_>, url: &str) -> f64 {
    page.goto(url);
    let mark = page.wait_for(
        "the paycode-ready mark",
        Duration::from_secs(30),
        "const m = performance.getEntriesByName('paycode-ready'); \
         const h = document.querySelector('[data-testid=awaiting-code] h1'); \
         return m.length && h && h.innerText === '请出示付款码' ? m[0].startTime : null",
    );
    mark.as_f64().expect("a time in milliseconds")
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(10);
    let demo = Demo::start(1.0);
    let driver = Driver::for_demo(&demo);
    let page = driver.session(1280, 800);
    let url = format!("{}/?amount=12.30", demo.app_url);

    let cold = ready_time(&page, &url);
    let mut warm: Vec<f64> = (0..runs).map(|_| ready_time(&page, &url)).collect();
    warm.sort_by(f64::total_cmp);
    let median = warm[warm.len() / 2];
    let navigation = page.execute(
        "const n = performance.getEntriesByType('navigation')[0]; \
         return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd]",
        json!([]),
    );

    println!(
        "navigation → 请出示付款码 (headless Chromium, loopback, {})",
        demo.app_url
    );
    println!("  cold (new profile, demo pairing): {cold:7.1} ms");
    println!(
        "  warm ({runs} runs): min {:7.1} ms  median {median:7.1} ms  max {:7.1} ms",
        warm[0],
        warm[warm.len() - 1]
    );
    println!(
        "  last warm run: response end {:.1} ms, DOMContentLoaded {:.1} ms, load {:.1} ms",
        navigation[0].as_f64().unwrap_or(f64::NAN),
        navigation[1].as_f64().unwrap_or(f64::NAN),
        navigation[2].as_f64().unwrap_or(f64::NAN)
    );
    let verdict = if cold <= TARGET_MS && median <= TARGET_MS {
        "within"
    } else {
        "OVER"
    };
    println!("  target {TARGET_MS:.0} ms: {verdict} target");
}
