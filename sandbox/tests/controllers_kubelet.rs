//! The kubelet stand-in, through the real kube client: the built-in TLS
//! endpoint serves the pod's Secret (and a new one after a restart), a
//! `command` pod runs a real process that sees its volumes and becomes Ready
//! by its tcpSocket probe, and the never-ready / crash-after faults.

use crate::controllers_common;

use std::sync::Arc;

use controllers_common::{eventually, is_ready, pod_ip, ready_pods, start};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NS: &str = "default";
const SERVER_NAME: &str = "db.sandbox.test";

async fn create_pod(client: &kube::Client, pod: Value) -> Api<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod: Pod = serde_json::from_value(pod).expect("valid pod");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    api
}

/// A test CA and a function issuing leaf certificates for SERVER_NAME.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "kubelet test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA cert");
        Self { cert, key }
    }

    /// A Secret `name` with a fresh leaf; returns the leaf's DER.
    fn tls_secret(&self, name: &str) -> (Value, Vec<u8>) {
        let key = KeyPair::generate().expect("leaf key");
        let params = CertificateParams::new(vec![SERVER_NAME.to_owned()]).expect("params");
        let issuer = Issuer::from_ca_cert_der(self.cert.der(), &self.key).expect("issuer");
        let leaf = params.signed_by(&key, &issuer).expect("leaf");
        let b64 = |s: String| base64_encode(s.as_bytes());
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": NS},
            "data": {"tls.crt": b64(leaf.pem()), "tls.key": b64(key.serialize_pem()), "ca.crt": b64(self.cert.pem())}
        });
        (secret, leaf.der().to_vec())
    }

    /// Connects over TLS, verifying against this CA; returns the served
    /// leaf and the answer to `ruok`.
    async fn fetch(&self, ip: &str, port: u16) -> (Vec<u8>, String) {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert.der().to_vec()))
            .expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect((ip, port))
            .await
            .expect("connect to the pod");
        let name = ServerName::try_from(SERVER_NAME).expect("server name");
        let mut tls = connector
            .connect(name, tcp)
            .await
            .expect("TLS handshake verifies against the CA");
        let served = tls
            .get_ref()
            .1
            .peer_certificates()
            .expect("peer certificates")[0]
            .to_vec();
        tls.write_all(b"ruok").await.expect("write");
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await.expect("read");
        (served, answer)
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn apply_secret(client: &kube::Client, secret: Value) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NS);
    let name = secret["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let params = PatchParams::apply("test").force();
    api.patch(&name, &params, &Patch::Apply(secret))
        .await
        .expect("apply secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoint_serves_the_mounted_secret_and_a_new_one_after_restart() {
    let (_sandbox, client) = start().await;
    let ca = TestCa::new();
    let (secret, first_leaf) = ca.tls_secret("db-tls");
    apply_secret(&client, secret).await;
    let set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "tls", "namespace": NS},
        "spec": {
            "replicas": 1, "serviceName": "tls",
            "selector": {"matchLabels": {"app": "tls"}},
            "template": {
                "metadata": {"labels": {"app": "tls"}, "annotations": {"sandbox.dbops.io/process": "tls-endpoint"}},
                "spec": {
                    "containers": [{
                        "name": "db", "image": "db",
                        "ports": [{"name": "tls", "containerPort": 9443}],
                        "readinessProbe": {"tcpSocket": {"port": "tls"}},
                        "volumeMounts": [{"name": "certs", "mountPath": "/etc/tls"}]
                    }],
                    "volumes": [{"name": "certs", "secret": {"secretName": "db-tls"}}]
                }
            }
        }
    });
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), NS);
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(set).expect("set"),
    )
    .await
    .expect("create set");
    let pod = ready_pods(&client, NS, "app=tls", 1).await.remove(0);
    let (served, answer) = ca.fetch(&pod_ip(&pod), 9443).await;
    assert_eq!(
        served, first_leaf,
        "the pod serves the Secret's certificate"
    );
    assert_eq!(answer, "imok");

    // Rotate: new Secret content, then restart the pod.
    let (secret, second_leaf) = ca.tls_secret("db-tls");
    apply_secret(&client, secret).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.delete("tls-0", &DeleteParams::default())
        .await
        .expect("delete pod");
    let old_uid = pod.metadata.uid.clone();
    let restarted = eventually("tls-0 back and Ready", || async {
        let pod = pods.get("tls-0").await.ok()?;
        (pod.metadata.uid != old_uid && is_ready(&pod)).then_some(pod)
    })
    .await;
    let (served, _) = ca.fetch(&pod_ip(&restarted), 9443).await;
    assert_eq!(
        served, second_leaf,
        "the restarted pod serves the new certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_pod_runs_with_its_volumes_and_is_ready_by_tcp_probe() {
    controllers_common::require_program("python3");
    let (sandbox, client) = start().await;
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), NS);
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": NS},
        "data": {"app.conf": "greeting=hello from the ConfigMap\n"}
    });
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(config_map).expect("cm"),
        )
        .await
        .expect("create ConfigMap");
    apply_secret(
        &client,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "app-secret", "namespace": NS},
            "data": {"password": base64_encode(b"s3cret")}
        }),
    )
    .await;
    let script = "printf '%s %s %s %s' \"$POD_NAME\" \"$POD_ORDINAL\" \"$GREETING\" \"$PASSWORD\" > env.txt; \
                  cp \"$VOLUME_CONFIG/app.conf\" copied.conf; \
                  exec python3 -m http.server --bind \"$POD_IP\" 8080";
    let api = create_pod(&client, json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app-3", "namespace": NS, "labels": {"app": "cmd"},
            "annotations": {"sandbox.dbops.io/process": "command", "sandbox.dbops.io/command": script}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "app", "image": "python",
                "env": [
                    {"name": "GREETING", "value": "hi"},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}}
                ],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/app"},
                    {"name": "bundle", "mountPath": "/bundle"}
                ]
            }],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "bundle", "projected": {"sources": [
                    {"secret": {"name": "app-secret", "items": [{"key": "password", "path": "creds/pw.txt"}]}},
                    {"configMap": {"name": "app-config"}}
                ]}}
            ]
        }
    }))
    .await;
    let pod = ready_pods(&client, NS, "app=cmd", 1).await.remove(0);
    let ip = pod_ip(&pod);
    assert_eq!(
        http_get(&ip, 8080, "/copied.conf").await,
        "greeting=hello from the ConfigMap\n"
    );
    assert_eq!(
        http_get(&ip, 8080, "/etc/app/app.conf").await,
        "greeting=hello from the ConfigMap\n"
    );
    assert_eq!(http_get(&ip, 8080, "/env.txt").await, "app-3 3 hi s3cret");
    assert_eq!(http_get(&ip, 8080, "/bundle/creds/pw.txt").await, "s3cret");
    assert_eq!(
        http_get(&ip, 8080, "/volumes/bundle/app.conf").await,
        "greeting=hello from the ConfigMap\n"
    );
    let uid = pod.metadata.uid.clone().expect("uid");
    let log = sandbox
        .state_dir()
        .join("pods")
        .join(format!("{NS}_app-3_{uid}"))
        .join("log");
    assert!(log.exists(), "process output goes to POD_DIR/log");

    api.delete("app-3", &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("the pod removed after Terminating", || async {
        api.get_opt("app-3").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        TcpStream::connect((ip.as_str(), 8080)).await.is_err(),
        "the process was stopped with the pod"
    );
}

async fn http_get(ip: &str, port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect((ip, port)).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.0 200"), "{path}: {head}");
    body.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_ready_pod_runs_but_stays_unready() {
    let (_sandbox, client) = start().await;
    let pod = |name: &str, annotations: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"case": name}, "annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": "c"}]}
        })
    };
    let api = create_pod(
        &client,
        pod("stuck", json!({"sandbox.dbops.io/never-ready": "true"})),
    )
    .await;
    let running = eventually("stuck pod Running with its container started", || async {
        let pod = api.get("stuck").await.ok()?;
        let status = pod.status.clone()?;
        let started = status.container_statuses.as_ref()?.first()?.started == Some(true);
        (status.phase.as_deref() == Some("Running") && started).then_some(pod)
    })
    .await;
    assert!(!is_ready(&running));
    // A pod created later becomes Ready (without a process its readiness
    // probe does not apply); the faulty one still is not.
    let mut fine = pod("fine", json!({}));
    fine["spec"]["containers"][0]["readinessProbe"] = json!({"exec": {"command": ["false"]}});
    create_pod(&client, fine).await;
    ready_pods(&client, NS, "case=fine", 1).await;
    assert!(!is_ready(&api.get("stuck").await.expect("stuck pod")));

    // The annotation is read at run time: removing it makes the pod Ready,
    // setting it again makes it unready.
    let set_fault = |value: Value| {
        let api = api.clone();
        async move {
            let patch =
                json!({"metadata": {"annotations": {"sandbox.dbops.io/never-ready": value}}});
            api.patch("stuck", &PatchParams::default(), &Patch::Merge(patch))
                .await
                .expect("patch annotation");
        }
    };
    set_fault(Value::Null).await;
    ready_pods(&client, NS, "case=stuck", 1).await;
    set_fault(json!("true")).await;
    eventually("the pod unready again", || async {
        (!is_ready(&api.get("stuck").await.ok()?)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_pod_restarts_into_crash_loop() {
    let (_sandbox, client) = start().await;
    let api = create_pod(&client, json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "crashy", "namespace": NS, "annotations": {"sandbox.dbops.io/crash-after": "200ms"}},
        "spec": {"containers": [{"name": "c", "image": "c"}]}
    }))
    .await;
    let status = eventually("two restarts", || async {
        let status = api.get("crashy").await.ok()?.status?;
        let container = status.container_statuses.as_ref()?.first()?.clone();
        (container.restart_count >= 2).then_some(container)
    })
    .await;
    let last = status
        .last_state
        .and_then(|s| s.terminated)
        .expect("lastState.terminated");
    assert_eq!(last.reason.as_deref(), Some("Error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_waits_in_container_creating_until_its_secret_exists() {
    let (_sandbox, client) = start().await;
    let api = create_pod(
        &client,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "waiting", "namespace": NS, "labels": {"case": "waiting"},
                "annotations": {"sandbox.dbops.io/process": "tls-endpoint"}},
            "spec": {
                "containers": [{"name": "db", "image": "db", "ports": [{"containerPort": 9443}]}],
                "volumes": [{"name": "certs", "secret": {"secretName": "later-tls"}}]
            }
        }),
    )
    .await;
    let message = eventually("the pod waiting for its Secret", || async {
        let status = api.get("waiting").await.ok()?.status?;
        let waiting = status.container_statuses?.first()?.state.clone()?.waiting?;
        let message = waiting.message.unwrap_or_default();
        (status.phase.as_deref() == Some("Pending")
            && waiting.reason.as_deref() == Some("ContainerCreating")
            && !message.is_empty())
        .then_some(message)
    })
    .await;
    assert!(
        message.contains("later-tls") && message.contains("not found"),
        "{message}"
    );

    let ca = TestCa::new();
    let (secret, leaf) = ca.tls_secret("later-tls");
    apply_secret(&client, secret).await;
    let pod = ready_pods(&client, NS, "case=waiting", 1).await.remove(0);
    assert_eq!(ca.fetch(&pod_ip(&pod), 9443).await.0, leaf);
}
