//! Every action with cert-manager issuers (the sandbox's cert-manager
//! stand-in signs with CA Issuers/ClusterIssuers): the step creates and
//! updates the Certificate, triggers renewals like `cmctl renew`, waits for
//! a new revision, and builds the output Secret from what cert-manager wrote.

use crate::support;

use dbops_certs::{Ca, CaSpec, KeyAlgorithm, Subject};
use serde_json::{Value, json};
use support::{NS, World, digest, out, p, run, text, tool, try_run, write_files};

/// A CA Secret `secret` in `namespace` and a CA issuer `issuer` of `kind` using it.
fn ca_issuer(world: &World, kind: &str, issuer: &str, secret: &str, namespace: &str) -> String {
    let ca = Ca::create(&CaSpec {
        subject: Subject {
            common_name: format!("{issuer} root"),
            ..Subject::default()
        },
        validity: std::time::Duration::from_secs(86_400 * 365),
        algorithm: KeyAlgorithm::EcdsaP256,
    })
    .expect("CA");
    let b64 = |s: &str| base64_encode(s.as_bytes());
    world
        .sandbox
        .apply(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": secret, "namespace": namespace},
            "data": {"tls.crt": b64(&ca.cert_pem()), "tls.key": b64(&ca.key().pkcs8_pem())}
        }))
        .expect("CA secret");
    let mut metadata = json!({"name": issuer});
    if kind == "Issuer" {
        metadata["namespace"] = json!(NS);
    }
    world
        .sandbox
        .apply(
            json!({"apiVersion": "cert-manager.io/v1", "kind": kind, "metadata": metadata,
                      "spec": {"ca": {"secretName": secret}}}),
        )
        .expect("issuer");
    ca.cert_pem()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn certificate(world: &World) -> Value {
    world
        .sandbox
        .get("cert-manager.io/v1", "Certificate", NS, "zk-tls")
        .expect("get certificate")
        .expect("certificate exists")
}

fn with(action: &str, kind: &str, issuer: &str) -> Value {
    json!({"action": action, "issuer": {"kind": kind, "name": issuer}, "wait_timeout": "60s",
           "certificate": {"key_algorithm": "ecdsa-p384"}})
}

