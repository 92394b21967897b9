//! A small W3C WebDriver client over blocking reqwest: chromedriver as a child process, one
//! headless Chromium session with a fresh profile (optionally with a fake camera), and the
//! handful of commands the browser tests need (navigate, run script, find and click, real key
//! actions, screenshots, a script run before the page's own).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use paycode_tests::free_port;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Where a program is: the environment variable `env`, else the first of `names` on `PATH`.
fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Chromium, or a failure that says how to install it.
pub fn chromium_binary() -> PathBuf {
    find_program(
        "PAYCODE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .unwrap_or_else(|| {
        panic!(
            "the browser tests need Chromium, which is not installed: run `scripts/test` (it \
             installs it through `ensure_chromium` in scripts/lib.sh) or \
             `apt-get install chromium chromium-driver`; PAYCODE_CHROMIUM names another binary"
        )
    })
}

/// chromedriver, or a failure that says how to install it.
pub fn chromedriver_binary() -> PathBuf {
    find_program("PAYCODE_CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "the browser tests need chromedriver, which is not installed: run `scripts/test` (it \
             installs it through `ensure_chromium` in scripts/lib.sh) or \
             `apt-get install chromium-driver`; PAYCODE_CHROMEDRIVER names another binary"
        )
    })
}

/// A key action step: press and release a key, then pause.
#[derive(Clone, Debug)]
pub struct Stroke {
    /// The WebDriver key value: a character, or [`ENTER`].
    pub key: String,
    /// The pause after releasing it, in milliseconds.
    pub pause_ms: u64,
}

/// One step of a raw key action sequence.
#[derive(Clone, Debug)]
pub enum KeyAction {
    /// Press (and hold) a key: a character or a WebDriver key value.
    Down(String),
    /// Release it.
    Up(String),
    /// Wait this many milliseconds.
    Pause(u64),
}

/// WebDriver key values (W3C WebDriver, "Keyboard actions", the normalised key table).
pub mod key {
    /// The left Control key.
    pub const CONTROL: &str = "\u{E009}";
    /// The left Alt key.
    pub const ALT: &str = "\u{E00A}";
    /// F12.
    pub const F12: &str = "\u{E03C}";

    /// The numpad digit `digit` (`code` Numpad0–Numpad9).
    pub fn numpad(digit: u32) -> String {
        char::from_u32(0xE01A + digit)
            .expect("E01A–E023 are characters")
            .to_string()
    }
}

/// The WebDriver key value of the main Enter key (`Return`, code `Enter`; `\u{E007}` is
/// the keypad's Enter).
pub const ENTER: &str = "\u{E006}";

/// The camera a session's Chromium sees.
#[derive(Clone, Debug, Default)]
pub enum Camera {
    /// Chromium's default: no fake device.
    #[default]
    None,
    /// A fake camera playing this `.y4m` or `.mjpeg` file in a loop, permission granted.
    Video(PathBuf),
    /// A fake camera, permission refused.
    Denied,
}

/// How to open a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Viewport width, CSS pixels.
    pub width: u32,
    /// Viewport height, CSS pixels.
    pub height: u32,
    /// The camera (per session: Chromium's fake-camera flags are command-line flags).
    pub camera: Camera,
    /// Chromium's `--host-resolver-rules` (e.g. `MAP till.shop.test 127.0.0.1`): a page
    /// opened by that name reaches this machine, but its origin is not loopback, so it is
    /// not a secure context over plain HTTP, as on a shop's network.
    pub host_rules: Option<String>,
}

impl SessionOptions {
    /// A `width`×`height` session with no camera.
    pub fn new(width: u32, height: u32) -> SessionOptions {
        SessionOptions {
            width,
            height,
            camera: Camera::None,
            host_rules: None,
        }
    }
}

/// chromedriver, running.
pub struct Driver {
    process: Child,
    _home: Option<TempDir>,
    base: String,
    client: Client,
}

/// A temporary home directory whose NSS database (`.pki/nssdb`) trusts `ca_pem` for TLS
/// servers.
fn nss_home_trusting(ca_pem: &Path) -> TempDir {
    let home = tempfile::tempdir().expect("a home directory");
    let database = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&database).expect("the NSS database directory");
    let database = format!("sql:{}", database.display());
    let certutil = |args: &[&str]| {
        let status = Command::new("certutil")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run certutil ({error}): install libnss3-tools \
                     (`source scripts/lib.sh && ensure_chromium`)"
                )
            });
        assert!(status.success(), "certutil {args:?} failed");
    };
    certutil(&["-N", "-d", &database, "--empty-password"]);
    let ca = ca_pem.display().to_string();
    certutil(&[
        "-A",
        "-d",
        &database,
        "-t",
        "C,,",
        "-n",
        "paycode-test-ca",
        "-i",
        &ca,
    ]);
    home
}

