//! The my.cnf edits work on a real server: Debian's own 50-server.cnf,
//! merged with the settings a throwaway server needs and `tls = "add"`,
//! is read by Debian's MariaDB, which then serves the certificate and
//! refuses plaintext logins (`require_secure_transport`); `tls = "remove"`
//! gives back the merged file byte for byte. Needs mariadb-server
//! (.ci/apt-packages.txt); DBOPS_SKIP_REAL_SERVERS=1 skips.
#![allow(clippy::unwrap_used)] // test set-up

use std::process::Command;
use std::time::Duration;

use dbops_config_formats::Format;
use dbops_engines::Engine;
use dbops_engines::config::TlsOptions;
use dbops_plugin_patch_config::config::{FileChange, FilePlan, Mode, TlsMode};
use dbops_plugin_patch_config::edit::{Input, compute};
use dbops_probes::mysql::{self, Credentials, MysqlCheck, Password};
use dbops_probes::testing::{self, ServerProcess, TestCa};
use dbops_probes::{Endpoint, TlsOptions as ProbeTls};
use serde_json::{Value, json};

const SERVER_CNF: &str = include_str!("../../../crates/config-formats/tests/data/50-server.cnf");
const NAME: &str = "px-0.px-pods.test.svc";

fn edit(text: &str, set: Option<Value>, tls: Option<TlsMode>, options: &TlsOptions) -> String {
    let plan = FilePlan {
        file: "my.cnf".into(),
        format: Format::Ini,
        change: FileChange {
            set,
            ..FileChange::default()
        },
        tls,
    };
    compute(&Input {
        plan: &plan,
        mode: Mode::Merge,
        current: Some(text),
        source: None,
        defaults: None,
        engine: Some(Engine::Perconaxtradb),
        tls_options: options,
    })
    .unwrap()
    .after
    .unwrap()
}

#[test]
fn tls_add_on_debians_server_cnf_is_served_by_a_real_mariadb() {
    if !testing::real_server_available(testing::MARIADBD, "mariadb-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    for sub in ["tmp", "tls"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let install = testing::mariadb_install_command(dir.path())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let users = vec![("probe".to_owned(), "pw-for-tests".to_owned())];
    std::fs::write(
        dir.path().join("init.sql"),
        testing::mariadb_init_sql(&users),
    )
    .unwrap();
    let ca = TestCa::new("patch-config mysql ca").unwrap();
    let cert = ca.issue("px-0", &[NAME]).unwrap();
    std::fs::write(dir.path().join("tls/tls.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls/tls.key"), &cert.key_pem).unwrap();
    std::fs::write(dir.path().join("tls/ca.crt"), &ca.cert_pem).unwrap();

    let ip = testing::unique_loopback_ip();
    let port = testing::free_port(ip).unwrap();
    let options = TlsOptions {
        dir: path("tls"),
        ..TlsOptions::default()
    };
    let local = json!({"mysqld": {
        "datadir": path("data"), "tmpdir": path("tmp"), "socket": path("mysqld.sock"),
        "pid-file": path("mysqld.pid"), "log-error": path("error.log"), "init-file": path("init.sql"),
        "bind-address": ip.to_string(), "port": port, "user": "root",
        "skip-name-resolve": true, "innodb-buffer-pool-size": "16M", "performance-schema": "OFF",
    }});
    let merged = edit(SERVER_CNF, Some(local), None, &options);
    let with_tls = edit(&merged, None, Some(TlsMode::Add), &options);
    let conf = dir.path().join("my.cnf");
    std::fs::write(&conf, &with_tls).unwrap();
    let mut command = Command::new(testing::MARIADBD);
    command.arg(format!("--defaults-file={}", conf.display()));
    let server = ServerProcess::spawn(command, dir.path().join("stdout.log")).unwrap();

    let address = format!("{ip}:{port}");
    let check = MysqlCheck {
        credentials: Some(Credentials {
            user: "probe".into(),
            password: Password::new("pw-for-tests"),
        }),
        ..MysqlCheck::default()
    };
    let tls = Endpoint::plain(&address, Duration::from_secs(5))
        .with_tls(ProbeTls::verify(ca.cert_pem.as_bytes(), NAME));
    let report = testing::wait_for(Duration::from_secs(90), "MariaDB over TLS", || {
        mysql::probe(&tls, &check).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("{e}\n{log}\n{}", server.log_tail(20))
    });
    assert!(report.select_one);
    assert_eq!(report.tls.expect("TLS session").leaf.serial, cert.serial);
    let plain = mysql::probe(&Endpoint::plain(&address, Duration::from_secs(5)), &check);
    // MariaDB 10.11 answers an insecure login with 1045 Access denied.
    let refusal = plain
        .expect_err("require_secure_transport must refuse plaintext logins")
        .to_string();
    assert!(refusal.contains("1045"), "{refusal}");
    drop(server);

    // The same file with require_secure_transport OFF accepts that login:
    // the refusal came from the setting, not from the account.
    let relaxed = edit(
        &with_tls,
        Some(json!({"mysqld": {"require_secure_transport": "OFF"}})),
        None,
        &options,
    );
    std::fs::write(&conf, &relaxed).unwrap();
    let mut command = Command::new(testing::MARIADBD);
    command.arg(format!("--defaults-file={}", conf.display()));
    let server = ServerProcess::spawn(command, dir.path().join("stdout2.log")).unwrap();
    let plain = Endpoint::plain(&address, Duration::from_secs(5));
    let report = testing::wait_for(Duration::from_secs(90), "MariaDB in plaintext", || {
        mysql::probe(&plain, &check).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail(20)));
    assert!(report.select_one && report.tls.is_none());
    drop(server);

    assert_eq!(
        edit(&with_tls, None, Some(TlsMode::Remove), &options),
        merged
    );
}