#[test]
fn add_rotate_and_remove_through_a_cert_manager_issuer() {
    let world = World::start(&[]);
    let ca_pem = ca_issuer(&world, "Issuer", "ca-issuer", "cm-ca", NS);

    let outputs = run(&world.host(), "kafka", with("add", "Issuer", "ca-issuer"));
    assert_eq!(outputs["changed"], json!(true));
    let cert = certificate(&world);
    assert_eq!(cert["status"]["revision"], json!(1));
    assert_eq!(cert["spec"]["issuerRef"]["name"], "ca-issuer");
    assert_eq!(cert["spec"]["privateKey"]["encoding"], "PKCS8");
    assert!(
        cert["spec"]["dnsNames"]
            .as_array()
            .expect("dnsNames")
            .contains(&json!("zk-1.zk-pods.db.svc"))
    );
    let data = world.secret("zk-tls").expect("output secret");
    assert_eq!(text(&data, "ca.crt"), ca_pem);
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
    assert!(
        x509.contains("DNS:zk-2.zk-pods.db.svc.cluster.local"),
        "{x509}"
    );
    assert!(
        x509.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{x509}"
    );
    assert!(x509.contains("NIST CURVE: P-384"), "{x509}");
    assert!(text(&data, "tls.key").starts_with("-----BEGIN PRIVATE KEY-----"));
    let password = text(
        &world.secret("zk-tls-keystore-password").expect("password"),
        "password",
    );
    let listing = tool(
        "keytool",
        &[
            "-list",
            "-keystore",
            &f("keystore.jks"),
            "-storetype",
            "JKS",
            "-storepass",
            &password,
        ],
    );
    assert!(listing.contains("PrivateKeyEntry"), "{listing}");
    let pass = format!("pass:{password}");
    tool(
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

    // Not due: nothing is written, no renewal is triggered.
    let host = world.host();
    let outputs = run(&host, "kafka", with("rotate", "Issuer", "ca-issuer"));
    assert_eq!(outputs["changed"], json!(false));
    assert!(
        host.requests
            .lock()
            .expect("lock")
            .iter()
            .all(|r| r.starts_with("GET"))
    );
    assert_eq!(certificate(&world)["status"]["revision"], json!(1));

    // Forced: cert-manager issues revision 2 with a new key; the old revision is backed up.
    let mut forced = with("rotate", "Issuer", "ca-issuer");
    forced["force"] = json!(true);
    let before = world.secret("zk-tls").expect("secret");
    let outputs = run(&world.host(), "kafka", forced);
    assert_eq!(outputs["changed"], json!(true));
    assert_eq!(certificate(&world)["status"]["revision"], json!(2));
    let after = world.secret("zk-tls").expect("secret");
    assert!(
        text(&after, "tls.key") != text(&before, "tls.key"),
        "a new key"
    );
    assert!(
        text(&after, "tls.crt") != text(&before, "tls.crt"),
        "a new certificate"
    );
    let backup = world
        .secret(&out(&outputs, "backup_secret"))
        .expect("backup");
    assert_eq!(digest(&backup), digest(&before));

    // Remove deletes the Certificate, its Secret and ours; the issuer's CA stays.
    let outputs = run(&world.host(), "kafka", json!({"action": "remove"}));
    assert!(
        out(&outputs, "deleted").contains("Certificate zk-tls"),
        "{outputs:?}"
    );
    assert!(
        world
            .sandbox
            .get("cert-manager.io/v1", "Certificate", NS, "zk-tls")
            .expect("get")
            .is_none()
    );
    assert!(world.secret("zk-tls").is_none());
    assert!(world.secret("zk-tls-cm").is_none());
    assert!(world.secret("cm-ca").is_some());
}

#[test]
fn update_issuer_moves_from_an_issuer_to_a_cluster_issuer_in_three_phases() {
    let world = World::start(&[]);
    let old_ca = ca_issuer(&world, "Issuer", "old-issuer", "old-ca", NS);
    let new_ca = ca_issuer(
        &world,
        "ClusterIssuer",
        "new-issuer",
        "new-ca",
        "cert-manager",
    );
    run(
        &world.host(),
        "zookeeper",
        with("add", "Issuer", "old-issuer"),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let f = |k: &str| p(&dir.path().join(k));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let outputs = run(
            &world.host(),
            "zookeeper",
            with("update-issuer", "ClusterIssuer", "new-issuer"),
        );
        seen.push(out(&outputs, "phase"));
        let data = world.secret("zk-tls").expect("secret");
        write_files(dir.path(), &data);
        assert!(
            tool(
                "openssl",
                &["verify", "-CAfile", &f("ca.crt"), &f("tls.crt")]
            )
            .contains(": OK")
        );
        let bundle = text(&data, "ca.crt");
        match out(&outputs, "phase").as_str() {
            "trust-both" => {
                assert!(bundle.contains(&old_ca) && bundle.contains(&new_ca));
                assert_eq!(
                    certificate(&world)["spec"]["issuerRef"]["name"],
                    "old-issuer"
                );
            }
            "issue" => {
                assert!(bundle.contains(&old_ca) && bundle.contains(&new_ca));
                let cert = certificate(&world);
                assert_eq!(cert["spec"]["issuerRef"]["kind"], "ClusterIssuer");
                assert!(
                    text(&data, "tls.crt").contains(new_ca.trim()),
                    "the chain ends in the new CA"
                );
            }
            _ => assert_eq!(bundle, new_ca),
        }
    }
    assert_eq!(seen, ["trust-both", "issue", "drop-old"]);
}

#[test]
fn a_missing_issuer_times_out_with_the_certificate_conditions_in_the_error() {
    let world = World::start(&[]);
    let mut cfg = with("add", "Issuer", "no-such-issuer");
    cfg["wait_timeout"] = json!("2s");
    let err = try_run(&world.host(), "generic", cfg).expect_err("cannot issue");
    assert_eq!(err.0, "Timeout", "{err:?}");
    assert!(err.1.contains("did not become Ready"), "{err:?}");
    assert!(err.1.contains("no-such-issuer"), "{err:?}");
}

#[test]
fn rolling_back_the_issue_phase_restores_the_secret_and_the_certificate_spec() {
    let world = World::start(&[]);
    ca_issuer(&world, "Issuer", "old-issuer", "old-ca", NS);
    ca_issuer(&world, "Issuer", "new-issuer", "new-ca", NS);
    run(&world.host(), "druid", with("add", "Issuer", "old-issuer"));
    let mut update = with("update-issuer", "Issuer", "new-issuer");
    run(&world.host(), "druid", update.clone());
    let before = world.secret("zk-tls").expect("secret");
    let spec_before = certificate(&world)["spec"].clone();

    update["phase"] = json!("issue");
    let host = world.host();
    let outputs = run(&host, "druid", update.clone());
    assert_eq!(out(&outputs, "phase"), "issue");
    assert_eq!(
        certificate(&world)["spec"]["issuerRef"]["name"],
        "new-issuer"
    );

    support::compensate(&host, "druid", update);
    assert_eq!(
        digest(&world.secret("zk-tls").expect("secret")),
        digest(&before)
    );
    assert_eq!(certificate(&world)["spec"], spec_before);
}
