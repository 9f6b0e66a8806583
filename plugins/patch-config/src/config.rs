//! The `with` table of `patch-config` and its checks (no cluster access).

use std::collections::BTreeMap;

use dbops_config_formats::Format;
use dbops_engines::Engine;
use dbops_engines::config::TlsOptions;
use dbops_plugin_sdk::schemars::JsonSchema;
use dbops_plugin_sdk::{Problem, Target};
use serde::Deserialize;
use serde_json::Value;

/// `with` table of `patch-config`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Config {
    /// `merge` (default: set, change and delete keys), `replace` (a whole
    /// new file) or `remove-custom` (back to the content the object had
    /// before dbops first changed it).
    #[serde(default)]
    pub mode: Mode,
    /// The ConfigMap holding the configuration (give this or `secret`).
    #[serde(default)]
    pub config_map: Option<String>,
    /// The Secret holding the configuration (like KubeDB's configSecret).
    #[serde(default)]
    pub secret: Option<String>,
    /// The file (data key) to change; default: the engine's main file
    /// (zoo.cfg, server.properties, common.runtime.properties, my.cnf).
    #[serde(default)]
    pub file: Option<String>,
    /// The file's format (`properties`, `ini`, `yaml`, `json`); default:
    /// from the file name. Unknown names are refused, never guessed.
    #[serde(default)]
    pub format: Option<String>,
    /// merge: keys to set (a table; `null` deletes). Properties take dotted
    /// keys or nested tables; my.cnf takes `{ mysqld = { key = "v" } }`
    /// (`true` writes a key without value); YAML/JSON take a JSON merge patch.
    #[serde(default)]
    pub set: Option<Value>,
    /// merge: keys to delete (`key`; `group.key` for my.cnf; `a.b` or a
    /// JSON pointer for YAML/JSON).
    #[serde(default)]
    pub delete: Vec<String>,
    /// replace: the whole new file.
    #[serde(default)]
    pub content: Option<String>,
    /// merge or replace: take the change from another ConfigMap or Secret
    /// (merge: every setting of that file is set; replace: its content).
    #[serde(default)]
    pub source: Option<Source>,
    /// Several files of the same object at once: file name -> change.
    #[serde(default)]
    pub files: BTreeMap<String, FileChange>,
    /// `add` or `remove` the engine's TLS settings in its main file (see
    /// `tls_options`); combined with `set`/`delete`, which win.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Where issue-cert's Secrets are mounted and how TLS is switched on.
    #[serde(default)]
    pub tls_options: TlsOptionsConfig,
    /// `auto` (default: a restart is required unless every changed key is
    /// one the engine applies at run time), `always` or `never`.
    #[serde(default)]
    pub restart: Restart,
}

/// The change to one file (in `files`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct FileChange {
    /// Format; default from the file name.
    #[serde(default)]
    pub format: Option<String>,
    /// Keys to set (as the top-level `set`).
    #[serde(default)]
    pub set: Option<Value>,
    /// Keys to delete.
    #[serde(default)]
    pub delete: Vec<String>,
    /// replace: the whole new file.
    #[serde(default)]
    pub content: Option<String>,
    /// The change from another ConfigMap or Secret.
    #[serde(default)]
    pub source: Option<Source>,
}

/// Another ConfigMap or Secret to read the change from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Source {
    /// A ConfigMap in the target namespace.
    #[serde(default)]
    pub config_map: Option<String>,
    /// A Secret in the target namespace.
    #[serde(default)]
    pub secret: Option<String>,
    /// Its data key; default: the file being changed.
    #[serde(default)]
    pub key: Option<String>,
}

/// The modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum Mode {
    /// Set, change and delete keys.
    #[default]
    Merge,
    /// Replace whole files.
    Replace,
    /// Restore the content from before dbops first changed the object.
    RemoveCustom,
}

/// TLS shorthand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum TlsMode {
    /// Apply the engine's TLS settings.
    Add,
    /// Delete them.
    Remove,
}

/// When a restart is required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum Restart {
    /// Unless every changed key is dynamic.
    #[default]
    Auto,
    /// Whenever anything changed.
    Always,
    /// Never.
    Never,
}

/// TLS paths and switches (defaults match issue-cert's Secrets mounted at
/// `/etc/dbops/tls` and `/etc/dbops/tls-password`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct TlsOptionsConfig {
    /// Mount path of the TLS Secret (default `/etc/dbops/tls`).
    #[serde(default)]
    pub dir: Option<String>,
    /// Mount path of the keystore password Secret (default `/etc/dbops/tls-password`).
    #[serde(default)]
    pub password_dir: Option<String>,
    /// The TLS port where the engine has a separate one (ZooKeeper: 2182).
    #[serde(default)]
    pub port: Option<u16>,
    /// Keep the plaintext port open (default true).
    #[serde(default)]
    pub keep_plaintext: Option<bool>,
    /// Require client certificates (default false).
    #[serde(default)]
    pub client_auth: Option<bool>,
    /// ZooKeeper quorum TLS (default true).
    #[serde(default)]
    pub quorum: Option<bool>,
    /// MySQL `require_secure_transport` (default true).
    #[serde(default)]
    pub require_secure_transport: Option<bool>,
    /// Druid: environment variable with the keystore password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl TlsOptionsConfig {
    /// The engine crate's options with defaults filled in.
    pub fn resolve(&self) -> TlsOptions {
        let d = TlsOptions::default();
        TlsOptions {
            dir: self.dir.clone().unwrap_or(d.dir),
            password_dir: self.password_dir.clone().unwrap_or(d.password_dir),
            port: self.port.or(d.port),
            keep_plaintext: self.keep_plaintext.unwrap_or(d.keep_plaintext),
            client_auth: self.client_auth.unwrap_or(d.client_auth),
            quorum: self.quorum.unwrap_or(d.quorum),
            require_secure_transport: self
                .require_secure_transport
                .unwrap_or(d.require_secure_transport),
            password_env: self.password_env.clone().unwrap_or(d.password_env),
        }
    }
}

