//! Reading a reply body: XML or not, `return_code`, signature, `result_code` (docs/wechat-pay.md §2.2, §4.3).
//!
//! These are pure functions of the bytes received, so every odd shape WeChat (or a gateway in
//! front of it) produces is tested here without a server.

use crate::codes::{Api, ErrCode};
use crate::error::{BadReply, BusinessError, Error, MaybeSent, Result};
use crate::params::Params;
use crate::sign::{self, ApiKey, SignType};
use crate::xml::{self, strip_bom};

/// Decodes a reply body, telling "not XML at all" (an HTML error page, an empty body: the
/// request may not have reached WeChat's application) from "XML that does not decode" (a
/// reply that cannot be trusted).
pub(crate) fn parse_body(body: &[u8]) -> Result<Params> {
    if !looks_like_xml(body) {
        return Err(MaybeSent::NotXml.into());
    }
    xml::decode(body).map_err(|error| BadReply::Xml(error).into())
}

/// Applies the decision order of docs/wechat-pay.md §2.2 to a decoded reply and returns it once verified.
///
/// - `return_code=FAIL` → [`Error::Protocol`] with `return_msg` (or the sandbox's `retmsg`).
///   These replies are unsigned, so nothing is verified.
/// - `return_code` missing or anything but `SUCCESS` → [`BadReply::ReturnCode`].
/// - Otherwise the signature must verify over every element with `key` and `sign_type`.
/// - Then, on APIs that have one, `result_code=FAIL` → [`Error::Business`], and a missing or
///   unknown `result_code` → [`BadReply::Field`].
pub(crate) fn check_reply(
    api: Api,
    reply: Params,
    key: &ApiKey,
    sign_type: SignType,
) -> Result<Params> {
    match reply.get("return_code") {
        Some("SUCCESS") => {}
        Some("FAIL") => {
            return Err(Error::Protocol {
                return_msg: return_msg(&reply),
            });
        }
        other => return Err(BadReply::ReturnCode(other.map(str::to_owned)).into()),
    }
    sign::verify(&reply, key, sign_type).map_err(BadReply::Signature)?;
    if !has_result_code(api) {
        return Ok(reply);
    }
    match reply.get("result_code") {
        Some("SUCCESS") => Ok(reply),
        Some("FAIL") => {
            // A signed FAIL without an err_code is still WeChat's word; the empty code
            // becomes `ErrCode::Other("")`, which classifies like any unknown code.
            let err_code = ErrCode::parse(reply.get("err_code").unwrap_or_default());
            let err_code_des = reply.get("err_code_des").unwrap_or_default().to_owned();
            Err(BusinessError {
                api,
                err_code,
                err_code_des,
                reply,
            }
            .into())
        }
        Some(other) => Err(BadReply::Field {
            field: "result_code",
            problem: format!("unexpected value {other:?}"),
        }
        .into()),
        None => Err(BadReply::Field {
            field: "result_code",
            problem: "missing from a return_code=SUCCESS reply".into(),
        }
        .into()),
    }
}

/// Reads a `downloadbill` reply: the bill's bytes on success (unsigned CSV text, or a gzip
/// file with `tar_type=GZIP`), or an XML error (`return_code=FAIL`, `return_msg`,
/// `error_code`) when the body starts with `<`.
pub(crate) fn bill_from_body(body: &[u8]) -> Result<Vec<u8>> {
    let content = strip_bom(body);
    let start = trim_start(content);
    if start.is_empty() {
        return Err(MaybeSent::NotXml.into());
    }
    if start[0] == b'<' {
        if is_html(start) {
            return Err(MaybeSent::NotXml.into());
        }
        let reply = xml::decode(body).map_err(BadReply::Xml)?;
        return match reply.get("return_code") {
            Some("FAIL") => {
                let mut message = return_msg(&reply);
                if let Some(code) = reply.get_non_empty("error_code") {
                    message = format!("{message} (error_code {code})");
                }
                Err(Error::Protocol {
                    return_msg: message,
                })
            }
            // An XML reply that is not a FAIL is not a bill either.
            other => Err(BadReply::ReturnCode(other.map(str::to_owned)).into()),
        };
    }
    Ok(body.to_vec())
}

/// Whether the API's replies carry `result_code` (all business APIs; not `getsignkey`, and
/// `downloadbill` has no XML success reply at all).
pub(crate) fn has_result_code(api: Api) -> bool {
    !matches!(api, Api::GetSignKey | Api::DownloadBill)
}

fn return_msg(reply: &Params) -> String {
    reply
        .get_non_empty("return_msg")
        .or_else(|| reply.get_non_empty("retmsg"))
        .unwrap_or_default()
        .to_owned()
}

/// XML starts with `<` after an optional BOM and whitespace, and is not an HTML page.
fn looks_like_xml(body: &[u8]) -> bool {
    let start = trim_start(strip_bom(body));
    start.first() == Some(&b'<') && !is_html(start)
}

