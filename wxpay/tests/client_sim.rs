//! The crate's own [`Client`] driven against the simulator over real HTTPS.
//!
//! Where `tests/sim.rs` checks the simulator with hand-made requests, this file checks that
//! the typed client and the simulator agree end to end: signing, TLS with the simulator's CA,
//! the merchant certificate loaded from the generated files (PEM pair in some tests, PKCS#12
//! in others), reply verification and the error taxonomy. Simulated time is moved with
//! `SimHandle::advance` and `SimHandle::set_time_scale` instead of sleeping.
//!
//! Covered:
//! - every row of the customer-behaviour table (00–11) and an unmarked code: the typed
//!   micropay outcome and what `orderquery` shows afterwards;
//! - every injected fault (delay, drop before processing, connection reset, drop after
//!   commit, HTML 5xx, garbage XML, bad signature) and whether the order exists afterwards;
//! - a primary-host outage: the call goes to the backup, the fail-over counters move, and
//!   the customer is charged once;
//! - reverse: `USERPAYING` while the password prompt is open (`recall=Y`), success after the
//!   customer cancels, a paid order's money returned, `REVERSE_EXPIRE` after 7 days;
//! - refund: acceptance, idempotence on `out_refund_no`, `REFUND_FEE_MISMATCH`,
//!   `refundquery` from `PROCESSING` to `SUCCESS`, the order's `REFUND` state;
//! - closeorder on unpaid, paid and unknown orders;
//! - downloadbill: the simulator's CSV parsed by `Bill::parse`, rows and totals in fen;
//! - a wrong API key (`return_code=FAIL`), the sandbox sign key, MD5 and HMAC-SHA256.
//!
//! Run with `cargo test -p wxpay --features sim --test client_sim`.

#![cfg(feature = "sim")]

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use paycode_api::{AuthCode, Fen};
use url::Url;
use wxpay::messages::{
    Bill, BillType, CloseOrderRequest, DownloadBillRequest, MicropayRequest, MicropayResponse,
    OrderQueryRequest, OrderQueryResponse, OutRefundNo, OutTradeNo, RefundQueryBy,
    RefundQueryRequest, RefundQueryResponse, RefundRequest, RefundResponse, RefundStatus,
    ReverseRequest, ReverseResponse, TradeState, recall_requested,
};
use wxpay::sign::SignatureError;
use wxpay::sim::clock::beijing;
use wxpay::sim::{Behaviour, Fault, Host as SimHost, SimHandle, Simulator};
use wxpay::xml::XmlError;
use wxpay::{
    Api, ApiKey, BadReply, BusinessError, CallOptions, Client, ClientConfig, ClientIdentity,
    ErrCode, Error, ErrorClass, Host, MaybeSent, Result, SignType,
};

const APPID: &str = "wxd930ea5d5a258f4f";
const MCH_ID: &str = "10000100";
const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// The read timeout of calls that are meant to time out: far below the simulator's delays.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

/// How long an injected delay holds back the reply, in real milliseconds.
const DELAY_MS: u64 = 1500;

/// Simulated time from a refund request until it succeeds (the simulator's default).
const REFUND_DELAY: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Where the client certificate comes from.
#[derive(Clone, Copy, Debug)]
enum Identity {
    /// `apiclient_cert.pem` and `apiclient_key.pem`, via `ClientIdentity::from_pem_files`.
    PemFiles,
    /// `apiclient_cert.p12` with the password `mch_id`, via `ClientIdentity::from_p12_file`.
    P12File,
}

/// A temporary directory for the simulator's certificate files, removed on drop.
struct CertDir(PathBuf);

impl CertDir {
    fn new() -> CertDir {
        let name = format!(
            "wxpay-client-sim-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        CertDir(std::env::temp_dir().join(name))
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir harms nobody.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulator and a client pointed at it.
struct Harness {
    sim: SimHandle,
    client: Client,
    _cert_dir: CertDir,
}

/// 12:00 Beijing time, so that the seconds and minutes the tests advance never cross into
/// the next bill day.
fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0)
        .single()
        .expect("a valid start time")
}

/// A simulator with the test merchant and a client using the PEM files.
async fn start() -> Harness {
    start_with(Identity::PemFiles, |_| {}).await
}

/// A simulator with the test merchant and a client whose configuration `adjust` may change.
async fn start_with(identity: Identity, adjust: impl FnOnce(&mut ClientConfig)) -> Harness {
    let cert_dir = CertDir::new();
    let sim = Simulator::builder()
        .merchant(APPID, MCH_ID, KEY)
        .cert_dir(&cert_dir.0)
        .start_time(start_time())
        .refund_delay(REFUND_DELAY)
        .start()
        .await
        .expect("the simulator starts");
    let mut config = client_config(&sim, identity);
    adjust(&mut config);
    let client = Client::new(config).expect("the client builds");
    Harness {
        sim,
        client,
        _cert_dir: cert_dir,
    }
}

/// A production-mode configuration for the simulator's primary and backup hosts.
fn client_config(sim: &SimHandle, identity: Identity) -> ClientConfig {
    let files = sim
        .cert_files()
        .expect("the certificate files were written");
    let identity = match identity {
        Identity::PemFiles => {
            ClientIdentity::from_pem_files(&files.client_cert_pem, &files.client_key_pem)
        }
        Identity::P12File => ClientIdentity::from_p12_file(&files.client_p12, MCH_ID),
    }
    .expect("the generated certificate files load");
    let mut config = ClientConfig::new(APPID, MCH_ID, ApiKey::new(KEY));
    config.primary_base_url = Url::parse(sim.primary_url()).expect("primary URL");
    config.backup_base_url = Some(Url::parse(sim.backup_url()).expect("backup URL"));
    config.extra_root_certificates = vec![sim.ca_pem().to_owned()];
    config.identity = Some(identity);
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_secs(5);
    config
}

fn order_no(out_trade_no: &str) -> OutTradeNo {
    OutTradeNo::new(out_trade_no).expect("a valid out_trade_no")
}

fn refund_no(out_refund_no: &str) -> OutRefundNo {
    OutRefundNo::new(out_refund_no).expect("a valid out_refund_no")
}

/// A micropay request for `code` with a device number, as a till sends it.
fn micropay(out_trade_no: &str, code: &str, total_fee: u64) -> MicropayRequest {
    let auth_code = AuthCode::parse(code).expect("a WeChat payment code");
    let mut request = MicropayRequest::new(
        order_no(out_trade_no),
        Fen(total_fee),
        auth_code,
        "测试店-超市",
        "127.0.0.1",
    );
    request.device_info = Some("POS-1".into());
    request
}

/// A well-formed payment code without the behaviour marker (digits 11–14 are `0000`).
fn unmarked_code() -> String {
    let free: u64 = rand::random::<u64>() % 100_000_000;
    let tail: u64 = rand::random::<u64>() % 10_000;
    format!("13{free:08}0000{tail:04}")
}

impl Harness {
    async fn pay(
        &self,
        out_trade_no: &str,
        behaviour: Behaviour,
        total_fee: u64,
    ) -> Result<MicropayResponse> {
        let code = self.sim.auth_code(behaviour);
        self.client
            .call(&micropay(out_trade_no, &code, total_fee))
            .await
    }

