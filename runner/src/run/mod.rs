//! Execute a validated pipeline against the cluster: the only stage that
//! writes. [`run`] takes the target's lock, opens (or resumes) the journal,
//! runs the [`executor`] inside the root span `dbops.run`, records the
//! outcome and releases the lock.
//!
//! Pieces: [`cluster`] (raw API access), [`lock`] (Lease), [`journal`]
//! (ConfigMap), [`events`] (Events on the target), [`host`] (the plugin's
//! host services), [`attempt`] (one plugin call with its deadline),
//! [`executor`] (order, `when`, always, interruption) with `retry.rs`
//! (backoff) and `rollback.rs` (reverse compensation), [`signals`].

pub mod attempt;
pub mod cluster;
pub mod events;
pub mod executor;
pub mod host;
pub mod journal;
pub mod lock;
mod retry;
mod rollback;
pub mod signals;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use executor::Outcome;

use crate::pipeline::Pipeline;
use crate::plugins::PluginSet;
use crate::telemetry;
use cluster::Cluster;
use events::EventSink;
use host::StepEnv;
use journal::{Journal, NewRun};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run id (stable across restarts of a Job pod).
    pub run_id: String,
    /// Dry run: no lock, no journal in the cluster, no Events, writes refused.
    pub dry_run: bool,
    /// Time `always` steps get after SIGTERM/SIGINT.
    pub grace: Duration,
    /// `leaseDurationSeconds` of the target lock.
    pub lock_duration: Duration,
    /// The Job owning this run (name, uid), for the journal's ownerReference.
    pub owner: Option<(String, String)>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The run id.
    pub run_id: String,
    /// The trace id of this process.
    pub trace_id: String,
    /// The journal (final state).
    pub journal: journal::RunRecord,
    /// Whether an earlier process of this run was resumed.
    pub resumed: bool,
    /// The run had already finished in an earlier process; nothing was done.
    pub already_finished: bool,
}

/// Errors before any step ran.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another run holds the target.
    #[error(transparent)]
    LockHeld(lock::LockError),
    /// The lock could not be taken for another reason.
    #[error(transparent)]
    Lock(lock::LockError),
    /// The journal could not be opened.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
}

/// A stable hash of what the pipeline does (a resumed run must match it).
pub fn pipeline_hash(pipeline: &Pipeline) -> String {
    let steps: Vec<_> = pipeline
        .steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id, "uses": s.uses, "with": s.with, "always": s.always,
                "when": s.when, "timeout_ms": s.timeout.as_millis() as u64,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "name": pipeline.name,
        "operation": pipeline.operation,
        "on_failure": pipeline.on_failure,
        "target": pipeline.target,
        "steps": steps,
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))[..16].to_owned()
}

/// Run `pipeline` against the cluster. `cancel` is the signal token.
pub async fn run(
    cluster: Cluster,
    pipeline: Arc<Pipeline>,
    plugins: Arc<PluginSet>,
    options: RunOptions,
    cancel: CancellationToken,
) -> Result<RunReport, RunError> {
    let target = &pipeline.target;
    let root = tracing::info_span!(
        "dbops.run",
        pipeline = %pipeline.name,
        operation = %pipeline.operation,
        db.system = %target.engine,
        k8s.namespace.name = %target.namespace,
        dbops.target = %target.name,
        dbops.run_id = %options.run_id,
        dbops.dry_run = options.dry_run,
        dbops.outcome = tracing::field::Empty,
    );
    if let Some(parent) = telemetry::parent_from_env()
        && let Err(e) = root.set_parent(parent)
    {
        tracing::warn!("cannot use TRACEPARENT as the parent of the run: {e}");
    }
    let trace_id = telemetry::trace_id(&root);
    let report = run_in_span(
        cluster,
        pipeline.clone(),
        plugins,
        options,
        cancel,
        trace_id,
        &root,
    )
    .instrument(root.clone())
    .await;
    match &report {
        Ok(report) => {
            root.record("dbops.outcome", report.outcome.as_str());
            if report.outcome != Outcome::Succeeded {
                telemetry::set_error(&root, &format!("run {}", report.outcome.as_str()));
            }
        }
        Err(e) => {
            root.record("dbops.outcome", "not-started");
            telemetry::set_error(&root, &e.to_string());
        }
    }
    report
}

