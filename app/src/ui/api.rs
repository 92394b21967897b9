//! The only module that knows the proxy's URLs: JSON over `fetch`, with the terminal's bearer
//! token and a timeout on every call.

use paycode_api::{
    APPROVAL_HEADER, ApprovalRequest, CreatePayment, CreateRefund, DemoPairing, ErrorBody, Paired,
    PairingRequest, Payment, PaymentList, Refund, TerminalInfo,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Request, RequestInit, Response};

use paycode_api::books::{
    BooksDayDetail, BooksStatus, ExplainMismatch, MismatchEntry, MismatchQueried,
};
use paycode_api::{Approval, AttentionList, SettleRequest, Settlement};

use crate::model::remote::ApiFailure;
use crate::ui::browser;

/// How long the proxy holds a long-poll open.
pub const LONG_POLL_WAIT_S: u32 = 25;
/// Timeout of an ordinary call.
const CALL_TIMEOUT_MS: u32 = 15_000;
/// Timeout of a long-poll: the wait plus slack.
const POLL_TIMEOUT_MS: u32 = (LONG_POLL_WAIT_S + 10) * 1000;

async fn call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
    timeout_ms: u32,
) -> Result<T, ApiFailure> {
    approved_call(method, path, token, None, body, timeout_ms).await
}

/// [`call`] with a manager's approval token in the `Paycode-Approval` header.
async fn approved_call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    token: Option<&str>,
    approval: Option<&str>,
    body: Option<String>,
    timeout_ms: u32,
) -> Result<T, ApiFailure> {
    let text = call_text(method, path, token, approval, body, timeout_ms).await?;
    // A body that is not what the contract says is as good as no answer: the request may
    // have taken effect, so it is retried like a network failure.
    serde_json::from_str(&text).map_err(|_| ApiFailure::Network)
}

/// The body of a successful answer. Not generic, so the request and its error handling
/// exist once in the page's wasm rather than once per answer type.
async fn call_text(
    method: &str,
    path: &str,
    token: Option<&str>,
    approval: Option<&str>,
    body: Option<String>,
    timeout_ms: u32,
) -> Result<String, ApiFailure> {
    let init = RequestInit::new();
    init.set_method(method);
    let controller = AbortController::new().map_err(|_| ApiFailure::Network)?;
    init.set_signal(Some(&controller.signal()));
    if let Some(body) = &body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(|_| ApiFailure::Network)?;
    let headers = request.headers();
    let _ = headers.set("Accept", "application/json");
    if body.is_some() {
        let _ = headers.set("Content-Type", "application/json");
    }
    if let Some(token) = token {
        let _ = headers.set("Authorization", &format!("Bearer {token}"));
    }
    if let Some(approval) = approval {
        let _ = headers.set(APPROVAL_HEADER, approval);
    }
    let timer = browser::set_timeout(timeout_ms, move || controller.abort());
    let result = fetch_text(request).await;
    browser::clear_timeout(timer);
    result
}

async fn fetch_text(request: Request) -> Result<String, ApiFailure> {
    let response: Response = JsFuture::from(browser::window().fetch_with_request(&request))
        .await
        .map_err(|_| ApiFailure::Network)?
        .dyn_into()
        .map_err(|_| ApiFailure::Network)?;
    let status = response.status();
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map_err(|_| ApiFailure::Network)?
            .as_string()
            .unwrap_or_default(),
        Err(_) => return Err(ApiFailure::Network),
    };
    if response.ok() {
        Ok(text)
    } else {
        Err(ApiFailure::Http {
            status,
            body: serde_json::from_str::<ErrorBody>(&text).ok(),
        })
    }
}

fn json<B: Serialize>(body: &B) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// `GET /api/v1/demo/pairing` (demo mode, loopback only).
pub async fn demo_pairing() -> Result<DemoPairing, ApiFailure> {
    call("GET", "/api/v1/demo/pairing", None, None, CALL_TIMEOUT_MS).await
}

