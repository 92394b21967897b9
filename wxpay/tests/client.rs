//! The client against a tiny local HTTP server that returns canned replies.
//!
//! The server is deliberately dumb (raw HTTP/1.1 over a tokio `TcpListener`, one request per
//! connection) so that it can misbehave in the ways real gateways do: answer late, hang up
//! after reading the request, send an HTML 502 page, or an endless body. It counts the
//! requests it fully received, which is how the tests assert what reached "WeChat".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;
use wxpay::sign::{self, SignatureError};
use wxpay::{
    ApiKey, BadReply, CallOptions, Client, ClientConfig, ErrCode, Error, Host, MaybeSent, NotSent,
    Params, SignType, xml,
};

const APPID: &str = "wx2421b1c4370ec43b";
const MCH_ID: &str = "10000100";
const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const SANDBOX_KEY: &str = "013467007045764e5b0a0bfbeed1a7e7";

const BOM_REPLY: &[u8] = include_bytes!("fixtures/micropay_success_bom.xml");
const SANDBOX_RETCODE_FAIL: &[u8] = include_bytes!("fixtures/sandbox_retcode_fail.xml");
const NGINX_502: &[u8] = include_bytes!("fixtures/nginx_502.html");

/// One request as the server received it.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    content_type: Option<String>,
    body: String,
}

impl Received {
    fn params(&self) -> Params {
        xml::decode(self.body.as_bytes()).expect("the client sends valid XML")
    }
}

/// What the server does with a request.
enum Behaviour {
    /// Answer with this status and body (with a Content-Length).
    Reply { status: u16, body: Vec<u8> },
    /// Answer 200 with this body and no Content-Length, closing the connection to end it.
    ReplyUnsized { body: Vec<u8> },
    /// Wait, then answer 200 with the body.
    Delay { delay: Duration, body: Vec<u8> },
    /// Read the request, then hang up without a word.
    Close,
}

fn ok(body: impl Into<Vec<u8>>) -> Behaviour {
    Behaviour::Reply {
        status: 200,
        body: body.into(),
    }
}

struct CannedServer {
    base_url: Url,
    received: Arc<Mutex<Vec<Received>>>,
    hits: Arc<AtomicUsize>,
}