    async fn query(&self, out_trade_no: &str) -> Result<OrderQueryResponse> {
        self.client
            .call(&OrderQueryRequest {
                order: order_no(out_trade_no).into(),
            })
            .await
    }

    /// Queries an order that must exist and be in `state`.
    async fn expect_state(&self, out_trade_no: &str, state: TradeState) -> OrderQueryResponse {
        let reply = self.query(out_trade_no).await.expect("orderquery succeeds");
        assert_eq!(reply.trade_state, state, "{out_trade_no}: {:?}", reply.raw);
        assert_eq!(reply.out_trade_no.as_deref(), Some(out_trade_no));
        reply
    }

    /// Queries an order that must not exist, and checks the simulator agrees.
    async fn expect_no_order(&self, out_trade_no: &str) {
        let error = business(self.query(out_trade_no).await);
        assert_eq!(error.err_code, ErrCode::OrderNotExist);
        assert_eq!(error.class(), ErrorClass::Final);
        assert_eq!(self.sim.order(out_trade_no), None);
    }

    async fn reverse(&self, out_trade_no: &str) -> Result<ReverseResponse> {
        self.client
            .call(&ReverseRequest {
                order: order_no(out_trade_no).into(),
            })
            .await
    }

    async fn refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        total_fee: u64,
        refund_fee: u64,
    ) -> Result<RefundResponse> {
        self.client
            .call(&RefundRequest {
                order: order_no(out_trade_no).into(),
                out_refund_no: refund_no(out_refund_no),
                total_fee: Fen(total_fee),
                refund_fee: Fen(refund_fee),
                refund_desc: Some("退货".into()),
                refund_account: None,
                notify_url: None,
            })
            .await
    }

    async fn refund_query(&self, out_refund_no: &str) -> Result<RefundQueryResponse> {
        self.client
            .call(&RefundQueryRequest {
                by: RefundQueryBy::OutRefundNo(refund_no(out_refund_no)),
                offset: None,
            })
            .await
    }

    /// The bill of the simulator's current Beijing day.
    /// The bill of the test's day, once the simulated clock has reached the time WeChat
    /// makes it available (10:00 the next day, Beijing time).
    async fn bill(&self, bill_type: BillType) -> Result<Bill> {
        let ready = (self.bill_date() + chrono::Duration::days(1))
            .and_hms_opt(10, 0, 0)
            .and_then(|time| time.and_local_timezone(beijing()).single())
            .expect("a valid time")
            .to_utc();
        if let Ok(wait) = (ready - self.sim.now()).to_std() {
            self.sim.advance(wait);
        }
        let request = DownloadBillRequest {
            bill_date: self.bill_date(),
            bill_type,
        };
        self.client
            .download_bill(&request, CallOptions::default())
            .await
    }

    /// The day (Beijing time) the tests' payments are made on: the simulator starts then.
    fn bill_date(&self) -> NaiveDate {
        start_time().with_timezone(&beijing()).date_naive()
    }

    /// The simulator's trade state of an order that must exist.
    fn sim_state(&self, out_trade_no: &str) -> String {
        self.sim
            .order(out_trade_no)
            .unwrap_or_else(|| panic!("the simulator has no order {out_trade_no}"))
            .trade_state
    }
}

/// The business error of a call that must have failed with one.
fn business<T: Debug>(result: Result<T>) -> BusinessError {
    match result {
        Err(Error::Business(business)) => business,
        other => panic!("expected a business error, got {other:?}"),
    }
}

/// The "may have been sent" error of a call that must have failed with one.
fn maybe_sent<T: Debug>(result: Result<T>) -> MaybeSent {
    match result {
        Err(Error::MaybeSent(maybe_sent)) => maybe_sent,
        other => panic!("expected a MaybeSent error, got {other:?}"),
    }
}

/// Checks a micropay business error's code and class.
fn assert_micropay_error(error: &BusinessError, err_code: ErrCode, class: ErrorClass) {
    assert_eq!(error.api, Api::Micropay);
    assert_eq!(error.err_code, err_code, "{:?}", error.reply);
    assert_eq!(error.class(), class, "{err_code:?}");
}

// ---------------------------------------------------------------------------------------
// The behaviour table
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn row_00_password_free_pays_at_once() {
    let h = start().await;

    let paid = h
        .pay("ROW00", Behaviour::PasswordFree, 1230)
        .await
        .expect("a password-free customer pays");

    assert_eq!(paid.out_trade_no, "ROW00");
    assert_eq!(paid.total_fee, Fen(1230));
    assert_eq!(paid.cash_fee, Fen(1230));
    assert_eq!(paid.trade_type.as_deref(), Some("MICROPAY"));
    assert_eq!(paid.device_info.as_deref(), Some("POS-1"));
    let order = h.sim.order("ROW00").expect("the order exists");
    assert_eq!(paid.transaction_id, order.transaction_id);
    let state = h.expect_state("ROW00", TradeState::Success).await;
    let payment = state.payment.expect("a paid order has payment fields");
    assert_eq!(payment.transaction_id, paid.transaction_id);
    assert_eq!(payment.total_fee, Fen(1230));
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
    assert_eq!(h.sim.call_count(Api::OrderQuery), 1);
}

