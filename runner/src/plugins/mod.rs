//! Plugins: find the libraries a pipeline uses, check them, load them.
//!
//! - The plugin directory is `--plugin-dir`, else `DBOPS_PLUGIN_DIR`, else
//!   the directory of the `dbops` executable.
//! - `uses = "issue-cert"` means the file `libdbops_plugin_issue_cert.so` in
//!   that directory; `uses = "./x/libfoo.so"` (anything with a `/` or ending
//!   in `.so`) is a path, relative to the pipeline file.
//! - [`safety`] checks run before [`load::open`]; the ABI version is checked
//!   right after, before anything else in the descriptor is read.
//!
//! [`PluginSet`] holds the loaded plugins and is the pipeline validator's
//! [`crate::pipeline::PluginCatalog`].

mod catalog;
pub mod load;
pub mod safety;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dbops_plugin_sdk::abi::{CallError, PluginRef};
use dbops_plugin_sdk::protocol::PluginInfo;

use crate::pipeline::Pipeline;

/// File name prefix of plugin libraries.
pub const FILE_PREFIX: &str = "libdbops_plugin_";
/// File name suffix of plugin libraries.
pub const FILE_SUFFIX: &str = ".so";
/// Environment variable naming the plugin directory.
pub const DIR_ENV: &str = "DBOPS_PLUGIN_DIR";

/// Why plugins could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A file failed a safety check.
    #[error(transparent)]
    Unsafe(#[from] safety::SafetyError),
    /// A library could not be loaded or speaks another ABI.
    #[error(transparent)]
    Load(#[from] load::LoadError),
    /// The plugin directory cannot be listed.
    #[error("cannot list the plugin directory {dir}: {source}; set --plugin-dir or {DIR_ENV}")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The descriptor's metadata is malformed.
    #[error("plugin {path} has a malformed descriptor: {source}")]
    Descriptor {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: CallError,
    },
    /// A library declares another step name than the one it was loaded for.
    #[error(
        "plugin file {path} declares the step name `{declared}`, but it was loaded for `uses = \"{uses}\"`; rename the file to {FILE_PREFIX}{}{FILE_SUFFIX} or fix `uses`",
        declared.replace('-', "_")
    )]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The `uses` value.
        uses: String,
        /// The name in the descriptor.
        declared: String,
    },
}

/// One loaded plugin.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Static metadata from the descriptor.
    pub info: PluginInfo,
    /// The canonical file path.
    pub path: PathBuf,
    /// Hex sha256 of the file as loaded: computed only when a step pins a
    /// digest or the caller asked for it ([`load_file_with_digest`]), since
    /// hashing a multi-MB library costs more than loading it.
    pub sha256: Option<String>,
    plugin: PluginRef,
    /// The config schema's validator, compiled on first use.
    validator: std::sync::OnceLock<Result<std::sync::Arc<jsonschema::Validator>, String>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.info.name)
            .field("path", &self.path)
            .finish()
    }
}

impl LoadedPlugin {
    /// The callable plugin.
    pub fn plugin(&self) -> PluginRef {
        self.plugin
    }

    /// The validator of the plugin's config schema, compiled once (a fleet
    /// checks the pipeline once per target).
    pub fn config_validator(&self) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
        self.validator
            .get_or_init(|| crate::pipeline::compile_config_schema(&self.info))
            .clone()
    }
}

/// The plugin directory: `flag`, else `DBOPS_PLUGIN_DIR`, else next to the executable.
pub fn plugin_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_owned();
    }
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The library file name of a step: `issue-cert` -> `libdbops_plugin_issue_cert.so`.
pub fn file_name(step: &str) -> String {
    format!("{FILE_PREFIX}{}{FILE_SUFFIX}", step.replace('-', "_"))
}

/// Whether `uses` is a path rather than a step name.
pub fn is_path(uses: &str) -> bool {
    uses.contains('/') || uses.ends_with(FILE_SUFFIX)
}

/// Where the library for `uses` should be.
pub fn resolve(uses: &str, dir: &Path, pipeline_dir: &Path) -> PathBuf {
    if is_path(uses) {
        let p = Path::new(uses);
        if p.is_absolute() {
            p.to_owned()
        } else {
            pipeline_dir.join(p)
        }
    } else {
        dir.join(file_name(uses))
    }
}

