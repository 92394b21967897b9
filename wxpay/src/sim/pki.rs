//! The simulator's certificates: a private CA, the HTTPS server certificate and one merchant
//! client certificate (`CN=<mch_id>`) per configured merchant, as WeChat issues them.
//!
//! Everything is generated in memory at start-up. When the caller names a directory, the
//! files a merchant would download from the merchant platform are written there too:
//! `apiclient_cert.pem`, `apiclient_key.pem`, `apiclient_cert.p12` (password = mch_id) and
//! the CA as `ca.pem`, so a client can be configured exactly as in production.

use std::path::{Path, PathBuf};

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SimError;

/// A merchant's client identity: the certificate (`CN=<mch_id>`) and its private key.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The merchant number the certificate was issued to.
    pub mch_id: String,
    /// `apiclient_cert.pem`.
    pub cert_pem: String,
    /// `apiclient_key.pem` (PKCS#8).
    pub key_pem: String,
    /// `apiclient_cert.p12`: key, certificate and CA, password = mch_id.
    pub p12: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is a secret even in a simulator: keep it out of logs.
        f.debug_struct("ClientIdentity")
            .field("mch_id", &self.mch_id)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The certificate followed by the key, the form `reqwest::Identity::from_pem` reads.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// Where the certificate files were written.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The directory itself.
    pub dir: PathBuf,
    /// `ca.pem`: the CA that signed the server and client certificates.
    pub ca_pem: PathBuf,
    /// The first merchant's `apiclient_cert.pem`.
    pub client_cert_pem: PathBuf,
    /// The first merchant's `apiclient_key.pem`.
    pub client_key_pem: PathBuf,
    /// The first merchant's `apiclient_cert.p12` (password = mch_id).
    pub client_p12: PathBuf,
}

/// All certificates of one simulator instance.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) ca_der: CertificateDer<'static>,
    pub(crate) server_cert_der: CertificateDer<'static>,
    pub(crate) server_key_der: Vec<u8>,
    pub(crate) clients: Vec<ClientIdentity>,
}

impl Pki {
    /// Generates a CA, a server certificate for `127.0.0.1` and `localhost`, and one client
    /// certificate per merchant number.
    pub(crate) fn generate(mch_ids: &[String]) -> Result<Pki, SimError> {
        let pki_error = |error: rcgen::Error| SimError::Pki(error.to_string());

        let ca_key = KeyPair::generate().map_err(pki_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        ca_params.distinguished_name = name("Paycode WeChat Pay Simulator CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(pki_error)?;

        let server_key = KeyPair::generate().map_err(pki_error)?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(pki_error)?;
        server_params.distinguished_name = name("api.mch.weixin.qq.com (simulator)");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .map_err(pki_error)?;

        let mut clients = Vec::with_capacity(mch_ids.len());
        for mch_id in mch_ids {
            let client_key = KeyPair::generate().map_err(pki_error)?;
            let mut client_params =
                CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
            let mut distinguished_name = DistinguishedName::new();
            distinguished_name.push(DnType::CommonName, mch_id.as_str());
            distinguished_name.push(DnType::OrganizationalUnitName, "Paycode simulator");
            client_params.distinguished_name = distinguished_name;
            client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let client_cert = client_params
                .signed_by(&client_key, &ca_cert, &ca_key)
                .map_err(pki_error)?;
            let p12 = pkcs12(
                mch_id,
                client_cert.der(),
                &client_key.serialize_der(),
                ca_cert.der(),
            )?;
            clients.push(ClientIdentity {
                mch_id: mch_id.clone(),
                cert_pem: client_cert.pem(),
                key_pem: client_key.serialize_pem(),
                p12,
            });
        }

        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_cert_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
            clients,
        })
    }

