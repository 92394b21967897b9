//! Amount entry: what the keypad and the physical keys build, and the checks before a charge.
//!
//! The amount is kept as the text the cashier typed (`"12.3"`) and turned into fen only by
//! `paycode_api::Fen`'s exact decimal parser, so a float never holds money.

use paycode_api::{ChargeAmountError, Fen};

/// The most integer digits the keypad accepts: ¥999,999.99 is far above any counter sale,
/// and the per-payment maximum is checked separately.
pub const MAX_INTEGER_DIGITS: usize = 6;

/// A key of the amount keypad (on screen or physical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountKey {
    /// `0`–`9`.
    Digit(u8),
    /// `00`.
    DoubleZero,
    /// The decimal point.
    Point,
    /// ⌫: removes the last character.
    Backspace,
    /// C / Esc: clears the amount.
    Clear,
}

/// The limits that apply to a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmountPolicy {
    /// The most one payment may charge.
    pub max_charge: Fen,
    /// From this amount on, the cashier confirms the amount before the scanner is armed.
    pub large_amount: Fen,
}

impl Default for AmountPolicy {
    fn default() -> Self {
        AmountPolicy {
            max_charge: Fen(5_000_000),
            large_amount: Fen(100_000),
        }
    }
}

/// Why the typed amount cannot be charged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmountProblem {
    /// Nothing typed.
    Empty,
    /// ¥0.00.
    Zero,
    /// Above [`AmountPolicy::max_charge`].
    AboveMaximum(Fen),
}

/// What Enter / 收款 does with the typed amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proceed {
    /// Arm the scanner for this amount.
    Charge(Fen),
    /// Ask "确认金额" first: the amount is large.
    ConfirmLarge(Fen),
    /// Refuse, with the reason.
    Refuse(AmountProblem),
}

/// The amount being typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AmountEntry {
    text: String,
}

impl AmountEntry {
    /// An empty entry.
    pub fn new() -> AmountEntry {
        AmountEntry::default()
    }

    /// The text as typed (`""`, `"0."`, `"12.3"`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// What the big display shows: `¥12.3` while typing, `¥0.00` when empty.
    pub fn display(&self) -> String {
        if self.text.is_empty() {
            "¥0.00".to_owned()
        } else {
            format!("¥{}", self.text)
        }
    }

    /// Applies a key. Returns `false` when the key is refused (a third decimal, a seventh
    /// integer digit, a second point, ⌫ on nothing), so the page can play the error tick.
    pub fn press(&mut self, key: AmountKey) -> bool {
        match key {
            AmountKey::Digit(digit) if digit <= 9 => self.push_digit(digit),
            AmountKey::Digit(_) => false,
            AmountKey::DoubleZero => {
                if self.text.is_empty() || self.text == "0" {
                    return false;
                }
                let before = self.text.clone();
                if self.push_digit(0) && self.push_digit(0) {
                    true
                } else {
                    // Both zeros or neither: "12.3" + "00" would otherwise become "12.30".
                    self.text = before;
                    false
                }
            }
            AmountKey::Point => {
                if self.text.contains('.') {
                    return false;
                }
                if self.text.is_empty() {
                    self.text.push('0');
                }
                self.text.push('.');
                true
            }
            AmountKey::Backspace => self.text.pop().is_some(),
            AmountKey::Clear => {
                let changed = !self.text.is_empty();
                self.text.clear();
                changed
            }
        }
    }

    /// Replaces the amount (quick-amount buttons).
    pub fn set(&mut self, amount: Fen) {
        self.text = if amount.get() % 100 == 0 {
            (amount.get() / 100).to_string()
        } else {
            amount.to_yuan_string()
        };
    }

    /// The typed amount in fen, parsed exactly. A trailing point (`"12."`) reads as `12`.
    pub fn amount(&self) -> Option<Fen> {
        let text = self.text.strip_suffix('.').unwrap_or(&self.text);
        text.parse::<Fen>().ok()
    }

    /// What Enter does under `policy`.
    pub fn proceed(&self, policy: &AmountPolicy) -> Proceed {
        let Some(amount) = self.amount() else {
            return Proceed::Refuse(AmountProblem::Empty);
        };
        match amount.check_charge(policy.max_charge) {
            Err(ChargeAmountError::Zero) => Proceed::Refuse(AmountProblem::Zero),
            Err(ChargeAmountError::AboveMaximum { max }) => {
                Proceed::Refuse(AmountProblem::AboveMaximum(max))
            }
            Ok(amount) if amount >= policy.large_amount => Proceed::ConfirmLarge(amount),
            Ok(amount) => Proceed::Charge(amount),
        }
    }

