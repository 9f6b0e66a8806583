//! Trust bundles: an ordered set of CA certificates (the `ca.crt` of a
//! Secret, or a truststore), deduplicated by fingerprint.

use crate::error::Result;
use crate::inspect::fingerprint;
use crate::pem;

/// CA certificates in order, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    certs: Vec<Vec<u8>>,
}

impl TrustBundle {
    /// An empty bundle.
    pub fn new() -> TrustBundle {
        TrustBundle::default()
    }

    /// Every certificate of a PEM text (duplicates dropped).
    pub fn from_pem(text: &str, what: &str) -> Result<TrustBundle> {
        let mut bundle = TrustBundle::new();
        for der in pem::certificates(text, what)? {
            bundle.add_der(der);
        }
        Ok(bundle)
    }

    /// Add a certificate; returns false when it was already there.
    pub fn add_der(&mut self, der: Vec<u8>) -> bool {
        if self.contains_der(&der) {
            return false;
        }
        self.certs.push(der);
        true
    }

    /// Add every certificate of another bundle; returns how many were new.
    pub fn extend(&mut self, other: &TrustBundle) -> usize {
        other
            .certs
            .iter()
            .filter(|der| self.add_der(der.to_vec()))
            .count()
    }

    /// Remove a certificate by SHA-256 fingerprint (hex); returns whether it was there.
    pub fn remove(&mut self, fingerprint_sha256: &str) -> bool {
        let before = self.certs.len();
        self.certs
            .retain(|der| !fingerprint(der).eq_ignore_ascii_case(fingerprint_sha256));
        self.certs.len() != before
    }

    /// Whether the bundle holds this certificate.
    pub fn contains_der(&self, der: &[u8]) -> bool {
        self.certs.iter().any(|c| c == der)
    }

    /// The certificates, DER, in order.
    pub fn certs(&self) -> &[Vec<u8>] {
        &self.certs
    }

    /// SHA-256 fingerprints, in order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs.iter().map(|c| fingerprint(c)).collect()
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The bundle as concatenated PEM.
    pub fn to_pem(&self) -> String {
        pem::encode_certificates(self.certs.iter().map(Vec::as_slice))
    }
}
