//! The shop's local certificate authority and the proxy's server certificate, made by
//! `paycode-proxy tls init` (and `tls renew`) and `demo --tls`.
//!
//! The CA is created once and kept: tablets trust it once, and every later server
//! certificate (a renewal, a new address) is signed by the same CA so nothing has to be
//! trusted again. Server certificates live at most [`SERVER_CERT_MAX_DAYS`] days, which
//! Apple devices require even under a user-installed CA (docs/tablets.md §2). Keys are
//! ECDSA P-256 with SHA-256 signatures; private keys are written with mode 0600.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::private_file::write_private;

/// The longest a server certificate may live: 825 days, Apple's limit for TLS server
/// certificates (docs/tablets.md §2).
pub const SERVER_CERT_MAX_DAYS: u32 = 825;

/// How long the local CA lives: ten years, so tablets trust it once.
pub const CA_VALIDITY_DAYS: u32 = 3650;

/// The organisation written into every certificate made here.
const ORGANISATION: &str = "Paycode";

/// The files `tls init` writes into its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `ca.pem`: the local CA's certificate. Public: tablets install it.
    pub ca_pem: PathBuf,
    /// `ca-key.pem`: the CA's private key (mode 0600). Only `tls init`/`tls renew` read it.
    pub ca_key_pem: PathBuf,
    /// `server.pem`: the server certificate followed by the CA certificate.
    pub server_pem: PathBuf,
    /// `server-key.pem`: the server's private key (mode 0600).
    pub server_key_pem: PathBuf,
}

impl TlsFiles {
    /// The file names inside `dir`.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            dir: dir.to_owned(),
            ca_pem: dir.join("ca.pem"),
            ca_key_pem: dir.join("ca-key.pem"),
            server_pem: dir.join("server.pem"),
            server_key_pem: dir.join("server-key.pem"),
        }
    }
}

/// The names a server certificate is issued for: DNS names and IP addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerNames {
    /// Host names, e.g. `paycode.local`.
    pub hosts: Vec<String>,
    /// Addresses, e.g. `192.168.1.10`.
    pub ips: Vec<IpAddr>,
}

impl ServerNames {
    fn subject_alt_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect()
    }
}

/// What [`issue`] did.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Where the files are.
    pub files: TlsFiles,
    /// Whether a new CA was made (`false`: the existing one signed the certificate).
    pub new_ca: bool,
    /// The server certificate's first day of validity.
    pub not_before: OffsetDateTime,
    /// The server certificate's last instant of validity.
    pub not_after: OffsetDateTime,
}

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// No host name or address was given.
    #[error("give at least one --host NAME or --ip ADDRESS that tablets use to reach the proxy")]
    NoNames,
    /// A validity outside 1..=825 days was asked for.
    #[error("a server certificate may be valid for 1 to 825 days (Apple's limit), not {0}")]
    Validity(u32),
    /// Only one of the CA's two files exists.
    #[error(
        "{missing} is missing but {present} exists; restore it, or move both away to make a new CA (tablets must then trust the new one)"
    )]
    HalfCa {
        /// The file that is missing.
        missing: PathBuf,
        /// The file that exists.
        present: PathBuf,
    },
    /// The existing CA could not be read.
    #[error("cannot use the existing CA in {path}: {message}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// rcgen refused.
    #[error("cannot make the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Issues a server certificate for `names`, valid for `days` (at most
