//! WeChat Pay API v2 for merchants taking 付款码 (micropay) payments.
//!
//! Under construction: parameters, signing, the XML codec, error codes and the error
//! taxonomy are in place; typed messages, the client and the simulator follow.

pub mod client;
pub mod codes;
pub mod error;
pub mod messages;
pub mod notify;
pub mod params;
pub mod sign;
#[cfg(feature = "sim")]
pub mod sim;
pub mod xml;

pub use client::{
    CallOptions, CertificateInfo, Client, ClientBuildError, ClientConfig, ClientIdentity, Host,
    IdentityError,
};
pub use codes::{Api, ErrCode, ErrorClass};
pub use error::{BadReply, BusinessError, Error, MaybeSent, NotSent, Result};
pub use notify::{NotifyError, decrypt_req_info, encrypt_req_info};
pub use params::Params;
pub use sign::{ApiKey, SignType};

/// The path prefix of WeChat's current sandbox (仿真测试系统), in front of every v2 path.
pub const SANDBOX_PREFIX: &str = "/xdc/apiv2sandbox";