#[tokio::test]
async fn row_01_password_then_confirm_pays_after_the_delay() {
    let h = start().await;
    let code = h.sim.auth_code(Behaviour::PasswordThenConfirm {
        after: Duration::from_secs(10),
    });
    let request = micropay("ROW01", &code, 500);

    let error = business(h.client.call(&request).await);

    assert_micropay_error(&error, ErrCode::UserPaying, ErrorClass::Unknown);
    let waiting = h.expect_state("ROW01", TradeState::UserPaying).await;
    assert_eq!(waiting.payment, None);
    assert_eq!(h.sim.pending_prompts().len(), 1);
    // The customer enters the password 10 simulated seconds after the order was created.
    h.sim.advance(Duration::from_secs(11));
    let paid = h.expect_state("ROW01", TradeState::Success).await;
    let payment = paid.payment.expect("payment fields");
    assert_eq!(payment.total_fee, Fen(500));
    assert_eq!(
        payment.transaction_id,
        h.sim.order("ROW01").unwrap().transaction_id
    );
    assert!(h.sim.pending_prompts().is_empty());
    // An identical resubmission now answers from the paid order: same transaction_id.
    let again = h
        .client
        .call(&request)
        .await
        .expect("the resubmission is paid");
    assert_eq!(again.transaction_id, payment.transaction_id);
    assert_eq!(h.sim.orders().len(), 1, "no second order");
}

#[tokio::test]
async fn row_02_password_then_cancel_ends_in_payerror() {
    let h = start().await;

    let error = business(
        h.pay(
            "ROW02",
            Behaviour::PasswordThenCancel {
                after: Duration::from_secs(10),
            },
            500,
        )
        .await,
    );

    assert_micropay_error(&error, ErrCode::UserPaying, ErrorClass::Unknown);
    h.expect_state("ROW02", TradeState::UserPaying).await;
    h.sim.advance(Duration::from_secs(11));
    let failed = h.expect_state("ROW02", TradeState::PayError).await;
    assert_eq!(
        failed.trade_state_desc.as_deref(),
        Some("支付失败,请撤销订单")
    );
    assert_eq!(failed.payment, None);
}

#[tokio::test]
async fn row_03_password_waits_until_confirmed_through_the_sim_handle() {
    let h = start().await;

    let error = business(h.pay("ROW03", Behaviour::PasswordWaits, 700).await);

    assert_micropay_error(&error, ErrCode::UserPaying, ErrorClass::Unknown);
    // Simulated time alone does not resolve the prompt (short of the 45 s auto-revoke).
    h.sim.advance(Duration::from_secs(30));
    h.expect_state("ROW03", TradeState::UserPaying).await;
    let prompts = h.sim.pending_prompts();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].out_trade_no, "ROW03");
    let confirmed = h.sim.confirm_password("ROW03").expect("the prompt is open");
    assert_eq!(confirmed.trade_state, "SUCCESS");
    let paid = h.expect_state("ROW03", TradeState::Success).await;
    assert_eq!(paid.payment.expect("payment fields").total_fee, Fen(700));
}

#[tokio::test]
async fn row_04_not_enough_is_final_and_the_order_failed() {
    let h = start().await;

    let error = business(h.pay("ROW04", Behaviour::NotEnough, 900).await);

    assert_micropay_error(&error, ErrCode::NotEnough, ErrorClass::Final);
    let failed = h.expect_state("ROW04", TradeState::PayError).await;
    assert_eq!(failed.payment, None);
    assert_eq!(
        h.sim.order("ROW04").unwrap().paid_at,
        None,
        "nothing charged"
    );
}

#[tokio::test]
async fn row_05_expired_code_creates_no_order() {
    let h = start().await;

    let error = business(h.pay("ROW05", Behaviour::Expired, 900).await);

    assert_micropay_error(&error, ErrCode::AuthCodeExpire, ErrorClass::Final);
    h.expect_no_order("ROW05").await;
}

#[tokio::test]
async fn row_06_invalid_code_creates_no_order() {
    let h = start().await;

    let error = business(h.pay("ROW06", Behaviour::Invalid, 900).await);

    assert_micropay_error(&error, ErrCode::AuthCodeInvalid, ErrorClass::Final);
    h.expect_no_order("ROW06").await;
}

#[tokio::test]
async fn row_07_system_error_hides_a_completed_payment() {
    let h = start().await;

    let error = business(h.pay("ROW07", Behaviour::SystemErrorPaid, 1500).await);

    assert_micropay_error(&error, ErrCode::SystemError, ErrorClass::Unknown);
    let paid = h.expect_state("ROW07", TradeState::Success).await;
    assert_eq!(paid.payment.expect("payment fields").total_fee, Fen(1500));
}

#[tokio::test]
async fn row_08_bank_error_is_declined_later() {
    let h = start().await;

    let error = business(
        h.pay(
            "ROW08",
            Behaviour::BankError {
                decline_after: Duration::from_secs(5),
            },
            1500,
        )
        .await,
    );

    assert_micropay_error(&error, ErrCode::BankError, ErrorClass::Unknown);
    let processing = h.expect_state("ROW08", TradeState::UserPaying).await;
    assert_eq!(processing.trade_state_desc.as_deref(), Some("银行处理中"));
    h.sim.advance(Duration::from_secs(6));
    let declined = h.expect_state("ROW08", TradeState::PayError).await;
    assert_eq!(declined.payment, None);
}

