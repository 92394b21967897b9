//! The camera on the waiting screen, with Chromium's fake camera playing videos made here:
//! a phone showing a simulator's payment code as Code 128 and QR (or only the QR, or an
//! Alipay code, or nothing), decoded by the wasm decoder in its Web Worker (what headless
//! Chromium on Linux gets: its `BarcodeDetector` lists no formats); the native
//! `BarcodeDetector` branch with a stub put in the page before the app starts; and a refused
//! camera permission, after which the scanner still takes the payment.
//!
//! The tests open the demo's `app_url` (http://127.0.0.1, a secure context); with the proxy
//! serving HTTPS the same tests run over `https://`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use paycode_api::{Fen, PaymentState};
use paycode_tests::fake_camera::{Scene, video_of};
use serde_json::json;
use tempfile::TempDir;

use crate::demo::screenshot_dir;
use crate::webdriver::{Camera, Session, SessionOptions};
use crate::{Demo, Driver, TIME_SCALE, Till, WAIT, serial};

/// How many different noisy frames a video loops over.
const FRAMES: u64 = 6;
/// How long a test watches frames that must not lead to a request.
const WATCH: Duration = Duration::from_secs(4);

/// A fake-camera video of `scene` in a temporary directory.
struct Video {
    _dir: TempDir,
    path: PathBuf,
}

impl Video {
    fn of(scene: &Scene) -> Video {
        let dir = tempfile::tempdir().expect("a video directory");
        let path = dir.path().join("camera.y4m");
        video_of(&path, scene, FRAMES);
        Video { _dir: dir, path }
    }

    /// A browser session whose camera plays this video.
    fn session<'a>(&self, driver: &'a Driver) -> Session<'a> {
        driver.session_with(&camera_session(Camera::Video(self.path.clone())))
    }

    /// The till of `demo` in a browser whose camera plays this video.
    fn till<'a>(&self, driver: &'a Driver, demo: &'a Demo) -> Till<'a> {
        Till::open(self.session(driver), demo)
    }
}

fn camera_session(camera: Camera) -> SessionOptions {
    SessionOptions {
        camera,
        ..SessionOptions::new(1280, 800)
    }
}

impl Till<'_> {
    /// Whether files whose names contain `name` were fetched.
    fn fetched(&self, name: &str) -> bool {
        self.page.execute(
            "return performance.getEntriesByType('resource').some(e => e.name.includes(arguments[0]))",
            json!([name]),
        ) == json!(true)
    }

    /// Whether the decoder worker's files were fetched.
    fn decoder_loaded(&self) -> bool {
        self.fetched("paycode-decoder")
    }

    /// Whether the camera bundle's files were fetched.
    fn camera_bundle_loaded(&self) -> bool {
        self.fetched("paycode-camera")
    }

    /// Opens the camera on the waiting screen (it is not the default on a desktop).
    fn open_camera(&self) {
        self.page.click("[data-testid=camera-toggle]");
        self.page.wait_for(
            "the camera reader",
            WAIT,
            "return document.querySelector('[data-testid=camera]') !== null",
        );
    }

    fn wait_camera_state(&self, state: &str) {
        self.page.wait_for(
            &format!("the camera to be {state}"),
            WAIT,
            &format!(
                "return document.querySelector('[data-testid=camera]')?.dataset.state === {}",
                json!(state)
            ),
        );
    }

    /// Watches the camera run for `WATCH` and checks that no payment was made meanwhile.
    fn assert_no_payment_while_watching(&self) {
        let until = Instant::now() + WATCH;
        while Instant::now() < until {
            assert_eq!(
                self.page.execute(
                    "return document.querySelector('[data-testid=awaiting-code]') !== null",
                    json!([])
                ),
                json!(true),
                "the waiting screen stays"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(
            self.demo.payments().payments.is_empty(),
            "no payment was requested"
        );
    }
}

#[test]
fn the_camera_reads_a_payment_screen_and_the_payment_is_made() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let code = demo.code("password_free");
    let video = Video::of(&Scene::payment_screen(&code, 1));
    let driver = Driver::for_demo(&demo);
    let till = video.till(&driver, &demo);

    till.enter_amount("12.3");
    assert!(
        !till.camera_bundle_loaded() && !till.decoder_loaded(),
        "neither the camera bundle nor the decoder is fetched before the camera opens"
    );
    till.open_camera();
    till.wait_state(PaymentState::Paid);

    assert!(
        till.camera_bundle_loaded() && till.decoder_loaded(),
        "the camera fetched its bundle and the decoder"
    );
    assert_eq!(till.headline(), "收款成功 ¥12.30");
    let payment = till.only_payment();
    assert_eq!(payment.state, PaymentState::Paid);
    assert_eq!(payment.amount_fen, Fen(1230));
    assert_eq!(payment.auth_code_last4, code[14..]);
    assert!(
        till.page
            .execute("return document.querySelector('video') === null", json!([]))
            == json!(true),
        "the camera is gone with the waiting screen"
    );
    till.shot("camera-paid");
}

