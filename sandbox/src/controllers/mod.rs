//! Controllers (being written).

use std::path::PathBuf;
use std::time::Duration;

/// What the controllers need to reach the API server.
#[derive(Debug, Clone)]
pub struct ControllerContext {
    /// Base URL of the API server, e.g. `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Bearer token of the system identity (exempt from RBAC and faults).
    pub token: String,
    /// Kubelet stand-in settings.
    pub kubelet: KubeletConfig,
    /// Directory for per-pod state.
    pub state_dir: PathBuf,
}

/// Kubelet stand-in settings.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Delay between a pod's creation and it becoming Running/Ready.
    pub start_delay: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            start_delay: Duration::from_millis(100),
        }
    }
}

/// Runs all controllers until the future is dropped.
pub async fn run(_ctx: ControllerContext) {}
