//! One HTTP exchange and the classification of its failures (docs/wechat-pay.md §10, `error.rs`).
//!
//! The question every failure must answer is whether the request may have reached WeChat.
//! Failures while setting up the connection (DNS, TCP, TLS handshake, connect timeout) happen
//! before a single byte of the request is written, so they are [`NotSent`]; everything later
//! (read timeout, reset, an HTTP error page, an oversized body) is [`MaybeSent`].
//!
//! DNS failures are recognised by type, not by message: the client resolves names through
//! [`ClassifyingResolver`], whose errors are [`DnsFailure`] values that survive in reqwest's
//! error source chain.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::CONTENT_TYPE;
use url::Url;

use super::hosts::HostOutcome;
use crate::error::{Error, MaybeSent, NotSent};

/// The content type of every request (docs/wechat-pay.md §12 pitfall 1: say UTF-8 explicitly).
const XML_CONTENT_TYPE: &str = "text/xml; charset=UTF-8";

/// A host name that did not resolve. Its type is what marks a failure as a DNS failure.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {reason}")]
pub(crate) struct DnsFailure {
    host: String,
    reason: String,
}

/// The system resolver (`getaddrinfo` on a blocking thread, as reqwest's default), wrapped so
/// that its failures are [`DnsFailure`]s.
#[derive(Debug, Default)]
pub(crate) struct ClassifyingResolver;

