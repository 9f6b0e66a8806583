//! The `http`/`https` and `druid` probes against tiny in-test HTTP responders
//! (Druid has no Debian package; `/status/health` answers `true` with
//! `Content-Type: application/json`, as Druid's StatusResource does).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::common;

use std::time::Duration;

use dbops_probes::http::{self, HttpCheck};
use dbops_probes::testing::TestCa;
use dbops_probes::{Endpoint, ProbeError, TlsOptions, druid};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Answer every request with `response`, after reading the request head
/// (and checking it is a GET of `path`).
fn responder(
    path: &'static str,
    response: &'static [u8],
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> String {
    common::serve(tls, move |stream| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let expected = format!("GET {path} HTTP/1.1\r\n");
        if !head.starts_with(&expected) || !head.to_lowercase().contains("\r\nhost: ") {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let _ = stream.write_all(response);
        let _ = stream.flush();
    })
}

const HEALTHY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\ntrue";

#[test]
fn druid_healthy_node_passes() {
    let address = responder("/status/health", HEALTHY, None);
    let report = druid::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap();
    assert_eq!(report.status, 200);
    assert_eq!(report.body_preview, "true");
}

#[test]
fn druid_unhealthy_answers_fail() {
    let address = responder(
        "/status/health",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfalse",
        None,
    );
    let err = druid::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap_err();
    assert!(matches!(err, ProbeError::Unhealthy { .. }), "{err}");
    assert!(err.to_string().contains("false"), "{err}");

    let address = responder(
        "/status/health",
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 7\r\n\r\nstarting",
        None,
    );
    let err = druid::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[test]
fn chunked_and_close_delimited_bodies_are_read() {
    let address = responder(
        "/status/health",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ntrue\r\n0\r\n\r\n",
        None,
    );
    druid::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap();
    let address = responder("/status/health", b"HTTP/1.0 200 OK\r\n\r\ntrue", None);
    druid::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap();
}

#[test]
fn https_with_expected_status() {
    let ca = TestCa::new("druid ca").unwrap();
    let cert = ca
        .issue("druid-router-0", &["druid-router-0.druid-pods.test.svc"])
        .unwrap();
    let address = responder(
        "/status",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        Some(common::server_config(&cert)),
    );
    let endpoint = Endpoint::plain(&address, TIMEOUT).with_tls(TlsOptions::verify(
        ca.cert_pem.as_bytes(),
        "druid-router-0.druid-pods.test.svc",
    ));
    let mut check = HttpCheck::get("/status");
    let err = http::probe(&endpoint, &check).unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    check.expect_status = vec![200, 401];
    let report = http::probe(&endpoint, &check).unwrap();
    assert_eq!(report.status, 401);
    assert_eq!(report.tls.unwrap().leaf.serial, cert.serial);
}

#[test]
fn an_endless_response_is_cut_at_the_limit() {
    let address = common::serve(None, |stream| {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n");
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let err = druid::probe(&Endpoint::plain(&address, TIMEOUT)).unwrap_err();
    assert!(matches!(err, ProbeError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("longer than"), "{err}");
}
