//! Hostile WeChat replies: documents with DOCTYPE, external entities and billion laughs,
//! 10 MB bodies (declared and not), and replies forged with the wrong key, fed to the XML
//! decoder, to the wxpay client through a fake server, and to the proxy, which must never
//! show a payment as paid (or settled at all) on the strength of a forged reply.

use std::time::{Duration, Instant};

use paycode_api::PaymentState;
use paycode_tests::World;
use paycode_tests::fake_wechat::{FakeReply, FakeRequest, FakeWechat, signed_reply};
use reqwest::Url;
use wxpay::sim::Behaviour;
use wxpay::{ApiKey, CallOptions, Client, ClientConfig, Error, Params, SignType, xml};

const APPID: &str = "wxd930ea5d5a258f4f";
const MCH_ID: &str = "10000100";
const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const WRONG_KEY: &str = "00000000000000000000000000000000";

const XXE: &str = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><return_code>SUCCESS</return_code><a>&xxe;</a></xml>"#;
const XXE_PUBLIC: &str = r#"<!DOCTYPE xml PUBLIC "-//X//Y" "http://127.0.0.1:9/x.dtd"><xml><return_code>SUCCESS</return_code></xml>"#;
const PARAMETER_ENTITY: &str =
    r#"<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml><a>1</a></xml>"#;
const UNDECLARED_ENTITY: &str = "<xml><return_code>SUCCESS</return_code><a>&xxe;</a></xml>";

/// The classic ten-level billion laughs (3 GB if expanded).
fn billion_laughs() -> String {
    let mut doc = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for level in 1..=9 {
        let previous = if level == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", level - 1)
        };
        doc.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">",
            format!("&{previous};").repeat(10)
        ));
    }
    doc.push_str("]><xml><return_code>SUCCESS</return_code><a>&lol9;</a></xml>");
    doc
}

fn ten_megabytes_of_fields() -> Vec<u8> {
    let mut body = b"<xml><return_code>SUCCESS</return_code>".to_vec();
    while body.len() < 10 * 1024 * 1024 {
        body.extend_from_slice(format!("<f{}>x</f{}>", body.len(), body.len()).as_bytes());
    }
    body.extend_from_slice(b"</xml>");
    body
}

#[test]
fn the_decoder_refuses_hostile_documents_at_once() {
    let huge = ten_megabytes_of_fields();
    let laughs = billion_laughs();
    let nested = format!("<xml>{}</xml>", "<a>".repeat(100_000));
    let cases: [(&str, &[u8]); 7] = [
        ("XXE", XXE.as_bytes()),
        ("XXE PUBLIC", XXE_PUBLIC.as_bytes()),
        ("parameter entity", PARAMETER_ENTITY.as_bytes()),
        ("undeclared entity", UNDECLARED_ENTITY.as_bytes()),
        ("billion laughs", laughs.as_bytes()),
        ("10 MB", &huge),
        ("100k nested", nested.as_bytes()),
    ];
    for (name, body) in cases {
        let started = Instant::now();
        let result = xml::decode(body);
        assert!(result.is_err(), "{name} decoded: {result:?}");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{name} took {:?}",
            started.elapsed()
        );
    }
}

fn client_for(server: &FakeWechat) -> Client {
    let mut config = ClientConfig::new(APPID, MCH_ID, ApiKey::new(KEY));
    config.primary_base_url = Url::parse(server.url()).unwrap();
    config.backup_base_url = None;
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_secs(10);
    Client::new(config).unwrap()
}

async fn micropay(client: &Client) -> wxpay::Result<Params> {
    let mut params = Params::new();
    params
        .insert("body", "商店-商品")
        .insert("out_trade_no", "hostile0001")
        .insert("total_fee", "1")
        .insert("spbill_create_ip", "127.0.0.1")
        .insert("auth_code", "134567890123456789");
    client
        .execute(wxpay::Api::Micropay, params, CallOptions::default())
        .await
}

/// A plausible success reply for the endpoint the request went to.
fn success_fields(request: &FakeRequest) -> Vec<(&'static str, String)> {
    let params = request.params();
    let out_trade_no = params.get("out_trade_no").unwrap_or("x").to_owned();
    let mut fields = vec![
        ("return_code", "SUCCESS".to_owned()),
        ("return_msg", "OK".to_owned()),
        ("appid", APPID.to_owned()),
        ("mch_id", MCH_ID.to_owned()),
        ("nonce_str", "forgedforgedforg".to_owned()),
        ("result_code", "SUCCESS".to_owned()),
        ("out_trade_no", out_trade_no),
        ("transaction_id", "4200000000202611280000000001".to_owned()),
        (
            "total_fee",
            params.get("total_fee").unwrap_or("1230").to_owned(),
        ),
        (
            "cash_fee",
            params.get("total_fee").unwrap_or("1230").to_owned(),
        ),
        ("openid", "oForgedOpenId".to_owned()),
        ("trade_type", "MICROPAY".to_owned()),
        ("bank_type", "CMC".to_owned()),
        ("time_end", "20261128120000".to_owned()),
    ];
    if request.path.ends_with("orderquery") {
        fields.push(("trade_state", "SUCCESS".to_owned()));
        fields.push(("trade_state_desc", "支付成功".to_owned()));
    }
    if request.path.ends_with("reverse") {
        fields.push(("recall", "N".to_owned()));
    }
    fields
}

