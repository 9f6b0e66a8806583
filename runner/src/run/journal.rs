//! The run journal: a ConfigMap `dbops-run-<run-id>` in the target's
//! namespace holding one JSON document ([`RunRecord`]): the pipeline, each
//! step's state, attempts, timestamps, outputs and durable plugin state, the
//! trace id and the outcome. It is what makes a run resumable: a restarted
//! Job pod with the same run id skips finished steps and re-enters the
//! interrupted one with its saved state.
//!
//! The journal is written only while the run holds the target's lock, so
//! this process is its only writer. In a dry run it lives in memory only.
//!
//! Labels: `app.kubernetes.io/managed-by=dbops`,
//! `app.kubernetes.io/component=run-journal`, `dbops.io/target=<name>`,
//! `dbops.io/run-id=<id>`. Owned by the Job when `JOB_NAME` and `JOB_UID`
//! are set (downward API), so deleting the Job deletes its journal.

use chrono::{DateTime, Utc};
use dbops_plugin_sdk::Outputs;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::cluster::{Cluster, ClusterError};

/// How often a journal write is retried after 409 Conflicts (each time with
/// the latest resourceVersion). We hold the lock, so conflicts only come
/// from other clients touching the ConfigMap (labels, kubectl edit) or an
/// API server's spurious conflicts; a run must not fail over a few of them.
const JOURNAL_WRITE_ATTEMPTS: u32 = 8;
/// ConfigMap data key holding the JSON document.
pub const DATA_KEY: &str = "journal.json";
/// Label selecting journals.
pub const SELECTOR: &str =
    "app.kubernetes.io/managed-by=dbops,app.kubernetes.io/component=run-journal";

/// Errors reading or writing the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The API call failed.
    #[error("run journal configmap {namespace}/{name}: {source}")]
    Cluster {
        /// Namespace.
        namespace: String,
        /// ConfigMap name.
        name: String,
        /// Cause.
        #[source]
        source: ClusterError,
    },
    /// The stored document cannot be read.
    #[error(
        "run journal configmap {namespace}/{name} is corrupt: {message}; delete it or use another --run-id"
    )]
    Corrupt {
        /// Namespace.
        namespace: String,
        /// ConfigMap name.
        name: String,
        /// Decoder message.
        message: String,
    },
    /// The run id was used for a different pipeline.
    #[error(
        "run id {run_id} belongs to a run of another pipeline ({recorded}, hash {recorded_hash}), not {pipeline} (hash {hash}); use another --run-id"
    )]
    OtherPipeline {
        /// The run id.
        run_id: String,
        /// The recorded pipeline name.
        recorded: String,
        /// Its hash.
        recorded_hash: String,
        /// This pipeline's name.
        pipeline: String,
        /// Its hash.
        hash: String,
    },
}

/// The state of one step in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// An attempt is in progress (or the process died during one).
    Running,
    /// Finished; outputs recorded.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Not run (`when` was false, or an earlier step failed).
    Skipped,
    /// Undone by its compensation during a rollback.
    Compensated,
    /// Stopped by a signal; resumed by the next run with the same id.
    Interrupted,
}

impl StepState {
    /// Whether a resumed run keeps this step as it is.
    pub fn is_finished(self) -> bool {
        matches!(self, StepState::Succeeded | StepState::Skipped)
    }
}

/// One step's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// Plugin (`uses`).
    pub uses: String,
    /// State.
    pub state: StepState,
    /// Attempts made so far (over all processes of this run).
    #[serde(default)]
    pub attempts: u32,
    /// First attempt start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Completion (success, failure, skip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Outputs of a successful run.
    #[serde(default)]
    pub outputs: Outputs,
    /// The plugin's durable state (`Context::save_state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_state: Option<Value>,
    /// Last error reason (PascalCase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Last error message, or why the step was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The whole journal document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Hash of the resolved pipeline (a resumed run must match).
    pub pipeline_hash: String,
    /// Operation.
    pub operation: String,
    /// Engine.
    pub engine: String,
    /// Target namespace.
    pub namespace: String,
    /// Target name.
    pub target: String,
    /// Trace id of the current (latest) process of this run.
    pub trace_id: String,
    /// Trace ids of earlier processes of this run (resumes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_trace_ids: Vec<String>,
    /// Whether this is a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed-rolled-back`, `failed`, `interrupted`; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The steps in pipeline order.
    pub steps: Vec<StepRecord>,
}

