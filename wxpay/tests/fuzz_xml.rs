//! A mutation fuzzer for the XML decoder and the signature verifier, runnable on stable Rust
//! in CI. It mutates a corpus of real-shaped WeChat replies (and hostile ones) with byte
//! flips, insertions of XML-significant tokens, deletions, duplications, truncations and
//! splices, and checks for every input that:
//!
//! - decoding never panics and stays within its limits;
//! - whatever decodes re-encodes and decodes to the same fields (the codec is lossless);
//! - verifying a decoded message never panics, and never accepts a message whose fields
//!   were changed after signing.
//!
//! `WXPAY_FUZZ_CASES` sets the number of inputs (default 100,000); `WXPAY_FUZZ_SEED` the seed.
//! The test prints how many inputs it ran.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wxpay::{ApiKey, Params, SignType, sign, xml};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// Tokens that matter to an XML parser, spliced into inputs.
const DICTIONARY: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<xml>",
    "</xml>",
    "<![CDATA[",
    "]]>",
    "]]]]><![CDATA[>",
    "&amp;",
    "&lt;",
    "&#x0;",
    "&#65;",
    "&xxe;",
    "<!DOCTYPE xml [<!ENTITY a \"b\">]>",
    "<?xml version=\"1.0\"?>",
    "<!-- c -->",
    "\u{feff}",
    "\"",
    "'",
    "=",
    "\0",
    "\r\n",
    "形象店",
    "<sign>",
    "</sign>",
    "<a><b>1</b></a>",
];

fn corpus(key: &ApiKey) -> Vec<Vec<u8>> {
    let signed = |pairs: &[(&str, &str)], sign_type| {
        let mut params: Params = pairs.iter().copied().collect();
        params.insert("sign", sign::sign(&params, key, sign_type));
        xml::encode(&params).into_bytes()
    };
    let mut seeds = vec![
        signed(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("appid", "wx2421b1c4370ec43b"),
                ("mch_id", "10000100"),
                ("nonce_str", "GOp3TRyMXzbMlkun"),
                ("openid", "oUpF8uN95-Ptaags6E_roPHg7AG0"),
                ("trade_type", "MICROPAY"),
                ("total_fee", "1"),
                ("coupon_fee_0", "1"),
                ("transaction_id", "1008450740201411110005820873"),
                ("out_trade_no", "1415757673"),
                ("attach", "订单额外描述"),
                ("time_end", "20141111170043"),
            ],
            SignType::Md5,
        ),
        signed(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "FAIL"),
                ("err_code", "USERPAYING"),
                ("err_code_des", "需要用户输入支付密码"),
                ("recall", "Y"),
            ],
            SignType::HmacSha256,
        ),
        "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名错误]]></return_msg></xml>"
            .as_bytes()
            .to_vec(),
        b"<xml><return_code>FAIL</return_code><retmsg>total_fee</retmsg><retcode>1</retcode></xml>".to_vec(),
        "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <a>1 &amp; 2</a>\n  <b/>\n</xml>\n".as_bytes().to_vec(),
        b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>".to_vec(),
        br#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><a>&lol2;</a></xml>"#.to_vec(),
    ];
    // The fixtures the client tests use are real shapes too; take whatever is there.
    if let Ok(entries) = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")) {
        for entry in entries.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                seeds.push(bytes);
            }
        }
    }
    seeds
}

fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..=4) {
        let len = input.len();
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                input[at] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let token = DICTIONARY[rng.gen_range(0..DICTIONARY.len())].as_bytes();
                let at = rng.gen_range(0..=len);
                input.splice(at..at, token.iter().copied());
            }
            2 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = rng.gen_range(start..=len.min(start + 32));
                input.drain(start..end);
            }
            3 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = rng.gen_range(start..=len.min(start + 64));
                let chunk: Vec<u8> = input[start..end].to_vec();
                let at = rng.gen_range(0..=len);
                input.splice(at..at, chunk);
            }
            4 if len > 0 => input.truncate(rng.gen_range(0..len)),
            5 => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                let cut = rng.gen_range(0..=input.len());
                let other_cut = rng.gen_range(0..=other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[other_cut..]);
            }
            _ => input.push(rng.r#gen()),
        }
    }
}

#[test]
fn xml_decoder_and_verifier_survive_mutated_replies() {
    let cases: usize = std::env::var("WXPAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("WXPAY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let key = ApiKey::new(KEY);
    let corpus = corpus(&key);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut decoded, mut verified) = (0usize, 0usize);
    for case in 0..cases {
        let mut input = corpus[rng.gen_range(0..corpus.len())].clone();
        mutate(&mut rng, &corpus, &mut input);
        let Ok(params) = xml::decode(&input) else {
            continue;
        };
        decoded += 1;
        assert!(params.len() <= xml::MAX_FIELDS);
        let again = xml::decode(xml::encode(&params).as_bytes()).unwrap_or_else(|error| {
            panic!("case {case}: re-encoded message does not decode: {error}")
        });
        assert_eq!(
            again, params,
            "case {case}: the codec lost or changed a field"
        );
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            if sign::verify(&params, &key, sign_type).is_ok() {
                verified += 1;
                // A mutation that still verifies must have left every signed field alone:
                // re-signing the decoded fields gives the same signature.
                assert_eq!(
                    Some(sign::sign(&params, &key, sign_type).as_str()),
                    params.get("sign")
                );
            }
        }
    }
    println!(
        "fuzz_xml: {cases} inputs (seed {seed:#x}), {decoded} decoded, {verified} still verified, 0 panics"
    );
    assert!(
        decoded > 0,
        "the mutations never produced a decodable input: the fuzzer is not exercising the codec"
    );
}
