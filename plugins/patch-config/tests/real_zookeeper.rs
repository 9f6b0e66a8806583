//! The ZooKeeper TLS settings work on a real server: `tls = "add"` on a
//! plain zoo.cfg, with PKCS#12 stores and a password file laid out as
//! issue-cert's Secrets are mounted, makes Debian's ZooKeeper serve the
//! certificate on the secure client port; `tls = "remove"` gives back the
//! original file byte for byte. Needs the zookeeper and default-jre-headless
//! packages (.ci/apt-packages.txt); DBOPS_SKIP_REAL_SERVERS=1 skips.
#![allow(clippy::unwrap_used)] // test set-up

use std::path::Path;
use std::time::Duration;

use dbops_certs::{Password, PrivateKey, TrustBundle};
use dbops_config_formats::Format;
use dbops_engines::Engine;
use dbops_engines::config::TlsOptions;
use dbops_plugin_patch_config::config::{FileChange, FilePlan, Mode, TlsMode};
use dbops_plugin_patch_config::edit::{Input, compute};
use dbops_probes::testing::{self, ServerProcess, TestCa, ZkMember};
use dbops_probes::{Endpoint, TlsOptions as ProbeTls, zookeeper};

fn available() -> bool {
    testing::real_server_available(testing::ZOOKEEPER_JAR, "zookeeper")
        && testing::real_server_available(testing::JAVA, "default-jre-headless")
}

fn tls_edit(text: &str, mode: TlsMode, options: &TlsOptions) -> String {
    let plan = FilePlan {
        file: "zoo.cfg".into(),
        format: Format::Properties,
        change: FileChange::default(),
        tls: Some(mode),
    };
    compute(&Input {
        plan: &plan,
        mode: Mode::Merge,
        current: Some(text),
        source: None,
        defaults: None,
        engine: Some(Engine::Zookeeper),
        tls_options: options,
    })
    .unwrap()
    .after
    .unwrap()
}

/// keystore.p12, truststore.p12 and the password file, as issue-cert writes them.
fn write_stores(tls_dir: &Path, password_dir: &Path, ca: &TestCa, cert_pem: &str, key_pem: &str) {
    let password = Password::new("changeit-test-only");
    let key = PrivateKey::from_pem(key_pem, "test key").unwrap();
    let mut chain = dbops_certs::pem::certificates(cert_pem, "leaf").unwrap();
    chain.extend(dbops_certs::pem::certificates(&ca.cert_pem, "ca").unwrap());
    let keystore = dbops_certs::pkcs12::keystore("server", &key, &chain, &password).unwrap();
    let bundle = TrustBundle::from_pem(&ca.cert_pem, "ca").unwrap();
    let truststore = dbops_certs::pkcs12::truststore("ca", &bundle, &password).unwrap();
    std::fs::write(tls_dir.join("keystore.p12"), keystore).unwrap();
    std::fs::write(tls_dir.join("truststore.p12"), truststore).unwrap();
    std::fs::write(password_dir.join("password"), password.expose()).unwrap();
}

#[test]
fn tls_add_makes_a_real_zookeeper_serve_tls_and_remove_restores_the_file() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tls_dir, password_dir, data_dir) = (
        dir.path().join("tls"),
        dir.path().join("pw"),
        dir.path().join("data"),
    );
    for d in [&tls_dir, &password_dir, &data_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let member = ZkMember::on(1, testing::unique_loopback_ip(), false).unwrap();
    let secure_port = testing::free_port(member.ip).unwrap();
    let plain = testing::zoo_cfg(&member, std::slice::from_ref(&member), &data_dir, None);

    let ca = TestCa::new("patch-config test ca").unwrap();
    let dns = "zk-0.zk-pods.test.svc";
    let ip = member.ip.to_string();
    let cert = ca.issue("zk-0", &[dns, ip.as_str()]).unwrap();
    write_stores(&tls_dir, &password_dir, &ca, &cert.cert_pem, &cert.key_pem);

    let options = TlsOptions {
        dir: tls_dir.display().to_string(),
        password_dir: password_dir.display().to_string(),
        port: Some(secure_port),
        ..TlsOptions::default()
    };
    let with_tls = tls_edit(&plain, TlsMode::Add, &options);
    assert!(
        with_tls.starts_with(&plain),
        "plain settings and order kept"
    );
    let conf = dir.path().join("zoo.cfg");
    std::fs::write(&conf, &with_tls).unwrap();
    let server = ServerProcess::spawn(
        testing::zookeeper_command(&conf, dir.path()),
        dir.path().join("server.log"),
    )
    .unwrap();

    let secure = format!("{}:{secure_port}", member.ip);
    let report = testing::wait_for(Duration::from_secs(90), "ZooKeeper TLS port", || {
        let endpoint = Endpoint::plain(&secure, Duration::from_secs(5))
            .with_tls(ProbeTls::verify(ca.cert_pem.as_bytes(), dns));
        zookeeper::probe(&endpoint).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail(40)));
    let session = report.tls.expect("served over TLS");
    assert!(session.verified);
    assert_eq!(session.leaf.serial, cert.serial);
    drop(server);

    assert_eq!(tls_edit(&with_tls, TlsMode::Remove, &options), plain);
}