/// Identity of the run's new journal.
pub struct NewRun<'a> {
    /// The run id.
    pub run_id: &'a str,
    /// The pipeline.
    pub pipeline: &'a crate::pipeline::Pipeline,
    /// Hash of the resolved pipeline.
    pub pipeline_hash: &'a str,
    /// This process's trace id.
    pub trace_id: &'a str,
    /// Dry run.
    pub dry_run: bool,
    /// The Job owning this run (name, uid), if any.
    pub owner: Option<(String, String)>,
}

struct Inner {
    record: RunRecord,
    resource_version: Option<String>,
    /// What waits for the changes made by [`Journal::update_with_next_write`]
    /// to be persisted (e.g. the step's `StepSucceeded` Event).
    after_write: Vec<Box<dyn FnOnce() + Send>>,
}

/// The journal of one run; a cheap handle shared by the executor and the
/// step hosts.
pub struct Journal {
    cluster: Option<Cluster>,
    namespace: String,
    name: String,
    owner: Option<(String, String)>,
    inner: Mutex<Inner>,
}

/// ConfigMap name of a run's journal.
pub fn configmap_name(run_id: &str) -> String {
    format!("dbops-run-{run_id}")
}

fn fresh_record(new: &NewRun<'_>) -> RunRecord {
    let now = Utc::now();
    RunRecord {
        run_id: new.run_id.to_owned(),
        pipeline: new.pipeline.name.clone(),
        pipeline_hash: new.pipeline_hash.to_owned(),
        operation: new.pipeline.operation.clone(),
        engine: new.pipeline.target.engine.clone(),
        namespace: new.pipeline.target.namespace.clone(),
        target: new.pipeline.target.name.clone(),
        trace_id: new.trace_id.to_owned(),
        previous_trace_ids: Vec::new(),
        dry_run: new.dry_run,
        started_at: now,
        updated_at: now,
        finished_at: None,
        outcome: None,
        steps: new
            .pipeline
            .steps
            .iter()
            .map(|s| StepRecord {
                id: s.id.clone(),
                uses: s.uses.clone(),
                state: StepState::Pending,
                attempts: 0,
                started_at: None,
                finished_at: None,
                outputs: Outputs::new(),
                plugin_state: None,
                reason: None,
                message: None,
            })
            .collect(),
    }
}

/// Prepare a recorded run for resumption: steps after the first unfinished
/// one run again (they may have run out of order, e.g. `always` steps
/// during an interruption), keeping their durable state.
fn prepare_resume(record: &mut RunRecord, trace_id: &str) {
    if record.trace_id != trace_id {
        let previous = std::mem::replace(&mut record.trace_id, trace_id.to_owned());
        record.previous_trace_ids.push(previous);
    }
    record.outcome = None;
    record.finished_at = None;
    if let Some(first) = record.steps.iter().position(|s| !s.state.is_finished()) {
        for step in record.steps.iter_mut().skip(first + 1) {
            if step.state != StepState::Failed && step.state != StepState::Compensated {
                step.state = StepState::Pending;
            }
        }
    }
}

impl Journal {
    /// A journal kept in memory only (dry run, plan).
    pub fn in_memory(new: &NewRun<'_>) -> Journal {
        Journal {
            cluster: None,
            namespace: new.pipeline.target.namespace.clone(),
            name: configmap_name(new.run_id),
            owner: None,
            inner: Mutex::new(Inner {
                record: fresh_record(new),
                resource_version: None,
                after_write: Vec::new(),
            }),
        }
    }

    fn err(&self, source: ClusterError) -> JournalError {
        JournalError::Cluster {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    fn path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/configmaps/{}",
            self.namespace, self.name
        )
    }