#[test]
fn the_qr_code_alone_is_enough() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let code = demo.code("password_free");
    let video = Video::of(&Scene {
        barcode: false,
        rotation_deg: -5.0,
        ..Scene::payment_screen(&code, 2)
    });
    let driver = Driver::for_demo(&demo);
    let till = video.till(&driver, &demo);

    till.enter_amount("8");
    till.open_camera();
    till.wait_state(PaymentState::Paid);
    let payment = till.only_payment();
    assert_eq!(
        (payment.amount_fen, payment.auth_code_last4.as_str()),
        (Fen(800), &code[14..])
    );
}

#[test]
fn a_blank_camera_sends_nothing() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let video = Video::of(&Scene::blank(3));
    let driver = Driver::for_demo(&demo);
    let till = video.till(&driver, &demo);

    till.enter_amount("5");
    till.open_camera();
    till.wait_camera_state("running");
    till.shot("camera-running");
    till.assert_no_payment_while_watching();
    assert_eq!(
        till.page.text("[data-testid=camera-message]").as_deref(),
        Some("请顾客将付款码对准摄像头")
    );
}

#[test]
fn an_alipay_code_gets_its_message_and_no_request() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let video = Video::of(&Scene::payment_screen("281234567890123456", 4));
    let driver = Driver::for_demo(&demo);
    let till = video.till(&driver, &demo);

    till.enter_amount("5");
    till.open_camera();
    let notice = till.page.wait_text("[data-testid=notice]", WAIT);
    assert_eq!(notice, "这是支付宝付款码，请顾客出示微信付款码");
    till.shot("camera-alipay");
    till.assert_no_payment_while_watching();
}

#[test]
fn a_refused_camera_says_so_and_the_scanner_still_works() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let driver = Driver::for_demo(&demo);
    let till = Till::open(driver.session_with(&camera_session(Camera::Denied)), &demo);

    till.enter_amount("12.3");
    till.open_camera();
    till.wait_camera_state("failed");
    let failure = till.page.execute(
        "return document.querySelector('[data-testid=camera-message]').dataset.failure",
        json!([]),
    );
    assert_eq!(failure, json!("Denied"));
    let message = till
        .page
        .text("[data-testid=camera-message]")
        .unwrap_or_default();
    assert!(message.starts_with("摄像头权限被拒绝"), "{message}");
    till.shot("camera-denied");

    // The wedge scanner takes the payment meanwhile.
    let code = demo.code("password_free");
    till.scan(&code);
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.only_payment().amount_fen, Fen(1230));
}

#[test]
fn a_native_barcode_detector_that_lists_the_formats_is_used() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let code = demo.code("password_free");
    // A counter with nothing on it: only the stub can read a code.
    let video = Video::of(&Scene::blank(5));
    let driver = Driver::for_demo(&demo);
    let page = video.session(&driver);
    // The stub lists both formats and "reads" the code from the third frame on; it records
    // what it was asked for.
    page.script_before_start(&format!(
        "window.__detector = {{ formats: null, calls: 0 }};
         window.BarcodeDetector = class {{
             static async getSupportedFormats() {{ return ['qr_code', 'code_128', 'ean_13']; }}
             constructor(options) {{ window.__detector.formats = options.formats; }}
             async detect(source) {{
                 window.__detector.calls += 1;
                 if (!(source instanceof HTMLVideoElement)) throw new TypeError('not a video');
                 return window.__detector.calls >= 3 ? [{{ rawValue: {code}, format: 'qr_code' }}] : [];
             }}
         }};",
        code = json!(code)
    ));
    let till = Till::open(page, &demo);

    till.enter_amount("12.3");
    till.open_camera();
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.only_payment().auth_code_last4, code[14..]);
    let detector = till.page.execute("return window.__detector", json!([]));
    assert_eq!(detector["formats"], json!(["code_128", "qr_code"]));
    assert!(detector["calls"].as_u64().unwrap_or(0) >= 3, "{detector}");
    assert!(
        !till.decoder_loaded(),
        "with a working native detector the wasm decoder is never fetched"
    );
}

#[test]
fn on_a_touch_tablet_with_a_camera_the_camera_opens_by_itself() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let code = demo.code("password_free");
    let video = Video::of(&Scene::payment_screen(&code, 2));
    let driver = Driver::for_demo(&demo);
    let page = video.session(&driver);
    // A touch screen (`pointer: coarse`), and no scanner ever seen on this new profile.
    page.cdp(
        "Emulation.setTouchEmulationEnabled",
        json!({ "enabled": true, "maxTouchPoints": 5 }),
    );
    let till = Till::open(page, &demo);
    assert_eq!(
        till.page
            .execute("return matchMedia('(pointer: coarse)').matches", json!([])),
        json!(true),
        "the page sees a touch screen"
    );

    till.enter_amount("12.3");
    // Nobody presses 摄像头扫码: the camera is already reading.
    till.wait_state(PaymentState::Paid);

    assert!(till.camera_bundle_loaded() && till.decoder_loaded());
    assert_eq!(till.only_payment().auth_code_last4, code[14..]);
}

