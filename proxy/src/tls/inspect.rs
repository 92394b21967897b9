//! Reading the serving certificate: the rustls configuration `serve` uses, and what `check`
//! reports about it (names, expiry, whether the key matches, whether the names cover the
//! host tablets use).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the serving certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsLoadError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair, e.g. the key does not belong to the certificate.
    #[error("server.tls.key_pem does not fit server.tls.cert_pem: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate chain and key from the two PEM files.
pub fn load_pair(
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsLoadError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsLoadError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let pem_error = |path: &Path, message: String| TlsLoadError::Pem {
        path: path.to_owned(),
        message,
    };
    let chain = rustls_pemfile::certs(&mut read(cert_pem)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(cert_pem, error.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(cert_pem, "no CERTIFICATE in the file".to_owned()));
    }
    let key = rustls_pemfile::private_key(&mut read(key_pem)?.as_slice())
        .map_err(|error| pem_error(key_pem, error.to_string()))?
        .ok_or_else(|| pem_error(key_pem, "no PRIVATE KEY in the file".to_owned()))?;
    Ok((chain, key))
}

/// The rustls server configuration for the pair, refusing a key that does not belong to the
/// certificate. ALPN offers HTTP/2 first: a tablet's first load then shares one connection
/// (one TLS handshake) for the page and all its files, instead of opening several HTTP/1.1
/// connections that each pay a handshake (docs/tablets.md §5).
pub fn server_config(
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsLoadError> {
    let (chain, key) = load_pair(cert_pem, key_pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, as `CN=…, O=…`.
    pub subject: String,
    /// The DNS names among its subject alternative names.
    pub hosts: Vec<String>,
    /// The IP addresses among its subject alternative names.
    pub ips: Vec<IpAddr>,
    /// The first instant it is valid.
    pub not_before: DateTime<Utc>,
    /// The last instant it is valid.
    pub not_after: DateTime<Utc>,
}

impl CertificateInfo {
    /// Reads the first certificate of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<CertificateInfo, String> {
        let der = first_certificate(pem)?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|error| error.to_string())?;
        let mut hosts = Vec::new();
        let mut ips = Vec::new();
        if let Some(names) = cert
            .subject_alternative_name()
            .map_err(|error| error.to_string())?
        {
            for name in &names.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(host) => {
                        hosts.push((*host).to_owned());
                    }
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                            ips.push(IpAddr::from(octets));
                        } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                            ips.push(IpAddr::from(octets));
                        }
                    }
                    _ => {}
                }
            }
        }
        let instant = |seconds: i64| {
            DateTime::<Utc>::from_timestamp(seconds, 0).ok_or("a date out of range".to_owned())
        };
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            hosts,
            ips,
            not_before: instant(cert.validity().not_before.timestamp())?,
            not_after: instant(cert.validity().not_after.timestamp())?,
        })
    }

    /// Whether the certificate is valid for `host` (a DNS name, or an IP address in text):
    /// an exact name, a `*.` wildcard covering one label, or an exact address.
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        let host = host.to_ascii_lowercase();
        self.hosts.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => name == host,
            }
        })
    }

    /// Every name, hosts then addresses, comma-separated.
    pub fn names(&self) -> String {
        self.hosts
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whole days from `now` until expiry (negative once expired).
    pub fn days_until_expiry(&self, now: DateTime<Utc>) -> i64 {
        (self.not_after - now).num_days()
    }
}

/// The DER of the first certificate in a PEM text.
pub fn first_certificate(pem: &[u8]) -> Result<CertificateDer<'static>, String> {
    rustls_pemfile::certs(&mut &pem[..])
        .next()
        .ok_or_else(|| "no CERTIFICATE in the file".to_owned())?
        .map_err(|error| error.to_string())
}
