//! TLS: verification against a given CA bundle and name, and what the server served.
//!
//! Verification is on unless the caller says [`Trust::InsecureSkipVerify`];
//! a session made that way says so in [`TlsSession::verified`], so the caller
//! can log it. The served chain is recorded even when verification fails, so
//! an error can say which certificate the server actually presented.

use std::fmt;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ProbeError, Result};
use crate::net::{self, Endpoint};

/// How a probe speaks TLS to one server.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The name the certificate must be valid for (a DNS name or an IP), also
    /// sent as SNI. Usually the pod's stable DNS name while the address is its IP.
    pub server_name: String,
    /// What the served chain is verified against.
    pub trust: Trust,
    /// Optional assertions on the served leaf certificate.
    pub expect: CertExpectation,
    /// A client certificate for servers that require one.
    pub client_identity: Option<ClientIdentity>,
}

impl TlsOptions {
    /// Verify against `ca_pem` (one or more PEM certificates) and `server_name`.
    pub fn verify(ca_pem: impl Into<Vec<u8>>, server_name: impl Into<String>) -> TlsOptions {
        TlsOptions {
            server_name: server_name.into(),
            trust: Trust::CaBundlePem(ca_pem.into()),
            expect: CertExpectation::default(),
            client_identity: None,
        }
    }

    /// Accept any certificate (only the handshake signatures are checked).
    /// The session reports `verified: false`; callers must log a warning.
    pub fn insecure_skip_verify(server_name: impl Into<String>) -> TlsOptions {
        TlsOptions {
            server_name: server_name.into(),
            trust: Trust::InsecureSkipVerify,
            expect: CertExpectation::default(),
            client_identity: None,
        }
    }

    /// The same options, also asserting the served leaf certificate.
    pub fn expecting(mut self, expect: CertExpectation) -> TlsOptions {
        self.expect = expect;
        self
    }
}

/// What the served certificate chain is verified against.
#[derive(Clone, PartialEq, Eq)]
pub enum Trust {
    /// PEM-encoded CA certificates (e.g. a Secret's `ca.crt`); the system roots are not used.
    CaBundlePem(Vec<u8>),
    /// No verification at all; must be asked for explicitly.
    InsecureSkipVerify,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::CaBundlePem(pem) => write!(f, "CaBundlePem({} bytes)", pem.len()),
            Trust::InsecureSkipVerify => f.write_str("InsecureSkipVerify"),
        }
    }
}

/// Assertions on the served leaf certificate, e.g. the one issue-cert just made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertExpectation {
    /// Serial number in hex; colons, case and leading zeros are ignored.
    pub serial: Option<String>,
    /// SHA-256 fingerprint of the DER certificate in hex; colons and case are ignored.
    pub sha256: Option<String>,
}

/// A client certificate and its private key (PEM). The key never appears in Debug output.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The client certificate chain, leaf first.
    pub cert_chain_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field(
                "cert_chain_pem",
                &format_args!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// One certificate as served, in the terms an operator compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedCertificate {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, lowercase hex without leading zeros.
    pub serial: String,
    /// SHA-256 of the DER encoding, lowercase hex.
    pub sha256: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// DNS names in the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses in the subjectAltName extension.
    pub ip_addresses: Vec<String>,
}

impl ServedCertificate {
    /// Describe a DER certificate; `None` when it does not parse.
    pub fn from_der(der: &[u8]) -> Option<ServedCertificate> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => {
                        dns_names.push(dns.to_string())
                    }
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        ip_addresses.push(format_ip(bytes))
                    }
                    _ => {}
                }
            }
        }
        Some(ServedCertificate {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: normalize_hex(&hex::encode(cert.raw_serial()), true),
            sha256: hex::encode(Sha256::digest(der)),
            not_before: rfc3339(cert.validity().not_before.to_datetime()),
            not_after: rfc3339(cert.validity().not_after.to_datetime()),
            dns_names,
            ip_addresses,
        })
    }

    /// One line for logs and error messages.
    pub fn summary(&self) -> String {
        format!(
            "serial {}, subject {}, issuer {}, not after {}",
            self.serial, self.subject, self.issuer, self.not_after
        )
    }
}

fn format_ip(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => hex::encode(bytes),
    }
}

fn rfc3339(when: time::OffsetDateTime) -> String {
    when.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| when.to_string())
}