#[test]
fn over_plain_http_to_another_machine_the_camera_asks_for_https() {
    let _serial = serial();
    let demo = Demo::start_http(TIME_SCALE);
    let video = Video::of(&Scene::blank(7));
    let driver = Driver::for_demo(&demo);
    // The tablet opens the proxy by a name on the shop's network, not by a loopback address.
    let page = driver.session_with(&SessionOptions {
        host_rules: Some("MAP till.shop.test 127.0.0.1".to_owned()),
        ..camera_session(Camera::Video(video.path.clone()))
    });
    let url = demo.app_url.replace("127.0.0.1", "till.shop.test");
    assert!(url.starts_with("http://till.shop.test:"), "{url}");
    page.goto(&url);
    page.wait_text("[data-testid=amount]", WAIT);
    assert_eq!(
        page.execute("return window.isSecureContext", json!([])),
        json!(false)
    );
    let till = Till { page, demo: &demo };

    till.enter_amount("5");
    till.open_camera();
    till.wait_camera_state("failed");
    assert_eq!(
        till.page.execute(
            "return document.querySelector('[data-testid=camera-message]').dataset.failure",
            json!([])
        ),
        json!("Insecure")
    );
    let message = till
        .page
        .text("[data-testid=camera-message]")
        .unwrap_or_default();
    assert!(message.contains("https://"), "{message}");
    assert_eq!(
        till.page.execute(
            "return document.querySelector('[data-testid=camera-button]').hidden",
            json!([])
        ),
        json!(true),
        "trying again cannot help: no 重试"
    );
    till.shot("camera-insecure");
    // The wedge scanner takes the payment meanwhile.
    let code = demo.code("password_free");
    till.scan(&code);
    till.wait_state(PaymentState::Paid);
    assert_eq!(till.only_payment().amount_fen, Fen(500));
}

#[test]
fn a_hidden_tab_stops_the_camera_and_it_opens_again() {
    let _serial = serial();
    let demo = Demo::start(TIME_SCALE);
    let video = Video::of(&Scene::blank(6));
    let driver = Driver::for_demo(&demo);
    let till = video.till(&driver, &demo);

    till.enter_amount("5");
    till.open_camera();
    till.wait_camera_state("running");
    let live = "const v = document.querySelector('[data-testid=camera-video]'); \
                return v && v.srcObject && v.srcObject.getVideoTracks()[0].readyState === 'live'";
    till.page.wait_for("a live camera track", WAIT, live);
    // The tab goes to the background (what the page sees of it: `document.hidden` and the
    // event).
    till.page.execute(
        "window.__track = document.querySelector('[data-testid=camera-video]').srcObject.getVideoTracks()[0]; \
         Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }); \
         document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    till.page.wait_for(
        "the camera to stop",
        WAIT,
        "return window.__track.readyState === 'ended' \
            && document.querySelector('[data-testid=camera-video]').srcObject === null",
    );
    // Back in the foreground: a new stream.
    till.page.execute(
        "Object.defineProperty(document, 'hidden', { configurable: true, get: () => false }); \
         document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    till.page.wait_for("the camera to open again", WAIT, live);
    till.wait_camera_state("running");
    assert!(till.demo.payments().payments.is_empty());
}

#[test]
fn a_fresh_tablet_pairs_by_scanning_the_pairing_qr_code_with_the_app() {
    let _serial = serial();
    let demo = Demo::start_https(TIME_SCALE);
    let url = demo.pairing_url("tablet-2");
    // The pairing QR code on the administrator's screen, held up to the tablet's camera.
    let video = Video::of(&Scene {
        barcode: false,
        ..Scene::payment_screen(&url, 8)
    });
    let driver = Driver::for_demo(&demo);
    let page = video.session(&driver);
    page.goto(&demo.app_url);
    // Demo mode pairs a fresh browser with its own terminal; 扫码配对 in the settings
    // replaces it with the terminal the QR code names.
    page.wait_text("[data-testid=amount]", WAIT);
    page.click(".tabs .tab:nth-child(3)");
    page.click("[data-testid=pair-camera]");
    page.wait_for(
        "the scanned terminal to be paired",
        WAIT,
        "const e = document.querySelector('[data-testid=terminal]'); \
         return e && e.innerText.startsWith('tablet-2') ? e.innerText : null",
    );
    page.screenshot(&screenshot_dir().join("camera-pairing.png"));

    let token = page.execute("return localStorage.getItem('paycode.token')", json!([]));
    let token = token.as_str().expect("a stored token").to_owned();
    assert_ne!(token, demo.token);
    let code = url.split("#pair=").nth(1).expect("a code");
    let replay = demo
        .client
        .post(format!("{}/api/v1/pairing", demo.app_url))
        .json(&json!({ "code": code }))
        .send()
        .expect("the proxy answers");
    assert_eq!(replay.status().as_u16(), 400, "the code worked once");
    assert!(
        page.execute("return document.querySelector('video') === null", json!([])) == json!(true),
        "the camera closed once the code was taken"
    );
}
