//! The sandbox's controllers: ordinary Kubernetes clients of the sandbox API
//! server (the real `kube` client over HTTP, with the system token).
//!
//! Start at [`run`]. It runs, each restarted with a backoff if it stops:
//!
//! - [`statefulset`]: StatefulSets (`apps/v1`) and KubeDB PetSets
//!   (`apps.k8s.appscode.com/v1`, same spec shape): ordinal pods, recreation,
//!   ControllerRevisions and the `controller-revision-hash` label,
//!   `RollingUpdate` (with `partition`) and `OnDelete`, scaling, status.
//! - [`kubelet`]: moves every pod Pending -> Running -> Ready, gives it a
//!   unique loopback IP, optionally runs one process per pod, and finishes
//!   graceful deletion (Terminating -> gone).
//! - [`cert_manager`]: `cert-manager.io/v1` Certificates signed by CA or
//!   self-signed Issuers/ClusterIssuers, with cert-manager's Secret layout,
//!   conditions, revisions and renewal.
//!
//! # Pod annotation contract (set them on the pod template)
//!
//! | annotation | meaning |
//! | --- | --- |
//! | `sandbox.dbops.io/process` | `tls-endpoint` or `command`; absent: no process |
//! | `sandbox.dbops.io/command` | for `command`: the script, run as `sh -c SCRIPT` |
//! | `sandbox.dbops.io/container` | container whose env, mounts and probe are used (default: the first) |
//! | `sandbox.dbops.io/tls-port` | for `tls-endpoint`: port (default: the container's first port) |
//! | `sandbox.dbops.io/tls-secret-volume` | for `tls-endpoint`: volume holding the key pair (default: the first Secret/projected volume with `tls.crt`) |
//! | `sandbox.dbops.io/tls-cert-file`, `sandbox.dbops.io/tls-key-file` | file names inside that volume (default `tls.crt`, `tls.key`) |
//! | `sandbox.dbops.io/never-ready` | `"true"`: the pod runs but is not Ready; read at run time, so patching it on a running pod toggles readiness |
//! | `sandbox.dbops.io/crash-after` | duration (`"2s"`, `"500ms"`): the container crashes that long after each start, `restartCount` grows, CrashLoopBackOff |
//! | `sandbox.dbops.io/start-delay` | duration overriding the kubelet's start delay for this pod |
//!
//! Every pod has a directory `POD_DIR = STATE_DIR/pods/NAMESPACE_NAME_UID`
//! (created when first used: its process, volumes or exec probes).
//! Its ConfigMap, Secret, projected and emptyDir volumes are written (again
//! at every container start, so a restart sees new data) to
//! `POD_DIR/volumes/VOLUME_NAME/KEY` (`items` paths and modes honoured), and
//! every `volumeMount` of the process container becomes a symlink
//! `POD_DIR/MOUNT_PATH_WITHOUT_LEADING_SLASH` to that directory (or to the
//! `subPath` file). A `persistentVolumeClaim` volume (StatefulSets create
//! one claim per `volumeClaimTemplates` entry and ordinal, named
//! `TEMPLATE-SET-ORDINAL`, Bound at once) is the directory
//! `STATE_DIR/persistent/NAMESPACE/CLAIM`, which outlives the pod like a
//! PersistentVolume. A `command` runs in `POD_DIR` with the sandbox's
//! environment plus `POD_NAME`, `POD_NAMESPACE`, `POD_UID`, `POD_IP`,
//! `POD_ORDINAL` (the number after the last `-`, empty if none), `POD_DIR`,
//! `POD_HOSTNAME`, `POD_PORTS` (comma-separated container ports),
//! `PORT_<NAME>` per named port, `VOLUME_<NAME>` per volume directory (name
//! upper-cased, non-alphanumerics as `_`) and the container's `env` (literal
//! values, `secretKeyRef`, `configMapKeyRef`, `fieldRef` of name, namespace,
//! uid, podIP). Output goes to `POD_DIR/log`. Its readiness comes from the
//! container's `readinessProbe` (`tcpSocket`, `exec` with the same
//! environment, `httpGet` over HTTP or HTTPS without certificate
//! verification, `grpc` as a TCP connect), probed every [`KubeletConfig::probe_period`];
//! without a probe the pod is Ready once its process started. On deletion the
//! process group gets SIGTERM, then SIGKILL after the pod's grace period
//! (capped by [`KubeletConfig::max_termination_grace`]). The script runs
//! under `setpriv --pdeathsig KILL` when `setpriv` exists, so the process
//! dies with a sandbox that is killed outright. Pod directories stay after
//! the pod is gone (for reading `log`), until the state dir is removed.
//!
//! The `tls-endpoint` process is built in: a TLS server on `POD_IP:PORT`
//! serving the key pair read from the volume at container start. It answers
//! `ruok` with `imok`, `srvr`/`stat` with a ZooKeeper-like status, an HTTP
//! `GET` with `200 ok`, and echoes anything else; the same answers are given
//! on plain TCP (a first byte other than a TLS handshake).
//!
//! A pod without a process is Running and Ready once its start delay has
//! passed; its probes are not run. Every pod is bound to the node
//! `sandbox-node` (`spec.nodeName`), which makes the API server delete it
//! gracefully, and the controllers emit Events like their real
//! counterparts (`SuccessfulCreate`, `Started`, `Killing`, `BackOff`,
//! `FailedMount`, `Issuing`).
//!
//! Not modelled: liveness and startup probes, StatefulSet `minReadySeconds`,
//! `maxUnavailable`, `ordinals.start` and the PVC retention policy (claims
//! are kept), scheduling, resource limits, init containers (only the
//! process container runs).

