//! The camera reader's workings (`docs/capture.md` §7): it opens the camera into the page's
//! reader (`ui::camera`: a `<video>`, a message line and a button), feeds frames to a decoder,
//! writes the reader's state into those elements (`data-state`, the message, the button) and
//! hands every decoded text to the page's callback, which filters them.
//!
//! - Decoder: the browser's `BarcodeDetector` when `getSupportedFormats()` lists `code_128`
//!   or `qr_code` (`model::camera::choose_decoder`), else the wasm decoder (`decoder/`) in a
//!   Web Worker started from [`WORKER_URL`] only now.
//! - Frames: the rear camera (`facingMode: environment`); one decode in flight at most
//!   `model::camera::MAX_FPS` times a second; worker frames drawn at most 640 px wide and
//!   transferred, not copied.
//! - The camera stops on [`close`] (the page's reader goes: the screen changed) and while
//!   the tab is hidden, and opens again when the tab comes back.
//!
//! One camera runs at a time; its state lives in a thread-local, and a generation number
//! makes the answers of a closed camera harmless.

use std::cell::{Cell, RefCell};

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, HtmlElement, HtmlVideoElement, MediaStream,
    MediaStreamConstraints, MediaStreamTrack, MessageEvent, Worker,
};

use paycode_app::browser;
use paycode_app::model::camera::{
    CameraFailure, DecoderChoice, FRAME_WIDTH, FramePacer, choose_decoder, frame_size,
    mirror_preview,
};
use paycode_app::model::i18n::{CameraText, Lang, camera_failure_text, camera_text};

/// The decoder worker's loader, written by Trunk next to the app (`www/index.html`).
const WORKER_URL: &str = "/paycode-decoder_loader.js";

/// What the reader shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CameraStatus {
    /// Asking for the camera and starting the decoder.
    Starting,
    /// Frames are being decoded; `torch` is the light's state where the camera has one.
    Running {
        /// `None`: no torch; else whether it is on.
        torch: Option<bool>,
    },
    /// The camera is not running.
    Failed(CameraFailure),
}

enum Decoder {
    Native(JsValue),
    Worker {
        worker: Worker,
        ready: bool,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_error: Closure<dyn FnMut(web_sys::Event)>,
    },
}

/// The page's reader: its element, its `<video>`, its language and its callback.
#[derive(Clone)]
struct Target {
    root: HtmlElement,
    video: HtmlVideoElement,
    lang: Lang,
    on_text: Function,
}

struct Session {
    generation: u64,
    target: Target,
    status: CameraStatus,
    stream: Option<MediaStream>,
    track: Option<MediaStreamTrack>,
    decoder: Option<Decoder>,
    canvas: Option<(HtmlCanvasElement, CanvasRenderingContext2d)>,
    pacer: FramePacer,
    timer: Option<i32>,
}

thread_local! {
    static WANTED: RefCell<Option<Target>> = const { RefCell::new(None) };
    static CURRENT: RefCell<Option<Session>> = const { RefCell::new(None) };
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static VISIBILITY: RefCell<Option<Closure<dyn FnMut()>>> = const { RefCell::new(None) };
}

/// Opens the camera of the page's reader `root`, shown in `lang` (closing any other
/// first); nothing when `root` holds no `<video>`.
pub fn open(root: HtmlElement, lang: Lang, on_text: Function) {
    close();
    let Some(video) = root
        .query_selector("video")
        .ok()
        .flatten()
        .and_then(|video| video.dyn_into::<HtmlVideoElement>().ok())
    else {
        return;
    };
    WANTED.with(|cell| {
        *cell.borrow_mut() = Some(Target {
            root,
            video,
            lang,
            on_text,
        });
    });
    watch_visibility();
    start_session();
}

/// Stops the camera for good (until the next [`open`]).
pub fn close() {
    WANTED.with(|cell| cell.borrow_mut().take());
    unwatch_visibility();
    stop_session();
}

