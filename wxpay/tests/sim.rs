//! The WeChat Pay simulator driven over real HTTPS (mTLS where WeChat requires it).
//!
//! Requests are signed with `wxpay::sign`, encoded with `wxpay::xml` and posted with reqwest,
//! trusting the simulator's CA and presenting the merchant's client certificate; one test
//! signs with an independent implementation written from the spec instead. Run with
//! `cargo test -p wxpay --features sim --test sim`.

#![cfg(feature = "sim")]

use std::time::Duration;

use md5::{Digest, Md5};
use wxpay::sim::{Behaviour, Fault, SimHandle, Simulator, auth_code_for};
use wxpay::{Api, ApiKey, Params, SignType, sign, xml};

const APPID: &str = "wxd930ea5d5a258f4f";
const MCH_ID: &str = "10000100";
const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

struct TestSim {
    sim: SimHandle,
    /// Presents the merchant's client certificate.
    client: reqwest::Client,
    /// Trusts the CA but has no client certificate.
    anonymous: reqwest::Client,
}

async fn spawn_sim() -> TestSim {
    spawn_with(Simulator::builder().merchant(APPID, MCH_ID, KEY)).await
}

async fn spawn_with(builder: Simulator) -> TestSim {
    let sim = builder.start().await.expect("simulator starts");
    let client = http_client(&sim, true, None);
    let anonymous = http_client(&sim, false, None);
    TestSim {
        sim,
        client,
        anonymous,
    }
}

fn http_client(sim: &SimHandle, with_identity: bool, timeout: Option<Duration>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("ca pem");
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        // A fresh connection per request: dropped/reset connections must not be reused.
        .pool_max_idle_per_host(0);
    if with_identity {
        let identity = reqwest::Identity::from_pem(sim.client_identity().identity_pem().as_bytes())
            .expect("identity pem");
        builder = builder.identity(identity);
    }
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().expect("client")
}

/// A raw HTTP reply.
struct Raw {
    status: u16,
    content_type: String,
    body: String,
}

impl Raw {
    fn params(&self) -> Params {
        xml::decode(self.body.as_bytes())
            .unwrap_or_else(|error| panic!("reply is not XML ({error}): {}", self.body))
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn base(out_trade_no: Option<&str>) -> Params {
    let mut params = Params::new();
    params.insert("appid", APPID);
    params.insert("mch_id", MCH_ID);
    params.insert("nonce_str", nonce());
    params.insert_opt("out_trade_no", out_trade_no);
    params
}

fn micropay_params(out_trade_no: &str, auth_code: &str, total_fee: u64) -> Params {
    let mut params = base(Some(out_trade_no));
    params.insert("body", "测试店-超市");
    params.insert("total_fee", total_fee.to_string());
    params.insert("spbill_create_ip", "127.0.0.1");
    params.insert("auth_code", auth_code);
    params.insert("device_info", "POS-1");
    params
}

fn signed_xml(mut params: Params, key: &str, sign_type: SignType) -> String {
    if sign_type == SignType::HmacSha256 {
        params.insert("sign_type", "HMAC-SHA256");
    }
    let signature = sign::sign(&params, &ApiKey::new(key), sign_type);
    params.insert("sign", signature);
    xml::encode(&params)
}

async fn post_raw(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> Result<Raw, reqwest::Error> {
    let response = client
        .post(url)
        .header("Content-Type", "text/xml; charset=UTF-8")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.text().await?;
    Ok(Raw {
        status,
        content_type,
        body,
    })
}

impl TestSim {
    fn url(&self, api: Api) -> String {
        format!("{}{}", self.sim.primary_url(), api.path())
    }

    /// Signs (MD5, merchant key), posts to the primary host with the client certificate,
    /// and checks the reply's signature when it is a SUCCESS envelope.
    async fn call(&self, api: Api, params: Params) -> Params {
        let raw = post_raw(
            &self.client,
            &self.url(api),
            signed_xml(params, KEY, SignType::Md5),
        )
        .await
        .expect("reply");
        assert_eq!(raw.status, 200, "{}", raw.body);
        let reply = raw.params();
        if reply.get("return_code") == Some("SUCCESS") {
            sign::verify(&reply, &ApiKey::new(KEY), SignType::Md5)
                .unwrap_or_else(|error| panic!("reply sign ({error}): {}", raw.body));
        }
        reply
    }

    async fn micropay(&self, out_trade_no: &str, auth_code: &str, total_fee: u64) -> Params {
        self.call(
            Api::Micropay,
            micropay_params(out_trade_no, auth_code, total_fee),
        )
        .await
    }

    async fn query(&self, out_trade_no: &str) -> Params {
        self.call(Api::OrderQuery, base(Some(out_trade_no))).await
    }

    async fn reverse(&self, out_trade_no: &str) -> Params {
        self.call(Api::Reverse, base(Some(out_trade_no))).await
    }

    async fn refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        total: u64,
        fee: u64,
    ) -> Params {
        let mut params = base(Some(out_trade_no));
        params.insert("out_refund_no", out_refund_no);
        params.insert("total_fee", total.to_string());
        params.insert("refund_fee", fee.to_string());
        self.call(Api::Refund, params).await
    }
}

fn get<'a>(params: &'a Params, name: &str) -> &'a str {
    params
        .get(name)
        .unwrap_or_else(|| panic!("no <{name}> in {params:?}"))
}

fn assert_business_fail(reply: &Params, err_code: &str) {
    assert_eq!(get(reply, "return_code"), "SUCCESS", "{reply:?}");
    assert_eq!(get(reply, "result_code"), "FAIL", "{reply:?}");
    assert_eq!(get(reply, "err_code"), err_code, "{reply:?}");
}

fn assert_protocol_fail(reply: &Params, return_msg: &str) {
    assert_eq!(get(reply, "return_code"), "FAIL", "{reply:?}");
    assert_eq!(get(reply, "return_msg"), return_msg, "{reply:?}");
    assert!(
        !reply.contains("sign"),
        "FAIL replies are unsigned: {reply:?}"
    );
    assert!(
        !reply.contains("appid"),
        "FAIL replies carry no appid: {reply:?}"
    );
    assert!(!reply.contains("result_code"), "{reply:?}");
}

fn out_trade_no() -> String {
    format!("T{}", rand::random::<u64>())
}

// ---------------------------------------------------------------------------------------
// Envelope and signatures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn password_free_payment_succeeds_with_the_documented_shape() {
    // Arrange
    let t = spawn_sim().await;
    let no = out_trade_no();
    let request = micropay_params(&no, &auth_code_for(Behaviour::PasswordFree), 888);
    let request_nonce = get(&request, "nonce_str").to_owned();

    // Act
    let raw = post_raw(
        &t.client,
        &t.url(Api::Micropay),
        signed_xml(request, KEY, SignType::Md5),
    )
    .await
    .expect("reply");

    // Assert
    assert_eq!(raw.status, 200);
    assert!(
        raw.body.contains("<total_fee>888</total_fee>"),
        "{}",
        raw.body
    );
    assert!(
        raw.body
            .contains("<result_code><![CDATA[SUCCESS]]></result_code>")
    );
    let reply = raw.params();
    sign::verify(&reply, &ApiKey::new(KEY), SignType::Md5).expect("signed with MD5");
    assert_eq!(get(&reply, "return_msg"), "OK");
    assert_eq!(get(&reply, "appid"), APPID);
    assert_eq!(get(&reply, "mch_id"), MCH_ID);
    assert_eq!(get(&reply, "device_info"), "POS-1");
    assert_ne!(get(&reply, "nonce_str"), request_nonce);
    assert_eq!(get(&reply, "trade_type"), "MICROPAY");
    assert_eq!(get(&reply, "out_trade_no"), no);
    assert_eq!(get(&reply, "cash_fee"), "888");
    assert_eq!(get(&reply, "transaction_id").len(), 28);
    assert_eq!(get(&reply, "time_end").len(), 14);
    assert!(get(&reply, "openid").starts_with('o'));
    assert!(!reply.contains("err_code"));
    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "SUCCESS");
    assert_eq!(get(&query, "transaction_id"), get(&reply, "transaction_id"));
}

#[tokio::test]
async fn hmac_requests_get_hmac_signed_replies() {
    let t = spawn_sim().await;
    let request = micropay_params(&out_trade_no(), &auth_code_for(Behaviour::PasswordFree), 1);

    let raw = post_raw(
        &t.client,
        &t.url(Api::Micropay),
        signed_xml(request, KEY, SignType::HmacSha256),
    )
    .await
    .expect("reply");

    let reply = raw.params();
    assert_eq!(get(&reply, "result_code"), "SUCCESS");
    assert_eq!(get(&reply, "sign").len(), 64);
    sign::verify(&reply, &ApiKey::new(KEY), SignType::HmacSha256).expect("HMAC reply");
}

/// The algorithm of docs/wechat-pay.md §4.1, written independently of `wxpay::sign`.
fn third_party_sign(fields: &[(&str, &str)], key: &str) -> String {
    let mut fields: Vec<_> = fields
        .iter()
        .filter(|(name, value)| *name != "sign" && !value.is_empty())
        .collect();
    fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = fields
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str("&key=");
    text.push_str(key);
    hex::encode_upper(Md5::digest(text.as_bytes()))
}

