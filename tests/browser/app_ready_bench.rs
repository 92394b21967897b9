//! How fast the cashier page is ready to scan: the time from navigation to "请出示付款码"
//! (the app's `paycode-ready` performance mark, made when the waiting screen is mounted and
//! the scanner armed) in headless Chromium against `paycode-proxy demo`.
//!
//! `cargo run -p paycode-tests --example app_ready_bench [-- RUNS] [--tablet] [--https]
//! [--uncompressed] [--no-settle]`
//! (default 10 runs). The page is opened as `/?amount=12.30`, the way a till opens it for
//! one sale.
//!
//! - Default (desktop on loopback): the first run is cold (new profile: no cache, no token,
//!   demo pairing); the others reuse the cache and the stored token. Target: ≤ 500 ms.
//! - `--tablet`: a tablet on the shop's Wi-Fi loading the app for the first time. Every run
//!   is cold (a new profile), with the CPU slowed four times
//!   (`Emulation.setCPUThrottlingRate`) and the network at 5 Mbit/s down, 2 Mbit/s up and
//!   20 ms latency (`Network.emulateNetworkConditions`, in bytes per second). Target: median
//!   ≤ 600 ms.
//! - `--https`: the demo over HTTPS (`demo --tls`), the browser trusting its CA.
//! - Each tablet run's new browser is left 1.5 s to finish starting before it navigates
//!   ([`settle`]); `--no-settle` navigates at once, as the benchmark did at first.
//! - `--uncompressed`: the browser asks for `Accept-Encoding: identity`, so the app arrives
//!   uncompressed, as the proxy served it before it compressed (for before/after figures;
//!   on a cold profile caching plays no part).
//!
//! It also prints the bytes the page transferred (Resource Timing `transferSize`: headers
//! and, compressed or not, bodies) on a cold load.

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

const DESKTOP_TARGET_MS: f64 = 500.0;
const TABLET_TARGET_MS: f64 = 600.0;
/// The tablet's CPU: four times slower than this machine's.
const TABLET_CPU_SLOWDOWN: f64 = 4.0;

/// Navigates and returns the milliseconds from navigation start to the ready mark.
fn ready_time(page: &Session<'_>, url: &str) -> f64 {
    page.goto(url);
    let mark = page.wait_for(
        "the paycode-ready mark",
        Duration::from_secs(60),
        "const m = performance.getEntriesByName('paycode-ready'); \
         const h = document.querySelector('[data-testid=awaiting-code] h1'); \
         return m.length && h && h.innerText === '请出示付款码' ? m[0].startTime : null",
    );
    mark.as_f64().expect("a time in milliseconds")
}

/// The bytes the page's navigation and resources transferred.
fn transferred_bytes(page: &Session<'_>) -> f64 {
    page.execute(
        "return performance.getEntriesByType('navigation') \
           .concat(performance.getEntriesByType('resource')) \
           .reduce((sum, entry) => sum + (entry.transferSize || 0), 0)",
        json!([]),
    )
    .as_f64()
    .unwrap_or(f64::NAN)
}

/// Where a cold load's time went, in milliseconds from navigation start: the connection
/// (TCP and, over HTTPS, the TLS handshake), the page's response, the main wasm's first
/// and last byte (Navigation and Resource Timing), and when it started running (the app's
/// `paycode-start` mark: compiled and instantiated).
fn phases(page: &Session<'_>) -> [f64; 6] {
    let phases = page.execute(
        "const n = performance.getEntriesByType('navigation')[0]; \
         const w = performance.getEntriesByType('resource') \
           .find((e) => /paycode-app-[0-9a-f]+_bg\\.wasm$/.test(e.name)); \
         return [n.connectEnd - n.connectStart, \
                 n.secureConnectionStart > 0 ? n.connectEnd - n.secureConnectionStart : 0, \
                 n.responseEnd, w ? w.responseStart : NaN, w ? w.responseEnd : NaN, \
                 (performance.getEntriesByName('paycode-start')[0] || {}).startTime]",
        json!([]),
    );
    std::array::from_fn(|index| phases[index].as_f64().unwrap_or(f64::NAN))
}

/// The median of `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// How long a new browser is left to finish starting before it navigates.
const SETTLE: Duration = Duration::from_millis(1500);

