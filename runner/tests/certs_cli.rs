//! `dbops certs` against the sandbox: lists the TLS Secrets dbops wrote,
//! flags the ones expiring within the threshold with exit code 7, reports
//! an unreadable certificate, and never prints a private key.

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use common::{World, text};
use dbops_certs::{Ca, CaSpec, KeyAlgorithm, LeafSpec, PrivateKey, Subject};
use serde_json::json;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A dbops-labelled TLS Secret for `target` whose leaf is valid for `days`.
fn tls_secret(ca: &Ca, ns: &str, target: &str, days: u64) -> (serde_json::Value, String, String) {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let leaf = ca
        .issue(
            &LeafSpec {
                subject: Subject {
                    common_name: target.into(),
                    ..Subject::default()
                },
                dns_names: vec![format!("{target}.{ns}.svc")],
                ip_addresses: vec![],
                validity: DAY * u32::try_from(days).expect("days"),
                server_auth: true,
                client_auth: true,
            },
            &key,
        )
        .expect("issue");
    let key_pem = key.pkcs8_pem().to_string();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": format!("{target}-tls"), "namespace": ns, "labels": {
            "app.kubernetes.io/managed-by": "dbops", "dbops.io/role": "tls", "dbops.io/target": target}},
        "data": {"tls.crt": b64(&leaf.chain_pem), "tls.key": b64(&key_pem), "ca.crt": b64(&ca.cert_pem())}
    });
    (secret, leaf.info.serial_hex, key_pem)
}

#[test]
fn certs_lists_managed_secrets_and_flags_the_expiring_ones() {
    let w = World::start();
    let ca = Ca::create(&CaSpec {
        subject: Subject {
            common_name: "certs-test-ca".into(),
            ..Subject::default()
        },
        validity: DAY * 3650,
        algorithm: KeyAlgorithm::EcdsaP256,
    })
    .expect("ca");
    let (fresh, fresh_serial, fresh_key) = tls_secret(&ca, "db", "zk", 90);
    let (soon, soon_serial, soon_key) = tls_secret(&ca, "db", "kafka", 10);
    w.sandbox.apply(fresh).expect("seed fresh");
    w.sandbox.apply(soon).expect("seed soon");
    // Not written by dbops: not listed.
    w.sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other", "namespace": "db"},
            "data": {"tls.crt": b64("not a certificate")}}))
        .expect("seed other");

    let certs = |extra: &[&str]| {
        w.dbops()
            .arg("certs")
            .arg("--kubeconfig")
            .arg(&w.kubeconfig)
            .args(extra)
            .output()
            .expect("run dbops certs")
    };

    // Default threshold 720h: the 10-day certificate is due.
    let out = certs(&[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(7), "CERT_EXPIRING expected: {all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kafka_line = stdout
        .lines()
        .find(|l| l.starts_with("db/kafka-tls"))
        .unwrap_or_else(|| panic!("kafka row missing: {stdout}"));
    assert!(kafka_line.contains(&soon_serial), "{kafka_line}");
    assert!(kafka_line.contains("target=kafka"), "{kafka_line}");
    assert!(kafka_line.contains("EXPIRING"), "{kafka_line}");
    let zk_line = stdout
        .lines()
        .find(|l| l.starts_with("db/zk-tls"))
        .unwrap_or_else(|| panic!("zk row missing: {stdout}"));
    assert!(zk_line.contains(&fresh_serial), "{zk_line}");
    assert!(zk_line.contains("issuer=CN=certs-test-ca"), "{zk_line}");
    assert!(!zk_line.contains("EXPIRING"), "{zk_line}");
    assert!(
        !stdout.contains("db/other"),
        "unmanaged Secret listed: {stdout}"
    );
    for key in [&fresh_key, &soon_key] {
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!all.contains(&body[..40]), "private key printed");
    }

    // A one-day threshold: nothing is due.
    let out = certs(&["--threshold", "24h", "-n", "db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A corrupt certificate in a managed Secret is reported, not skipped.
    w.sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "broken-tls", "namespace": "db", "labels": {
                "app.kubernetes.io/managed-by": "dbops", "dbops.io/role": "tls", "dbops.io/target": "broken"}},
            "data": {"tls.crt": b64("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}}))
        .expect("seed broken");
    let out = certs(&["--threshold", "24h"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("db/broken-tls") && l.contains("UNREADABLE")),
        "{stdout}"
    );
}
