//! Money: integer fen, parsed exactly from the decimal yuan strings a cashier types.
//!
//! Floats never touch an amount. `19.90 × 100` is `1989.9999…` in binary floating point, and
//! that bug has shipped in more than one WeChat Pay SDK; here `"19.90"` is read digit by digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of Chinese yuan in fen (分, 1/100 yuan): the unit WeChat Pay's `total_fee`,
/// `cash_fee` and `refund_fee` use.
///
/// Serialised as a bare JSON integer. [`Display`](fmt::Display) renders `¥12.30`;
/// [`Fen::to_yuan_string`] renders `12.30`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = 1230))]
#[serde(transparent)]
pub struct Fen(pub u64);

/// The largest amount the yuan parser accepts: ¥10,000,000,000.00, far above any counter
/// sale, and small enough that no arithmetic on it can overflow `u64`.
pub const MAX_PARSED: Fen = Fen(1_000_000_000_000);

/// Why a yuan string was not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FenParseError {
    /// Nothing was entered.
    #[error("enter an amount")]
    Empty,
    /// A minus sign: amounts are never negative.
    #[error("the amount cannot be negative")]
    Negative,
    /// Anything but digits and one decimal point (exponents, `NaN`, spaces, letters, a
    /// second point, full-width digits).
    #[error("the amount must be written as digits with an optional decimal point, like 12.30")]
    Syntax,
    /// More than two digits after the point: fen is the smallest unit.
    #[error("the amount has more than two decimals")]
    TooManyDecimals,
    /// Larger than [`MAX_PARSED`].
    #[error("the amount is too large")]
    TooLarge,
}

/// Why a parsed amount cannot be charged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChargeAmountError {
    /// Zero: there is nothing to charge.
    #[error("the amount must be greater than ¥0.00")]
    Zero,
    /// Above the merchant's configured per-payment maximum.
    #[error("the amount is above the maximum of {max} per payment")]
    AboveMaximum {
        /// The configured maximum.
        max: Fen,
    },
}

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// The amount in fen.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Renders the amount in yuan with exactly two decimals, without a currency sign:
    /// `Fen(1230)` → `"12.30"`. This is the form WeChat's bills use.
    pub fn to_yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Checks that the amount can be charged in one payment: non-zero and at most `max`.
    pub fn check_charge(self, max: Fen) -> Result<Fen, ChargeAmountError> {
        if self.0 == 0 {
            Err(ChargeAmountError::Zero)
        } else if self > max {
            Err(ChargeAmountError::AboveMaximum { max })
        } else {
            Ok(self)
        }
    }

    /// Adds two amounts, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// Subtracts `other`, or `None` if it is larger.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "¥{}", self.to_yuan_string())
    }
}

impl FromStr for Fen {
    type Err = FenParseError;

    /// Parses a yuan amount exactly: `"12"`, `"12.3"`, `"12.30"`, `"0.01"`, `"00012.30"`.
    /// Surrounding ASCII spaces are ignored; anything else that is not a plain decimal is
    /// rejected, including `"1e3"`, `"NaN"`, `"-0"`, `".5"`, `"12."` and `"12.345"`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim_matches(' ');
        if text.is_empty() {
            return Err(FenParseError::Empty);
        }
        if text.starts_with('-') {
            return Err(FenParseError::Negative);
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) {
            return Err(FenParseError::Syntax);
        }
        let fraction_fen = match fraction {
            None => 0,
            Some(fraction) if !all_digits(fraction) => return Err(FenParseError::Syntax),
            Some(fraction) if fraction.len() > 2 => return Err(FenParseError::TooManyDecimals),
            Some(fraction) => {
                let value: u64 = fraction.parse().map_err(|_| FenParseError::Syntax)?;
                if fraction.len() == 1 {
                    value * 10
                } else {
                    value
                }
            }
        };
        let whole = whole.trim_start_matches('0');
        // Anything longer than 11 integer digits is above MAX_PARSED; checking the length
        // first keeps the parse below from overflowing on 20-digit input.
        if whole.len() > 11 {
            return Err(FenParseError::TooLarge);
        }
        let yuan: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| FenParseError::Syntax)?
        };
        let fen = Fen(yuan * 100 + fraction_fen);
        if fen > MAX_PARSED {
            return Err(FenParseError::TooLarge);
        }
        Ok(fen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_plain_decimals_exactly() {
        for (text, fen) in [
            ("12", 1200),
            ("12.3", 1230),
            ("12.30", 1230),
            ("0.01", 1),
            ("19.90", 1990),
            ("9.8", 980),
            ("1.1", 110),
            ("00012.30", 1230),
            ("0", 0),
            (" 5.00 ", 500),
            ("10000000000", 1_000_000_000_000),
        ] {
            assert_eq!(text.parse::<Fen>(), Ok(Fen(fen)), "{text}");
        }
    }

    #[test]
    fn rejects_everything_that_is_not_a_plain_decimal() {
        use FenParseError::*;
        for (text, error) in [
            ("", Empty),
            ("   ", Empty),
            ("-1", Negative),
            ("-0", Negative),
            ("1e3", Syntax),
            ("NaN", Syntax),
            ("inf", Syntax),
            (".5", Syntax),
            ("12.", Syntax),
            ("1.2.3", Syntax),
            ("+1", Syntax),
            ("１２", Syntax),
            ("12,30", Syntax),
            ("0x10", Syntax),
            ("12.345", TooManyDecimals),
            ("0.001", TooManyDecimals),
            ("12345678901234567890", TooLarge),
            ("10000000000.01", TooLarge),
        ] {
            assert_eq!(text.parse::<Fen>(), Err(error), "{text:?}");
        }
    }

    #[test]
    fn displays_with_currency_sign_and_two_decimals() {
        assert_eq!(Fen(1230).to_string(), "¥12.30");
        assert_eq!(Fen(1).to_string(), "¥0.01");
        assert_eq!(Fen(0).to_yuan_string(), "0.00");
        assert_eq!(Fen(100_000).to_yuan_string(), "1000.00");
    }

    #[test]
    fn charge_check_rejects_zero_and_amounts_above_the_maximum() {
        let max = Fen(500_000);
        assert_eq!(Fen(0).check_charge(max), Err(ChargeAmountError::Zero));
        assert_eq!(
            Fen(500_001).check_charge(max),
            Err(ChargeAmountError::AboveMaximum { max })
        );
        assert_eq!(Fen(500_000).check_charge(max), Ok(Fen(500_000)));
    }

    #[test]
    fn serialises_as_a_bare_integer() {
        assert_eq!(serde_json::to_string(&Fen(1230)).unwrap(), "1230");
        assert_eq!(serde_json::from_str::<Fen>("1230").unwrap(), Fen(1230));
        assert!(serde_json::from_str::<Fen>("-1").is_err());
        assert!(serde_json::from_str::<Fen>("12.5").is_err());
    }

    proptest! {
        #[test]
        fn yuan_string_round_trips(fen in 0u64..=MAX_PARSED.0) {
            prop_assert_eq!(Fen(fen).to_yuan_string().parse::<Fen>(), Ok(Fen(fen)));
        }
    }
}
