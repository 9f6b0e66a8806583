//! Pod status documents as the kubelet reports them. Pure functions.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::controllers::conditions::{self, Condition};

/// The state of the pod's containers (all containers share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Not running: `ContainerCreating`, `CrashLoopBackOff`, config errors.
    Waiting {
        /// CamelCase reason.
        reason: String,
        /// Details.
        message: String,
    },
    /// Running since `started_at`.
    Running {
        /// RFC 3339 start time.
        started_at: String,
    },
    /// Exited (only reported for pods that are not restarted).
    Terminated {
        /// `Completed` or `Error`.
        reason: String,
        /// The exit code.
        exit_code: i32,
    },
}

/// A previous termination, shown as `lastState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastTermination {
    /// `Error`, `Completed`, `OOMKilled`...
    pub reason: String,
    /// The exit code.
    pub exit_code: i32,
    /// When it ended.
    pub finished_at: String,
}

/// What the kubelet observed about a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: &'static str,
    /// Readiness (probe passed, no fault).
    pub ready: bool,
    /// The containers' state.
    pub state: ContainerState,
    /// Restarts so far.
    pub restarts: i32,
    /// The previous termination, if any.
    pub last: Option<LastTermination>,
    /// The pod IP.
    pub pod_ip: String,
    /// When the kubelet took the pod.
    pub start_time: String,
}

/// The status document for `pod`, keeping transition times of unchanged
/// conditions from `previous` (the last document the kubelet sent), else
/// from the pod's current status.
pub fn build(pod: &Pod, observed: &Observed, previous: Option<&Value>) -> Value {
    let previous = match previous {
        Some(previous) => previous.get("conditions").cloned(),
        None => pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(&s.conditions).ok()),
    };
    let running = matches!(observed.state, ContainerState::Running { .. });
    let conditions = conditions::merge(
        previous.as_ref(),
        &[
            Condition::new("PodReadyToStartContainers", true, "", ""),
            Condition::new("Initialized", true, "", ""),
            Condition::new(
                "ContainersReady",
                observed.ready,
                if observed.ready {
                    ""
                } else {
                    "ContainersNotReady"
                },
                not_ready_message(pod, observed),
            ),
            Condition::new(
                "Ready",
                observed.ready,
                if observed.ready {
                    ""
                } else {
                    "ContainersNotReady"
                },
                not_ready_message(pod, observed),
            ),
            Condition::new("PodScheduled", true, "", ""),
        ],
        &[],
        None,
    );
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let container_statuses: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .map(|container| {
            let mut status = json!({
                "name": container.name,
                "image": container.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("sandbox://{uid}/{}", container.name),
                "ready": observed.ready,
                "started": running,
                "restartCount": observed.restarts,
                "state": state_json(&observed.state),
                "lastState": observed.last.as_ref().map_or_else(|| json!({}), |last| json!({
                    "terminated": {
                        "reason": last.reason,
                        "exitCode": last.exit_code,
                        "finishedAt": last.finished_at,
                    }
                })),
            });
            if matches!(observed.state, ContainerState::Waiting { ref reason, .. } if reason == "ContainerCreating")
                && let Some(map) = status.as_object_mut()
            {
                map.remove("containerID");
            }
            status
        })
        .collect();
    json!({
        "phase": observed.phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": observed.pod_ip,
        "podIPs": [{"ip": observed.pod_ip}],
        "startTime": observed.start_time,
        "containerStatuses": container_statuses,
        "qosClass": "BestEffort",
    })
}

fn state_json(state: &ContainerState) -> Value {
    match state {
        ContainerState::Waiting { reason, message } => {
            json!({"waiting": {"reason": reason, "message": message}})
        }
        ContainerState::Running { started_at } => json!({"running": {"startedAt": started_at}}),
        ContainerState::Terminated { reason, exit_code } => {
            json!({"terminated": {"reason": reason, "exitCode": exit_code, "finishedAt": conditions::now_rfc3339()}})
        }
    }
}

fn not_ready_message(pod: &Pod, observed: &Observed) -> String {
    if observed.ready {
        return String::new();
    }
    let names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .map(|c| c.name.clone())
        .collect();
    format!("containers with unready status: [{}]", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "zk-0", "uid": "u1"},
            "spec": {"containers": [{"name": "zk", "image": "zookeeper:3.8"}]}
        }))
        .expect("valid pod")
    }

    fn observed(ready: bool) -> Observed {
        Observed {
            phase: "Running",
            ready,
            state: ContainerState::Running {
                started_at: "2024-01-01T00:00:00Z".into(),
            },
            restarts: 0,
            last: None,
            pod_ip: "127.10.0.7".into(),
            start_time: "2024-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn ready_pod_has_ready_conditions_and_container_status() {
        let status = build(&pod(), &observed(true), None);
        assert_eq!(status["podIP"], "127.10.0.7");
        assert_eq!(
            conditions::status_of(status.get("conditions"), "Ready"),
            Some("True")
        );
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert_eq!(status["containerStatuses"][0]["started"], true);
        assert_eq!(status["containerStatuses"][0]["name"], "zk");
        assert!(status["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    }

    #[test]
    fn rebuilding_keeps_transition_times() {
        let p = pod();
        let first = build(&p, &observed(false), None);
        let again = build(&p, &observed(false), Some(&first));
        assert_eq!(first, again);
        let ready = build(&p, &observed(true), Some(&first));
        assert_eq!(
            conditions::status_of(ready.get("conditions"), "Ready"),
            Some("True")
        );
    }
}
