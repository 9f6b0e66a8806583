//! The environment of a pod's `command` process and its exec probes.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{Api, Client};

use super::spec;
use super::volumes::volume_env_name;

/// An env var whose value cannot be resolved (the container does not start).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The referenced object or key is missing.
    #[error("env {var}: {kind} {name} has no key {key:?} (or does not exist)")]
    Missing {
        /// The variable.
        var: String,
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The key.
        key: String,
    },
    /// Reading the object failed.
    #[error("env {var}: reading {kind} {name}: {source}")]
    Api {
        /// The variable.
        var: String,
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The kube error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// The variables the kubelet sets for a pod (documented in the module docs
/// of `controllers`), then the container's own `env`.
pub async fn environment(
    client: &Client,
    pod: &Pod,
    container: &Container,
    pod_dir: &Path,
    pod_ip: &str,
    volumes: &[(String, PathBuf)],
) -> Result<Vec<(String, String)>, EnvError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| name.clone());
    let ports: Vec<String> = container
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port.to_string())
        .collect();
    let mut env = vec![
        ("POD_NAME".to_owned(), name.clone()),
        ("POD_NAMESPACE".to_owned(), namespace.clone()),
        ("POD_UID".to_owned(), uid.clone()),
        ("POD_IP".to_owned(), pod_ip.to_owned()),
        (
            "POD_ORDINAL".to_owned(),
            spec::ordinal(&name)
                .map(|o| o.to_string())
                .unwrap_or_default(),
        ),
        ("POD_DIR".to_owned(), pod_dir.display().to_string()),
        ("POD_HOSTNAME".to_owned(), hostname),
        ("POD_PORTS".to_owned(), ports.join(",")),
    ];
    for port in container.ports.iter().flatten() {
        if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let var = port_name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>();
            env.push((format!("PORT_{var}"), port.container_port.to_string()));
        }
    }
    for (volume, dir) in volumes {
        env.push((volume_env_name(volume), dir.display().to_string()));
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => {
                if let Some(field) = &from.field_ref {
                    match field.field_path.as_str() {
                        "metadata.name" => name.clone(),
                        "metadata.namespace" => namespace.clone(),
                        "metadata.uid" => uid.clone(),
                        "status.podIP" | "status.hostIP" => pod_ip.to_owned(),
                        _ => String::new(),
                    }
                } else if let Some(key) = &from.secret_key_ref {
                    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
                    let secret = api
                        .get_opt(&key.name)
                        .await
                        .map_err(|source| EnvError::Api {
                            var: var.name.clone(),
                            kind: "Secret",
                            name: key.name.clone(),
                            source: Box::new(source),
                        })?;
                    let value = secret.and_then(|s| {
                        s.data
                            .and_then(|d| {
                                d.get(&key.key)
                                    .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                            })
                            .or_else(|| s.string_data.and_then(|d| d.get(&key.key).cloned()))
                    });
                    match value {
                        Some(value) => value,
                        None if key.optional == Some(true) => continue,
                        None => {
                            return Err(EnvError::Missing {
                                var: var.name.clone(),
                                kind: "Secret",
                                name: key.name.clone(),
                                key: key.key.clone(),
                            });
                        }
                    }
                } else if let Some(key) = &from.config_map_key_ref {
                    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
                    let config_map =
                        api.get_opt(&key.name)
                            .await
                            .map_err(|source| EnvError::Api {
                                var: var.name.clone(),
                                kind: "ConfigMap",
                                name: key.name.clone(),
                                source: Box::new(source),
                            })?;
                    match config_map.and_then(|cm| cm.data.and_then(|d| d.get(&key.key).cloned())) {
                        Some(value) => value,
                        None if key.optional == Some(true) => continue,
                        None => {
                            return Err(EnvError::Missing {
                                var: var.name.clone(),
                                kind: "ConfigMap",
                                name: key.name.clone(),
                                key: key.key.clone(),
                            });
                        }
                    }
                } else {
                    String::new()
                }
            }
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}
