//! Issuance: self-signed CAs and leaf certificates signed by a CA, with
//! random serials, SANs (DNS, wildcard, IP), server and client usages.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::inspect::{self, CertInfo};
use crate::key::{KeyAlgorithm, PrivateKey};
use crate::pem;

/// Certificates start this long before "now", so members with a slightly
/// slow clock accept them at once.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The subject of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Common name (CN).
    pub common_name: String,
    /// Organization (O), if any.
    pub organization: Option<String>,
    /// Organizational unit (OU), if any.
    pub organizational_unit: Option<String>,
}

/// What a new CA looks like.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// Its subject.
    pub subject: Subject,
    /// How long it is valid.
    pub validity: Duration,
    /// Its key algorithm.
    pub algorithm: KeyAlgorithm,
}

/// What a leaf certificate looks like.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Its subject.
    pub subject: Subject,
    /// DNS SANs (wildcards like `*.zk-pods.db.svc` allowed).
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// How long it is valid.
    pub validity: Duration,
    /// Extended key usage serverAuth.
    pub server_auth: bool,
    /// Extended key usage clientAuth.
    pub client_auth: bool,
}

/// A CA: its certificate and its key.
#[derive(Debug)]
pub struct Ca {
    cert_der: Vec<u8>,
    key: PrivateKey,
}

/// A freshly issued leaf certificate (the key stays with the caller).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The leaf, DER.
    pub cert_der: Vec<u8>,
    /// The leaf, PEM.
    pub cert_pem: String,
    /// Leaf then issuing CA, PEM (the `tls.crt` of a `kubernetes.io/tls` Secret).
    pub chain_pem: String,
    /// What the leaf says.
    pub info: CertInfo,
}

impl Ca {
    /// Create a self-signed CA with a new key.
    pub fn create(spec: &CaSpec) -> Result<Ca> {
        let key = PrivateKey::generate(spec.algorithm)?;
        let mut params = base_params(&spec.subject, spec.validity)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pair = key.key_pair()?;
        let cert = params
            .self_signed(&pair)
            .map_err(|e| issue_error(&spec.subject, e))?;
        Ok(Ca {
            cert_der: cert.der().to_vec(),
            key,
        })
    }

    /// Load a CA from its certificate and key PEM (e.g. a Secret's `tls.crt`
    /// and `tls.key`). Checks that the key belongs to the certificate and
    /// that the certificate is a CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str, what: &str) -> Result<Ca> {
        let certs = pem::certificates(cert_pem, what)?;
        let Some(cert_der) = certs.into_iter().next() else {
            return Err(Error::Certificate {
                what: what.to_owned(),
                reason: "no CERTIFICATE block".into(),
            });
        };
        let info = inspect::inspect_der(&cert_der, what)?;
        if !info.is_ca {
            return Err(Error::Certificate {
                what: what.to_owned(),
                reason: format!(
                    "{} is not a CA certificate (basicConstraints CA:FALSE)",
                    info.subject
                ),
            });
        }
        let key = PrivateKey::from_pem(key_pem, what)?;
        if key.public_key_sha256()? != crate::key::certificate_public_key_sha256(&cert_der)? {
            return Err(Error::Key(format!(
                "{what}: the private key does not belong to the CA certificate {}",
                info.subject
            )));
        }
        Ok(Ca { cert_der, key })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        pem::encode(pem::CERTIFICATE, &self.cert_der)
    }

    /// The CA key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Issue a leaf certificate for `key` (new, or reused when rotating
    /// without a new key).
    pub fn issue(&self, spec: &LeafSpec, key: &PrivateKey) -> Result<Issued> {
        let mut params = base_params(&spec.subject, spec.validity)?;
        params.use_authority_key_identifier_extension = true;
        params.is_ca = IsCa::ExplicitNoCa;
        params.subject_alt_names = subject_alt_names(spec)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if key.algorithm().is_rsa() {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        if spec.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let ca_pair = self.key.key_pair()?;
        let issuer = Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &ca_pair)
            .map_err(|e| issue_error(&spec.subject, e))?;
        let leaf_pair = key.key_pair()?;
        let cert = params
            .signed_by(&leaf_pair, &issuer)
            .map_err(|e| issue_error(&spec.subject, e))?;
        let cert_der = cert.der().to_vec();
        let cert_pem = pem::encode(pem::CERTIFICATE, &cert_der);
        let chain_pem = format!("{cert_pem}{}", self.cert_pem());
        let info = inspect::inspect_der(&cert_der, "issued certificate")?;
        Ok(Issued {
            cert_der,
            cert_pem,
            chain_pem,
            info,
        })
    }
}

fn base_params(subject: &Subject, validity: Duration) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now
        .checked_add(time::Duration::try_from(validity).map_err(|e| validity_error(e.to_string()))?)
        .ok_or_else(|| validity_error("it ends past the year 9999".into()))?;
    params.serial_number = Some(random_serial()?);
    params.distinguished_name = distinguished_name(subject);
    Ok(params)
}

fn distinguished_name(subject: &Subject) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(o) = &subject.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if let Some(ou) = &subject.organizational_unit {
        dn.push(DnType::OrganizationalUnitName, ou.as_str());
    }
    dn.push(DnType::CommonName, subject.common_name.as_str());
    dn
}

fn subject_alt_names(spec: &LeafSpec) -> Result<Vec<SanType>> {
    let mut sans = Vec::with_capacity(spec.dns_names.len() + spec.ip_addresses.len());
    for name in &spec.dns_names {
        let ia5 = name.as_str().try_into().map_err(|e| Error::Invalid {
            name: "dns_names",
            reason: format!("{name:?} is not a valid DNS name: {e}"),
        })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(spec.ip_addresses.iter().copied().map(SanType::IpAddress));
    Ok(sans)
}

/// 16 random bytes, positive and without a leading zero byte (RFC 5280: at most 20 octets).
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn validity_error(reason: String) -> Error {
    Error::Invalid {
        name: "duration",
        reason: format!("the validity cannot be represented: {reason}; use a shorter duration"),
    }
}

fn issue_error(subject: &Subject, e: rcgen::Error) -> Error {
    Error::Issue {
        what: subject.common_name.clone(),
        reason: e.to_string(),
    }
}
