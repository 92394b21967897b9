//! How fast the camera reads a payment code, in headless Chromium on the wasm decoder path
//! (what Chromium on Linux gets), against `paycode-proxy demo` on loopback:
//!
//! 1. Decoding: the decoder worker (`/paycode-decoder_loader.js`, as the page starts it) is
//!    sent 640×480 RGBA frames of a phone showing a payment code, and of an empty counter;
//!    the figure is the worker's own time per frame (RGBA → grey, rows averaged, Code 128 then
//!    QR). Targets: median ≤ 30 ms with a code, ≤ 10 ms blank.
//! 2. Frame → request: a fake camera shows the code from its first frame; the figure is the
//!    time from the video element's first frame (`requestVideoFrameCallback`) to the start of
//!    `POST /api/v1/payments` (resource timing), with a new browser each run, so it includes
//!    starting the decoder. Target: median ≤ 600 ms.
//!
//! `cargo run -p paycode-tests --example camera_bench [-- RUNS]` (default 7 runs of part 2).

// Shared with the browser tests, which use all of both.
#[allow(dead_code)]
#[path = "demo.rs"]
mod demo;
#[allow(dead_code)]
#[path = "webdriver.rs"]
mod webdriver;

use std::time::Duration;

use base64::Engine;
use paycode_tests::fake_camera::{Scene, render, video_of};
use serde_json::{Value, json};

use crate::demo::Demo;
use crate::webdriver::{Camera, Driver, SessionOptions, Stroke};

const DECODES_PER_FRAME: usize = 20;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Part 1: the worker's decode time for each frame, `DECODES_PER_FRAME` times each.
fn decode_times(page: &webdriver::Session<'_>, scenes: &[Scene]) -> Vec<f64> {
    let frames: Vec<String> = scenes
        .iter()
        .map(|scene| base64::engine::general_purpose::STANDARD.encode(render(scene).luma()))
        .collect();
    page.execute(
        "window.__bench = null;
         const frames = arguments[0].map((b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
         const repeat = arguments[1];
         const worker = new Worker('/paycode-decoder_loader.js');
         const times = [];
         const texts = [];
         let sent = 0;
         const send = () => {
             const luma = frames[Math.floor(sent / repeat)];
             const rgba = new Uint8ClampedArray(640 * 480 * 4);
             for (let i = 0; i < luma.length; i++) {
                 rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = luma[i];
                 rgba[4 * i + 3] = 255;
             }
             worker.postMessage({ width: 640, height: 480, pixels: rgba }, [rgba.buffer]);
             sent += 1;
         };
         worker.onmessage = (event) => {
             if (event.data.ready) { send(); return; }
             times.push(event.data.ms);
             texts.push(event.data.text);
             if (sent < frames.length * repeat) { send(); } else {
                 worker.terminate();
                 window.__bench = { times, texts };
             }
         };",
        json!([frames, DECODES_PER_FRAME]),
    );
    let result = page.wait_for(
        "the decoder benchmark",
        Duration::from_secs(120),
        "return window.__bench",
    );
    let texts = result["texts"].as_array().cloned().unwrap_or_default();
    for (index, scene) in scenes.iter().enumerate() {
        let expected = if scene.barcode || scene.qr {
            json!(scene.text)
        } else {
            Value::Null
        };
        let got = &texts[index * DECODES_PER_FRAME];
        assert_eq!(got, &expected, "frame {index} decoded as expected");
    }
    result["times"]
        .as_array()
        .map(|times| times.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Part 2: one run in a new browser with a fake camera showing a fresh code.
fn frame_to_post(driver: &Driver, demo: &Demo, dir: &std::path::Path, run: u64) -> f64 {
    let code = demo.code("password_free");
    let video = dir.join(format!("run{run}.y4m"));
    video_of(&video, &Scene::payment_screen(&code, run * 10), 6);
    let page = driver.session_with(&SessionOptions {
        camera: Camera::Video(video),
        ..SessionOptions::new(1280, 800)
    });
    // Note the first frame the camera's video element presents.
    page.script_before_start(
        "new MutationObserver(() => {
             const video = document.querySelector('video');
             if (video && !video.__watched) {
                 video.__watched = true;
                 video.requestVideoFrameCallback((now) => { window.__firstFrame = now; });
             }
         }).observe(document, { childList: true, subtree: true });",
    );
    page.goto(&format!("{}/?amount=1.00", demo.app_url));
    page.wait_for(
        "the waiting screen",
        Duration::from_secs(30),
        "return document.querySelector('[data-testid=camera-toggle]') !== null",
    );
    page.click("[data-testid=camera-toggle]");
    let figures = page.wait_for(
        "the payment request",
        Duration::from_secs(30),
        "const post = performance.getEntriesByType('resource')
             .find((e) => e.name.endsWith('/api/v1/payments'));
         return post && window.__firstFrame !== undefined
             ? [window.__firstFrame, post.startTime] : null",
    );
    // Leave the page at rest before the browser closes.
    page.keys(&[Stroke {
        key: webdriver::ENTER.to_owned(),
        pause_ms: 0,
    }]);
    figures[1].as_f64().unwrap_or(f64::NAN) - figures[0].as_f64().unwrap_or(f64::NAN)
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(7);
    let demo = Demo::start(1.0);
    let driver = Driver::for_demo(&demo);

    let page = driver.session(1280, 800);
    page.goto(&demo.app_url);
    let code = demo.code("password_free");
    let with_code: Vec<Scene> = (1..=3)
        .map(|seed| Scene::payment_screen(&code, seed))
        .chain((4..=5).map(|seed| Scene {
            barcode: false,
            ..Scene::payment_screen(&code, seed)
        }))
        .collect();
    let blank: Vec<Scene> = (6..=8).map(Scene::blank).collect();
    let mut code_times = decode_times(&page, &with_code);
    let mut blank_times = decode_times(&page, &blank);
    drop(page);

    let dir = tempfile::tempdir().expect("a video directory");
    let mut latencies: Vec<f64> = (0..runs)
        .map(|run| frame_to_post(&driver, &demo, dir.path(), run))
        .collect();

    println!("camera decoding, wasm decoder in a Web Worker (headless Chromium, 640×480 RGBA)");
    println!(
        "  frame with a code ({} frames × {DECODES_PER_FRAME}): median {:6.2} ms  max {:6.2} ms  (target ≤ 30 ms)",
        with_code.len(),
        median(&mut code_times),
        code_times.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  blank frame ({} frames × {DECODES_PER_FRAME}):      median {:6.2} ms  max {:6.2} ms  (target ≤ 10 ms)",
        blank.len(),
        median(&mut blank_times),
        blank_times.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "first camera frame showing the code → POST /api/v1/payments ({runs} runs, new browser each)"
    );
    println!(
        "  min {:6.1} ms  median {:6.1} ms  max {:6.1} ms  (target ≤ 600 ms)",
        latencies.iter().copied().fold(f64::INFINITY, f64::min),
        median(&mut latencies),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}