/// Lowercase, without colons or spaces, and (for serials) without leading zeros.
pub fn normalize_hex(value: &str, strip_leading_zeros: bool) -> String {
    let cleaned: String = value
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    let cleaned = cleaned
        .strip_prefix("0x")
        .map(str::to_string)
        .unwrap_or(cleaned);
    if strip_leading_zeros {
        let trimmed = cleaned.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }
    } else {
        cleaned
    }
}

/// What a TLS handshake established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSession {
    /// False when verification was disabled with [`Trust::InsecureSkipVerify`].
    pub verified: bool,
    /// The name checked (and sent as SNI when it is a DNS name).
    pub server_name: String,
    /// e.g. "TLSv1_3".
    pub protocol_version: String,
    /// e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher_suite: String,
    /// The served leaf certificate.
    pub leaf: ServedCertificate,
    /// The rest of the served chain, in the order served.
    pub chain: Vec<ServedCertificate>,
}

/// The result of the plain `tls` probe.
#[derive(Debug, Clone, Serialize)]
pub struct TlsReport {
    /// The handshake's outcome.
    pub session: TlsSession,
    /// Time for TCP connect plus handshake.
    pub latency: Duration,
}

/// Connect and complete a TLS handshake; `endpoint.tls` must be set.
pub fn probe(endpoint: &Endpoint) -> Result<TlsReport> {
    let started = Instant::now();
    let deadline = started + endpoint.timeout;
    let Some(options) = &endpoint.tls else {
        return Err(ProbeError::TlsSettings {
            reason: format!(
                "the tls probe of {} needs tls settings (a CA bundle and a server name)",
                endpoint.address
            ),
        });
    };
    let sock = net::connect_tcp(&endpoint.address, deadline)?;
    let (mut stream, session) = handshake(sock, &endpoint.address, options, deadline)?;
    stream.conn.send_close_notify();
    // Best effort: the probe already has its answer.
    let _ = stream.conn.complete_io(&mut stream.sock);
    Ok(TlsReport {
        session,
        latency: started.elapsed(),
    })
}

type TlsStream = rustls::StreamOwned<ClientConnection, TcpStream>;

/// Run a client handshake over `sock`, verify, and check the expectations.
pub(crate) fn handshake(
    mut sock: TcpStream,
    address: &str,
    options: &TlsOptions,
    deadline: Instant,
) -> Result<(TlsStream, TlsSession)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RecordingVerifier::new(options, provider.clone())?);
    let config = client_config(options, provider, verifier.clone())?;
    let server_name = ServerName::try_from(options.server_name.clone()).map_err(|err| {
        ProbeError::TlsSettings {
            reason: format!(
                "server name {:?} is not a DNS name or IP: {err}",
                options.server_name
            ),
        }
    })?;
    let mut conn = ClientConnection::new(Arc::new(config), server_name).map_err(|err| {
        ProbeError::TlsSettings {
            reason: format!("cannot start a tls client: {err}"),
        }
    })?;
    while conn.is_handshaking() {
        net::arm(&sock, address, deadline, "tls handshake")?;
        if let Err(err) = conn.complete_io(&mut sock) {
            let served = verifier.served_leaf().map(|leaf| leaf.summary());
            let rustls_error = err
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned();
            return Err(match rustls_error {
                Some(source) => ProbeError::Tls {
                    address: address.to_string(),
                    server_name: options.server_name.clone(),
                    served,
                    source: Box::new(source),
                },
                None if net::is_timeout(&err) => net::timeout(address, "tls handshake"),
                None => ProbeError::Io {
                    address: address.to_string(),
                    during: "tls handshake (is the port speaking tls?)".to_string(),
                    source: err,
                },
            });
        }
    }
    let session = describe_session(&conn, options).ok_or_else(|| ProbeError::Protocol {
        protocol: "tls",
        address: address.to_string(),
        detail: "the server's certificate could not be parsed".to_string(),
    })?;
    check_expectation(address, &session.leaf, &options.expect)?;
    Ok((rustls::StreamOwned::new(conn, sock), session))
}

fn describe_session(conn: &ClientConnection, options: &TlsOptions) -> Option<TlsSession> {
    let certs = conn.peer_certificates()?;
    let (leaf, rest) = certs.split_first()?;
    Some(TlsSession {
        verified: options.trust != Trust::InsecureSkipVerify,
        server_name: options.server_name.clone(),
        protocol_version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        leaf: ServedCertificate::from_der(leaf)?,
        chain: rest
            .iter()
            .filter_map(|der| ServedCertificate::from_der(der))
            .collect(),
    })
}

