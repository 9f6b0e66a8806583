//! Every action with the built-in CA against the sandbox, with the
//! resulting Secrets checked by openssl and keytool.

use crate::support;

use serde_json::json;
use support::{World, digest, out, p, run, text, tool, try_run, write_files};

fn add_with() -> serde_json::Value {
    json!({
        "action": "add",
        "issuer": {"kind": "ca", "name": "zk-ca", "create_if_missing": true},
        "certificate": {"wildcard": true, "ip_addresses": ["127.0.0.1"]},
    })
}

#[test]
fn add_creates_the_ca_the_tls_secret_and_keystores_that_openssl_and_keytool_accept() {
    let world = World::start(&[]);
    let host = world.host();
    let outputs = run(&host, "zookeeper", add_with());
    assert_eq!(outputs.get("changed"), Some(&json!(true)));
    assert_eq!(out(&outputs, "secret_name"), "zk-tls");
    assert_eq!(out(&outputs, "password_secret"), "zk-tls-keystore-password");

    let object = world.secret_object("zk-tls").expect("tls secret exists");
    assert_eq!(object["type"], "kubernetes.io/tls");
    assert_eq!(object["metadata"]["labels"]["dbops.io/target"], "zk");
    assert_eq!(
        object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "dbops"
    );
    let data = world.secret("zk-tls").expect("tls secret");
    for key in [
        "tls.crt",
        "tls.key",
        "ca.crt",
        "keystore.p12",
        "truststore.p12",
        "keystore.jks",
        "truststore.jks",
    ] {
        assert!(data.contains_key(key), "missing {key}");
    }
    assert!(
        text(&data, "tls.key").starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 key"
    );
    let password = text(
        &world
            .secret("zk-tls-keystore-password")
            .expect("password secret"),
        "password",
    );
    assert_eq!(password.len(), 32);

    let dir = tempfile::tempdir().expect("tempdir");
    write_files(dir.path(), &data);
    let f = |k: &str| p(&dir.path().join(k));
    assert!(
        tool(
            "openssl",
            &["verify", "-CAfile", &f("ca.crt"), &f("tls.crt")]
        )
        .contains(": OK")
    );
    let x509 = tool(
        "openssl",
        &["x509", "-in", &f("tls.crt"), "-noout", "-text"],
    );
    for name in [
        "DNS:zk-0.zk-pods.db.svc,",
        "DNS:zk-2.zk-pods.db.svc.cluster.local",
        "DNS:*.zk-pods.db.svc",
        "DNS:zk.db.svc",
        "IP Address:127.0.0.1",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ] {
        assert!(x509.contains(name), "{name} missing:\n{x509}");
    }
    let serial = tool(
        "openssl",
        &["x509", "-in", &f("tls.crt"), "-noout", "-serial"],
    );
    assert_eq!(
        serial.trim().to_ascii_lowercase(),
        format!("serial={}", out(&outputs, "serial"))
    );
    let pass = format!("pass:{password}");
    let info = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            &f("keystore.p12"),
            "-info",
            "-nodes",
            "-passin",
            &pass,
        ],
    );
    assert!(info.contains("BEGIN PRIVATE KEY"), "{info}");
    for (file, kind, entry) in [
        ("keystore.p12", "PKCS12", "PrivateKeyEntry"),
        ("truststore.p12", "PKCS12", "trustedCertEntry"),
        ("keystore.jks", "JKS", "PrivateKeyEntry"),
        ("truststore.jks", "JKS", "trustedCertEntry"),
    ] {
        let listing = tool(
            "keytool",
            &[
                "-list",
                "-keystore",
                &f(file),
                "-storetype",
                kind,
                "-storepass",
                &password,
            ],
        );
        assert!(listing.contains(entry), "{file}: {listing}");
    }

    // What `dbops certs` will find and show for this target.
    assert_eq!(
        world.secrets_labeled(dbops_certs::summary::LABEL_ROLE, "tls"),
        ["zk-tls"]
    );
    let summary =
        dbops_certs::summarize_secret(&data, time::OffsetDateTime::now_utc(), "secret db/zk-tls")
            .expect("summary");
    assert_eq!(summary.certificate.serial_hex, out(&outputs, "serial"));
    assert_eq!(summary.days_left, 89);
    assert!(
        summary.line().contains("issuer=O=dbops, CN=zk-ca"),
        "{}",
        summary.line()
    );

    // The CA Secret is a kubernetes.io/tls Secret with the CA key.
    let ca = world.secret("zk-ca").expect("CA secret created");
    assert_eq!(text(&ca, "tls.crt"), text(&data, "ca.crt"));

    // Adding again (a new run) finds a fitting certificate and writes nothing.
    let again = world.host();
    let outputs = run(&again, "zookeeper", add_with());
    assert_eq!(outputs.get("changed"), Some(&json!(false)));
    assert!(
        again
            .requests
            .lock()
            .expect("lock")
            .iter()
            .all(|r| r.starts_with("GET")),
        "{:?}",
        again.requests.lock().expect("lock")
    );
}

