//! Pairing a tablet by QR code: one-time, short-lived pairing codes and their exchange for
//! a terminal token (docs/tablets.md §4).
//!
//! `paycode-proxy terminal add|pair NAME` issues a code ([`Pairing::issue`]) and prints a QR
//! code of the app's address with the code in its fragment (`https://…/#pair=pcp_…`, see
//! [`pairing_url`]); the fragment never reaches the server, so the code stays out of access
//! logs. The app posts the code to `POST /api/v1/pairing` ([`Pairing::exchange`]) and gets a
//! newly minted token; the terminal's previous token stops working at that moment. A code
//! carries 128 random bits, is stored only as its SHA-256 (like tokens, `auth`), works
//! once, and expires after `pairing.code_ttl` (default five minutes), so a photo of the QR
//! code is worthless once used or after a few minutes. Exchanges are rate-limited per
//! client address and overall ([`ExchangeLimiter`]).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::Url;

use crate::auth::TerminalToken;
use crate::config::PairingConfig;
use crate::store::{Millis, Store, StoreError, TerminalRecord};

/// The prefix of every pairing code.
pub const CODE_PREFIX: &str = "pcp_";

/// How many random bytes a code carries (128 bits).
const CODE_RANDOM_BYTES: usize = 16;

/// The length of the base64url text of [`CODE_RANDOM_BYTES`] bytes, without padding.
const CODE_BODY_LENGTH: usize = 22;

/// The name of the fragment parameter that carries the code in the pairing URL.
pub const URL_FRAGMENT_KEY: &str = "pair";

/// A one-time pairing code. `Debug` hides it; [`PairingCode::expose`] is for the QR code.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(String);

impl PairingCode {
    /// A new code from the operating system's random number generator.
    pub fn generate() -> PairingCode {
        let mut bytes = [0u8; CODE_RANDOM_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        PairingCode(format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Reads a code as a tablet sends it, or `None` if it is not shaped like one.
    pub fn parse(text: &str) -> Option<PairingCode> {
        let body = text.strip_prefix(CODE_PREFIX)?;
        let well_formed = body.len() == CODE_BODY_LENGTH
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| PairingCode(text.to_owned()))
    }

    /// The SHA-256 of the code in lower-case hex: what the store keeps.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The code itself, for the QR code only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(***)")
    }
}

/// The address a pairing QR code carries: the app at `app_url` with `#pair=<code>`.
pub fn pairing_url(app_url: &Url, code: &PairingCode) -> Url {
    let mut url = app_url.clone();
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(Some(&format!("{URL_FRAGMENT_KEY}={}", code.expose())));
    url
}

/// Why an exchange was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The code is malformed, unknown, used, expired, or its terminal was revoked. One
    /// answer for all, so it reveals nothing about which codes exist.
    #[error(
        "this pairing code is not valid (it works once, for a few minutes); print a new one with `paycode-proxy terminal pair NAME`"
    )]
    InvalidCode,
    /// Too many exchanges from this address or overall in the current minute.
    #[error("too many pairing attempts; wait {retry_after_secs} s and scan the code again")]
    RateLimited {
        /// Seconds until the limit resets.
        retry_after_secs: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issuing and exchanging pairing codes over the store.
#[derive(Clone)]
pub struct Pairing {
    store: Arc<dyn Store>,
    code_ttl: Duration,
    limiter: Arc<ExchangeLimiter>,
}

impl Pairing {
    /// Pairing over `store` with the `[pairing]` settings.
    pub fn new(store: Arc<dyn Store>, config: &PairingConfig) -> Pairing {
        Pairing {
            store,
            code_ttl: config.code_ttl,
            limiter: Arc::new(ExchangeLimiter::new(
                config.exchanges_per_minute_per_ip,
                config.exchanges_per_minute,
            )),
        }
    }

    /// A new code for the active terminal called `name`, replacing any earlier code of it,
    /// and when it expires.
    pub async fn issue(
        &self,
        name: &str,
    ) -> Result<(TerminalRecord, PairingCode, Millis), StoreError> {
        let code = PairingCode::generate();
        let now = Millis::now();
        let ttl = i64::try_from(self.code_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at = Millis(now.0.saturating_add(ttl));
        let terminal = self
            .store
            .add_pairing_code(name, &code.hash(), now, expires_at)
            .await?;
        Ok((terminal, code, expires_at))
    }

    /// Exchanges `code` (as sent by the client at `client`) for a new token of its
    /// terminal; the terminal's previous token stops working.
    pub async fn exchange(
        &self,
        code: &str,
        client: IpAddr,
    ) -> Result<(TerminalRecord, TerminalToken), ExchangeError> {
        self.limiter.admit(client, std::time::Instant::now())?;
        let code = PairingCode::parse(code).ok_or(ExchangeError::InvalidCode)?;
        let token = TerminalToken::generate();
        let terminal = self
            .store
            .redeem_pairing_code(&code.hash(), Millis::now(), &token.hash())
            .await?
            .ok_or(ExchangeError::InvalidCode)?;
        tracing::info!(terminal = %terminal.name, %client, "terminal paired; its previous token is revoked");
        Ok((terminal, token))
    }
}

impl fmt::Debug for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pairing")
            .field("code_ttl", &self.code_ttl)
            .finish_non_exhaustive()
    }
}