    fn push_digit(&mut self, digit: u8) -> bool {
        let character = char::from(b'0' + digit);
        match self.text.split_once('.') {
            Some((_, decimals)) if decimals.len() >= 2 => false,
            Some(_) => {
                self.text.push(character);
                true
            }
            None if self.text == "0" => {
                if digit == 0 {
                    return false;
                }
                self.text = character.to_string();
                true
            }
            None if self.text.len() >= MAX_INTEGER_DIGITS => false,
            None => {
                self.text.push(character);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &str) -> AmountEntry {
        let mut entry = AmountEntry::new();
        for key in keys.chars() {
            let key = match key {
                '.' => AmountKey::Point,
                '<' => AmountKey::Backspace,
                'C' => AmountKey::Clear,
                'Z' => AmountKey::DoubleZero,
                digit => AmountKey::Digit(digit.to_digit(10).unwrap() as u8),
            };
            entry.press(key);
        }
        entry
    }

    #[test]
    fn digits_and_point_build_an_exact_amount() {
        assert_eq!(typed("12.3").amount(), Some(Fen(1230)));
        assert_eq!(typed("12.30").amount(), Some(Fen(1230)));
        assert_eq!(typed("0.01").amount(), Some(Fen(1)));
        assert_eq!(typed("19.9").amount(), Some(Fen(1990)));
        assert_eq!(typed("12.").amount(), Some(Fen(1200)));
        assert_eq!(typed(".5").text(), "0.5");
        assert_eq!(typed("").amount(), None);
    }

    #[test]
    fn refuses_what_fen_cannot_hold() {
        let mut entry = typed("12.34");
        assert!(!entry.press(AmountKey::Digit(5)), "a third decimal");
        assert_eq!(entry.text(), "12.34");
        assert!(!entry.press(AmountKey::Point), "a second point");
        let mut entry = typed("999999");
        assert!(!entry.press(AmountKey::Digit(1)), "a seventh integer digit");
        assert!(entry.press(AmountKey::Point));
        assert!(entry.press(AmountKey::Digit(9)));
        assert!(!AmountEntry::new().press(AmountKey::Backspace));
        assert!(!AmountEntry::new().press(AmountKey::Digit(10)));
    }

    #[test]
    fn no_leading_zeros() {
        assert_eq!(typed("007").text(), "7");
        assert_eq!(typed("0").text(), "0");
        assert!(!typed("0").press(AmountKey::Digit(0)));
        assert_eq!(typed("0.05").amount(), Some(Fen(5)));
    }

    #[test]
    fn double_zero_adds_both_or_nothing() {
        assert_eq!(typed("5Z").text(), "500");
        assert_eq!(typed("5.Z").text(), "5.00");
        assert_eq!(typed("5.1Z").text(), "5.1");
        assert_eq!(typed("Z").text(), "");
        assert_eq!(typed("99999Z").text(), "99999");
    }

    #[test]
    fn backspace_and_clear() {
        assert_eq!(typed("12.3<").text(), "12.");
        assert_eq!(typed("12.3<<").text(), "12");
        assert_eq!(typed("12.3C").text(), "");
        assert_eq!(typed("12.3C").display(), "¥0.00");
        assert_eq!(typed("12.3").display(), "¥12.3");
    }

    #[test]
    fn quick_amounts_replace_the_entry() {
        let mut entry = typed("3.5");
        entry.set(Fen(5000));
        assert_eq!(entry.text(), "50");
        entry.set(Fen(1230));
        assert_eq!(entry.text(), "12.30");
        assert_eq!(entry.amount(), Some(Fen(1230)));
    }

    #[test]
    fn proceed_checks_zero_maximum_and_large_amounts() {
        let policy = AmountPolicy {
            max_charge: Fen(1_000_000),
            large_amount: Fen(100_000),
        };
        assert_eq!(
            typed("").proceed(&policy),
            Proceed::Refuse(AmountProblem::Empty)
        );
        assert_eq!(
            typed("0.00").proceed(&policy),
            Proceed::Refuse(AmountProblem::Zero)
        );
        assert_eq!(typed("12.3").proceed(&policy), Proceed::Charge(Fen(1230)));
        assert_eq!(
            typed("999.99").proceed(&policy),
            Proceed::Charge(Fen(99_999))
        );
        assert_eq!(
            typed("1000").proceed(&policy),
            Proceed::ConfirmLarge(Fen(100_000))
        );
        assert_eq!(
            typed("10000.01").proceed(&policy),
            Proceed::Refuse(AmountProblem::AboveMaximum(Fen(1_000_000)))
        );
    }
}