async fn run_in_span(
    cluster: Cluster,
    pipeline: Arc<Pipeline>,
    plugins: Arc<PluginSet>,
    options: RunOptions,
    cancel: CancellationToken,
    trace_id: String,
    root: &tracing::Span,
) -> Result<RunReport, RunError> {
    let target = &pipeline.target;
    let hash = pipeline_hash(&pipeline);
    tracing::info!(
        trace_id = %trace_id,
        "run {} of pipeline {} on {}/{} (trace {trace_id}){}",
        options.run_id, pipeline.name, target.namespace, target.name,
        if options.dry_run { " -- DRY RUN, nothing is written" } else { "" }
    );
    let new = NewRun {
        run_id: &options.run_id,
        pipeline: &pipeline,
        pipeline_hash: &hash,
        trace_id: &trace_id,
        dry_run: options.dry_run,
        owner: options.owner.clone(),
    };

    let lock = if options.dry_run {
        None
    } else {
        let taken = lock::acquire(
            &cluster,
            &target.namespace,
            &target.name,
            &options.run_id,
            options.lock_duration,
        )
        .await;
        match taken {
            Ok(lock) => Some(lock),
            Err(e @ lock::LockError::Held { .. }) => return Err(RunError::LockHeld(e)),
            Err(e) => return Err(RunError::Lock(e)),
        }
    };
    let opened = if options.dry_run {
        Ok((Journal::in_memory(&new), false))
    } else {
        Journal::open(cluster.clone(), &new).await
    };
    let (journal, resumed) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            if let Some(lock) = lock {
                lock.release().await;
            }
            return Err(e.into());
        }
    };
    let journal = Arc::new(journal);
    let recorded = journal.snapshot().await;
    if let Some(outcome) = recorded.outcome.as_deref().and_then(Outcome::parse) {
        tracing::info!(
            "run {} already finished ({}); nothing to do",
            options.run_id,
            outcome.as_str()
        );
        if let Some(lock) = lock {
            lock.release().await;
        }
        root.record("dbops.outcome", outcome.as_str());
        return Ok(RunReport {
            outcome,
            run_id: options.run_id,
            trace_id,
            journal: recorded,
            resumed,
            already_finished: true,
        });
    }

    let events = Arc::new(EventSink::new(
        (!options.dry_run).then(|| cluster.clone()),
        target.clone(),
        &options.run_id,
        &trace_id,
    ));
    let (reason, verb) = if resumed {
        ("RunResumed", "resumed")
    } else {
        ("RunStarted", "started")
    };
    events.emit(
        "Normal",
        reason,
        &format!(
            "dbops {verb} pipeline {} ({})",
            pipeline.name, pipeline.operation
        ),
        None,
    );

    let run_cancel = cancel.child_token();
    if let Some(lock) = &lock {
        let (lost, stop) = (lock.lost.clone(), run_cancel.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            stop.cancel();
        });
    }
    let env = Arc::new(StepEnv {
        rt: tokio::runtime::Handle::current(),
        cluster: cluster.clone(),
        dry_run: options.dry_run,
        journal: journal.clone(),
        events: events.clone(),
    });
    let executor = executor::Executor {
        pipeline: pipeline.clone(),
        plugins,
        env,
        run_id: options.run_id.clone(),
        trace_id: trace_id.clone(),
        cancel: run_cancel,
        grace: options.grace,
    };
    let outcome = executor.execute().await;

    let finished = journal
        .update(|record| {
            record.outcome = Some(outcome.as_str().to_owned());
            record.finished_at = Some(chrono::Utc::now());
        })
        .await;
    if let Err(e) = finished {
        tracing::error!("could not write the outcome to the run journal: {e}");
    }
    let (event_type, reason) = match outcome {
        Outcome::Succeeded => ("Normal", "RunSucceeded"),
        Outcome::FailedRolledBack => ("Warning", "RunRolledBack"),
        Outcome::FailedNotRolledBack => ("Warning", "RunFailed"),
        Outcome::Interrupted => ("Warning", "RunInterrupted"),
    };
    events.emit(
        event_type,
        reason,
        &format!("pipeline {} {}", pipeline.name, outcome.as_str()),
        None,
    );
    if let Some(lock) = lock {
        if outcome == Outcome::Interrupted {
            lock.keep_until_expiry();
        } else {
            lock.release().await;
        }
    }
    events.finish().await;
    Ok(RunReport {
        outcome,
        run_id: options.run_id,
        trace_id,
        journal: journal.snapshot().await,
        resumed,
        already_finished: false,
    })
}