/// One file to change, after defaults.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// Data key.
    pub file: String,
    /// Format.
    pub format: Format,
    /// The change.
    pub change: FileChange,
    /// Whether the engine TLS shorthand applies to this file.
    pub tls: Option<TlsMode>,
}

/// Where the configuration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// A ConfigMap.
    ConfigMap,
    /// A Secret.
    Secret,
}

/// The resolved step: object, files, engine.
#[derive(Debug, Clone)]
pub struct Plan {
    /// ConfigMap or Secret.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
    /// The files to change.
    pub files: Vec<FilePlan>,
    /// The engine (None: generic).
    pub engine: Option<Engine>,
}

impl Config {
    /// Resolve defaults and check everything; every problem at once.
    pub fn plan(&self, target: &Target) -> Result<Plan, Vec<Problem>> {
        let mut problems = Vec::new();
        let engine = Engine::parse(&target.engine).filter(|e| *e != Engine::Generic);
        let (kind, name) = match (&self.config_map, &self.secret) {
            (Some(n), None) => (ObjectKind::ConfigMap, n.clone()),
            (None, Some(n)) => (ObjectKind::Secret, n.clone()),
            _ => {
                problems.push(problem("", "give exactly one of `config_map` or `secret`: the object holding the configuration"));
                (ObjectKind::ConfigMap, String::new())
            }
        };
        let main_file = self.file.clone().or_else(|| {
            engine
                .and_then(dbops_engines::config::profile)
                .map(|p| p.file.to_owned())
        });
        let top = FileChange {
            format: self.format.clone(),
            set: self.set.clone(),
            delete: self.delete.clone(),
            content: self.content.clone(),
            source: self.source.clone(),
        };
        let top_used = top.set.is_some()
            || !top.delete.is_empty()
            || top.content.is_some()
            || top.source.is_some()
            || self.tls.is_some();
        let mut changes: Vec<(String, FileChange, Option<TlsMode>)> = Vec::new();
        if top_used || (self.mode == Mode::RemoveCustom && self.files.is_empty()) {
            match &main_file {
                Some(f) => changes.push((f.clone(), top, self.tls)),
                None => problems.push(problem("/file", "name the `file` (data key) to change: the engine has no default configuration file")),
            }
        }
        for (file, change) in &self.files {
            if changes.iter().any(|(f, ..)| f == file) {
                problems.push(problem(
                    &format!("/files/{file}"),
                    "this file is also changed by the top-level keys; change it in one place",
                ));
            }
            changes.push((file.clone(), change.clone(), None));
        }
        if changes.is_empty() {
            problems.push(problem(
                "",
                "nothing to change: give `set`, `delete`, `content`, `source`, `tls` or `files`",
            ));
        }
        let mut files = Vec::new();
        for (file, change, tls) in changes {
            let at = if self.files.contains_key(&file) {
                format!("/files/{file}")
            } else {
                String::new()
            };
            let explicit = change.format.as_deref().or(self.format.as_deref());
            let format = match Format::detect(&file, explicit) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(problem(&format!("{at}/format"), &e.to_string()));
                    continue;
                }
            };
            check_mode(self.mode, &change, tls, &at, &mut problems);
            if tls.is_some() && engine.is_none() {
                problems.push(problem("/tls", "`tls` needs an engine with TLS knowledge (zookeeper, kafka, druid, perconaxtradb); for a generic target set the keys with `set`"));
            }
            files.push(FilePlan {
                file,
                format,
                change,
                tls,
            });
        }
        if problems.is_empty() {
            Ok(Plan {
                kind,
                name,
                files,
                engine,
            })
        } else {
            Err(problems)
        }
    }
}

fn check_mode(
    mode: Mode,
    change: &FileChange,
    tls: Option<TlsMode>,
    at: &str,
    problems: &mut Vec<Problem>,
) {
    let has_keys = change.set.is_some() || !change.delete.is_empty();
    match mode {
        Mode::Merge if change.content.is_some() => problems.push(problem(&format!("{at}/content"), "`content` replaces a whole file: use mode = \"replace\"")),
        Mode::Merge if !has_keys && change.source.is_none() && tls.is_none() => problems.push(problem(at, "mode = \"merge\" needs `set`, `delete`, `source` or `tls`")),
        Mode::Replace if has_keys => problems.push(problem(at, "mode = \"replace\" takes `content` or `source`, not `set`/`delete`: use mode = \"merge\"")),
        Mode::Replace if change.content.is_some() == change.source.is_some() => problems.push(problem(at, "mode = \"replace\" needs exactly one of `content` or `source`")),
        Mode::RemoveCustom if has_keys || change.content.is_some() || change.source.is_some() || tls.is_some() => problems.push(problem(at, "mode = \"remove-custom\" takes no changes: it restores the content from before dbops first changed the object")),
        _ => {}
    }
    if let Some(source) = &change.source
        && source.config_map.is_some() == source.secret.is_some()
    {
        problems.push(problem(
            &format!("{at}/source"),
            "give exactly one of `config_map` or `secret` in `source`",
        ));
    }
    if let Some(set) = &change.set
        && !set.is_object()
    {
        problems.push(problem(
            &format!("{at}/set"),
            "`set` must be a table of keys",
        ));
    }
}

fn problem(path: &str, message: &str) -> Problem {
    Problem {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}
