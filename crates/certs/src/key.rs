//! Private keys: generation (ECDSA P-256/P-384 with ring through rcgen, RSA
//! 2048/4096 with the pure-Rust `rsa` crate), PKCS#8 encoding, and a type
//! that never shows its content.
//!
//! **Invariant**: [`PrivateKey`] has no `Display`, its `Debug` shows only the
//! algorithm, and its bytes are zeroized when it is dropped.

use std::fmt;
use std::str::FromStr;

use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, PublicKeyData,
};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::{der, pem};

/// Key algorithms dbops issues certificates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256, signed with SHA-256 (the default).
    EcdsaP256,
    /// ECDSA on NIST P-384, signed with SHA-384.
    EcdsaP384,
    /// RSA with a 2048-bit modulus, signed with SHA-256.
    Rsa2048,
    /// RSA with a 4096-bit modulus, signed with SHA-256.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [KeyAlgorithm; 4] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa4096,
    ];

    /// The name used in configuration: `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`, `rsa-4096`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096)
    }

    /// The `openssl req` arguments generating the same kind of key
    /// (`-newkey ...`), for the benchmark and tests.
    pub fn openssl_newkey_args(self) -> &'static [&'static str] {
        match self {
            KeyAlgorithm::EcdsaP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyAlgorithm::EcdsaP384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyAlgorithm::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyAlgorithm::Rsa4096 => &["-newkey", "rsa:4096"],
        }
    }

    pub(crate) fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096 => &PKCS_RSA_SHA256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<KeyAlgorithm> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::Invalid {
                name: "key_algorithm",
                reason: format!("{s:?} is not one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-4096"),
            })
    }
}

/// A private key as PKCS#8 DER. Zeroized on drop; never printed.
pub struct PrivateKey {
    der: Zeroizing<Vec<u8>>,
    algorithm: KeyAlgorithm,
}

impl PrivateKey {
    /// Generate a new key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<PrivateKey> {
        let der = match algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let pair = KeyPair::generate_for(algorithm.signature_algorithm())
                    .map_err(|e| Error::Key(format!("cannot generate a {algorithm} key: {e}")))?;
                Zeroizing::new(pair.serialize_der())
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096 => {
                let bits = if algorithm == KeyAlgorithm::Rsa2048 {
                    2048
                } else {
                    4096
                };
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
                    .map_err(|e| Error::Key(format!("cannot generate a {algorithm} key: {e}")))?;
                let doc = key.to_pkcs8_der().map_err(|e| {
                    Error::Key(format!("cannot encode the {algorithm} key as PKCS#8: {e}"))
                })?;
                Zeroizing::new(doc.as_bytes().to_vec())
            }
        };
        Ok(PrivateKey { der, algorithm })
    }

    /// Read a key from PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
    /// KEY`) or SEC1 (`EC PRIVATE KEY`, as `openssl ecparam -genkey` writes);
    /// the latter two are converted to PKCS#8. `what` names the input in errors.
    pub fn from_pem(text: &str, what: &str) -> Result<PrivateKey> {
        let blocks = pem::parse(text, what)?;
        let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
            return Err(Error::Key(format!("{what} holds no PRIVATE KEY block")));
        };
        match block.label.as_str() {
            pem::PRIVATE_KEY => PrivateKey::from_pkcs8_der(&block.der, what),
            "RSA PRIVATE KEY" => {
                let key = rsa::PrivateKey::from_pkcs1_der(&block.der)
                    .map_err(|e| Error::Key(format!("{what}: not a valid PKCS#1 RSA key: {e}")))?;
                let doc = key.to_pkcs8_der().map_err(|e| {
                    Error::Key(format!("{what}: cannot convert the RSA key to PKCS#8: {e}"))
                })?;
                PrivateKey::from_pkcs8_der(doc.as_bytes(), what)
            }
            "EC PRIVATE KEY" => {
                let pkcs8 = sec1_to_pkcs8(&block.der).ok_or_else(|| {
                    Error::Key(format!(
                        "{what}: not a valid SEC1 EC key with a named curve"
                    ))
                })?;
                PrivateKey::from_pkcs8_der(&pkcs8, what)
            }
            other => Err(Error::Key(format!(
                "{what}: {other} keys are not supported; store the key as PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`)"
            ))),
        }
    }

    /// Read a PKCS#8 DER key, detecting its algorithm.
    pub fn from_pkcs8_der(der: &[u8], what: &str) -> Result<PrivateKey> {
        let pair = KeyPair::try_from(der)
            .map_err(|e| Error::Key(format!("{what}: not a usable PKCS#8 key: {e}")))?;
        let alg = pair.algorithm();
        let algorithm = if alg == &PKCS_ECDSA_P256_SHA256 {
            KeyAlgorithm::EcdsaP256
        } else if alg == &PKCS_ECDSA_P384_SHA384 {
            KeyAlgorithm::EcdsaP384
        } else if alg == &PKCS_RSA_SHA256 {
            let key = rsa::PrivateKey::from_pkcs8_der(der)
                .map_err(|e| Error::Key(format!("{what}: not a valid RSA key: {e}")))?;
            match key.size() * 8 {
                2048 => KeyAlgorithm::Rsa2048,
                4096 => KeyAlgorithm::Rsa4096,
                bits => {
                    return Err(Error::Key(format!(
                        "{what}: RSA keys of {bits} bits are not supported; use 2048 or 4096"
                    )));
                }
            }
        } else {
            return Err(Error::Key(format!(
                "{what}: unsupported key type; use ECDSA P-256/P-384 or RSA 2048/4096"
            )));
        };
        Ok(PrivateKey {
            der: Zeroizing::new(der.to_vec()),
            algorithm,
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.der
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the encoding every engine
    /// accepts (Kafka accepts nothing else).
    pub fn pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(pem::PRIVATE_KEY, &self.der))
    }

    /// SHA-256 of the public key (SubjectPublicKeyInfo), hex: tells two keys
    /// apart without revealing them.
    pub fn public_key_sha256(&self) -> Result<String> {
        let pair = self.key_pair()?;
        Ok(hex::encode(Sha256::digest(pair.subject_public_key_info())))
    }

    pub(crate) fn key_pair(&self) -> Result<KeyPair> {
        KeyPair::try_from(self.der.as_slice()).map_err(|e| {
            Error::Key(format!(
                "cannot load the {} key for signing: {e}",
                self.algorithm
            ))
        })
    }
}

