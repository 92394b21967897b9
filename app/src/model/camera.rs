//! The camera reader's decisions, with no I/O (`docs/capture.md` §7): which decoder to use,
//! how fast to feed it, how big a frame to send, whether to mirror the preview, whether the
//! camera is the waiting screen's default, and what a failure to open the camera means.
//!
//! The reader itself is generic: it yields decoded text to a callback. It runs in the camera
//! bundle (`src/bin/paycode-camera`), a wasm module of its own that the page (`ui::camera`)
//! fetches only when a camera reader opens. What a payment screen accepts from it is decided
//! by the wedge detector's [`crate::model::wedge::WedgeDetector::on_decoded`] and the
//! checkout, the same rules as a scanner's code.

/// The formats the reader asks a decoder for, named like `BarcodeDetector`'s.
pub const FORMATS: [&str; 2] = ["code_128", "qr_code"];

/// The widest frame sent to the decoder, in pixels.
pub const FRAME_WIDTH: u32 = 640;

/// The most frames decoded per second.
pub const MAX_FPS: f64 = 8.0;

/// Which decoder reads the frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecoderChoice {
    /// The browser's `BarcodeDetector`, asked for these formats (those of [`FORMATS`] it
    /// lists).
    Native(Vec<&'static str>),
    /// Our wasm decoder in a Web Worker.
    Worker,
}

/// Chooses the decoder from what `BarcodeDetector.getSupportedFormats()` answered (`None`:
/// no `BarcodeDetector`, or the call failed). The native detector is used only when it
/// really lists `code_128` or `qr_code`: Chromium on Linux exposes the API with no working
/// detectors, and Windows and Android without Play Services have no backend.
pub fn choose_decoder(supported: Option<&[String]>) -> DecoderChoice {
    let formats: Vec<&'static str> = FORMATS
        .into_iter()
        .filter(|format| supported.is_some_and(|list| list.iter().any(|have| have == format)))
        .collect();
    if formats.is_empty() {
        DecoderChoice::Worker
    } else {
        DecoderChoice::Native(formats)
    }
}

/// Why the camera is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraFailure {
    /// The page is not a secure context (plain http:// to another machine): browsers offer
    /// no camera there.
    Insecure,
    /// The cashier or the browser's settings refused the camera (`NotAllowedError`).
    Denied,
    /// No camera (`NotFoundError`, or none matches, `OverconstrainedError`).
    NoCamera,
    /// The camera is busy or broken (`NotReadableError`, `AbortError`).
    InUse,
    /// The decoder could not start.
    DecoderFailed,
    /// Anything else.
    Other,
}

impl CameraFailure {
    /// Classifies the `name` of the `DOMException` `getUserMedia` rejected with.
    pub fn from_error_name(name: &str) -> CameraFailure {
        match name {
            "NotAllowedError" | "PermissionDeniedError" => CameraFailure::Denied,
            "SecurityError" => CameraFailure::Insecure,
            "NotFoundError" | "DevicesNotFoundError" | "OverconstrainedError" => {
                CameraFailure::NoCamera
            }
            "NotReadableError" | "TrackStartError" | "AbortError" => CameraFailure::InUse,
            _ => CameraFailure::Other,
        }
    }

    /// The failure's name, as the reader's `data-failure` attribute shows it.
    pub fn name(self) -> &'static str {
        match self {
            CameraFailure::Insecure => "Insecure",
            CameraFailure::Denied => "Denied",
            CameraFailure::NoCamera => "NoCamera",
            CameraFailure::InUse => "InUse",
            CameraFailure::DecoderFailed => "DecoderFailed",
            CameraFailure::Other => "Other",
        }
    }

    /// Whether trying again can help without the cashier changing anything outside the
    /// page (a busy camera may be free a moment later; a refused one stays refused until the
    /// setting changes, which a retry then picks up).
    pub fn can_retry(self) -> bool {
        !matches!(self, CameraFailure::Insecure)
    }
}

/// The pace of the frame loop: one decode in flight, at most [`MAX_FPS`] a second.
#[derive(Clone, Debug, PartialEq)]
pub struct FramePacer {
    interval_ms: f64,
    last_sent_ms: Option<f64>,
    in_flight: bool,
}

impl Default for FramePacer {
    fn default() -> Self {
        FramePacer::new(MAX_FPS)
    }
}

impl FramePacer {
    /// A pacer for at most `max_fps` frames a second.
    pub fn new(max_fps: f64) -> FramePacer {
        FramePacer {
            interval_ms: 1000.0 / max_fps.max(0.1),
            last_sent_ms: None,
            in_flight: false,
        }
    }

    /// Whether a frame may be sent at `now_ms`.
    pub fn ready(&self, now_ms: f64) -> bool {
        !self.in_flight
            && self
                .last_sent_ms
                .is_none_or(|last| now_ms - last >= self.interval_ms)
    }

    /// How long until a frame may be sent (0 when [`FramePacer::ready`]; while a decode is
    /// in flight, the interval: its answer starts the next frame anyway).
    pub fn wait_ms(&self, now_ms: f64) -> f64 {
        if self.in_flight {
            return self.interval_ms;
        }
        self.last_sent_ms
            .map_or(0.0, |last| (last + self.interval_ms - now_ms).max(0.0))
    }

