//! The WeChat Pay endpoints: the shared request pipeline and one file per endpoint.
//!
//! Every call goes through the same steps, in the order WeChat's gateway applies them:
//!
//! 1. route by path ([`Api::from_path`], production or `/xdc/apiv2sandbox` paths);
//! 2. record the call in the call log;
//! 3. `/secapi/*` without a client certificate → nginx's HTML 400 page;
//! 4. take an injected fault, if one is queued (some end the call right here);
//! 5. check the envelope: POST, XML, `mch_id`, `nonce_str`, `sign_type`, `sign`, then
//!    `sub_mch_id` against the merchant's kind (any failure → unsigned `return_code=FAIL`
//!    with only `return_msg`), then `appid`;
//! 6. run the endpoint against the ledger (synchronously, under the ledger lock, so a
//!    client hanging up can never leave half an operation behind);
//! 7. render the reply: fresh `nonce_str`, signed with the request's sign type; then apply
//!    the behaviour's or fault's transport effect (delay, drop, garbage, bad signature).

mod close_order;
mod download_bill;
mod get_sign_key;
mod micropay;
mod order_query;
mod refund;
mod refund_query;
mod reverse;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, Utc};

use super::clock::beijing;
use super::faults::Fault;
use super::ledger::{BookKey, CallRecord, Host};
use super::server::ConnInfo;
use super::{Merchant, SimState, random_token};
use crate::codes::Api;
use crate::params::Params;
use crate::sign::{self, ApiKey, SignType};
use crate::{SANDBOX_PREFIX, xml};

/// The router with every WeChat endpoint (production and sandbox paths), the control API
/// and the phone page.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    let mut router = Router::new();
    for api in Api::ALL {
        router = router.route(api.path(), any(wechat));
        if api != Api::GetSignKey {
            router = router.route(&format!("{SANDBOX_PREFIX}{}", api.path()), any(wechat));
        }
    }
    router
        .merge(super::control::router())
        .merge(super::phone::router())
        .fallback(not_found)
        .with_state(state)
}

/// Unknown paths get nginx's 404 page, as on the real host.
async fn not_found() -> Response {
    nginx_page(404, None)
}

/// What an endpoint decided: the reply, and what to do with the connection.
pub(crate) struct Outcome {
    pub(crate) reply: Reply,
    pub(crate) transport: Transport,
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome {
            reply,
            transport: Transport::Reply,
        }
    }
}

/// A reply before rendering.
pub(crate) enum Reply {
    /// `return_code=FAIL` with this `return_msg`, unsigned.
    Fail(String),
    /// An unsigned XML message as given (getsignkey, downloadbill errors).
    Unsigned(Params),
    /// A `return_code=SUCCESS` envelope: gets a fresh `nonce_str` and a `sign`.
    Signed {
        params: Params,
        key: ApiKey,
        sign_type: SignType,
    },
    /// A CSV bill.
    Csv(String),
    /// A gzipped CSV bill (`tar_type=GZIP`).
    Gzip(Vec<u8>),
    /// An nginx HTML error page with this status.
    Html(u16),
}

/// What happens to the connection after the endpoint ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Reply normally.
    Reply,
    /// Reply after this much real time.
    Delay(Duration),
    /// Close the connection without replying.
    Drop,
}

/// A verified request, handed to an endpoint.
pub(crate) struct Call<'a> {
    pub(crate) sim: &'a SimState,
    pub(crate) sandbox: bool,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) merchant: &'a Merchant,
    pub(crate) params: Params,
    pub(crate) sign_type: SignType,
    /// The CN of the client certificate, if one was presented.
    pub(crate) client_cn: Option<String>,
    pub(crate) now: DateTime<Utc>,
}

