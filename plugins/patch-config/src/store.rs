//! ConfigMaps and Secrets as maps of text files: read, patch some keys
//! (conditional on the resourceVersion read), create copies (backups and
//! the first-seen defaults).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use dbops_plugin_sdk::kube::{Api, ApiResource, Patch};
use dbops_plugin_sdk::{Context, StepError, StepResult};
use serde_json::{Map, Value, json};

use crate::config::ObjectKind;

/// Label on every object patch-config creates, naming the object it copies.
pub const COPY_OF_LABEL: &str = "dbops.io/config-copy-of";
/// Label saying what a copy is: `backup` or `defaults`.
pub const ROLE_LABEL: &str = "dbops.io/config-copy";
/// Annotation listing (JSON) the copied files that did not exist.
pub const ABSENT_ANNOTATION: &str = "dbops.io/absent-files";

/// A ConfigMap or Secret read as text files.
#[derive(Debug, Clone)]
pub struct Files {
    /// File name -> content.
    pub files: BTreeMap<String, String>,
    /// resourceVersion read, for a conditional write.
    pub resource_version: String,
    /// Annotations of the object.
    pub annotations: Map<String, Value>,
}

/// ConfigMaps or Secrets in the target namespace.
pub struct Store<'h> {
    api: Api<'h, Value>,
    kind: ObjectKind,
}

impl<'h> Store<'h> {
    /// The store of `kind` objects in the target's namespace.
    pub fn new(ctx: &Context<'h>, kind: ObjectKind) -> Store<'h> {
        let resource = match kind {
            ObjectKind::ConfigMap => ApiResource::of::<ConfigMap>(),
            ObjectKind::Secret => ApiResource::of::<Secret>(),
        };
        Store {
            api: ctx.kube().dynamic(resource, Some(&ctx.target().namespace)),
            kind,
        }
    }

    /// `ConfigMap` or `Secret`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Secret => "Secret",
        }
    }

    /// Read `name`; `None` when it does not exist.
    pub fn read(&self, name: &str) -> StepResult<Option<Files>> {
        let Some(object) = self.api.get_opt(name)? else {
            return Ok(None);
        };
        let mut files = BTreeMap::new();
        if let Some(Value::Object(data)) = object.get("data") {
            for (key, value) in data {
                let text = value.as_str().unwrap_or_default();
                let text = match self.kind {
                    ObjectKind::ConfigMap => text.to_owned(),
                    ObjectKind::Secret => decode(text).map_err(|why| {
                        StepError::permanent(
                            "UnreadableConfig",
                            format!("Secret {name} key {key}: {why}"),
                        )
                    })?,
                };
                files.insert(key.clone(), text);
            }
        }
        Ok(Some(Files {
            files,
            resource_version: object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            annotations: object
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        }))
    }

    /// Read `name`, which must exist.
    pub fn read_existing(&self, name: &str) -> StepResult<Files> {
        self.read(name)?.ok_or_else(|| {
            StepError::permanent(
                "ConfigNotFound",
                format!(
                    "{} {name} does not exist in the target namespace; create it or fix the step's `config_map`/`secret`",
                    self.kind_name()
                ),
            )
        })
    }

    /// Set (`Some`) or delete (`None`) files of `name`, failing with a
    /// (transient) conflict when it changed since `resource_version`.
    pub fn write(
        &self,
        name: &str,
        changes: &BTreeMap<String, Option<String>>,
        resource_version: &str,
    ) -> StepResult<()> {
        let data: Map<String, Value> = changes
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Some(text) => Value::String(self.encode(text)),
                    None => Value::Null,
                };
                (k.clone(), value)
            })
            .collect();
        let patch = json!({
            "metadata": { "resourceVersion": resource_version },
            "data": data,
        });
        self.api.patch(name, &Patch::Merge(patch))?;
        Ok(())
    }

    /// Create `name` holding `files`, with labels and annotations; `false`
    /// when it already exists (left as it is).
    pub fn create_copy(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, String)],
        files: &BTreeMap<String, String>,
    ) -> StepResult<bool> {
        if self.api.get_opt(name)?.is_some() {
            return Ok(false);
        }
        let data: Map<String, Value> = files
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(self.encode(v))))
            .collect();
        let labels: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let annotations: Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        let mut object = json!({
            "apiVersion": "v1",
            "kind": self.kind_name(),
            "metadata": { "name": name, "labels": labels, "annotations": annotations },
            "data": data,
        });
        if self.kind == ObjectKind::Secret {
            object["type"] = Value::String("Opaque".into());
        }
        match self.api.create(&object) {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn encode(&self, text: &str) -> String {
        match self.kind {
            ObjectKind::ConfigMap => text.to_owned(),
            ObjectKind::Secret => STANDARD.encode(text.as_bytes()),
        }
    }
}

fn decode(base64: &str) -> Result<String, String> {
    let bytes = STANDARD
        .decode(base64.as_bytes())
        .map_err(|e| format!("not base64: {e}"))?;
    String::from_utf8(bytes)
        .map_err(|_| "not UTF-8 text; patch-config edits text configuration files only".to_owned())
}

/// A DNS-subdomain object name from parts (lowercase, `[a-z0-9.-]`, at most 253).
pub fn object_name(parts: &[&str]) -> String {
    let joined = parts.join("-").to_ascii_lowercase();
    let mut name: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253);
    name.trim_matches(['-', '.']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_valid_object_names() {
        assert_eq!(
            object_name(&["zk-config", "dbops-backup", "Run_1", "patch config"]),
            "zk-config-dbops-backup-run-1-patch-config"
        );
        assert!(object_name(&[&"x".repeat(300)]).len() <= 253);
    }
}