fn third_party_xml(fields: &[(&str, &str)], sign: &str) -> String {
    let mut xml = String::from("<xml>\n");
    for (name, value) in fields {
        xml.push_str(&format!("  <{name}>{value}</{name}>\n"));
    }
    xml.push_str(&format!("  <sign>{sign}</sign>\n</xml>"));
    xml
}

#[tokio::test]
async fn an_independent_spec_signer_is_accepted_and_a_wrong_key_is_refused() {
    // Arrange
    let t = spawn_sim().await;
    let code = auth_code_for(Behaviour::PasswordFree);
    let no = out_trade_no();
    let fields = [
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ("body", "image形象店-深圳腾大-QQ公仔"),
        ("out_trade_no", no.as_str()),
        ("total_fee", "888"),
        ("spbill_create_ip", "8.8.8.8"),
        ("auth_code", code.as_str()),
        ("attach", ""),
    ];

    // Act
    let good = post_raw(
        &t.client,
        &t.url(Api::Micropay),
        third_party_xml(&fields, &third_party_sign(&fields, KEY)),
    )
    .await
    .expect("reply")
    .params();
    let bad = post_raw(
        &t.client,
        &t.url(Api::Micropay),
        third_party_xml(
            &fields,
            &third_party_sign(&fields, "0123456789abcdef0123456789abcdef"),
        ),
    )
    .await
    .expect("reply")
    .params();

    // Assert
    assert_eq!(get(&good, "result_code"), "SUCCESS", "{good:?}");
    assert_protocol_fail(&bad, "签名错误");
    // The spec's own vector V1 still matches the crate's signer.
    let v1 = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ];
    assert_eq!(
        third_party_sign(&v1, KEY),
        "9A0A8659F005D6984697E2CA0A9CF3B7"
    );
}

#[tokio::test]
async fn malformed_requests_get_protocol_or_parameter_failures() {
    let t = spawn_with(Simulator::builder().merchant(APPID, MCH_ID, KEY).merchant(
        "wx0000000000000002",
        "10000200",
        "another-key-another-key-another-k",
    ))
    .await;
    let url = t.url(Api::Micropay);
    let code = || auth_code_for(Behaviour::PasswordFree);

    // Not XML at all.
    let raw = post_raw(&t.client, &url, "total_fee=1&body=x".into())
        .await
        .expect("reply");
    assert_protocol_fail(&raw.params(), "XML格式错误");
    // Hostile XML: a DOCTYPE, nested elements, a body over the size limit.
    for body in [
        "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><a>&x;</a></xml>"
            .to_owned(),
        "<xml><a><b>1</b></a></xml>".to_owned(),
        format!("<xml><body>{}</body></xml>", "x".repeat(400_000)),
        "\u{0}\u{1}garbage".to_owned(),
    ] {
        let raw = post_raw(&t.client, &url, body).await.expect("reply");
        assert_protocol_fail(&raw.params(), "XML格式错误");
    }
    // Unknown sign_type.
    let mut params = micropay_params(&out_trade_no(), &code(), 1);
    params.insert("sign_type", "SHA1");
    params.insert("sign", "ABC");
    let raw = post_raw(&t.client, &url, xml::encode(&params))
        .await
        .expect("reply");
    assert_protocol_fail(&raw.params(), "sign_type参数错误");
    // No sign at all.
    let raw = post_raw(
        &t.client,
        &url,
        xml::encode(&micropay_params(&out_trade_no(), &code(), 1)),
    )
    .await
    .expect("reply");
    assert_protocol_fail(&raw.params(), "签名错误");
    // Unknown merchant.
    let mut params = micropay_params(&out_trade_no(), &code(), 1);
    params.insert("mch_id", "99999999");
    let raw = post_raw(&t.client, &url, signed_xml(params, KEY, SignType::Md5))
        .await
        .expect("reply");
    assert_protocol_fail(&raw.params(), "商户号mch_id或sub_mch_id不存在");
    // Non-integer amounts are refused at the protocol layer (docs/wechat-pay.md §6.2).
    for total_fee in ["0.12", "0", "-1", "1e3"] {
        let mut params = micropay_params(&out_trade_no(), &code(), 1);
        params.insert("total_fee", total_fee);
        let reply = t.call(Api::Micropay, params).await;
        assert_eq!(get(&reply, "return_code"), "FAIL");
        assert_eq!(get(&reply, "return_msg"), "请确认请求参数是否正确total_fee");
    }
    // Missing business field.
    let mut params = micropay_params(&out_trade_no(), &code(), 1);
    params.remove("auth_code");
    let reply = t.call(Api::Micropay, params).await;
    assert_business_fail(&reply, "LACK_PARAMS");
    // Bad out_trade_no.
    let reply = t.micropay("订单号", &code(), 1).await;
    assert_business_fail(&reply, "PARAM_ERROR");
    // Unknown appid, and another merchant's appid.
    let mut params = micropay_params(&out_trade_no(), &code(), 1);
    params.insert("appid", "wxunknown");
    assert_business_fail(&t.call(Api::Micropay, params).await, "APPID_NOT_EXIST");
    let mut params = micropay_params(&out_trade_no(), &code(), 1);
    params.insert("appid", "wx0000000000000002");
    assert_business_fail(
        &t.call(Api::Micropay, params).await,
        "APPID_MCHID_NOT_MATCH",
    );
    // GET is refused.
    let response = t.client.get(&url).send().await.expect("reply");
    let reply = xml::decode(response.text().await.expect("body").as_bytes()).expect("xml");
    assert_protocol_fail(&reply, "请使用post方法");
    // Unknown path: nginx 404.
    let response = t
        .client
        .post(format!("{}/pay/nothing", t.sim.primary_url()))
        .send()
        .await
        .expect("reply");
    assert_eq!(response.status().as_u16(), 404);
    // Nothing above created an order.
    assert!(t.sim.orders().is_empty());
}

// ---------------------------------------------------------------------------------------
// The behaviour table, row by row
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn password_then_confirm_pays_after_n_simulated_seconds() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::PasswordThenConfirm {
        after: Duration::from_secs(8),
    });

    let reply = t.micropay(&no, &code, 100).await;
    assert_business_fail(&reply, "USERPAYING");
    assert_eq!(get(&reply, "err_code_des"), "需要用户输入支付密码");
    assert!(!reply.contains("transaction_id"));
    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "USERPAYING");
    assert!(
        !query.contains("transaction_id"),
        "no payment fields before paying"
    );
    assert_eq!(t.sim.pending_prompts().len(), 1);

    t.sim.advance(Duration::from_secs(8));
    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "SUCCESS");
    assert_eq!(get(&query, "total_fee"), "100");
    assert!(t.sim.pending_prompts().is_empty());
    // The Java SDK resubmits micropay: identical params now answer SUCCESS.
    let again = t.micropay(&no, &code, 100).await;
    assert_eq!(get(&again, "result_code"), "SUCCESS");
    assert_eq!(get(&again, "transaction_id"), get(&query, "transaction_id"));
}

#[tokio::test]
async fn password_then_cancel_turns_payerror() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::PasswordThenCancel {
        after: Duration::from_secs(5),
    });

    assert_business_fail(&t.micropay(&no, &code, 100).await, "USERPAYING");
    t.sim.advance(Duration::from_secs(6));

    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "PAYERROR");
    assert_eq!(get(&query, "trade_state_desc"), "支付失败,请撤销订单");
    let reverse = t.reverse(&no).await;
    assert_eq!(get(&reverse, "result_code"), "SUCCESS");
    assert_eq!(get(&reverse, "recall"), "N");
    assert_eq!(get(&t.query(&no).await, "trade_state"), "REVOKED");
}

#[tokio::test]
async fn password_waits_for_the_handle_or_the_control_api() {
    let t = spawn_sim().await;
    let (confirmed, cancelled) = (out_trade_no(), out_trade_no());
    for no in [&confirmed, &cancelled] {
        let reply = t
            .micropay(no, &auth_code_for(Behaviour::PasswordWaits), 1999)
            .await;
        assert_business_fail(&reply, "USERPAYING");
    }
    t.sim.advance(Duration::from_secs(30));
    assert_eq!(t.sim.pending_prompts().len(), 2);

    // In-process confirmation.
    let view = t.sim.confirm_password(&confirmed).expect("pending");
    assert_eq!(view.trade_state, "SUCCESS");
    // Over HTTP, without a client certificate.
    let response = t
        .anonymous
        .post(format!(
            "{}/_sim/orders/{cancelled}/cancel",
            t.sim.backup_url()
        ))
        .send()
        .await
        .expect("control reply");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.text().await.map(|text| json(&text)).expect("json");
    assert_eq!(body["trade_state"], "PAYERROR");

    assert_eq!(get(&t.query(&confirmed).await, "trade_state"), "SUCCESS");
    assert_eq!(get(&t.query(&cancelled).await, "trade_state"), "PAYERROR");
    assert!(matches!(
        t.sim.confirm_password(&confirmed),
        Err(wxpay::sim::ControlError::NotPending { .. })
    ));
    assert!(matches!(
        t.sim.confirm_password("nope"),
        Err(wxpay::sim::ControlError::NotFound(_))
    ));
}

