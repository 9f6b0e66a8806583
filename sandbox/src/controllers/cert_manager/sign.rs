//! Key generation and signing for the cert-manager stand-in (rcgen; the
//! `openssl` binary generates RSA keys and converts key encodings, which
//! ring cannot do).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::types::CertificateSpec;
use crate::controllers::duration;

/// Why a certificate cannot be issued (shown in the Certificate's
/// conditions; never contains key material).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// An unsupported or invalid spec value.
    #[error("invalid certificate spec: {0}")]
    Spec(String),
    /// rcgen refused to build the certificate.
    #[error("signing failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The CA key pair is unusable.
    #[error("CA key pair invalid: {0}")]
    Ca(String),
    /// `openssl` failed or is missing.
    #[error(
        "running `openssl {args}` failed: {reason} (install openssl; the sandbox needs it for RSA keys and PKCS#1 encoding)"
    )]
    Openssl {
        /// The arguments.
        args: String,
        /// What happened (stderr, without key material).
        reason: String,
    },
}

/// A signing CA: its chain (signing cert first) and key.
pub struct Ca {
    /// PEM certificates, signing certificate first.
    pub chain: Vec<String>,
    /// The CA key.
    pub key: KeyPair,
}

/// An issued certificate, ready for the Secret.
pub struct Issued {
    /// `tls.crt`: leaf and intermediates.
    pub chain_pem: String,
    /// `tls.key` in the requested encoding.
    pub key_pem: String,
    /// `ca.crt`: the root of the chain.
    pub ca_pem: String,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// When to renew.
    pub renewal: OffsetDateTime,
}

/// Issues a certificate for `spec`, signed by `ca` (self-signed when
/// `None`), with `reuse_key` when the rotation policy keeps the key.
pub fn issue(
    spec: &CertificateSpec,
    ca: Option<&Ca>,
    reuse_key: Option<&str>,
) -> Result<Issued, SignError> {
    let key = match reuse_key {
        Some(pem) => load_key(pem)?,
        None => generate_key(spec)?,
    };
    let validity = match spec.duration.as_deref() {
        Some(text) => duration::parse(text).map_err(|err| SignError::Spec(err.to_string()))?,
        None => Duration::from_secs(2160 * 3600),
    };
    let renew_before = match spec.renew_before.as_deref() {
        Some(text) => duration::parse(text).map_err(|err| SignError::Spec(err.to_string()))?,
        None => validity / 3,
    };
    let not_before = OffsetDateTime::now_utc();
    let not_after = not_before + validity;

    let mut params = CertificateParams::default();
    params.distinguished_name = subject(spec);
    params.subject_alt_names = sans(spec)?;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    let (key_usages, extended) = usages(spec)?;
    params.key_usages = key_usages;
    params.extended_key_usages = extended;
    params.is_ca = if spec.is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::NoCa
    };

    let (leaf, chain_rest, ca_pem) = match ca {
        Some(ca) => {
            let signing = ca
                .chain
                .first()
                .ok_or_else(|| SignError::Ca("tls.crt holds no certificate".to_owned()))?;
            params.use_authority_key_identifier_extension = true;
            let issuer = Issuer::from_ca_cert_pem(signing, &ca.key)
                .map_err(|err| SignError::Ca(err.to_string()))?;
            let leaf = params.signed_by(&key, &issuer)?;
            let intermediates: Vec<String> = ca
                .chain
                .iter()
                .filter(|pem| !is_self_signed(pem))
                .cloned()
                .collect();
            let root = ca.chain.last().cloned().unwrap_or_else(|| signing.clone());
            (leaf.pem(), intermediates, root)
        }
        None => {
            let cert = params.self_signed(&key)?;
            (cert.pem(), Vec::new(), cert.pem())
        }
    };
    let mut chain_pem = leaf;
    for pem in chain_rest {
        if !chain_pem.ends_with('\n') {
            chain_pem.push('\n');
        }
        chain_pem.push_str(&pem);
    }
    let key_pem = match spec.private_key.encoding.as_deref() {
        Some("PKCS8") => key.serialize_pem(),
        _ => openssl(&["pkey", "-traditional"], Some(&key.serialize_pem()))?,
    };
    Ok(Issued {
        chain_pem,
        key_pem,
        ca_pem,
        not_before,
        not_after,
        renewal: not_after - renew_before.min(validity),
    })
}

/// Loads a PEM private key in any encoding (PKCS#8, PKCS#1, SEC1).
pub fn load_key(pem: &str) -> Result<KeyPair, SignError> {
    if let Ok(key) = KeyPair::from_pem(pem) {
        return Ok(key);
    }
    let pkcs8 = openssl(&["pkey"], Some(pem))?;
    KeyPair::from_pem(&pkcs8)
        .map_err(|_| SignError::Spec("the private key is of an unsupported type".to_owned()))
}

