//! The merchant's API client certificate (docs/wechat-pay.md §1.4), needed for `/secapi/*` calls.
//!
//! WeChat issues it as `apiclient_cert.p12` (certificate and private key; the password is the
//! merchant number `mch_id`) and as the PEM pair `apiclient_cert.pem` + `apiclient_key.pem`.
//! Both load into a [`ClientIdentity`], which checks what the TLS layer would otherwise report
//! as an opaque handshake failure much later: that there is a certificate and a key, and that
//! they belong together. Two more checks are separate, so that a `check` command can still
//! load a bad certificate and show what is wrong with it ([`ClientIdentity::info`]):
//! - validity in time ([`ClientIdentity::check_validity`]), which
//!   [`Client::new`](super::Client::new) always applies, so no client runs with an expired
//!   certificate;
//! - the subject CN being the merchant number ([`ClientIdentity::check_mch_id`]), which the
//!   caller chooses to apply: WeChat API certificates carry `CN=<mch_id>`, and in provider mode
//!   that is the provider's number.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

/// Why a client certificate could not be loaded or is not usable.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A certificate, key or `.p12` file could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `.p12` MAC did not verify or its contents did not decrypt: the password is wrong.
    #[error(
        "wrong .p12 password: the .p12 password is the merchant number (mch_id) — check mch_id"
    )]
    WrongP12Password,
    /// The `.p12` file is not a PKCS#12 archive this crate can read.
    #[error("the .p12 file is malformed or unsupported: {0}")]
    MalformedP12(String),
    /// A PEM file could not be parsed.
    #[error("{path} is not valid PEM")]
    MalformedPem {
        /// The file.
        path: PathBuf,
    },
    /// No certificate was found (an empty PEM file, a key file passed as the certificate, or a
    /// `.p12` holding only a key).
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// No private key was found (a certificate passed as the key file, or a `.p12` exported
    /// without its key).
    #[error("no private key found in {0}")]
    NoPrivateKey(String),
    /// The private key is of a type or encoding rustls cannot use.
    #[error("the private key is not usable: {0}")]
    UnsupportedKey(String),
    /// The certificate's DER does not parse.
    #[error("the certificate does not parse: {0}")]
    BadCertificate(String),
    /// The private key does not belong to the certificate (for example the files of two
    /// different merchants, or a key and a certificate swapped between downloads).
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The certificate's validity period has ended.
    #[error("the certificate expired on {not_after}")]
    Expired {
        /// The end of the validity period.
        not_after: DateTime<Utc>,
    },
    /// The certificate's validity period has not started yet (or the clock is wrong).
    #[error("the certificate is not valid before {not_before}")]
    NotYetValid {
        /// The start of the validity period.
        not_before: DateTime<Utc>,
    },
    /// The certificate's subject CN is not the expected merchant number.
    #[error(
        "the certificate's CN is {actual:?} but mch_id is {expected:?}: WeChat API certificates carry CN=<mch_id>"
    )]
    CommonNameMismatch {
        /// The `mch_id` the caller expected.
        expected: String,
        /// The subject CN, if the certificate has one.
        actual: Option<String>,
    },
}

/// What a `check` command shows about a client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject distinguished name, e.g. `CN=1900000109, O=…`.
    pub subject: String,
    /// The serial number as colon-separated hex.
    pub serial: String,
    /// The start of the validity period.
    pub not_before: DateTime<Utc>,
    /// The end of the validity period.
    pub not_after: DateTime<Utc>,
    /// Whole days from "now" (as passed to [`ClientIdentity::info`]) until `not_after`;
    /// negative once expired.
    pub days_until_expiry: i64,
    /// Whether the subject CN equals the `mch_id` passed to [`ClientIdentity::info`].
    pub mch_id_matches: bool,
}

/// A client certificate (with its chain) and the matching private key, ready for mutual TLS.
///
/// `Debug` shows the certificate's subject and serial, never the key.
pub struct ClientIdentity {
    /// Leaf certificate first, then any intermediates.
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        // `PrivateKeyDer` is deliberately not `Clone`; copying the key is explicit here.
        ClientIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ClientIdentity");
        match parse_leaf(&self.chain[0]) {
            Ok(leaf) => debug
                .field("subject", &leaf.subject().to_string())
                .field("serial", &leaf.raw_serial_as_string()),
            Err(_) => debug.field("subject", &"<unparsable>"),
        };
        debug.field("key", &"<redacted>").finish()
    }
}