    /// Open the run's journal: create the ConfigMap, or, when it exists
    /// already, resume the recorded run (returns `true`). Creating first
    /// costs a new run (the common case) one API call instead of two.
    pub async fn open(cluster: Cluster, new: &NewRun<'_>) -> Result<(Journal, bool), JournalError> {
        let mut journal = Journal::in_memory(new);
        journal.cluster = Some(cluster.clone());
        journal.owner = new.owner.clone();
        if journal.create().await? {
            return Ok((journal, false));
        }
        let existing = cluster
            .get(&journal.path())
            .await
            .map_err(|e| journal.err(e))?;
        // Deleted between our create and get: a write creates it again.
        let Some(existing) = existing else {
            journal.flush().await?;
            return Ok((journal, false));
        };
        let corrupt = |message: String| JournalError::Corrupt {
            namespace: journal.namespace.clone(),
            name: journal.name.clone(),
            message,
        };
        let text = existing
            .get("data")
            .and_then(|d| d.get(DATA_KEY))
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt(format!("no data key {DATA_KEY}")))?;
        let mut record: RunRecord =
            serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        if record.pipeline_hash != new.pipeline_hash {
            return Err(JournalError::OtherPipeline {
                run_id: new.run_id.to_owned(),
                recorded: record.pipeline,
                recorded_hash: record.pipeline_hash,
                pipeline: new.pipeline.name.clone(),
                hash: new.pipeline_hash.to_owned(),
            });
        }
        let finished = matches!(
            record.outcome.as_deref(),
            Some(o) if o != "interrupted"
        );
        if !finished {
            prepare_resume(&mut record, new.trace_id);
        }
        {
            let inner = journal.inner.get_mut();
            inner.record = record;
            inner.resource_version = existing
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if !finished {
            journal.flush().await?;
        }
        Ok((journal, true))
    }