impl Resolve for ClassifyingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let failure = |reason: String| {
                Box::new(DnsFailure {
                    host: host.clone(),
                    reason,
                }) as Box<dyn StdError + Send + Sync>
            };
            // Port 0 is replaced by the URL's port (or the scheme's default) by reqwest.
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| failure(error.to_string()))?
                .collect();
            if addresses.is_empty() {
                return Err(failure("no addresses".into()));
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Why one exchange produced no usable body, before it is turned into an [`Error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request could not be built (invalid URL or header); nothing was sent.
    Build(String),
    /// The host name did not resolve.
    Dns,
    /// TCP connect, TLS handshake or connect timeout failed.
    Connect(String),
    /// The deadline passed after sending may have started.
    Timeout,
    /// The connection failed after the request may have been written.
    Transport(String),
    /// A status other than 200.
    HttpStatus(u16),
    /// The body was larger than the limit.
    TooLarge,
}

impl Failure {
    /// Classifies a reqwest error.
    pub(crate) fn from_reqwest(error: &reqwest::Error) -> Failure {
        if error.is_builder() {
            return Failure::Build(error_chain(error));
        }
        if sources(error).any(|source| source.is::<DnsFailure>()) {
            return Failure::Dns;
        }
        // reqwest marks every error from the connector as a connect error: TCP, TLS and the
        // connect timeout. None of them can follow the first byte of the request.
        if error.is_connect() {
            return Failure::Connect(error_chain(error));
        }
        if error.is_timeout() {
            return Failure::Timeout;
        }
        Failure::Transport(error_chain(error))
    }

    /// Whether the request certainly did not leave because the host could not be reached,
    /// which is the only case where it may be resent to the other host.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, Failure::Dns | Failure::Connect(_))
    }

    /// What the failure says about the host's health (docs/wechat-pay.md §10); nothing for a request that
    /// could not even be built.
    pub(crate) fn host_outcome(&self) -> Option<HostOutcome> {
        match self {
            Failure::Build(_) => None,
            Failure::Dns => Some(HostOutcome::DnsFailure),
            Failure::Connect(_) => Some(HostOutcome::ConnectFailure),
            Failure::Timeout
            | Failure::Transport(_)
            | Failure::HttpStatus(_)
            | Failure::TooLarge => Some(HostOutcome::Other),
        }
    }

    /// The public error for this failure against `host`.
    pub(crate) fn into_error(self, host: &str, timeout: Duration, max_body: usize) -> Error {
        match self {
            Failure::Build(reason) => NotSent::Build(reason).into(),
            Failure::Dns => NotSent::Dns {
                host: host.to_owned(),
            }
            .into(),
            Failure::Connect(reason) => NotSent::Connect {
                host: host.to_owned(),
                reason,
            }
            .into(),
            Failure::Timeout => MaybeSent::Timeout(timeout).into(),
            Failure::Transport(reason) => MaybeSent::Transport(reason).into(),
            Failure::HttpStatus(status) => MaybeSent::HttpStatus { status }.into(),
            Failure::TooLarge => MaybeSent::TooLarge(max_body).into(),
        }
    }
}

/// POSTs `body` to `url` and reads the reply, all within `timeout`, refusing bodies over
/// `max_body` bytes (announced or actual).
pub(crate) async fn exchange(
    http: &reqwest::Client,
    url: &Url,
    body: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Vec<u8>, Failure> {
    let attempt = async {
        let mut response = http
            .post(url.clone())
            .header(CONTENT_TYPE, XML_CONTENT_TYPE)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|error| Failure::from_reqwest(&error))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Failure::HttpStatus(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > max_body as u64)
        {
            return Err(Failure::TooLarge);
        }
        // Read chunk by chunk so that a body without (or lying about) Content-Length cannot
        // make the client buffer more than the limit.
        let mut received = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| Failure::from_reqwest(&error))?
        {
            if received.len() + chunk.len() > max_body {
                return Err(Failure::TooLarge);
            }
            received.extend_from_slice(&chunk);
        }
        Ok(received)
    };
    // The deadline covers the whole exchange. If it expires while a fresh connection is still
    // being set up the outcome is reported as unknown, which is the safe side; with the
    // connect timeout below the read timeout (the defaults), a dead host still fails as a
    // connect error first.
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(Failure::Timeout))
}

fn sources<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = error.source();
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
}

/// The error and its causes, `outer: inner: innermost`, for the `reason` fields.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    for source in sources(error) {
        let message = source.to_string();
        // hyper and reqwest often repeat their cause's message; keep the chain readable.
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A resolver that fails every lookup the way [`ClassifyingResolver`] does.
    struct FailingResolver;

    impl Resolve for FailingResolver {
        fn resolve(&self, name: Name) -> Resolving {
            let host = name.as_str().to_owned();
            Box::pin(async move {
                Err(Box::new(DnsFailure {
                    host,
                    reason: "NXDOMAIN (test)".into(),
                }) as Box<dyn StdError + Send + Sync>)
            })
        }
    }

    fn client(resolver: Option<Arc<FailingResolver>>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2));
        if let Some(resolver) = resolver {
            builder = builder.dns_resolver(resolver);
        }
        builder.build().unwrap()
    }

    #[test]
    fn failures_map_to_the_documented_errors() {
        let timeout = Duration::from_millis(100);
        let host = "api.mch.weixin.qq.com";
        // Each case: the failure, a check of the error it becomes, and the host outcome.
        type Case = (Failure, fn(&Error) -> bool, Option<HostOutcome>);
        let cases: [Case; 7] = [
            (
                Failure::Dns,
                |e| matches!(e, Error::NotSent(NotSent::Dns { .. })),
                Some(HostOutcome::DnsFailure),
            ),
            (
                Failure::Connect("refused".into()),
                |e| matches!(e, Error::NotSent(NotSent::Connect { .. })),
                Some(HostOutcome::ConnectFailure),
            ),
            (
                Failure::Build("bad url".into()),
                |e| matches!(e, Error::NotSent(NotSent::Build(_))),
                None,
            ),
            (
                Failure::Timeout,
                |e| matches!(e, Error::MaybeSent(MaybeSent::Timeout(t)) if *t == Duration::from_millis(100)),
                Some(HostOutcome::Other),
            ),
            (
                Failure::Transport("reset".into()),
                |e| matches!(e, Error::MaybeSent(MaybeSent::Transport(_))),
                Some(HostOutcome::Other),
            ),
            (
                Failure::HttpStatus(502),
                |e| matches!(e, Error::MaybeSent(MaybeSent::HttpStatus { status: 502 })),
                Some(HostOutcome::Other),
            ),
            (
                Failure::TooLarge,
                |e| matches!(e, Error::MaybeSent(MaybeSent::TooLarge(1024))),
                Some(HostOutcome::Other),
            ),
        ];
        for (failure, expected, outcome) in cases {
            assert_eq!(failure.host_outcome(), outcome, "{failure:?}");
            let unreachable = failure.is_unreachable();
            let error = failure.clone().into_error(host, timeout, 1024);
            assert!(expected(&error), "{failure:?} → {error:?}");
            assert_eq!(
                unreachable,
                error.is_not_sent() && !matches!(error, Error::NotSent(NotSent::Build(_)))
            );
        }
    }

    #[tokio::test]
    async fn a_dns_failure_is_recognised_through_reqwest() {
        let http = client(Some(Arc::new(FailingResolver)));
        let url = Url::parse("http://api.mch.weixin.qq.com/pay/micropay").unwrap();
        let failure = exchange(&http, &url, "<xml/>", Duration::from_secs(5), 1024)
            .await
            .unwrap_err();
        assert_eq!(failure, Failure::Dns);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        // Bind a port, then free it, so that nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{address}/pay/micropay")).unwrap();
        let failure = exchange(&client(None), &url, "<xml/>", Duration::from_secs(5), 1024)
            .await
            .unwrap_err();
        assert!(matches!(failure, Failure::Connect(_)), "{failure:?}");
    }

    #[test]
    fn error_chains_skip_repeated_messages() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: inner")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("top")]
        struct Top(#[source] Outer);
        assert_eq!(error_chain(&Top(Outer(Inner))), "top: outer: inner");
    }
}