/// Wrap a SEC1 `ECPrivateKey` (with its `[0]` named curve) in PKCS#8:
/// `SEQUENCE { 0, SEQUENCE { id-ecPublicKey, curve }, OCTET STRING sec1 }`.
fn sec1_to_pkcs8(sec1: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    /// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey).
    const EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    let outer = der::read(sec1)?;
    if outer.tag != 0x30 {
        return None;
    }
    let mut fields = outer.content;
    let mut curve = None;
    while let Some(field) = der::read(fields) {
        if field.tag == 0xA0 {
            curve = Some(der::read(field.content)?.whole);
        }
        fields = field.rest;
    }
    let mut algorithm = EC_PUBLIC_KEY.to_vec();
    algorithm.extend_from_slice(curve?);
    let mut body = Zeroizing::new(vec![0x02, 0x01, 0x00]);
    body.extend_from_slice(&der::tlv(0x30, &algorithm));
    body.extend_from_slice(&Zeroizing::new(der::tlv(0x04, sec1)));
    Some(Zeroizing::new(der::tlv(0x30, &body)))
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm)
    }
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, hex (compare with
/// [`PrivateKey::public_key_sha256`]).
pub fn certificate_public_key_sha256(cert_der: &[u8]) -> Result<String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| Error::Certificate {
            what: "certificate".into(),
            reason: e.to_string(),
        })?;
    Ok(hex::encode(Sha256::digest(cert.public_key().raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_with_their_algorithm() {
        for algorithm in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = PrivateKey::generate(algorithm).expect("generates");
            let pem = key.pkcs8_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = PrivateKey::from_pem(&pem, "test").expect("reads back");
            assert_eq!(back.algorithm(), algorithm);
            assert_eq!(back.pkcs8_der(), key.pkcs8_der());
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("generates");
        assert_eq!(format!("{key:?}"), "PrivateKey(ecdsa-p256, <redacted>)");
    }

    #[test]
    fn parses_algorithm_names() {
        assert_eq!(
            "RSA-4096".parse::<KeyAlgorithm>().ok(),
            Some(KeyAlgorithm::Rsa4096)
        );
        assert!("ed25519".parse::<KeyAlgorithm>().is_err());
    }
}
