//! The `mysql` probe against real MariaDB servers (Debian's `mariadb-server`,
//! with its `galera-4` provider): TLS upgrade with certificate checks,
//! `mysql_native_password` login, `SELECT 1`, and the Galera state of a plain
//! server and of a one-node Galera cluster.
//! Set DBOPS_SKIP_REAL_SERVERS=1 to skip when the packages are missing.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use dbops_probes::mysql::{self, Credentials, Galera, GaleraCheck, MysqlCheck, Password};
use dbops_probes::testing::{self, MariaDb, MariaDbOptions, TestCa};
use dbops_probes::{CertExpectation, Endpoint, Outcome, ProbeError, TlsOptions};

const TIMEOUT: Duration = Duration::from_secs(10);
const NAME: &str = "mysql-0.mysql-pods.test.svc";

fn available() -> bool {
    testing::real_server_available(testing::MARIADBD, "mariadb-server")
}

fn probe_user() -> Credentials {
    Credentials {
        user: "probe".into(),
        password: Password::new("s3cret-'pw"),
    }
}

#[test]
fn tls_login_select_one_and_not_a_galera_node() {
    if !available() {
        return;
    }
    let ca = TestCa::new("mysql test ca").unwrap();
    let cert = ca.issue("mysql-0", &[NAME]).unwrap();
    let server = MariaDb::start(&MariaDbOptions {
        ip: testing::unique_loopback_ip(),
        tls: Some((cert.clone(), ca.cert_pem.clone())),
        users: vec![("probe".into(), "s3cret-'pw".into())],
        galera: false,
    })
    .unwrap();

    let tls = TlsOptions::verify(ca.cert_pem.as_bytes(), NAME).expecting(CertExpectation {
        serial: Some(cert.serial.clone()),
        sha256: Some(cert.sha256.clone()),
    });
    let endpoint = Endpoint::plain(&server.address, TIMEOUT).with_tls(tls);
    let check = MysqlCheck {
        credentials: Some(probe_user()),
        galera: GaleraCheck::Report,
    };
    let report = mysql::probe(&endpoint, &check).unwrap();
    assert!(
        report.server_version.contains("MariaDB"),
        "{}",
        report.server_version
    );
    assert!(report.select_one);
    assert_eq!(report.auth_plugin.as_deref(), Some("mysql_native_password"));
    assert_eq!(report.galera, Galera::NotAGaleraNode);
    let session = report.tls.as_ref().unwrap();
    assert_eq!(session.leaf.serial, cert.serial);

    // Plaintext works too (the server does not require TLS).
    let plain = Endpoint::plain(&server.address, TIMEOUT);
    assert!(mysql::probe(&plain, &check).unwrap().tls.is_none());

    // Requiring Galera Primary of a plain server fails with a clear reason.
    let require = MysqlCheck {
        credentials: Some(probe_user()),
        galera: GaleraCheck::RequirePrimary,
    };
    let err = mysql::probe(&plain, &require).unwrap_err();
    assert!(matches!(err, ProbeError::Unhealthy { .. }), "{err}");
    assert!(err.to_string().contains("not a Galera node"), "{err}");

    // A wrong password is refused with the server's message, and never shown.
    let wrong = MysqlCheck {
        credentials: Some(Credentials {
            user: "probe".into(),
            password: Password::new("not-the-password"),
        }),
        galera: GaleraCheck::Skip,
    };
    let outcome = Outcome::run("mysql", &server.address, || mysql::probe(&endpoint, &wrong));
    assert!(!outcome.ok);
    let reason = outcome.reason.unwrap();
    assert!(
        reason.contains("1045") && reason.contains("Access denied"),
        "{reason}"
    );
    assert!(!reason.contains("not-the-password"), "{reason}");

    // A certificate from another CA is rejected during the upgrade.
    let other = TestCa::new("other").unwrap();
    let untrusted = Endpoint::plain(&server.address, TIMEOUT)
        .with_tls(TlsOptions::verify(other.cert_pem.as_bytes(), NAME));
    let err = mysql::probe(&untrusted, &check).unwrap_err();
    assert!(matches!(err, ProbeError::Tls { .. }), "{err}");

    // Without credentials only the handshake (and TLS) are checked.
    let bare = mysql::probe(&endpoint, &MysqlCheck::default()).unwrap();
    assert!(!bare.select_one);
    assert!(bare.tls.is_some());
}

#[test]
fn one_node_galera_cluster_is_primary() {
    if !available() || !testing::real_server_available(testing::GALERA_PROVIDER, "galera-4") {
        return;
    }
    let server = MariaDb::start(&MariaDbOptions {
        ip: testing::unique_loopback_ip(),
        tls: None,
        users: vec![("probe".into(), "s3cret-'pw".into())],
        galera: true,
    })
    .unwrap();
    let check = MysqlCheck {
        credentials: Some(probe_user()),
        galera: GaleraCheck::RequirePrimary,
    };
    let report = mysql::probe(&Endpoint::plain(&server.address, TIMEOUT), &check).unwrap();
    match report.galera {
        Galera::Node {
            cluster_status,
            cluster_size,
            ..
        } => {
            assert_eq!(cluster_status, "Primary");
            assert_eq!(cluster_size, Some(1));
        }
        other => panic!("expected a Galera node, got {other:?}"),
    }
}

#[test]
fn a_server_without_tls_is_reported_when_tls_is_asked_for() {
    if !available() {
        return;
    }
    let server = MariaDb::start(&MariaDbOptions {
        ip: testing::unique_loopback_ip(),
        tls: None,
        users: vec![("probe".into(), "pw".into())],
        galera: false,
    })
    .unwrap();
    let ca = TestCa::new("ca").unwrap();
    let endpoint = Endpoint::plain(&server.address, TIMEOUT)
        .with_tls(TlsOptions::verify(ca.cert_pem.as_bytes(), NAME));
    let err = mysql::probe(&endpoint, &MysqlCheck::default()).unwrap_err();
    assert!(matches!(err, ProbeError::Unhealthy { .. }), "{err}");
    assert!(err.to_string().contains("does not offer TLS"), "{err}");
}