pub mod cert_manager;
pub mod kubelet;
pub mod statefulset;

mod conditions;
mod duration;
mod events;
mod hash;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use tracing::{error, info, warn};

/// What the controllers need to reach the API server.
#[derive(Debug, Clone)]
pub struct ControllerContext {
    /// Base URL of the API server: the sandbox gives its `https://` endpoint.
    pub base_url: String,
    /// Bearer token of the system identity (exempt from RBAC and faults).
    pub token: String,
    /// Kubelet stand-in settings.
    pub kubelet: KubeletConfig,
    /// Directory for per-pod state (created by the caller).
    pub state_dir: PathBuf,
}

/// Kubelet stand-in settings.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Delay between a pod's creation and its containers starting (Running,
    /// then Ready once the readiness probe passes).
    pub start_delay: Duration,
    /// Per-pod start delays: the first rule whose pattern matches
    /// `NAMESPACE/NAME` or `NAME` wins over [`KubeletConfig::start_delay`].
    pub start_delay_overrides: Vec<StartDelayRule>,
    /// How often readiness probes run.
    pub probe_period: Duration,
    /// First CrashLoopBackOff delay after a container exit; doubles per
    /// restart up to 16 times this value.
    pub crash_backoff: Duration,
    /// Upper bound on the SIGTERM -> SIGKILL wait, whatever the pod's grace
    /// period says, so a sandbox never waits 30 s for a stuck process.
    pub max_termination_grace: Duration,
}

/// A start delay for the pods whose name matches a pattern.
#[derive(Debug, Clone)]
pub struct StartDelayRule {
    /// Glob with `*` wildcards, matched against `NAMESPACE/NAME` and `NAME`.
    pub pattern: String,
    /// The delay for matching pods.
    pub delay: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            start_delay: Duration::from_millis(100),
            start_delay_overrides: Vec::new(),
            probe_period: Duration::from_millis(200),
            crash_backoff: Duration::from_millis(500),
            max_termination_grace: Duration::from_secs(5),
        }
    }
}

/// Errors building the controllers' client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL is not a valid URI.
    #[error("controllers: invalid API server URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL given in [`ControllerContext::base_url`].
        url: String,
        /// Why it does not parse.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The kube client could not be built.
    #[error("controllers: cannot build a Kubernetes client for {url}: {source}")]
    Client {
        /// The API server URL.
        url: String,
        /// The kube error.
        #[source]
        source: kube::Error,
    },
}

/// Builds the kube client the controllers share: bearer token, no TLS
/// verification for an `https://` loopback URL (the sandbox's own
/// certificate), HTTP/2 over TLS like the real controller manager and
/// kubelet (client-go): one connection carries every controller's requests
/// and watches, where kube's HTTP/1.1 client needed a connection per
/// request in flight and wrote each request and response on its own.
pub fn client(ctx: &ControllerContext) -> Result<kube::Client, Error> {
    let uri: http::Uri = ctx.base_url.parse().map_err(|source| Error::InvalidUrl {
        url: ctx.base_url.clone(),
        source,
    })?;
    let mut config = kube::Config::new(uri);
    config.default_namespace = "default".to_owned();
    config.auth_info.token = Some(secrecy::SecretString::from(ctx.token.clone()));
    config.accept_invalid_certs = ctx.base_url.starts_with("https://");
    config.read_timeout = None;
    dbops_kube_http2::client(config).map_err(|source| Error::Client {
        url: ctx.base_url.clone(),
        source,
    })
}

/// Runs all controllers until the task is dropped or aborted. A controller
/// whose loop ends (it should not) is logged and restarted after a pause.
pub async fn run(ctx: ControllerContext) {
    let client = match client(&ctx) {
        Ok(client) => client,
        Err(err) => {
            error!(error = %err, "sandbox controllers not started");
            return;
        }
    };
    info!(url = %ctx.base_url, "sandbox controllers starting");
    let kubelet = kubelet::Kubelet::new(client.clone(), ctx.kubelet.clone(), ctx.state_dir.clone());
    futures::join!(
        supervise("statefulset", || {
            Box::pin(statefulset::run(
                client.clone(),
                statefulset::SetKind::StatefulSet,
            ))
        }),
        supervise("petset", || {
            Box::pin(statefulset::run(
                client.clone(),
                statefulset::SetKind::PetSet,
            ))
        }),
        supervise("kubelet", || Box::pin(kubelet.clone().run())),
        supervise("cert-manager", || Box::pin(cert_manager::run(
            client.clone()
        ))),
    );
}

/// Runs `start()` forever, restarting it with a growing pause when it ends.
async fn supervise<F>(name: &'static str, start: F)
where
    F: Fn() -> BoxFuture<'static, ()>,
{
    let mut pause = Duration::from_millis(200);
    loop {
        start().await;
        warn!(
            controller = name,
            ?pause,
            "controller loop ended; restarting"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Matches `text` against a glob where `*` matches any run of characters.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let last = rest.last().copied().unwrap_or("");
    for middle in &rest[..rest.len() - 1] {
        match remaining.find(middle) {
            Some(at) => remaining = &remaining[at + middle.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_wildcards() {
        assert!(glob_match("zk-*", "zk-0"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("demo/*-1", "demo/zk-1"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("zk-*", "kafka-0"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact2"));
    }
}
