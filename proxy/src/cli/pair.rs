//! The pairing QR code `terminal add` and `terminal pair` print: the app's address with a
//! one-time code (`pairing`), drawn in the terminal with Unicode half blocks and, on
//! request, written to an SVG or PNG file.

use std::io::Write;
use std::path::Path;

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};
use url::Url;

use crate::pairing::{PairingCode, pairing_url};
use crate::store::{Millis, TerminalRecord};

/// Why the QR code could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The URL does not fit a QR code (it always does for a sane `server.public_url`).
    #[error("cannot make a QR code of the pairing URL: {0}")]
    Encode(String),
    /// `--qr-file` names something other than an `.svg` or `.png` file.
    #[error("--qr-file {0}: give a file name ending in .svg or .png")]
    Extension(String),
    /// The PNG could not be encoded.
    #[error("cannot encode the QR code as PNG: {0}")]
    Png(String),
    /// The file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Prints how to pair `terminal` with `code`: the QR code of its URL, the URL, and when it
/// expires; writes the QR code to `qr_file` (SVG or PNG, by its extension) when given.
pub fn print_pairing(
    out: &mut impl Write,
    terminal: &TerminalRecord,
    app_url: &Url,
    code: &PairingCode,
    expires_at: Millis,
    qr_file: Option<&Path>,
) -> Result<(), PairingOutputError> {
    let url = pairing_url(app_url, code);
    let qr = QrCode::with_error_correction_level(url.as_str(), EcLevel::M)
        .map_err(|error| QrError::Encode(error.to_string()))?;
    // Light modules are drawn as blocks, so the code reads right on the usual dark
    // terminal background (as `qrencode -t UTF8` does).
    let drawing = qr
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    writeln!(
        out,
        "To pair a tablet as {}, scan this with its camera (valid once, until {}):",
        terminal.name,
        expires_at.to_rfc3339()
    )?;
    writeln!(out)?;
    writeln!(out, "{drawing}")?;
    writeln!(out)?;
    writeln!(out, "    {url}")?;
    writeln!(out)?;
    if url.scheme() != "https" {
        writeln!(
            out,
            "Warning: this address is plain HTTP; tablets need HTTPS (`paycode-proxy tls init`, [server.tls])."
        )?;
    }
    writeln!(
        out,
        "Pairing gives the tablet a new token; the terminal's previous token stops working."
    )?;
    if let Some(path) = qr_file {
        write_image(&qr, path)?;
        writeln!(out, "The QR code is also in {}.", path.display())?;
    }
    Ok(())
}

/// The smallest side of a written QR code, in pixels (SVG user units), quiet zone included.
const IMAGE_SIDE: u32 = 256;

/// Writes `qr` to `path` as SVG or PNG, chosen by the extension (`.svg`, `.png`, any case).
fn write_image(qr: &QrCode, path: &Path) -> Result<(), QrError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match extension.as_deref() {
        Some("svg") => qr
            .render::<svg::Color<'_>>()
            .min_dimensions(IMAGE_SIDE, IMAGE_SIDE)
            .quiet_zone(true)
            .build()
            .into_bytes(),
        Some("png") => {
            let image = qr
                .render::<image::Luma<u8>>()
                .min_dimensions(IMAGE_SIDE, IMAGE_SIDE)
                .quiet_zone(true)
                .build();
            let mut png = std::io::Cursor::new(Vec::new());
            image
                .write_to(&mut png, image::ImageFormat::Png)
                .map_err(|error| QrError::Png(error.to_string()))?;
            png.into_inner()
        }
        _ => return Err(QrError::Extension(path.display().to_string())),
    };
    // The file carries a live pairing code until it expires: owner-only.
    crate::private_file::write_private(path, &bytes).map_err(|source| QrError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Why the pairing instructions could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum PairingOutputError {
    /// The QR code failed.
    #[error(transparent)]
    Qr(#[from] QrError),
    /// The output could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}