#[tokio::test]
async fn row_09_slow_reply_times_out_but_the_order_is_paid() {
    let h = start().await;
    let code = h.sim.auth_code(Behaviour::SlowReply {
        delay: Some(Duration::from_secs(2)),
    });
    let started = Instant::now();

    let result = h
        .client
        .call_with(
            &micropay("ROW09", &code, 880),
            CallOptions::with_read_timeout(SHORT_TIMEOUT),
        )
        .await;

    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the client gave up at its own deadline, not at the reply"
    );
    let error = result.expect_err("no reply within the read timeout");
    assert!(error.is_outcome_unknown());
    assert_eq!(error.class(Api::Micropay), ErrorClass::Unknown);
    assert!(
        matches!(error, Error::MaybeSent(MaybeSent::Timeout(timeout)) if timeout == SHORT_TIMEOUT),
        "{error:?}"
    );
    let paid = h.expect_state("ROW09", TradeState::Success).await;
    assert_eq!(paid.payment.expect("payment fields").total_fee, Fen(880));
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
}

#[tokio::test]
async fn row_10_dropped_connection_after_commit_is_a_transport_error_and_paid() {
    let h = start().await;

    let failure = maybe_sent(h.pay("ROW10", Behaviour::DropAfterCommit, 660).await);

    assert!(matches!(failure, MaybeSent::Transport(_)), "{failure:?}");
    h.expect_state("ROW10", TradeState::Success).await;
    assert_eq!(
        h.sim.call_count(Api::Micropay),
        1,
        "the client did not resend"
    );
}

#[tokio::test]
async fn row_11_gateway_502_is_an_http_status_and_no_order() {
    let h = start().await;

    let failure = maybe_sent(h.pay("ROW11", Behaviour::Gateway502, 660).await);

    assert!(
        matches!(failure, MaybeSent::HttpStatus { status: 502 }),
        "{failure:?}"
    );
    h.expect_no_order("ROW11").await;
    // The documented follow-up: reversing an order WeChat never saw is a no-op success.
    let reversed = h
        .reverse("ROW11")
        .await
        .expect("reverse of no order succeeds");
    assert!(!reversed.recall);
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
}

#[tokio::test]
async fn unmarked_code_pays_without_password() {
    let h = start().await;

    let paid = h
        .client
        .call(&micropay("PLAIN", &unmarked_code(), 1))
        .await
        .expect("an ordinary customer pays");

    assert_eq!(paid.total_fee, Fen(1));
    let order = h.sim.order("PLAIN").expect("the order exists");
    assert_eq!(order.behaviour, "password_free");
    assert_eq!(order.trade_state, "SUCCESS");
    h.expect_state("PLAIN", TradeState::Success).await;
}

// ---------------------------------------------------------------------------------------
// Injected faults
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fault_delay_past_the_read_timeout_is_a_timeout_with_the_order_paid() {
    let h = start().await;
    h.sim
        .inject_fault(Api::Micropay, Fault::Delay { ms: DELAY_MS }, 1);
    let code = h.sim.auth_code(Behaviour::PasswordFree);

    let failure = maybe_sent(
        h.client
            .call_with(
                &micropay("DELAY", &code, 300),
                CallOptions::with_read_timeout(SHORT_TIMEOUT),
            )
            .await,
    );

    assert!(
        matches!(failure, MaybeSent::Timeout(timeout) if timeout == SHORT_TIMEOUT),
        "{failure:?}"
    );
    assert_eq!(h.sim_state("DELAY"), "SUCCESS", "processed on arrival");
    h.expect_state("DELAY", TradeState::Success).await;
    assert!(h.sim.pending_faults().is_empty());
}

#[tokio::test]
async fn fault_drop_before_processing_is_a_transport_error_without_an_order() {
    let h = start().await;
    h.sim
        .inject_fault(Api::Micropay, Fault::DropBeforeProcessing, 1);
    let request = micropay("DROPPED", &h.sim.auth_code(Behaviour::PasswordFree), 300);

    let failure = maybe_sent(h.client.call(&request).await);

    assert!(matches!(failure, MaybeSent::Transport(_)), "{failure:?}");
    assert_eq!(
        h.sim.call_count(Api::Micropay),
        1,
        "the client did not resend"
    );
    h.expect_no_order("DROPPED").await;
    // Having queried, the till may send the same payment again; now it goes through.
    let paid = h.client.call(&request).await.expect("the resend pays");
    assert_eq!(paid.total_fee, Fen(300));
    assert_eq!(h.sim.call_count(Api::Micropay), 2);
}

#[tokio::test]
async fn fault_connection_reset_is_a_transport_error_without_an_order() {
    let h = start().await;
    h.sim.inject_fault(Api::Micropay, Fault::ConnectionReset, 1);

    let failure = maybe_sent(h.pay("RESET", Behaviour::PasswordFree, 300).await);

    assert!(matches!(failure, MaybeSent::Transport(_)), "{failure:?}");
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
    h.expect_no_order("RESET").await;
}

#[tokio::test]
async fn fault_drop_after_commit_is_a_transport_error_with_the_order_paid() {
    let h = start().await;
    h.sim.inject_fault(Api::Micropay, Fault::DropAfterCommit, 1);

    let failure = maybe_sent(h.pay("COMMITTED", Behaviour::PasswordFree, 300).await);

    assert!(matches!(failure, MaybeSent::Transport(_)), "{failure:?}");
    assert_eq!(h.sim_state("COMMITTED"), "SUCCESS");
    h.expect_state("COMMITTED", TradeState::Success).await;
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
}

#[tokio::test]
async fn fault_html5xx_is_an_http_status_without_an_order() {
    let h = start().await;
    h.sim
        .inject_fault(Api::Micropay, Fault::Html5xx { status: 503 }, 1);

    let failure = maybe_sent(h.pay("GATEWAY", Behaviour::PasswordFree, 300).await);

    assert!(
        matches!(failure, MaybeSent::HttpStatus { status: 503 }),
        "{failure:?}"
    );
    h.expect_no_order("GATEWAY").await;
}