impl CannedServer {
    /// Starts a server on an ephemeral port; `behave` decides each answer.
    async fn spawn<F>(behave: F) -> CannedServer
    where
        F: Fn(&Received, usize) -> Behaviour + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let behave = Arc::new(behave);
        {
            let received = received.clone();
            let hits = hits.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let received = received.clone();
                    let hits = hits.clone();
                    let behave = behave.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, received, hits, behave.as_ref()).await;
                    });
                }
            });
        }
        CannedServer {
            base_url: Url::parse(&format!("http://{address}")).unwrap(),
            received,
            hits,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve<F>(
    mut stream: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    hits: Arc<AtomicUsize>,
    behave: &F,
) -> std::io::Result<()>
where
    F: Fn(&Received, usize) -> Behaviour,
{
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let index = hits.fetch_add(1, Ordering::SeqCst);
    received.lock().unwrap().push(request.clone());
    let (status, body, sized) = match behave(&request, index) {
        Behaviour::Reply { status, body } => (status, body, true),
        Behaviour::ReplyUnsized { body } => (200, body, false),
        Behaviour::Delay { delay, body } => {
            tokio::time::sleep(delay).await;
            (200, body, true)
        }
        Behaviour::Close => return Ok(()),
    };
    let reason = if status == 200 { "OK" } else { "Error" };
    let content_type = if body.starts_with(b"<html") {
        "text/html"
    } else {
        "text/plain"
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
    );
    if sized {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// Reads one HTTP/1.1 request with a Content-Length body; `None` if the peer did not send
/// one (for example a TLS ClientHello).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Received>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break position + 4;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 || buffer.len() > 64 * 1024 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let Ok(head) = std::str::from_utf8(&buffer[..head_end]) else {
        return Ok(None);
    };
    let mut lines = head.split("\r\n");
    let Some(path) = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let header = |name: &str| {
        head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let content_type = header("content-type");
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    Ok(Some(Received {
        path,
        content_type,
        body: String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned(),
    }))
}

fn config(base_url: &Url) -> ClientConfig {
    let mut config = ClientConfig::new(APPID, MCH_ID, ApiKey::new(KEY));
    config.primary_base_url = base_url.clone();
    config.backup_base_url = None;
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_secs(5);
    config
}

fn client(base_url: &Url) -> Client {
    Client::new(config(base_url)).unwrap()
}

/// A signed micropay SUCCESS reply, as WeChat would send it.
fn signed_reply(key: &str, sign_type: SignType, extra: &[(&str, &str)]) -> String {
    let mut reply: Params = [
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "Zq8cYNXNGfNS4kWd"),
        ("result_code", "SUCCESS"),
        ("transaction_id", "4200000443201912243367650720"),
        ("out_trade_no", "1415757673"),
        ("total_fee", "1"),
        ("trade_type", "MICROPAY"),
    ]
    .into_iter()
    .collect();
    for (name, value) in extra {
        reply.insert(*name, *value);
    }
    let signature = sign::sign(&reply, &ApiKey::new(key), sign_type);
    reply.insert("sign", signature);
    xml::encode(&reply)
}

fn micropay_params() -> Params {
    let mut params = Params::new();
    params
        .insert("body", "小张南山店-超市")
        .insert("out_trade_no", "1415757673")
        .insert("total_fee", "1")
        .insert("spbill_create_ip", "8.8.8.8")
        .insert("auth_code", "120061098828009406");
    params
}

async fn micropay(client: &Client) -> wxpay::Result<Params> {
    client
        .execute(
            wxpay::Api::Micropay,
            micropay_params(),
            CallOptions::default(),
        )
        .await
}

/// A base URL where nothing listens.
fn refused_url() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    Url::parse(&format!("http://{address}")).unwrap()
}

#[tokio::test]
async fn a_signed_success_reply_is_accepted_and_the_request_is_well_formed() {
    // Arrange
    let server = CannedServer::spawn(|_, _| ok(signed_reply(KEY, SignType::HmacSha256, &[]))).await;
    let client = client(&server.base_url);
    // Act
    let reply = micropay(&client).await.unwrap();
    // Assert
    assert_eq!(
        reply.get("transaction_id"),
        Some("4200000443201912243367650720")
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/pay/micropay");
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("text/xml; charset=UTF-8")
    );
    let sent = received[0].params();
    assert_eq!(sent.get("appid"), Some(APPID));
    assert_eq!(sent.get("mch_id"), Some(MCH_ID));
    assert_eq!(sent.get("body"), Some("小张南山店-超市"));
    assert_eq!(sent.get("sign_type"), Some("HMAC-SHA256"));
    let nonce = sent.get("nonce_str").unwrap();
    assert!(nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        sign::verify(&sent, &ApiKey::new(KEY), SignType::HmacSha256),
        Ok(())
    );
}

/// Records every tracing event as `name=value` text, to check what the client logs.
struct CapturingSubscriber(Arc<Mutex<Vec<String>>>);

struct FieldText(String);

