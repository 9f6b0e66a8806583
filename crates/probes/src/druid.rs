//! The `druid` probe: every Druid process answers `GET /status/health` with `true`.

use crate::error::Result;
use crate::http::{self, HttpCheck, HttpReport};
use crate::net::Endpoint;

/// The health endpoint every Druid node serves.
pub const HEALTH_PATH: &str = "/status/health";

/// The check the `druid` probe runs.
pub fn health_check() -> HttpCheck {
    HttpCheck {
        path: HEALTH_PATH.to_string(),
        host: None,
        expect_status: vec![200],
        expect_body: Some("true".to_string()),
    }
}

/// Ask one Druid node whether it is healthy (HTTPS when `endpoint.tls` is set).
pub fn probe(endpoint: &Endpoint) -> Result<HttpReport> {
    http::probe(endpoint, &health_check())
}