    fn configmap(&self, record: &RunRecord, resource_version: Option<&str>) -> Value {
        let document = serde_json::to_string_pretty(record).unwrap_or_default();
        let mut metadata = json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "dbops",
                "app.kubernetes.io/component": "run-journal",
                "dbops.io/target": label_value(&record.target),
                "dbops.io/run-id": label_value(&record.run_id),
            },
            "annotations": {
                "dbops.io/pipeline": record.pipeline,
                "dbops.io/trace-id": record.trace_id,
            },
        });
        if let Some(rv) = resource_version {
            metadata["resourceVersion"] = json!(rv);
        }
        if let Some((job, uid)) = &self.owner {
            metadata["ownerReferences"] = json!([{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job,
                "uid": uid,
            }]);
        }
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {
                DATA_KEY: document,
                "outcome": record.outcome.clone().unwrap_or_else(|| "running".into()),
                "trace-id": record.trace_id,
            },
        })
    }

    /// Create the ConfigMap; `false` when it exists already (nothing written).
    async fn create(&self) -> Result<bool, JournalError> {
        let Some(cluster) = &self.cluster else {
            return Ok(true);
        };
        let mut inner = self.inner.lock().await;
        let body = self.configmap(&inner.record, None);
        let path = format!("/api/v1/namespaces/{}/configmaps", self.namespace);
        match cluster.json("POST", &path, Some(&body)).await {
            Ok(created) => {
                inner.resource_version = created
                    .as_ref()
                    .and_then(|c| c.pointer("/metadata/resourceVersion"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok(true)
            }
            Err(e) if e.status() == Some(409) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn write(&self, inner: &mut Inner) -> Result<(), JournalError> {
        let written = self.put(inner).await;
        if written.is_ok() {
            for then in std::mem::take(&mut inner.after_write) {
                then();
            }
        }
        written
    }

    async fn put(&self, inner: &mut Inner) -> Result<(), JournalError> {
        inner.record.updated_at = Utc::now();
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        for attempt in 0..JOURNAL_WRITE_ATTEMPTS {
            if attempt > 0 {
                // Someone else touched the ConfigMap between our read and
                // write; give them a moment before taking the latest version.
                tokio::time::sleep(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
            }
            let body = self.configmap(&inner.record, inner.resource_version.as_deref());
            match cluster.json("PUT", &self.path(), Some(&body)).await {
                Ok(Some(stored)) => {
                    inner.resource_version = stored
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    return Ok(());
                }
                // Deleted under us (or never created): create it again.
                Ok(None) => {
                    let path = format!("/api/v1/namespaces/{}/configmaps", self.namespace);
                    let body = self.configmap(&inner.record, None);
                    let created = cluster
                        .json("POST", &path, Some(&body))
                        .await
                        .map_err(|e| self.err(e))?;
                    inner.resource_version = created
                        .as_ref()
                        .and_then(|c| c.pointer("/metadata/resourceVersion"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    return Ok(());
                }
                // We hold the lock, so we are the only writer: someone
                // touched the ConfigMap (e.g. kubectl label); take theirs'
                // resourceVersion and write ours.
                Err(e) if e.status() == Some(409) => {
                    let current = cluster.get(&self.path()).await.map_err(|e| self.err(e))?;
                    inner.resource_version = current
                        .as_ref()
                        .and_then(|c| c.pointer("/metadata/resourceVersion"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Err(self.err(ClusterError::Status {
            method: "PUT".into(),
            path: self.path(),
            status: 409,
            message: "conflicting writes to the journal".into(),
        }))
    }

    /// Persist the current document.
    pub async fn flush(&self) -> Result<(), JournalError> {
        let mut inner = self.inner.lock().await;
        self.write(&mut inner).await
    }

    /// Change the document and persist it before returning.
    pub async fn update(&self, change: impl FnOnce(&mut RunRecord)) -> Result<(), JournalError> {
        let mut inner = self.inner.lock().await;
        change(&mut inner.record);
        self.write(&mut inner).await
    }

    /// Change the document in memory; the change is persisted by the next
    /// write ([`Journal::update`], [`Journal::flush`]), in the same PUT, and
    /// `then` runs once that write succeeded (whatever must not be seen
    /// before the change is durable, e.g. a `StepSucceeded` Event: a run
    /// killed before the write repeats the step and must not announce its
    /// success twice).
    ///
    /// For a step's result: the executor's next act is always a write (the
    /// next step's attempt, a skip, or the run's outcome), and that write
    /// must happen before anything else does, so the result is durable
    /// before the next plugin runs, as with a write of its own, one round
    /// trip sooner. A process killed in between repeats the step on resume,
    /// exactly as one killed while the result's own write was in flight.
    pub async fn update_with_next_write(
        &self,
        change: impl FnOnce(&mut RunRecord),
        then: impl FnOnce() + Send + 'static,
    ) {
        let mut inner = self.inner.lock().await;
        change(&mut inner.record);
        inner.after_write.push(Box::new(then));
    }

    /// A copy of the document.
    pub async fn snapshot(&self) -> RunRecord {
        self.inner.lock().await.record.clone()
    }

    /// The ConfigMap name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the journal is persisted in the cluster.
    pub fn is_persistent(&self) -> bool {
        self.cluster.is_some()
    }
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Decode a journal ConfigMap (for `dbops status`).
pub fn decode(configmap: &Value) -> Option<RunRecord> {
    configmap
        .get("data")
        .and_then(|d| d.get(DATA_KEY))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, state: StepState) -> StepRecord {
        StepRecord {
            id: id.into(),
            uses: "x".into(),
            state,
            attempts: 1,
            started_at: None,
            finished_at: None,
            outputs: Outputs::new(),
            plugin_state: None,
            reason: None,
            message: None,
        }
    }

    #[test]
    fn resume_reruns_steps_after_the_first_unfinished_one() {
        let now = Utc::now();
        let mut record = RunRecord {
            run_id: "r".into(),
            pipeline: "p".into(),
            pipeline_hash: "h".into(),
            operation: "o".into(),
            engine: "generic".into(),
            namespace: "ns".into(),
            target: "t".into(),
            trace_id: "old".into(),
            previous_trace_ids: vec![],
            dry_run: false,
            started_at: now,
            updated_at: now,
            finished_at: Some(now),
            outcome: Some("interrupted".into()),
            steps: vec![
                step("a", StepState::Succeeded),
                step("b", StepState::Interrupted),
                step("c", StepState::Skipped),
                step("resume", StepState::Succeeded),
            ],
        };
        prepare_resume(&mut record, "new");
        let states: Vec<_> = record.steps.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                StepState::Succeeded,
                StepState::Interrupted,
                StepState::Pending,
                StepState::Pending
            ]
        );
        assert_eq!(record.trace_id, "new");
        assert_eq!(record.previous_trace_ids, ["old"]);
        assert_eq!(record.outcome, None);
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("zk-prod"), "zk-prod");
        assert_eq!(label_value("-a/b-"), "a-b");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }
}
