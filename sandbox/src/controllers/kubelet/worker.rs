//! The life of one pod, from first sight to removal: IP, Pending, start
//! delay, container (process) start, readiness, crashes and restarts,
//! Terminating, final delete with grace 0.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::spec::{self, PodSpec, ProcessSpec};
use super::status::{self, ContainerState, LastTermination, Observed};
use super::tls_endpoint::{self, TlsEndpoint};
use super::{Shared, env, probe, process::Process, volumes};
use crate::controllers::conditions::now_rfc3339;
use crate::controllers::events;
use crate::controllers::glob_match;

/// The node every pod is bound to.
pub const NODE_NAME: &str = "sandbox-node";

/// Drives the pod whose latest version `pod` always holds.
pub(super) async fn run(shared: Arc<Shared>, mut pod: watch::Receiver<Pod>) {
    let first = pod.borrow().clone();
    let Some(mut life) = PodLife::new(shared, &first) else {
        return;
    };
    if first.metadata.deletion_timestamp.is_none() {
        life.live(&mut pod).await;
    }
    life.finish().await;
}

/// Why a container could not start.
struct StartFailure {
    /// Waiting reason in the container status.
    reason: &'static str,
    /// Reason of the Warning event.
    event_reason: &'static str,
    /// The error.
    message: String,
}

impl StartFailure {
    fn new(reason: &'static str, event_reason: &'static str, err: impl std::fmt::Display) -> Self {
        Self {
            reason,
            event_reason,
            message: err.to_string(),
        }
    }
}

/// How a running container ended.
enum Ending {
    Terminating,
    Crashed,
    Exited(Option<i32>),
}

/// The running "container": nothing, the TLS endpoint or a command.
enum Running {
    Idle,
    /// Held for its Drop (closing the listener).
    Tls {
        _endpoint: TlsEndpoint,
    },
    Command(Process),
}

impl Running {
    async fn exited(&mut self) -> Option<i32> {
        match self {
            Running::Command(process) => process.exited().await.ok().and_then(|s| s.code()),
            _ => std::future::pending().await,
        }
    }

    async fn stop(self, grace: Duration) {
        if let Running::Command(process) = self {
            process.stop(grace).await;
        }
    }
}

struct PodLife {
    shared: Arc<Shared>,
    api: Api<Pod>,
    name: String,
    namespace: String,
    uid: String,
    ip: Ipv4Addr,
    _lease: super::ip::IpLease,
    dir: PathBuf,
    start_time: String,
    restarts: i32,
    last: Option<LastTermination>,
    sent: Option<Value>,
    reported: Option<Observed>,
}

