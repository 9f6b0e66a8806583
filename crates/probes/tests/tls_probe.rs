//! The `tls` probe against a rustls server with certificates made in the test.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use crate::common;

use std::time::{Duration, Instant};

use dbops_probes::testing::TestCa;
use dbops_probes::{CertExpectation, Endpoint, Outcome, ProbeError, TlsOptions, tls};

const NAME: &str = "db-0.db-pods.prod.svc";
const TIMEOUT: Duration = Duration::from_secs(20);

/// A TLS server whose handler reads until the client goes away.
fn tls_server(ca: &TestCa) -> (String, dbops_probes::testing::IssuedCert) {
    let cert = ca.issue("db-0", &[NAME, "127.0.0.1"]).unwrap();
    let address = common::serve(Some(common::server_config(&cert)), |stream| {
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf);
    });
    (address, cert)
}

#[test]
fn the_right_ca_and_name_pass_and_the_served_certificate_is_reported() {
    let ca = TestCa::new("test ca").unwrap();
    let (address, cert) = tls_server(&ca);
    let endpoint = Endpoint::plain(&address, TIMEOUT)
        .with_tls(TlsOptions::verify(ca.cert_pem.as_bytes(), NAME));
    let report = tls::probe(&endpoint).unwrap();
    assert!(report.session.verified);
    assert_eq!(report.session.leaf.serial, cert.serial);
    assert_eq!(report.session.leaf.sha256, cert.sha256);
    assert!(report.session.leaf.dns_names.contains(&NAME.to_string()));
    assert!(
        report
            .session
            .leaf
            .ip_addresses
            .contains(&"127.0.0.1".to_string())
    );
    assert!(
        report.session.leaf.not_after.len() >= 20,
        "{}",
        report.session.leaf.not_after
    );
}

#[test]
fn a_certificate_from_another_ca_fails_and_names_what_was_served() {
    let ca = TestCa::new("test ca").unwrap();
    let other = TestCa::new("other ca").unwrap();
    let (address, cert) = tls_server(&ca);
    let endpoint = Endpoint::plain(&address, TIMEOUT)
        .with_tls(TlsOptions::verify(other.cert_pem.as_bytes(), NAME));
    let err = tls::probe(&endpoint).unwrap_err();
    assert!(matches!(err, ProbeError::Tls { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&cert.serial),
        "the error should name the served serial: {text}"
    );
    assert!(text.to_lowercase().contains("unknown"), "{text}");
}

#[test]
fn a_wrong_hostname_fails() {
    let ca = TestCa::new("test ca").unwrap();
    let (address, _) = tls_server(&ca);
    let endpoint = Endpoint::plain(&address, TIMEOUT).with_tls(TlsOptions::verify(
        ca.cert_pem.as_bytes(),
        "db-1.db-pods.prod.svc",
    ));
    let err = tls::probe(&endpoint).unwrap_err();
    assert!(matches!(err, ProbeError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("db-1.db-pods.prod.svc"), "{err}");
}

#[test]
fn expected_serial_and_fingerprint_are_enforced() {
    let ca = TestCa::new("test ca").unwrap();
    let (address, cert) = tls_server(&ca);
    let newer = ca.issue("db-0", &[NAME]).unwrap();
    let expect = |serial: Option<String>, sha256: Option<String>| {
        Endpoint::plain(&address, TIMEOUT).with_tls(
            TlsOptions::verify(ca.cert_pem.as_bytes(), NAME)
                .expecting(CertExpectation { serial, sha256 }),
        )
    };
    // The served certificate matches, in any hex spelling.
    let colon_upper = cert
        .serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    tls::probe(&expect(Some(colon_upper), Some(cert.sha256.to_uppercase()))).unwrap();
    // Not the one issue-cert just made: the old certificate is still served.
    let err = tls::probe(&expect(Some(newer.serial.clone()), None)).unwrap_err();
    match err {
        ProbeError::UnexpectedCertificate {
            what,
            served,
            expected,
            ..
        } => {
            assert_eq!(what, "serial");
            assert_eq!(served, cert.serial);
            assert_eq!(expected, newer.serial);
        }
        other => panic!("expected UnexpectedCertificate, got {other}"),
    }
    let err = tls::probe(&expect(None, Some(newer.sha256.clone()))).unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::UnexpectedCertificate {
                what: "sha256 fingerprint",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn insecure_skip_verify_connects_but_is_visible_in_the_outcome() {
    let ca = TestCa::new("test ca").unwrap();
    let (address, _) = tls_server(&ca);
    let endpoint =
        Endpoint::plain(&address, TIMEOUT).with_tls(TlsOptions::insecure_skip_verify("anything"));
    let outcome = Outcome::run("tls", &address, || tls::probe(&endpoint));
    assert!(outcome.ok, "{}", outcome.summary());
    assert!(!outcome.tls.as_ref().unwrap().verified);
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(outcome.warnings[0].contains("NOT verified"));
}

#[test]
fn a_silent_server_times_out_at_the_deadline() {
    let address = common::serve(None, |stream| {
        let mut buf = [0u8; 4096];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
    });
    let ca = TestCa::new("test ca").unwrap();
    let endpoint = Endpoint::plain(&address, Duration::from_millis(500))
        .with_tls(TlsOptions::verify(ca.cert_pem.as_bytes(), NAME));
    let started = Instant::now();
    let err = tls::probe(&endpoint).unwrap_err();
    assert!(matches!(err, ProbeError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_plaintext_server_is_an_error_not_a_panic() {
    let address = common::serve(None, |stream| {
        let _ = std::io::Write::write_all(
            stream,
            b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not tls at all",
        );
    });
    let ca = TestCa::new("test ca").unwrap();
    let endpoint = Endpoint::plain(&address, TIMEOUT)
        .with_tls(TlsOptions::verify(ca.cert_pem.as_bytes(), NAME));
    let err = tls::probe(&endpoint).unwrap_err();
    assert!(
        matches!(err, ProbeError::Tls { .. } | ProbeError::Io { .. }),
        "{err}"
    );
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let port = dbops_probes::testing::free_port("127.0.0.1".parse().unwrap()).unwrap();
    let ca = TestCa::new("test ca").unwrap();
    let endpoint = Endpoint::plain(format!("127.0.0.1:{port}"), TIMEOUT)
        .with_tls(TlsOptions::verify(ca.cert_pem.as_bytes(), NAME));
    let err = tls::probe(&endpoint).unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
    assert!(err.is_retryable());
}
