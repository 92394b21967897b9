//! The `<xml>` codec (docs/wechat-pay.md §8): flat `name → text` maps, CDATA for strings, bare integers.
//!
//! Decoding is deliberately strict about structure and lenient about presentation. It accepts
//! a UTF-8 BOM, an XML declaration, comments, pretty-printing whitespace, CDATA or escaped
//! text, and empty elements. It rejects DOCTYPE declarations (so no entity can be defined:
//! XXE and "billion laughs" fail before any expansion), undefined entity references, nested
//! elements, duplicate names, non-UTF-8 input, and bodies or element counts above fixed
//! limits.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::params::Params;

/// The largest body [`decode`] reads. WeChat's largest v2 XML replies (refundquery with
/// 50 refunds and their coupons) are a few tens of KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The most elements [`decode`] accepts in one message.
pub const MAX_FIELDS: usize = 2048;

/// Why a body is not a WeChat Pay XML message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("body of {0} bytes is over the {MAX_BODY_BYTES}-byte limit")]
    TooLarge(usize),
    /// The body is not UTF-8.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// The body declares a DOCTYPE, which could define entities; always refused.
    #[error("DOCTYPE declarations are not allowed")]
    Doctype,
    /// The root element is missing or is not `<xml>`.
    #[error("the root element is not <xml>")]
    NotXmlRoot,
    /// An element inside a field, or text directly inside `<xml>`: messages are flat.
    #[error("element <{0}> is not a flat text field")]
    Nested(String),
    /// The same field appears twice, which would make the signature ambiguous.
    #[error("field <{0}> appears more than once")]
    Duplicate(String),
    /// More than [`MAX_FIELDS`] fields.
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    /// Anything after the closing `</xml>` other than whitespace and comments.
    #[error("content after </xml>")]
    TrailingContent,
    /// The XML itself is malformed (unclosed tags, bad escapes, undefined entities, …).
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// Decodes a flat `<xml>` message into [`Params`].
pub fn decode(body: &[u8]) -> Result<Params, XmlError> {
    decode_with_root(body, "xml")
}

/// Decodes a flat message whose root element is `root` instead of `xml`, with every check
/// [`decode`] makes. The decrypted `req_info` of a refund notification is the one message
/// WeChat roots at `<root>`; a wrong root is still reported as [`XmlError::NotXmlRoot`].
pub(crate) fn decode_with_root(body: &[u8], root: &str) -> Result<Params, XmlError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(XmlError::TooLarge(body.len()));
    }
    let body = strip_bom(body);
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let malformed = |error: &dyn std::fmt::Display| XmlError::Malformed(error.to_string());

    let mut params = Params::new();
    // Where we are: before the root, inside the root, inside one field, or after the root.
    enum Place {
        Prolog,
        Root,
        Field { name: String, value: String },
        Epilog,
    }
    let mut place = Place::Prolog;
    loop {
        let event = reader.read_event().map_err(|error| malformed(&error))?;
        place = match (place, event) {
            (_, Event::DocType(_)) => return Err(XmlError::Doctype),
            (place, Event::Comment(_)) => place,
            (Place::Prolog, Event::Decl(_) | Event::PI(_)) => Place::Prolog,
            (Place::Prolog, Event::Text(text)) if is_blank(&text) => Place::Prolog,
            (Place::Prolog, Event::Start(start)) if start.name().as_ref() == root.as_bytes() => {
                Place::Root
            }
            (Place::Prolog, Event::Empty(start)) if start.name().as_ref() == root.as_bytes() => {
                Place::Epilog
            }
            (Place::Prolog, _) => return Err(XmlError::NotXmlRoot),

            (Place::Root, Event::Text(text)) if is_blank(&text) => Place::Root,
            (Place::Root, Event::Start(start)) => Place::Field {
                name: element_name(start.name().as_ref())?,
                value: String::new(),
            },
            (Place::Root, Event::Empty(start)) => {
                insert(
                    &mut params,
                    element_name(start.name().as_ref())?,
                    String::new(),
                )?;
                Place::Root
            }
            (Place::Root, Event::End(_)) => Place::Epilog,
            (Place::Root, Event::Eof) => return Err(XmlError::Malformed("unclosed <xml>".into())),
            (Place::Root, _) => return Err(XmlError::Nested("xml".into())),

            (Place::Field { name, mut value }, Event::Text(text)) => {
                value.push_str(&text.unescape().map_err(|error| malformed(&error))?);
                Place::Field { name, value }
            }
            (Place::Field { name, mut value }, Event::CData(data)) => {
                value.push_str(std::str::from_utf8(&data).map_err(|_| XmlError::NotUtf8)?);
                Place::Field { name, value }
            }
            (Place::Field { name, value }, Event::End(_)) => {
                insert(&mut params, name, value)?;
                Place::Root
            }
            (Place::Field { name, .. }, Event::Eof) => {
                return Err(XmlError::Malformed(format!("unclosed <{name}>")));
            }
            (Place::Field { name, .. }, _) => return Err(XmlError::Nested(name)),

            (Place::Epilog, Event::Eof) => return Ok(params),
            (Place::Epilog, Event::Text(text)) if is_blank(&text) => Place::Epilog,
            (Place::Epilog, _) => return Err(XmlError::TrailingContent),
        };
    }
}

