//! Reading the sandbox back: Secrets, ConfigMaps, pods, the run journal,
//! the pause annotation, and the certificate a member serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use dbops_sandbox::Sandbox;
use serde_json::Value;

/// A Secret's data, decoded; None when it does not exist.
pub fn secret(sandbox: &Sandbox, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    let object = sandbox
        .get("v1", "Secret", namespace, name)
        .expect("get secret")?;
    let data = object
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Some(
        data.into_iter()
            .map(|(k, v)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default())
                    .expect("secret data is base64");
                (k, bytes)
            })
            .collect(),
    )
}

/// One key of a ConfigMap.
pub fn config_file(sandbox: &Sandbox, namespace: &str, name: &str, key: &str) -> Option<String> {
    let object = sandbox
        .get("v1", "ConfigMap", namespace, name)
        .expect("get configmap")?;
    object
        .pointer(&format!(
            "/data/{}",
            key.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Pod name -> uid.
pub fn pod_uids(sandbox: &Sandbox, namespace: &str, pods: &[String]) -> BTreeMap<String, String> {
    pods.iter()
        .map(|p| {
            let pod = sandbox
                .get("v1", "Pod", namespace, p)
                .expect("get pod")
                .unwrap_or_else(|| panic!("pod {p} exists"));
            (
                p.clone(),
                pod.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// A pod's IP.
pub fn pod_ip(sandbox: &Sandbox, namespace: &str, pod: &str) -> String {
    let object = sandbox
        .get("v1", "Pod", namespace, pod)
        .expect("get pod")
        .unwrap_or_else(|| panic!("pod {pod} exists"));
    object
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("pod {pod} has an IP"))
        .to_owned()
}

/// The journal document of a run.
pub fn journal(sandbox: &Sandbox, namespace: &str, run_id: &str) -> Value {
    let text = config_file(
        sandbox,
        namespace,
        &format!("dbops-run-{run_id}"),
        "journal.json",
    )
    .unwrap_or_else(|| panic!("journal of run {run_id} in {namespace}"));
    serde_json::from_str(&text).expect("journal is JSON")
}

/// A step's record in a journal.
pub fn step<'a>(journal: &'a Value, id: &str) -> &'a Value {
    journal["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("step {id} in journal {journal}"))
}

/// Whether the StatefulSet carries dbops' pause annotation.
pub fn paused(sandbox: &Sandbox, namespace: &str, name: &str) -> bool {
    let sts = sandbox
        .get("apps/v1", "StatefulSet", namespace, name)
        .expect("get")
        .expect("statefulset exists");
    sts.pointer("/metadata/annotations/dbops.io~1paused-by")
        .is_some()
}

/// Wait (kubectl's watch) until every pod of `app` is Ready.
pub fn wait_ready(kubeconfig: &Path, namespace: &str, app: &str) {
    let output = Command::new("kubectl")
        .args(["--kubeconfig"])
        .arg(kubeconfig)
        .args([
            "-n",
            namespace,
            "wait",
            "--for=condition=Ready",
            "pod",
            "-l",
            &format!("app={app}"),
            "--timeout=60s",
        ])
        .output()
        .expect(
            "kubectl is installed (Debian package kubernetes-client; scripts/test.sh installs it)",
        );
    assert!(
        output.status.success(),
        "pods of {app} in {namespace} are not Ready: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The serial (hex) of the leaf in PEM `tls.crt`.
pub fn serial_of(pem: &[u8]) -> String {
    dbops_certs::inspect::inspect_pem(std::str::from_utf8(pem).expect("PEM"), "tls.crt")
        .expect("a certificate")
        .serial_hex
}

/// The serial of the certificate a member serves, verified against `ca_pem`
/// for the member's stable DNS name.
pub fn served_serial(address: &str, ca_pem: &[u8], server_name: &str) -> Result<String, String> {
    let options = dbops_probes::tls::TlsOptions::verify(ca_pem.to_vec(), server_name);
    let endpoint = dbops_probes::Endpoint::plain(address, Duration::from_secs(5)).with_tls(options);
    dbops_probes::tls::probe(&endpoint)
        .map(|r| r.session.leaf.serial)
        .map_err(|e| e.to_string())
}

/// Normalise a hex serial for comparison.
pub fn hex(serial: &str) -> String {
    dbops_probes::tls::normalize_hex(serial, true)
}

/// The Events of a run (annotation `dbops.io/run-id`).
pub fn events_of(sandbox: &Sandbox, namespace: &str, run_id: &str) -> Vec<Value> {
    let events = sandbox
        .list("v1", "Event", Some(namespace))
        .expect("list events");
    events
        .into_iter()
        .filter(|e| {
            e.pointer("/metadata/annotations/dbops.io~1run-id")
                .and_then(Value::as_str)
                == Some(run_id)
        })
        .collect()
}
