//! Synchronous health probes for dbops: TCP, TLS, HTTP, ZooKeeper, Kafka, MySQL/Galera, Druid.
//!
//! Start at [`Endpoint`] (an address, optional [`TlsOptions`] and a timeout)
//! and the `probe` function of each protocol module. Every probe speaks the
//! protocol itself (no client binaries), is bounded in time by the
//! endpoint's timeout and in memory by per-protocol read limits, and returns
//! a typed report or a [`ProbeError`] that says what failed and where.
//! [`outcome::Outcome`] flattens either into one record for logs and step outputs.
//!
//! TLS verification is on by default, against the CA bundle given (never the
//! system roots) and the expected server name; see [`tls`].
//!
//! The `sdk` feature adds [`cluster`]: what the rolling-restart and
//! health-check plugins share (the target's member pods, probe settings read
//! from Secrets).
//!
//! The `testing` feature adds [`testing`]: launchers for real ZooKeeper and
//! MariaDB servers and a test PKI, shared by this crate's tests and the plugins'.

pub mod druid;
pub mod error;
pub mod http;
pub mod kafka;
pub mod mysql;
pub mod net;
pub mod outcome;
pub mod tcp;
pub mod tls;
pub mod zookeeper;

#[cfg(feature = "sdk")]
pub mod cluster;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ProbeError, Result};
pub use net::Endpoint;
pub use outcome::Outcome;
pub use tls::{CertExpectation, ClientIdentity, ServedCertificate, TlsOptions, TlsSession, Trust};
