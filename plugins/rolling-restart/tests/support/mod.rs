//! Shared set-up of the rolling-restart end-to-end tests: a sandbox, a host
//! for the steps, the target, and reading the members' pod IPs.
#![allow(dead_code)] // Each test module uses a different part.

use std::time::Duration;

use dbops_plugin_sdk::Target;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
use dbops_plugin_sdk::kube::Kube;
use dbops_plugin_sdk::protocol::{Outputs, RunResponse, Workload};
use dbops_plugin_sdk::serde_json::Value;
use dbops_plugin_sdk::testing::TestHost;
use dbops_plugin_sdk::wait;
use dbops_sandbox::{Sandbox, SandboxConfig};

/// A sandbox with the given objects applied, and a host to run steps with.
pub struct World {
    /// The sandbox (shut down on drop).
    pub sandbox: Sandbox,
    /// Data of the pods' servers.
    pub data: tempfile::TempDir,
}

impl World {
    /// Start a sandbox.
    pub fn start() -> World {
        let sandbox = Sandbox::start_background(SandboxConfig::default()).expect("sandbox starts");
        let data = dbops_probes::testing::manifests::data_root().expect("temporary directory");
        World { sandbox, data }
    }

    /// Apply objects (create or replace).
    pub fn apply(&self, objects: impl IntoIterator<Item = Value>) {
        for object in objects {
            let name = object["metadata"]["name"].clone();
            self.sandbox
                .apply(object)
                .unwrap_or_else(|e| panic!("apply {name}: {e}"));
        }
    }

    /// A fresh host (state, logs, spans and Events recorded per host).
    pub fn host(&self, timeout: Duration) -> TestHost {
        let host = TestHost::new(&self.sandbox.url(), Some(&self.sandbox.admin_token()));
        host.set_deadline(Some(timeout));
        host
    }
}

/// The target of a StatefulSet named `name` in `namespace`.
pub fn target(engine: &str, namespace: &str, name: &str) -> Target {
    Target {
        engine: engine.into(),
        namespace: namespace.into(),
        name: name.into(),
        workload: Workload {
            kind: "StatefulSet".into(),
            name: name.into(),
            api_version: "apps/v1".into(),
        },
        database: None,
    }
}

/// The outputs of a successful step, or a panic with its error.
pub fn outputs(response: RunResponse) -> Outputs {
    match response {
        RunResponse::Ok { outputs, .. } => outputs,
        RunResponse::Error {
            reason, message, ..
        } => panic!("step failed: {reason}: {message}"),
    }
}

/// A string output.
pub fn text(outputs: &Outputs, key: &str) -> String {
    outputs
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("output {key} missing in {outputs:?}"))
        .to_string()
}

/// The pod, as the API server has it now.
pub fn pod(host: &TestHost, namespace: &str, name: &str) -> Option<Pod> {
    Kube::new(host)
        .api::<Pod>(Some(namespace))
        .get_opt(name)
        .expect("read pod")
}

/// The pod's IP while it is Ready.
pub fn ready_ip(host: &TestHost, namespace: &str, name: &str) -> Option<String> {
    let pod = pod(host, namespace, name)?;
    if !wait::pod_ready(&pod) {
        return None;
    }
    pod.status?.pod_ip
}

/// Wait by watch until every pod of `name` is Ready.
pub fn wait_all_ready(
    host: &TestHost,
    namespace: &str,
    name: &str,
    replicas: u32,
    timeout: Duration,
) {
    let pods = Kube::new(host).api::<Pod>(Some(namespace));
    for i in 0..replicas {
        let pod = format!("{name}-{i}");
        pods.wait_until(&pod, wait::pod_is_ready(), timeout)
            .unwrap_or_else(|e| panic!("{pod} never became Ready: {e}"));
    }
}
