//! The validated, resolved pipeline the executor runs. Produced by the
//! loader/validator in this module; consumed by [`crate::run`].

use std::path::PathBuf;
use std::time::Duration;

use dbops_plugin_sdk::Target;
use serde::{Deserialize, Serialize};

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
}
