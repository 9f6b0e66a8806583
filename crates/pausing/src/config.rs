//! The `with` table shared by `pause` and `resume`, and how it resolves to
//! the object to mark and the preset to mark it with.

use dbops_plugin_sdk::kube::ApiResource;
use dbops_plugin_sdk::schemars::JsonSchema;
use dbops_plugin_sdk::{Problem, Target};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `with` table of `pause` and `resume` (give both steps the same one).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Config {
    /// How to pause: `auto` (default: from `target.database`'s API group:
    /// kubedb.com -> `kubedb`, kafka.strimzi.io -> `strimzi`,
    /// postgresql.cnpg.io -> `cloudnativepg`; no database -> `statefulset`),
    /// `statefulset` (annotation on the workload), `kubedb` (the
    /// `DatabasePaused` status condition, as KubeDB's CLI does), `strimzi`
    /// (`strimzi.io/pause-reconciliation: "true"`), `cloudnativepg`
    /// (`cnpg.io/reconciliationLoop: disabled`), `merge-patch` (the JSON
    /// merge patch in `patch`).
    #[serde(default)]
    pub preset: PresetName,
    /// The object to mark, when not the target's database (or workload).
    #[serde(default)]
    pub resource: Option<ResourceRef>,
    /// For `preset = "merge-patch"`: the JSON merge patch that pauses the
    /// operator, e.g. `{ spec = { suspend = true } }`. An object that
    /// already holds it counts as paused by someone else.
    #[serde(default)]
    pub patch: Option<Value>,
    /// For `statefulset`: also switch `spec.updateStrategy` to `OnDelete`
    /// so no controller rolls pods while paused (restored on resume).
    #[serde(default)]
    pub on_delete: bool,
    /// For `resume`: undo the pause made by this run id instead of this
    /// run's own (to release a pause left by a run that cannot resume).
    #[serde(default)]
    pub run_id: Option<String>,
}

/// The preset names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub enum PresetName {
    /// Decide from the target.
    #[default]
    Auto,
    /// Annotation on a StatefulSet/PetSet.
    Statefulset,
    /// KubeDB `DatabasePaused` condition.
    Kubedb,
    /// Strimzi pause annotation.
    Strimzi,
    /// CloudNativePG reconciliation-loop annotation.
    Cloudnativepg,
    /// A configured merge patch.
    MergePatch,
}

/// An object to mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct ResourceRef {
    /// apiVersion, e.g. `kafka.strimzi.io/v1beta2`.
    pub api_version: String,
    /// Kind, e.g. `Kafka`.
    pub kind: String,
    /// Plural resource name; default: the lowercased kind plus `s`.
    #[serde(default)]
    pub plural: Option<String>,
    /// Object name (in the target's namespace).
    pub name: String,
}

impl ResourceRef {
    /// Where it lives in the API.
    pub fn api_resource(&self) -> ApiResource {
        let plural = self
            .plural
            .clone()
            .unwrap_or_else(|| format!("{}s", self.kind.to_ascii_lowercase()));
        ApiResource::new(&self.api_version, &self.kind, &plural)
    }
}

/// A resolved preset.
#[derive(Debug, Clone, PartialEq)]
pub enum Preset {
    /// Only our annotations (and `OnDelete` when asked).
    Statefulset {
        /// Switch to `OnDelete`.
        on_delete: bool,
    },
    /// The `DatabasePaused` status condition.
    Kubedb,
    /// A merge patch whose values mean "paused" (Strimzi, CloudNativePG, custom).
    Patch(Value),
}

impl Preset {
    /// The name written in the pause record.
    pub fn name(&self) -> &'static str {
        match self {
            Preset::Statefulset { .. } => "statefulset",
            Preset::Kubedb => "kubedb",
            Preset::Patch(_) => "merge-patch",
        }
    }
}

/// Resolve the object and preset for `target`, or say what is missing.
pub fn resolve(config: &Config, target: &Target) -> Result<(ResourceRef, Preset), Problem> {
    let database = target.database.as_ref().map(|d| ResourceRef {
        api_version: d.api_version.clone(),
        kind: d.kind.clone(),
        plural: Some(d.plural.clone()),
        name: d.name.clone(),
    });
    let workload = ResourceRef {
        api_version: target.workload.api_version.clone(),
        kind: target.workload.kind.clone(),
        plural: None,
        name: target.workload.name.clone(),
    };
    let group = |r: &ResourceRef| {
        r.api_version
            .split_once('/')
            .map(|(g, _)| g.to_owned())
            .unwrap_or_default()
    };
    let name = match config.preset {
        PresetName::Auto => match config.resource.as_ref().or(database.as_ref()) {
            None => PresetName::Statefulset,
            Some(r) => match group(r).as_str() {
                "kubedb.com" => PresetName::Kubedb,
                "kafka.strimzi.io" => PresetName::Strimzi,
                "postgresql.cnpg.io" => PresetName::Cloudnativepg,
                "apps" | "apps.k8s.appscode.com" => PresetName::Statefulset,
                other => {
                    return Err(problem(
                        "/preset",
                        format!(
                            "no preset knows how to pause a {} of API group {other:?}; set preset = \"merge-patch\" and the `patch` that pauses its operator",
                            r.kind
                        ),
                    ));
                }
            },
        },
        other => other,
    };
    let default_object = match name {
        PresetName::Statefulset => Some(workload),
        _ => database,
    };
    let object = config.resource.clone().or(default_object).ok_or_else(|| {
        problem(
            "/resource",
            "the target has no database object to pause; set `resource` (api_version, kind, name) or use preset = \"statefulset\"",
        )
    })?;
    if object.name.is_empty() {
        return Err(problem("/resource/name", "the object to pause has no name"));
    }
    if config.on_delete && name != PresetName::Statefulset {
        return Err(problem(
            "/on_delete",
            "on_delete applies to preset = \"statefulset\" only",
        ));
    }
    let preset = match name {
        PresetName::Statefulset | PresetName::Auto => Preset::Statefulset {
            on_delete: config.on_delete,
        },
        PresetName::Kubedb => Preset::Kubedb,
        PresetName::Strimzi => Preset::Patch(annotation("strimzi.io/pause-reconciliation", "true")),
        PresetName::Cloudnativepg => {
            Preset::Patch(annotation("cnpg.io/reconciliationLoop", "disabled"))
        }
        PresetName::MergePatch => match &config.patch {
            Some(patch @ Value::Object(map)) if !map.is_empty() => Preset::Patch(patch.clone()),
            _ => {
                return Err(problem(
                    "/patch",
                    "preset = \"merge-patch\" needs `patch`, a non-empty table (the JSON merge patch that pauses the operator)",
                ));
            }
        },
    };
    Ok((object, preset))
}

fn annotation(key: &str, value: &str) -> Value {
    serde_json::json!({ "metadata": { "annotations": { key: value } } })
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_owned(),
        message: message.into(),
    }
}