/// The reader's button: the torch while running, else a retry.
pub fn pressed() {
    let generation = GENERATION.with(Cell::get);
    match with_session(generation, |session| session.status) {
        Some(CameraStatus::Running { torch: Some(on) }) => set_torch(!on),
        Some(CameraStatus::Running { .. } | CameraStatus::Starting) => {}
        Some(CameraStatus::Failed(_)) | None => start_session(),
    }
}

/// Writes `status` into the reader's elements.
fn show(target: &Target, status: CameraStatus) {
    let root = &target.root;
    let (state, message, button) = match status {
        CameraStatus::Starting => (
            "starting",
            camera_text(target.lang, CameraText::Starting),
            None,
        ),
        CameraStatus::Running { torch } => (
            "running",
            camera_text(target.lang, CameraText::Hint),
            torch.map(|on| {
                if on {
                    CameraText::TorchOff
                } else {
                    CameraText::TorchOn
                }
            }),
        ),
        CameraStatus::Failed(failure) => (
            "failed",
            camera_failure_text(target.lang, failure),
            failure.can_retry().then_some(CameraText::Retry),
        ),
    };
    let _ = root.set_attribute("data-state", state);
    if let Ok(Some(line)) = root.query_selector("[data-testid=camera-message]") {
        let failure = match status {
            CameraStatus::Failed(failure) => Some(failure),
            _ => None,
        };
        line.set_text_content(Some(message));
        let _ = line.set_attribute("role", if failure.is_some() { "alert" } else { "status" });
        let _ = line.set_attribute(
            "class",
            if failure.is_some() {
                "camera-failure"
            } else {
                "camera-status"
            },
        );
        let _ = line.set_attribute("data-failure", failure.map_or("", CameraFailure::name));
    }
    if let Ok(Some(element)) = root.query_selector("[data-testid=camera-button]")
        && let Ok(element) = element.dyn_into::<HtmlElement>()
    {
        element.set_hidden(button.is_none());
        element.set_text_content(button.map(|label| camera_text(target.lang, label)));
    }
}

fn document_hidden() -> bool {
    browser::window()
        .document()
        .is_some_and(|document| document.hidden())
}

/// Follows `visibilitychange`: the camera stops while the tab is hidden, and opens again
/// when it comes back.
fn watch_visibility() {
    unwatch_visibility();
    let closure = Closure::<dyn FnMut()>::new(|| {
        if document_hidden() {
            stop_session();
        } else {
            start_session();
        }
    });
    if let Some(document) = browser::window().document() {
        let _ = document
            .add_event_listener_with_callback("visibilitychange", closure.as_ref().unchecked_ref());
    }
    VISIBILITY.with(|cell| *cell.borrow_mut() = Some(closure));
}

fn unwatch_visibility() {
    if let Some(closure) = VISIBILITY.with(|cell| cell.borrow_mut().take())
        && let Some(document) = browser::window().document()
    {
        let _ = document.remove_event_listener_with_callback(
            "visibilitychange",
            closure.as_ref().unchecked_ref(),
        );
    }
}

fn with_session<T>(generation: u64, action: impl FnOnce(&mut Session) -> T) -> Option<T> {
    CURRENT.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .filter(|session| session.generation == generation)
            .map(action)
    })
}

/// Starts a session for what the page asked for (stopping any other first); nothing while
/// the tab is hidden or after [`close`].
fn start_session() {
    stop_session();
    let Some(target) = WANTED.with(|cell| cell.borrow().clone()) else {
        return;
    };
    if document_hidden() {
        return;
    }
    let generation = GENERATION.with(|cell| {
        cell.set(cell.get() + 1);
        cell.get()
    });
    show(&target, CameraStatus::Starting);
    CURRENT.with(|cell| {
        *cell.borrow_mut() = Some(Session {
            generation,
            target,
            status: CameraStatus::Starting,
            stream: None,
            track: None,
            decoder: None,
            canvas: None,
            pacer: FramePacer::default(),
            timer: None,
        });
    });
    spawn_local(async move {
        if let Err(failure) = start(generation).await {
            fail(generation, failure);
        }
    });
}

