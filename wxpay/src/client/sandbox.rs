//! WeChat's current sandbox (仿真测试系统, docs/wechat-pay.md §1.3): path prefix and sign key.
//!
//! Every v2 path gets the `/xdc/apiv2sandbox` prefix, and calls are signed with a
//! `sandbox_signkey` fetched from `getsignkey` (itself signed with the real API key, MD5)
//! instead of the real key. The key is cached; it is valid for days, and when the sandbox
//! rejects a signature the client fetches it once more and resends, which is safe because a
//! `return_code=FAIL` reply means the request was refused before anything happened.

use std::future::Future;

use tokio::sync::Mutex;
use url::Url;

use crate::SANDBOX_PREFIX;
use crate::codes::Api;
use crate::error::{BadReply, Error, Result};
use crate::params::Params;
use crate::sign::{self, ApiKey, SignType};

/// The path of `api` on the sandbox: `/xdc/apiv2sandbox` in front of the production path,
/// except for `getsignkey`, which lives outside the sandbox tree.
pub fn sandbox_path(api: Api) -> String {
    match api {
        Api::GetSignKey => api.path().to_owned(),
        _ => format!("{SANDBOX_PREFIX}{}", api.path()),
    }
}

/// The full URL of `api` under `base` (whose own path, if any, is kept as a prefix).
pub(crate) fn endpoint(base: &Url, api: Api, sandbox: bool) -> Url {
    let path = if sandbox {
        sandbox_path(api)
    } else {
        api.path().to_owned()
    };
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url
}

/// The `getsignkey` request: `mch_id` and `nonce_str`, signed MD5 with the real API key.
pub(crate) fn sign_key_request(mch_id: &str, nonce_str: &str, real_key: &ApiKey) -> Params {
    let mut request = Params::new();
    request
        .insert("mch_id", mch_id)
        .insert("nonce_str", nonce_str);
    let signature = sign::sign(&request, real_key, SignType::Md5);
    request.insert("sign", signature);
    request
}

