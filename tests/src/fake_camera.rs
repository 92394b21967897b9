//! Videos for Chromium's fake camera (`--use-file-for-fake-video-capture`), made at run time:
//! frames of a phone showing a payment code (`paycode_decoder::render`: the Code 128 above
//! the QR code, turned a few degrees, blurred, noisy), written as a YUV4MPEG2 (`.y4m`) file.
//!
//! The format: a header line `YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg`, then per frame a
//! line `FRAME` and the planes of 4:2:0 video: the luma (width × height bytes) and the two
//! chroma planes at half width and half height. The frames are grey, so chroma is 128.

use std::io::Write;
use std::path::Path;

pub use paycode_decoder::render::{Scene, render};

/// Frames a second of the written videos (Chromium plays the file in a loop at this rate).
pub const FPS: u32 = 10;

/// Writes `scenes` as a `.y4m` video at [`FPS`] (every scene the same size, even sides).
///
/// # Panics
/// When the file cannot be written or the scenes differ in size: test set-up.
pub fn write_y4m(path: &Path, scenes: &[Scene]) {
    let first = scenes.first().expect("at least one frame");
    let (width, height) = (first.width, first.height);
    assert!(width % 2 == 0 && height % 2 == 0, "4:2:0 needs even sides");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())),
    );
    let chroma = vec![128u8; (width as usize / 2) * (height as usize / 2)];
    let write = |out: &mut std::io::BufWriter<std::fs::File>, bytes: &[u8]| {
        out.write_all(bytes)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    };
    write(
        &mut out,
        format!("YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n").as_bytes(),
    );
    for scene in scenes {
        assert_eq!(
            (scene.width, scene.height),
            (width, height),
            "one frame size"
        );
        let frame = render(scene);
        write(&mut out, b"FRAME\n");
        write(&mut out, frame.luma());
        write(&mut out, &chroma);
        write(&mut out, &chroma);
    }
    out.flush()
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
}

/// A video of `frames` frames of `scene`, each with its own noise.
pub fn video_of(path: &Path, scene: &Scene, frames: u64) {
    let scenes: Vec<Scene> = (0..frames)
        .map(|seed| Scene {
            seed: scene.seed.wrapping_add(seed),
            ..scene.clone()
        })
        .collect();
    write_y4m(path, &scenes);
}
