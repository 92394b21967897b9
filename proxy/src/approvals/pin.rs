//! Managers' PINs: what a PIN may be, and its argon2id hash (docs/approvals.md §2).
//!
//! A PIN is hashed with the `argon2` crate's default: Argon2id, version 0x13, 19 MiB of
//! memory, two passes, one lane (the OWASP minimum for Argon2id), with a random 16-byte
//! salt, stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`). The parameters
//! travel in the string, so hashes made with other parameters keep verifying.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::{Rng, RngCore};

/// The fewest digits a PIN has.
pub const MIN_PIN_DIGITS: usize = 4;

/// The most digits a PIN has.
pub const MAX_PIN_DIGITS: usize = 12;

/// The digits of a generated PIN.
const GENERATED_PIN_DIGITS: usize = 6;

/// A manager's PIN: 4 to 12 ASCII digits. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

/// Why a PIN is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a PIN has 4 to 12 digits 0-9")]
pub struct InvalidPin;

impl Pin {
    /// Reads a PIN as typed; anything but 4 to 12 ASCII digits is refused.
    pub fn parse(text: &str) -> Result<Pin, InvalidPin> {
        let shaped = (MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&text.len())
            && text.bytes().all(|byte| byte.is_ascii_digit());
        shaped.then(|| Pin(text.to_owned())).ok_or(InvalidPin)
    }

    /// A new six-digit PIN from the operating system's random number generator.
    pub fn generate() -> Pin {
        let mut rng = rand::rngs::OsRng;
        Pin((0..GENERATED_PIN_DIGITS)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect())
    }

    /// The PIN itself: shown once to the operator (`manager add|pin`), never logged.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The PIN's argon2id hash as a PHC string, with a fresh random salt. Takes tens of
    /// milliseconds of CPU: call it off the async executor.
    pub fn hash(&self) -> Result<String, PinHashError> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(PinHashError)?;
        Ok(Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .map_err(PinHashError)?
            .to_string())
    }

    /// Whether the PIN matches `phc`, a hash made by [`Pin::hash`]. An unreadable hash
    /// matches nothing. Takes as long as hashing: call it off the async executor.
    pub fn verify(&self, phc: &str) -> bool {
        PasswordHash::new(phc).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(self.0.as_bytes(), &hash)
                .is_ok()
        })
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

/// Hashing a PIN failed (the `argon2` crate refused its input; not expected).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the PIN: {0}")]
pub struct PinHashError(argon2::password_hash::Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_four_to_twelve_digits() {
        for good in ["1234", "000000", "123456789012"] {
            assert!(Pin::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "123", "1234567890123", "12a4", "１２３４", " 1234"] {
            assert_eq!(Pin::parse(bad), Err(InvalidPin), "{bad}");
        }
        let generated = Pin::generate();
        assert_eq!(generated.expose().len(), 6);
        assert!(Pin::parse(generated.expose()).is_ok());
        assert_eq!(format!("{generated:?}"), "Pin(***)");
    }

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_pin() {
        let pin = Pin::parse("482913").unwrap();
        let hash = pin.hash().unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("482913"));
        assert!(pin.verify(&hash));
        assert!(!Pin::parse("482914").unwrap().verify(&hash));
        assert!(!pin.verify("not a hash"));
        // Salted: the same PIN hashes differently each time.
        assert_ne!(pin.hash().unwrap(), hash);
    }
}
