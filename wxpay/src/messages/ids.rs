//! Merchant-side identifiers, validated once when they are made.

use std::fmt;

/// Why a string is not a valid merchant order or refund number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty.
    #[error("{what} is empty")]
    Empty {
        /// Which identifier.
        what: &'static str,
    },
    /// Longer than WeChat allows.
    #[error("{what} is longer than {max} characters")]
    TooLong {
        /// Which identifier.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A character outside the allowed set.
    #[error("{what} may only contain letters, digits and {allowed}")]
    BadCharacter {
        /// Which identifier.
        what: &'static str,
        /// The allowed punctuation.
        allowed: &'static str,
    },
}

fn check(
    value: &str,
    what: &'static str,
    max: usize,
    punctuation: &'static str,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > max {
        return Err(IdError::TooLong { what, max });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || punctuation.contains(c))
    {
        return Err(IdError::BadCharacter {
            what,
            allowed: punctuation,
        });
    }
    Ok(())
}

/// The merchant's order number (`out_trade_no`): 1–32 characters of `[0-9A-Za-z_-|*]`,
/// unique per merchant. Retrying one payment must reuse it; a new scan needs a new one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutTradeNo(String);

impl OutTradeNo {
    /// Validates an order number.
    pub fn new(value: impl Into<String>) -> Result<OutTradeNo, IdError> {
        let value = value.into();
        check(&value, "out_trade_no", 32, "_-|*")?;
        Ok(OutTradeNo(value))
    }

    /// The number as sent to WeChat.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutTradeNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The merchant's refund number (`out_refund_no`): 1–64 characters of `[0-9A-Za-z_-|*@]`.
/// Retrying a refund must reuse it with the same amounts; WeChat refunds it once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutRefundNo(String);

impl OutRefundNo {
    /// Validates a refund number.
    pub fn new(value: impl Into<String>) -> Result<OutRefundNo, IdError> {
        let value = value.into();
        check(&value, "out_refund_no", 64, "_-|*@")?;
        Ok(OutRefundNo(value))
    }

    /// The number as sent to WeChat.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutRefundNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers() {
        assert!(OutTradeNo::new("P20261128-0001|a*b_c").is_ok());
        assert_eq!(
            OutTradeNo::new(""),
            Err(IdError::Empty {
                what: "out_trade_no"
            })
        );
        assert_eq!(
            OutTradeNo::new("x".repeat(33)),
            Err(IdError::TooLong {
                what: "out_trade_no",
                max: 32
            })
        );
        assert!(matches!(
            OutTradeNo::new("订单1"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            OutTradeNo::new("a@b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(OutRefundNo::new("a@b").is_ok());
        assert!(OutRefundNo::new("r".repeat(64)).is_ok());
        assert!(OutRefundNo::new("r".repeat(65)).is_err());
    }
}