/// [`SERVER_CERT_MAX_DAYS`]) from an hour ago (allowing for a tablet's clock running
/// slightly behind), signed by the CA in `dir`, which is made first if `dir` has none.
/// Writes `server.pem` and `server-key.pem` (and, for a new CA, `ca.pem` and `ca-key.pem`).
pub fn issue(dir: &Path, names: &ServerNames, days: u32) -> Result<Issued, PkiError> {
    if names.hosts.is_empty() && names.ips.is_empty() {
        return Err(PkiError::NoNames);
    }
    if !(1..=SERVER_CERT_MAX_DAYS).contains(&days) {
        return Err(PkiError::Validity(days));
    }
    let files = TlsFiles::in_dir(dir);
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let now = OffsetDateTime::now_utc();
    let (ca, new_ca) = match (files.ca_pem.is_file(), files.ca_key_pem.is_file()) {
        (true, true) => (LocalCa::load(&files)?, false),
        (false, false) => (LocalCa::create(&files, now)?, true),
        (true, false) => {
            return Err(PkiError::HalfCa {
                missing: files.ca_key_pem.clone(),
                present: files.ca_pem.clone(),
            });
        }
        (false, true) => {
            return Err(PkiError::HalfCa {
                missing: files.ca_pem.clone(),
                present: files.ca_key_pem.clone(),
            });
        }
    };
    let not_before = now - Duration::hours(1);
    let not_after = not_before + Duration::days(i64::from(days));
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.subject_alt_names())?;
    params.distinguished_name = distinguished_name(
        names
            .hosts
            .first()
            .cloned()
            .or_else(|| names.ips.first().map(IpAddr::to_string))
            .as_deref()
            .unwrap_or("paycode-proxy"),
    );
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let certificate = params.signed_by(&key, &ca.certificate, &ca.key)?;
    let chain = format!("{}{}", certificate.pem(), ca.pem);
    write_file(&files.server_pem, chain.as_bytes(), false)?;
    write_file(&files.server_key_pem, key.serialize_pem().as_bytes(), true)?;
    Ok(Issued {
        files,
        new_ca,
        not_before,
        not_after,
    })
}

/// The CA as an issuer: its certificate (rebuilt from the stored subject and key, which is
/// all a signature needs) and key, with the PEM the tablets trust.
struct LocalCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
    pem: String,
}

impl LocalCa {
    fn create(files: &TlsFiles, now: OffsetDateTime) -> Result<LocalCa, PkiError> {
        let key = KeyPair::generate()?;
        let mut suffix = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
        // A per-shop suffix tells two shops' CAs apart in a tablet's list of certificates.
        let common_name = format!("Paycode local CA {}", hex::encode(suffix));
        let mut params = ca_params(&common_name);
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(i64::from(CA_VALIDITY_DAYS));
        let certificate = params.self_signed(&key)?;
        let pem = certificate.pem();
        write_file(&files.ca_key_pem, key.serialize_pem().as_bytes(), true)?;
        write_file(&files.ca_pem, pem.as_bytes(), false)?;
        Ok(LocalCa {
            certificate,
            key,
            pem,
        })
    }

    fn load(files: &TlsFiles) -> Result<LocalCa, PkiError> {
        let bad = |path: &Path, message: String| PkiError::BadCa {
            path: path.to_owned(),
            message,
        };
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| PkiError::Io {
                path: path.to_owned(),
                source,
            })
        };
        let pem = read(&files.ca_pem)?;
        let key = KeyPair::from_pem(&read(&files.ca_key_pem)?)
            .map_err(|error| bad(&files.ca_key_pem, error.to_string()))?;
        let der = super::inspect::first_certificate(pem.as_bytes())
            .map_err(|message| bad(&files.ca_pem, message))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|error| bad(&files.ca_pem, error.to_string()))?;
        if parsed.public_key().raw != key.public_key_der().as_slice() {
            return Err(bad(
                &files.ca_key_pem,
                "the key does not belong to ca.pem".to_owned(),
            ));
        }
        let common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|name| name.as_str().ok())
            .ok_or_else(|| bad(&files.ca_pem, "the CA has no common name".to_owned()))?
            .to_owned();
        // Signing needs the issuer's subject and key only; the rebuilt certificate is never
        // written, ca.pem stays the one tablets trust.
        let certificate = ca_params(&common_name).self_signed(&key)?;
        Ok(LocalCa {
            certificate,
            key,
            pem,
        })
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, ORGANISATION);
    name
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), PkiError> {
    let written = if private {
        write_private(path, contents)
    } else {
        std::fs::write(path, contents)
    };
    written.map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}