/// Lets the browser just started for a run finish its own start-up (its processes, profile
/// files and background tasks) before the measured navigation. A tablet's browser is already
/// running when the cashier opens the page; here every run starts a new one on the same two
/// cores, and without the pause its start-up competes with the page it loads. Measuring
/// starts at navigation, so the pause itself is never counted.
fn settle() {
    std::thread::sleep(SETTLE);
}

/// Slows a session down to the tablet's CPU and network.
fn emulate_tablet(page: &Session<'_>, uncompressed: bool) {
    page.emulate_shop_wifi();
    if uncompressed {
        page.cdp(
            "Network.setExtraHTTPHeaders",
            json!({ "headers": { "Accept-Encoding": "identity" } }),
        );
    }
    page.cdp(
        "Emulation.setCPUThrottlingRate",
        json!({ "rate": TABLET_CPU_SLOWDOWN }),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(10);
    let tablet = args.iter().any(|arg| arg == "--tablet");
    let https = args.iter().any(|arg| arg == "--https");
    let uncompressed = args.iter().any(|arg| arg == "--uncompressed");
    let settled = !args.iter().any(|arg| arg == "--no-settle");
    let demo = if https {
        Demo::start_https(1.0)
    } else {
        Demo::start(1.0)
    };
    let driver = Driver::for_demo(&demo);
    let url = format!("{}/?amount=12.30", demo.app_url);
    if tablet {
        tablet_runs(&driver, &url, &demo, runs, uncompressed, settled);
    } else {
        desktop_runs(&driver, &url, &demo, runs);
    }
}

fn tablet_runs(
    driver: &Driver,
    url: &str,
    demo: &Demo,
    runs: usize,
    uncompressed: bool,
    settled: bool,
) {
    let mut times = Vec::with_capacity(runs);
    let mut timelines: [Vec<f64>; 6] = Default::default();
    let mut bytes = f64::NAN;
    for _ in 0..runs {
        // A new profile each time: no HTTP cache, no service worker, no stored token.
        let page = driver.session(1280, 800);
        if settled {
            settle();
        }
        emulate_tablet(&page, uncompressed);
        times.push(ready_time(&page, url));
        bytes = transferred_bytes(&page);
        for (timeline, phase) in timelines.iter_mut().zip(phases(&page)) {
            timeline.push(phase);
        }
    }
    let [connect, tls, page_end, wasm_start, wasm_end, started] =
        timelines.map(|mut values| median(&mut values));
    let median = median(&mut times);
    println!(
        "navigation → 请出示付款码, first load on a tablet ({runs} cold profiles; CPU ×{TABLET_CPU_SLOWDOWN}, \
         5 Mbit/s down, 2 up, 20 ms; {}{}{})",
        demo.app_url,
        if uncompressed { "; uncompressed" } else { "" },
        if settled { "" } else { "; no settling" }
    );
    println!(
        "  min {:7.1} ms  median {median:7.1} ms  max {:7.1} ms",
        times[0],
        times[times.len() - 1]
    );
    println!("  bytes transferred on a cold load: {bytes:.0}");
    println!(
        "  medians from navigation start: connection {connect:.1} ms (TLS {tls:.1}), page \
         received {page_end:.1} ms, main wasm first byte {wasm_start:.1} ms, last byte \
         {wasm_end:.1} ms, running {started:.1} ms; ready {median:.1} ms"
    );
    let verdict = if median <= TABLET_TARGET_MS {
        "within"
    } else {
        "OVER"
    };
    println!("  target median {TABLET_TARGET_MS:.0} ms: {verdict} target");
}

fn desktop_runs(driver: &Driver, url: &str, demo: &Demo, runs: usize) {
    let page = driver.session(1280, 800);
    let cold = ready_time(&page, url);
    let cold_bytes = transferred_bytes(&page);
    let mut warm: Vec<f64> = (0..runs).map(|_| ready_time(&page, url)).collect();
    let median = median(&mut warm);
    let navigation = page.execute(
        "const n = performance.getEntriesByType('navigation')[0]; \
         return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd]",
        json!([]),
    );

    println!(
        "navigation → 请出示付款码 (headless Chromium, loopback, {})",
        demo.app_url
    );
    println!(
        "  cold (new profile, demo pairing): {cold:7.1} ms, {cold_bytes:.0} bytes transferred"
    );
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
    let verdict = if cold <= DESKTOP_TARGET_MS && median <= DESKTOP_TARGET_MS {
        "within"
    } else {
        "OVER"
    };
    println!("  target {DESKTOP_TARGET_MS:.0} ms: {verdict} target");
}