#[tokio::test]
async fn final_failures_have_their_codes_and_order_states() {
    let t = spawn_sim().await;
    let (poor, expired, invalid, alipay) = (
        out_trade_no(),
        out_trade_no(),
        out_trade_no(),
        out_trade_no(),
    );

    let reply = t
        .micropay(&poor, &auth_code_for(Behaviour::NotEnough), 1)
        .await;
    assert_business_fail(&reply, "NOTENOUGH");
    let reply = t
        .micropay(&expired, &auth_code_for(Behaviour::Expired), 1)
        .await;
    assert_business_fail(&reply, "AUTHCODEEXPIRE");
    let reply = t
        .micropay(&invalid, &auth_code_for(Behaviour::Invalid), 1)
        .await;
    assert_business_fail(&reply, "AUTH_CODE_INVALID");
    let reply = t.micropay(&alipay, "281234567890123456", 1).await;
    assert_business_fail(&reply, "AUTH_CODE_INVALID");

    assert_eq!(get(&t.query(&poor).await, "trade_state"), "PAYERROR");
    for no in [&expired, &invalid, &alipay] {
        assert_business_fail(&t.query(no).await, "ORDERNOTEXIST");
    }
}

#[tokio::test]
async fn system_error_hides_a_success() {
    let t = spawn_sim().await;
    let no = out_trade_no();

    let reply = t
        .micropay(&no, &auth_code_for(Behaviour::SystemErrorPaid), 500)
        .await;

    assert_business_fail(&reply, "SYSTEMERROR");
    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "SUCCESS");
    assert_eq!(get(&query, "total_fee"), "500");
}

#[tokio::test]
async fn bank_error_stays_unknown_then_is_declined() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::BankError {
        decline_after: Duration::from_secs(5),
    });

    assert_business_fail(&t.micropay(&no, &code, 500).await, "BANKERROR");
    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "USERPAYING");
    assert_eq!(get(&query, "trade_state_desc"), "银行处理中");
    t.sim.advance(Duration::from_secs(5));
    assert_eq!(get(&t.query(&no).await, "trade_state"), "PAYERROR");
}

#[tokio::test]
async fn slow_reply_outlasts_the_client_timeout_but_pays() {
    let t = spawn_sim().await;
    t.sim.set_slow_reply_delay(Duration::from_millis(1500));
    let impatient = http_client(&t.sim, true, Some(Duration::from_millis(300)));
    let no = out_trade_no();
    let body = signed_xml(
        micropay_params(&no, &auth_code_for(Behaviour::SlowReply { delay: None }), 1),
        KEY,
        SignType::Md5,
    );

    let error = post_raw(&impatient, &t.url(Api::Micropay), body)
        .await
        .err()
        .expect("times out");

    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(get(&t.query(&no).await, "trade_state"), "SUCCESS");
}

#[tokio::test]
async fn slow_reply_arrives_eventually_for_a_patient_client() {
    let t = spawn_sim().await;
    let code = auth_code_for(Behaviour::SlowReply {
        delay: Some(Duration::from_secs(1)),
    });
    let started = std::time::Instant::now();

    let reply = t.micropay(&out_trade_no(), &code, 1).await;

    assert_eq!(get(&reply, "result_code"), "SUCCESS");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn dropped_connection_after_commit_still_pays() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    let body = signed_xml(
        micropay_params(&no, &auth_code_for(Behaviour::DropAfterCommit), 1),
        KEY,
        SignType::Md5,
    );

    let error = post_raw(&t.client, &t.url(Api::Micropay), body)
        .await
        .err()
        .expect("no reply");

    assert!(!error.is_timeout(), "{error:?}");
    assert_eq!(get(&t.query(&no).await, "trade_state"), "SUCCESS");
}

#[tokio::test]
async fn gateway_502_creates_no_order() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::Gateway502);
    let body = signed_xml(micropay_params(&no, &code, 1), KEY, SignType::Md5);

    let raw = post_raw(&t.client, &t.url(Api::Micropay), body)
        .await
        .expect("reply");

    assert_eq!(raw.status, 502);
    assert_eq!(raw.content_type, "text/html");
    assert!(
        raw.body
            .contains("<center><h1>502 Bad Gateway</h1></center>")
    );
    assert!(raw.body.contains("nginx"));
    assert_business_fail(&t.query(&no).await, "ORDERNOTEXIST");
    // Reversing the order that never arrived is a harmless SUCCESS.
    let reverse = t.reverse(&no).await;
    assert_eq!(get(&reverse, "result_code"), "SUCCESS");
    assert_eq!(get(&reverse, "recall"), "N");
}

#[tokio::test]
async fn unmarked_codes_pay_without_password() {
    let t = spawn_sim().await;
    let reply = t.micropay(&out_trade_no(), "134567890123456789", 1).await;
    assert_eq!(get(&reply, "result_code"), "SUCCESS");
}

// ---------------------------------------------------------------------------------------
// Ledger rules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_submissions_follow_wechat_rules() {
    let t = spawn_sim().await;
    let paid = out_trade_no();
    let code = auth_code_for(Behaviour::PasswordFree);
    let first = t.micropay(&paid, &code, 100).await;

    // Identical resubmission: same result, same transaction_id.
    let again = t.micropay(&paid, &code, 100).await;
    assert_eq!(get(&again, "result_code"), "SUCCESS");
    assert_eq!(get(&again, "transaction_id"), get(&first, "transaction_id"));
    assert_eq!(get(&again, "time_end"), get(&first, "time_end"));
    // Paid number with another code or amount.
    let other_code = auth_code_for(Behaviour::PasswordFree);
    assert_business_fail(&t.micropay(&paid, &other_code, 100).await, "ORDERPAID");
    assert_business_fail(&t.micropay(&paid, &code, 101).await, "ORDERPAID");
    // The used code on a new order.
    assert_business_fail(
        &t.micropay(&out_trade_no(), &code, 100).await,
        "AUTH_CODE_ERROR",
    );
    // An unpaid number reused with different params.
    let waiting = out_trade_no();
    let waiting_code = auth_code_for(Behaviour::PasswordWaits);
    assert_business_fail(&t.micropay(&waiting, &waiting_code, 5).await, "USERPAYING");
    assert_business_fail(&t.micropay(&waiting, &waiting_code, 5).await, "USERPAYING");
    assert_business_fail(
        &t.micropay(&waiting, &auth_code_for(Behaviour::PasswordFree), 5)
            .await,
        "OUT_TRADE_NO_USED",
    );
    // Reversed and closed numbers.
    assert_eq!(get(&t.reverse(&paid).await, "result_code"), "SUCCESS");
    assert_business_fail(&t.micropay(&paid, &code, 100).await, "ORDERREVERSED");
    let closed = t.call(Api::CloseOrder, base(Some(&waiting))).await;
    assert_eq!(get(&closed, "result_code"), "SUCCESS");
    assert_business_fail(&t.micropay(&waiting, &waiting_code, 5).await, "ORDERCLOSED");
    assert_eq!(t.sim.orders().len(), 2);
}

