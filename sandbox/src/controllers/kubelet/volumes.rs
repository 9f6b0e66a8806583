//! Writes a pod's ConfigMap, Secret, projected and emptyDir volumes to
//! `POD_DIR/volumes/NAME/` and links the process container's mounts to them
//! (`POD_DIR/MOUNT_PATH` -> the volume directory or its `subPath`).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret, Volume};
use kube::{Api, Client};

/// Why a pod's volumes cannot be set up (the pod stays in
/// ContainerCreating with this message, and the kubelet retries).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A referenced ConfigMap or Secret does not exist.
    #[error("volume {volume:?}: {kind} {namespace}/{name} not found")]
    NotFound {
        /// The volume.
        volume: String,
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A key listed in `items` is missing.
    #[error("volume {volume:?}: key {key:?} not found in {kind} {name}")]
    MissingKey {
        /// The volume.
        volume: String,
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The key.
        key: String,
    },
    /// A path escapes the volume directory.
    #[error("volume {volume:?}: path {path:?} must be relative and stay inside the volume")]
    BadPath {
        /// The volume.
        volume: String,
        /// The path.
        path: String,
    },
    /// Reading an object failed.
    #[error("volume {volume:?}: reading {kind} {name}: {source}")]
    Api {
        /// The volume.
        volume: String,
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The kube error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// One file of a volume.
struct File {
    path: String,
    data: Vec<u8>,
    mode: u32,
}

/// Materialises every volume of `pod`; returns `(volume name, directory)`.
/// A `persistentVolumeClaim` volume is the directory
/// `STATE_DIR/persistent/NAMESPACE/CLAIM`, kept across pod restarts.
pub async fn materialize(
    client: &Client,
    pod: &Pod,
    container: &Container,
    pod_dir: &Path,
    state_dir: &Path,
) -> Result<Vec<(String, PathBuf)>, VolumeError> {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut dirs = Vec::new();
    for volume in &volumes {
        if let Some(claim) = &volume.persistent_volume_claim {
            let claim_dir =
                safe_relative(&claim.claim_name).ok_or_else(|| VolumeError::BadPath {
                    volume: volume.name.clone(),
                    path: claim.claim_name.clone(),
                })?;
            let dir = state_dir
                .join("persistent")
                .join(&namespace)
                .join(claim_dir);
            std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
            dirs.push((volume.name.clone(), dir));
            continue;
        }
        let dir = pod_dir.join("volumes").join(&volume.name);
        match files_of(client, &namespace, volume).await? {
            Some(files) => write_volume(&volume.name, &dir, &files)?,
            None => std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?,
        }
        dirs.push((volume.name.clone(), dir));
    }
    link_mounts(container, pod_dir, &dirs)?;
    Ok(dirs)
}

/// The files of a volume, or `None` for a directory kept as it is
/// (emptyDir and kinds the sandbox does not fill).
async fn files_of(
    client: &Client,
    namespace: &str,
    volume: &Volume,
) -> Result<Option<Vec<File>>, VolumeError> {
    let name = &volume.name;
    if let Some(secret) = &volume.secret {
        let data = secret_data(
            client,
            namespace,
            name,
            secret.secret_name.as_deref().unwrap_or_default(),
            secret.optional.unwrap_or(false),
        )
        .await?;
        let mode = secret.default_mode.map_or(0o600, |m| m as u32);
        return select(
            name,
            "Secret",
            secret.secret_name.as_deref().unwrap_or_default(),
            data,
            secret.items.as_deref(),
            mode,
        )
        .map(Some);
    }
    if let Some(config_map) = &volume.config_map {
        let data = config_map_data(
            client,
            namespace,
            name,
            &config_map.name,
            config_map.optional.unwrap_or(false),
        )
        .await?;
        let mode = config_map.default_mode.map_or(0o644, |m| m as u32);
        return select(
            name,
            "ConfigMap",
            &config_map.name,
            data,
            config_map.items.as_deref(),
            mode,
        )
        .map(Some);
    }
    if let Some(projected) = &volume.projected {
        let mode = projected.default_mode.map_or(0o600, |m| m as u32);
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(secret) = &source.secret {
                let data = secret_data(
                    client,
                    namespace,
                    name,
                    &secret.name,
                    secret.optional.unwrap_or(false),
                )
                .await?;
                files.extend(select(
                    name,
                    "Secret",
                    &secret.name,
                    data,
                    secret.items.as_deref(),
                    mode,
                )?);
            }
            if let Some(config_map) = &source.config_map {
                let data = config_map_data(
                    client,
                    namespace,
                    name,
                    &config_map.name,
                    config_map.optional.unwrap_or(false),
                )
                .await?;
                files.extend(select(
                    name,
                    "ConfigMap",
                    &config_map.name,
                    data,
                    config_map.items.as_deref(),
                    mode,
                )?);
            }
        }
        return Ok(Some(files));
    }
    Ok(None)
}

async fn secret_data(
    client: &Client,
    namespace: &str,
    volume: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, VolumeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api.get_opt(name).await.map_err(|source| VolumeError::Api {
        volume: volume.to_owned(),
        kind: "Secret",
        name: name.to_owned(),
        source: Box::new(source),
    })?;
    match secret {
        Some(secret) => {
            let mut data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (key, value) in secret.string_data.unwrap_or_default() {
                data.insert(key, value.into_bytes());
            }
            Ok(data)
        }
        None if optional => Ok(BTreeMap::new()),
        None => Err(VolumeError::NotFound {
            volume: volume.to_owned(),
            kind: "Secret",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }),
    }
}

async fn config_map_data(
    client: &Client,
    namespace: &str,
    volume: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, VolumeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = api.get_opt(name).await.map_err(|source| VolumeError::Api {
        volume: volume.to_owned(),
        kind: "ConfigMap",
        name: name.to_owned(),
        source: Box::new(source),
    })?;
    match config_map {
        Some(cm) => {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            for (key, value) in cm.binary_data.unwrap_or_default() {
                data.insert(key, value.0);
            }
            Ok(data)
        }
        None if optional => Ok(BTreeMap::new()),
        None => Err(VolumeError::NotFound {
            volume: volume.to_owned(),
            kind: "ConfigMap",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }),
    }
}

/// Applies `items` (key -> path, mode) or takes every key.
fn select(
    volume: &str,
    kind: &'static str,
    name: &str,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
) -> Result<Vec<File>, VolumeError> {
    match items {
        None | Some([]) => Ok(data
            .into_iter()
            .map(|(key, data)| File {
                path: key,
                data,
                mode,
            })
            .collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                let data = data
                    .get(&item.key)
                    .cloned()
                    .ok_or_else(|| VolumeError::MissingKey {
                        volume: volume.to_owned(),
                        kind,
                        name: name.to_owned(),
                        key: item.key.clone(),
                    })?;
                Ok(File {
                    path: item.path.clone(),
                    data,
                    mode: item.mode.map_or(mode, |m| m as u32),
                })
            })
            .collect(),
    }
}

