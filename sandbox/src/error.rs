//! Errors of the sandbox's Rust API.

use std::net::SocketAddr;

use crate::status::ApiError;

/// Errors starting or using a [`Sandbox`](crate::Sandbox).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr} for the sandbox API server (is the port in use? use port 0 for a free one): {source}"
    )]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The background runtime or thread could not be created.
    #[error("cannot start the sandbox's background runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The background thread ended before the server started.
    #[error("the sandbox's background thread stopped before the server started: {0}")]
    Background(String),
    /// The object's `apiVersion`/`kind` is not served.
    #[error(
        "the sandbox does not serve kind {kind:?} in apiVersion {api_version:?}; register it in SandboxConfig::custom_resources"
    )]
    UnknownKind {
        /// apiVersion of the object.
        api_version: String,
        /// kind of the object.
        kind: String,
    },
    /// The object has no `metadata.name`.
    #[error("the {kind} object has no metadata.name")]
    MissingName {
        /// kind of the object.
        kind: String,
    },
    /// The API refused the request.
    #[error("the sandbox API refused the request: {0}")]
    Api(#[from] ApiError),
    /// TLS set-up failed.
    #[error("cannot set up TLS for the sandbox: {0}")]
    Tls(String),
    /// The state directory could not be created.
    #[error("cannot create the sandbox state directory: {0}")]
    StateDir(#[source] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