#[tokio::test]
async fn unpaid_orders_auto_revoke_after_45_simulated_seconds() {
    // 1000× speed: 45 simulated seconds pass in 45 ms.
    let t = spawn_with(
        Simulator::builder()
            .merchant(APPID, MCH_ID, KEY)
            .time_scale(1000.0),
    )
    .await;
    let no = out_trade_no();
    assert_business_fail(
        &t.micropay(&no, &auth_code_for(Behaviour::PasswordWaits), 1)
            .await,
        "USERPAYING",
    );

    tokio::time::sleep(Duration::from_millis(100)).await;

    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "REVOKED");
    assert_eq!(get(&query, "trade_state_desc"), "订单已撤销");
    assert!(!query.contains("transaction_id"));
    assert!(t.sim.pending_prompts().is_empty());
    assert!(matches!(
        t.sim.confirm_password(&no),
        Err(wxpay::sim::ControlError::NotPending { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Reverse
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn secapi_without_client_certificate_gets_the_nginx_400_page() {
    let t = spawn_sim().await;
    for api in [Api::Reverse, Api::Refund] {
        let body = signed_xml(base(Some("T1")), KEY, SignType::Md5);
        let raw = post_raw(&t.anonymous, &t.url(api), body)
            .await
            .expect("reply");
        assert_eq!(raw.status, 400);
        assert_eq!(raw.content_type, "text/html");
        assert!(
            raw.body
                .contains("<title>400 No required SSL certificate was sent</title>"),
            "{}",
            raw.body
        );
        assert!(
            raw.body
                .contains("<center>No required SSL certificate was sent</center>")
        );
    }
    // Non-secapi endpoints do not need it.
    let raw = post_raw(
        &t.anonymous,
        &t.url(Api::OrderQuery),
        signed_xml(base(Some("T1")), KEY, SignType::Md5),
    )
    .await
    .expect("reply");
    assert_business_fail(&raw.params(), "ORDERNOTEXIST");
}

#[tokio::test]
async fn reverse_follows_the_spec() {
    let t = spawn_sim().await;
    // Unknown order: SUCCESS, nothing to recall.
    let unknown = t.reverse("never-sent").await;
    assert_eq!(get(&unknown, "result_code"), "SUCCESS");
    assert_eq!(get(&unknown, "recall"), "N");
    // Password prompt open: USERPAYING, recall.
    let waiting = out_trade_no();
    t.micropay(&waiting, &auth_code_for(Behaviour::PasswordWaits), 1)
        .await;
    let reply = t.reverse(&waiting).await;
    assert_business_fail(&reply, "USERPAYING");
    assert_eq!(get(&reply, "err_code_des"), "正在支付中不能发起撤销");
    assert_eq!(get(&reply, "recall"), "Y");
    t.sim.cancel_password(&waiting).expect("pending");
    assert_eq!(get(&t.reverse(&waiting).await, "result_code"), "SUCCESS");
    // Paid: refunded and REVOKED; re-entrant.
    let paid = out_trade_no();
    let payment = t
        .micropay(&paid, &auth_code_for(Behaviour::PasswordFree), 300)
        .await;
    let mut by_transaction = base(None);
    by_transaction.insert("transaction_id", get(&payment, "transaction_id"));
    let reply = t.call(Api::Reverse, by_transaction).await;
    assert_eq!(get(&reply, "result_code"), "SUCCESS");
    assert_eq!(get(&reply, "recall"), "N");
    assert_eq!(get(&t.query(&paid).await, "trade_state"), "REVOKED");
    assert_eq!(get(&t.reverse(&paid).await, "recall"), "N");
    // Older than 7 days: REVERSE_EXPIRE.
    let old = out_trade_no();
    t.micropay(&old, &auth_code_for(Behaviour::PasswordFree), 1)
        .await;
    t.sim.advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let reply = t.reverse(&old).await;
    assert_business_fail(&reply, "REVERSE_EXPIRE");
    assert_eq!(get(&reply, "recall"), "N");
    assert_eq!(get(&t.query(&old).await, "trade_state"), "SUCCESS");
}

#[tokio::test]
async fn reverse_with_another_merchants_certificate_is_refused() {
    let t = spawn_with(Simulator::builder().merchant(APPID, MCH_ID, KEY).merchant(
        "wx0000000000000002",
        "10000200",
        "another-key-another-key-another-k",
    ))
    .await;
    let other = t
        .sim
        .client_identity_for("10000200")
        .expect("second identity");
    let ca = reqwest::Certificate::from_pem(t.sim.ca_pem().as_bytes()).expect("ca");
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(reqwest::Identity::from_pem(other.identity_pem().as_bytes()).expect("pem"))
        .build()
        .expect("client");

    let raw = post_raw(
        &client,
        &t.url(Api::Reverse),
        signed_xml(base(Some("T1")), KEY, SignType::Md5),
    )
    .await
    .expect("reply");

    assert_protocol_fail(&raw.params(), "certificate not match");
}

// ---------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refunds_are_idempotent_bounded_and_complete_later() {
    let t = spawn_with(
        Simulator::builder()
            .merchant(APPID, MCH_ID, KEY)
            .refund_delay(Duration::from_secs(90)),
    )
    .await;
    let no = out_trade_no();
    t.micropay(&no, &auth_code_for(Behaviour::PasswordFree), 1000)
        .await;

    let first = t.refund(&no, "R1", 1000, 300).await;
    assert_eq!(get(&first, "result_code"), "SUCCESS", "{first:?}");
    assert_eq!(get(&first, "refund_fee"), "300");
    assert_eq!(get(&first, "refund_id").len(), 29);
    // Same out_refund_no, same amounts: same refund.
    let again = t.refund(&no, "R1", 1000, 300).await;
    assert_eq!(get(&again, "refund_id"), get(&first, "refund_id"));
    // Same out_refund_no, other amount.
    assert_business_fail(&t.refund(&no, "R1", 1000, 400).await, "REFUND_FEE_MISMATCH");
    // The next application comes a minute later (docs/wechat-pay.md §3.4).
    t.sim.advance(Duration::from_secs(60));
    // Cumulative refunds may not exceed the total.
    assert_business_fail(&t.refund(&no, "R2", 1000, 701).await, "ERROR");
    assert_eq!(
        get(&t.refund(&no, "R2", 1000, 700).await, "result_code"),
        "SUCCESS"
    );
    assert_eq!(get(&t.query(&no).await, "trade_state"), "REFUND");
    assert_eq!(t.sim.refunds().len(), 2);

    let mut by_order = base(Some(&no));
    by_order.insert("offset", "0");
    let query = t.call(Api::RefundQuery, by_order.clone()).await;
    assert_eq!(get(&query, "refund_count"), "2");
    assert_eq!(get(&query, "refund_status_0"), "PROCESSING");
    assert_eq!(get(&query, "out_refund_no_1"), "R2");
    assert!(!query.contains("refund_success_time_0"));
    t.sim.advance(Duration::from_secs(30));
    by_order.insert("nonce_str", nonce());
    let query = t.call(Api::RefundQuery, by_order).await;
    assert_eq!(get(&query, "refund_status_0"), "SUCCESS");
    assert_eq!(get(&query, "refund_recv_accout_0"), "支付用户的零钱");
    assert_eq!(get(&query, "refund_success_time_0").len(), 19);
    let mut by_refund = base(None);
    by_refund.insert("out_refund_no", "R2");
    let query = t.call(Api::RefundQuery, by_refund).await;
    assert_eq!(get(&query, "refund_count"), "1");
    assert_eq!(get(&query, "refund_fee_0"), "700");
}

#[tokio::test]
async fn refunds_of_unpaid_or_unknown_orders_are_refused() {
    let t = spawn_sim().await;
    let waiting = out_trade_no();
    t.micropay(&waiting, &auth_code_for(Behaviour::PasswordWaits), 100)
        .await;

    assert_business_fail(&t.refund(&waiting, "R1", 100, 1).await, "ORDERNOTEXIST");
    assert_business_fail(&t.refund("unknown", "R2", 100, 1).await, "ORDERNOTEXIST");
    let paid = out_trade_no();
    t.micropay(&paid, &auth_code_for(Behaviour::PasswordFree), 100)
        .await;
    assert_business_fail(&t.refund(&paid, "R3", 99, 1).await, "INVALID_REQUEST");
    let mut no_number = base(Some(&paid));
    no_number.insert("total_fee", "100");
    no_number.insert("refund_fee", "1");
    assert_business_fail(&t.call(Api::Refund, no_number).await, "LACK_PARAMS");
    let mut query = base(Some(&waiting));
    query.insert("nonce_str", nonce());
    assert_business_fail(&t.call(Api::RefundQuery, query).await, "REFUNDNOTEXIST");
}

#[tokio::test]
async fn refunds_stop_at_fifty_per_order() {
    // Without the one-minute spacing, so that fifty fit in a test.
    let t = spawn_with(
        Simulator::builder()
            .merchant(APPID, MCH_ID, KEY)
            .refund_spacing(Duration::ZERO),
    )
    .await;
    let no = out_trade_no();
    t.micropay(&no, &auth_code_for(Behaviour::PasswordFree), 100)
        .await;
    for n in 0..50 {
        let reply = t.refund(&no, &format!("R{n}"), 100, 1).await;
        assert_eq!(get(&reply, "result_code"), "SUCCESS", "refund {n}");
    }
    assert_business_fail(&t.refund(&no, "R50", 100, 1).await, "INVALID_REQUEST");
}

#[tokio::test]
async fn a_new_refund_within_a_minute_of_the_last_is_frequency_limited() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    t.micropay(&no, &auth_code_for(Behaviour::PasswordFree), 1000)
        .await;
    let other = out_trade_no();
    t.micropay(&other, &auth_code_for(Behaviour::PasswordFree), 1000)
        .await;

    let first = t.refund(&no, "R1", 1000, 100).await;
    assert_eq!(get(&first, "result_code"), "SUCCESS", "{first:?}");
    t.sim.advance(Duration::from_secs(59));
    // A new out_refund_no 59 s after the last application: refused, nothing stored.
    let too_soon = t.refund(&no, "R2", 1000, 100).await;
    assert_business_fail(&too_soon, "FREQUENCY_LIMITED");
    assert_eq!(t.sim.refunds().len(), 1);
    // A retry of the number already applied for is idempotent, never refused.
    let retry = t.refund(&no, "R1", 1000, 100).await;
    assert_eq!(get(&retry, "refund_id"), get(&first, "refund_id"));
    // The spacing is per order: another order's refund is not held back.
    let elsewhere = t.refund(&other, "S1", 1000, 100).await;
    assert_eq!(get(&elsewhere, "result_code"), "SUCCESS", "{elsewhere:?}");
    // A minute after the last application, the next one is accepted, and it starts the
    // next minute.
    t.sim.advance(Duration::from_secs(1));
    let second = t.refund(&no, "R2", 1000, 100).await;
    assert_eq!(get(&second, "result_code"), "SUCCESS", "{second:?}");
    assert_business_fail(&t.refund(&no, "R3", 1000, 100).await, "FREQUENCY_LIMITED");
    assert_eq!(t.sim.refunds().len(), 3);
}

// ---------------------------------------------------------------------------------------
// closeorder, downloadbill
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn closeorder_closes_unpaid_orders_only() {
    let t = spawn_sim().await;
    let (waiting, paid) = (out_trade_no(), out_trade_no());
    t.micropay(&waiting, &auth_code_for(Behaviour::PasswordWaits), 1)
        .await;
    t.micropay(&paid, &auth_code_for(Behaviour::PasswordFree), 1)
        .await;

    let reply = t.call(Api::CloseOrder, base(Some(&waiting))).await;
    assert_eq!(get(&reply, "result_code"), "SUCCESS");
    assert_eq!(get(&reply, "result_msg"), "OK");
    assert_eq!(get(&t.query(&waiting).await, "trade_state"), "CLOSED");
    assert_business_fail(
        &t.call(Api::CloseOrder, base(Some(&waiting))).await,
        "ORDERCLOSED",
    );
    assert_business_fail(
        &t.call(Api::CloseOrder, base(Some(&paid))).await,
        "ORDERPAID",
    );
    assert_business_fail(
        &t.call(Api::CloseOrder, base(Some("nope"))).await,
        "ORDERNOTEXIST",
    );
}

#[tokio::test]
async fn downloadbill_returns_wechat_csv_or_no_bill_exist() {
    let t = spawn_sim().await;
    let today = t
        .sim
        .now()
        .with_timezone(&wxpay::sim::clock::beijing())
        .format("%Y%m%d")
        .to_string();
    let bill = |date: &str| {
        let mut params = base(None);
        params.insert("bill_date", date);
        params.insert("bill_type", "ALL");
        params
    };

    let download = |params: Params| {
        let client = t.client.clone();
        let url = t.url(Api::DownloadBill);
        async move {
            post_raw(&client, &url, signed_xml(params, KEY, SignType::Md5))
                .await
                .expect("reply")
        }
    };

    let no = out_trade_no();
    t.micropay(&no, &auth_code_for(Behaviour::PasswordFree), 1234)
        .await;
    t.refund(&no, "R1", 1234, 234).await;

    // Today's bill is still being made; so is it until 10:00 tomorrow (Beijing time).
    let creating = download(bill(&today)).await.params();
    assert_eq!(get(&creating, "return_code"), "FAIL");
    assert_eq!(get(&creating, "return_msg"), "Bill Creating");
    assert_eq!(get(&creating, "error_code"), "20002");
    let tomorrow_ten = (t
        .sim
        .now()
        .with_timezone(&wxpay::sim::clock::beijing())
        .date_naive()
        + chrono::Duration::days(1))
    .and_hms_opt(10, 0, 0)
    .and_then(|time| {
        time.and_local_timezone(wxpay::sim::clock::beijing())
            .single()
    })
    .expect("a time")
    .to_utc();
    t.sim.advance(
        (tomorrow_ten - t.sim.now() - chrono::Duration::seconds(5))
            .to_std()
            .expect("later"),
    );
    let creating = download(bill(&today)).await.params();
    assert_eq!(get(&creating, "return_msg"), "Bill Creating", "at 09:59:55");
    t.sim.advance(Duration::from_secs(5));

    // A day without trades has no bill.
    let yesterday = (chrono::NaiveDate::parse_from_str(&today, "%Y%m%d").expect("a day")
        - chrono::Duration::days(1))
    .format("%Y%m%d")
    .to_string();
    let empty = download(bill(&yesterday)).await.params();
    assert_eq!(get(&empty, "return_code"), "FAIL");
    assert_eq!(get(&empty, "return_msg"), "No Bill Exist");
    assert_eq!(get(&empty, "error_code"), "20002");

    // With tar_type=GZIP, the same bill gzipped.
    let mut gzip = bill(&today);
    gzip.insert("tar_type", "GZIP");
    let zipped = t
        .client
        .post(t.url(Api::DownloadBill))
        .body(signed_xml(gzip, KEY, SignType::Md5))
        .send()
        .await
        .expect("reply");
    assert_eq!(
        zipped.headers()["content-type"].to_str().ok(),
        Some("application/x-gzip")
    );
    let zipped = zipped.bytes().await.expect("a body");
    assert_eq!(zipped[..2], [0x1f, 0x8b], "gzip magic bytes");
    let from_gzip = wxpay::messages::Bill::parse_bytes(&zipped).expect("a gzip bill");

    let raw = post_raw(
        &t.client,
        &t.url(Api::DownloadBill),
        signed_xml(bill(&today), KEY, SignType::Md5),
    )
    .await
    .expect("reply");
    assert_eq!(raw.status, 200);
    assert!(raw.content_type.starts_with("text/plain"));
    let lines: Vec<&str> = raw.body.lines().collect();
    assert_eq!(lines.len(), 5, "{}", raw.body);
    assert!(lines[0].starts_with("交易时间,公众账号ID,商户号"));
    assert!(
        lines[1].split(',').all(|field| field.starts_with('`')),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(&format!("`{no}")));
    assert!(lines[1].contains("`SUCCESS") && lines[1].contains("`12.34"));
    assert!(lines[2].contains("`REFUND") && lines[2].contains("`2.34") && lines[2].contains("`R1"));
    assert!(lines[3].starts_with("总交易单数"));
    assert!(
        lines[4].starts_with("`2,`12.34,`2.34,`0.00,"),
        "{}",
        lines[4]
    );
    assert_eq!(
        wxpay::messages::Bill::parse(&raw.body).expect("a text bill"),
        from_gzip
    );

    let invalid = post_raw(
        &t.client,
        &t.url(Api::DownloadBill),
        signed_xml(bill("2024-01-01"), KEY, SignType::Md5),
    )
    .await
    .expect("reply")
    .params();
    assert_eq!(get(&invalid, "return_msg"), "invalid bill_date");
}

// ---------------------------------------------------------------------------------------
// Faults, outage, control API
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn injected_faults_behave_as_documented() {
    let t = spawn_sim().await;
    let url = t.url(Api::Micropay);
    let pay = |no: &str| {
        signed_xml(
            micropay_params(no, &auth_code_for(Behaviour::PasswordFree), 1),
            KEY,
            SignType::Md5,
        )
    };

    // Drop before processing: no reply, no order.
    t.sim
        .inject_fault(Api::Micropay, Fault::DropBeforeProcessing, 1);
    let dropped = out_trade_no();
    assert!(post_raw(&t.client, &url, pay(&dropped)).await.is_err());
    assert_business_fail(&t.query(&dropped).await, "ORDERNOTEXIST");
    // Reset: no reply, no order.
    t.sim.inject_fault(Api::Micropay, Fault::ConnectionReset, 1);
    let reset = out_trade_no();
    assert!(post_raw(&t.client, &url, pay(&reset)).await.is_err());
    assert_business_fail(&t.query(&reset).await, "ORDERNOTEXIST");
    // Drop after commit: no reply, but paid.
    t.sim.inject_fault(Api::Micropay, Fault::DropAfterCommit, 1);
    let committed = out_trade_no();
    assert!(post_raw(&t.client, &url, pay(&committed)).await.is_err());
    assert_eq!(get(&t.query(&committed).await, "trade_state"), "SUCCESS");
    // 5xx HTML: not processed.
    t.sim
        .inject_fault(Api::Micropay, Fault::Html5xx { status: 503 }, 1);
    let unavailable = out_trade_no();
    let raw = post_raw(&t.client, &url, pay(&unavailable))
        .await
        .expect("reply");
    assert_eq!(raw.status, 503);
    assert!(raw.body.contains("503 Service Unavailable"));
    assert_business_fail(&t.query(&unavailable).await, "ORDERNOTEXIST");
    // Garbage XML: processed.
    t.sim.inject_fault(Api::Micropay, Fault::GarbageXml, 1);
    let garbage = out_trade_no();
    let raw = post_raw(&t.client, &url, pay(&garbage))
        .await
        .expect("reply");
    assert!(xml::decode(raw.body.as_bytes()).is_err(), "{}", raw.body);
    assert_eq!(get(&t.query(&garbage).await, "trade_state"), "SUCCESS");
    // Bad signature: processed, well-formed, does not verify.
    t.sim.inject_fault(Api::Micropay, Fault::BadSignature, 1);
    let forged = out_trade_no();
    let reply = post_raw(&t.client, &url, pay(&forged))
        .await
        .expect("reply")
        .params();
    assert_eq!(get(&reply, "result_code"), "SUCCESS");
    assert!(sign::verify(&reply, &ApiKey::new(KEY), SignType::Md5).is_err());
    // Delay: processed at once, reply late.
    t.sim
        .inject_fault(Api::Micropay, Fault::Delay { ms: 1000 }, 1);
    let impatient = http_client(&t.sim, true, Some(Duration::from_millis(200)));
    let late = out_trade_no();
    let error = post_raw(&impatient, &url, pay(&late))
        .await
        .err()
        .expect("timeout");
    assert!(error.is_timeout());
    assert_eq!(get(&t.query(&late).await, "trade_state"), "SUCCESS");
    // Faults are per endpoint and per count: the next call is clean.
    assert!(t.sim.pending_faults().is_empty());
    assert_eq!(
        get(
            &t.micropay(&out_trade_no(), &auth_code_for(Behaviour::PasswordFree), 1)
                .await,
            "result_code"
        ),
        "SUCCESS"
    );
    // A fault on orderquery leaves micropay alone.
    t.sim
        .inject_fault(Api::OrderQuery, Fault::Html5xx { status: 502 }, 2);
    let raw = post_raw(
        &t.client,
        &t.url(Api::OrderQuery),
        signed_xml(base(Some(&late)), KEY, SignType::Md5),
    )
    .await
    .expect("reply");
    assert_eq!(raw.status, 502);
    assert_eq!(t.sim.pending_faults().len(), 1);
    t.sim.clear_faults();
    assert!(t.sim.pending_faults().is_empty());
}

#[tokio::test]
async fn primary_outage_leaves_only_the_backup() {
    let t = spawn_sim().await;
    t.sim.set_primary_outage(true);
    let body = || signed_xml(base(Some("T1")), KEY, SignType::Md5);

    let primary = post_raw(&t.client, &t.url(Api::OrderQuery), body()).await;
    let backup = post_raw(
        &t.client,
        &format!("{}{}", t.sim.backup_url(), Api::OrderQuery.path()),
        body(),
    )
    .await
    .expect("backup answers");

    let error = primary.err().expect("primary refuses");
    assert!(error.is_connect(), "{error:?}");
    assert_business_fail(&backup.params(), "ORDERNOTEXIST");
    t.sim.set_primary_outage(false);
    let again = post_raw(&t.client, &t.url(Api::OrderQuery), body())
        .await
        .expect("primary back");
    assert_business_fail(&again.params(), "ORDERNOTEXIST");
    let hosts: Vec<_> = t.sim.calls().iter().map(|call| call.host).collect();
    assert_eq!(
        hosts,
        vec![wxpay::sim::Host::Backup, wxpay::sim::Host::Primary]
    );
}

#[tokio::test]
async fn the_call_log_records_order_and_counts() {
    let t = spawn_sim().await;
    let no = out_trade_no();
    t.micropay(&no, &auth_code_for(Behaviour::PasswordWaits), 1)
        .await;
    t.query(&no).await;
    t.query(&no).await;
    t.sim.advance(Duration::from_secs(20));
    t.reverse(&no).await;

    let calls = t.sim.calls();
    let endpoints: Vec<_> = calls.iter().map(|call| call.endpoint.as_str()).collect();
    assert_eq!(
        endpoints,
        ["micropay", "orderquery", "orderquery", "reverse"]
    );
    assert!(
        calls
            .iter()
            .all(|call| call.out_trade_no.as_deref() == Some(no.as_str()))
    );
    assert!(calls[3].sim_time - calls[2].sim_time >= chrono::Duration::seconds(20));
    assert_eq!(
        calls.iter().map(|call| call.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(t.sim.call_count(Api::OrderQuery), 2);
    assert_eq!(t.sim.call_count(Api::Refund), 0);
}

#[tokio::test]
async fn the_control_api_speaks_json() {
    let t = spawn_sim().await;
    let control = |path: &str| format!("{}/_sim/{path}", t.sim.primary_url());

    // A code for a behaviour.
    let code: serde_json::Value = t
        .anonymous
        .get(control("code?behaviour=password_waits"))
        .send()
        .await
        .expect("reply")
        .text()
        .await
        .map(|text| json(&text))
        .expect("json");
    let auth_code = code["auth_code"].as_str().expect("code").to_owned();
    assert_eq!(
        wxpay::sim::Behaviour::of(&auth_code),
        Behaviour::PasswordWaits
    );
    let no = out_trade_no();
    t.micropay(&no, &auth_code, 42).await;
    // Pending prompts, then confirm.
    let pending: serde_json::Value = t
        .anonymous
        .get(control("pending"))
        .send()
        .await
        .expect("reply")
        .text()
        .await
        .map(|text| json(&text))
        .expect("json");
    assert_eq!(pending[0]["out_trade_no"], no.as_str());
    assert_eq!(pending[0]["total_fee"], 42);
    let confirmed = t
        .anonymous
        .post(control(&format!("orders/{no}/confirm?mch_id={MCH_ID}")))
        .send()
        .await
        .expect("reply");
    assert_eq!(confirmed.status().as_u16(), 200);
    let again = t
        .anonymous
        .post(control(&format!("orders/{no}/confirm")))
        .send()
        .await
        .expect("reply");
    assert_eq!(again.status().as_u16(), 409);
    let missing = t
        .anonymous
        .get(control("orders/none"))
        .send()
        .await
        .expect("reply");
    assert_eq!(missing.status().as_u16(), 404);
    // Faults over HTTP.
    let fault = t
        .anonymous
        .post(control("faults"))
        .header("Content-Type", "application/json").body(serde_json::json!({"endpoint": "micropay", "fault": {"kind": "html5xx", "status": 504}, "times": 2}).to_string())
        .send()
        .await
        .expect("reply");
    assert_eq!(fault.status().as_u16(), 200);
    assert_eq!(t.sim.pending_faults()[0].remaining, 2);
    let bad = t
        .anonymous
        .post(control("faults"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"endpoint": "nope", "fault": {"kind": "garbage_xml"}}).to_string())
        .send()
        .await
        .expect("reply");
    assert_eq!(bad.status().as_u16(), 400);
    t.anonymous
        .delete(control("faults"))
        .send()
        .await
        .expect("reply");
    assert!(t.sim.pending_faults().is_empty());
    // Time.
    let before = t.sim.now();
    t.anonymous
        .post(control("time/advance"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"seconds": 3600}).to_string())
        .send()
        .await
        .expect("reply");
    assert!(t.sim.now() - before >= chrono::Duration::hours(1));
    let negative = t
        .anonymous
        .post(control("time/advance"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"seconds": -1}).to_string())
        .send()
        .await
        .expect("reply");
    assert_eq!(negative.status().as_u16(), 400);
    // Outage via HTTP on the backup.
    t.anonymous
        .post(format!("{}/_sim/outage", t.sim.backup_url()))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"primary": true}).to_string())
        .send()
        .await
        .expect("reply");
    assert!(t.anonymous.get(control("time")).send().await.is_err());
    t.sim.set_primary_outage(false);
    // The whole state.
    let state: serde_json::Value = t
        .anonymous
        .get(control("state"))
        .send()
        .await
        .expect("reply")
        .text()
        .await
        .map(|text| json(&text))
        .expect("json");
    assert_eq!(state["orders"][0]["trade_state"], "SUCCESS");
    assert_eq!(state["call_counts"]["micropay"], 1);
}

