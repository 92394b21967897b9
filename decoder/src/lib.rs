//! The cashier page's camera decoder: reads the Code 128 and the QR code of a payment screen
//! from one grey video frame.
//!
//! The page draws a video frame downscaled to at most 640 pixels wide (the app's
//! `model::camera::FRAME_WIDTH`) and hands its RGBA pixels to the worker (`src/main.rs`, wasm32
//! only), which turns them into grey ([`GreyFrame::from_rgba`]) and calls [`decode`]. Only Code 128 and QR are tried: on a
//! WeChat 付款码 screen the 1D code and the QR code carry the same 18 digits, and restricting
//! the formats keeps a blank frame (the common case while waiting) cheap. What the text
//! means (is it a payment code?) is the page's business, not the decoder's.
//!
//! The 1D attempt runs on a copy with every 4 rows averaged into one ([`average_rows`]):
//! camera noise is independent per pixel while the bars are vertical, so the average removes
//! most of the noise and keeps the bars, and the reader has 4 times fewer rows to scan
//! (`docs/capture.md` §7).

use std::collections::HashSet;

use rxing::{BarcodeFormat, DecodeHints, helpers::detect_in_luma_slice_with_hints};

#[cfg(any(test, feature = "render"))]
pub mod render;

/// How many rows the 1D attempt averages into one.
pub const AVERAGED_ROWS: usize = 4;

/// The symbology a text was read from, named like `BarcodeDetector`'s formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbology {
    /// Code 128 (the 1D code).
    Code128,
    /// QR code.
    Qr,
}

impl Symbology {
    /// The `BarcodeDetector` format name: `code_128` or `qr_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Symbology::Code128 => "code_128",
            Symbology::Qr => "qr_code",
        }
    }
}

/// A decoded code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The code's text, as encoded.
    pub text: String,
    /// Where it was read from.
    pub symbology: Symbology,
}

