//! Sandbox configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::controllers::KubeletConfig;
use crate::faults::FaultRule;
use crate::registry::ResourceDef;

/// How to start a [`Sandbox`](crate::Sandbox). `Default` gives an HTTP
/// server on `127.0.0.1:0` (a free port; HTTPS on a second free port), the controllers running, a kubelet
/// start delay of ~100 ms, no faults, RBAC enforced for non-admin tokens.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Run the controllers (StatefulSet, kubelet, cert-manager stand-ins).
    pub controllers: bool,
    /// Kubelet stand-in settings.
    pub kubelet: KubeletConfig,
    /// Directory for per-pod state; a temporary directory when None.
    pub state_dir: Option<PathBuf>,
    /// Custom resources served in addition to the built-in table.
    pub custom_resources: Vec<ResourceDef>,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// Seed of the fault injection random generator.
    pub fault_seed: u64,
    /// Watch events kept per resource for watches from an older
    /// resourceVersion; older ones get 410 Gone.
    pub watch_history: usize,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            controllers: true,
            kubelet: KubeletConfig::default(),
            state_dir: None,
            custom_resources: Vec::new(),
            faults: Vec::new(),
            fault_seed: 0,
            watch_history: 4096,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}
