//! HTTPS on the shop network (docs/tablets.md): the local CA and server certificate
//! ([`pki`], made by `paycode-proxy tls init`), reading and checking the serving
//! certificate ([`inspect`]), the TLS listener `serve` uses ([`listener`]), and the
//! plain-HTTP page that offers the CA to tablets that do not trust it yet ([`ca_page`]).

pub mod ca_page;
pub mod inspect;
pub mod listener;
pub mod pki;

use url::Url;

use crate::config::ServerConfig;

/// The address tablets open: `server.public_url` when set; otherwise `https://` with
/// `[server.tls]` (else `http://`), the serving certificate's first name (else `listen`'s
/// address) and `port`, the port actually bound.
pub fn app_url(server: &ServerConfig, port: u16) -> Url {
    if let Some(url) = &server.public_url {
        return url.clone();
    }
    let certificate_name = server.tls.as_ref().and_then(|tls| {
        let pem = std::fs::read(&tls.cert_pem).ok()?;
        let info = inspect::CertificateInfo::from_pem(&pem).ok()?;
        info.hosts
            .first()
            .cloned()
            .or_else(|| info.ips.first().map(ip_host))
    });
    let host = certificate_name.unwrap_or_else(|| ip_host(&server.listen.ip()));
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Every part is a valid URL component (a certificate name, an address, a port).
    Url::parse(&format!("{scheme}://{host}:{port}/"))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("a constant URL"))
}

fn ip_host(ip: &std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}