#[tokio::test]
async fn the_phone_page_shows_a_code_as_barcode_qr_and_digits() {
    let t = spawn_sim().await;

    let response = t
        .anonymous
        .get(format!(
            "{}/_sim/phone?behaviour=password_waits",
            t.sim.primary_url()
        ))
        .send()
        .await
        .expect("reply");

    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("<svg"), "barcode and QR are inline SVG");
    assert!(html.matches("<svg").count() >= 2);
    assert!(html.contains(r#"value="password_waits" selected"#));
    assert!(html.contains("/_sim/pending"));
    let digits = html
        .split(r#"id="digits">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("digits");
    assert_eq!(digits.len(), 22, "4-4-4-4-2 with spaces: {digits}");
    let code: String = digits.split_whitespace().collect();
    assert_eq!(Behaviour::of(&code), Behaviour::PasswordWaits);
}

// ---------------------------------------------------------------------------------------
// Sandbox, certificates
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_sandbox_uses_the_key_from_getsignkey() {
    let t = spawn_sim().await;
    let mut request = Params::new();
    request.insert("mch_id", MCH_ID);
    request.insert("nonce_str", nonce());
    let raw = post_raw(
        &t.anonymous,
        &t.url(Api::GetSignKey),
        signed_xml(request, KEY, SignType::Md5),
    )
    .await
    .expect("reply");
    let reply = raw.params();
    assert_eq!(get(&reply, "return_code"), "SUCCESS");
    let sandbox_key = get(&reply, "sandbox_signkey").to_owned();
    assert_eq!(sandbox_key.len(), 32);

    let sandbox_url = format!(
        "{}{}{}",
        t.sim.primary_url(),
        wxpay::SANDBOX_PREFIX,
        Api::Micropay.path()
    );
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::PasswordFree);
    let with_real_key = post_raw(
        &t.client,
        &sandbox_url,
        signed_xml(micropay_params(&no, &code, 1), KEY, SignType::Md5),
    )
    .await
    .expect("reply")
    .params();
    assert_eq!(get(&with_real_key, "return_code"), "FAIL");
    assert!(get(&with_real_key, "return_msg").starts_with("沙箱验证签名失败"));
    let paid = post_raw(
        &t.client,
        &sandbox_url,
        signed_xml(micropay_params(&no, &code, 1), &sandbox_key, SignType::Md5),
    )
    .await
    .expect("reply")
    .params();
    assert_eq!(get(&paid, "result_code"), "SUCCESS", "{paid:?}");
    sign::verify(&paid, &ApiKey::new(&sandbox_key), SignType::Md5)
        .expect("signed with the sandbox key");
    // Sandbox amounts other than the documented cases are refused.
    let wrong_amount = post_raw(
        &t.client,
        &sandbox_url,
        signed_xml(
            micropay_params(
                &out_trade_no(),
                &auth_code_for(Behaviour::PasswordFree),
                100,
            ),
            &sandbox_key,
            SignType::Md5,
        ),
    )
    .await
    .expect("reply")
    .params();
    assert_eq!(
        get(&wrong_amount, "return_msg"),
        "沙箱支付金额(100)无效，请检查需要验收的case"
    );
    // Sandbox and production books are separate.
    assert_business_fail(&t.query(&no).await, "ORDERNOTEXIST");
    assert!(t.sim.calls().iter().any(|call| call.sandbox));
}

#[tokio::test]
async fn certificate_files_are_written_like_the_merchant_platform_issues_them() {
    let dir = std::env::temp_dir().join(format!("wxpay-sim-test-{}", rand::random::<u64>()));
    let t = spawn_with(
        Simulator::builder()
            .merchant(APPID, MCH_ID, KEY)
            .cert_dir(&dir),
    )
    .await;

    let files = t.sim.cert_files().expect("written").clone();
    let cert = std::fs::read_to_string(&files.client_cert_pem).expect("cert");
    let key = std::fs::read_to_string(&files.client_key_pem).expect("key");
    let ca = std::fs::read_to_string(&files.ca_pem).expect("ca");
    let p12 = std::fs::read(&files.client_p12).expect("p12");

    assert_eq!(files.client_cert_pem, dir.join("apiclient_cert.pem"));
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(key.contains("PRIVATE KEY"));
    assert_eq!(ca, t.sim.ca_pem());
    let store =
        p12_keystore::KeyStore::from_pkcs12(&p12, MCH_ID, p12_keystore::Pkcs12ImportPolicy::Strict)
            .expect("p12 opens with mch_id as password");
    assert!(store.private_key_chain().is_some());
    // A client configured from the files alone works.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("ca"))
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).expect("identity"))
        .build()
        .expect("client");
    let raw = post_raw(
        &client,
        &t.url(Api::Reverse),
        signed_xml(base(Some("T1")), KEY, SignType::Md5),
    )
    .await
    .expect("reply");
    assert_eq!(get(&raw.params(), "recall"), "N");
    t.sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shutdown_stops_both_listeners() {
    let t = spawn_sim().await;
    let primary = t.url(Api::OrderQuery);
    let sim = t.sim;

    sim.shutdown().await;

    let body = signed_xml(base(Some("T1")), KEY, SignType::Md5);
    assert!(post_raw(&t.client, &primary, body).await.is_err());
}