/// Fail when the served leaf is not the expected one.
pub fn check_expectation(
    address: &str,
    leaf: &ServedCertificate,
    expect: &CertExpectation,
) -> Result<()> {
    if let Some(serial) = &expect.serial {
        let expected = normalize_hex(serial, true);
        if expected != leaf.serial {
            return Err(ProbeError::UnexpectedCertificate {
                address: address.to_string(),
                what: "serial",
                served: leaf.serial.clone(),
                expected,
            });
        }
    }
    if let Some(fingerprint) = &expect.sha256 {
        let expected = normalize_hex(fingerprint, false);
        if expected != leaf.sha256 {
            return Err(ProbeError::UnexpectedCertificate {
                address: address.to_string(),
                what: "sha256 fingerprint",
                served: leaf.sha256.clone(),
                expected,
            });
        }
    }
    Ok(())
}

fn client_config(
    options: &TlsOptions,
    provider: Arc<CryptoProvider>,
    verifier: Arc<RecordingVerifier>,
) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ProbeError::TlsSettings {
            reason: format!("no usable tls versions: {err}"),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &options.client_identity {
        None => Ok(builder.with_no_client_auth()),
        Some(identity) => {
            let chain = parse_certificates(&identity.cert_chain_pem, "client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(&identity.key_pem).map_err(|err| {
                ProbeError::TlsSettings {
                    reason: format!("the client private key is not a PEM private key: {err}"),
                }
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| ProbeError::TlsSettings {
                    reason: format!("the client certificate and key do not fit together: {err}"),
                })
        }
    }
}

/// Parse every certificate of a PEM bundle; an empty bundle is an error.
pub fn parse_certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| ProbeError::TlsSettings {
            reason: format!("the {what} PEM does not parse: {err}"),
        })?;
    if certs.is_empty() {
        return Err(ProbeError::TlsSettings {
            reason: format!("the {what} PEM holds no certificate"),
        });
    }
    Ok(certs)
}

/// Verifies like webpki (or not at all, when asked) and remembers what was served.
#[derive(Debug)]
struct RecordingVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    served: Mutex<Option<CertificateDer<'static>>>,
}

impl RecordingVerifier {
    fn new(options: &TlsOptions, provider: Arc<CryptoProvider>) -> Result<RecordingVerifier> {
        let webpki = match &options.trust {
            Trust::InsecureSkipVerify => None,
            Trust::CaBundlePem(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in parse_certificates(pem, "CA bundle")? {
                    roots.add(cert).map_err(|err| ProbeError::TlsSettings {
                        reason: format!(
                            "a CA bundle certificate is not a usable trust anchor: {err}"
                        ),
                    })?;
                }
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|err| ProbeError::TlsSettings {
                            reason: format!("cannot build a verifier from the CA bundle: {err}"),
                        })?;
                Some(verifier)
            }
        };
        Ok(RecordingVerifier {
            webpki,
            provider,
            served: Mutex::new(None),
        })
    }

    fn served_leaf(&self) -> Option<ServedCertificate> {
        let guard = self.served.lock().ok()?;
        guard
            .as_ref()
            .and_then(|der| ServedCertificate::from_der(der))
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut served) = self.served.lock() {
            *served = Some(end_entity.clone().into_owned());
        }
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_values_compare_without_colons_case_or_leading_zeros() {
        assert_eq!(normalize_hex("00:1A:2b", true), "1a2b");
        assert_eq!(normalize_hex("0x0001", true), "1");
        assert_eq!(normalize_hex("00", true), "0");
        assert_eq!(normalize_hex("AB:CD:00", false), "abcd00");
    }

    #[test]
    fn debug_output_never_shows_the_client_key() {
        let identity = ClientIdentity {
            cert_chain_pem: b"cert".to_vec(),
            key_pem: b"-----BEGIN PRIVATE KEY-----very secret".to_vec(),
        };
        let text = format!("{identity:?}");
        assert!(!text.contains("very secret"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn an_empty_ca_bundle_is_a_settings_error() {
        let err = parse_certificates(b"not pem", "CA bundle").unwrap_err();
        assert!(matches!(err, ProbeError::TlsSettings { .. }), "{err}");
        assert!(err.to_string().contains("CA bundle"), "{err}");
    }
}
