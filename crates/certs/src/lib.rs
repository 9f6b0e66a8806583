//! Certificates for dbops, without any cluster I/O: inputs and outputs are
//! PEM text and bytes, so the issue-cert plugin decides where they live.
//!
//! Where to start:
//! - [`Ca::create`] makes a self-signed CA; [`Ca::from_pem`] loads one;
//!   [`Ca::issue`] signs a leaf ([`LeafSpec`]: subject, DNS/IP/wildcard
//!   SANs, serverAuth/clientAuth, validity) for a [`PrivateKey`] that is new
//!   ([`PrivateKey::generate`]: ECDSA P-256/P-384, RSA 2048/4096) or reused.
//! - [`inspect`] reads what a certificate says (serial, validity, SANs,
//!   issuer, SHA-256 fingerprint) and checks signatures; [`summary`]
//!   summarizes a TLS Secret's data for `dbops certs`.
//! - [`TrustBundle`] concatenates, deduplicates and removes CA certificates.
//! - [`pkcs12`] and [`jks`] write keystores and truststores for JVM engines,
//!   protected by a [`Password`] ([`Password::generate`]).
//!
//! **Invariant**: key material and passwords live in [`PrivateKey`] and
//! [`Password`], which zeroize on drop and never print their content; no
//! error message of this crate contains them.
//!
//! Benchmark (issuance time per key algorithm next to `openssl req -x509`,
//! measured in the same run):
//! `cargo run --release -p dbops-certs --example bench_issue`.

pub mod bundle;
pub mod der;
pub mod error;
pub mod inspect;
pub mod issue;
pub mod jks;
pub mod key;
pub mod password;
pub mod pem;
pub mod pkcs12;
pub mod summary;

pub use bundle::TrustBundle;
pub use error::{Error, Result};
pub use inspect::CertInfo;
pub use issue::{Ca, CaSpec, Issued, LeafSpec, Subject};
pub use key::{KeyAlgorithm, PrivateKey};
pub use password::Password;
pub use summary::{SecretSummary, summarize_secret};
