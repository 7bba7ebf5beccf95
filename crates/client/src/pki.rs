//! A small certificate authority for a cluster: the CA, the apiserver's
//! serving certificate and each component's client certificate (CN is the
//! user, each O a group), as `berthctl certs` and the tests make them.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen refused the parameters or the CA.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rcgen keeps one value per attribute type, so at most two groups fit
    /// (organizationName once by name and once by OID).
    #[error("a certificate can name at most two groups (O), not {0}")]
    TooManyGroups(usize),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (the apiserver, a kubelet's endpoint).
    Server,
    /// A TLS client (a user, a component).
    Client,
    /// Both (a kubelet serves and calls).
    Both,
}

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority that signs certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    /// A new self-signed CA named `cn`, valid for ten years.
    pub fn generate(cn: &str) -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Ca { issuer: Issuer::new(params, key), cert_pem: cert.pem(), key_pem })
    }

    /// An existing CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Ca { issuer, cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string() })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a certificate for `cn` in groups `orgs`, valid for the host
    /// names and IP addresses in `sans` (servers).
    pub fn issue(&self, cn: &str, orgs: &[&str], sans: &[String], usage: Usage) -> Result<Issued> {
        let mut params = CertificateParams::new(sans.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        match orgs {
            [] => {}
            [a] => params.distinguished_name.push(DnType::OrganizationName, *a),
            [a, b] => {
                params.distinguished_name.push(DnType::OrganizationName, *a);
                // The same attribute (2.5.4.10) once more, under another key of rcgen's map.
                params.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 10]), *b);
            }
            more => return Err(Error::TooManyGroups(more.len())),
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_issue_certificates_that_name_the_user_and_groups() {
        let ca = Ca::generate("berth-ca").expect("ca");
        let issued = ca.issue("alice", &["dev", "ops"], &[], Usage::Client).expect("issue");
        use rustls_pki_types::pem::PemObject as _;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem");
        let (cn, orgs) = berth_base::tls::certificate_identity(&der).expect("identity");
        assert_eq!(cn, "alice");
        assert_eq!(orgs, vec!["dev".to_string(), "ops".to_string()]);
        let again = Ca::from_pem(ca.cert_pem(), ca.key_pem()).expect("reload");
        again.issue("bob", &[], &["127.0.0.1".into()], Usage::Server).expect("issue from reloaded CA");
    }
}
