//! Issued certificates and keystores checked by the real tools users have:
//! `openssl verify`, `openssl x509 -text`, `openssl pkcs12`, and the JDK's
//! `keytool` (installed by CI from .ci/apt-packages.txt).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dbops_certs::{
    Ca, CaSpec, KeyAlgorithm, LeafSpec, Password, PrivateKey, Subject, TrustBundle, jks, pkcs12,
};

const DAY: Duration = Duration::from_secs(86_400);

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it (see .ci/apt-packages.txt)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?} failed: {text}");
    text
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn ca(algorithm: KeyAlgorithm, cn: &str) -> Ca {
    Ca::create(&CaSpec {
        subject: Subject {
            common_name: cn.into(),
            organization: Some("dbops".into()),
            organizational_unit: None,
        },
        validity: 3650 * DAY,
        algorithm,
    })
    .expect("creates CA")
}

fn leaf_spec() -> LeafSpec {
    LeafSpec {
        subject: Subject {
            common_name: "zk".into(),
            ..Subject::default()
        },
        dns_names: vec![
            "zk-0.zk-pods.db.svc".into(),
            "zk-0.zk-pods.db.svc.cluster.local".into(),
            "*.zk-pods.db.svc".into(),
        ],
        ip_addresses: vec!["127.0.0.1".parse().expect("ip")],
        validity: 90 * DAY,
        server_auth: true,
        client_auth: true,
    }
}

#[test]
fn openssl_verifies_chains_and_shows_sans_and_usages_for_every_algorithm() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (ca_alg, leaf_alg) in [
        (KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256),
        (KeyAlgorithm::EcdsaP384, KeyAlgorithm::EcdsaP384),
        (KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048),
        (KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256),
    ] {
        let ca = ca(ca_alg, "dbops test CA");
        let key = PrivateKey::generate(leaf_alg).expect("key");
        let issued = ca.issue(&leaf_spec(), &key).expect("issues");
        let ca_file = dir.path().join("ca.crt");
        let chain_file = dir.path().join("tls.crt");
        let key_file = dir.path().join("tls.key");
        std::fs::write(&ca_file, ca.cert_pem()).expect("write");
        std::fs::write(&chain_file, &issued.chain_pem).expect("write");
        std::fs::write(&key_file, key.pkcs8_pem().as_bytes()).expect("write");

        let verify = run(
            "openssl",
            &["verify", "-CAfile", path(&ca_file), path(&chain_file)],
        );
        assert!(verify.contains(": OK"), "{verify}");
        let text = run(
            "openssl",
            &["x509", "-in", path(&chain_file), "-noout", "-text"],
        );
        for expected in [
            "DNS:zk-0.zk-pods.db.svc",
            "DNS:zk-0.zk-pods.db.svc.cluster.local",
            "DNS:*.zk-pods.db.svc",
            "IP Address:127.0.0.1",
            "TLS Web Server Authentication",
            "TLS Web Client Authentication",
            "Digital Signature",
            "CA:FALSE",
        ] {
            assert!(
                text.contains(expected),
                "{leaf_alg}: {expected} missing in\n{text}"
            );
        }
        // The key file is PKCS#8 and belongs to the certificate.
        let cert_pub = run(
            "openssl",
            &["x509", "-in", path(&chain_file), "-noout", "-pubkey"],
        );
        let key_pub = run("openssl", &["pkey", "-in", path(&key_file), "-pubout"]);
        assert_eq!(cert_pub, key_pub, "{leaf_alg}");
        assert_eq!(issued.info.serial_hex.len() % 2, 0);
        let serial = run(
            "openssl",
            &["x509", "-in", path(&chain_file), "-noout", "-serial"],
        );
        assert_eq!(
            serial.trim().to_ascii_lowercase(),
            format!("serial={}", issued.info.serial_hex)
        );
    }
}

