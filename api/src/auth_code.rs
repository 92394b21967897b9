//! The customer's payment code (付款码), as scanned at the counter.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A WeChat Pay payment code: 18 ASCII digits starting with `10`–`15`.
///
/// It is a string, never a number: 18 digits exceed 2^53, so a JavaScript number would
/// silently round it. `Debug` and [`AuthCode::masked`] show only the first and last four
/// digits, because a full code is a bearer instrument for about a minute and must not reach
/// logs.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(value_type = String, pattern = "^1[0-5][0-9]{16}$", example = "134567890123455678")
)]
#[serde(try_from = "String", into = "String")]
pub struct AuthCode(String);

/// Why a string is not a WeChat Pay payment code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthCodeError {
    /// Nothing was scanned.
    #[error("scan the customer's payment code")]
    Empty,
    /// Something other than ASCII digits (letters, full-width digits, spaces).
    #[error("a payment code contains only the digits 0-9")]
    NotDigits,
    /// Looks like an Alipay code (16–24 digits starting 25–30): a different wallet.
    #[error("this is an Alipay code; ask the customer for a WeChat payment code")]
    Alipay,
    /// Digits, but not 18 of them starting with 10–15.
    #[error("a WeChat payment code has 18 digits starting with 10 to 15 (got {len} digits)")]
    NotWechat {
        /// How many digits were given.
        len: usize,
    },
}

impl AuthCode {
    /// Parses a scanned code. Accepts exactly `^1[0-5][0-9]{16}$`.
    pub fn parse(input: &str) -> Result<AuthCode, AuthCodeError> {
        if input.is_empty() {
            return Err(AuthCodeError::Empty);
        }
        if !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthCodeError::NotDigits);
        }
        let bytes = input.as_bytes();
        let prefix = (bytes[0] - b'0') * 10 + bytes.get(1).map_or(0, |b| b - b'0');
        if (16..=24).contains(&input.len()) && (25..=30).contains(&prefix) {
            return Err(AuthCodeError::Alipay);
        }
        if input.len() != 18 || !(10..=15).contains(&prefix) {
            return Err(AuthCodeError::NotWechat { len: input.len() });
        }
        Ok(AuthCode(input.to_owned()))
    }

    /// The full code, for the one place that needs it: the micropay request to WeChat.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The code with its middle hidden: `1300…5678`. Safe for logs and screens.
    pub fn masked(&self) -> String {
        format!("{}…{}", &self.0[..4], &self.0[self.0.len() - 4..])
    }

    /// The last four digits, as a cashier sees them (`••••5678`).
    pub fn last_four(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

impl fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthCode({})", self.masked())
    }
}

impl TryFrom<String> for AuthCode {
    type Error = AuthCodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        AuthCode::parse(&value)
    }
}

impl From<AuthCode> for String {
    fn from(code: AuthCode) -> String {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_wechat_codes_with_every_prefix() {
        for prefix in 10..=15 {
            let code = format!("{prefix}0061098828009406");
            assert!(AuthCode::parse(&code).is_ok(), "{code}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_wechat_code() {
        use AuthCodeError::*;
        for (input, error) in [
            ("", Empty),
            ("12006109882800940a", NotDigits),
            ("１２００６１０９８８２８００９４０６", NotDigits),
            ("120061098828009406 ", NotDigits),
            ("12006109882800940", NotWechat { len: 17 }),
            ("1200610988280094061", NotWechat { len: 19 }),
            ("160061098828009406", NotWechat { len: 18 }),
            ("280061098828009406", Alipay),
            ("2561098828009406", Alipay),
            ("620061098828009406", NotWechat { len: 18 }),
        ] {
            assert_eq!(AuthCode::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn debug_and_masked_forms_hide_the_middle() {
        let code = AuthCode::parse("134567890123455678").unwrap();
        assert_eq!(code.masked(), "1345…5678");
        assert_eq!(format!("{code:?}"), "AuthCode(1345…5678)");
        assert_eq!(code.last_four(), "5678");
        assert_eq!(code.expose(), "134567890123455678");
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<AuthCode>("\"134567890123455678\"").is_ok());
        assert!(serde_json::from_str::<AuthCode>("134567890123455678").is_err());
        assert!(serde_json::from_str::<AuthCode>("\"12\"").is_err());
    }
}