impl Call<'_> {
    /// The key replies are signed with: the sandbox key on sandbox paths.
    fn key(&self) -> &ApiKey {
        if self.sandbox {
            &self.merchant.sandbox_key
        } else {
            &self.merchant.key
        }
    }

    /// The books this call reads and writes.
    pub(crate) fn book_key(&self) -> BookKey {
        BookKey {
            mch_id: self.merchant.mch_id.clone(),
            sub_mch_id: self.field("sub_mch_id").map(str::to_owned),
            sandbox: self.sandbox,
        }
    }

    /// A request field, if present and not empty.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.params.get_non_empty(name)
    }

    /// A required field, or the `LACK_PARAMS` reply.
    pub(crate) fn required(&self, name: &str) -> Result<&str, Reply> {
        self.field(name)
            .ok_or_else(|| self.fail("LACK_PARAMS", &format!("缺少参数{name}")))
    }

    /// A required amount in fen: digits only, above zero. Anything else is refused at the
    /// protocol layer, as WeChat refuses `total_fee=0.12` (docs/wechat-pay.md §6.2).
    pub(crate) fn amount(&self, name: &str) -> Result<u64, Reply> {
        let value = self.required(name)?;
        match parse_fen(value) {
            Some(fen) => Ok(fen),
            None => Err(Reply::Fail(format!("请确认请求参数是否正确{name}"))),
        }
    }

    /// The SUCCESS envelope's common fields: return_code, return_msg and the echoed
    /// appid, mch_id, sub_appid, sub_mch_id and device_info.
    fn envelope(&self) -> Params {
        let mut params = Params::new();
        params.insert("return_code", "SUCCESS");
        params.insert("return_msg", "OK");
        for name in ["appid", "mch_id", "sub_appid", "sub_mch_id", "device_info"] {
            params.insert_opt(name, self.field(name));
        }
        params
    }

    /// `result_code=SUCCESS` with `fields`.
    pub(crate) fn success(&self, fields: Params) -> Reply {
        let mut params = self.envelope();
        params.insert("result_code", "SUCCESS");
        for (name, value) in fields {
            params.insert(name, value);
        }
        self.signed(params)
    }

    /// `result_code=FAIL` with `err_code` and `err_code_des`.
    pub(crate) fn fail(&self, err_code: &str, err_code_des: &str) -> Reply {
        self.fail_with(err_code, err_code_des, Params::new())
    }

    /// `result_code=FAIL` with extra fields (reverse's `recall`).
    pub(crate) fn fail_with(&self, err_code: &str, err_code_des: &str, fields: Params) -> Reply {
        let mut params = self.envelope();
        params.insert("result_code", "FAIL");
        params.insert("err_code", err_code);
        params.insert("err_code_des", err_code_des);
        for (name, value) in fields {
            params.insert(name, value);
        }
        self.signed(params)
    }

    fn signed(&self, params: Params) -> Reply {
        Reply::Signed {
            params,
            key: self.key().clone(),
            sign_type: self.sign_type,
        }
    }
}

/// Parses an amount in fen: 1–18 ASCII digits, not zero.
pub(crate) fn parse_fen(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|fen| *fen > 0)
}

/// `yyyyMMddHHmmss` in Beijing time, WeChat's timestamp format.
pub(crate) fn wechat_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&beijing())
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// The handler behind every WeChat path.
async fn wechat(
    State(sim): State<Arc<SimState>>,
    connection: Option<axum::Extension<ConnInfo>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path();
    let Some(api) = Api::from_path(path) else {
        return nginx_page(404, None);
    };
    let sandbox = path.starts_with(SANDBOX_PREFIX);
    let connection = connection.map(|axum::Extension(info)| info);

    // A body over the limit is answered like any other malformed body.
    let body = axum::body::to_bytes(body, xml::MAX_BODY_BYTES).await;
    let params = body
        .as_deref()
        .map_err(|_| ())
        .and_then(|bytes| xml::decode(bytes).map_err(|_| ()));

    // A held request arrives later: recorded, and checked against the clock, on arrival.
    // It arrives even if the client has given up waiting meanwhile (a request on the way
    // is not recalled by a client's timeout): the rest runs in a task of its own, which
    // the client hanging up does not cancel.
    let hold = sim.faults().take_hold(api);
    if let Some(hold) = hold {
        let arrival = tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            arrive(sim, api, sandbox, connection, method, headers, params).await
        });
        return arrival.await.unwrap_or_else(|_| dummy());
    }
    arrive(sim, api, sandbox, connection, method, headers, params).await
}