// ---------------------------------------------------------------------------------------
// time_expire, late arrival and the call log's User-Agent (several proxies on one account)
// ---------------------------------------------------------------------------------------

/// `time` as WeChat writes it: `yyyyMMddHHmmss`, Beijing time.
fn wechat_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.with_timezone(&wxpay::sim::clock::beijing())
        .format("%Y%m%d%H%M%S")
        .to_string()
}

fn micropay_expiring(out_trade_no: &str, behaviour: Behaviour, time_expire: &str) -> Params {
    let mut params = micropay_params(out_trade_no, &auth_code_for(behaviour), 100);
    params.insert("time_expire", time_expire);
    params
}

#[tokio::test]
async fn a_micropay_arriving_after_its_time_expire_is_refused_and_leaves_no_order() {
    // Arrange
    let t = spawn_sim().await;
    let now = chrono::Utc::now();
    let late = out_trade_no();
    let on_time = out_trade_no();
    let garbled = out_trade_no();

    // Act
    let refused = t
        .call(
            Api::Micropay,
            micropay_expiring(
                &late,
                Behaviour::PasswordFree,
                &wechat_time(now - chrono::Duration::seconds(2)),
            ),
        )
        .await;
    let paid = t
        .call(
            Api::Micropay,
            micropay_expiring(
                &on_time,
                Behaviour::PasswordFree,
                &wechat_time(now + chrono::Duration::seconds(90)),
            ),
        )
        .await;
    let bad = t
        .call(
            Api::Micropay,
            micropay_expiring(&garbled, Behaviour::PasswordFree, "2026-12-01 08:00"),
        )
        .await;

    // Assert
    assert_business_fail(&refused, "ORDERCLOSED");
    assert_business_fail(&t.query(&late).await, "ORDERNOTEXIST");
    assert!(t.sim.order(&late).is_none());
    assert_eq!(get(&paid, "result_code"), "SUCCESS");
    assert_eq!(get(&t.query(&on_time).await, "trade_state"), "SUCCESS");
    assert_business_fail(&bad, "PARAM_ERROR");
    assert!(t.sim.order(&garbled).is_none());
    let calls = t.sim.calls();
    let expired: Vec<Option<bool>> = calls
        .iter()
        .filter(|call| call.endpoint == "micropay")
        .map(|call| call.expired())
        .collect();
    assert_eq!(expired, vec![Some(true), Some(false), None]);
}