/// `POST /api/v1/pairing`: a one-time pairing code for the terminal's new token.
pub async fn pair(code: &str) -> Result<Paired, ApiFailure> {
    let body = json(&PairingRequest {
        code: code.to_owned(),
    });
    call("POST", "/api/v1/pairing", None, Some(body), CALL_TIMEOUT_MS).await
}

/// `GET /api/v1/terminal`: who the token belongs to.
pub async fn terminal(token: &str) -> Result<TerminalInfo, ApiFailure> {
    call(
        "GET",
        "/api/v1/terminal",
        Some(token),
        None,
        CALL_TIMEOUT_MS,
    )
    .await
}

/// `POST /api/v1/payments`.
pub async fn create_payment(token: &str, body: &CreatePayment) -> Result<Payment, ApiFailure> {
    call(
        "POST",
        "/api/v1/payments",
        Some(token),
        Some(json(body)),
        CALL_TIMEOUT_MS,
    )
    .await
}

/// `GET /api/v1/payments/{id}?wait=25&after_version=N`: answers when the version moves past
/// `after_version`, or after the wait.
pub async fn wait_for_payment(
    token: &str,
    payment_id: &str,
    after_version: u64,
) -> Result<Payment, ApiFailure> {
    let path = format!(
        "/api/v1/payments/{}?wait={LONG_POLL_WAIT_S}&after_version={after_version}",
        browser::encode_component(payment_id)
    );
    call("GET", &path, Some(token), None, POLL_TIMEOUT_MS).await
}

/// `POST /api/v1/payments/{id}/cancel`.
pub async fn cancel_payment(token: &str, payment_id: &str) -> Result<Payment, ApiFailure> {
    let path = format!(
        "/api/v1/payments/{}/cancel",
        browser::encode_component(payment_id)
    );
    call("POST", &path, Some(token), None, CALL_TIMEOUT_MS).await
}

/// `POST /api/v1/payments/{id}/refunds`.
/// `approval`: a manager's approval token, once the proxy asked for one
/// (`APPROVAL_REQUIRED`).
pub async fn create_refund(
    token: &str,
    payment_id: &str,
    body: &CreateRefund,
    approval: Option<&str>,
) -> Result<Refund, ApiFailure> {
    let path = format!(
        "/api/v1/payments/{}/refunds",
        browser::encode_component(payment_id)
    );
    approved_call(
        "POST",
        &path,
        Some(token),
        approval,
        Some(json(body)),
        CALL_TIMEOUT_MS,
    )
    .await
}

/// The one field of `paycode_api::Approval` the page uses: reading only it keeps the
/// rest's deserializer out of the main bundle.
#[derive(serde::Deserialize)]
struct ApprovalToken {
    approval: String,
}

/// `POST /api/v1/approvals`: a manager's name and PIN for an approval token (`pca_…`).
pub async fn approve(token: &str, body: &ApprovalRequest) -> Result<String, ApiFailure> {
    let answer: ApprovalToken = call(
        "POST",
        "/api/v1/approvals",
        Some(token),
        Some(json(body)),
        CALL_TIMEOUT_MS,
    )
    .await?;
    Ok(answer.approval)
}

/// `GET /api/v1/payments?date=…&terminal=…`; both optional (today, all terminals).
pub async fn list_payments(
    token: &str,
    date: Option<&str>,
    terminal: Option<&str>,
) -> Result<PaymentList, ApiFailure> {
    let mut query = Vec::new();
    if let Some(date) = date {
        query.push(format!("date={}", browser::encode_component(date)));
    }
    if let Some(terminal) = terminal {
        query.push(format!("terminal={}", browser::encode_component(terminal)));
    }
    let path = if query.is_empty() {
        "/api/v1/payments".to_owned()
    } else {
        format!("/api/v1/payments?{}", query.join("&"))
    };
    call("GET", &path, Some(token), None, CALL_TIMEOUT_MS).await
}