/// Steps 2–7 of the pipeline for a request that has arrived (see the module doc).
async fn arrive(
    sim: Arc<SimState>,
    api: Api,
    sandbox: bool,
    connection: Option<ConnInfo>,
    method: Method,
    headers: HeaderMap,
    params: Result<Params, ()>,
) -> Response {
    let host = connection.as_ref().map_or(Host::Primary, |info| info.host);
    record_call(&sim, api, params.as_ref().ok(), &headers, host, sandbox);

    let client_cert = connection
        .as_ref()
        .and_then(|info| info.client_cert.as_ref());
    if api.needs_client_certificate() && client_cert.is_none() {
        return nginx_page(400, Some("No required SSL certificate was sent"));
    }

    let fault = sim.faults().take(api);
    match (fault, &connection) {
        (Some(Fault::DropBeforeProcessing), Some(info)) => {
            info.kill.close();
            return dummy();
        }
        (Some(Fault::ConnectionReset), Some(info)) => {
            info.kill.reset();
            return dummy();
        }
        (Some(Fault::Html5xx { status }), _) => return nginx_page(status, None),
        _ => {}
    }

    let outcome = match params {
        // WeChat answers a GET with this before looking at any body.
        _ if method != Method::POST => Reply::Fail("请使用post方法".into()).into(),
        Ok(params) => {
            let client_cn = client_cert.and_then(|cert| super::pki::common_name(cert));
            process(&sim, api, sandbox, &headers, params, client_cn)
        }
        Err(()) => Reply::Fail("XML格式错误".into()).into(),
    };
    render(outcome, fault, connection.as_ref()).await
}

fn record_call(
    sim: &SimState,
    api: Api,
    params: Option<&Params>,
    headers: &HeaderMap,
    host: Host,
    sandbox: bool,
) {
    let sim_time = sim.clock.now();
    let field = |name: &str| {
        params
            .and_then(|params| params.get_non_empty(name))
            .map(str::to_owned)
    };
    let mut ledger = sim.ledger();
    let seq = ledger.calls.len() as u64 + 1;
    ledger.calls.push(CallRecord {
        seq,
        endpoint: api.name().to_owned(),
        mch_id: field("mch_id"),
        sub_mch_id: field("sub_mch_id"),
        out_trade_no: field("out_trade_no"),
        time_expire: field("time_expire"),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        sim_time,
        real_time: Utc::now(),
        host,
        sandbox,
    });
}

/// Steps 5 and 6 of the pipeline: envelope checks, then the endpoint.
fn process(
    sim: &SimState,
    api: Api,
    sandbox: bool,
    headers: &HeaderMap,
    params: Params,
    client_cn: Option<String>,
) -> Outcome {
    let Some(mch_id) = params.get_non_empty("mch_id") else {
        return Reply::Fail("缺少参数mch_id".into()).into();
    };
    let Some(merchant) = sim.merchant(mch_id) else {
        return Reply::Fail("商户号mch_id或sub_mch_id不存在".into()).into();
    };
    if params.get_non_empty("nonce_str").is_none() {
        return Reply::Fail("缺少参数nonce_str".into()).into();
    }
    let Ok(sign_type) = SignType::of(&params) else {
        return Reply::Fail("sign_type参数错误".into()).into();
    };
    // getsignkey is always signed with the real key; sandbox paths with the sandbox key.
    let key = if sandbox {
        &merchant.sandbox_key
    } else {
        &merchant.key
    };
    if sign::verify(&params, key, sign_type).is_err() {
        let message = if sandbox {
            "沙箱验证签名失败，请确认沙箱签名key是否正确（通过getsignkey调用生成）"
        } else {
            "签名错误"
        };
        return Reply::Fail(message.into()).into();
    }
    if api == Api::GetSignKey {
        return get_sign_key::handle(merchant);
    }
    if let Some(refusal) = sub_merchant_refusal(merchant, params.get_non_empty("sub_mch_id"), api) {
        return Reply::Fail(refusal.into()).into();
    }

    let call = Call {
        sim,
        sandbox,
        headers,
        merchant,
        params,
        sign_type,
        client_cn,
        now: sim.clock.now(),
    };
    // The sandbox does not check appid (docs/wechat-pay.md §1.3); production does, after the signature.
    if !sandbox {
        match call.field("appid") {
            None => return Reply::Fail("缺少参数appid".into()).into(),
            Some(appid) if appid == merchant.appid => {}
            Some(appid) if sim.merchants.iter().any(|other| other.appid == appid) => {
                return call
                    .fail("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
                    .into();
            }
            Some(_) => return call.fail("APPID_NOT_EXIST", "appid不存在").into(),
        }
    }
    match api {
        Api::Micropay => micropay::handle(&call),
        Api::OrderQuery => order_query::handle(&call).into(),
        Api::Reverse => reverse::handle(&call).into(),
        Api::Refund => refund::handle(&call).into(),
        Api::RefundQuery => refund_query::handle(&call).into(),
        Api::CloseOrder => close_order::handle(&call).into(),
        Api::DownloadBill => download_bill::handle(&call).into(),
        // Answered above, before the appid check it does not need.
        Api::GetSignKey => get_sign_key::handle(merchant),
    }
}

/// Service-provider mode (docs/wechat-pay.md §11): a provider's call must name one of its
/// own sub-merchants in `sub_mch_id`, and a direct merchant's call must not name any. The
/// refusals are `return_code=FAIL` messages, as WeChat's gateway answers them. The one
/// exception is a provider's downloadbill, whose `sub_mch_id` is optional: without it the
/// bill covers all the provider's sub-merchants (docs/books.md §1, §6).
fn sub_merchant_refusal(
    merchant: &Merchant,
    sub_mch_id: Option<&str>,
    api: Api,
) -> Option<&'static str> {
    match (merchant.provider, sub_mch_id) {
        (true, None) if api == Api::DownloadBill => None,
        (true, None) => Some("受理机构必须传入sub_mch_id"),
        (true, Some(sub)) if !merchant.sub_mch_ids.iter().any(|bound| bound == sub) => {
            Some("商户号mch_id或sub_mch_id不存在")
        }
        (false, Some(_)) => Some("普通商户不允许传sub_mch_id"),
        _ => None,
    }
}

