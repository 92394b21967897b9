//! Deserializers for the configuration's typed fields.
//!
//! Environment overrides arrive as text (`PAYCODE_PAYMENTS__MAX_AMOUNT_FEN=500000`), while the
//! same value in `paycode.toml` is usually a TOML integer, so every non-text field here
//! accepts both. Text fields accept integers too, because `mch_id = 1900000109` is the
//! natural way to write a merchant number in TOML.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::FixedOffset;
use paycode_api::Fen;
use serde::Deserializer;
use serde::de::{Error, Visitor};
use url::Url;
use wxpay::{ApiKey, SignType};

/// A whole number written as an integer or as decimal text.
pub(super) fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + FromStr,
{
    struct NumberVisitor<T>(PhantomData<T>);

    impl<T: TryFrom<u64> + FromStr> Visitor<'_> for NumberVisitor<T> {
        type Value = T;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a whole number")
        }

        fn visit_u64<E: Error>(self, value: u64) -> Result<T, E> {
            T::try_from(value).map_err(|_| E::custom(format!("{value} is out of range")))
        }

        fn visit_i64<E: Error>(self, value: i64) -> Result<T, E> {
            let value = u64::try_from(value)
                .map_err(|_| E::custom(format!("{value} is negative; expected a whole number")))?;
            self.visit_u64(value)
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<T, E> {
            text.trim()
                .parse()
                .map_err(|_| E::custom(format!("expected a whole number, got {text:?}")))
        }
    }

    deserializer.deserialize_any(NumberVisitor(PhantomData))
}

/// An amount in fen, as a whole number.
pub(super) fn fen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Fen, D::Error> {
    number::<D, u64>(deserializer).map(Fen)
}

/// `true`/`false`, as a TOML boolean or as text (`true`, `false`, `1`, `0`).
pub(super) fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = bool;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("true or false")
        }

        fn visit_bool<E: Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<bool, E> {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(E::custom(format!("expected true or false, got {text:?}"))),
            }
        }
    }

    deserializer.deserialize_any(BoolVisitor)
}

/// Text, also accepting a bare integer (`mch_id = 1900000109`).
pub(super) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct TextVisitor;

    impl Visitor<'_> for TextVisitor {
        type Value = String;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("text")
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<String, E> {
            Ok(text.to_owned())
        }

        fn visit_u64<E: Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }

        fn visit_i64<E: Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
    }

    deserializer.deserialize_any(TextVisitor)
}

/// Optional text: empty text means "not set", so an environment variable can clear a value
/// that the file sets.
pub(super) fn optional_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    text(deserializer).map(|value| Some(value).filter(|value| !value.trim().is_empty()))
}

/// An optional file path; empty means "not set".
pub(super) fn optional_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PathBuf>, D::Error> {
    optional_text(deserializer).map(|value| value.map(PathBuf::from))
}

/// A duration: humantime text (`3s`, `1500ms`, `1m 30s`) or a whole number of milliseconds
/// (`3000`, as an integer or as text).
pub(super) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a duration such as \"3s\" or \"500ms\", or whole milliseconds")
        }

        fn visit_u64<E: Error>(self, milliseconds: u64) -> Result<Duration, E> {
            Ok(Duration::from_millis(milliseconds))
        }

        fn visit_i64<E: Error>(self, milliseconds: i64) -> Result<Duration, E> {
            u64::try_from(milliseconds)
                .map(Duration::from_millis)
                .map_err(|_| E::custom(format!("{milliseconds} ms is negative")))
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Duration, E> {
            let trimmed = text.trim();
            if let Ok(milliseconds) = trimmed.parse::<u64>() {
                return Ok(Duration::from_millis(milliseconds));
            }
            humantime::parse_duration(trimmed).map_err(|error| {
                E::custom(format!(
                    "expected a duration such as \"3s\" or \"500ms\", got {text:?} ({error})"
                ))
            })
        }
    }

    deserializer.deserialize_any(DurationVisitor)
}

/// The API key, wrapped as soon as it is read so that no `Debug` can print it.
pub(super) fn api_key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ApiKey, D::Error> {
    text(deserializer).map(ApiKey::new)
}

/// `MD5` or `HMAC-SHA256` (case does not matter).
pub(super) fn sign_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SignType, D::Error> {
    let name = text(deserializer)?;
    match name.trim().to_ascii_uppercase().as_str() {
        "MD5" => Ok(SignType::Md5),
        "HMAC-SHA256" => Ok(SignType::HmacSha256),
        _ => Err(D::Error::custom(format!(
            "expected MD5 or HMAC-SHA256, got {name:?}"
        ))),
    }
}

/// An absolute URL.
pub(super) fn url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    parse_url(&text(deserializer)?)
}

/// An optional absolute URL; empty means "not set".
pub(super) fn optional_url<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Url>, D::Error> {
    optional_text(deserializer)?
        .map(|text| parse_url(&text))
        .transpose()
}

fn parse_url<E: Error>(text: &str) -> Result<Url, E> {
    Url::parse(text.trim()).map_err(|error| E::custom(format!("{text:?} is not a URL ({error})")))
}

/// A UTC offset such as `+08:00`, `-05:30`, `+8` or `Z`.
pub(super) fn utc_offset<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<FixedOffset, D::Error> {
    let text = text(deserializer)?;
    parse_utc_offset(&text).ok_or_else(|| {
        D::Error::custom(format!(
            "expected a UTC offset such as \"+08:00\", got {text:?}"
        ))
    })
}

/// Parses `±HH:MM`, `±HHMM`, `±H`/`±HH` or `Z`.
pub(super) fn parse_utc_offset(text: &str) -> Option<FixedOffset> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((hours, minutes)) => (hours, minutes),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || !all_digits(minutes) || hours.len() > 2 || minutes.len() > 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}
