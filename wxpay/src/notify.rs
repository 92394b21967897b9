//! Refund-result notifications (docs/wechat-pay.md §9.2–§9.4): the encrypted `req_info` element.
//!
//! Refund notifications carry no `sign`; their integrity comes from `req_info`, which WeChat
//! encrypts with AES-256-ECB under a key derived from the merchant's APIv2 key:
//!
//! 1. Base64-decode `req_info`.
//! 2. Key = lower-case hex of MD5(APIv2 key): 32 ASCII bytes, used directly as an AES-256 key.
//! 3. AES-256-ECB decrypt, strict 16-byte PKCS#7 unpadding, UTF-8 XML rooted at `<root>`.
//!
//! ECB is WeChat's choice, not ours; it is implemented here block by block with the `aes`
//! crate's raw block cipher because no mode crate is needed for it. In the sandbox the sandbox
//! sign key takes the place of the merchant key.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};

use crate::params::Params;
use crate::sign::ApiKey;
use crate::xml::{self, XmlError};

/// The AES block size in bytes; PKCS#7 padding fills up to a multiple of it.
const BLOCK: usize = 16;

/// The root element of a decrypted `req_info`.
const REQ_INFO_ROOT: &str = "root";

/// Why a `req_info` could not be decrypted into parameters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// `req_info` is not valid standard Base64.
    #[error("req_info is not valid Base64")]
    Base64,
    /// The ciphertext is empty or not a whole number of 16-byte blocks.
    #[error("req_info ciphertext of {0} bytes is not a whole number of AES blocks")]
    Length(usize),
    /// The PKCS#7 padding is invalid: almost always the wrong API key (or a sandbox/production
    /// key mix-up), since a wrong key decrypts to noise.
    #[error("req_info padding is invalid (wrong API key?)")]
    Padding,
    /// The plaintext is not UTF-8.
    #[error("decrypted req_info is not UTF-8")]
    NotUtf8,
    /// The plaintext is not a flat `<root>` XML message.
    #[error("decrypted req_info is not a flat <root> message: {0}")]
    Xml(#[from] XmlError),
}

/// Decrypts a refund notification's `req_info` into its parameters (`out_refund_no`,
/// `refund_status`, `refund_fee`, …).
///
/// `key` is the merchant's APIv2 key (the sandbox sign key in the sandbox). The result is
/// authentic only in the sense that it decrypted with valid padding and parsed; callers should
/// still check that the outer `appid`/`mch_id` are theirs and that the refund matches one they
/// requested.
pub fn decrypt_req_info(req_info_base64: &str, key: &ApiKey) -> Result<Params, NotifyError> {
    let ciphertext = BASE64
        .decode(req_info_base64.trim())
        .map_err(|_| NotifyError::Base64)?;
    let plaintext = aes_ecb_decrypt(&ciphertext, key)?;
    let text = std::str::from_utf8(&plaintext).map_err(|_| NotifyError::NotUtf8)?;
    Ok(xml::decode_with_root(text.as_bytes(), REQ_INFO_ROOT)?)
}

/// Encrypts `params` as WeChat does for `req_info`: `<root>` XML, AES-256-ECB with PKCS#7,
/// Base64. This is what the simulator sends in refund notifications.
pub fn encrypt_req_info(params: &Params, key: &ApiKey) -> String {
    let plaintext = xml::encode_with_root(params, REQ_INFO_ROOT);
    BASE64.encode(aes_ecb_encrypt(plaintext.as_bytes(), key))
}

/// The AES-256 cipher keyed with lower-case hex MD5 of the API key (32 ASCII bytes).
fn cipher_for(key: &ApiKey) -> Aes256 {
    let derived = hex::encode(Md5::digest(key.expose().as_bytes()));
    // Hex of a 16-byte digest is always exactly 32 bytes, the AES-256 key size.
    Aes256::new(GenericArray::from_slice(derived.as_bytes()))
}

fn aes_ecb_encrypt(plaintext: &[u8], key: &ApiKey) -> Vec<u8> {
    let cipher = cipher_for(key);
    // PKCS#7 always adds padding: a full block of 16s when the input is already aligned.
    let pad = BLOCK - plaintext.len() % BLOCK;
    let mut data = Vec::with_capacity(plaintext.len() + pad);
    data.extend_from_slice(plaintext);
    data.extend(std::iter::repeat_n(pad as u8, pad));
    for block in data.chunks_exact_mut(BLOCK) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    data
}

