//! The one error type every probe returns.
//!
//! Messages are lowercase, name the address and what the probe was doing, and
//! are safe to log: they never contain passwords or key material.

use std::io;

/// Shorthand for probe results.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

/// Why a probe did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The address is malformed or its host name does not resolve.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The address as given (`host:port`).
        address: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// No TCP connection could be opened (refused, unreachable).
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address as given.
        address: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The deadline passed before the server answered.
    #[error("timed out talking to {address} while {during}")]
    Timeout {
        /// The address as given.
        address: String,
        /// What the probe was waiting for (e.g. "reading the srvr response").
        during: String,
    },
    /// Reading or writing the connection failed (reset, closed early).
    #[error("i/o error talking to {address} while {during}: {source}")]
    Io {
        /// The address as given.
        address: String,
        /// What the probe was doing.
        during: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TLS settings given to the probe are unusable (bad CA bundle, bad name).
    #[error("invalid tls settings: {reason}")]
    TlsSettings {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The TLS handshake failed, including certificate verification.
    #[error(
        "tls handshake with {address} (expected name {server_name}) failed{}: {source}",
        served_suffix(served)
    )]
    Tls {
        /// The address as given.
        address: String,
        /// The name the certificate was checked against.
        server_name: String,
        /// The served leaf certificate, when the server sent one (serial and
        /// subject help to see which certificate is actually served).
        served: Option<String>,
        /// rustls' reason.
        #[source]
        source: Box<rustls::Error>,
    },
    /// The server's certificate is valid but not the one the probe expected.
    #[error("{address} serves a certificate with {what} {served}, expected {expected}")]
    UnexpectedCertificate {
        /// The address as given.
        address: String,
        /// Which property differs ("serial" or "sha256 fingerprint").
        what: &'static str,
        /// The served value.
        served: String,
        /// The expected value.
        expected: String,
    },
    /// The server sent bytes that do not follow the protocol.
    #[error("{protocol} protocol error from {address}: {detail}")]
    Protocol {
        /// The protocol spoken (e.g. "kafka").
        protocol: &'static str,
        /// The address as given.
        address: String,
        /// What was wrong with the bytes.
        detail: String,
    },
    /// The server refused the request (an error packet or error code).
    #[error("{address} refused the {protocol} request: {detail}")]
    Refused {
        /// The protocol spoken.
        protocol: &'static str,
        /// The address as given.
        address: String,
        /// The server's error, with its code when it has one.
        detail: String,
    },
    /// The server answered correctly but reports that it is not healthy.
    #[error("{address} is not healthy: {detail}")]
    Unhealthy {
        /// The address as given.
        address: String,
        /// What the server said.
        detail: String,
    },
}

fn served_suffix(served: &Option<String>) -> String {
    served
        .as_deref()
        .map(|cert| format!(" (server presented {cert})"))
        .unwrap_or_default()
}

impl ProbeError {
    /// A short PascalCase name of the variant, for Event reasons and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Resolve { .. } => "Resolve",
            ProbeError::Connect { .. } => "Connect",
            ProbeError::Timeout { .. } => "Timeout",
            ProbeError::Io { .. } => "Io",
            ProbeError::TlsSettings { .. } => "TlsSettings",
            ProbeError::Tls { .. } => "Tls",
            ProbeError::UnexpectedCertificate { .. } => "UnexpectedCertificate",
            ProbeError::Protocol { .. } => "Protocol",
            ProbeError::Refused { .. } => "Refused",
            ProbeError::Unhealthy { .. } => "Unhealthy",
        }
    }

    /// Whether retrying the same probe later can succeed. Bad settings are
    /// permanent; everything the server does may change after a restart.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ProbeError::TlsSettings { .. })
    }

    /// The whole `source()` chain on one line, for logs and step outputs.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            let next = err.to_string();
            if !text.contains(&next) {
                text.push_str(": ");
                text.push_str(&next);
            }
            cause = err.source();
        }
        text
    }
}