#[tokio::test]
async fn fault_garbage_xml_is_a_bad_reply_with_the_order_paid() {
    let h = start().await;
    h.sim.inject_fault(Api::Micropay, Fault::GarbageXml, 1);

    let result = h.pay("GARBAGE", Behaviour::PasswordFree, 300).await;

    // The body starts like WeChat's XML and breaks off, so it is XML that does not decode
    // (`BadReply::Xml`), not a body that is not XML at all (`MaybeSent::NotXml`).
    let error = result.expect_err("a truncated reply is not accepted");
    assert!(error.is_outcome_unknown());
    assert!(
        matches!(
            error,
            Error::BadReply(BadReply::Xml(XmlError::Malformed(_)))
        ),
        "{error:?}"
    );
    h.expect_state("GARBAGE", TradeState::Success).await;
}

#[tokio::test]
async fn fault_bad_signature_is_a_bad_reply_with_the_order_paid() {
    let h = start().await;
    h.sim.inject_fault(Api::Micropay, Fault::BadSignature, 1);

    let result = h.pay("BADSIGN", Behaviour::PasswordFree, 300).await;

    let error = result.expect_err("an unverifiable reply is not accepted");
    assert!(error.is_outcome_unknown());
    assert!(
        matches!(
            error,
            Error::BadReply(BadReply::Signature(SignatureError::Mismatch))
        ),
        "{error:?}"
    );
    h.expect_state("BADSIGN", TradeState::Success).await;
}

#[tokio::test]
async fn primary_outage_fails_over_to_the_backup_and_charges_once() {
    let h = start().await;
    h.sim.set_primary_outage(true);

    let paid = h
        .pay("OUTAGE", Behaviour::PasswordFree, 4200)
        .await
        .expect("the backup host takes the payment");

    assert_eq!(paid.total_fee, Fen(4200));
    let micropays: Vec<_> = h
        .sim
        .calls()
        .into_iter()
        .filter(|call| call.endpoint == "micropay")
        .collect();
    assert_eq!(
        micropays.len(),
        1,
        "one micropay reached WeChat: {micropays:?}"
    );
    assert_eq!(micropays[0].host, SimHost::Backup);
    assert_eq!(micropays[0].out_trade_no.as_deref(), Some("OUTAGE"));
    assert_eq!(h.client.host_stats(Host::Primary).connect_failures, 1);
    assert_eq!(h.client.host_stats(Host::Backup).successes, 1);
    // One connect failure does not make the primary bad; the third does.
    assert_eq!(h.client.current_host(), Host::Primary);
    h.expect_state("OUTAGE", TradeState::Success).await;
    h.expect_state("OUTAGE", TradeState::Success).await;
    assert_eq!(h.client.host_stats(Host::Primary).connect_failures, 3);
    assert_eq!(h.client.current_host(), Host::Backup);
    // Now calls go to the backup first, without touching the primary.
    h.sim.set_primary_outage(false);
    h.expect_state("OUTAGE", TradeState::Success).await;
    assert_eq!(h.client.host_stats(Host::Primary).connect_failures, 3);
    assert_eq!(h.client.current_host(), Host::Backup);
    let calls = h.sim.calls();
    assert_eq!(calls.len(), 4);
    assert!(
        calls.iter().all(|call| call.host == SimHost::Backup),
        "{calls:?}"
    );
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
}

// ---------------------------------------------------------------------------------------
// Reverse
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reverse_while_the_password_prompt_is_open_asks_to_be_repeated() {
    let h = start_with(Identity::P12File, |_| {}).await;
    let error = business(h.pay("REV-OPEN", Behaviour::PasswordWaits, 800).await);
    assert_micropay_error(&error, ErrCode::UserPaying, ErrorClass::Unknown);

    let refused = business(h.reverse("REV-OPEN").await);

    assert_eq!(refused.api, Api::Reverse);
    assert_eq!(refused.err_code, ErrCode::UserPaying);
    assert_eq!(refused.class(), ErrorClass::RetrySame);
    assert!(recall_requested(&refused.reply), "{:?}", refused.reply);
    assert_eq!(h.sim_state("REV-OPEN"), "USERPAYING");
    // The customer cancels; the repeated reverse now closes the order.
    h.sim
        .cancel_password("REV-OPEN")
        .expect("the prompt is open");
    let reversed = h.reverse("REV-OPEN").await.expect("reverse succeeds");
    assert!(!reversed.recall);
    assert_eq!(reversed.raw.get("recall"), Some("N"));
    h.expect_state("REV-OPEN", TradeState::Revoked).await;
    assert_eq!(h.sim.call_count(Api::Reverse), 2);
}

#[tokio::test]
async fn reverse_of_a_paid_order_revokes_it_and_returns_the_money() {
    let h = start_with(Identity::P12File, |_| {}).await;
    let paid = h
        .pay("REV-PAID", Behaviour::PasswordFree, 1999)
        .await
        .expect("paid");

    let reversed = h.reverse("REV-PAID").await.expect("reverse succeeds");

    assert!(!reversed.recall);
    let state = h.expect_state("REV-PAID", TradeState::Revoked).await;
    assert_eq!(state.payment, None);
    assert_eq!(h.sim_state("REV-PAID"), "REVOKED");
    // The money goes back: the day's refund bill has a REVOKED line for the whole amount.
    let bill = h.bill(BillType::Refund).await.expect("a refund bill");
    assert_eq!(bill.rows.len(), 1);
    assert_eq!(bill.rows[0].trade_state, "REVOKED");
    assert_eq!(bill.rows[0].transaction_id, paid.transaction_id);
    assert_eq!(bill.rows[0].refund_fee, Fen(1999));
    assert_eq!(bill.summary.refund_fee, Fen(1999));
    // Reverse is repeatable.
    assert!(!h.reverse("REV-PAID").await.expect("again").recall);
}