/// Splits a PEM bundle into its CERTIFICATE blocks.
pub fn split_certificates(bundle: &str) -> Vec<String> {
    pem::parse_many(bundle)
        .unwrap_or_default()
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| pem::encode(&block))
        .collect()
}

fn generate_key(spec: &CertificateSpec) -> Result<KeyPair, SignError> {
    let key = &spec.private_key;
    match key.algorithm.as_deref().unwrap_or("RSA") {
        "RSA" => {
            let bits = key.size.unwrap_or(2048);
            if !matches!(bits, 2048 | 3072 | 4096 | 8192) {
                return Err(SignError::Spec(format!(
                    "RSA key size {bits} is not one of 2048, 3072, 4096, 8192"
                )));
            }
            let pem = openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    &format!("rsa_keygen_bits:{bits}"),
                ],
                None,
            )?;
            KeyPair::from_pem(&pem)
                .map_err(|err| SignError::Spec(format!("generated RSA key unusable: {err}")))
        }
        "ECDSA" => {
            let alg = match key.size.unwrap_or(256) {
                256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                384 => &rcgen::PKCS_ECDSA_P384_SHA384,
                other => {
                    return Err(SignError::Spec(format!(
                        "ECDSA key size {other} is not supported here (use 256 or 384)"
                    )));
                }
            };
            Ok(KeyPair::generate_for(alg)?)
        }
        "Ed25519" => Ok(KeyPair::generate_for(&rcgen::PKCS_ED25519)?),
        other => Err(SignError::Spec(format!(
            "privateKey.algorithm {other:?} is not one of RSA, ECDSA, Ed25519"
        ))),
    }
}

fn subject(spec: &CertificateSpec) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    if let Some(cn) = spec.common_name.as_deref().filter(|cn| !cn.is_empty()) {
        name.push(DnType::CommonName, cn);
    }
    let s = &spec.subject;
    for (ty, values) in [
        (DnType::OrganizationName, &s.organizations),
        (DnType::OrganizationalUnitName, &s.organizational_units),
        (DnType::CountryName, &s.countries),
        (DnType::LocalityName, &s.localities),
        (DnType::StateOrProvinceName, &s.provinces),
    ] {
        if let Some(value) = values.first() {
            name.push(ty, value.as_str());
        }
    }
    name
}

fn sans(spec: &CertificateSpec) -> Result<Vec<SanType>, SignError> {
    let ia5 = |kind: &str, text: &str| {
        Ia5String::try_from(text.to_owned())
            .map_err(|_| SignError::Spec(format!("{kind} {text:?} is not ASCII")))
    };
    let mut out = Vec::new();
    for name in &spec.dns_names {
        out.push(SanType::DnsName(ia5("dnsName", name)?));
    }
    for ip in &spec.ip_addresses {
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| SignError::Spec(format!("ipAddress {ip:?} is not an IP address")))?;
        out.push(SanType::IpAddress(addr));
    }
    for uri in &spec.uris {
        out.push(SanType::URI(ia5("uri", uri)?));
    }
    for email in &spec.email_addresses {
        out.push(SanType::Rfc822Name(ia5("emailAddress", email)?));
    }
    Ok(out)
}

