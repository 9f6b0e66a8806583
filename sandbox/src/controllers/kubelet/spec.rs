//! What the kubelet reads from a pod: the annotation contract (see the
//! controllers' module docs) and the process container. Pure parsing.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::controllers::duration;

/// Annotation choosing the pod's process.
pub const PROCESS: &str = "sandbox.dbops.io/process";
/// Annotation with the `command` script.
pub const COMMAND: &str = "sandbox.dbops.io/command";
/// Annotation naming the process container.
pub const CONTAINER: &str = "sandbox.dbops.io/container";
/// Annotation with the TLS endpoint's port.
pub const TLS_PORT: &str = "sandbox.dbops.io/tls-port";
/// Annotation naming the TLS endpoint's Secret volume.
pub const TLS_SECRET_VOLUME: &str = "sandbox.dbops.io/tls-secret-volume";
/// Annotation naming the certificate file in that volume.
pub const TLS_CERT_FILE: &str = "sandbox.dbops.io/tls-cert-file";
/// Annotation naming the key file in that volume.
pub const TLS_KEY_FILE: &str = "sandbox.dbops.io/tls-key-file";
/// Fault: the pod never becomes Ready.
pub const NEVER_READY: &str = "sandbox.dbops.io/never-ready";
/// Fault: the container crashes this long after each start.
pub const CRASH_AFTER: &str = "sandbox.dbops.io/crash-after";
/// Per-pod start delay.
pub const START_DELAY: &str = "sandbox.dbops.io/start-delay";

/// A pod whose annotations do not make sense; it stays unready with this
/// message in its container status.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// Unknown `sandbox.dbops.io/process` value.
    #[error("annotation {PROCESS}={0:?} is not one of tls-endpoint, command")]
    UnknownProcess(String),
    /// `command` without a script.
    #[error("annotation {PROCESS}=command needs the script in annotation {COMMAND}")]
    MissingCommand,
    /// No port for the TLS endpoint.
    #[error("tls-endpoint needs a port: set annotation {TLS_PORT} or a containerPort")]
    MissingTlsPort,
    /// An annotation value that does not parse.
    #[error("annotation {name}={value:?} is invalid: {reason}")]
    InvalidAnnotation {
        /// The annotation.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The pod has no containers.
    #[error("the pod has no containers")]
    NoContainer,
}

/// The process to run in a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSpec {
    /// No process: Ready after the start delay.
    None,
    /// The built-in TLS server.
    TlsEndpoint {
        /// Port on the pod IP.
        port: u16,
        /// The Secret volume, or the first one holding `cert_file`.
        volume: Option<String>,
        /// Certificate chain file inside the volume.
        cert_file: String,
        /// Key file inside the volume.
        key_file: String,
    },
    /// `sh -c SCRIPT`.
    Command {
        /// The script.
        script: String,
    },
}

/// Everything the kubelet derives from a pod's spec and annotations.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// The process container (env, mounts, probe).
    pub container: Container,
    /// The process.
    pub process: ProcessSpec,
    /// `crash-after` fault.
    pub crash_after: Option<Duration>,
    /// `start-delay` override.
    pub start_delay: Option<Duration>,
}

