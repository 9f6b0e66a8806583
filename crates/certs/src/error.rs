//! Errors of certificate work. Messages never contain key material or
//! passwords: they name what failed and how to fix it.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Text that should hold PEM blocks does not.
    #[error("{what}: not valid PEM: {reason}")]
    Pem {
        /// Which input (e.g. `ca.crt of Secret zk-ca`).
        what: String,
        /// Why it could not be read.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("{what}: not a valid X.509 certificate: {reason}")]
    Certificate {
        /// Which input.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// A private key could not be read, generated or used (the key itself is never shown).
    #[error("private key: {0}")]
    Key(String),
    /// rcgen refused the certificate parameters.
    #[error("cannot build the certificate for {what}: {reason}")]
    Issue {
        /// The subject being issued.
        what: String,
        /// rcgen's message.
        reason: String,
    },
    /// A parameter is out of range (e.g. a validity that overflows the calendar).
    #[error("invalid parameter {name}: {reason}")]
    Invalid {
        /// The parameter.
        name: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Writing a PKCS#12 or JKS keystore failed.
    #[error("cannot write the {format} keystore: {reason}")]
    Keystore {
        /// `PKCS#12` or `JKS`.
        format: &'static str,
        /// Why.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
