//! [`Cashier`]: the proxy's JSON API (`/api/v1`) as a cashier terminal calls it.
//!
//! The typed helpers (`pay`, `settled`, …) assert the status they expect and panic with the
//! proxy's answer otherwise; the `*_raw` forms return a [`Reply`] for tests of bad input.

use std::time::Duration;

use paycode_api::{
    APPROVAL_HEADER, Approval, ErrorBody, Payment, PaymentList, PaymentState, Refund, TerminalInfo,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::BoxError;

/// The longest any wait for a payment's state may take in real time before the test fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(15);

/// An HTTP answer: status and body (JSON, or the text wrapped in a JSON string).
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

impl Reply {
    /// The body as `T`, panicking with the reply when it is not one.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|error| panic!("unexpected body ({error}): {self:?}"))
    }

    /// The body as the proxy's [`ErrorBody`].
    pub fn error(&self) -> ErrorBody {
        self.json()
    }

    /// Asserts the status, and returns the body as `T`.
    pub fn expect<T: DeserializeOwned>(&self, status: StatusCode) -> T {
        assert_eq!(self.status, status, "unexpected reply: {self:?}");
        self.json()
    }

    /// Asserts an error reply: its status, stable `code` and `field`.
    pub fn assert_error(&self, status: StatusCode, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "unexpected reply: {self:?}");
        let error = self.error();
        assert_eq!(error.code, code, "unexpected error: {error:?}");
        assert_eq!(error.field.as_deref(), field, "unexpected error: {error:?}");
        assert!(!error.message.is_empty(), "an error explains itself");
    }
}

/// Asserts that of two racing requests with one idempotency key, one created the resource
/// (201) and the other was answered with it (200), and returns both bodies as `T`.
pub fn created_and_replayed<T: DeserializeOwned>(first: &Reply, second: &Reply) -> (T, T) {
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CREATED],
        "{first:?} {second:?}"
    );
    (first.json(), second.json())
}

/// A terminal's view of the proxy: its base address and bearer token, and the manager
/// (name and PIN) who approves its refunds, if any.
#[derive(Clone, Debug)]
pub struct Cashier {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    approver: Option<(String, String)>,
}

impl Cashier {
    /// A cashier calling the proxy at `base` (`http://127.0.0.1:PORT`) with `token`.
    pub fn new(base: &str, token: Option<&str>) -> Cashier {
        Cashier {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            approver: None,
        }
    }

    /// This cashier with `manager` (and their `pin`) at the counter: [`Cashier::refund`]
    /// and [`Cashier::refund_raw`] ask them for an approval first, as the app does.
    pub fn with_approver(mut self, manager: &str, pin: &str) -> Cashier {
        self.approver = Some((manager.to_owned(), pin.to_owned()));
        self
    }

    /// The body of `POST /approvals` for `action` from this cashier's approver, if it has
    /// one.
    pub fn approval_body(&self, action: &str) -> Option<Value> {
        let (manager, pin) = self.approver.as_ref()?;
        Some(json!({"manager": manager, "pin": pin, "action": action, "reason": "测试"}))
    }

    /// `POST /approvals` for `action` with `manager`'s `pin`.
    pub async fn approve_raw(&self, manager: &str, pin: &str, action: &str) -> Reply {
        self.post_json(
            "/approvals",
            &json!({"manager": manager, "pin": pin, "action": action, "reason": "测试"}),
        )
        .await
    }

    /// An approval token for `action` from this cashier's approver (expects 201).
    pub async fn approve(&self, action: &str) -> String {
        let (manager, pin) = self
            .approver
            .as_ref()
            .expect("a cashier with an approver (World gives every cashier one)");
        let approval: Approval = self
            .approve_raw(manager, pin, action)
            .await
            .expect(StatusCode::CREATED);
        approval.approval
    }

    /// `GET /terminal`: who this cashier is.
    pub async fn terminal(&self) -> TerminalInfo {
        self.get_raw("/terminal").await.expect(StatusCode::OK)
    }

    /// `method path` with the `Paycode-Approval` header and an optional JSON body.
    pub async fn send_approved(
        &self,
        method: reqwest::Method,
        path: &str,
        approval: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.request(method, path).header(APPROVAL_HEADER, approval);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        Cashier::send(request).await
    }