/// The request's sign type, so that a forgery differs from the real thing by its key only.
fn sign_type_of(request: &FakeRequest) -> SignType {
    match request.params().get("sign_type") {
        Some("HMAC-SHA256") => SignType::HmacSha256,
        _ => SignType::Md5,
    }
}

fn forged(request: &FakeRequest) -> FakeReply {
    let fields = success_fields(request);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    FakeReply::Body {
        status: 200,
        body: signed_reply(&pairs, WRONG_KEY, sign_type_of(request)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_hostile_replies() {
    let laughs = billion_laughs();
    let replies: Vec<(&str, FakeReply)> = vec![
        (
            "XXE",
            FakeReply::Body {
                status: 200,
                body: XXE.into(),
            },
        ),
        (
            "XXE PUBLIC",
            FakeReply::Body {
                status: 200,
                body: XXE_PUBLIC.into(),
            },
        ),
        (
            "parameter entity",
            FakeReply::Body {
                status: 200,
                body: PARAMETER_ENTITY.into(),
            },
        ),
        (
            "undeclared entity",
            FakeReply::Body {
                status: 200,
                body: UNDECLARED_ENTITY.into(),
            },
        ),
        (
            "billion laughs",
            FakeReply::Body {
                status: 200,
                body: laughs.into_bytes(),
            },
        ),
        (
            "10 MB declared",
            FakeReply::Stream {
                head: b"<xml><return_code>SUCCESS</return_code><pad>".to_vec(),
                chunk: vec![b'x'; 64 * 1024],
                repeat: 160,
                tail: b"</pad></xml>".to_vec(),
                sized: true,
            },
        ),
        (
            "10 MB undeclared",
            FakeReply::Stream {
                head: b"<xml><return_code>SUCCESS</return_code><pad>".to_vec(),
                chunk: vec![b'x'; 64 * 1024],
                repeat: 160,
                tail: b"</pad></xml>".to_vec(),
                sized: false,
            },
        ),
        (
            "10 MB of fields",
            FakeReply::Body {
                status: 200,
                body: ten_megabytes_of_fields(),
            },
        ),
        (
            "10 MB HTML 502",
            FakeReply::Body {
                status: 502,
                body: vec![b'<'; 10 * 1024 * 1024],
            },
        ),
    ];
    for (name, reply) in replies {
        let server = FakeWechat::start(move |_| reply.clone()).await;
        let started = Instant::now();
        let result = micropay(&client_for(&server)).await;
        assert!(result.is_err(), "{name}: accepted: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: took {:?}",
            started.elapsed()
        );
    }
    // Forged with the wrong key, in both sign types: a bad reply, never a result.
    let server = FakeWechat::start(forged).await;
    let error = micropay(&client_for(&server)).await.unwrap_err();
    assert!(matches!(error, Error::BadReply(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_never_settles_a_payment_on_forged_replies() {
    // Every endpoint answers SUCCESS (paid, reversed, …), signed with the wrong key.
    let fake = FakeWechat::start(forged).await;
    let url = Url::parse(fake.url()).unwrap();
    let world = World::start_with(100.0, move |config| {
        config.wechat.primary_url = url;
        config.wechat.backup_url = None;
    })
    .await;
    let payment = world.pay(Behaviour::PasswordFree).await;
    // 3 s of real time is 300 s of the proxy's scaled waits: past the deadline, the reverse
    // and several reverse retries.
    let until = Instant::now() + Duration::from_secs(3);
    let mut seen = vec![payment.state];
    let mut current = payment.clone();
    while Instant::now() < until {
        current = world.cashier.poll(&current.id, current.version, 1).await;
        if seen.last() != Some(&current.state) {
            seen.push(current.state);
        }
        assert!(
            !current.state.is_settled(),
            "settled on forged replies: {seen:?}\n{current:#?}"
        );
        assert_eq!(current.transaction_id, None, "{current:#?}");
    }
    assert!(fake.hits() >= 2, "the proxy kept asking WeChat");
    println!(
        "forged replies: {} calls to the fake WeChat; the payment went {:?} and is {}",
        fake.hits(),
        seen,
        current.state
    );
    assert!(matches!(
        current.state,
        PaymentState::Confirming | PaymentState::Cancelling | PaymentState::NeedsAttention
    ));
}