#[test]
fn mysql_family_engines_get_pem_only() {
    let world = World::start(&[]);
    run(&world.host(), "perconaxtradb", add_with());
    let data = world.secret("zk-tls").expect("tls secret");
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    assert!(world.secret("zk-tls-keystore-password").is_none());
}

#[test]
fn rotate_is_a_no_op_when_not_due_and_force_rotates_serial_and_key_with_a_backup() {
    let world = World::start(&[]);
    let added = run(&world.host(), "zookeeper", add_with());
    let before = world.secret("zk-tls").expect("tls secret");
    let rotate = json!({"action": "rotate", "renew_before": "720h", "issuer": {"kind": "ca", "name": "zk-ca"},
                        "certificate": {"wildcard": true, "ip_addresses": ["127.0.0.1"]}});

    let host = world.host();
    let outputs = run(&host, "zookeeper", rotate.clone());
    assert_eq!(outputs.get("changed"), Some(&json!(false)));
    assert!(
        host.requests
            .lock()
            .expect("lock")
            .iter()
            .all(|r| r.starts_with("GET"))
    );
    assert_eq!(
        digest(&world.secret("zk-tls").expect("tls secret")),
        digest(&before),
        "nothing written"
    );

    let mut forced = rotate.clone();
    forced["force"] = json!(true);
    let host = world.host();
    let outputs = run(&host, "zookeeper", forced.clone());
    assert_ne!(
        out(&outputs, "serial"),
        out(&added, "serial"),
        "a new serial"
    );
    assert_ne!(out(&outputs, "fingerprint"), out(&added, "fingerprint"));
    assert_eq!(outputs.get("changed"), Some(&json!(true)));
    let after = world.secret("zk-tls").expect("tls secret");
    assert!(
        text(&after, "tls.crt") != text(&before, "tls.crt"),
        "a new certificate"
    );
    assert!(
        text(&after, "tls.key") != text(&before, "tls.key"),
        "a new key by default"
    );
    let backup = out(&outputs, "backup_secret");
    assert!(!backup.is_empty());
    let saved = world.secret(&backup).expect("backup secret exists");
    assert_eq!(
        digest(&saved),
        digest(&before),
        "the backup holds the previous revision exactly"
    );

    // Rollback restores the previous contents exactly.
    support::compensate(&host, "zookeeper", forced);
    assert_eq!(
        digest(&world.secret("zk-tls").expect("tls secret")),
        digest(&before)
    );
}

#[test]
fn a_due_certificate_is_rotated_and_rotation_policy_never_keeps_the_key() {
    let world = World::start(&[]);
    let mut add = add_with();
    add["certificate"]["duration"] = json!("100h");
    run(&world.host(), "generic", add);
    let before = world.secret("zk-tls").expect("tls secret");
    let rotate = json!({"action": "rotate", "renew_before": "720h", "issuer": {"kind": "ca", "name": "zk-ca"},
                        "certificate": {"wildcard": true, "ip_addresses": ["127.0.0.1"], "rotation_policy": "Never"}});
    let outputs = run(&world.host(), "generic", rotate);
    assert_eq!(outputs.get("changed"), Some(&json!(true)));
    let after = world.secret("zk-tls").expect("tls secret");
    assert!(
        text(&after, "tls.key") == text(&before, "tls.key"),
        "the key is kept"
    );
    assert!(
        text(&after, "tls.crt") != text(&before, "tls.crt"),
        "a new certificate"
    );
}

