//! WeChat Pay API v2 for merchants taking 付款码 (micropay) payments, both ends of the wire.
//!
//! Every public Rust WeChat Pay crate either signs v2 requests wrongly, lacks micropay and
//! reverse, or speaks only v3. This one is careful where money is at stake:
//!
//! - signatures reproduce WeChat's published vectors, and **every** `return_code=SUCCESS`
//!   reply is verified over its raw field set (coupon and unknown fields included) before a
//!   single field is read;
//! - every failure says whether WeChat may have acted on the request ([`Error::NotSent`],
//!   [`Error::MaybeSent`], [`Error::BadReply`]) or answered ([`Error::Protocol`],
//!   [`Error::Business`], whose [`ErrCode`] carries its class per API);
//! - amounts are [`Fen`](paycode_api::Fen), integers, from request to bill;
//! - the XML decoder refuses DOCTYPE, undefined entities and oversized bodies;
//! - the client fails over to the backup host only when nothing was sent.
//!
//! # Which APIs the product uses
//!
//! Paycode's proxy calls five of the v2 APIs, all from its payments engine:
//!
//! - **micropay** (`/pay/micropay`): charge a 付款码;
//! - **orderquery** (`/pay/orderquery`): find out what happened to a payment whose outcome is
//!   unknown or that waits for the customer's password;
//! - **reverse** (`/secapi/pay/reverse`, client certificate): undo a payment that cannot be
//!   confirmed, and close an order a failed payment left open (micropay orders are closed by
//!   reverse, never by closeorder);
//! - **refund** (`/secapi/pay/refund`, client certificate) and **refundquery**
//!   (`/pay/refundquery`): give money back and follow the refund until it is final.
//!
//! The others are here for reasons of their own:
//!
//! - **downloadbill** (`/pay/downloadbill`, [`messages::DownloadBillRequest`] and
//!   [`messages::Bill`]): the day's bill, which reconciliation of the proxy's store against
//!   WeChat's books will read; the simulator serves it already.
//! - **closeorder** (`/pay/closeorder`): not for micropay orders. It stays because a merchant
//!   account also holds orders of other trade types that only closeorder closes, it is one
//!   small request/response pair, and the simulator answers it as WeChat does for a micropay
//!   order (`ORDERPAID`, `ORDERCLOSED`), so tests can show what a client that tried it would
//!   get. The proxy never calls it.
//! - **getsignkey** (`/xdc/apiv2getsignkey/sign/getsignkey`): not a message of its own; the
//!   client calls it to fetch the sandbox signing key when [`ClientConfig`] points at
//!   WeChat's sandbox.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use paycode_api::{AuthCode, Fen};
//! use wxpay::messages::{MicropayRequest, OrderQueryRequest, OutTradeNo};
//! use wxpay::{ApiKey, Client, ClientConfig, ClientIdentity};
//!
//! let mut config = ClientConfig::new("wxd930ea5d5a258f4f", "10000100", ApiKey::new("192006250b4c09247ec02edce69f6a2d"));
//! config.identity = Some(ClientIdentity::from_p12_file("apiclient_cert.p12", "10000100")?);
//! let client = Client::new(config)?;
//!
//! let order = OutTradeNo::new("P20261128T1A0001")?;
//! let code = AuthCode::parse("134567890123455678")?;
//! let request = MicropayRequest::new(order.clone(), Fen(1230), code, "小张南山店-超市", "192.168.1.20");
//! match client.call(&request).await {
//!     Ok(paid) => println!("paid, WeChat order {}", paid.transaction_id),
//!     // USERPAYING, SYSTEMERROR, a timeout: the payment may be happening. Query; never resend.
//!     Err(error) if error.is_outcome_unknown() || error.class(wxpay::Api::Micropay) == wxpay::ErrorClass::Unknown => {
//!         let state = client.call(&OrderQueryRequest { order: order.into() }).await?;
//!         println!("order is {}", state.trade_state);
//!     }
//!     Err(error) => println!("not paid: {error}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`params`]: [`Params`], the flat name → value map every message is.
//! - [`sign`]: MD5 and HMAC-SHA256 signatures; [`ApiKey`].
//! - [`xml`]: the `<xml>` codec.
//! - [`codes`]: [`Api`], [`ErrCode`] and [`ErrorClass`].
//! - [`error`]: the error taxonomy.
//! - [`messages`]: typed requests and responses, one file per API, and bill parsing.
//! - [`client`]: the async [`Client`]: signing, verification, fail-over, client
//!   certificates, sandbox keys.
//! - [`time`]: WeChat's Beijing-time timestamps, read into UTC.
//! - [`notify`]: refund-notification `req_info` decryption.
//! - `sim` (feature `sim`): the simulator, a WeChat Pay server for demos and tests; see
//!   `SIMULATOR.md`.

pub mod client;
pub mod codes;
pub mod error;
pub mod messages;
pub mod notify;
pub mod params;
pub mod sign;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod xml;

pub use client::{
    CallOptions, CertificateInfo, Client, ClientBuildError, ClientConfig, ClientIdentity, Host,
    IdentityError,
};
pub use codes::{Api, ErrCode, ErrorClass};
pub use error::{BadReply, BusinessError, CallOutcome, Error, MaybeSent, NotSent, Result};
pub use notify::{NotifyError, decrypt_req_info, encrypt_req_info};
pub use params::Params;
pub use sign::{ApiKey, SignType};

/// The path prefix of WeChat's current sandbox (仿真测试系统), in front of every v2 path.
pub const SANDBOX_PREFIX: &str = "/xdc/apiv2sandbox";
