//! Shared test set-up: a sandbox with a 3-member StatefulSet `zk` in
//! namespace `db`, a TestHost, and helpers to run the step and read Secrets
//! and check them with openssl and keytool.
#![allow(dead_code)] // Each test module uses a different subset.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use dbops_plugin_issue_cert::IssueCert;
use dbops_plugin_sdk::protocol::{RunRequest, RunResponse, Workload};
use dbops_plugin_sdk::testing::TestHost;
use dbops_plugin_sdk::{Outputs, Target};
use dbops_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The namespace of every test object.
pub const NS: &str = "db";

/// A sandbox with the target's StatefulSet.
pub struct World {
    /// The sandbox.
    pub sandbox: Sandbox,
}

impl World {
    /// Start a sandbox and create StatefulSet `zk` (3 replicas, governing
    /// Service `zk-pods`) mounting `mounted` Secrets.
    pub fn start(mounted: &[&str]) -> World {
        let sandbox = Sandbox::start_background(SandboxConfig::default()).expect("sandbox starts");
        let world = World { sandbox };
        world.statefulset(mounted);
        world
    }

    /// (Re)write the StatefulSet with volumes for `mounted` Secrets.
    pub fn statefulset(&self, mounted: &[&str]) {
        let volumes: Vec<Value> = mounted
            .iter()
            .map(|s| json!({"name": s, "secret": {"secretName": s}}))
            .collect();
        self.sandbox
            .apply(json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "zk", "namespace": NS},
                "spec": {
                    "replicas": 3, "serviceName": "zk-pods",
                    "selector": {"matchLabels": {"app": "zk"}},
                    "template": {
                        "metadata": {"labels": {"app": "zk"}},
                        "spec": {"containers": [{"name": "zk", "image": "zookeeper:3.8"}], "volumes": volumes}
                    }
                }
            }))
            .expect("statefulset applied");
    }

    /// A fresh host (empty durable state, no records) as admin, for a new run id.
    pub fn host(&self) -> Host {
        static RUNS: AtomicU64 = AtomicU64::new(1);
        Host {
            host: TestHost::new(&self.sandbox.url(), Some(&self.sandbox.admin_token())),
            run_id: format!("run-{}", RUNS.fetch_add(1, Ordering::SeqCst)),
        }
    }

    /// A host whose identity has no RBAC rules at all.
    pub fn host_as_nobody(&self) -> Host {
        let token = self.sandbox.service_account_token(NS, "nobody");
        Host {
            host: TestHost::new(&self.sandbox.url(), Some(&token)),
            run_id: "nobody".into(),
        }
    }

    /// Decoded data of Secret `name`, `None` when absent.
    pub fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self
            .sandbox
            .get("v1", "Secret", NS, name)
            .expect("get secret")?;
        Some(decode_data(&secret))
    }

    /// The whole Secret object.
    pub fn secret_object(&self, name: &str) -> Option<Value> {
        self.sandbox
            .get("v1", "Secret", NS, name)
            .expect("get secret")
    }

    /// Names of Secrets with a label selector-like predicate on labels.
    pub fn secrets_labeled(&self, key: &str, value: &str) -> Vec<String> {
        self.sandbox
            .list("v1", "Secret", Some(NS))
            .expect("list secrets")
            .into_iter()
            .filter(|s| {
                s.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))
                    .and_then(Value::as_str)
                    == Some(value)
            })
            .filter_map(|s| {
                s.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// A TestHost for one run (its own run id, as the runner gives each run).
pub struct Host {
    /// The host.
    pub host: TestHost,
    /// The run id of every request made through it.
    pub run_id: String,
}

impl std::ops::Deref for Host {
    type Target = TestHost;
    fn deref(&self) -> &TestHost {
        &self.host
    }
}

impl Host {
    fn request(&self, engine: &str, with: Value) -> RunRequest {
        let mut request = TestHost::request("cert", target(engine), with);
        request.run_id = self.run_id.clone();
        request
    }
}

/// SHA-256 of Secret data, to compare contents without printing key material.
pub fn digest(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v);
        h.update([0]);
    }
    format!("{} keys, sha256 {:x}", data.len(), h.finalize())
}

/// Secret data decoded from base64.
pub fn decode_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    secret
        .get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .expect("base64 data");
                    (k.clone(), bytes)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The test target.
pub fn target(engine: &str) -> Target {
    Target {
        engine: engine.into(),
        namespace: NS.into(),
        name: "zk".into(),
        workload: Workload {
            kind: "StatefulSet".into(),
            name: "zk".into(),
            api_version: "apps/v1".into(),
        },
        database: None,
    }
}

/// Run the step; panics with the error when it fails.
pub fn run(host: &Host, engine: &str, with: Value) -> Outputs {
    match try_run(host, engine, with) {
        Ok(outputs) => outputs,
        Err((reason, message)) => panic!("issue-cert failed: {reason}: {message}"),
    }
}

/// Run the step; the error's reason and message on failure.
pub fn try_run(host: &Host, engine: &str, with: Value) -> Result<Outputs, (String, String)> {
    let request = host.request(engine, with);
    match host.run::<IssueCert>(&request) {
        RunResponse::Ok { outputs, .. } => Ok(outputs),
        RunResponse::Error {
            reason, message, ..
        } => Err((reason, message)),
    }
}

/// Run the step as a dry run (the host refuses writes).
pub fn run_dry(host: &Host, engine: &str, with: Value) -> Outputs {
    let mut request = host.request(engine, with);
    request.dry_run = true;
    match host.run::<IssueCert>(&request) {
        RunResponse::Ok { outputs, .. } => outputs,
        RunResponse::Error {
            reason, message, ..
        } => panic!("dry run failed: {reason}: {message}"),
    }
}

/// Compensate the step with the host's durable state.
pub fn compensate(host: &Host, engine: &str, with: Value) {
    let request = host.request(engine, with);
    match host.compensate::<IssueCert>(&request) {
        RunResponse::Ok { .. } => {}
        RunResponse::Error {
            reason, message, ..
        } => panic!("compensation failed: {reason}: {message}"),
    }
}

/// An output as text.
pub fn out(outputs: &Outputs, key: &str) -> String {
    match outputs.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => panic!("no output {key} in {outputs:?}"),
    }
}

/// Run a program; its stdout+stderr; panics (naming the package) when missing or failing.
pub fn tool(program: &str, args: &[&str]) -> String {
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

/// Write Secret data files into `dir`.
pub fn write_files(dir: &Path, data: &BTreeMap<String, Vec<u8>>) {
    for (k, v) in data {
        std::fs::write(dir.join(k), v).expect("write file");
    }
}

/// A path as &str.
pub fn p(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// Text of a Secret key.
pub fn text(data: &BTreeMap<String, Vec<u8>>, key: &str) -> String {
    String::from_utf8(
        data.get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no key {key}")),
    )
    .expect("utf-8")
}
