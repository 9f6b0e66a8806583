//! The `tcp` probe: can a connection be opened?

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::net::{self, Endpoint};

/// The result of a successful TCP connect.
#[derive(Debug, Clone, Serialize)]
pub struct TcpReport {
    /// The socket address that accepted the connection.
    pub peer: String,
    /// Time to connect.
    pub latency: Duration,
}

/// Open (and close) one TCP connection to `endpoint.address`; TLS settings are ignored.
pub fn probe(endpoint: &Endpoint) -> Result<TcpReport> {
    let started = Instant::now();
    let sock = net::connect_tcp(&endpoint.address, started + endpoint.timeout)?;
    let peer = sock
        .peer_addr()
        .map(|addr| addr.to_string())
        .unwrap_or_else(|_| endpoint.address.clone());
    Ok(TcpReport {
        peer,
        latency: started.elapsed(),
    })
}