impl Driver {
    /// Starts chromedriver on a free port for `demo` and waits until it is ready; over
    /// HTTPS its browsers trust the demo's CA.
    pub fn for_demo(demo: &crate::demo::Demo) -> Driver {
        Driver::start_trusting(demo.https_ca.as_deref())
    }

    /// Starts chromedriver whose browsers also trust the CA certificate `ca_pem`. Chromium
    /// on Linux reads trust from the NSS database in `$HOME/.pki/nssdb`, so chromedriver
    /// (and the Chromium it starts) gets a temporary home whose database holds the CA,
    /// added with `certutil` (libnss3-tools).
    pub fn start_trusting(ca_pem: Option<&Path>) -> Driver {
        let home = ca_pem.map(nss_home_trusting);
        let binary = chromedriver_binary();
        let port = free_port();
        let mut command = Command::new(&binary);
        if let Some(home) = &home {
            command.env("HOME", home.path());
        }
        let process = command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let driver = Driver {
            process,
            _home: home,
            base: format!("http://127.0.0.1:{port}"),
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .ok()
                .and_then(|response| response.json::<Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == json!(true));
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens a headless Chromium with a fresh profile and a `width`×`height` window.
    pub fn session(&self, width: u32, height: u32) -> Session<'_> {
        self.session_with(&SessionOptions::new(width, height))
    }

    /// Opens a headless Chromium with a fresh profile and `options`.
    pub fn session_with(&self, options: &SessionOptions) -> Session<'_> {
        let (width, height) = (options.width, options.height);
        let profile = tempfile::tempdir().expect("a profile directory");
        let chromium = chromium_binary();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--lang=zh-CN",
            "--autoplay-policy=no-user-gesture-required",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        if let Some(rules) = &options.host_rules {
            args.push(format!("--host-resolver-rules={rules}"));
        }
        match &options.camera {
            Camera::None => {}
            Camera::Video(file) => {
                // A fake camera playing `file` in a loop; the permission prompt answers yes.
                args.push("--use-fake-ui-for-media-stream".to_owned());
                args.push("--use-fake-device-for-media-stream".to_owned());
                args.push(format!(
                    "--use-file-for-fake-video-capture={}",
                    file.display()
                ));
            }
            Camera::Denied => {
                // A fake camera whose permission prompt answers no (NotAllowedError).
                args.push("--use-fake-ui-for-media-stream=deny".to_owned());
                args.push("--use-fake-device-for-media-stream".to_owned());
            }
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": args,
                    },
                },
            },
        });
        let reply = self.post("/session", &capabilities);
        let id = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {reply}"))
            .to_owned();
        let session = Session {
            driver: self,
            id,
            _profile: profile,
        };
        session.set_viewport(width, height);
        session
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .unwrap_or_else(|error| panic!("WebDriver POST {path} failed: {error}"));
        response
            .json()
            .unwrap_or_else(|error| panic!("WebDriver POST {path}: unreadable reply: {error}"))
    }

    fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .and_then(|response| response.json())
            .unwrap_or_else(|error| panic!("WebDriver GET {path} failed: {error}"))
    }

    fn delete(&self, path: &str) {
        let _ = self.client.delete(format!("{}{path}", self.base)).send();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One browser session.
pub struct Session<'a> {
    driver: &'a Driver,
    id: String,
    _profile: TempDir,
}

