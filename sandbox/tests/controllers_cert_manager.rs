//! The cert-manager stand-in, through the real kube client: a CA Issuer
//! issues a Certificate whose Secret `openssl verify` accepts, `cmctl
//! renew`-style renewal (Issuing=True) bumps the revision and the serial,
//! rotationPolicy Never keeps the key, a spec change reissues.

use crate::controllers_common;

use std::process::Command;

use base64::Engine;
use controllers_common::{eventually, require_program, start, text};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{Value, json};

const NS: &str = "db";

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", kind),
        plural,
    )
}

async fn create(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    object: Value,
) {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let object: DynamicObject = serde_json::from_value(object).expect("valid object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

async fn create_ca_secret(client: &kube::Client, namespace: &str, name: &str) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "dbops sandbox test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("CA cert");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"tls.crt": b64(&cert.pem()), "tls.key": b64(&key.serialize_pem())}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create CA secret");
}

/// Waits until the Certificate is Ready at `revision`; returns it.
async fn ready_at(certs: &Api<DynamicObject>, name: &str, revision: i64) -> Value {
    eventually(
        &format!("Certificate {name} Ready at revision {revision}"),
        || async {
            let cert = certs.get(name).await.ok()?.data;
            let ready = cert
                .pointer("/status/conditions")?
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (ready && cert.pointer("/status/revision") == Some(&json!(revision))).then_some(cert)
        },
    )
    .await
}

/// What `cmctl renew` does: set the Issuing condition True.
async fn renew(certs: &Api<DynamicObject>, name: &str) {
    let cert = certs.get(name).await.expect("certificate").data;
    let mut conditions = cert
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions.push(json!({
        "type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
        "message": "Certificate re-issuance manually triggered", "lastTransitionTime": "2024-01-01T00:00:00Z"
    }));
    certs
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": conditions}})),
        )
        .await
        .expect("set Issuing");
}

fn secret_field(secret: &Secret, key: &str) -> String {
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .expect("key present");
    String::from_utf8(value.0.clone()).expect("PEM text")
}

