//! APIv2 signatures (docs/wechat-pay.md §4): MD5 or HMAC-SHA256 over the sorted, non-empty, raw parameters.

use std::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::params::Params;

/// The merchant's 32-character APIv2 key (商户平台 → 账户中心 → API安全), or a sandbox sign key.
///
/// `Debug` never shows it. It is only read by [`sign`] and [`verify`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself. Callers that need it (the simulator, req_info decryption, secret
    /// scanners in tests) must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// The signature algorithm, as named by the `sign_type` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignType {
    /// `MD5`: the default when `sign_type` is absent.
    #[default]
    Md5,
    /// `HMAC-SHA256`, keyed with the same API key.
    HmacSha256,
}

/// A `sign_type` value other than `MD5` and `HMAC-SHA256`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown sign_type {0:?}")]
pub struct UnknownSignType(pub String);

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Reads the `sign_type` element of a message: absent or empty means MD5.
    pub fn of(params: &Params) -> Result<SignType, UnknownSignType> {
        match params.get_non_empty("sign_type") {
            None | Some("MD5") => Ok(SignType::Md5),
            Some("HMAC-SHA256") => Ok(SignType::HmacSha256),
            Some(other) => Err(UnknownSignType(other.to_owned())),
        }
    }
}

/// The string that is hashed, without the `&key=` suffix: `a=1&b=2`, names in byte order,
/// `sign` and empty values left out, values raw (no escaping, UTF-8).
pub fn string_to_sign(params: &Params) -> String {
    let mut joined = String::new();
    feed_fields(params, |piece| joined.push_str(piece));
    joined
}

/// Feeds `string_to_sign` to `update` piece by piece, so hashing needs no intermediate
/// string.
fn feed_fields(params: &Params, mut update: impl FnMut(&str)) {
    let mut first = true;
    for (name, value) in params.iter() {
        if name == "sign" || value.is_empty() {
            continue;
        }
        if !first {
            update("&");
        }
        first = false;
        update(name);
        update("=");
        update(value);
    }
}

/// Feeds the whole signed message, `string_to_sign` + `&key=` + key, to `update`.
fn feed(params: &Params, key: &ApiKey, mut update: impl FnMut(&[u8])) {
    feed_fields(params, |piece| update(piece.as_bytes()));
    update(b"&key=");
    update(key.expose().as_bytes());
}

/// Signs `params` (ignoring any `sign` already present): upper-case hex, 32 characters for
/// MD5 and 64 for HMAC-SHA256.
pub fn sign(params: &Params, key: &ApiKey, sign_type: SignType) -> String {
    match sign_type {
        SignType::Md5 => {
            let mut hasher = Md5::new();
            feed(params, key, |piece| hasher.update(piece));
            hex::encode_upper(hasher.finalize())
        }
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
            let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
                .expect("HMAC takes keys of any length");
            feed(params, key, |piece| mac.update(piece));
            hex::encode_upper(mac.finalize().into_bytes())
        }
    }
}

/// Why a message's signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// There is no `sign` element (or it is empty).
    #[error("the message has no sign")]
    Missing,
    /// The `sign` element does not match the message and key.
    #[error("the message's sign does not match")]
    Mismatch,
}

/// Checks the `sign` element of `params` against all its other elements.
///
/// The comparison is exact (upper-case hex, as WeChat produces) and takes the same time
/// wherever the first difference is.
pub fn verify(params: &Params, key: &ApiKey, sign_type: SignType) -> Result<(), SignatureError> {
    let given = params
        .get_non_empty("sign")
        .ok_or(SignatureError::Missing)?;
    let expected = sign(params, key, sign_type);
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().copied().collect()
    }

    #[test]
    fn v1_official_document_example() {
        // Arrange
        let message = params(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        let key = ApiKey::new(DOC_KEY);
        // Act & Assert
        assert_eq!(
            string_to_sign(&message),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            sign(&message, &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            sign(&message, &key, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn v2_wechatpy_vector() {
        let message = params(&[("test1", "test1"), ("test2", "test2")]);
        let key = ApiKey::new(DOC_KEY);
        assert_eq!(
            sign(&message, &key, SignType::Md5),
            "1E3A8D73B5A4AEE787C0F68B5DAB8520"
        );
        assert_eq!(
            sign(&message, &key, SignType::HmacSha256),
            "EDAC6D70D2FDF5A2382F8204FC96A1918017E46ACC5297F565ED1A7610ACF659"
        );
    }

    #[test]
    fn v3_yansongda_vector_excludes_empty_values() {
        let message = params(&[("name", "yansongda"), ("age", "29"), ("foo", "")]);
        assert_eq!(string_to_sign(&message), "age=29&name=yansongda");
        assert_eq!(
            sign(&message, &ApiKey::new("yansongda"), SignType::Md5),
            "3213848AED2C380749FD1D559555881D"
        );
    }

    #[test]
    fn v4_micropay_with_chinese_body() {
        let mut message = params(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
            ("body", "image形象店-深圳腾大-QQ公仔"),
            ("out_trade_no", "1217752501201407033233368018"),
            ("total_fee", "888"),
            ("spbill_create_ip", "8.8.8.8"),
            ("auth_code", "120061098828009406"),
            ("attach", ""),
        ]);
        let key = ApiKey::new(DOC_KEY);
        assert_eq!(
            string_to_sign(&message),
            "appid=wxd930ea5d5a258f4f&auth_code=120061098828009406&body=image形象店-深圳腾大-QQ公仔&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&out_trade_no=1217752501201407033233368018&spbill_create_ip=8.8.8.8&total_fee=888"
        );
        assert_eq!(
            sign(&message, &key, SignType::Md5),
            "EB8990A585CA198415A19890266F6A75"
        );
        message.insert("sign_type", "HMAC-SHA256");
        assert_eq!(SignType::of(&message), Ok(SignType::HmacSha256));
        assert_eq!(
            sign(&message, &key, SignType::HmacSha256),
            "020DD2C82B5D1060A1227168C94B3B50D758FB5B8D486E915F189D6189F34752"
        );
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_tampering() {
        let key = ApiKey::new(DOC_KEY);
        let mut message = params(&[
            ("return_code", "SUCCESS"),
            ("total_fee", "1"),
            ("coupon_fee_0", "1"),
        ]);
        message.insert("sign", sign(&message, &key, SignType::Md5));
        assert_eq!(verify(&message, &key, SignType::Md5), Ok(()));
        assert_eq!(
            verify(&message, &key, SignType::HmacSha256),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&message, &ApiKey::new("other"), SignType::Md5),
            Err(SignatureError::Mismatch)
        );
        message.insert("coupon_fee_0", "2");
        assert_eq!(
            verify(&message, &key, SignType::Md5),
            Err(SignatureError::Mismatch)
        );
        message.remove("sign");
        assert_eq!(
            verify(&message, &key, SignType::Md5),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn sign_type_parsing() {
        assert_eq!(SignType::of(&Params::new()), Ok(SignType::Md5));
        assert_eq!(
            SignType::of(&params(&[("sign_type", "")])),
            Ok(SignType::Md5)
        );
        assert_eq!(
            SignType::of(&params(&[("sign_type", "SHA1")])),
            Err(UnknownSignType("SHA1".into()))
        );
    }

    #[test]
    fn api_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", ApiKey::new(DOC_KEY)), "ApiKey(***)");
    }
}