    /// A frame was sent at `now_ms`.
    pub fn sent(&mut self, now_ms: f64) {
        self.last_sent_ms = Some(now_ms);
        self.in_flight = true;
    }

    /// The decoder answered.
    pub fn answered(&mut self) {
        self.in_flight = false;
    }
}

/// The size to draw a `video_width` × `video_height` frame at: at most `max_width` wide,
/// the aspect ratio kept, never enlarged; `None` while the video has no size yet.
pub fn frame_size(video_width: u32, video_height: u32, max_width: u32) -> Option<(u32, u32)> {
    if video_width == 0 || video_height == 0 || max_width == 0 {
        return None;
    }
    if video_width <= max_width {
        return Some((video_width, video_height));
    }
    let height = (u64::from(video_height) * u64::from(max_width) / u64::from(video_width)).max(1);
    Some((max_width, height as u32))
}

/// Whether the preview is mirrored: only for a front camera (`facingMode` "user"), where the
/// cashier expects a mirror. Decoding always uses the unmirrored frame.
pub fn mirror_preview(facing_mode: Option<&str>) -> bool {
    facing_mode == Some("user")
}

/// Whether the waiting screen opens with the camera: on a touch device with a camera, until
/// a scanner has been seen on this terminal.
pub fn camera_by_default(touch: bool, has_camera: bool, scanner_seen: bool) -> bool {
    touch && has_camera && !scanner_seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(list: &[&str]) -> Vec<String> {
        list.iter().map(|format| (*format).to_owned()).collect()
    }

    #[test]
    fn the_native_detector_is_used_only_when_it_lists_our_formats() {
        assert_eq!(choose_decoder(None), DecoderChoice::Worker);
        // Chromium on Linux: the API exists, the list is empty.
        assert_eq!(choose_decoder(Some(&[])), DecoderChoice::Worker);
        assert_eq!(
            choose_decoder(Some(&formats(&["ean_13", "upc_a"]))),
            DecoderChoice::Worker
        );
        assert_eq!(
            choose_decoder(Some(&formats(&["qr_code", "ean_13"]))),
            DecoderChoice::Native(vec!["qr_code"])
        );
        assert_eq!(
            choose_decoder(Some(&formats(&["aztec", "qr_code", "code_128"]))),
            DecoderChoice::Native(vec!["code_128", "qr_code"])
        );
    }

    #[test]
    fn get_user_media_errors_are_classified() {
        assert_eq!(
            CameraFailure::from_error_name("NotAllowedError"),
            CameraFailure::Denied
        );
        assert_eq!(
            CameraFailure::from_error_name("NotFoundError"),
            CameraFailure::NoCamera
        );
        assert_eq!(
            CameraFailure::from_error_name("OverconstrainedError"),
            CameraFailure::NoCamera
        );
        assert_eq!(
            CameraFailure::from_error_name("NotReadableError"),
            CameraFailure::InUse
        );
        assert_eq!(
            CameraFailure::from_error_name("SecurityError"),
            CameraFailure::Insecure
        );
        assert_eq!(
            CameraFailure::from_error_name("TypeError"),
            CameraFailure::Other
        );
        assert!(!CameraFailure::Insecure.can_retry());
        assert!(CameraFailure::InUse.can_retry());
    }

    #[test]
    fn the_pacer_keeps_one_decode_in_flight_and_caps_the_rate() {
        let mut pacer = FramePacer::new(10.0);
        assert!(pacer.ready(0.0));
        assert_eq!(pacer.wait_ms(0.0), 0.0);
        pacer.sent(0.0);
        // In flight: never ready, however long the decode takes.
        assert!(!pacer.ready(500.0));
        pacer.answered();
        assert!(pacer.ready(500.0));
        // A fast answer waits out the interval.
        pacer.sent(500.0);
        pacer.answered();
        assert!(!pacer.ready(560.0));
        assert_eq!(pacer.wait_ms(560.0), 40.0);
        assert!(pacer.ready(600.0));
    }

    #[test]
    fn frames_are_downscaled_to_640_wide_keeping_the_aspect() {
        assert_eq!(frame_size(1280, 720, 640), Some((640, 360)));
        assert_eq!(frame_size(1920, 1080, 640), Some((640, 360)));
        assert_eq!(frame_size(640, 480, 640), Some((640, 480)));
        assert_eq!(frame_size(320, 240, 640), Some((320, 240)));
        assert_eq!(frame_size(0, 0, 640), None);
    }

    #[test]
    fn only_a_front_camera_preview_is_mirrored() {
        assert!(mirror_preview(Some("user")));
        assert!(!mirror_preview(Some("environment")));
        assert!(!mirror_preview(None));
    }

    #[test]
    fn the_camera_is_the_default_on_touch_devices_until_a_scanner_is_seen() {
        assert!(camera_by_default(true, true, false));
        assert!(!camera_by_default(true, true, true));
        assert!(!camera_by_default(false, true, false));
        assert!(!camera_by_default(true, false, false));
    }
}