/// Step 7: turn the outcome into a response, applying transport effects.
async fn render(outcome: Outcome, fault: Option<Fault>, connection: Option<&ConnInfo>) -> Response {
    let Outcome { reply, transport } = outcome;
    let mut response = match reply {
        Reply::Fail(return_msg) => {
            let mut params = Params::new();
            params.insert("return_code", "FAIL");
            params.insert("return_msg", return_msg);
            xml_response(xml::encode(&params))
        }
        Reply::Unsigned(params) => xml_response(xml::encode(&params)),
        Reply::Signed {
            mut params,
            key,
            sign_type,
        } => {
            params.insert("nonce_str", random_token(32));
            let signature = if fault == Some(Fault::BadSignature) {
                // Signing with another key gives a well-formed sign that does not verify.
                sign::sign(&params, &ApiKey::new(random_token(32)), sign_type)
            } else {
                sign::sign(&params, &key, sign_type)
            };
            params.insert("sign", signature);
            xml_response(xml::encode(&params))
        }
        Reply::Csv(csv) => {
            ([(header::CONTENT_TYPE, "text/plain;charset=utf-8")], csv).into_response()
        }
        // No public source shows the header WeChat sends with a gzip bill; clients tell it
        // by the gzip magic bytes (docs/books.md §6).
        Reply::Gzip(bytes) => {
            ([(header::CONTENT_TYPE, "application/x-gzip")], bytes).into_response()
        }
        Reply::Html(status) => nginx_page(status, None),
    };
    if fault == Some(Fault::GarbageXml) {
        response = xml_response(
            "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDA".into(),
        );
    }

    let drop_connection = transport == Transport::Drop || fault == Some(Fault::DropAfterCommit);
    if drop_connection {
        if let Some(info) = connection {
            info.kill.close();
            return dummy();
        }
    }
    let behaviour_delay = match transport {
        Transport::Delay(delay) => delay,
        _ => Duration::ZERO,
    };
    let delay = behaviour_delay + fault.and_then(Fault::delay).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

fn xml_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=UTF-8"),
        )],
        body,
    )
        .into_response()
}

/// The response a killed connection "sends": it never reaches the socket.
fn dummy() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// nginx's error page for `status` (any status outside 400–599 becomes 502), with the
/// optional detail line nginx prints for SSL errors.
pub(crate) fn nginx_page(status: u16, detail: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|status| status.is_client_error() || status.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let body = match detail {
        Some(detail) => format!(
            "<html>\r\n<head><title>{code} {detail}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<center>{detail}</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ),
        None => format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        body,
    )
        .into_response()
}

/// The optional-field helper used by the endpoint files: inserts `value` as a string.
pub(crate) fn put(params: &mut Params, name: &str, value: impl ToString) {
    params.insert(name, value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_positive_fen() {
        assert_eq!(parse_fen("1"), Some(1));
        assert_eq!(parse_fen("888"), Some(888));
        assert_eq!(parse_fen("0"), None);
        assert_eq!(parse_fen("0.12"), None);
        assert_eq!(parse_fen("-1"), None);
        assert_eq!(parse_fen("+1"), None);
        assert_eq!(parse_fen("99999999999999999999"), None);
        assert_eq!(parse_fen(""), None);
    }

    #[test]
    fn nginx_pages_look_like_nginx() {
        let response = nginx_page(400, Some("No required SSL certificate was sent"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(nginx_page(700, None).status(), StatusCode::BAD_GATEWAY);
    }
}