#[tokio::test]
async fn reverse_after_seven_days_is_expired() {
    let h = start().await;
    h.pay("REV-OLD", Behaviour::PasswordFree, 100)
        .await
        .expect("paid");
    h.sim.advance(Duration::from_secs(7 * 24 * 3600 + 60));

    let expired = business(h.reverse("REV-OLD").await);

    assert_eq!(expired.err_code, ErrCode::ReverseExpire);
    assert_eq!(expired.class(), ErrorClass::Final);
    assert!(!recall_requested(&expired.reply));
    h.expect_state("REV-OLD", TradeState::Success).await;
}

// ---------------------------------------------------------------------------------------
// Refund
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refund_is_idempotent_and_completes_after_the_refund_delay() {
    let h = start().await;
    let paid = h
        .pay("REFUNDED", Behaviour::PasswordFree, 1230)
        .await
        .expect("paid");

    let accepted = h
        .refund("REFUNDED", "R1", 1230, 230)
        .await
        .expect("the refund is accepted");

    assert_eq!(accepted.transaction_id, paid.transaction_id);
    assert_eq!(accepted.out_trade_no, "REFUNDED");
    assert_eq!(accepted.out_refund_no, "R1");
    assert_eq!(accepted.refund_fee, Fen(230));
    assert_eq!(accepted.total_fee, Fen(1230));
    assert_eq!(accepted.cash_refund_fee, Some(Fen(230)));
    // The same refund again is the same refund.
    let again = h.refund("REFUNDED", "R1", 1230, 230).await.expect("again");
    assert_eq!(again.refund_id, accepted.refund_id);
    assert_eq!(h.sim.refunds().len(), 1);
    // Another amount under the same number is refused.
    let mismatch = business(h.refund("REFUNDED", "R1", 1230, 300).await);
    assert_eq!(mismatch.err_code, ErrCode::RefundFeeMismatch);
    assert_eq!(mismatch.class(), ErrorClass::Configuration);
    assert_eq!(h.sim.refunds().len(), 1);

    let processing = h.refund_query("R1").await.expect("refundquery");
    assert_eq!(processing.transaction_id, paid.transaction_id);
    assert_eq!(processing.total_fee, Fen(1230));
    assert_eq!(processing.refunds.len(), 1);
    assert_eq!(processing.refunds[0].refund_id, accepted.refund_id);
    assert_eq!(processing.refunds[0].refund_fee, Fen(230));
    assert_eq!(
        processing.refunds[0].refund_status,
        RefundStatus::Processing
    );
    assert_eq!(processing.refunds[0].refund_success_time, None);

    // Run simulated time at 1000× for 100 ms: at least 100 simulated seconds pass, more
    // than the 60 s refund delay.
    h.sim.set_time_scale(1000.0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.sim.set_time_scale(1.0);
    let done = h.refund_query("R1").await.expect("refundquery");
    assert_eq!(done.refunds.len(), 1);
    assert_eq!(done.refunds[0].refund_status, RefundStatus::Success);
    assert!(done.refunds[0].refund_success_time.is_some());
    assert_eq!(h.sim.refunds()[0].refund_status, "SUCCESS");
    let state = h.expect_state("REFUNDED", TradeState::Refund).await;
    assert_eq!(state.payment.expect("still paid").total_fee, Fen(1230));
    assert_eq!(h.sim.call_count(Api::Refund), 3);
}

// ---------------------------------------------------------------------------------------
// Close order
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn close_order_closes_unpaid_orders_only() {
    let h = start().await;
    let code = h.sim.auth_code(Behaviour::PasswordWaits);
    let waiting = micropay("OPEN", &code, 100);
    business(h.client.call(&waiting).await);
    h.pay("PAID", Behaviour::PasswordFree, 100)
        .await
        .expect("paid");
    let close = |out_trade_no: &str| CloseOrderRequest {
        out_trade_no: order_no(out_trade_no),
    };

    let closed = h.client.call(&close("OPEN")).await.expect("closed");

    assert_eq!(closed.result_msg.as_deref(), Some("OK"));
    h.expect_state("OPEN", TradeState::Closed).await;
    // The identical micropay now reports the closed order.
    let resent = business(h.client.call(&waiting).await);
    assert_micropay_error(&resent, ErrCode::OrderClosed, ErrorClass::Final);
    let paid = business(h.client.call(&close("PAID")).await);
    assert_eq!(paid.err_code, ErrCode::OrderPaid);
    let unknown = business(h.client.call(&close("NOSUCH")).await);
    assert_eq!(unknown.err_code, ErrCode::OrderNotExist);
    assert_eq!(h.sim.call_count(Api::CloseOrder), 3);
}

// ---------------------------------------------------------------------------------------
// Download bill
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn download_bill_parses_the_simulators_csv_with_matching_totals() {
    let h = start().await;
    let payments = [("BILL-A", 1230), ("BILL-B", 500), ("BILL-C", 88)];
    let mut transaction_ids = Vec::new();
    for (out_trade_no, total_fee) in payments {
        let paid = h
            .pay(out_trade_no, Behaviour::PasswordFree, total_fee)
            .await
            .expect("paid");
        transaction_ids.push(paid.transaction_id);
    }
    let refund = h
        .refund("BILL-A", "BILL-R1", 1230, 230)
        .await
        .expect("refund accepted");

    let bill = h.bill(BillType::All).await.expect("the day's bill");

    assert_eq!(bill.rows.len(), 4, "{bill:?}");
    let payment_rows: Vec<_> = bill
        .rows
        .iter()
        .filter(|row| row.trade_state == "SUCCESS")
        .collect();
    assert_eq!(payment_rows.len(), 3);
    for ((out_trade_no, total_fee), transaction_id) in payments.iter().zip(&transaction_ids) {
        let row = payment_rows
            .iter()
            .find(|row| row.out_trade_no == *out_trade_no)
            .unwrap_or_else(|| panic!("no bill row for {out_trade_no}"));
        assert_eq!(&row.transaction_id, transaction_id);
        assert_eq!(row.settlement_total_fee, Fen(*total_fee));
        assert_eq!(row.total_fee, Some(Fen(*total_fee)));
        assert_eq!(row.refund_fee, Fen(0));
        assert_eq!(row.appid, APPID);
        assert_eq!(row.mch_id, MCH_ID);
        assert_eq!(row.device_info, "POS-1");
        assert_eq!(row.trade_type, "MICROPAY");
        assert_eq!(row.body, "测试店-超市");
    }
    let refund_row = bill
        .rows
        .iter()
        .find(|row| row.trade_state == "REFUND")
        .expect("a refund row");
    assert_eq!(refund_row.out_trade_no, "BILL-A");
    assert_eq!(refund_row.transaction_id, transaction_ids[0]);
    assert_eq!(refund_row.refund_id, refund.refund_id);
    assert_eq!(refund_row.out_refund_no, "BILL-R1");
    assert_eq!(refund_row.refund_fee, Fen(230));
    assert_eq!(refund_row.applied_refund_fee, Some(Fen(230)));
    // The bill is made the next day, when the refund has long completed.
    assert_eq!(refund_row.refund_status, "SUCCESS");
    assert_eq!(bill.summary.trade_count, 4);
    assert_eq!(bill.summary.settlement_total_fee, Fen(1230 + 500 + 88));
    assert_eq!(bill.summary.total_fee, Some(Fen(1230 + 500 + 88)));
    assert_eq!(bill.summary.refund_fee, Fen(230));
    assert_eq!(bill.summary.applied_refund_fee, Some(Fen(230)));
    assert_eq!(bill.summary.coupon_refund_fee, Fen(0));

    // The typed bill types select rows.
    let success = h.bill(BillType::Success).await.expect("success bill");
    assert_eq!(success.rows.len(), 3);
    assert_eq!(success.summary.settlement_total_fee, Fen(1818));
    let refunds = h.bill(BillType::Refund).await.expect("refund bill");
    assert_eq!(refunds.rows.len(), 1);
    assert_eq!(refunds.rows[0].refund_fee, Fen(230));
    assert_eq!(h.sim.call_count(Api::DownloadBill), 3);

    // A day without transactions has no bill: WeChat's XML error, not CSV.
    let empty_day = DownloadBillRequest {
        bill_date: h.bill_date().pred_opt().expect("a previous day"),
        bill_type: BillType::All,
    };
    let error = h
        .client
        .download_bill(&empty_day, CallOptions::default())
        .await
        .expect_err("no bill");
    assert!(
        matches!(&error, Error::Protocol { return_msg } if return_msg == "No Bill Exist (error_code 20002)"),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Protocol errors, sandbox and sign types
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_api_key_is_a_protocol_error() {
    let h = start_with(Identity::PemFiles, |config| {
        config.api_key = ApiKey::new("0123456789abcdef0123456789abcdef");
    })
    .await;

    let error = h
        .pay("WRONGKEY", Behaviour::PasswordFree, 100)
        .await
        .expect_err("the simulator refuses the signature");

    assert!(
        matches!(&error, Error::Protocol { return_msg } if return_msg == "签名错误"),
        "{error:?}"
    );
    assert_eq!(error.class(Api::Micropay), ErrorClass::Configuration);
    assert!(!error.is_outcome_unknown());
    assert_eq!(h.sim.call_count(Api::Micropay), 1);
    assert_eq!(h.sim.order("WRONGKEY"), None);
}

#[tokio::test]
async fn sandbox_fetches_the_sign_key_and_pays_one_fen() {
    let h = start_with(Identity::PemFiles, |config| config.sandbox = true).await;

    let paid = h
        .client
        .call(&micropay("SANDBOX", &unmarked_code(), 1))
        .await
        .expect("the sandbox payment succeeds");

    assert_eq!(paid.total_fee, Fen(1));
    let order = h.sim.order("SANDBOX").expect("the order exists");
    assert!(order.sandbox);
    let calls = h.sim.calls();
    let endpoints: Vec<(&str, bool)> = calls
        .iter()
        .map(|call| (call.endpoint.as_str(), call.sandbox))
        .collect();
    assert_eq!(endpoints, [("getsignkey", false), ("micropay", true)]);
    let sandbox_key = &h.sim.merchants()[0].sandbox_key;
    assert!(h.client.signing_key().await.expect("cached key") == *sandbox_key);
    // Amounts other than 1–3 fen are refused by the sandbox; the key is not fetched again.
    let error = h
        .client
        .call(&micropay("SANDBOX-2", &unmarked_code(), 100))
        .await
        .expect_err("the sandbox only takes 1–3 fen");
    assert!(
        matches!(&error, Error::Protocol { return_msg } if return_msg == "沙箱支付金额(100)无效，请检查需要验收的case"),
        "{error:?}"
    );
    assert_eq!(h.sim.call_count(Api::GetSignKey), 1);
    assert_eq!(h.sim.call_count(Api::Micropay), 2);
}

#[tokio::test]
async fn hmac_sha256_and_md5_clients_both_work() {
    let h = start().await;
    assert_eq!(h.client.config().sign_type, SignType::HmacSha256);
    let mut md5_config = client_config(&h.sim, Identity::P12File);
    md5_config.sign_type = SignType::Md5;
    let md5 = Client::new(md5_config).expect("the MD5 client builds");

    let hmac_paid = h
        .pay("SIGN-HMAC", Behaviour::PasswordFree, 101)
        .await
        .expect("HMAC-SHA256 payment");
    let md5_paid = md5
        .call(&micropay("SIGN-MD5", &unmarked_code(), 102))
        .await
        .expect("MD5 payment");

    assert_eq!(hmac_paid.total_fee, Fen(101));
    assert_eq!(md5_paid.total_fee, Fen(102));
    // Each client reads the other's order, and the MD5 client can reverse (mTLS + MD5).
    let seen_by_md5 = md5
        .call(&OrderQueryRequest {
            order: order_no("SIGN-HMAC").into(),
        })
        .await
        .expect("MD5 query");
    assert_eq!(seen_by_md5.trade_state, TradeState::Success);
    h.expect_state("SIGN-MD5", TradeState::Success).await;
    let reversed = md5
        .call(&ReverseRequest {
            order: order_no("SIGN-MD5").into(),
        })
        .await
        .expect("MD5 reverse");
    assert!(!reversed.recall);
    assert_eq!(h.sim_state("SIGN-MD5"), "REVOKED");
}

// ---------------------------------------------------------------------------------------
// Service providers (服务商) and their sub-merchants (docs/wechat-pay.md §11)
// ---------------------------------------------------------------------------------------

const PROVIDER_APPID: &str = "wx8888888888888888";
const PROVIDER_MCH_ID: &str = "1900000200";
const PROVIDER_KEY: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";
const SUB_A: &str = "1900000201";
const SUB_B: &str = "1900000202";

/// A simulator with the direct test merchant and a provider with two sub-merchants, and the
/// provider's client (no sub-merchant set: each test picks one).
async fn start_provider() -> Harness {
    let cert_dir = CertDir::new();
    let sim = Simulator::builder()
        .merchant(APPID, MCH_ID, KEY)
        .provider(
            PROVIDER_APPID,
            PROVIDER_MCH_ID,
            PROVIDER_KEY,
            &[SUB_A, SUB_B],
        )
        .cert_dir(&cert_dir.0)
        .start_time(start_time())
        .start()
        .await
        .expect("the simulator starts");
    let mut config = client_config(&sim, Identity::PemFiles);
    let identity = sim
        .client_identity_for(PROVIDER_MCH_ID)
        .expect("the provider has a certificate");
    config.appid = PROVIDER_APPID.into();
    config.mch_id = PROVIDER_MCH_ID.into();
    config.api_key = ApiKey::new(PROVIDER_KEY);
    config.identity = Some(
        ClientIdentity::from_pem(identity.cert_pem.as_bytes(), identity.key_pem.as_bytes())
            .expect("the provider's certificate loads"),
    );
    let client = Client::new(config).expect("the client builds");
    Harness {
        sim,
        client,
        _cert_dir: cert_dir,
    }
}

fn protocol_message<T: Debug>(result: Result<T>) -> String {
    match result {
        Err(Error::Protocol { return_msg }) => return_msg,
        other => panic!("expected return_code=FAIL, got {other:?}"),
    }
}

#[tokio::test]
async fn a_sub_merchant_pays_reverses_and_refunds_in_its_own_books() {
    let h = start_provider().await;
    let store_a = h.client.for_sub_merchant(Some(SUB_A), None);
    let store_b = h.client.for_sub_merchant(Some(SUB_B), None);

    let paid = store_a
        .call(&micropay(
            "SUBPAID",
            &h.sim.auth_code(Behaviour::PasswordFree),
            500,
        ))
        .await
        .expect("the sub-merchant's payment");
    assert_eq!(paid.out_trade_no, "SUBPAID");
    let order = h.sim.order("SUBPAID").expect("the order");
    assert_eq!(order.mch_id, PROVIDER_MCH_ID);
    assert_eq!(order.sub_mch_id.as_deref(), Some(SUB_A));
    // The other sub-merchant's books do not hold it.
    let other = business(
        store_b
            .call(&OrderQueryRequest {
                order: order_no("SUBPAID").into(),
            })
            .await,
    );
    assert_eq!(other.err_code, ErrCode::OrderNotExist);

    let refund = store_a
        .call(&RefundRequest {
            order: order_no("SUBPAID").into(),
            out_refund_no: refund_no("SUBREFUND"),
            total_fee: Fen(500),
            refund_fee: Fen(200),
            refund_desc: None,
            refund_account: None,
            notify_url: None,
        })
        .await
        .expect("the refund, under the provider's certificate");
    assert_eq!(refund.refund_fee, Fen(200));
    store_b
        .call(&micropay(
            "SUBREV",
            &h.sim.auth_code(Behaviour::PasswordFree),
            300,
        ))
        .await
        .expect("the other sub-merchant's payment");
    h.sim.advance(Duration::from_secs(20));
    let reversed = store_b
        .call(&ReverseRequest {
            order: order_no("SUBREV").into(),
        })
        .await
        .expect("the reverse");
    assert!(!reversed.recall);
    assert_eq!(
        reversed.raw.get("sub_mch_id"),
        Some(SUB_B),
        "replies echo the sub-merchant"
    );
    let calls = h.sim.calls();
    assert!(
        calls.iter().all(
            |call| call.mch_id.as_deref() == Some(PROVIDER_MCH_ID) && call.sub_mch_id.is_some()
        ),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn the_simulator_refuses_what_wechat_refuses_of_a_provider() {
    let h = start_provider().await;
    let code = || h.sim.auth_code(Behaviour::PasswordFree);

    // Provider mode without a sub-merchant.
    let missing = protocol_message(h.client.call(&micropay("NOSUB", &code(), 100)).await);
    assert_eq!(missing, "受理机构必须传入sub_mch_id");
    // A sub-merchant not bound to this provider.
    let unbound = h.client.for_sub_merchant(Some("1900000999"), None);
    let message = protocol_message(unbound.call(&micropay("UNBOUND", &code(), 100)).await);
    assert_eq!(message, "商户号mch_id或sub_mch_id不存在");
    // A sub-merchant's call signed with another key (the sub-merchant's own, say).
    let mut wrong_key = h.client.config().clone();
    wrong_key.api_key = ApiKey::new(KEY);
    wrong_key.sub_mch_id = Some(SUB_A.into());
    let wrong_key = Client::new(wrong_key).expect("the client builds");
    let message = protocol_message(wrong_key.call(&micropay("WRONGKEY", &code(), 100)).await);
    assert_eq!(message, "签名错误");
    // A direct merchant naming a sub-merchant.
    let mut direct = client_config(&h.sim, Identity::PemFiles);
    direct.sub_mch_id = Some(SUB_A.into());
    let direct = Client::new(direct).expect("the client builds");
    let message = protocol_message(direct.call(&micropay("DIRECTSUB", &code(), 100)).await);
    assert_eq!(message, "普通商户不允许传sub_mch_id");
    assert!(h.sim.orders().is_empty(), "no refused call made an order");
}