/// Reads the `sandbox_signkey` out of a decoded `getsignkey` reply.
///
/// The reply is not verified: like the official SDKs, this trusts the TLS channel for this one
/// call, and a wrong key only makes the following sandbox calls fail with a signature error.
pub(crate) fn sign_key_from_reply(reply: &Params) -> Result<ApiKey> {
    match reply.get("return_code") {
        Some("SUCCESS") => {}
        Some("FAIL") => {
            return Err(Error::Protocol {
                return_msg: reply
                    .get_non_empty("return_msg")
                    .or_else(|| reply.get_non_empty("retmsg"))
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        other => return Err(BadReply::ReturnCode(other.map(str::to_owned)).into()),
    }
    reply
        .get_non_empty("sandbox_signkey")
        .map(ApiKey::new)
        .ok_or_else(|| {
            BadReply::Field {
                field: "sandbox_signkey",
                problem: "missing from a SUCCESS getsignkey reply".into(),
            }
            .into()
        })
}

/// Whether a sandbox `return_msg` says the signature was refused, which with a cached key
/// means the key has expired or been replaced (e.g.
/// "沙箱验证签名失败，请确认沙箱签名key是否正确（通过getsignkey调用生成）").
///
/// Matching on WeChat's text is unavoidable here: the sandbox has no error code for it. A
/// false positive only costs one extra `getsignkey` and one resend of a refused request.
pub fn is_sign_key_rejection(return_msg: &str) -> bool {
    let lower = return_msg.to_ascii_lowercase();
    return_msg.contains("签名") || lower.contains("sign")
}

/// The cached sandbox sign key. The lock is held while fetching, so concurrent first calls
/// fetch once.
#[derive(Debug, Default)]
pub(crate) struct SignKeyCache {
    key: Mutex<Option<ApiKey>>,
}

impl SignKeyCache {
    /// The cached key, or the result of `fetch` (then cached). When `stale` is the cached
    /// key, it is fetched again; when another call already replaced it, the replacement is
    /// returned without fetching.
    pub(crate) async fn get<F, Fut>(&self, stale: Option<&ApiKey>, fetch: F) -> Result<ApiKey>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ApiKey>>,
    {
        let mut cached = self.key.lock().await;
        if let Some(key) = cached.as_ref() {
            if stale != Some(key) {
                return Ok(key.clone());
            }
        }
        let fresh = fetch().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_path_but_getsignkey_is_prefixed() {
        assert_eq!(
            sandbox_path(Api::Micropay),
            "/xdc/apiv2sandbox/pay/micropay"
        );
        assert_eq!(
            sandbox_path(Api::Reverse),
            "/xdc/apiv2sandbox/secapi/pay/reverse"
        );
        assert_eq!(
            sandbox_path(Api::GetSignKey),
            "/xdc/apiv2getsignkey/sign/getsignkey"
        );
        for api in Api::ALL {
            assert_eq!(Api::from_path(&sandbox_path(api)), Some(api));
        }
    }

    #[test]
    fn endpoints_keep_the_base_and_its_path_prefix() {
        let base = Url::parse("https://api.mch.weixin.qq.com").unwrap();
        assert_eq!(
            endpoint(&base, Api::Micropay, false).as_str(),
            "https://api.mch.weixin.qq.com/pay/micropay"
        );
        assert_eq!(
            endpoint(&base, Api::OrderQuery, true).as_str(),
            "https://api.mch.weixin.qq.com/xdc/apiv2sandbox/pay/orderquery"
        );
        let local = Url::parse("http://127.0.0.1:8443/wechat/").unwrap();
        assert_eq!(
            endpoint(&local, Api::GetSignKey, true).as_str(),
            "http://127.0.0.1:8443/wechat/xdc/apiv2getsignkey/sign/getsignkey"
        );
    }

    #[test]
    fn sign_key_request_is_md5_signed_with_the_real_key() {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let request = sign_key_request("10000100", "ibuaiVcKdpRxkhJA", &key);
        assert_eq!(request.len(), 3);
        assert_eq!(sign::verify(&request, &key, SignType::Md5), Ok(()));
    }

    #[test]
    fn sign_key_replies() {
        let ok: Params = [
            ("return_code", "SUCCESS"),
            ("return_msg", "ok"),
            ("sandbox_signkey", "013467007045764e5b0a0bfbeed1a7e7"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            sign_key_from_reply(&ok).unwrap().expose(),
            "013467007045764e5b0a0bfbeed1a7e7"
        );
        let fail: Params = [("return_code", "FAIL"), ("retmsg", "mch_id 不存在")]
            .into_iter()
            .collect();
        assert!(matches!(
            sign_key_from_reply(&fail),
            Err(Error::Protocol { return_msg }) if return_msg == "mch_id 不存在"
        ));
        let empty: Params = [("return_code", "SUCCESS")].into_iter().collect();
        assert!(matches!(
            sign_key_from_reply(&empty),
            Err(Error::BadReply(BadReply::Field {
                field: "sandbox_signkey",
                ..
            }))
        ));
    }

    #[test]
    fn sign_key_rejections_are_recognised() {
        assert!(is_sign_key_rejection(
            "沙箱验证签名失败，请确认沙箱签名key是否正确（通过getsignkey调用生成）"
        ));
        assert!(is_sign_key_rejection("签名错误"));
        assert!(is_sign_key_rejection("sign error"));
        assert!(!is_sign_key_rejection("请确认请求参数是否正确total_fee"));
    }

    #[tokio::test]
    async fn the_cache_fetches_once_and_refetches_only_a_stale_key() {
        let cache = SignKeyCache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = |value: &'static str| {
            fetches.fetch_add(1, Ordering::SeqCst);
            async move { Ok(ApiKey::new(value)) }
        };
        let first = cache.get(None, || fetch("first")).await.unwrap();
        let again = cache.get(None, || fetch("unused")).await.unwrap();
        assert_eq!((first.expose(), again.expose()), ("first", "first"));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let second = cache.get(Some(&first), || fetch("second")).await.unwrap();
        assert_eq!(second.expose(), "second");
        // Another caller still holding "first" as stale gets "second" without a fetch.
        let third = cache.get(Some(&first), || fetch("unused")).await.unwrap();
        assert_eq!(third.expose(), "second");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A failed fetch leaves the cache as it was.
        let failed = cache
            .get(Some(&second), || async {
                Err(Error::Protocol {
                    return_msg: "down".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            cache.get(None, || fetch("unused")).await.unwrap().expose(),
            "second"
        );
    }
}
