//! Approval tokens: what `POST /api/v1/approvals` hands out and the approved request
//! carries in the `Paycode-Approval` header.
//!
//! `pca_` and 32 random bytes in unpadded base64url (47 characters), shaped like terminal
//! tokens (`auth`) and, like them, stored only as their SHA-256: a copy of the database
//! approves nothing.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix of every approval token.
pub const APPROVAL_PREFIX: &str = "pca_";

/// How many random bytes a token carries.
const RANDOM_BYTES: usize = 32;

/// The length of the base64url text of [`RANDOM_BYTES`] bytes, without padding.
const BODY_LENGTH: usize = 43;

/// An approval token. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalToken(String);

impl ApprovalToken {
    /// A new token from the operating system's random number generator.
    pub fn generate() -> ApprovalToken {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        ApprovalToken(format!(
            "{APPROVAL_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Reads a token as a terminal sends it, or `None` if it is not shaped like one.
    pub fn parse(text: &str) -> Option<ApprovalToken> {
        let body = text.strip_prefix(APPROVAL_PREFIX)?;
        let well_formed = body.len() == BODY_LENGTH
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| ApprovalToken(text.to_owned()))
    }

    /// The SHA-256 of the token in lower-case hex: what the store keeps.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The token itself, for the one answer that hands it to its terminal.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApprovalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApprovalToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_prefix_parse_back_and_hide_in_debug() {
        let token = ApprovalToken::generate();
        assert!(token.expose().starts_with("pca_"));
        assert_eq!(token.expose().len(), 47);
        assert_eq!(ApprovalToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(token.hash().len(), 64);
        assert_eq!(format!("{token:?}"), "ApprovalToken(***)");
        for bad in [
            String::new(),
            token.expose().replacen("pca_", "pct_", 1),
            token.expose()[..46].to_owned(),
            format!("{}=", &token.expose()[..46]),
        ] {
            assert_eq!(ApprovalToken::parse(&bad), None, "{bad}");
        }
    }
}
