//! The validated, resolved pipeline the executor runs. Produced by the
//! loader/validator in this module; consumed by [`crate::run`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dbops_plugin_sdk::Target;
use serde::{Deserialize, Serialize};

use super::vars::Part;

/// What to do when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Run the compensations of completed steps in reverse order.
    Rollback,
    /// Stop; leave completed steps as they are (`always` steps still run).
    Halt,
}

/// Retry policy for transient step errors: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub attempts: u32,
    /// Delay before the second attempt.
    pub initial_backoff: Duration,
    /// Upper bound of a delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A position in the pipeline file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A byte range in the pipeline file and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Line and column of `start`.
    pub location: Location,
}

/// Where a value of a step's `with` table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValueSpan {
    /// The key (absent for array elements).
    pub key: Option<Span>,
    /// The value.
    pub value: Span,
}

/// Where the parts of a step are written, to point problems found later
/// (plugin schemas, run-time resolution) at the right line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepSource {
    /// The pipeline file.
    pub file: PathBuf,
    /// Position of the step in the file, from 0 (key paths say `step[N]`).
    pub index: usize,
    /// The `uses` value.
    pub uses: Span,
    /// The `with` table (the step's `[[step]]` header when there is none).
    pub with: Span,
    /// The `when` value.
    pub when: Option<Span>,
    /// Every value inside `with`, by JSON pointer (`/tls/issuer`); the
    /// empty pointer is the table itself.
    pub values: BTreeMap<String, ValueSpan>,
}

/// A `with` value that depends on earlier steps' outputs, resolved right
/// before the step runs (see [`crate::pipeline::resolve_step`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeferredValue {
    /// JSON pointer into `with`.
    pub pointer: String,
    /// Its text and output references.
    pub parts: Vec<Part>,
}

/// `[defaults]`: what steps get unless they say otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    /// Timeout of one attempt (`timeout = "10m"`).
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
        }
    }
}

/// One step, ready to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSpec {
    /// Unique id within the pipeline.
    pub id: String,
    /// Plugin name (or a path to a plugin file).
    pub uses: String,
    /// The `with` table with every variable known before the run expanded;
    /// `${steps.ID.outputs.KEY}` references stay as text and are expanded
    /// by [`crate::pipeline`] right before the step runs.
    pub with: serde_json::Value,
    /// Hard limit for one attempt.
    pub timeout: Duration,
    /// Retries for transient errors.
    pub retry: RetryPolicy,
    /// Run even after an earlier failure (e.g. resume).
    pub always: bool,
    /// Run only when this expression over earlier outputs holds.
    pub when: Option<String>,
    /// Required sha256 (hex) of the plugin file.
    pub sha256: Option<String>,
    /// Where the step is declared.
    pub location: Location,
    /// `description`, for plans and logs.
    #[serde(default)]
    pub description: String,
    /// Values of `with` that need outputs of earlier steps; `with` holds
    /// their original text until [`crate::pipeline::resolve_step`].
    #[serde(default)]
    pub deferred: Vec<DeferredValue>,
    /// Positions of the step's parts in the file.
    #[serde(default)]
    pub source: StepSource,
}

impl StepSpec {
    /// JSON pointers of the deferred values (for
    /// `ValidateRequest::deferred`).
    pub fn deferred_pointers(&self) -> Vec<String> {
        self.deferred.iter().map(|d| d.pointer.clone()).collect()
    }
}

/// A validated pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pipeline {
    /// The file it came from.
    pub path: PathBuf,
    /// `[pipeline] name`.
    pub name: String,
    /// `[pipeline] description`.
    pub description: String,
    /// `[pipeline] operation` (e.g. `rotate-tls`, `reconfigure`).
    pub operation: String,
    /// `[pipeline] on_failure`.
    pub on_failure: OnFailure,
    /// `[target]`.
    pub target: Target,
    /// The steps in order.
    pub steps: Vec<StepSpec>,
    /// `[defaults]`, already applied to every step.
    #[serde(default)]
    pub defaults: Defaults,
    /// `[variables]` after `--set` overrides.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// The TOML text it was loaded from (for problem snippets).
    #[serde(default, skip_serializing)]
    pub source: String,
}