impl tracing::field::Visit for FieldText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for CapturingSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = FieldText(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn one_debug_event_per_call_and_no_secrets_in_logs() {
    // Arrange: a current-thread runtime, so a thread-local subscriber sees everything.
    let events = Arc::new(Mutex::new(Vec::new()));
    let _guard = tracing::subscriber::set_default(CapturingSubscriber(events.clone()));
    let reply_body = signed_reply(KEY, SignType::HmacSha256, &[]);
    let reply_sign = xml::decode(reply_body.as_bytes())
        .unwrap()
        .get("sign")
        .unwrap()
        .to_owned();
    let server = CannedServer::spawn(move |_, _| ok(reply_body.clone())).await;
    let client = client(&server.base_url);
    // Act
    micropay(&client).await.unwrap();
    // Assert
    let request_sign = server.received()[0]
        .params()
        .get("sign")
        .unwrap()
        .to_owned();
    let events = events.lock().unwrap().clone();
    let calls: Vec<&String> = events
        .iter()
        .filter(|event| event.contains("wechat pay call"))
        .collect();
    assert_eq!(calls.len(), 1, "{events:#?}");
    for field in [
        "api=\"micropay\"",
        "host=\"primary\"",
        "outcome=\"success\"",
        "elapsed_ms=",
    ] {
        assert!(
            calls[0].contains(field),
            "{field} missing from {}",
            calls[0]
        );
    }
    for secret in [
        KEY,
        "120061098828009406",
        &request_sign,
        &reply_sign,
        "<xml",
    ] {
        assert!(
            events.iter().all(|event| !event.contains(secret)),
            "{secret} was logged: {events:#?}"
        );
    }
}

#[tokio::test]
async fn a_real_shaped_reply_with_bom_and_empty_fields_verifies() {
    let server = CannedServer::spawn(|_, _| ok(BOM_REPLY)).await;
    let mut config = config(&server.base_url);
    config.sign_type = SignType::Md5;
    let client = Client::new(config).unwrap();
    let reply = micropay(&client).await.unwrap();
    assert_eq!(reply.get("attach"), Some("订单额外描述"));
    assert_eq!(reply.get("promotion_detail"), Some(""));
    assert_eq!(reply.get("coupon_fee_0"), Some("0"));
    // MD5 requests carry no sign_type.
    assert!(!server.received()[0].params().contains("sign_type"));
}

#[tokio::test]
async fn a_bad_signature_is_a_bad_reply() {
    let server = CannedServer::spawn(|_, _| {
        ok(signed_reply(
            "not the merchant key",
            SignType::HmacSha256,
            &[],
        ))
    })
    .await;
    let error = micropay(&client(&server.base_url)).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::BadReply(BadReply::Signature(SignatureError::Mismatch))
        ),
        "{error:?}"
    );
    assert!(error.is_outcome_unknown());
}

#[tokio::test]
async fn a_fail_reply_is_a_protocol_error() {
    let server = CannedServer::spawn(|_, _| {
        ok("<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名错误]]></return_msg></xml>")
    })
    .await;
    let error = micropay(&client(&server.base_url)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol { return_msg } if return_msg == "签名错误"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_business_failure_carries_the_code_and_reply() {
    let server = CannedServer::spawn(|_, _| {
        ok(signed_reply(
            KEY,
            SignType::HmacSha256,
            &[
                ("result_code", "FAIL"),
                ("err_code", "USERPAYING"),
                ("err_code_des", "需要用户输入支付密码"),
            ],
        ))
    })
    .await;
    let error = micropay(&client(&server.base_url)).await.unwrap_err();
    assert_eq!(error.err_code(), Some(&ErrCode::UserPaying));
}

#[tokio::test]
async fn a_sandbox_retcode_retmsg_failure_is_a_protocol_error() {
    // Arrange: the sandbox hands out a key, then refuses the call in its own shape.
    let server = CannedServer::spawn(|request, _| {
        if request.path.ends_with("/getsignkey") {
            ok(format!(
                "<xml><return_code>SUCCESS</return_code><return_msg>ok</return_msg><sandbox_signkey>{SANDBOX_KEY}</sandbox_signkey></xml>"
            ))
        } else {
            ok(SANDBOX_RETCODE_FAIL)
        }
    })
    .await;
    let mut config = config(&server.base_url);
    config.sandbox = true;
    let client = Client::new(config).unwrap();
    // Act
    let error = micropay(&client).await.unwrap_err();
    // Assert
    assert!(
        matches!(&error, Error::Protocol { return_msg } if return_msg == "请确认请求参数是否正确total_fee"),
        "{error:?}"
    );
    let received = server.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/xdc/apiv2getsignkey/sign/getsignkey",
            "/xdc/apiv2sandbox/pay/micropay"
        ]
    );
    // getsignkey: mch_id + nonce_str + sign, MD5 with the real key.
    let get_sign_key = received[0].params();
    assert_eq!(get_sign_key.len(), 3);
    assert_eq!(
        sign::verify(&get_sign_key, &ApiKey::new(KEY), SignType::Md5),
        Ok(())
    );
    // The call itself: MD5 with the sandbox key, no sign_type.
    let call = received[1].params();
    assert!(!call.contains("sign_type"));
    assert_eq!(
        sign::verify(&call, &ApiKey::new(SANDBOX_KEY), SignType::Md5),
        Ok(())
    );
}

