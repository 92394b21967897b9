//! Decimal digits in any script, read as ASCII `0`–`9`.
//!
//! A payment code reaches the page as text in more ways than key events: the manual-entry
//! field, the hidden capture field that IMEs and Android scanners type into, and paste. A
//! Chinese IME in full-width (全角) mode types `１３４８…` (U+FF10–U+FF19); an Arabic or Hindi
//! keyboard types its own digits. The payment code is the same number, so the page reads every
//! Unicode decimal digit (General_Category `Nd`) as its ASCII digit before a code is parsed.
//! `paycode_api::AuthCode` and the HTTP API stay strict (ASCII only): normalising is the
//! capture's job, not the contract's.
//!
//! Unicode guarantees that the `Nd` characters come in runs of ten consecutive code points with
//! the values 0 to 9 in order (Unicode Standard, §4.6 "Numeric Value": "characters with the
//! property value Numeric_Type=Decimal are encoded in contiguous ranges, with ascending numeric
//! values"), so a table of each run's zero is the whole rule. The table lists the 66 runs of
//! Unicode 14.0 (generated from Python's `unicodedata`: every character with category `Nd` and
//! decimal value 0) plus the two added in Unicode 15.0 (Kawi U+11F50, Nag Mundari U+1E4F0).

/// The first code point (the zero) of every run of ten decimal digits, in ascending order.
const ZEROS: [u32; 68] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0,
    0x1E950, 0x1FBF0,
];

/// The value of a decimal digit in any script (`'7'`, `'７'`, `'٧'`, `'७'` → 7); `None` for
/// anything else, including other numeric characters such as `'½'`, `'Ⅶ'` or `'七'`, which are
/// not digits of a payment code.
pub fn decimal_value(character: char) -> Option<u8> {
    let point = u32::from(character);
    // The last run whose zero is at or below the character.
    let index = ZEROS
        .partition_point(|&zero| zero <= point)
        .checked_sub(1)?;
    let offset = point - ZEROS[index];
    // An offset below ten is a digit of that run: the runs do not overlap.
    u8::try_from(offset).ok().filter(|&value| value < 10)
}

/// The decimal digits of `text` as ASCII, in order, dropping everything else (spaces, dashes,
/// letters): `"１３４８ 2177"` → `"13482177"`.
pub fn ascii_digits(text: &str) -> String {
    text.chars()
        .filter_map(decimal_value)
        .map(|value| char::from(b'0' + value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_is_ten_numeric_characters_in_ascending_order() {
        assert!(ZEROS.windows(2).all(|pair| pair[1] >= pair[0] + 10));
        for zero in ZEROS {
            for value in 0..10u8 {
                let character = char::from_u32(zero + u32::from(value)).unwrap();
                assert!(character.is_numeric(), "U+{:04X}", zero + u32::from(value));
                assert_eq!(decimal_value(character), Some(value));
            }
        }
    }

    #[test]
    fn ascii_full_width_arabic_indic_and_devanagari_digits_are_read() {
        assert_eq!(ascii_digits("0123456789"), "0123456789");
        assert_eq!(ascii_digits("０１２３４５６７８９"), "0123456789");
        assert_eq!(ascii_digits("٠١٢٣٤٥٦٧٨٩"), "0123456789");
        assert_eq!(ascii_digits("۰۱۲۳۴۵۶۷۸۹"), "0123456789");
        assert_eq!(ascii_digits("०१२३४५६७८९"), "0123456789");
        assert_eq!(ascii_digits("𝟎𝟏𝟐"), "012");
    }

    #[test]
    fn other_numeric_characters_and_separators_are_not_digits() {
        for character in ['½', 'Ⅶ', '七', '²', '①', 'a', ' ', '-', '/', ':'] {
            assert_eq!(decimal_value(character), None, "{character}");
        }
        assert_eq!(ascii_digits("１３４８ ２１７７-7730"), "134821777730");
    }

    #[test]
    fn a_full_width_payment_code_reads_as_the_ascii_one() {
        let code = ascii_digits("１３４８２１７７３０９９９９０００１");
        assert_eq!(code, "134821773099990001");
        assert!(paycode_api::AuthCode::parse(&code).is_ok());
        // The contract itself stays strict.
        assert!(paycode_api::AuthCode::parse("１３４８２１７７３０９９９９０００１").is_err());
    }
}