/// `POST /api/v1/approvals`, read whole: the token and how often it works (the back office
/// keeps a window approval for its next requests).
pub async fn approve_for_window(
    token: &str,
    body: &ApprovalRequest,
) -> Result<Approval, ApiFailure> {
    call(
        "POST",
        "/api/v1/approvals",
        Some(token),
        Some(json(body)),
        CALL_TIMEOUT_MS,
    )
    .await
}

/// `GET /api/v1/payments/{id}`, at once (for the refund dialog of a mismatch's payment).
pub async fn payment(token: &str, payment_id: &str) -> Result<Payment, ApiFailure> {
    let path = format!("/api/v1/payments/{}", browser::encode_component(payment_id));
    call("GET", &path, Some(token), None, CALL_TIMEOUT_MS).await
}

/// `GET /api/v1/books/status`: the banner's counts (manager and owner terminals).
pub async fn books_status(token: &str) -> Result<BooksStatus, ApiFailure> {
    call(
        "GET",
        "/api/v1/books/status",
        Some(token),
        None,
        CALL_TIMEOUT_MS,
    )
    .await
}

/// A back-office request with the approval `approval`.
async fn back_office<T: DeserializeOwned>(
    method: &str,
    path: &str,
    token: &str,
    approval: &str,
    body: Option<String>,
) -> Result<T, ApiFailure> {
    approved_call(
        method,
        path,
        Some(token),
        Some(approval),
        body,
        CALL_TIMEOUT_MS,
    )
    .await
}

fn day_path(day: &str) -> String {
    format!("/api/v1/books/days/{}", browser::encode_component(day))
}

/// `GET /api/v1/books/days/{date}`: every account's report of the day, with statuses.
pub async fn books_day(
    token: &str,
    approval: &str,
    day: &str,
) -> Result<BooksDayDetail, ApiFailure> {
    back_office("GET", &day_path(day), token, approval, None).await
}

/// `GET /api/v1/books/days/{date}/csv`: the day as CSV text.
pub async fn books_day_csv(token: &str, approval: &str, day: &str) -> Result<String, ApiFailure> {
    let path = format!("{}/csv", day_path(day));
    call_text(
        "GET",
        &path,
        Some(token),
        Some(approval),
        None,
        CALL_TIMEOUT_MS,
    )
    .await
}

fn mismatch_path(id: &str, action: &str) -> String {
    format!(
        "/api/v1/books/mismatches/{}/{action}",
        browser::encode_component(id)
    )
}

/// `POST /api/v1/books/mismatches/{id}/query`: ask WeChat now; settled from its verified
/// reply only.
pub async fn query_mismatch(
    token: &str,
    approval: &str,
    id: &str,
) -> Result<MismatchQueried, ApiFailure> {
    back_office("POST", &mismatch_path(id, "query"), token, approval, None).await
}

/// `POST /api/v1/books/mismatches/{id}/explain`: close it with a note.
pub async fn explain_mismatch(
    token: &str,
    approval: &str,
    id: &str,
    body: &ExplainMismatch,
) -> Result<MismatchEntry, ApiFailure> {
    back_office(
        "POST",
        &mismatch_path(id, "explain"),
        token,
        approval,
        Some(json(body)),
    )
    .await
}

/// `GET /api/v1/needs-attention`: the store's payments whose outcome is unknown.
pub async fn needs_attention(token: &str, approval: &str) -> Result<AttentionList, ApiFailure> {
    back_office("GET", "/api/v1/needs-attention", token, approval, None).await
}

/// `POST /api/v1/payments/{id}/settle`: query WeChat now and settle from its verified answer.
pub async fn settle_payment(
    token: &str,
    approval: &str,
    payment_id: &str,
    body: &SettleRequest,
) -> Result<Settlement, ApiFailure> {
    let path = format!(
        "/api/v1/payments/{}/settle",
        browser::encode_component(payment_id)
    );
    back_office("POST", &path, token, approval, Some(json(body))).await
}