#[tokio::test]
async fn a_sandbox_signature_refusal_refreshes_the_key_once() {
    let server = CannedServer::spawn(|request, index| {
        if request.path.ends_with("/getsignkey") {
            // The first key is stale; the second one is current.
            let key = if index == 0 { "stale-sandbox-key" } else { SANDBOX_KEY };
            ok(format!(
                "<xml><return_code>SUCCESS</return_code><sandbox_signkey>{key}</sandbox_signkey></xml>"
            ))
        } else if sign::verify(&request.params(), &ApiKey::new(SANDBOX_KEY), SignType::Md5).is_ok() {
            ok(signed_reply(SANDBOX_KEY, SignType::Md5, &[]))
        } else {
            ok("<xml><return_code>FAIL</return_code><return_msg>沙箱验证签名失败，请确认沙箱签名key是否正确（通过getsignkey调用生成）</return_msg></xml>")
        }
    })
    .await;
    let mut config = config(&server.base_url);
    config.sandbox = true;
    let client = Client::new(config).unwrap();
    assert!(micropay(&client).await.is_ok());
    assert_eq!(
        server.hits(),
        4,
        "getsignkey, refused call, getsignkey, call"
    );
    // The fresh key is cached: the next call is a single exchange.
    assert!(micropay(&client).await.is_ok());
    assert_eq!(server.hits(), 5);
    assert_eq!(client.signing_key().await.unwrap().expose(), SANDBOX_KEY);
}