impl ClientIdentity {
    /// Loads `apiclient_cert.pem` and `apiclient_key.pem`.
    ///
    /// The key may be PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`). A single file holding both works too (pass it twice). The
    /// key must match the certificate. Validity in time is not checked here (see
    /// [`check_validity`](Self::check_validity)).
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<ClientIdentity, IdentityError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let identity = ClientIdentity::from_pem(&cert_pem, &key_pem).map_err(|error| {
            // Name the file in the "which file is wrong" errors.
            match error {
                IdentityError::MalformedPem { .. } => IdentityError::MalformedPem {
                    path: if CertificateDer::pem_slice_iter(&cert_pem).any(|c| c.is_err()) {
                        cert_path.to_owned()
                    } else {
                        key_path.to_owned()
                    },
                },
                IdentityError::NoCertificate(_) => {
                    IdentityError::NoCertificate(cert_path.display().to_string())
                }
                IdentityError::NoPrivateKey(_) => {
                    IdentityError::NoPrivateKey(key_path.display().to_string())
                }
                other => other,
            }
        })?;
        Ok(identity)
    }

    /// Loads a certificate chain and a private key from PEM text (see
    /// [`from_pem_files`](Self::from_pem_files)).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ClientIdentity, IdentityError> {
        let malformed = || IdentityError::MalformedPem {
            path: PathBuf::from("<PEM text>"),
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| malformed())?;
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate("the certificate PEM".into()));
        }
        let key = first_private_key(key_pem)
            .map_err(|_| malformed())?
            .ok_or_else(|| IdentityError::NoPrivateKey("the key PEM".into()))?;
        ClientIdentity::new(chain, key)
    }

    /// Loads `apiclient_cert.p12`, whose password is the merchant number `mch_id`.
    pub fn from_p12_file(
        path: impl AsRef<Path>,
        mch_id: &str,
    ) -> Result<ClientIdentity, IdentityError> {
        let path = path.as_ref();
        let der = read(path)?;
        ClientIdentity::from_p12(&der, mch_id).map_err(|error| match error {
            IdentityError::NoCertificate(_) => {
                IdentityError::NoCertificate(path.display().to_string())
            }
            IdentityError::NoPrivateKey(_) => {
                IdentityError::NoPrivateKey(path.display().to_string())
            }
            other => other,
        })
    }

    /// Loads a PKCS#12 archive from memory (see [`from_p12_file`](Self::from_p12_file)).
    ///
    /// The certificate used is the one whose public key matches the archive's private key;
    /// the other certificates follow it as the chain.
    pub fn from_p12(der: &[u8], password: &str) -> Result<ClientIdentity, IdentityError> {
        use p12_keystore::error::Error as P12Error;
        let archive =
            p12_keystore::Pkcs12Archive::from_pkcs12(der, password).map_err(
                |error| match error {
                    // A MAC that does not verify, or contents that do not decrypt to valid
                    // padding, both mean the password is wrong.
                    P12Error::MacError(_) | P12Error::UnpadError => IdentityError::WrongP12Password,
                    other => IdentityError::MalformedP12(other.to_string()),
                },
            )?;
        let key_bag = archive
            .keys
            .first()
            .ok_or_else(|| IdentityError::NoPrivateKey("the .p12".into()))?;
        if archive.certs.is_empty() {
            return Err(IdentityError::NoCertificate("the .p12".into()));
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_bag.key.as_der().to_vec()));
        let key_public = public_key_bits_of_key(&key)?;
        // Put the certificate that matches the key first; if none does, keep the archive's
        // order so that `new` reports the mismatch.
        let mut certs: Vec<CertificateDer<'static>> = archive
            .certs
            .iter()
            .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
            .collect();
        if let Some(position) = certs
            .iter()
            .position(|cert| public_key_bits_of_cert(cert).is_ok_and(|bits| bits == key_public))
        {
            let leaf = certs.remove(position);
            certs.insert(0, leaf);
        }
        ClientIdentity::new(certs, key)
    }

    /// Checks and wraps a chain (leaf first) and its key: the key must be usable and match the
    /// leaf.
    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ClientIdentity, IdentityError> {
        let leaf_der = chain
            .first()
            .ok_or_else(|| IdentityError::NoCertificate("the chain".into()))?;
        if public_key_bits_of_key(&key)? != public_key_bits_of_cert(leaf_der)? {
            return Err(IdentityError::KeyMismatch);
        }
        Ok(ClientIdentity { chain, key })
    }

    /// Fails unless the leaf certificate is valid at `now` (pass `Utc::now()`, or a later
    /// instant to warn before expiry).
    pub fn check_validity(&self, now: DateTime<Utc>) -> Result<(), IdentityError> {
        let (not_before, not_after) = self.validity()?;
        if now < not_before {
            return Err(IdentityError::NotYetValid { not_before });
        }
        if now > not_after {
            return Err(IdentityError::Expired { not_after });
        }
        Ok(())
    }

    /// Fails unless the leaf certificate's subject CN is `mch_id`, as on every WeChat Pay API
    /// certificate. Catches a certificate of the wrong merchant (or, in provider mode, the
    /// sub-merchant's instead of the provider's) before WeChat answers "certificate not match".
    pub fn check_mch_id(&self, mch_id: &str) -> Result<(), IdentityError> {
        let actual = self.common_name()?;
        if actual.as_deref() == Some(mch_id) {
            Ok(())
        } else {
            Err(IdentityError::CommonNameMismatch {
                expected: mch_id.to_owned(),
                actual,
            })
        }
    }

    /// A summary of the leaf certificate for a `check` command, relative to `now` and the
    /// expected `mch_id`.
    pub fn info(&self, mch_id: &str, now: DateTime<Utc>) -> Result<CertificateInfo, IdentityError> {
        let leaf = parse_leaf(&self.chain[0])?;
        let (not_before, not_after) = self.validity()?;
        Ok(CertificateInfo {
            subject: leaf.subject().to_string(),
            serial: leaf.raw_serial_as_string(),
            not_before,
            not_after,
            days_until_expiry: (not_after - now).num_days(),
            mch_id_matches: self.common_name()?.as_deref() == Some(mch_id),
        })
    }

    /// The leaf certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The identity in the form reqwest's rustls backend takes: the key and the chain as
    /// PEM. Re-encoding keeps the key's original kind (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Identity, IdentityError> {
        let mut pem = String::new();
        let (label, key_der) = match &self.key {
            PrivateKeyDer::Pkcs1(key) => ("RSA PRIVATE KEY", key.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(key) => ("EC PRIVATE KEY", key.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(key) => ("PRIVATE KEY", key.secret_pkcs8_der()),
            // `PrivateKeyDer` is non-exhaustive; every kind the loaders produce is above.
            _ => return Err(IdentityError::UnsupportedKey("unknown key encoding".into())),
        };
        push_pem(&mut pem, label, key_der);
        for cert in &self.chain {
            push_pem(&mut pem, "CERTIFICATE", cert);
        }
        reqwest::Identity::from_pem(pem.as_bytes())
            .map_err(|error| IdentityError::UnsupportedKey(error.to_string()))
    }

    fn validity(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), IdentityError> {
        let leaf = parse_leaf(&self.chain[0])?;
        let validity = leaf.validity();
        Ok((
            timestamp(validity.not_before.timestamp())?,
            timestamp(validity.not_after.timestamp())?,
        ))
    }

    fn common_name(&self) -> Result<Option<String>, IdentityError> {
        let leaf = parse_leaf(&self.chain[0])?;
        Ok(leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// The first private key of any supported kind in `pem`, skipping certificates and other
/// sections (so a combined cert+key file works as the key file).
fn first_private_key(pem: &[u8]) -> Result<Option<PrivateKeyDer<'static>>, ()> {
    for section in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem) {
        let (kind, der) = section.map_err(|_| ())?;
        let key = match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            _ => continue,
        };
        return Ok(Some(key));
    }
    Ok(None)
}