#[tokio::test]
async fn a_reverse_of_an_unseen_order_keeps_no_tombstone_so_a_late_micropay_charges_it() {
    // Arrange: the dangerous sequence of two proxies — the new owner reverses an order the
    // old owner's micropay has not yet delivered.
    let t = spawn_sim().await;
    let no = out_trade_no();

    // Act
    let reverse = t.reverse(&no).await;
    let late_micropay = t
        .micropay(&no, &auth_code_for(Behaviour::PasswordFree), 500)
        .await;

    // Assert: the reverse said "nothing to recall", and the later micropay created and
    // charged the order all the same.
    assert_eq!(get(&reverse, "result_code"), "SUCCESS");
    assert_eq!(get(&reverse, "recall"), "N");
    assert_eq!(get(&late_micropay, "result_code"), "SUCCESS");
    let query = t.query(&no).await;
    assert_eq!(get(&query, "trade_state"), "SUCCESS");
    assert_eq!(get(&query, "total_fee"), "500");
    let order = t.sim.order(&no).expect("the order exists");
    assert_eq!(order.trade_state, "SUCCESS");
}

#[tokio::test]
async fn a_held_micropay_arrives_late_and_meets_its_time_expire() {
    // Arrange: a time_expire less than a second away (whole seconds), on the sender's real
    // clock; the simulated clock runs 1000× faster and must not matter.
    let t = spawn_with(
        Simulator::builder()
            .merchant(APPID, MCH_ID, KEY)
            .time_scale(1000.0),
    )
    .await;
    let no = out_trade_no();
    let in_time = out_trade_no();
    let expire = wechat_time(chrono::Utc::now() + chrono::Duration::seconds(1));
    t.sim
        .inject_fault(Api::Micropay, Fault::Hold { ms: 1100 }, 1);

    // Act
    let reply = t
        .call(
            Api::Micropay,
            micropay_expiring(&no, Behaviour::PasswordFree, &expire),
        )
        .await;
    let later = wechat_time(chrono::Utc::now() + chrono::Duration::seconds(2));
    let unheld = t
        .call(
            Api::Micropay,
            micropay_expiring(&in_time, Behaviour::PasswordFree, &later),
        )
        .await;

    // Assert
    assert_business_fail(&reply, "ORDERCLOSED");
    assert!(t.sim.order(&no).is_none());
    assert_eq!(get(&unheld, "result_code"), "SUCCESS");
    let calls = t.sim.calls();
    assert_eq!(calls[0].time_expire.as_deref(), Some(expire.as_str()));
    assert_eq!(calls[0].expired(), Some(true));
    assert_eq!(calls[1].expired(), Some(false));
    assert!(t.sim.pending_faults().is_empty());
}

#[tokio::test]
async fn the_call_log_records_each_calls_user_agent_and_instance() {
    // Arrange
    let t = spawn_sim().await;
    let no = out_trade_no();
    let till = |name: &str| {
        let ca = reqwest::Certificate::from_pem(t.sim.ca_pem().as_bytes()).expect("ca pem");
        let identity =
            reqwest::Identity::from_pem(t.sim.client_identity().identity_pem().as_bytes())
                .expect("identity pem");
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(identity)
            .user_agent(format!("paycode-proxy/0.1.0 ({name})"))
            .build()
            .expect("client")
    };

    // Act
    for (client, api, params) in [
        (
            till("till-1"),
            Api::Micropay,
            micropay_params(&no, &auth_code_for(Behaviour::PasswordFree), 1),
        ),
        (till("till-2"), Api::OrderQuery, base(Some(&no))),
    ] {
        post_raw(&client, &t.url(api), signed_xml(params, KEY, SignType::Md5))
            .await
            .expect("reply");
    }
    t.query(&no).await;

    // Assert
    let calls = t.sim.calls();
    let seen: Vec<(&str, Option<&str>)> = calls
        .iter()
        .map(|call| (call.endpoint.as_str(), call.instance()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("micropay", Some("till-1")),
            ("orderquery", Some("till-2")),
            ("orderquery", None),
        ]
    );
    assert_eq!(
        calls[0].user_agent.as_deref(),
        Some("paycode-proxy/0.1.0 (till-1)")
    );
}

#[tokio::test]
async fn a_held_micropay_still_arrives_after_its_client_gave_up() {
    // Arrange
    let t = spawn_sim().await;
    let no = out_trade_no();
    let impatient = http_client(&t.sim, true, Some(Duration::from_millis(200)));
    t.sim
        .inject_fault(Api::Micropay, Fault::Hold { ms: 500 }, 1);

    // Act
    let error = post_raw(
        &impatient,
        &t.url(Api::Micropay),
        signed_xml(
            micropay_params(&no, &auth_code_for(Behaviour::PasswordFree), 1),
            KEY,
            SignType::Md5,
        ),
    )
    .await
    .err()
    .expect("the client times out");
    let before = t.sim.order(&no);
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Assert: nothing had arrived when the client gave up; then the order came and was paid.
    assert!(error.is_timeout());
    assert!(before.is_none());
    assert_eq!(get(&t.query(&no).await, "trade_state"), "SUCCESS");
}

// ---------------------------------------------------------------------------------------
// Bills for reconciliation: injected discrepancies, provider scope, the lost paid reply
// ---------------------------------------------------------------------------------------

/// Moves the simulated clock to 10:00 (Beijing) of the day after today, when today's bill is
/// ready, and returns today as `yyyyMMdd`.
fn make_todays_bill_ready(t: &TestSim) -> String {
    let beijing = wxpay::sim::clock::beijing();
    let today = t.sim.now().with_timezone(&beijing).date_naive();
    let ready = (today + chrono::Duration::days(1))
        .and_hms_opt(10, 0, 0)
        .and_then(|time| time.and_local_timezone(beijing).single())
        .expect("a time")
        .to_utc();
    t.sim
        .advance((ready - t.sim.now()).to_std().expect("later"));
    today.format("%Y%m%d").to_string()
}