#[tokio::test]
async fn an_html_502_page_is_maybe_sent() {
    let server = CannedServer::spawn(|_, _| Behaviour::Reply {
        status: 502,
        body: NGINX_502.to_vec(),
    })
    .await;
    let error = micropay(&client(&server.base_url)).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::MaybeSent(MaybeSent::HttpStatus { status: 502 })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_200_html_page_or_empty_body_is_not_xml() {
    let server =
        CannedServer::spawn(|_, index| if index == 0 { ok(NGINX_502) } else { ok("") }).await;
    let client = client(&server.base_url);
    for _ in 0..2 {
        let error = micropay(&client).await.unwrap_err();
        assert!(
            matches!(error, Error::MaybeSent(MaybeSent::NotXml)),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_reply_times_out_as_maybe_sent() {
    let server = CannedServer::spawn(|_, _| Behaviour::Delay {
        delay: Duration::from_secs(1),
        body: signed_reply(KEY, SignType::HmacSha256, &[]).into_bytes(),
    })
    .await;
    let client = client(&server.base_url);
    let started = std::time::Instant::now();
    let error = client
        .execute(
            wxpay::Api::OrderQuery,
            Params::new(),
            CallOptions::with_read_timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::MaybeSent(MaybeSent::Timeout(t)) if t == Duration::from_millis(100)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    // The request arrived; a timeout never resends.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_connection_closed_after_the_request_is_a_transport_failure() {
    let server = CannedServer::spawn(|_, _| Behaviour::Close).await;
    let error = micropay(&client(&server.base_url)).await.unwrap_err();
    assert!(
        matches!(error, Error::MaybeSent(MaybeSent::Transport(_))),
        "{error:?}"
    );
    assert_eq!(server.hits(), 1, "never resent");
}

#[tokio::test]
async fn a_refused_primary_fails_over_to_the_backup_within_the_call() {
    // Arrange
    let backup = CannedServer::spawn(|_, _| ok(signed_reply(KEY, SignType::HmacSha256, &[]))).await;
    let mut config = config(&refused_url());
    config.backup_base_url = Some(backup.base_url.clone());
    let client = Client::new(config).unwrap();
    // Act
    let reply = micropay(&client).await;
    // Assert
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(backup.hits(), 1);
    assert_eq!(client.host_stats(Host::Primary).connect_failures, 1);
    assert_eq!(client.host_stats(Host::Backup).successes, 1);
    // One failure does not make the primary bad yet; three do.
    assert_eq!(client.current_host(), Host::Primary);
    micropay(&client).await.unwrap();
    micropay(&client).await.unwrap();
    assert_eq!(client.current_host(), Host::Backup);
    assert_eq!(backup.hits(), 3);
    // Now calls go straight to the backup.
    micropay(&client).await.unwrap();
    assert_eq!(backup.hits(), 4);
    assert_eq!(client.host_stats(Host::Primary).connect_failures, 3);
}

#[tokio::test]
async fn without_a_backup_a_refused_connection_is_not_sent() {
    let error = micropay(&client(&refused_url())).await.unwrap_err();
    assert!(
        matches!(error, Error::NotSent(NotSent::Connect { ref host, .. }) if host == "127.0.0.1"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failed_tls_handshake_is_not_sent() {
    // An https URL to a plain-HTTP server: the handshake fails before any request is written.
    let server = CannedServer::spawn(|_, _| ok(signed_reply(KEY, SignType::HmacSha256, &[]))).await;
    let mut https = server.base_url.clone();
    https.set_scheme("https").unwrap();
    let error = micropay(&client(&https)).await.unwrap_err();
    assert!(
        matches!(error, Error::NotSent(NotSent::Connect { .. })),
        "{error:?}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn an_oversized_reply_is_refused() {
    let big = format!(
        "<xml><padding>{}</padding></xml>",
        "x".repeat(xml::MAX_BODY_BYTES)
    );
    let server = CannedServer::spawn(move |_, index| {
        if index == 0 {
            ok(big.clone())
        } else {
            // Without a Content-Length the limit is enforced while reading.
            Behaviour::ReplyUnsized {
                body: big.clone().into_bytes(),
            }
        }
    })
    .await;
    let client = client(&server.base_url);
    for _ in 0..2 {
        let error = micropay(&client).await.unwrap_err();
        assert!(
            matches!(error, Error::MaybeSent(MaybeSent::TooLarge(limit)) if limit == xml::MAX_BODY_BYTES),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn bills_download_as_csv_and_xml_errors_are_protocol_errors() {
    let csv =
        "交易时间,公众账号ID,商户号\r\n`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100\r\n";
    let server = CannedServer::spawn(move |_, index| {
        if index == 0 {
            ok(csv)
        } else {
            ok("<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code><![CDATA[20002]]></error_code></xml>")
        }
    })
    .await;
    let client = client(&server.base_url);
    let mut params = Params::new();
    params
        .insert("bill_date", "20141110")
        .insert("bill_type", "ALL");
    let bill = client
        .download_bill_raw(params.clone(), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(bill, csv.as_bytes());
    assert_eq!(server.received()[0].path, "/pay/downloadbill");
    let error = client
        .download_bill_raw(params, CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Protocol { return_msg } if return_msg.contains("20002")),
        "{error:?}"
    );
}