fn is_html(start: &[u8]) -> bool {
    let head: Vec<u8> = start.iter().take(16).map(u8::to_ascii_lowercase).collect();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

fn trim_start(body: &[u8]) -> &[u8] {
    let first = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    &body[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::XmlError;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn signed(pairs: &[(&str, &str)], sign_type: SignType) -> Params {
        let mut params: Params = pairs.iter().copied().collect();
        let signature = sign::sign(&params, &ApiKey::new(KEY), sign_type);
        params.insert("sign", signature);
        params
    }

    fn check(api: Api, reply: Params) -> Result<Params> {
        check_reply(api, reply, &ApiKey::new(KEY), SignType::HmacSha256)
    }

    #[test]
    fn non_xml_bodies_are_maybe_sent() {
        for body in [
            &b""[..],
            b"   \n",
            b"\xEF\xBB\xBF",
            b"Bad Gateway",
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            b"\n<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\"><html></html>",
        ] {
            assert!(
                matches!(parse_body(body), Err(Error::MaybeSent(MaybeSent::NotXml))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn malformed_xml_is_a_bad_reply() {
        assert!(matches!(
            parse_body(b"<xml><return_code>SUCCESS</xml>"),
            Err(Error::BadReply(BadReply::Xml(XmlError::Malformed(_))))
        ));
        assert!(matches!(
            parse_body(b"<error>nope</error>"),
            Err(Error::BadReply(BadReply::Xml(XmlError::NotXmlRoot)))
        ));
        assert!(parse_body(b"\xEF\xBB\xBF\n<xml><a>1</a></xml>").is_ok());
    }

    #[test]
    fn fail_replies_are_protocol_errors_and_not_verified() {
        let reply: Params = [("return_code", "FAIL"), ("return_msg", "签名错误")]
            .into_iter()
            .collect();
        assert!(matches!(
            check(Api::Micropay, reply),
            Err(Error::Protocol { return_msg }) if return_msg == "签名错误"
        ));
        // The sandbox's retcode/retmsg shape.
        let sandbox: Params = [
            ("return_code", "FAIL"),
            ("retcode", "1"),
            ("retmsg", "请确认请求参数是否正确total_fee"),
        ]
        .into_iter()
        .collect();
        assert!(matches!(
            check(Api::Micropay, sandbox),
            Err(Error::Protocol { return_msg }) if return_msg == "请确认请求参数是否正确total_fee"
        ));
    }

    #[test]
    fn odd_return_codes_are_bad_replies() {
        let missing: Params = [("result_code", "SUCCESS")].into_iter().collect();
        assert!(matches!(
            check(Api::Micropay, missing),
            Err(Error::BadReply(BadReply::ReturnCode(None)))
        ));
        let odd: Params = [("return_code", "success")].into_iter().collect();
        assert!(matches!(
            check(Api::Micropay, odd),
            Err(Error::BadReply(BadReply::ReturnCode(Some(code)))) if code == "success"
        ));
    }

    #[test]
    fn success_replies_must_be_signed_with_the_request_sign_type() {
        let pairs = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("coupon_fee_0", "1"),
        ];
        assert!(check(Api::Micropay, signed(&pairs, SignType::HmacSha256)).is_ok());
        assert!(matches!(
            check(Api::Micropay, signed(&pairs, SignType::Md5)),
            Err(Error::BadReply(BadReply::Signature(
                sign::SignatureError::Mismatch
            )))
        ));
        let unsigned: Params = pairs.into_iter().collect();
        assert!(matches!(
            check(Api::Micropay, unsigned),
            Err(Error::BadReply(BadReply::Signature(
                sign::SignatureError::Missing
            )))
        ));
    }

    #[test]
    fn result_code_fail_is_a_business_error_with_the_reply() {
        let reply = signed(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "FAIL"),
                ("err_code", "USERPAYING"),
                ("err_code_des", "需要用户输入支付密码"),
            ],
            SignType::HmacSha256,
        );
        let Err(Error::Business(business)) = check(Api::Micropay, reply) else {
            panic!("expected a business error");
        };
        assert_eq!(business.err_code, ErrCode::UserPaying);
        assert_eq!(business.err_code_des, "需要用户输入支付密码");
        assert_eq!(business.reply.get("err_code"), Some("USERPAYING"));
    }

    #[test]
    fn result_code_must_be_present_where_the_api_has_it() {
        let reply = signed(&[("return_code", "SUCCESS")], SignType::HmacSha256);
        assert!(matches!(
            check(Api::OrderQuery, reply.clone()),
            Err(Error::BadReply(BadReply::Field {
                field: "result_code",
                ..
            }))
        ));
        assert!(check(Api::GetSignKey, reply).is_ok());
        let odd = signed(
            &[("return_code", "SUCCESS"), ("result_code", "MAYBE")],
            SignType::HmacSha256,
        );
        assert!(matches!(
            check(Api::Reverse, odd),
            Err(Error::BadReply(BadReply::Field { .. }))
        ));
    }

    #[test]
    fn bills_are_csv_and_xml_means_an_error() {
        let csv = "交易时间,公众账号ID\n`2014-11-10 16:33:45,`wx2421b1c4370ec43b\n";
        assert_eq!(bill_from_body(csv.as_bytes()).unwrap(), csv.as_bytes());
        let error = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code><![CDATA[20002]]></error_code></xml>";
        assert!(matches!(
            bill_from_body(error.as_bytes()),
            Err(Error::Protocol { return_msg }) if return_msg == "No Bill Exist (error_code 20002)"
        ));
        assert!(matches!(
            bill_from_body(b"<html>502</html>"),
            Err(Error::MaybeSent(MaybeSent::NotXml))
        ));
        assert!(matches!(
            bill_from_body(b""),
            Err(Error::MaybeSent(MaybeSent::NotXml))
        ));
        // A gzip file is handed over as it came, for `Bill::parse_bytes`.
        assert_eq!(
            bill_from_body(b"\x1f\x8b\x08\x00\xff").unwrap(),
            b"\x1f\x8b\x08\x00\xff"
        );
        assert!(matches!(
            bill_from_body(b"<xml><return_code>SUCCESS</return_code></xml>"),
            Err(Error::BadReply(BadReply::ReturnCode(Some(_))))
        ));
    }
}
