//! Helpers of the controller integration tests: a sandbox with controllers,
//! an admin kube client, and waits with deadlines (polling the API, never
//! sleeping as synchronisation).

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use dbops_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A sandbox with its controllers, and an admin client.
pub async fn start() -> (Sandbox, kube::Client) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts");
    let client = admin_client(&sandbox);
    (sandbox, client)
}

/// An admin kube client for `sandbox`.
pub fn admin_client(sandbox: &Sandbox) -> kube::Client {
    let mut config = kube::Config::new(sandbox.url().parse().expect("sandbox URL"));
    config.auth_info.token = Some(sandbox.admin_token().into());
    config.default_namespace = "default".to_owned();
    kube::Client::try_from(config).expect("kube client")
}

/// Polls `check` until it returns `Some`, failing the test with `what`
/// after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pods matching `selector` in `namespace`, by name.
pub async fn pods(client: &kube::Client, namespace: &str, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

/// Whether the pod is Running with condition Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's IP.
pub fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("pod has an IP")
}

/// Waits until exactly `count` pods match `selector` and all are Ready;
/// returns them sorted by name.
pub async fn ready_pods(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    count: usize,
) -> Vec<Pod> {
    eventually(&format!("{count} ready pods with {selector}"), || async {
        let pods = pods(client, namespace, selector).await;
        let ready = pods.len() == count
            && pods
                .iter()
                .all(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none());
        ready.then_some(pods)
    })
    .await
}

/// A JSON field of an object as a string.
pub fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default()
}

/// Fails with a clear message when an external program is missing.
pub fn require_program(name: &str) {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs `{name}` on PATH (see .ci/apt-packages.txt)"
    );
}
