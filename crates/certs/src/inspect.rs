//! Inspection: what a certificate says (serial, validity, SANs, issuer,
//! usages, SHA-256 fingerprint) and whether a CA signed it.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};
use crate::pem;

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN, e.g. `CN=zk`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, lowercase hex without separators.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Extended key usage serverAuth.
    pub server_auth: bool,
    /// Extended key usage clientAuth.
    pub client_auth: bool,
    /// SHA-256 of the DER, lowercase hex without separators.
    pub fingerprint_sha256: String,
}

impl CertInfo {
    /// Time left until `not_after` at `now` (negative when expired).
    pub fn remaining(&self, now: OffsetDateTime) -> time::Duration {
        self.not_after - now
    }

    /// Whether the certificate names `host` (exactly or by a one-label wildcard).
    pub fn covers_dns_name(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.dns_names.iter().any(|san| {
            let san = san.to_ascii_lowercase();
            match san.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => san == host,
            }
        })
    }
}

/// Inspect the first certificate of a PEM text.
pub fn inspect_pem(text: &str, what: &str) -> Result<CertInfo> {
    let certs = pem::certificates(text, what)?;
    let Some(der) = certs.first() else {
        return Err(Error::Certificate {
            what: what.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    };
    inspect_der(der, what)
}

/// Inspect a DER certificate.
pub fn inspect_der(der: &[u8], what: &str) -> Result<CertInfo> {
    let cert = parse(der, what)?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let (server_auth, client_auth) = match cert.extended_key_usage() {
        Ok(Some(eku)) => (eku.value.server_auth, eku.value.client_auth),
        _ => (false, false),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial_hex: hex::encode(cert.raw_serial())
            .trim_start_matches("00")
            .to_owned(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        dns_names,
        ip_addresses,
        is_ca: cert.is_ca(),
        server_auth,
        client_auth,
        fingerprint_sha256: fingerprint(der),
    })
}

/// SHA-256 of DER bytes, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Whether `ca_der` signed `cert_der` (issuer name matches and the
/// signature verifies with the CA's public key).
pub fn is_signed_by(cert_der: &[u8], ca_der: &[u8]) -> Result<bool> {
    let cert = parse(cert_der, "certificate")?;
    let ca = parse(ca_der, "CA certificate")?;
    if cert.issuer() != ca.subject() {
        return Ok(false);
    }
    Ok(cert.verify_signature(Some(ca.public_key())).is_ok())
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| Error::Certificate {
            what: what.to_owned(),
            reason: e.to_string(),
        })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
