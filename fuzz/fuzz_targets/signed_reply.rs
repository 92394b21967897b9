//! Structure-aware: the fuzzer's bytes become a field set that is signed with the merchant
//! key, then tampered with (one field changed, added or removed, or the whole message
//! re-signed with another key). A correctly signed message always verifies and survives the
//! codec; a tampered or forged one never verifies.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::{ApiKey, Params, SignType, sign, xml};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const FORGER_KEY: &str = "00000000000000000000000000000000";

/// Splits `data` into `name=value` pairs on 0xFF / 0xFE bytes; names are made ASCII
/// identifiers (WeChat's field names), values are any UTF-8 text.
fn fields(data: &[u8]) -> Params {
    let mut params = Params::new();
    for chunk in data.split(|&b| b == 0xff).take(64) {
        let mut parts = chunk.splitn(2, |&b| b == 0xfe);
        let name: String = parts
            .next()
            .unwrap_or_default()
            .iter()
            .map(|&b| (b'a' + b % 26) as char)
            .take(32)
            .collect();
        let value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        if !name.is_empty() && name != "sign" {
            params.insert(name, value);
        }
    }
    params.insert("return_code", "SUCCESS");
    params
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let (selector, rest) = (data[0], &data[1..]);
    let key = ApiKey::new(KEY);
    let sign_type = if selector & 1 == 0 {
        SignType::Md5
    } else {
        SignType::HmacSha256
    };
    let mut params = fields(rest);
    params.insert("sign", sign::sign(&params, &key, sign_type));
    assert!(
        sign::verify(&params, &key, sign_type).is_ok(),
        "a genuine signature verifies"
    );
    // Through the wire: encode and decode, then verify again (the decoder must not change
    // a signed value). Values with characters XML 1.0 cannot carry are refused instead.
    if let Ok(decoded) = xml::decode(xml::encode(&params).as_bytes()) {
        if decoded == params {
            assert!(sign::verify(&decoded, &key, sign_type).is_ok());
        }
    }
    let mut tampered = params.clone();
    match (selector >> 1) % 4 {
        0 => {
            // Change one non-empty value.
            let victim = tampered
                .iter()
                .find(|(name, value)| *name != "sign" && !value.is_empty())
                .map(|(name, value)| (name.to_owned(), format!("{value}0")));
            let Some((name, value)) = victim else { return };
            tampered.insert(name, value);
        }
        1 => {
            // Add a field that was not signed.
            tampered.insert("zz_injected", "1");
        }
        2 => {
            // Drop a signed non-empty field.
            let victim = tampered
                .iter()
                .find(|(name, value)| *name != "sign" && !value.is_empty())
                .map(|(name, _)| name.to_owned());
            let Some(name) = victim else { return };
            tampered.remove(&name);
        }
        _ => {
            // A forgery: the right fields, signed with the wrong key.
            tampered.insert(
                "sign",
                sign::sign(&params, &ApiKey::new(FORGER_KEY), sign_type),
            );
        }
    }
    assert!(
        sign::verify(&tampered, &key, sign_type).is_err(),
        "a tampered or forged reply verified"
    );
});