impl Session<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    fn command(&self, rest: &str, body: Value) -> Value {
        let reply = self.driver.post(&self.path(rest), &body);
        if let Some(error) = reply["value"]["error"].as_str() {
            panic!(
                "WebDriver {rest} failed: {error}: {}",
                reply["value"]["message"]
            );
        }
        reply["value"].clone()
    }

    /// Makes the page's viewport exactly `width`×`height` CSS pixels.
    pub fn set_viewport(&self, width: u32, height: u32) {
        let outer = self.execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
            json!([]),
        );
        let extra_width = outer[0].as_u64().unwrap_or(0) as u32;
        let extra_height = outer[1].as_u64().unwrap_or(0) as u32;
        self.command(
            "/window/rect",
            json!({"width": width + extra_width, "height": height + extra_height}),
        );
    }

    /// Runs a Chrome DevTools Protocol command (chromedriver's `goog/cdp/execute`).
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.command("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
    }

    /// Slows the network to a tablet's on the shop's Wi-Fi: 5 Mbit/s down, 2 Mbit/s up,
    /// 20 ms latency (CDP takes throughput in bytes per second).
    pub fn emulate_shop_wifi(&self) {
        self.cdp("Network.enable", json!({}));
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({
                "offline": false,
                "latency": 20.0,
                "downloadThroughput": 5_000_000.0 / 8.0,
                "uploadThroughput": 2_000_000.0 / 8.0,
            }),
        );
    }

    /// Navigates and waits for the load event.
    pub fn goto(&self, url: &str) {
        self.command("/url", json!({ "url": url }));
    }

    /// Reloads the page.
    pub fn refresh(&self) {
        self.command("/refresh", json!({}));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.command("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Polls `script` until it returns something other than `null`/`false`, or fails with
    /// `what` after `timeout`, with a screenshot of the page at that moment.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, json!([]));
            if !value.is_null() && value != json!(false) {
                return value;
            }
            if Instant::now() > deadline {
                let body = self.execute("return document.body.innerText", json!([]));
                panic!("timed out after {timeout:?} waiting for {what}; the page says:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    /// Waits for an element matching `css` and returns its visible text.
    pub fn wait_text(&self, css: &str, timeout: Duration) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null",
            json!(css)
        );
        self.wait_for(css, timeout, &script)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The visible text of the first element matching `css`, if any.
    pub fn text(&self, css: &str) -> Option<String> {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null",
            json!(css)
        );
        self.execute(&script, json!([])).as_str().map(str::to_owned)
    }

    /// The WebDriver id of the first element matching `css`; panics when there is none.
    fn element(&self, css: &str) -> String {
        let found = self.command("/element", json!({"using": "css selector", "value": css}));
        found
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    /// Clicks the first element matching `css` with a real (trusted) pointer click.
    pub fn click(&self, css: &str) {
        let element = self.element(css);
        self.command(&format!("/element/{element}/click"), json!({}));
    }

    /// Types `text` into the first element matching `css` (real key events).
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.command(&format!("/element/{element}/clear"), json!({}));
        self.command(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    /// Presses keys through the WebDriver actions API: chromedriver dispatches them as
    /// trusted key events through the browser's input pipeline, with the given pauses.
    pub fn keys(&self, strokes: &[Stroke]) {
        let mut actions = Vec::new();
        for stroke in strokes {
            actions.push(KeyAction::Down(stroke.key.clone()));
            actions.push(KeyAction::Up(stroke.key.clone()));
            if stroke.pause_ms > 0 {
                actions.push(KeyAction::Pause(stroke.pause_ms));
            }
        }
        self.key_actions(&actions);
    }

    /// Performs raw key actions (a key held while others are pressed: Alt + numpad, Ctrl+J).
    pub fn key_actions(&self, steps: &[KeyAction]) {
        let actions: Vec<Value> = steps
            .iter()
            .map(|step| match step {
                KeyAction::Down(key) => json!({"type": "keyDown", "value": key}),
                KeyAction::Up(key) => json!({"type": "keyUp", "value": key}),
                KeyAction::Pause(ms) => json!({"type": "pause", "duration": ms}),
            })
            .collect();
        self.command(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
        self.driver.delete(&self.path("/actions"));
    }

    /// Commits `text` into the focused element as an input method does (one trusted `input`
    /// event with no key events: Chromium's DevTools `Input.insertText`).
    pub fn insert_text(&self, text: &str) {
        self.command(
            "/goog/cdp/execute",
            json!({"cmd": "Input.insertText", "params": {"text": text}}),
        );
    }

    /// Runs `source` in every document this session opens from now on, before the page's
    /// own scripts (DevTools `Page.addScriptToEvaluateOnNewDocument`).
    pub fn script_before_start(&self, source: &str) {
        self.command(
            "/goog/cdp/execute",
            json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}}),
        );
    }

    /// Turns the browser's network off or on (chromedriver's network emulation).
    pub fn set_offline(&self, offline: bool) {
        self.command(
            "/chromium/network_conditions",
            json!({"network_conditions": {
                "offline": offline,
                "latency": 0,
                "download_throughput": -1,
                "upload_throughput": -1,
            }}),
        );
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let data = self.driver.get(&self.path("/screenshot"))["value"]
            .as_str()
            .map(str::to_owned)
            .expect("a screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("the screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.driver.delete(&format!("/session/{}", self.id));
    }
}
