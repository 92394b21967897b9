//! Pairing by QR code, the pure part: finding the one-time pairing code in the address the
//! QR code carries (`https://…/#pair=pcp_…`, made by `paycode-proxy terminal add|pair`).
//! The code is in the fragment, which browsers never send to the server.

/// The prefix of every pairing code.
const CODE_PREFIX: &str = "pcp_";
/// The length of the base64url text after the prefix (128 bits).
const CODE_BODY_LENGTH: usize = 22;

/// The pairing code in `link`: a whole URL, or just its fragment (`#pair=…`, as
/// `location.hash` gives it). `None` when there is none or it is not shaped like a code.
pub fn code_from_link(link: &str) -> Option<&str> {
    let (_, fragment) = link.split_once('#')?;
    let code = fragment
        .split('&')
        .find_map(|pair| pair.strip_prefix("pair="))?;
    let body = code.strip_prefix(CODE_PREFIX)?;
    let well_formed = body.len() == CODE_BODY_LENGTH
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "pcp_AbCdEfGhIjKlMnOpQrSt-_";

    #[test]
    fn finds_the_code_in_a_url_or_a_fragment() {
        assert_eq!(
            code_from_link(&format!("https://paycode.local:3443/#pair={CODE}")),
            Some(CODE)
        );
        assert_eq!(code_from_link(&format!("#pair={CODE}")), Some(CODE));
        assert_eq!(code_from_link(&format!("#x=1&pair={CODE}")), Some(CODE));
    }

    #[test]
    fn anything_else_has_no_code() {
        for link in [
            "",
            "https://paycode.local/",
            "#pair=",
            "#pair=pcp_short",
            "#pair=pct_AbCdEfGhIjKlMnOpQrSt-_",
            &format!("https://paycode.local/?pair={CODE}"),
            &format!("#pair={CODE}x"),
            "134821773099990100",
        ] {
            assert_eq!(code_from_link(link), None, "{link}");
        }
    }
}