async fn download_bill(t: &TestSim, date: &str, sub_mch_id: Option<&str>) -> wxpay::messages::Bill {
    let mut params = base(None);
    params.insert("bill_date", date);
    params.insert_opt("sub_mch_id", sub_mch_id);
    let raw = post_raw(
        &t.client,
        &t.url(Api::DownloadBill),
        signed_xml(params, KEY, SignType::Md5),
    )
    .await
    .expect("reply");
    wxpay::messages::Bill::parse(&raw.body).unwrap_or_else(|error| panic!("{error}: {}", raw.body))
}

#[tokio::test]
async fn injected_discrepancies_are_on_the_bill_and_listed() {
    use wxpay::sim::{DiscrepancyKind, Injection};
    let t = spawn_sim().await;
    let paid = out_trade_no();
    t.micropay(&paid, &auth_code_for(Behaviour::PasswordFree), 1000)
        .await;

    // (a) over the HTTP control API, (b)–(d) as Rust calls.
    let control = format!("{}/_sim/discrepancies", t.sim.primary_url());
    let unseen: serde_json::Value = t
        .client
        .post(&control)
        .header("content-type", "application/json")
        .body(r#"{"kind": "unseen_payment", "out_trade_no": "PC-UNSEEN-1", "total_fee": 321}"#)
        .send()
        .await
        .expect("reply")
        .text()
        .await
        .map(|text| serde_json::from_str(&text).expect("json"))
        .expect("a body");
    assert_eq!(unseen["kind"], "unseen_payment");
    let online = t
        .sim
        .inject_discrepancy(Injection::ForeignTrade {
            mch_id: None,
            sub_mch_id: None,
            trade_type: "JSAPI".into(),
            total_fee: 4500,
        })
        .expect("injected");
    let outside = t
        .sim
        .inject_discrepancy(Injection::OutsideRefund {
            mch_id: None,
            out_trade_no: paid.clone(),
            refund_fee: 300,
        })
        .expect("injected");
    let differs = t
        .sim
        .inject_discrepancy(Injection::AmountDifference {
            mch_id: None,
            out_trade_no: paid.clone(),
            bill_total_fee: 990,
        })
        .expect("injected");
    // Refused injections name the problem and record nothing.
    assert!(
        t.sim
            .inject_discrepancy(Injection::OutsideRefund {
                mch_id: None,
                out_trade_no: paid.clone(),
                refund_fee: 701,
            })
            .is_err()
    );
    let refused = t
        .client
        .post(&control)
        .header("content-type", "application/json")
        .body(r#"{"kind": "foreign_trade", "trade_type": "MICROPAY", "total_fee": 1}"#)
        .send()
        .await
        .expect("reply");
    assert_eq!(refused.status(), 400);

    let listed = t.sim.injected_discrepancies();
    let kinds: Vec<DiscrepancyKind> = listed.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DiscrepancyKind::UnseenPayment,
            DiscrepancyKind::ForeignTrade,
            DiscrepancyKind::OutsideRefund,
            DiscrepancyKind::AmountDifference
        ]
    );
    assert_eq!(listed[1], online);
    assert_eq!(listed[2], outside);
    assert_eq!(differs.bill_fee, 990);
    assert_eq!(differs.actual_fee, 1000);

    // The unseen payment and the outside refund are real at WeChat.
    assert_eq!(get(&t.query("PC-UNSEEN-1").await, "trade_state"), "SUCCESS");
    assert_eq!(
        get(&t.query(&paid).await, "total_fee"),
        "1000",
        "charged, whatever the bill says"
    );

    let today = make_todays_bill_ready(&t);
    assert_eq!(outside.bill_date.format("%Y%m%d").to_string(), today);
    let bill = download_bill(&t, &today, None).await;
    let row = |out_trade_no: &str, state: &str| {
        bill.rows
            .iter()
            .find(|row| row.out_trade_no == out_trade_no && row.trade_state == state)
            .unwrap_or_else(|| panic!("no {state} row for {out_trade_no}: {bill:?}"))
    };
    assert_eq!(
        row("PC-UNSEEN-1", "SUCCESS").total_fee,
        Some(paycode_api::Fen(321))
    );
    assert_eq!(row("PC-UNSEEN-1", "SUCCESS").trade_type, "MICROPAY");
    assert_eq!(row(&online.out_trade_no, "SUCCESS").trade_type, "JSAPI");
    assert_eq!(row(&paid, "SUCCESS").total_fee, Some(paycode_api::Fen(990)));
    let refund = row(&paid, "REFUND");
    assert_eq!(Some(&refund.out_refund_no), outside.out_refund_no.as_ref());
    assert_eq!(refund.refund_fee, paycode_api::Fen(300));
    assert_eq!(bill.rows.len(), 4);
}

#[tokio::test]
async fn a_providers_bill_lists_its_sub_merchants_and_a_scoped_one_only_its_own() {
    use wxpay::sim::Injection;
    let t = spawn_with(
        Simulator::builder()
            .provider(APPID, MCH_ID, KEY, &["1900000101", "1900000102"])
            .bill_format(wxpay::sim::BillFormat::Legacy),
    )
    .await;
    for (sub, total_fee) in [("1900000101", 100), ("1900000102", 200)] {
        t.sim
            .inject_discrepancy(Injection::UnseenPayment {
                mch_id: None,
                sub_mch_id: Some(sub.into()),
                out_trade_no: None,
                total_fee,
            })
            .expect("injected");
    }
    assert!(
        t.sim
            .inject_discrepancy(Injection::UnseenPayment {
                mch_id: None,
                sub_mch_id: None,
                out_trade_no: None,
                total_fee: 1,
            })
            .is_err(),
        "a provider's order needs a sub-merchant"
    );
    let today = make_todays_bill_ready(&t);

    let all = download_bill(&t, &today, None).await;
    let mut subs: Vec<&str> = all.rows.iter().map(|row| row.sub_mch_id.as_str()).collect();
    subs.sort_unstable();
    assert_eq!(subs, ["1900000101", "1900000102"]);
    assert_eq!(
        all.rows[0].total_fee, None,
        "the older format, as configured"
    );
    let one = download_bill(&t, &today, Some("1900000102")).await;
    assert_eq!(one.rows.len(), 1);
    assert_eq!(one.rows[0].sub_mch_id, "1900000102");
    assert_eq!(one.rows[0].settlement_total_fee, paycode_api::Fen(200));
}

#[tokio::test]
async fn a_lost_paid_reply_charges_while_queries_say_no_order_until_the_bill_is_out() {
    use wxpay::sim::DiscrepancyKind;
    let t = spawn_sim().await;
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::LostPaidReply);
    let pay = || signed_xml(micropay_params(&no, &code, 777), KEY, SignType::Md5);

    assert!(
        post_raw(&t.client, &t.url(Api::Micropay), pay())
            .await
            .is_err(),
        "no reply"
    );
    assert!(
        post_raw(&t.client, &t.url(Api::Micropay), pay())
            .await
            .is_err(),
        "nor on a resubmission"
    );
    assert_business_fail(&t.query(&no).await, "ORDERNOTEXIST");
    let reversed = t.reverse(&no).await;
    assert_eq!(get(&reversed, "result_code"), "SUCCESS");
    assert_eq!(get(&reversed, "recall"), "N");

    // WeChat kept the money: the order is paid, the injection is listed, the bill shows it.
    assert_eq!(t.sim.order(&no).expect("the order").trade_state, "SUCCESS");
    let listed = t.sim.injected_discrepancies();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, DiscrepancyKind::LostPaidReply);
    assert_eq!(listed[0].out_trade_no, no);
    let today = make_todays_bill_ready(&t);
    let bill = download_bill(&t, &today, None).await;
    assert_eq!(bill.rows.len(), 1);
    assert_eq!(bill.rows[0].out_trade_no, no);
    assert_eq!(bill.rows[0].trade_state, "SUCCESS");
    // Once the bill is out, WeChat's queries agree with it.
    assert_eq!(get(&t.query(&no).await, "trade_state"), "SUCCESS");
}

#[tokio::test]
async fn a_payment_created_before_midnight_and_paid_after_is_on_the_next_days_bill() {
    let beijing = wxpay::sim::clock::beijing();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
        .and_then(|day| day.and_hms_opt(23, 59, 50))
        .and_then(|time| time.and_local_timezone(beijing).single())
        .expect("a time")
        .to_utc();
    let t = spawn_with(
        Simulator::builder()
            .merchant(APPID, MCH_ID, KEY)
            .start_time(start),
    )
    .await;
    let no = out_trade_no();
    let code = auth_code_for(Behaviour::PasswordThenConfirm {
        after: Duration::from_secs(15),
    });
    assert_business_fail(&t.micropay(&no, &code, 500).await, "USERPAYING");
    // Two days later, at noon: both bills are ready.
    t.sim.advance(Duration::from_secs(36 * 3600));
    assert_eq!(get(&t.query(&no).await, "trade_state"), "SUCCESS");

    let mut params = base(None);
    params.insert("bill_date", "20261128");
    let first_day = post_raw(
        &t.client,
        &t.url(Api::DownloadBill),
        signed_xml(params, KEY, SignType::Md5),
    )
    .await
    .expect("reply")
    .params();
    assert_eq!(get(&first_day, "return_msg"), "No Bill Exist");
    let bill = download_bill(&t, "20261129", None).await;
    assert_eq!(bill.rows.len(), 1);
    assert_eq!(bill.rows[0].out_trade_no, no);
    assert_eq!(bill.rows[0].trade_time, "2026-11-29 00:00:05");
}