/// cert-manager's usage names; default `digital signature`, `key encipherment`.
fn usages(
    spec: &CertificateSpec,
) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), SignError> {
    let defaults = [
        "digital signature".to_owned(),
        "key encipherment".to_owned(),
    ];
    let names: &[String] = if spec.usages.is_empty() {
        &defaults
    } else {
        &spec.usages
    };
    let mut key_usages = Vec::new();
    let mut extended = Vec::new();
    for name in names {
        match name.as_str() {
            "signing" | "digital signature" => key_usages.push(KeyUsagePurpose::DigitalSignature),
            "content commitment" => key_usages.push(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => key_usages.push(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => key_usages.push(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => key_usages.push(KeyUsagePurpose::DataEncipherment),
            "cert sign" => key_usages.push(KeyUsagePurpose::KeyCertSign),
            "crl sign" => key_usages.push(KeyUsagePurpose::CrlSign),
            "encipher only" => key_usages.push(KeyUsagePurpose::EncipherOnly),
            "decipher only" => key_usages.push(KeyUsagePurpose::DecipherOnly),
            "any" => extended.push(ExtendedKeyUsagePurpose::Any),
            "server auth" => extended.push(ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => extended.push(ExtendedKeyUsagePurpose::ClientAuth),
            "code signing" => extended.push(ExtendedKeyUsagePurpose::CodeSigning),
            "email protection" => extended.push(ExtendedKeyUsagePurpose::EmailProtection),
            "timestamping" => extended.push(ExtendedKeyUsagePurpose::TimeStamping),
            "ocsp signing" => extended.push(ExtendedKeyUsagePurpose::OcspSigning),
            other => return Err(SignError::Spec(format!("unknown usage {other:?}"))),
        }
    }
    if spec.is_ca {
        for usage in [KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign] {
            if !key_usages.contains(&usage) {
                key_usages.push(usage);
            }
        }
    }
    Ok((key_usages, extended))
}

/// 16 random bytes, positive.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn is_self_signed(pem: &str) -> bool {
    let Ok(block) = pem::parse(pem) else {
        return false;
    };
    match X509Certificate::from_der(block.contents()) {
        Ok((_, cert)) => cert.subject().as_raw() == cert.issuer().as_raw(),
        Err(_) => false,
    }
}

/// Runs `openssl ARGS` with `input` on stdin; returns stdout.
fn openssl(args: &[&str], input: Option<&str>) -> Result<String, SignError> {
    let failed = |reason: String| SignError::Openssl {
        args: args.join(" "),
        reason,
    };
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| failed(err.to_string()))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .map_err(|err| failed(err.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| failed(err.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!(
            "{}: {}",
            output.status,
            stderr.lines().next().unwrap_or("")
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| failed("output is not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> CertificateSpec {
        serde_json::from_value(value).expect("spec")
    }

    fn parse(pem: &str) -> (Vec<u8>, String, Vec<String>) {
        let block = pem::parse(pem).expect("pem");
        let der = block.contents().to_vec();
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let serial = cert.raw_serial().to_vec();
        let issuer = cert.issuer().to_string();
        let dns = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .map(|n| n.to_string())
                    .collect()
            })
            .unwrap_or_default();
        (serial, issuer, dns)
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "sandbox test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca");
        Ca {
            chain: vec![cert.pem()],
            key,
        }
    }

    #[test]
    fn ca_signed_ecdsa_certificate_has_sans_and_chain() {
        let ca = ca();
        let s = spec(json!({
            "secretName": "s", "commonName": "zk", "dnsNames": ["zk-0.zk", "zk-1.zk"],
            "ipAddresses": ["127.0.0.1"], "duration": "24h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8"},
            "issuerRef": {"name": "ca"}
        }));
        let issued = issue(&s, Some(&ca), None).expect("issued");
        assert_eq!(
            split_certificates(&issued.chain_pem).len(),
            1,
            "root stays out of tls.crt"
        );
        assert_eq!(issued.ca_pem, ca.chain[0]);
        assert!(issued.key_pem.contains("BEGIN PRIVATE KEY"));
        let (_, issuer, dns) = parse(&issued.chain_pem);
        assert!(issuer.contains("sandbox test CA"), "{issuer}");
        assert!(dns.iter().any(|n| n.contains("zk-1.zk")), "{dns:?}");
        assert_eq!((issued.not_after - issued.not_before).whole_hours(), 24);
        assert_eq!((issued.not_after - issued.renewal).whole_hours(), 8);
    }

    #[test]
    fn reusing_the_key_still_changes_the_serial() {
        let s = spec(
            json!({"secretName": "s", "commonName": "x", "privateKey": {"algorithm": "ECDSA"}, "issuerRef": {"name": "self"}}),
        );
        let first = issue(&s, None, None).expect("issued");
        assert!(
            first.key_pem.contains("BEGIN EC PRIVATE KEY"),
            "PKCS#1/SEC1 is the default encoding"
        );
        let second = issue(&s, None, Some(&first.key_pem)).expect("issued");
        assert_ne!(parse(&first.chain_pem).0, parse(&second.chain_pem).0);
        assert_eq!(
            load_key(&first.key_pem).expect("key").public_key_raw(),
            load_key(&second.key_pem).expect("key").public_key_raw()
        );
    }

    #[test]
    fn rsa_keys_come_from_openssl() {
        let s = spec(json!({"secretName": "s", "commonName": "x", "issuerRef": {"name": "self"}}));
        let issued = issue(&s, None, None).expect("issued");
        assert!(issued.key_pem.contains("BEGIN RSA PRIVATE KEY"));
    }

    #[test]
    fn bad_specs_are_rejected_with_reasons() {
        for bad in [
            json!({"privateKey": {"algorithm": "DSA"}}),
            json!({"privateKey": {"algorithm": "ECDSA", "size": 521}}),
            json!({"privateKey": {"algorithm": "ECDSA"}, "usages": ["teleport"]}),
            json!({"privateKey": {"algorithm": "ECDSA"}, "ipAddresses": ["not-an-ip"]}),
            json!({"privateKey": {"algorithm": "ECDSA"}, "duration": "forever"}),
        ] {
            let err = issue(&spec(bad.clone()), None, None).err().expect("error");
            assert!(matches!(err, SignError::Spec(_)), "{bad}: {err}");
        }
    }
}
