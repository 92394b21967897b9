//! Synthetic camera frames of a phone showing a payment code (feature `render`, for tests and
//! benchmarks): a phone screen with the Code 128 above the QR code, as a WeChat 付款码 screen
//! lays them out, at counter distance in a 640×480 frame, turned a few degrees, blurred, with
//! per-pixel noise. The codes are drawn by rxing's writers.

use rxing::{BarcodeFormat, MultiFormatWriter, Writer, common::BitMatrix};

use crate::GreyFrame;

/// What a frame shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// The text both codes carry.
    pub text: String,
    /// Frame size in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// A phone is in the frame.
    pub phone: bool,
    /// The phone shows the Code 128.
    pub barcode: bool,
    /// The phone shows the QR code.
    pub qr: bool,
    /// The phone's width in the frame, in pixels.
    pub phone_width: f32,
    /// The phone's turn, in degrees (positive is clockwise).
    pub rotation_deg: f32,
    /// Per-pixel noise amplitude (± this many grey levels).
    pub noise: u8,
    /// A 3×3 blur (an out-of-focus camera).
    pub blur: bool,
    /// The noise's seed.
    pub seed: u64,
}

impl Scene {
    /// A phone showing both codes of `text`, 420 px wide in a 640×480 frame (held about a hand's width from the camera), turned 2°,
    /// blurred, ±12 noise.
    pub fn payment_screen(text: &str, seed: u64) -> Scene {
        Scene {
            text: text.to_owned(),
            width: 640,
            height: 480,
            phone: true,
            barcode: true,
            qr: true,
            phone_width: 420.0,
            rotation_deg: 2.0,
            noise: 12,
            blur: true,
            seed,
        }
    }

    /// The counter with no phone: what the camera sees most of the time.
    pub fn blank(seed: u64) -> Scene {
        Scene {
            phone: false,
            barcode: false,
            qr: false,
            ..Scene::payment_screen("", seed)
        }
    }
}

/// A rectangle of modules in phone coordinates (pixels from the phone's top-left corner).
struct Placed {
    matrix: BitMatrix,
    left: f32,
    top: f32,
    module_w: f32,
    module_h: f32,
}

impl Placed {
    fn is_dark(&self, u: f32, v: f32) -> Option<bool> {
        let x = (u - self.left) / self.module_w;
        let y = (v - self.top) / self.module_h;
        if x < 0.0 || y < 0.0 {
            return None;
        }
        let (x, y) = (x as u32, y as u32);
        (x < self.matrix.width() && y < self.matrix.height()).then(|| self.matrix.get(x, y))
    }
}

fn encode(text: &str, format: BarcodeFormat) -> BitMatrix {
    MultiFormatWriter
        .encode(text, &format, 0, 0)
        .expect("digits encode in Code 128 and QR")
}

/// Draws the scene.
pub fn render(scene: &Scene) -> GreyFrame {
    let phone_w = scene.phone_width;
    let phone_h = phone_w * 1.9;
    let mut codes = Vec::new();
    if scene.barcode {
        let matrix = encode(&scene.text, BarcodeFormat::CODE_128);
        let module_w = phone_w * 0.9 / matrix.width() as f32;
        codes.push(Placed {
            left: (phone_w - module_w * matrix.width() as f32) / 2.0,
            top: phone_h * 0.2,
            module_w,
            module_h: phone_h * 0.12 / matrix.height() as f32,
            matrix,
        });
    }
    if scene.qr {
        let matrix = encode(&scene.text, BarcodeFormat::QR_CODE);
        let module = phone_w * 0.6 / matrix.width() as f32;
        codes.push(Placed {
            left: (phone_w - module * matrix.width() as f32) / 2.0,
            top: phone_h * 0.36,
            module_w: module,
            module_h: module,
            matrix,
        });
    }
    // The phone is centred on the frame's centre, shifted up so the codes are in view.
    let (cx, cy) = (scene.width as f32 / 2.0, scene.height as f32 / 2.0);
    let (phone_cx, phone_cy) = (phone_w / 2.0, phone_h * 0.42);
    let (sin, cos) = (-scene.rotation_deg.to_radians()).sin_cos();
    let shade = |x: f32, y: f32| -> f32 {
        if !scene.phone {
            // A counter top: a soft gradient.
            return 70.0 + 40.0 * (x / scene.width as f32);
        }
        let (dx, dy) = (x - cx, y - cy);
        let u = dx * cos - dy * sin + phone_cx;
        let v = dx * sin + dy * cos + phone_cy;
        if u < 0.0 || v < 0.0 || u > phone_w || v > phone_h {
            return 70.0 + 40.0 * (x / scene.width as f32);
        }
        match codes.iter().find_map(|code| code.is_dark(u, v)) {
            Some(true) => 40.0,
            _ => 225.0,
        }
    };
    // 2×2 samples a pixel, so edges are grey like a camera's.
    let (width, height) = (scene.width as usize, scene.height as usize);
    let mut luma: Vec<f32> = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let (x, y) = (x as f32, y as f32);
            let sum = shade(x + 0.25, y + 0.25)
                + shade(x + 0.75, y + 0.25)
                + shade(x + 0.25, y + 0.75)
                + shade(x + 0.75, y + 0.75);
            luma.push(sum / 4.0);
        }
    }
    if scene.blur {
        luma = blur(&luma, width, height);
    }
    let mut random = scene.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let noise = f32::from(scene.noise);
    let bytes = luma
        .into_iter()
        .map(|value| {
            // xorshift64: deterministic noise without a dependency.
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let unit = (random >> 40) as f32 / (1u64 << 24) as f32;
            (value + (unit * 2.0 - 1.0) * noise).clamp(0.0, 255.0) as u8
        })
        .collect();
    GreyFrame::from_luma(scene.width, scene.height, bytes).expect("the buffer matches the size")
}

fn blur(luma: &[f32], width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0.0; luma.len()];
    for y in 0..height {
        for x in 0..width {
            let mut sum = 0.0;
            let mut count = 0.0;
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    sum += luma[ny * width + nx];
                    count += 1.0;
                }
            }
            out[y * width + x] = sum / count;
        }
    }
    out
}