/// Records and shows a new status of the current session.
fn set_status(generation: u64, status: CameraStatus) {
    let target = with_session(generation, |session| {
        session.status = status;
        session.target.clone()
    });
    if let Some(target) = target {
        show(&target, status);
    }
}

/// Stops the camera, the decoder and the frame loop.
fn stop_session() {
    GENERATION.with(|cell| cell.set(cell.get() + 1));
    let Some(session) = CURRENT.with(|cell| cell.borrow_mut().take()) else {
        return;
    };
    if let Some(timer) = session.timer {
        browser::clear_timeout(timer);
    }
    if let Some(stream) = &session.stream {
        stop_stream(stream);
    }
    // And whatever the preview shows: a stream must never outlive its reader (the browser tests
    // saw a live track left on the preview when only the stored stream was stopped).
    let video = &session.target.video;
    if let Some(shown) = video.src_object() {
        stop_stream(&shown);
    }
    video.set_src_object(None);
    if let Some(Decoder::Worker { worker, .. }) = &session.decoder {
        worker.terminate();
    }
}

fn stop_stream(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
            track.stop();
        }
    }
}

/// Ends a session with a failure the reader shows (重试 opens a new one).
fn fail(generation: u64, failure: CameraFailure) {
    let Some(target) = with_session(generation, |session| session.target.clone()) else {
        return;
    };
    stop_session();
    show(&target, CameraStatus::Failed(failure));
}

fn object(entries: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in entries {
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object.into()
}

fn failure_of(error: &JsValue) -> CameraFailure {
    Reflect::get(error, &"name".into())
        .ok()
        .and_then(|name| name.as_string())
        .map_or(CameraFailure::Other, |name| {
            CameraFailure::from_error_name(&name)
        })
}

async fn start(generation: u64) -> Result<(), CameraFailure> {
    let window = browser::window();
    if !window.is_secure_context() {
        return Err(CameraFailure::Insecure);
    }
    let devices = window
        .navigator()
        .media_devices()
        .map_err(|_| CameraFailure::Insecure)?;
    // The decoder starts first: the worker loads while the camera permission is asked.
    let supported = native_formats().await;
    let decoder = match choose_decoder(supported.as_deref()) {
        DecoderChoice::Native(formats) => Decoder::Native(native_detector(&formats)?),
        DecoderChoice::Worker => start_worker(generation)?,
    };
    if with_session(generation, |session| session.decoder = Some(decoder)).is_none() {
        return Ok(());
    }
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&JsValue::FALSE);
    constraints.set_video(&object(&[
        (
            "facingMode",
            object(&[("ideal", JsValue::from_str("environment"))]),
        ),
        ("width", object(&[("ideal", JsValue::from_f64(1280.0))])),
        ("height", object(&[("ideal", JsValue::from_f64(720.0))])),
    ]));
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|error| failure_of(&error))?;
    let stream: MediaStream = JsFuture::from(promise)
        .await
        .map_err(|error| failure_of(&error))?
        .unchecked_into();
    let Some(video) = with_session(generation, |session| session.target.video.clone()) else {
        stop_stream(&stream);
        return Ok(());
    };
    video.set_muted(true);
    video.set_src_object(Some(&stream));
    let track = stream
        .get_video_tracks()
        .get(0)
        .dyn_into::<MediaStreamTrack>()
        .ok();
    let facing = track.as_ref().and_then(|track| {
        Reflect::get(&track.get_settings(), &"facingMode".into())
            .ok()
            .and_then(|value| value.as_string())
    });
    let _ = video.set_attribute(
        "data-mirrored",
        if mirror_preview(facing.as_deref()) {
            "true"
        } else {
            "false"
        },
    );
    let torch = track.as_ref().and_then(torch_supported).map(|()| false);
    let stored = with_session(generation, |session| {
        session.stream = Some(stream.clone());
        session.track = track;
    });
    if stored.is_none() {
        stop_stream(&stream);
        return Ok(());
    }
    if let Ok(playing) = video.play() {
        let _ = JsFuture::from(playing).await;
    }
    set_status(generation, CameraStatus::Running { torch });
    schedule(generation, 0.0);
    Ok(())
}

