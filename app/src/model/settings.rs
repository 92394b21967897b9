//! The terminal's settings as stored in `localStorage`: the pairing token, the language and
//! the sound switch, plus the keys under which the app keeps its state.

use crate::model::i18n::Lang;

/// `localStorage` key of the bearer token.
pub const TOKEN_KEY: &str = "paycode.token";
/// `localStorage` key of the language tag.
pub const LANG_KEY: &str = "paycode.lang";
/// `localStorage` key of the sound switch (`on` / `off`).
pub const SOUND_KEY: &str = "paycode.sound";
/// `localStorage` key of the payment attempt in progress (see `checkout::StoredAttempt`).
pub const ATTEMPT_KEY: &str = "paycode.attempt";
/// Set once a wedge scanner typed a code on this terminal: the camera no longer opens by
/// itself on the waiting screen.
pub const SCANNER_SEEN_KEY: &str = "paycode.scanner_seen";

/// The settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The terminal's bearer token, once paired.
    pub token: Option<String>,
    /// The page language.
    pub lang: Lang,
    /// Whether beeps are played.
    pub sound: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token: None,
            lang: Lang::Zh,
            sound: true,
        }
    }
}

impl Settings {
    /// Reads the settings through `get` (a `localStorage` lookup); missing or odd values take
    /// their defaults.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Settings {
        Settings {
            token: get(TOKEN_KEY)
                .map(|token| token.trim().to_owned())
                .filter(|token| looks_like_token(token)),
            lang: get(LANG_KEY).map_or(Lang::Zh, |tag| Lang::from_tag(&tag)),
            sound: get(SOUND_KEY).as_deref() != Some("off"),
        }
    }

    /// The stored form of the language and sound switch.
    pub fn entries(&self) -> [(&'static str, &'static str); 2] {
        [
            (LANG_KEY, self.lang.tag()),
            (SOUND_KEY, if self.sound { "on" } else { "off" }),
        ]
    }
}

/// Whether `token` has the shape of a terminal token (`pct_` and URL-safe characters). The
/// proxy decides whether it is valid.
pub fn looks_like_token(token: &str) -> bool {
    token.len() > 4
        && token.len() <= 200
        && token.starts_with("pct_")
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_round_trip() {
        let empty = Settings::load(|_| None);
        assert_eq!(empty, Settings::default());
        assert_eq!(empty.lang, Lang::Zh);
        assert!(empty.sound);

        let settings = Settings {
            token: None,
            lang: Lang::En,
            sound: false,
        };
        let stored: HashMap<&str, String> = settings
            .entries()
            .into_iter()
            .map(|(key, value)| (key, value.to_owned()))
            .chain([(TOKEN_KEY, " pct_abc-DEF_123 ".to_owned())])
            .collect();
        let loaded = Settings::load(|key| stored.get(key).cloned());
        assert_eq!(loaded.lang, Lang::En);
        assert!(!loaded.sound);
        assert_eq!(loaded.token.as_deref(), Some("pct_abc-DEF_123"));
    }

    #[test]
    fn token_shape() {
        assert!(looks_like_token("pct_0123abcd"));
        assert!(!looks_like_token("pct_"));
        assert!(!looks_like_token("abc_0123"));
        assert!(!looks_like_token("pct_ spaces"));
        assert_eq!(
            Settings::load(|key| (key == TOKEN_KEY).then(|| "Bearer x".to_owned())).token,
            None
        );
    }
}