/// Fixed one-minute windows counting exchanges per client address and overall. Guessing a
/// 128-bit code is hopeless anyway; the limits keep a misbehaving client from loading the
/// database and make refusals visible (429 `TOO_MANY_REQUESTS`).
#[derive(Debug)]
pub struct ExchangeLimiter {
    per_ip: u32,
    overall: u32,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Option<std::time::Instant>,
    overall: u32,
    per_ip: HashMap<IpAddr, u32>,
}

/// The length of a rate-limit window.
const WINDOW: Duration = Duration::from_secs(60);

impl ExchangeLimiter {
    /// At most `per_ip` exchanges per address and `overall` in all per minute.
    pub fn new(per_ip: u32, overall: u32) -> ExchangeLimiter {
        ExchangeLimiter {
            per_ip,
            overall,
            window: Mutex::new(Window {
                started: None,
                overall: 0,
                per_ip: HashMap::new(),
            }),
        }
    }

    /// Counts one exchange from `client` at `now`, or refuses it when a limit is reached.
    pub fn admit(&self, client: IpAddr, now: std::time::Instant) -> Result<(), ExchangeError> {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = match window.started {
            Some(started) if now.duration_since(started) < WINDOW => started,
            _ => {
                window.started = Some(now);
                window.overall = 0;
                window.per_ip.clear();
                now
            }
        };
        let from_client = window.per_ip.get(&client).copied().unwrap_or(0);
        if window.overall >= self.overall || from_client >= self.per_ip {
            let left = WINDOW.saturating_sub(now.duration_since(started));
            return Err(ExchangeError::RateLimited {
                retry_after_secs: left.as_secs().max(1),
            });
        }
        window.overall += 1;
        window.per_ip.insert(client, from_client + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn codes_carry_128_bits_and_parse_back() {
        let code = PairingCode::generate();
        assert_eq!(code.expose().len(), 26);
        assert_eq!(PairingCode::parse(code.expose()), Some(code.clone()));
        assert_ne!(PairingCode::generate(), code);
        assert_eq!(format!("{code:?}"), "PairingCode(***)");
        for bad in [
            "",
            "pcp_short",
            "pct_AAAAAAAAAAAAAAAAAAAAAA",
            "pcp_AAAAAAAAAAAAAAAAAAAAA+",
        ] {
            assert_eq!(PairingCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_url_carries_the_code_in_its_fragment() {
        let code = PairingCode::parse("pcp_AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let url = pairing_url(&"https://paycode.local:3443/?x=1".parse().unwrap(), &code);
        assert_eq!(
            url.as_str(),
            "https://paycode.local:3443/#pair=pcp_AAAAAAAAAAAAAAAAAAAAAA"
        );
    }

    #[test]
    fn the_limiter_counts_per_address_and_overall_per_minute() {
        let limiter = ExchangeLimiter::new(2, 3);
        let start = Instant::now();
        let a: IpAddr = "192.168.1.20".parse().unwrap();
        let b: IpAddr = "192.168.1.21".parse().unwrap();
        let c: IpAddr = "192.168.1.22".parse().unwrap();
        assert!(limiter.admit(a, start).is_ok());
        assert!(limiter.admit(a, start).is_ok());
        assert!(matches!(
            limiter.admit(a, start),
            Err(ExchangeError::RateLimited {
                retry_after_secs: 60
            })
        ));
        assert!(limiter.admit(b, start).is_ok());
        // The overall limit (3) is reached although c has not asked yet.
        assert!(limiter.admit(c, start + Duration::from_secs(30)).is_err());
        // A new minute starts afresh.
        assert!(limiter.admit(a, start + Duration::from_secs(61)).is_ok());
    }
}