/// `BarcodeDetector.getSupportedFormats()`, or `None` without the API.
async fn native_formats() -> Option<Vec<String>> {
    let class = Reflect::get(&browser::window(), &"BarcodeDetector".into()).ok()?;
    if !class.is_function() {
        return None;
    }
    let list: Function = Reflect::get(&class, &"getSupportedFormats".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: Promise = list.call0(&class).ok()?.dyn_into().ok()?;
    let formats = JsFuture::from(promise).await.ok()?;
    Some(
        Array::from(&formats)
            .iter()
            .filter_map(|format| format.as_string())
            .collect(),
    )
}

fn native_detector(formats: &[&str]) -> Result<JsValue, CameraFailure> {
    let class: Function = Reflect::get(&browser::window(), &"BarcodeDetector".into())
        .ok()
        .and_then(|class| class.dyn_into().ok())
        .ok_or(CameraFailure::DecoderFailed)?;
    let list: Array = formats
        .iter()
        .map(|format| JsValue::from_str(format))
        .collect();
    let options = object(&[("formats", list.into())]);
    Reflect::construct(&class, &Array::of1(&options)).map_err(|_| CameraFailure::DecoderFailed)
}

fn start_worker(generation: u64) -> Result<Decoder, CameraFailure> {
    let worker = Worker::new(WORKER_URL).map_err(|_| CameraFailure::DecoderFailed)?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        if Reflect::get(&data, &"ready".into()).is_ok_and(|ready| ready.is_truthy()) {
            with_session(generation, |session| {
                if let Some(Decoder::Worker { ready, .. }) = &mut session.decoder {
                    *ready = true;
                }
            });
            schedule(generation, 0.0);
        } else {
            let text = Reflect::get(&data, &"text".into())
                .ok()
                .and_then(|text| text.as_string());
            answered(generation, text);
        }
    });
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        fail(generation, CameraFailure::DecoderFailed);
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(Decoder::Worker {
        worker,
        ready: false,
        _on_message: on_message,
        _on_error: on_error,
    })
}

fn torch_supported(track: &MediaStreamTrack) -> Option<()> {
    let get = Reflect::get(track, &"getCapabilities".into())
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    let capabilities = get.call0(track).ok()?;
    Reflect::get(&capabilities, &"torch".into())
        .ok()
        .filter(JsValue::is_truthy)
        .map(|_| ())
}

/// Turns the torch on or off (`applyConstraints({advanced: [{torch}]})`).
fn set_torch(on: bool) {
    let generation = GENERATION.with(Cell::get);
    let Some(track) = with_session(generation, |session| session.track.clone()).flatten() else {
        return;
    };
    let constraints = object(&[(
        "advanced",
        Array::of1(&object(&[("torch", JsValue::from_bool(on))])).into(),
    )]);
    let Some(promise) = Reflect::get(&track, &"applyConstraints".into())
        .ok()
        .and_then(|apply| apply.dyn_into::<Function>().ok())
        .and_then(|apply| apply.call1(&track, &constraints).ok())
        .and_then(|promise| promise.dyn_into::<Promise>().ok())
    else {
        return;
    };
    spawn_local(async move {
        if JsFuture::from(promise).await.is_ok() {
            set_status(generation, CameraStatus::Running { torch: Some(on) });
        }
    });
}

fn schedule(generation: u64, wait_ms: f64) {
    let wait = wait_ms.max(0.0).ceil() as u32;
    with_session(generation, |session| {
        if let Some(previous) = session.timer.take() {
            browser::clear_timeout(previous);
        }
        session.timer = Some(browser::set_timeout(wait, move || tick(generation)));
    });
}

/// What one tick of the frame loop does after leaving the session.
enum Step {
    Wait(f64),
    Native(Promise),
    Idle,
}

