//! `/xdc/apiv2getsignkey/sign/getsignkey` (docs/wechat-pay.md §1.3): hands out the merchant's sandbox
//! sign key. The request is signed with the real key (checked by the pipeline); the reply
//! is not signed, as WeChat's is not.

use super::{Outcome, Reply};
use crate::params::Params;
use crate::sim::Merchant;

pub(super) fn handle(merchant: &Merchant) -> Outcome {
    let mut params = Params::new();
    params.insert("return_code", "SUCCESS");
    params.insert("return_msg", "ok");
    params.insert("mch_id", merchant.mch_id.as_str());
    params.insert("sandbox_signkey", merchant.sandbox_key.expose());
    Reply::Unsigned(params).into()
}