#[test]
fn rotate_without_a_secret_says_to_use_add() {
    let world = World::start(&[]);
    let err = try_run(&world.host(), "zookeeper", json!({"action": "rotate", "issuer": {"kind": "ca", "name": "zk-ca", "create_if_missing": true}}))
        .expect_err("nothing to rotate");
    assert_eq!(err.0, "NothingToRotate", "{err:?}");
    assert!(err.1.contains("use action \"add\""), "{err:?}");
}

#[test]
fn update_issuer_runs_three_phases_then_reports_done() {
    let world = World::start(&[]);
    run(&world.host(), "kafka", add_with());
    let old_ca = text(&world.secret("zk-ca").expect("old CA"), "tls.crt");
    let update = json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2", "create_if_missing": true},
                        "certificate": {"wildcard": true, "ip_addresses": ["127.0.0.1"]}});

    // An explicit phase out of order is refused.
    let mut early = update.clone();
    early["phase"] = json!("drop-old");
    let err = try_run(&world.host(), "kafka", early).expect_err("out of order");
    assert_eq!(err.0, "PhaseOutOfOrder", "{err:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let f = |k: &str| p(&dir.path().join(k));
    let mut phases = Vec::new();
    for _ in 0..4 {
        let outputs = run(&world.host(), "kafka", update.clone());
        phases.push((
            out(&outputs, "phase"),
            out(&outputs, "next_phase"),
            outputs["changed"].clone(),
        ));
        let data = world.secret("zk-tls").expect("tls secret");
        write_files(dir.path(), &data);
        let cas = text(&data, "ca.crt").matches("BEGIN CERTIFICATE").count();
        let verify = tool(
            "openssl",
            &["verify", "-CAfile", &f("ca.crt"), &f("tls.crt")],
        );
        assert!(
            verify.contains(": OK"),
            "members trust the served chain at every phase: {verify}"
        );
        match out(&outputs, "phase").as_str() {
            "trust-both" | "issue" => assert_eq!(cas, 2),
            _ => assert_eq!(cas, 1),
        }
        let password = text(
            &world.secret("zk-tls-keystore-password").expect("pw"),
            "password",
        );
        let listing = tool(
            "keytool",
            &[
                "-list",
                "-keystore",
                &f("truststore.jks"),
                "-storetype",
                "JKS",
                "-storepass",
                &password,
            ],
        );
        assert!(
            listing.contains(&format!("Your keystore contains {cas} entr")),
            "{listing}"
        );
    }
    let names: Vec<_> = phases
        .iter()
        .map(|(p, n, c)| (p.as_str(), n.as_str(), c.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("trust-both", "issue", json!(true)),
            ("issue", "drop-old", json!(true)),
            ("drop-old", "done", json!(true)),
            ("done", "done", json!(false)),
        ]
    );
    let data = world.secret("zk-tls").expect("tls secret");
    assert!(
        !text(&data, "ca.crt").contains(old_ca.trim()),
        "the old CA is gone"
    );
    let new_ca = text(&world.secret("zk-ca-2").expect("new CA"), "tls.crt");
    assert_eq!(text(&data, "ca.crt"), new_ca);
}

#[test]
fn remove_refuses_while_mounted_then_deletes_only_what_add_created_and_rollback_restores_it() {
    let world = World::start(&["zk-tls"]);
    run(&world.host(), "zookeeper", add_with());
    let mut rotate = json!({"action": "rotate", "force": true, "issuer": {"kind": "ca", "name": "zk-ca"},
                            "certificate": {"wildcard": true, "ip_addresses": ["127.0.0.1"]}});
    run(&world.host(), "zookeeper", rotate.clone());
    rotate["force"] = json!(true);
    assert_eq!(world.secrets_labeled("dbops.io/role", "backup").len(), 1);
    world.sandbox.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unrelated", "namespace": "db"},
                               "data": {"x": "eA=="}})).expect("apply");

    let remove = json!({"action": "remove"});
    let err = try_run(&world.host(), "zookeeper", remove.clone()).expect_err("still mounted");
    assert_eq!(err.0, "SecretStillMounted", "{err:?}");

    world.statefulset(&[]);
    let before = world.secret("zk-tls").expect("tls secret");
    let host = world.host();
    let outputs = run(&host, "zookeeper", remove.clone());
    assert_eq!(outputs.get("changed"), Some(&json!(true)));
    assert!(world.secret("zk-tls").is_none());
    assert!(world.secret("zk-tls-keystore-password").is_none());
    assert!(
        world.secret("zk-ca").is_some(),
        "the CA stays unless delete_ca = true"
    );
    assert!(world.secret("unrelated").is_some());
    let backups = world.secrets_labeled("dbops.io/role", "backup");
    assert_eq!(
        backups.len(),
        2,
        "only this run's backups of the deleted Secrets remain: {backups:?}"
    );

    support::compensate(&host, "zookeeper", remove);
    assert_eq!(
        digest(&world.secret("zk-tls").expect("restored")),
        digest(&before)
    );
    assert!(world.secret("zk-tls-keystore-password").is_some());
}