/// `openssl x509 -serial` of the first certificate, and `openssl verify`.
fn serial_and_verify(secret: &Secret) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let crt = dir.path().join("tls.crt");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&crt, secret_field(secret, "tls.crt")).expect("write");
    std::fs::write(&ca, secret_field(secret, "ca.crt")).expect("write");
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca)
        .arg(&crt)
        .output()
        .expect("run openssl verify");
    assert!(
        verify.status.success(),
        "openssl verify failed: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let serial = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(&crt)
        .output()
        .expect("run openssl x509");
    assert!(serial.status.success());
    String::from_utf8_lossy(&serial.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_issuer_issues_and_renews_a_verifiable_certificate() {
    require_program("openssl");
    let (_sandbox, client) = start().await;
    create_ca_secret(&client, NS, "db-ca").await;
    let issuers = resource("Issuer", "issuers");
    create(
        &client,
        &issuers,
        Some(NS),
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": "db-ca", "namespace": NS},
            "spec": {"ca": {"secretName": "db-ca"}}
        }),
    )
    .await;
    let issuer_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &issuers);
    eventually("Issuer Ready", || async {
        let issuer = issuer_api.get("db-ca").await.ok()?.data;
        let ready = issuer.pointer("/status/conditions/0/status") == Some(&json!("True"));
        ready.then_some(())
    })
    .await;

    let certificates = resource("Certificate", "certificates");
    create(
        &client,
        &certificates,
        Some(NS),
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "zk-server", "namespace": NS},
            "spec": {
                "secretName": "zk-server-tls",
                "commonName": "zk",
                "dnsNames": ["zk-0.zk-pods.db.svc", "zk-1.zk-pods.db.svc"],
                "ipAddresses": ["127.0.0.1"],
                "duration": "720h",
                "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"name": "db-ca", "kind": "Issuer", "group": "cert-manager.io"}
            }
        }),
    )
    .await;
    let certs: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &certificates);
    let cert = ready_at(&certs, "zk-server", 1).await;
    assert!(!text(&cert, "/status/notAfter").is_empty());
    assert!(!text(&cert, "/status/renewalTime").is_empty());

    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = secrets.get("zk-server-tls").await.expect("secret written");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("cert-manager.io/certificate-name")
            .map(String::as_str),
        Some("zk-server")
    );
    assert_eq!(
        annotations
            .get("cert-manager.io/issuer-name")
            .map(String::as_str),
        Some("db-ca")
    );
    assert_eq!(
        annotations
            .get("cert-manager.io/issuer-kind")
            .map(String::as_str),
        Some("Issuer")
    );
    assert_eq!(
        annotations
            .get("cert-manager.io/common-name")
            .map(String::as_str),
        Some("zk")
    );
    assert_eq!(
        annotations
            .get("cert-manager.io/alt-names")
            .map(String::as_str),
        Some("zk-0.zk-pods.db.svc,zk-1.zk-pods.db.svc")
    );
    let first_serial = serial_and_verify(&secret);
    let first_key = secret_field(&secret, "tls.key");

    renew(&certs, "zk-server").await;
    let renewed = ready_at(&certs, "zk-server", 2).await;
    let issuing_left = renewed
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Issuing"));
    assert!(!issuing_left, "Issuing is removed after issuance");
    let secret = secrets.get("zk-server-tls").await.expect("secret");
    let second_serial = serial_and_verify(&secret);
    assert_ne!(
        first_serial, second_serial,
        "renewal issues a new certificate"
    );
    assert_ne!(
        first_key,
        secret_field(&secret, "tls.key"),
        "rotationPolicy Always (default) makes a new key"
    );

    // A spec change reissues too.
    let patch = json!({"spec": {"dnsNames": ["zk-0.zk-pods.db.svc", "zk-1.zk-pods.db.svc", "zk-2.zk-pods.db.svc"]}});
    certs
        .patch("zk-server", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch spec");
    ready_at(&certs, "zk-server", 3).await;
    let secret = secrets.get("zk-server-tls").await.expect("secret");
    let before = serial_and_verify(&secret);

    // A secretTemplate change only updates the Secret's metadata.
    let patch = json!({"spec": {"secretTemplate": {"labels": {"team": "db"}}}});
    certs
        .patch("zk-server", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch secretTemplate");
    let labelled = eventually("secretTemplate label on the Secret", || async {
        let secret = secrets.get("zk-server-tls").await.ok()?;
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        (labels.get("team").map(String::as_str) == Some("db")).then_some(secret)
    })
    .await;
    assert_eq!(
        serial_and_verify(&labelled),
        before,
        "no reissue for metadata"
    );
    assert_eq!(
        certs.get("zk-server").await.expect("cert").data["status"]["revision"],
        json!(3)
    );
    assert!(
        secret.metadata.annotations.unwrap_or_default()["cert-manager.io/alt-names"]
            .contains("zk-2.zk-pods.db.svc")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_cluster_issuer_with_rotation_policy_never_keeps_the_key() {
    require_program("openssl");
    let (_sandbox, client) = start().await;
    create(
        &client,
        &resource("ClusterIssuer", "clusterissuers"),
        None,
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
            "metadata": {"name": "selfsigned"},
            "spec": {"selfSigned": {}}
        }),
    )
    .await;
    let certificates = resource("Certificate", "certificates");
    create(
        &client,
        &certificates,
        Some(NS),
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "root", "namespace": NS},
            "spec": {
                "secretName": "root-tls", "commonName": "root", "isCA": true,
                "privateKey": {"algorithm": "RSA", "size": 2048, "rotationPolicy": "Never"},
                "issuerRef": {"name": "selfsigned", "kind": "ClusterIssuer"}
            }
        }),
    )
    .await;
    let certs: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &certificates);
    ready_at(&certs, "root", 1).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = secrets.get("root-tls").await.expect("secret");
    let first_serial = serial_and_verify(&secret);
    let first_key = secret_field(&secret, "tls.key");
    assert!(
        first_key.contains("BEGIN RSA PRIVATE KEY"),
        "PKCS#1 is cert-manager's default encoding"
    );

    renew(&certs, "root").await;
    ready_at(&certs, "root", 2).await;
    let secret = secrets.get("root-tls").await.expect("secret");
    assert_ne!(first_serial, serial_and_verify(&secret));
    assert_eq!(
        first_key,
        secret_field(&secret, "tls.key"),
        "rotationPolicy Never reuses the key"
    );
}
