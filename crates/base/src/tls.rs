//! TLS material shared by clients and servers: reading PEM certificates and
//! keys, the rustls server configuration (TLS 1.2+, optional or required
//! client certificates from one CA) that the apiserver and the kubelet's own
//! endpoint serve with, and the identity (CN, O) in a client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    /// The file holds no PEM private key.
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA bundle cannot verify client certificates.
    #[error("invalid client CA: {0}")]
    Verifier(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The crypto provider every Berth TLS endpoint uses (ring, no system libraries).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).filter_map(|c| c.ok()).collect();
    if certs.is_empty() {
        return Err(Error::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| Error::NoKey { path: path.to_path_buf() })
}

/// Whether a server asks for client certificates, and whether it insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificates (token authentication only).
    None,
    /// Verified against the CA when presented; a client without one may
    /// still authenticate otherwise (the apiserver).
    Optional,
    /// Every client must present one from the CA (the kubelet's endpoint,
    /// which only the apiserver may call).
    Required,
}

/// A TLS 1.2+ server configuration with ALPN h2 and http/1.1.
pub fn server_config(cert_file: &Path, key_file: &Path, client_ca: Option<&Path>, auth: ClientAuth) -> Result<rustls::ServerConfig> {
    let certs = load_certs(cert_file)?;
    let key = load_key(key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let mut config = match (client_ca, auth) {
        (Some(ca), ClientAuth::Optional | ClientAuth::Required) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| Error::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier).with_single_cert(certs, key)?
        }
        _ => builder.with_no_client_auth().with_single_cert(certs, key)?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The user (subject CN) and groups (each subject O) a client certificate
/// names, as Kubernetes reads them. None for a certificate that does not parse.
pub fn certificate_identity(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let cn = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let orgs = subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_string)).collect();
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_cn_and_organizations_from_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["x".into()]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:n1");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let (cn, orgs) = certificate_identity(cert.der()).expect("identity");
        assert_eq!(cn, "system:node:n1");
        assert_eq!(orgs, vec!["system:nodes".to_string()]);
    }
}