fn parse_leaf<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, IdentityError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|error| IdentityError::BadCertificate(error.to_string()))
}

/// The raw public key bits (the SubjectPublicKeyInfo's BIT STRING) of a certificate.
fn public_key_bits_of_cert(der: &CertificateDer<'_>) -> Result<Vec<u8>, IdentityError> {
    let cert = parse_leaf(der)?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// The raw public key bits derived from a private key. Comparing the bits rather than the
/// whole SubjectPublicKeyInfo ignores harmless encoding differences in the algorithm field.
fn public_key_bits_of_key(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, IdentityError> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|error| IdentityError::UnsupportedKey(error.to_string()))?;
    let spki = signing_key.public_key().ok_or_else(|| {
        IdentityError::UnsupportedKey("the key's public half cannot be derived".into())
    })?;
    let (_, parsed) = SubjectPublicKeyInfo::from_der(spki.as_ref())
        .map_err(|error| IdentityError::UnsupportedKey(error.to_string()))?;
    Ok(parsed.subject_public_key.data.to_vec())
}

fn timestamp(seconds: i64) -> Result<DateTime<Utc>, IdentityError> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| {
        IdentityError::BadCertificate(format!("validity time {seconds} is out of range"))
    })
}

fn push_pem(out: &mut String, label: &str, der: &[u8]) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let encoded = BASE64.encode(der);
    // PEM lines are at most 64 characters; base64 output is ASCII, so byte chunks are safe.
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Client, ClientBuildError, ClientConfig};
    use crate::sign::ApiKey;
    use p12_keystore::{
        Certificate as P12Certificate, KeyStore, KeyStoreEntry, PrivateKey as P12PrivateKey,
        PrivateKeyChain,
    };
    use rcgen::{CertificateParams, DnType, KeyPair, date_time_ymd};

    const MCH_ID: &str = "1900000109";

    struct Generated {
        cert_pem: String,
        cert_der: Vec<u8>,
        key_pem: String,
        key_der: Vec<u8>,
    }

    fn generate(
        common_name: &str,
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> Generated {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Paycode Test Merchant");
        params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params.self_signed(&key).unwrap();
        Generated {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    fn valid(common_name: &str) -> Generated {
        generate(common_name, (2020, 1, 1), (2099, 1, 1))
    }

    fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn temp_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wxpay-identity-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn p12(generated: &Generated, password: &str) -> Vec<u8> {
        let chain = PrivateKeyChain::new(
            "local-key-id",
            P12PrivateKey::from_der(&generated.key_der).unwrap(),
            [P12Certificate::from_der(&generated.cert_der).unwrap()],
        );
        let mut store = KeyStore::new();
        store.add_entry("apiclient", KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).write().unwrap()
    }

    #[test]
    fn pem_pair_loads_and_reports_info() {
        // Arrange
        let dir = temp_dir("pem");
        let generated = valid(MCH_ID);
        let cert_path = write(&dir, "apiclient_cert.pem", generated.cert_pem.as_bytes());
        let key_path = write(&dir, "apiclient_key.pem", generated.key_pem.as_bytes());
        // Act
        let identity = ClientIdentity::from_pem_files(&cert_path, &key_path).unwrap();
        let now = Utc::now();
        let info = identity.info(MCH_ID, now).unwrap();
        // Assert
        assert!(info.subject.contains("CN=1900000109"), "{}", info.subject);
        assert!(info.mch_id_matches);
        assert!(info.days_until_expiry > 365);
        assert_eq!(info.not_after.format("%Y-%m-%d").to_string(), "2099-01-01");
        assert!(!info.serial.is_empty());
        assert!(identity.check_mch_id(MCH_ID).is_ok());
        assert!(identity.to_reqwest().is_ok());
        // The key never shows in Debug.
        let debug = format!("{identity:?}");
        assert!(
            debug.contains("<redacted>") && debug.contains("1900000109"),
            "{debug}"
        );
        // A combined file works as both arguments.
        let both = write(
            &dir,
            "both.pem",
            format!("{}{}", generated.cert_pem, generated.key_pem).as_bytes(),
        );
        assert!(ClientIdentity::from_pem_files(&both, &both).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn p12_loads_with_mch_id_and_refuses_a_wrong_password() {
        let dir = temp_dir("p12");
        let generated = valid(MCH_ID);
        let path = write(&dir, "apiclient_cert.p12", &p12(&generated, MCH_ID));
        let identity = ClientIdentity::from_p12_file(&path, MCH_ID).unwrap();
        assert_eq!(
            identity.certificate().as_ref(),
            generated.cert_der.as_slice()
        );
        assert!(identity.to_reqwest().is_ok());

        let error = ClientIdentity::from_p12_file(&path, "1900000108").unwrap_err();
        assert!(
            matches!(error, IdentityError::WrongP12Password),
            "{error:?}"
        );
        assert!(error.to_string().contains("merchant number (mch_id)"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unreadable_files_and_missing_parts_are_reported() {
        let dir = temp_dir("missing");
        let generated = valid(MCH_ID);
        let cert_path = write(&dir, "cert.pem", generated.cert_pem.as_bytes());
        let key_path = write(&dir, "key.pem", generated.key_pem.as_bytes());
        let absent = dir.join("absent.pem");
        assert!(matches!(
            ClientIdentity::from_pem_files(&absent, &key_path),
            Err(IdentityError::Unreadable { path, .. }) if path == absent
        ));
        // Swapped arguments: no certificate in the "certificate" file.
        assert!(matches!(
            ClientIdentity::from_pem_files(&key_path, &cert_path),
            Err(IdentityError::NoCertificate(file)) if file.ends_with("key.pem")
        ));
        // The certificate given twice: no key.
        assert!(matches!(
            ClientIdentity::from_pem_files(&cert_path, &cert_path),
            Err(IdentityError::NoPrivateKey(file)) if file.ends_with("cert.pem")
        ));
        assert!(matches!(
            ClientIdentity::from_p12(b"not a p12", MCH_ID),
            Err(IdentityError::MalformedP12(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn expired_and_not_yet_valid_certificates_are_refused() {
        let expired = generate(MCH_ID, (2015, 1, 1), (2020, 1, 1));
        // An expired certificate still loads, so that a `check` command can describe it …
        let identity =
            ClientIdentity::from_pem(expired.cert_pem.as_bytes(), expired.key_pem.as_bytes())
                .unwrap();
        assert!(identity.info(MCH_ID, Utc::now()).unwrap().days_until_expiry < 0);
        // … but it fails the validity check, and a client cannot be built with it.
        let error = identity.check_validity(Utc::now()).unwrap_err();
        assert!(
            matches!(error, IdentityError::Expired { not_after } if not_after.format("%Y").to_string() == "2020"),
            "{error:?}"
        );
        let mut config = ClientConfig::new("wx", MCH_ID, ApiKey::new("k"));
        config.identity = Some(identity);
        assert!(matches!(
            Client::new(config),
            Err(ClientBuildError::Identity(IdentityError::Expired { .. }))
        ));
        let future = generate(MCH_ID, (2098, 1, 1), (2099, 1, 1));
        let identity =
            ClientIdentity::from_pem(future.cert_pem.as_bytes(), future.key_pem.as_bytes())
                .unwrap();
        assert!(matches!(
            identity.check_validity(Utc::now()),
            Err(IdentityError::NotYetValid { .. })
        ));
    }

    #[test]
    fn a_certificate_of_another_merchant_fails_the_cn_check() {
        let generated = valid("1900000999");
        let identity =
            ClientIdentity::from_pem(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes())
                .unwrap();
        let error = identity.check_mch_id(MCH_ID).unwrap_err();
        assert!(matches!(
            &error,
            IdentityError::CommonNameMismatch { expected, actual }
                if expected == MCH_ID && actual.as_deref() == Some("1900000999")
        ));
        assert!(!identity.info(MCH_ID, Utc::now()).unwrap().mch_id_matches);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let first = valid(MCH_ID);
        let second = valid(MCH_ID);
        assert!(matches!(
            ClientIdentity::from_pem(first.cert_pem.as_bytes(), second.key_pem.as_bytes()),
            Err(IdentityError::KeyMismatch)
        ));
        // The same mismatch inside a .p12.
        let chain = PrivateKeyChain::new(
            "id",
            P12PrivateKey::from_der(&second.key_der).unwrap(),
            [P12Certificate::from_der(&first.cert_der).unwrap()],
        );
        let mut store = KeyStore::new();
        store.add_entry("apiclient", KeyStoreEntry::PrivateKeyChain(chain));
        let der = store.writer(MCH_ID).write().unwrap();
        assert!(matches!(
            ClientIdentity::from_p12(&der, MCH_ID),
            Err(IdentityError::KeyMismatch)
        ));
    }

    #[test]
    fn validity_is_checked_against_the_given_instant() {
        let generated = valid(MCH_ID);
        let identity =
            ClientIdentity::from_pem(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes())
                .unwrap();
        let after_expiry = DateTime::from_timestamp(4_102_444_800 + 86_400 * 365 * 80, 0).unwrap();
        assert!(matches!(
            identity.check_validity(after_expiry),
            Err(IdentityError::Expired { .. })
        ));
        let info = identity.info(MCH_ID, after_expiry).unwrap();
        assert!(info.days_until_expiry < 0);
    }
}
