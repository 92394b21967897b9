//! Any bytes as a WeChat reply body: the decoder never panics and stays within its limits;
//! whatever decodes re-encodes losslessly (or, when CDATA framing makes the encoding longer
//! than the limit, is refused as too large); the verifier never panics and never accepts a
//! message that re-signing does not reproduce; the typed readers never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::messages::{
    CloseOrderResponse, MicropayResponse, OrderQueryResponse, RefundQueryResponse, RefundResponse,
    Response, ReverseResponse,
};
use wxpay::{ApiKey, SignType, sign, xml};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fuzz_target!(|data: &[u8]| {
    let Ok(params) = xml::decode(data) else {
        return;
    };
    assert!(data.len() <= xml::MAX_BODY_BYTES);
    assert!(params.len() <= xml::MAX_FIELDS);
    // CDATA framing can make the encoding longer than the body it came from (an escaped
    // `]]&gt;` becomes a split CDATA section), so the re-encoding meets the same size limit.
    let encoded = xml::encode(&params);
    match xml::decode(encoded.as_bytes()) {
        Ok(again) => assert_eq!(again, params, "the codec lost or changed a field"),
        Err(xml::XmlError::TooLarge(len)) => assert!(len > xml::MAX_BODY_BYTES),
        Err(error) => panic!("re-encoded XML does not decode: {error:?}"),
    }
    let key = ApiKey::new(KEY);
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        if sign::verify(&params, &key, sign_type).is_ok() {
            assert_eq!(
                Some(sign::sign(&params, &key, sign_type).as_str()),
                params.get("sign"),
                "verified a signature that re-signing does not reproduce"
            );
        }
    }
    let _ = SignType::of(&params);
    let _ = MicropayResponse::from_params(params.clone());
    let _ = OrderQueryResponse::from_params(params.clone());
    let _ = ReverseResponse::from_params(params.clone());
    let _ = RefundResponse::from_params(params.clone());
    let _ = RefundQueryResponse::from_params(params.clone());
    let _ = CloseOrderResponse::from_params(params);
});