/// A frame that cannot be decoded as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Zero width or height.
    Empty,
    /// The pixel buffer's length does not match width × height (× 4 for RGBA).
    SizeMismatch {
        /// The length the dimensions call for.
        expected: usize,
        /// The length given.
        actual: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Empty => write!(f, "frame has no pixels"),
            FrameError::SizeMismatch { expected, actual } => {
                write!(
                    f,
                    "frame buffer holds {actual} bytes, its size needs {expected}"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// A grey (luma, one byte a pixel, row by row) frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreyFrame {
    width: u32,
    height: u32,
    luma: Vec<u8>,
}

impl GreyFrame {
    /// A frame from luma bytes, row by row.
    ///
    /// # Errors
    /// [`FrameError`] when the size is zero or does not match the buffer.
    pub fn from_luma(width: u32, height: u32, luma: Vec<u8>) -> Result<GreyFrame, FrameError> {
        check_size(width, height, 1, luma.len())?;
        Ok(GreyFrame {
            width,
            height,
            luma,
        })
    }

    /// A frame from RGBA bytes (a canvas's `ImageData`), converted with the BT.601 luma
    /// weights in integer arithmetic.
    ///
    /// # Errors
    /// [`FrameError`] when the size is zero or does not match the buffer.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<GreyFrame, FrameError> {
        check_size(width, height, 4, rgba.len())?;
        let luma = rgba
            .chunks_exact(4)
            .map(|pixel| {
                let weighted =
                    77 * u32::from(pixel[0]) + 150 * u32::from(pixel[1]) + 29 * u32::from(pixel[2]);
                (weighted >> 8) as u8
            })
            .collect();
        Ok(GreyFrame {
            width,
            height,
            luma,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The luma bytes, row by row.
    pub fn luma(&self) -> &[u8] {
        &self.luma
    }
}

fn check_size(
    width: u32,
    height: u32,
    bytes_per_pixel: usize,
    actual: usize,
) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Empty);
    }
    let expected = width as usize * height as usize * bytes_per_pixel;
    if expected == actual {
        Ok(())
    } else {
        Err(FrameError::SizeMismatch { expected, actual })
    }
}

/// Shrinks the frame vertically by averaging each run of `rows` rows into one (a last,
/// shorter run is averaged as it is). Camera noise differs from pixel to pixel while a 1D
/// code's bars run from top to bottom, so the average keeps the bars and loses most of the
/// noise; and the 1D reader, which scans every row, has `rows` times fewer rows to scan.
pub fn average_rows(frame: &GreyFrame, rows: usize) -> GreyFrame {
    let width = frame.width as usize;
    let rows = rows.max(1);
    let mut luma = Vec::with_capacity(frame.luma.len() / rows + width);
    let mut sums = vec![0u32; width];
    for run in frame.luma.chunks(width * rows) {
        sums.iter_mut().for_each(|sum| *sum = 0);
        let count = (run.len() / width) as u32;
        for row in run.chunks_exact(width) {
            for (sum, &value) in sums.iter_mut().zip(row) {
                *sum += u32::from(value);
            }
        }
        luma.extend(sums.iter().map(|sum| (sum / count) as u8));
    }
    GreyFrame {
        width: frame.width,
        height: (luma.len() / width) as u32,
        luma,
    }
}

fn hints_for(format: BarcodeFormat) -> DecodeHints {
    DecodeHints {
        PossibleFormats: Some(HashSet::from([format])),
        TryHarder: Some(true),
        ..DecodeHints::default()
    }
}

fn read(frame: &GreyFrame, format: BarcodeFormat) -> Option<String> {
    detect_in_luma_slice_with_hints(
        &frame.luma,
        frame.width,
        frame.height,
        Some(format),
        &mut hints_for(format),
    )
    .ok()
    .map(|result| result.getText().to_owned())
}

/// Reads a Code 128 (on the frame with its rows averaged, [`average_rows`]) or else a QR
/// code (on the frame as given); `None` when the frame holds neither.
pub fn decode(frame: &GreyFrame) -> Option<Decoded> {
    let averaged = average_rows(frame, AVERAGED_ROWS);
    if let Some(text) = read(&averaged, BarcodeFormat::CODE_128) {
        return Some(Decoded {
            text,
            symbology: Symbology::Code128,
        });
    }
    read(frame, BarcodeFormat::QR_CODE).map(|text| Decoded {
        text,
        symbology: Symbology::Qr,
    })
}

#[cfg(test)]
mod tests {
    use super::render::{Scene, render};
    use super::*;

    const CODE: &str = "134825406674159638";

    #[test]
    fn rgba_becomes_luma_with_integer_weights() {
        let frame = GreyFrame::from_rgba(2, 1, &[255, 255, 255, 255, 0, 0, 0, 255]).unwrap();
        assert_eq!(frame.luma(), &[255, 0]);
        assert_eq!(
            GreyFrame::from_rgba(2, 1, &[0; 4]),
            Err(FrameError::SizeMismatch {
                expected: 8,
                actual: 4
            })
        );
        assert_eq!(
            GreyFrame::from_luma(0, 3, Vec::new()),
            Err(FrameError::Empty)
        );
    }

    #[test]
    fn rows_are_averaged_in_runs() {
        // One column: runs of 3 rows, the last one shorter.
        let frame = GreyFrame::from_luma(1, 5, vec![0, 90, 30, 90, 0]).unwrap();
        let averaged = average_rows(&frame, 3);
        assert_eq!((averaged.width(), averaged.height()), (1, 2));
        assert_eq!(averaged.luma(), &[40, 45]);
        // Vertical bars survive unchanged.
        let bars = GreyFrame::from_luma(3, 16, [0, 255, 0].repeat(16)).unwrap();
        assert_eq!(average_rows(&bars, 8).luma(), &[0, 255, 0, 0, 255, 0]);
    }

    #[test]
    fn a_payment_screen_is_read_from_its_code_128() {
        let frame = render(&Scene::payment_screen(CODE, 7));
        assert_eq!(
            decode(&frame),
            Some(Decoded {
                text: CODE.to_owned(),
                symbology: Symbology::Code128
            })
        );
    }

    #[test]
    fn a_qr_code_alone_is_read() {
        let scene = Scene {
            barcode: false,
            ..Scene::payment_screen(CODE, 11)
        };
        assert_eq!(
            decode(&render(&scene)),
            Some(Decoded {
                text: CODE.to_owned(),
                symbology: Symbology::Qr
            })
        );
    }

    #[test]
    fn a_phone_held_far_away_is_read_from_its_qr_code() {
        // 300 px wide: the Code 128's modules are under 2 px, too fine to read.
        let scene = Scene {
            phone_width: 300.0,
            ..Scene::payment_screen(CODE, 5)
        };
        assert_eq!(
            decode(&render(&scene)).map(|decoded| decoded.symbology),
            Some(Symbology::Qr)
        );
    }

    #[test]
    fn a_blank_frame_reads_nothing() {
        assert_eq!(decode(&render(&Scene::blank(3))), None);
    }

    #[test]
    fn noise_and_a_few_degrees_of_rotation_still_read() {
        for (seed, degrees) in [(1, -4.0), (2, 3.0), (3, 6.0)] {
            let scene = Scene {
                rotation_deg: degrees,
                ..Scene::payment_screen(CODE, seed)
            };
            let decoded = decode(&render(&scene)).map(|decoded| decoded.text);
            assert_eq!(decoded.as_deref(), Some(CODE), "rotation {degrees}°");
        }
    }
}