impl PodLife {
    fn new(shared: Arc<Shared>, pod: &Pod) -> Option<Self> {
        let name = pod.metadata.name.clone()?;
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let uid = pod.metadata.uid.clone()?;
        let preferred: Option<Ipv4Addr> = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok());
        let Some(lease) = shared.ips.allocate(preferred, &spec::container_ports(pod)) else {
            warn!(pod = %name, "no free loopback address for the pod");
            return None;
        };
        // Created on first use (volumes, the container's process): a pod
        // with neither needs no directory, and creating one per pod was 4%
        // of the sandbox's CPU in the fleet benchmark (ext4 inodes).
        let dir = pod_dir(&shared.state_dir, &namespace, &name, &uid);
        Some(Self {
            api: Api::namespaced(shared.client.clone(), &namespace),
            shared,
            name,
            namespace,
            uid,
            ip: lease.ip(),
            _lease: lease,
            dir,
            start_time: now_rfc3339(),
            restarts: 0,
            last: None,
            sent: None,
            reported: None,
        })
    }

    /// Everything before deletion. Returns once the pod is terminating.
    async fn live(&mut self, pod: &mut watch::Receiver<Pod>) {
        // The start delay runs from when the kubelet got the pod, not from
        // after binding and the first status report: those API round trips
        // are part of the delay, as the configuration documents it.
        let received = tokio::time::Instant::now();
        self.bind(pod).await;
        self.report(pod, "Pending", false, waiting("ContainerCreating", ""))
            .await;
        let current = pod.borrow().clone();
        let spec = match spec::parse(&current) {
            Ok(spec) => spec,
            Err(err) => {
                let state = waiting("CreateContainerConfigError", &err.to_string());
                self.report(pod, "Pending", false, state).await;
                terminating(pod).await;
                return;
            }
        };
        let delay = self.start_delay(&spec).saturating_sub(received.elapsed());
        if self.pause(pod, delay).await {
            return;
        }
        let mut last_failure: Option<String> = None;
        loop {
            let Some((mut running, env)) = self.start_retrying(pod, &spec, &mut last_failure).await
            else {
                return;
            };
            let code = match self.supervise(pod, &spec, &mut running, &env).await {
                Ending::Terminating => {
                    let note = format!("Stopping container {}", spec.container.name);
                    self.event(false, "Killing", "Kill", note);
                    running.stop(self.grace(pod)).await;
                    // Containers stopped: not ready any more, then removed.
                    let stopped = ContainerState::Terminated {
                        reason: "Completed".to_owned(),
                        exit_code: 0,
                    };
                    self.report(pod, "Running", false, stopped).await;
                    return;
                }
                Ending::Crashed => {
                    running.stop(Duration::ZERO).await;
                    Some(137)
                }
                Ending::Exited(code) => code,
            };
            if !self.restart_after_exit(pod, code).await {
                return;
            }
        }
    }

    /// Starts the container, retrying every second while it cannot start
    /// (missing volume, bad key pair, ...). `None` once the pod terminates.
    async fn start_retrying(
        &mut self,
        pod: &mut watch::Receiver<Pod>,
        spec: &PodSpec,
        last_failure: &mut Option<String>,
    ) -> Option<(Running, Vec<(String, String)>)> {
        loop {
            let current = pod.borrow().clone();
            match self.start(&current, spec).await {
                Ok(started) => {
                    debug!(pod = %self.name, namespace = %self.namespace, ip = %self.ip, "container started");
                    let note = format!("Started container {}", spec.container.name);
                    self.event(false, "Started", "Start", note);
                    return Some(started);
                }
                Err(failure) => {
                    let phase = if self.restarts == 0 {
                        "Pending"
                    } else {
                        "Running"
                    };
                    if last_failure.as_ref() != Some(&failure.message) {
                        let note = failure.message.clone();
                        self.event(true, failure.event_reason, "Start", note);
                        *last_failure = Some(failure.message.clone());
                    }
                    let state = waiting(failure.reason, &failure.message);
                    self.report(pod, phase, false, state).await;
                    if self.pause(pod, Duration::from_secs(1)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Reports readiness while the container runs; returns how it ended.
    async fn supervise(
        &mut self,
        pod: &mut watch::Receiver<Pod>,
        spec: &PodSpec,
        running: &mut Running,
        env: &[(String, String)],
    ) -> Ending {
        let started_at = now_rfc3339();
        let crash = spec
            .crash_after
            .map(|after| tokio::time::Instant::now() + after);
        // Probes apply to processes only; without one readiness is checked
        // once, and again whenever the pod changes (the never-ready
        // annotation may be set or removed at run time).
        let has_process = !matches!(spec.process, ProcessSpec::None);
        let mut next_check = Some(tokio::time::Instant::now());
        loop {
            if pod
                .borrow_and_update()
                .metadata
                .deletion_timestamp
                .is_some()
            {
                return Ending::Terminating;
            }
            let never_ready = spec::never_ready(&pod.borrow());
            let at = next_check;
            let check = async {
                sleep_until(at).await;
                let ip = self.ip.to_string();
                !never_ready
                    && (!has_process || probe::ready(&spec.container, &ip, &self.dir, env).await)
            };
            tokio::select! {
                biased;
                changed = pod.changed() => {
                    if changed.is_err() {
                        // The kubelet dropped this pod: the task is aborted.
                        std::future::pending::<()>().await;
                    }
                    next_check = Some(tokio::time::Instant::now());
                }
                code = running.exited() => return Ending::Exited(code),
                () = sleep_until(crash) => return Ending::Crashed,
                ready = check => {
                    next_check = (has_process && !never_ready)
                        .then(|| tokio::time::Instant::now() + self.shared.config.probe_period);
                    let state = ContainerState::Running { started_at: started_at.clone() };
                    self.report(pod, "Running", ready, state).await;
                }
            }
        }
    }

    /// Records an exit; ends the pod (restartPolicy) or backs off before a
    /// restart. False when the pod is done or terminating.
    async fn restart_after_exit(
        &mut self,
        pod: &mut watch::Receiver<Pod>,
        code: Option<i32>,
    ) -> bool {
        let exit_code = code.unwrap_or(-1);
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        let policy = pod
            .borrow()
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone());
        if let Some(phase) = final_phase(policy.as_deref(), exit_code) {
            let state = ContainerState::Terminated {
                reason: reason.to_owned(),
                exit_code,
            };
            self.report(pod, phase, false, state).await;
            terminating(pod).await;
            return false;
        }
        self.restarts += 1;
        self.last = Some(LastTermination {
            reason: reason.to_owned(),
            exit_code,
            finished_at: now_rfc3339(),
        });
        let backoff =
            self.shared.config.crash_backoff * 2u32.pow((self.restarts as u32 - 1).min(4));
        let message = format!("back-off {backoff:?} restarting failed container");
        self.event(true, "BackOff", "Restart", message.clone());
        self.report(pod, "Running", false, waiting("CrashLoopBackOff", &message))
            .await;
        !self.pause(pod, backoff).await
    }

    /// Binds the pod to the sandbox node (`spec.nodeName`), which makes the
    /// API server delete it gracefully (see the deletion contract in the
    /// crate docs).
    async fn bind(&self, pod: &watch::Receiver<Pod>) {
        let bound = pod
            .borrow()
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if bound {
            return;
        }
        let patch = json!({"metadata": {"uid": self.uid}, "spec": {"nodeName": NODE_NAME}});
        if let Err(err) = self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            warn!(pod = %self.name, error = %err, "cannot bind pod to {NODE_NAME}; its deletion will not be graceful");
        }
    }

    /// Writes the volumes and starts the process. The error is the waiting
    /// reason and message of the container (as the real kubelet reports them).
    async fn start(
        &self,
        pod: &Pod,
        spec: &PodSpec,
    ) -> Result<(Running, Vec<(String, String)>), StartFailure> {
        let client = &self.shared.client;
        let state_dir = &self.shared.state_dir;
        let volumes = volumes::materialize(client, pod, &spec.container, &self.dir, state_dir)
            .await
            .map_err(|err| StartFailure::new("ContainerCreating", "FailedMount", err))?;
        let ip = self.ip.to_string();
        let env = env::environment(client, pod, &spec.container, &self.dir, &ip, &volumes)
            .await
            .map_err(|err| StartFailure::new("CreateContainerConfigError", "Failed", err))?;
        let failed =
            |err: &dyn std::fmt::Display| StartFailure::new("RunContainerError", "Failed", err);
        let running = match &spec.process {
            ProcessSpec::None => Running::Idle,
            ProcessSpec::TlsEndpoint {
                port,
                volume,
                cert_file,
                key_file,
            } => {
                let dir = tls_endpoint::key_pair_dir(&volumes, volume.as_deref(), cert_file)
                    .map_err(|err| failed(&err))?;
                let endpoint = TlsEndpoint::start(self.ip, *port, &dir, cert_file, key_file)
                    .await
                    .map_err(|err| failed(&err))?;
                Running::Tls {
                    _endpoint: endpoint,
                }
            }
            ProcessSpec::Command { script } => {
                let process = Process::spawn(script, &self.dir, &env, &self.dir.join("log"))
                    .map_err(|err| failed(&err))?;
                Running::Command(process)
            }
        };
        Ok((running, env))
    }

    fn start_delay(&self, spec: &PodSpec) -> Duration {
        if let Some(delay) = spec.start_delay {
            return delay;
        }
        let qualified = format!("{}/{}", self.namespace, self.name);
        self.shared
            .config
            .start_delay_overrides
            .iter()
            .find(|rule| {
                glob_match(&rule.pattern, &qualified) || glob_match(&rule.pattern, &self.name)
            })
            .map_or(self.shared.config.start_delay, |rule| rule.delay)
    }

    /// The SIGTERM -> SIGKILL wait for this pod.
    fn grace(&self, pod: &watch::Receiver<Pod>) -> Duration {
        let current = pod.borrow();
        let seconds = current
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                current
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0) as u64;
        Duration::from_secs(seconds).min(self.shared.config.max_termination_grace)
    }

    /// Sleeps `delay`; true if the pod started terminating meanwhile.
    async fn pause(&self, pod: &mut watch::Receiver<Pod>, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = terminating(pod) => true,
        }
    }

    /// Emits an Event about the pod.
    fn event(&self, warning: bool, reason: &str, action: &str, note: String) {
        let regarding =
            events::reference("v1", "Pod", &self.namespace, &self.name, Some(&self.uid));
        let events = &self.shared.events;
        if warning {
            events.warning(&regarding, None, reason, action, note);
        } else {
            events.normal(&regarding, None, reason, action, note);
        }
    }

    /// Patches the pod's status if it changed since the last report.
    async fn report(
        &mut self,
        pod: &watch::Receiver<Pod>,
        phase: &'static str,
        ready: bool,
        state: ContainerState,
    ) {
        let observed = Observed {
            phase,
            ready,
            state,
            restarts: self.restarts,
            last: self.last.clone(),
            pod_ip: self.ip.to_string(),
            start_time: self.start_time.clone(),
        };
        if self.reported.as_ref() == Some(&observed) {
            return;
        }
        let current = pod.borrow().clone();
        let document = status::build(&current, &observed, self.sent.as_ref());
        if self.sent.as_ref() == Some(&document) {
            return;
        }
        let patch = json!({"metadata": {"uid": self.uid}, "status": document});
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                self.sent = Some(document);
                self.reported = Some(observed);
            }
            Err(err) => {
                debug!(pod = %self.name, error = %err, "pod status patch failed; retrying on next change")
            }
        }
    }

    /// Removes the pod for good (delete with grace 0, uid precondition).
    async fn finish(&self) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        for attempt in 0..20u32 {
            match self.api.delete(&self.name, &params).await {
                Ok(_) => {
                    debug!(pod = %self.name, "pod removed");
                    return;
                }
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => return,
                Err(err) => {
                    debug!(pod = %self.name, error = %err, attempt, "final pod delete failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
                }
            }
        }
        warn!(pod = %self.name, "could not remove terminating pod");
    }
}