/// Reads the kubelet's view of `pod`.
pub fn parse(pod: &Pod) -> Result<PodSpec, SpecError> {
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let get = |name: &str| annotations.get(name).map(|v| v.trim().to_owned());
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let container = match get(CONTAINER) {
        Some(wanted) => containers.iter().find(|c| c.name == wanted).cloned(),
        None => containers.first().cloned(),
    }
    .ok_or(SpecError::NoContainer)?;

    let process = match get(PROCESS).as_deref() {
        None | Some("") | Some("none") => ProcessSpec::None,
        Some("command") => ProcessSpec::Command {
            script: get(COMMAND)
                .filter(|s| !s.is_empty())
                .ok_or(SpecError::MissingCommand)?,
        },
        Some("tls-endpoint") => {
            let port = match get(TLS_PORT) {
                Some(text) => text
                    .parse::<u16>()
                    .map_err(|err| SpecError::InvalidAnnotation {
                        name: TLS_PORT,
                        value: text.clone(),
                        reason: err.to_string(),
                    })?,
                None => container
                    .ports
                    .iter()
                    .flatten()
                    .next()
                    .and_then(|p| u16::try_from(p.container_port).ok())
                    .ok_or(SpecError::MissingTlsPort)?,
            };
            ProcessSpec::TlsEndpoint {
                port,
                volume: get(TLS_SECRET_VOLUME),
                cert_file: get(TLS_CERT_FILE).unwrap_or_else(|| "tls.crt".to_owned()),
                key_file: get(TLS_KEY_FILE).unwrap_or_else(|| "tls.key".to_owned()),
            }
        }
        Some(other) => return Err(SpecError::UnknownProcess(other.to_owned())),
    };

    let duration_of = |name: &'static str| -> Result<Option<Duration>, SpecError> {
        get(name)
            .map(|text| {
                duration::parse(&text).map_err(|err| SpecError::InvalidAnnotation {
                    name,
                    value: text.clone(),
                    reason: err.to_string(),
                })
            })
            .transpose()
    };
    Ok(PodSpec {
        container,
        process,
        crash_after: duration_of(CRASH_AFTER)?,
        start_delay: duration_of(START_DELAY)?,
    })
}

/// Whether the pod carries `sandbox.dbops.io/never-ready: "true"` now.
pub fn never_ready(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NEVER_READY))
        .is_some_and(|v| v.trim() == "true")
}

/// The TCP ports the pod's containers declare.
pub fn container_ports(pod: &Pod) -> Vec<u16> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect()
}

/// The number after the pod name's last `-`, if any.
pub fn ordinal(name: &str) -> Option<u32> {
    name.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "zk-1", "annotations": annotations},
            "spec": {"containers": [
                {"name": "main", "ports": [{"containerPort": 2182}]},
                {"name": "side"}
            ]}
        }))
        .expect("valid pod")
    }

    #[test]
    fn defaults_to_no_process() {
        let spec = parse(&pod(json!({}))).expect("spec");
        assert_eq!(spec.process, ProcessSpec::None);
        assert_eq!(spec.container.name, "main");
        assert!(!never_ready(&pod(json!({}))));
    }

    #[test]
    fn tls_endpoint_defaults_to_first_port() {
        let spec = parse(&pod(json!({PROCESS: "tls-endpoint", CRASH_AFTER: "2s"}))).expect("spec");
        assert_eq!(
            spec.process,
            ProcessSpec::TlsEndpoint {
                port: 2182,
                volume: None,
                cert_file: "tls.crt".into(),
                key_file: "tls.key".into()
            }
        );
        assert_eq!(spec.crash_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn command_needs_script_and_container_can_be_chosen() {
        assert_eq!(
            parse(&pod(json!({PROCESS: "command"}))).err(),
            Some(SpecError::MissingCommand)
        );
        let spec = parse(&pod(json!({PROCESS: "command", COMMAND: "exec true", CONTAINER: "side", NEVER_READY: "true"})))
            .expect("spec");
        assert_eq!(spec.container.name, "side");
        assert!(never_ready(&pod(json!({NEVER_READY: "true"}))));
        assert!(matches!(
            parse(&pod(json!({PROCESS: "magic"}))),
            Err(SpecError::UnknownProcess(_))
        ));
        assert!(matches!(
            parse(&pod(json!({CRASH_AFTER: "soon"}))),
            Err(SpecError::InvalidAnnotation { .. })
        ));
    }

    #[test]
    fn ordinal_and_ports() {
        assert_eq!(ordinal("zk-12"), Some(12));
        assert_eq!(ordinal("standalone"), None);
        assert_eq!(container_ports(&pod(json!({}))), vec![2182]);
    }
}
