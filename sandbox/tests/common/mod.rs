//! Shared helpers of the sandbox integration tests: a sandbox without
//! controllers (API semantics only) and kube clients for its identities.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use dbops_sandbox::{Sandbox, SandboxConfig};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A sandbox serving the API only (no controllers), with a short bookmark
/// interval so bookmark tests are quick.
pub async fn api_only() -> Sandbox {
    let config = SandboxConfig {
        controllers: false,
        bookmark_interval: Duration::from_millis(100),
        ..SandboxConfig::default()
    };
    Sandbox::start(config).await.expect("sandbox starts")
}

/// A kube client for the sandbox through a kubeconfig it wrote; `token`
/// None = admin.
pub async fn client(sandbox: &Sandbox, token: Option<&str>) -> kube::Client {
    kube::Client::try_from(config(sandbox, token).await).expect("kube client")
}

/// The kube Config from the sandbox's kubeconfig.
pub async fn config(sandbox: &Sandbox, token: Option<&str>) -> kube::Config {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("kubeconfig");
    sandbox
        .write_kubeconfig(&path, token)
        .expect("kubeconfig written");
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config from kubeconfig")
}

/// The API error code and reason of a kube error (panics on other errors).
pub fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(status) => (status.code, status.reason.clone(), status.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}