/// The phase a pod ends in after its container exited, if it is not
/// restarted (`restartPolicy` Never, or OnFailure after success).
fn final_phase(policy: Option<&str>, exit_code: i32) -> Option<&'static str> {
    match (policy, exit_code) {
        (Some("Never"), 0) | (Some("OnFailure"), 0) => Some("Succeeded"),
        (Some("Never"), _) => Some("Failed"),
        _ => None,
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState::Waiting {
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// Completes once the pod has a deletionTimestamp (never if the sender is
/// gone: the task is then aborted by the kubelet).
async fn terminating(pod: &mut watch::Receiver<Pod>) {
    loop {
        if pod
            .borrow_and_update()
            .metadata
            .deletion_timestamp
            .is_some()
        {
            return;
        }
        if pod.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for `deadline` (forever for `None`). A deadline already reached
/// returns at once: the timer wheel would round it up to its next tick
/// (1-2 ms), which delayed every pod's first Ready report.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) if deadline <= tokio::time::Instant::now() => {}
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The directory of a pod: `STATE_DIR/pods/NAMESPACE_NAME_UID`.
pub fn pod_dir(state_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    state_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_decides_final_phase() {
        assert_eq!(final_phase(None, 1), None);
        assert_eq!(final_phase(Some("Always"), 0), None);
        assert_eq!(final_phase(Some("OnFailure"), 1), None);
        assert_eq!(final_phase(Some("OnFailure"), 0), Some("Succeeded"));
        assert_eq!(final_phase(Some("Never"), 2), Some("Failed"));
    }
}