fn tick(generation: u64) {
    let step = with_session(generation, |session| {
        session.timer = None;
        let now = browser::now_ms();
        if session.stream.is_none() || !session.pacer.ready(now) {
            return Step::Wait(session.pacer.wait_ms(now).max(1.0));
        }
        let video = &session.target.video;
        // HAVE_CURRENT_DATA: a frame to draw.
        let Some((width, height)) = (video.ready_state() >= 2)
            .then(|| frame_size(video.video_width(), video.video_height(), FRAME_WIDTH))
            .flatten()
        else {
            return Step::Wait(100.0);
        };
        match &session.decoder {
            Some(Decoder::Native(detector)) => {
                let detect = Reflect::get(detector, &"detect".into())
                    .ok()
                    .and_then(|detect| detect.dyn_into::<Function>().ok())
                    .and_then(|detect| detect.call1(detector, video).ok())
                    .and_then(|promise| promise.dyn_into::<Promise>().ok());
                match detect {
                    Some(promise) => {
                        session.pacer.sent(now);
                        Step::Native(promise)
                    }
                    None => Step::Wait(100.0),
                }
            }
            Some(Decoder::Worker {
                worker,
                ready: true,
                ..
            }) => {
                if session.canvas.is_none() {
                    session.canvas = new_canvas();
                }
                let Some((canvas, context)) = &session.canvas else {
                    return Step::Idle;
                };
                if canvas.width() != width || canvas.height() != height {
                    canvas.set_width(width);
                    canvas.set_height(height);
                }
                let drawn = context.draw_image_with_html_video_element_and_dw_and_dh(
                    video,
                    0.0,
                    0.0,
                    f64::from(width),
                    f64::from(height),
                );
                let image = context.get_image_data(0.0, 0.0, f64::from(width), f64::from(height));
                let (Ok(()), Ok(image)) = (drawn, image) else {
                    return Step::Wait(100.0);
                };
                let pixels = Reflect::get(&image, &"data".into()).unwrap_or(JsValue::NULL);
                let buffer = Reflect::get(&pixels, &"buffer".into()).unwrap_or(JsValue::NULL);
                let message = object(&[
                    ("width", JsValue::from(width)),
                    ("height", JsValue::from(height)),
                    ("pixels", pixels),
                ]);
                if worker
                    .post_message_with_transfer(&message, &Array::of1(&buffer))
                    .is_err()
                {
                    return Step::Wait(100.0);
                }
                session.pacer.sent(now);
                Step::Idle
            }
            // The worker announces itself when it is ready; that schedules the next tick.
            _ => Step::Idle,
        }
    });
    match step {
        Some(Step::Wait(ms)) => schedule(generation, ms),
        Some(Step::Native(promise)) => spawn_local(async move {
            let text = JsFuture::from(promise).await.ok().and_then(|found| {
                let first = Array::from(&found).get(0);
                Reflect::get(&first, &"rawValue".into())
                    .ok()
                    .and_then(|value| value.as_string())
            });
            answered(generation, text);
        }),
        Some(Step::Idle) | None => {}
    }
}

fn new_canvas() -> Option<(HtmlCanvasElement, CanvasRenderingContext2d)> {
    let canvas: HtmlCanvasElement = browser::window()
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into()
        .ok()?;
    // Pixels are read back every frame: keep the canvas in memory, not on the GPU.
    let options = object(&[("willReadFrequently", JsValue::TRUE)]);
    let context = canvas
        .get_context_with_context_options("2d", &options)
        .ok()??
        .dyn_into()
        .ok()?;
    Some((canvas, context))
}

/// A decoder answered: the next frame is due, and a text goes to the page.
fn answered(generation: u64, text: Option<String>) {
    let Some((target, wait)) = with_session(generation, |session| {
        session.pacer.answered();
        (
            session.target.clone(),
            session.pacer.wait_ms(browser::now_ms()),
        )
    }) else {
        return;
    };
    schedule(generation, wait);
    if let Some(text) = text {
        let _ = target
            .on_text
            .call1(&JsValue::NULL, &JsValue::from_str(&text));
    }
}