fn aes_ecb_decrypt(ciphertext: &[u8], key: &ApiKey) -> Result<Vec<u8>, NotifyError> {
    if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
        return Err(NotifyError::Length(ciphertext.len()));
    }
    let cipher = cipher_for(key);
    let mut data = ciphertext.to_vec();
    for block in data.chunks_exact_mut(BLOCK) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    // Strict PKCS#7: the last byte n is 1..=16 and the last n bytes all equal n. Anything
    // else means the key was wrong or the data was tampered with.
    let pad = usize::from(*data.last().ok_or(NotifyError::Padding)?);
    if pad == 0
        || pad > BLOCK
        || data[data.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(NotifyError::Padding);
    }
    data.truncate(data.len() - pad);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/wechat-pay.md §9.4 R1: wechatpy `tests/test_crypto.py::test_refund_notify_decrypt_message`.
    const R1_KEY: &str = "OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk";
    const R1_REQ_INFO: &str = "51A27s9LxbaEv52nBOrqa0FCs3HVIM31Wc3BpNqSCP5MQlS8HL1Vl7mZ21043B7PZy7adtOZGtZv44lGl0U8JXlVFL4Ltxsw6+pACjZBB0Qi1LUDjFlP2IyTxYX4eC57kxnCphDdIyRkU67kOWW/HN/efggTUlaPJkoL5kVe9Y1MZF55IHR4lwGI7WtVLtxATX1tkAVZF+/ri0WlPXo9+GkqeB2/id6Ozw09Tqp8C/TKbmKBpRhTCRU2TzfQoLa6fjbgETFHJ795aEMyUZPQYbbsz6U9Rj9lUzEh8+Oc8KYTXa9zVk+nnFr82+yjffb3d36ylTe0y/VmYf90rf9cbiJQdM00zZ8Qa99SlMTs2wjOO4Mi4Btlg1PebsLF8TkqbSZkRJDGs61UunUB8Km1b/VeBxXuv4D3H7DiVZ9Fj7lq2j07zFDpxxlhhen7kZvMWWO3lrfFpA9c4eFOqfF9SxcU9nBmHfDD1g/dsrMl6+a71xQHJ/gn80fZOefUBv92ggqutsuJ4gd4OqkmO0XUs8e4XQyLpra+LvpmahsU5lBIZuQcMq3FHrqe8hXTfp3+3qym2wGfvPI75jx41VZwmBQy9izB1Id+A5lUeXC5QJy+ryDu/dWkhB+aMjkElaI/Epmcc/IEPaI73W6Hc58hNednOM536rPnn+GDc98PdGszpLTjmaZSu8dtqwPaym66yRqFQowzFoBbooik57iHUFBCeWya7XcXYL9WKhRF3uIZM+Kfv9/Zs2pF+w9/EJpltuzPpT1GP2VTMSHz45zwphFlS2lX8wHyZ+k9n2dptzQqpOCPedt5iQAmAe1oNQMxNdPDH9g68x9UzWD1kfK/dPO+3NPAh0XG+io4x15fIknNf7JLjpAuWicMMzCdwC4hhqeYOzQ+pC9f2xJXi5YViNKIZY69oO8eoHYRitLZrHLgx3oB2zimmqX6BI+DMklKAzAqqgGmbFxcVTvxZB6cMCx+H7TTWXnjAG+6A3SrCcxg0l5+UB93pkAYR7SVJ+VaZoiBqlqnZvb7IM17n9XaaFntlzvbbFCIa7OnOQb5Lvw=";
    const R1_PLAINTEXT: &str = "<root>\n<out_refund_no><![CDATA[1234]]></out_refund_no>\n<out_trade_no><![CDATA[2020010418301551404339261814]]></out_trade_no>\n<refund_account><![CDATA[REFUND_SOURCE_RECHARGE_FUNDS]]></refund_account>\n<refund_fee><![CDATA[1]]></refund_fee>\n<refund_id><![CDATA[50300103182020010413419046597]]></refund_id>\n<refund_recv_accout><![CDATA[招商银行信用卡8915]]></refund_recv_accout>\n<refund_request_source><![CDATA[API]]></refund_request_source>\n<refund_status><![CDATA[SUCCESS]]></refund_status>\n<settlement_refund_fee><![CDATA[1]]></settlement_refund_fee>\n<settlement_total_fee><![CDATA[1]]></settlement_total_fee>\n<success_time><![CDATA[2020-01-04 18:34:24]]></success_time>\n<total_fee><![CDATA[1]]></total_fee>\n<transaction_id><![CDATA[4200000483202001042069747825]]></transaction_id>\n</root>";

    #[test]
    fn r1_derived_key_is_md5_hex_of_the_api_key() {
        assert_eq!(
            hex::encode(Md5::digest(R1_KEY.as_bytes())),
            "63dfc0c1f53d9bc83a8fdc365b8141da"
        );
    }

    #[test]
    fn r1_wechatpy_vector_decrypts_byte_for_byte() {
        // Arrange
        let key = ApiKey::new(R1_KEY);
        let ciphertext = BASE64.decode(R1_REQ_INFO).unwrap();
        // Act
        let plaintext = aes_ecb_decrypt(&ciphertext, &key).unwrap();
        // Assert: the exact plaintext, and a 5-byte pad per the spec.
        assert_eq!(std::str::from_utf8(&plaintext).unwrap(), R1_PLAINTEXT);
        assert_eq!(ciphertext.len() - plaintext.len(), 5);
        // Re-encrypting the same bytes gives back the published ciphertext (ECB is
        // deterministic), which checks the padding side as well.
        assert_eq!(
            BASE64.encode(aes_ecb_encrypt(&plaintext, &key)),
            R1_REQ_INFO
        );
    }

    #[test]
    fn r1_wechatpy_vector_decodes_into_params() {
        let params = decrypt_req_info(R1_REQ_INFO, &ApiKey::new(R1_KEY)).unwrap();
        assert_eq!(params.len(), 13);
        assert_eq!(params.get("out_refund_no"), Some("1234"));
        assert_eq!(params.get("refund_status"), Some("SUCCESS"));
        assert_eq!(params.get("refund_recv_accout"), Some("招商银行信用卡8915"));
        assert_eq!(params.get("success_time"), Some("2020-01-04 18:34:24"));
        assert_eq!(
            params.get("transaction_id"),
            Some("4200000483202001042069747825")
        );
    }

    #[test]
    fn r2_ijpay_vector_encrypts_and_decrypts() {
        // docs/wechat-pay.md §9.4 R2: IJPay `WxPayKitTest.encryptData`.
        let key = ApiKey::new("42cc1d91bab89b65ff55b19e28fff4f0");
        assert_eq!(
            hex::encode(Md5::digest(key.expose().as_bytes())),
            "1c26ff4ebc15b88a8829febe1789c130"
        );
        assert_eq!(
            BASE64.encode(aes_ecb_encrypt(b"IJPay", &key)),
            "K8fdh/6THGfTKio8pxXS6Q=="
        );
        let ciphertext = BASE64.decode("K8fdh/6THGfTKio8pxXS6Q==").unwrap();
        assert_eq!(aes_ecb_decrypt(&ciphertext, &key).unwrap(), b"IJPay");
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_params() {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let params: Params = [
            ("out_refund_no", "R-1"),
            ("refund_fee", "100"),
            ("refund_recv_accout", "支付用户零钱"),
        ]
        .into_iter()
        .collect();
        let req_info = encrypt_req_info(&params, &key);
        assert_eq!(decrypt_req_info(&req_info, &key).unwrap(), params);
    }

    #[test]
    fn wrong_key_and_malformed_input_are_typed_errors() {
        assert_eq!(
            decrypt_req_info(R1_REQ_INFO, &ApiKey::new("not the key")),
            Err(NotifyError::Padding)
        );
        assert_eq!(
            decrypt_req_info("***", &ApiKey::new(R1_KEY)),
            Err(NotifyError::Base64)
        );
        assert_eq!(
            decrypt_req_info("", &ApiKey::new(R1_KEY)),
            Err(NotifyError::Length(0))
        );
        assert_eq!(
            decrypt_req_info("AAAA", &ApiKey::new(R1_KEY)),
            Err(NotifyError::Length(3))
        );
        // A correctly padded plaintext that is not a <root> message.
        let key = ApiKey::new(R1_KEY);
        let not_root = BASE64.encode(aes_ecb_encrypt(b"<xml><a>1</a></xml>", &key));
        assert_eq!(
            decrypt_req_info(&not_root, &key),
            Err(NotifyError::Xml(XmlError::NotXmlRoot))
        );
        let not_utf8 = BASE64.encode(aes_ecb_encrypt(b"\xff\xfe", &key));
        assert_eq!(decrypt_req_info(&not_utf8, &key), Err(NotifyError::NotUtf8));
    }

    #[test]
    fn padding_is_checked_strictly() {
        let key = ApiKey::new(R1_KEY);
        let cipher = cipher_for(&key);
        for bad_tail in [[0u8; 1], [17u8; 1]] {
            let mut block = [3u8; BLOCK];
            block[BLOCK - 1] = bad_tail[0];
            cipher.encrypt_block(GenericArray::from_mut_slice(&mut block));
            assert_eq!(aes_ecb_decrypt(&block, &key), Err(NotifyError::Padding));
        }
        // The last byte says 4 but the three before it are not 4.
        let mut block = [0u8; BLOCK];
        block[BLOCK - 1] = 4;
        cipher.encrypt_block(GenericArray::from_mut_slice(&mut block));
        assert_eq!(aes_ecb_decrypt(&block, &key), Err(NotifyError::Padding));
    }
}