/// The body without a leading UTF-8 byte-order mark, which some gateways add.
pub(crate) fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

/// A field name. WeChat's are ASCII identifiers; anything else (quick-xml lets `<a<>` through
/// as the name `a<`) is refused, so every decoded message can be encoded again.
fn element_name(raw: &[u8]) -> Result<String, XmlError> {
    let name = std::str::from_utf8(raw).map_err(|_| XmlError::NotUtf8)?;
    if !is_xml_name(name) {
        return Err(XmlError::Malformed(format!(
            "invalid element name {name:?}"
        )));
    }
    Ok(name.to_owned())
}

fn insert(params: &mut Params, name: String, value: String) -> Result<(), XmlError> {
    if params.len() >= MAX_FIELDS {
        return Err(XmlError::TooManyFields);
    }
    params.insert_new(name, value).map_err(XmlError::Duplicate)
}

/// Encodes [`Params`] as WeChat does: `<xml>` with one element per field, integers bare and
/// every other value in CDATA (a `]]>` inside a value is split across two CDATA sections).
///
/// Field names are written as they are; every name this crate produces, and every name
/// [`decode`] accepts, is a valid XML name.
pub fn encode(params: &Params) -> String {
    encode_with_root(params, "xml")
}

/// Encodes [`Params`] like [`encode`] under the root element `root` (`<root>` for the
/// simulator's refund-notification `req_info`). `root` must be a valid XML name.
pub(crate) fn encode_with_root(params: &Params, root: &str) -> String {
    debug_assert!(is_xml_name(root), "root name {root:?} is not an XML name");
    let mut out = String::with_capacity(
        64 + params
            .iter()
            .map(|(k, v)| 2 * k.len() + v.len() + 17)
            .sum::<usize>(),
    );
    out.push('<');
    out.push_str(root);
    out.push('>');
    for (name, value) in params.iter() {
        debug_assert!(is_xml_name(name), "field name {name:?} is not an XML name");
        out.push('<');
        out.push_str(name);
        out.push('>');
        if is_integer_field(name) && !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
        {
            out.push_str(value);
        } else {
            out.push_str("<![CDATA[");
            out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</");
    out.push_str(root);
    out.push('>');
    out
}

fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether WeChat writes `name` as a bare integer: amounts and counts, including their
/// indexed forms (`coupon_fee_0`, `coupon_refund_fee_1_2`).
pub fn is_integer_field(name: &str) -> bool {
    let mut base = name;
    while let Some((head, tail)) = base.rsplit_once('_') {
        if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        base = head;
    }
    matches!(
        base,
        "total_fee"
            | "cash_fee"
            | "coupon_fee"
            | "coupon_count"
            | "settlement_total_fee"
            | "refund_fee"
            | "settlement_refund_fee"
            | "cash_refund_fee"
            | "coupon_refund_fee"
            | "coupon_refund_count"
            | "refund_count"
            | "total_refund_count"
            | "offset"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_a_real_shaped_reply() {
        // Arrange: BOM, declaration, pretty-printing, CDATA, bare integers, empty CDATA.
        let body = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>1</total_fee>\n  <attach><![CDATA[]]></attach>\n  <body>a &amp; b</body>\n  <coupon_fee_0>1</coupon_fee_0>\n  <empty/>\n</xml>\n";
        // Act
        let params = decode(body.as_bytes()).unwrap();
        // Assert
        assert_eq!(params.get("return_code"), Some("SUCCESS"));
        assert_eq!(params.get("total_fee"), Some("1"));
        assert_eq!(params.get("attach"), Some(""));
        assert_eq!(params.get("body"), Some("a & b"));
        assert_eq!(params.get("coupon_fee_0"), Some("1"));
        assert_eq!(params.get("empty"), Some(""));
        assert_eq!(params.len(), 6);
    }

    #[test]
    fn decodes_the_wechatpy_v2_xml() {
        let body = "<xml>\n<test1><![CDATA[test1]]></test1>\n<test2><![CDATA[test2]]></test2>\n<sign><![CDATA[1E3A8D73B5A4AEE787C0F68B5DAB8520]]></sign>\n</xml>";
        let params = decode(body.as_bytes()).unwrap();
        assert_eq!(params.get("sign"), Some("1E3A8D73B5A4AEE787C0F68B5DAB8520"));
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>"#;
        assert_eq!(decode(xxe.as_bytes()), Err(XmlError::Doctype));
        let laughs = r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml><a>&lol2;</a></xml>"#;
        assert_eq!(decode(laughs.as_bytes()), Err(XmlError::Doctype));
        assert!(matches!(
            decode(b"<xml><a>&undefined;</a></xml>"),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_structural_problems() {
        assert_eq!(decode(b"<root><a>1</a></root>"), Err(XmlError::NotXmlRoot));
        assert_eq!(
            decode(b"<html><body>502 Bad Gateway</body></html>"),
            Err(XmlError::NotXmlRoot)
        );
        assert_eq!(decode(b"not xml at all"), Err(XmlError::NotXmlRoot));
        assert_eq!(
            decode(b"<xml><a><b>1</b></a></xml>"),
            Err(XmlError::Nested("a".into()))
        );
        assert_eq!(
            decode(b"<xml>loose<a>1</a></xml>"),
            Err(XmlError::Nested("xml".into()))
        );
        assert_eq!(
            decode(b"<xml><a>1</a><a>2</a></xml>"),
            Err(XmlError::Duplicate("a".into()))
        );
        assert_eq!(
            decode(b"<xml><a>1</a></xml><xml/>"),
            Err(XmlError::TrailingContent)
        );
        assert_eq!(decode(b"<xml><a>\xff</a></xml>"), Err(XmlError::NotUtf8));
        assert!(matches!(
            decode(b"<xml><a>1</a>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"<xml><a>1</b></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(decode(b""), Err(XmlError::NotXmlRoot)));
        // Found by the fuzzer: quick-xml reads `<b<>` as an element named `b<`.
        assert!(matches!(
            decode(b"<xml><b<>1</b<></xml>"),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn decodes_and_encodes_with_another_root() {
        let body = b"<root>\n<refund_fee><![CDATA[1]]></refund_fee>\n</root>";
        let params = decode_with_root(body, "root").unwrap();
        assert_eq!(params.get("refund_fee"), Some("1"));
        assert_eq!(decode(body), Err(XmlError::NotXmlRoot));
        assert_eq!(
            decode_with_root(b"<xml><a>1</a></xml>", "root"),
            Err(XmlError::NotXmlRoot)
        );
        assert_eq!(
            decode_with_root(b"<!DOCTYPE root><root/>", "root"),
            Err(XmlError::Doctype)
        );
        let encoded = encode_with_root(&params, "root");
        assert_eq!(encoded, "<root><refund_fee>1</refund_fee></root>");
        assert_eq!(
            decode_with_root(encoded.as_bytes(), "root").unwrap(),
            params
        );
    }

    #[test]
    fn rejects_oversized_bodies_and_field_floods() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(decode(&big), Err(XmlError::TooLarge(MAX_BODY_BYTES + 1)));
        let flood: String = std::iter::once("<xml>".to_owned())
            .chain((0..=MAX_FIELDS).map(|i| format!("<f{i}/>")))
            .chain(std::iter::once("</xml>".to_owned()))
            .collect();
        assert_eq!(decode(flood.as_bytes()), Err(XmlError::TooManyFields));
    }

    #[test]
    fn an_encoding_can_outgrow_the_body_it_came_from() {
        // Arrange: a body under the limit whose value is many escaped `]]>`; each becomes a
        // split CDATA section (3 bytes of text, 15 of framing) when encoded. The fuzzer found
        // this one.
        let body = format!("<xml><a>{}</a></xml>", "]]&gt;".repeat(40_000));
        assert!(body.len() <= MAX_BODY_BYTES);

        // Act
        let params = decode(body.as_bytes()).unwrap();
        let encoded = encode(&params);

        // Assert: the value survives whole, and the longer encoding meets the same limit.
        assert_eq!(params.get("a").map(str::len), Some(3 * 40_000));
        assert_eq!(
            decode(encoded.as_bytes()),
            Err(XmlError::TooLarge(encoded.len()))
        );
    }

    #[test]
    fn encodes_strings_in_cdata_and_integers_bare() {
        let params: Params = [
            ("return_code", "SUCCESS"),
            ("total_fee", "888"),
            ("coupon_fee_0", "10"),
            ("coupon_refund_fee_1_2", "5"),
            ("out_trade_no", "1217752501201407033233368018"),
            ("attach", "a]]>b"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            encode(&params),
            "<xml><attach><![CDATA[a]]]]><![CDATA[>b]]></attach><coupon_fee_0>10</coupon_fee_0><coupon_refund_fee_1_2>5</coupon_refund_fee_1_2><out_trade_no><![CDATA[1217752501201407033233368018]]></out_trade_no><return_code><![CDATA[SUCCESS]]></return_code><total_fee>888</total_fee></xml>"
        );
    }

    #[test]
    fn integer_field_names() {
        for name in [
            "total_fee",
            "coupon_fee_0",
            "refund_fee_12",
            "coupon_refund_fee_1_2",
            "offset",
        ] {
            assert!(is_integer_field(name), "{name}");
        }
        for name in [
            "out_trade_no",
            "coupon_id_0",
            "fee_type",
            "total_fee_",
            "_0",
            "cash_fee_type",
        ] {
            assert!(!is_integer_field(name), "{name}");
        }
    }

    fn field_value() -> impl Strategy<Value = String> {
        // Any character XML 1.0 allows, weighted towards the awkward ones.
        prop_oneof![
            Just(String::new()),
            "[a-zA-Z0-9]{1,12}",
            "[0-9]{1,10}",
            "[\\u{4e00}-\\u{9fff}]{1,8}",
            "[ -~]{0,16}",
            "([a-z]{0,3}\\]\\]>[a-z]{0,3}){1,3}",
            "[\\t\\n\\u{20}-\\u{d7ff}\\u{e000}-\\u{fffd}\\u{10000}-\\u{10ffff}]{0,24}",
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(
            map in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,20}", field_value(), 0..24)
        ) {
            let params: Params = map.into_iter().collect();
            let decoded = decode(encode(&params).as_bytes()).unwrap();
            prop_assert_eq!(decoded, params);
        }

        #[test]
        fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&body);
        }
    }
}