    /// The bearer token this cashier sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The proxy's base address (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the proxy answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// `method path` with an optional JSON body, without panicking on transport errors (for
    /// soaks, where the proxy is killed mid-request): the reply and its raw body text, or
    /// the transport error. `limit` bounds the whole exchange.
    pub async fn try_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        limit: Duration,
    ) -> Result<(Reply, String), reqwest::Error> {
        self.try_request_approved(method, path, body, None, limit)
            .await
    }

    /// [`Cashier::try_request`] with a manager's approval in the `Paycode-Approval` header.
    pub async fn try_request_approved(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        approval: Option<&str>,
        limit: Duration,
    ) -> Result<(Reply, String), reqwest::Error> {
        let mut request = self.request(method, path).timeout(limit);
        if let Some(approval) = approval {
            request = request.header(APPROVAL_HEADER, approval);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Ok((Reply { status, body }, text))
    }

    /// `POST path` with a raw body and content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<String>) -> Reply {
        let request = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.into());
        Cashier::send(request).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    /// `GET path`.
    pub async fn get_raw(&self, path: &str) -> Reply {
        Cashier::send(self.request(reqwest::Method::GET, path)).await
    }

    /// `POST /payments` with `attempt_id`, `amount_fen` and `auth_code`.
    pub async fn create_raw(&self, attempt_id: &str, amount_fen: u64, auth_code: &str) -> Reply {
        self.post_json(
            "/payments",
            &json!({"attempt_id": attempt_id, "amount_fen": amount_fen, "auth_code": auth_code}),
        )
        .await
    }

    /// Takes a new payment (a fresh attempt id) and expects 201.
    pub async fn pay(&self, amount_fen: u64, auth_code: &str) -> Payment {
        self.create_raw(&new_attempt_id(), amount_fen, auth_code)
            .await
            .expect(StatusCode::CREATED)
    }

    /// `GET /payments/{id}`, at once.
    pub async fn payment(&self, id: &str) -> Payment {
        self.get_raw(&format!("/payments/{id}"))
            .await
            .expect(StatusCode::OK)
    }

    /// The long-poll: `GET /payments/{id}?wait=..&after_version=..`.
    pub async fn poll(&self, id: &str, after_version: u64, wait_secs: u64) -> Payment {
        self.get_raw(&format!(
            "/payments/{id}?wait={wait_secs}&after_version={after_version}"
        ))
        .await
        .expect(StatusCode::OK)
    }

    /// Long-polls `payment` until `done` holds, failing the test after [`WAIT_LIMIT`].
    pub async fn wait_until(
        &self,
        payment: &Payment,
        what: &str,
        done: impl Fn(&Payment) -> bool,
    ) -> Payment {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut current = payment.clone();
        loop {
            if done(&current) {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "payment {} did not become {what} within {WAIT_LIMIT:?}; last seen: {current:#?}",
                current.id
            );
            current = self.poll(&current.id, current.version, 1).await;
        }
    }

    /// Long-polls until the payment is in `state`.
    pub async fn wait_for(&self, payment: &Payment, state: PaymentState) -> Payment {
        self.wait_until(payment, state.as_str(), |seen| seen.state == state)
            .await
    }

    /// Long-polls until the payment is settled (paid, failed or cancelled).
    pub async fn settled(&self, payment: &Payment) -> Payment {
        self.wait_until(payment, "settled", |seen| seen.state.is_settled())
            .await
    }

    /// `POST /payments/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> Reply {
        self.post_raw(&format!("/payments/{id}/cancel"), "application/json", "")
            .await
    }

    /// `POST /payments/{id}/refunds` with `refund_attempt_id` and `amount_fen`, approved by
    /// this cashier's approver when it has one (a fresh approval per request).
    pub async fn refund_raw(&self, id: &str, refund_attempt_id: &str, amount_fen: u64) -> Reply {
        let body = json!({"refund_attempt_id": refund_attempt_id, "amount_fen": amount_fen, "reason": "退货"});
        let path = format!("/payments/{id}/refunds");
        match self.approver {
            Some(_) => {
                let approval = self.approve("refund").await;
                self.send_approved(reqwest::Method::POST, &path, &approval, Some(&body))
                    .await
            }
            None => self.post_json(&path, &body).await,
        }
    }

    /// Refunds `amount_fen` of a payment under a fresh attempt id and expects 201.
    pub async fn refund(&self, id: &str, amount_fen: u64) -> Refund {
        self.refund_raw(id, &new_attempt_id(), amount_fen)
            .await
            .expect(StatusCode::CREATED)
    }

    /// `GET /payments` for today: this terminal's payments (every terminal's is a manager
    /// action).
    pub async fn today(&self) -> PaymentList {
        let own = self.terminal().await;
        self.get_raw(&format!("/payments?terminal={}", own.id))
            .await
            .expect(StatusCode::OK)
    }

    /// Takes a new payment (a fresh attempt id) without panicking (benchmarks count their
    /// errors): the created payment, or the transport error or unexpected status and body.
    pub async fn try_pay(&self, amount_fen: u64, auth_code: &str) -> Result<Payment, BoxError> {
        let body = json!({"attempt_id": new_attempt_id(), "amount_fen": amount_fen, "auth_code": auth_code});
        let request = self.request(reqwest::Method::POST, "/payments").json(&body);
        Cashier::try_json(request, "POST /payments").await
    }

    /// The long-poll ([`Cashier::poll`]) after `payment`'s version, without panicking.
    pub async fn try_poll(&self, payment: &Payment, wait_secs: u64) -> Result<Payment, BoxError> {
        let path = format!(
            "/payments/{}?wait={wait_secs}&after_version={}",
            payment.id, payment.version
        );
        let request = self.request(reqwest::Method::GET, &path);
        Cashier::try_json(request, &format!("GET /payments/{}", payment.id)).await
    }

    /// Long-polls (`wait_secs` per poll) until the payment is in `until`, without a time
    /// limit: the payment and the number of polls made, or an error when it settles in
    /// another state or a poll fails.
    pub async fn try_poll_until(
        &self,
        mut payment: Payment,
        until: PaymentState,
        wait_secs: u64,
    ) -> Result<(Payment, u32), BoxError> {
        let mut polls = 0;
        while payment.state != until {
            if payment.state.is_settled() {
                return Err(format!(
                    "payment {} settled as {} ({:?}), not {until}",
                    payment.id, payment.state, payment.failure
                )
                .into());
            }
            payment = self.try_poll(&payment, wait_secs).await?;
            polls += 1;
        }
        Ok((payment, polls))
    }

    async fn try_json<T: DeserializeOwned>(
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, BoxError> {
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{what}: {status}: {body}").into());
        }
        Ok(response.json().await?)
    }
}

/// A fresh attempt id (a random UUID).
pub fn new_attempt_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