#[test]
fn dry_runs_report_what_would_change_and_write_nothing() {
    let world = World::start(&[]);
    let host = world.host();
    let outputs = support::run_dry(&host, "zookeeper", add_with());
    assert_eq!(outputs["changed"], json!(true));
    assert!(world.secret("zk-tls").is_none() && world.secret("zk-ca").is_none());
    let logs: Vec<String> = host
        .logs
        .lock()
        .expect("lock")
        .iter()
        .map(|l| l.message.clone())
        .collect();
    assert!(
        logs.iter().any(|l| l.starts_with("dry run: would issue")),
        "{logs:?}"
    );

    run(&world.host(), "zookeeper", add_with());
    let update = json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2", "create_if_missing": true}});
    let outputs = support::run_dry(&world.host(), "zookeeper", update);
    assert_eq!(out(&outputs, "phase"), "trust-both");
    assert!(world.secret("zk-ca-2").is_none());
    let outputs = support::run_dry(&world.host(), "zookeeper", json!({"action": "remove"}));
    assert_eq!(
        out(&outputs, "deleted"),
        "Secret zk-tls,Secret zk-tls-keystore-password"
    );
    assert!(world.secret("zk-tls").is_some());
}

#[test]
fn a_foreign_secret_without_ca_crt_keeps_trusting_its_chain_ca_during_update_issuer() {
    use base64::Engine as _;
    let world = World::start(&[]);
    let old = dbops_certs::Ca::create(&dbops_certs::CaSpec {
        subject: dbops_certs::Subject {
            common_name: "operator CA".into(),
            ..Default::default()
        },
        validity: std::time::Duration::from_secs(86_400 * 30),
        algorithm: dbops_certs::KeyAlgorithm::EcdsaP256,
    })
    .expect("CA");
    let key = dbops_certs::PrivateKey::generate(dbops_certs::KeyAlgorithm::EcdsaP256).expect("key");
    let spec = dbops_certs::LeafSpec {
        subject: dbops_certs::Subject {
            common_name: "zk".into(),
            ..Default::default()
        },
        dns_names: vec!["zk-0.zk-pods.db.svc".into()],
        ip_addresses: Vec::new(),
        validity: std::time::Duration::from_secs(86_400 * 10),
        server_auth: true,
        client_auth: true,
    };
    let issued = old.issue(&spec, &key).expect("issues");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    world
        .sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                      "metadata": {"name": "zk-tls", "namespace": "db"},
                      "data": {"tls.crt": b64(&issued.chain_pem), "tls.key": b64(&key.pkcs8_pem())}}))
        .expect("foreign secret");

    let update = json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2", "create_if_missing": true}});
    let outputs = run(&world.host(), "perconaxtradb", update);
    assert_eq!(out(&outputs, "phase"), "trust-both");
    let bundle = text(&world.secret("zk-tls").expect("secret"), "ca.crt");
    assert!(
        bundle.contains(old.cert_pem().trim()),
        "the chain's CA is still trusted"
    );
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);

    // It is still not dbops' Secret: remove leaves it alone.
    let outputs = run(
        &world.host(),
        "perconaxtradb",
        json!({"action": "remove", "force": true}),
    );
    let deleted = out(&outputs, "deleted");
    assert!(
        !deleted.split(',').any(|d| d == "Secret zk-tls"),
        "{deleted}"
    );
    assert!(world.secret("zk-tls").is_some());
}