/// Plugins present in `dir` as (step name derived from the file name, path), sorted.
pub fn discover(dir: &Path) -> Result<Vec<(String, PathBuf)>, PluginError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PluginError::Directory {
        dir: dir.to_owned(),
        source,
    })?;
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
            Some((stem.replace('_', "-"), entry.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Check, load and describe one file. `pins` are (step id, expected sha256);
/// the file is hashed only when there is a pin to check.
pub fn load_file(path: &Path, pins: &[(String, String)]) -> Result<LoadedPlugin, PluginError> {
    load_checked(path, pins, false)
}

/// Like [`load_file`] without pins, but always hashes the file (before
/// loading it), for listings that report each plugin's digest.
pub fn load_file_with_digest(path: &Path) -> Result<LoadedPlugin, PluginError> {
    load_checked(path, &[], true)
}

fn load_checked(
    path: &Path,
    pins: &[(String, String)],
    digest: bool,
) -> Result<LoadedPlugin, PluginError> {
    // The directory of the name we were given matters too: through a
    // symlink in a world-writable directory anyone could swap the target.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        safety::check_directory(path, dir)?;
    }
    let path = path
        .canonicalize()
        .map_err(|source| safety::SafetyError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
    safety::check_permissions(&path)?;
    let sha256 = if digest || !pins.is_empty() {
        let sha256 = safety::sha256_file(&path)?;
        for (step, expected) in pins {
            safety::check_pin(&path, step, expected, &sha256)?;
        }
        Some(sha256)
    } else {
        None
    };
    let plugin = load::open(&path)?;
    let info = plugin.info().map_err(|source| PluginError::Descriptor {
        path: path.clone(),
        source,
    })?;
    Ok(LoadedPlugin {
        info,
        path,
        sha256,
        plugin,
        validator: std::sync::OnceLock::new(),
    })
}

/// The plugins of one pipeline, keyed by their `uses` value.
#[derive(Debug, Default)]
pub struct PluginSet {
    by_uses: BTreeMap<String, LoadedPlugin>,
    available: Vec<String>,
}

impl PluginSet {
    /// Load every plugin `pipeline` uses from `dir`. Plugins whose file does
    /// not exist are left out (the validator reports them with the list of
    /// available ones); every other problem is returned, all at once.
    pub fn load_for(pipeline: &Pipeline, dir: &Path) -> Result<PluginSet, Vec<PluginError>> {
        let available = discover(dir)
            .map(|found| found.into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default();
        let pipeline_dir = pipeline
            .path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let mut pins: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
        for step in &pipeline.steps {
            let entry = pins.entry(step.uses.as_str()).or_default();
            if let Some(pin) = &step.sha256 {
                entry.push((step.id.clone(), pin.clone()));
            }
        }
        let mut set = PluginSet {
            by_uses: BTreeMap::new(),
            available,
        };
        let mut problems = Vec::new();
        for (uses, pins) in pins {
            let path = resolve(uses, dir, &pipeline_dir);
            if !path.exists() {
                continue;
            }
            match load_file(&path, &pins) {
                Ok(plugin) if !is_path(uses) && plugin.info.name != uses => {
                    problems.push(PluginError::NameMismatch {
                        path: plugin.path,
                        uses: uses.to_owned(),
                        declared: plugin.info.name,
                    });
                }
                Ok(plugin) => {
                    set.by_uses.insert(uses.to_owned(), plugin);
                }
                Err(e) => problems.push(e),
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// The plugin loaded for a `uses` value.
    pub fn get(&self, uses: &str) -> Option<&LoadedPlugin> {
        self.by_uses.get(uses)
    }

    /// Names of the plugins found in the plugin directory.
    pub fn available(&self) -> &[String] {
        &self.available
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(file_name("issue-cert"), "libdbops_plugin_issue_cert.so");
        assert!(!is_path("issue-cert"));
        assert!(is_path("./libx.so"));
        assert_eq!(
            resolve("a-b", Path::new("/p"), Path::new("/pipe")),
            PathBuf::from("/p/libdbops_plugin_a_b.so")
        );
        assert_eq!(
            resolve("x/liby.so", Path::new("/p"), Path::new("/pipe")),
            PathBuf::from("/pipe/x/liby.so")
        );
    }

    #[test]
    fn a_symlink_in_a_world_writable_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let safe = tempfile::tempdir().expect("tempdir");
        let open = tempfile::tempdir().expect("tempdir");
        let perms = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        perms(safe.path(), 0o755);
        perms(open.path(), 0o777);
        let target = safe.path().join("libdbops_plugin_x.so");
        std::fs::write(&target, b"not loaded").expect("write");
        perms(&target, 0o644);
        let link = open.path().join("libdbops_plugin_x.so");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = load_file(&link, &[]).expect_err("refused before loading");
        assert!(
            matches!(
                &err,
                PluginError::Unsafe(safety::SafetyError::WorldWritable {
                    what: "its directory",
                    ..
                })
            ),
            "{err}"
        );
    }

    #[test]
    fn discovers_plugin_files_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "libdbops_plugin_issue_cert.so",
            "libother.so",
            "libdbops_plugin_x.d",
        ] {
            std::fs::write(dir.path().join(f), b"").expect("write");
        }
        let found = discover(dir.path()).expect("discover");
        let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["issue-cert"]);
    }
}