/// Replaces the volume directory with `files`.
fn write_volume(volume: &str, dir: &Path, files: &[File]) -> Result<(), VolumeError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| io_error(dir, source))?;
    }
    std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    for file in files {
        let relative = safe_relative(&file.path).ok_or_else(|| VolumeError::BadPath {
            volume: volume.to_owned(),
            path: file.path.clone(),
        })?;
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| io_error(parent, source))?;
        }
        std::fs::write(&path, &file.data).map_err(|source| io_error(&path, source))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode & 0o777))
            .map_err(|source| io_error(&path, source))?;
    }
    Ok(())
}

/// Links `POD_DIR/MOUNT_PATH` to the mounted volume directory (or file).
fn link_mounts(
    container: &Container,
    pod_dir: &Path,
    dirs: &[(String, PathBuf)],
) -> Result<(), VolumeError> {
    for mount in container.volume_mounts.iter().flatten() {
        let Some((_, dir)) = dirs.iter().find(|(name, _)| *name == mount.name) else {
            continue;
        };
        let bad = || VolumeError::BadPath {
            volume: mount.name.clone(),
            path: mount.mount_path.clone(),
        };
        let relative = safe_relative(mount.mount_path.trim_start_matches('/')).ok_or_else(bad)?;
        let source = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => dir.join(safe_relative(sub).ok_or_else(bad)?),
            None => dir.clone(),
        };
        let target = pod_dir.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| io_error(parent, source))?;
        }
        if target.symlink_metadata().is_ok() {
            std::fs::remove_file(&target).map_err(|source| io_error(&target, source))?;
        }
        std::os::unix::fs::symlink(&source, &target).map_err(|source| io_error(&target, source))?;
    }
    Ok(())
}

/// `path` if it is relative, non-empty and has no `..`.
fn safe_relative(path: &str) -> Option<&Path> {
    let path = Path::new(path);
    let ok = !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    ok.then_some(path)
}

fn io_error(path: &Path, source: io::Error) -> VolumeError {
    VolumeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The `VOLUME_<NAME>` variable name of a volume.
pub fn volume_env_name(volume: &str) -> String {
    let upper: String = volume
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("VOLUME_{upper}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_map_keys_to_paths_and_modes() {
        let data = BTreeMap::from([
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec()),
        ]);
        let items = vec![KeyToPath {
            key: "b".into(),
            path: "sub/b.txt".into(),
            mode: Some(0o640),
        }];
        let files = select("v", "Secret", "s", data.clone(), Some(&items), 0o600).expect("files");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "sub/b.txt");
        assert_eq!(files[0].mode, 0o640);
        let missing = vec![KeyToPath {
            key: "zzz".into(),
            path: "z".into(),
            mode: None,
        }];
        assert!(select("v", "Secret", "s", data.clone(), Some(&missing), 0o600).is_err());
        assert_eq!(
            select("v", "Secret", "s", data, None, 0o600)
                .expect("files")
                .len(),
            2
        );
    }

    #[test]
    fn writes_files_and_links_mounts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("volumes/config");
        let files = vec![File {
            path: "zoo.cfg".into(),
            data: b"tickTime=2000\n".to_vec(),
            mode: 0o644,
        }];
        write_volume("config", &dir, &files).expect("write");
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "volumeMounts": [
                {"name": "config", "mountPath": "/conf"},
                {"name": "config", "mountPath": "/etc/zoo.cfg", "subPath": "zoo.cfg"}
            ]
        }))
        .expect("container");
        link_mounts(&container, tmp.path(), &[("config".into(), dir)]).expect("links");
        let read = std::fs::read_to_string(tmp.path().join("conf/zoo.cfg")).expect("read");
        assert_eq!(read, "tickTime=2000\n");
        let read = std::fs::read_to_string(tmp.path().join("etc/zoo.cfg")).expect("read");
        assert_eq!(read, "tickTime=2000\n");
    }

    #[test]
    fn rejects_escaping_paths() {
        assert!(safe_relative("../x").is_none());
        assert!(safe_relative("/abs").is_none());
        assert!(safe_relative("").is_none());
        assert!(safe_relative("a/b").is_some());
        assert_eq!(volume_env_name("tls-certs.v1"), "VOLUME_TLS_CERTS_V1");
    }
}