    /// The server's private key in the form rustls takes.
    pub(crate) fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()))
    }

    /// Writes `ca.pem` and the first merchant's files into `dir`, and every further
    /// merchant's files into `dir/<mch_id>/`.
    pub(crate) fn write_to(&self, dir: &Path) -> Result<CertFiles, SimError> {
        let io_error = |path: &Path, error: std::io::Error| SimError::Io {
            path: path.to_owned(),
            message: error.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|error| io_error(dir, error))?;
        let write = |path: PathBuf, contents: &[u8]| -> Result<PathBuf, SimError> {
            std::fs::write(&path, contents).map_err(|error| io_error(&path, error))?;
            Ok(path)
        };
        // Private keys (and the .p12 holding one) are readable by their owner only.
        let write_private = |path: PathBuf, contents: &[u8]| -> Result<PathBuf, SimError> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                options.mode(0o600);
                if path.exists() {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|error| io_error(&path, error))?;
                }
            }
            let mut file = options
                .open(&path)
                .map_err(|error| io_error(&path, error))?;
            std::io::Write::write_all(&mut file, contents)
                .map_err(|error| io_error(&path, error))?;
            Ok(path)
        };
        let ca_pem = write(dir.join("ca.pem"), self.ca_pem.as_bytes())?;
        let mut first = None;
        for (index, client) in self.clients.iter().enumerate() {
            let client_dir = if index == 0 {
                dir.to_owned()
            } else {
                let sub = dir.join(&client.mch_id);
                std::fs::create_dir_all(&sub).map_err(|error| io_error(&sub, error))?;
                sub
            };
            let cert = write(
                client_dir.join("apiclient_cert.pem"),
                client.cert_pem.as_bytes(),
            )?;
            let key = write_private(
                client_dir.join("apiclient_key.pem"),
                client.key_pem.as_bytes(),
            )?;
            let p12 = write_private(client_dir.join("apiclient_cert.p12"), &client.p12)?;
            if index == 0 {
                first = Some((cert, key, p12));
            }
        }
        let (client_cert_pem, client_key_pem, client_p12) =
            first.ok_or_else(|| SimError::Config("no merchant configured".into()))?;
        Ok(CertFiles {
            dir: dir.to_owned(),
            ca_pem,
            client_cert_pem,
            client_key_pem,
            client_p12,
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, common_name);
    distinguished_name.push(DnType::OrganizationName, "Paycode");
    distinguished_name
}

/// Builds `apiclient_cert.p12` the way the merchant platform does: one key entry holding the
/// client certificate and its CA, protected by the merchant number.
fn pkcs12(
    mch_id: &str,
    cert_der: &[u8],
    key_der: &[u8],
    ca_der: &[u8],
) -> Result<Vec<u8>, SimError> {
    let p12_error = |error: p12_keystore::error::Error| SimError::Pki(error.to_string());
    let chain = PrivateKeyChain::new(
        mch_id.as_bytes(),
        PrivateKey::from_der(key_der).map_err(p12_error)?,
        [
            Certificate::from_der(cert_der).map_err(p12_error)?,
            Certificate::from_der(ca_der).map_err(p12_error)?,
        ],
    );
    let mut store = KeyStore::new();
    store.add_entry("apiclient", KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(mch_id).write().map_err(p12_error)
}

/// The common name (CN) of a DER certificate's subject, if it has one.
pub(crate) fn common_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(common_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_carry_the_merchant_number() {
        // Arrange
        let mch_ids = vec!["10000100".to_owned(), "1900000109".to_owned()];

        // Act
        let pki = Pki::generate(&mch_ids).expect("generate");

        // Assert
        assert_eq!(pki.clients.len(), 2);
        let der = rustls_pemfile::certs(&mut pki.clients[1].cert_pem.as_bytes())
            .next()
            .expect("one cert")
            .expect("pem");
        assert_eq!(common_name(&der).as_deref(), Some("1900000109"));
        let store = KeyStore::from_pkcs12(
            &pki.clients[0].p12,
            "10000100",
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .expect("p12 opens with the merchant number");
        let (_, chain) = store.private_key_chain().expect("a key entry");
        assert_eq!(chain.certs().len(), 2);
    }
}