#[test]
fn a_reused_key_gets_a_new_serial_and_an_unknown_ca_is_rejected() {
    let ca = ca(KeyAlgorithm::EcdsaP256, "CA one");
    let other = ca_other();
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let a = ca.issue(&leaf_spec(), &key).expect("issues");
    let b = ca.issue(&leaf_spec(), &key).expect("issues");
    assert_ne!(a.info.serial_hex, b.info.serial_hex);
    assert!(dbops_certs::inspect::is_signed_by(&a.cert_der, ca.cert_der()).expect("parses"));
    assert!(!dbops_certs::inspect::is_signed_by(&a.cert_der, other.cert_der()).expect("parses"));
    let reloaded = Ca::from_pem(&ca.cert_pem(), &ca.key().pkcs8_pem(), "ca secret").expect("loads");
    assert_eq!(reloaded.cert_der(), ca.cert_der());
    let err = Ca::from_pem(&ca.cert_pem(), &other.key().pkcs8_pem(), "ca secret")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("does not belong"), "{err}");
}

fn ca_other() -> Ca {
    ca(KeyAlgorithm::EcdsaP256, "CA two")
}

#[test]
fn openssl_and_keytool_open_pkcs12_and_jks_stores_with_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca1 = ca(KeyAlgorithm::EcdsaP256, "old CA");
    let ca2 = ca(KeyAlgorithm::EcdsaP256, "new CA");
    for leaf_alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let key = PrivateKey::generate(leaf_alg).expect("key");
        let issued = ca2.issue(&leaf_spec(), &key).expect("issues");
        let chain = vec![issued.cert_der.clone(), ca2.cert_der().to_vec()];
        let mut bundle = TrustBundle::new();
        bundle.add_der(ca1.cert_der().to_vec());
        bundle.add_der(ca2.cert_der().to_vec());
        let password = Password::generate().expect("password");
        let pw_arg = format!("pass:{}", password.expose());

        let files = [
            (
                "keystore.p12",
                pkcs12::keystore("server", &key, &chain, &password).expect("p12"),
            ),
            (
                "truststore.p12",
                pkcs12::truststore("ca", &bundle, &password).expect("p12"),
            ),
            (
                "keystore.jks",
                jks::keystore("server", &key, &chain, &password).expect("jks"),
            ),
            (
                "truststore.jks",
                jks::truststore("ca", &bundle, &password).expect("jks"),
            ),
        ];
        for (name, bytes) in &files {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        }
        let p12 = dir.path().join("keystore.p12");
        let info = run(
            "openssl",
            &[
                "pkcs12",
                "-in",
                path(&p12),
                "-info",
                "-nodes",
                "-passin",
                &pw_arg,
            ],
        );
        assert!(info.contains("BEGIN PRIVATE KEY"), "{info}");
        assert!(info.contains("friendlyName: server"), "{info}");
        let trust = dir.path().join("truststore.p12");
        let info = run(
            "openssl",
            &[
                "pkcs12",
                "-in",
                path(&trust),
                "-info",
                "-nokeys",
                "-passin",
                &pw_arg,
            ],
        );
        assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 2, "{info}");

        for (name, kind, entries) in [
            ("keystore.p12", "PKCS12", "PrivateKeyEntry"),
            ("truststore.p12", "PKCS12", "trustedCertEntry"),
            ("keystore.jks", "JKS", "PrivateKeyEntry"),
            ("truststore.jks", "JKS", "trustedCertEntry"),
        ] {
            let file = dir.path().join(name);
            let listing = run(
                "keytool",
                &[
                    "-list",
                    "-v",
                    "-keystore",
                    path(&file),
                    "-storetype",
                    kind,
                    "-storepass",
                    password.expose(),
                ],
            );
            assert!(listing.contains(entries), "{name}: {listing}");
            if name.starts_with("truststore") {
                assert!(
                    listing.contains("Your keystore contains 2 entries"),
                    "{name}: {listing}"
                );
            } else {
                assert!(
                    listing.contains("Certificate chain length: 2"),
                    "{name}: {listing}"
                );
            }
        }
        // keytool can export the JKS private key, so the key protector is right.
        let out = dir.path().join("exported.p12");
        let _ = std::fs::remove_file(&out);
        run(
            "keytool",
            &[
                "-importkeystore",
                "-srckeystore",
                path(&dir.path().join("keystore.jks")),
                "-srcstoretype",
                "JKS",
                "-srcstorepass",
                password.expose(),
                "-destkeystore",
                path(&out),
                "-deststoretype",
                "PKCS12",
                "-deststorepass",
                password.expose(),
                "-noprompt",
            ],
        );
        let exported = run(
            "openssl",
            &[
                "pkcs12",
                "-in",
                path(&out),
                "-nocerts",
                "-nodes",
                "-passin",
                &pw_arg,
            ],
        );
        let ours = key.pkcs8_pem();
        let exported_key = exported
            .split("-----BEGIN PRIVATE KEY-----")
            .nth(1)
            .map(|rest| format!("-----BEGIN PRIVATE KEY-----{rest}"))
            .unwrap_or_default();
        let reread = PrivateKey::from_pem(&exported_key, "exported").expect("exported key parses");
        assert_eq!(
            reread.public_key_sha256().ok(),
            key.public_key_sha256().ok(),
            "{}",
            ours.len()
        );
        assert!(jks::verify(&files[2].1, &password));
        assert!(!jks::verify(&files[2].1, &Password::new("wrong")));
    }
}

