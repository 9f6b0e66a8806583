//! The JSON messages exchanged through the ABI.
//!
//! Requests go host -> plugin, responses plugin -> host. Adding an optional
//! field is compatible; anything else needs a new ABI version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorClass;

/// The step outputs: names to JSON scalars (string, bool, number).
pub type Outputs = BTreeMap<String, Value>;

/// The database a pipeline operates on (`[target]` of the pipeline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Engine name: zookeeper, kafka, druid, perconaxtradb, generic.
    pub engine: String,
    /// Namespace of every object of the target.
    pub namespace: String,
    /// The target's name (usually the database and workload name).
    pub name: String,
    /// The workload whose pods are the members.
    pub workload: Workload,
    /// The database custom resource, for operator-managed databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseRef>,
}

/// The StatefulSet (or KubeDB PetSet) running the members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// `StatefulSet` or `PetSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its apiVersion (`apps/v1`, `apps.k8s.appscode.com/v1`).
    pub api_version: String,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            kind: "StatefulSet".into(),
            name: String::new(),
            api_version: "apps/v1".into(),
        }
    }
}

/// A database custom resource (KubeDB, Strimzi, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseRef {
    /// apiVersion, e.g. `kubedb.com/v1`.
    pub api_version: String,
    /// Kind, e.g. `ZooKeeper`.
    pub kind: String,
    /// Plural resource name, e.g. `zookeepers`.
    pub plural: String,
    /// Object name.
    pub name: String,
}

/// Host -> plugin: validate a `with` table before anything touches the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// The step's id in the pipeline.
    pub step_id: String,
    /// The pipeline's target.
    pub target: Target,
    /// The `with` table with every resolvable variable expanded.
    pub with: Value,
    /// JSON pointers (e.g. `/expected_serial`) of values that depend on
    /// earlier steps' outputs and are only known at run time. The plugin
    /// must not judge those values.
    #[serde(default)]
    pub deferred: Vec<String>,
}

/// One problem found in a `with` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// JSON pointer into `with` (empty for the whole table).
    pub path: String,
    /// A full sentence saying what is wrong and how to fix it.
    pub message: String,
}

/// Plugin -> host: every problem at once (empty when valid).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ValidateResponse {
    /// The problems found.
    pub problems: Vec<Problem>,
}

/// Host -> plugin: run (or compensate) a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// The step's id in the pipeline.
    pub step_id: String,
    /// The run id (stable across restarts of a Job pod).
    pub run_id: String,
    /// The trace id of the run (hex), for messages and Events.
    #[serde(default)]
    pub trace_id: String,
    /// 1 for the first attempt, incremented on retries and on resume.
    pub attempt: u32,
    /// When true the plugin must not write; the host refuses writes anyway.
    #[serde(default)]
    pub dry_run: bool,
    /// The pipeline's target.
    pub target: Target,
    /// The fully expanded `with` table.
    pub with: Value,
    /// For `compensate`: the outputs the step produced when it ran.
    #[serde(default)]
    pub outputs: Outputs,
}

/// Plugin -> host: the result of `run` or `compensate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResponse {
    /// The step finished.
    Ok {
        /// Outputs for `${steps.ID.outputs.KEY}` and `when`.
        outputs: Outputs,
        /// One line for the run's progress log.
        #[serde(default)]
        summary: String,
    },
    /// The step failed.
    Error {
        /// Transient errors are retried; permanent ones are not.
        class: ErrorClass,
        /// PascalCase reason for Events (e.g. `CertificateNotReady`).
        reason: String,
        /// What happened, where, and how to fix it.
        message: String,
    },
}

/// A plugin's static description, read from its descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginInfo {
    /// ABI version of the descriptor.
    pub abi_version: u32,
    /// Step name used in `uses`.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// SDK version it was built with.
    pub sdk_version: String,
    /// One-line description.
    pub description: String,
    /// JSON Schema of the `with` table.
    pub config_schema: Value,
    /// Declared outputs.
    pub outputs: Vec<OutputInfo>,
    /// Feature names.
    pub features: Vec<String>,
    /// Whether the plugin can compensate.
    pub has_compensate: bool,
}

/// A declared output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// The key in `${steps.ID.outputs.KEY}`.
    pub name: String,
    /// What it holds.
    pub description: String,
}
