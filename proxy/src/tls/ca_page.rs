//! The plain-HTTP listener that offers the local CA (`[server.tls] ca_listen`): a page
//! explaining how to trust it, and the certificate itself. A tablet that does not trust the
//! CA yet cannot open the HTTPS app, so this is the one thing served without TLS; it serves
//! nothing else (every other path is 404), and the CA certificate is public.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use url::Url;

/// Where the CA certificate is offered, in DER (what Android and iPadOS install).
pub const CA_CRT_PATH: &str = "/paycode-ca.crt";
/// Where the CA certificate is offered, in PEM (what Windows, macOS and tools take too).
pub const CA_PEM_PATH: &str = "/paycode-ca.pem";

/// How to trust the CA on each platform: (platform, steps). `tls init` prints these and the
/// page shows them (docs/tablets.md §3).
pub const TRUST_STEPS: [(&str, &str); 4] = [
    (
        "Android 11+",
        "download paycode-ca.crt, then Settings → Security → Encryption & credentials → \
         Install a certificate → CA certificate, and pick the file",
    ),
    (
        "iPadOS / iOS",
        "open paycode-ca.crt in Safari and allow the profile download, then Settings → \
         Profile Downloaded → Install; then Settings → General → About → Certificate Trust \
         Settings → enable full trust for the Paycode local CA",
    ),
    (
        "Windows",
        "open paycode-ca.crt (or run certmgr.msc) and install it into Trusted Root \
         Certification Authorities for the local machine",
    ),
    (
        "macOS",
        "open paycode-ca.pem in Keychain Access (System keychain), open the certificate and \
         set Trust → When using this certificate: Always Trust",
    ),
];

/// What the page serves.
#[derive(Clone, Debug)]
struct CaPage {
    pem: Arc<str>,
    der: Arc<[u8]>,
    app_url: Option<Url>,
}

/// The router of the CA listener for the CA certificate `ca_pem` (PEM text); `app_url`, when
/// known, is linked as the place to go once the CA is trusted.
pub fn router(ca_pem: &str, app_url: Option<Url>) -> Result<Router, String> {
    let der = super::inspect::first_certificate(ca_pem.as_bytes())?;
    let page = CaPage {
        pem: Arc::from(ca_pem),
        der: Arc::from(der.as_ref()),
        app_url,
    };
    Ok(Router::new()
        .route("/", get(index))
        .route(CA_CRT_PATH, get(crt))
        .route(CA_PEM_PATH, get(pem))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: this address only offers the Paycode CA certificate\n",
            )
        })
        .with_state(page))
}

async fn index(axum::extract::State(page): axum::extract::State<CaPage>) -> Html<String> {
    let mut steps = String::new();
    for (platform, how) in TRUST_STEPS {
        steps.push_str(&format!("<li><b>{platform}</b>: {how}.</li>\n"));
    }
    let next = match &page.app_url {
        Some(url) => format!(
            "<p>Then open the cashier app at <a href=\"{url}\">{url}</a> \
             (收银台). It should open without any certificate warning.</p>"
        ),
        None => String::new(),
    };
    Html(format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Paycode: 信任本店证书 / trust the shop's certificate</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5">
<h1>信任本店证书 · Trust this shop's certificate</h1>
<p>The Paycode cashier app runs over HTTPS with a certificate from this shop's own
certificate authority (CA). Install the CA once on each tablet or computer:</p>
<p><a href="{CA_CRT_PATH}">Download paycode-ca.crt</a> · <a href="{CA_PEM_PATH}">paycode-ca.pem</a></p>
<ol>
{steps}</ol>
{next}
<p>This page is plain HTTP so that a device can fetch the CA before it trusts it. It offers
nothing else: the app and its API are only served over HTTPS.</p>
</body>
</html>
"#
    ))
}

async fn crt(axum::extract::State(page): axum::extract::State<CaPage>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"paycode-ca.crt\"",
            ),
        ],
        page.der.to_vec(),
    )
        .into_response()
}

async fn pem(axum::extract::State(page): axum::extract::State<CaPage>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"paycode-ca.pem\"",
            ),
        ],
        page.pem.to_string(),
    )
        .into_response()
}