#[test]
fn trust_bundles_dedupe_and_remove_by_fingerprint() {
    let a = ca(KeyAlgorithm::EcdsaP256, "A");
    let b = ca(KeyAlgorithm::EcdsaP256, "B");
    let text = format!("{}{}{}", a.cert_pem(), b.cert_pem(), a.cert_pem());
    let mut bundle = TrustBundle::from_pem(&text, "ca.crt").expect("parses");
    assert_eq!(bundle.len(), 2);
    let fp_a = dbops_certs::inspect::fingerprint(a.cert_der());
    assert!(bundle.remove(&fp_a));
    assert_eq!(bundle.to_pem(), b.cert_pem());
}

#[test]
fn summaries_report_issuer_serial_and_days_left() {
    let ca = ca(KeyAlgorithm::EcdsaP256, "summary CA");
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let issued = ca.issue(&leaf_spec(), &key).expect("issues");
    let mut data = std::collections::BTreeMap::new();
    data.insert("tls.crt".to_owned(), issued.chain_pem.clone().into_bytes());
    data.insert("ca.crt".to_owned(), ca.cert_pem().into_bytes());
    let now = time::OffsetDateTime::now_utc();
    let summary = dbops_certs::summarize_secret(&data, now, "secret db/zk-tls").expect("summary");
    assert_eq!(summary.days_left, 89);
    assert_eq!(summary.certificate.serial_hex, issued.info.serial_hex);
    assert!(
        summary.certificate.issuer.contains("CN=summary CA"),
        "{}",
        summary.certificate.issuer
    );
    assert!(summary.expires_within(now, 100 * DAY));
    assert!(!summary.expires_within(now, 30 * DAY));
    assert!(summary.line().contains("daysLeft=89"), "{}", summary.line());
}

#[test]
fn a_ca_made_with_openssl_in_any_key_encoding_signs_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = |name: &str| dir.path().join(name);
    let cases: [(&str, &[&str]); 3] = [
        (
            "sec1.key",
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ],
        ),
        ("pkcs1.key", &["genrsa", "-traditional", "-out"]),
        (
            "pkcs8.key",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
            ],
        ),
    ];
    for (file, args) in cases {
        let key_file = f(file);
        let mut args = args.to_vec();
        args.push(path(&key_file));
        if file == "pkcs1.key" {
            args.push("2048");
        }
        run("openssl", &args);
        let ca_file = f("ca.crt");
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                path(&key_file),
                "-subj",
                "/CN=openssl CA",
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                path(&ca_file),
            ],
        );
        let key_pem = std::fs::read_to_string(&key_file).expect("key");
        let cert_pem = std::fs::read_to_string(&ca_file).expect("cert");
        let ca = Ca::from_pem(&cert_pem, &key_pem, file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let issued = ca.issue(&leaf_spec(), &key).expect("issues");
        let leaf_file = f("leaf.crt");
        std::fs::write(&leaf_file, &issued.cert_pem).expect("write");
        let verify = run(
            "openssl",
            &["verify", "-CAfile", path(&ca_file), path(&leaf_file)],
        );
        assert!(verify.contains(": OK"), "{file}: {verify}");
    }
}
